'use strict';

// Bind, listen and lookup failures: emitted as 'error' on the next tick with
// node:net's class, code, errno, syscall, address, port and message; and a
// missing 'error' listener fails the process exactly as node:net does.

const assert = require('assert');
const { spawnSync } = require('child_process');
const path = require('path');
const {
  test,
  closeServer, describeError, net, once, recordEvents, sameOnBoth, ticks,
} = require('./helpers/oracle');

async function holdPort(host) {
  const holder = net.createServer().listen(0, host);
  await once(holder, 'listening');
  return holder;
}

// Starts listening with `start`, then records events up to the first
// 'error' or 'listening' and a few ticks after, with the port scrubbed.
async function observeFailure(impl, start, port) {
  const server = impl.createServer();
  const log = [];
  recordEvents(server, log, () => ({ [String(port)]: 'PORT' }));
  const returned = start(server);
  log.push(['returned', returned === server, server.listening]);
  process.nextTick(() => log.push(['next tick']));
  await Promise.race([once(server, 'error'), once(server, 'listening')]);
  await ticks();
  log.push(['after', server.listening, server.address()]);
  await closeServer(server);
  return log;
}

test('EADDRINUSE on an IPv4 address: same error event as node:net', async () => {
  const holder = await holdPort('127.0.0.1');
  const { port } = holder.address();
  try {
    const log = await sameOnBoth((impl) =>
      observeFailure(impl, (s) => s.listen(port, '127.0.0.1'), port));
    const error = log.find(([name]) => name === 'error')[1];
    assert.strictEqual(error.message, 'listen EADDRINUSE: address already in use 127.0.0.1:PORT');
  } finally {
    holder.close();
  }
});

test('EADDRINUSE with no host (dual-stack ::): same error event as node:net', async () => {
  const holder = await holdPort();
  const { port } = holder.address();
  try {
    await sameOnBoth((impl) => observeFailure(impl, (s) => s.listen(port), port));
    await sameOnBoth((impl) => observeFailure(impl, (s) => s.listen({ port }), port));
  } finally {
    holder.close();
  }
});

test('EADDRINUSE on ::1 and via options: same error event as node:net', async () => {
  const holder = await holdPort('::1');
  const { port } = holder.address();
  try {
    await sameOnBoth((impl) =>
      observeFailure(impl, (s) => s.listen({ port, host: '::1' }), port));
  } finally {
    holder.close();
  }
});

test('EADDRINUSE against a port held by rust-net itself', async () => {
  const { test, rustNet } = require('./helpers/oracle');
  const holder = rustNet.createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const { port } = holder.address();
  try {
    await sameOnBoth((impl) =>
      observeFailure(impl, (s) => s.listen(port, '127.0.0.1'), port));
  } finally {
    holder.close();
  }
});

test('EADDRNOTAVAIL for an address this host does not have', async () => {
  // 192.0.2.1 is TEST-NET-1: bind() fails locally, no packet is sent.
  await sameOnBoth((impl) => observeFailure(impl, (s) => s.listen(0, '192.0.2.1'), 0));
});

test('ENOTFOUND when the host name does not resolve', async () => {
  await sameOnBoth((impl) =>
    observeFailure(impl, (s) => s.listen(0, 'no-such-host.invalid'), 0));
});

test('the retry-after-EADDRINUSE example from the server.listen() docs works', async () => {
  const holder = await holdPort('127.0.0.1');
  const { port } = holder.address();
  await sameOnBoth(async (impl) => {
    const server = impl.createServer();
    const log = [];
    await new Promise((resolve) => {
      server.on('error', (e) => {
        if (e.code === 'EADDRINUSE') {
          log.push('Address in use, retrying...');
          setTimeout(() => {
            server.close();
            server.listen(port, '127.0.0.1');
          }, 20);
          if (holder.listening) holder.close();
        }
      });
      server.on('listening', () => {
        log.push(['listening', server.address().port === port]);
        resolve();
      });
      server.listen(port, '127.0.0.1');
    });
    await closeServer(server);
    // Hold the port again for the second implementation.
    await new Promise((resolve) => holder.listen(port, '127.0.0.1', resolve));
    return log;
  });
  holder.close();
});

test('EACCES for a privileged port when not root: same error as node:net', (t) => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    t.skip('needs root to run the child as an unprivileged user');
    return;
  }
  const script = `
    const impl = require(process.argv[1] === 'node:net' ? 'net' : ${JSON.stringify(path.join(__dirname, '..'))});
    const server = impl.createServer();
    server.on('error', (e) => {
      console.log(JSON.stringify({ message: e.message, code: e.code, errno: e.errno,
        syscall: e.syscall, address: e.address, port: e.port, keys: Object.keys(e) }));
    });
    server.on('listening', () => { console.log('listening'); server.close(); });
    server.listen(${process.argv.includes('--ipv4') ? "81, '0.0.0.0'" : '81'});
  `;
  const run = (which) => spawnSync(process.execPath, ['-e', script, which],
                                   { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 10000 });
  const node = run('node:net');
  const rust = run('rust-net');
  assert.strictEqual(rust.stderr, node.stderr);
  assert.strictEqual(rust.stdout, node.stdout);
  assert.match(node.stdout, /EACCES|listening/);
});

test('an unhandled listen error fails the process exactly like node:net', async () => {
  const holder = await holdPort('127.0.0.1');
  const { port } = holder.address();
  try {
    const script = (which) => `
      const impl = require(${JSON.stringify(which === 'node' ? 'net' : path.join(__dirname, '..'))});
      impl.createServer().listen(${port}, '127.0.0.1');
    `;
    const run = (which) => spawnSync(process.execPath, ['-e', script(which)],
                                     { encoding: 'utf8', timeout: 10000 });
    const describe = (r) => ({
      status: r.status,
      signal: r.signal,
      // Stack frames name different files; everything else must match.
      stderr: r.stderr.split('\n').filter((l) => !/^\s+at /.test(l) && !/^node:|^\S+\.js:\d+|^\[eval\]/.test(l))
        .map((l) => l.split(String(port)).join('PORT')),
    });
    assert.deepStrictEqual(describe(run('rust')), describe(run('node')));
    assert.strictEqual(run('rust').status, 1);
  } finally {
    holder.close();
  }
});

test('an error event fires after listen() returns, never synchronously', async () => {
  const holder = await holdPort('127.0.0.1');
  const { port } = holder.address();
  try {
    await sameOnBoth(async (impl) => {
      const server = impl.createServer();
      let sync = true;
      let errorWasSync;
      server.on('error', () => { errorWasSync = sync; });
      server.listen(port, '127.0.0.1');
      sync = false;
      await ticks();
      return { errorWasSync, described: describeError(new Error('x')).class };
    });
  } finally {
    holder.close();
  }
});
