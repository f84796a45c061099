'use strict';

// Hand-over of a listening socket to a successor process (docs/handover.md):
// listen({ handover }) on TCP, with real processes on both sides. The
// failure cases each have a test: no old process, a stale control file,
// another user, garbage and another protocol version, the old process killed
// half-way, a successor that dies before it confirms, two successors, and
// EMFILE. RUST_NET_HANDOVER, pipes and load are in handover-more.test.js.

const { after, test } = require('node:test');
const assert = require('assert');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { app, askPid, converse, frames, freePort, hammer, killAll, start, tempDir } = require('./helpers/handover');

after(killAll);

const host = '127.0.0.1';

function netApp(ctl, port, extra = {}) {
  return app({ handover: ctl, servers: [{ kind: 'net', port, host }], ...extra });
}

test('a successor adopts the socket while clients connect: none refused, the old server emits handover, closes, and its process exits', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = netApp(ctl, port);
  const first = await old.event('listening');
  assert.strictEqual(first.rust, true);
  assert.ok(fs.statSync(ctl).isSocket(), 'the old process owns the control socket');
  assert.strictEqual(fs.statSync(ctl).mode & 0o777, 0o600);
  const load = hammer(() => askPid({ port, host }));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const next = netApp(ctl, port);
  const listening = await next.event('listening');
  assert.deepStrictEqual(listening.address, { address: host, family: 'IPv4', port });
  assert.strictEqual(listening.rust, true);
  const handover = await old.event('handover');
  assert.strictEqual(handover.from, next.child.pid);
  await old.event('close');
  assert.deepStrictEqual(await old.exit(), { code: 0, signal: null });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const { answers: pids, errors } = await load.stop();
  assert.deepStrictEqual(errors, []);
  assert.ok(pids.get(old.child.pid) > 0 && pids.get(next.child.pid) > 0, JSON.stringify([...pids]));
  // The successor owns the control socket now: a third process replaces it.
  const third = netApp(ctl, port);
  await third.event('listening');
  await next.event('handover');
  await next.exit();
  assert.strictEqual(await askPid({ port, host }), third.child.pid);
  third.kill('SIGTERM');
  await third.exit();
  assert.ok(!fs.existsSync(ctl), 'the last owner removes the control socket at exit');
});

test('connections waiting in the accept queue during the hand-over are all served', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = netApp(ctl, port);
  await old.event('listening');
  // The old process stops: connections queue in the kernel meanwhile.
  old.child.kill('SIGSTOP');
  const queued = Array.from({ length: 20 }, () => askPid({ port, host }));
  const next = netApp(ctl, port);
  await new Promise((resolve) => setTimeout(resolve, 200));
  old.child.kill('SIGCONT');
  await next.event('listening');
  await old.event('handover');
  const pids = await Promise.all(queued);
  assert.strictEqual(pids.length, 20);
  assert.ok(pids.every((pid) => pid === old.child.pid || pid === next.child.pid));
  await old.exit();
  next.kill('SIGTERM');
  await next.exit();
});

test('with no old process, or a stale control file, the successor binds as usual and owns the path', async () => {
  const dir = tempDir();
  const ctl = path.join(dir, 'ctl');
  const port = await freePort();
  const alone = netApp(ctl, port);
  assert.strictEqual((await alone.event('listening')).rust, true);
  assert.ok(fs.statSync(ctl).isSocket());
  // Killed: its control socket file stays behind, with no one listening.
  alone.kill('SIGKILL');
  await alone.exit();
  assert.ok(fs.statSync(ctl).isSocket(), 'a stale control socket file');
  const next = netApp(ctl, port);
  await next.event('listening');
  assert.strictEqual(await askPid({ port, host }), next.child.pid);
  // The stale file was replaced by a live control socket.
  const answer = await converse(ctl, frames.hello(process.pid), 500);
  assert.deepStrictEqual(answer, frames.welcome(next.child.pid));
  next.kill('SIGTERM');
  await next.exit();
});

test("another user's control socket is refused on both sides (SO_PEERCRED and 0600)", { skip: process.getuid() !== 0 && 'needs root to run a process as nobody' }, async () => {
  const dir = tempDir(0o777);
  const ctl = path.join(dir, 'ctl');
  const port = await freePort();
  const nobody = app({ handover: ctl, servers: [{ kind: 'net', port, host }] }, { user: 'nobody' });
  const { pid: nobodyPid } = await nobody.event('listening');
  assert.strictEqual(fs.statSync(ctl).uid, 65534);
  assert.strictEqual(fs.statSync(ctl).mode & 0o777, 0o600);
  // The successor (root here) refuses an old process of another user.
  const next = netApp(ctl, port);
  const error = await next.event('error');
  assert.strictEqual(error.code, 'ERR_RUST_NET_HANDOVER_FORBIDDEN');
  assert.match(error.message, /uid 65534/);
  await next.exit();
  // The old process refuses a peer of another user too, before any message.
  const answer = await converse(ctl, frames.hello(process.pid));
  assert.deepStrictEqual(answer, frames.refused(1));
  assert.strictEqual(await askPid({ port, host }), nobodyPid);
  assert.strictEqual(nobody.events.some((e) => e.event === 'handover'), false);
  nobody.kill('SIGTERM');
  await nobody.exit();
  // The other way round: 0600 keeps a successor of another user from even
  // connecting to this user's control socket.
  const rootCtl = path.join(dir, 'root-ctl');
  const old = netApp(rootCtl, port);
  await old.event('listening');
  const intruder = app({ handover: rootCtl, servers: [{ kind: 'net', port, host }] }, { user: 'nobody' });
  const refused = await intruder.event('error');
  assert.strictEqual(refused.code, 'ERR_RUST_NET_HANDOVER_FORBIDDEN');
  assert.match(refused.message, /belongs to another user/);
  await intruder.exit();
  assert.strictEqual(await askPid({ port, host }), old.child.pid);
  old.kill('SIGTERM');
  await old.exit();
});

test('garbage or another protocol version on the control socket gets a clear refusal; the old process is unaffected', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = netApp(ctl, port);
  await old.event('listening');
  assert.deepStrictEqual(await converse(ctl, Buffer.from('GET / HTTP/1.1\r\n\r\n')), frames.refused(2));
  const v2 = frames.hello(1);
  v2[4] = 2;
  assert.deepStrictEqual(await converse(ctl, v2), frames.refused(3));
  // A take before hello is out of turn.
  assert.deepStrictEqual(await converse(ctl, Buffer.from('RNHO\x01\x05\x00\x00', 'latin1')), frames.refused(4));
  assert.strictEqual(await askPid({ port, host }), old.child.pid);
  // And a successor still takes over afterwards.
  const next = netApp(ctl, port);
  await next.event('listening');
  await old.event('handover');
  await old.exit();
  next.kill('SIGTERM');
  await next.exit();
});

test('a successor whose control socket speaks something else fails to listen with a clear error', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  // The successor hangs up with the banner unread: the impostor's socket
  // may see ECONNRESET.
  const impostor = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.end('SSH-2.0-OpenSSH_9.6\r\n');
  });
  await new Promise((resolve) => impostor.listen(ctl, resolve));
  const next = netApp(ctl, port);
  const error = await next.event('error');
  assert.strictEqual(error.code, 'ERR_RUST_NET_HANDOVER_PROTOCOL');
  assert.match(error.message, /does not speak this protocol/);
  await next.exit();
  // The same for an old process of a later protocol version.
  impostor.close();
  const future = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end(Buffer.from('RNHO\x02\x02\x00\x04\x00\x00\x00\x01', 'latin1')));
  });
  await new Promise((resolve) => future.listen(ctl, resolve));
  const again = netApp(ctl, port);
  const versionError = await again.event('error');
  assert.strictEqual(versionError.code, 'ERR_RUST_NET_HANDOVER_PROTOCOL');
  assert.match(versionError.message, /version 2 is not supported/);
  await again.exit();
  future.close();
});

test('the old process killed mid-hand-over: the successor still listens (it binds)', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = netApp(ctl, port);
  await old.event('listening');
  // Stopped, it accepts the control connection (the kernel does) but never
  // answers; then it dies while the successor waits.
  old.child.kill('SIGSTOP');
  const next = netApp(ctl, port);
  await new Promise((resolve) => setTimeout(resolve, 300));
  old.kill('SIGKILL');
  await old.exit();
  const listening = await next.event('listening');
  assert.strictEqual(listening.rust, true);
  assert.strictEqual(await askPid({ port, host }), next.child.pid);
  next.kill('SIGTERM');
  await next.exit();
});

test('a successor that dies after taking the socket, before confirming: the old process keeps serving', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = netApp(ctl, port);
  await old.event('listening');
  const taker = start('handover-taker.js', [ctl, host, String(port)]);
  await taker.event('offered');
  // The taker holds the socket too, but has not confirmed: the old server
  // has not stopped accepting.
  assert.strictEqual(old.events.some((e) => e.event === 'handover'), false);
  taker.send('exit');
  await taker.exit();
  for (let i = 0; i < 5; i++) assert.strictEqual(await askPid({ port, host }), old.child.pid);
  // An abort is the same, and the socket can be offered again afterwards.
  const again = start('handover-taker.js', [ctl, host, String(port)]);
  await again.event('offered');
  again.send('abort');
  await again.event('aborted');
  again.send('listen');
  await again.event('listening');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.strictEqual(old.events.some((e) => e.event === 'handover'), false, 'an aborted offer is never confirmed');
  again.kill();
  await again.exit();
  assert.strictEqual(await askPid({ port, host }), old.child.pid);
  const third = start('handover-taker.js', [ctl, host, String(port)]);
  await third.event('offered');
  third.send('listen');
  await third.event('listening');
  await old.event('handover');
  await old.exit();
  assert.strictEqual(await askPid({ port, host }), third.child.pid);
  third.kill();
  await third.exit();
});

test('two successors at once: one takes the socket, the other fails with ERR_RUST_NET_HANDOVER_BUSY', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = netApp(ctl, port);
  await old.event('listening');
  const winner = start('handover-taker.js', [ctl, host, String(port)]);
  await winner.event('offered');
  const loser = netApp(ctl, port);
  const error = await loser.event('error');
  assert.strictEqual(error.code, 'ERR_RUST_NET_HANDOVER_BUSY');
  assert.match(error.message, new RegExp(`process ${winner.child.pid}`));
  await loser.exit();
  winner.send('listen');
  await winner.event('listening');
  await old.event('handover');
  await old.exit();
  assert.strictEqual(await askPid({ port, host }), winner.child.pid);
  winner.kill();
  await winner.exit();
});

test('EMFILE in the successor during the hand-over: its listen fails with EMFILE and the old process keeps serving', async () => {
  const ctl = path.join(tempDir(), 'ctl');
  const port = await freePort();
  const old = netApp(ctl, port);
  await old.event('listening');
  // Every descriptor but one is taken before listen(): the control
  // connection gets it, the socket sent over it finds none.
  const next = app({ handover: ctl, servers: [{ kind: 'net', port, host }], exhaust: 1 }, { limit: 200 });
  const error = await next.event('error');
  assert.strictEqual(error.code, 'EMFILE');
  // It frees its descriptors and listens again: the hand-over goes through.
  const listening = await next.event('listening');
  assert.strictEqual(listening.rust, true);
  await old.event('handover');
  await old.exit();
  assert.strictEqual(await askPid({ port, host }), next.child.pid);
  next.kill('SIGTERM');
  await next.exit();
});
