'use strict';

// The package `npm run pack` makes, as a user without Rust gets it: the
// tarball with the four linux prebuilt binaries, installed into a fresh
// project by the README's own command with no cargo on PATH and no registry
// (the package has no dependencies), must load its native listener and
// serve in Rust; and the installed package must pick the binary by CPU and
// C library.
//
// The binaries come from `npm run build:all` (npm/<platform>/, which needs
// the cross toolchain of scripts/setup-cross.sh). Where they are missing the
// tests skip and say so; CI builds them and runs this file with
// RUST_NET_REQUIRE_PREBUILDS=1, under which missing binaries fail instead.

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { platformTriple } = require('../lib/triple');
const { elfInfo } = require('../scripts/elf');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const PLATFORMS = ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'linux-arm64-musl'];
const ELF_MACHINE = { x64: 62, arm64: 183 };
const built = (platform) => path.join(root, 'npm', platform, `${pkg.napi.binaryName}.${platform}.node`);
const missing = PLATFORMS.filter((platform) => !fs.existsSync(built(platform)));
const required = /^(1|true)$/i.test(process.env.RUST_NET_REQUIRE_PREBUILDS ?? '');
const skip = missing.length && !required ?
  `no prebuilt ${missing.join(', ')} (npm run build:all builds them)` : false;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-packed-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const app = path.join(tmp, 'app');
const installed = path.join(app, 'node_modules', 'rust-net');

// PATH without any directory that holds cargo, and the environment as a
// user has it: without the npm_* settings of an enclosing `npm test` and its
// pointer to the test build of the addon.
function userEnv(extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('npm_') && key !== 'RUST_NET_NATIVE_LIBRARY_PATH') env[key] = value;
  }
  env.PATH = process.env.PATH.split(path.delimiter)
    .filter((dir) => dir && !fs.existsSync(path.join(dir, 'cargo'))).join(path.delimiter);
  delete env.CARGO_HOME;
  delete env.RUSTUP_HOME;
  return { ...env, ...extra };
}

function check(r, what) {
  assert.strictEqual(r.status, 0, `${what} failed (${r.signal || r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

function lastJson(stdout) {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

// The program the user runs: one connection served, and which binary served
// it (the addon file this process mapped).
const PROGRAM = `
  const fs = require('fs');
  const net = require('net');
  const rustNet = require('rust-net');
  const server = rustNet.createServer((socket) => socket.end('served'));
  server.listen(0, '127.0.0.1', () => {
    const isRustServer = rustNet.isRustServer(server);
    let got = '';
    net.connect(server.address().port, '127.0.0.1')
      .on('data', (d) => { got += d; })
      .on('close', () => server.close(() => {
        const mapped = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n')
          .map((line) => line.split(/\\s+/).slice(5).join(' ')).filter((f) => f.endsWith('.node'));
        console.log(JSON.stringify({
          got, native: rustNet.native, isRustServer,
          binaries: [...new Set(mapped)],
        }));
      }));
  });`;

// The one command README.md's Install section gives.
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const readmeInstall = /## Install\n[^#]*?```sh\n([^`]*)```/.exec(readme)?.[1].trim();

let packed = null;

test("README's install command installs the tarball npm run pack makes", () => {
  assert.strictEqual(readmeInstall, `npm install ./${pkg.name}-${pkg.version}.tgz`);
});

test('npm run pack: one tarball with the four linux prebuilt binaries', { skip, timeout: 120000 }, () => {
  assert.deepStrictEqual(missing, [], 'RUST_NET_REQUIRE_PREBUILDS is set; npm run build:all first');
  const r = check(spawnSync(process.execPath,
                            [path.join(root, 'scripts', 'pack.js'), '--no-build', '--json', '--pack-destination', tmp],
                            { cwd: root, encoding: 'utf8', env: userEnv(), timeout: 110000 }),
                  'npm run pack');
  packed = lastJson(r.stdout);
  assert.ok(fs.existsSync(packed.tarball), packed.tarball);
  assert.deepStrictEqual([...packed.binaries].sort(),
                         PLATFORMS.map((platform) => `prebuilds/${pkg.napi.binaryName}.${platform}.node`).sort());
  // What docs/publishing.md states: small enough to ship all four.
  assert.ok(packed.size < 8 * 1024 * 1024, `packed size ${packed.size}`);
  // The checkout was not changed by packing.
  assert.ok(!fs.existsSync(path.join(root, 'prebuilds')));
});

test('installed by the README command with no cargo on PATH, it loads the prebuilt binary and serves in Rust', { skip, timeout: 180000 }, () => {
  assert.ok(packed, 'no tarball (npm run pack failed)');
  // No registry either: one that refuses every connection.
  const env = userEnv({ npm_config_registry: 'http://127.0.0.1:9/' });
  assert.strictEqual(spawnSync('cargo', ['--version'], { env }).error?.code, 'ENOENT', 'cargo is still on PATH');
  fs.mkdirSync(app, { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'),
                   JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2));
  // Exactly the README's install command, with the tarball beside it.
  fs.copyFileSync(packed.tarball, path.join(app, path.basename(packed.tarball)));
  const r = check(spawnSync('sh', ['-c', readmeInstall], { cwd: app, env, encoding: 'utf8', timeout: 170000 }),
                  readmeInstall);
  const output = `${r.stdout}\n${r.stderr}`;
  const triple = platformTriple();
  const prebuilt = path.join(installed, 'prebuilds', `${pkg.napi.binaryName}.${triple}.node`);
  // The install script, where npm ran it, found the binary and built nothing.
  if (/rust-net: /.test(output)) {
    assert.match(output, new RegExp(`rust-net: using the prebuilt binary prebuilds/rust-net\\.${triple}\\.node`));
  }
  assert.doesNotMatch(output, /rust-net: building|could not build|WITHOUT its native listener/);
  assert.ok(!fs.existsSync(path.join(installed, `${pkg.napi.binaryName}.${triple}.node`)), 'a source build is there');

  const run = check(spawnSync(process.execPath, ['-e', PROGRAM], { cwd: app, env, encoding: 'utf8', timeout: 30000 }),
                    'the program');
  assert.deepStrictEqual(lastJson(run.stdout), {
    got: 'served', native: true, isRustServer: true, binaries: [fs.realpathSync(prebuilt)],
  });
});

test('the installed package picks its binary by CPU and C library', { skip, timeout: 30000 }, () => {
  assert.ok(packed, 'no tarball (npm run pack failed)');
  // The installed package's own loader code, not this checkout's.
  const triple = require(path.join(installed, 'lib', 'triple.js'));
  const realMaps = fs.readFileSync('/proc/self/maps', 'utf8');
  assert.strictEqual(triple.mapsAreMusl(realMaps), false, 'this glibc process read as musl');
  assert.strictEqual(triple.mapsAreMusl('7f00-7f01 r-xp 0 08:01 1 /lib/ld-musl-x86_64.so.1\n'), true);
  assert.strictEqual(triple.mapsAreMusl('7f00-7f01 r-xp 0 08:01 1 /usr/lib/libc.musl-aarch64.so.1\n'), true);
  assert.strictEqual(triple.platformTriple(), 'linux-x64-gnu');

  for (const arch of ['x64', 'arm64']) {
    for (const musl of [false, true]) {
      const platform = triple.platformTriple({ platform: 'linux', arch, musl });
      assert.strictEqual(platform, `linux-${arch}-${musl ? 'musl' : 'gnu'}`);
      // The first candidate that exists in the installed package is the
      // prebuilt binary for that machine, built for its CPU and C library.
      const found = triple.binaryCandidates(platform).filter((c) => path.isAbsolute(c) && fs.existsSync(c));
      assert.deepStrictEqual(found, [path.join(installed, 'prebuilds', `${pkg.napi.binaryName}.${platform}.node`)]);
      const { machine, needed } = elfInfo(found[0]);
      assert.strictEqual(machine, ELF_MACHINE[arch], `${platform}: ELF machine`);
      assert.ok(needed.includes(musl ? 'libc.so' : 'libc.so.6'), `${platform} needs ${needed.join(', ')}`);
      assert.ok(!needed.includes(musl ? 'libc.so.6' : 'libc.so'), `${platform} needs ${needed.join(', ')}`);
    }
  }
});

test('RUST_NET_FROM_SOURCE=1 builds from source even though a prebuilt binary fits', { skip, timeout: 420000 }, () => {
  assert.ok(packed, 'no tarball (npm run pack failed)');
  const dir = path.join(tmp, 'from-source');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'),
                   JSON.stringify({ name: 'from-source', version: '1.0.0', private: true }, null, 2));
  const install = (env) => spawnSync('npm', ['install', packed.tarball, '--offline', '--no-audit', '--no-fund', '--foreground-scripts'],
                                     { cwd: dir, env, encoding: 'utf8', timeout: 400000 });

  // Asked for and impossible (no cargo): the install fails rather than fall
  // back to the prebuilt binary.
  const refused = install(userEnv({ RUST_NET_FROM_SOURCE: '1' }));
  assert.notStrictEqual(refused.status, 0, 'installed without cargo under RUST_NET_FROM_SOURCE=1');
  assert.match(`${refused.stdout}\n${refused.stderr}`, /RUST_NET_FROM_SOURCE is set, so the install fails/);

  // With cargo (this checkout's own PATH), built here and loaded first. The
  // build shares package.test.js's target directory, so it is mostly cached.
  const env = { ...userEnv({ RUST_NET_FROM_SOURCE: '1' }), PATH: process.env.PATH,
                CARGO_TARGET_DIR: path.join(root, 'target', 'package-test') };
  const r = check(install(env), 'npm install <tarball> with RUST_NET_FROM_SOURCE=1');
  const triple = platformTriple();
  assert.match(`${r.stdout}\n${r.stderr}`, new RegExp(`rust-net: building the native listener for ${triple} from source`));
  const source = path.join(dir, 'node_modules', 'rust-net', `${pkg.napi.binaryName}.${triple}.node`);
  const run = check(spawnSync(process.execPath, ['-e', PROGRAM], { cwd: dir, env, encoding: 'utf8', timeout: 30000 }),
                    'the program');
  assert.deepStrictEqual(lastJson(run.stdout),
                         { got: 'served', native: true, isRustServer: true, binaries: [fs.realpathSync(source)] });
});

// The arm64 glibc machine, run for real: the official arm64 Node under
// qemu-user (scripts/setup-cross.sh registers it with binfmt_misc) loads the
// installed package and must map the arm64 prebuilt binary.
const BINFMT = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
const QEMU_LD_PREFIX = process.env.QEMU_LD_PREFIX || '/usr/aarch64-linux-gnu';
const noQemu = !fs.existsSync(BINFMT) || !fs.existsSync(QEMU_LD_PREFIX) ?
  `qemu-user for arm64 is not registered (${BINFMT}, ${QEMU_LD_PREFIX}: scripts/setup-cross.sh)` : false;

test('on arm64 (under qemu) the installed package loads the arm64 binary and serves in Rust', { skip: skip || (!required && noQemu), timeout: 300000 }, () => {
  assert.ok(packed, 'no tarball (npm run pack failed)');
  assert.strictEqual(noQemu, false, noQemu || '');
  const { nodeFor } = require('../scripts/node-binaries');
  const env = userEnv({ QEMU_LD_PREFIX });
  const arm64Node = nodeFor(22, { arch: 'arm64', env });
  const run = check(spawnSync(arm64Node, ['-e', PROGRAM], { cwd: app, env, encoding: 'utf8', timeout: 240000 }),
                    'the program on arm64');
  const result = lastJson(run.stdout);
  assert.deepStrictEqual(result, {
    got: 'served', native: true, isRustServer: true,
    binaries: [fs.realpathSync(path.join(installed, 'prebuilds', `${pkg.napi.binaryName}.linux-arm64-gnu.node`))],
  });
});
