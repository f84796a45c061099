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
//   layout, once published), only if its version is rust-net's
//   (requireBinary in lib/triple.js refuses any other).
// When none loads, the error (ERR_RUST_NET_NATIVE_MISSING) lists every
// attempt in its message and chains them through `cause`.

const path = require('path');
const { binaryCandidates, platformTriple, requireBinary } = require('./triple');

// One Error per failed attempt, each with the attempt before it as its
// `cause` (as napi-rs's generated loader chains them), so that the error
// thrown at the end leads through every attempt, the last one first.
function attemptError(candidate, err, previous) {
  const attempt = new Error(`${candidate}: ${err.message.split('\n')[0]}`,
                            previous === undefined ? undefined : { cause: previous });
  attempt.code = err.code;
  return attempt;
}

function load() {
  const triple = platformTriple();
  const forced = process.env.RUST_NET_NATIVE_LIBRARY_PATH;
  const candidates = forced ? [path.resolve(forced)] : binaryCandidates(triple);
  const failures = [];
  let last;
  let reason = `no native binary for ${triple}`;
  for (const candidate of candidates) {
    try {
      return requireBinary(candidate);
    } catch (err) {
      last = attemptError(candidate, err, last);
      failures.push(`  ${last.message}`);
      // A binary that is there but does not load (or is refused) says more
      // than a missing one.
      if (err.code !== 'MODULE_NOT_FOUND') {
        reason = err.code === 'ERR_RUST_NET_NATIVE_VERSION' ? err.message :
          `${path.basename(candidate)} did not load: ${err.message.split('\n')[0]}`;
      }
    }
  }
  const err = new Error(
    `rust-net: no native binary could be loaded for ${triple} (Node ${process.version}, ${process.platform}-${process.arch}).\n` +
    `Tried:\n${failures.join('\n')}\n` +
    'To build it from source, install a Rust toolchain (https://rustup.rs: cargo and a C linker), ' +
    'then run `npm rebuild rust-net --foreground-scripts` in your project ' +
    '(`npm install` in a rust-net checkout).', { cause: last });
  err.code = 'ERR_RUST_NET_NATIVE_MISSING';
  err.reason = reason;
  throw err;
}

module.exports = load();
