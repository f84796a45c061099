'use strict';

// The server program of bench/admission.js (issue 14's rows: the PROXY
// header's cost, and the cost of rejecting connections). One accept-and-serve
// server (every byte read is written back, as bench/server.js's `serve`) with
// the admission a variant asks for:
//
//   node bench/admission-server.js <net|rust|net-js-proxy> <port> '<json config>'
//
// impl          net: node:net; rust: rust-net (RUST_NET_DIR or this
//               checkout); net-js-proxy: node:net with a userland PROXY
//               check in JavaScript (the first chunk must start with a v1 or
//               v2 signature, else the socket is destroyed; the header is
//               skipped) — the shape of the userland wrappers, for scale.
// config        { proxy: { trusted: [...] } | null, block: ['127.0.0.2'] | null }
//               proxy → createServer({ proxyProtocol }) (rust only);
//               block → createServer({ blockList }) with those addresses.
//
// Runs under bench/admission.js with an IPC channel: sends {ready} once
// listening and answers {cmd:'sample'} with the main thread's CPU time
// (/proc/self/task/<pid>/stat utime+stime, and schedstat's ns), the
// 'connection' count and, for rust-net, admissionStats(). Without a parent it
// exits after BENCH_SERVER_SECONDS (default 60). Node built-ins only.

const fs = require('fs');
const net = require('net');
const path = require('path');

const [impl, portArg, configArg] = process.argv.slice(2);
const port = Number(portArg);
if (!['net', 'rust', 'net-js-proxy'].includes(impl) || !Number.isInteger(port)) {
  console.error('usage: node bench/admission-server.js <net|rust|net-js-proxy> <port> [json config]');
  process.exit(2);
}
const config = JSON.parse(configArg || '{}');
const rustNetDir = process.env.RUST_NET_DIR || path.join(__dirname, '..');
const lib = impl === 'rust' ? require(rustNetDir) : net;

const noop = () => {};
let connections = 0;

function onServe(socket) {
  socket.on('error', noop);
  socket.on('data', (d) => socket.write(d));
}

// Userland PROXY check, as the npm wrappers do it: look at the first chunk.
const V2_SIG = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
const V1_SIG = Buffer.from('PROXY ', 'latin1');
function onServeJsProxy(socket) {
  socket.on('error', noop);
  socket.once('data', (chunk) => {
    let skip = -1;
    if (chunk.length >= 16 && chunk.subarray(0, 12).equals(V2_SIG)) {
      skip = 16 + chunk.readUInt16BE(14);
    } else if (chunk.subarray(0, 6).equals(V1_SIG)) {
      const end = chunk.indexOf('\r\n');
      if (end > 0) skip = end + 2;
    }
    if (skip < 0 || skip > chunk.length) {
      socket.destroy();
      return;
    }
    if (skip < chunk.length) socket.write(chunk.subarray(skip));
    socket.on('data', (d) => socket.write(d));
  });
}

const options = {};
if (config.block) {
  const blockList = new net.BlockList();
  for (const a of config.block) blockList.addAddress(a);
  options.blockList = blockList;
}
if (config.proxy) {
  if (impl !== 'rust') {
    console.error('admission-server: proxyProtocol is rust-net only');
    process.exit(2);
  }
  options.proxyProtocol = config.proxy;
}
// Node < 22.13 ignores blockList: say so rather than measure nothing.
const server = lib.createServer(options, impl === 'net-js-proxy' ? onServeJsProxy : onServe);
if (config.block && !(server.blockList instanceof net.BlockList)) {
  console.error(`admission-server: ${impl} on Node ${process.version} has no blockList`);
  process.exit(3);
}
server.on('connection', () => { connections++; });
server.on('error', (err) => {
  console.error(`admission-server (${impl}): ${err.message}`);
  process.exit(1);
});

const TICK_NS = 1e9 / 100; // USER_HZ
function mainThread() {
  const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksNs = (Number(fields[11]) + Number(fields[12])) * TICK_NS;
  let runNs = null;
  try {
    runNs = Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'latin1').split(' ')[0]);
  } catch { /* no schedstat */ }
  return { ticksNs, runNs };
}

function sample() {
  const cpu = process.cpuUsage();
  return {
    connections,
    main: mainThread(),
    cpuUs: cpu.user + cpu.system,
    admission: impl === 'rust' && lib.admissionStats ? lib.admissionStats(server) : null,
    hr: Number(process.hrtime.bigint()),
  };
}

server.listen({ port, host: '127.0.0.1', backlog: 511 }, () => {
  if (process.send) {
    process.send({
      ready: true,
      sample: sample(),
      node: process.version,
      rustNet: impl === 'rust' ? lib.isRustServer?.(server) === true : false,
    });
  }
});

if (process.send) {
  process.on('message', (msg) => {
    if (msg && msg.cmd === 'sample') process.send({ reply: msg.id, sample: sample() });
    else if (msg && msg.cmd === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
} else {
  setTimeout(() => process.exit(0), Number(process.env.BENCH_SERVER_SECONDS || 60) * 1000).unref();
}
