'use strict';

// rust-net's benchmark suite: `npm run bench` (docs/benchmarks.md; the
// figures in bench/RESULTS.md, written by bench/report.js). Runs the same server program (bench/server.js) on
// node:net and on rust-net — rust-net with its automatic accept placement and
// with each placement forced — in the same alternating rounds, with the load
// coming from a separate process (bench/loadgen, or wrk for HTTP). Every row
// runs in one or two regimes:
//
//   unpinned  no affinity set: the server and the load generator share the
//             machine's CPUs as the scheduler likes (a spare core, if any);
//   pinned    the server process (all its threads; in the cluster row the
//             primary and its workers) confined to one CPU with
//             `taskset -c <S>`, the load generator (loadgen or wrk) to another
//             with `taskset -c <L>`: the server has no spare core.
//
// The same programs also run on Bun's and Deno's node:net and node:http
// (variants bun and deno: their official binaries from the npm registry,
// cached like test:matrix's Node binaries; skipped with a message where they
// cannot be had), and on rust-net with shareAcrossThreads on two worker
// threads (variant threads, accept-and-serve and http rows only).
//
// It reports the median of each figure over the rounds and the ratios
// variant / node:net per variant, one table per regime and one table of
// ratios across regimes.
//
//   node bench/run.js [--node 22,24,26] [--quick] [--rounds N] [--only row,row]
//                     [--regime unpinned,pinned] [--variants node,auto,runtime,event-loop,bun,deno,threads]
//                     [--peers]
//                     [--cpus S,L] [--exp DIR[,DIR2]] [--max-minutes M]
//                     [--no-write] [--write] [--no-check] [--check]
//
// rows      churn latency echo http cluster memory (cpu rows 6 and 7 come from
//           churn). Default: all six unpinned; churn latency http cluster pinned
//           (echo and memory never touch the accept path). With --only, the
//           listed rows in every selected regime. `threads` (bench/threads.js:
//           2 worker threads sharing a port vs one loop, cluster, reusePort)
//           runs after them, or alone with --only threads [--threads-node
//           PATH] [--threads-seconds S].
// variants  node (node:net), auto (rust-net with RUST_NET_ACCEPT_PLACEMENT
//           unset: the default a user gets), runtime and event-loop (rust-net
//           with RUST_NET_ACCEPT_PLACEMENT=runtime / event-loop in the server's
//           environment). node is always measured: every ratio is against it.
//           bun and deno: the same server program on Bun's and Deno's own
//           node:net / node:http (every row but cluster; BENCH_BUN=/path and
//           BENCH_DENO=/path use a given binary). threads: rust-net (auto)
//           with BENCH_SERVER_THREADS=2 — two worker threads, shareAcrossThreads
//           on the one port (churn and http rows). Default: all but
//           event-loop, which is what auto chooses on every machine since
//           38d14fa (--variants ... adds it back), to keep a full run near
//           25 minutes.
// --peers   short for --variants node,auto,bun,deno,threads (a quicker run of
//           the comparison with the other runtimes)
// --node    the Node the servers run on: majors (fetched from the npm registry
//           like test:matrix's binaries, scripts/node-binaries.js) or paths.
//           Several: one whole run per Node, one after the other, each
//           writing bench/results/node<major>.json; RESULTS.md (bench/report.js)
//           shows every Node's figures side by side. Default: 22,24,26 for a
//           complete run, this Node otherwise.
// --cpus    the server's and the load generator's CPU in the pinned regime
//           (default: the first two CPUs this process may use).
// --quick   fewer rounds, shorter runs; does not touch RESULTS.md unless --write
// --no-check  skip the load-generator headroom check against a trivial server
// --max-minutes  stop everything (and exit 1) if the run takes longer than this
// --dry-run print the plan (regimes, rows, variants, expected duration) and exit
// BENCH_WRK=/path/to/wrk  wrk when it is not on PATH

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { renderSvg } = require('./plot');
const report = require('./report');

const ROOT = path.join(__dirname, '..');
// RUST_NET_DIR: measure another rust-net checkout instead of this one (a clean
// build of a commit, when others are rebuilding this working tree);
// bench/server.js reads the same variable.
const RUST_NET = path.resolve(process.env.RUST_NET_DIR || ROOT);
if (process.env.RUST_NET_DIR) process.env.RUST_NET_DIR = RUST_NET;
const BENCH = __dirname;
const LOADGEN_DIR = path.join(BENCH, 'loadgen');
const LOADGEN = path.join(LOADGEN_DIR, 'target', 'release', 'loadgen');
const OUT_DIR = path.join(BENCH, 'out');
const PLACEMENT_VAR = 'RUST_NET_ACCEPT_PLACEMENT';
// wrk, found on PATH unless BENCH_WRK names it.
const WRK = process.env.BENCH_WRK || 'wrk';

// Fixed ports below the ephemeral range (32768-60999), one per row; each
// variant adds 10 (up to six variants), the pinned regime adds 100.
const PORTS = { churn: 17401, latency: 17402, echo: 17403, http: 17404, memory: 17405, cluster: 17406, check: 17409 };

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2);
const opt = (name) => argv.includes(`--${name}`);
const optVal = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const list = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
const QUICK = opt('quick');
// The Nodes the servers run on (see --node above).
const NODE_SPECS = list(optVal('node', '') || '');
const CFG = QUICK ? {
  rounds: Number(optVal('rounds', 3)),
  churnSeconds: 0.5,
  latencyCount: 1000,
  echoSeconds: 0.5,
  httpSeconds: 1,
  memoryConnections: 10000,
  memoryRounds: 1,
} : {
  rounds: Number(optVal('rounds', 8)),
  churnSeconds: 1.5,
  latencyCount: 3000,
  echoSeconds: 1.5,
  httpSeconds: 2,
  memoryConnections: 10000,
  memoryRounds: 3,
};
if (!(CFG.rounds >= 1)) die('--rounds must be at least 1');

const ALL_ROWS = ['churn', 'latency', 'echo', 'http', 'cluster', 'memory'];
const REGIME_ROWS = {
  unpinned: ALL_ROWS,
  pinned: ['churn', 'latency', 'http', 'cluster'],
};
const ONLY = optVal('only', null);
// `--only admission`: issue 14's rows (PROXY header cost, rejection cost)
// live in bench/admission.js and run alone; --quick, --rounds, --max-minutes,
// --write and --no-write are passed on.
if (ONLY && list(ONLY).includes('admission')) {
  if (list(ONLY).length > 1) die('the admission row runs alone: --only admission');
  const at = argv.indexOf('--only');
  const pass = argv.filter((_, i) => i !== at && i !== at + 1);
  process.exit(spawnSync(process.execPath, [path.join(__dirname, 'admission.js'), ...pass], { stdio: 'inherit' }).status ?? 1);
}
// `threads` (bench/threads.js) compares designs for sharing a port across
// event loops rather than node:net with rust-net, so it runs on its own,
// after the other rows (or alone, with --only threads).
const THREADS_ROWS = ONLY ? list(ONLY).includes('threads') : true;
const ONLY_ROWS = ONLY ? list(ONLY).filter((r) => r !== 'threads') : null;
for (const r of ONLY_ROWS || []) if (!ALL_ROWS.includes(r)) die(`unknown row ${r} (rows: ${ALL_ROWS.join(' ')})`);
const REGIMES = list(optVal('regime', optVal('regimes', 'unpinned,pinned')));
for (const r of REGIMES) if (!REGIME_ROWS[r]) die(`unknown regime ${r} (regimes: unpinned pinned)`);
const WRITE = (QUICK ? opt('write') : !opt('no-write')) && !optVal('exp', null);
const CHECK_FLAG = opt('check') || (!opt('no-check') && !QUICK && !ONLY);

// --exp DIR1[,DIR2]: up to two more implementations, 'exp' and 'exp2' —
// rust-net from other checkouts (a scratch copy with an experiment), with
// their automatic placement, measured in the same alternating rounds.
const EXP = optVal('exp', null);
const EXP_DIRS = EXP ? list(EXP).map((d) => path.resolve(d)) : [];
if (EXP_DIRS[0]) process.env.RUST_NET_EXP_DIR = EXP_DIRS[0];
if (EXP_DIRS[1]) process.env.RUST_NET_EXP2_DIR = EXP_DIRS[1];

// A variant is one implementation and placement: what a server is started as.
// `placement: null` removes RUST_NET_ACCEPT_PLACEMENT from the server's
// environment (rust-net's default, what a user gets without configuration).
const VARIANTS = {
  node: { label: 'node:net', impl: 'net', placement: null },
  auto: { label: 'auto', impl: 'rust', placement: null },
  runtime: { label: 'runtime', impl: 'rust', placement: 'runtime' },
  'event-loop': { label: 'event-loop', impl: 'rust', placement: 'event-loop' },
  exp: { label: 'exp', impl: 'exp', placement: null, dir: EXP_DIRS[0] },
  exp2: { label: 'exp2', impl: 'exp2', placement: null, dir: EXP_DIRS[1] },
  // Other runtimes: their own node:net / node:http run the same program
  // (impl 'net'); `bin` is filled in by resolvePeers(). No cluster row: Deno
  // has no node:cluster and Bun's is not Node's round-robin.
  bun: { label: 'Bun', impl: 'net', runtime: 'bun', placement: null, rows: ['churn', 'latency', 'echo', 'http', 'memory'] },
  deno: { label: 'Deno', impl: 'net', runtime: 'deno', placement: null, rows: ['churn', 'latency', 'echo', 'http', 'memory'] },
  // rust-net sharing its port across two event loops (shareAcrossThreads).
  threads: { label: 'rust-net ×2 threads', impl: 'rust', placement: null, threads: 2, rows: ['churn', 'http'] },
};
const PEERS = ['bun', 'deno'];
// --impls net,rust (older spelling) means --variants node,auto.
const LEGACY = { net: 'node', rust: 'auto' };
let VARS = optVal('variants', null) ? list(optVal('variants')) :
  optVal('impls', null) ? list(optVal('impls')).map((v) => LEGACY[v] || v) :
  opt('peers') ? ['node', 'auto', 'bun', 'deno', 'threads'] :
  ['node', 'auto', 'runtime', 'bun', 'deno', 'threads'];
for (const v of VARS) if (!VARIANTS[v] || (v.startsWith('exp') && !VARIANTS[v].dir)) die(`unknown variant ${v} (variants: node auto runtime event-loop bun deno threads; exp with --exp)`);
if (!VARS.includes('node')) VARS.unshift('node'); // every ratio is against node:net
for (const [i, d] of EXP_DIRS.entries()) if (!VARS.includes(i ? 'exp2' : 'exp')) VARS.push(i ? 'exp2' : 'exp');
VARS = [...new Set(VARS)];
if (VARS.length > 8) die('at most eight variants');
let RUST_VARS = VARS.filter((v) => v !== 'node');
// The variant whose ratios are held against the targets: the automatic choice.
const PRIMARY = RUST_VARS.includes('auto') ? 'auto' : RUST_VARS[0];
const LABEL = (v) => VARIANTS[v].label;
// The variants that run `row`.
const rowVars = (row) => VARS.filter((v) => !VARIANTS[v].rows || VARIANTS[v].rows.includes(row));

const MAX_MINUTES = Number(optVal('max-minutes', QUICK ? 30 : 75));

// A complete run: every row, regime and variant (the only kind that writes
// bench/results/ and RESULTS.md).
const COMPLETE = !ONLY && !optVal('regime', null) && !optVal('regimes', null) && !optVal('variants', null) &&
  !optVal('impls', null) && !opt('peers') && !EXP;
// The Nodes of a complete run with no --node: the maintained lines.
const DEFAULT_NODES = ['22', '24', '26'];
const NODE_RUNS = NODE_SPECS.length ? NODE_SPECS : COMPLETE && !QUICK ? DEFAULT_NODES : [];
// The Node binary the servers run on in this (single-Node) run.
const SERVER_NODE = NODE_RUNS.length === 1 ? resolveNode(NODE_RUNS[0]) : process.execPath;

// A major ("24") is fetched into the cache test:matrix uses; anything else
// is a path to a node binary.
function resolveNode(spec) {
  if (/^\d+$/.test(spec)) {
    if (Number(spec) === Number(process.versions.node.split('.')[0])) return process.execPath;
    return require('../scripts/node-binaries').nodeFor(Number(spec));
  }
  const bin = path.resolve(spec);
  if (spawnSync(bin, ['--version']).status !== 0) die(`--node ${spec}: not a node binary that runs`);
  return bin;
}

// ---------------------------------------------------------------- helpers

function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

const children = new Set();
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
function killAll() {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { killAll(); process.exit(130); });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...a) => console.log(...a);

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function hardNofile() {
  const out = sh('sh', ['-c', 'ulimit -Hn']);
  if (out === 'unlimited') return 1 << 20;
  return Number(out) || 1024;
}

// "0-3,6" -> [0, 1, 2, 3, 6]
function parseCpuList(s) {
  const out = [];
  for (const part of String(s || '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

function allowedCpus() {
  try {
    const m = /Cpus_allowed_list:\s+(\S+)/.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    if (m) return parseCpuList(m[1]);
  } catch { /* not Linux */ }
  return os.cpus().map((_, i) => i);
}

// The cgroup v2 CPU quota of this process, recorded with the run so a
// reader can tell a throttled container: "max 100000" (none) or
// "<quota> <period>".
function cgroupCpuMax() {
  try {
    const rel = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
    const dir = path.join('/sys/fs/cgroup', rel ? rel.slice(3) : '');
    return fs.readFileSync(path.join(dir, 'cpu.max'), 'utf8').trim();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- regimes

// Where each process of a regime runs: null = anywhere (no taskset).
function makeRegimes() {
  const out = [];
  for (const name of REGIMES) {
    if (name === 'unpinned') {
      out.push({ name, serverCpu: null, loadCpu: null, portOffset: 0, rows: ONLY_ROWS || REGIME_ROWS.unpinned });
      continue;
    }
    const allowed = allowedCpus();
    const cpus = optVal('cpus', null) ? list(optVal('cpus')).map(Number) : allowed.slice(0, 2);
    let why = null;
    if (spawnSync('taskset', ['-c', '0', 'true']).error) why = 'taskset is not installed (apt-get install util-linux)';
    else if (cpus.length < 2 || cpus[0] === cpus[1]) why = `it needs two CPUs and this process may use ${allowed.join(',') || 'none'}`;
    else if (!cpus.every((c) => allowed.includes(c))) why = `--cpus ${cpus.join(',')} is not within this process's CPUs (${allowed.join(',')})`;
    if (why) {
      log(`bench: skipping the pinned regime: ${why}`);
      continue;
    }
    out.push({ name, serverCpu: cpus[0], loadCpu: cpus[1], portOffset: 100, rows: ONLY_ROWS || REGIME_ROWS.pinned });
  }
  return out;
}

// The command line for `cmd args` confined to `cpu` (or not, when null).
function onCpu(cpu, cmd, args) {
  return cpu == null ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
}

// ---------------------------------------------------------------- set-up

// Checked in a child process: this process never maps the addon, so a
// rebuild of it during a run (someone runs `npm run build`) cannot crash it.
function ensureAddon() {
  for (const dir of [RUST_NET, ...EXP_DIRS]) {
    const r = spawnSync(SERVER_NODE, ['-e', `require(${JSON.stringify(dir)})`], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.error(`bench: rust-net's addon does not load from ${dir}:\n${(r.stderr || '').trim().split('\n').slice(0, 4).join('\n')}`);
      console.error('bench: run `npm install` (or `npm run build`) first.');
      process.exit(1);
    }
  }
}

// Finds (or downloads, unless `dryRun`) Bun's and Deno's binaries for the
// peer variants; a peer that cannot be had is dropped with a message.
function resolvePeers(dryRun) {
  const { peerFor, cacheDir } = require('../scripts/node-binaries');
  for (const name of PEERS.filter((v) => VARS.includes(v))) {
    const given = process.env[`BENCH_${name.toUpperCase()}`];
    let found;
    if (given) {
      const r = spawnSync(given, ['--version'], { encoding: 'utf8' });
      found = r.status === 0 ? { bin: given, version: r.stdout.trim().replace(/^deno /, '').split(/\s/)[0] } :
        { why: `BENCH_${name.toUpperCase()}=${given} does not run` };
    } else if (dryRun) {
      const exe = path.join(cacheDir, name, 'package', name === 'bun' ? path.join('bin', 'bun') : 'deno');
      found = fs.existsSync(exe) ? { bin: exe, version: '(cached)' } : { bin: exe, version: '(to be downloaded from npm)' };
    } else {
      found = peerFor(name);
    }
    if (found.why) {
      log(`bench: skipping ${LABEL(name)}: ${found.why}`);
      results.skipped.push(name);
      VARS = VARS.filter((v) => v !== name);
      RUST_VARS = RUST_VARS.filter((v) => v !== name);
      continue;
    }
    VARIANTS[name].bin = found.bin;
    VARIANTS[name].version = found.version;
  }
}

function ensureLoadgen() {
  const src = path.join(LOADGEN_DIR, 'src', 'main.rs');
  const stale = !fs.existsSync(LOADGEN) ||
    fs.statSync(src).mtimeMs > fs.statSync(LOADGEN).mtimeMs ||
    fs.statSync(path.join(LOADGEN_DIR, 'Cargo.toml')).mtimeMs > fs.statSync(LOADGEN).mtimeMs;
  if (!stale) return;
  log('bench: building the load generator (cargo build --release in bench/loadgen)');
  const r = spawnSync('cargo', ['build', '--release', '--quiet'], { cwd: LOADGEN_DIR, stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    console.error('bench: could not build bench/loadgen; a Rust toolchain is needed (https://rustup.rs)');
    process.exit(1);
  }
}

function haveWrk() {
  const r = spawnSync(WRK, ['--version'], { encoding: 'utf8' });
  return !r.error;
}

function machineInfo(regimes) {
  const cpuModel = os.cpus()[0] ? os.cpus()[0].model : 'unknown';
  let virt = 'unknown';
  try {
    const cmdline = fs.readFileSync('/proc/cmdline', 'utf8');
    if (/firecracker/i.test(cmdline)) virt = 'Firecracker microVM';
  } catch { /* not Linux */ }
  if (virt === 'unknown' && sh('sh', ['-c', 'dmesg 2>/dev/null | grep -qi gvisor && echo y']) === 'y') {
    virt = 'gVisor (runsc)';
  }
  const commit = sh('git', ['-C', RUST_NET, 'rev-parse', '--short=12', 'HEAD']) || 'unknown';
  const dirty = sh('git', ['-C', RUST_NET, 'status', '--porcelain', '--', 'src', 'lib', 'index.js', 'register.js', 'Cargo.toml']);
  const pinned = regimes.find((r) => r.name === 'pinned');
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: os.cpus().length,
    cpuModel,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    virt,
    node: sh(SERVER_NODE, ['--version']) || 'unknown',
    uv: sh(SERVER_NODE, ['-p', 'process.versions.uv']) || 'unknown',
    nodeBin: SERVER_NODE,
    commit: commit + (dirty ? ' (with uncommitted changes in src/ or lib/)' : '') +
      (RUST_NET !== ROOT ? ` at ${RUST_NET}` : ''),
    loadStart: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    nofileHard: hardNofile(),
    cpusAllowed: allowedCpus().join(','),
    cgroupCpuMax: cgroupCpuMax(),
    pinnedCpus: pinned ? { server: pinned.serverCpu, load: pinned.loadCpu } : null,
    placementEnvOfHarness: process.env[PLACEMENT_VAR] ?? null,
    peers: Object.fromEntries(PEERS.filter((v) => VARS.includes(v)).map((v) => [v, VARIANTS[v].version])),
  };
}

// ---------------------------------------------------------------- processes

function registerPath(impl) {
  const dir = impl === 'rust' ? RUST_NET : impl === 'exp' ? EXP_DIRS[0] : EXP_DIRS[1];
  return path.join(dir, 'register.js');
}

// The server's environment for `variant`: the accept placement set or
// removed, and no NODE_OPTIONS (a stray `-r rust-net/register` there would
// turn node:net into rust-net).
function serverEnv(variant) {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const placement = VARIANTS[variant].placement;
  if (placement) env[PLACEMENT_VAR] = placement;
  else delete env[PLACEMENT_VAR];
  if (VARIANTS[variant].threads) env.BENCH_SERVER_THREADS = String(VARIANTS[variant].threads);
  else delete env.BENCH_SERVER_THREADS;
  return env;
}

// Starts bench/server.js as `variant` in `mode` (on the regime's server CPU),
// with RLIMIT_NOFILE raised to the hard limit in the spawning shell; resolves
// once it listens, after checking it runs where and as it should.
async function startServer(variant, mode, port, regime) {
  const { impl, runtime } = VARIANTS[variant];
  const nodeArgs = ['--expose-gc'];
  // The http and cluster apps are plain http.createServer programs; rust-net
  // takes them over the way a user would: node -r rust-net/register.
  if (impl !== 'net' && (mode === 'http' || mode === 'cluster')) nodeArgs.push('-r', registerPath(impl));
  // Bun and Deno run the same file: Bun as it is (Bun.gc stands in for
  // --expose-gc), Deno with its Node compatibility for a CommonJS file.
  const runner = runtime === 'bun' ? [VARIANTS[variant].bin] :
    runtime === 'deno' ? [VARIANTS[variant].bin, 'run', '-A', '--no-lock', '--unstable-detect-cjs', '--v8-flags=--expose-gc'] :
    [SERVER_NODE, ...nodeArgs];
  const script = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
  const [cmd, args] = onCpu(regime.serverCpu, 'sh', ['-c', script, 'sh', ...runner,
                                                      path.join(BENCH, 'server.js'), impl, mode, String(port)]);
  const child = track(spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: serverEnv(variant) }));
  const pending = new Map();
  let nextId = 1;
  const what = `${LABEL(variant)} ${mode} server (${regime.name})`;
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let identity = null;
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start`)), 20000);
    child.on('message', (msg) => {
      if (msg.ready) { clearTimeout(timer); identity = msg.identity; resolve(msg.sample); return; }
      const p = pending.get(msg.reply);
      if (p) { pending.delete(msg.reply); p(msg.sample); }
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`${what} exited (${code})`)); });
  });
  const stop = async () => {
    try { child.send({ cmd: 'exit' }); } catch { /* gone */ }
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  await ready;
  // Is it pinned as asked, and does it see the placement asked for?
  const problems = [];
  if (regime.serverCpu != null && identity.cpus !== String(regime.serverCpu)) {
    problems.push(`runs on CPUs ${identity.cpus}, not ${regime.serverCpu}`);
  }
  if ((identity.placementEnv ?? null) !== (VARIANTS[variant].placement ?? null)) {
    problems.push(`sees ${PLACEMENT_VAR}=${identity.placementEnv}`);
  }
  if (impl !== 'net' && (mode === 'http' || mode === 'cluster') && !identity.registered) {
    problems.push('is not on rust-net (register did not take)');
  }
  if (identity.runtime && !identity.runtime.startsWith(runtime || 'node')) {
    problems.push(`runs on ${identity.runtime}, not ${runtime}`);
  }
  if ((identity.threads || 1) !== (VARIANTS[variant].threads || 1)) {
    problems.push(`serves on ${identity.threads || 1} threads, not ${VARIANTS[variant].threads}`);
  }
  if (problems.length) {
    await stop();
    throw new Error(`${what} ${problems.join('; ')}`);
  }
  if (identity.placement && VARIANTS[variant].placement && identity.placement !== VARIANTS[variant].placement) {
    log(`bench: warning: ${what} reports placement ${identity.placement}, not ${VARIANTS[variant].placement}`);
  }
  results.identities.push({ regime: regime.name, variant, mode, ...identity });
  return {
    pid: child.pid,
    identity,
    sample(gc = false) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('server sample timed out')), 10000);
        pending.set(id, (s) => { clearTimeout(timer); resolve(s); });
        child.send({ cmd: 'sample', id, gc });
      });
    },
    stop,
  };
}

// Runs a bounded command and resolves with its stdout; killed if it
// overruns `limitMs`.
function runBounded(cmd, args, limitMs, { onLine, stdin = 'ignore' } = {}) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { stdio: [stdin, 'pipe', 'inherit'] }));
    let out = '';
    let buf = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      if (onLine) {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i), child);
          buf = buf.slice(i + 1);
        }
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${[cmd, ...args].map((a) => path.basename(String(a))).slice(0, 5).join(' ')} failed (${code ?? signal})`));
      else resolve(out);
    });
  });
}

function lastJson(out) {
  const lines = out.trim().split('\n').filter((l) => l.startsWith('{'));
  return JSON.parse(lines[lines.length - 1]);
}

// The load generator, on the regime's load CPU.
async function loadgen(regime, args, seconds) {
  const [cmd, a] = onCpu(regime.loadCpu, LOADGEN, args.map(String));
  return lastJson(await runBounded(cmd, a, (seconds + 30) * 1000));
}

// Busy CPU time of the whole machine so far, in seconds (/proc/stat: user,
// nice, system, irq, softirq, steal; USER_HZ is 100).
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}

// CPU that neither the server under test nor the load generator used during a
// window, in cores: other people's work on the machine (and the idle other
// servers, and this harness). Recorded with every window, so contaminated
// windows can be seen in the results.
function foreignCores(busy0, busy1, s0, s1, loadCpuS, wallS) {
  const server = (s1.cpuUs - s0.cpuUs) / 1e6;
  return Math.max(0, (busy1 - busy0 - server - loadCpuS) / wallS);
}

// CPU deltas between two server samples, per accepted connection.
function cpuDelta(s0, s1) {
  const conns = s1.connections - s0.connections;
  const main = String(s1.mainTid);
  const t0 = s0.threads[main];
  const t1 = s1.threads[main];
  const runNs = t1.runNs != null && t0.runNs != null ? t1.runNs - t0.runNs : null;
  const tickNs = t1.ticksNs - t0.ticksNs;
  let acceptNs = 0;
  let otherNs = 0;
  for (const [tid, t] of Object.entries(s1.threads)) {
    if (tid === main) continue;
    const before = s0.threads[tid];
    const d = (t.runNs ?? t.ticksNs) - (before ? (before.runNs ?? before.ticksNs) : 0);
    if (t.comm.startsWith('rust-net')) acceptNs += d;
    else otherNs += d;
  }
  const wallNs = s1.hr - s0.hr;
  return {
    conns,
    // Event-loop (main thread) CPU per connection: schedstat's ns run time
    // where the kernel has it, else stat's utime+stime ticks.
    mainUsPerConn: conns > 0 ? (runNs ?? tickNs) / conns / 1e3 : null,
    mainTicksUsPerConn: conns > 0 ? tickNs / conns / 1e3 : null,
    processUsPerConn: conns > 0 ? (s1.cpuUs - s0.cpuUs) / conns : null,
    acceptThreadUsPerConn: conns > 0 ? acceptNs / conns / 1e3 : null,
    otherThreadsUsPerConn: conns > 0 ? otherNs / conns / 1e3 : null,
    mainBusy: (runNs ?? tickNs) / wallNs,
  };
}

const f1 = (x) => (x == null ? '—' : x.toFixed(1));

// ---------------------------------------------------------------- rows

const results = { rounds: [], identities: [], wrk: null, check: {}, skipped: [] };

// Each row starts one server per variant (on its own fixed port) and keeps
// them all up for the whole row, so that short measurement windows can
// alternate tightly between them. The servers not being measured sit idle.
// Each window's figures go to ctx.record().

function context(regime, variant, round, srv, port) {
  return {
    regime, variant, round, srv, port,
    record: (key, value, extra) => results.rounds.push({ regime: regime.name, key, variant, value, extra, round }),
    tag: `  ${regime.name.padEnd(8)} round ${round} ${LABEL(variant).padEnd(10)}`,
  };
}

async function rowChurn(ctx) {
  const { regime, srv, port } = ctx;
  for (const conc of [1, 32, 256]) {
    const s0 = await srv.sample();
    const b0 = machineBusy();
    const r = await loadgen(regime, ['churn', '--port', port, '--concurrency', conc,
                                     '--duration', CFG.churnSeconds], CFG.churnSeconds);
    const b1 = machineBusy();
    const s1 = await srv.sample();
    const cpu = cpuDelta(s0, s1);
    const lgUtil = (r.cpu_user_s + r.cpu_sys_s) / r.elapsed_s;
    const foreign = foreignCores(b0, b1, s0, s1, r.cpu_user_s + r.cpu_sys_s, (s1.hr - s0.hr) / 1e9);
    ctx.record(`churn.c${conc}`, r.rate, { errors: r.errors, loadgenCpu: lgUtil, mainBusy: cpu.mainBusy, foreign });
    // With threads the event loops are worker threads: no main-thread figure.
    ctx.record(`cpu.main.c${conc}`, VARIANTS[ctx.variant].threads ? null : cpu.mainUsPerConn,
               { ticks: cpu.mainTicksUsPerConn, foreign });
    ctx.record(`cpu.process.c${conc}`, cpu.processUsPerConn, { foreign });
    ctx.record(`cpu.accept.c${conc}`, cpu.acceptThreadUsPerConn, { foreign });
    log(`${ctx.tag} churn c=${String(conc).padEnd(3)} ` +
        `${r.rate.toFixed(0).padStart(6)} conn/s  main ${f1(cpu.mainUsPerConn)} µs/conn ` +
        `process ${f1(cpu.processUsPerConn)} µs/conn` +
        `${ctx.variant === 'node' ? '' : ` accept thread ${f1(cpu.acceptThreadUsPerConn)}`} ` +
        `(main busy ${(cpu.mainBusy * 100).toFixed(0)}%, loadgen ${(lgUtil * 100).toFixed(0)}% cpu, ` +
        `other ${(foreign * 100).toFixed(0)}%, errors ${r.errors})`);
  }
}

// Runs one loadgen window against `srv` and works out the foreign CPU.
async function windowed(ctx, args, seconds) {
  const s0 = await ctx.srv.sample();
  const b0 = machineBusy();
  const r = await loadgen(ctx.regime, args, seconds);
  const b1 = machineBusy();
  const s1 = await ctx.srv.sample();
  r.foreign = foreignCores(b0, b1, s0, s1, r.cpu_user_s + r.cpu_sys_s, (s1.hr - s0.hr) / 1e9);
  return r;
}

async function rowLatency(ctx) {
  const { port } = ctx;
  if (ctx.srv.identity.stampClock === false) {
    log(`${ctx.tag} latency skipped: no CLOCK_MONOTONIC for its stamps (bench/server.js needs /proc/timer_list, root only)`);
    return;
  }
  const r1 = await windowed(ctx, ['churn', '--port', port, '--concurrency', 1, '--stamp',
                                  '--max', CFG.latencyCount, '--duration', 10], 10);
  ctx.record('latency.c1.p50', r1.latency.p50_us, { foreign: r1.foreign });
  ctx.record('latency.c1.p99', r1.latency.p99_us, { foreign: r1.foreign });
  const r32 = await windowed(ctx, ['churn', '--port', port, '--concurrency', 32, '--stamp',
                                   '--duration', CFG.churnSeconds], CFG.churnSeconds);
  ctx.record('latency.c32.p50', r32.latency.p50_us, { foreign: r32.foreign });
  ctx.record('latency.c32.p99', r32.latency.p99_us, { foreign: r32.foreign });
  log(`${ctx.tag} latency c=1 p50 ${r1.latency.p50_us.toFixed(1)} µs ` +
      `p99 ${r1.latency.p99_us.toFixed(1)} µs; c=32 p50 ${r32.latency.p50_us.toFixed(1)} µs ` +
      `p99 ${r32.latency.p99_us.toFixed(1)} µs`);
}

async function rowEcho(ctx) {
  for (const conns of [1, 64]) {
    const r = await windowed(ctx, ['echo', '--port', ctx.port, '--connections', conns,
                                   '--duration', CFG.echoSeconds, '--warmup', 0.2], CFG.echoSeconds + 1);
    ctx.record(`echo.c${conns}`, r.mb_per_s, { errors: r.errors, foreign: r.foreign });
    log(`${ctx.tag} echo ${String(conns).padEnd(2)} conn ${r.mb_per_s.toFixed(1)} MB/s (errors ${r.errors})`);
  }
}

function parseWrk(out) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    rps: rps ? Number(rps[1]) : null,
    errors: (errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0),
  };
}

// wrk (one thread, `conns` connections), on the regime's load CPU, run from a
// shell whose `times` then reports wrk's CPU time.
async function wrk(regime, port, seconds, { close, conns }) {
  const args = ['-t', '1', '-c', String(conns), '-d', `${seconds}s`, '--timeout', '5s'];
  if (close) args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${port}/`);
  const [cmd, a] = onCpu(regime.loadCpu, 'sh', ['-c', '"$0" "$@" && times', WRK, ...args]);
  const out = await runBounded(cmd, a, (seconds + 30) * 1000);
  const r = parseWrk(out);
  const t = out.trim().split('\n').pop().match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
  r.cpuS = t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : 0;
  return r;
}

// One wrk window against ctx.srv: requests per second, and the server's CPU
// per accepted connection (all its processes, in the cluster row).
async function wrkWindow(ctx, load) {
  const s0 = await ctx.srv.sample();
  const b0 = machineBusy();
  const r = await wrk(ctx.regime, ctx.port, CFG.httpSeconds, load);
  const b1 = machineBusy();
  const s1 = await ctx.srv.sample();
  const conns = s1.connections - s0.connections;
  r.foreign = foreignCores(b0, b1, s0, s1, r.cpuS, (s1.hr - s0.hr) / 1e9);
  r.cpuUsPerConn = conns > 0 ? (s1.cpuUs - s0.cpuUs) / conns : null;
  r.conns = conns;
  r.workerConnections = s0.workerConnections && s1.workerConnections ?
    s1.workerConnections.map((c, i) => (c == null || s0.workerConnections[i] == null ? null : c - s0.workerConnections[i])) :
    null;
  return r;
}

const HTTP_LOADS = [
  { key: 'http.keepalive', close: false, conns: 32, text: 'keep-alive        c=32' },
  { key: 'http.close.c1', close: true, conns: 1, text: 'Connection: close c=1 ' },
  { key: 'http.close.c32', close: true, conns: 32, text: 'Connection: close c=32' },
];

async function rowHttp(ctx) {
  for (const load of HTTP_LOADS) {
    const r = await wrkWindow(ctx, load);
    ctx.record(load.key, r.rps, { errors: r.errors, foreign: r.foreign });
    if (load.close) ctx.record(`${load.key}.cpu`, r.cpuUsPerConn, { foreign: r.foreign });
    log(`${ctx.tag} http ${load.text} ${f1(r.rps)} req/s` +
        `${load.close ? `, server ${f1(r.cpuUsPerConn)} µs CPU/conn` : ''} (errors ${r.errors})`);
  }
}

async function rowCluster(ctx) {
  const r = await wrkWindow(ctx, { close: true, conns: 32 });
  ctx.record('cluster.close.c32', r.rps, { errors: r.errors, foreign: r.foreign, workers: r.workerConnections });
  ctx.record('cluster.close.c32.cpu', r.cpuUsPerConn, { foreign: r.foreign });
  log(`${ctx.tag} cluster Connection: close c=32 ${f1(r.rps)} req/s, server ${f1(r.cpuUsPerConn)} µs CPU/conn ` +
      `(per worker ${r.workerConnections ? r.workerConnections.join(' / ') : '?'} conns, errors ${r.errors})`);
}

async function rowMemory(ctx) {
  const { regime, variant } = ctx;
  const port = PORTS.memory + regime.portOffset;
  const n = Math.min(CFG.memoryConnections, results.machine.nofileHard - 200);
  const srv = await startServer(variant, 'hold', port, regime);
  try {
    await sleep(200);
    const base = await srv.sample(true);
    let ready = null;
    let connectedSample = null;
    const [cmd, args] = onCpu(regime.loadCpu, LOADGEN, ['hold', '--port', port, '--connections', n,
                                                        '--concurrency', 256, '--hold', 60, '--timeout', 40].map(String));
    const done = runBounded(cmd, args, 70000, {
      stdin: 'pipe',
      onLine: (line, child) => {
        if (!line.startsWith('# ready')) return;
        ready = (async () => {
          const deadline = Date.now() + 20000;
          let s = await srv.sample();
          while (s.connections - base.connections < n && Date.now() < deadline) {
            await sleep(100);
            s = await srv.sample();
          }
          await sleep(500);
          connectedSample = await srv.sample(true);
          child.stdin.end();
        })();
      },
    });
    const out = await done;
    if (ready) await ready;
    const h = lastJson(out);
    if (!connectedSample) throw new Error('hold: connections never became ready');
    const held = connectedSample.connections - base.connections;
    const rssMiB = connectedSample.rss / 2 ** 20;
    const perConn = (connectedSample.rss - base.rss) / Math.max(held, 1);
    ctx.record('memory.rss', rssMiB, { held, baseMiB: base.rss / 2 ** 20, errors: h.errors });
    ctx.record('memory.perconn', perConn, null);
    ctx.record('memory.base', base.rss / 2 ** 20, null);
    ctx.record('memory.anon', connectedSample.rssAnon / 2 ** 20, null);
    ctx.record('memory.anonbase', base.rssAnon / 2 ** 20, null);
    log(`${ctx.tag} memory ${held} idle conns: RSS ${rssMiB.toFixed(1)} MiB ` +
        `(idle ${(base.rss / 2 ** 20).toFixed(1)} MiB, ${(perConn / 1024).toFixed(2)} KiB/conn, ` +
        `opened in ${h.open_s.toFixed(2)} s, errors ${h.errors})`);
  } finally {
    await srv.stop();
  }
}

// The load generator against a trivial Rust epoll server (loadgen sink), in
// the regime's placement: how far it goes when the server is not Node.
async function checkGenerator(regime) {
  const port = PORTS.check + regime.portOffset;
  const out = {};
  const withSink = async (proto, fn) => {
    const [cmd, args] = onCpu(regime.serverCpu, LOADGEN, ['sink', '--port', String(port), '--proto', proto, '--duration', '60']);
    const child = track(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] }));
    await new Promise((resolve, reject) => {
      child.stdout.once('data', resolve);
      child.once('exit', () => reject(new Error('loadgen sink exited')));
    });
    try {
      await fn();
    } finally {
      child.stdin.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await new Promise((resolve) => (child.exitCode != null ? resolve() : child.on('exit', resolve)));
      clearTimeout(t);
    }
  };
  await withSink('echo', async () => {
    for (const conc of [1, 32, 256]) {
      const r = await loadgen(regime, ['churn', '--port', port, '--concurrency', conc, '--duration', CFG.churnSeconds],
                              CFG.churnSeconds);
      out[`churn.c${conc}`] = { rate: r.rate, loadgenCpu: (r.cpu_user_s + r.cpu_sys_s) / r.elapsed_s,
                                cpuUsPerConn: (r.cpu_user_s + r.cpu_sys_s) / Math.max(r.completed, 1) * 1e6 };
    }
    if (regime.rows.includes('echo')) {
      for (const conns of [1, 64]) {
        const r = await loadgen(regime, ['echo', '--port', port, '--connections', conns, '--duration', CFG.echoSeconds,
                                         '--warmup', 0.2], CFG.echoSeconds + 1);
        out[`echo.c${conns}`] = { mbps: r.mb_per_s };
      }
    }
  });
  await withSink('stamp', async () => {
    const r = await loadgen(regime, ['churn', '--port', port, '--concurrency', 1, '--stamp', '--max', CFG.latencyCount,
                                     '--duration', 10], 10);
    out['latency.c1'] = { p50: r.latency.p50_us, p99: r.latency.p99_us };
  });
  if (results.wrk) {
    await withSink('http', async () => {
      for (const load of HTTP_LOADS) out[load.key] = await wrk(regime, port, CFG.httpSeconds, load);
    });
  }
  return out;
}

// ---------------------------------------------------------------- report

// Row definitions for the tables: key, row number, label, unit, direction
// ('higher' is better / 'lower' is better), target ratio (held against the
// automatic placement's ratio to node:net).
const TABLE = [
  ['churn.c1', 1, 'accept-and-serve, concurrency 1', 'conn/s', 'higher', 1.0],
  ['churn.c32', 1, 'accept-and-serve, concurrency 32', 'conn/s', 'higher', 1.0],
  ['churn.c256', 1, 'accept-and-serve, concurrency 256', 'conn/s', 'higher', 1.0],
  // Server CPU per connection (user + system of the whole process) in the
  // same windows: on Node 24 and 26 the load generator's core caps
  // connections/s, so this is the figure that separates the servers.
  ['cpu.process.c1', 2, 'server CPU per connection, accept-and-serve c=1', 'µs', 'lower', 1.0],
  ['cpu.process.c32', 2, 'server CPU per connection, accept-and-serve c=32', 'µs', 'lower', 0.85],
  ['cpu.process.c256', 2, 'server CPU per connection, accept-and-serve c=256', 'µs', 'lower', 0.85],
  ['latency.c1.p50', 3, "connect → 'connection' p50 (sequential)", 'µs', 'lower', 1.0],
  ['latency.c1.p99', 3, "connect → 'connection' p99 (sequential)", 'µs', 'lower', 1.0],
  ['latency.c32.p50', 3, "connect → 'connection' p50 (32 concurrent)", 'µs', 'lower', 1.0],
  ['latency.c32.p99', 3, "connect → 'connection' p99 (32 concurrent)", 'µs', 'lower', 1.0],
  ['echo.c1', 4, 'echo, 1 persistent connection', 'MB/s', 'higher', 1.0],
  ['echo.c64', 4, 'echo, 64 persistent connections', 'MB/s', 'higher', 1.0],
  ['http.keepalive', 5, 'http.Server (-r register), wrk keep-alive, 32 conns', 'req/s', 'higher', 1.0],
  ['http.close.c1', 5, 'http.Server (-r register), wrk Connection: close, 1 conn', 'req/s', 'higher', 1.0],
  ['http.close.c32', 5, 'http.Server (-r register), wrk Connection: close, 32 conns', 'req/s', 'higher', 1.0],
  ['http.close.c1.cpu', 5, 'http.Server CPU per connection, Connection: close, 1 conn', 'µs', 'lower', 1.0],
  ['http.close.c32.cpu', 5, 'http.Server CPU per connection, Connection: close, 32 conns', 'µs', 'lower', 0.85],
  ['memory.rss', 6, 'RSS with 10,000 idle connections', 'MiB', 'lower', 1.0],
  ['memory.anon', 6, 'RssAnon with 10,000 idle connections', 'MiB', 'lower', 1.0],
  ['cpu.main.c1', 7, 'event-loop CPU per connection, c=1', 'µs', 'lower', 1.0],
  ['cpu.main.c32', 7, 'event-loop CPU per connection, c=32', 'µs', 'lower', 0.85],
  ['cpu.main.c256', 7, 'event-loop CPU per connection, c=256', 'µs', 'lower', 0.85],
  ['cluster.close.c32', 8, 'cluster (primary + 2 workers), wrk Connection: close, 32 conns', 'req/s', 'higher', 1.0],
  ['cluster.close.c32.cpu', 8, 'cluster CPU per connection (primary + workers)', 'µs', 'lower', 1.0],
];

// Per regime: one entry per figure, with the median of each variant, its
// ratio to node:net, and the per-round paired ratios.
function summarize(regimeName) {
  const inRegime = results.rounds.filter((r) => r.regime === regimeName);
  const rows = [];
  for (const [key, row, label, unit, dir, target] of TABLE) {
    const vals = {};
    const med = {};
    for (const v of VARS) {
      vals[v] = inRegime.filter((r) => r.key === key && r.variant === v).map((r) => r.value)
        .filter((x) => typeof x === 'number' && Number.isFinite(x));
      med[v] = median(vals[v]);
    }
    if (med.node == null || !RUST_VARS.some((v) => med[v] != null)) continue;
    const ratios = {};
    const paired = {};
    for (const v of RUST_VARS) {
      ratios[v] = med[v] == null || !med.node ? null : med[v] / med.node;
      // The same round's windows ran back to back: their ratio, per round.
      const per = [];
      for (const r of inRegime.filter((x) => x.key === key && x.variant === v)) {
        const n = inRegime.find((x) => x.key === key && x.variant === 'node' && x.round === r.round);
        if (n && n.value && r.value != null) per.push(r.value / n.value);
      }
      paired[v] = median(per);
    }
    const ratio = ratios[PRIMARY];
    let meets = null;
    if (target != null && ratio != null) meets = dir === 'higher' ? ratio >= target : ratio <= target;
    const foreign = inRegime.filter((x) => x.key === key && x.extra && x.extra.foreign != null).map((x) => x.extra.foreign);
    const spread = {};
    for (const v of VARS) spread[v] = vals[v].length ? [Math.min(...vals[v]), Math.max(...vals[v])] : null;
    rows.push({ key, row, label, unit, dir, target, med, ratios, paired, ratio, meets, primary: PRIMARY,
                // kept for older readers of results.json: node:net and the primary variant
                net: med.node, rust: med[PRIMARY], pairedRatio: paired[PRIMARY],
                foreign: foreign.length ? { median: median(foreign), max: Math.max(...foreign) } : null,
                spread, n: Math.min(...VARS.filter((v) => vals[v].length).map((v) => vals[v].length)) });
  }
  return rows;
}

function fmt(x, unit) {
  if (x == null) return '—';
  if (unit === 'conn/s' || unit === 'req/s') return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}
const fr = (x) => (x == null ? '—' : x.toFixed(2));

function targetText(r) {
  if (r.target == null) return '(none)';
  return `${r.dir === 'higher' ? '≥' : '≤'} ${r.target.toFixed(2)}`;
}

// The table for one regime: medians per variant, ratios to node:net per
// variant (the automatic choice in bold), target and whether auto meets it.
function markdownTable(rows) {
  const head = ['#', 'figure', ...VARS.map(LABEL), ...RUST_VARS.map((v) => `${LABEL(v)}/node`), 'target', `met (${LABEL(PRIMARY)})`];
  const lines = [`| ${head.join(' | ')} |`,
                 `| --- | --- | ${VARS.map(() => '---:').join(' | ')} | ${RUST_VARS.map(() => '---:').join(' | ')} | --- | --- |`];
  for (const r of rows) {
    const ratios = RUST_VARS.map((v) => (v === PRIMARY && r.ratios[v] != null ? `**${fr(r.ratios[v])}**` : fr(r.ratios[v])));
    lines.push(`| ${r.row} | ${r.label} (${r.unit}) | ${VARS.map((v) => fmt(r.med[v], r.unit)).join(' | ')} | ` +
               `${ratios.join(' | ')} | ${targetText(r)} | ${r.meets == null ? '—' : r.meets ? 'yes' : 'no'} |`);
  }
  return lines.join('\n');
}

// Ratios only, every regime side by side: the table to paste where rows are
// compared across regimes.
function crossTable(summaries) {
  const cols = [];
  for (const [regime] of summaries) for (const v of RUST_VARS) cols.push([regime, v]);
  const lines = [`| # | figure | target | ${cols.map(([g, v]) => `${g} ${LABEL(v)}`).join(' | ')} |`,
                 `| --- | --- | --- | ${cols.map(() => '---:').join(' | ')} |`];
  for (const [key, row, label, unit, dir, target] of TABLE) {
    const by = new Map(summaries.map(([g, rows]) => [g, rows.find((r) => r.key === key)]));
    if (![...by.values()].some(Boolean)) continue;
    const t = targetText({ target, dir });
    lines.push(`| ${row} | ${label} | ${t} | ${cols.map(([g, v]) => {
      const r = by.get(g);
      const x = r ? r.ratios[v] : null;
      if (x == null) return '—';
      const miss = v === PRIMARY && r.meets === false;
      return miss ? `${fr(x)} ✗` : fr(x);
    }).join(' | ')} |`);
  }
  lines.push('', `Ratios variant / node:net of the medians; ✗: the automatic choice (${LABEL(PRIMARY)}) misses the target.`);
  return lines.join('\n');
}

// rust-net against the other runtimes on the rows the targets name: each
// variant ÷ node:net, and rust-net (one loop, and two threads sharing the
// port) ÷ Bun and ÷ Deno.
const PEER_KEYS = ['churn.c32', 'http.close.c32'];
function peerTable(summaries) {
  const have = (v) => RUST_VARS.includes(v);
  if (!PEERS.some(have)) return null;
  const rust = [PRIMARY, 'threads'].filter(have);
  const peers = PEERS.filter(have);
  const head = ['regime', 'figure', ...[PRIMARY, 'threads', ...PEERS].filter(have).map((v) => `${LABEL(v)}/node`),
                ...rust.flatMap((r) => peers.map((p) => `${LABEL(r)}/${LABEL(p)}`))];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`];
  for (const [g, rows] of summaries) {
    for (const key of PEER_KEYS) {
      const r = rows.find((x) => x.key === key);
      if (!r) continue;
      const q = (a, b) => (r.med[a] != null && r.med[b] ? fr(r.med[a] / r.med[b]) : '—');
      lines.push(`| ${g} | ${r.label} | ${[PRIMARY, 'threads', ...PEERS].filter(have).map((v) => fr(r.ratios[v])).join(' | ')} | ` +
                 `${rust.flatMap((a) => peers.map((b) => q(a, b))).join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

function extraFigures(regimeName) {
  const inRegime = results.rounds.filter((r) => r.regime === regimeName);
  const pick = (key, v) => median(inRegime.filter((r) => r.key === key && r.variant === v).map((r) => r.value));
  const extra = (key, v, field) => median(inRegime
    .filter((r) => r.key === key && r.variant === v && r.extra).map((r) => r.extra[field]));
  const lines = [];
  if (inRegime.some((r) => r.key.startsWith('churn.'))) {
    lines.push('| concurrency | variant | main thread busy | accept thread µs/conn | loadgen CPU | main µs/conn from stat ticks |',
               '| --- | --- | ---: | ---: | ---: | ---: |');
    for (const c of [1, 32, 256]) {
      for (const v of VARS) {
        const busy = extra(`churn.c${c}`, v, 'mainBusy');
        const lg = extra(`churn.c${c}`, v, 'loadgenCpu');
        const acc = pick(`cpu.accept.c${c}`, v);
        const ticks = extra(`cpu.main.c${c}`, v, 'ticks');
        lines.push(`| ${c} | ${LABEL(v)} | ${busy == null ? '—' : (busy * 100).toFixed(0) + '%'} | ` +
                   `${v !== 'node' && acc != null ? acc.toFixed(2) : '—'} | ` +
                   `${lg == null ? '—' : (lg * 100).toFixed(0) + '% of a core'} | ${ticks == null ? '—' : ticks.toFixed(1)} |`);
      }
    }
    lines.push('', 'Accept thread: CPU of the threads named rust-net* per connection — near 0 when rust-net accepts on ' +
               'the event loop, ≈ 15–25 µs when its runtime thread accepts.');
  }
  if (inRegime.some((r) => r.key === 'cluster.close.c32')) {
    lines.push('', '| cluster | connections per worker in one window (median of rounds) |', '| --- | --- |');
    for (const v of VARS) {
      const w = inRegime.filter((r) => r.key === 'cluster.close.c32' && r.variant === v && r.extra && r.extra.workers)
        .map((r) => r.extra.workers);
      const cols = w.length ? w[0].map((_, i) => median(w.map((x) => x[i]))) : [];
      lines.push(`| ${LABEL(v)} | ${cols.length ? cols.map((c) => fmt(c, 'conn/s')).join(' / ') : '—'} |`);
    }
  }
  if (inRegime.some((r) => r.key === 'memory.rss')) {
    lines.push('', `| memory | ${VARS.map(LABEL).join(' | ')} |`, `| --- | ${VARS.map(() => '---:').join(' | ')} |`);
    lines.push(`| RSS before connections (MiB) | ${VARS.map((v) => fmt(pick('memory.base', v))).join(' | ')} |`);
    lines.push(`| RssAnon before connections (MiB) | ${VARS.map((v) => fmt(pick('memory.anonbase', v))).join(' | ')} |`);
    lines.push(`| RSS growth per idle connection (KiB) | ${VARS.map((v) => {
      const x = pick('memory.perconn', v);
      return x == null ? '—' : fmt(x / 1024);
    }).join(' | ')} |`);
  }
  return lines.join('\n');
}

function spreadTable(rows) {
  return [
    `| figure | ${VARS.map(LABEL).join(' | ')} | ${RUST_VARS.map((v) => `${LABEL(v)}/node per round`).join(' | ')} | other CPU (cores) |`,
    `| --- | ${VARS.map(() => '---').join(' | ')} | ${RUST_VARS.map(() => '---:').join(' | ')} | ---: |`,
    ...rows.map((r) => `| ${r.label} | ${VARS.map((v) => (r.spread[v] ? `${fmt(r.spread[v][0], r.unit)} – ${fmt(r.spread[v][1], r.unit)}` : '—')).join(' | ')} | ` +
                       `${RUST_VARS.map((v) => fr(r.paired[v])).join(' | ')} | ` +
                       `${r.foreign ? `${r.foreign.median.toFixed(2)} / ${r.foreign.max.toFixed(2)}` : '—'} |`),
  ].join('\n');
}

function checkTable(regimeName) {
  const c = results.check[regimeName];
  if (!c) return '_The generator check was not run (--quick, --only or --no-check)._';
  const inRegime = results.rounds.filter((r) => r.regime === regimeName && r.variant === 'node');
  const net = (key) => median(inRegime.filter((r) => r.key === key).map((r) => r.value));
  const rows = [
    '| load | trivial Rust epoll server (`loadgen sink`, 1 thread) | node:net (median above) | loadgen CPU vs sink |',
    '| --- | ---: | ---: | ---: |',
  ];
  for (const conc of [1, 32, 256]) {
    const k = `churn.c${conc}`;
    if (c[k]) {
      rows.push(`| accept-and-serve c=${conc} (conn/s) | ${fmt(c[k].rate, 'conn/s')} | ${fmt(net(k), 'conn/s')} | ` +
                `${(c[k].loadgenCpu * 100).toFixed(0)}% of a core, ${c[k].cpuUsPerConn.toFixed(1)} µs/conn |`);
    }
  }
  for (const conns of [1, 64]) {
    const k = `echo.c${conns}`;
    if (c[k]) rows.push(`| echo ${conns} conn (MB/s) | ${fmt(c[k].mbps)} | ${fmt(net(k))} | |`);
  }
  if (c['latency.c1']) {
    rows.push(`| connect → accept p50 / p99, sequential (µs) | ${fmt(c['latency.c1'].p50)} / ${fmt(c['latency.c1'].p99)} | ` +
              `${fmt(net('latency.c1.p50'))} / ${fmt(net('latency.c1.p99'))} | |`);
  }
  for (const load of HTTP_LOADS) {
    if (c[load.key]) rows.push(`| wrk ${load.text.replace(/\s+/g, ' ').trim()} (req/s) | ${fmt(c[load.key].rps, 'req/s')} | ${fmt(net(load.key), 'req/s')} | |`);
  }
  return rows.join('\n');
}

function regimeText(regime) {
  if (regime.serverCpu == null) {
    return 'Unpinned: no CPU affinity; the server and the load generator share the machine\'s CPUs.';
  }
  return `Pinned: the server process on CPU ${regime.serverCpu} (\`taskset -c ${regime.serverCpu}\`, all its threads; ` +
    `in the cluster row the primary and both workers share that CPU), the load generator on CPU ${regime.loadCpu} ` +
    `(\`taskset -c ${regime.loadCpu}\`): the server has no spare core.`;
}

function variantText() {
  return VARS.map((v) => {
    const d = VARIANTS[v];
    if (v === 'node') return 'node:net: Node\'s own server';
    if (d.runtime) return `${d.label}: ${d.label} ${d.version}'s own node:net / node:http`;
    if (d.threads) return `${d.label}: rust-net (automatic placement) on ${d.threads} worker threads with shareAcrossThreads`;
    if (d.impl !== 'rust') return `${d.label}: rust-net from ${d.dir}, automatic placement`;
    return d.placement ? `${d.label}: rust-net with ${PLACEMENT_VAR}=${d.placement}` :
      `${d.label}: rust-net with ${PLACEMENT_VAR} unset (its automatic choice)`;
  }).join('; ');
}


// Does the accept-thread CPU say the forced placements took? Before rust-net
// reads RUST_NET_ACCEPT_PLACEMENT every rust-net variant runs the same code.
function placementCheck(regimeName) {
  const inRegime = results.rounds.filter((r) => r.regime === regimeName && r.key === 'cpu.accept.c32');
  if (!inRegime.length) return null;
  const acc = {};
  for (const v of RUST_VARS) acc[v] = median(inRegime.filter((r) => r.variant === v).map((r) => r.value));
  const said = RUST_VARS.filter((v) => acc[v] != null)
    .map((v) => `${LABEL(v)} ${acc[v].toFixed(1)}`).join(', ');
  let note = '';
  if (acc.runtime != null && acc['event-loop'] != null && acc['event-loop'] > 2 && acc.runtime > 2) {
    note = ` — the event-loop variant still used an accept thread: this build seems to ignore ${PLACEMENT_VAR}`;
  }
  return `accept-thread µs/conn at c=32: ${said}${note}`;
}

// ---------------------------------------------------------------- main

const ROW_FNS = { churn: rowChurn, latency: rowLatency, echo: rowEcho, http: rowHttp, cluster: rowCluster, memory: rowMemory };
const MODES = { churn: 'serve', latency: 'stamp', echo: 'echo', http: 'http', cluster: 'cluster' };

function warmUp(row, regime, port) {
  switch (row) {
    case 'churn': return loadgen(regime, ['churn', '--port', port, '--concurrency', 32, '--duration', 1], 1);
    case 'latency': return loadgen(regime, ['churn', '--port', port, '--concurrency', 32, '--stamp', '--duration', 1], 1);
    case 'echo': return loadgen(regime, ['echo', '--port', port, '--connections', 8, '--duration', 0.5, '--warmup', 0], 1);
    default: return wrk(regime, port, 1, { close: true, conns: 32 });
  }
}

// Round r's order: the variants rotated by floor(r / 2), reversed in odd
// rounds, so each variant is measured early and late, before and after each
// other one.
function roundOrder(r, vars) {
  const k = Math.floor(r / 2) % vars.length;
  const order = [...vars.slice(k), ...vars.slice(0, k)];
  return r % 2 ? order.reverse() : order;
}

// A rough duration, in seconds, from the windows and a per-window overhead
// (sampling, process start-up) measured on the 2-CPU development machine.
function estimateSeconds(regimes) {
  const per = {
    churn: 3 * (CFG.churnSeconds + 0.25),
    latency: CFG.latencyCount * 130e-6 + CFG.churnSeconds + 0.5,
    echo: 2 * (CFG.echoSeconds + 0.2 + 0.25),
    http: HTTP_LOADS.length * (CFG.httpSeconds + 0.3),
    cluster: CFG.httpSeconds + 0.3,
    memory: 4,
  };
  const warm = { churn: 1.5, latency: 1.5, echo: 1, http: 1.5, cluster: 2.5, memory: 0 };
  let s = 0;
  for (const regime of regimes) {
    for (const row of regime.rows) {
      if ((row === 'http' || row === 'cluster') && !results.wrk) continue;
      const rounds = row === 'memory' ? Math.min(CFG.rounds, CFG.memoryRounds) : CFG.rounds;
      s += rowVars(row).length * (warm[row] + rounds * per[row]);
    }
    if (CHECK_FLAG && !ONLY) s += 3 * CFG.churnSeconds + 2 * CFG.echoSeconds + 1 + (results.wrk ? 3 * CFG.httpSeconds : 0) + 3;
  }
  return s;
}

// The shareAcrossThreads designs; --threads-node runs their services on
// another Node (reusePort needs 22.12+), --threads-seconds sets the windows.
async function runThreads() {
  const { run } = require('./threads');
  const r = await run({
    seconds: Number(optVal('threads-seconds', QUICK ? 2 : 10)),
    nodeBin: optVal('threads-node', SERVER_NODE),
    log,
  });
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'threads.md'), `${r.markdown}\n`);
  log(`\n${r.markdown}\n`);
}

// Several Nodes: this same program once per Node, one after the other (each
// child writes its own bench/results/node<major>.json and the page).
function runEachNode() {
  const at = argv.indexOf('--node');
  const rest = argv.filter((_, i) => at < 0 || (i !== at && i !== at + 1));
  // Five rounds a Node keeps a default run of three Nodes near 50 minutes.
  if (!rest.includes('--rounds') && !QUICK) rest.push('--rounds', '5');
  let failed = 0;
  for (const spec of NODE_RUNS) {
    log(`bench: === servers on Node ${spec} ===`);
    const r = spawnSync(process.execPath, [__filename, ...rest, '--node', spec], { stdio: 'inherit' });
    if (r.status !== 0) failed++;
  }
  process.exit(failed ? 1 : 0);
}

async function main() {
  if (NODE_RUNS.length > 1) return runEachNode();
  if (ONLY_ROWS && ONLY_ROWS.length === 0) return runThreads();
  const t0 = Date.now();
  const regimes = makeRegimes();
  if (!regimes.length) die('no regime to run');
  ensureAddon();
  resolvePeers(opt('dry-run'));
  ensureLoadgen();
  results.machine = machineInfo(regimes);
  results.config = { quick: QUICK, ...CFG, regimes: regimes.map((r) => ({ ...r })), variants: VARS, primary: PRIMARY };
  const wantsWrk = regimes.some((r) => r.rows.includes('http') || r.rows.includes('cluster'));
  results.wrk = wantsWrk && haveWrk();
  const m = results.machine;
  log(`bench: ${m.nproc} CPUs (this run may use ${m.cpusAllowed}), ${m.memGiB} GiB, ${m.kernel} (${m.virt}), ` +
      `Node ${m.node}, commit ${m.commit}`);
  log(`bench: ${CFG.rounds} rounds${QUICK ? ' (quick)' : ''}; regimes ${regimes.map((r) => `${r.name} [${r.rows.join(' ')}]` +
      (r.serverCpu != null ? ` (server on CPU ${r.serverCpu}, load on CPU ${r.loadCpu})` : '')).join(', ')}`);
  log(`bench: variants: ${variantText()}`);
  if (m.placementEnvOfHarness != null) {
    log(`bench: note: ${PLACEMENT_VAR}=${m.placementEnvOfHarness} in this environment is replaced per variant in each server's`);
  }
  if (wantsWrk && !results.wrk) {
    log(`bench: skipping the http and cluster rows: wrk is not installed${process.env.BENCH_WRK ? ` (BENCH_WRK=${WRK})` : ''}; ` +
        'install it with: apt-get install wrk');
    results.skipped.push('http', 'cluster');
  }
  if (regimes.some((r) => r.serverCpu != null && r.rows.includes('cluster') && results.wrk)) {
    log('bench: note: in the pinned regime the cluster (primary and both workers) is confined to the one server CPU');
  }
  log(`bench: expected to take about ${(estimateSeconds(regimes) / 60).toFixed(1)} minutes; stops by itself after ${MAX_MINUTES}`);
  if (opt('dry-run')) return;
  log(`bench: load average ${m.loadStart}`);
  if (os.loadavg()[0] > m.nproc * 0.75) {
    log('bench: warning: the machine is busy (load average above 0.75 per CPU); figures will be noisy');
  }
  setTimeout(() => {
    console.error(`bench: stopped: the run took more than --max-minutes ${MAX_MINUTES}`);
    killAll();
    process.exit(1);
  }, MAX_MINUTES * 60000).unref();

  for (const regime of regimes) {
    for (const row of regime.rows) {
      if ((row === 'http' || row === 'cluster') && !results.wrk) continue;
      const fn = ROW_FNS[row];
      const rounds = row === 'memory' ? Math.min(CFG.rounds, CFG.memoryRounds) : CFG.rounds;
      const vars = rowVars(row);
      log(`bench: ${regime.name} ${row} (${rounds} rounds, ${vars.length} variants)`);
      const servers = {};
      const ports = {};
      try {
        if (row !== 'memory') {
          for (const [i, v] of VARS.entries()) {
            if (!vars.includes(v)) continue;
            ports[v] = PORTS[row] + regime.portOffset + 10 * i;
            servers[v] = await startServer(v, MODES[row], ports[v], regime);
            await warmUp(row, regime, ports[v]);
          }
        }
        for (let round = 0; round < rounds; round++) {
          for (const v of roundOrder(round, vars)) await fn(context(regime, v, round, servers[v], ports[v]));
        }
      } finally {
        for (const srv of Object.values(servers)) await srv.stop();
      }
    }
    if (CHECK_FLAG) {
      log(`bench: ${regime.name}: load generator against a trivial Rust server (loadgen sink)`);
      results.check[regime.name] = await checkGenerator(regime);
      log(`  ${JSON.stringify(results.check[regime.name])}`);
    }
  }
  m.loadEnd = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  m.minutes = ((Date.now() - t0) / 60000).toFixed(1);

  const summaries = regimes.map((r) => [r.name, summarize(r.name)]);
  for (const [name, rows] of summaries) {
    log('');
    log(`## ${name}`);
    log('');
    log(markdownTable(rows));
    const pc = placementCheck(name);
    if (pc) log(`\nbench: ${name}: ${pc}`);
  }
  log('');
  log('## Ratios to node:net, every regime');
  log('');
  log(crossTable(summaries));
  const pt = peerTable(summaries);
  if (pt) log(`\n## rust-net, Bun and Deno on the target rows\n\n${pt}`);
  log('');
  log(`bench: took ${m.minutes} minutes; load average at end ${m.loadEnd}`);
  const busyRows = summaries.flatMap(([g, rows]) => rows.filter((r) => r.foreign && r.foreign.median > 0.15).map((r) => `${g} ${r.key}`));
  m.busyRows = busyRows;
  if (busyRows.length) {
    // Said per regime and row family (churn, latency, http...), to stay short.
    const fam = [...new Set(busyRows.map((k) => k.split('.')[0]))];
    log(`bench: warning: other work used the machine (median above 0.15 cores) during ${busyRows.length} figures: ` +
        `${fam.join(', ')}; rerun on a quieter machine for figures to rely on (per figure: "other CPU" in results.json)`);
  }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, QUICK ? 'results-quick.json' : 'results.json'),
                   JSON.stringify({ ...results, summary: Object.fromEntries(summaries) }, null, 1));
  const svg = renderSvg(summaries.map(([name, rows]) => ({ name, rows })),
                        `Node ${m.node}, ${m.nproc} CPUs (${m.virt}), rust-net ${m.commit}, ${m.date}`,
                        { variants: RUST_VARS, primary: PRIMARY, labels: Object.fromEntries(RUST_VARS.map((v) => [v, LABEL(v)])),
                          fills: { bun: '#f0a030', deno: '#3070c0', threads: '#000000' },
                          heading: 'ratio of medians to node:net: rust-net, Bun, Deno' });
  const complete = COMPLETE && regimes.length === 2;
  if (WRITE && complete) {
    const file = report.saveRun(results, summaries, { variants: VARS, labels: Object.fromEntries(VARS.map((v) => [v, LABEL(v)])), primary: PRIMARY });
    report.writePage();
    log(`bench: wrote ${path.relative(ROOT, file)}, bench/RESULTS.md and bench/ratios.svg`);
  } else {
    fs.writeFileSync(path.join(OUT_DIR, 'ratios.svg'), svg);
    log(`bench: raw results and ratios.svg in ${path.relative(ROOT, OUT_DIR)}/ (RESULTS.md untouched` +
        `${WRITE && !complete ? ': only a full run with every row, regime and variant writes it' : QUICK ? '; --write to update it' : ''})`);
  }
}

// The threads row runs after the others (never under --dry-run, which only
// prints the plan).
const runThreadsRow = () => THREADS_ROWS && !opt('dry-run') && !(ONLY_ROWS && ONLY_ROWS.length === 0);
main().then(() => (runThreadsRow() ? runThreads() : null)).catch((err) => {
  console.error(`bench: ${err.stack || err}`);
  killAll();
  process.exit(1);
});
