#!/usr/bin/env node
'use strict';

// npm run pack [-- --no-build] [-- --pack-destination <dir>]
//
// Makes the package users install: `npm pack` with the four linux prebuilt
// binaries (x64/arm64 × glibc/musl) in prebuilds/, so that installing the
// tarball needs no Rust toolchain on those platforms (lib/native.js loads
// prebuilds/rust-net.<platform>.node; docs/publishing.md says why one package
// carries them all). It builds them first with `npm run build:all` (zig and
// the Rust targets: scripts/setup-cross.sh) unless --no-build says they are
// already in npm/<platform>/. The checkout itself is left as it was: the
// package is staged in a temporary directory.
//
// Prints the tarball's path and its packed and unpacked sizes; with --json,
// only a JSON line { tarball, size, unpackedSize, binaries } (the packed-
// package test reads it).

const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

function die(message) {
  console.error(`pack: ${message}`);
  process.exit(1);
}

// npm's output, without the npm_* settings of an enclosing `npm run`.
function npm(args, cwd) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_')));
  const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) die(`npm ${args.join(' ')} failed (${r.signal || `exit code ${r.status}`}):\n${r.stderr}`);
  return r.stdout;
}

// The one package described by `npm pack --json`.
function parsePack(stdout) {
  return JSON.parse(stdout.slice(stdout.indexOf('[')))[0];
}

function parseArgs(argv) {
  const options = { build: true, json: false, destination: root };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--no-build') options.build = false;
    else if (argv[i] === '--json') options.json = true;
    else if (argv[i] === '--pack-destination' && i + 1 < argv.length) options.destination = path.resolve(argv[++i]);
    else die(`unknown argument ${argv[i]} (expected --no-build, --json, --pack-destination <dir>)`);
  }
  return options;
}

// The napi-rs platform name of each napi.targets entry (scripts/build-all.js
// builds exactly these).
function platforms() {
  const arch = { x86_64: 'x64', aarch64: 'arm64' };
  return pkg.napi.targets.map((target) => {
    const [cpu, , os, abi] = target.split('-');
    return `${os}-${arch[cpu] ?? cpu}-${abi}`;
  });
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const say = options.json ? () => {} : (line) => console.log(`pack: ${line}`);
  const stdio = options.json ? ['ignore', 'ignore', 'inherit'] : 'inherit';
  if (options.build) {
    say('npm run build:all');
    const built = spawnSync(process.execPath, [path.join(__dirname, 'build-all.js')], { cwd: root, stdio });
    if (built.status !== 0) die(`npm run build:all failed (${built.signal || `exit code ${built.status}`})`);
  }

  const names = platforms().map((platform) => `${pkg.napi.binaryName}.${platform}.node`);
  const sources = names.map((name, i) => path.join(root, 'npm', platforms()[i], name));
  const missing = sources.filter((file) => !fs.existsSync(file));
  if (missing.length) die(`missing ${missing.map((f) => path.relative(root, f)).join(', ')}: run npm run build:all`);

  // The package's own file list (package.json "files"), copied to a staging
  // directory with prebuilds/ added and packed there: the checkout itself
  // is never changed, so a concurrent `npm pack` of it (package.test.js)
  // still sees only the source package.
  const listing = npm(['pack', '--dry-run', '--json'], root);
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-pack-'));
  let result;
  try {
    for (const { path: file } of parsePack(listing).files) {
      fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true });
      fs.copyFileSync(path.join(root, file), path.join(stage, file));
    }
    fs.mkdirSync(path.join(stage, 'prebuilds'));
    names.forEach((name, i) => fs.copyFileSync(sources[i], path.join(stage, 'prebuilds', name)));
    fs.mkdirSync(options.destination, { recursive: true });
    const info = parsePack(npm(['pack', '--json', '--pack-destination', options.destination], stage));
    const packed = new Set(info.files.map((f) => f.path));
    const absent = names.filter((name) => !packed.has(`prebuilds/${name}`));
    if (absent.length) die(`npm pack left out ${absent.join(', ')} (package.json "files")`);
    result = {
      tarball: path.join(options.destination, info.filename),
      size: info.size,
      unpackedSize: info.unpackedSize,
      binaries: names.map((name) => `prebuilds/${name}`),
    };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }

  if (options.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const kb = (bytes) => `${Math.round(bytes / 1024)} KiB`;
  say(`${result.tarball}: ${kb(result.size)} packed, ` +
      `${kb(result.unpackedSize)} unpacked, with ${result.binaries.join(', ')}`);
  say(`install it with: npm install ${result.tarball}`);
}

main();
