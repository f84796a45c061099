'use strict';

// shareAcrossThreads: servers of several threads of one process sharing one
// port (or pipe path), with Rust dispatching each connection to the member
// whose event loop has the fewest connections waiting for it.

const assert = require('assert');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { test } = require('node:test');
const { Worker } = require('worker_threads');

const root = path.join(__dirname, '..');
const rustNet = require(root);
const { openFds, settleFds } = require('./helpers/fds');

// A member in a worker thread: answers each connection with its threadId
// and closes it; on { block } it waits until it has no open connection, says
// so, then blocks its event loop (Atomics.wait) until notified, after which
// it closes its server at once when { closeAfter } — in the same turn, so
// connections queued for it meanwhile are never taken.
const MEMBER = `
const { parentPort, workerData, threadId } = require('worker_threads');
const rn = require(${JSON.stringify(root)});
const s = rn.createServer((c) => c.end(String(threadId)));
s.on('error', (e) => parentPort.postMessage({ error: e.code }));
s.listen({ ...workerData, shareAcrossThreads: true }, () => parentPort.postMessage({ listening: true }));
parentPort.on('message', (m) => {
  if (m.block) {
    const wait = () => {
      if (s._connections > 0) return setTimeout(wait, 5);
      parentPort.postMessage({ blocked: true });
      Atomics.wait(new Int32Array(m.block), 0, 0, 10000);
      if (m.closeAfter) s.close(() => parentPort.postMessage({ closed: true }));
    };
    wait();
  }
  if (m.close) s.close(() => parentPort.postMessage({ closed: true }));
});
`;

function message(worker, key) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m.error) reject(new Error(`worker: ${m.error}`));
      else if (m[key]) {
        worker.off('message', onMessage);
        resolve(m);
      }
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
}

async function startMember(listen) {
  const worker = new Worker(MEMBER, { eval: true, workerData: listen });
  await message(worker, 'listening');
  return worker;
}

function listen(server, ...args) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(...args, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server) {
  return new Promise((resolve) => server.close(resolve));
}

// One connection: its whole response, or the client error's code.
function fetchBody(target) {
  return new Promise((resolve) => {
    const c = net.connect(target);
    let body = '';
    c.setEncoding('utf8');
    c.on('data', (d) => { body += d; });
    c.on('end', () => resolve({ body }));
    c.on('error', (err) => resolve({ error: err.code }));
  });
}

// `count` connections, `concurrency` at a time; every result.
async function load(target, count, concurrency) {
  const results = [];
  let started = 0;
  async function lane() {
    while (started < count) {
      started++;
      results.push(await fetchBody(target));
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return results;
}

async function until(check, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function tally(results) {
  const out = {};
  for (const r of results) {
    const key = r.error ? `error ${r.error}` : r.body;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

function memberOf(stats, threadId) {
  return stats.members.find((m) => m.threadId === threadId);
}

// The descriptors rust-net holds for good once a server has listened (the
// accept thread's, the reserve one), so that later counts compare.
async function warmedUpBaseline() {
  const warm = rustNet.createServer({ shareAcrossThreads: true });
  await listen(warm, 0, '127.0.0.1');
  await close(warm);
  return openFds();
}

test('servers of the main thread and a worker share one port with shareAcrossThreads, and both serve', async () => {
  const main = rustNet.createServer({ shareAcrossThreads: true }, (c) => c.end('0'));
  await listen(main, 0, '127.0.0.1');
  const { port } = main.address();
  const worker = await startMember({ port, host: '127.0.0.1' });
  try {
    const results = await load({ port, host: '127.0.0.1' }, 20, 1);
    const seen = tally(results);
    assert.deepStrictEqual(Object.keys(seen).sort(), ['0', String(worker.threadId)]);
    const stats = rustNet.threadShareStats(main);
    assert.strictEqual(stats.members.length, 2);
    assert.strictEqual(stats.members.reduce((n, m) => n + m.dispatched, 0), 20);
    assert.deepStrictEqual(stats.members.map((m) => m.own), [true, false]);
    assert.ok(rustNet.isRustServer(main));
  } finally {
    await worker.terminate();
    await close(main);
  }
});

test('without the option, a second bind of a shared port fails with EADDRINUSE as node:net', async () => {
  const shared = rustNet.createServer({ shareAcrossThreads: true });
  await listen(shared, 0, '127.0.0.1');
  const { port } = shared.address();
  const plain = rustNet.createServer();
  const err = await listen(plain, port, '127.0.0.1').then(() => null, (e) => e);
  await close(shared);
  // The same bind against a node:net server holding the port.
  const holder = net.createServer();
  await listen(holder, port, '127.0.0.1');
  const nodeErr = await listen(net.createServer(), port, '127.0.0.1').then(() => null, (e) => e);
  // And the option cannot join a socket that is not in a group.
  const optErr = await listen(rustNet.createServer({ shareAcrossThreads: true }), port, '127.0.0.1')
    .then(() => null, (e) => e);
  await close(holder);
  assert.ok(nodeErr);
  for (const e of [err, optErr]) {
    assert.deepStrictEqual([e.code, e.syscall, e.message], [nodeErr.code, nodeErr.syscall, nodeErr.message]);
  }
});

test('the shared socket stays open until its last member closes, then the port is free', async () => {
  const first = rustNet.createServer({ shareAcrossThreads: true }, (c) => c.end('first'));
  await listen(first, 0, '127.0.0.1');
  const { port } = first.address();
  const second = rustNet.createServer((c) => c.end('second'));
  await listen(second, { port, host: '127.0.0.1', shareAcrossThreads: true });
  await close(first);
  assert.deepStrictEqual(tally(await load({ port, host: '127.0.0.1' }, 4, 2)), { second: 4 });
  await close(second);
  const again = net.createServer();
  await listen(again, port, '127.0.0.1');
  await close(again);
});

test('a member whose event loop is busy gets fewer connections, and serves them once free', async () => {
  const main = rustNet.createServer({ shareAcrossThreads: true }, (c) => c.end('0'));
  await listen(main, 0, '127.0.0.1');
  const { port } = main.address();
  const worker = await startMember({ port, host: '127.0.0.1' });
  const release = new SharedArrayBuffer(4);
  try {
    worker.postMessage({ block: release });
    await message(worker, 'blocked');
    const results = load({ port, host: '127.0.0.1' }, 40, 4);
    const busy = () => memberOf(rustNet.threadShareStats(main), worker.threadId);
    await until(() => busy().waiting >= 1, 'a connection queued for the blocked worker');
    // Let the rest of the load run against the blocked worker.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const during = busy();
    Atomics.notify(new Int32Array(release), 0);
    const seen = tally(await results);
    const total = (seen['0'] ?? 0) + (seen[String(worker.threadId)] ?? 0);
    assert.strictEqual(total, 40, JSON.stringify(seen));
    // Waiting for it counts as busy: it gets a connection only while the
    // main thread has as many waiting, so a handful at most.
    assert.ok(during.dispatched <= 4, JSON.stringify(during));
    assert.ok(seen['0'] >= 36, JSON.stringify(seen));
    const after = busy();
    assert.strictEqual(after.taken, after.dispatched);
  } finally {
    Atomics.notify(new Int32Array(release), 0);
    await worker.terminate();
    await close(main);
  }
});

test('a member at maxConnections gets no new connection while another member has room', async () => {
  const main = rustNet.createServer({ shareAcrossThreads: true });
  const held = [];
  let drops = 0;
  main.on('drop', () => drops++);
  main.on('connection', (c) => { c.write('0'); held.push(c); });
  main.maxConnections = 1;
  await listen(main, 0, '127.0.0.1');
  const { port } = main.address();
  const worker = await startMember({ port, host: '127.0.0.1' });
  const clients = [];
  try {
    // Open connections until one is held open by the main thread.
    while (held.length === 0) {
      const c = net.connect(port, '127.0.0.1');
      clients.push(c);
      await new Promise((resolve) => c.once('data', resolve));
    }
    const seen = tally(await load({ port, host: '127.0.0.1' }, 20, 4));
    assert.deepStrictEqual(seen, { [String(worker.threadId)]: 20 });
    assert.strictEqual(drops, 0);
    const own = rustNet.threadShareStats(main).members.find((m) => m.own);
    assert.deepStrictEqual([own.connections, own.maxConnections], [1, 1]);
  } finally {
    for (const c of clients) c.destroy();
    for (const c of held) c.destroy();
    await worker.terminate();
    await close(main);
  }
});

for (const how of ['closes its server', 'is terminated']) {
  test(`a member that ${how} under load hands its waiting connections to the others: no client error, descriptors back to baseline`, async () => {
    const baseline = await warmedUpBaseline();
    const main = rustNet.createServer({ shareAcrossThreads: true }, (c) => c.end('0'));
    await listen(main, 0, '127.0.0.1');
    const { port } = main.address();
    const worker = await startMember({ port, host: '127.0.0.1' });
    const release = new SharedArrayBuffer(4);
    worker.postMessage({ block: release, closeAfter: how === 'closes its server' });
    await message(worker, 'blocked');
    const results = load({ port, host: '127.0.0.1' }, 200, 8);
    await until(() => memberOf(rustNet.threadShareStats(main), worker.threadId)?.waiting >= 1,
                'a connection queued for the blocked worker');
    if (how === 'is terminated') {
      await worker.terminate();
    } else {
      const closed = message(worker, 'closed');
      Atomics.notify(new Int32Array(release), 0);
      await closed;
      await worker.terminate();
    }
    const seen = tally(await results);
    assert.deepStrictEqual(Object.keys(seen).filter((k) => k.startsWith('error')), [], JSON.stringify(seen));
    assert.strictEqual(seen['0'] + (seen[String(worker.threadId)] ?? 0), 200, JSON.stringify(seen));
    const stats = rustNet.threadShareStats(main);
    assert.strictEqual(stats.departed, 1);
    assert.ok(stats.rerouted >= 1, JSON.stringify(stats));
    assert.strictEqual(stats.members[0].rerouted, stats.rerouted);
    await close(main);
    assert.strictEqual(await settleFds(baseline), baseline);
  });
}

test('servers of two threads share a pipe path; the file goes when the last closes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rust-net-threads-'));
  const sock = path.join(dir, 'shared.sock');
  const main = rustNet.createServer({ shareAcrossThreads: true }, (c) => c.end('0'));
  await listen(main, sock);
  const worker = await startMember({ path: sock });
  try {
    const seen = tally(await load(sock, 20, 1));
    assert.deepStrictEqual(Object.keys(seen).sort(), ['0', String(worker.threadId)]);
    const closed = message(worker, 'closed');
    worker.postMessage({ close: true });
    await closed;
    assert.ok(fs.existsSync(sock), 'the file stays while a member listens');
    assert.deepStrictEqual(tally(await load(sock, 4, 2)), { 0: 4 });
  } finally {
    await worker.terminate();
    await close(main);
  }
  assert.strictEqual(fs.existsSync(sock), false);
  fs.rmdirSync(dir);
});

test('threadShareStats() is null for a server that does not share, and the option must be a boolean', async () => {
  const plain = rustNet.createServer();
  await listen(plain, 0, '127.0.0.1');
  assert.strictEqual(rustNet.threadShareStats(plain), null);
  await close(plain);
  assert.strictEqual(rustNet.threadShareStats({}), null);
  assert.throws(() => rustNet.createServer({ shareAcrossThreads: 'yes' }), {
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'The "options.shareAcrossThreads" property must be of type boolean. Received type string (\'yes\')',
  });
  assert.throws(() => rustNet.createServer().listen({ port: 0, shareAcrossThreads: 1 }), {
    code: 'ERR_INVALID_ARG_TYPE',
  });
});

test('under rust-net/register an http server in each thread shares the port with listen({ shareAcrossThreads })', async () => {
  const { spawnSync } = require('child_process');
  const script = `
    require(${JSON.stringify(path.join(root, 'register.js'))});
    const http = require('http');
    const { Worker, isMainThread, parentPort, workerData, threadId } = require('worker_threads');
    const serve = (port, cb) => http.createServer((q, r) => r.end(String(threadId)))
      .listen({ port, host: '127.0.0.1', shareAcrossThreads: true }, cb);
    if (isMainThread) {
      const s = serve(0, async () => {
        const w = new Worker(__filename, { workerData: s.address().port });
        await new Promise((r) => w.once('message', r));
        const seen = new Set();
        for (let i = 0; i < 10; i++) {
          const body = await fetchBody(s.address().port);
          seen.add(body);
        }
        console.log(JSON.stringify({ seen: [...seen].sort(), stats: require(${JSON.stringify(root)}).threadShareStats(s).members.length }));
        await w.terminate();
        s.close();
      });
      function fetchBody(port) {
        return new Promise((resolve, reject) => http.get({ port, host: '127.0.0.1', agent: false }, (res) => {
          let b = ''; res.on('data', (d) => b += d); res.on('end', () => resolve(b));
        }).on('error', reject));
      }
    } else {
      serve(workerData, () => parentPort.postMessage('up'));
    }`;
  const file = path.join(os.tmpdir(), `rust-net-threads-http-${process.pid}.js`);
  fs.writeFileSync(file, script);
  try {
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20000 });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(JSON.parse(r.stdout), { seen: ['0', '1'], stats: 2 });
  } finally {
    fs.unlinkSync(file);
  }
});
