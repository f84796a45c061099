'use strict';

// npm test [-- file ...]: the whole suite with each accept placement forced.
//
// rust-net accepts either on its tokio thread ('runtime') or on the
// JavaScript thread's event loop ('event-loop'); the behavioural tests must
// pass with both, whatever this machine's automatic choice would be. The
// first pass runs every file with RUST_NET_ACCEPT_PLACEMENT=runtime, the
// second the files whose behaviour depends on the placement with
// RUST_NET_ACCEPT_PLACEMENT=event-loop. The files that never start a
// listening server in this process tree (packaging, types, the Node-suite
// wiring) run once. scripts/test-matrix.js runs the same passes.
//
// Both passes load the test build of the addon, which has the test hooks
// (scripts/test-build.js; built first, in seconds once cached): the release
// binary does not export them.

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { testHooksBinary } = require('./test-build');

const root = path.join(__dirname, '..');

// Files whose outcome cannot depend on where connections are accepted, and
// handover-pm2.test.js: pm2's deploy procedure (15 s a pass), whose hand-over
// runs in both placements in handover*.test.js.
const PLACEMENT_INDEPENDENT = new Set([
  'handover-pm2.test.js',
  'loader.test.js',
  'node-suite.test.js',
  'package.test.js',
  'packed.test.js',
  'release.test.js',
  'types.test.js',
]);

// The passes: [{ placement, files }], file paths relative to the root.
function passes(only = []) {
  const dir = path.join(root, '__test__');
  const all = fs.readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort();
  const chosen = only.length ? all.filter((f) => only.some((o) => o.endsWith(f))) : all;
  const rel = (f) => path.join('__test__', f);
  return [
    { placement: 'runtime', files: chosen.map(rel) },
    { placement: 'event-loop', files: chosen.filter((f) => !PLACEMENT_INDEPENDENT.has(f)).map(rel) },
  ].filter((p) => p.files.length > 0);
}

// Runs one pass with `nodeBin`; `onOutput(chunk, stream)` sees its output.
// Resolves with the exit status and the runner's closing counts.
function runPass(nodeBin, pass, onOutput) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(nodeBin, ['--test', ...pass.files], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_NET_ACCEPT_PLACEMENT: pass.placement, ...(pass.env ?? {}) },
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      onOutput(chunk, process.stdout);
    });
    child.stderr.on('data', (chunk) => onOutput(chunk, process.stderr));
    child.on('close', (status, signal) => {
      const count = (name) => {
        const m = out.match(new RegExp(`^(?:#|ℹ) ${name} (\\d+)$`, 'm'));
        return m ? Number(m[1]) : null;
      };
      resolve({
        placement: pass.placement, status, signal,
        seconds: Math.round((Date.now() - started) / 1000),
        tests: count('tests'), pass: count('pass'), fail: count('fail'),
        cancelled: count('cancelled'), skipped: count('skipped'),
      });
    });
  });
}

async function main() {
  const results = [];
  const env = { RUST_NET_NATIVE_LIBRARY_PATH: testHooksBinary() };
  console.log(`# rust-net: the test build ${path.relative(root, env.RUST_NET_NATIVE_LIBRARY_PATH)}`);
  for (const pass of passes(process.argv.slice(2)).map((p) => ({ ...p, env }))) {
    console.log(`\n# rust-net: accept placement '${pass.placement}' (${pass.files.length} files)\n`);
    results.push(await runPass(process.execPath, pass, (chunk, stream) => stream.write(chunk)));
  }
  let failed = 0;
  let passed = 0;
  for (const r of results) {
    passed += r.pass ?? 0;
    failed += (r.fail ?? 0) + (r.cancelled ?? 0) + (r.status === 0 ? 0 : 1);
    console.log(`# ${r.placement}: ${r.pass ?? '?'}/${r.tests ?? '?'} passed (${r.seconds} s)` +
                (r.status === 0 ? '' : `, exit ${r.signal || r.status}`));
  }
  console.log(`tests: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

if (require.main === module) main();

module.exports = { passes, runPass };
