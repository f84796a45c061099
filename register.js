'use strict';

// rust-net/register: puts rust-net in place of node:net's server for the
// whole process, whatever was loaded before it.
//
//   node -r rust-net/register app.js          (CommonJS)
//   node --import rust-net/register app.mjs   (ES modules)
//   require('rust-net/register') / import 'rust-net/register'   (in the program,
//                                              before any server listens)
//
// Every server of the process that listens after this has run — net, http,
// https, tls, http2 (plain and secure), cluster and IPC servers, classes
// defined before this ran, modules loaded before or after it, in CommonJS or
// ES modules — goes through Node's net.Server.prototype._listen2, the one
// step where Node creates a listening handle. rust-net's replaces Node's on
// Node's own prototype, so every subclass inherits it. On top of that,
// `net.Server` and `net.createServer` become rust-net's (so `net.createServer()
// instanceof require('rust-net').Server` holds, and rust-net's servers are
// still `instanceof net.Server`), in ES modules' named exports of node:net too.
// Nothing else of node:net is touched; sockets and clients stay Node's own.
//
// What cannot listen in Rust is said with a warning of its own:
// - RUST_NET_REGISTER_LATE: servers that were already listening when this ran
//   (those Node lists as active handles: unref()'d ones are not listed);
// - RUST_NET_NOT_IN_RUST: a handle given to listen() that rust-net could not
//   take over (Node then listens on it itself);
// - RUST_NET_NATIVE_MISSING (from rust-net itself): no native binary, so no
//   server of the process listens in Rust.

const Module = require('module');
const net = require('net');
const rustNet = require('./index.js');

const { Server, createServer } = rustNet;
// Node's own net.Server: rust-net's Server (native or not) extends it.
const NodeServer = Object.getPrototypeOf(Server);
const kNodeListen2 = Symbol.for('rust-net.node-listen2');
// Marks the installed _listen2, so a second load (or a second copy of
// rust-net in node_modules) does not wrap it again.
const kRegistered = Symbol.for('rust-net.registered');

function describe(server) {
  const name = server.constructor?.name || 'Server';
  let address = null;
  try {
    address = server.address();
  } catch {
    // A closed handle: no address to give.
  }
  if (address && typeof address === 'object') return `${name} on ${address.address} port ${address.port}`;
  if (typeof address === 'string') return `${name} on ${address}`;
  return name;
}

function installListen2() {
  const { addresses, listen: rustListen, setupListenHandle } = require('./lib/server');
  const { TCP, Pipe } = require('./lib/wraps');
  const proto = NodeServer.prototype;
  if (proto._listen2?.[kRegistered]) return;

  // Servers already listening were set up by Node; rust-net cannot move them.
  const late = [];
  if (typeof process._getActiveHandles === 'function') {
    for (const handle of process._getActiveHandles()) {
      if (handle instanceof NodeServer && handle.listening && !rustNet.isRustServer(handle)) {
        late.push(describe(handle));
      }
    }
  }
  if (late.length > 0) {
    process.emitWarning(
      `rust-net/register ran after ${late.length === 1 ? 'a server was' : `${late.length} servers were`} ` +
      `already listening through node:net (${late.join('; ')}); ` +
      `${late.length === 1 ? 'it stays' : 'they stay'} there. Servers that listen from now on listen in Rust. ` +
      'Load rust-net/register first: node -r rust-net/register (CommonJS) or ' +
      'node --import rust-net/register (ES modules).',
      { code: 'RUST_NET_REGISTER_LATE' });
  }

  function listen2(address, port, addressType, backlog, fd, flags) {
    const result = Reflect.apply(setupListenHandle, this,
                                 [address, port, addressType, backlog, fd, flags]);
    const handle = this._handle;
    if ((handle instanceof TCP || handle instanceof Pipe) && !rustNet.isRustServer(this)) {
      process.emitWarning(
        `rust-net/register: ${describe(this)} listens through node:net: rust-net could not take ` +
        'over the handle given to listen() (it has no open socket rust-net can duplicate).',
        { code: 'RUST_NET_NOT_IN_RUST' });
    }
    return result;
  }
  listen2[kNodeListen2] = setupListenHandle[kNodeListen2];
  listen2[kRegistered] = true;
  // listen() of every server reads rust-net's listen() options
  // (proxyProtocol, shareAcrossThreads; reusePort on Nodes without it)
  // before Node's runs — http.Server, https.Server and express's
  // app.listen({ ... }) pass them through; rust-net's Server has it already.
  if (proto.listen !== rustListen) {
    Object.defineProperty(proto, 'listen', {
      ...Object.getOwnPropertyDescriptor(proto, 'listen'),
      value: rustListen,
    });
  }
  // addresses() (listen()'s `addresses`, docs/addresses.md) for every server.
  if (proto.addresses === undefined) {
    Object.defineProperty(proto, 'addresses', { value: addresses, writable: true, configurable: true });
  }
  // Node's property is a plain writable method; keep it one. rust-net's own
  // Server gets it too, so its servers are checked the same way.
  for (const target of [proto, Server.prototype]) {
    Object.defineProperty(target, '_listen2', {
      ...Object.getOwnPropertyDescriptor(target, '_listen2'),
      value: listen2,
    });
  }
}

// Once net.Server is rust-net's Server, `instanceof net.Server` must still
// hold for every server, as it does in Node: also for those of classes that
// extended Node's Server before this ran (http, https, tls and http2 when
// they were loaded first, as builtins imported by an ES module always are).
// Node's own code checks it too (child.send(server) in child_process).
// Subclasses of rust-net's Server keep the ordinary check.
function installHasInstance() {
  if (Object.hasOwn(Server, Symbol.hasInstance)) return;
  const ordinary = Function.prototype[Symbol.hasInstance];
  Object.defineProperty(Server, Symbol.hasInstance, {
    configurable: true,
    value: function hasInstance(value) {
      if (this === Server) return Reflect.apply(ordinary, NodeServer, [value]);
      return Reflect.apply(ordinary, this, [value]);
    },
  });
}

function register() {
  if (rustNet.native) {
    installListen2();
    // RUST_NET_HANDOVER=<path>: every server takes part in hand-overs
    // (docs/handover.md).
    require('./lib/handover').useEnvironment();
  }
  installHasInstance();
  if (net.Server !== Server || net.createServer !== createServer) {
    net.Server = Server;
    net.createServer = createServer;
    // Named exports of builtins seen by ES modules are snapshots until synced.
    Module.syncBuiltinESMExports();
  }
}

register();

module.exports = { Server, createServer };
