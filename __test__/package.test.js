'use strict';

// The source package: plain `npm pack` (no prebuilds/; `npm run pack` adds
// them, see packed.test.js), then `npm install <tarball>` into a fresh
// project, which builds the addon from source with cargo, as it would on a
// platform with no prebuilt binary (macOS); then rust-net used from CommonJS,
// ES modules and TypeScript.
//
// The cargo build goes to target/package-test in this repository
// (CARGO_TARGET_DIR), so only the first run compiles the dependencies
// (about 1.5 min on 2 cores); later runs rebuild just the crate.

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { platformTriple } = require('../lib/triple');
const { testHooksBinary } = require('../scripts/test-build');
const { elfInfo } = require('../scripts/elf');

const root = path.join(__dirname, '..');
const triple = platformTriple();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-package-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const app = path.join(tmp, 'app');
const installed = path.join(app, 'node_modules', 'rust-net');
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });

// The environment a user has: without the npm_* settings of an enclosing
// `npm test`, and without its pointer to the test build of the addon.
function userEnv() {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('npm_') && key !== 'RUST_NET_NATIVE_LIBRARY_PATH') env[key] = value;
  }
  return env;
}

function npm(args, cwd, extraEnv = {}, timeout = 120000) {
  const env = { ...userEnv(), ...extraEnv };
  return spawnSync('npm', args, { cwd, env, encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
}

function check(r, what) {
  assert.strictEqual(r.status, 0, `${what} failed (${r.signal || r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

function node(args, cwd = app) {
  return check(spawnSync(process.execPath, args, { cwd, env: userEnv(), encoding: 'utf8', timeout: 30000 }),
               `node ${args.join(' ')}`);
}

function lastJson(stdout) {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

// napi-rs's name for a Rust target triple ("x86_64-unknown-linux-gnu" →
// "linux-x64-gnu"), for the targets this package can have.
function napiPlatform(target) {
  const [cpu, , os, abi] = target.split('-');
  const arch = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }[cpu] ?? cpu;
  if (os === 'darwin') return `darwin-${arch}`;
  if (os === 'windows') return `win32-${arch}-${abi}`;
  return `${os}-${arch}${abi ? `-${abi}` : ''}`;
}

test('the napi-rs per-platform packages: npm/<platform>/ for each napi.targets entry', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const platforms = pkg.napi.targets.map(napiPlatform);
  assert.ok(platforms.includes('linux-x64-gnu'), platforms.join());
  assert.deepStrictEqual(fs.readdirSync(path.join(root, 'npm')).sort(), [...platforms].sort());
  for (const platform of platforms) {
    const sub = JSON.parse(fs.readFileSync(path.join(root, 'npm', platform, 'package.json'), 'utf8'));
    assert.strictEqual(sub.name, `${pkg.name}-${platform}`);
    assert.strictEqual(sub.version, pkg.version);
    assert.strictEqual(sub.main, `${pkg.napi.binaryName}.${platform}.node`);
    assert.deepStrictEqual(sub.files, [sub.main]);
  }
  // Unpublished platform packages stay out of optionalDependencies (napi
  // pre-publish adds them when publishing): npm 11's `npm ci` fails on a
  // lockfile without a missing optional dependency. See docs/publishing.md;
  // drop this check once the platform packages are published.
  for (const platform of platforms) {
    assert.strictEqual(pkg.optionalDependencies?.[`${pkg.name}-${platform}`], undefined,
                       `${pkg.name}-${platform} is in optionalDependencies but not published`);
  }
});

let tarball = null;
let installOutput = null;

test('npm pack: the tarball holds only what users need', { timeout: 120000 }, () => {
  const r = check(npm(['pack', '--json', '--pack-destination', tmp], root), 'npm pack');
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')));
  tarball = path.join(tmp, info.filename);
  assert.ok(fs.existsSync(tarball), tarball);
  const files = info.files.map((f) => f.path).sort();

  const listed = (dir, ext) => fs.readdirSync(path.join(root, dir), { recursive: true })
    .filter((f) => f.endsWith(ext)).map((f) => `${dir}/${f}`);
  const expected = [
    'Cargo.lock', 'Cargo.toml', 'LICENSE', 'README.md', 'build.rs', 'index.d.ts', 'index.js', 'index.mjs',
    'package.json', 'register.d.ts', 'register.js', 'scripts/build.js',
    ...listed('lib', '.js'), ...listed('src', '.rs'),
    'crates/admission/Cargo.toml', ...listed('crates/admission/src', '.rs'),
  ].sort();
  assert.deepStrictEqual(files, expected);
});

test('npm install <tarball> into a fresh project builds the addon from source', { timeout: 360000 }, () => {
  assert.ok(tarball, 'no tarball (npm pack failed)');
  fs.mkdirSync(app, { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'),
                   JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2));
  const r = check(npm(['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts'], app,
                      { CARGO_TARGET_DIR: path.join(root, 'target', 'package-test') }, 330000),
                  'npm install <tarball>');
  installOutput = `${r.stdout}\n${r.stderr}`;

  // Built here, with cargo (the napi CLI is a devDependency, so absent),
  // saying what it does.
  assert.match(installOutput, new RegExp(`rust-net: building the native listener for ${triple} from source`));
  assert.match(installOutput, /rust-net: running cargo build --release --locked/);
  assert.match(installOutput, /rust-net: done in \d+ s/);
  assert.match(installOutput, new RegExp(`rust-net: built rust-net\\.${triple}\\.node`));
  assert.ok(fs.existsSync(path.join(installed, `rust-net.${triple}.node`)));
  // No prebuilt package was involved (they are not published yet).
  assert.ok(!fs.existsSync(path.join(app, 'node_modules', `rust-net-${triple}`)));
  assert.ok(!fs.existsSync(path.join(installed, '.git')));
});

test('the installed package works from CommonJS', { timeout: 60000 }, () => {
  assert.ok(installOutput, 'not installed');
  fs.writeFileSync(path.join(app, 'main.cjs'), `
    const net = require('net');
    const { createServer, isRustServer, native } = require('rust-net');
    const server = createServer((socket) => socket.pipe(socket));
    server.listen(0, '127.0.0.1', () => {
      const inRust = isRustServer(server);
      const c = net.connect(server.address().port, '127.0.0.1', () => c.end('ping'));
      let echoed = '';
      c.on('data', (d) => { echoed += d; });
      c.on('close', () => server.close(() => console.log(JSON.stringify({
        echoed,
        isNetServer: server instanceof net.Server,
        isRustServer: inRust,
        native,
        resolved: require.resolve('rust-net'),
      }))));
    });`);
  const result = lastJson(node(['main.cjs']).stdout);
  assert.deepStrictEqual(result, {
    echoed: 'ping', isNetServer: true, isRustServer: true, native: true,
    resolved: fs.realpathSync(path.join(installed, 'index.js')),
  });
});

// The test hooks of src/test_hooks.rs, which only the test build exports.
const TEST_HOOKS = ['getsockoptForTests', 'injectAcceptPanic', 'inspectSocket', 'panicForTests'];

test('the release binary an install builds exports no test hooks and holds none of their code', { timeout: 60000 }, () => {
  assert.ok(installOutput, 'not installed');
  const exportsOf = (env) => lastJson(check(spawnSync(process.execPath, ['-e', `
    const native = require(${JSON.stringify(path.join(installed, 'lib', 'native.js'))});
    const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
    console.log(JSON.stringify({ names: Object.keys(native).sort(),
                                 loaded: (maps.match(/\\S+\\.node$/m) ?? [null])[0] }));`],
  { cwd: app, env, encoding: 'utf8', timeout: 30000 }), 'node -e').stdout);
  const release = exportsOf(userEnv());
  assert.strictEqual(release.loaded, fs.realpathSync(path.join(installed, `rust-net.${triple}.node`)));
  assert.deepStrictEqual(release.names.filter((n) => TEST_HOOKS.includes(n)), []);
  // The same names are what the test build adds, so this cannot pass by a rename.
  const hooksBuild = testHooksBinary();
  const test = exportsOf({ ...userEnv(), RUST_NET_NATIVE_LIBRARY_PATH: hooksBuild });
  assert.deepStrictEqual(test.names.filter((n) => !release.names.includes(n)), TEST_HOOKS);
  // Nor is their code there: the strings the test build carries for them.
  const releaseBinary = fs.readFileSync(path.join(installed, `rust-net.${triple}.node`));
  const testBinary = fs.readFileSync(hooksBuild);
  for (const needle of ['panic_for_tests', 'injectAcceptPanic', 'inspectSocket', 'getsockoptForTests']) {
    assert.notStrictEqual(testBinary.indexOf(needle), -1, `the test build lacks ${needle}`);
    assert.strictEqual(releaseBinary.indexOf(needle), -1, needle);
  }
});

test('the release binary an install builds is stripped (Cargo.toml\'s release profile), the test build not', { timeout: 30000 }, () => {
  assert.ok(installOutput, 'not installed');
  const release = elfInfo(path.join(installed, `rust-net.${triple}.node`));
  assert.deepStrictEqual([release.elf, release.stripped], [true, true]);
  // The same check tells a binary with its symbol table (the test build
  // keeps it: strip = "debuginfo"), so it cannot pass by reading nothing.
  assert.deepStrictEqual(elfInfo(testHooksBinary()).stripped, false);
});

test('the installed package works from ES modules, and rust-net/register with -r and --import', { timeout: 60000 }, () => {
  assert.ok(installOutput, 'not installed');
  fs.writeFileSync(path.join(app, 'main.mjs'), `
    import net from 'node:net';
    import rustNet, { createServer, Server } from 'rust-net';
    const server = new Server((socket) => socket.end('hello'));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const got = await new Promise((resolve) => {
      let data = '';
      net.connect(server.address().port, '127.0.0.1')
        .on('data', (d) => { data += d; }).on('end', () => resolve(data));
    });
    await new Promise((resolve) => server.close(resolve));
    console.log(JSON.stringify({
      got,
      defaultIsModule: rustNet.createServer === createServer && rustNet.Server === Server,
      isNetServer: server instanceof net.Server,
    }));`);
  assert.deepStrictEqual(lastJson(node(['main.mjs']).stdout),
                         { got: 'hello', defaultIsModule: true, isNetServer: true });

  const probe = `const net = require('net');
    console.log(JSON.stringify(net.createServer === require('rust-net').createServer));`;
  for (const flag of ['-r', '--import']) {
    assert.strictEqual(lastJson(node([flag, 'rust-net/register', '-e', probe]).stdout), true, flag);
  }
});

test('the installed package type-checks and runs from TypeScript', { timeout: 180000 }, () => {
  assert.ok(installOutput, 'not installed');
  const dir = path.join(app, 'ts');
  fs.mkdirSync(dir);
  for (const file of ['usage.mts', 'usage.cts']) {
    fs.cpSync(path.join(__dirname, 'fixtures', 'typescript', file), path.join(dir, file));
  }
  fs.writeFileSync(path.join(dir, 'main.mts'), `
    import * as net from 'node:net';
    import { createServer, type Server } from 'rust-net';
    const server: Server = createServer((socket: net.Socket) => socket.end('typed'));
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      const address = server.address() as net.AddressInfo;
      let data = '';
      net.connect(address.port, '127.0.0.1')
        .on('data', (d: Buffer) => { data += d; })
        .on('end', () => server.close(() => console.log(JSON.stringify({ data }))));
    });
  `);
  // @types/node comes from this repository's devDependencies.
  const compilerOptions = {
    module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022'],
    types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
    strict: true, outDir: 'out',
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions, files: ['usage.mts', 'usage.cts', 'main.mts'],
  }, null, 2));
  const tscRun = (args) => spawnSync(process.execPath, [tsc, ...args],
                                     { cwd: dir, encoding: 'utf8', timeout: 120000 });

  // nodenext (ESM and CJS files), compiled to JavaScript and run.
  check(tscRun(['-p', '.', '--strict']), 'tsc (nodenext)');
  assert.deepStrictEqual(lastJson(node(['out/main.mjs'], dir).stdout), { data: 'typed' });

  // The classic node10 resolution, through the "types" field and the
  // top-level register.d.ts (deprecated in TypeScript 6, still common).
  fs.writeFileSync(path.join(dir, 'tsconfig.node10.json'), JSON.stringify({
    compilerOptions: {
      ...compilerOptions, module: 'commonjs', moduleResolution: 'node10', ignoreDeprecations: '6.0',
      noEmit: true,
    },
    files: ['usage.cts'],
  }, null, 2));
  check(tscRun(['-p', 'tsconfig.node10.json', '--strict']), 'tsc (node10)');
});

// PATH without any directory that holds cargo.
function pathWithoutCargo() {
  return process.env.PATH.split(path.delimiter)
    .filter((dir) => dir && !fs.existsSync(path.join(dir, 'cargo'))).join(path.delimiter);
}

test('without a Rust toolchain the install succeeds without the binary, and the fix it prints works', { timeout: 360000 }, () => {
  assert.ok(tarball, 'no tarball (npm pack failed)');
  const noCargo = pathWithoutCargo();
  const dir = path.join(tmp, 'no-cargo');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'),
                   JSON.stringify({ name: 'no-cargo', version: '1.0.0', private: true }, null, 2));

  // With RUST_NET_REQUIRE_NATIVE=1 the install fails (and npm rolls it back).
  const strict = npm(['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts'], dir,
                     { PATH: noCargo, RUST_NET_REQUIRE_NATIVE: '1' });
  assert.notStrictEqual(strict.status, 0, 'the install succeeded without a binary under RUST_NET_REQUIRE_NATIVE=1');
  assert.match(`${strict.stdout}\n${strict.stderr}`, /RUST_NET_REQUIRE_NATIVE is set, so the install fails/);

  const r = check(npm(['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts'], dir,
                      { PATH: noCargo }), 'npm install <tarball> without cargo');
  const output = `${r.stdout}\n${r.stderr}`;
  assert.match(output, /rust-net: could not build the native listener for .*: cargo was not found on PATH/);
  assert.match(output, /installed WITHOUT its native listener/);
  const fix = output.match(/then run `(npm [^`]+)` in this project/)?.[1];
  assert.strictEqual(fix, 'npm rebuild rust-net --foreground-scripts');

  const probe = `const rustNet = require('rust-net');
    const server = rustNet.createServer().listen(0, '127.0.0.1', () => {
      console.log(JSON.stringify({ native: rustNet.native, inRust: rustNet.isRustServer(server) }));
      server.close();
    });`;
  const before = node(['-e', probe], dir);
  assert.deepStrictEqual(lastJson(before.stdout), { native: false, inRust: false });
  assert.match(before.stderr, /\[RUST_NET_NATIVE_MISSING\]/);
  assert.match(before.stderr, /npm rebuild rust-net --foreground-scripts/);

  // The printed fix, run with cargo back on PATH.
  check(npm(fix.split(' ').slice(1), dir,
            { CARGO_TARGET_DIR: path.join(root, 'target', 'package-test') }, 330000), fix);
  const after = node(['-e', probe], dir);
  assert.deepStrictEqual(lastJson(after.stdout), { native: true, inRust: true });
  assert.strictEqual(after.stderr, '');
});
