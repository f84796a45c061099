'use strict';

// `npm install` hook: builds the native addon from source (release profile).
// In a published install that already has a prebuilt binary for this
// platform (an optionalDependency), there is nothing to build.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const isCheckout = fs.existsSync(path.join(root, '.git'));

function hasPrebuilt() {
  try {
    require('../lib/native');
    return true;
  } catch {
    return false;
  }
}

function run(cmd, args) {
  console.log(`rust-net: ${cmd} ${args.join(' ')}`);
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (result.error) {
    console.error(`rust-net: could not run ${cmd}: ${result.error.message}`);
    if (result.error.code === 'ENOENT') {
      console.error('rust-net: building from source needs a Rust toolchain: https://rustup.rs');
    }
    process.exit(1);
  }
  if (result.status !== 0) process.exit(result.status ?? 1);
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
    run('cargo', ['build', '--release', '--locked']);
    const { platformTriple } = require('../lib/triple');
    const ext = process.platform === 'darwin' ? 'dylib' : 'so';
    const built = path.join(root, 'target', 'release', `librust_net.${ext}`);
    fs.copyFileSync(built, path.join(root, `rust-net.${platformTriple()}.node`));
  }
}
