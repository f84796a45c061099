'use strict';

// Issue 31's benchmark: overload refused before the event loop, against
// node:net with maxConnections. Two scenarios, each server in a child
// process of its own, clients in this process and a child (loopback only,
// ports 17800-17899, every window bounded):
//
// hog       One address (127.0.0.2, a child process) opens and holds HOG
//           connections while 100 other addresses (127.0.1.1-100) make
//           requests in a closed loop (connect, 1 byte, 2-byte reply,
//           close). rust-net: maxConnectionsPerAddress 100; node:net:
//           maxConnections 1,000 (the only limit it has). Figures: the other
//           clients' requests served and their p50/p99 connect -> reply,
//           unloaded (no hog) and loaded. Target: every other client served,
//           p99 within 2x unloaded.
// open      New connections arrive open-loop at twice what the server can
//           serve (measured first: closed loop, 8 in flight, node:net) for
//           SECONDS s; each costs the server WORK_US of CPU. rust-net:
//           pauseAcceptAfter 50, shedAbove 128; node:net: maxConnections
//           1,000. Figures: served, refused (reset or closed), p50/p99
//           connect -> reply of the served, the server's peak RSS.
//
//   node bench/overload.js [--quick] [--write] [--scenarios hog,open]
//
// sweep     What sets load-aware accepting's default: rust-net's open loop
//           at 0.7x capacity (a server keeping up: every pause there is a
//           false alarm, every shed connection a needless reset) and at 2x
//           (overloaded: what it serves, how late, and its memory), for
//           each pauseAcceptAfter value, beside rust-net without the option
//           and node:net. ROUNDS rounds, the configurations in turn.
//
//   node bench/overload.js --sweep [--pauses 5,10,25,50,100,200] [--shed 128]
//                          [--light 0.7] [--seconds 6] [--rounds 2] [--write]
//
// --quick shortens every window (and HOG to 1,000); --write replaces the
// overload:begin/end block of bench/JOURNAL.md (added at the end if missing).
// Node built-ins only; rust-net from this checkout (built: npm install).

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const JOURNAL = path.join(__dirname, 'JOURNAL.md');
const argv = process.argv.slice(2);
const opt = (name) => argv.includes(`--${name}`);
const optVal = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const QUICK = opt('quick');
const HOG = QUICK ? 1000 : 5000;
const OTHERS = 100;
const WINDOW_S = QUICK ? 3 : 10;
const SECONDS = Number(optVal('seconds', QUICK ? 4 : 10));
const WORK_US = 1000;
const SCENARIOS = optVal('scenarios', 'hog,open').split(',');
const PORT = 17800;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...a) => console.log(...a);

// ------------------------------------------------------------ the server

// `node bench/overload.js --serve <impl> <scenario> <port>`: one server.
if (argv[0] === '--serve') {
  const [, impl, scenario, port, given] = argv;
  const mod = impl === 'rust-net' ? require(ROOT) : net;
  const options = given ? JSON.parse(given) : impl !== 'rust-net' ? {} : scenario === 'hog' ?
    { maxConnectionsPerAddress: 100 } : { pauseAcceptAfter: 50, shedAbove: 128 };
  const server = mod.createServer(options, (socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      const until = process.hrtime.bigint() + BigInt(WORK_US * 1000);
      while (process.hrtime.bigint() < until) { /* the request's CPU */ }
      socket.end('ok');
    });
  });
  server.maxConnections = impl === 'rust-net' ? null : 1000;
  server.on('connectionRejected', () => {});
  server.listen({ port: Number(port), host: '0.0.0.0', backlog: 511 }, () => process.send('listening'));
  process.on('message', (m) => {
    if (m === 'stats') process.send({ stats: mod.serverStats ? mod.serverStats(server) : null });
  });
  setTimeout(() => process.exit(0), 10 * 60e3).unref();
  return;
}

// `node bench/overload.js --hog <port> <n>`: opens and holds n connections.
if (argv[0] === '--hog') {
  const [, port, n] = argv;
  const held = [];
  let open = 0;
  let closed = 0;
  const more = () => {
    while (open - closed < Number(n) && held.length < Number(n) * 2) {
      const s = net.connect({ port: Number(port), host: '127.0.0.1', localAddress: '127.0.0.2' });
      s.on('connect', () => { open++; });
      s.on('error', () => {});
      s.on('close', () => { closed++; });
      held.push(s);
      if (held.length % 200 === 0) break;
    }
    process.send?.({ open: open - closed });
    setTimeout(more, 20);
  };
  more();
  setTimeout(() => process.exit(0), 5 * 60e3).unref();
  return;
}

function startServer(impl, scenario, port, options) {
  const args = [__filename, '--serve', impl, scenario, String(port)];
  if (options) args.push(JSON.stringify(options));
  const child = spawn(process.execPath, args,
                      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise((resolve) => child.once('message', resolve));
  return { child, ready };
}

function rssKiB(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// One request: resolves with the connect -> reply time in ms, or null when
// the connection was refused, reset or timed out.
function request(port, localAddress) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    const timer = setTimeout(() => { s.destroy(); resolve(null); }, 5000);
    let done = false;
    const finish = (value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(value);
    };
    s.on('connect', () => s.write('x'));
    s.on('data', () => finish(Number(process.hrtime.bigint() - start) / 1e6));
    s.on('error', () => finish(null));
    s.on('close', () => finish(null));
  });
}

function percentile(xs, p) {
  if (xs.length === 0) return null;
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor(p * v.length))];
}
const fmt = (x, d = 2) => (x == null ? '—' : x.toFixed(d));

// Closed loop from OTHERS addresses for `seconds`.
async function others(port, seconds) {
  const latencies = [];
  let failed = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: OTHERS }, async (_, i) => {
    const local = `127.0.1.${i + 1}`;
    while (Date.now() < end) {
      const ms = await request(port, local);
      if (ms == null) {
        failed++;
        await sleep(10);
      } else {
        latencies.push(ms);
      }
    }
  }));
  return { served: latencies.length, failed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

async function hogScenario(impl, port) {
  const server = startServer(impl, 'hog', port);
  await server.ready;
  const unloaded = await others(port, WINDOW_S);
  const hog = spawn(process.execPath, [__filename, '--hog', String(port), String(HOG)],
                    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let held = 0;
  hog.on('message', (m) => { held = m.open; });
  for (let i = 0; i < 100 && held < Math.min(HOG, impl === 'rust-net' ? 100 : 1000); i++) await sleep(100);
  await sleep(500);
  const loaded = await others(port, WINDOW_S);
  const heldAtEnd = held;
  hog.kill('SIGKILL');
  server.child.kill('SIGKILL');
  return { impl, unloaded, loaded, held: heldAtEnd };
}

// Closed loop, 8 in flight, for 2 s against node:net: connections per second.
async function capacity(port) {
  const server = startServer('node:net', 'open', port);
  await server.ready;
  let served = 0;
  const end = Date.now() + 2000;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (Date.now() < end) if ((await request(port, '127.0.0.1')) != null) served++;
  }));
  server.child.kill('SIGKILL');
  return served / 2;
}

async function openScenario(impl, port, rate, options) {
  const server = startServer(impl, 'open', port, options);
  await server.ready;
  const baseRss = rssKiB(server.child.pid);
  let peakRss = baseRss;
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, rssKiB(server.child.pid) ?? 0); }, 100);
  const pending = [];
  const start = Date.now();
  let sent = 0;
  while (Date.now() - start < SECONDS * 1000) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    for (; sent < due; sent++) pending.push(request(port, `127.0.2.${1 + (sent % 200)}`));
    await sleep(1);
  }
  const results = await Promise.all(pending);
  clearInterval(sampler);
  const stats = await new Promise((resolve) => {
    server.child.once('message', (m) => resolve(m.stats));
    server.child.send('stats');
    setTimeout(() => resolve(null), 1000);
  });
  server.child.kill('SIGKILL');
  const served = results.filter((x) => x != null);
  return {
    impl, sent, served: served.length, refused: sent - served.length,
    p50: percentile(served, 0.5), p99: percentile(served, 0.99),
    baseRssMiB: baseRss / 1024, peakRssMiB: peakRss / 1024, stats,
  };
}

// Replaces the `name`:begin/end block of bench/JOURNAL.md (added under
// `heading` at the end if missing).
function writeJournal(markdown, name = 'overload', heading = 'Overload (issue 31): per-client limits and load-aware accepting') {
  const begin = `<!-- ${name}:begin — everything down to ${name}:end is written by \`node bench/overload.js ${name === 'overload' ? '--write' : '--sweep --write'}\` -->`;
  const end = `<!-- ${name}:end -->`;
  let text = fs.readFileSync(JOURNAL, 'utf8');
  const block = `${begin}\n${markdown}\n${end}`;
  const i = text.indexOf(`<!-- ${name}:begin`);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) {
    text = text.slice(0, i) + block + text.slice(j + end.length);
  } else {
    text = `${text.trimEnd()}\n\n## ${heading}\n\n${block}\n`;
  }
  fs.writeFileSync(JOURNAL, text);
}

// The sweep's configurations: [label, impl, server options].
function sweepConfigs() {
  const pauses = optVal('pauses', '5,10,25,50,100,200').split(',').map(Number);
  const shed = optVal('shed', '128');
  const shedAbove = shed === 'none' ? {} : { shedAbove: Number(shed) };
  return [
    ['node:net, maxConnections 1,000', 'node:net', null],
    ['rust-net, no option', 'rust-net', {}],
    ...pauses.map((n) => [`rust-net, pauseAcceptAfter ${n}${shed === 'none' ? '' : `, shedAbove ${shed}`}`,
      'rust-net', { pauseAcceptAfter: n, ...shedAbove }]),
  ];
}

async function sweep() {
  const rounds = Number(optVal('rounds', '2'));
  const lightLoad = Number(optVal('light', '0.7'));
  let port = PORT + 50;
  const cap = await capacity(port++);
  const configs = sweepConfigs();
  const rows = new Map(configs.map(([label]) => [label, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [label, impl, options] of configs) {
      const light = await openScenario(impl, port++, Math.round(cap * lightLoad), options);
      const heavy = await openScenario(impl, port++, Math.round(cap * 2), options);
      log(JSON.stringify({ round, label, light, heavy }));
      rows.get(label).push({ light, heavy });
      if (port > PORT + 99) port = PORT + 51;
    }
  }
  const med = (xs) => percentile(xs.filter((x) => x != null), 0.5);
  const lines = [
    `Run ${new Date().toISOString()}: Node ${process.version}, ${os.cpus().length} CPUs, load average at start ` +
    `${os.loadavg().map((x) => x.toFixed(2)).join(' ')}. Capacity ${Math.round(cap)}/s (closed loop, node:net); ` +
    `open loop for ${SECONDS} s at ${lightLoad}x (${Math.round(cap * lightLoad)}/s) and 2x (${Math.round(cap * 2)}/s); ` +
    `${WORK_US} µs of CPU per request; the median of ${rounds} rounds (of two, the higher).`, '',
    `| server | ${lightLoad}x: served % | p99 ms | pauses | shed | 2x: served | p99 ms | peak RSS MiB | pauses | shed |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [label] of configs) {
    const rs = rows.get(label);
    const l = rs.map((r) => r.light);
    const h = rs.map((r) => r.heavy);
    lines.push(`| ${label} | ${fmt(med(l.map((r) => (100 * r.served) / r.sent)), 1)} | ${fmt(med(l.map((r) => r.p99)))} | ` +
      `${med(l.map((r) => r.stats?.pauses)) ?? '—'} | ${med(l.map((r) => r.stats?.shed)) ?? '—'} | ` +
      `${med(h.map((r) => r.served))} | ${fmt(med(h.map((r) => r.p99)))} | ${fmt(med(h.map((r) => r.peakRssMiB)), 1)} | ` +
      `${med(h.map((r) => r.stats?.pauses)) ?? '—'} | ${med(h.map((r) => r.stats?.shed)) ?? '—'} |`);
  }
  const markdown = lines.join('\n');
  log(markdown);
  if (opt('write')) writeJournal(markdown, 'overload-sweep', 'Load-aware accepting: the default, measured (issue 31)');
}

async function main() {
  if (opt('sweep')) return sweep();
  const lines = [
    `Run ${new Date().toISOString()}${QUICK ? ' (--quick)' : ''}: Node ${process.version}, ${os.cpus().length} CPUs, ` +
    `load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}. Each server a child process; ` +
    `${WORK_US} µs of CPU per request.`,
    '',
  ];
  let port = PORT;
  if (SCENARIOS.includes('hog')) {
    lines.push(`**One address holds ${HOG.toLocaleString('en-US')} connections; ${OTHERS} others request ` +
               `(closed loop, ${WINDOW_S} s each)** — rust-net maxConnectionsPerAddress 100, node:net maxConnections 1,000:`, '',
               '| server | hog held | unloaded served | p50 ms | p99 ms | loaded served | failed | p50 ms | p99 ms | p99 loaded / unloaded |',
               '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const impl of ['node:net', 'rust-net']) {
      const r = await hogScenario(impl, port++);
      log(JSON.stringify(r));
      lines.push(`| ${impl} | ${r.held} | ${r.unloaded.served} | ${fmt(r.unloaded.p50)} | ${fmt(r.unloaded.p99)} | ` +
                 `${r.loaded.served} | ${r.loaded.failed} | ${fmt(r.loaded.p50)} | ${fmt(r.loaded.p99)} | ` +
                 `${r.loaded.p99 && r.unloaded.p99 ? fmt(r.loaded.p99 / r.unloaded.p99) : '—'} |`);
    }
    lines.push('');
  }
  if (SCENARIOS.includes('open')) {
    const cap = await capacity(port++);
    const rate = Math.round(cap * 2);
    lines.push(`**Open-loop arrivals at 2x capacity** (capacity ${Math.round(cap)}/s measured closed-loop; ${rate}/s for ` +
               `${SECONDS} s) — rust-net pauseAcceptAfter 50, shedAbove 128; node:net maxConnections 1,000:`, '',
               '| server | sent | served | refused | p50 ms | p99 ms | RSS at start MiB | peak RSS MiB | rust-net shed / pauses / paused ms |',
               '| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const impl of ['node:net', 'rust-net']) {
      const r = await openScenario(impl, port++, rate);
      log(JSON.stringify(r));
      const s = r.stats;
      lines.push(`| ${impl} | ${r.sent} | ${r.served} | ${r.refused} | ${fmt(r.p50)} | ${fmt(r.p99)} | ` +
                 `${fmt(r.baseRssMiB, 1)} | ${fmt(r.peakRssMiB, 1)} | ${s ? `${s.shed} / ${s.pauses} / ${s.pausedMs}` : '—'} |`);
    }
  }
  const markdown = lines.join('\n');
  log(markdown);
  if (opt('write')) writeJournal(markdown);
}

setTimeout(() => {
  console.error('bench/overload: still running after 40 min; stopping');
  process.exit(1);
}, 40 * 60e3).unref();
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
