'use strict';

// Hand-over of listening sockets to a successor process (docs/handover.md).
//
// A server that listens with `handover: '<path>'` (or every server under
// rust-net/register with RUST_NET_HANDOVER=<path>) takes part on both sides:
//
// - as the successor, at listen() (this file): it connects to the control
//   socket at <path>; if a process of the same user answers, it asks for the
//   socket listening on its own address and adopts it (the same kernel
//   accept queue), listens, takes over <path> for itself, and confirms.
//   With no one answering (no file, a stale file) it binds as usual.
// - as the old side (lib/handover-control.js): the process that owns <path>
//   answers, sends each socket asked for (SCM_RIGHTS) and keeps accepting on
//   it until the successor confirms; then that server stops accepting, emits
//   'handover' and closes as server.close() would.
//
// The successor's side is synchronous (a listen() sets up its handle at
// once), through blocking native calls each bounded by TIMEOUT_MS. Servers
// of every thread take part, each thread with its own conversation. A
// server shared across threads (shareAcrossThreads) joins its group when
// one listens on its address in this process already; the first takes the
// group's socket over and starts the group on it.

const fs = require('fs');
const native = require('./native');
const { handoverOption, shareAcrossThreads } = require('./options');
const control = require('./handover-control');

const ENV = 'RUST_NET_HANDOVER';
// How long the successor waits for each answer of the old process.
const TIMEOUT_MS = 5000;

const UV_EPERM = -1;
const UV_ENOENT = -2;
const UV_EAGAIN = -11;
const UV_EACCES = -13;
const UV_EMFILE = -24;
const UV_EPIPE = -32;
const UV_ENOTSOCK = -88;
const UV_ENOTCONN = -107;
const UV_ECONNRESET = -104;
const UV_ECONNREFUSED = -111;
const UV_EOF = -4095;

let envApplies = false;

// rust-net/register: RUST_NET_HANDOVER applies to every server.
function useEnvironment() {
  envApplies = true;
}

// The control socket path `server` takes part through, or null.
function pathOf(server) {
  if (control.isControlServer(server)) return null;
  const own = handoverOption(server);
  if (own === false) return null;
  if (typeof own === 'string') return own;
  if (!envApplies) return null;
  return process.env[ENV] || null;
}

function handoverError(code, message, props = {}) {
  const err = new Error(`rust-net hand-over: ${message}`);
  err.code = code;
  Object.assign(err, props);
  return err;
}

// This process's connection to the old process on each path is kept in
// Rust (src/handover/session.rs) while the old process answers, so that
// servers listening later (in another tick, or another thread) still reach
// it after this process owns the path.

function closeFd(fd) {
  native.closeFds([fd]);
}

// What openSession() returns when the old process vanished mid-way.
const LOST = -1;
const OPEN = 1;

// Opens the conversation with the old process at `path`: OPEN, null when
// there is none (no file, a stale file, this process), or LOST. Throws the
// hand-over errors a listen() reports.
function openSession(path) {
  if (native.handoverSessionExists(path)) return OPEN;
  if (control.ownsControl(path)) return null;
  const fd = native.handoverConnect(path, TIMEOUT_MS);
  if (fd === UV_ENOENT || fd === UV_ECONNREFUSED || fd === UV_ENOTSOCK) return null;
  if (fd === UV_EACCES || fd === UV_EPERM) {
    throw handoverError('ERR_RUST_NET_HANDOVER_FORBIDDEN',
                        `the control socket ${path} belongs to another user`, { path });
  }
  if (fd < 0) {
    throw handoverError('ERR_RUST_NET_HANDOVER_CONTROL', `cannot connect to the control socket ${path} (${
      require('util').getSystemErrorName(fd)})`, { path, errno: fd });
  }
  const peer = native.handoverPeer(fd);
  if (peer.code !== 0 || !peer.sameUser) {
    closeFd(fd);
    throw handoverError('ERR_RUST_NET_HANDOVER_FORBIDDEN',
                        `the control socket ${path} is served by uid ${peer.uid}, not this process's user`,
                        { path });
  }
  if (peer.pid === process.pid) {
    closeFd(fd);
    return null;
  }
  peers.set(path, peer.pid);
  let reply;
  try {
    reply = exchange(fd, { type: 'hello', pid: process.pid }, path);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  if (reply === null) {
    // The old process went away meanwhile (killed): nothing to take over,
    // though its sockets may still be closing.
    closeFd(fd);
    return LOST;
  }
  if (reply.fd >= 0) closeFd(reply.fd);
  if (reply.message?.type !== 'welcome') {
    closeFd(fd);
    throw refusedError(reply.message ?? { type: 'nothing' }, path);
  }
  // Another thread may have opened one meanwhile: that one is used.
  native.handoverSessionKeep(path, fd);
  return OPEN;
}

function refusedError(message, path) {
  if (message.type === 'refused' && message.reason === 'forbidden') {
    return handoverError('ERR_RUST_NET_HANDOVER_FORBIDDEN',
                         `the process at ${path} refused this process's user`, { path });
  }
  return handoverError('ERR_RUST_NET_HANDOVER_PROTOCOL',
                       `the process at ${path} answered ${message.type}${
                         message.reason ? ` (${message.reason})` : ''}`, { path });
}

// Sends `message` on connection `fd` (or, with fd null, on the process's
// conversation at `path`) and reads the answer: { message, fd },
// { emfile: true }, or null when the old process closed the connection (it
// exited). Throws on garbage, another protocol version or a timeout.
function exchange(fd, message, path) {
  let reply;
  if (fd === null) {
    reply = native.handoverSessionExchange(path, message, true);
    if (reply.code === UV_ENOTCONN) return null;
  } else {
    const sent = native.handoverSend(fd, message, -1);
    if (sent !== 0) return sendFailure(sent, path);
    reply = native.handoverReceive(fd);
  }
  if (reply === null) return null;
  if (reply.code === UV_EOF || reply.code === UV_ECONNRESET) return null;
  if (reply.code === UV_EMFILE) return { emfile: true, fd: -1 };
  if (reply.error != null) {
    throw handoverError('ERR_RUST_NET_HANDOVER_PROTOCOL',
                        `the control socket ${path} does not speak this protocol: ${reply.error}`, { path });
  }
  if (reply.code !== 0) {
    const timedOut = reply.code === UV_EAGAIN;
    throw handoverError(timedOut ? 'ERR_RUST_NET_HANDOVER_TIMEOUT' : 'ERR_RUST_NET_HANDOVER_CONTROL',
                        timedOut ? `no answer from the process at ${path} within ${TIMEOUT_MS} ms` :
                          `cannot read the control socket ${path}`, { path, errno: reply.code });
  }
  return reply;
}

// A failed write: null when the old process is gone; else throws.
function sendFailure(code, path) {
  if (code === UV_EPIPE || code === UV_ECONNRESET) return null;
  throw handoverError('ERR_RUST_NET_HANDOVER_CONTROL', `cannot write to the control socket ${path}`,
                      { path, errno: code });
}

function dropSession(path) {
  native.handoverSessionClose(path);
}

// The process at the other end of each path's last session.
const peers = new Map();

// A process that went away mid-conversation may be dying (killed): the
// kernel releases its descriptors one after the other, the control socket
// possibly before the listening ones, so a bind right now could find the
// address still in use. Waits (at most LOST_WAIT_MS) until `pid` is gone or
// a zombie without threads (Linux: /proc/<pid>/stat); returns at once for a
// process that is alive and not exiting (one that has handed everything
// over), and where there is no /proc.
const LOST_WAIT_MS = 2000;
const PF_EXITING = 0x4;
function waitGone(pid) {
  if (!pid) return;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + LOST_WAIT_MS;
  while (Date.now() < deadline) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      return;
    }
    // The fields after the command: state, ..., flags (7th), ...,
    // num_threads (18th). A zombie leader's other threads may still hold
    // the descriptors: gone means a zombie with no thread left but itself.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [state, flags, threads] = [fields[0], Number(fields[6]), Number(fields[17])];
    if (state === 'Z' || state === 'X') {
      if (threads <= 1) return;
    } else if ((flags & PF_EXITING) === 0) {
      return;
    }
    Atomics.wait(pause, 0, 0, 5);
  }
}

// Asks the old process at `path` for the socket matching `request` ({ ip,
// port } or { path: Buffer }). Returns null (nothing to take over: bind as
// usual), { fd, token, path } (an offered socket, which the caller owns),
// or { errno } (EMFILE); throws the errors listen() reports.
function take(path, request) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const opened = openSession(path);
    if (opened === null) return null;
    if (opened === LOST) {
      waitGone(peers.get(path));
      return null;
    }
    let reply;
    try {
      reply = exchange(null, { type: 'take', ...request }, path);
    } catch (err) {
      dropSession(path);
      throw err;
    }
    if (reply === null) {
      // A session the old process ended (it has handed everything over or
      // exited): ask afresh whoever owns the path now.
      dropSession(path);
      waitGone(peers.get(path));
      continue;
    }
    if (reply.emfile) {
      // The socket came but this process had no descriptor for it: the
      // connection is unusable, and closing it tells the old process.
      dropSession(path);
      return { errno: UV_EMFILE };
    }
    const { message } = reply;
    if (message.type === 'offer' && reply.fd >= 0) return { fd: reply.fd, token: message.token, path };
    if (reply.fd >= 0) closeFd(reply.fd);
    if (message.type === 'missing') return null;
    if (message.type === 'busy') {
      throw handoverError('ERR_RUST_NET_HANDOVER_BUSY',
                          `the socket is being handed over to process ${message.pid} already`,
                          { path, pid: message.pid });
    }
    dropSession(path);
    throw refusedError(message, path);
  }
  return null;
}

// Ends an offer: `listening` confirms it (the old server stops accepting),
// otherwise it is aborted (the old server keeps serving).
function settle(offer, listening) {
  const sent = native.handoverSessionExchange(offer.path,
                                              { type: listening ? 'confirm' : 'abort', token: offer.token }, false);
  if (sent.code !== 0) dropSession(offer.path);
}

// The file a shared pipe group removes when its last member closes (the
// group's own, see afterListen for an unshared one): none for an abstract
// name or TCP.
function pipeFileOf(request) {
  return request.path !== undefined && request.path[0] !== 0 ? request.path : null;
}

// What to ask the old process for, for a listen() on these arguments of
// setupListenHandle: [request, address, addressType] in the order Node
// would bind them.
function candidatesOf(address, port, addressType) {
  if (port === -1 && addressType === -1) return [[{ path: Buffer.from(String(address)) }, address, addressType]];
  if (typeof port !== 'number' || port <= 0) return [];
  if (address) return [[{ ip: address, port }, address, addressType]];
  // As Node binds: the unspecified IPv6 address, else IPv4's.
  return [[{ ip: '::', port }, '::', 6], [{ ip: '0.0.0.0', port }, '0.0.0.0', 4]];
}

// The successor's part of a listen() (lib/server.js setupListenHandle):
// null when `server` takes no part or there is nothing to take over (bind
// as usual); otherwise { handle, address, addressType, offer } with the
// handed-over socket, { errno } (a listen error), or { error } (a
// hand-over error to emit).
function takeForListen(server, address, port, addressType, fd) {
  const path = pathOf(server);
  if (path === null || typeof fd === 'number') return null;
  const share = shareAcrossThreads(server);
  try {
    for (const [request, chosenAddress, chosenType] of candidatesOf(address, port, addressType)) {
      // A group of this process listens there already: join it.
      if (share && native.shareHasGroup(request.ip ?? null, request.port ?? null, request.path ?? null)) return null;
      let offer;
      try {
        offer = take(path, request);
      } catch (err) {
        // An address the protocol cannot carry (a scoped IPv6 literal):
        // this server binds as usual.
        if (!err.code?.startsWith('ERR_RUST_NET_HANDOVER')) continue;
        throw err;
      }
      if (offer === null) continue;
      if (offer.errno !== undefined) return { errno: offer.errno };
      const shared = share ? { name: request.path ?? null, unlinkName: pipeFileOf(request) } : null;
      const handle = require('./handle').adoptHandedOver(offer.fd, shared);
      if (typeof handle === 'number') {
        settle(offer, false);
        return { errno: handle };
      }
      return { handle, address: chosenAddress, addressType: chosenType, offer };
    }
  } catch (err) {
    Object.assign(err, { syscall: 'listen', address, port: port === -1 ? undefined : port });
    return { error: err };
  }
  return null;
}

// The successor's part of binding one of the other addresses of a server
// on several (lib/addresses.js, after the first, on the first's port):
// null when there is nothing to take over there (bind as usual);
// otherwise { handle, offer } with the handed-over socket, { errno }, or
// { error } (a hand-over error: the listen() fails).
function takeAddress(server, ip, port) {
  const path = pathOf(server);
  if (path === null || typeof port !== 'number' || port <= 0) return null;
  let offer;
  try {
    offer = take(path, { ip, port });
  } catch (err) {
    if (!err.code?.startsWith('ERR_RUST_NET_HANDOVER')) return null;
    return { error: Object.assign(err, { syscall: 'listen', address: ip, port }) };
  }
  if (offer === null) return null;
  if (offer.errno !== undefined) return { errno: offer.errno };
  const handle = require('./handle').adoptHandedOver(offer.fd);
  if (typeof handle === 'number') {
    settle(offer, false);
    return { errno: handle };
  }
  return { handle, offer };
}

// After Node's set-up of a listen(): confirm or abort what was taken (the
// first address's `taken`, and `moreTaken` from takeAddress), and own the
// control socket for the next successor once listening. Only a listen()
// that succeeded as a whole confirms anything.
function afterListen(server, taken, moreTaken = []) {
  const path = pathOf(server);
  if (path === null) return;
  const handle = server._handle;
  const more = handle != null ? require('./handle').moreHandlesOf(handle) : [];
  const failed = handle == null || (taken?.offer !== undefined && handle !== taken.handle) ||
    !require('./server').isRustServer(server);
  for (const t of moreTaken) if (failed || !more.includes(t.handle)) settle(t.offer, false);
  if (failed) {
    if (taken?.offer !== undefined) settle(taken.offer, false);
    return;
  }
  // The path first, then the confirmations: a process that comes next asks
  // this one, which already listens. Each address of a server on several
  // is offered on its own, matched by its address.
  const group = control.register(server, path);
  for (const other of more) control.register(server, path, other, group);
  for (const t of moreTaken) settle(t.offer, true);
  if (taken?.offer === undefined) return;
  settle(taken.offer, true);
  if (taken.addressType === -1 && !shareAcrossThreads(server)) {
    // An adopted pipe: its file is this server's now, removed when it
    // closes as libuv removes the file of a pipe it bound — unless it is
    // handed over in turn.
    const file = String(taken.address);
    server.once('close', () => {
      if (control.wasHandedOver(server) || file.startsWith('\0')) return;
      try { fs.unlinkSync(file); } catch { /* gone already */ }
    });
  }
}

module.exports = {
  ENV,
  afterListen,
  pathOf,
  settle,
  take,
  takeAddress,
  takeForListen,
  useEnvironment,
};
