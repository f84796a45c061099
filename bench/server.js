'use strict';

// The server program under test. The same code runs on node:net and on
// rust-net; only the module it takes createServer() from differs:
//
//   node bench/server.js <net|rust|exp|exp2> <serve|stamp|echo|hold|http> <port>
//
// Protocols (the load generator speaks the other side):
//   serve  every byte read is written back (accept-and-serve: 1 byte in, 1 out)
//   stamp  on 'connection', write the CLOCK_MONOTONIC time in ns (8 bytes LE),
//          then behave as serve — connect → 'connection' latency
//   echo   socket.pipe(socket) — throughput on persistent connections
//   hold   on 'connection', write one byte, then stay idle — memory per connection
//   http   an http.Server answering "hello world"; on rust-net it is fed with
//          rustServer.on('connection', s => httpServer.emit('connection', s))
//
// Run under a parent with an IPC channel (bench/run.js): it prints nothing,
// sends {ready} once listening and answers {cmd:'sample'} with counters.
// Without a parent it runs for BENCH_SERVER_SECONDS (default 60) and exits.

const fs = require('fs');
const path = require('path');
const http = require('http');

const [impl, mode, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!['net', 'rust', 'exp', 'exp2'].includes(impl) || !Number.isInteger(port)) {
  console.error('usage: node bench/server.js <net|rust> <serve|stamp|echo|hold|http> <port>');
  process.exit(2);
}

// RUST_NET_DIR points 'rust' at another rust-net checkout; 'exp' is a third
// implementation from RUST_NET_EXP_DIR (an experiment in a scratch copy).
const rustNetDir = process.env.RUST_NET_DIR || path.join(__dirname, '..');
const lib = impl === 'rust' ? require(rustNetDir) :
  impl === 'exp' ? require(process.env.RUST_NET_EXP_DIR) :
  impl === 'exp2' ? require(process.env.RUST_NET_EXP2_DIR) : require('net');

let connections = 0;
const noop = () => {};
const ONE = Buffer.from('k');

function onServe(socket) {
  socket.on('error', noop);
  socket.on('data', (d) => socket.write(d));
}

function onStamp(socket) {
  const stamp = Buffer.allocUnsafe(8);
  stamp.writeBigUInt64LE(process.hrtime.bigint());
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

let server;
if (mode === 'http') {
  const httpServer = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end('hello world\n');
  });
  if (impl !== 'net') {
    // http.Server disables Nagle on each connection by default (noDelay);
    // the rust-net server that feeds it is given the same option.
    server = lib.createServer({ noDelay: httpServer.noDelay !== false });
    server.on('connection', (s) => httpServer.emit('connection', s));
  } else {
    server = httpServer;
  }
} else {
  const handler = { serve: onServe, stamp: onStamp, echo: onEcho, hold: onHold }[mode];
  if (!handler) {
    console.error(`unknown mode ${mode}`);
    process.exit(2);
  }
  server = lib.createServer(handler);
}
server.on('connection', () => { connections++; });
server.on('error', (err) => {
  console.error(`bench server (${impl} ${mode}): ${err.message}`);
  process.exit(1);
});

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

// Resident memory from /proc/self/status: all of it (VmRSS), and the
// anonymous part (RssAnon: heaps and stacks, without the shared code pages
// of node and of the addon).
function rssBytes(field = 'VmRSS') {
  const status = fs.readFileSync('/proc/self/status', 'latin1');
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

function sample() {
  const cpu = process.cpuUsage();
  return {
    connections,
    mainTid: process.pid,
    threads: threadTimes(),
    cpuUs: cpu.user + cpu.system,
    rss: rssBytes(),
    rssAnon: rssBytes('RssAnon'),
    heapUsed: process.memoryUsage().heapUsed,
    hr: Number(process.hrtime.bigint()),
  };
}

server.listen({ port, host: '127.0.0.1', backlog: 511 }, () => {
  if (process.send) {
    process.send({ ready: true, sample: sample() });
  }
});

if (process.send) {
  process.on('message', (msg) => {
    if (msg && msg.cmd === 'sample') {
      if (msg.gc && global.gc) global.gc();
      process.send({ reply: msg.id, sample: sample() });
    } else if (msg && msg.cmd === 'exit') {
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
} else {
  setTimeout(() => process.exit(0), Number(process.env.BENCH_SERVER_SECONDS || 60) * 1000).unref();
}
