'use strict';

// Loading rust-net from another project, through the package's `exports`:
// require(), ESM named and default imports, the rust-net/register preload
// (-r and --import), and the error when the native binary is missing.
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

// A copy of the package's JavaScript without any native binary.
const broken = makeProject('no-binary', (dest) => {
  for (const file of ['package.json', 'index.js', 'register.js']) {
    fs.cpSync(path.join(root, file), path.join(dest, file));
  }
  fs.mkdirSync(path.join(dest, 'lib'));
  for (const file of fs.readdirSync(path.join(root, 'lib'))) {
    if (file.endsWith('.js')) fs.cpSync(path.join(root, 'lib', file), path.join(dest, 'lib', file));
  }
});

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

test('require(\'rust-net\') gives createServer and Server, and the server works', () => {
  const result = nodeJson(['-e', `${exercise}
    const rustNet = require('rust-net');
    exercise(rustNet.createServer(), (isNetServer) => console.log(JSON.stringify({
      keys: Object.keys(rustNet).sort(),
      isNetServer,
      resolved: require.resolve('rust-net'),
    })));`]);
  assert.deepStrictEqual(result, {
    keys: ['Server', 'createServer'],
    isNetServer: true,
    resolved: path.join(root, 'index.js'),
  });
});

test('import { createServer, Server } from \'rust-net\' and import rustNet from \'rust-net\'', () => {
  const result = nodeJson(['--input-type=module', '-e', `
    import rustNet, { createServer, Server } from 'rust-net';
    import * as ns from 'rust-net';
    import { createRequire } from 'node:module';
    import net from 'node:net';
    const require = createRequire(import.meta.url);
    const server = new Server();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    await new Promise((resolve) => server.close(resolve));
    console.log(JSON.stringify({
      sameAsRequire: rustNet === require('rust-net'),
      named: createServer === rustNet.createServer && Server === rustNet.Server,
      // Node 23+ also exports the whole object as 'module.exports'.
      namespace: Object.keys(ns).filter((k) => k !== 'module.exports').sort(),
      isNetServer: createServer() instanceof net.Server && server instanceof net.Server,
    }));`]);
  assert.deepStrictEqual(result, {
    sameAsRequire: true,
    named: true,
    namespace: ['Server', 'createServer', 'default'],
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

test('without a native binary, loading fails with an error naming the platform and the fix', () => {
  const triple = platformTriple();
  if (process.platform === 'linux' && process.arch === 'x64') {
    assert.ok(['linux-x64-gnu', 'linux-x64-musl'].includes(triple), triple);
  }
  for (const args of [
    ['-e', 'require(\'rust-net\')'],
    ['--input-type=module', '-e', 'import \'rust-net\''],
    ['-r', 'rust-net/register', '-e', ''],
  ]) {
    const r = node(args, broken);
    assert.notStrictEqual(r.status, 0, `${args.join(' ')} loaded without a binary`);
    assert.match(r.stderr, new RegExp(`no native binary could be loaded for ${triple} \\(Node ${process.version}`));
    assert.match(r.stderr, /npm rebuild rust-net/);
    assert.match(r.stderr, new RegExp(`rust-net\\.${triple}\\.node`));
    assert.match(r.stderr, new RegExp(`rust-net-${triple}`));
    assert.match(r.stderr, /ERR_RUST_NET_NATIVE_MISSING/);
  }
});

test('the C library is detected as the diagnostic report says, without building a report', () => {
  if (process.platform !== 'linux') return;
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
  // getReport() costs ~8 ms and ~1 MiB of resident memory for good (bench/RESULTS.md, P5).
  assert.deepStrictEqual(result.report, []);
});
