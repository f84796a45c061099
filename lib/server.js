'use strict';

// rust-net's Server: Node's own net.Server, with the listening socket
// created, bound and accepted on in Rust.
//
// Node's Server funnels every way of starting to listen through one method,
// `_listen2` (setupListenHandle in lib/net.js), which creates a TCP or Pipe
// handle when the server has none yet and then drives it. We override exactly
// that creation step and hand Node's code a handle backed by the native
// Listener. Everything a program observes — argument validation and its
// errors, the DNS lookup for host names, 'listening' on the next tick,
// bind/listen errors, address(), close(), maxConnections and 'drop', cluster
// workers — is therefore Node's own behaviour, for the Node version running.

const net = require('net');
const {
  BindErrorHandle,
  DEFAULT_IPV4_ADDR,
  attachMoreHandles,
  moreHandlesOf,
  SocketOptionFailure,
  DEFAULT_IPV6_ADDR,
  admissionCounts,
  configureAdmission,
  configureOverload,
  createServerHandle,
  drainOnClose,
  setPlacement,
  takeOverHandle,
} = require('./handle');
const { proxyHeader } = require('./admission');
const {
  acceptPlacement,
  admissionOptions,
  applyListenOptions,
  applyServerOptions,
  nodeHasBlockList,
  overloadOptions,
  reusePortRequested,
  shareAcrossThreads,
  socketOptionsOf,
  sharedAdmissionOptions,
} = require('./options');
const { bindSocketOptions, socketOptionError } = require('./socket-options');
const { threadShareStats, trackLoad } = require('./share');
const { systemdListenArgs } = require('./systemd');
const { addressesListenArgs, listenOnMore, takeMoreAddresses } = require('./addresses');
const { serverStats } = require('./stats');
const { afterListen, takeAddress, takeForListen } = require('./handover');

function emitError(server, err) {
  server.emit('error', err);
}

const NodeServer = net.Server;
// Node's own setupListenHandle. rust-net/register installs rust-net's in its
// place on Node's prototype, and records Node's under this global symbol so
// that a second copy of rust-net in the process (two versions in
// node_modules) still reaches Node's, not the first copy's.
const kNodeListen2 = Symbol.for('rust-net.node-listen2');
const nodeSetupListenHandle = NodeServer.prototype._listen2[kNodeListen2] ??
  NodeServer.prototype._listen2;

// The listening wraps whose socket is rust-net's (see isRustServer).
const rustHandles = new WeakSet();

function Server(options, connectionListener) {
  // Classes built on node:net's Server before rust-net was registered (an
  // http.Server when http was loaded first) call this as their super
  // constructor: set them up in place, as node:net would — they keep
  // listening through Node's own _listen2.
  if (!(this instanceof NodeServer)) return new Server(options, connectionListener);
  if (typeof options === 'object' && options !== null) applyServerOptions(this, options);
  Reflect.apply(NodeServer, this, [options, connectionListener]);
}
Object.setPrototypeOf(Server.prototype, NodeServer.prototype);
Object.setPrototypeOf(Server, NodeServer);

// Node's listen(), which never passes its options object on to _listen2: the
// options rust-net adds to listen() are read here first. rust-net/register
// installs the same on Node's prototype; the global symbol keeps Node's own
// reachable from a second copy of rust-net, as for _listen2.
const kNodeListen = Symbol.for('rust-net.node-listen');
const nodeListen = NodeServer.prototype.listen[kNodeListen] ?? NodeServer.prototype.listen;
function listen(...args) {
  applyListenOptions(this, args[0]);
  // `systemd` becomes the passed socket's `fd` (lib/systemd.js).
  const systemdArgs = systemdListenArgs(args);
  // `addresses` becomes `host` (the first), the rest bound by _listen2.
  const addressesArgs = addressesListenArgs(this, systemdArgs ?? args, shareAcrossThreads(this));
  return Reflect.apply(nodeListen, this, addressesArgs ?? systemdArgs ?? args);
}
listen[kNodeListen] = nodeListen;
Server.prototype.listen = listen;

// Mirrors lib/net.js setupListenHandle's handle creation. A TCPWrap or
// PipeWrap that is already there (given to listen(), received over IPC, or
// sent by a cluster primary) is taken over so Rust accepts on it; any other
// handle (a cluster round-robin handle) is used as Node would use it.
function setupListenHandle(address, port, addressType, backlog, fd, flags) {
  let taken = null;
  const share = shareAcrossThreads(this);
  const bindOptions = {
    share,
    reusePort: reusePortRequested(this),
    socketOptions: bindSocketOptions(this, socketOptionsOf(this), !share),
  };
  if (this._handle) {
    const handle = this._handle;
    const { listen } = handle;
    takeOverHandle(handle);
    // takeOverHandle redirects listen() to Rust when it takes the socket.
    if (handle.listen !== listen) rustHandles.add(handle);
  } else {
    let rval = null;

    // Hand-over (lib/handover.js): the socket of a process this one
    // replaces, when there is one listening here.
    taken = takeForListen(this, address, port, addressType, fd);
    if (taken?.error) {
      process.nextTick(emitError, this, taken.error);
      return;
    }
    if (taken?.errno !== undefined) rval = taken.errno;
    if (taken?.handle) ({ handle: rval, address, addressType } = taken);

    // No address: try the unspecified IPv6 address, to see if IPv6 is there.
    if (rval === null && !address && typeof fd !== 'number') {
      rval = createServerHandle(DEFAULT_IPV6_ADDR, port, 6, fd, flags, bindOptions);
      if (typeof rval === 'number') {
        rval = null;
        address = DEFAULT_IPV4_ADDR;
        addressType = 4;
      } else {
        address = DEFAULT_IPV6_ADDR;
        addressType = 6;
      }
    }

    if (rval === null) rval = createServerHandle(address, port, addressType, fd, flags, bindOptions);
    if (rval instanceof SocketOptionFailure) {
      // As Node reports a failed bind (an error on the next tick, the server
      // not listening), with the system call that failed.
      const error = socketOptionError(rval.err, rval.option, address, port);
      process.nextTick(() => this.emit('error', error));
      return;
    }
    if (typeof rval === 'number') {
      this._handle = new BindErrorHandle(rval);
    } else {
      rustHandles.add(rval);
      this._handle = rval;
    }
  }
  setPlacement(this._handle, acceptPlacement(this));
  drainOnClose(this._handle, this);
  // A group shared across threads reads PROXY headers in Rust, and leaves
  // the blockList to JavaScript (and Node 22.13+'s own check).
  configureAdmission(this._handle, this,
                     bindOptions.share ? sharedAdmissionOptions(this) : admissionOptions(this),
                     !nodeHasBlockList && !!this.blockList, !bindOptions.share);
  configureOverload(this._handle, this, bindOptions.share ? null : overloadOptions(this));
  const result = Reflect.apply(nodeSetupListenHandle, this,
                               [address, port, addressType, backlog, fd, flags]);
  if (bindOptions.share) trackLoad(this);
  const more = takeMoreAddresses(this);
  // The other addresses' sockets taken from a process this one replaces.
  const moreTaken = [];
  if (more !== null && this._handle !== null && rustHandles.has(this._handle)) {
    const handles = listenOnMore(this, more, backlog, (moreAddress, boundPort) => {
      const adopted = takeAddress(this, moreAddress, boundPort);
      if (adopted?.error) return adopted.error;
      if (adopted?.errno !== undefined) return adopted.errno;
      if (adopted !== null) moreTaken.push(adopted);
      const handle = adopted?.handle ??
        createServerHandle(moreAddress, boundPort, net.isIP(moreAddress), undefined, flags, bindOptions);
      if (handle instanceof SocketOptionFailure) {
        return socketOptionError(handle.err, handle.option, moreAddress, boundPort);
      }
      if (typeof handle !== 'number') {
        setPlacement(handle, acceptPlacement(this));
        drainOnClose(handle, this);
        configureAdmission(handle, this, admissionOptions(this), !nodeHasBlockList && !!this.blockList);
        configureOverload(handle, this, overloadOptions(this));
      }
      return handle;
    });
    if (handles !== null) attachMoreHandles(this._handle, handles);
  }
  afterListen(this, taken, moreTaken);
  return result;
}
Server.prototype._listen2 = setupListenHandle;

setupListenHandle[kNodeListen2] = nodeSetupListenHandle;

// Every address the server listens on: address() first, then those of
// listen()'s `addresses` after the first (lib/addresses.js); [] when it is
// not listening.
function addresses() {
  if (!this._handle) return [];
  const list = [this.address()];
  for (const handle of moreHandlesOf(this._handle)) {
    const out = {};
    const err = handle.getsockname(out);
    if (err === 0) list.push(out);
  }
  return list;
}
Server.prototype.addresses = addresses;

function createServer(options, connectionListener) {
  return new Server(options, connectionListener);
}

// True while `server` listens on a socket that rust-net's accept loop owns:
// from the first listen() that reaches the handle set-up until close().
function isRustServer(server) {
  const handle = server?._handle;
  return handle != null && rustHandles.has(handle);
}

// What admission counted for `server` (see src/admission), or null.
function admissionStats(server) {
  return admissionCounts(server?._handle) ?? null;
}

module.exports = {
  Server,
  addresses,
  admissionStats,
  createServer,
  isRustServer,
  listen,
  proxyHeader,
  serverStats,
  setupListenHandle,
  threadShareStats,
};
