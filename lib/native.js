'use strict';

// Loads the compiled addon: the file RUST_NET_NATIVE_LIBRARY_PATH names, if
// set (npm test points it at the test build, scripts/test-build.js; also a
// way to try another build without reinstalling), and nothing else then;
// otherwise the first of these that loads:
// - rust-net.<platform>.node at the package's root: built from source by
//   `npm install` in a checkout, or by the install script (scripts/build.js)
//   when no prebuilt binary fits or RUST_NET_FROM_SOURCE=1 asked for one;
// - prebuilds/rust-net.<platform>.node: the prebuilt binaries a packed
//   package carries (`npm run pack`, docs/publishing.md);
// - the per-platform package rust-net-<platform> (the napi-rs registry
//   layout, once published).

const path = require('path');
const { binaryCandidates, platformTriple } = require('./triple');

function load() {
  const triple = platformTriple();
  const forced = process.env.RUST_NET_NATIVE_LIBRARY_PATH;
  const candidates = forced ? [path.resolve(forced)] : binaryCandidates(triple);
  const failures = [];
  let reason = `no native binary for ${triple}`;
  for (const candidate of candidates) {
    try {
      return require(candidate);
    } catch (err) {
      const first = err.message.split('\n')[0];
      failures.push(`  ${candidate}: ${first}`);
      // A binary that is there but does not load says more than a missing one.
      if (err.code !== 'MODULE_NOT_FOUND') reason = `${path.basename(candidate)} did not load: ${first}`;
    }
  }
  const err = new Error(
    `rust-net: no native binary could be loaded for ${triple} (Node ${process.version}, ${process.platform}-${process.arch}).\n` +
    `Tried:\n${failures.join('\n')}\n` +
    'To build it from source, install a Rust toolchain (https://rustup.rs: cargo and a C linker), ' +
    'then run `npm rebuild rust-net --foreground-scripts` in your project ' +
    '(`npm install` in a rust-net checkout).');
  err.code = 'ERR_RUST_NET_NATIVE_MISSING';
  err.reason = reason;
  throw err;
}

module.exports = load();
