'use strict';

// IPC servers: listen(path) and listen({ path, ... }) on Unix domain sockets
// (and Linux abstract names), side by side with node:net.

const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const {
  test,
  captureThrow, closeServer, net, once, recordEvents, rustNet, sameOnBoth, ticks,
} = require('./helpers/oracle');
const { abstractName, dir, socketPath } = require('./helpers/paths');
const { openFds, settleFds } = require('./helpers/fds');

// Scrubs a run-specific path from observations.
const scrubbing = (p) => ({ [p]: 'PATH' });
const scrub = (value, p) => (typeof value === 'string' ? value.split(p).join('PATH') : value);

const forms = [
  ['listen(path)', (s, p) => s.listen(p)],
  ['listen(path, callback)', (s, p, cb) => s.listen(p, cb)],
  ['listen(path, backlog, callback)', (s, p, cb) => s.listen(p, 5, cb)],
  ['listen({ path })', (s, p) => s.listen({ path: p })],
  ['listen({ path, backlog }, callback)', (s, p, cb) => s.listen({ path: p, backlog: 3 }, cb)],
];

for (const [name, start] of forms) {
  test(`${name}: address() is the path at once, 'listening' next tick, file removed on close`, async () => {
    await sameOnBoth(async (impl) => {
      const p = socketPath();
      const server = impl.createServer();
      const log = [];
      recordEvents(server, log);
      let calls = 0;
      const returned = start(server, p, () => calls++);
      log.push(['returned', returned === server, server.listening, scrub(server.address(), p)]);
      process.nextTick(() => log.push(['next tick']));
      await once(server, 'listening');
      const isSocket = fs.statSync(p).isSocket();
      await closeServer(server);
      return { log, calls, isSocket, existsAfterClose: fs.existsSync(p), address: scrub(server.address(), p) };
    });
  });
}

test('abstract names: address() keeps the leading NUL, connections work, nothing on disk', async () => {
  await sameOnBoth(async (impl) => {
    const name = abstractName();
    const server = impl.createServer((socket) => socket.end('hi'));
    server.listen(name);
    const address = server.address() === name;
    await once(server, 'listening');
    const client = net.connect(name);
    let data = '';
    client.setEncoding('utf8').on('data', (d) => { data += d; });
    await once(client, 'close');
    await closeServer(server);
    return { address, data };
  });
});

test('readableAll / writableAll set the socket file mode as node:net does', async () => {
  for (const options of [{}, { readableAll: true }, { writableAll: true },
    { readableAll: true, writableAll: true }]) {
    await sameOnBoth(async (impl) => {
      const p = socketPath();
      const server = impl.createServer().listen({ path: p, ...options });
      await once(server, 'listening');
      const mode = fs.statSync(p).mode & 0o777;
      await closeServer(server);
      return mode;
    });
  }
});

test('readableAll / writableAll on an abstract name throw ERR_INVALID_ARG_VALUE', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    const name = '\0rust-net-abstract-mode';
    const outcome = captureThrow(() => server.listen({ path: name, readableAll: true }));
    return { outcome: JSON.parse(JSON.stringify(outcome).split(JSON.stringify(name).slice(1, -1)).join('NAME')), listening: server.listening };
  });
});

async function observeError(impl, start, p) {
  const server = impl.createServer();
  const log = [];
  recordEvents(server, log, () => scrubbing(p));
  start(server);
  log.push(['returned', server.listening]);
  await Promise.race([once(server, 'error'), once(server, 'listening')]);
  await ticks();
  log.push(['after', server.listening, scrub(server.address(), p)]);
  await closeServer(server);
  return log;
}

test('EADDRINUSE when a live server has the path', async () => {
  const p = socketPath();
  const holder = net.createServer().listen(p);
  await once(holder, 'listening');
  try {
    const log = await sameOnBoth((impl) => observeError(impl, (s) => s.listen(p), p));
    assert.strictEqual(log.find(([n]) => n === 'error')[1].message,
                       'listen EADDRINUSE: address already in use PATH');
  } finally {
    holder.close();
  }
});

test('EADDRINUSE when a leftover file has the path (and the file is left alone)', async () => {
  await sameOnBoth(async (impl) => {
    const p = socketPath();
    fs.writeFileSync(p, 'leftover');
    const log = await observeError(impl, (s) => s.listen(p), p);
    return { log, content: fs.readFileSync(p, 'utf8') };
  });
});

test('a missing directory gives EACCES, as libuv reports it', async () => {
  await sameOnBoth(async (impl) => {
    const p = path.join(dir, 'no-such-dir', 'x.sock');
    return observeError(impl, (s) => s.listen(p), p);
  });
});

test('a path longer than sun_path is handled as the running Node handles it', async () => {
  await sameOnBoth(async (impl) => {
    const p = path.join(dir, 'l'.repeat(130 - dir.length));
    const log = await observeError(impl, (s) => s.listen(p), p);
    const leftovers = fs.readdirSync(dir).filter((f) => f.startsWith('lll'));
    for (const f of leftovers) fs.unlinkSync(path.join(dir, f));
    return { log, leftovers: leftovers.map((f) => path.join(dir, f).length) };
  });
});

test('EACCES for a directory the user may not write to', (t) => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    t.skip('needs root to run the child as an unprivileged user');
    return;
  }
  const locked = fs.mkdtempSync(path.join(dir, 'locked-'));
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(locked, 0o755);
  const root = path.join(__dirname, '..');
  const run = (which) => spawnSync(process.execPath, ['-e', `
    const impl = require(${JSON.stringify(which === 'node' ? 'net' : root)});
    if (impl.native === false) console.log('the native part did not load');
    const s = impl.createServer();
    s.on('error', (e) => console.log(e.message, e.code, e.errno, e.syscall));
    s.listen(${JSON.stringify(path.join(locked, 'x.sock'))}, () => console.log('listening'));
  `], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 10000 });
  const node = run('node');
  const rust = run('rust');
  assert.deepStrictEqual([rust.stdout, rust.stderr], [node.stdout, node.stderr]);
  assert.match(node.stdout, /EACCES/);
});

test('pipe connections: net.Sockets with pipe addresses, half-open and pause as node:net', async () => {
  for (const options of [{}, { allowHalfOpen: true }, { pauseOnConnect: true }]) {
    await sameOnBoth(async (impl) => {
      const p = socketPath();
      const server = impl.createServer(options);
      server.listen(p);
      await once(server, 'listening');
      const client = net.connect(p);
      const socket = await once(server, 'connection');
      const seen = {
        isNetSocket: socket instanceof net.Socket,
        server: socket.server === server,
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        remoteFamily: socket.remoteFamily,
        localAddress: socket.localAddress,
        address: socket.address(),
        allowHalfOpen: socket.allowHalfOpen,
        readableFlowing: socket.readableFlowing,
      };
      let received = '';
      client.setEncoding('utf8').on('data', (d) => { received += d; });
      socket.on('end', () => socket.end('bye'));
      socket.resume();
      client.end('hello');
      await once(client, 'close');
      await closeServer(server);
      return { seen, received };
    });
  }
});

test("pipe servers: maxConnections drops with a bare 'drop', getConnections counts", async () => {
  await sameOnBoth(async (impl) => {
    const p = socketPath();
    const server = impl.createServer();
    server.maxConnections = 1;
    server.listen(p);
    await once(server, 'listening');
    const first = net.connect(p);
    const kept = await once(server, 'connection');
    const second = net.connect(p).on('error', () => {});
    const dropArgs = await new Promise((resolve) => server.once('drop', (...args) => resolve(args)));
    await once(second, 'close');
    const count = await new Promise((resolve) => server.getConnections((e, n) => resolve(n)));
    first.destroy();
    kept.destroy();
    await closeServer(server);
    return { dropArgs, count };
  });
});

test('close then listen in another form: TCP → path → TCP', async () => {
  await sameOnBoth(async (impl) => {
    const server = impl.createServer((s) => s.end('ok'));
    const seen = [];
    for (const target of [0, socketPath(), 0]) {
      server.listen(target);
      await once(server, 'listening');
      const address = server.address();
      seen.push(typeof address === 'string' ? 'path' : address.family);
      const client = typeof target === 'string' ? net.connect(target) : net.connect(address.port, '127.0.0.1');
      client.resume();
      await once(client, 'close');
      await closeServer(server);
    }
    return seen;
  });
});

test('IPC servers leak no descriptor', async () => {
  const warm = rustNet.createServer().listen(socketPath());
  await once(warm, 'listening');
  await closeServer(warm);
  const baseline = openFds();
  for (let i = 0; i < 10; i++) {
    const p = socketPath();
    const sockets = [];
    const server = rustNet.createServer((s) => sockets.push(s)).listen(p);
    await once(server, 'listening');
    assert.strictEqual(rustNet.isRustServer(server), true, 'the pipe server is not listening in Rust');
    const clients = [net.connect(p), net.connect(p)];
    while (sockets.length < 2) await once(server, 'connection');
    clients.forEach((c) => c.destroy());
    sockets.forEach((s) => s.destroy());
    await closeServer(server);
  }
  assert.strictEqual(await settleFds(baseline), baseline);
});
