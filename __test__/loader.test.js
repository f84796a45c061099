'use strict';

// Which binary lib/native.js loads, and the error when none loads: every
// failed attempt is chained through `cause`, the last attempt first; a
// per-platform package (rust-net-<platform>, the napi-rs registry layout)
// loads only when its version is rust-net's, and the install script
// (scripts/build.js) takes it as its prebuilt binary only then. Each case
// runs in a child process inside a temporary project whose
// node_modules/rust-net is a copy of this package's JavaScript (and install
// script) without any native binary of its own.

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { platformTriple } = require('../lib/triple');
const { testHooksBinary } = require('../scripts/test-build');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const triple = platformTriple();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-loader-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// A project with node_modules/rust-net (JavaScript only) and, given a
// version, node_modules/rust-net-<platform> of that version carrying a
// binary that loads here (the test build npm test uses).
function project(name, platformPackageVersion = null) {
  const dir = path.join(tmp, name);
  const copy = path.join(dir, 'node_modules', 'rust-net');
  fs.mkdirSync(path.join(copy, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }));
  for (const file of ['package.json', 'index.js', 'scripts/build.js']) {
    fs.cpSync(path.join(root, file), path.join(copy, file));
  }
  for (const file of fs.readdirSync(path.join(root, 'lib'))) {
    if (file.endsWith('.js')) fs.cpSync(path.join(root, 'lib', file), path.join(copy, 'lib', file));
  }
  let binary = null;
  if (platformPackageVersion !== null) {
    const sub = path.join(dir, 'node_modules', `${pkg.name}-${triple}`);
    fs.mkdirSync(sub);
    binary = path.join(sub, `${pkg.napi.binaryName}.${triple}.node`);
    fs.copyFileSync(testHooksBinary(), binary);
    fs.writeFileSync(path.join(sub, 'package.json'), JSON.stringify({
      name: `${pkg.name}-${triple}`, version: platformPackageVersion, main: path.basename(binary),
    }));
  }
  return { dir, binary };
}

// What loading rust-net does in `dir`: whether the native part loaded, the
// .node files mapped, the warnings, and (with RUST_NET_REQUIRE_NATIVE=1)
// the thrown error with its cause chain.
const PROBE = `
  const warned = [];
  process.on('warning', (w) => warned.push([w.code, w.message]));
  let native = null;
  let error = null;
  try {
    native = require('rust-net').native;
  } catch (err) {
    error = { code: err.code, message: err.message, chain: [] };
    for (let e = err.cause; e !== undefined; e = e.cause) {
      error.chain.push({ isError: e instanceof Error, code: e.code, message: e.message });
    }
  }
  setImmediate(() => {
    const mapped = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n')
      .map((line) => line.split(/\\s+/).slice(5).join(' ')).filter((f) => f.endsWith('.node'));
    console.log(JSON.stringify({ native, error, warned, mapped: [...new Set(mapped)] }));
  });`;

function probe(dir, env = {}) {
  const childEnv = { ...process.env };
  delete childEnv.RUST_NET_REQUIRE_NATIVE;
  delete childEnv.RUST_NET_NATIVE_LIBRARY_PATH; // npm test's test build: the copy has none
  Object.assign(childEnv, env);
  const r = spawnSync(process.execPath, ['-e', PROBE], { cwd: dir, env: childEnv, encoding: 'utf8', timeout: 20000 });
  assert.strictEqual(r.status, 0, `child failed (${r.signal || r.status}):\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

const copyOf = (dir) => path.join(dir, 'node_modules', 'rust-net');
const MISSING = 'MODULE_NOT_FOUND';

test('a failed load chains every attempt through cause, the last attempt first', () => {
  const { dir } = project('nothing');
  const { native, error, mapped } = probe(dir, { RUST_NET_REQUIRE_NATIVE: '1' });
  assert.strictEqual(native, null);
  assert.deepStrictEqual(mapped, []);
  assert.strictEqual(error.code, 'ERR_RUST_NET_NATIVE_MISSING');
  const tried = [
    path.join(copyOf(dir), `rust-net.${triple}.node`),
    path.join(copyOf(dir), 'prebuilds', `rust-net.${triple}.node`),
    `rust-net-${triple}`,
  ];
  assert.deepStrictEqual(error.chain.map((e) => [e.isError, e.code, e.message.split(':')[0]]),
                         tried.reverse().map((candidate) => [true, MISSING, candidate]));
  // The message still lists each attempt, in the order tried, as the chain says them.
  for (const attempt of error.chain) assert.ok(error.message.includes(`\n  ${attempt.message}\n`), attempt.message);
  assert.ok(error.message.indexOf(error.chain[2].message) < error.message.indexOf(error.chain[0].message));
});

test('RUST_NET_NATIVE_LIBRARY_PATH is the only attempt, and the whole chain', () => {
  const { dir } = project('forced');
  const forced = path.join(tmp, 'no-such-build.node');
  const { error } = probe(dir, { RUST_NET_REQUIRE_NATIVE: '1', RUST_NET_NATIVE_LIBRARY_PATH: forced });
  assert.strictEqual(error.code, 'ERR_RUST_NET_NATIVE_MISSING');
  assert.deepStrictEqual(error.chain.map((e) => [e.code, e.message.split(':')[0]]), [[MISSING, forced]]);
});

test('a per-platform package of rust-net\'s own version loads', () => {
  const { dir, binary } = project('same-version', pkg.version);
  const result = probe(dir);
  assert.deepStrictEqual(result, { native: true, error: null, warned: [], mapped: [fs.realpathSync(binary)] });
});

test('a per-platform package of another version is refused, before its binary is loaded', () => {
  const other = '0.0.1-other';
  assert.notStrictEqual(other, pkg.version);
  const { dir } = project('other-version', other);

  // By default: rust-net warns and serves through node:net, saying why.
  const fallback = probe(dir);
  assert.strictEqual(fallback.native, false);
  assert.deepStrictEqual(fallback.mapped, [], 'the refused binary was loaded');
  assert.deepStrictEqual(fallback.warned.map(([code]) => code), ['RUST_NET_NATIVE_MISSING']);
  const refusal = `rust-net-${triple} is version ${other}, but rust-net is version ${pkg.version}`;
  assert.ok(fallback.warned[0][1].includes(`\n  rust-net-${triple}: ${refusal}`), fallback.warned[0][1]);

  // Required: thrown, the refusal first in the chain with its own code.
  const { error, mapped } = probe(dir, { RUST_NET_REQUIRE_NATIVE: '1' });
  assert.deepStrictEqual(mapped, []);
  assert.strictEqual(error.code, 'ERR_RUST_NET_NATIVE_MISSING');
  assert.deepStrictEqual(error.chain.map((e) => e.code), ['ERR_RUST_NET_NATIVE_VERSION', MISSING, MISSING]);
  assert.ok(error.chain[0].message.startsWith(`rust-net-${triple}: ${refusal}: its binary does not match`),
            error.chain[0].message);
  assert.match(error.chain[0].message, new RegExp(`npm install rust-net@${pkg.version.replace(/\./g, '\\.')} `));

  // And an option only the native listener has names the refusal as the reason.
  const r = spawnSync(process.execPath, ['-e', `
    try { require('rust-net').createServer({ proxyProtocol: true }); } catch (err) { console.log(err.message); }`],
  { cwd: dir, env: { ...process.env, RUST_NET_NATIVE_LIBRARY_PATH: '' }, encoding: 'utf8', timeout: 20000 });
  assert.ok(r.stdout.includes(`(${refusal}`), r.stdout);
});

test('the install script takes a per-platform package as its prebuilt binary only at rust-net\'s own version', () => {
  // Its environment: no cargo on PATH, so a refused package leaves it nothing to build with.
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('npm_') || key.startsWith('RUST_NET_')) delete env[key];
  env.PATH = process.env.PATH.split(path.delimiter)
    .filter((dir) => dir && !fs.existsSync(path.join(dir, 'cargo'))).join(path.delimiter);
  const install = (dir) => spawnSync(process.execPath, [path.join(copyOf(dir), 'scripts', 'build.js')],
                                     { cwd: copyOf(dir), env, encoding: 'utf8', timeout: 20000 });

  const same = install(project('install-same-version', pkg.version).dir);
  assert.strictEqual(same.status, 0, same.stderr);
  assert.match(same.stdout, new RegExp(`rust-net: using the prebuilt binary rust-net-${triple}\n`));

  const other = install(project('install-other-version', '0.0.1-other').dir);
  assert.strictEqual(other.status, 0, other.stderr);
  assert.doesNotMatch(other.stdout, /using the prebuilt binary/);
  assert.match(other.stdout, new RegExp(`rust-net: building the native listener for ${triple} from source`));
  assert.match(other.stderr, /cargo was not found on PATH/);
  assert.match(other.stderr, /rust-net is installed WITHOUT its native listener/);
});
