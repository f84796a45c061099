'use strict';

// What rust-net serves with when its native binary does not load (no binary
// for this platform, an install without scripts, a failed build): node:net's
// own Server, so a program that imports rust-net still runs. Options that
// only rust-net implements are refused here with a clear error rather than
// silently dropped: a server asked to parse PROXY protocol headers that
// treated them as payload instead would be a security bug.
//
// `acceptPlacement` is a tuning hint only, so it is ignored.

const net = require('net');
const { TCPConstants } = require('./wraps');
const { OPTION_NAMES: SOCKET_OPTIONS } = require('./socket-options');

const NodeServer = net.Server;

// Options the running Node implements itself, found by asking Node: its
// Server keeps a valid `blockList` (Node 22.13+), and its TCP wraps know
// SO_REUSEPORT (Node 22.12+, `reusePort`).
const nodeHasBlockList = (() => {
  if (typeof net.BlockList !== 'function') return false;
  try {
    return new NodeServer({ blockList: new net.BlockList() }).blockList !== undefined;
  } catch {
    return false;
  }
})();
const nodeHasReusePort = TCPConstants.UV_TCP_REUSEPORT !== undefined;

// The per-client limits (lib/options.js PEER_OPTIONS) and load-aware
// accepting: decided in Rust only.
const RUST_ONLY_OPTIONS = ['maxConnectionsPerAddress', 'acceptRatePerAddress', 'perAddressIPv4Prefix',
                      'perAddressIPv6Prefix', 'pauseAcceptAfter', 'shedAbove'];

let missingReason = 'the native binary did not load';

function nativeMissing(option, where) {
  const err = new Error(
    `rust-net: the ${where} option \`${option}\` needs rust-net's native listener, which is ` +
    `not loaded (${missingReason}); node:net on Node ${process.version} has no such option, ` +
    'so rust-net refuses to run the server without it. Build or install the native binary ' +
    '(see the warning RUST_NET_NATIVE_MISSING), or remove the option.');
  err.code = 'ERR_RUST_NET_NATIVE_MISSING';
  return err;
}

function checkServerOptions(options) {
  if (options === null || typeof options !== 'object') return;
  if (options.proxyProtocol) throw nativeMissing('proxyProtocol', 'createServer()');
  if (options.shareAcrossThreads) throw nativeMissing('shareAcrossThreads', 'createServer()');
  for (const key of RUST_ONLY_OPTIONS) if (options[key] !== undefined) throw nativeMissing(key, 'createServer()');
  if (options.blockList != null && !nodeHasBlockList) throw nativeMissing('blockList', 'createServer()');
  checkSocketOptions(options, 'createServer()');
  if (options.handover) throw nativeMissing('handover', 'createServer()');
}

// Socket options (lib/socket-options.js) are set by the native listener.
function checkSocketOptions(options, where) {
  const given = SOCKET_OPTIONS.find((name) => options[name] !== undefined);
  if (given !== undefined) throw nativeMissing(given, where);
}

function checkListenOptions(options) {
  // listen(port), listen(path), listen(handle): nothing of rust-net's own.
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return;
  if (options.proxyProtocol) throw nativeMissing('proxyProtocol', 'listen()');
  if (options.shareAcrossThreads) throw nativeMissing('shareAcrossThreads', 'listen()');
  for (const key of RUST_ONLY_OPTIONS) if (options[key] !== undefined) throw nativeMissing(key, 'listen()');
  if (options.reusePort && !nodeHasReusePort) throw nativeMissing('reusePort', 'listen()');
  checkSocketOptions(options, 'listen()');
  if (options.systemd !== undefined && options.systemd !== false) throw nativeMissing('systemd', 'listen()');
  if (options.addresses !== undefined) throw nativeMissing('addresses', 'listen()');
  if (options.handover) throw nativeMissing('handover', 'listen()');
}

function Server(options, connectionListener) {
  if (!(this instanceof NodeServer)) return new Server(options, connectionListener);
  checkServerOptions(options);
  Reflect.apply(NodeServer, this, [options, connectionListener]);
}
Object.setPrototypeOf(Server.prototype, NodeServer.prototype);
Object.setPrototypeOf(Server, NodeServer);

Server.prototype.listen = function listen(...args) {
  checkListenOptions(args[0]);
  return Reflect.apply(NodeServer.prototype.listen, this, args);
};

// One address at most (the `addresses` option throws above).
Server.prototype.addresses = function addresses() {
  return this._handle ? [this.address()] : [];
};

function createServer(options, connectionListener) {
  return new Server(options, connectionListener);
}

// No server listens in Rust without the native listener.
function isRustServer() {
  return false;
}

// No PROXY header is ever read, and nothing is admitted in Rust.
function proxyHeader() {
  return null;
}

function admissionStats() {
  return null;
}

// Nor counts anything of its listening sockets.
function serverStats() {
  return null;
}

// Nor shares a socket across threads (the option throws above).
function threadShareStats() {
  return null;
}

function setMissingReason(reason) {
  missingReason = reason;
}

module.exports = {
  Server,
  admissionStats,
  createServer,
  isRustServer,
  proxyHeader,
  serverStats,
  setMissingReason,
  threadShareStats,
};
