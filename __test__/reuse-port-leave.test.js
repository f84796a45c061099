'use strict';

// A `reusePort` server that closes (without hand-over) must not reset the
// connections waiting in its kernel accept queue: Linux resets them unless
// net.ipv4.tcp_migrate_req=1 moves them to another listener of the group.
// The scenario runs in __test__/fixtures/reuse-port-leave.js: a closing
// member (rust-net or node:net, in a child process whose event loop is
// blocked while clients connect) and another rust-net member on the same
// port. node:net is the oracle that the scenario really fills the closing
// member's queue: it resets what waits there.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const net = require('net');
const rustNet = require('..');

const linux = process.platform === 'linux';
const FIXTURE = path.join(__dirname, 'fixtures', 'reuse-port-leave.js');
const CLIENTS = 32;
const MIGRATE = '/proc/sys/net/ipv4/tcp_migrate_req';

function readMigrate() {
  try {
    return fs.readFileSync(MIGRATE, 'utf8').trim();
  } catch {
    return null;
  }
}

// A Node with node:net's own `reusePort` (22.12+, 23.1+): this one, or one
// already in the test binaries' cache (never downloaded here).
function nodeWithReusePort() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)) return process.execPath;
  const root = path.join(__dirname, '..');
  const cache = path.resolve(process.env.RUST_NET_NODE_CACHE || path.join(root, 'node_modules', '.cache', 'rust-net-node'));
  for (const candidate of ['24', '26', '22']) {
    const bin = path.join(cache, candidate, 'package', 'bin', 'node');
    if (fs.existsSync(bin)) return bin;
  }
  return null;
}

const oracleNode = linux ? nodeWithReusePort() : null;

// Whether this process may make a network namespace with tcp_migrate_req set.
function canUnshare() {
  if (!linux) return 'Linux only';
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', `echo 1 > ${MIGRATE} && ip link set lo up`],
                          { encoding: 'utf8', timeout: 10000 });
  return probe.status === 0 ? false : `cannot make a network namespace with tcp_migrate_req=1 (${probe.stderr.trim() || probe.error?.message || probe.status})`;
}

// Runs the scenario; `netns`: inside a new network namespace with
// tcp_migrate_req=1.
function scenario(member, memberNode, { netns = false } = {}) {
  const args = [FIXTURE, JSON.stringify({ member, memberNode, clients: CLIENTS })];
  const run = netns ?
    spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && echo 1 > ${MIGRATE} && exec "$0" "$@"`, process.execPath, ...args],
              { encoding: 'utf8', timeout: 60000 }) :
    spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60000 });
  assert.strictEqual(run.status, 0, `the scenario failed: ${run.stderr}${run.error?.message ?? ''}`);
  const result = JSON.parse(run.stdout.trim().split('\n').pop());
  assert.ok(result.member.close, `the member never emitted 'close': ${run.stdout}`);
  return result;
}

// What node:net promises whatever happens to the queue: close() stops
// listening at once, no 'connection' comes from inside close(), and 'close'
// comes only once every connection the server got has ended.
function assertCloseSemantics(result) {
  assert.strictEqual(result.member.closed.listening, false);
  assert.strictEqual(result.member.close.insideClose, 0);
  assert.strictEqual(result.member.close.listeningAtConnection, false);
  assert.strictEqual(result.member.close.openAtClose, 0);
}

const noMigrate = !linux ? 'Linux only' : readMigrate() === '1' && 'net.ipv4.tcp_migrate_req is set here';

test('a closing reusePort server serves every connection waiting in its queue: none is reset', { skip: noMigrate, timeout: 90000 }, () => {
  const result = scenario('rust-net', process.execPath);
  assert.deepStrictEqual(result.outcomes, { ok: CLIENTS });
  // Its queue held some (about half), delivered after close() returned.
  assert.ok(result.member.close.afterClose > 0, JSON.stringify(result));
  assertCloseSemantics(result);
});

test("node:net's reusePort server resets the connections waiting in its queue in the same scenario", { skip: noMigrate || (!oracleNode && 'no Node with reusePort (22.12+) here or in the cache'), timeout: 90000 }, () => {
  const result = scenario('node', oracleNode);
  assert.ok(result.outcomes.ECONNRESET > 0, JSON.stringify(result));
  assert.strictEqual((result.outcomes.ok ?? 0) + result.outcomes.ECONNRESET, CLIENTS, JSON.stringify(result));
  assert.strictEqual(result.member.close.afterClose, 0);
  assertCloseSemantics(result);
});

const unshare = canUnshare();

test('with tcp_migrate_req=1 a closing reusePort server just closes: the kernel moves its queue to the other member', { skip: unshare, timeout: 90000 }, () => {
  const result = scenario('rust-net', process.execPath, { netns: true });
  assert.deepStrictEqual(result.outcomes, { ok: CLIENTS });
  // Nothing drained: the other member served them all (with the runtime
  // placement, but for those its accept thread had taken already, which
  // the closing server serves).
  if (process.env.RUST_NET_ACCEPT_PLACEMENT !== 'runtime') assert.strictEqual(result.member.close.afterClose, 0);
  assertCloseSemantics(result);
  if (oracleNode) {
    // node:net's close loses nothing there either: the namespace migrates.
    assert.deepStrictEqual(scenario('node', oracleNode, { netns: true }).outcomes, { ok: CLIENTS });
  }
});

function listen(server, options) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => resolve(server.address().port));
  });
}

test("a reusePort server closed from its first 'connection' listener serves the rest of its queue, then emits 'close'", { skip: noMigrate, timeout: 30000 }, async () => {
  const other = rustNet.createServer((socket) => socket.end('ok\n'));
  const port = await listen(other, { port: 0, host: '127.0.0.1', reusePort: true });
  const open = new Set();
  let served = 0;
  let closedAt = null;
  const closing = rustNet.createServer((socket) => {
    served++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.end('ok\n');
    if (served === 1) closing.close(() => { closedAt = [...open].filter((s) => !s.destroyed).length; });
  });
  await listen(closing, { port, host: '127.0.0.1', reusePort: true });
  const closed = new Promise((resolve) => closing.once('close', resolve));
  const outcomes = await Promise.all(Array.from({ length: CLIENTS }, () => new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    let code = null;
    socket.setEncoding('utf8');
    socket.on('data', (d) => { data += d; });
    socket.on('error', (err) => { code = err.code; });
    socket.on('close', () => resolve(code ?? data));
  })));
  await closed;
  await new Promise((resolve) => other.close(resolve));
  assert.deepStrictEqual(outcomes.filter((o) => o !== 'ok\n'), []);
  assert.ok(served > 0);
  // 'close' (the callback) came once every connection it got had ended.
  assert.strictEqual(closedAt, 0);
  assert.strictEqual(closing.listening, false);
});
