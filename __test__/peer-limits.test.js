'use strict';

// maxConnectionsPerAddress and acceptRatePerAddress: a client over its limit
// is closed in Rust before JavaScript sees it, counted, and reported as
// 'connectionRejected' (ERR_PEER_LIMIT / ERR_PEER_RATE). The client is the
// PROXY header's source when there is one; IPv6 is grouped by /64.
// Loopback addresses 127.0.0.2, .3, ... stand for distinct clients.

const assert = require('assert');
const net = require('net');
const { test } = require('node:test');
const rustNet = require('..');
const { assertOptionErrors } = require('./helpers/options');
const { v1, v2 } = require('./helpers/proxy');

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

function close(server) {
  return new Promise((resolve) => server.close(resolve));
}

// A server that answers 'ok' to each connection and keeps it open until the
// client ends it; it records connections and rejections.
async function start(options) {
  const seen = { connections: [], rejections: [], sockets: [] };
  const server = rustNet.createServer(options, (socket) => {
    seen.connections.push(socket.remoteAddress);
    seen.sockets.push(socket);
    socket.on('error', () => {});
    socket.write('ok');
    socket.resume();
  });
  server.on('connectionRejected', (r) => seen.rejections.push(r));
  const port = await listen(server);
  return { server, seen, port };
}

// Connects from `localAddress`, optionally sending `first` (a PROXY header);
// resolves with the client socket and whether it was served ('ok') or
// closed without a word.
function open(port, localAddress, first) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => {});
    if (first) socket.on('connect', () => socket.write(first));
    socket.once('data', () => resolve({ socket, served: true }));
    socket.once('close', () => resolve({ socket, served: false }));
  });
}

function endAndWait(socket) {
  return new Promise((resolve) => {
    socket.once('close', resolve);
    socket.destroy();
  });
}

const until = async (check, what) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), what);
};

test('an address over maxConnectionsPerAddress is closed before JavaScript; others are served', async () => {
  const { server, seen, port } = await start({ maxConnectionsPerAddress: 2 });
  const a1 = await open(port, '127.0.0.2');
  const a2 = await open(port, '127.0.0.2');
  const a3 = await open(port, '127.0.0.2');
  const b1 = await open(port, '127.0.0.3');
  assert.deepStrictEqual([a1.served, a2.served, a3.served, b1.served], [true, true, false, true]);
  assert.deepStrictEqual(seen.connections, ['127.0.0.2', '127.0.0.2', '127.0.0.3']);
  assert.strictEqual(seen.rejections.length, 1);
  assert.strictEqual(seen.rejections[0].code, 'ERR_PEER_LIMIT');
  assert.strictEqual(seen.rejections[0].remoteAddress, '127.0.0.2');
  assert.strictEqual(seen.rejections[0].remoteFamily, 'IPv4');
  assert.strictEqual(rustNet.admissionStats(server).ERR_PEER_LIMIT, 1);

  // The client closing one makes room once the server's socket has closed.
  const closed = new Promise((resolve) => seen.sockets[0].once('close', resolve));
  a1.socket.destroy();
  await closed;
  const a4 = await open(port, '127.0.0.2');
  assert.strictEqual(a4.served, true, 'a closed connection no longer counts');
  for (const c of [a2, a4, b1]) c.socket.destroy();
  await close(server);
});

test('the count goes down however the connection ends: server destroy, maxConnections drop', async () => {
  const { server, seen, port } = await start({ maxConnectionsPerAddress: 1 });
  const first = await open(port, '127.0.0.2');
  assert.strictEqual(first.served, true);
  await endAndWait(seen.sockets[0]); // the server ends it
  await until(() => first.socket.destroyed || first.socket.readableEnded, 'client saw the close');
  const second = await open(port, '127.0.0.2');
  assert.strictEqual(second.served, true);
  second.socket.destroy();
  await until(() => seen.sockets[1]?.destroyed, 'server socket closed');

  // Node drops over maxConnections (after Rust admitted it): counted closed.
  // (Another client holds the one connection Node allows.)
  const holder = await open(port, '127.0.0.3');
  assert.strictEqual(holder.served, true);
  server.maxConnections = 1;
  const drops = [];
  server.on('drop', (d) => drops.push(d));
  const dropped = await open(port, '127.0.0.2');
  assert.strictEqual(dropped.served, false);
  await until(() => drops.length === 1, 'dropped by Node');
  server.maxConnections = null;
  holder.socket.destroy();
  const third = await open(port, '127.0.0.2');
  assert.strictEqual(third.served, true, 'the dropped connection no longer counts');
  assert.strictEqual(seen.rejections.length, 0);
  third.socket.destroy();
  await close(server);
});

test('acceptRatePerAddress lets a burst in, then refuses with ERR_PEER_RATE', async () => {
  const { server, seen, port } = await start({ acceptRatePerAddress: { rate: 0.5, burst: 2 } });
  const results = [];
  for (let i = 0; i < 3; i++) results.push(await open(port, '127.0.0.2'));
  const other = await open(port, '127.0.0.3');
  assert.deepStrictEqual(results.map((r) => r.served), [true, true, false]);
  assert.strictEqual(other.served, true);
  assert.deepStrictEqual(seen.rejections.map((r) => r.code), ['ERR_PEER_RATE']);
  for (const r of [...results, other]) r.socket.destroy();
  await close(server);
});

test('behind a PROXY-protocol proxy the client is the header source, IPv6 grouped by /64', async () => {
  const { server, seen, port } = await start({
    proxyProtocol: { trusted: ['127.0.0.1'] },
    maxConnectionsPerAddress: 1,
  });
  const to = { address: '127.0.0.1', port };
  const c1 = await open(port, '127.0.0.1', v1({ address: '203.0.113.7', port: 1000 }, to));
  const c2 = await open(port, '127.0.0.1', v1({ address: '203.0.113.7', port: 1001 }, to));
  const c3 = await open(port, '127.0.0.1', v1({ address: '203.0.113.8', port: 1000 }, to));
  assert.deepStrictEqual([c1.served, c2.served, c3.served], [true, false, true]);
  const six = { address: '2001:db8::99', port };
  const d1 = await open(port, '127.0.0.1', v2({ source: { address: '2001:db8:0:1::1', port: 1 }, destination: six }));
  const d2 = await open(port, '127.0.0.1', v2({ source: { address: '2001:db8:0:1:ffff::2', port: 2 }, destination: six }));
  const d3 = await open(port, '127.0.0.1', v2({ source: { address: '2001:db8:0:2::1', port: 3 }, destination: six }));
  assert.deepStrictEqual([d1.served, d2.served, d3.served], [true, false, true]);
  assert.deepStrictEqual(seen.rejections.map((r) => [r.code, r.remoteAddress]),
                         [['ERR_PEER_LIMIT', '203.0.113.7'], ['ERR_PEER_LIMIT', '2001:db8:0:1:ffff::2']]);
  for (const c of [c1, c2, c3, d1, d2, d3]) c.socket.destroy();
  await close(server);
});

test('perAddressIPv6Prefix: 128 counts each IPv6 address apart (a listen() option too)', async () => {
  const seen = [];
  // Connections stay open: under the default /64 the second would be refused.
  const server = rustNet.createServer((s) => { s.on('error', () => {}); s.write('ok'); });
  server.on('connectionRejected', (r) => seen.push(r));
  await new Promise((resolve) => server.listen({
    port: 0, host: '127.0.0.1', proxyProtocol: { trusted: '127.0.0.1' },
    maxConnectionsPerAddress: 1, perAddressIPv6Prefix: 128,
  }, resolve));
  const { port } = server.address();
  const six = { address: '2001:db8::99', port };
  const held = [];
  for (const source of ['2001:db8::1', '2001:db8::2']) {
    held.push(await open(port, '127.0.0.1', v2({ source: { address: source, port: 1 }, destination: six })));
  }
  assert.deepStrictEqual(held.map((r) => r.served), [true, true]);
  assert.deepStrictEqual(seen, []);
  for (const r of held) r.socket.destroy();
  await close(server);
});

test('bad values throw Node-style errors from createServer() and listen()', () => {
  const cases = [
    [{ maxConnectionsPerAddress: '3' }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ maxConnectionsPerAddress: 0 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ maxConnectionsPerAddress: 1.5 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ maxConnectionsPerAddress: 2 ** 31 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ acceptRatePerAddress: 5 }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ acceptRatePerAddress: null }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ acceptRatePerAddress: { rate: '5' } }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ acceptRatePerAddress: { rate: 0 } }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ acceptRatePerAddress: { rate: NaN } }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ acceptRatePerAddress: { rate: Infinity } }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ acceptRatePerAddress: { rate: 5, burst: 0 } }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ acceptRatePerAddress: { rate: 5, burst: '1' } }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ perAddressIPv6Prefix: 0 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ perAddressIPv6Prefix: 129 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ perAddressIPv4Prefix: 33 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ maxConnectionsPerAddress: 1, shareAcrossThreads: true }, 'ERR_INCOMPATIBLE_OPTION_PAIR', TypeError],
  ];
  assertOptionErrors(cases);
  assert.throws(() => rustNet.createServer({ maxConnectionsPerAddress: 0 }),
                { message: 'The value of "options.maxConnectionsPerAddress" is out of range. It must be >= 1 && <= 2147483647. Received 0' });
});

test('without the options nothing is counted and nothing is refused', async () => {
  const { server, seen, port } = await start({});
  const held = [];
  for (let i = 0; i < 5; i++) held.push(await open(port, '127.0.0.2'));
  assert.ok(held.every((r) => r.served));
  assert.strictEqual(seen.rejections.length, 0);
  for (const r of held) r.socket.destroy();
  await close(server);
});
