'use strict';

// Where connections are accepted: on rust-net's tokio thread ('runtime') or
// on the JavaScript thread's event loop ('event-loop'); the event loop unless
// createServer({ acceptPlacement }) or RUST_NET_ACCEPT_PLACEMENT says
// otherwise (or an admission option asks for the runtime thread).

const assert = require('assert');
const { spawnSync } = require('child_process');
const net = require('net');
const path = require('path');
const { test } = require('node:test');

const root = path.join(__dirname, '..');
const rustNet = require(root);
const { placementOf } = require('../lib/handle');

// Runs `body` in a fresh Node process with `env` added; returns its stdout
// parsed as JSON (the body prints one JSON line).
function inChild(body, { env = {}, prefix = [] } = {}) {
  const childEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  const r = spawnSync(prefix[0] ?? process.execPath,
                      [...prefix.slice(1), ...(prefix.length ? [process.execPath] : []), '-e', body],
                      { encoding: 'utf8', env: childEnv, timeout: 20000 });
  assert.strictEqual(r.status, 0, `child failed: ${r.stderr}`);
  return { out: JSON.parse(r.stdout.trim().split('\n').pop()), stderr: r.stderr };
}

// A child that listens, serves one connection, and reports where it
// accepted and which threads the process had.
const REPORT = `
  const rn = require(${JSON.stringify(root)});
  const { placementOf } = require(${JSON.stringify(path.join(root, 'lib/handle'))});
  const fs = require('fs');
  const opts = process.env.OPT ? { acceptPlacement: process.env.OPT } : {};
  const s = rn.createServer(opts, (c) => c.end('x'));
  s.listen(0, '127.0.0.1', () => {
    require('net').connect(s.address().port, '127.0.0.1').on('data', () => {
      const threads = fs.readdirSync('/proc/self/task')
        .map((t) => { try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim(); } catch { return ''; } });
      const placement = placementOf(s._handle);
      s.close(() => console.log(JSON.stringify({ placement, acceptThread: threads.includes('rust-net-accept') })));
    });
  });`;

async function serveOnce(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const data = await new Promise((resolve, reject) => {
    const c = net.connect(server.address().port, '127.0.0.1');
    c.on('data', (d) => resolve(String(d)));
    c.on('error', reject);
  });
  await new Promise((resolve) => server.close(resolve));
  return data;
}

for (const placement of ['runtime', 'event-loop']) {
  test(`createServer({ acceptPlacement: '${placement}' }) accepts there and serves`, async () => {
    const server = rustNet.createServer({ acceptPlacement: placement }, (c) => c.end('hello'));
    let seen = null;
    server.on('listening', () => { seen = placementOf(server._handle); });
    assert.strictEqual(await serveOnce(server), 'hello');
    assert.strictEqual(seen, placement);
  });
}

test('the option wins over RUST_NET_ACCEPT_PLACEMENT, which wins over the automatic choice', () => {
  const both = inChild(REPORT, { env: { RUST_NET_ACCEPT_PLACEMENT: 'runtime', OPT: 'event-loop' } }).out;
  assert.deepStrictEqual(both, { placement: 'event-loop', acceptThread: false });
  const envOnly = inChild(REPORT, { env: { RUST_NET_ACCEPT_PLACEMENT: 'runtime', OPT: undefined } }).out;
  assert.deepStrictEqual(envOnly, { placement: 'runtime', acceptThread: true });
  const optionOnly = inChild(REPORT, { env: { RUST_NET_ACCEPT_PLACEMENT: undefined, OPT: 'runtime' } }).out;
  assert.deepStrictEqual(optionOnly, { placement: 'runtime', acceptThread: true });
  const neither = inChild(REPORT, { env: { RUST_NET_ACCEPT_PLACEMENT: undefined, OPT: undefined } }).out;
  assert.deepStrictEqual(neither, { placement: 'event-loop', acceptThread: false });
});

test('the event-loop placement never starts the accept thread', () => {
  const r = inChild(REPORT, { env: { RUST_NET_ACCEPT_PLACEMENT: undefined, OPT: 'event-loop' } }).out;
  assert.strictEqual(r.acceptThread, false);
});

test('an unknown RUST_NET_ACCEPT_PLACEMENT warns once with its own code and means auto', () => {
  const r = inChild(`${REPORT}; process.on('warning', (w) => console.error('WARN ' + w.code));`,
                    { env: { RUST_NET_ACCEPT_PLACEMENT: 'sideways', OPT: undefined } });
  assert.deepStrictEqual(r.out, { placement: 'event-loop', acceptThread: false });
  assert.strictEqual(r.stderr.match(/WARN RUST_NET_BAD_ACCEPT_PLACEMENT/g)?.length, 1, r.stderr);
});

test('the automatic choice is the event loop with the process pinned to one CPU, as with a spare core', { skip: !hasTaskset() && 'taskset is not installed' }, () => {
  const r = inChild(REPORT, { env: { RUST_NET_ACCEPT_PLACEMENT: undefined, OPT: undefined }, prefix: ['taskset', '-c', '0'] });
  assert.deepStrictEqual(r.out, { placement: 'event-loop', acceptThread: false });
});

test('an acceptPlacement that is not a placement throws as Node throws for bad option values', () => {
  for (const bad of ['fast', 1, null, true]) {
    assert.throws(() => rustNet.createServer({ acceptPlacement: bad }), (err) => {
      assert.ok(err instanceof TypeError);
      assert.strictEqual(err.code, 'ERR_INVALID_ARG_VALUE');
      assert.match(err.message, /^The property 'options\.acceptPlacement' must be one of: 'auto', 'runtime', 'event-loop'\. Received /);
      return true;
    });
  }
  assert.doesNotThrow(() => rustNet.createServer({ acceptPlacement: 'auto' }));
});

function hasTaskset() {
  return spawnSync('taskset', ['-c', '0', 'true']).status === 0;
}

test('a server with a blockList accepts on the runtime thread unless told otherwise, so refusals never wake the event loop', () => {
  const body = (opt) => `
    const rn = require(${JSON.stringify(root)});
    const { placementOf } = require(${JSON.stringify(path.join(root, 'lib/handle'))});
    const s = rn.createServer({ blockList: new (require('net').BlockList)(), ${opt} });
    s.listen(0, '127.0.0.1', () => { console.log(JSON.stringify(placementOf(s._handle))); s.close(); });`;
  const env = { RUST_NET_ACCEPT_PLACEMENT: undefined };
  assert.strictEqual(inChild(body(''), { env }).out, 'runtime');
  assert.strictEqual(inChild(body("acceptPlacement: 'event-loop'"), { env }).out, 'event-loop');
});
