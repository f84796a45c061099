#!/usr/bin/env node
'use strict';

// npm run build:all [-- [platform ...]]
//
// Builds the prebuilt binary of every napi.targets entry of package.json
// (linux x64 and arm64, glibc and musl) on this one Linux machine, each into
// its per-platform package: npm/<platform>/rust-net.<platform>.node. Give
// platforms (linux-arm64-gnu ...) to build only those.
//
// The release steps are @napi-rs/cli's own, as in napi-rs's package
// template:
// 1. `napi create-npm-dirs` writes npm/<platform>/ (package.json with the
//    os/cpu/libc fields and the package's version, README.md) from
//    package.json;
// 2. `napi build --platform --release -x --target <triple>` builds each
//    binary: -x cross-compiles with cargo-zigbuild (zig links every target,
//    and links musl's libc dynamically, -crt-static, as a Node addon must);
// 3. `napi artifacts` copies the binaries into npm/<platform>/.
// (`napi version`, the package's `version` script, keeps npm/<platform>/'s
// versions in step on `npm version`.) Release profile, which strips the
// binaries (Cargo.toml's strip, rather than `napi build --strip`, so that a
// source install's cargo build is stripped too); CARGO_TARGET_DIR is
// honoured.
//
// What the CLI cannot do, and this script adds:
// - the glibc floor: the gnu targets are given as <triple>.2.17 (a
//   cargo-zigbuild suffix that napi build passes through), so they link
//   against glibc 2.17's symbols and load on any distribution since 2014;
//   without it zig links against its own, newer default glibc, and the
//   binary refuses to load on older systems. (napi's package-template gets
//   the same floor from `napi build --use-napi-cross`, a gcc toolchain for
//   glibc 2.17 downloaded at build time; it builds the gnu targets only, so
//   the musl ones would still need zig: one toolchain, zig, builds all four.)
// - the ELF check of each binary before it is copied (scripts/elf.js): its
//   ELF machine, that it needs only the C library it is for, no glibc
//   symbol newer than 2.17, and no symbol table. The CLI copies whatever
//   cargo made; a wrong linker, a leaked host library or an unstripped
//   build would otherwise ship unnoticed, and the first two would fail only
//   on the users' machines.
//
// The toolchain: zig and cargo-zigbuild (PyPI: `pip install cargo-zigbuild
// ziglang`), the Rust standard library of each target (`rustup target add
// ...`) and readelf (binutils); scripts/setup-cross.sh installs all of it.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { elfInfo } = require('./elf');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const napiCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');

// glibc version the gnu builds are linked against (cargo-zigbuild's
// <triple>.<version> suffix).
const GLIBC_FLOOR = '2.17';

const ARCH = { x86_64: { npm: 'x64', elf: 62 }, aarch64: { npm: 'arm64', elf: 183 } };

// What a Node addon may need from the system, per C library.
const ALLOWED_NEEDED = {
  gnu: new Set(['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1',
                'libgcc_s.so.1', 'ld-linux-x86-64.so.2', 'ld-linux-aarch64.so.1']),
  musl: new Set(['libc.so']),
};

function describe(triple) {
  const [cpu, , os, abi] = triple.split('-');
  if (os !== 'linux' || !ARCH[cpu] || !['gnu', 'musl'].includes(abi)) {
    throw new Error(`build:all: ${triple} is not a target this script builds (linux x64/arm64, gnu/musl)`);
  }
  const platform = `linux-${ARCH[cpu].npm}-${abi}`;
  return {
    triple, abi, platform,
    elfMachine: ARCH[cpu].elf,
    zigTarget: abi === 'gnu' ? `${triple}.${GLIBC_FLOOR}` : triple,
    binary: `${pkg.napi.binaryName}.${platform}.node`,
    dest: path.join(root, 'npm', platform, `${pkg.napi.binaryName}.${platform}.node`),
  };
}

function die(message) {
  console.error(`build:all: ${message}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.error?.code === 'ENOENT') return { missing: true };
  if (r.error) die(`${cmd}: ${r.error.message}`);
  return r;
}

// Runs one napi CLI command, its output shown; throws if it fails (so that
// collect() can put the package root back first).
function napi(args) {
  console.log(`build:all: napi ${args.join(' ')}`);
  const r = run(process.execPath, [napiCli, ...args], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`napi ${args[0]} failed (${r.signal || `exit code ${r.status}`})`);
}

function checkTools(targets) {
  const problems = [];
  if (!fs.existsSync(napiCli)) problems.push('@napi-rs/cli is missing: npm install');
  // napi build -x would otherwise try to `cargo install` cargo-zigbuild,
  // and could not install zig at all.
  if (run('cargo-zigbuild', ['--version']).status !== 0) {
    problems.push('cargo-zigbuild and zig are missing: pip install cargo-zigbuild ziglang');
  }
  const installed = run('rustup', ['target', 'list', '--installed']);
  if (!installed.missing && installed.status === 0) {
    const have = new Set(installed.stdout.split('\n').map((s) => s.trim()));
    const lacking = targets.map((t) => t.triple).filter((t) => !have.has(t));
    if (lacking.length) problems.push(`Rust targets missing: rustup target add ${lacking.join(' ')}`);
  }
  if (run('readelf', ['--version']).status !== 0) problems.push('readelf is missing: apt-get install binutils');
  if (problems.length) {
    die(`cannot cross-build here (scripts/setup-cross.sh installs everything):\n  ${problems.join('\n  ')}`);
  }
}

// napi build for one target, into `staging`; the binary is checked there.
function build(target, staging) {
  const started = Date.now();
  napi(['build', '--platform', '--release', '--no-js', '-x', '--target', target.zigTarget,
        '--output-dir', staging, '--', '--locked', '--lib']);
  const built = path.join(staging, target.binary);
  if (!fs.existsSync(built)) die(`${target.triple}: napi build did not make ${built}`);
  verify(target, built);
  return Math.round((Date.now() - started) / 1000);
}

// The ELF machine, the libraries the binary needs, its glibc symbol
// versions, and that it carries no symbol table.
function verify(target, file) {
  let info;
  try {
    info = elfInfo(file);
  } catch (err) {
    die(`${target.triple}: ${err.message}`);
  }
  const { machine, needed } = info;
  if (!info.elf || machine !== target.elfMachine) {
    die(`${target.triple}: ${file} is not an ELF object for this architecture (e_machine ${machine})`);
  }
  const foreign = needed.filter((lib) => !ALLOWED_NEEDED[target.abi].has(lib));
  if (foreign.length || needed.length === 0) {
    die(`${target.triple}: needs ${needed.join(', ') || 'nothing'}; expected only ${[...ALLOWED_NEEDED[target.abi]].join(', ')}`);
  }
  if (target.abi === 'gnu') {
    const versions = run('readelf', ['-V', '-W', file]).stdout ?? '';
    const newest = [...versions.matchAll(/GLIBC_(\d+)\.(\d+)/g)]
      .map((m) => [Number(m[1]), Number(m[2])])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]).pop();
    const [major, minor] = GLIBC_FLOOR.split('.').map(Number);
    if (newest && (newest[0] > major || (newest[0] === major && newest[1] > minor))) {
      die(`${target.triple}: needs GLIBC_${newest.join('.')}, newer than ${GLIBC_FLOOR}`);
    }
  } else if (/GLIBC_/.test(run('readelf', ['-V', '-W', file]).stdout ?? '')) {
    die(`${target.triple}: a musl build refers to glibc symbol versions`);
  }
  // Cargo.toml's release profile strips it (strip = "symbols"); a build
  // that kept its symbol table did not use that profile.
  if (!info.stripped) die(`${target.triple}: ${file} is not stripped (it has a .symtab)`);
  console.log(`build:all: ${target.triple}: ELF machine ${machine}, needs ${needed.join(', ')}, stripped`);
}

// napi artifacts: every binary in `staging.out` into npm/<platform>/. It
// takes all of napi.targets at once, so a platform not built this time is
// staged from its npm/<platform>/ (checked when it was built). It also copies
// each binary to the package root (napi-rs's layout for a package that
// carries its own binary), where this checkout keeps its source build, the
// first one lib/native.js loads: those files wait in `staging.root` (outside
// `staging.out`, which napi artifacts searches, subdirectories included) and
// are put back as they were, whatever happens.
function collect(all, staging) {
  for (const target of all) {
    const staged = path.join(staging.out, target.binary);
    if (fs.existsSync(staged)) continue;
    if (!fs.existsSync(target.dest)) {
      die(`no binary for ${target.platform} in ${path.relative(root, target.dest)}: ` +
          'build it too (npm run build:all builds every platform)');
    }
    fs.copyFileSync(target.dest, staged);
  }
  const atRoot = all.map((t) => t.binary).filter((name) => fs.existsSync(path.join(root, name)));
  for (const name of atRoot) fs.renameSync(path.join(root, name), path.join(staging.root, name));
  try {
    napi(['artifacts', '--output-dir', path.relative(root, staging.out), '--npm-dir', 'npm']);
  } finally {
    for (const target of all) fs.rmSync(path.join(root, target.binary), { force: true });
    for (const name of atRoot) fs.renameSync(path.join(staging.root, name), path.join(root, name));
  }
}

function main() {
  const args = process.argv.slice(2);
  const all = pkg.napi.targets.map(describe);
  const unknown = args.filter((a) => !all.some((t) => t.platform === a || t.triple === a));
  if (unknown.length) {
    console.error(`build:all: unknown platform ${unknown.join(', ')}; known: ${all.map((t) => t.platform).join(', ')}`);
    process.exit(2);
  }
  const targets = args.length ? all.filter((t) => args.includes(t.platform) || args.includes(t.triple)) : all;
  checkTools(targets);
  const base = path.join(process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) :
    path.join(root, 'target'), 'build-all');
  const staging = { out: path.join(base, 'out'), root: path.join(base, 'package-root') };
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(staging.out, { recursive: true });
  fs.mkdirSync(staging.root, { recursive: true });
  try {
    napi(['create-npm-dirs']);
    const times = targets.map((t) => [t.platform, build(t, staging.out)]);
    collect(all, staging);
    for (const target of targets) {
      console.log(`build:all: ${path.relative(root, target.dest)} (${fs.statSync(target.dest).size} bytes)`);
    }
    console.log(`build:all: built ${times.map(([p, s]) => `${p} (${s} s)`).join(', ')}`);
  } catch (err) {
    die(err.message);
  }
}

main();
