'use strict';

// The shareAcrossThreads benchmarks (issue 15), run by `npm run bench --
// --only threads` (bench/run.js) or alone:
//
//   node bench/threads.js [--seconds S] [--work-us U] [--node PATH]
//
// One CPU-bound http service (WORK_US of hashing-like spinning per request,
// the body ending with the serving thread's or process's id) in four
// designs, each driven by wrk (1 thread, 32 connections) on the same machine:
//
//   one        rust-net, one event loop
//   threads    rust-net, 2 worker threads sharing the port (shareAcrossThreads)
//   cluster    node:net cluster, 2 workers, its default round-robin
//   reuseport  node:net, 2 worker threads with reusePort (Node ≥ 22.12 only)
//
// Figures per design: req/s with keep-alive and with `Connection: close`,
// the service's RSS (every process of it), the balance (max/min share of
// requests per worker), and the client errors wrk counts when one worker
// closes its server half-way through a `Connection: close` run. `--node`
// runs the services on another Node binary (reuseport needs 22.12+).
//
// The service itself is this file too: `node bench/threads.js serve <design>
// <port> <workUs>`; it reads commands on stdin ("stats", "close-one") and
// answers with one JSON line each.

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const WORKERS = 2;

// ---------------------------------------------------------------- service

function spin(us) {
  if (us === 0) return;
  const end = process.hrtime.bigint() + BigInt(us) * 1000n;
  while (process.hrtime.bigint() < end);
}

// One http server counting its requests; `listen` is its listen() options.
function httpServer(id, workUs, listen, onListening) {
  const http = require('http');
  let served = 0;
  const server = http.createServer((req, res) => {
    spin(workUs);
    served++;
    res.end(`ok ${id}\n`);
  });
  server.listen(listen, onListening);
  return { server, served: () => served };
}

function serveWorkerThread() {
  const { parentPort, workerData, threadId } = require('worker_threads');
  const { design, port, workUs } = workerData;
  if (design === 'threads') require(path.join(ROOT, 'register.js'));
  const listen = design === 'threads' ?
    { port, host: '127.0.0.1', shareAcrossThreads: true } :
    { port, host: '127.0.0.1', reusePort: true };
  const h = httpServer(threadId, workUs, listen, () => parentPort.postMessage({ listening: true }));
  parentPort.on('message', (m) => {
    if (m === 'stats') parentPort.postMessage({ served: h.served() });
    if (m === 'close') {
      h.server.close();
      h.server.closeIdleConnections?.();
      parentPort.postMessage({ closed: true, served: h.served() });
    }
  });
}

function answerStdin(handlers) {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', async (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const cmd = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (handlers[cmd]) console.log(JSON.stringify(await handlers[cmd]()));
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

function serveThreads(design, port, workUs) {
  const { Worker } = require('worker_threads');
  const workers = [];
  const closed = new Map();
  let up = 0;
  for (let i = 0; i < WORKERS; i++) {
    const w = new Worker(__filename, { workerData: { design, port, workUs } });
    w.on('message', (m) => { if (m.listening && ++up === WORKERS) console.log(JSON.stringify({ listening: port })); });
    workers.push(w);
  }
  const ask = (w) => new Promise((resolve) => {
    if (closed.has(w)) return resolve(closed.get(w));
    w.once('message', (m) => resolve(m.served));
    w.postMessage('stats');
  });
  answerStdin({
    stats: async () => ({ served: await Promise.all(workers.map(ask)) }),
    'close-one': () => new Promise((resolve) => {
      const w = workers[0];
      w.once('message', (m) => { closed.set(w, m.served); resolve({ closed: true }); });
      w.postMessage('close');
    }),
  });
}

function serveOne(port, workUs) {
  require(path.join(ROOT, 'register.js'));
  const h = httpServer(0, workUs, { port, host: '127.0.0.1' }, () => console.log(JSON.stringify({ listening: port })));
  answerStdin({ stats: () => ({ served: [h.served()] }), 'close-one': () => ({ closed: false }) });
}

function serveCluster(port, workUs) {
  const cluster = require('cluster');
  if (cluster.isWorker) {
    const h = httpServer(process.pid, workUs, { port, host: '127.0.0.1' }, () => process.send({ listening: true }));
    process.on('message', (m) => {
      if (m === 'stats') process.send({ served: h.served() });
      if (m === 'close') h.server.close(() => {});
    });
    return;
  }
  cluster.schedulingPolicy = cluster.SCHED_RR;
  const workers = [];
  const last = new Map();
  let up = 0;
  for (let i = 0; i < WORKERS; i++) {
    const w = cluster.fork({ BENCH_THREADS_ROLE: 'worker' });
    w.on('message', (m) => { if (m.listening && ++up === WORKERS) console.log(JSON.stringify({ listening: port })); });
    workers.push(w);
  }
  const ask = (w) => new Promise((resolve) => {
    if (!w.isConnected()) return resolve(last.get(w) ?? 0);
    w.once('message', (m) => { last.set(w, m.served); resolve(m.served); });
    w.send('stats');
  });
  answerStdin({
    stats: async () => ({ served: await Promise.all(workers.map(ask)) }),
    'close-one': async () => {
      await ask(workers[0]);
      workers[0].disconnect();
      return { closed: true };
    },
  });
}

// ---------------------------------------------------------------- driver

function rssOfTree(pid) {
  let total = 0;
  const visit = (p) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
      for (const t of fs.readdirSync(`/proc/${p}/task`)) {
        const kids = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim();
        for (const k of kids ? kids.split(/\s+/) : []) visit(k);
      }
    } catch {
      // Gone meanwhile.
    }
  };
  visit(pid);
  return total;
}

function startService(nodeBin, design, port, workUs) {
  const child = spawn(nodeBin, [__filename, 'serve', design, String(port), String(workUs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, RUST_NET_ACCEPT_PLACEMENT: '' },
  });
  const lines = [];
  const waiters = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const w = waiters.shift();
      if (w) w(JSON.parse(line)); else lines.push(JSON.parse(line));
    }
  });
  const next = () => new Promise((resolve, reject) => {
    if (lines.length) return resolve(lines.shift());
    const t = setTimeout(() => reject(new Error(`${design}: no answer`)), 20000);
    waiters.push((v) => { clearTimeout(t); resolve(v); });
  });
  const ask = (cmd) => { child.stdin.write(`${cmd}\n`); return next(); };
  const stop = () => new Promise((resolve) => {
    child.once('exit', resolve);
    child.stdin.end();
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
  return { child, ready: next(), ask, stop };
}

function wrk(port, seconds, close) {
  const args = ['-t', '1', '-c', '32', '-d', `${seconds}s`, '--timeout', '5s'];
  if (close) args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${port}/`);
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', '"$0" "$@" && times', 'wrk', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const kill = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.on('exit', () => {
      clearTimeout(kill);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
      const t = out.trim().split('\n').pop().match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
      resolve({
        rps: rps ? Number(rps[1]) : null,
        errors: (errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0),
        errorText: errs ? errs[0] : 'none',
        wrkCores: t ? (Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4])) / seconds : null,
      });
    });
  });
}

function balance(before, after) {
  const d = after.map((n, i) => n - (before[i] ?? 0));
  if (d.length < 2) return { shares: d, ratio: 1 };
  return { shares: d, ratio: Math.min(...d) > 0 ? Math.max(...d) / Math.min(...d) : Infinity };
}

function hasReusePort(nodeBin) {
  const r = require('child_process').spawnSync(nodeBin, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  const [major, minor] = r.stdout.trim().split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 12);
}

async function measure(nodeBin, design, port, seconds, workUs, log) {
  const svc = startService(nodeBin, design, port, workUs);
  await svc.ready;
  const out = { design };
  try {
    await wrk(port, 1, false); // warm-up
    let s0 = (await svc.ask('stats')).served;
    const ka = await wrk(port, seconds, false);
    let s1 = (await svc.ask('stats')).served;
    out.keepalive = ka;
    out.keepaliveBalance = balance(s0, s1);
    out.rss = rssOfTree(svc.child.pid);
    s0 = s1;
    const cl = await wrk(port, seconds, true);
    s1 = (await svc.ask('stats')).served;
    out.close = cl;
    out.closeBalance = balance(s0, s1);
    if (design !== 'one') {
      const running = wrk(port, seconds, true);
      await new Promise((resolve) => setTimeout(resolve, (seconds * 1000) / 2));
      await svc.ask('close-one');
      out.memberClosed = await running;
    }
  } finally {
    await svc.stop();
  }
  log(`threads: ${design}: keep-alive ${out.keepalive.rps} req/s (balance ${fmtRatio(out.keepaliveBalance.ratio)}), ` +
      `close ${out.close.rps} req/s (balance ${fmtRatio(out.closeBalance.ratio)}), RSS ${(out.rss / 2 ** 20).toFixed(1)} MiB` +
      (out.memberClosed ? `, one worker closed mid-run: ${out.memberClosed.errors} client errors (${out.memberClosed.errorText})` : '') +
      `; wrk used ${out.close.wrkCores?.toFixed(2)} of a core`);
  return out;
}

function fmtRatio(r) {
  return Number.isFinite(r) ? r.toFixed(2) : '∞';
}

function loadAverage() {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

async function run({ seconds = 5, workUs = 100, nodeBin = process.execPath, port = 18150, log = console.log } = {}) {
  const version = require('child_process').spawnSync(nodeBin, ['--version'], { encoding: 'utf8' }).stdout.trim();
  log(`threads: Node ${version}, WORK_US=${workUs}, ${seconds} s per window, load average ${loadAverage()}`);
  const designs = ['one', 'threads', 'cluster'];
  if (hasReusePort(nodeBin)) designs.push('reuseport');
  else log('threads: reuseport skipped: needs Node ≥ 22.12 (use --node)');
  const results = [];
  for (const design of designs) results.push(await measure(nodeBin, design, port, seconds, workUs, log));
  const by = Object.fromEntries(results.map((r) => [r.design, r]));
  const lines = [
    `Node ${version}, WORK_US=${workUs}, wrk -t1 -c32, ${seconds} s windows, load average before: ${loadAverage()}`,
    '',
    '| design | keep-alive req/s | close req/s | RSS (MiB) | balance k-a / close (max/min) | errors, a worker closed mid-run |',
    '| --- | --- | --- | --- | --- | --- |',
    ...results.map((r) => `| ${r.design} | ${r.keepalive.rps} | ${r.close.rps} | ${(r.rss / 2 ** 20).toFixed(1)} | ` +
      `${fmtRatio(r.keepaliveBalance.ratio)} / ${fmtRatio(r.closeBalance.ratio)} | ${r.memberClosed ? r.memberClosed.errors : '–'} |`),
  ];
  if (by.threads && by.one) {
    lines.push('', `threads ÷ one: keep-alive ${(by.threads.keepalive.rps / by.one.keepalive.rps).toFixed(2)}×, ` +
      `close ${(by.threads.close.rps / by.one.close.rps).toFixed(2)}×` +
      (by.cluster ? `; threads ÷ cluster: keep-alive ${(by.threads.keepalive.rps / by.cluster.keepalive.rps).toFixed(2)}×, ` +
        `close ${(by.threads.close.rps / by.cluster.close.rps).toFixed(2)}×, RSS ${(by.threads.rss / by.cluster.rss).toFixed(2)}×` : ''));
  }
  return { results, markdown: lines.join('\n') };
}

if (require.main === module) {
  const { isMainThread } = require('worker_threads');
  const argv = process.argv.slice(2);
  if (!isMainThread) {
    serveWorkerThread();
  } else if (process.env.BENCH_THREADS_ROLE === 'worker') {
    serveCluster(Number(argv[2]), Number(argv[3]));
  } else if (argv[0] === 'serve') {
    const [, design, port, workUs] = argv;
    if (design === 'one') serveOne(Number(port), Number(workUs));
    else if (design === 'cluster') serveCluster(Number(port), Number(workUs));
    else serveThreads(design, Number(port), Number(workUs));
  } else {
    const opt = (name, def) => {
      const i = argv.indexOf(`--${name}`);
      return i === -1 ? def : argv[i + 1];
    };
    run({ seconds: Number(opt('seconds', 5)), workUs: Number(opt('work-us', 100)), nodeBin: opt('node', process.execPath) })
      .then((r) => console.log(`\n${r.markdown}`));
  }
}

module.exports = { run };
