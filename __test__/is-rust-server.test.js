'use strict';

// isRustServer(server): the public way to tell whether a server's listening
// socket is rust-net's. Under rust-net/register it is checked for every kind
// of server in __test__/register.test.js; here, its life cycle.

const { test } = require('node:test');
const assert = require('assert');
const { once } = require('events');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const rustNet = require('..');

const { isRustServer } = rustNet;

// The listening socket is open twice in the process when rust-net owns it
// (its own descriptor and the duplicate behind server._handle).
function socketCopies(server) {
  const target = fs.readlinkSync(`/proc/self/fd/${server._handle.fd}`);
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === target;
    } catch {
      return false;
    }
  }).length;
}

test('the native listener is loaded in this test run', () => {
  assert.strictEqual(rustNet.native, true);
});

test('a rust-net TCP server: false before listen(), true while listening, false after close()', async () => {
  const server = rustNet.createServer();
  assert.strictEqual(isRustServer(server), false);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  assert.strictEqual(isRustServer(server), true);
  assert.strictEqual(socketCopies(server), 2);
  server.close();
  assert.strictEqual(isRustServer(server), false);
  await once(server, 'close');
});

test('a rust-net pipe server listens in Rust too', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-is-'));
  const server = new rustNet.Server();
  server.listen(path.join(dir, 's.sock'));
  await once(server, 'listening');
  assert.strictEqual(isRustServer(server), true);
  server.close();
  await once(server, 'close');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('node:net\'s own server is not a rust-net server', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  assert.strictEqual(isRustServer(server), false);
  assert.strictEqual(socketCopies(server), 1);
  server.close();
  await once(server, 'close');
});

test('a rust-net server whose listen() failed is not listening in Rust', async () => {
  const first = rustNet.createServer().listen(0, '127.0.0.1');
  await once(first, 'listening');
  const second = rustNet.createServer();
  second.listen(first.address().port, '127.0.0.1');
  const [err] = await once(second, 'error');
  assert.strictEqual(err.code, 'EADDRINUSE');
  assert.strictEqual(isRustServer(second), false);
  assert.strictEqual(isRustServer(first), true);
  first.close();
});

test('anything that is not a server is not a rust-net server', () => {
  for (const value of [undefined, null, 0, 'server', {}, { _handle: {} }, net.createServer(), new net.Socket()]) {
    assert.strictEqual(isRustServer(value), false, String(value));
  }
});
