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
  for (const candidate of candidates) {
    try {
      return require(candidate);
    } catch (err) {
      failures.push(`  ${candidate}: ${err.message.split('\n')[0]}`);
    }
  }
  const err = new Error(
    `rust-net: no native binary could be loaded for ${triple} (Node ${process.version}, ${process.platform}-${process.arch}).\n` +
    `Tried:\n${failures.join('\n')}\n` +
    'Build it from source with a Rust toolchain (https://rustup.rs) installed: ' +
    'run `npm rebuild rust-net` (or `npm install` in a checkout).');
  err.code = 'ERR_RUST_NET_NATIVE_MISSING';
  throw err;
}

module.exports = load();
