'use strict';

// Listening handles whose socket lives in Rust.
//
// Node's net.Server drives its listening socket through a small handle
// interface (TCPWrap / PipeWrap): listen(backlog), close(), getsockname(),
// ref()/unref(), fd, and an `onconnection(err, clientHandle)` callback it
// installs. These classes offer that interface over the native Listener, so
// Node's own Server code — argument handling, errors, events, cluster — runs
// unchanged on top of them.

const { Listener } = require('./native');
const { TCP, TCPConstants, Pipe, PipeConstants } = require('./wraps');

const kListener = Symbol('kListener');
const kClosed = Symbol('kClosed');
const kHasRef = Symbol('kHasRef');

const UV_EINVAL = -22;
const DEFAULT_IPV4_ADDR = '0.0.0.0';
const DEFAULT_IPV6_ADDR = '::';

// Hands one batch of accepted descriptors to Node's onconnection, one
// connection at a time, each wrapped in the stream wrap Node itself uses.
function onconnectionBatch(handle, err, fds) {
  if (err) handle.onconnection(err);
  for (let i = 0; i < fds.length; i++) {
    if (handle[kClosed]) {
      // Closed while this batch was being delivered (a 'connection' listener
      // called server.close()): the rest were never seen, like a backlog.
      Listener.closeFds(fds.slice(i));
      return;
    }
    const clientHandle = handle.createClientHandle();
    const openErr = clientHandle.open(fds[i]);
    if (openErr) {
      clientHandle.close();
      Listener.closeFds([fds[i]]);
      continue;
    }
    try {
      handle.onconnection(0, clientHandle);
    } catch (ex) {
      // A listener threw: Node would report it and go on accepting, so the
      // rest of the batch is delivered once the exception has been handled.
      const rest = fds.slice(i + 1);
      if (rest.length > 0) process.nextTick(onconnectionBatch, handle, 0, rest);
      throw ex;
    }
  }
}

class ServerHandle {
  constructor(listener) {
    this[kListener] = listener;
    this[kClosed] = false;
    this[kHasRef] = true;
    this.onconnection = null;
  }

  get fd() {
    return this[kListener].fd;
  }

  listen(backlog) {
    if (this[kClosed]) return UV_EINVAL;
    return this[kListener].listen(backlog, (err, fds) => {
      onconnectionBatch(this, err, fds);
    });
  }

  close(callback) {
    if (!this[kClosed]) {
      this[kClosed] = true;
      this[kListener].close();
    }
    if (typeof callback === 'function') setImmediate(callback);
  }

  ref() {
    this[kHasRef] = true;
    if (!this[kClosed]) this[kListener].ref();
  }

  unref() {
    this[kHasRef] = false;
    if (!this[kClosed]) this[kListener].unref();
  }

  hasRef() {
    return this[kHasRef] && !this[kClosed];
  }
}

class TCPServerHandle extends ServerHandle {
  getsockname(out) {
    const name = this[kListener].getsockname();
    if (typeof name === 'number') return name;
    out.address = name.address;
    out.family = name.family;
    out.port = name.port;
    return 0;
  }

  createClientHandle() {
    return new TCP(TCPConstants.SOCKET);
  }
}

// No getsockname(): Node's pipe servers report their path from address().
class PipeServerHandle extends ServerHandle {
  fchmod(mode) {
    return this[kListener].chmod((mode & PipeConstants.UV_READABLE) !== 0,
                                 (mode & PipeConstants.UV_WRITABLE) !== 0);
  }

  createClientHandle() {
    return new Pipe(PipeConstants.SOCKET);
  }
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

function wrapListener(listener) {
  return listener.kind === 'pipe' ?
    new PipeServerHandle(listener) : new TCPServerHandle(listener);
}

// Mirrors lib/net.js createServerHandle: returns a listening-ready handle, or
// a libuv error number.
function createServerHandle(address, port, addressType, fd, flags) {
  const listener = new Listener();
  let err;
  if (typeof fd === 'number' && fd >= 0) {
    // Node's createHandle() rejects these before open(), as EINVAL.
    if (!Number.isInteger(fd) || fd > 0x7fffffff) return UV_EINVAL;
    err = listener.open(fd);
  } else if (port === -1 && addressType === -1) {
    err = listener.bindPipe(String(address));
  } else if (!address) {
    err = listener.bindTcp(DEFAULT_IPV6_ADDR, port, true,
                           (flags & TCPConstants.UV_TCP_IPV6ONLY) !== 0);
    if (err) return createServerHandle(DEFAULT_IPV4_ADDR, port, 4);
  } else if (addressType === 6) {
    err = listener.bindTcp(address, port, true,
                           (flags & TCPConstants.UV_TCP_IPV6ONLY) !== 0);
  } else {
    err = listener.bindTcp(address, port, false, false);
  }
  if (err) return err;
  return wrapListener(listener);
}

module.exports = {
  BindErrorHandle,
  DEFAULT_IPV4_ADDR,
  DEFAULT_IPV6_ADDR,
  PipeServerHandle,
  ServerHandle,
  TCPServerHandle,
  createServerHandle,
};
