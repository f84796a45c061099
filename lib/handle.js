'use strict';

// Listening handles whose socket lives in Rust.
//
// Node's net.Server drives its listening socket through a libuv handle: a
// TCPWrap or PipeWrap with listen(backlog), close(), getsockname(), ref(),
// unref(), fd, fchmod() and an `onconnection(err, clientHandle)` callback
// that Node installs. rust-net gives Node a genuine TCPWrap/PipeWrap, opened
// on a duplicate of the Rust-owned listening socket and never polled by
// libuv, whose listen/close/ref/unref are redirected to the native Listener.
// Everything else — getsockname(), fd, fchmod(), async ids, `instanceof`,
// sending the server to another process over IPC — is Node's own.

const { Admission } = require('./admission');
const { PresetTCP, startDelivery } = require('./socket-options');
const { Listener } = require('./listener');
const { LoadEvents } = require('./overload');
const { bindPipe } = require('./pipe');
const { TCP, TCPConstants, Pipe, PipeConstants } = require('./wraps');

const kListener = Symbol('rust-net.listener');
const kClosed = Symbol('rust-net.closed');
const kClaimed = Symbol('rust-net.claimed');
const kPlacement = Symbol('rust-net.placement');
const kAdmission = Symbol('rust-net.admission');
// Which of Node's per-connection calls the listener's socket options answer
// (lib/socket-options.js), and the keep-alive delay they were set with.
const kPreset = Symbol('rust-net.preset');
const kPresetDelay = Symbol('rust-net.presetDelay');
// The handles of the server's other addresses (lib/addresses.js), closed,
// ref()'d and unref()'d with this one.
const kMore = Symbol('rust-net.more');
const kLoadEvents = Symbol('rust-net.loadEvents');
// A wrap over a SO_REUSEPORT socket bound here: its close drains the kernel
// queue first (closeDraining below). Then the server it belongs to, and how
// many of the drained connections its `_connections` still counts for them.
const kReusePort = Symbol('rust-net.reusePort');
const kDrainServer = Symbol('rust-net.drainServer');
const kReserved = Symbol('rust-net.reserved');
const kDraining = Symbol('rust-net.draining');
// Drain on close whatever the socket (drainAlways below), not only reusePort.
const kDrainAlways = Symbol('rust-net.drainAlways');
// Called when the handle closes (lib/handover-control.js withdraws it).
const kOnClose = Symbol('rust-net.onClose');

const UV_EINVAL = -22;
const UV_EEXIST = -17;

// Descriptors of the wraps over Rust-owned sockets (server._handle.fd). For
// node:net the loop watches a listening server's descriptor, so listen({ fd })
// on it fails with EEXIST (libuv's uv_tcp_open check); ours are never polled
// by libuv, so they are remembered here to fail the same way.
const wrapFds = new Set();
const DEFAULT_IPV4_ADDR = '0.0.0.0';
const DEFAULT_IPV6_ADDR = '::';

function isRustHandle(handle) {
  return handle != null && handle[kListener] !== undefined;
}

// Hands the waiting connections to Node's onconnection, one at a time, each
// wrapped in the stream wrap Node itself uses. Rust keeps owning every
// descriptor until it is claimed: the claim is stored right after open()
// succeeds, with no call in between, so even a worker terminated mid-batch
// leaves each descriptor either with its Node handle or with Rust (which
// closes it) — never both, never neither.
function onconnectionBatch(handle) {
  const listener = handle[kListener];
  // A closed server still delivers what its close drained (closeDraining).
  const draining = handle[kDraining] === true;
  const batch = listener.batch;
  const claimed = handle[kClaimed];
  const admission = handle[kAdmission];
  const isPipe = handle instanceof Pipe;
  const preset = handle[kPreset];
  let count;
  do {
    count = listener.take();
    handle[kLoadEvents]?.publish();
    admission?.startBatch();
    const error = batch[0];
    batch[0] = 0;
    // An accept error: Node emits it as 'error' (which throws without a
    // listener); the connections of this batch still come after it. A
    // closed server has no accept error to report (Node's has no socket).
    if (error !== 0 && !draining) {
      try {
        handle.onconnection(error);
      } catch (ex) {
        if (count > 0) process.nextTick(onconnectionBatch, handle);
        throw ex;
      }
    }
    for (let i = 1; i <= count; i++) {
      // Closed while this batch was being delivered (a 'connection' listener
      // called server.close()): Rust closes the rest, like a backlog, or
      // (reusePort) the close drained them, to be delivered after it.
      if (handle[kClosed] && !draining) return;
      let clientHandle;
      if (isPipe) clientHandle = new Pipe(PipeConstants.SOCKET);
      else if (preset === undefined) clientHandle = new TCP(TCPConstants.SOCKET);
      else clientHandle = new PresetTCP(TCPConstants.SOCKET);
      if (clientHandle.open(batch[i]) !== 0) {
        clientHandle.close();
        listener.release(i - 1);
        claimed[0] = i;
        if (draining) unreserve(handle, 1);
        continue;
      }
      claimed[0] = i;
      if (draining) unreserve(handle, 1);
      if (admission !== undefined && !admission.admit(clientHandle, i - 1, batch[i])) {
        clientHandle.close();
        continue;
      }
      if (preset !== undefined) startDelivery(clientHandle, preset, handle[kPresetDelay]);
      try {
        handle.onconnection(0, clientHandle);
      } catch (ex) {
        if (preset !== undefined) startDelivery(null);
        // A listener threw: Node would report it and go on accepting, so the
        // rest of the batch is delivered once the exception has been handled.
        if (i < count || count === batch.length - 1) {
          process.nextTick(draining ? deliverDrained : onconnectionBatch, handle);
        }
        throw ex;
      }
      if (preset !== undefined) startDelivery(null);
    }
    // A full array: more may be queued behind it.
  } while (count === batch.length - 1 && (draining || !handle[kClosed]));
}

// The server's `_connections` counts the drained connections not yet
// delivered, so that Node's close() does not emit 'close' before they are:
// each delivery (Node's onconnection counts it again) takes one off.
function unreserve(handle, count) {
  const n = Math.min(count, handle[kReserved] ?? 0);
  if (n <= 0) return;
  handle[kReserved] -= n;
  handle[kDrainServer]._connections -= n;
}

// Delivers, after server.close() has returned, the connections that a
// reusePort server's close took from its kernel queue, each as a
// 'connection' as if it had been accepted just before the close; then
// frees the listener, and lets the server emit 'close' if nothing else
// is open (else the last connection's end does, as in Node).
function deliverDrained(handle) {
  onconnectionBatch(handle);
  handle[kDraining] = false;
  const server = handle[kDrainServer];
  unreserve(handle, handle[kReserved]);
  handle[kAdmission]?.close();
  handle[kListener].close();
  if (typeof server._emitCloseIfDrained === 'function') server._emitCloseIfDrained();
}

// close() of a wrap over a SO_REUSEPORT socket bound here: on a kernel that
// would reset the connections waiting in its accept queue when it closes
// (net.ipv4.tcp_migrate_req unset, or not Linux), Rust takes them all and
// closes the socket at once (with tcp_migrate_req it only closes, and the
// kernel moves them to another member); they, and any the runtime placement
// had accepted but not delivered yet, reach the server as 'connection's on
// the next tick. The wrap's own duplicate of the socket is closed first, so
// that Rust's close is the socket's last and follows its last accept4.
// Returns whether it did (else the listener is closed as usual).
function closeDraining(handle) {
  const server = handle[kDrainServer];
  if (server === undefined) return false;
  const waiting = handle[kListener].closeDraining(handle[kDrainAlways] === true);
  if (waiting < 0) return false;
  if (waiting === 0) {
    handle[kAdmission]?.close();
    handle[kListener].close();
    return true;
  }
  handle[kReserved] = waiting;
  handle[kDraining] = true;
  server._connections += waiting;
  process.nextTick(deliverDrained, handle);
  return true;
}

// Applies `options` (lib/options.js admissionOptions) to a Rust handle
// before it listens; `syncBlockList`: keep Rust's copy of the blockList.
function configureAdmission(handle, server, options, checkInJs, syncBlockList = true) {
  if (!isRustHandle(handle) || (options === null && !checkInJs)) return;
  handle[kAdmission] = new Admission(server, handle[kListener], options, checkInJs, syncBlockList);
}

// Sets load-aware accepting (lib/options.js overloadOptions, or null for
// none) on a Rust handle before it listens, and the overflow reports every
// Rust handle publishes.
function configureOverload(handle, server, options) {
  if (!isRustHandle(handle)) return;
  if (options !== null) handle[kListener].configureOverload(options);
  handle[kLoadEvents] = new LoadEvents(server, handle[kListener], options !== null);
}

// Connections counted by what admission did with them.
function admissionCounts(handle) {
  return isRustHandle(handle) ? handle[kListener].admissionCounts() : null;
}

// What a listening Rust handle's accept loop counted (serverStats()), or
// null for any other handle.
function statsOf(handle) {
  return isRustHandle(handle) && !handle[kClosed] ? handle[kListener].stats() : null;
}

// The methods installed on a wrap that Rust listens for. Each keeps the
// wrap's own state (ref count, closed) in step with the native Listener.
function listen(backlog) {
  if (this[kClosed]) return UV_EINVAL;
  const listener = this[kListener];
  // Node's wraps read the backlog with ToInt32 ('x' → 0, 1.5 → 1).
  const err = listener.listen(backlog | 0, () => onconnectionBatch(this), this[kPlacement]);
  if (err === 0 && this[kClaimed] === undefined) this[kClaimed] = listener.claimed;
  return err;
}

function close(callback) {
  if (!this[kClosed] && this[kDrainServer] !== undefined) {
    this[kClosed] = true;
    this[kOnClose]?.();
    wrapFds.delete(this.fd);
    const result = Object.getPrototypeOf(this).close.call(this, callback);
    if (!closeDraining(this)) {
      this[kAdmission]?.close();
      this[kListener].close();
    }
    for (const more of this[kMore] ?? []) more.close();
    return result;
  }
  if (!this[kClosed]) {
    this[kClosed] = true;
    this[kOnClose]?.();
    wrapFds.delete(this.fd);
    this[kAdmission]?.close();
    this[kListener].close();
    for (const more of this[kMore] ?? []) more.close();
  }
  return Object.getPrototypeOf(this).close.call(this, callback);
}

function ref() {
  if (!this[kClosed]) this[kListener].ref();
  for (const more of this[kMore] ?? []) more.ref();
  return Object.getPrototypeOf(this).ref.call(this);
}

function unref() {
  if (!this[kClosed]) this[kListener].unref();
  for (const more of this[kMore] ?? []) more.unref();
  return Object.getPrototypeOf(this).unref.call(this);
}

// Attaches the listening handles of a server's other addresses to its
// handle; moreHandlesOf() gives them back (an empty list for any other).
function attachMoreHandles(handle, handles) {
  handle[kMore] = handles;
}

function moreHandlesOf(handle) {
  return isRustHandle(handle) ? handle[kMore] ?? [] : [];
}

function attachListener(wrap, listener) {
  wrap[kListener] = listener;
  wrap[kPlacement] = 'auto';
  wrap[kClosed] = false;
  wrap.listen = listen;
  wrap.close = close;
  wrap.ref = ref;
  wrap.unref = unref;
  return wrap;
}

// A fresh TCPWrap/PipeWrap over a duplicate of the listener's socket.
function wrapListener(listener) {
  const wrap = listener.kind === 'pipe' ?
    new Pipe(PipeConstants.SERVER) : new TCP(TCPConstants.SERVER);
  const fd = Listener.dup(listener.fd);
  const err = fd < 0 ? fd : wrap.open(fd);
  if (err) {
    if (fd >= 0) Listener.closeFds([fd]);
    wrap.close();
    listener.close();
    return err;
  }
  wrapFds.add(fd);
  return attachListener(wrap, listener);
}

// A TCPWrap or PipeWrap handed to listen() (or received over IPC, or from a
// cluster primary) keeps its descriptor; Rust listens on a duplicate of it,
// so closing the server closes both, as Node closes the handle it was given.
function takeOverHandle(wrap) {
  if (isRustHandle(wrap) || !(wrap instanceof TCP || wrap instanceof Pipe)) return;
  const fd = wrap.fd;
  if (typeof fd !== 'number' || fd < 0) return;
  const dup = Listener.dup(fd);
  if (dup < 0) return;
  const listener = new Listener();
  if (listener.open(dup)) {
    listener.close();
    Listener.closeFds([dup]);
    return;
  }
  attachListener(wrap, listener);
}

// A handle over a listening socket handed over by another process
// (lib/handover.js), or a libuv error number; `fd` is closed on error.
// `shared`: { name, unlinkName } to start a group shared across threads on
// it (name: a pipe's, else null), which this process's servers of other
// threads then join.
function adoptHandedOver(fd, shared = null) {
  const listener = new Listener();
  const err = shared === null ? listener.open(fd) : listener.shareAdopt(fd, shared.name, shared.unlinkName);
  if (err) {
    listener.close();
    Listener.closeFds([fd]);
    return err;
  }
  return wrapListener(listener);
}

// A successor process listens on this handle's socket now: accepting stops
// for good, and what was accepted already goes to the server before it
// closes (lib/handover.js).
function stopForHandover(handle) {
  if (!isRustHandle(handle) || handle[kClosed]) return;
  handle[kListener].stopAccepting();
  onconnectionBatch(handle);
}

// Calls `fn` once when a Rust handle closes (not for other handles).
function onClose(handle, fn) {
  if (isRustHandle(handle) && !handle[kClosed]) handle[kOnClose] = fn;
}

// What Node's setupListenHandle meets when our bind failed: Node reports a
// failed bind exactly as a failed listen (a UVExceptionWithHostPort with
// syscall 'listen', emitted on the next tick), so it surfaces from listen().
class BindErrorHandle {
  constructor(err) {
    this.err = err;
    this.onconnection = null;
  }

  listen() {
    return this.err;
  }

  close() {}
}

// Mirrors lib/net.js createServerHandle: returns a listening-ready handle, or
// a libuv error number. `share` (shareAcrossThreads) binds through the group
// of this process's servers sharing the address, joining it if it exists;
// `reusePort` asks for SO_REUSEPORT where the running Node cannot
// (lib/options.js).
function createServerHandle(address, port, addressType, fd, flags, bindOptions = {}) {
  const { share = false, reusePort: reusePortRequested = false, socketOptions = null } = bindOptions;
  // Node's createHandle() rejects these before open(), as EINVAL.
  if (typeof fd === 'number' && fd >= 0 && (!Number.isInteger(fd) || fd > 0x7fffffff)) return UV_EINVAL;
  const listener = new Listener();
  let err;
  // Node's noDelay/keepAlive are preset only on a socket bound here with
  // them (not on a descriptor or path given to listen()).
  let preset = null;
  let reusePortBound = false;
  if (typeof fd === 'number' && fd >= 0) {
    err = wrapFds.has(fd) ? UV_EEXIST : listener.open(fd);
  } else if (port === -1 && addressType === -1) {
    err = bindPipe(listener, String(address), share);
  } else {
    // Node 22.12+ adds UV_TCP_REUSEPORT (`reusePort`); older Nodes never
    // set it, so passing their flags through behaves as each version does.
    // rust-net gives older Nodes `reusePort` too (lib/options.js).
    const reusePort = reusePortRequested || (flags & (TCPConstants.UV_TCP_REUSEPORT ?? 0)) !== 0;
    const spec = {
      address: address || DEFAULT_IPV6_ADDR,
      port,
      ipv6: !address || addressType === 6,
      ipv6Only: (!address || addressType === 6) && (flags & TCPConstants.UV_TCP_IPV6ONLY) !== 0,
      reusePort,
      socketOptions: socketOptions?.spec,
    };
    err = listener.bindTcp(spec, share);
    reusePortBound = reusePort;
    if (socketOptions !== null && socketOptions.preset !== 0) preset = socketOptions;
    if (err) {
      const option = listener.failedOption;
      if (option != null) {
        listener.close();
        return new SocketOptionFailure(err, option);
      }
      if (!address) {
        listener.close();
        return createServerHandle(DEFAULT_IPV4_ADDR, port, 4, undefined, flags, bindOptions);
      }
    }
  }
  if (err) {
    listener.close();
    return err;
  }
  const wrap = wrapListener(listener);
  if (typeof wrap !== 'number' && reusePortBound && !share) wrap[kReusePort] = true;
  if (typeof wrap !== 'number' && preset !== null) {
    wrap[kPreset] = preset.preset;
    wrap[kPresetDelay] = preset.keepAliveDelay;
  }
  return wrap;
}

// A bind that failed because the kernel refused one of rust-net's socket
// options: reported with syscall 'setsockopt' (lib/server.js), never
// retried on another address.
class SocketOptionFailure {
  constructor(err, option) {
    this.err = err;
    this.option = option;
  }
}

// Tells a wrap over a SO_REUSEPORT socket bound here which server it
// listens for, so that its close drains its queue into that server
// (closeDraining); other handles are left alone.
function drainOnClose(handle, server) {
  if (isRustHandle(handle) && handle[kReusePort] === true) handle[kDrainServer] = server;
}

// Makes the close of a Rust handle take the connections waiting in its
// kernel queue first, whatever its socket: an address of a server on
// several addresses that the successor did not take (lib/handover-control.js).
function drainAlways(handle, server) {
  if (!isRustHandle(handle)) return;
  handle[kDrainServer] = server;
  handle[kDrainAlways] = true;
}

// Where a Rust handle will accept ('auto', 'runtime' or 'event-loop'), set
// before it listens; other handles are left alone.
function setPlacement(handle, placement) {
  if (isRustHandle(handle)) handle[kPlacement] = placement;
}

// Where a listening Rust handle accepts, or null for any other handle.
function placementOf(handle) {
  return isRustHandle(handle) ? handle[kListener].placement : null;
}

// The claim Int32Array of a Rust handle shared across threads, whose other
// elements carry the load its server publishes (lib/share.js); else null.
function shareLoadOf(handle) {
  if (!isRustHandle(handle)) return null;
  const claimed = handle[kListener].claimed;
  return claimed.length > 1 ? claimed : null;
}

// The counts of the group a Rust handle shares, or null.
function shareStatsOf(handle) {
  return isRustHandle(handle) && !handle[kClosed] ? handle[kListener].shareStats : null;
}

module.exports = {
  BindErrorHandle,
  attachMoreHandles,
  moreHandlesOf,
  onClose,
  SocketOptionFailure,
  adoptHandedOver,
  admissionCounts,
  configureAdmission,
  configureOverload,
  DEFAULT_IPV4_ADDR,
  DEFAULT_IPV6_ADDR,
  createServerHandle,
  drainAlways,
  drainOnClose,
  placementOf,
  setPlacement,
  shareLoadOf,
  shareStatsOf,
  statsOf,
  stopForHandover,
  takeOverHandle,
};
