'use strict';

// scripts/node-suite.js (npm run test:node) on a small made-up test tree, so
// CI checks the runner without Node's own test tree.

const { test } = require('node:test');
const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const runner = path.join(__dirname, '..', 'scripts', 'node-suite.js');

const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-suite-tree-'));
process.on('exit', () => fs.rmSync(tree, { recursive: true, force: true }));

const files = {
  // Selected, passes on both.
  'parallel/test-ok.js': `'use strict';
    const net = require('net');
    const s = net.createServer();
    s.listen(0, () => s.close());`,
  // Selected through new net.Server, as an ES module; passes on both.
  'parallel/test-esm.mjs': `
    import net from 'node:net';
    const s = new net.Server();
    s.listen(0, () => s.close());`,
  // Not selected: constructs no net server (not in the way the selection
  // looks for, which is the literal text).
  'parallel/test-unrelated.js': 'require("net").createServer(); process.exit(1);',
  // Not selected: not a test file.
  'parallel/helper-net.js': 'require("net").createServer(); process.exit(1);',
  // Selected, fails on plain Node: not counted.
  'parallel/test-node-fails.js': '// net.Server(\nprocess.exit(3);',
  // Selected, passes only when its listening socket is Node's own.
  'parallel/test-node-only.js': `'use strict';
    const net = require('net');
    const { TCP } = process.binding('tcp_wrap');
    const s = net.createServer();
    s.listen(0, () => {
      process.exitCode = s._handle.listen === TCP.prototype.listen ? 0 : 1;
      s.close();
    });`,
  // Flags line honoured, run from the tree root, with a thread id.
  'sequential/test-flags.js': `// Flags: --expose-gc
    'use strict';
    const assert = require('assert');
    assert.strictEqual(typeof gc, 'function');
    assert.ok(require('fs').existsSync('test/sequential/test-flags.js'));
    assert.ok(process.env.TEST_THREAD_ID !== undefined);
    const net = require('net');
    const s = net.createServer();
    s.listen(0, () => s.close());`,
  // Selected, hangs: ended by the timeout, on both.
  'pummel/test-hangs.js': `const net = require('net'); net.createServer().listen(0);`,
};
for (const [name, text] of Object.entries(files)) {
  const file = path.join(tree, 'test', name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${text}\n`);
}

function runRunner(args) {
  return spawnSync(process.execPath, [runner, ...args], { encoding: 'utf8', timeout: 60000 });
}

test('--list selects the test files that construct a net server', () => {
  for (const given of [tree, path.join(tree, 'test')]) {
    const r = runRunner([given, '--list']);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(r.stdout.trim().split('\n'), [
      'parallel/test-esm.mjs',
      'parallel/test-node-fails.js',
      'parallel/test-node-only.js',
      'parallel/test-ok.js',
      'sequential/test-flags.js  --expose-gc',
      'pummel/test-hangs.js',
      '6 tests',
    ]);
  }
});

test('runs each test on Node and on rust-net, reports, and ends with the count', () => {
  const report = path.join(tree, 'out', 'report.md');
  const r = runRunner([tree, '--report', report, '--timeout', '3']);
  assert.strictEqual(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.strictEqual(lines[lines.length - 1], '3 passed, 1 failed');

  const row = (id) => lines.find((l) => l.startsWith(`${id} `)).split(/\s{2,}/).slice(1);
  assert.deepStrictEqual(row('parallel/test-ok.js'), ['PASS', 'PASS']);
  assert.deepStrictEqual(row('parallel/test-esm.mjs'), ['PASS', 'PASS']);
  assert.deepStrictEqual(row('parallel/test-node-fails.js'), ['FAIL (exit 3)', 'FAIL (exit 3)']);
  assert.deepStrictEqual(row('parallel/test-node-only.js'), ['PASS', 'FAIL (exit 1)']);
  assert.deepStrictEqual(row('sequential/test-flags.js'), ['PASS', 'PASS']);
  assert.deepStrictEqual(row('pummel/test-hangs.js'), ['FAIL (timeout (3 s))', 'FAIL (timeout (3 s))']);

  const md = fs.readFileSync(report, 'utf8');
  assert.match(md, /\*\*3 passed, 1 failed\*\*/);
  assert.match(md, /## Failing with rust-net, passing on plain Node\n\n### parallel\/test-node-only\.js\n/);
  assert.match(md, /-r \S*register\.js test\/parallel\/test-node-only\.js/);
  assert.match(md, /\| sequential\/test-flags\.js \| PASS \| PASS \|/);
  assert.ok(fs.existsSync(path.join(tree, 'out', 'report-logs', 'parallel__test-node-only.js.rust-net.log')));
});

test('--strict fails the run when a test fails only with rust-net; usage errors exit 2', () => {
  const r = runRunner([tree, '--filter', 'node-only', '--strict', '--report', path.join(tree, 'out', 'strict.md')]);
  assert.strictEqual(r.status, 1, r.stderr);
  assert.strictEqual(r.stdout.trimEnd().split('\n').pop(), '0 passed, 1 failed');
  assert.strictEqual(runRunner([]).status, 2);
  assert.strictEqual(runRunner([os.tmpdir(), '--list']).status, 2);
});
