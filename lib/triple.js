'use strict';

// The napi-rs name of this platform ("linux-x64-gnu", ...): the suffix of
// the binary file and of the per-platform prebuilt package; where
// lib/native.js looks for that binary, and how it loads one
// (requireBinary, shared with the install script).

const fs = require('fs');
const path = require('path');

// Whether the C library named in a process's memory maps is musl's: its
// dynamic linker (/lib/ld-musl-x86_64.so.1) or, on some distributions,
// libc.musl-*. A glibc process maps ld-linux-*.so and libc.so.6 instead.
function mapsAreMusl(maps) {
  return /\/ld-musl-|\/libc\.musl-/.test(maps);
}

// Which C library this process runs on. The loader's own mappings say it
// directly; `process.report.getReport()` (what napi-rs templates use) says it
// too, but builds a whole diagnostic report to do so: ~8 ms at require() time
// and ~1 MiB of Node's binary paged in for good (bench/JOURNAL.md, P5), so it
// is only the fallback where /proc is not readable.
function isMusl() {
  if (process.platform !== 'linux') return false;
  let maps = null;
  try {
    maps = fs.readFileSync('/proc/self/maps', 'latin1');
  } catch {
    // No /proc (some sandboxes): ask the diagnostic report.
  }
  if (maps !== null) return mapsAreMusl(maps);
  const report = typeof process.report?.getReport === 'function' ?
    process.report.getReport() : null;
  return !report?.header?.glibcVersionRuntime;
}

// `platform`, `arch` and `musl` default to this process's; the loader test
// passes others to check the choice for machines it is not running on.
function platformTriple({ platform = process.platform, arch = process.arch, musl } = {}) {
  if (platform === 'linux') return `linux-${arch}-${(musl ?? isMusl()) ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

// Where the binary for `triple` may be, in the order lib/native.js tries
// them (see there).
function binaryCandidates(triple) {
  return [
    path.join(__dirname, '..', `rust-net.${triple}.node`),
    path.join(__dirname, '..', 'prebuilds', `rust-net.${triple}.node`),
    `rust-net-${triple}`,
  ];
}

// Loads one candidate of binaryCandidates(). A per-platform package (a bare
// name, not a path) must be the version of this package: its binary was
// built from the Rust sources of that version, and this package's
// JavaScript calls the native functions of its own version, so a binary of
// another version could be missing functions or take other arguments. It is
// refused before it is loaded, with an Error whose code is
// ERR_RUST_NET_NATIVE_VERSION (as napi-rs's generated loader refuses a
// platform package of another version). Throws what require() throws for a
// file that is not there or does not load.
function requireBinary(candidate) {
  if (!path.isAbsolute(candidate)) {
    require.resolve(candidate); // MODULE_NOT_FOUND when not installed
    const expected = require('../package.json').version;
    const found = require(`${candidate}/package.json`).version;
    if (found !== expected) {
      const err = new Error(
        `${candidate} is version ${found}, but rust-net is version ${expected}: ` +
        'its binary does not match this JavaScript, so it is not loaded. Install the same ' +
        `version of both (npm install rust-net@${expected} ${candidate}@${expected}).`);
      err.code = 'ERR_RUST_NET_NATIVE_VERSION';
      throw err;
    }
  }
  return require(candidate);
}

module.exports = { binaryCandidates, mapsAreMusl, platformTriple, requireBinary };
