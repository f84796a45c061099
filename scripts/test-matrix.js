'use strict';

// npm run test:matrix [-- [--refresh] [major ...]]
//
// Runs the whole test suite, in npm test's passes (scripts/test.js: each
// accept placement forced), on each supported Node major: 18, 20, 22, 24 and 26 unless majors
// are given. The Node running this script serves its own major; the others
// are the official binaries from the npm packages
// node-<platform>-<arch>@<major>, cached as scripts/node-binaries.js says.
// --refresh downloads them again (the newest release of each major). The
// addon is Node-API, so the one build serves every version. Exits 1 if any
// version fails. A pass that takes longer than
// $RUST_NET_MATRIX_TIMEOUT seconds (default 900) is ended and fails: a test
// file whose process never exits (a handle left open) must not hang CI.

const { spawn } = require('child_process');
const path = require('path');

const { versionOf, ...nodeBinaries } = require('./node-binaries');
const { testHooksBinary } = require('./test-build');
// npm test's passes: every file with the runtime placement forced, the
// placement-dependent ones again with the event-loop placement.
const { passes } = require('./test');

const root = path.join(__dirname, '..');
const DEFAULT_MAJORS = [18, 20, 22, 24, 26];

const args = process.argv.slice(2);
const refresh = args.includes('--refresh');
const majors = args.filter((a) => /^\d+$/.test(a)).map(Number);
const unknown = args.filter((a) => a !== '--refresh' && !/^\d+$/.test(a));
if (unknown.length) {
  console.error(`test-matrix: unknown arguments ${unknown.join(' ')}\n` +
                'usage: npm run test:matrix -- [--refresh] [major ...]');
  process.exit(2);
}

const nodeFor = (major) => nodeBinaries.nodeFor(major, { refresh });
// The addon with its test hooks, as npm test loads it (scripts/test-build.js).
const testBuild = testHooksBinary();
const RUN_TIMEOUT_S = Number(process.env.RUST_NET_MATRIX_TIMEOUT) || 900;

// Runs the suite on `nodeBin`, streaming its output; resolves with the
// counts from the test runner's summary.
function runSuite(nodeBin, { placement, files }) {
  return new Promise((resolve) => {
    const started = Date.now();
    // Its own process group, so the watchdog ends the test files with it.
    const child = spawn(nodeBin, ['--test', ...files], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, RUST_NET_ACCEPT_PLACEMENT: placement, RUST_NET_NATIVE_LIBRARY_PATH: testBuild },
    });
    let timedOut = false;
    const watchdog = setTimeout(() => {
      timedOut = true;
      console.error(`test-matrix: ${nodeBin}: still running after ${RUN_TIMEOUT_S} s; ending it`);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, RUN_TIMEOUT_S * 1000);
    // Detached, it no longer gets the terminal's Ctrl-C: pass it on.
    const forward = (sig) => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGINT', forward).once('SIGTERM', forward);
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk) => process.stderr.write(chunk));
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      process.off('SIGINT', forward).off('SIGTERM', forward);
      const count = (name) => {
        const m = out.match(new RegExp(`^(?:#|ℹ) ${name} (\\d+)$`, 'm'));
        return m ? Number(m[1]) : null;
      };
      resolve({
        status: code, signal: timedOut ? `timeout (${RUN_TIMEOUT_S} s)` : signal, seconds: Math.round((Date.now() - started) / 1000),
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
    for (const pass of passes()) {
      console.log(`\n=== Node ${version} (${nodeBin}), accept placement '${pass.placement}' ===\n`);
      const r = await runSuite(nodeBin, pass);
      const ok = r.status === 0 && r.fail === 0;
      results.push({
        major, version: `${version} ${pass.placement}`, ok,
        note: `${r.pass ?? '?'}/${r.tests ?? '?'} passed, ${r.fail ?? '?'} failed` +
          (r.cancelled ? `, ${r.cancelled} cancelled` : '') +
          (r.skipped ? `, ${r.skipped} skipped` : '') +
          (r.signal ? `, killed by ${r.signal}` : '') + ` (${r.seconds} s)`,
      });
    }
  }
  console.log('\ntest-matrix summary:');
  for (const r of results) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} Node ${r.version.padEnd(20)} ${r.note}`);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

main();
