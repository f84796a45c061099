'use strict';

// The server program under test. The same code runs on node:net and on
// rust-net; only the module it takes createServer() from differs:
//
//   node bench/server.js <net|rust|exp|exp2> <serve|stamp|echo|hold|http|cluster> <port>
//
// Protocols (the load generator speaks the other side):
//   serve    every byte read is written back (accept-and-serve: 1 byte in, 1 out)
//   stamp    on 'connection', write the CLOCK_MONOTONIC time in ns (8 bytes LE),
//            then behave as serve — connect → 'connection' latency
//   echo     socket.pipe(socket) — throughput on persistent connections
//   hold     on 'connection', write one byte, then stay idle — memory per connection
//   http     a plain http.createServer app answering "hello world". For rust-net
//            it runs as a user would run it: under `node -r <rust-net>/register`
//            (bench/run.js adds the -r), so http.Server listens in Rust; the
//            program refuses to start if rust-net was asked for and the preload
//            is missing.
//   cluster  the same app in a cluster: this process is the primary and forks
//            BENCH_CLUSTER_WORKERS (default 2) workers running the http app on
//            the shared port (round-robin scheduling, Node's default on Linux).
//            Under -r register the primary and every worker are on rust-net
//            (workers inherit the primary's execArgv and environment, so also
//            RUST_NET_ACCEPT_PLACEMENT and the CPU affinity).
//
// The same program runs unchanged on Bun's and Deno's node:net and node:http
// (bench/run.js starts it as `bun bench/server.js net ...` and
// `deno run -A --unstable-detect-cjs bench/server.js net ...`: their 'net' is
// their own node:net).
//
// BENCH_SERVER_THREADS=N (rust only; serve, stamp, echo and http): N worker
// threads each run the server with shareAcrossThreads on the one port, the
// main thread only counts and answers the harness.
//
// The accept placement of rust-net comes from the environment
// (RUST_NET_ACCEPT_PLACEMENT=auto|runtime|event-loop, set or unset by
// bench/run.js per variant); this program only reports what it saw.
//
// Run under a parent with an IPC channel (bench/run.js): it prints nothing,
// sends {ready} once listening and answers {cmd:'sample'} with counters (in
// cluster mode the primary's sample adds up its own and its workers').
// Without a parent it runs for BENCH_SERVER_SECONDS (default 60) and exits.

const fs = require('fs');
const path = require('path');
const http = require('http');
const cluster = require('cluster');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

const [impl, mode, portArg] = process.argv.slice(2);
const port = Number(portArg);
const MODES = ['serve', 'stamp', 'echo', 'hold', 'http', 'cluster'];
if (!['net', 'rust', 'exp', 'exp2'].includes(impl) || !MODES.includes(mode) || !Number.isInteger(port)) {
  console.error(`usage: node bench/server.js <net|rust|exp|exp2> <${MODES.join('|')}> <port>`);
  process.exit(2);
}

// RUST_NET_DIR points 'rust' at another rust-net checkout; 'exp' is a third
// implementation from RUST_NET_EXP_DIR (an experiment in a scratch copy).
const rustNetDir = process.env.RUST_NET_DIR || path.join(__dirname, '..');
const lib = impl === 'rust' ? require(rustNetDir) :
  impl === 'exp' ? require(process.env.RUST_NET_EXP_DIR) :
  impl === 'exp2' ? require(process.env.RUST_NET_EXP2_DIR) : require('net');

// Is node:net's Server rust-net's (the register preload ran)?
const registered = impl !== 'net' && require('net').Server === lib.Server;
if ((mode === 'http' || mode === 'cluster') && impl !== 'net' && !registered) {
  console.error(`bench server (${impl} ${mode}): rust-net is not registered; run under node -r <rust-net>/register`);
  process.exit(2);
}
const THREADS = Number(process.env.BENCH_SERVER_THREADS || 1);
if (THREADS > 1 && (impl === 'net' || !['serve', 'stamp', 'echo', 'http'].includes(mode))) {
  console.error(`bench server (${impl} ${mode}): BENCH_SERVER_THREADS needs rust-net and serve, stamp, echo or http`);
  process.exit(2);
}
// With threads, every thread's connections are counted in one shared cell.
const shared = THREADS > 1 ? new Int32Array(isMainThread ? new SharedArrayBuffer(4) : workerData.counter) : null;
let connections = 0;
const noop = () => {};
// A full collection before a memory sample: node and deno run with V8's
// --expose-gc, Bun has Bun.gc.
const gc = global.gc || (globalThis.Bun ? () => globalThis.Bun.gc(true) : noop);
const ONE = Buffer.from('k');

function onServe(socket) {
  socket.on('error', noop);
  socket.on('data', (d) => socket.write(d));
}

// CLOCK_MONOTONIC in ns, which the load generator compares with its own:
// Node's process.hrtime. Bun's and Deno's count from their own start, so
// there it is performance.now() plus an offset read once from the kernel:
// /proc/timer_list (root only) begins with CLOCK_MONOTONIC ("now at N
// nsecs"), formatted at the start of the first read; of 200 reads, the one
// with the shortest window gives the offset (checked on Node against
// hrtime: within ~1 µs). Without it the stamp row is skipped (stampClock).
function kernelMonotonicOffset() {
  let fs0;
  try { fs0 = fs.openSync('/proc/timer_list', 'r'); } catch { return null; }
  fs.closeSync(fs0);
  const buf = Buffer.alloc(256);
  let best = Infinity;
  let offset = null;
  for (let i = 0; i < 200; i++) {
    const fd = fs.openSync('/proc/timer_list', 'r');
    const t0 = performance.now();
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const t1 = performance.now();
    fs.closeSync(fd);
    const m = /now at (\d+) nsecs/.exec(buf.toString('latin1', 0, n));
    if (m && t1 - t0 < best) {
      best = t1 - t0;
      offset = BigInt(m[1]) - BigInt(Math.round(t0 * 1e6));
    }
  }
  return best < 0.05 ? offset : null;
}
const kernelClock = process.env.BENCH_STAMP_CLOCK === 'kernel' || process.versions.bun || process.versions.deno;
const monoOffset = kernelClock && mode === 'stamp' ? kernelMonotonicOffset() : null;
const stampClock = !kernelClock || monoOffset !== null;
const monotonicNs = kernelClock ? () => BigInt(Math.round(performance.now() * 1e6)) + monoOffset :
  () => process.hrtime.bigint();

function onStamp(socket) {
  const stamp = Buffer.allocUnsafe(8);
  stamp.writeBigUInt64LE(monotonicNs());
  socket.on('error', noop);
  socket.write(stamp);
  socket.on('data', (d) => socket.write(d));
}

function onEcho(socket) {
  socket.on('error', noop);
  socket.pipe(socket);
}

function onHold(socket) {
  socket.on('error', noop);
  socket.write(ONE);
}

function httpApp() {
  return http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end('hello world\n');
  });
}

// CPU time of each thread of this process: ticks from /proc/self/task/<tid>/stat
// (utime + stime, fields 14 and 15) and, where the kernel keeps it, the
// nanosecond run time from /proc/self/task/<tid>/schedstat.
const TICK_NS = 1e9 / 100; // USER_HZ is 100 on Linux
function threadTimes() {
  const out = {};
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // fields[0] is field 3 (state): utime is field 14, stime field 15.
      const ticksNs = (Number(fields[11]) + Number(fields[12])) * TICK_NS;
      let runNs = null;
      try {
        runNs = Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
      } catch { /* no schedstat */ }
      out[tid] = { comm, ticksNs, runNs };
    } catch { /* thread ended */ }
  }
  return out;
}

// Fields of /proc/self/status: resident memory (VmRSS, and RssAnon: heaps
// and stacks, without the shared code pages of node and of the addon), and
// the CPUs this process may run on (Cpus_allowed_list, to check pinning).
function statusField(field) {
  const status = fs.readFileSync('/proc/self/status', 'latin1');
  const m = new RegExp(`${field}:\\s+(\\S+)`).exec(status);
  return m ? m[1] : null;
}
function rssBytes(field = 'VmRSS') {
  const v = statusField(field);
  return v == null ? null : Number(v) * 1024;
}

function sample() {
  const cpu = process.cpuUsage();
  return {
    connections: shared ? Atomics.load(shared, 0) : connections,
    mainTid: process.pid,
    threads: threadTimes(),
    cpuUs: cpu.user + cpu.system,
    rss: rssBytes(),
    rssAnon: rssBytes('RssAnon'),
    heapUsed: process.memoryUsage().heapUsed,
    hr: Number(process.hrtime.bigint()),
  };
}

// What this process runs as, for the harness to check and print.
function identity(server) {
  return {
    impl,
    mode,
    runtime: process.versions.bun ? `bun ${process.versions.bun}` :
      process.versions.deno ? `deno ${process.versions.deno}` : `node ${process.version}`,
    threads: THREADS,
    stampClock,
    registered,
    placementEnv: process.env.RUST_NET_ACCEPT_PLACEMENT ?? null,
    // rust-net may say which placement it chose; reported when it does.
    placement: server && typeof server.acceptPlacement === 'string' ? server.acceptPlacement : null,
    cpus: statusField('Cpus_allowed_list'),
    pid: process.pid,
  };
}

function listenAndServe(server, onListening) {
  server.on('connection', shared ? () => { Atomics.add(shared, 0, 1); } : () => { connections++; });
  server.on('error', (err) => {
    console.error(`bench server (${impl} ${mode}): ${err.message}`);
    process.exit(1);
  });
  const options = { port, host: '127.0.0.1', backlog: 511 };
  if (shared) options.shareAcrossThreads = true;
  server.listen(options, onListening);
}

// ---------------------------------------------------------------- cluster

if (mode === 'cluster' && cluster.isPrimary) {
  const nWorkers = Number(process.env.BENCH_CLUSTER_WORKERS || 2);
  const workers = [];
  let shuttingDown = false;
  let listening = 0;
  let nextId = 1;
  const pending = new Map();
  const stopAll = (code) => {
    for (const w of workers) {
      try { w.process.kill('SIGKILL'); } catch { /* gone */ }
    }
    process.exit(code);
  };
  // Samples every worker and adds their CPU and connections to the primary's.
  const clusterSample = async () => {
    const own = sample();
    const parts = await Promise.all(workers.map((w) => new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => { pending.delete(id); resolve(null); }, 5000);
      pending.set(id, (s) => { clearTimeout(timer); resolve(s); });
      w.send({ cmd: 'sample', id });
    })));
    own.primaryConnections = own.connections;
    own.workerConnections = parts.map((p) => (p ? p.connections : null));
    own.connections = parts.reduce((a, p) => a + (p ? p.connections : 0), 0);
    own.cpuUs += parts.reduce((a, p) => a + (p ? p.cpuUs : 0), 0);
    own.rss += parts.reduce((a, p) => a + (p ? p.rss : 0), 0);
    return own;
  };
  for (let i = 0; i < nWorkers; i++) {
    const w = cluster.fork({ BENCH_CLUSTER_WORKER: String(i) });
    workers.push(w);
    w.on('message', (msg) => {
      const p = msg && pending.get(msg.reply);
      if (p) { pending.delete(msg.reply); p(msg.sample); }
    });
    w.on('listening', () => {
      if (++listening === nWorkers && process.send) {
        process.send({ ready: true, sample: sample(), identity: identity(null), workers: nWorkers });
      }
    });
    w.on('exit', (code, signal) => {
      if (!shuttingDown) {
        console.error(`bench server (${impl} cluster): worker ${i} exited (${code ?? signal})`);
        stopAll(1);
      }
    });
  }
  if (process.send) {
    process.on('message', (msg) => {
      if (msg && msg.cmd === 'sample') {
        clusterSample().then((s) => process.send({ reply: msg.id, sample: s }));
      } else if (msg && msg.cmd === 'exit') {
        shuttingDown = true;
        stopAll(0);
      }
    });
    process.on('disconnect', () => { shuttingDown = true; stopAll(0); });
  } else {
    setTimeout(() => { shuttingDown = true; stopAll(0); }, Number(process.env.BENCH_SERVER_SECONDS || 60) * 1000).unref();
  }
} else if (mode === 'cluster') {
  // A worker: the http app; the primary asks it for samples. It exits with
  // the primary (cluster workers exit when their IPC channel closes).
  const server = httpApp();
  listenAndServe(server);
  process.on('message', (msg) => {
    if (msg && msg.cmd === 'sample') process.send({ reply: msg.id, sample: sample() });
  });
} else if (shared && isMainThread) {
  // ------------------------------------------------------------ threads

  let listening = 0;
  const workers = [];
  for (let i = 0; i < THREADS; i++) {
    const w = new Worker(__filename, { argv: process.argv.slice(2), workerData: { counter: shared.buffer } });
    workers.push(w);
    w.on('message', (msg) => {
      if (msg.listening && ++listening === THREADS && process.send) {
        process.send({ ready: true, sample: sample(), identity: { ...identity(null), registered: msg.registered } });
      }
    });
    w.on('error', (err) => {
      console.error(`bench server (${impl} ${mode}): thread ${i}: ${err.message}`);
      process.exit(1);
    });
  }
  if (process.send) {
    process.on('message', (msg) => {
      if (msg && msg.cmd === 'sample') process.send({ reply: msg.id, sample: sample() });
      else if (msg && msg.cmd === 'exit') process.exit(0);
    });
    process.on('disconnect', () => process.exit(0));
  } else {
    setTimeout(() => process.exit(0), Number(process.env.BENCH_SERVER_SECONDS || 60) * 1000).unref();
  }
} else if (shared) {
  // One of the threads: the server, sharing the port.
  let server;
  if (mode === 'http') server = httpApp();
  else server = lib.createServer({ serve: onServe, stamp: onStamp, echo: onEcho }[mode]);
  listenAndServe(server, () => parentPort.postMessage({ listening: true, registered }));
} else {
  // ------------------------------------------------------------ one process

  let server;
  if (mode === 'http') {
    server = httpApp();
  } else {
    const handler = { serve: onServe, stamp: onStamp, echo: onEcho, hold: onHold }[mode];
    server = lib.createServer(handler);
  }
  listenAndServe(server, () => {
    if (process.send) {
      process.send({ ready: true, sample: sample(), identity: identity(server) });
    }
  });

  if (process.send) {
    process.on('message', (msg) => {
      if (msg && msg.cmd === 'sample') {
        if (msg.gc) gc();
        process.send({ reply: msg.id, sample: sample() });
      } else if (msg && msg.cmd === 'exit') {
        process.exit(0);
      }
    });
    process.on('disconnect', () => process.exit(0));
  } else {
    setTimeout(() => process.exit(0), Number(process.env.BENCH_SERVER_SECONDS || 60) * 1000).unref();
  }
}
