'use strict';

// Every TCP form of listen(), good and bad, side by side with node:net:
// return value, synchronous address(), event order around the next tick,
// the callback as a 'listening' listener, and the errors thrown for bad
// arguments.

const assert = require('assert');
const {
  test,
  captureThrow, closeServer, describeAddress, once, recordEvents, sameOnBoth, ticks,
} = require('./helpers/oracle');

const goodForms = [
  ['listen()', (s) => s.listen()],
  ['listen(callback)', (s, cb) => s.listen(cb)],
  ['listen(0)', (s) => s.listen(0)],
  ["listen('0') (numeric string)", (s) => s.listen('0')],
  ['listen(null)', (s) => s.listen(null)],
  ['listen(undefined, callback)', (s, cb) => s.listen(undefined, cb)],
  ['listen(0, callback)', (s, cb) => s.listen(0, cb)],
  ['listen(0, backlog)', (s) => s.listen(0, 5)],
  ["listen(0, '127.0.0.1')", (s) => s.listen(0, '127.0.0.1')],
  ["listen(0, '::1')", (s) => s.listen(0, '::1')],
  ["listen(0, '::')", (s) => s.listen(0, '::')],
  ["listen(0, '0.0.0.0', callback)", (s, cb) => s.listen(0, '0.0.0.0', cb)],
  ["listen(0, 'localhost')", (s) => s.listen(0, 'localhost')],
  ["listen(0, '127.0.0.1', backlog)", (s) => s.listen(0, '127.0.0.1', 10)],
  ["listen(0, '127.0.0.1', backlog, callback)", (s, cb) => s.listen(0, '127.0.0.1', 10, cb)],
  ['listen({ port: 0 })', (s) => s.listen({ port: 0 })],
  ["listen({ port: '0' })", (s) => s.listen({ port: '0' })],
  ['listen({ port: undefined })', (s) => s.listen({ port: undefined })],
  ['listen({ port: null }, callback)', (s, cb) => s.listen({ port: null }, cb)],
  ["listen({ port: 0, host: '127.0.0.1' }, callback)",
   (s, cb) => s.listen({ port: 0, host: '127.0.0.1' }, cb)],
  ["listen({ port: 0, host: '::1', ipv6Only: true })",
   (s) => s.listen({ port: 0, host: '::1', ipv6Only: true })],
  ["listen({ port: 0, host: '::', ipv6Only: true })",
   (s) => s.listen({ port: 0, host: '::', ipv6Only: true })],
  ['listen({ port: 0, ipv6Only: true }) (no host)', (s) => s.listen({ port: 0, ipv6Only: true })],
  ['listen({ port: 0, backlog: 5 })', (s) => s.listen({ port: 0, backlog: 5 })],
  ['listen({ port: 0, exclusive: true })', (s) => s.listen({ port: 0, exclusive: true })],
  ['listen({ port: 0, exclusive: false })', (s) => s.listen({ port: 0, exclusive: false })],
  // Backlogs Node's wraps read with ToInt32 (found by stress/fuzz.js).
  ["listen({ port: 0, backlog: 'x' })", (s) => s.listen({ port: 0, backlog: 'x' })],
  ["listen(0, '127.0.0.1', '7')", (s) => s.listen(0, '127.0.0.1', '7')],
  ['listen({ port: 0, backlog: 1.5 })', (s) => s.listen({ port: 0, backlog: 1.5 })],
  ['listen({ port: 0, backlog: {} })', (s) => s.listen({ port: 0, backlog: {} })],
  ['listen({ port: 0, backlog: 1e12 })', (s) => s.listen({ port: 0, backlog: 1e12 })],
];

for (const [name, start] of goodForms) {
  test(`${name}: same return value, timing, address() and events as node:net`, async () => {
    await sameOnBoth(async (impl) => {
      const server = impl.createServer();
      const log = [];
      recordEvents(server, log);
      let callbackCalls = 0;
      const returned = start(server, () => callbackCalls++);
      log.push(['returned']);
      const sync = {
        returnedServer: returned === server,
        listening: server.listening,
        address: describeAddress(server.address()),
        listeningListeners: server.listenerCount('listening'),
      };
      process.nextTick(() => log.push(['next tick']));
      if (!server.listening) await once(server, 'listening');
      await ticks();
      const after = {
        listening: server.listening,
        address: describeAddress(server.address()),
        callbackCalls,
        listeningListeners: server.listenerCount('listening'),
      };
      await closeServer(server);
      return { sync, after, log, addressAfterClose: server.address() };
    });
  });
}

const badListenArgs = [
  ['listen({})', (s) => s.listen({})],
  ['listen(true)', (s) => s.listen(true)],
  ['listen(false)', (s) => s.listen(false)],
  ['listen(-1)', (s) => s.listen(-1)],
  ['listen(65536)', (s) => s.listen(65536)],
  ['listen(1.5)', (s) => s.listen(1.5)],
  ['listen(NaN)', (s) => s.listen(NaN)],
  ['listen(Infinity)', (s) => s.listen(Infinity)],
  ["listen('-1')", (s) => s.listen('-1')],
  ["listen('65536')", (s) => s.listen('65536')],
  ['listen({ port: -1 })', (s) => s.listen({ port: -1 })],
  ['listen({ port: 65536 })', (s) => s.listen({ port: 65536 })],
  ['listen({ port: 1.5 })', (s) => s.listen({ port: 1.5 })],
  ['listen({ port: true })', (s) => s.listen({ port: true })],
  ['listen({ port: {} })', (s) => s.listen({ port: {} })],
  ["listen({ port: '' })", (s) => s.listen({ port: '' })],
  ["listen({ port: ' ' })", (s) => s.listen({ port: ' ' })],
  ["listen({ host: '127.0.0.1' }) (no port or path)", (s) => s.listen({ host: '127.0.0.1' })],
  ['listen({ fd: -1 })', (s) => s.listen({ fd: -1 })],
  ["listen({ port: 0, signal: 'abort' })", (s) => s.listen({ port: 0, signal: 'abort' })],
  ['listen({ port: 0, signal: {} })', (s) => s.listen({ port: 0, signal: {} })],
  ['listen({ port: 0, signal: null })', (s) => s.listen({ port: 0, signal: null })],
  ['listen(Symbol())', (s) => s.listen(Symbol('port'))],
  ['listen([], callback)', (s, cb) => s.listen([], cb)],
  ['listen({ port: 0, backlog: Symbol() })', (s) => s.listen({ port: 0, backlog: Symbol('b') })],
];

for (const [name, start] of badListenArgs) {
  test(`${name} throws node:net's error and leaves the server idle`, async () => {
    await sameOnBoth(async (impl) => {
      const server = impl.createServer();
      const log = [];
      recordEvents(server, log);
      const outcome = captureThrow(() => start(server, () => {}));
      await ticks();
      await ticks();
      const state = {
        listening: server.listening,
        address: describeAddress(server.address()),
        listeningListeners: server.listenerCount('listening'),
      };
      await closeServer(server);
      return { outcome, state, log };
    });
  });
}

test('listen() while listening throws ERR_SERVER_ALREADY_LISTEN, as node:net', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer().listen(0);
    const second = captureThrow(() => server.listen(0));
    const third = captureThrow(() => server.listen({ port: 0, host: '127.0.0.1' }));
    await once(server, 'listening');
    const afterListening = captureThrow(() => server.listen());
    await closeServer(server);
    return { second, third, afterListening };
  });
});

test('a second listen() during a host lookup wins over the first, as node:net', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    const log = [];
    recordEvents(server, log);
    // An IP literal still goes through dns.lookup() (answered on the next
    // tick), so the order of events is the same on every run.
    server.listen(0, '127.0.0.1', () => log.push(['first callback']));
    const second = captureThrow(() => server.listen(0, '127.0.0.1', () => log.push(['second callback'])));
    await once(server, 'listening');
    await ticks();
    const address = describeAddress(server.address());
    await closeServer(server);
    return { second, address, log };
  });
});

test('listen() works again after close() and after a failed listen()', async () => {
  const { test, net } = require('./helpers/oracle');
  const holder = net.createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const busy = holder.address().port;
  try {
    await sameOnBoth(async (impl) => {
      const server = impl.createServer();
      const log = [];
      server.listen(busy, '127.0.0.1');
      const err = await once(server, 'error');
      log.push(err.code, server.listening);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      log.push('listening after failure', server.listening);
      await closeServer(server);
      server.listen(0);
      await once(server, 'listening');
      log.push('listening after close', describeAddress(server.address()));
      await closeServer(server);
      return log;
    });
  } finally {
    holder.close();
  }
});

test('the backlog argument reaches listen(2) (default 511)', async (t) => {
  const { execFileSync } = require('child_process');
  let ss;
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    ss = (port) => execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  } catch {
    t.skip('ss (iproute2) is not installed');
    return;
  }
  const { rustNet, net } = require('./helpers/oracle');
  const backlogOf = (port) => {
    const line = ss(port).trim().split('\n')[0] ?? '';
    return Number(line.split(/\s+/)[2]);
  };
  for (const [args, expected] of [[[], 511], [[7], 7], [[{ backlog: 100 }], 100]]) {
    const results = [];
    for (const impl of [net, rustNet]) {
      const server = impl.createServer();
      if (typeof args[0] === 'object') server.listen({ port: 0, host: '127.0.0.1', ...args[0] });
      else server.listen(0, '127.0.0.1', ...args);
      await once(server, 'listening');
      results.push(backlogOf(server.address().port));
      await closeServer(server);
    }
    assert.deepStrictEqual(results, [expected, expected], `backlog for ${JSON.stringify(args)}`);
  }
});

test('reusePort: two servers share a port on every Node with rust-net, on Node 22.12+ with node:net', async () => {
  // Node 22.12+ sets SO_REUSEPORT for { reusePort: true }; older Nodes
  // ignore the option (the second listen fails with EADDRINUSE), and
  // rust-net gives them Node 22.12's behaviour.
  const { nodeHasReusePort } = require('../lib/options');
  const outcomes = {};
  for (const host of ['127.0.0.1', '::1']) {
    for (const [name, impl] of [['node:net', require('net')], ['rust-net', require('..')]]) {
      const first = impl.createServer();
      first.listen({ port: 0, host, reusePort: true });
      await once(first, 'listening');
      const { port } = first.address();
      const second = impl.createServer();
      outcomes[`${name} ${host}`] = await new Promise((resolve) => {
        second.once('error', (e) => resolve(e.code));
        second.listen({ port, host, reusePort: true }, () => resolve('listening'));
      });
      await closeServer(second);
      await closeServer(first);
    }
    assert.strictEqual(outcomes[`node:net ${host}`], nodeHasReusePort ? 'listening' : 'EADDRINUSE');
    assert.strictEqual(outcomes[`rust-net ${host}`], 'listening');
  }
});

test('reusePort: connections reach both servers sharing the port, and a plain bind still fails', async () => {
  const rustNet = require('..');
  const served = [0, 0];
  const servers = [0, 1].map((n) => rustNet.createServer((c) => { served[n]++; c.end(); }));
  servers[0].listen({ port: 0, host: '127.0.0.1', reusePort: true });
  await once(servers[0], 'listening');
  const { port } = servers[0].address();
  servers[1].listen({ port, host: '127.0.0.1', reusePort: true });
  await once(servers[1], 'listening');
  const plain = rustNet.createServer();
  const plainOutcome = await new Promise((resolve) => {
    plain.once('error', (e) => resolve(e.code));
    plain.listen({ port, host: '127.0.0.1' }, () => resolve('listening'));
  });
  await closeServer(plain);
  for (let i = 0; i < 64; i++) {
    await new Promise((resolve) => {
      const c = require('net').connect(port, '127.0.0.1');
      c.on('close', resolve).on('error', resolve).resume();
    });
  }
  for (const s of servers) await closeServer(s);
  assert.strictEqual(plainOutcome, 'EADDRINUSE');
  assert.strictEqual(served[0] + served[1], 64);
  assert.ok(served[0] > 0 && served[1] > 0, `both served: ${served}`);
});

test("listen({ fd }) on a descriptor another server of this process listens on fails with EEXIST, as node:net", async () => {
  const result = await sameOnBoth(async (impl) => {
    const first = impl.createServer();
    await new Promise((resolve) => first.listen(0, '127.0.0.1', resolve));
    const second = impl.createServer();
    const log = [];
    recordEvents(second, log);
    second.listen({ fd: first._handle.fd });
    await once(second, 'error');
    await ticks();
    const listening = second.listening;
    await closeServer(first);
    return { log, listening };
  });
  assert.strictEqual(result.log[0][1].code, 'EEXIST');
  assert.strictEqual(result.log[0][1].message, 'listen EEXIST: file already exists');
});

test("listen({ fd }) on the descriptor of a node:net server of this process fails with EEXIST on rust-net too", async () => {
  const nodeServer = require('net').createServer();
  await new Promise((resolve) => nodeServer.listen(0, '127.0.0.1', resolve));
  const result = await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    server.listen({ fd: nodeServer._handle.fd });
    const err = await once(server, 'error');
    return [err.code, err.syscall, err.message, server.listening];
  });
  await closeServer(nodeServer);
  assert.deepStrictEqual(result, ['EEXIST', 'listen', 'listen EEXIST: file already exists', false]);
});
