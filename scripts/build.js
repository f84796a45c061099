'use strict';

// `npm install` hook: builds the native addon from source (release profile)
// where no prebuilt binary serves.
//
// - In a checkout (there is a .git), always build: with the napi CLI when the
//   devDependencies are installed, else with plain cargo. A failed build
//   fails the install: the tests need the addon.
// - Installed as a dependency (from the registry or a packed tarball): use the
//   prebuilt binary for this platform if one loads (prebuilds/ in a package
//   made by `npm run pack`, the per-platform package of the registry layout,
//   or a binary built earlier); otherwise build with cargo, which needs a
//   Rust toolchain. When there is no toolchain or the build fails, the
//   install still succeeds without the binary: rust-net then serves through
//   node:net and says so at run time (warning RUST_NET_NATIVE_MISSING), and
//   `npm rebuild rust-net` builds it later. (Failing the install would be
//   worse: npm removes the package again, so there would be nothing left to
//   rebuild.) With RUST_NET_REQUIRE_NATIVE=1 in the environment the install
//   fails instead.
// - RUST_NET_FROM_SOURCE=1 builds from source even where a prebuilt binary
//   loads (lib/native.js then loads the source build first); since that was
//   asked for, a failed build fails the install.
//
// npm 11 warns that this script is "not yet covered by allowScripts" (`npm
// install-scripts approve rust-net` records the approval). Where a prebuilt
// binary fits the script is not needed at all: lib/native.js loads the
// binary from prebuilds/ even if the script never ran (--ignore-scripts).
//
// RUST_NET_SKIP_BUILD=1 skips the build; CARGO_TARGET_DIR is honoured.
// npm shows this script's output only with --foreground-scripts (or when it
// fails); it says what it is doing at each step.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const isCheckout = fs.existsSync(path.join(root, '.git'));
const isInstalled = path.resolve(root).split(path.sep).includes('node_modules');

// The prebuilt binary that loads here, or null.
function loadablePrebuilt() {
  const { binaryCandidates, platformTriple, requireBinary } = require('../lib/triple');
  const [, ...prebuilt] = binaryCandidates(platformTriple());
  for (const candidate of prebuilt) {
    try {
      requireBinary(candidate);
      return candidate;
    } catch {
      // Not there, not loadable on this machine, or a platform package of
      // another version (which lib/native.js would refuse): try the next.
    }
  }
  return null;
}

function flag(name) {
  const value = process.env[name];
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

const requireNative = flag('RUST_NET_REQUIRE_NATIVE');
const fromSource = flag('RUST_NET_FROM_SOURCE');

function log(message) {
  console.log(`rust-net: ${message}`);
}

// A build that cannot happen. In a checkout, or with RUST_NET_REQUIRE_NATIVE,
// the install fails; installed as a dependency, it goes on without the
// binary (see the top of this file).
class BuildError extends Error {}

function giveUp(reason) {
  const { platformTriple } = require('../lib/triple');
  const lines = [`could not build the native listener for ${platformTriple()}: ${reason}`];
  if (isCheckout) {
    lines.push('Install a Rust toolchain (https://rustup.rs: cargo and a C linker), then run `npm install` again.');
    console.error(lines.map((line) => `rust-net: ${line}`).join('\n'));
    process.exit(1);
  }
  const fix = 'install a Rust toolchain (https://rustup.rs: cargo and a C linker), then run ' +
    '`npm rebuild rust-net --foreground-scripts` in this project.';
  if (requireNative || fromSource) {
    lines.push(`${fromSource ? 'RUST_NET_FROM_SOURCE' : 'RUST_NET_REQUIRE_NATIVE'} is set, so the install fails.`,
               `To build it: ${fix}`);
    console.error(lines.map((line) => `rust-net: ${line}`).join('\n'));
    process.exit(1);
  }
  lines.push(
    'rust-net is installed WITHOUT its native listener: its servers run on node:net, and',
    'loading it warns RUST_NET_NATIVE_MISSING (RUST_NET_REQUIRE_NATIVE=1 makes that an error).',
    `To build it: ${fix}`);
  console.error(lines.map((line) => `rust-net: ${line}`).join('\n'));
  process.exit(0);
}

function run(cmd, args, options = {}) {
  log(`running ${cmd} ${args.join(' ')}`);
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) {
    if (result.error.code === 'ENOENT') {
      throw new BuildError(`${cmd} was not found on PATH (building from source needs a Rust toolchain)`);
    }
    throw new BuildError(`could not run ${cmd}: ${result.error.message}`);
  }
  if (result.status !== 0) {
    throw new BuildError(`${cmd} failed (${result.signal || `exit code ${result.status}`}); its output is above`);
  }
  return result;
}

// Fails early, with the message that matters, when there is no cargo.
function checkCargo() {
  const result = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
  if (result.error?.code === 'ENOENT') {
    throw new BuildError('cargo was not found on PATH (building from source needs a Rust toolchain)');
  }
  if (result.status === 0) log(`using ${result.stdout.trim()}`);
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
  if (!built) throw new BuildError('cargo did not report the built library');

  const { platformTriple } = require('../lib/triple');
  const dest = path.join(root, `rust-net.${platformTriple()}.node`);
  // Replace rather than overwrite: a process may have the old file mapped.
  fs.rmSync(dest, { force: true });
  fs.copyFileSync(built, dest);
  log(`built ${path.basename(dest)}`);

  if (dropTargetDir) fs.rmSync(path.join(root, 'target'), { recursive: true, force: true });
}

function build() {
  const { platformTriple } = require('../lib/triple');
  const started = Date.now();
  log(`building the native listener for ${platformTriple()} from source (cargo, release profile; ` +
      'the first build compiles about 40 crates and takes 1-2 minutes)');
  checkCargo();
  const napiCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
  if (fs.existsSync(napiCli)) {
    run(process.execPath, [napiCli, 'build', '--platform', '--release', '--no-js',
                           '--dts', 'lib/native.d.ts']);
  } else {
    // Installed as a dependency: devDependencies (the napi CLI) are absent,
    // so build with cargo and put the library where lib/native.js looks.
    cargoBuild();
  }
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
}

const prebuilt = process.env.RUST_NET_SKIP_BUILD || isCheckout || fromSource ? null : loadablePrebuilt();
if (process.env.RUST_NET_SKIP_BUILD) {
  log('RUST_NET_SKIP_BUILD is set, not building');
} else if (prebuilt !== null) {
  log(`using the prebuilt binary ${path.isAbsolute(prebuilt) ? path.relative(root, prebuilt) : prebuilt}`);
} else {
  try {
    build();
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    giveUp(err.message);
  }
}
