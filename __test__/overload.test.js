'use strict';

// Load-aware accepting: with pauseAcceptAfter, rust-net stops taking
// connections from the kernel while the event loop leaves a batch untaken,
// so they wait in the kernel's accept queue; with shedAbove it resets what
// that queue holds beyond the bound; each change is published on
// diagnostics_channel. The event loop is stalled for real (Atomics.wait)
// while a worker thread connects, so the scenario is the one the options
// are for, bounded to well under a second.

const assert = require('assert');
const diagnosticsChannel = require('diagnostics_channel');
const { test } = require('node:test');
const { Worker } = require('worker_threads');
const rustNet = require('..');
const { assertOptionErrors } = require('./helpers/options');

// The worker: one connection, then (once rust-net has accepted it and the
// main thread's loop has left it untaken) `rest` more; after `hold` ms it
// lets the main thread go on and waits for every connection to be served
// ('ok') or closed without a word.
const client = `
const { workerData, parentPort } = require('worker_threads');
const net = require('net');
const { port, flag, rest, hold } = workerData;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function open() {
  const c = net.connect({ port, host: '127.0.0.1' });
  const r = { served: false, closed: false };
  c.on('error', () => {});
  c.on('data', () => { r.served = true; c.destroy(); });
  c.on('close', () => { r.closed = true; });
  return r;
}
(async () => {
  const first = open();
  await sleep(100);
  const others = [];
  for (let i = 0; i < rest; i++) others.push(open());
  await sleep(hold);
  const closedWhileStalled = others.filter((r) => r.closed && !r.served).length;
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  const all = [first, ...others];
  for (let i = 0; i < 200 && !all.every((r) => r.closed); i++) await sleep(10);
  parentPort.postMessage({
    served: all.filter((r) => r.served).length,
    refused: all.filter((r) => r.closed && !r.served).length,
    closedWhileStalled,
  });
})();`;

const KINDS = ['pause', 'resume', 'overflow'];

// Runs the scenario against a server made with `options`: returns what the
// clients saw, serverStats() afterwards, and the load events published.
async function stalled(options, { rest = 19, hold = 150, backlog } = {}) {
  const events = [];
  const subscribers = KINDS.map((kind) => {
    const onMessage = (message) => events.push({ kind, ...message });
    diagnosticsChannel.subscribe(`rust-net:server:${kind}`, onMessage);
    return [kind, onMessage];
  });
  const server = rustNet.createServer(options, (s) => { s.on('error', () => {}); s.end('ok'); });
  await new Promise((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog }, resolve));
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(client, { eval: true, workerData: { port: server.address().port, flag, rest, hold } });
  const result = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // The event loop is stalled until the worker has made its connections.
  Atomics.wait(flag, 0, 0, 5000);
  const seen = await result;
  const stats = rustNet.serverStats(server);
  await new Promise((resolve) => server.close(resolve));
  await worker.terminate();
  for (const [kind, onMessage] of subscribers) diagnosticsChannel.unsubscribe(`rust-net:server:${kind}`, onMessage);
  return {
    seen,
    stats,
    events: events.filter((e) => e.server === server).map(({ server: _, ...e }) => e),
  };
}

test('without the options, a stalled event loop leaves nothing refused and publishes nothing', async () => {
  const { seen, stats, events } = await stalled({});
  assert.deepStrictEqual(seen, { served: 20, refused: 0, closedWhileStalled: 0 });
  assert.strictEqual(stats.pauses, 0);
  assert.strictEqual(stats.shed, 0);
  assert.deepStrictEqual(events, []);
});

test('pauseAcceptAfter: connections wait in the kernel queue while the loop is behind, then are all served', async () => {
  const { seen, stats, events } = await stalled({ pauseAcceptAfter: 30 });
  assert.deepStrictEqual(seen, { served: 20, refused: 0, closedWhileStalled: 0 });
  assert.strictEqual(stats.pauses, 1);
  assert.strictEqual(stats.paused, false);
  assert.ok(stats.pausedMs >= 50, `paused ${stats.pausedMs} ms`);
  assert.strictEqual(stats.shed, 0);
  assert.strictEqual(stats.accepted, 20);
  assert.deepStrictEqual(events.map((e) => e.kind), ['pause', 'resume']);
  const resume = events[1];
  // The 19 later connections were still in the kernel's queue at the end.
  assert.strictEqual(resume.queue.length, 19);
  assert.strictEqual(resume.shed, 0);
  assert.ok(resume.pausedMs >= 50, `resume after ${resume.pausedMs} ms`);
});

test('shedAbove: while paused, what the kernel queue holds beyond the bound is reset at once', async () => {
  const { seen, stats, events } = await stalled({ pauseAcceptAfter: 30, shedAbove: 2 });
  // The first connection (accepted before the pause) and the two the queue
  // kept are served; the other 17 were reset while the loop was stalled.
  assert.deepStrictEqual(seen, { served: 3, refused: 17, closedWhileStalled: 17 });
  assert.strictEqual(stats.shed, 17);
  assert.strictEqual(stats.accepted, 3);
  assert.deepStrictEqual(events.map((e) => [e.kind, e.shed]), [['pause', 0], ['resume', 17]]);
});

test('a kernel queue that fills while paused is published as an overflow', async () => {
  const { events } = await stalled({ pauseAcceptAfter: 30 }, { rest: 12, hold: 150, backlog: 4 });
  const overflow = events.find((e) => e.kind === 'overflow');
  assert.ok(overflow, `events: ${JSON.stringify(events)}`);
  assert.strictEqual(overflow.queue.limit, 4);
  assert.ok(overflow.queue.length >= 4);
  assert.ok(overflow.drops > 0, `drops: ${overflow.drops}`);
});

test('without the options, a queue that overflows is published as an overflow with the kernel\'s drops', async () => {
  // Accepting on the event loop, which is stalled: 13 handshakes against a
  // queue of 4, so the kernel drops some (the clients' SYNs, retried later).
  const { stats, events } = await stalled({ acceptPlacement: 'event-loop' }, { rest: 12, hold: 150, backlog: 4 });
  const overflows = events.filter((e) => e.kind === 'overflow');
  assert.ok(overflows.length >= 1, `events: ${JSON.stringify(events)}`);
  assert.deepStrictEqual(events.map((e) => e.kind), overflows.map(() => 'overflow'), 'nothing but overflows');
  assert.strictEqual(overflows[0].queue.limit, 4);
  assert.ok(overflows[0].drops > 0, `drops: ${overflows[0].drops}`);
  const reported = overflows.reduce((sum, e) => sum + e.drops, 0);
  assert.ok(stats.acceptQueue.drops >= reported, `serverStats drops ${stats.acceptQueue.drops}, reported ${reported}`);
});

test('bad values throw Node-style errors; the pair with shareAcrossThreads is refused', () => {
  const cases = [
    [{ pauseAcceptAfter: '5' }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ pauseAcceptAfter: 0 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ pauseAcceptAfter: 1.5 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ shedAbove: -1 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ shedAbove: null }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ pauseAcceptAfter: 10, shareAcrossThreads: true }, 'ERR_INCOMPATIBLE_OPTION_PAIR', TypeError],
  ];
  assertOptionErrors(cases);
  assert.throws(() => rustNet.createServer({ pauseAcceptAfter: 1e10 }), {
    message: 'The value of "options.pauseAcceptAfter" is out of range. It must be >= 1 && <= 2147483647. ' +
      'Received 10_000_000_000',
  });
});
