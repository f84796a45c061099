'use strict';

// rust-net's benchmark suite: `npm run bench` (see bench/README section in
// bench/RESULTS.md). Runs the same server program (bench/server.js) on
// node:net and on rust-net, alternating A/B within each round, with the load
// coming from a separate process (bench/loadgen, or wrk for HTTP), and
// reports the median of each figure over the rounds and the ratio
// rust-net / node:net.
//
//   node bench/run.js [--quick] [--rounds N] [--only row,row] [--no-write]
//                     [--write] [--no-check]
//
// rows: churn latency echo http memory (cpu rows 6 and 7 come from churn)
// --quick     fewer rounds, shorter runs; does not touch RESULTS.md unless --write
// --no-check  skip the load-generator headroom check against a trivial server

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { renderSvg } = require('./plot');

const ROOT = path.join(__dirname, '..');
// RUST_NET_DIR: measure another rust-net checkout instead of this one (a clean
// build of a commit, when others are rebuilding this working tree);
// bench/server.js reads the same variable.
const RUST_NET = process.env.RUST_NET_DIR || ROOT;
const BENCH = __dirname;
const LOADGEN_DIR = path.join(BENCH, 'loadgen');
const LOADGEN = path.join(LOADGEN_DIR, 'target', 'release', 'loadgen');
const OUT_DIR = path.join(BENCH, 'out');

// Fixed ports below the ephemeral range (32768-60999), one per row.
const PORTS = { churn: 17401, latency: 17402, echo: 17403, http: 17404, memory: 17405, check: 17409 };

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2);
const opt = (name) => argv.includes(`--${name}`);
const optVal = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const QUICK = opt('quick');
const CFG = QUICK ? {
  rounds: Number(optVal('rounds', 3)),
  churnSeconds: 0.5,
  latencyCount: 1000,
  echoSeconds: 0.5,
  httpSeconds: 1,
  memoryConnections: 10000,
  memoryRounds: 1,
} : {
  rounds: Number(optVal('rounds', 10)),
  churnSeconds: 1.5,
  latencyCount: 3000,
  echoSeconds: 1.5,
  httpSeconds: 2,
  memoryConnections: 10000,
  memoryRounds: 3,
};
const ALL_ROWS = ['churn', 'latency', 'echo', 'http', 'memory'];
const ONLY = optVal('only', null);
const ROWS = ONLY ? ONLY.split(',') : ALL_ROWS;
const WRITE = (QUICK ? opt('write') : !opt('no-write')) && !optVal('exp', null);
const CHECK = !opt('no-check') && (!QUICK || opt('check')) && !ONLY;

// --exp DIR: a third implementation, rust-net from another checkout (a
// scratch copy with an experiment), measured in the same alternating rounds.
// --exp DIR1[,DIR2]: up to two more implementations, 'exp' and 'exp2'.
const EXP = optVal('exp', null);
const EXP_DIRS = EXP ? EXP.split(',').map((d) => path.resolve(d)) : [];
if (EXP_DIRS[0]) process.env.RUST_NET_EXP_DIR = EXP_DIRS[0];
if (EXP_DIRS[1]) process.env.RUST_NET_EXP2_DIR = EXP_DIRS[1];
const IMPLS = optVal('impls', null) ? optVal('impls').split(',') :
  ['net', 'rust', ...EXP_DIRS.map((d, i) => (i ? 'exp2' : 'exp'))];
const LABEL = { net: 'node:net', rust: 'rust-net', exp: 'exp', exp2: 'exp2' };

// ---------------------------------------------------------------- helpers

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

// ---------------------------------------------------------------- set-up

// Checked in a child process: this process never maps the addon, so a
// rebuild of it during a run (someone runs `npm run build`) cannot crash it.
function ensureAddon() {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(RUST_NET)})`], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`bench: rust-net's addon does not load from ${RUST_NET}:\n${(r.stderr || '').trim().split('\n').slice(0, 4).join('\n')}`);
    console.error('bench: run `npm install` (or `npm run build`) first.');
    process.exit(1);
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
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  return !r.error;
}

function machineInfo() {
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
  const dirty = sh('git', ['-C', RUST_NET, 'status', '--porcelain', '--', 'src', 'lib', 'index.js', 'Cargo.toml']);
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: os.cpus().length,
    cpuModel,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    virt,
    node: process.version,
    uv: process.versions.uv,
    commit: commit + (dirty ? ' (with uncommitted changes in src/ or lib/)' : '') +
      (RUST_NET !== ROOT ? ` at ${RUST_NET}` : ''),
    loadStart: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    nofileHard: hardNofile(),
  };
}

// ---------------------------------------------------------------- processes

// Starts bench/server.js for `impl` in `mode`, with RLIMIT_NOFILE raised to
// the hard limit in the spawning shell; resolves once it listens.
async function startServer(impl, mode, port) {
  const script = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
  const child = track(spawn('sh', ['-c', script, 'sh', process.execPath, '--expose-gc',
                                   path.join(BENCH, 'server.js'), impl, mode, String(port)],
                            { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const pending = new Map();
  let nextId = 1;
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${impl} ${mode} server did not start`)), 15000);
    child.on('message', (msg) => {
      if (msg.ready) { clearTimeout(timer); resolve(msg.sample); return; }
      const p = pending.get(msg.reply);
      if (p) { pending.delete(msg.reply); p(msg.sample); }
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`${impl} ${mode} server exited (${code})`)); });
  });
  await ready;
  return {
    pid: child.pid,
    sample(gc = false) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('server sample timed out')), 10000);
        pending.set(id, (s) => { clearTimeout(timer); resolve(s); });
        child.send({ cmd: 'sample', id, gc });
      });
    },
    async stop() {
      try { child.send({ cmd: 'exit' }); } catch { /* gone */ }
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
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
      if (code !== 0) reject(new Error(`${path.basename(cmd)} ${args[0]} failed (${code ?? signal})`));
      else resolve(out);
    });
  });
}

function lastJson(out) {
  const lines = out.trim().split('\n').filter((l) => l.startsWith('{'));
  return JSON.parse(lines[lines.length - 1]);
}

async function loadgen(args, seconds) {
  return lastJson(await runBounded(LOADGEN, args, (seconds + 30) * 1000));
}

// Busy CPU time of the whole machine so far, in seconds (/proc/stat: user,
// nice, system, irq, softirq, steal; USER_HZ is 100).
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}

// CPU that neither the server under test nor the load generator used during a
// window, in cores: other people's work on the machine (and the idle other
// server, and this harness). Recorded with every window, so contaminated
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

// ---------------------------------------------------------------- rows

const results = { rounds: [], wrk: null, check: null };
const record = (key, impl, value, extra, round) => {
  results.rounds.push({ key, impl, value, extra, round });
};

// Each row starts one server per implementation (on its own fixed port) and
// keeps them all up for the whole row, so that short measurement windows can
// alternate tightly between them: A B, B A, A B... The servers not being
// measured sit idle. Each window's figures go to record().

async function rowChurn(impl, round, srv, port) {
  for (const conc of [1, 32, 256]) {
    const s0 = await srv.sample();
    const b0 = machineBusy();
    const r = await loadgen(['churn', '--port', port, '--concurrency', conc,
                             '--duration', CFG.churnSeconds], CFG.churnSeconds);
    const b1 = machineBusy();
    const s1 = await srv.sample();
    const cpu = cpuDelta(s0, s1);
    const lgUtil = (r.cpu_user_s + r.cpu_sys_s) / r.elapsed_s;
    const foreign = foreignCores(b0, b1, s0, s1, r.cpu_user_s + r.cpu_sys_s, (s1.hr - s0.hr) / 1e9);
    record(`churn.c${conc}`, impl, r.rate,
           { errors: r.errors, loadgenCpu: lgUtil, mainBusy: cpu.mainBusy, foreign }, round);
    record(`cpu.main.c${conc}`, impl, cpu.mainUsPerConn, { ticks: cpu.mainTicksUsPerConn, foreign }, round);
    record(`cpu.process.c${conc}`, impl, cpu.processUsPerConn, { foreign }, round);
    record(`cpu.accept.c${conc}`, impl, cpu.acceptThreadUsPerConn, { foreign }, round);
    log(`  round ${round} ${LABEL[impl].padEnd(8)} churn c=${String(conc).padEnd(3)} ` +
        `${r.rate.toFixed(0).padStart(6)} conn/s  main ${cpu.mainUsPerConn.toFixed(1)} µs/conn ` +
        `process ${cpu.processUsPerConn.toFixed(1)} µs/conn  (main busy ${(cpu.mainBusy * 100).toFixed(0)}%, ` +
        `loadgen ${(lgUtil * 100).toFixed(0)}% cpu, other ${(foreign * 100).toFixed(0)}%, errors ${r.errors})`);
  }
}

// Runs one loadgen window against `srv` and works out the foreign CPU.
async function windowed(srv, args, seconds) {
  const s0 = await srv.sample();
  const b0 = machineBusy();
  const r = await loadgen(args, seconds);
  const b1 = machineBusy();
  const s1 = await srv.sample();
  r.foreign = foreignCores(b0, b1, s0, s1, r.cpu_user_s + r.cpu_sys_s, (s1.hr - s0.hr) / 1e9);
  return r;
}

async function rowLatency(impl, round, srv, port) {
  const r1 = await windowed(srv, ['churn', '--port', port, '--concurrency', 1, '--stamp',
                                  '--max', CFG.latencyCount, '--duration', 10], 10);
  record('latency.c1.p50', impl, r1.latency.p50_us, { foreign: r1.foreign }, round);
  record('latency.c1.p99', impl, r1.latency.p99_us, { foreign: r1.foreign }, round);
  const r32 = await windowed(srv, ['churn', '--port', port, '--concurrency', 32, '--stamp',
                                   '--duration', CFG.churnSeconds], CFG.churnSeconds);
  record('latency.c32.p50', impl, r32.latency.p50_us, { foreign: r32.foreign }, round);
  record('latency.c32.p99', impl, r32.latency.p99_us, { foreign: r32.foreign }, round);
  log(`  round ${round} ${LABEL[impl].padEnd(8)} latency c=1 p50 ${r1.latency.p50_us.toFixed(1)} µs ` +
      `p99 ${r1.latency.p99_us.toFixed(1)} µs; c=32 p50 ${r32.latency.p50_us.toFixed(1)} µs ` +
      `p99 ${r32.latency.p99_us.toFixed(1)} µs`);
}

async function rowEcho(impl, round, srv, port) {
  for (const conns of [1, 64]) {
    const r = await windowed(srv, ['echo', '--port', port, '--connections', conns,
                                   '--duration', CFG.echoSeconds, '--warmup', 0.2], CFG.echoSeconds + 1);
    record(`echo.c${conns}`, impl, r.mb_per_s, { errors: r.errors, foreign: r.foreign }, round);
    log(`  round ${round} ${LABEL[impl].padEnd(8)} echo ${String(conns).padEnd(2)} conn ` +
        `${r.mb_per_s.toFixed(1)} MB/s (errors ${r.errors})`);
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

// wrk, run from a shell whose `times` then reports wrk's CPU time.
async function wrk(port, seconds, close) {
  const args = ['-t', '1', '-c', '32', '-d', `${seconds}s`, '--timeout', '5s'];
  if (close) args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${port}/`);
  const out = await runBounded('sh', ['-c', 'wrk "$@" && times', 'sh', ...args], (seconds + 30) * 1000);
  const r = parseWrk(out);
  const t = out.trim().split('\n').pop().match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
  r.cpuS = t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : 0;
  return r;
}

async function rowHttp(impl, round, srv, port) {
  for (const close of [false, true]) {
    const s0 = await srv.sample();
    const b0 = machineBusy();
    const r = await wrk(port, CFG.httpSeconds, close);
    const b1 = machineBusy();
    const s1 = await srv.sample();
    const foreign = foreignCores(b0, b1, s0, s1, r.cpuS, (s1.hr - s0.hr) / 1e9);
    const key = close ? 'http.close' : 'http.keepalive';
    record(key, impl, r.rps, { errors: r.errors, foreign }, round);
    log(`  round ${round} ${LABEL[impl].padEnd(8)} http ${close ? 'Connection: close' : 'keep-alive       '} ` +
        `${r.rps.toFixed(0)} req/s (errors ${r.errors})`);
  }
}

async function rowMemory(impl, round) {
  const port = PORTS.memory;
  const n = Math.min(CFG.memoryConnections, results.machine.nofileHard - 200);
  const srv = await startServer(impl, 'hold', port);
  try {
    await sleep(200);
    const base = await srv.sample(true);
    let ready = null;
    let connectedSample = null;
    const done = runBounded(LOADGEN, ['hold', '--port', port, '--connections', n, '--concurrency', 256,
                                      '--hold', 60, '--timeout', 40],
                            70000, {
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
    record('memory.rss', impl, rssMiB, { held, baseMiB: base.rss / 2 ** 20, errors: h.errors }, round);
    record('memory.perconn', impl, perConn, null, round);
    record('memory.base', impl, base.rss / 2 ** 20, null, round);
    record('memory.anon', impl, connectedSample.rssAnon / 2 ** 20, null, round);
    record('memory.anonbase', impl, base.rssAnon / 2 ** 20, null, round);
    log(`  round ${round} ${LABEL[impl].padEnd(8)} memory ${held} idle conns: RSS ${rssMiB.toFixed(1)} MiB ` +
        `(idle ${(base.rss / 2 ** 20).toFixed(1)} MiB, ${(perConn / 1024).toFixed(2)} KiB/conn, ` +
        `opened in ${h.open_s.toFixed(2)} s, errors ${h.errors})`);
  } finally {
    await srv.stop();
  }
}

// The load generator against a trivial Rust epoll server (loadgen sink):
// how far it goes when the server is not Node.
async function checkGenerator() {
  const port = PORTS.check;
  const out = {};
  const withSink = async (proto, fn) => {
    const child = track(spawn(LOADGEN, ['sink', '--port', port, '--proto', proto, '--duration', 60],
                              { stdio: ['pipe', 'pipe', 'inherit'] }));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    try {
      await fn();
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.on('exit', resolve));
    }
  };
  await withSink('echo', async () => {
    for (const conc of [1, 32, 256]) {
      const r = await loadgen(['churn', '--port', port, '--concurrency', conc, '--duration', CFG.churnSeconds],
                              CFG.churnSeconds);
      out[`churn.c${conc}`] = { rate: r.rate, loadgenCpu: (r.cpu_user_s + r.cpu_sys_s) / r.elapsed_s,
                                cpuUsPerConn: (r.cpu_user_s + r.cpu_sys_s) / Math.max(r.completed, 1) * 1e6 };
    }
    for (const conns of [1, 64]) {
      const r = await loadgen(['echo', '--port', port, '--connections', conns, '--duration', CFG.echoSeconds,
                               '--warmup', 0.2], CFG.echoSeconds + 1);
      out[`echo.c${conns}`] = { mbps: r.mb_per_s };
    }
  });
  await withSink('stamp', async () => {
    const r = await loadgen(['churn', '--port', port, '--concurrency', 1, '--stamp', '--max', CFG.latencyCount,
                             '--duration', 10], 10);
    out['latency.c1'] = { p50: r.latency.p50_us, p99: r.latency.p99_us };
  });
  if (results.wrk) {
    await withSink('http', async () => {
      out['http.keepalive'] = await wrk(port, CFG.httpSeconds, false);
      out['http.close'] = await wrk(port, CFG.httpSeconds, true);
    });
  }
  return out;
}

// ---------------------------------------------------------------- report

// Row definitions for the table: key, row number, label, unit, direction
// ('higher' is better / 'lower' is better), target ratio.
const TABLE = [
  ['churn.c1', 1, 'accept-and-serve, concurrency 1', 'conn/s', 'higher', 1.0],
  ['churn.c32', 1, 'accept-and-serve, concurrency 32', 'conn/s', 'higher', 1.0],
  ['churn.c256', 1, 'accept-and-serve, concurrency 256', 'conn/s', 'higher', 1.0],
  ['latency.c1.p50', 2, "connect → 'connection' p50 (sequential)", 'µs', 'lower', 1.0],
  ['latency.c1.p99', 2, "connect → 'connection' p99 (sequential)", 'µs', 'lower', 1.0],
  ['latency.c32.p50', 2, "connect → 'connection' p50 (32 concurrent)", 'µs', 'lower', 1.0],
  ['latency.c32.p99', 2, "connect → 'connection' p99 (32 concurrent)", 'µs', 'lower', 1.0],
  ['echo.c1', 3, 'echo, 1 persistent connection', 'MB/s', 'higher', 1.0],
  ['echo.c64', 3, 'echo, 64 persistent connections', 'MB/s', 'higher', 1.0],
  ['http.keepalive', 4, 'http.Server, wrk keep-alive (32 conns)', 'req/s', 'higher', 1.0],
  ['http.close', 4, 'http.Server, wrk Connection: close (32 conns)', 'req/s', 'higher', 1.0],
  ['memory.rss', 5, 'RSS with 10,000 idle connections', 'MiB', 'lower', 1.0],
  ['memory.anon', 5, 'RssAnon with 10,000 idle connections', 'MiB', 'lower', 1.0],
  ['cpu.main.c1', 6, 'event-loop CPU per connection, c=1', 'µs', 'lower', 0.67],
  ['cpu.main.c32', 6, 'event-loop CPU per connection, c=32', 'µs', 'lower', 0.67],
  ['cpu.main.c256', 6, 'event-loop CPU per connection, c=256', 'µs', 'lower', 0.67],
  ['cpu.process.c1', 7, 'process CPU per connection, c=1', 'µs', 'lower', null],
  ['cpu.process.c32', 7, 'process CPU per connection, c=32', 'µs', 'lower', null],
  ['cpu.process.c256', 7, 'process CPU per connection, c=256', 'µs', 'lower', null],
];

function summarize() {
  const rows = [];
  for (const [key, row, label, unit, dir, target] of TABLE) {
    const vals = { net: [], rust: [] };
    for (const impl of IMPLS) {
      vals[impl] = results.rounds.filter((r) => r.key === key && r.impl === impl).map((r) => r.value);
    }
    const a = median(vals.net);
    const b = median(vals.rust);
    if (a == null || b == null) continue;
    const ratio = b / a;
    // The same round's two windows ran back to back: their ratio, per round.
    const perRound = [];
    for (const r of results.rounds.filter((x) => x.key === key && x.impl === 'rust')) {
      const n = results.rounds.find((x) => x.key === key && x.impl === 'net' && x.round === r.round);
      if (n && n.value) perRound.push(r.value / n.value);
    }
    let meets = null;
    if (target != null) meets = dir === 'higher' ? ratio >= target : ratio <= target;
    const foreign = results.rounds.filter((x) => x.key === key && x.extra && x.extra.foreign != null)
      .map((x) => x.extra.foreign);
    rows.push({ key, row, label, unit, dir, target, net: a, rust: b, ratio, meets, pairedRatio: median(perRound),
                foreign: foreign.length ? { median: median(foreign), max: Math.max(...foreign) } : null,
                spread: { net: [Math.min(...vals.net), Math.max(...vals.net)],
                          rust: [Math.min(...vals.rust), Math.max(...vals.rust)] },
                n: Math.min(vals.net.length, vals.rust.length) });
  }
  return rows;
}

// With --exp: each figure for node:net, rust-net and the experiment.
function expTable() {
  const exps = IMPLS.filter((i) => i.startsWith('exp'));
  const lines = exps.map((e) => `${e}: ${process.env[e === 'exp' ? 'RUST_NET_EXP_DIR' : 'RUST_NET_EXP2_DIR']}`);
  lines.push('', `| figure | node:net | rust-net | ${exps.join(' | ')} | rust/node | ${exps.map((e) => `${e}/node | ${e}/rust`).join(' | ')} |`,
             `| --- | ${'---: | '.repeat(3 + exps.length * 3).trim()}`);
  const keys = [...new Set(results.rounds.map((r) => r.key))];
  for (const key of keys) {
    const med = (impl) => median(results.rounds.filter((r) => r.key === key && r.impl === impl).map((r) => r.value));
    const a = med('net');
    const b = med('rust');
    const q = (x, y) => (x != null && y ? (x / y).toFixed(2) : '—');
    const cols = exps.map(med);
    lines.push(`| ${key} | ${fmt(a)} | ${fmt(b)} | ${cols.map((c) => fmt(c)).join(' | ')} | ${q(b, a)} | ` +
               `${cols.map((c) => `${q(c, a)} | ${q(c, b)}`).join(' | ')} |`);
  }
  return lines.join('\n');
}

function fmt(x, unit) {
  if (x == null) return '—';
  if (unit === 'conn/s' || unit === 'req/s') return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function targetText(r) {
  if (r.target == null) return '(none)';
  return `${r.dir === 'higher' ? '≥' : '≤'} ${r.target.toFixed(2)}`;
}

function markdownTable(rows) {
  const lines = [
    '| # | figure | node:net | rust-net | ratio rust/node | target | met |',
    '| --- | --- | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of rows) {
    lines.push(`| ${r.row} | ${r.label} (${r.unit}) | ${fmt(r.net, r.unit)} | ${fmt(r.rust, r.unit)} | ` +
               `**${r.ratio.toFixed(2)}** | ${targetText(r)} | ${r.meets == null ? '—' : r.meets ? 'yes' : 'no'} |`);
  }
  return lines.join('\n');
}

function extraFigures() {
  const pick = (key, impl) => median(results.rounds.filter((r) => r.key === key && r.impl === impl).map((r) => r.value));
  const extra = (key, impl, field) => median(results.rounds
    .filter((r) => r.key === key && r.impl === impl && r.extra).map((r) => r.extra[field]));
  const lines = [];
  if (results.rounds.some((r) => r.key.startsWith('churn.'))) {
    lines.push('| concurrency | impl | main thread busy | accept thread µs/conn | loadgen CPU | main µs/conn from stat ticks |',
               '| --- | --- | ---: | ---: | ---: | ---: |');
    for (const c of [1, 32, 256]) {
      for (const impl of IMPLS) {
        const busy = extra(`churn.c${c}`, impl, 'mainBusy');
        const lg = extra(`churn.c${c}`, impl, 'loadgenCpu');
        const acc = pick(`cpu.accept.c${c}`, impl);
        const ticks = extra(`cpu.main.c${c}`, impl, 'ticks');
        lines.push(`| ${c} | ${LABEL[impl]} | ${busy == null ? '—' : (busy * 100).toFixed(0) + '%'} | ` +
                   `${impl === 'rust' && acc != null ? acc.toFixed(2) : '—'} | ` +
                   `${lg == null ? '—' : (lg * 100).toFixed(0) + '% of a core'} | ${ticks == null ? '—' : ticks.toFixed(1)} |`);
      }
    }
  }
  if (results.rounds.some((r) => r.key === 'memory.rss')) {
    lines.push('', '| memory | node:net | rust-net |', '| --- | ---: | ---: |');
    lines.push(`| RSS before connections (MiB) | ${fmt(pick('memory.base', 'net'))} | ${fmt(pick('memory.base', 'rust'))} |`);
    lines.push(`| RssAnon before connections (MiB) | ${fmt(pick('memory.anonbase', 'net'))} | ` +
               `${fmt(pick('memory.anonbase', 'rust'))} |`);
    lines.push(`| RSS growth per idle connection (KiB) | ${fmt(pick('memory.perconn', 'net') / 1024)} | ` +
               `${fmt(pick('memory.perconn', 'rust') / 1024)} |`);
  }
  return lines.join('\n');
}

function checkTable() {
  const c = results.check;
  if (!c) return '_The generator check was not run (--quick or --no-check)._';
  const net = (key) => median(results.rounds.filter((r) => r.key === key && r.impl === 'net').map((r) => r.value));
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
  for (const k of ['http.keepalive', 'http.close']) {
    if (c[k]) rows.push(`| wrk ${k === 'http.close' ? 'Connection: close' : 'keep-alive'} (req/s) | ` +
                        `${fmt(c[k].rps, 'req/s')} | ${fmt(net(k), 'req/s')} | |`);
  }
  return rows.join('\n');
}

function writeResults(rows, svg) {
  const m = results.machine;
  const generated = [
    '<!-- bench:begin — everything down to bench:end is written by `npm run bench` -->',
    `Run ${m.date}${QUICK ? ' (--quick)' : ''}: ${CFG.rounds} rounds (memory: ${Math.min(CFG.rounds, CFG.memoryRounds)}), ` +
    'node:net and rust-net alternating (A/B in even rounds, B/A in odd ones), median per figure. ' +
    `Windows: ${CFG.churnSeconds} s per accept-and-serve run, ${CFG.latencyCount} sequential connections for latency, ` +
    `${CFG.echoSeconds} s per echo run, ${CFG.httpSeconds} s per wrk run.`,
    '',
    '| machine | |',
    '| --- | --- |',
    `| CPUs (nproc) | ${m.nproc} × ${m.cpuModel} |`,
    `| memory | ${m.memGiB} GiB |`,
    `| kernel | ${m.kernel} |`,
    `| virtualization | ${m.virt} |`,
    `| Node.js | ${m.node} (libuv ${m.uv}) |`,
    `| rust-net commit | ${m.commit} |`,
    `| load average (1/5/15 min) at start / end | ${m.loadStart} / ${m.loadEnd} |`,
    `| RLIMIT_NOFILE hard limit | ${m.nofileHard} |`,
    `| other work on the machine during the windows | ${m.busyRows && m.busyRows.length ?
      `above 0.15 cores (median) in: ${m.busyRows.join(', ')}` : 'below 0.15 cores (median) in every row'} |`,
    '',
    '![ratios rust-net / node:net](ratios.svg)',
    '',
    markdownTable(rows),
    '',
    'Ratios are rust-net / node:net of the medians. Throughput rows want ≥ 1, latency, memory and CPU rows ≤ 1.',
    'Rows 6 and 7 are measured during the accept-and-serve runs of row 1: CPU time the server used between',
    'two samples taken just before and just after the measured load, divided by the connections it accepted',
    'in between. Event-loop CPU is the main thread\'s, from /proc/self/task/<tid>/schedstat (ns) — the',
    'tick counts of /proc/self/task/<tid>/stat agree and are shown below; process CPU is process.cpuUsage().',
    '',
    '### Detail',
    '',
    extraFigures(),
    '',
    'Spread (min – max over rounds), and the median of the per-round ratios (each round measures both',
    'implementations back to back, so this pairs windows that saw the same machine conditions):',
    '',
    'The last column is CPU that neither the measured server nor the load generator used during the',
    'windows (other people\'s work on the machine), in cores, median / worst window: 0 on a quiet machine.',
    '',
    '| figure | node:net | rust-net | median per-round ratio | other CPU (cores) |',
    '| --- | --- | --- | ---: | ---: |',
    ...rows.map((r) => `| ${r.label} | ${fmt(r.spread.net[0], r.unit)} – ${fmt(r.spread.net[1], r.unit)} | ` +
                       `${fmt(r.spread.rust[0], r.unit)} – ${fmt(r.spread.rust[1], r.unit)} | ` +
                       `${r.pairedRatio == null ? '—' : r.pairedRatio.toFixed(2)} | ` +
                       `${r.foreign ? `${r.foreign.median.toFixed(2)} / ${r.foreign.max.toFixed(2)}` : '—'} |`),
    '',
    '### Is the load generator the bottleneck?',
    '',
    checkTable(),
    results.wrk ? '' : '\n_wrk is not installed, so row 4 was skipped: `apt-get install wrk`._',
    '<!-- bench:end -->',
  ].join('\n');

  const file = path.join(BENCH, 'RESULTS.md');
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark results\n\n<!-- bench:begin -->\n<!-- bench:end -->\n';
  const begin = text.indexOf('<!-- bench:begin');
  const endMark = '<!-- bench:end -->';
  const end = text.indexOf(endMark);
  if (begin >= 0 && end > begin) {
    text = text.slice(0, begin) + generated + text.slice(end + endMark.length);
  } else {
    text += '\n' + generated + '\n';
  }
  fs.writeFileSync(file, text);
  fs.writeFileSync(path.join(BENCH, 'ratios.svg'), svg);
}

// ---------------------------------------------------------------- main

async function main() {
  ensureAddon();
  ensureLoadgen();
  results.machine = machineInfo();
  results.config = { quick: QUICK, ...CFG, rows: ROWS };
  results.wrk = ROWS.includes('http') && haveWrk();
  const m = results.machine;
  log(`bench: ${m.nproc} CPUs, ${m.memGiB} GiB, ${m.kernel} (${m.virt}), Node ${m.node}, commit ${m.commit}`);
  log(`bench: load average ${m.loadStart}; ${CFG.rounds} rounds${QUICK ? ' (quick)' : ''}`);
  if (os.loadavg()[0] > m.nproc * 0.75) {
    log('bench: warning: the machine is busy (load average above 0.75 per CPU); figures will be noisy');
  }
  if (ROWS.includes('http') && !results.wrk) {
    log('bench: wrk is not installed; skipping row 4 (http). Install it with: apt-get install wrk');
  }

  // mode of bench/server.js per row, and how each server is warmed up
  const modes = { churn: 'serve', latency: 'stamp', echo: 'echo', http: 'http' };
  const warm = {
    churn: (port) => loadgen(['churn', '--port', port, '--concurrency', 32, '--duration', 1], 1),
    latency: (port) => loadgen(['churn', '--port', port, '--concurrency', 32, '--stamp', '--duration', 1], 1),
    echo: (port) => loadgen(['echo', '--port', port, '--connections', 8, '--duration', 0.5, '--warmup', 0], 1),
    http: (port) => wrk(port, 1, false),
  };
  const rowFns = { churn: rowChurn, latency: rowLatency, echo: rowEcho, http: rowHttp, memory: rowMemory };
  for (const row of ROWS) {
    const fn = rowFns[row];
    if (!fn) { console.error(`bench: unknown row ${row}`); process.exit(2); }
    if (row === 'http' && !results.wrk) continue;
    const rounds = row === 'memory' ? Math.min(CFG.rounds, CFG.memoryRounds) : CFG.rounds;
    log(`bench: ${row} (${rounds} rounds)`);
    const servers = {};
    const ports = {};
    try {
      if (row !== 'memory') {
        for (const [i, impl] of IMPLS.entries()) {
          ports[impl] = PORTS[row] + 10 * i;
          servers[impl] = await startServer(impl, modes[row], ports[impl]);
          await warm[row](ports[impl]);
        }
      }
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? [...IMPLS] : [...IMPLS].reverse();
        if (IMPLS.length > 2) order.push(order.shift()); // rotate three ways too
        for (const impl of order) await fn(impl, round, servers[impl], ports[impl]);
      }
    } finally {
      for (const srv of Object.values(servers)) await srv.stop();
    }
  }
  if (CHECK) {
    log('bench: load generator against a trivial Rust server (loadgen sink)');
    results.check = await checkGenerator();
    log(`  ${JSON.stringify(results.check)}`);
  }
  m.loadEnd = os.loadavg().map((x) => x.toFixed(2)).join(' ');

  const rows = summarize();
  log('');
  log(markdownTable(rows));
  if (EXP) {
    log('');
    log(expTable());
  }
  log('');
  log(`bench: load average at end ${m.loadEnd}`);
  const busyRows = rows.filter((r) => r.foreign && r.foreign.median > 0.15);
  m.busyRows = busyRows.map((r) => r.key);
  if (busyRows.length) {
    log(`bench: warning: other work used the machine during ${busyRows.map((r) => r.key).join(', ')} ` +
        '(median above 0.15 cores); rerun on a quieter machine for figures to rely on');
  }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, QUICK ? 'results-quick.json' : 'results.json'),
                   JSON.stringify({ ...results, summary: rows }, null, 1));
  const svg = renderSvg(rows, `Node ${m.node}, ${m.nproc} CPUs (${m.virt}), rust-net ${m.commit}, ${m.date}`);
  if (WRITE && !ONLY) {
    writeResults(rows, svg);
    log('bench: wrote bench/RESULTS.md and bench/ratios.svg');
  } else {
    fs.writeFileSync(path.join(OUT_DIR, 'ratios.svg'), svg);
    log(`bench: raw results in ${path.relative(ROOT, OUT_DIR)}/ (RESULTS.md untouched${QUICK ? '; --write to update it' : ''})`);
  }
}

main().catch((err) => {
  console.error(`bench: ${err.stack || err}`);
  killAll();
  process.exit(1);
});
