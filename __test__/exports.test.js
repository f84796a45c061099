'use strict';

// Loading rust-net from another project, through the package's `exports`:
// require() and ESM imports as a drop-in for node:net, and the
// rust-net/register preload (-r and --import). Without a native binary:
// __test__/fallback.test.js.
// Each case runs in a child process whose working directory is a temporary
// project with node_modules/rust-net pointing at this package.

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { platformTriple } = require('../lib/triple');

const root = path.join(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-exports-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function makeProject(name, linkPackage) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }));
  linkPackage(path.join(dir, 'node_modules', 'rust-net'));
  return dir;
}

// The package as installed (a symlink, as `npm link` or a workspace makes).
const project = makeProject('consumer', (dest) => fs.symlinkSync(root, dest, 'dir'));

function node(args, cwd = project) {
  return spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 20000 });
}

// Runs node and returns the JSON it printed last.
function nodeJson(args, cwd) {
  const r = node(args, cwd);
  assert.strictEqual(r.status, 0, `child failed (${r.signal || r.status}):\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

// A server from the code under test must listen, accept and close.
const exercise = `
  function exercise(server, done) {
    server.listen(0, '127.0.0.1', () => {
      const c = require('net').connect(server.address().port, '127.0.0.1');
      server.once('connection', (socket) => {
        socket.destroy();
        c.destroy();
        server.close(() => done(server instanceof require('net').Server));
      });
    });
  }
`;

test('require(\'rust-net\') is node:net with Server and createServer replaced, and the server works', () => {
  const result = nodeJson(['-e', `${exercise}
    const net = require('net');
    const rustNet = require('rust-net');
    const own = Reflect.ownKeys(net).map(String);
    exercise(rustNet.createServer(), (isNetServer) => console.log(JSON.stringify({
      keys: Reflect.ownKeys(rustNet).map(String),
      own,
      // Everything but the server is node:net's own, the very same objects.
      sameAsNet: own.filter((k) => rustNet[k] === net[k]),
      replaced: own.filter((k) => rustNet[k] !== net[k]),
      native: rustNet.native,
      isNetServer,
      resolved: require.resolve('rust-net'),
    })));`]);
  assert.deepStrictEqual(result.keys, [...result.own, 'isRustServer', 'proxyHeader', 'admissionStats', 'threadShareStats', 'serverStats', 'native']);
  assert.deepStrictEqual(result.replaced.sort(), ['Server', 'createServer']);
  assert.deepStrictEqual(result.sameAsNet.sort(),
                         result.own.filter((k) => k !== 'Server' && k !== 'createServer').sort());
  for (const name of ['connect', 'createConnection', 'Socket', 'Stream', 'isIP', 'isIPv4', 'isIPv6',
                      'BlockList', 'SocketAddress']) {
    assert.ok(result.sameAsNet.includes(name), name);
  }
  assert.strictEqual(result.native, true);
  assert.strictEqual(result.isNetServer, true);
  assert.strictEqual(result.resolved, path.join(root, 'index.js'));
});

test('a client program written for node:net runs unchanged on require(\'rust-net\')', () => {
  const program = (mod) => `
    const net = require(${JSON.stringify(mod)});
    const server = net.createServer((socket) => socket.end(String(net.isIP(socket.remoteAddress))));
    server.listen(0, '127.0.0.1', () => {
      const c = net.createConnection({ port: server.address().port, host: '127.0.0.1' });
      let data = '';
      c.on('data', (d) => { data += d; });
      c.on('end', () => server.close(() => console.log(JSON.stringify({
        data,
        socket: c instanceof net.Socket && c instanceof net.Stream,
        blocked: new net.BlockList().check('127.0.0.1'),
        family: typeof net.getDefaultAutoSelectFamily === 'function' ? typeof net.getDefaultAutoSelectFamily() : 'n/a',
      }))));
    });`;
  const expected = { data: '4', socket: true, blocked: false, family: 'boolean' };
  assert.deepStrictEqual(nodeJson(['-e', program('net')]), expected);
  assert.deepStrictEqual(nodeJson(['-e', program('rust-net')]), expected);
});

test('import from \'rust-net\': node:net\'s named exports, Server and createServer replaced; default is require\'s', () => {
  const result = nodeJson(['--input-type=module', '-e', `
    import rustNet, { createServer, Server, connect, isIP, isRustServer, native } from 'rust-net';
    import * as ns from 'rust-net';
    import * as nodeNs from 'node:net';
    import { createRequire } from 'node:module';
    import net from 'node:net';
    const require = createRequire(import.meta.url);
    const server = new Server();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const inRust = isRustServer(server);
    await new Promise((resolve) => server.close(resolve));
    const names = Object.keys(nodeNs).filter((k) => k !== 'default');
    console.log(JSON.stringify({
      sameAsRequire: rustNet === require('rust-net'),
      named: createServer === rustNet.createServer && Server === rustNet.Server &&
        isRustServer === rustNet.isRustServer && native === true,
      nodeOwn: connect === net.connect && isIP === net.isIP,
      namespace: Object.keys(ns).sort(),
      expected: [...names, 'admissionStats', 'default', 'isRustServer', 'native', 'proxyHeader', 'serverStats', 'threadShareStats'].sort(),
      differ: names.filter((k) => ns[k] !== nodeNs[k]).sort(),
      inRust,
      isNetServer: createServer() instanceof net.Server && server instanceof net.Server,
    }));`]);
  const { namespace, expected, ...rest } = result;
  assert.deepStrictEqual(namespace, expected);
  assert.deepStrictEqual(rest, {
    sameAsRequire: true,
    named: true,
    nodeOwn: true,
    differ: ['Server', 'createServer'],
    inRust: true,
    isNetServer: true,
  });
});

test('the exports map: rust-net/package.json is exported, internal files are not', () => {
  const result = nodeJson(['-e', `
    let deep;
    try { require('rust-net/lib/server'); } catch (err) { deep = err.code; }
    console.log(JSON.stringify({ name: require('rust-net/package.json').name, deep }));`]);
  assert.deepStrictEqual(result, { name: 'rust-net', deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
});

for (const [flag, label] of [['-r', 'CommonJS'], ['--import', 'ES modules']]) {
  test(`node ${flag} rust-net/register (${label}) from another project`, () => {
    const script = `${exercise}
      const net = require('net');
      const rustNet = require('rust-net');
      exercise(net.createServer(), (isNetServer) => console.log(JSON.stringify({
        createServer: net.createServer === rustNet.createServer,
        Server: net.Server === rustNet.Server,
        isNetServer,
      })));`;
    const result = nodeJson([flag, 'rust-net/register', '-e', script]);
    assert.deepStrictEqual(result, { createServer: true, Server: true, isNetServer: true });
  });
}

test('import \'rust-net/register\' in an ES module replaces node:net\'s named exports', () => {
  const result = nodeJson(['--input-type=module', '-e', `
    import { createServer } from 'rust-net/register';
    import * as net from 'node:net';
    console.log(JSON.stringify({ same: net.createServer === createServer }));`]);
  assert.deepStrictEqual(result, { same: true });
});

test('the C library is detected as the diagnostic report says, without building a report',
     { skip: process.platform !== 'linux' && 'the C library is only told apart on linux' }, () => {
  const result = nodeJson(['-e', `
    const before = new Set(process.moduleLoadList);
    const { platformTriple } = require(${JSON.stringify(path.join(root, 'lib', 'triple.js'))});
    const triple = platformTriple();
    require('rust-net');
    const loaded = process.moduleLoadList.filter((m) => !before.has(m));
    // Only now, for comparison: what napi-rs templates ask.
    const glibc = Boolean(process.report.getReport().header.glibcVersionRuntime);
    console.log(JSON.stringify({ triple, glibc, report: loaded.filter((m) => /report/.test(m)) }));`]);
  assert.strictEqual(result.triple, `linux-${process.arch}-${result.glibc ? 'gnu' : 'musl'}`);
  // getReport() costs ~8 ms and ~1 MiB of resident memory for good (bench/JOURNAL.md, P5).
  assert.deepStrictEqual(result.report, []);
});
