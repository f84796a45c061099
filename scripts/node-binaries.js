'use strict';

// The official Node binary of a release line, for test:matrix, test:node and
// test:arm64: the npm package node-<platform>-<arch>@<major> (`npm pack`),
// unpacked once into a cache: $RUST_NET_NODE_CACHE, else
// node_modules/.cache/rust-net-node in this repository (ignored by git; gone
// after `npm ci`). Some tests run Node as an unprivileged user, so the cache
// must be as readable as the repository itself: not under a private home.
// The bench's Bun and Deno binaries come the same way (peerFor below).

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

// `npm pack <spec>` unpacked into `dir` (its files under dir/package), once
// `check(staging, version)` has accepted the unpacked copy (it throws if not).
function unpackPackage(spec, dir, check) {
  console.log(`rust-net: downloading ${spec} into ${dir}`);
  fs.mkdirSync(cacheDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(cacheDir, `.${path.basename(dir)}-`));
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
    check(staging, version);
    // Swap in atomically, so an interrupted download never looks complete.
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
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
  unpackPackage(spec, dir, (staging, version) => {
    const got = versionOf(path.join(staging, 'package', 'bin', exe), env);
    if (got !== `v${version}`) throw new Error(`${spec}: expected v${version}, the binary says ${got}`);
  });
  return bin;
}

// The official binary of another JavaScript runtime, for the bench's peer
// variants: Bun from @oven/bun-<platform>-<arch>, Deno from
// @deno/<platform>-<arch>[-glibc] (the latest release, cached like Node's in
// cacheDir/<name>; `refresh` downloads it again). Returns { bin, version },
// or { why } where no such package exists for this platform or it cannot be
// had.
const PEERS = {
  bun: {
    spec: (p, a) => (p === 'linux' || p === 'darwin') && ['x64', 'arm64'].includes(a) ?
      `@oven/bun-${p}-${a === 'arm64' ? 'aarch64' : 'x64'}` : null,
    exe: path.join('package', 'bin', 'bun'),
    version: (out) => out.trim(),
  },
  deno: {
    spec: (p, a) => (p === 'linux' && ['x64', 'arm64'].includes(a) ? `@deno/linux-${a}-glibc` :
      p === 'darwin' && ['x64', 'arm64'].includes(a) ? `@deno/darwin-${a}` : null),
    exe: path.join('package', 'deno'),
    version: (out) => (/^deno (\S+)/.exec(out) || [])[1] || null,
  },
};

function peerVersion(name, bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? PEERS[name].version(r.stdout) : null;
}

function peerFor(name, { refresh = false } = {}) {
  const peer = PEERS[name];
  const spec = peer && peer.spec(process.platform, process.arch);
  if (!spec) return { why: `no ${name} package for ${process.platform}-${process.arch}` };
  const dir = path.join(cacheDir, name);
  const bin = path.join(dir, peer.exe);
  let version = !refresh && fs.existsSync(bin) ? peerVersion(name, bin) : null;
  if (version) return { bin, version };
  try {
    unpackPackage(spec, dir, (staging, v) => {
      const got = peerVersion(name, path.join(staging, peer.exe));
      if (got !== v) throw new Error(`${spec}: expected ${v}, the binary says ${got}`);
      version = got;
    });
  } catch (err) {
    return { why: err.message };
  }
  return { bin, version };
}

module.exports = { cacheDir, nodeFor, nodePackage, peerFor, versionOf };
