'use strict';

// Socket options (docs/socket-options.md): set in Rust before bind() and
// listen(), inherited by every accepted connection, read back from the
// kernel with getsockopt on the descriptors themselves (and with ss and a
// real client where one exists); Node's own noDelay/keepAlive give the same
// sockets as node:net without a system call per connection; bad values and
// options the kernel refuses give Node-style errors and leak nothing.

const assert = require('assert');
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { getsockoptForTests } = require('../lib/native');
const { openFds, settleFds } = require('./helpers/fds');
const { test, closeServer, net, once, rustNet } = require('./helpers/oracle');

const SOL_SOCKET = 1;
const IPPROTO_IP = 0;
const IPPROTO_TCP = 6;
const IPPROTO_IPV6 = 41;
const SO = { SNDBUF: 7, RCVBUF: 8, KEEPALIVE: 9, PRIORITY: 12, BINDTODEVICE: 25 };
const TCP = {
  NODELAY: 1, KEEPIDLE: 4, KEEPINTVL: 5, KEEPCNT: 6, DEFER_ACCEPT: 9, CONGESTION: 13,
  USER_TIMEOUT: 18, FASTOPEN: 23, NOTSENT_LOWAT: 25,
};
const IP_FREEBIND = 15;
const IP_TRANSPARENT = 19;
const IPV6_FREEBIND = 78;
const IPV6_TRANSPARENT = 75;

// IP_TRANSPARENT needs CAP_NET_ADMIN (bit 12) or CAP_NET_RAW (13).
const effectiveCaps = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]}`);
const mayTransparent = (effectiveCaps & ((1n << 12n) | (1n << 13n))) !== 0n;

function intOpt(fd, level, name) {
  return getsockoptForTests(fd, level, name, 4).readInt32LE(0);
}

function stringOpt(fd, level, name) {
  return getsockoptForTests(fd, level, name, 16).toString('latin1').replace(/\0.*$/s, '');
}

const available = fs.readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8')
  .trim().split(/\s+/);
// A congestion control other than the default, so that inheriting it shows.
const defaultCongestion = fs.readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();
const otherCongestion = available.find((name) => name !== defaultCongestion) ?? defaultCongestion;

async function listening(server, ...args) {
  server.listen(...args);
  await once(server, 'listening');
  return server;
}

// The server side of one connection to `server`: its descriptor while the
// 'connection' listener runs, and the socket.
async function acceptOne(server, host = '127.0.0.1') {
  const accepted = once(server, 'connection');
  const client = net.connect(server.address().port, host);
  client.on('error', () => {});
  const socket = await accepted;
  return { socket, client, fd: socket._handle.fd };
}

test('bind options are set on the listening socket before it listens', async () => {
  const server = await listening(rustNet.createServer({ deferAccept: 5 }), {
    port: 0,
    host: '127.0.0.1',
    fastOpen: 16,
    freebind: true,
    bindToDevice: 'lo',
    receiveBufferSize: 200000,
    sendBufferSize: 150000,
    socketOptions: [
      { level: 'SOL_SOCKET', name: 'SO_PRIORITY', value: 3 },
      { level: IPPROTO_TCP, name: TCP.NOTSENT_LOWAT, value: Buffer.from(new Int32Array([12345]).buffer) },
    ],
  });
  try {
    const fd = server._handle.fd;
    // The kernel keeps TCP_DEFER_ACCEPT as SYN-ACK retransmissions and
    // reports the time they take: at least what was asked.
    assert.ok(intOpt(fd, IPPROTO_TCP, TCP.DEFER_ACCEPT) >= 5);
    assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.FASTOPEN), 16);
    assert.strictEqual(intOpt(fd, IPPROTO_IP, IP_FREEBIND), 1);
    assert.strictEqual(stringOpt(fd, SOL_SOCKET, SO.BINDTODEVICE), 'lo');
    // Linux doubles buffer sizes for its bookkeeping.
    assert.strictEqual(intOpt(fd, SOL_SOCKET, SO.RCVBUF), 400000);
    assert.strictEqual(intOpt(fd, SOL_SOCKET, SO.SNDBUF), 300000);
    assert.strictEqual(intOpt(fd, SOL_SOCKET, SO.PRIORITY), 3);
    assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.NOTSENT_LOWAT), 12345);
    // What ss sees of the listener from outside the process: bound to lo
    // (`%lo`), and the buffer sizes in its memory line.
    const ss = execFileSync('ss', ['-ltnoem', `sport = :${server.address().port}`], { encoding: 'utf8' });
    assert.match(ss, new RegExp(`127\\.0\\.0\\.1%lo:${server.address().port}\\s`));
    assert.match(ss, /skmem:\(r0,rb400000,t0,tb300000,/);
  } finally {
    await closeServer(server);
  }
});

test('an option left out of the options is left as the kernel has it', async () => {
  const plain = await listening(rustNet.createServer(), 0, '127.0.0.1');
  try {
    const fd = plain._handle.fd;
    assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.DEFER_ACCEPT), 0);
    assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.FASTOPEN), 0);
    assert.strictEqual(intOpt(fd, IPPROTO_IP, IP_FREEBIND), 0);
    assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.NODELAY), 0);
  } finally {
    await closeServer(plain);
  }
});

test('IPv6 listeners get the IPv6 forms of freebind and transparent', async () => {
  const options = mayTransparent ? { freebind: true, transparent: true } : { freebind: true };
  const server = await listening(rustNet.createServer(options), 0, '::1');
  try {
    assert.strictEqual(intOpt(server._handle.fd, IPPROTO_IPV6, IPV6_FREEBIND), 1);
    if (mayTransparent) assert.strictEqual(intOpt(server._handle.fd, IPPROTO_IPV6, IPV6_TRANSPARENT), 1);
  } finally {
    await closeServer(server);
  }
});

test('freebind lets a server bind an address this host does not have', async () => {
  const server = await listening(rustNet.createServer(), { port: 0, host: '192.0.2.77', freebind: true });
  try {
    assert.strictEqual(server.address().address, '192.0.2.77');
    assert.strictEqual(intOpt(server._handle.fd, IPPROTO_IP, IP_TRANSPARENT), 0);
  } finally {
    await closeServer(server);
  }
  // Without it, as node:net: EADDRNOTAVAIL.
  const refused = rustNet.createServer().listen(0, '192.0.2.77');
  const err = await once(refused, 'error');
  assert.strictEqual(err.code, 'EADDRNOTAVAIL');
});

test('every accepted connection arrives with the per-connection options set', async () => {
  const server = await listening(rustNet.createServer({
    keepAlive: true,
    keepAliveInitialDelay: 30000,
    keepAliveInterval: 7000,
    keepAliveCount: 4,
    userTimeout: 9000,
    congestion: otherCongestion,
    noDelay: true,
  }), 0, '127.0.0.1');
  try {
    for (let i = 0; i < 3; i++) {
      const { fd, client, socket } = await acceptOne(server);
      assert.strictEqual(intOpt(fd, SOL_SOCKET, SO.KEEPALIVE), 1);
      assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.KEEPIDLE), 30);
      assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.KEEPINTVL), 7);
      assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.KEEPCNT), 4);
      assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.USER_TIMEOUT), 9000);
      assert.strictEqual(intOpt(fd, IPPROTO_TCP, TCP.NODELAY), 1);
      assert.strictEqual(stringOpt(fd, IPPROTO_TCP, TCP.CONGESTION), otherCongestion);
      client.destroy();
      socket.destroy();
    }
  } finally {
    await closeServer(server);
  }
});

// What node:net leaves on an accepted socket for Node's own options.
async function acceptedOptions(impl, options) {
  const server = await listening(impl.createServer(options), 0, '127.0.0.1');
  const { fd, client, socket } = await acceptOne(server);
  const read = () => ({
    keepAlive: intOpt(fd, SOL_SOCKET, SO.KEEPALIVE),
    idle: intOpt(fd, IPPROTO_TCP, TCP.KEEPIDLE),
    interval: intOpt(fd, IPPROTO_TCP, TCP.KEEPINTVL),
    count: intOpt(fd, IPPROTO_TCP, TCP.KEEPCNT),
    noDelay: intOpt(fd, IPPROTO_TCP, TCP.NODELAY),
  });
  const first = read();
  // The program's own calls afterwards still reach the kernel.
  socket.setNoDelay(false);
  socket.setKeepAlive(false);
  const after = read();
  socket.setKeepAlive(true, 3000);
  socket.setNoDelay(true);
  const again = read();
  client.destroy();
  socket.destroy();
  await closeServer(server);
  return { first, after, again };
}

for (const options of [
  { noDelay: true },
  { keepAlive: true },
  { keepAlive: true, keepAliveInitialDelay: 5000 },
  { keepAlive: true, keepAliveInitialDelay: 40000000 },
  { keepAlive: true, noDelay: true, keepAliveInitialDelay: 1500 },
]) {
  test(`Node's own ${JSON.stringify(options)} leave accepted sockets as node:net leaves them`, async () => {
    const expected = await acceptedOptions(net, options);
    const actual = await acceptedOptions(rustNet, options);
    assert.deepStrictEqual(actual, expected);
  });
}

test('rust-net options of listen() replace those of createServer() for that listen only', async () => {
  const server = rustNet.createServer({ userTimeout: 1000, deferAccept: 2 });
  await listening(server, { port: 0, host: '127.0.0.1', userTimeout: 2000 });
  assert.strictEqual(intOpt(server._handle.fd, IPPROTO_TCP, TCP.USER_TIMEOUT), 2000);
  assert.ok(intOpt(server._handle.fd, IPPROTO_TCP, TCP.DEFER_ACCEPT) >= 2);
  await closeServer(server);
  await listening(server, 0, '127.0.0.1');
  assert.strictEqual(intOpt(server._handle.fd, IPPROTO_TCP, TCP.USER_TIMEOUT), 1000);
  await closeServer(server);
});

// TCP Fast Open needs the server bit of net.ipv4.tcp_fastopen, which this
// machine's own setting may lack: each run gets a network namespace of its
// own (unshare -n, loopback up, tcp_fastopen = 3), a rust-net server with
// or without fastOpen, and two real curl --tcp-fastopen requests (the first
// fetches the cookie, the second sends its request in the SYN). The
// kernel's TCPFastOpenPassive counter says how many it accepted that way.
function fastOpenRun(options) {
  const script = `
    const { execFile } = require('child_process');
    const fs = require('fs');
    const net = require(${JSON.stringify(path.join(__dirname, '..'))});
    const passive = () => {
      const [keys, values] = fs.readFileSync('/proc/net/netstat', 'utf8').split('\\n')
        .filter((line) => line.startsWith('TcpExt:')).map((line) => line.trim().split(/\\s+/));
      return Number(values[keys.indexOf('TCPFastOpenPassive')]);
    };
    const server = net.createServer(JSON.parse(process.argv[1]), (socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok'));
    });
    server.listen(0, '127.0.0.1', async () => {
      const url = 'http://127.0.0.1:' + server.address().port + '/';
      const before = passive();
      const bodies = [];
      for (let i = 0; i < 2; i++) {
        bodies.push(await new Promise((resolve, reject) => execFile('curl',
          ['-s', '--max-time', '5', '--tcp-fastopen', url], (err, out) => (err ? reject(err) : resolve(out)))));
      }
      console.log(JSON.stringify({ bodies, passive: passive() - before, inRust: net.isRustServer(server) }));
      server.close();
    });`;
  const out = spawnSync('unshare', ['-n', 'sh', '-c',
    'ip link set lo up && echo 3 > /proc/sys/net/ipv4/tcp_fastopen && exec "$0" -e "$1" "$2"',
    process.execPath, script, JSON.stringify(options)], { encoding: 'utf8', timeout: 20000 });
  assert.strictEqual(out.status, 0, out.stderr);
  return JSON.parse(out.stdout);
}

test('real clients connect with TCP Fast Open to a fastOpen server (curl --tcp-fastopen)', (t) => {
  if (spawnSync('curl', ['--version']).status !== 0) return t.skip('curl is not installed');
  if (spawnSync('unshare', ['-n', 'ip', 'link', 'set', 'lo', 'up']).status !== 0) {
    return t.skip('no network namespace of its own (unshare -n needs CAP_SYS_ADMIN, ip needs iproute2)');
  }
  const withOption = fastOpenRun({ fastOpen: 16 });
  assert.deepStrictEqual(withOption.bodies, ['ok', 'ok']);
  assert.strictEqual(withOption.inRust, true);
  assert.ok(withOption.passive >= 1, `TCPFastOpenPassive went up by ${withOption.passive}`);
  // The same server without the option: the kernel accepts no Fast Open.
  const without = fastOpenRun({});
  assert.deepStrictEqual(without.bodies, ['ok', 'ok']);
  assert.strictEqual(without.passive, 0);
});

// Kernel refusals: an 'error' event as Node emits a failed listen, with
// syscall 'setsockopt'; not listening, no callback, no descriptor left.
async function refused(options, host = '127.0.0.1') {
  const baseline = openFds();
  const server = rustNet.createServer();
  let called = false;
  server.listen({ port: 0, host, ...options }, () => { called = true; });
  const err = await once(server, 'error');
  await new Promise((resolve) => setImmediate(resolve));
  assert.strictEqual(called, false);
  assert.strictEqual(server.listening, false);
  assert.strictEqual(server.address(), null);
  assert.strictEqual(await settleFds(baseline), baseline);
  return err;
}

test('a congestion control the kernel does not have is ENOENT from setsockopt', async () => {
  const err = await refused({ congestion: 'no-such-cc' });
  assert.strictEqual(err.code, 'ENOENT');
  assert.strictEqual(err.syscall, 'setsockopt');
  assert.strictEqual(err.errno, -2);
  assert.strictEqual(err.option, 'congestion');
  assert.strictEqual(err.address, '127.0.0.1');
  assert.match(err.message, /^setsockopt ENOENT: no such file or directory \(congestion\) 127\.0\.0\.1$/);
});

test('a device that does not exist is ENODEV; an unknown raw option ENOPROTOOPT', async () => {
  const noDevice = await refused({ bindToDevice: 'nosuchdev0' });
  assert.strictEqual(noDevice.code, 'ENODEV');
  assert.strictEqual(noDevice.option, 'bindToDevice');
  const noOption = await refused({ socketOptions: [{ level: IPPROTO_TCP, name: 9999, value: 1 }] });
  assert.strictEqual(noOption.code, 'ENOPROTOOPT');
  assert.strictEqual(noOption.option, 'socketOptions');
  // With no host, the IPv6 attempt's refusal is reported, not retried on IPv4.
  const noHost = rustNet.createServer().listen({ port: 0, congestion: 'no-such-cc' });
  const err = await once(noHost, 'error');
  assert.strictEqual(err.syscall, 'setsockopt');
  assert.strictEqual(noHost.listening, false);
});

test('transparent without CAP_NET_ADMIN is a clear EPERM, with nothing leaked', async (t) => {
  if (!mayTransparent) {
    const err = await refused({ transparent: true });
    assert.strictEqual(err.code, 'EPERM');
    assert.strictEqual(err.syscall, 'setsockopt');
    assert.strictEqual(err.option, 'transparent');
    return;
  }
  if (process.getuid() !== 0) return t.skip('has CAP_NET_ADMIN without being root: no way to drop it for a child');
  // An unprivileged user has neither CAP_NET_ADMIN nor CAP_NET_RAW.
  const child = spawnSync(process.execPath, ['-e', `
    const fs = require('fs');
    const before = fs.readdirSync('/proc/self/fd').length;
    const server = require(${JSON.stringify(path.join(__dirname, '..'))}).createServer();
    server.on('error', (err) => setImmediate(() => {
      console.log(JSON.stringify({ code: err.code, syscall: err.syscall, option: err.option,
        message: err.message, listening: server.listening,
        leaked: fs.readdirSync('/proc/self/fd').length - before }));
    }));
    server.listen({ port: 0, host: '127.0.0.1', transparent: true });
  `], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 10000 });
  assert.strictEqual(child.status, 0, child.stderr);
  const result = JSON.parse(child.stdout);
  assert.deepStrictEqual(result, {
    code: 'EPERM',
    syscall: 'setsockopt',
    option: 'transparent',
    message: 'setsockopt EPERM: operation not permitted (transparent) 127.0.0.1',
    listening: false,
    leaked: 0,
  });
});

test('bad values throw as Node throws for its own options, from createServer() and listen()', () => {
  const cases = [
    [{ deferAccept: '5' }, 'ERR_INVALID_ARG_TYPE', /"options\.deferAccept" property must be of type number/],
    [{ deferAccept: 1.5 }, 'ERR_OUT_OF_RANGE', /It must be an integer\. Received 1\.5/],
    [{ fastOpen: -1 }, 'ERR_OUT_OF_RANGE', /It must be >= 0 && <= 2147483647\. Received -1/],
    [{ freebind: 1 }, 'ERR_INVALID_ARG_TYPE', /must be of type boolean/],
    [{ transparent: 'yes' }, 'ERR_INVALID_ARG_TYPE', /must be of type boolean/],
    [{ bindToDevice: 'x'.repeat(16) }, 'ERR_INVALID_ARG_VALUE', /interface name of 1 to 15 bytes/],
    [{ bindToDevice: 7 }, 'ERR_INVALID_ARG_TYPE', /of type string/],
    [{ receiveBufferSize: 0 }, 'ERR_OUT_OF_RANGE', />= 1/],
    [{ sendBufferSize: 2 ** 40 }, 'ERR_OUT_OF_RANGE', /Received 1_099_511_627_776/],
    [{ keepAliveInterval: 500 }, 'ERR_OUT_OF_RANGE', />= 1000 && <= 32767000/],
    [{ keepAliveCount: 128 }, 'ERR_OUT_OF_RANGE', />= 1 && <= 127/],
    [{ userTimeout: NaN }, 'ERR_OUT_OF_RANGE', /an integer/],
    [{ congestion: '' }, 'ERR_INVALID_ARG_VALUE', /congestion control name/],
    [{ socketOptions: {} }, 'ERR_INVALID_ARG_TYPE', /"options\.socketOptions" property must be an instance of Array/],
    [{ socketOptions: [null] }, 'ERR_INVALID_ARG_TYPE', /socketOptions\[0\]/],
    [{ socketOptions: [{ level: 'SOL_NOPE', name: 1, value: 1 }] }, 'ERR_INVALID_ARG_VALUE', /socketOptions\[0\]\.level/],
    [{ socketOptions: [{ level: 'IPPROTO_TCP', name: 'TCP_NOPE', value: 1 }] }, 'ERR_INVALID_ARG_VALUE',
      /socketOptions\[0\]\.name' must be a number or one of: TCP_NODELAY/],
    [{ socketOptions: [{ level: 6, name: 1, value: 'x' }] }, 'ERR_INVALID_ARG_TYPE', /socketOptions\[0\]\.value/],
    [{ socketOptions: [{ level: 6, name: 1, value: 1, extra: 1 }] }, 'ERR_INVALID_ARG_VALUE', /socketOptions\[0\]\.extra/],
  ];
  for (const [options, code, message] of cases) {
    assert.throws(() => rustNet.createServer(options), { code, message }, JSON.stringify(options));
    const server = rustNet.createServer();
    assert.throws(() => server.listen({ port: 0, ...options }), { code, message }, JSON.stringify(options));
    assert.strictEqual(server.listening, false);
  }
});

test('options meant for each connection cost no system call per connection', async (t) => {
  if (spawnSync('strace', ['-V']).status !== 0) return t.skip('strace is not installed');
  const count = 40;
  // Counts setsockopt calls of a process serving `count` connections with
  // Node's noDelay and keepAlive (each connection's calls are what differ).
  const run = (module) => {
    const script = `
      const net = require(${JSON.stringify(module)});
      const server = net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 10000 });
      let n = 0;
      server.on('connection', (s) => { s.destroy(); if (++n === ${count}) server.close(); });
      server.listen(0, '127.0.0.1', async () => {
        for (let i = 0; i < ${count}; i++) {
          await new Promise((resolve) => {
            const c = net.connect(server.address().port, '127.0.0.1', () => { c.destroy(); resolve(); });
            c.on('error', resolve);
          });
        }
      });`;
    const out = spawnSync('strace', ['-f', '-c', '-e', 'trace=setsockopt', process.execPath, '-e', script],
                          { encoding: 'utf8', timeout: 20000 });
    assert.strictEqual(out.status, 0, out.stderr);
    const line = out.stderr.split('\n').find((l) => /\bsetsockopt\s*$/.test(l));
    return Number(line.trim().split(/\s+/)[3]);
  };
  const node = run('net');
  const rust = run(path.join(__dirname, '..'));
  // node:net: SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and
  // TCP_NODELAY per connection; rust-net: the listener's, once.
  assert.ok(node >= 5 * count, `node:net made ${node} setsockopt calls`);
  assert.ok(rust < 15, `rust-net made ${rust} setsockopt calls for ${count} connections`);
});

test('without the native part the socket options are refused, not dropped', () => {
  const fallback = require('../lib/fallback');
  assert.throws(() => fallback.createServer({ deferAccept: 1 }), { code: 'ERR_RUST_NET_NATIVE_MISSING' });
  assert.throws(() => fallback.createServer().listen({ port: 0, socketOptions: [] }),
                { code: 'ERR_RUST_NET_NATIVE_MISSING' });
});
