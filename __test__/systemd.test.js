'use strict';

// systemd socket activation (docs/systemd.md): listen({ systemd }) takes the
// socket systemd passed — here passed by the real systemd-socket-activate,
// systemd's own tool for running a socket-activated service by hand — and
// serves on it in Rust; a wrong environment or a descriptor that cannot
// listen is refused before anything takes it.

const assert = require('assert');
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { test, once, rustNet } = require('./helpers/oracle');

const root = path.join(__dirname, '..');
const activate = ['/usr/bin/systemd-socket-activate', '/bin/systemd-socket-activate', '/lib/systemd/systemd-activate']
  .find((file) => fs.existsSync(file));

// A child that listens with `systemd`, serves one connection with what it
// saw (a JSON line), and exits by closing the server.
const SERVE_ONCE = `
  const fs = require('fs');
  const net = require(${JSON.stringify(root)});
  const wanted = JSON.parse(process.argv[1]);
  const server = net.createServer((socket) => {
    const flags = (fd) => parseInt(/^flags:\\s*(\\d+)/m.exec(fs.readFileSync('/proc/self/fdinfo/' + fd, 'utf8'))[1], 8);
    socket.end(JSON.stringify({
      inRust: net.isRustServer(server),
      address: server.address(),
      passedFdCloexec: (flags(3 + (wanted === 'second' ? 1 : 0)) & 0o2000000) !== 0,
      names: process.env.LISTEN_FDNAMES,
    }) + '\\n');
    server.close();
  });
  server.on('error', (err) => { console.error(err.code, err.message); process.exit(3); });
  server.listen({ systemd: wanted });
`;

function freePort(host) {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, host, () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

// Runs systemd-socket-activate listening on `listens` ([host, port, name]),
// connects to listens[connectTo] once it is listening (which starts the
// service), and resolves with the service's answer and exit code.
async function activated(listens, wanted, connectTo) {
  const args = [`--fdname=${listens.map(([, , name]) => name).join(':')}`];
  for (const [host, port] of listens) args.push('-l', host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
  for (const name of ['RUST_NET_NATIVE_LIBRARY_PATH', 'RUST_NET_ACCEPT_PLACEMENT']) {
    if (process.env[name] !== undefined) args.push('-E', name);
  }
  const child = spawn(activate, [...args, process.execPath, '-e', SERVE_ONCE, JSON.stringify(wanted)],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
  let stderr = '';
  const ready = new Promise((resolve) => {
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if ((stderr.match(/Listening on/g) ?? []).length === listens.length) resolve();
    });
  });
  const exited = once(child, 'exit');
  await Promise.race([ready, exited]);
  const [host, port] = listens[connectTo];
  const client = net.connect(port, host);
  let answer = '';
  client.setEncoding('utf8').on('data', (chunk) => { answer += chunk; });
  client.on('error', () => {});
  await once(client, 'close');
  const code = await exited;
  clearTimeout(timer);
  assert.strictEqual(code, 0, stderr);
  return JSON.parse(answer);
}

test('a socket passed by systemd-socket-activate is served in Rust', async (t) => {
  if (!activate) return t.skip('systemd-socket-activate is not installed (apt-get install systemd)');
  const port = await freePort('127.0.0.1');
  const seen = await activated([['127.0.0.1', port, 'web']], 'web', 0);
  assert.deepStrictEqual(seen, {
    inRust: true,
    address: { address: '127.0.0.1', family: 'IPv4', port },
    passedFdCloexec: true,
    names: 'web',
  });
});

test('systemd: true takes the first socket; a name takes its own among several', async (t) => {
  if (!activate) return t.skip('systemd-socket-activate is not installed (apt-get install systemd)');
  const ports = [await freePort('127.0.0.1'), await freePort('::1')];
  const listens = [['127.0.0.1', ports[0], 'first'], ['::1', ports[1], 'second']];
  const first = await activated(listens, true, 0);
  assert.deepStrictEqual(first.address, { address: '127.0.0.1', family: 'IPv4', port: ports[0] });
  assert.strictEqual(first.names, 'first:second');
  const second = await activated(listens, 'second', 1);
  assert.deepStrictEqual(second.address, { address: '::1', family: 'IPv6', port: ports[1] });
  assert.strictEqual(second.inRust, true);
  assert.strictEqual(second.passedFdCloexec, true);
});

// Runs `listen({ systemd: wanted })` in a child whose descriptor 3 is
// `fd3` and whose LISTEN_PID is its own; resolves with the error it threw.
function refusedInChild(fd3, wanted = true) {
  const script = `
    const server = require(${JSON.stringify(root)}).createServer();
    try {
      server.listen({ systemd: ${JSON.stringify(wanted)} });
      console.log(JSON.stringify({ listened: true }));
    } catch (err) {
      console.log(JSON.stringify({ code: err.code, message: err.message, listening: server.listening }));
    }`;
  const out = spawnSync('/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$0" -e "$1"', process.execPath, script], {
    stdio: ['ignore', 'pipe', 'pipe', fd3],
    env: { ...process.env, LISTEN_FDS: '1', LISTEN_FDNAMES: 'web' },
    encoding: 'utf8',
    timeout: 10000,
  });
  assert.strictEqual(out.status, 0, out.stderr);
  return JSON.parse(out.stdout);
}

test('a passed descriptor that cannot listen is refused with ERR_INVALID_FD_TYPE', () => {
  // A socket pair (what 'pipe' gives a child): a stream socket, not listening.
  assert.deepStrictEqual(refusedInChild('pipe'), {
    code: 'ERR_INVALID_FD_TYPE',
    message: 'rust-net: descriptor 3 from systemd is not a listening socket',
    listening: false,
  });
  const file = fs.openSync('/dev/null', 'r');
  try {
    assert.deepStrictEqual(refusedInChild(file, 'web'), {
      code: 'ERR_INVALID_FD_TYPE',
      message: 'rust-net: descriptor 3 from systemd is not a socket',
      listening: false,
    });
  } finally {
    fs.closeSync(file);
  }
});

// The environment as sd_listen_fds(3) reads it, in this process (no
// descriptor is touched: each case fails before one is chosen).
function withEnv(env, fn) {
  const saved = {};
  for (const key of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) {
    saved[key] = process.env[key];
    if (env[key] === undefined) delete process.env[key];
    else process.env[key] = env[key];
  }
  try {
    return fn();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

test('without sockets passed to this process, listen({ systemd }) throws and does not listen', () => {
  const pid = String(process.pid);
  const cases = [
    [{}, true, /LISTEN_PID and LISTEN_FDS are not set/],
    [{ LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1' }, true, /LISTEN_PID is \d+, not this process/],
    [{ LISTEN_PID: pid, LISTEN_FDS: '0' }, true, /LISTEN_FDS is '0': no socket was passed/],
    [{ LISTEN_PID: pid, LISTEN_FDS: '2', LISTEN_FDNAMES: 'web:admin' }, 'api',
      /no socket is named 'api' \(LISTEN_FDNAMES is 'web:admin'\)/],
    [{ LISTEN_PID: pid, LISTEN_FDS: '1' }, 'web', /no socket is named 'web' \(LISTEN_FDNAMES is not set\)/],
  ];
  for (const [env, wanted, message] of cases) {
    withEnv(env, () => {
      const server = rustNet.createServer();
      assert.throws(() => server.listen({ systemd: wanted }), { code: 'ERR_RUST_NET_NO_SYSTEMD_SOCKET', message });
      assert.strictEqual(server.listening, false);
    });
  }
});

test('bad systemd values throw as Node throws for its listen() options', () => {
  const server = rustNet.createServer();
  assert.throws(() => server.listen({ systemd: 1 }), {
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'The "options.systemd" property must be one of type boolean or string. Received type number (1)',
  });
  assert.throws(() => server.listen({ systemd: '' }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => server.listen({ systemd: true, port: 80 }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: "The property 'options.systemd' cannot be combined with 'port'. Received true",
  });
  assert.strictEqual(server.listening, false);
  // false is the option left out: Node's own listen() decides.
  assert.throws(() => server.listen({ systemd: false }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => require('../lib/fallback').createServer().listen({ systemd: true }),
                { code: 'ERR_RUST_NET_NATIVE_MISSING' });
});
