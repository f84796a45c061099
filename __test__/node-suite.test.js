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

test('--rev runs the test/ of a commit of a git repository, exported outside it', (t) => {
  const repo = path.join(tree, 'repo');
  const git = (...args) => spawnSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
  fs.mkdirSync(repo);
  if (git('init', '-q').error) {
    t.skip('no git');
    return;
  }
  fs.cpSync(path.join(tree, 'test'), path.join(repo, 'test'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'README.md'), 'not exported\n');
  assert.strictEqual(git('add', '.').status, 0);
  const commit = git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'tree');
  assert.strictEqual(commit.status, 0, commit.stderr);
  const sha = git('rev-parse', 'HEAD').stdout.trim();
  // A later commit without the tests: --rev must read the earlier one.
  fs.rmSync(path.join(repo, 'test'), { recursive: true });
  assert.strictEqual(git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'gone').status, 0);

  const cache = path.join(tree, 'trees');
  for (const given of [repo, path.join(repo, '.git')]) {
    const r = runRunner([given, '--rev', sha.slice(0, 10), '--tree-cache', cache, '--list']);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout.trim().split('\n').pop(), '6 tests');
  }
  assert.ok(fs.existsSync(path.join(cache, sha, 'test', 'parallel', 'test-ok.js')));
  assert.ok(!fs.existsSync(path.join(cache, sha, 'README.md')));
  assert.strictEqual(runRunner([repo, '--rev', 'no-such-commit', '--tree-cache', cache, '--list']).status, 2);
});

test('--baseline selects its files and compares plain Node with its FAIL lines', () => {
  const baseline = path.join(tree, 'baseline.txt');
  fs.writeFileSync(baseline, [
    '# a comment naming parallel/test-unrelated.js is not a selection',
    'PASS parallel/test-ok.js',
    'FAIL parallel/test-unrelated.js',
    '  parallel/test-node-fails.js',
    '',
  ].join('\n'));
  const list = runRunner([tree, '--baseline', baseline, '--list']);
  assert.strictEqual(list.status, 0, list.stderr);
  assert.deepStrictEqual(list.stdout.trim().split('\n'),
                         ['parallel/test-node-fails.js', 'parallel/test-ok.js', 'parallel/test-unrelated.js', '3 tests']);

  const r = runRunner([tree, '--baseline', baseline, '--report', path.join(tree, 'out', 'baseline.md')]);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(r.stdout, /plain Node passed 2 of 3 there/);
  assert.match(r.stdout, /Failing on plain Node here but not in the baseline: parallel\/test-node-fails\.js/);
  assert.strictEqual(r.stdout.trimEnd().split('\n').pop(), '1 passed, 0 failed');

  fs.writeFileSync(baseline, 'PASS parallel/test-missing.js\n');
  assert.strictEqual(runRunner([tree, '--baseline', baseline, '--list']).status, 2);
});
