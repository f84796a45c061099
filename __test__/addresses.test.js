'use strict';

// Several addresses, one server (docs/addresses.md): listen({ port,
// addresses }) serves every address as one server — one 'connection'
// stream, one count of connections, one close() — and a failure on any
// address fails the listen() as a whole, leaving nothing bound or open.

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { getsockoptForTests } = require('../lib/native');
const { moreHandlesOf } = require('../lib/handle');
const { openFds, settleFds } = require('./helpers/fds');
const { test, closeServer, net, once, rustNet } = require('./helpers/oracle');

const IPPROTO_TCP = 6;
const TCP_USER_TIMEOUT = 18;

async function connected(port, host) {
  const client = net.connect(port, host);
  client.on('error', () => {});
  await once(client, 'connect');
  return client;
}

// Resolves with the error of a connection attempt (ECONNREFUSED once
// nothing listens there).
function refusal(port, host) {
  return new Promise((resolve) => {
    const client = net.connect(port, host);
    client.on('connect', () => { client.destroy(); resolve(null); });
    client.on('error', resolve);
  });
}

test('one server serves every address: one connection stream, one count, one close()', async () => {
  // The process's first server starts what lives on after it (the tokio
  // runtime, libuv's own descriptors): counted before the baseline.
  const warm = rustNet.createServer().listen(0, '127.0.0.1');
  await once(warm, 'listening');
  await closeServer(warm);
  const baseline = openFds();
  const server = rustNet.createServer();
  const events = [];
  server.on('listening', () => events.push('listening'));
  server.on('close', () => events.push('close'));
  server.listen({ port: 0, addresses: ['127.0.0.1', '::1'] });
  await once(server, 'listening');
  const { port } = server.address();
  assert.deepStrictEqual(server.address(), { address: '127.0.0.1', family: 'IPv4', port });
  assert.deepStrictEqual(server.addresses(), [
    { address: '127.0.0.1', family: 'IPv4', port },
    { address: '::1', family: 'IPv6', port },
  ]);
  assert.strictEqual(rustNet.isRustServer(server), true);

  const sockets = [];
  server.on('connection', (socket) => sockets.push(socket));
  const clients = [await connected(port, '127.0.0.1'), await connected(port, '::1'), await connected(port, '::1')];
  while (sockets.length < 3) await once(server, 'connection');
  assert.deepStrictEqual(sockets.map((s) => s.localAddress), ['127.0.0.1', '::1', '::1']);
  assert.ok(sockets.every((s) => s.server === server));
  const count = await new Promise((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
  assert.strictEqual(count, 3);

  for (const client of clients) client.destroy();
  await closeServer(server);
  assert.deepStrictEqual(events, ['listening', 'close']);
  assert.deepStrictEqual(server.addresses(), []);
  assert.strictEqual((await refusal(port, '127.0.0.1'))?.code, 'ECONNREFUSED');
  assert.strictEqual((await refusal(port, '::1'))?.code, 'ECONNREFUSED');
  assert.strictEqual(await settleFds(baseline), baseline);
});

test('a listen() with one address is unchanged: addresses() is [address()]', async () => {
  const server = rustNet.createServer();
  assert.deepStrictEqual(server.addresses(), []);
  server.listen({ port: 0, addresses: ['127.0.0.1'] });
  await once(server, 'listening');
  assert.deepStrictEqual(server.addresses(), [server.address()]);
  await closeServer(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  assert.deepStrictEqual(server.addresses(), [server.address()]);
  await closeServer(server);
});

test('maxConnections counts the connections of every address', async () => {
  const server = rustNet.createServer();
  server.maxConnections = 1;
  server.listen({ port: 0, addresses: ['127.0.0.1', '::1'] });
  await once(server, 'listening');
  const { port } = server.address();
  const first = once(server, 'connection');
  const a = await connected(port, '::1');
  await first;
  const dropped = once(server, 'drop');
  const b = await connected(port, '127.0.0.1');
  const data = await dropped;
  assert.strictEqual(data.localAddress, '127.0.0.1');
  a.destroy();
  b.destroy();
  await closeServer(server);
});

test('an address that cannot be bound fails the whole listen(), as Node fails one', async () => {
  const taken = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '::1', () => resolve(s));
  });
  const { port } = taken.address();
  const baseline = openFds();
  const server = rustNet.createServer();
  let listened = false;
  server.listen({ port, addresses: ['127.0.0.1', '::1'] }, () => { listened = true; });
  const err = await once(server, 'error');
  await new Promise((resolve) => setImmediate(resolve));
  assert.strictEqual(listened, false);
  assert.strictEqual(server.listening, false);
  assert.strictEqual(server.address(), null);
  assert.strictEqual(err.code, 'EADDRINUSE');
  assert.strictEqual(err.syscall, 'listen');
  assert.strictEqual(err.address, '::1');
  assert.strictEqual(err.port, port);
  assert.strictEqual(err.message, `listen EADDRINUSE: address already in use ::1:${port}`);
  assert.strictEqual(await settleFds(baseline), baseline);
  // The first address was let go: it can be listened on again.
  const again = net.createServer().listen(port, '127.0.0.1');
  await once(again, 'listening');
  await closeServer(again);
  await closeServer(taken);
});

test('socket options are set on every address and each connection inherits them', async () => {
  const server = rustNet.createServer({ userTimeout: 4321 });
  server.listen({ port: 0, addresses: ['127.0.0.1', '::1'] });
  await once(server, 'listening');
  const [more] = moreHandlesOf(server._handle);
  assert.strictEqual(getsockoptForTests(more.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 4).readInt32LE(0), 4321);
  const accepted = once(server, 'connection');
  const client = await connected(server.address().port, '::1');
  const socket = await accepted;
  assert.strictEqual(getsockoptForTests(socket._handle.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 4).readInt32LE(0), 4321);
  client.destroy();
  socket.destroy();
  await closeServer(server);
});

test('bad addresses throw as Node throws for its listen() options', () => {
  const server = rustNet.createServer();
  const cases = [
    [{ port: 0, addresses: '127.0.0.1' }, 'ERR_INVALID_ARG_TYPE', /"options\.addresses" property must be an instance of Array/],
    [{ port: 0, addresses: [] }, 'ERR_INVALID_ARG_VALUE', /must not be empty/],
    [{ port: 0, addresses: [1] }, 'ERR_INVALID_ARG_TYPE', /"options\.addresses\[0\]" property must be of type string/],
    [{ port: 0, addresses: ['localhost'] }, 'ERR_INVALID_ARG_VALUE', /'options\.addresses\[0\]' must be an IP address/],
    [{ port: 0, addresses: ['::1', '::1'] }, 'ERR_INVALID_ARG_VALUE', /'options\.addresses\[1\]' is listed twice/],
    [{ port: 0, host: '::1', addresses: ['::1'] }, 'ERR_INVALID_ARG_VALUE', /cannot be combined with 'host'/],
    [{ port: 0, addresses: ['::1'], shareAcrossThreads: true }, 'ERR_INVALID_ARG_VALUE',
      /cannot be combined with 'shareAcrossThreads'/],
  ];
  for (const [options, code, message] of cases) {
    assert.throws(() => server.listen(options), { code, message }, JSON.stringify(options));
    assert.strictEqual(server.listening, false);
  }
  assert.throws(() => require('../lib/fallback').createServer().listen({ port: 0, addresses: ['::1'] }),
                { code: 'ERR_RUST_NET_NATIVE_MISSING' });
});

test('a server on several addresses takes part in hand-over (createServer() or listen() option): it owns the control socket until it closes', async () => {
  const control = path.join(os.tmpdir(), `rust-net-addresses-handover-${process.pid}.sock`);
  for (const [server, own] of [[rustNet.createServer({ handover: control }), {}],
    [rustNet.createServer(), { handover: control }]]) {
    server.listen({ port: 0, addresses: ['127.0.0.1', '::1'], ...own });
    await once(server, 'listening');
    assert.strictEqual(server.addresses().length, 2);
    assert.ok(fs.statSync(control).isSocket(), 'a control socket for a successor');
    await closeServer(server);
    assert.strictEqual(fs.existsSync(control), false, 'removed once the server closed');
  }
});
