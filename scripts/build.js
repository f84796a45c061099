'use strict';

// `npm install` hook: builds the native addon from source (release profile).
//
// - In a checkout (there is a .git), always build: with the napi CLI when the
//   devDependencies are installed, else with plain cargo.
// - Installed as a dependency (from the registry or a packed tarball): use the
//   prebuilt binary for this platform if one loads (the per-platform package
//   npm installs through optionalDependencies, or a binary built earlier);
//   otherwise build with cargo, which needs a Rust toolchain.
//
// RUST_NET_SKIP_BUILD=1 skips the build; CARGO_TARGET_DIR is honoured.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const isCheckout = fs.existsSync(path.join(root, '.git'));
const isInstalled = path.resolve(root).split(path.sep).includes('node_modules');

function hasPrebuilt() {
  try {
    require('../lib/native');
    return true;
  } catch {
    return false;
  }
}

function fail(message) {
  console.error(`rust-net: ${message}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  console.log(`rust-net: ${cmd} ${args.join(' ')}`);
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) {
    if (result.error.code === 'ENOENT') {
      fail(`could not run ${cmd}: building rust-net from source needs a Rust toolchain ` +
           '(https://rustup.rs); install it and run `npm rebuild rust-net`.');
    }
    fail(`could not run ${cmd}: ${result.error.message}`);
  }
  if (result.status !== 0) {
    fail(`${cmd} failed (${result.signal || `exit code ${result.status}`})`);
  }
  return result;
}

// npm unpacks every file with the same old timestamp (1985), so cargo's
// mtime-based freshness check could take new sources for ones it has already
// built (same path, a shared CARGO_TARGET_DIR). Mark them as just changed.
function touchSources() {
  const now = new Date();
  const files = ['Cargo.toml', 'Cargo.lock', 'build.rs'];
  for (const name of fs.readdirSync(path.join(root, 'src'))) files.push(path.join('src', name));
  for (const file of files) {
    try {
      fs.utimesSync(path.join(root, file), now, now);
    } catch {
      // A missing file is cargo's to report.
    }
  }
}

// Builds the cdylib with cargo and copies it to where lib/native.js looks.
// The artifact's path comes from cargo itself, so CARGO_TARGET_DIR and
// cargo configuration are honoured.
function cargoBuild() {
  // Installed as a dependency, the build tree (~100 MB) is of no further use.
  const dropTargetDir = !process.env.CARGO_TARGET_DIR && isInstalled;
  if (!isCheckout) touchSources();
  const result = run('cargo', ['build', '--release', '--locked', '--lib',
                               '--message-format=json-render-diagnostics'],
                     { stdio: ['inherit', 'pipe', 'inherit'], encoding: 'utf8',
                       maxBuffer: 64 * 1024 * 1024 });
  let built = null;
  for (const line of result.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      continue;
    }
    if (message.reason !== 'compiler-artifact' || !message.target?.kind?.includes('cdylib')) continue;
    built = message.filenames.find((file) => /\.(so|dylib|dll)$/.test(file)) ?? built;
  }
  if (!built) fail('cargo did not report the built library');

  const { platformTriple } = require('../lib/triple');
  const dest = path.join(root, `rust-net.${platformTriple()}.node`);
  // Replace rather than overwrite: a process may have the old file mapped.
  fs.rmSync(dest, { force: true });
  fs.copyFileSync(built, dest);
  console.log(`rust-net: built ${path.basename(dest)}`);

  if (dropTargetDir) fs.rmSync(path.join(root, 'target'), { recursive: true, force: true });
}

if (process.env.RUST_NET_SKIP_BUILD) {
  console.log('rust-net: RUST_NET_SKIP_BUILD is set, not building');
} else if (!isCheckout && hasPrebuilt()) {
  console.log('rust-net: using the prebuilt binary for this platform');
} else {
  const napiCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
  if (fs.existsSync(napiCli)) {
    run(process.execPath, [napiCli, 'build', '--platform', '--release', '--no-js',
                           '--dts', 'lib/native.d.ts']);
  } else {
    // Installed as a dependency: devDependencies (the napi CLI) are absent,
    // so build with cargo and put the library where lib/native.js looks.
    cargoBuild();
  }
}
