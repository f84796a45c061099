'use strict';

// Hand-over (docs/handover.md) beyond one TCP server: RUST_NET_HANDOVER under
// rust-net/register with no code change (http, express, net and a pipe in
// one process, each matched by its address), the option's validation, and a
// bounded run of replacements under load that must lose nothing.
// handover.test.js has the protocol's failure cases.

const { after, test } = require('node:test');
const assert = require('assert');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const rustNet = require('..');
const { app, askPid, freePort, httpPid, killAll, tempDir } = require('./helpers/handover');

after(killAll);

const host = '127.0.0.1';

function registered(ctl, servers) {
  return app({ register: true, servers }, { env: { RUST_NET_HANDOVER: ctl } });
}

// Resolves once `proc` reported 'listening' for each of its `count` servers.
async function allListening(proc, count) {
  const seen = [];
  for (let index = 0; index < count; index++) {
    seen.push(await proc.waitFor((e) => e.event === 'listening' && e.index === index, `listening ${index}`));
  }
  return seen;
}

test('RUST_NET_HANDOVER under rust-net/register hands over http, express, net and pipe servers, each by its address', async () => {
  const dir = tempDir();
  const ctl = path.join(dir, 'ctl');
  const pipe = path.join(dir, 'app.sock');
  const [httpPort, expressPort, netPort] = [await freePort(), await freePort(), await freePort()];
  const servers = [
    { kind: 'http', port: httpPort, host },
    { kind: 'express', port: expressPort, host },
    { kind: 'net', port: netPort, host },
    { kind: 'net', path: pipe },
  ];
  const old = registered(ctl, servers);
  const before = await allListening(old, servers.length);
  assert.deepStrictEqual(before.map((e) => e.rust), [true, true, true, true]);
  assert.strictEqual((await httpPid({ port: httpPort, host })).pid, old.child.pid);
  const next = registered(ctl, servers);
  const after = await allListening(next, servers.length);
  assert.deepStrictEqual(after.map((e) => e.rust), [true, true, true, true]);
  assert.deepStrictEqual(after.map((e) => e.address), before.map((e) => e.address));
  for (let index = 0; index < servers.length; index++) {
    const handover = await old.waitFor((e) => e.event === 'handover' && e.index === index, `handover ${index}`);
    assert.strictEqual(handover.from, next.child.pid);
  }
  assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  // The pipe's file stayed for the successor: the old server did not remove it.
  assert.ok(fs.statSync(pipe).isSocket());
  assert.strictEqual((await httpPid({ port: httpPort, host })).pid, next.child.pid);
  assert.strictEqual((await httpPid({ port: expressPort, host })).pid, next.child.pid);
  assert.strictEqual(await askPid({ port: netPort, host }), next.child.pid);
  assert.strictEqual(await askPid({ path: pipe }), next.child.pid);
  next.kill('SIGTERM');
  await next.exit();
  assert.ok(!fs.existsSync(pipe), 'the successor removes the pipe file it adopted when it closes');
});

test('a server listening with handover: false stays out of RUST_NET_HANDOVER', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const spec = { register: true, servers: [{ kind: 'net', port, host, listen: { handover: false } }] };
  const old = app(spec, { env: { RUST_NET_HANDOVER: ctl } });
  assert.strictEqual((await old.event('listening')).rust, true);
  assert.ok(!fs.existsSync(ctl), 'no control socket');
  // A second process binds as usual, and so fails as node:net would.
  const next = app(spec, { env: { RUST_NET_HANDOVER: ctl } });
  assert.strictEqual((await next.event('error')).code, 'EADDRINUSE');
  await next.exit();
  old.kill('SIGTERM');
  await old.exit();
});

test('the handover option is validated as Node validates options', () => {
  const ctl = path.join(tempDir(), 'ctl');
  for (const [value, code] of [[1, 'ERR_INVALID_ARG_TYPE'], [true, 'ERR_INVALID_ARG_TYPE'],
    [null, 'ERR_INVALID_ARG_TYPE'], ['', 'ERR_INVALID_ARG_VALUE'], ['a\0b', 'ERR_INVALID_ARG_VALUE']]) {
    assert.throws(() => rustNet.createServer({ handover: value }), { code, message: /options\.handover/ });
    assert.throws(() => rustNet.createServer().listen({ port: 0, host, handover: value }),
                  { code, message: /options\.handover/ });
  }
  // Valid values: nothing listens there yet, so the server binds as usual.
  const server = rustNet.createServer({ handover: ctl });
  assert.strictEqual(server.listen({ port: 0, handover: false }), server);
  server.close();
});

test('a reusePort server hands its socket over with its queue: no queued connection is reset', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const spec = { handover: ctl, servers: [{ kind: 'net', port, host, listen: { reusePort: true } }] };
  const old = app(spec);
  const { pid: oldPid } = await old.event('listening');
  // Connections wait in the old socket's queue while the hand-over happens;
  // closing a reusePort listener would reset them (tcp_migrate_req unset).
  old.child.kill('SIGSTOP');
  const queued = Array.from({ length: 20 }, () => askPid({ port, host }));
  const next = app(spec);
  await new Promise((resolve) => setTimeout(resolve, 200));
  old.child.kill('SIGCONT');
  const { pid: nextPid } = await next.event('listening');
  await old.event('handover');
  const pids = await Promise.all(queued);
  assert.ok(pids.every((pid) => pid === oldPid || pid === nextPid), JSON.stringify(pids));
  assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  assert.strictEqual(await askPid({ port, host }), nextPid);
  next.kill('SIGTERM');
  await next.exit();
});

// Sends a PROXY v1 header naming `source` and reads the answer: [pid, the
// address the server saw].
function askThroughProxy(port, source) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => socket.write(`PROXY TCP4 ${source} ${host} 40000 ${port}\r\n`));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('error', reject);
    socket.on('end', () => {
      const [pid, address] = data.trim().split(' ');
      resolve([Number(pid), address]);
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
  });
}

test('a proxyProtocol server hands over: the successor reads the headers, the old one closes after the header timeout', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  // The slow header must outlive a successor's start (a process on a busy
  // CI machine can take a second): a short timeout would reset it first.
  const options = { proxyProtocol: { trusted: [host], timeout: 2000 } };
  const spec = { handover: ctl, servers: [{ kind: 'net', port, host, options }] };
  const old = app(spec);
  const { pid: oldPid } = await old.event('listening');
  assert.deepStrictEqual(await askThroughProxy(port, '192.0.2.7'), [oldPid, '192.0.2.7']);
  // A connection whose header is still coming when the hand-over happens
  // is served by the old process, which accepted it.
  const slow = net.connect(port, host);
  await new Promise((resolve) => slow.once('connect', resolve));
  slow.write('PROXY TCP4 192.0.2.');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const next = app(spec);
  const { pid: nextPid } = await next.event('listening');
  const handover = await old.event('handover');
  assert.strictEqual(handover.from, nextPid);
  let answer = '';
  slow.setEncoding('utf8');
  slow.on('data', (chunk) => { answer += chunk; });
  const ended = new Promise((resolve, reject) => {
    slow.on('end', resolve);
    slow.on('error', reject);
  });
  slow.write(`8 ${host} 40000 ${port}\r\n`);
  await ended;
  assert.strictEqual(answer, `${oldPid} 192.0.2.8\n`);
  assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  assert.deepStrictEqual(await askThroughProxy(port, '192.0.2.9'), [nextPid, '192.0.2.9']);
  next.kill('SIGTERM');
  await next.exit();
});

// Keeps `parallel` loops requesting until stop(); counts answers per pid,
// failures, and keep-alive requests sent again (see httpPid).
function load(parallel, request) {
  let stopped = false;
  const pids = new Map();
  const errors = [];
  let retried = 0;
  const loops = Array.from({ length: parallel }, async () => {
    while (!stopped) {
      try {
        const answer = await request();
        const pid = typeof answer === 'number' ? answer : answer.pid;
        if (answer.retried) retried++;
        pids.set(pid, (pids.get(pid) ?? 0) + 1);
      } catch (err) {
        errors.push(err.code ?? err.message);
      }
    }
  });
  return async () => {
    stopped = true;
    await Promise.all(loops);
    return { pids, errors, retried };
  };
}

test('three replacements under load: no connection refused or reset, no request failed or sent again', async (t) => {
  const ctl = path.join(tempDir(), 'ctl');
  const [netPort, httpPort] = [await freePort(), await freePort()];
  const servers = [{ kind: 'net', port: netPort, host }, { kind: 'http', port: httpPort, host }];
  let current = registered(ctl, servers);
  await allListening(current, 2);
  const generations = [current.child.pid];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const stopShort = load(16, () => askPid({ port: netPort, host }));
  const stopKeepAlive = load(4, () => httpPid({ port: httpPort, host }, agent));
  const exits = [];
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const next = registered(ctl, servers);
    await allListening(next, 2);
    await current.waitFor((e) => e.event === 'handover' && e.index === 1, 'handover of the http server');
    exits.push(current.exit());
    current = next;
    generations.push(current.child.pid);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  const short = await stopShort();
  const keepAlive = await stopKeepAlive();
  agent.destroy();
  // Every replaced process exited by itself once its connections ended.
  for (const exit of await Promise.all(exits)) assert.deepStrictEqual(exit, { code: 0, signal: null });
  current.kill('SIGTERM');
  await current.exit();
  t.diagnostic(`short: ${JSON.stringify([...short.pids])}; keep-alive: ${JSON.stringify([...keepAlive.pids])}, ` +
               `${keepAlive.retried} sent again on a connection closed as idle`);
  assert.deepStrictEqual(short.errors, []);
  assert.deepStrictEqual(keepAlive.errors, []);
  // Not even a request on a kept-alive connection had to be sent again:
  // the old server cuts no connection a request may be on its way on.
  assert.strictEqual(keepAlive.retried, 0);
  // Every process served short connections, and the last one keep-alive requests.
  for (const pid of generations) assert.ok(short.pids.get(pid) > 0, `process ${pid} served`);
  assert.ok(keepAlive.pids.get(current.child.pid) > 0);
});
