#!/usr/bin/env node
'use strict';

// Runs Node's own tests against rust-net, side by side with plain Node.
//
//   npm run test:node -- <node-test-tree> [options]
//   npm run test:node -- <git-repository> --rev <commit> [options]
//
// <node-test-tree> is a checkout of Node's tests: the directory holding
// test/ (or that test/ directory itself). With --rev, it is a git repository
// (a work tree or a bare git directory, e.g. a mirror of denoland/node_test)
// and the runner exports that commit's test/ into a cache outside this
// repository (--tree-cache) and runs that. --node takes a Node binary or a
// major version (the official binary, as npm run test:matrix gets it).
// docs/node-test-suite.md has the runs this project keeps count of. Every file under test/parallel,
// test/sequential and test/pummel that constructs a net server (contains
// `net.createServer`, `new net.Server` or `net.Server(`) runs twice: on plain
// Node, then with rust-net in place of node:net's server (`-r register.js`).
// As Node's tools/test.py does, each runs from the tree root with the flags
// of its `// Flags:` lines; parallel tests run --jobs at a time, with
// TEST_THREAD_ID telling them apart (their tmpdirs are test/.tmp.<id>), then
// sequential and pummel tests one at a time.
//
// Prints a table (test, Node result, rust-net result), writes a Markdown
// report with the output of every failure, and ends with the line
// `N passed, M failed`: rust-net's results over the tests that pass on plain
// Node. The exit status is 0 when the run completed (1 with --strict when
// M > 0), and 2 for usage errors.

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const REPO = path.join(__dirname, '..');
const REGISTER = path.join(REPO, 'register.js');
const DEFAULT_TREE_CACHE = path.join(os.tmpdir(), 'rust-net-node-suite', 'trees');
const SUITES = ['parallel', 'sequential', 'pummel'];
const SERIAL_SUITES = new Set(['sequential', 'pummel']);
const SELECT = /net\.createServer|new net\.Server|net\.Server\(/;
const TEST_FILE = /^test-.*\.(?:js|mjs|cjs)$/;
// Same patterns as Node's tools/test.py.
const FLAGS_LINE = /\/\/\s+Flags:(.*)/g;
const ENV_LINE = /\/\/\s+Env:(.*)/g;
const OUTPUT_LIMIT = 4 * 1024 * 1024;
const REPORT_TAIL_LINES = 60;

const USAGE = `Usage: npm run test:node -- <node-test-tree> [options]

  <node-test-tree>    directory holding Node's test/ (or test/ itself), or
                      with --rev a git repository (work tree or bare)

Options:
  --rev <commit>      run the test/ of this commit of the git repository
  --tree-cache <dir>  where --rev trees are exported (default ${DEFAULT_TREE_CACHE})
  --report <file>     Markdown report (default: ${path.join(os.tmpdir(), 'rust-net-node-suite', 'report.md')});
                      full logs go to <file minus .md>-logs/
  --jobs <n>          parallel tests at a time (default 2)
  --timeout <s>       per-run timeout in seconds (default 60)
  --filter <regex>    only tests whose path (e.g. parallel/test-net-foo.js) matches
  --baseline <file>   take the selection from <file> (ids alone or after PASS/FAIL
                      on a line) and compare plain Node's results with its FAIL lines
  --node <path|major> Node binary, or a major version: the official binary of
                      that line (default: the Node running this script)
  --list              print the selection and exit
  --strict            exit 1 when a test passing on plain Node fails with rust-net
`;

// `npm run` starts scripts in the package root; paths given on its command
// line are meant from where npm was run.
const BASE_DIR = process.env.npm_lifecycle_event === 'test:node' && process.env.INIT_CWD ?
  process.env.INIT_CWD : process.cwd();

function usageError(message) {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    tree: null,
    report: path.join(os.tmpdir(), 'rust-net-node-suite', 'report.md'),
    jobs: 2,
    timeout: 60,
    filter: null,
    node: process.execPath,
    rev: null,
    baseline: null,
    treeCache: DEFAULT_TREE_CACHE,
    list: false,
    strict: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usageError(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0); break;
      case '--report': opts.report = path.resolve(BASE_DIR, value()); break;
      case '--jobs': opts.jobs = Number(value()); break;
      case '--timeout': opts.timeout = Number(value()); break;
      case '--filter': opts.filter = new RegExp(value()); break;
      case '--node': {
        const node = value();
        opts.node = /^\d+$/.test(node) ? Number(node) : path.resolve(BASE_DIR, node);
        break;
      }
      case '--rev': opts.rev = value(); break;
      case '--baseline': opts.baseline = path.resolve(BASE_DIR, value()); break;
      case '--tree-cache': opts.treeCache = path.resolve(BASE_DIR, value()); break;
      case '--list': opts.list = true; break;
      case '--strict': opts.strict = true; break;
      default:
        if (arg.startsWith('-')) usageError(`unknown option ${arg}`);
        if (opts.tree !== null) usageError(`unexpected argument ${arg}`);
        opts.tree = arg;
    }
  }
  if (opts.tree === null) usageError('missing <node-test-tree>');
  if (!Number.isInteger(opts.jobs) || opts.jobs < 1) usageError('--jobs must be a positive integer');
  if (!(opts.timeout > 0)) usageError('--timeout must be a positive number of seconds');
  if (opts.rev !== null && !/^[0-9A-Za-z][\w./-]*$/.test(opts.rev)) usageError(`--rev ${opts.rev}: not a commit`);
  return opts;
}

// The Node binary to test with: a path, or the official binary of a major.
function resolveNode(node) {
  if (typeof node === 'string') return node;
  try {
    return require('./node-binaries').nodeFor(node);
  } catch (err) {
    usageError(`--node ${node}: ${err.message}`);
  }
}

function git(repo, args, options = {}) {
  return spawnSync('git', ['--git-dir', repo, ...args], { encoding: 'utf8', ...options });
}

// With --rev: exports <rev>:test of the repository into the tree cache
// (once per commit) and returns the tree root holding it.
function exportRevision(given, rev, cacheDir) {
  const dir = path.resolve(BASE_DIR, given);
  const repo = fs.existsSync(path.join(dir, '.git')) ? path.join(dir, '.git') : dir;
  const resolved = git(repo, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
  if (resolved.error) usageError(`--rev needs git: ${resolved.error.message}`);
  if (resolved.status !== 0) usageError(`${given}: no commit ${rev} in this git repository`);
  const sha = resolved.stdout.trim();
  const tree = path.join(cacheDir, sha);
  if (fs.existsSync(path.join(tree, '.complete'))) return tree;

  fs.mkdirSync(cacheDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(cacheDir, `.${sha.slice(0, 12)}-`));
  fs.chmodSync(staging, 0o755); // mkdtemp makes it private; tests may run as another user
  try {
    process.stderr.write(`exporting ${sha.slice(0, 12)}:test from ${repo} into ${tree}\n`);
    const missing = writeTree(repo, sha, staging);
    // A mirror may leave out its largest blobs; the tests that need them
    // fail on plain Node too, so they do not change the comparison.
    if (missing.length) {
      process.stderr.write(`  ${missing.length} file(s) absent from the repository, not exported: ` +
                           `${missing.join(', ')}\n`);
    }
    fs.writeFileSync(path.join(staging, '.complete'), `${sha}\n`);
    fs.rmSync(tree, { recursive: true, force: true });
    fs.renameSync(staging, tree);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return tree;
}

// Writes every file of <sha>:test under `dest` (git archive would stop at the
// first blob the repository lacks). Returns the paths of the missing ones.
function writeTree(repo, sha, dest) {
  const list = git(repo, ['ls-tree', '-r', '-z', sha, 'test'], { maxBuffer: 256 * 1024 * 1024 });
  if (list.status !== 0) throw new Error(`git ls-tree ${sha} test: ${list.stderr.trim()}`);
  const entries = list.stdout.split('\0').filter(Boolean).map((line) => {
    const [meta, file] = [line.slice(0, line.indexOf('\t')), line.slice(line.indexOf('\t') + 1)];
    const [mode, type, oid] = meta.split(' ');
    return { mode, type, oid, file };
  }).filter((e) => e.type === 'blob');
  const batch = git(repo, ['cat-file', '--batch'], {
    input: Buffer.from(entries.map((e) => `${e.oid}\n`).join('')), encoding: 'buffer', maxBuffer: 2 * 1024 * 1024 * 1024,
  });
  if (batch.status !== 0) throw new Error(`git cat-file --batch: ${batch.stderr.toString().trim()}`);
  const out = batch.stdout;
  const missing = [];
  let at = 0;
  for (const entry of entries) {
    const eol = out.indexOf(0x0a, at);
    const header = out.toString('latin1', at, eol).split(' ');
    at = eol + 1;
    if (header[1] === 'missing') {
      missing.push(entry.file);
      continue;
    }
    const size = Number(header[2]);
    const content = out.subarray(at, at + size);
    at += size + 1; // the content, then a newline
    const target = path.join(dest, entry.file);
    if (!target.startsWith(dest + path.sep)) throw new Error(`unsafe path in the tree: ${entry.file}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (entry.mode === '120000') {
      fs.symlinkSync(content.toString('utf8'), target);
    } else {
      fs.writeFileSync(target, content, { mode: entry.mode === '100755' ? 0o755 : 0o644 });
    }
  }
  return missing;
}

function nodeVersion(node) {
  const r = spawnSync(node, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '(unknown version)';
}

// The tree root: the directory holding test/.
function findRoot(given) {
  const dir = path.resolve(BASE_DIR, given);
  const hasSuites = (testDir) => SUITES.some((s) => fs.existsSync(path.join(testDir, s)));
  if (hasSuites(path.join(dir, 'test'))) return dir;
  if (path.basename(dir) === 'test' && hasSuites(dir)) return path.dirname(dir);
  usageError(`${given}: no test/parallel, test/sequential or test/pummel in it or under it`);
}

function parseHeader(source, pattern) {
  const out = [];
  for (const match of source.matchAll(pattern)) out.push(...match[1].trim().split(/\s+/).filter(Boolean));
  return out;
}

// A baseline file (such as shared/node-v26-suite-baseline.txt): the test
// ids it names, alone on a line or after PASS/FAIL, are the selection, and
// those after FAIL are the ones that failed on plain Node when it was made.
function readBaseline(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    usageError(`--baseline ${file}: ${err.message}`);
  }
  const ids = new Set();
  const failing = new Set();
  for (const line of text.split('\n')) {
    const m = /^\s*(?:(PASS|FAIL)\s+)?((?:parallel|sequential|pummel)\/test-\S+)\s*$/.exec(line);
    if (!m) continue;
    ids.add(m[2]);
    if (m[1] === 'FAIL') failing.add(m[2]);
  }
  if (ids.size === 0) usageError(`--baseline ${file}: names no test file`);
  return { file, ids, failing };
}

function selectTests(root, filter, baseline = null) {
  const tests = [];
  for (const suite of SUITES) {
    const dir = path.join(root, 'test', suite);
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir).sort()) {
      if (!TEST_FILE.test(name)) continue;
      const id = `${suite}/${name}`;
      if (filter && !filter.test(id)) continue;
      if (baseline && !baseline.ids.has(id)) continue;
      const source = fs.readFileSync(path.join(dir, name), 'utf8');
      if (!baseline && !SELECT.test(source)) continue;
      const env = {};
      for (const pair of parseHeader(source, ENV_LINE)) {
        const eq = pair.indexOf('=');
        if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      tests.push({
        id,
        file: path.join('test', suite, name),
        serial: SERIAL_SUITES.has(suite),
        flags: parseHeader(source, FLAGS_LINE),
        env,
      });
    }
  }
  return tests;
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

// Runs one test file once. Resolves with how it ended and its output
// (stdout and stderr interleaved as they arrived, the tail kept if huge).
function runOnce(opts, root, test, mode, slot) {
  const args = [
    ...(mode === 'rust-net' ? ['-r', REGISTER] : []),
    ...test.flags,
    test.file,
  ];
  const env = { ...process.env, ...test.env, TEST_THREAD_ID: String(slot) };
  // A runner started under `node --test` must not make the tests think they
  // are test-runner children.
  delete env.NODE_TEST_CONTEXT;
  const command = [opts.node, ...args].join(' ');
  const started = Date.now();

  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    let timedOut = false;
    let exit = null;
    const collect = (chunk) => {
      chunks.push(chunk);
      size += chunk.length;
      while (size > OUTPUT_LIMIT && chunks.length > 1) size -= chunks.shift().length;
    };
    let child;
    try {
      // Its own process group, so a timeout can end the test with every
      // process it started (cluster workers, forked children).
      child = spawn(opts.node, args, {
        cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      resolve({ mode, command, status: 'FAIL', detail: `spawn: ${err.message}`, ms: 0, output: '' });
      return;
    }
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, opts.timeout * 1000);

    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(grace);
      const ms = Date.now() - started;
      const output = Buffer.concat(chunks).toString('utf8');
      let status = 'PASS';
      let detail = 'exit 0';
      if (timedOut) {
        status = 'FAIL';
        detail = `timeout (${opts.timeout} s)`;
      } else if (exit.signal) {
        status = 'FAIL';
        detail = exit.signal;
      } else if (exit.code !== 0) {
        status = 'FAIL';
        detail = `exit ${exit.code}`;
      }
      resolve({ mode, command, status, detail, ms, output });
    };
    let grace = null;
    child.on('error', (err) => {
      exit = { code: null, signal: null };
      collect(Buffer.from(`\n[runner] ${err.message}\n`));
      finish();
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Processes the test left behind in its group would hold the output
      // pipes open; they are ended, and the output read for a moment more.
      killGroup(child.pid, 'SIGKILL');
      grace = setTimeout(finish, 2000);
    });
    child.on('close', () => {
      if (exit === null) exit = { code: child.exitCode, signal: child.signalCode };
      finish();
    });
  });
}

async function runTest(opts, root, test, slot) {
  const node = await runOnce(opts, root, test, 'node', slot);
  const rust = await runOnce(opts, root, test, 'rust-net', slot);
  return { test, node, rust };
}

function label(run) {
  return run.status === 'PASS' ? 'PASS' : `FAIL (${run.detail})`;
}

async function runPool(items, jobs, work) {
  let next = 0;
  const worker = async (slot) => {
    while (next < items.length) {
      const item = items[next++];
      await work(item, slot);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, (_, slot) => worker(slot)));
}

function tailLines(text, n) {
  const lines = text.replace(/\s+$/, '').split('\n');
  const kept = lines.slice(-n);
  return (lines.length > n ? [`[... ${lines.length - n} earlier lines]`] : []).concat(kept).join('\n');
}

function fence(text) {
  const longest = Math.max(2, ...(text.match(/`+/g) || []).map((s) => s.length));
  const ticks = '`'.repeat(longest + 1);
  return `${ticks}\n${text}\n${ticks}`;
}

function logName(id, mode) {
  return `${id.replace(/[/\\]/g, '__')}.${mode}.log`;
}

function writeReport(opts, root, results, summary, logsDir, durationMs) {
  const md = [];
  const regressions = results.filter((r) => r.node.status === 'PASS' && r.rust.status !== 'PASS');
  const nodeFailures = results.filter((r) => r.node.status !== 'PASS');
  md.push('# Node\'s test suite against rust-net', '');
  md.push(`- Node: ${opts.nodeVersion} (\`${opts.node}\`)`);
  md.push(`- Test tree: \`${root}\`${opts.rev ? ` (commit ${opts.rev} of \`${opts.tree}\`)` : ''}`);
  md.push(`- rust-net: \`${REPO}\` (preloaded with \`-r ${REGISTER}\`)`);
  md.push(`- Selected: ${results.length} files under test/{${SUITES.join(',')}} containing ` +
          '`net.createServer`, `new net.Server` or `net.Server(`' +
          (opts.filter ? ` and matching \`${opts.filter}\`` : ''));
  md.push(`- Run: ${new Date().toISOString()}, ${(durationMs / 1000).toFixed(0)} s, ` +
          `${opts.jobs} parallel jobs, ${opts.timeout} s timeout per run`);
  md.push(`- Full output of every run: \`${logsDir}\``, '');
  md.push('## Summary', '');
  md.push(`- Plain Node: ${summary.nodePass} pass, ${nodeFailures.length} fail`);
  md.push(`- rust-net, over the ${summary.nodePass} that pass on plain Node: ` +
          `**${summary.passed} passed, ${summary.failed} failed**`);
  md.push(`- rust-net on the tests that fail on plain Node: ${summary.extraPass} pass, ` +
          `${nodeFailures.length - summary.extraPass} fail`);
  for (const line of baselineLines(summary.baseline, results.length)) md.push(`- ${line}`);
  md.push('');

  md.push('## Failing with rust-net, passing on plain Node', '');
  if (regressions.length === 0) md.push('None.', '');
  for (const { test, rust } of regressions) {
    md.push(`### ${test.id}`, '');
    md.push(`- Result: ${label(rust)} after ${(rust.ms / 1000).toFixed(1)} s`);
    md.push(`- Command (cwd \`${root}\`): \`${rust.command}\``, '');
    md.push(fence(tailLines(rust.output, REPORT_TAIL_LINES) || '(no output)'), '');
  }

  md.push('## Failing on plain Node', '');
  if (nodeFailures.length === 0) md.push('None.', '');
  for (const { test, node, rust } of nodeFailures) {
    md.push(`### ${test.id}`, '');
    md.push(`- Plain Node: ${label(node)}; rust-net: ${label(rust)}`, '');
    md.push(fence(tailLines(node.output, 20) || '(no output)'), '');
  }

  md.push('## All results', '', '| test | Node | rust-net |', '| --- | --- | --- |');
  for (const { test, node, rust } of results) {
    md.push(`| ${test.id} | ${label(node)} | ${label(rust)} |`);
  }
  md.push('');
  fs.mkdirSync(path.dirname(opts.report), { recursive: true });
  fs.writeFileSync(opts.report, md.join('\n'));
}

function baselineLines(baseline, total) {
  if (!baseline) return [];
  const lines = [`Baseline ${baseline.file}: plain Node passed ${total - baseline.nodeFailed} of ${total} there`];
  if (baseline.failedHere.length) lines.push(`Failing on plain Node here but not in the baseline: ${baseline.failedHere.join(', ')}`);
  if (baseline.passedHere.length) lines.push(`Passing on plain Node here but failing in the baseline: ${baseline.passedHere.join(', ')}`);
  if (!baseline.failedHere.length && !baseline.passedHere.length) lines.push('Plain Node here matches the baseline exactly');
  return lines;
}

function printTable(results) {
  const rows = [['test', 'Node', 'rust-net'],
                ...results.map((r) => [r.test.id, label(r.node), label(r.rust)])];
  const widths = [0, 1].map((c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row) => `${row[0].padEnd(widths[0])}  ${row[1].padEnd(widths[1])}  ${row[2]}`.trimEnd();
  const out = [line(rows[0]), line(['-'.repeat(widths[0]), '-'.repeat(widths[1]), '--------'])];
  for (const row of rows.slice(1)) out.push(line(row));
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const root = findRoot(opts.rev === null ? opts.tree : exportRevision(opts.tree, opts.rev, opts.treeCache));
  const baseline = opts.baseline === null ? null : readBaseline(opts.baseline);
  const tests = selectTests(root, opts.filter, baseline);
  if (baseline && !opts.filter) {
    const found = new Set(tests.map((t) => t.id));
    const absent = [...baseline.ids].filter((id) => !found.has(id));
    if (absent.length) usageError(`--baseline names files not in ${root}: ${absent.join(', ')}`);
  }
  if (opts.list) {
    for (const t of tests) process.stdout.write(`${t.id}${t.flags.length ? `  ${t.flags.join(' ')}` : ''}\n`);
    process.stdout.write(`${tests.length} tests\n`);
    return;
  }
  if (!fs.existsSync(REGISTER)) usageError(`${REGISTER} is missing`);
  opts.node = resolveNode(opts.node);
  opts.nodeVersion = nodeVersion(opts.node);

  const logsDir = opts.report.replace(/\.md$/i, '') + '-logs';
  fs.rmSync(logsDir, { recursive: true, force: true });
  fs.mkdirSync(logsDir, { recursive: true });

  const started = Date.now();
  const results = new Map();
  let done = 0;
  const record = (result) => {
    results.set(result.test.id, result);
    for (const run of [result.node, result.rust]) {
      fs.writeFileSync(path.join(logsDir, logName(result.test.id, run.mode)),
                       `$ cd ${root} && ${run.command}\n# ${label(run)} after ${run.ms} ms\n\n${run.output}`);
    }
    done++;
    const mark = result.node.status === 'PASS' && result.rust.status !== 'PASS' ? '  <-- rust-net only' : '';
    process.stderr.write(`[${String(done).padStart(String(tests.length).length)}/${tests.length}] ` +
                         `${result.test.id}: node ${label(result.node)}, rust-net ${label(result.rust)}${mark}\n`);
  };

  const parallel = tests.filter((t) => !t.serial);
  const serial = tests.filter((t) => t.serial);
  process.stderr.write(`Node ${opts.nodeVersion} (${opts.node})\n`);
  process.stderr.write(`${tests.length} tests from ${root} (${parallel.length} parallel, ` +
                       `${serial.length} sequential/pummel), each on plain Node and with rust-net\n`);
  await runPool(parallel, opts.jobs, async (t, slot) => record(await runTest(opts, root, t, slot)));
  await runPool(serial, 1, async (t, slot) => record(await runTest(opts, root, t, slot)));

  const ordered = tests.map((t) => results.get(t.id));
  const nodePassing = ordered.filter((r) => r.node.status === 'PASS');
  const summary = {
    nodePass: nodePassing.length,
    passed: nodePassing.filter((r) => r.rust.status === 'PASS').length,
    failed: nodePassing.filter((r) => r.rust.status !== 'PASS').length,
    extraPass: ordered.filter((r) => r.node.status !== 'PASS' && r.rust.status === 'PASS').length,
  };
  if (baseline) {
    // Plain Node's results here against the baseline's: flaky or
    // environment-dependent tests show up as differences.
    summary.baseline = {
      file: baseline.file,
      nodeFailed: ordered.filter((r) => baseline.failing.has(r.test.id)).length,
      passedHere: ordered.filter((r) => baseline.failing.has(r.test.id) && r.node.status === 'PASS')
        .map((r) => r.test.id),
      failedHere: ordered.filter((r) => !baseline.failing.has(r.test.id) && r.node.status !== 'PASS')
        .map((r) => r.test.id),
    };
  }
  writeReport(opts, root, ordered, summary, logsDir, Date.now() - started);

  printTable(ordered);
  process.stdout.write(`\nPlain Node ${opts.nodeVersion}: ${summary.nodePass} of ${ordered.length} pass.\n`);
  for (const line of baselineLines(summary.baseline, ordered.length)) process.stdout.write(`${line}\n`);
  const failing = nodePassing.filter((r) => r.rust.status !== 'PASS');
  if (failing.length > 0) {
    process.stdout.write(`Failing with rust-net only: ${failing.map((r) => r.test.id).join(', ')}\n`);
  }
  process.stdout.write(`Report: ${opts.report}\n`);
  process.stdout.write(`${summary.passed} passed, ${summary.failed} failed\n`);
  if (opts.strict && summary.failed > 0) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(2);
});
