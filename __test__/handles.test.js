'use strict';

// Inherited and handed-over listening sockets: listen({ fd }), listen(handle),
// listen({ handle }), listen({ _handle }), a systemd-style descriptor passed to
// a child, and a server sent to another process over IPC.

const assert = require('assert');
const dgram = require('dgram');
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const {
  test,
  captureThrow, closeServer, describeAddress, net, once, recordEvents, rustNet, sameOnBoth, ticks,
} = require('./helpers/oracle');
const { openFds, settleFds } = require('./helpers/fds');
const { socketPath } = require('./helpers/paths');

const root = path.join(__dirname, '..');

async function fetchReply(port, host = '127.0.0.1') {
  const client = typeof port === 'string' ? net.connect(port) : net.connect(port, host);
  let data = '';
  client.setEncoding('utf8').on('data', (d) => { data += d; });
  await once(client, 'close');
  return data;
}

test('systemd style: a child serves on an inherited listening descriptor with listen({ fd: 3 })', async () => {
  await sameOnBoth(async (impl, which) => {
    const parent = net.createServer().listen(0, '127.0.0.1');
    await once(parent, 'listening');
    const { port } = parent.address();
    const child = spawn(process.execPath, ['-e', `
      const impl = require(${JSON.stringify(which === 'node:net' ? 'net' : root)});
      const server = impl.createServer((c) => c.end('served by child'));
      server.listen({ fd: 3 }, () => console.log(JSON.stringify(server.address())));
      process.stdin.on('end', () => server.close()).resume();
    `], { stdio: ['pipe', 'pipe', 'inherit', parent._handle.fd] });
    const line = await once(child.stdout.setEncoding('utf8'), 'data');
    parent.close();
    const reply = await fetchReply(port);
    child.stdin.end();
    const code = await once(child, 'exit');
    const childAddress = JSON.parse(line);
    return { reply, code, samePort: childAddress.port === port, family: childAddress.family };
  });
});

test('listen({ fd }) on a descriptor that is no listening socket: node:net\'s error', async () => {
  const file = fs.openSync(__filename, 'r');
  const udp = dgram.createSocket('udp4');
  await new Promise((resolve) => udp.bind(0, '127.0.0.1', resolve));
  try {
    // dgram's handle lives under its 'state symbol'; the deprecated
    // `_handle` getter (DEP0112) that reached it is gone in Node 26.
    const state = Object.getOwnPropertySymbols(udp).find((s) => s.description === 'state symbol');
    const udpFd = udp[state].handle.fd;
    assert.ok(Number.isInteger(udpFd) && udpFd >= 0, String(udpFd));
    for (const fd of [987, file, udpFd, 1.5, 2 ** 31]) {
      await sameOnBoth(async (impl) => {
        const server = impl.createServer();
        const log = [];
        recordEvents(server, log);
        server.on('error', () => {});
        const outcome = captureThrow(() => server.listen({ fd }));
        await ticks();
        await ticks();
        return { outcome, log, listening: server.listening };
      });
    }
    // Still open: a failed listen must not close what it did not take.
    assert.ok(fs.fstatSync(file).isFile());
  } finally {
    fs.closeSync(file);
    udp.close();
  }
});

test("listen({ fd: '3' }) and other non-numbers throw node:net's error", async () => {
  for (const fd of ['3', null, true]) {
    await sameOnBoth(async (impl) => ({
      outcome: captureThrow(() => impl.createServer().listen({ fd })),
    }));
  }
});

const handleForms = [
  ['listen(handle)', (s, h) => s.listen(h)],
  ['listen(handle, backlog, callback)', (s, h, cb) => s.listen(h, 10, cb)],
  ['listen({ handle })', (s, h) => s.listen({ handle: h })],
  ['listen({ _handle })', (s, h) => s.listen({ _handle: h })],
];

for (const [name, start] of handleForms) {
  test(`${name} with a bound TCP handle: serves on it, and close() closes it`, async () => {
    await sameOnBoth(async (impl) => {
      const handle = net._createServerHandle('127.0.0.1', 0, 4);
      const server = impl.createServer((c) => c.end('via handle'));
      const log = [];
      recordEvents(server, log);
      let calls = 0;
      start(server, handle, () => calls++);
      log.push(['returned', server.listening, describeAddress(server.address())]);
      await once(server, 'listening');
      const reply = await fetchReply(server.address().port);
      await closeServer(server);
      return { log, calls, reply, fdAfterClose: handle.fd };
    });
  });
}

test('listen(otherServer) shares a listening server handle, as node:net does', async () => {
  await sameOnBoth(async (impl) => {
    const first = impl.createServer((c) => c.end('first'));
    first.listen(0, '127.0.0.1');
    await once(first, 'listening');
    const second = impl.createServer((c) => c.end('second'));
    second.listen(first);
    await once(second, 'listening');
    const address = describeAddress(second.address());
    const reply = await fetchReply(first.address().port);
    second.close();
    first.close();
    await ticks();
    return { address, reply, listening: [first.listening, second.listening] };
  });
});

test('a TCP handle that is already listening elsewhere is shared the same way', async () => {
  await sameOnBoth(async (impl) => {
    const nodeServer = net.createServer((c) => c.end('node'));
    nodeServer.listen(0, '127.0.0.1');
    await once(nodeServer, 'listening');
    const server = impl.createServer((c) => c.end('taken over'));
    server.listen(nodeServer._handle);
    await once(server, 'listening');
    const reply = await fetchReply(nodeServer.address().port);
    server.close();
    nodeServer.close();
    return reply;
  });
});

test('a pipe server handle passed to listen() is used as node:net uses it', async () => {
  await sameOnBoth(async (impl) => {
    const p = socketPath();
    const handle = net._createServerHandle(p, -1, -1);
    const server = impl.createServer((c) => c.end('pipe handle'));
    const log = [];
    recordEvents(server, log);
    server.on('error', () => {});
    server.listen(handle);
    await Promise.race([once(server, 'listening'), once(server, 'error')]);
    const reply = server.listening ? await fetchReply(p) : null;
    await closeServer(server);
    return { log, reply };
  });
});

test('a rust-net server sent to a child over IPC keeps serving in both processes', async () => {
  const server = rustNet.createServer((c) => c.end('parent'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  const child = spawn(process.execPath, ['-e', `
    process.on('message', (m, handle) => {
      handle.on('connection', (c) => c.end('child'));
      process.send('ready');
    });
  `], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
  child.send('server', server);
  await once(child, 'message');
  server.close();
  // Only the child accepts now.
  const replies = new Set();
  for (let i = 0; i < 5; i++) replies.add(await fetchReply(port));
  child.kill();
  await once(child, 'exit');
  assert.deepStrictEqual([...replies], ['child']);
});

test('handles and inherited descriptors leak nothing', async () => {
  const warm = rustNet.createServer().listen(net._createServerHandle('127.0.0.1', 0, 4));
  await once(warm, 'listening');
  await closeServer(warm);
  const baseline = openFds();
  for (let i = 0; i < 10; i++) {
    const handle = net._createServerHandle('127.0.0.1', 0, 4);
    const server = rustNet.createServer((c) => c.end('x')).listen(handle);
    await once(server, 'listening');
    await fetchReply(server.address().port);
    await closeServer(server);
  }
  assert.strictEqual(await settleFds(baseline), baseline);
});
