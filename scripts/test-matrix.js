'use strict';

// npm run test:matrix [-- [--refresh] [major ...]]
//
// Runs the whole test suite (node --test __test__/*.test.js, as npm test
// does) on each supported Node major: 18, 20, 22 and 24 unless majors are
// given. The Node running this script serves its own major; the others are
// the official binaries from the npm packages node-<platform>-<arch>@<major>
// (`npm pack`), unpacked once into a cache: $RUST_NET_NODE_CACHE, else
// node_modules/.cache/rust-net-node in this repository (ignored by git; gone
// after `npm ci`). Some tests run Node as an unprivileged user, so the cache
// must be as readable as the repository itself: not under a private home.
// --refresh downloads them again (the newest release of each major). The
// addon is Node-API, so the one build serves every version. Exits 1 if any
// version fails.

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const DEFAULT_MAJORS = [18, 20, 22, 24];

const args = process.argv.slice(2);
const refresh = args.includes('--refresh');
const majors = args.filter((a) => /^\d+$/.test(a)).map(Number);
const unknown = args.filter((a) => a !== '--refresh' && !/^\d+$/.test(a));
if (unknown.length) {
  console.error(`test-matrix: unknown arguments ${unknown.join(' ')}\n` +
                'usage: npm run test:matrix -- [--refresh] [major ...]');
  process.exit(2);
}

const cacheDir = path.resolve(process.env.RUST_NET_NODE_CACHE ||
  path.join(root, 'node_modules', '.cache', 'rust-net-node'));

function nodePackage(major) {
  const platform = process.platform === 'win32' ? 'win' : process.platform;
  return `node-${platform}-${process.arch}@${major}`;
}

function versionOf(nodeBin) {
  const r = spawnSync(nodeBin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

// The official Node binary of `major`, downloaded into the cache if needed.
function nodeFor(major) {
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath;

  const dir = path.join(cacheDir, String(major));
  const bin = path.join(dir, 'package', 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  if (!refresh && fs.existsSync(bin) && versionOf(bin)?.startsWith(`v${major}.`)) return bin;

  const spec = nodePackage(major);
  console.log(`test-matrix: downloading ${spec} into ${dir}`);
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
    const got = versionOf(path.join(staging, 'package', 'bin', path.basename(bin)));
    if (got !== `v${version}`) throw new Error(`${spec}: expected v${version}, the binary says ${got}`);
    // Swap in atomically, so an interrupted download never looks complete.
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return bin;
}

// Runs the suite on `nodeBin`, streaming its output; resolves with the
// counts from the test runner's summary.
function runSuite(nodeBin) {
  const dir = path.join(root, '__test__');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort()
    .map((f) => path.join('__test__', f));
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(nodeBin, ['--test', ...files], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk) => process.stderr.write(chunk));
    child.on('close', (code, signal) => {
      const count = (name) => {
        const m = out.match(new RegExp(`^(?:#|ℹ) ${name} (\\d+)$`, 'm'));
        return m ? Number(m[1]) : null;
      };
      resolve({
        status: code, signal, seconds: Math.round((Date.now() - started) / 1000),
        tests: count('tests'), pass: count('pass'), fail: count('fail'),
        cancelled: count('cancelled'), skipped: count('skipped'),
      });
    });
  });
}

async function main() {
  const results = [];
  for (const major of majors.length ? majors : DEFAULT_MAJORS) {
    let nodeBin;
    try {
      nodeBin = nodeFor(major);
    } catch (err) {
      console.error(`test-matrix: Node ${major}: ${err.message}`);
      results.push({ major, version: '-', ok: false, note: 'no Node binary' });
      continue;
    }
    const version = versionOf(nodeBin);
    console.log(`\n=== Node ${version} (${nodeBin}) ===\n`);
    const r = await runSuite(nodeBin);
    const ok = r.status === 0 && r.fail === 0;
    results.push({
      major, version, ok,
      note: `${r.pass ?? '?'}/${r.tests ?? '?'} passed, ${r.fail ?? '?'} failed` +
        (r.cancelled ? `, ${r.cancelled} cancelled` : '') +
        (r.skipped ? `, ${r.skipped} skipped` : '') +
        (r.signal ? `, killed by ${r.signal}` : '') + ` (${r.seconds} s)`,
    });
  }
  console.log('\ntest-matrix summary:');
  for (const r of results) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} Node ${r.version.padEnd(9)} ${r.note}`);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

main();
