'use strict';

// The napi-rs name of this platform ("linux-x64-gnu", ...): the suffix of
// the binary file and of the per-platform prebuilt package.

const fs = require('fs');

// Which C library this process runs on. The loader's own mappings say it
// directly; `process.report.getReport()` (what napi-rs templates use) says it
// too, but builds a whole diagnostic report to do so: ~8 ms at require() time
// and ~1 MiB of Node's binary paged in for good (bench/RESULTS.md, P5), so it
// is only the fallback where /proc is not readable.
function isMusl() {
  if (process.platform !== 'linux') return false;
  let maps = null;
  try {
    maps = fs.readFileSync('/proc/self/maps', 'latin1');
  } catch {
    // No /proc (some sandboxes): ask the diagnostic report.
  }
  if (maps !== null) return /\/ld-musl-|\/libc\.musl-/.test(maps);
  const report = typeof process.report?.getReport === 'function' ?
    process.report.getReport() : null;
  return !report?.header?.glibcVersionRuntime;
}

function platformTriple() {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

module.exports = { platformTriple };
