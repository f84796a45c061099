'use strict';

// Loads the compiled addon: a binary built in this package by `npm install`
// (scripts/build.js), or else a prebuilt one from the per-platform package
// that npm installs through optionalDependencies (the napi-rs layout).

const path = require('path');
const { platformTriple } = require('./triple');

function load() {
  const triple = platformTriple();
  const candidates = [
    path.join(__dirname, '..', `rust-net.${triple}.node`),
    `rust-net-${triple}`,
  ];
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
