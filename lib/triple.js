'use strict';

// The napi-rs name of this platform ("linux-x64-gnu", ...): the suffix of
// the binary file and of the per-platform prebuilt package.

function isMusl() {
  if (process.platform !== 'linux') return false;
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
