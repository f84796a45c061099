'use strict';

// Accepted connections are genuine net.Sockets carrying node:net's state:
// socket.server, addresses, allowHalfOpen, pauseOnConnect, noDelay,
// keepAlive, highWaterMark, maxConnections with 'drop', getConnections(), and
// they work under http.Server.

const assert = require('assert');
const http = require('http');
const { inspectSocket } = require('../lib/native');
const {
  test,
  closeServer, describeAddress, net, once, rustNet, sameOnBoth, ticks,
} = require('./helpers/oracle');

async function connectOnce(impl, options, onServerSocket, host = '127.0.0.1') {
  const server = impl.createServer(options);
  server.listen(0, host);
  await once(server, 'listening');
  const client = net.connect(server.address().port, host);
  const [socket] = await once(server, 'connection').then((s) => [s]);
  const result = await onServerSocket(socket, client, server);
  client.destroy();
  socket.destroy();
  await closeServer(server);
  return result;
}

test('a connection is a net.Socket with server, addresses and family set', async () => {
  for (const host of ['127.0.0.1', '::1']) {
    await sameOnBoth((impl) => connectOnce(impl, {}, async (socket, client, server) => {
      if (client.connecting) await once(client, 'connect');
      return {
        isNetSocket: socket instanceof net.Socket,
        server: socket.server === server,
        _server: socket._server === server,
        remoteAddress: socket.remoteAddress,
        remoteFamily: socket.remoteFamily,
        remotePortMatchesClient: socket.remotePort === client.localPort,
        localAddress: socket.localAddress,
        localPortMatchesServer: socket.localPort === server.address().port,
        address: describeAddress(socket.address()),
        readable: socket.readable,
        writable: socket.writable,
        allowHalfOpen: socket.allowHalfOpen,
        readableFlowing: socket.readableFlowing,
        readableHighWaterMark: socket.readableHighWaterMark,
        writableHighWaterMark: socket.writableHighWaterMark,
        connecting: socket.connecting,
        pending: socket.pending,
        readyState: socket.readyState,
        bytesRead: socket.bytesRead,
      };
    }, host));
  }
});

test('data flows both ways: a 1 MiB echo round-trip', async () => {
  await sameOnBoth((impl) => connectOnce(impl, {}, async (socket, client) => {
    socket.pipe(socket);
    const payload = Buffer.alloc(1 << 20, 7);
    const chunks = [];
    client.on('data', (c) => chunks.push(c));
    client.write(payload);
    while (Buffer.concat(chunks).length < payload.length) await once(client, 'data');
    return Buffer.concat(chunks).equals(payload);
  }));
});

test('allowHalfOpen: the server side can still write after the client ends', async () => {
  for (const allowHalfOpen of [false, true]) {
    await sameOnBoth((impl) => connectOnce(impl, { allowHalfOpen }, async (socket, client) => {
      const log = [];
      socket.on('end', () => log.push(['server end', socket.writable]));
      client.setEncoding('utf8');
      let received = '';
      client.on('data', (d) => { received += d; });
      client.end();
      await once(socket, 'end');
      await ticks();
      if (socket.writable) socket.end('late reply');
      await once(client, 'close');
      log.push(['received', received]);
      return log;
    }));
  }
});

test('pauseOnConnect: no data is read until the socket is resumed', async () => {
  for (const pauseOnConnect of [false, true]) {
    await sameOnBoth((impl) => connectOnce(impl, { pauseOnConnect }, async (socket, client) => {
      const log = [['flowing', socket.readableFlowing, 'paused', socket.isPaused()]];
      socket.on('data', (d) => log.push(['data', String(d)]));
      client.write('ping');
      await new Promise((resolve) => setTimeout(resolve, 50));
      log.push(['after 50ms', socket.bytesRead]);
      socket.resume();
      if (log.length < 3) await once(socket, 'data');
      return log;
    }));
  }
});

test('noDelay and keepAlive reach the accepted socket, and setNoDelay()/setKeepAlive() still toggle', async () => {
  const opts = (socket) => {
    const o = inspectSocket(socket._handle.fd);
    return { noDelay: o.noDelay, keepAlive: o.keepAlive };
  };
  for (const options of [{}, { noDelay: true }, { keepAlive: true, keepAliveInitialDelay: 2000 },
    { noDelay: true, keepAlive: true }]) {
    await sameOnBoth((impl) => connectOnce(impl, options, async (socket) => {
      const log = [opts(socket)];
      socket.setNoDelay(false);
      log.push(opts(socket));
      socket.setNoDelay(true);
      log.push(opts(socket));
      socket.setKeepAlive(false);
      log.push(opts(socket));
      socket.setKeepAlive(true, 1000);
      log.push(opts(socket));
      return log;
    }));
  }
});

test('highWaterMark from createServer() options reaches accepted sockets', async () => {
  await sameOnBoth((impl) => connectOnce(impl, { highWaterMark: 1234 }, async (socket) => ({
    readable: socket.readableHighWaterMark,
    writable: socket.writableHighWaterMark,
  })));
});

test("maxConnections: extra connections are closed and 'drop' carries node:net's payload", async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    server.maxConnections = 1;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address();
    const first = net.connect(port, '127.0.0.1');
    const [kept] = await once(server, 'connection').then((s) => [s]);
    const second = net.connect(port, '127.0.0.1');
    const secondClosed = once(second, 'close');
    second.on('error', () => {});
    const dropArgs = await new Promise((resolve) => server.once('drop', (...args) => resolve(args)));
    await secondClosed;
    const [data] = dropArgs;
    const count = await new Promise((resolve) => server.getConnections((e, n) => resolve(n)));
    kept.destroy();
    first.destroy();
    await closeServer(server);
    return {
      argCount: dropArgs.length,
      keys: data && Object.keys(data).sort(),
      prototype: data && Object.getPrototypeOf(data),
      localAddress: data?.localAddress,
      localPortIsServer: data?.localPort === port,
      localFamily: data?.localFamily,
      remoteAddress: data?.remoteAddress,
      remotePortIsClient: data?.remotePort === second.localPort,
      remoteFamily: data?.remoteFamily,
      count,
    };
  });
});

test('getConnections() counts live connections, called back on the next tick', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address();
    const counts = [];
    const getCount = () => new Promise((resolve) => {
      let sync = true;
      server.getConnections((err, n) => resolve([err, n, sync]));
      sync = false;
    });
    counts.push(await getCount());
    const clients = [];
    const sockets = [];
    server.on('connection', (s) => sockets.push(s));
    for (let i = 0; i < 3; i++) clients.push(net.connect(port, '127.0.0.1'));
    while (sockets.length < 3) await once(server, 'connection');
    counts.push(await getCount());
    sockets[0].destroy();
    await once(sockets[0], 'close');
    counts.push(await getCount());
    clients.forEach((c) => c.destroy());
    sockets.forEach((s) => s.destroy());
    await closeServer(server);
    counts.push(await getCount());
    return counts;
  });
});

test('http.Server serves requests on sockets accepted by rust-net', async () => {
  const httpServer = http.createServer((req, res) => res.end(`hello ${req.url}`));
  const server = rustNet.createServer((socket) => httpServer.emit('connection', socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  const get = (path, agent) => new Promise((resolve, reject) => {
    http.get({ port, host: '127.0.0.1', path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve([res.statusCode, body]));
    }).on('error', reject);
  });
  const agent = new http.Agent({ keepAlive: true });
  assert.deepStrictEqual(await get('/a', agent), [200, 'hello /a']);
  assert.deepStrictEqual(await get('/b', agent), [200, 'hello /b']);
  assert.deepStrictEqual(await get('/c', false), [200, 'hello /c']);
  agent.destroy();
  httpServer.closeAllConnections();
  await closeServer(server);
});

test("a throwing 'connection' listener is reported as uncaught and later connections still arrive", async () => {
  await sameOnBoth(async (impl) => {
    const log = [];
    const server = impl.createServer((socket) => {
      log.push('connection');
      socket.destroy();
      if (log.length === 1) throw new Error('boom');
    });
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.once('uncaughtException', (err) => log.push(`uncaught ${err.message}`));
    try {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address();
      const a = net.connect(port, '127.0.0.1').on('error', () => {});
      await once(a, 'close');
      const b = net.connect(port, '127.0.0.1').on('error', () => {});
      await once(b, 'close');
      while (log.length < 3) await ticks();
    } finally {
      for (const l of listeners) process.on('uncaughtException', l);
    }
    await closeServer(server);
    return log;
  });
});

// rust-net accepts on another thread and delivers connections in batches of
// any size (one at a time when they trickle in, dozens in a burst); each must
// reach 'connection' exactly once, on the socket that carries its own bytes.
test('trickles and bursts: every connection arrives exactly once, with its own data', async () => {
  const patterns = { sequential: [1, 1, 1, 1, 1, 1, 1, 1], small: [3, 4, 5, 3], burst: [200] };
  await sameOnBoth(async (impl) => {
    const seen = [];
    const server = impl.createServer((socket) => {
      socket.setEncoding('utf8');
      socket.once('data', (id) => { seen.push(Number(id)); socket.end(`ok ${id}`); });
    });
    server.listen({ port: 0, host: '127.0.0.1', backlog: 511 });
    await once(server, 'listening');
    const observed = {};
    let next = 0;
    for (const [name, groups] of Object.entries(patterns)) {
      let replies = 0;
      for (const size of groups) {
        const ids = Array.from({ length: size }, () => next++);
        const answers = await Promise.all(ids.map((id) => new Promise((resolve, reject) => {
          const client = net.connect(server.address().port, '127.0.0.1', () => client.write(String(id)));
          let reply = '';
          client.setEncoding('utf8');
          client.on('data', (d) => { reply += d; });
          client.on('error', reject);
          client.on('close', () => resolve(reply === `ok ${id}`));
        })));
        replies += answers.filter(Boolean).length;
      }
      observed[name] = replies;
    }
    await closeServer(server);
    const unique = new Set(seen);
    return { observed, connections: seen.length, unique: unique.size, all: next === unique.size };
  });
});
