#!/usr/bin/env node
'use strict';

// npm run build:all [-- [platform ...]]
//
// Builds the prebuilt binary of every napi.targets entry of package.json
// (linux x64 and arm64, glibc and musl) on this one Linux machine, each into
// its per-platform package: npm/<platform>/rust-net.<platform>.node. Give
// platforms (linux-arm64-gnu ...) to build only those.
//
// One toolchain cross-links them all: zig, through cargo-zigbuild (both from
// PyPI: `pip install cargo-zigbuild ziglang`), with the Rust standard library
// of each target (`rustup target add ...`); scripts/setup-cross.sh installs
// all of it. The glibc builds link against glibc 2.17's symbols, so they load
// on any distribution since 2014 (this machine's own glibc would raise the
// floor to its version); the musl builds link libc dynamically
// (-crt-static), as a Node addon must, since Node itself does.
//
// Each binary is checked after linking: its ELF machine, and that it needs
// only the C library it is for (readelf, from binutils). Release profile;
// CARGO_TARGET_DIR is honoured (each target builds under <dir>/<triple>).

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { elfInfo } = require('./elf');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

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

function checkTools(targets) {
  const problems = [];
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

function build(target) {
  const started = Date.now();
  const env = { ...process.env };
  if (target.abi === 'musl') {
    // A cdylib needs a dynamically linked libc; only this target's flags
    // change, so the other targets' builds stay cached.
    const key = `CARGO_TARGET_${target.triple.toUpperCase().replace(/-/g, '_')}_RUSTFLAGS`;
    env[key] = [env[key], '-C target-feature=-crt-static'].filter(Boolean).join(' ');
  }
  console.log(`build:all: cargo zigbuild --release --locked --lib --target ${target.zigTarget}`);
  const r = run('cargo', ['zigbuild', '--release', '--locked', '--lib', '--target', target.zigTarget,
                          '--message-format=json-render-diagnostics'],
                { env, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) die(`${target.triple}: cargo zigbuild failed (${r.signal || `exit code ${r.status}`})`);
  let built = null;
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      continue;
    }
    if (message.reason !== 'compiler-artifact' || !message.target?.kind?.includes('cdylib')) continue;
    built = message.filenames.find((file) => file.endsWith('.so')) ?? built;
  }
  if (!built) die(`${target.triple}: cargo did not report the built library`);
  verify(target, built);
  fs.rmSync(target.dest, { force: true });
  fs.copyFileSync(built, target.dest);
  const seconds = Math.round((Date.now() - started) / 1000);
  console.log(`build:all: ${path.relative(root, target.dest)} (${fs.statSync(target.dest).size} bytes, ${seconds} s)`);
  return seconds;
}

// The ELF machine, and the libraries the binary needs.
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
  console.log(`build:all: ${target.triple}: ELF machine ${machine}, needs ${needed.join(', ')}`);
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
  const times = targets.map((t) => [t.platform, build(t)]);
  console.log(`build:all: built ${times.map(([p, s]) => `${p} (${s} s)`).join(', ')}`);
}

main();
