'use strict';

// close(): stops accepting at once (the port is free when it returns),
// 'close' only after the last connection ends, ERR_SERVER_NOT_RUNNING when
// not listening, address() null afterwards — each side by side with node:net.

const assert = require('assert');
const {
  test,
  closeServer, describeAddress, describeError, net, once, recordEvents, rustNet, sameOnBoth, ticks,
} = require('./helpers/oracle');

test('the port can be bound again as soon as close() returns', async () => {
  await sameOnBoth(async (impl) => {
    const results = [];
    for (const rebinder of [net, rustNet]) {
      const server = impl.createServer().listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address();
      server.close();
      const again = rebinder.createServer();
      const outcome = await new Promise((resolve) => {
        again.once('error', (e) => resolve(e.code));
        again.listen(port, '127.0.0.1', () => resolve('listening'));
      });
      results.push(outcome);
      await closeServer(again);
    }
    return results;
  });
});

test('after close() no new connection is accepted', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer(() => { throw new Error('accepted after close'); });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address();
    server.close();
    const client = net.connect(port, '127.0.0.1');
    const err = await once(client, 'error');
    return err.code;
  });
});

test("close(callback) on a server that never listened: ERR_SERVER_NOT_RUNNING after 'close'", async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    const log = [];
    recordEvents(server, log);
    const returned = server.close((err) => log.push(['callback', describeError(err)]));
    log.push(['returned', returned === server]);
    await ticks();
    await ticks();
    return log;
  });
});

test('close() twice: the second callback gets ERR_SERVER_NOT_RUNNING', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer().listen(0);
    await once(server, 'listening');
    const log = [];
    recordEvents(server, log);
    server.close((err) => log.push(['first', err === undefined ? 'undefined' : describeError(err)]));
    server.close((err) => log.push(['second', describeError(err)]));
    await ticks();
    await ticks();
    return log;
  });
});

test("'close' waits for the last connection; address() is null right after close()", async () => {
  await sameOnBoth(async (impl) => {
    const log = [];
    let serverSide;
    const server = impl.createServer((socket) => {
      serverSide = socket;
      log.push('connection');
    });
    recordEvents(server, []);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect(server.address().port, '127.0.0.1');
    await once(server, 'connection');
    server.close(() => log.push('close callback'));
    log.push(['after close()', server.listening, server.address()]);
    server.on('close', () => log.push('close event'));
    await ticks();
    await ticks();
    log.push('still open');
    const connections = await new Promise((resolve) => {
      server.getConnections((err, n) => resolve([err, n]));
    });
    log.push(['connections', ...connections]);
    client.end();
    serverSide.end();
    await once(server, 'close');
    await ticks();
    return log;
  });
});

test('a server closed while clients are connecting ends cleanly', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer((socket) => socket.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address();
    const outcomes = [];
    const clients = [];
    for (let i = 0; i < 50; i++) {
      const client = net.connect(port, '127.0.0.1');
      clients.push(new Promise((resolve) => {
        client.on('error', (e) => { outcomes.push(e.code); resolve(); });
        client.on('close', resolve);
        client.resume();
      }));
    }
    setTimeout(() => server.close(), 5);
    let closes = 0;
    server.on('close', () => closes++);
    await Promise.all(clients);
    if (server.listening) await once(server, 'close');
    await ticks();
    assert.ok(outcomes.every((code) => code === 'ECONNREFUSED' || code === 'ECONNRESET'), outcomes.join());
    return { closes, listening: server.listening, address: describeAddress(server.address()) };
  });
});

test('a closed server can listen again and serves connections', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer((socket) => socket.end('hello'));
    const replies = [];
    for (let round = 0; round < 3; round++) {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const client = net.connect(server.address().port, '127.0.0.1');
      client.setEncoding('utf8');
      let data = '';
      client.on('data', (d) => { data += d; });
      await once(client, 'end');
      replies.push(data);
      await closeServer(server);
    }
    return replies;
  });
});
