'use strict';

// proxyProtocol: PROXY protocol v1/v2 headers read in Rust from trusted
// peers, before JavaScript sees the connection. The headers here are raw
// bytes (helpers/proxy.js, from HAProxy's spec); real senders (HAProxy,
// nginx, curl) are in proxy-senders.test.js.

const assert = require('assert');
const net = require('net');
const { test } = require('./helpers/oracle');
const { openFds, settleFds } = require('./helpers/fds');
const { v1, v2 } = require('./helpers/proxy');
const rustNet = require('..');

const CLIENT = { address: '203.0.113.7', port: 51234 };
const PUBLIC = { address: '198.51.100.1', port: 443 };

// A server that answers each connection with what it saw: its addresses,
// the first data it received, and the PROXY header.
async function startServer(proxyProtocol, { onConnection } = {}) {
  const seen = { connections: 0, rejections: [] };
  const server = rustNet.createServer({ proxyProtocol }, (socket) => {
    seen.connections++;
    onConnection?.(socket);
    socket.once('data', (data) => {
      socket.end(JSON.stringify({
        remote: [socket.remoteAddress, socket.remotePort, socket.remoteFamily],
        local: [socket.localAddress, socket.localPort],
        data: data.toString('latin1'),
        header: rustNet.proxyHeader(socket),
      }));
    });
  });
  server.on('connectionRejected', (r) => seen.rejections.push(r));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, seen, port: server.address().port };
}

// Sends `chunks` (with a pause between them) and resolves with the reply,
// or with { closed: true } when the server closes without one.
function exchange(port, chunks, { gap = 0, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let reply = '';
    socket.on('data', (d) => { reply += d; });
    socket.on('error', () => {}); // a refused peer may see a reset
    socket.on('close', () => resolve(reply ? JSON.parse(reply) : { closed: true }));
    socket.on('connect', async () => {
      try {
        for (const chunk of chunks) {
          if (socket.destroyed) return;
          socket.write(chunk);
          if (gap) await new Promise((r) => setTimeout(r, gap));
        }
      } catch (err) {
        reject(err);
      }
    });
  });
}

const close = (server) => new Promise((resolve) => server.close(resolve));

test('a v1 header: the socket reports the client and the public address; the payload is untouched', async () => {
  const { server, port } = await startServer({ trusted: ['127.0.0.1'] });
  const reply = await exchange(port, [Buffer.concat([v1(CLIENT, PUBLIC), Buffer.from('PROXY is payload here')])]);
  await close(server);
  assert.deepStrictEqual(reply.remote, ['203.0.113.7', 51234, 'IPv4']);
  assert.deepStrictEqual(reply.local, ['198.51.100.1', 443]);
  assert.strictEqual(reply.data, 'PROXY is payload here');
  assert.strictEqual(reply.header.version, 1);
  assert.deepStrictEqual(reply.header.proxy.address, '127.0.0.1');
});

test('a v1 TCP6 header and a v2 INET6 header give IPv6 addresses', async () => {
  const { server, port } = await startServer({ trusted: '127.0.0.0/8' });
  const src = { address: '2001:db8::7', port: 40000 };
  const dst = { address: '2001:db8::1', port: 8443 };
  const r1 = await exchange(port, [v1(src, dst), 'a']);
  const r2 = await exchange(port, [Buffer.concat([v2({ source: src, destination: dst }), Buffer.from('b')])]);
  await close(server);
  for (const [r, data] of [[r1, 'a'], [r2, 'b']]) {
    assert.deepStrictEqual(r.remote, ['2001:db8::7', 40000, 'IPv6']);
    assert.deepStrictEqual(r.local, ['2001:db8::1', 8443]);
    assert.strictEqual(r.data, data);
  }
});

test('a v2 header split over many writes, one byte at a time, is read whole; the first payload byte is kept', async () => {
  const { server, port } = await startServer({ trusted: ['127.0.0.1'] });
  const header = v2({ source: CLIENT, destination: PUBLIC, tlvs: [[0x02, 'example.com']] });
  const bytes = [...Buffer.concat([header, Buffer.from('\r\npayload')])].map((b) => Buffer.from([b]));
  const reply = await exchange(port, bytes, { gap: 1 });
  await close(server);
  assert.deepStrictEqual(reply.remote, ['203.0.113.7', 51234, 'IPv4']);
  assert.strictEqual(reply.data[0], '\r');
  assert.strictEqual(reply.header.authority, 'example.com');
});

test('v2 TLVs are readable: ALPN, authority, unique id, SSL with its sub-TLVs, CRC32C and the cloud ones', async () => {
  const { server, port } = await startServer({ trusted: ['127.0.0.1'] });
  const ssl = Buffer.concat([
    Buffer.from([0x07, 0, 0, 0, 0]), // client: SSL, cert conn, cert sess; verify 0
    require('./helpers/proxy').tlv(0x21, 'TLSv1.3'),
    require('./helpers/proxy').tlv(0x22, 'client.example'),
    require('./helpers/proxy').tlv(0x23, 'TLS_AES_128_GCM_SHA256'),
  ]);
  const azure = Buffer.from([0x01, 0x78, 0x56, 0x34, 0x12]);
  const gcp = Buffer.from([0, 0, 0, 0, 0, 0, 0x30, 0x39]);
  const header = v2({
    source: CLIENT,
    destination: PUBLIC,
    tlvs: [[0x01, 'h2'], [0x02, 'api.example'], [0x05, 'id-42'], [0x20, ssl],
           [0xEA, Buffer.concat([Buffer.from([0x01]), Buffer.from('vpce-0abc')])], [0xEE, azure], [0xE0, gcp]],
    crc: 'good',
  });
  const reply = await exchange(port, [Buffer.concat([header, Buffer.from('x')])]);
  await close(server);
  const h = reply.header;
  assert.strictEqual(h.version, 2);
  assert.strictEqual(h.command, 'PROXY');
  assert.strictEqual(h.alpn, 'h2');
  assert.strictEqual(h.authority, 'api.example');
  assert.strictEqual(Buffer.from(h.uniqueId.data).toString(), 'id-42');
  assert.deepStrictEqual(
    [h.ssl.clientSsl, h.ssl.verified, h.ssl.version, h.ssl.cn, h.ssl.cipher],
    [true, true, 'TLSv1.3', 'client.example', 'TLS_AES_128_GCM_SHA256']);
  assert.strictEqual(typeof h.crc32c, 'number');
  assert.strictEqual(h.awsVpcEndpointId, 'vpce-0abc');
  assert.strictEqual(h.azurePrivateLinkId, 0x12345678);
  assert.strictEqual(h.gcpPscConnectionId, '12345');
  assert.deepStrictEqual(h.tlvs.map((t) => t.type), [0x01, 0x02, 0x05, 0x20, 0xEA, 0xEE, 0xE0, 0x03]);
});

test('LOCAL and UNKNOWN headers are consumed and keep the real addresses', async () => {
  const { server, port } = await startServer({ trusted: ['127.0.0.1'] });
  const local = await exchange(port, [Buffer.concat([v2({ command: 'LOCAL' }), Buffer.from('hc')])]);
  const unknown = await exchange(port, [Buffer.concat([v1('UNKNOWN'), Buffer.from('u')])]);
  await close(server);
  for (const [r, data, version] of [[local, 'hc', 2], [unknown, 'u', 1]]) {
    assert.strictEqual(r.remote[0], '127.0.0.1');
    assert.strictEqual(r.local[0], '127.0.0.1');
    assert.strictEqual(r.data, data);
    assert.strictEqual(r.header.version, version);
    assert.strictEqual(r.header.source, undefined);
  }
  assert.strictEqual(local.header.command, 'LOCAL');
});

test('hostile input from a trusted peer is closed in Rust, counted, reported, and never reaches JavaScript', async () => {
  const { server, seen, port } = await startServer({ trusted: ['127.0.0.1'], timeout: 300, maxHeaderLength: 512 });
  const baseline = openFds();
  const cases = [
    ['no header', ['GET / HTTP/1.1\r\n\r\n'], 'ERR_PROXY_HEADER_MISSING'],
    ['garbage', [Buffer.from([0x16, 0x03, 0x01, 0x00])], 'ERR_PROXY_HEADER_MISSING'],
    ['a v1 line without CRLF', ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2' + ' '.repeat(100)], 'ERR_PROXY_HEADER_INVALID'],
    ['a v1 line with a bad address', ['PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n'], 'ERR_PROXY_HEADER_INVALID'],
    ['an oversize v2 length', [v2({ source: CLIENT, destination: PUBLIC, lengthOverride: 60000 })],
      'ERR_PROXY_HEADER_TOO_LARGE'],
    ['a wrong CRC32C', [v2({ source: CLIENT, destination: PUBLIC, crc: 'bad' })], 'ERR_PROXY_HEADER_INVALID'],
    ['nothing until the timeout', [], 'ERR_PROXY_HEADER_TIMEOUT'],
    ['half a header until the timeout', [v2({ source: CLIENT, destination: PUBLIC }).subarray(0, 20)],
      'ERR_PROXY_HEADER_TIMEOUT'],
  ];
  for (const [name, chunks, code] of cases) {
    const before = seen.rejections.length;
    const reply = await exchange(port, chunks);
    assert.deepStrictEqual(reply, { closed: true }, name);
    await new Promise((r) => setTimeout(r, 20));
    assert.strictEqual(seen.rejections.length, before + 1, name);
    assert.strictEqual(seen.rejections.at(-1).code, code, name);
    assert.strictEqual(seen.rejections.at(-1).remoteAddress, '127.0.0.1', name);
  }
  assert.strictEqual(seen.connections, 0);
  assert.strictEqual(seen.rejections.find((r) => r.detail === 'v2-crc32c-mismatch')?.code, 'ERR_PROXY_HEADER_INVALID');
  const stats = rustNet.admissionStats(server);
  assert.strictEqual(stats.ERR_PROXY_HEADER_TIMEOUT, 2);
  assert.strictEqual(stats.ERR_PROXY_HEADER_MISSING, 2);
  assert.strictEqual(await settleFds(baseline), baseline);
  await close(server);
});

test('an untrusted peer is served as itself with its bytes untouched, or refused with untrusted: reject', async () => {
  const pass = await startServer({ trusted: ['10.0.0.0/8'] });
  const spoof = Buffer.concat([v1(CLIENT, PUBLIC), Buffer.from('rest')]);
  const reply = await exchange(pass.port, [spoof]);
  await close(pass.server);
  assert.deepStrictEqual(reply.remote.slice(0, 1), ['127.0.0.1']);
  assert.strictEqual(reply.data, spoof.toString('latin1'));
  assert.strictEqual(reply.header, null);

  const reject = await startServer({ trusted: ['10.0.0.0/8'], untrusted: 'reject' });
  assert.deepStrictEqual(await exchange(reject.port, [spoof]), { closed: true });
  await new Promise((r) => setTimeout(r, 20));
  await close(reject.server);
  assert.strictEqual(reject.seen.rejections[0].code, 'ERR_PROXY_PEER_UNTRUSTED');
  assert.strictEqual(reject.seen.connections, 0);
});

test('only the listed peers are trusted: a BlockList or addresses, matched on the real peer', async () => {
  const list = new net.BlockList();
  list.addAddress('127.0.0.2');
  const { server, port } = await startServer({ trusted: list });
  const fromTrusted = await exchange(port, [v1(CLIENT, PUBLIC), 'x'], { localAddress: '127.0.0.2' });
  const fromOther = await exchange(port, [v1(CLIENT, PUBLIC), 'x'], { localAddress: '127.0.0.3' });
  await close(server);
  assert.strictEqual(fromTrusted.remote[0], '203.0.113.7');
  assert.strictEqual(fromOther.remote[0], '127.0.0.3');
  assert.match(fromOther.data, /^PROXY TCP4/);
});

test('a BlockList as trusted counts with the rules it had when the option was given', async () => {
  const list = new net.BlockList();
  list.addAddress('127.0.0.2');
  const { server, port } = await startServer({ trusted: list });
  list.addAddress('127.0.0.3');
  const fromLater = await exchange(port, [v1(CLIENT, PUBLIC), 'x'], { localAddress: '127.0.0.3' });
  const fromFirst = await exchange(port, [v1(CLIENT, PUBLIC), 'x'], { localAddress: '127.0.0.2' });
  await close(server);
  assert.strictEqual(fromLater.remote[0], '127.0.0.3');
  assert.strictEqual(fromFirst.remote[0], '203.0.113.7');
});

test('missingHeader: pass serves a trusted peer without a header as itself', async () => {
  const { server, port } = await startServer({ trusted: ['127.0.0.1'], missingHeader: 'pass' });
  const reply = await exchange(port, ['hello']);
  await close(server);
  assert.deepStrictEqual([reply.remote[0], reply.data, reply.header], ['127.0.0.1', 'hello', null]);
});

test('listen({ proxyProtocol }) turns it on too, and always accepts on the runtime thread', async () => {
  const { placementOf } = require('../lib/handle');
  const server = rustNet.createServer({ acceptPlacement: 'event-loop' }, (s) => {
    s.once('data', (d) => s.end(`${s.remoteAddress} ${d}`));
  });
  await new Promise((resolve) => server.listen({ port: 0, host: '127.0.0.1', proxyProtocol: { trusted: ['127.0.0.1'] } }, resolve));
  const placement = placementOf(server._handle);
  const reply = await new Promise((resolve) => {
    const c = net.connect(server.address().port, '127.0.0.1', () => c.write(Buffer.concat([v1(CLIENT, PUBLIC), Buffer.from('hi')])));
    let out = '';
    c.on('data', (d) => { out += d; }).on('close', () => resolve(out));
  });
  await close(server);
  assert.strictEqual(placement, 'runtime');
  assert.strictEqual(reply, '203.0.113.7 hi');
});

test('bad proxyProtocol options throw as Node throws for bad option values', () => {
  const cases = [
    [true, 'ERR_INVALID_ARG_TYPE'],
    [{}, 'ERR_INVALID_ARG_TYPE'],
    [{ trusted: [] }, 'ERR_INVALID_ARG_TYPE'],
    [{ trusted: ['10.0.0.0/8'], untrusted: 'maybe' }, 'ERR_INVALID_ARG_VALUE'],
    [{ trusted: ['10.0.0.0/8'], missingHeader: 'sometimes' }, 'ERR_INVALID_ARG_VALUE'],
    [{ trusted: ['10.0.0.0/8'], timeout: 0 }, 'ERR_INVALID_ARG_VALUE'],
    [{ trusted: ['10.0.0.0/8'], maxHeaderLength: 10 }, 'ERR_INVALID_ARG_VALUE'],
    [{ trusted: ['10.0.0.0/33'] }, 'ERR_INVALID_ARG_VALUE'],
    [{ trusted: ['not an address'] }, 'ERR_INVALID_ARG_VALUE'],
  ];
  for (const [value, code] of cases) {
    assert.throws(() => rustNet.createServer({ proxyProtocol: value }), (err) => {
      assert.strictEqual(err.code, code, JSON.stringify(value));
      assert.ok(err instanceof TypeError);
      return true;
    });
  }
  // A rule that does not parse is named, with what is wrong with it.
  assert.throws(() => rustNet.createServer({ proxyProtocol: { trusted: ['10.0.0.1', '10.0.0.0/33'] } }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /^The property 'options\.proxyProtocol\.trusted' must list addresses or CIDR ranges \(10\.0\.0\.0\/33: invalid prefix length: "33"\)\. Received '10\.0\.0\.1, 10\.0\.0\.0\/33'$/,
  });
  assert.throws(() => rustNet.createServer({ proxyProtocol: { trusted: ['10.0.0.0/8'], maxHeaderLength: 65552 } }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /^The property 'options\.proxyProtocol\.maxHeaderLength' must be an integer from 232 to 65551\. Received 65552$/,
  });
});

test('one connection after another, each reusing the last one\'s descriptor, sees its own header', async () => {
  const { server, port } = await startServer({ trusted: ['127.0.0.1'] });
  const seen = [];
  for (let i = 1; i <= 20; i++) {
    const source = { address: `203.0.113.${i}`, port: 1000 + i };
    // Every other one has no PROXY address (LOCAL): it must not inherit the
    // previous connection's.
    const header = i % 2 ? v2({ source, destination: PUBLIC }) : v2({ command: 'LOCAL' });
    const reply = await exchange(port, [Buffer.concat([header, Buffer.from(String(i))])]);
    seen.push(`${reply.remote[0]} ${reply.data}`);
  }
  await close(server);
  assert.deepStrictEqual(seen, Array.from({ length: 20 }, (_, k) => {
    const i = k + 1;
    return `${i % 2 ? `203.0.113.${i}` : '127.0.0.1'} ${i}`;
  }));
});

// A server of `threadId`'s thread sharing its port across threads, with
// proxyProtocol: it answers what it saw, as startServer's do.
const SHARED_MEMBER = `
const { parentPort, workerData, threadId } = require('worker_threads');
const rn = require(${JSON.stringify(require('path').join(__dirname, '..'))});
const s = rn.createServer({ proxyProtocol: { trusted: ['127.0.0.1'] }, shareAcrossThreads: true }, (c) => {
  c.once('data', (d) => c.end(JSON.stringify({
    thread: threadId, remote: [c.remoteAddress, c.remotePort], data: String(d), header: rn.proxyHeader(c) !== null,
  })));
});
s.listen({ port: workerData.port, host: '127.0.0.1' }, () => parentPort.postMessage('listening'));
parentPort.on('message', () => s.close(() => parentPort.postMessage('closed')));
`;

test('proxyProtocol with shareAcrossThreads: the group reads each header, whichever thread serves it', async () => {
  const { Worker } = require('worker_threads');
  const { once } = require('events');
  const server = rustNet.createServer({ proxyProtocol: { trusted: ['127.0.0.1'] }, shareAcrossThreads: true }, (c) => {
    c.once('data', (d) => c.end(JSON.stringify({
      thread: 0, remote: [c.remoteAddress, c.remotePort], data: String(d), header: rustNet.proxyHeader(c) !== null,
    })));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const worker = new Worker(SHARED_MEMBER, { eval: true, workerData: { port } });
  await once(worker, 'message');
  const replies = [];
  for (let i = 1; i <= 20; i++) {
    const source = { address: `203.0.113.${i}`, port: 1000 + i };
    const header = i % 2 ? v1(source, PUBLIC) : v2({ source, destination: PUBLIC });
    replies.push(await exchange(port, [Buffer.concat([header, Buffer.from(`p${i}`)])]));
  }
  worker.postMessage('close');
  await once(worker, 'message');
  await worker.terminate();
  await close(server);
  assert.deepStrictEqual(replies.map((r) => [r.remote, r.data, r.header]),
                         Array.from({ length: 20 }, (_, k) => [[`203.0.113.${k + 1}`, 1001 + k], `p${k + 1}`, true]));
  // Dispatched to both threads (round-robin among idle members).
  assert.deepStrictEqual(new Set(replies.map((r) => r.thread)).size, 2);
});

test('the per-client limits and load-aware accepting still refuse shareAcrossThreads', () => {
  const server = rustNet.createServer({ shareAcrossThreads: true });
  assert.throws(() => server.listen({ port: 0, maxConnectionsPerAddress: 5 }), { code: 'ERR_INCOMPATIBLE_OPTION_PAIR' });
  assert.doesNotThrow(() => rustNet.createServer({ proxyProtocol: { trusted: ['127.0.0.1'] }, shareAcrossThreads: true }));
});
