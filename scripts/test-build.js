'use strict';

// The test build of the addon: the release code with the test hooks of
// src/test_hooks.rs (cargo feature `test-hooks`: injectAcceptPanic,
// panicForTests, inspectSocket), which the release binary must not export.
// scripts/test.js, test-matrix.js and test-arm64.js build it (profile
// `test-hooks` of Cargo.toml, into its own directory beside the release
// build, so neither build invalidates the other) and point lib/native.js at
// it through RUST_NET_NATIVE_LIBRARY_PATH. A caller that already set that
// variable is left alone.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

// Builds the test build for `platform` (this machine's by default, unless
// RUST_NET_NATIVE_LIBRARY_PATH already names one; the
// arm64 glibc one is cross-built with cargo-zigbuild, as build:all does) and
// returns the path of its .node file. Exits the process if the build fails.
function testHooksBinary(platform = null) {
  if (platform === null) {
    if (process.env.RUST_NET_NATIVE_LIBRARY_PATH) return process.env.RUST_NET_NATIVE_LIBRARY_PATH;
    platform = require('../lib/triple').platformTriple();
  }
  const cross = { 'linux-arm64-gnu': 'aarch64-unknown-linux-gnu.2.17' }[platform];
  const args = [cross ? 'zigbuild' : 'build', '--profile', 'test-hooks', '--features', 'test-hooks',
                '--locked', '--lib', '--message-format=json-render-diagnostics',
                ...(cross ? ['--target', cross] : [])];
  console.log(`test build: cargo ${args.join(' ')}`);
  const r = spawnSync('cargo', args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
                                       stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) {
    console.error(`test build: cargo failed (${r.error?.message || r.signal || `exit code ${r.status}`})`);
    process.exit(1);
  }
  let built = null;
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const message = JSON.parse(line);
      if (message.reason === 'compiler-artifact' && message.target?.kind?.includes('cdylib')) {
        built = message.filenames.find((file) => /\.(so|dylib|dll)$/.test(file)) ?? built;
      }
    } catch {
      // Not a cargo message.
    }
  }
  if (!built) {
    console.error('test build: cargo did not report the built library');
    process.exit(1);
  }
  // Node loads addons by the .node extension.
  const dest = path.join(path.dirname(built), `rust-net-test-hooks.${platform}.node`);
  fs.rmSync(dest, { force: true }); // a running process may have the old one mapped
  fs.copyFileSync(built, dest);
  return dest;
}

module.exports = { testHooksBinary };
