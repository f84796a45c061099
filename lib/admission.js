'use strict';

// Admission, JavaScript's side. Rust decides which connections get in
// (blockList, PROXY protocol, per-client limits: src/admission/); what is
// left for JavaScript:
// - the addresses a PROXY header gave, made the client handle's own, and
//   proxyHeader(socket);
// - 'connectionRejected' for the refusals Rust reports;
// - on Node < 22.13, which has no blockList check of its own, that check in
//   Node 22.13's place and order, where Rust cannot decide it;
// - the Rust copy of server.blockList's rules, kept in step with it;
// - telling Rust when a connection the per-client limits count closes.

const net = require('net');
const { watchProperty } = require('./util');

const kBlockSync = Symbol('rust-net.blockSync');

// What a PROXY header said, by the client handle it came with.
const proxyHeaders = new WeakMap();

// Makes a client handle report the addresses a PROXY header gave, wherever
// Node asks for them: net.Socket's remoteAddress/localAddress, http, and
// TLS sockets (whose wrap forwards getpeername to this handle). LOCAL and
// UNKNOWN headers leave the real addresses.
function applyProxyHeader(clientHandle, header) {
  proxyHeaders.set(clientHandle, header);
  const { source, destination } = header;
  if (source) clientHandle.getpeername = reportAddress(source);
  if (destination) clientHandle.getsockname = reportAddress(destination);
}

// A getpeername/getsockname that reports `endpoint`, as the wraps' do.
function reportAddress(endpoint) {
  return (out) => {
    out.address = endpoint.address;
    out.port = endpoint.port;
    out.family = endpoint.family;
    return 0;
  };
}

// The PROXY header a socket (net, TLS, or an http request's) came with, or
// null.
function proxyHeader(socket) {
  for (let s = socket, depth = 0; s != null && depth < 4; depth++) {
    const handle = s._handle;
    const header = handle && (proxyHeaders.get(handle) ?? proxyHeaders.get(handle._parent));
    if (header) return header;
    s = s._parent ?? s._parentWrap ?? s.socket;
  }
  return null;
}

// Node 22.13's blockList check, for the Nodes before it: a server at
// maxConnections drops the connection first (which Node's onconnection then
// does), so only a connection it would take is checked.
function blockedInJs(server, clientHandle) {
  const { blockList } = server;
  if (!blockList || (server.maxConnections != null && server._connections >= server.maxConnections)) return false;
  const peer = {};
  clientHandle.getpeername?.(peer);
  const type = net.isIP(peer.address ?? '');
  return type !== 0 && blockList.check(peer.address, `ipv${type}`);
}

// BlockLists rust-net mirrors into Rust, with the listeners that use them.
const watchedBlockLists = new WeakMap();

// Keeps the Rust copy of `server.blockList`'s rules in step with it: after
// each change, and off while maxConnections is set (Node checks that first,
// which only JavaScript can see). Returns the function that stops it.
function watchBlockList(server, listener) {
  const blockList = server.blockList;
  const sync = () => listener.setBlockRules(server.maxConnections == null ? blockList.rules : undefined);
  let users = watchedBlockLists.get(blockList);
  if (users === undefined) {
    users = new Set();
    watchedBlockLists.set(blockList, users);
    for (const method of ['addAddress', 'addRange', 'addSubnet']) {
      const original = blockList[method];
      blockList[method] = function(...args) {
        const result = Reflect.apply(original, this, args);
        for (const update of users) update();
        return result;
      };
    }
  }
  users.add(sync);
  // One accessor per server, whatever number of listen()s: it syncs the
  // listener of the current one.
  if (server[kBlockSync] === undefined) watchProperty(server, 'maxConnections', () => server[kBlockSync]());
  server[kBlockSync] = sync;
  return () => users.delete(sync);
}

// Makes the client handle tell Rust when it closes, so that its client's
// open count (maxConnectionsPerAddress) goes down: from close() itself, which
// every way a connection ends goes through (destroy, Node's maxConnections
// drop, a refusal here), while the descriptor is still open — its number
// cannot have been reused yet.
function countClose(clientHandle, listener, fd) {
  clientHandle.close = function close(...args) {
    delete this.close;
    listener.peerClosed(fd);
    return Reflect.apply(this.close, this, args);
  };
}

// One listening handle's admission: configured before it listens, consulted
// for each batch of connections Rust hands over.
class Admission {
  // `options`: lib/options.js admissionOptions(), or null for none in Rust;
  // `checkInJs`: whether this Node needs the blockList checked here;
  // `syncBlockList`: whether Rust keeps a copy of it (not for a server
  // sharing its socket across threads: its group leaves it to JavaScript).
  constructor(server, listener, options, checkInJs, syncBlockList = true) {
    if (options !== null) listener.configureAdmission(options);
    this.server = server;
    this.listener = listener;
    this.proxy = options?.proxy != null;
    this.report = options?.report === true;
    // Per-client limits count each connection open until its handle closes.
    this.countsCloses = options?.peers != null;
    this.checkInJs = checkInJs;
    this.proxied = null;
    this.unwatch = syncBlockList && server.blockList && typeof server.blockList.rules !== 'undefined' ?
      watchBlockList(server, listener) : null;
  }

  // Before a batch's connections: fetches what their PROXY headers said,
  // and reports the connections Rust refused since the last batch.
  startBatch() {
    this.proxied = this.proxy ? this.listener.takeProxied() : null;
    if (this.report) {
      for (const rejection of this.listener.takeRejections()) this.server.emit('connectionRejected', rejection);
    }
  }

  // Whether connection `index` (0-based in the batch), opened as
  // `clientHandle` on descriptor `fd`, is let in; its PROXY header's
  // addresses become its own.
  admit(clientHandle, index, fd) {
    if (this.countsCloses) countClose(clientHandle, this.listener, fd);
    const header = this.proxied?.[index];
    if (header) applyProxyHeader(clientHandle, header);
    return !(this.checkInJs && blockedInJs(this.server, clientHandle));
  }

  close() {
    this.unwatch?.();
  }
}

module.exports = { Admission, proxyHeader };
