'use strict';

// Restarts under load (issue 30, docs/handover.md): a server process
// (bench/handover-server.js) is replaced N times in S seconds while short
// connections (32 in flight) and keep-alive http requests run against it,
// and every refused connect, reset and failed request is counted, for three
// ways of replacing it:
//
//   rust-net   the new process takes the listening sockets over
//              (RUST_NET_HANDOVER under rust-net/register); the old one exits
//              by itself
//   node       node:net: SIGTERM to the old process (it closes its servers),
//              then the new process listens
//   reuseport  node:net with reusePort (Node >= 22.12): the new process
//              binds beside the old one, then SIGTERM to the old one
//
//   node bench/handover.js [--replacements 20] [--seconds 30] [--node 24]
//                          [--modes rust-net,node,reuseport] [--write]
//
// --node: the Node the servers run on (a major, fetched like test:matrix's,
// or a path; default 24). --write puts the table into bench/JOURNAL.md,
// section "Restarts under load (issue 30)". Ports 17421 and 17422.

const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const NET_PORT = 17421;
const HTTP_PORT = 17422;
const HOST = '127.0.0.1';
const SHORT_IN_FLIGHT = 32;
const KEEP_ALIVE_CLIENTS = 8;
const JOURNAL = path.join(__dirname, 'JOURNAL.md');
const START = '<!-- bench/handover.js: start -->';
const END = '<!-- bench/handover.js: end -->';

function args() {
  const out = { replacements: 20, seconds: 30, node: '24', modes: ['rust-net', 'node', 'reuseport'], write: false };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--write') out.write = true;
    else if (a === '--replacements') out.replacements = Number(argv[++i]);
    else if (a === '--seconds') out.seconds = Number(argv[++i]);
    else if (a === '--node') out.node = argv[++i];
    else if (a === '--modes') out.modes = argv[++i].split(',');
    else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

function nodeBinary(spec) {
  if (spec.includes('/')) return spec;
  return require('../scripts/node-binaries').nodeFor(Number(spec));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One server process; resolves once it listens on both ports.
function startServer(nodeBin, mode, ctl) {
  const env = { ...process.env, HANDOVER_MODE: mode };
  if (mode === 'rust-net') env.RUST_NET_HANDOVER = ctl;
  const child = spawn(nodeBin, [path.join(__dirname, 'handover-server.js'), String(NET_PORT), String(HTTP_PORT)],
                      { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const listening = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
  });
  return { child, exited, listening };
}

// Load: short connections and keep-alive requests until stop().
function runLoad() {
  let stopped = false;
  const counts = {
    short: { ok: 0, refused: 0, reset: 0, other: 0 },
    keepAlive: { ok: 0, retried: 0, refused: 0, reset: 0, other: 0 },
  };
  const classify = (bucket, err) => {
    if (err.code === 'ECONNREFUSED') bucket.refused++;
    else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') bucket.reset++;
    else bucket.other++;
  };
  const short = () => new Promise((resolve) => {
    const socket = net.connect(NET_PORT, HOST);
    let data = '';
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('end', () => {
      if (data.length > 0) counts.short.ok++; else counts.short.other++;
      resolve();
    });
    socket.on('error', (err) => {
      classify(counts.short, err);
      resolve();
    });
    socket.setTimeout(5000, () => socket.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: KEEP_ALIVE_CLIENTS });
  const get = () => new Promise((resolve, reject) => {
    const req = http.get({ host: HOST, port: HTTP_PORT, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', (err) => {
      err.reused = req.reusedSocket;
      reject(err);
    });
  });
  // As Node's documentation advises: a request on a reused connection the
  // server closed as idle before answering is sent again (it never ran).
  const keepAlive = async () => {
    try {
      await get();
    } catch (err) {
      if (!(err.reused && err.code === 'ECONNRESET')) throw err;
      counts.keepAlive.retried++;
      await get();
    }
    counts.keepAlive.ok++;
  };
  const loops = [
    ...Array.from({ length: SHORT_IN_FLIGHT }, async () => {
      while (!stopped) await short();
    }),
    ...Array.from({ length: KEEP_ALIVE_CLIENTS }, async () => {
      while (!stopped) {
        try {
          await keepAlive();
        } catch (err) {
          classify(counts.keepAlive, err);
        }
      }
    }),
  ];
  return async () => {
    stopped = true;
    await Promise.all(loops);
    agent.destroy();
    return counts;
  };
}

async function measure(nodeBin, mode, replacements, seconds) {
  const ctl = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-handover-bench-')), 'ctl');
  let current = startServer(nodeBin, mode, ctl);
  await current.listening;
  const stop = runLoad();
  const started = Date.now();
  const interval = (seconds * 1000) / (replacements + 1);
  let gap = 0;
  for (let i = 0; i < replacements; i++) {
    await sleep(Math.max(0, started + (i + 1) * interval - Date.now()));
    const before = Date.now();
    let next;
    if (mode === 'node') {
      current.child.kill('SIGTERM');
      await current.exited;
      next = startServer(nodeBin, mode, ctl);
      await next.listening;
    } else {
      next = startServer(nodeBin, mode, ctl);
      await next.listening;
      if (mode === 'reuseport') current.child.kill('SIGTERM');
    }
    gap = Math.max(gap, Date.now() - before);
    current = next;
  }
  await sleep(Math.max(0, started + seconds * 1000 - Date.now()));
  const counts = await stop();
  current.child.kill('SIGTERM');
  await current.exited;
  return { mode, counts, seconds: (Date.now() - started) / 1000, slowestReplacementMs: gap };
}

function table(results, nodeVersion, opts) {
  const rows = results.map(({ mode, counts: { short, keepAlive }, slowestReplacementMs }) =>
    `| ${mode} | ${short.ok} | ${short.refused} | ${short.reset} | ${short.other} | ${keepAlive.ok} | ` +
    `${keepAlive.refused} | ${keepAlive.reset} | ${keepAlive.other} | ${keepAlive.retried} | ${slowestReplacementMs} |`);
  return [
    `${opts.replacements} replacements in ${opts.seconds} s, servers on Node ${nodeVersion}, ` +
      `${SHORT_IN_FLIGHT} short connections in flight and ${KEEP_ALIVE_CLIENTS} keep-alive http clients, ` +
      `${new Date().toISOString()} (bench/handover.js):`,
    '',
    '| replaced by | short ok | refused | reset | other | keep-alive ok | refused | reset | failed | sent again | slowest replacement (ms) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

function writeJournal(text) {
  let journal = fs.readFileSync(JOURNAL, 'utf8');
  const block = `${START}\n${text}\n${END}`;
  if (journal.includes(START) && journal.includes(END)) {
    journal = journal.slice(0, journal.indexOf(START)) + block + journal.slice(journal.indexOf(END) + END.length);
  } else {
    journal = `${journal.trimEnd()}\n\n## Restarts under load (issue 30)\n\n` +
      'A server replaced while under load, three ways (docs/handover.md): rust-net\'s hand-over ' +
      '(the new process takes the listening sockets), node:net (close, then listen in the new ' +
      'process) and node:net with reusePort (the new process binds first, then the old one ' +
      'closes). "sent again": keep-alive requests whose reused connection the server closed as ' +
      'idle before answering, retried as Node\'s documentation advises; "failed" counts what ' +
      `still failed.\n\n${block}\n`;
  }
  fs.writeFileSync(JOURNAL, journal);
}

async function main() {
  const opts = args();
  const nodeBin = nodeBinary(opts.node);
  const { spawnSync } = require('child_process');
  const nodeVersion = spawnSync(nodeBin, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  // node:net's listen() knows reusePort since 22.12 and 23.1.
  const [major, minor] = nodeVersion.split('.').map(Number);
  const hasReusePort = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  const results = [];
  for (const mode of opts.modes) {
    if (mode === 'reuseport' && !hasReusePort) {
      console.log(`reuseport: skipped, Node ${nodeVersion} has no reusePort`);
      continue;
    }
    console.log(`${mode}: ${opts.replacements} replacements in ${opts.seconds} s ...`);
    const result = await measure(nodeBin, mode, opts.replacements, opts.seconds);
    console.log(JSON.stringify(result));
    results.push(result);
  }
  const text = table(results, nodeVersion, opts);
  console.log(`\n${text}`);
  if (opts.write) writeJournal(text);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
