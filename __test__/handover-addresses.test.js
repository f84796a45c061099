'use strict';

// Hand-over (docs/handover.md) of a server on several addresses
// (listen({ addresses }), docs/addresses.md): each of its sockets is offered
// and adopted on its own, matched by its address, and the old server emits
// 'handover' once and closes when every socket the successor took is
// confirmed. A successor on fewer addresses takes those, and the old server
// closes the others with it, serving what waited in their queues; one on
// more binds the new ones; one whose listen() fails takes nothing. Real
// processes on both sides, on 127.0.0.1 and ::1 (as addresses.test.js).

const { after, test } = require('node:test');
const assert = require('assert');
const path = require('path');
const { app, askPid, freePort, hammer, killAll, start, tempDir } = require('./helpers/handover');

after(killAll);

const v4 = '127.0.0.1';
const v6 = '::1';

function addressesApp(ctl, port, addresses, extra = {}) {
  const { options, ...rest } = extra;
  return app({ handover: ctl, servers: [{ kind: 'net', port, options, listen: { addresses } }], ...rest });
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// How many 'handover' events `proc` reported.
const handovers = (proc) => proc.events.filter((e) => e.event === 'handover').length;

// Resolves with the error code of a connection attempt (ECONNREFUSED once
// nothing listens there), or 'connected'.
function connectResult(port, host) {
  return askPid({ port, host }).then(() => 'connected', (err) => err.code ?? err.message);
}

test('a server on two addresses replaced twice under load on both: none refused, reset or failed, each old one emits handover once and exits 0', async (t) => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const addresses = [v4, v6];
  let current = addressesApp(ctl, port, addresses);
  const first = await current.event('listening');
  assert.strictEqual(first.rust, true);
  assert.deepStrictEqual(first.addresses.map((a) => [a.address, a.port]), [[v4, port], [v6, port]]);
  const generations = [current.child.pid];
  const loads = addresses.map((host) => hammer(() => askPid({ port, host })));
  for (let i = 0; i < 2; i++) {
    await pause(200);
    const next = addressesApp(ctl, port, addresses);
    const listening = await next.event('listening');
    assert.deepStrictEqual(listening.addresses, first.addresses);
    const handover = await current.event('handover');
    assert.strictEqual(handover.from, next.child.pid);
    assert.deepStrictEqual(await current.exit(), { code: 0, signal: null });
    assert.strictEqual(handovers(current), 1, "one 'handover' for the server's two sockets");
    current = next;
    generations.push(current.child.pid);
  }
  await pause(200);
  const results = [];
  for (const load of loads) results.push(await load.stop());
  current.kill('SIGTERM');
  await current.exit();
  results.forEach(({ answers, errors }, i) => {
    t.diagnostic(`${addresses[i]}: ${JSON.stringify([...answers])}`);
    assert.deepStrictEqual(errors, [], addresses[i]);
    for (const pid of generations) assert.ok(answers.get(pid) > 0, `process ${pid} served on ${addresses[i]}`);
  });
});

test('a successor on a subset of the addresses takes those; the old server hands over once and closes the other, serving what waited in its queue', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  // The old process accepts on its event loop only, and keeps that loop
  // busy in its 'handover' listener: the connections made meanwhile to the
  // address the successor did not take wait in the kernel queue, which the
  // close must take and serve rather than reset.
  const old = addressesApp(ctl, port, [v4, v6], { options: { acceptPlacement: 'event-loop' }, stallOnHandover: 400 });
  const { pid: oldPid } = await old.event('listening');
  assert.strictEqual(await askPid({ port, host: v6 }), oldPid);
  const next = addressesApp(ctl, port, [v4]);
  const listening = await next.event('listening');
  assert.deepStrictEqual(listening.addresses, [{ address: v4, family: 'IPv4', port }]);
  await old.event('handover');
  const queued = Array.from({ length: 10 }, () => askPid({ port, host: v6 }));
  assert.deepStrictEqual(await Promise.all(queued), Array(10).fill(oldPid));
  assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  assert.strictEqual(handovers(old), 1);
  // The successor's server defines the set: v6 is served no more.
  assert.strictEqual(await askPid({ port, host: v4 }), next.child.pid);
  assert.strictEqual(await connectResult(port, v6), 'ECONNREFUSED');
  next.kill('SIGTERM');
  await next.exit();
});

test('a successor on more addresses takes the old ones and binds the new one; a third process on the same set takes all', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = app({ handover: ctl, servers: [{ kind: 'net', port, host: v4 }] });
  const { pid: oldPid } = await old.event('listening');
  assert.strictEqual(await connectResult(port, v6), 'ECONNREFUSED');
  // The new address first: the old one is taken as the second address.
  const next = addressesApp(ctl, port, [v6, v4]);
  const listening = await next.event('listening');
  assert.deepStrictEqual(listening.addresses.map((a) => a.address), [v6, v4]);
  assert.strictEqual((await old.event('handover')).from, next.child.pid);
  assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  for (const host of [v4, v6]) assert.strictEqual(await askPid({ port, host }), next.child.pid);
  assert.notStrictEqual(next.child.pid, oldPid);
  const third = addressesApp(ctl, port, [v4, v6]);
  await third.event('listening');
  assert.strictEqual((await next.event('handover')).from, third.child.pid);
  assert.deepStrictEqual(await next.exit(), { code: 0, signal: null });
  assert.strictEqual(handovers(next), 1);
  for (const host of [v4, v6]) assert.strictEqual(await askPid({ port, host }), third.child.pid);
  third.kill('SIGTERM');
  await third.exit();
});

test("a successor that cannot take one of its addresses fails its listen() as a whole and gives back the one it took: the old server keeps serving both", async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = addressesApp(ctl, port, [v4, v6]);
  const { pid: oldPid } = await old.event('listening');
  // Another successor holds the second address's socket, unconfirmed.
  const taker = start('handover-taker.js', [ctl, v6, String(port)]);
  await taker.event('offered');
  const loser = addressesApp(ctl, port, [v4, v6]);
  const error = await loser.event('error');
  assert.strictEqual(error.code, 'ERR_RUST_NET_HANDOVER_BUSY');
  await loser.exit();
  assert.strictEqual(loser.events.some((e) => e.event === 'listening'), false);
  taker.send('exit');
  await taker.exit();
  for (const host of [v4, v6]) assert.strictEqual(await askPid({ port, host }), oldPid);
  assert.strictEqual(handovers(old), 0);
  // Both sockets can be taken afterwards.
  const next = addressesApp(ctl, port, [v4, v6]);
  await next.event('listening');
  assert.strictEqual((await old.event('handover')).from, next.child.pid);
  assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  assert.strictEqual(handovers(old), 1);
  for (const host of [v4, v6]) assert.strictEqual(await askPid({ port, host }), next.child.pid);
  next.kill('SIGTERM');
  await next.exit();
});
