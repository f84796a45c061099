'use strict';

// rust-net: node:net with its listening sockets in Rust.
//
// The module is a drop-in for `require('net')`: it has everything node:net
// exports on the running Node (connect, createConnection, Socket, isIP,
// BlockList, SocketAddress, ...; Node's own functions and classes), with
// `Server` and `createServer` replaced by rust-net's. It adds:
//
// - `isRustServer(server)`: true while `server` listens on a socket that
//   rust-net's accept loop owns;
// - `proxyHeader(socket)`: what the PROXY protocol header of a connection
//   said (servers with `proxyProtocol`), or null;
// - `admissionStats(server)`: the connections admission counted, by what it
//   did with them (proxied, refused by reason), or null;
// - `serverStats(server)`: what a server's listening socket has seen —
//   its kernel accept queue, connections accepted and refused by code,
//   accept errors (docs/overload.md), or null;
// - `threadShareStats(server)`: how a server listening with
//   `shareAcrossThreads` shares its connections with the servers of other
//   threads (null for any other server; docs/threads.md);
// - `native`: true when the native listener loaded. When it did not (no
//   binary for this platform, an install without scripts), rust-net serves
//   through node:net, says so once (warning RUST_NET_NATIVE_MISSING), and
//   refuses options only it implements (ERR_RUST_NET_NATIVE_MISSING).
//   RUST_NET_REQUIRE_NATIVE=1 makes the missing binary an error instead.

const net = require('net');

function nativeRequired() {
  const value = process.env.RUST_NET_REQUIRE_NATIVE;
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

let impl;
let native;
try {
  impl = require('./lib/server');
  native = true;
} catch (err) {
  if (err?.code !== 'ERR_RUST_NET_NATIVE_MISSING') throw err;
  if (nativeRequired()) {
    err.message += '\nRUST_NET_REQUIRE_NATIVE is set, so rust-net does not fall back to node:net.';
    throw err;
  }
  impl = require('./lib/fallback');
  native = false;
  impl.setMissingReason(err.reason);
  process.emitWarning(
    `${err.message}\nServers made with rust-net run on node:net until then ` +
    '(set RUST_NET_REQUIRE_NATIVE=1 to make this an error).',
    { code: 'RUST_NET_NATIVE_MISSING' });
}

const rustNet = {};
// node:net's exports as the running Node has them, lazy getters included.
for (const key of Reflect.ownKeys(net)) {
  Object.defineProperty(rustNet, key, Object.getOwnPropertyDescriptor(net, key));
}
rustNet.Server = impl.Server;
rustNet.createServer = impl.createServer;
rustNet.isRustServer = impl.isRustServer;
rustNet.proxyHeader = impl.proxyHeader;
rustNet.admissionStats = impl.admissionStats;
rustNet.threadShareStats = impl.threadShareStats;
rustNet.serverStats = impl.serverStats;
rustNet.native = native;

module.exports = rustNet;
