'use strict';

// Hand-over (docs/handover.md) of servers outside the main thread: groups
// shared across threads (shareAcrossThreads), whose one socket moves and
// whose every member, in each thread, emits 'handover' and closes; and
// servers in worker threads, offered and adopted as the main thread's are,
// matched by address. Real processes on both sides, replaced a few times
// under light load, with no connection failing.

const { after, test } = require('node:test');
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { ask, freePort, hammer, killAll, start, tempDir } = require('./helpers/handover');

after(killAll);

const host = '127.0.0.1';

function threadsApp(ctl, servers) {
  return start('handover-threads-app.js', [JSON.stringify({ handover: ctl, servers })]);
}

// Connects and reads `<pid> <threadId>`.
function askThread(target) {
  return ask(target, (data) => {
    const [pid, thread] = data.split(' ').map(Number);
    return Number.isInteger(pid) && Number.isInteger(thread) ? { pid, thread } : undefined;
  });
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The events `proc` reported for each of `count` servers (by index).
async function eachServer(proc, name, count) {
  const events = [];
  for (let index = 0; index < count; index++) {
    events.push(await proc.waitFor((e) => e.event === name && e.index === index, `'${name}' of server ${index}`));
  }
  return events;
}

// Replaces a process `times` times while clients connect to each of
// `targets`, each old process emitting 'handover' on every server and
// exiting by itself. Returns each target's load result and the processes,
// the last one still running.
async function replaceUnderLoad(ctl, servers, targets, times) {
  const procs = [threadsApp(ctl, servers)];
  const listening = [await eachServer(procs[0], 'listening', servers.length)];
  const loads = targets.map((target) => hammer(() => askThread(target).then(({ pid, thread }) => `${pid} ${thread}`)));
  for (let i = 0; i < times; i++) {
    await pause(150);
    const old = procs[procs.length - 1];
    const next = threadsApp(ctl, servers);
    procs.push(next);
    listening.push(await eachServer(next, 'listening', servers.length));
    const handovers = await eachServer(old, 'handover', servers.length);
    for (const h of handovers) assert.strictEqual(h.from, next.child.pid);
    assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  }
  await pause(150);
  const results = await Promise.all(loads.map((load) => load.stop()));
  return { procs, listening, results };
}

// Whether process `proc` answered (in thread `thread`, if given).
function served(answers, proc, thread) {
  return [...answers.keys()].some((k) => k === `${proc.child.pid} ${thread ?? k.split(' ')[1]}`);
}

async function finish(proc) {
  proc.kill('SIGTERM');
  await proc.exit();
}

test('a group shared by two threads hands its one socket over, three times under load: no connection fails, every member of each old process emits handover', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const group = [
    { thread: 'main', port, host, share: true },
    { thread: 1, port, host, share: true },
  ];
  const { procs, listening, results: [{ answers, errors }] } = await replaceUnderLoad(ctl, group, [{ port, host }], 3);
  assert.deepStrictEqual(errors, []);
  for (const events of listening) {
    // The second member joined the group the first started on the adopted
    // socket (a bind would have failed: the old process held the port).
    assert.deepStrictEqual(events.map((e) => e.members), [1, 2]);
    for (const e of events) assert.deepStrictEqual(e.address, { address: host, family: 'IPv4', port });
  }
  for (const proc of procs) assert.ok(served(answers, proc), JSON.stringify([...answers]));
  await finish(procs[procs.length - 1]);
});

test('a group of two worker threads on a pipe hands over: the path stays for the successor, whose last member removes it at close', async () => {
  const dir = tempDir();
  const ctl = path.join(dir, 'ctl');
  const pipe = path.join(dir, 'app.sock');
  const group = [{ thread: 1, path: pipe, share: true }, { thread: 2, path: pipe, share: true }];
  const { procs, listening, results: [{ answers, errors }] } = await replaceUnderLoad(ctl, group, [{ path: pipe }], 2);
  assert.deepStrictEqual(errors, []);
  for (const events of listening) assert.deepStrictEqual(events.map((e) => e.members), [1, 2]);
  const last = procs[procs.length - 1];
  assert.ok(served(answers, last), JSON.stringify([...answers]));
  assert.ok(fs.statSync(pipe).isSocket(), 'the old processes left the file to their successors');
  await finish(last);
  assert.ok(!fs.existsSync(pipe), 'the last member removes the file');
});

test('servers in worker threads hand over and adopt, each matched by its address, beside the main thread\'s: no connection fails', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const [portA, portB] = [await freePort(), await freePort()];
  // A worker's server first: its thread serves the control socket.
  const servers = [{ thread: 1, port: portA, host }, { thread: 'main', port: portB, host }];
  const { procs, results } = await replaceUnderLoad(ctl, servers, [{ port: portA, host }, { port: portB, host }], 2);
  const [a, b] = results;
  assert.deepStrictEqual([a.errors, b.errors], [[], []]);
  for (const proc of procs) {
    assert.ok([...a.answers.keys()].some((k) => k.startsWith(`${proc.child.pid} `) && !k.endsWith(' 0')),
              `port A served by a worker of ${proc.child.pid}: ${JSON.stringify([...a.answers])}`);
    assert.ok(served(b.answers, proc, 0), `port B served by the main thread: ${JSON.stringify([...b.answers])}`);
  }
  await finish(procs[procs.length - 1]);
});

test('when the worker serving the control socket ends, another thread serves it: its server still hands over', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const [portA, portB] = [await freePort(), await freePort()];
  const old = threadsApp(ctl, [{ thread: 1, port: portA, host }, { thread: 'main', port: portB, host }]);
  await eachServer(old, 'listening', 2);
  old.send('stop 0');
  await old.waitFor((e) => e.event === 'worker-exit' && e.index === 0, 'the worker\'s end');
  await pause(100);
  assert.ok(fs.statSync(ctl).isSocket(), 'a control socket is at the path');
  const next = threadsApp(ctl, [{ thread: 'main', port: portB, host }]);
  const [listening] = await eachServer(next, 'listening', 1);
  assert.strictEqual(listening.address.port, portB);
  assert.strictEqual((await old.waitFor((e) => e.event === 'handover', "'handover'")).from, next.child.pid);
  assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  assert.strictEqual((await askThread({ port: portB, host })).pid, next.child.pid);
  await finish(next);
});

test('a successor that takes a group\'s socket and dies before confirming: every old member keeps serving, none emits handover', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = threadsApp(ctl, [{ thread: 'main', port, host, share: true }, { thread: 1, port, host, share: true }]);
  await eachServer(old, 'listening', 2);
  const taker = start('handover-taker.js', [ctl, host, String(port)]);
  await taker.event('offered');
  taker.send('exit');
  await taker.exit();
  const threads = new Set();
  for (let i = 0; i < 40 && threads.size < 2; i++) {
    const { pid, thread } = await askThread({ port, host });
    assert.strictEqual(pid, old.child.pid);
    threads.add(thread);
  }
  assert.strictEqual(threads.size, 2, 'both members still get connections');
  assert.strictEqual(old.events.some((e) => e.event === 'handover'), false);
  // The socket can be offered again: a successor takes it over.
  const next = threadsApp(ctl, [{ thread: 'main', port, host, share: true }, { thread: 1, port, host, share: true }]);
  await eachServer(next, 'listening', 2);
  await eachServer(old, 'handover', 2);
  assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  await finish(next);
});
