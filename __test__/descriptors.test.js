'use strict';

// Descriptor accounting: whatever happens, /proc/self/fd returns to where it
// started, and every descriptor rust-net creates is close-on-exec.

const assert = require('assert');
const { inspectSocket } = require('../lib/native');
const { openFds, settleFds } = require('./helpers/fds');
const { test, closeServer, net, once, rustNet } = require('./helpers/oracle');

async function connectMany(port, count) {
  const clients = [];
  for (let i = 0; i < count; i++) {
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => {});
    clients.push(c);
  }
  await Promise.all(clients.map((c) => once(c, 'connect').catch(() => {})));
  return clients;
}

// The first server starts the shared runtime (its epoll and wake-up
// descriptors) and opens the EMFILE reserve: process-wide, once. Start them
// before any count is taken, so the counts see only per-server descriptors.
// Both placements' servers, since a test below forces the runtime one.
test.before(async () => {
  for (const acceptPlacement of ['event-loop', 'runtime']) {
    const server = rustNet.createServer({ acceptPlacement }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    await closeServer(server);
  }
});

test('servers with connections leak no descriptor once everything is closed', async () => {
  const baseline = openFds();
  for (let round = 0; round < 5; round++) {
    const sockets = [];
    const server = rustNet.createServer((s) => sockets.push(s)).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const clients = await connectMany(server.address().port, 20);
    while (sockets.length < 20) await once(server, 'connection');
    server.close();
    clients.forEach((c) => c.destroy());
    sockets.forEach((s) => s.destroy());
    await once(server, 'close');
  }
  assert.strictEqual(await settleFds(baseline), baseline);
});

test('closing with connections still queued closes every undelivered descriptor', async () => {
  const baseline = openFds();
  for (let round = 0; round < 5; round++) {
    const server = rustNet.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const clients = await connectMany(server.address().port, 30);
    // Some connections are accepted by Rust but not yet handed over here.
    server.close();
    clients.forEach((c) => c.destroy());
    if (server.listening) await once(server, 'close');
  }
  assert.strictEqual(await settleFds(baseline), baseline);
});

test('a backlog larger than one batch arrives in full batches, each connection once, nothing leaked', async () => {
  const baseline = openFds();
  const total = 400;
  const ports = new Set();
  let connections = 0;
  // The runtime placement keeps accepting while JavaScript is busy, so the
  // queue grows past what one take() hands over (128 descriptors).
  const server = rustNet.createServer({ acceptPlacement: 'runtime' }, (s) => {
    connections++;
    ports.add(s.remotePort);
    s.destroy();
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 });
  await once(server, 'listening');
  const kListener = Object.getOwnPropertySymbols(server._handle)
    .find((sym) => sym.description === 'rust-net.listener');
  const listener = server._handle[kListener];
  const counts = [];
  const take = listener.take;
  listener.take = function () {
    const count = take.call(this);
    counts.push(count);
    return count;
  };
  const clients = [];
  for (let i = 0; i < total; i++) {
    const c = net.connect(server.address().port, '127.0.0.1');
    c.on('error', () => {});
    clients.push(c);
  }
  // After the connects (each issued from a tick of its own), keep the
  // event loop busy while Rust accepts them all.
  process.nextTick(() => {
    const until = Date.now() + 500;
    while (Date.now() < until);
  });
  while (connections < total) await once(server, 'connection');
  assert.strictEqual(ports.size, total);
  assert.strictEqual(Math.max(...counts), 128, `batches: ${counts.join(' ')}`);
  server.close();
  clients.forEach((c) => c.destroy());
  await once(server, 'close');
  assert.strictEqual(await settleFds(baseline), baseline);
});

test('maxConnections drops and failed listens leak nothing', async () => {
  const baseline = openFds();
  const server = rustNet.createServer();
  server.maxConnections = 2;
  const kept = [];
  server.on('connection', (s) => kept.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  let drops = 0;
  server.on('drop', () => drops++);
  const clients = await connectMany(port, 12);
  while (drops + kept.length < 12) await new Promise((r) => setTimeout(r, 10));
  assert.strictEqual(kept.length, 2);
  for (let i = 0; i < 5; i++) {
    const other = rustNet.createServer();
    other.on('error', () => {});
    other.listen(port, '127.0.0.1');
    await once(other, 'error');
  }
  clients.forEach((c) => c.destroy());
  kept.forEach((s) => s.destroy());
  await closeServer(server);
  assert.strictEqual(await settleFds(baseline), baseline);
});

test('listening and accepted descriptors are close-on-exec and non-blocking', async () => {
  const server = rustNet.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const listening = inspectSocket(server._handle.fd);
  assert.strictEqual(listening.closeOnExec, true);
  assert.strictEqual(listening.accepting, true);
  assert.strictEqual(listening.reuseAddress, true);
  const client = net.connect(server.address().port, '127.0.0.1');
  const socket = await once(server, 'connection');
  const accepted = inspectSocket(socket._handle.fd);
  assert.strictEqual(accepted.closeOnExec, true);
  assert.strictEqual(accepted.nonBlocking, true);
  client.destroy();
  socket.destroy();
  await closeServer(server);
});

test('IPv6 listeners set IPV6_V6ONLY exactly when ipv6Only is asked for', async () => {
  for (const [options, expected] of [
    [{ port: 0, host: '::' }, false],
    [{ port: 0, host: '::', ipv6Only: true }, true],
    [{ port: 0 }, false],
  ]) {
    const seen = [];
    for (const impl of [net, rustNet]) {
      const server = impl.createServer().listen(options);
      await once(server, 'listening');
      seen.push(inspectSocket(server._handle.fd).ipv6Only);
      await closeServer(server);
    }
    assert.deepStrictEqual(seen, [expected, expected], JSON.stringify(options));
  }
});
