'use strict';

// serverStats(server): the kernel accept queue read with TCP_INFO on the
// listening socket, connections accepted, refusals by code, accept errors;
// null where rust-net does not own the socket.

const assert = require('assert');
const net = require('net');
const { test } = require('node:test');
const rustNet = require('..');

function listen(server, options) {
  return new Promise((resolve) => server.listen({ port: 0, host: '127.0.0.1', ...options },
                                                () => resolve(server.address().port)));
}

function close(server) {
  return new Promise((resolve) => server.close(resolve));
}

// Connects and resolves once the server's first byte (or the close) came.
function served(port, localAddress) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => {});
    socket.once('data', () => resolve({ socket, served: true }));
    socket.once('close', () => resolve({ socket, served: false }));
  });
}

const until = async (check, what) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), what);
};

// Blocks this thread (and so the event loop) for `ms`.
function block(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

test('counts accepted connections and reads the accept queue limit from the kernel', async () => {
  const server = rustNet.createServer((s) => { s.on('error', () => {}); s.end('x'); });
  assert.strictEqual(rustNet.serverStats(server), null, 'null before listen()');
  const port = await listen(server, { backlog: 7 });
  const before = rustNet.serverStats(server);
  assert.deepStrictEqual(before.acceptQueue, { length: 0, limit: 7, drops: 0 });
  assert.strictEqual(before.accepted, 0);
  assert.deepStrictEqual(before.rejected, {});
  const clients = [];
  for (let i = 0; i < 3; i++) clients.push(await served(port));
  const after = rustNet.serverStats(server);
  assert.strictEqual(after.accepted, 3);
  assert.strictEqual(after.acceptErrors, 0);
  assert.strictEqual(after.emfile, 0);
  assert.strictEqual(after.paused, false);
  assert.strictEqual(after.shed, 0);
  for (const c of clients) c.socket.destroy();
  await close(server);
  assert.strictEqual(rustNet.serverStats(server), null, 'null after close()');
});

test('the accept queue length counts connections the kernel holds while the event loop is busy', async () => {
  // Accepting on the event loop: while it is blocked nothing is accepted,
  // so the kernel's queue holds every completed handshake.
  const server = rustNet.createServer({ acceptPlacement: 'event-loop' }, (s) => s.destroy());
  const port = await listen(server);
  const clients = [];
  for (let i = 0; i < 4; i++) {
    const c = net.connect({ port, host: '127.0.0.1' });
    c.on('error', () => {});
    clients.push(c);
  }
  // net.connect() calls connect(2) on the next tick; the handshakes finish
  // in the kernel while this thread sleeps.
  await new Promise((resolve) => process.nextTick(resolve));
  let length = 0;
  for (let i = 0; i < 20 && length < 4; i++) {
    block(25);
    length = rustNet.serverStats(server).acceptQueue.length;
  }
  assert.strictEqual(length, 4);
  assert.strictEqual(rustNet.serverStats(server).accepted, 0);
  await until(() => rustNet.serverStats(server).accepted === 4, 'all four accepted once the loop is free');
  assert.strictEqual(rustNet.serverStats(server).acceptQueue.length, 0);
  for (const c of clients) c.destroy();
  await close(server);
});

test('refusals are counted by code', async () => {
  const server = rustNet.createServer({ maxConnectionsPerAddress: 1 }, (s) => { s.on('error', () => {}); s.write('x'); });
  const port = await listen(server);
  const first = await served(port, '127.0.0.2');
  const second = await served(port, '127.0.0.2');
  assert.deepStrictEqual([first.served, second.served], [true, false]);
  const stats = rustNet.serverStats(server);
  assert.deepStrictEqual(stats.rejected, { ERR_PEER_LIMIT: 1 });
  assert.strictEqual(stats.accepted, 2, 'a refused connection was accepted, then closed');
  first.socket.destroy();
  await close(server);
});

test('null for node:net servers, non-servers, and servers sharing a socket across threads', async () => {
  const plain = net.createServer();
  await listen(plain);
  assert.strictEqual(rustNet.serverStats(plain), null);
  await close(plain);
  assert.strictEqual(rustNet.serverStats({}), null);
  assert.strictEqual(rustNet.serverStats(undefined), null);
  const shared = rustNet.createServer({ shareAcrossThreads: true });
  await listen(shared);
  assert.strictEqual(rustNet.serverStats(shared), null);
  await close(shared);
});

test('a Unix socket server has counts but no accept queue to read', async () => {
  const path = require('path');
  const os = require('os');
  const file = path.join(os.tmpdir(), `rust-net-stats-${process.pid}.sock`);
  const server = rustNet.createServer((s) => s.end('x'));
  await new Promise((resolve) => server.listen(file, resolve));
  await new Promise((resolve) => net.connect(file).on('data', () => {}).on('close', resolve));
  const stats = rustNet.serverStats(server);
  assert.strictEqual(stats.acceptQueue, null);
  assert.strictEqual(stats.accepted, 1);
  await close(server);
});
