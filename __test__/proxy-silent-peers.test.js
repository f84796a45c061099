'use strict';

// 10,000 trusted PROXY-protocol peers that connect and send nothing (a
// slowloris on the header) must not cost more than a bounded amount of
// memory each, must not keep a genuine client from being served, must not
// bypass maxConnectionsPerAddress, and must each be closed by the server when
// proxyProtocol.timeout runs out, leaving no descriptor behind.
//
// The server and the silent peers run in two child processes, each with its
// soft RLIMIT_NOFILE raised (as far as the hard limit allows) so that each
// holds ~10,000 descriptors; where the hard limit is lower the count scales
// down to fit, and says so. The whole test stops by itself within ~20 s.

const assert = require('assert');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const { test } = require('node:test');
const { v1 } = require('./helpers/proxy');

const WANTED = 10000;
// proxyProtocol.timeout: longer than opening them all takes (0.6-1.6 s here).
const TIMEOUT = 6000;
// Bytes of server RSS per pending connection: the header buffer
// (maxHeaderLength, 4096 by default) and its task's bookkeeping. Measured
// 5.3 KiB on Linux x64, Node 20 (docs/overload.md).
const RSS_BOUND = 4096 + 4096;

function hardNofile() {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const hard = line.trim().split(/\s+/)[4];
  return hard === 'unlimited' ? Infinity : Number(hard);
}

// Runs a fixture with the soft descriptor limit raised to `nofile`; resolves
// messages in order through `next()`.
function child(file, args, nofile) {
  const proc = spawn('sh', ['-c', `ulimit -Sn ${nofile} 2>/dev/null; exec "$0" "$@"`, process.execPath,
    path.join(__dirname, 'fixtures', file), JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const queue = [];
  const waiting = [];
  let exited = null;
  proc.on('message', (m) => (waiting.length ? waiting.shift().resolve(m) : queue.push(m)));
  proc.on('exit', (code, signal) => {
    exited = new Error(`${file} exited (${signal || code})`);
    for (const w of waiting.splice(0)) w.reject(exited);
  });
  const next = (what, ms) => new Promise((resolve, reject) => {
    if (queue.length) return resolve(queue.shift());
    if (exited) return reject(exited);
    const timer = setTimeout(() => reject(new Error(`${file}: no ${what} within ${ms} ms`)), ms);
    const done = (f) => (v) => { clearTimeout(timer); f(v); };
    waiting.push({ resolve: done(resolve), reject: done(reject) });
  });
  return { proc, next, ask: (m, what, ms) => { proc.send(m); return next(what, ms); } };
}

// One genuine client: from 127.0.0.2 with a well-formed header; resolves
// with the server's greeting (null if closed unserved), how long it took, and
// the socket, left open (so it counts against maxConnectionsPerAddress).
function genuine(port, source) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    const done = (reply) => resolve({ reply, socket, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    socket.on('connect', () => socket.write(v1({ address: source, port: 4000 }, { address: '127.0.0.1', port })));
    socket.once('data', (d) => done(String(d)));
    socket.on('error', () => {});
    socket.once('close', () => done(null));
  });
}

test('10,000 silent trusted PROXY peers: bounded memory, others served, all closed at the timeout, no leak',
  { timeout: 25000 }, async (t) => {
    const count = Math.min(WANTED, hardNofile() - 400);
    if (count < 1000) return t.skip(`hard RLIMIT_NOFILE ${hardNofile()}: too low for this test`);
    if (count < WANTED) console.log(`# hard RLIMIT_NOFILE too low for ${WANTED}: ${count} silent peers`);
    const nofile = count + 400;
    const server = child('silent-peers-server.js', { timeout: TIMEOUT, maxConnectionsPerAddress: 1 }, nofile);
    let clients;
    try {
      const { port } = await server.next('port', 5000);
      // Warm up the paths a pending connection uses before the baseline.
      const warm = await genuine(port, '198.51.100.1');
      assert.strictEqual(warm.reply, 'hello 198.51.100.1');
      warm.socket.destroy();
      const before = await server.ask('report', 'report', 2000);

      clients = child('silent-peers-clients.js', { port, count }, nofile);
      const { openedMs } = await clients.next('all connected', TIMEOUT - 1000);
      const pending = await server.ask('report', 'report', 2000);
      // All accepted and pending in Rust: none timed out yet, none in JavaScript.
      assert.strictEqual(pending.stats.accepted - before.stats.accepted, count, 'all accepted');
      assert.strictEqual(pending.admission.ERR_PROXY_HEADER_TIMEOUT ?? 0, 0, 'none timed out yet');
      assert.strictEqual(pending.connections, before.connections);
      // (Within a few: the warm-up connection's descriptor, or the spare one
      // kept for EMFILE, may be counted in one report and not the other.)
      assert.ok(pending.fds - before.fds >= count - 8, `server holds their descriptors (${pending.fds - before.fds})`);

      // (a) a genuine client is served promptly, (b) the limits still hold.
      const served = await genuine(port, '203.0.113.9');
      assert.strictEqual(served.reply, 'hello 203.0.113.9');
      assert.ok(served.ms < 1000, `genuine client served in ${served.ms.toFixed(1)} ms`);
      const second = await genuine(port, '203.0.113.9');
      assert.strictEqual(second.reply, null, 'a second connection of that client is over maxConnectionsPerAddress');
      served.socket.destroy();

      // (b) memory per pending connection.
      const perConn = (pending.rss - before.rss) / count;
      console.log(`# ${count} silent peers opened in ${openedMs} ms; server RSS ${(before.rss / 2 ** 20).toFixed(1)} -> ` +
                  `${(pending.rss / 2 ** 20).toFixed(1)} MiB: ${(perConn / 1024).toFixed(2)} KiB per pending connection`);
      assert.ok(perConn < RSS_BOUND, `${perConn} bytes per pending connection`);

      // (c) every silent peer is closed by the server at the timeout.
      const done = await clients.next('all closed', TIMEOUT + 3000);
      console.log(`# closed by the server after ${done.lifetimes[0]}-${done.lifetimes[1]} ms (timeout ${TIMEOUT})`);
      assert.strictEqual(done.failed, 0);
      assert.strictEqual(done.closed, count);
      assert.strictEqual(done.byServer, count, 'each closed by the server (end or ECONNRESET)');
      // (measured from the client's 'connect' event, which a busy client loop may see late)
      assert.ok(done.lifetimes[0] >= TIMEOUT * 0.75, `none closed before the timeout (${done.lifetimes[0]} ms)`);
      const after = await server.ask('report', 'report', 2000);
      assert.strictEqual(after.admission.ERR_PROXY_HEADER_TIMEOUT, count);
      assert.strictEqual(after.admission.ERR_PEER_LIMIT, 1);

      // (d) no descriptor leaks in the server.
      const { settled, baselineFds } = await server.ask('settle', 'settle', 5000);
      assert.strictEqual(settled, baselineFds, 'server descriptors back to their baseline');
    } finally {
      clients?.proc.kill();
      server.proc.kill();
    }
  });
