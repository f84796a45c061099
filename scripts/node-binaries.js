'use strict';

// The official Node binary of a release line, for test:matrix, test:node and
// test:arm64: the npm package node-<platform>-<arch>@<major> (`npm pack`),
// unpacked once into a cache: $RUST_NET_NODE_CACHE, else
// node_modules/.cache/rust-net-node in this repository (ignored by git; gone
// after `npm ci`). Some tests run Node as an unprivileged user, so the cache
// must be as readable as the repository itself: not under a private home.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

const cacheDir = path.resolve(process.env.RUST_NET_NODE_CACHE ||
  path.join(root, 'node_modules', '.cache', 'rust-net-node'));

function nodePackage(major, platform = process.platform, arch = process.arch) {
  return `node-${platform === 'win32' ? 'win' : platform}-${arch}@${major}`;
}

// `node --version` of a binary, or null if it does not run. `env` lets a
// caller run a foreign-architecture binary (QEMU_LD_PREFIX for qemu-user).
function versionOf(nodeBin, env = process.env) {
  const r = spawnSync(nodeBin, ['--version'], { encoding: 'utf8', env });
  return r.status === 0 ? r.stdout.trim() : null;
}

// The path of the official Node binary of `major` (for `arch`, this
// machine's by default), downloading it into the cache if needed. The Node
// running this script serves its own major and arch. `refresh` downloads
// the newest release of the major again. `env` is passed to versionOf.
function nodeFor(major, { refresh = false, arch = process.arch, env = process.env } = {}) {
  if (arch === process.arch && Number(process.versions.node.split('.')[0]) === major) {
    return process.execPath;
  }
  const exe = process.platform === 'win32' ? 'node.exe' : 'node';
  const dir = path.join(cacheDir, arch === process.arch ? String(major) : `${major}-${arch}`);
  const bin = path.join(dir, 'package', 'bin', exe);
  if (!refresh && fs.existsSync(bin) && versionOf(bin, env)?.startsWith(`v${major}.`)) return bin;

  const spec = nodePackage(major, process.platform, arch);
  console.log(`rust-net: downloading ${spec} into ${dir}`);
  fs.mkdirSync(cacheDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(cacheDir, `.${major}-`));
  fs.chmodSync(staging, 0o755); // mkdtemp makes it private
  try {
    const pack = spawnSync('npm', ['pack', spec, '--json', '--pack-destination', staging],
                           { cwd: staging, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
                             shell: process.platform === 'win32' });
    if (pack.status !== 0) throw new Error(`npm pack ${spec} failed (${pack.signal || pack.status})`);
    const [{ filename, version }] = JSON.parse(pack.stdout);
    const tar = spawnSync('tar', ['-xzf', path.join(staging, path.basename(filename)), '-C', staging],
                          { stdio: 'inherit' });
    if (tar.status !== 0) throw new Error(`could not unpack ${filename}`);
    fs.rmSync(path.join(staging, path.basename(filename)));
    const got = versionOf(path.join(staging, 'package', 'bin', exe), env);
    if (got !== `v${version}`) throw new Error(`${spec}: expected v${version}, the binary says ${got}`);
    // Swap in atomically, so an interrupted download never looks complete.
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return bin;
}

module.exports = { cacheDir, nodeFor, nodePackage, versionOf };
