'use strict';

// Where no native binary loads (no binary for the platform, an install with
// scripts disabled, a failed build): rust-net serves through node:net, says
// so once, tells the program (`native`), refuses the options only it
// implements, and RUST_NET_REQUIRE_NATIVE=1 makes the missing binary an
// error. Each case runs in a child process inside a temporary project whose
// node_modules/rust-net is a copy of this package's JavaScript without any
// native binary.

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { platformTriple } = require('../lib/triple');

const root = path.join(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-fallback-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const project = path.join(tmp, 'no-binary');
const copy = path.join(project, 'node_modules', 'rust-net');
fs.mkdirSync(path.join(copy, 'lib'), { recursive: true });
fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'no-binary', private: true }));
for (const file of ['package.json', 'index.js', 'index.mjs', 'register.js']) {
  fs.cpSync(path.join(root, file), path.join(copy, file));
}
for (const file of fs.readdirSync(path.join(root, 'lib'))) {
  if (file.endsWith('.js')) fs.cpSync(path.join(root, 'lib', file), path.join(copy, 'lib', file));
}

function node(args, env = {}) {
  const childEnv = { ...process.env, ...env };
  delete childEnv.RUST_NET_REQUIRE_NATIVE;
  delete childEnv.RUST_NET_NATIVE_LIBRARY_PATH; // npm test's test build: this copy must have none
  Object.assign(childEnv, env);
  return spawnSync(process.execPath, args, { cwd: project, env: childEnv, encoding: 'utf8', timeout: 20000 });
}

function nodeJson(args, env) {
  const r = node(args, env);
  assert.strictEqual(r.status, 0, `child failed (${r.signal || r.status}):\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return { result: JSON.parse(lines[lines.length - 1]), stderr: r.stderr };
}

// Collects the process warnings the child sees, by code.
const warnings = `
  const warned = [];
  process.on('warning', (w) => warned.push(w.code || w.name));
`;

// Accept threads of rust-net's runtime in this process (none in the fallback).
const acceptThreads = `
  function acceptThreads() {
    const fs = require('fs');
    return fs.readdirSync('/proc/self/task').filter((t) => {
      try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'rust-net-accept'; }
      catch { return false; }
    }).length;
  }
`;

// One server's life, observed the same way for node:net and rust-net.
const scenario = `
  function scenario(mod, done) {
    const net = require('net');
    const events = [];
    const server = mod.createServer((socket) => socket.end('hi'));
    server.listen(0, '127.0.0.1', () => {
      const { port, family } = server.address();
      events.push(['listening', family, server.listening]);
      const other = mod.createServer();
      other.on('error', (err) => {
        events.push(['error', err.code, err.syscall, err.message.replace(String(port), 'PORT')]);
        let data = '';
        net.connect(port, '127.0.0.1').on('data', (d) => { data += d; }).on('end', () => {
          events.push(['served', data, server instanceof net.Server]);
          server.close(() => done(events));
        });
      });
      other.listen(port, '127.0.0.1');
    });
  }
`;

test('without a native binary, rust-net serves through node:net, exactly as node:net does', () => {
  const { result } = nodeJson(['-e', `${warnings}${acceptThreads}${scenario}
    const rustNet = require('rust-net');
    scenario(require('net'), (nodeEvents) => scenario(rustNet, (rustEvents) => {
      const server = rustNet.createServer().listen(0, '127.0.0.1', () => {
        const facts = {
          native: rustNet.native,
          isRustServer: rustNet.isRustServer(server),
          acceptThreads: acceptThreads(),
          connect: rustNet.connect === require('net').connect,
        };
        server.close(() => console.log(JSON.stringify({ nodeEvents, rustEvents, facts, warned })));
      });
    }));`]);
  assert.deepStrictEqual(result.rustEvents, result.nodeEvents);
  assert.strictEqual(result.nodeEvents.length, 3);
  assert.deepStrictEqual(result.facts, { native: false, isRustServer: false, acceptThreads: 0, connect: true });
  assert.deepStrictEqual(result.warned, ['RUST_NET_NATIVE_MISSING']);
});

test('the missing binary is reported once per process, naming the platform, what was tried and the fix', () => {
  const triple = platformTriple();
  const { result, stderr } = nodeJson(['--input-type=module', '-e', `
    ${warnings}
    const { createRequire } = await import('node:module');
    const require = createRequire(process.cwd() + '/');
    const first = require('rust-net');
    const second = require('rust-net');
    const esm = await import('rust-net');
    await new Promise((resolve) => setTimeout(resolve, 10));
    console.log(JSON.stringify({
      warned,
      native: [first.native, second.native, esm.native, esm.default.native],
    }));`]);
  assert.deepStrictEqual(result, { warned: ['RUST_NET_NATIVE_MISSING'], native: [false, false, false, false] });
  assert.match(stderr, new RegExp(`\\[RUST_NET_NATIVE_MISSING\\] Warning: rust-net: no native binary could be loaded for ${triple} \\(Node ${process.version}`));
  assert.match(stderr, new RegExp(`rust-net\\.${triple}\\.node: Cannot find module`));
  assert.match(stderr, new RegExp(`rust-net-${triple}: Cannot find module`));
  assert.match(stderr, /npm rebuild rust-net --foreground-scripts/);
  assert.match(stderr, /RUST_NET_REQUIRE_NATIVE=1/);
});

test('RUST_NET_REQUIRE_NATIVE=1 makes a missing binary a thrown ERR_RUST_NET_NATIVE_MISSING', () => {
  for (const args of [
    ['-e', 'require(\'rust-net\')'],
    ['--input-type=module', '-e', 'import \'rust-net\''],
    ['-r', 'rust-net/register', '-e', ''],
    ['--import', 'rust-net/register', '-e', ''],
  ]) {
    const r = node(args, { RUST_NET_REQUIRE_NATIVE: '1' });
    assert.notStrictEqual(r.status, 0, `${args.join(' ')} loaded without a binary`);
    assert.match(r.stderr, /ERR_RUST_NET_NATIVE_MISSING/, args.join(' '));
    assert.match(r.stderr, /no native binary could be loaded/, args.join(' '));
    assert.match(r.stderr, /RUST_NET_REQUIRE_NATIVE is set, so rust-net does not fall back to node:net/);
  }
  // The error is catchable, with its code.
  const { result } = nodeJson(['-e', `
    try { require('rust-net'); console.log('"loaded"'); } catch (err) { console.log(JSON.stringify(err.code)); }`],
  { RUST_NET_REQUIRE_NATIVE: '1' });
  assert.strictEqual(result, 'ERR_RUST_NET_NATIVE_MISSING');
  // Off means off.
  assert.strictEqual(nodeJson(['-e', 'console.log(require(\'rust-net\').native)'],
                              { RUST_NET_REQUIRE_NATIVE: '0' }).result, false);
});

// Node versions with these options built in: net.Server's blockList since
// 22.13 / 23.4, listen()'s reusePort since 22.12 / 23.1.
const [major, minor] = process.versions.node.split('.').map(Number);
const nodeHasBlockList = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);
const nodeHasReusePort = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);

test('options only rust-net implements throw instead of being silently ignored', () => {
  const { result } = nodeJson(['-e', `
    const net = require('net');
    const rustNet = require('rust-net');
    function attempt(fn) {
      let server;
      try {
        server = fn();
      } catch (err) {
        return [err.code, /rust-net/.test(err.message), (err.message.match(/\`(\\w+)\`/) || [])[1]];
      }
      server.close?.();
      return 'ok';
    }
    const listenWith = (options) => () => rustNet.createServer().listen({ port: 0, host: '127.0.0.1', ...options });
    const out = {
      proxyCreate: attempt(() => rustNet.createServer({ proxyProtocol: true })),
      proxyNew: attempt(() => new rustNet.Server({ proxyProtocol: 'v2' }, () => {})),
      proxyListen: attempt(listenWith({ proxyProtocol: true })),
      shareCreate: attempt(() => rustNet.createServer({ shareAcrossThreads: true })),
      shareListen: attempt(listenWith({ shareAcrossThreads: true })),
      proxyOff: attempt(() => rustNet.createServer({ proxyProtocol: false, shareAcrossThreads: undefined })),
      handoverCreate: attempt(() => rustNet.createServer({ handover: '/tmp/rust-net-fallback.ctl' })),
      handoverListen: attempt(listenWith({ handover: '/tmp/rust-net-fallback.ctl' })),
      handoverOff: attempt(listenWith({ handover: false })),
      acceptPlacement: attempt(listenWith({ acceptPlacement: 'any' })),
      placementCreate: attempt(() => rustNet.createServer({ acceptPlacement: 'any' })),
      blockList: attempt(() => rustNet.createServer({ blockList: new net.BlockList() })),
      blockListNode: attempt(() => net.createServer({ blockList: new net.BlockList() })),
      reusePort: attempt(listenWith({ reusePort: true })),
      reusePortNode: attempt(() => net.createServer().listen({ port: 0, host: '127.0.0.1', reusePort: true })),
      plainPort: attempt(() => rustNet.createServer().listen(0, '127.0.0.1')),
      peerCreate: attempt(() => rustNet.createServer({ maxConnectionsPerAddress: 5 })),
      rateListen: attempt(listenWith({ acceptRatePerAddress: { rate: 1 } })),
      pauseCreate: attempt(() => rustNet.createServer({ pauseAcceptAfter: 50 })),
      statsNull: rustNet.serverStats(rustNet.createServer()) === null,
    };
    console.log(JSON.stringify(out));
    // Servers closed before their host lookup finished still listen after it.
    process.exit(0);`]);
  const refused = (option) => ['ERR_RUST_NET_NATIVE_MISSING', true, option];
  assert.deepStrictEqual(result, {
    proxyCreate: refused('proxyProtocol'),
    proxyNew: refused('proxyProtocol'),
    proxyListen: refused('proxyProtocol'),
    shareCreate: refused('shareAcrossThreads'),
    shareListen: refused('shareAcrossThreads'),
    proxyOff: 'ok',
    handoverCreate: refused('handover'),
    handoverListen: refused('handover'),
    handoverOff: 'ok',
    acceptPlacement: 'ok',
    placementCreate: 'ok',
    blockList: nodeHasBlockList ? 'ok' : refused('blockList'),
    blockListNode: 'ok',
    reusePort: nodeHasReusePort ? 'ok' : refused('reusePort'),
    reusePortNode: 'ok',
    plainPort: 'ok',
    peerCreate: refused('maxConnectionsPerAddress'),
    rateListen: refused('acceptRatePerAddress'),
    pauseCreate: refused('pauseAcceptAfter'),
    statsNull: true,
  });
});

test('rust-net/register without a native binary: one warning, servers keep working on node:net', () => {
  const { result } = nodeJson(['-r', 'rust-net/register', '-e', `${warnings}${acceptThreads}
    const net = require('net');
    const http = require('http');
    const rustNet = require('rust-net');
    let refused = null;
    try { net.createServer({ proxyProtocol: true }); } catch (err) { refused = err.code; }
    const server = http.createServer((req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1', () => {
      http.get({ port: server.address().port, host: '127.0.0.1', agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => server.close(() => console.log(JSON.stringify({
          body,
          refused,
          createServer: net.createServer === rustNet.createServer,
          instanceofNetServer: server instanceof net.Server,
          isRustServer: rustNet.isRustServer(server),
          acceptThreads: acceptThreads(),
          warned,
        }))));
      });
    });`]);
  assert.deepStrictEqual(result, {
    body: 'ok',
    refused: 'ERR_RUST_NET_NATIVE_MISSING',
    createServer: true,
    instanceofNetServer: true,
    isRustServer: false,
    acceptThreads: 0,
    warned: ['RUST_NET_NATIVE_MISSING'],
  });
});
