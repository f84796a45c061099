'use strict';

// blockList: Node 22.13's createServer({ blockList }) on every supported
// Node, decided in Rust: a blocked peer is closed before JavaScript wakes,
// with no 'connection' and no 'drop' — except that, as in Node, a server at
// maxConnections drops a connection before looking at the block list.

const assert = require('assert');
const net = require('net');
const { test, describeError } = require('./helpers/oracle');
const { nodeHasBlockList } = require('../lib/options');
const rustNet = require('..');

// The implementations that have the option on this Node.
const withBlockList = [['rust-net', rustNet], ...(nodeHasBlockList ? [['node:net', net]] : [])];

function connectFrom(port, localAddress, payload = 'hi') {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1', localAddress });
    let data = '';
    c.on('connect', () => c.write(payload));
    c.on('data', (d) => { data += d; });
    c.on('error', () => {});
    c.on('close', () => resolve(data));
  });
}

async function scenario(impl, { maxConnections, hold = false } = {}) {
  const blockList = new net.BlockList();
  blockList.addAddress('127.0.0.2');
  const events = [];
  const held = [];
  const server = impl.createServer({ blockList }, (socket) => {
    events.push(['connection', socket.remoteAddress]);
    socket.resume();
    if (hold) held.push(socket);
    else socket.end('served');
  });
  if (maxConnections !== undefined) server.maxConnections = maxConnections;
  server.on('drop', (data) => events.push(['drop', data?.remoteAddress]));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const replies = [];
  if (hold) {
    // Fill the server up to maxConnections with an allowed peer first.
    const c = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.3' });
    await new Promise((resolve) => server.once('connection', resolve));
    replies.push(await connectFrom(port, '127.0.0.2'));
    c.destroy();
  } else {
    replies.push(await connectFrom(port, '127.0.0.2'));
    replies.push(await connectFrom(port, '127.0.0.3'));
    blockList.addAddress('127.0.0.3'); // changed after listen()
    replies.push(await connectFrom(port, '127.0.0.3'));
  }
  for (const s of held) s.destroy();
  const stats = impl === rustNet ? rustNet.admissionStats(server) : undefined;
  await new Promise((resolve) => server.close(resolve));
  return { events, replies, stats };
}

test('a blocked peer is closed with no connection and no drop; the list may change after listen()', async () => {
  for (const [name, impl] of withBlockList) {
    const r = await scenario(impl);
    assert.deepStrictEqual(r.events, [['connection', '127.0.0.3']], name);
    assert.deepStrictEqual(r.replies, ['', 'served', ''], name);
    if (name === 'rust-net') assert.strictEqual(r.stats.ERR_PEER_BLOCKED, 2);
  }
});

test('a server at maxConnections drops a blocked peer first, as Node 22.13', async () => {
  for (const [name, impl] of withBlockList) {
    const r = await scenario(impl, { maxConnections: 1, hold: true });
    assert.deepStrictEqual(r.events, [['connection', '127.0.0.3'], ['drop', '127.0.0.2']], name);
  }
});

test("a blockList that is not a BlockList throws Node 22.13's error on every Node", () => {
  for (const bad of ['10.0.0.1', 1, {}, [], true]) {
    let rust;
    try {
      rustNet.createServer({ blockList: bad });
    } catch (err) {
      rust = describeError(err);
    }
    assert.strictEqual(rust?.code, 'ERR_INVALID_ARG_TYPE', String(bad));
    assert.match(rust.message, /^The "options\.blockList" property must be an net\.BlockList\. Received /);
    if (nodeHasBlockList) {
      let node;
      try {
        net.createServer({ blockList: bad });
      } catch (err) {
        node = describeError(err);
      }
      assert.deepStrictEqual(rust, node);
    }
  }
});
