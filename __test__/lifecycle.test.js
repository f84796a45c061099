'use strict';

// What keeps the process alive, and the other ways a server ends:
// ref()/unref(), close(), AbortSignal and Symbol.asyncDispose.

const assert = require('assert');
const { spawnSync } = require('child_process');
const path = require('path');
const {
  test,
  closeServer, describeAddress, describeError, once, recordEvents, sameOnBoth, ticks,
} = require('./helpers/oracle');

const root = path.join(__dirname, '..');

// Runs `body` in a child on each implementation (`impl` in scope); reports
// how the child ended, and whether it had to be killed for hanging.
function runChild(body, timeout = 5000) {
  const results = {};
  for (const which of ['node:net', 'rust-net']) {
    const script = `const impl = require(${JSON.stringify(which === 'node:net' ? 'net' : root)});\n${body}`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout });
    results[which] = { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  }
  assert.deepStrictEqual(results['rust-net'], results['node:net']);
  return results['node:net'];
}

test('an unref()ed listening server lets the process exit', () => {
  const r = runChild("impl.createServer().listen(0, () => console.log('listening')).unref();");
  assert.deepStrictEqual([r.status, r.stdout], [0, 'listening\n']);
});

test('unref() before listen() still lets the process exit', () => {
  const r = runChild("const s = impl.createServer(); s.unref(); s.listen(0, '127.0.0.1', () => console.log('up'));");
  assert.deepStrictEqual([r.status, r.stdout], [0, 'up\n']);
});

test('ref() after unref() keeps the process alive until close()', () => {
  const r = runChild(`
    const s = impl.createServer().listen(0);
    s.unref(); s.ref();
    setTimeout(() => { console.log('closing'); s.close(() => console.log('closed')); }, 200).unref();
  `);
  assert.deepStrictEqual([r.status, r.stdout], [0, 'closing\nclosed\n']);
});

test('a closed server never holds the process', () => {
  const r = runChild("const s = impl.createServer().listen(0, () => { s.close(); console.log('closed'); });");
  assert.deepStrictEqual([r.status, r.stdout], [0, 'closed\n']);
});

test('a listening server with open connections keeps running until both end', () => {
  const r = runChild(`
    const net = require('net');
    const s = impl.createServer((c) => { c.on('end', () => { c.end(); s.close(() => console.log('server closed')); }); });
    s.listen(0, '127.0.0.1', () => {
      const c = net.connect(s.address().port, '127.0.0.1', () => setTimeout(() => c.end(), 50));
      c.on('close', () => console.log('client closed'));
    });
  `);
  assert.strictEqual(r.status, 0);
  assert.deepStrictEqual(r.stdout.trim().split('\n').sort(), ['client closed', 'server closed']);
});

test('an AbortSignal closes the listening server', async () => {
  await sameOnBoth(async (impl) => {
    const controller = new AbortController();
    const server = impl.createServer();
    const log = [];
    recordEvents(server, log);
    server.listen({ port: 0, signal: controller.signal });
    await once(server, 'listening');
    controller.abort();
    log.push(['after abort', server.listening]);
    await once(server, 'close');
    return { log, listening: server.listening };
  });
});

test('an already-aborted AbortSignal prevents listening', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    const log = [];
    recordEvents(server, log);
    server.listen({ port: 0, host: '127.0.0.1', signal: AbortSignal.abort() });
    log.push(['returned', server.listening]);
    await ticks();
    await ticks();
    // (Node 18 still listens once the host lookup completes: compared too.)
    const state = { log, listening: server.listening, address: describeAddress(server.address()) };
    await closeServer(server);
    return state;
  });
});

test('an already-aborted AbortSignal with no host prevents listening', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    const log = [];
    recordEvents(server, log);
    server.listen({ port: 0, signal: AbortSignal.abort() });
    log.push(['returned', server.listening]);
    await ticks();
    await ticks();
    const state = { log, listening: server.listening };
    await closeServer(server);
    return state;
  });
});

test('Symbol.asyncDispose closes a listening server and is a no-op otherwise', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    const idle = await server[Symbol.asyncDispose]();
    server.listen(0);
    await once(server, 'listening');
    const log = [];
    recordEvents(server, log);
    const closed = await server[Symbol.asyncDispose]();
    return { idle, closed, log, listening: server.listening };
  });
});

test('createServer() options are validated and normalised as node:net does', async () => {
  const cases = [
    [], [undefined], [null], [{}], [() => {}], [{}, () => {}], [null, () => {}],
    [5], ['options'], [true], [Symbol('x')],
    [{ allowHalfOpen: 1, pauseOnConnect: 'yes', noDelay: 0, keepAlive: {} }],
    [{ keepAliveInitialDelay: 1500 }], [{ keepAliveInitialDelay: -5 }],
    [{ keepAliveInitialDelay: '1000' }], [{ keepAliveInitialDelay: NaN }],
    [{ highWaterMark: 1 }], [{ highWaterMark: -1 }], [{ highWaterMark: 'big' }],
    [{ highWaterMark: null }], [{ highWaterMark: NaN }],
  ];
  for (const args of cases) {
    await sameOnBoth(async (impl) => {
      const out = {};
      for (const [how, make] of [
        ['createServer', () => impl.createServer(...args)],
        ['new Server', () => new impl.Server(...args)],
        ['Server()', () => impl.Server(...args)],
      ]) {
        try {
          const s = make();
          out[how] = {
            isServer: s instanceof impl.Server,
            allowHalfOpen: s.allowHalfOpen,
            pauseOnConnect: s.pauseOnConnect,
            noDelay: s.noDelay,
            keepAlive: s.keepAlive,
            keepAliveInitialDelay: s.keepAliveInitialDelay,
            highWaterMark: s.highWaterMark,
            maxConnections: s.maxConnections,
            listening: s.listening,
            connectionListeners: s.listenerCount('connection'),
          };
        } catch (err) {
          out[how] = describeError(err);
        }
      }
      return out;
    });
  }
});

test('rust-net servers are net.Servers and EventEmitters', () => {
  const net = require('net');
  const { EventEmitter } = require('events');
  const { test, rustNet } = require('./helpers/oracle');
  const server = rustNet.createServer();
  assert.ok(server instanceof rustNet.Server);
  assert.ok(server instanceof net.Server);
  assert.ok(server instanceof EventEmitter);
  assert.ok(rustNet.Server() instanceof rustNet.Server);
  // The rest of the module is node:net's (__test__/exports.test.js).
  assert.notStrictEqual(rustNet.Server, net.Server);
  assert.notStrictEqual(rustNet.createServer, net.createServer);
});

test("gc() in 'beforeExit' after serving does not bring the event loop back", () => {
  // Collecting what a server left behind must not schedule work on the loop
  // (Node-API queues finalisers on a setImmediate): 'beforeExit' fires once.
  const body = `
    let runs = 0;
    process.on('beforeExit', () => { runs++; global.gc(); });
    process.on('exit', () => console.log('beforeExit ' + runs));
    const s = impl.createServer((c) => c.end('x'));
    s.listen(0, '127.0.0.1', () => {
      require('net').connect(s.address().port, '127.0.0.1')
        .on('data', () => {}).on('end', () => s.close());
    });`;
  const results = {};
  for (const which of ['node:net', 'rust-net']) {
    const script = `const impl = require(${JSON.stringify(which === 'node:net' ? 'net' : root)});\n${body}`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 10000 });
    results[which] = { status: r.status, stdout: r.stdout };
  }
  assert.deepStrictEqual(results['rust-net'], results['node:net']);
  assert.deepStrictEqual(results['node:net'], { status: 0, stdout: 'beforeExit 1\n' });
});

test('close() leaves no immediate behind, as node:net', async () => {
  // Node's own handles close without scheduling anything on the loop
  // (parallel/test-handle-wrap-hasref counts the active immediates).
  const result = await sameOnBoth(async (impl) => {
    const immediates = () => process.getActiveResourcesInfo().filter((t) => t === 'Immediate').length;
    const server = impl.createServer(() => {}).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const before = immediates();
    server.close();
    const after = immediates();
    await once(server, 'close');
    return { before, after };
  });
  assert.deepStrictEqual(result, { before: 0, after: 0 });
});
