'use strict';

// The old side of a hand-over (docs/handover.md): the control socket a
// process owns at a path once a server of its listens with `handover`, and
// the conversation with each successor that connects to it. The successor's
// side is lib/handover.js; the bytes are src/handover/protocol.rs's.
//
// Each successor is an ordinary (unref'd) Unix-socket connection read on the
// event loop, so a process with nothing else to do still exits. A socket
// asked for is sent with SCM_RIGHTS and this process keeps accepting on it
// until the successor confirms that it listens; only then does the server
// stop accepting, emit 'handover' and close as server.close() would.
//
// Servers of every thread take part (src/handover/offers.rs): each
// registers its socket in a process-wide registry in Rust, which one thread
// per path consults while serving the control socket; a confirmation
// reaches each server on its own thread (all members of a group shared
// across threads: they listen on one socket).

const fs = require('fs');
const net = require('net');
const { isMainThread, threadId } = require('worker_threads');
const native = require('./native');
const { admissionOptions } = require('./options');

// How long the old side waits for a successor's first message.
const HELLO_TIMEOUT_MS = 5000;
const UV_EPIPE = -32;
const REFUSE_LINGER_MS = 1000;

const kControl = Symbol('rust-net.handover.control');
const kHandedOver = Symbol('rust-net.handover.done');

// The control sockets this thread serves:
// path → { path, server, ino, dev, offers: Map(token → offer), sessions: Set,
//          confirmed: [{ address, pid }] held back (settlePending) }
const controls = new Map();
// This thread's registered servers: registration id → { server, path }.
const registered = new Map();
// Each registered listening handle's registration id (a server on several
// addresses has one per address).
const registrationOf = new WeakMap();
// What the registry calls a thread with instead of a successor's pid.
const OWN_CONTROL = 0;
let nextToken = 1;

function warn(message, code = 'RUST_NET_HANDOVER') {
  process.emitWarning(`rust-net hand-over: ${message}`, { code });
}

// Whether the file at `path` is still `control`'s socket (a successor may
// have put its own there).
function ownsPath(control, path) {
  try {
    const st = fs.statSync(path);
    return st.ino === control.ino && st.dev === control.dev;
  } catch {
    return false;
  }
}

function unlinkIfOwn(control, path) {
  if (!ownsPath(control, path)) return;
  try { fs.unlinkSync(path); } catch { /* gone already */ }
}

function releaseControl(path) {
  const control = controls.get(path);
  if (control === undefined) return;
  controls.delete(path);
  unlinkIfOwn(control, path);
  for (const socket of control.sessions) socket.destroy();
  control.server.close();
}

let exitHooked = false;
// At exit, the control sockets still this process's are removed (installed
// with the first one, so a process without hand-over has no such listener).
function hookExit() {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    // Another thread of the process serving the path next replaces the
    // file itself.
    for (const [path, control] of controls) {
      if (isMainThread || native.handoverReleaseControl(path, threadId, false)) unlinkIfOwn(control, path);
    }
  });
}

// Binds a control socket at a temporary name beside `path`, then renames it
// over `path`: a successor finds either the previous owner's socket or this
// one, never none. 0600 and SO_PEERCRED keep other users out.
function ownControl(path) {
  if (controls.has(path)) return controls.get(path);
  const server = new net.Server();
  server[kControl] = true;
  const control = { path, server, ino: -1, dev: -1, offers: new Map(), sessions: new Set(), confirmed: [] };
  const tmp = `${path}.${process.pid}.tmp`;
  try { fs.unlinkSync(tmp); } catch { /* not there */ }
  server.on('error', (err) => warn(`cannot own the control socket ${path}: ${err.message}`));
  server.on('connection', (socket) => serveSession(control, socket));
  // A pipe's listen() sets up its handle at once (no lookup).
  server.listen(tmp);
  server.unref();
  if (server._handle == null) {
    native.handoverReleaseControl(path, threadId, true);
    return null;
  }
  try {
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, path);
    const st = fs.statSync(path);
    control.ino = st.ino;
    control.dev = st.dev;
    // Once no server of the process is on the path (this thread may serve
    // it for other threads' servers), it goes.
    native.handoverControlInPlace(path, threadId, () => {
      if (controls.get(path) === control && native.handoverReleaseControl(path, threadId, false)) releaseControl(path);
    });
  } catch (err) {
    warn(`cannot own the control socket ${path}: ${err.message}`);
    server.close();
    try { fs.unlinkSync(tmp); } catch { /* not there */ }
    native.handoverReleaseControl(path, threadId, true);
    return null;
  }
  controls.set(path, control);
  hookExit();
  return control;
}

// What a successor asks for to get `server`'s socket (a take message), or
// null when it cannot be asked for; `handle`: another address's handle of
// a server on several addresses.
function addressOf(server, handle) {
  let address = server.address();
  if (handle !== server._handle) {
    address = {};
    if (handle.getsockname(address) !== 0) return null;
  }
  if (typeof address === 'string') return { type: 'take', path: Buffer.from(address) };
  if (address === null || typeof address !== 'object') return null;
  return { type: 'take', ip: address.address, port: address.port };
}

// `server` listens and takes part through `path`: this process owns the
// control socket there from now on (served by the first thread to get
// there), until its last such server stops listening. `handle`: one of the
// other addresses of a server on several (lib/addresses.js), registered
// in `group`, the id returned for its first address. Returns the
// registration's id, or 0 when it cannot be offered.
function register(server, path, handle = server._handle, group = 0) {
  const address = addressOf(server, handle);
  if (address === null) return 0;
  let id;
  try {
    id = native.handoverRegister(path, address, threadId, handle.fd, group,
                                 (value) => notice(id, path, value));
  } catch {
    // An address the protocol cannot carry (a scoped IPv6 literal).
    return 0;
  }
  if (id < 0) {
    warn(`cannot offer the socket of ${address.ip ?? address.path}: ${require('util').getSystemErrorName(id)}`);
    return 0;
  }
  registered.set(id, { server, path });
  registrationOf.set(handle, id);
  controls.get(path)?.server.unref();
  require('./handle').onClose(handle, () => withdraw(id));
  if (native.handoverClaimControl(path, threadId)) ownControl(path);
  return id;
}

// What the registry says to this thread about registration `id` on `path`.
function notice(id, path, value) {
  const entry = registered.get(id);
  if (value === OWN_CONTROL) {
    // The thread serving the path ended and this one is next: its file is
    // replaced by this thread's socket (which goes as usual once no server
    // is on the path).
    if (native.handoverClaimControl(path, threadId)) ownControl(path);
    return;
  }
  if (entry !== undefined) handedOver(entry.server, value);
}

// `id`'s server stopped listening: it is no longer offered, and the
// control socket at its path goes once no server of the process uses it
// (the thread serving it keeps it while servers of other threads do).
function withdraw(id) {
  const entry = registered.get(id);
  native.handoverWithdraw(id);
  if (entry === undefined) return;
  registered.delete(id);
  const { path } = entry;
  const control = controls.get(path);
  if (control === undefined) return;
  if (native.handoverReleaseControl(path, threadId, false)) {
    releaseControl(path);
  } else {
    // Servers of other threads are still on the path: this thread stays
    // to serve their successors (and its conversations with them) until
    // they are gone.
    control.server.ref();
  }
}

function isControlServer(server) {
  return server[kControl] === true;
}

// Whether a thread of this process serves the control socket at `path`.
function ownsControl(path) {
  return native.handoverControlServed(path);
}

// What a take message asks for, as a string to compare offers by.
function keyOf(message) {
  return message.path ? `pipe:${message.path.toString('hex')}` : `tcp:${message.ip}:${message.port}`;
}

function send(socket, message, pass = -1) {
  const fd = socket._handle?.fd;
  if (socket.destroyed || socket.writableEnded || typeof fd !== 'number' || fd < 0) return UV_EPIPE;
  return native.handoverSend(fd, message, pass);
}

// Says why, then hangs up once the peer has read it: the connection is
// ended, not destroyed, and what the peer sent is read and dropped
// meanwhile (a Unix socket closed with unread bytes resets its peer, who
// would then miss the refusal). Destroyed after REFUSE_LINGER_MS anyway.
function refuse(socket, reason, detail) {
  send(socket, { type: 'refused', reason });
  socket.removeAllListeners('data');
  socket.on('data', () => {});
  socket.end();
  setTimeout(() => socket.destroy(), REFUSE_LINGER_MS).unref();
  if (detail) warn(`refused a successor: ${detail}`, 'RUST_NET_HANDOVER_REFUSED');
}

// One successor's conversation with this process.
function serveSession(control, socket) {
  socket.unref();
  socket.on('error', () => {});
  const fd = socket._handle?.fd;
  const peer = typeof fd === 'number' ? native.handoverPeer(fd) : { code: -1 };
  if (peer.code !== 0 || !peer.sameUser) {
    refuse(socket, 'forbidden', `process ${peer.pid} of uid ${peer.uid} is another user`);
    return;
  }
  control.sessions.add(socket);
  const session = { pid: peer.pid, hello: false, offers: new Set() };
  socket.setTimeout(HELLO_TIMEOUT_MS, () => { if (!session.hello) socket.destroy(); });
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length > 0 && !socket.destroyed && !socket.writableEnded) {
      const decoded = native.handoverDecode(pending);
      if (decoded.error != null) {
        refuse(socket, decoded.refusal, `${decoded.error} (from process ${peer.pid})`);
        return;
      }
      if (decoded.message == null) return;
      pending = pending.subarray(decoded.used);
      answer(control, socket, session, decoded.message);
    }
  });
  socket.on('close', () => {
    control.sessions.delete(socket);
    // Offers never confirmed: this process keeps serving on them.
    for (const token of session.offers) control.offers.delete(token);
    settlePending(control);
  });
}

function answer(control, socket, session, message) {
  if (!session.hello) {
    if (message.type !== 'hello') {
      refuse(socket, 'unexpected', `${message.type} before hello`);
      return;
    }
    session.hello = true;
    socket.setTimeout(0);
    send(socket, { type: 'welcome', pid: process.pid });
    return;
  }
  switch (message.type) {
    case 'take':
      offer(control, socket, session, message);
      return;
    case 'confirm':
    case 'abort': {
      const offered = control.offers.get(message.token);
      if (offered === undefined || !session.offers.has(message.token)) {
        refuse(socket, 'unexpected', `${message.type} of an unknown offer`);
        return;
      }
      control.offers.delete(message.token);
      session.offers.delete(message.token);
      if (message.type === 'confirm') control.confirmed.push({ address: offered.address, pid: session.pid });
      settlePending(control);
      return;
    }
    default:
      refuse(socket, 'unexpected', `${message.type} from a successor`);
  }
}

// Passes on the confirmations received, each server on the socket hearing
// of it on its own thread — except those of a server on several addresses
// while another of its addresses is offered and not settled yet: such a
// server hands over once, when every socket of it a successor took is
// confirmed (an address nobody took closes with it).
function settlePending(control) {
  if (control.confirmed.length === 0) return;
  const outstanding = new Set([...control.offers.values()].map((o) => o.key));
  control.confirmed = control.confirmed.filter(({ address, pid }) => {
    if (outstanding.size > 0 && native.handoverSiblings(control.path, address).some((a) => outstanding.has(keyOf(a)))) {
      return true;
    }
    native.handoverConfirmed(control.path, address, pid);
    return false;
  });
}

function offer(control, socket, session, message) {
  const key = keyOf(message);
  const offered = [...control.offers].find(([, o]) => o.key === key);
  if (offered !== undefined) {
    const [token, { pid, session: other }] = offered;
    if (pid !== session.pid) {
      send(socket, { type: 'busy', pid });
      return;
    }
    // The same process asks again on a new connection (it gave up on the
    // first, whose end this process has not read yet): the new one counts.
    // On the same connection (two of its threads' group members listening
    // at once): both offers stand, and either confirmation hands over.
    if (other !== session) {
      control.offers.delete(token);
      other.offers.delete(token);
    }
  }
  const fd = socket._handle?.fd;
  if (socket.destroyed || socket.writableEnded || typeof fd !== 'number' || fd < 0) return;
  const token = nextToken++;
  // The socket listening there, of whichever thread's server (sent by the
  // registry, which owns a descriptor of it).
  const id = native.handoverOffer(fd, control.path, message, token);
  if (id === 0) {
    send(socket, { type: 'missing' });
    return;
  }
  if (id < 0) return;
  control.offers.set(token, { address: message, key, pid: session.pid, session });
  session.offers.add(token);
}

// The successor listens on `server`'s socket: stop accepting (what was
// accepted still reaches the server), say so, and close as close() would.
// A server on several addresses stops accepting on each socket the
// successor took (confirmed: no longer registered); one it did not take
// keeps accepting until the close, which first takes what waits in its
// queue, so that nothing queued there is reset.
function handedOver(server, pid) {
  if (server[kHandedOver] || server._handle == null) return;
  server[kHandedOver] = true;
  const handles = require('./handle');
  for (const handle of [server._handle, ...handles.moreHandlesOf(server._handle)]) {
    const id = registrationOf.get(handle);
    if (id !== undefined && !native.handoverRegistered(id)) handles.stopForHandover(handle);
    else handles.drainAlways(handle, server);
  }
  const isHttp = typeof server.closeIdleConnections === 'function';
  // An http server answers each request from now on with `Connection:
  // close`, so every connection ends after its next response.
  if (isHttp) server.prependListener('request', (req, res) => { res.shouldKeepAlive = false; });
  server.emit('handover', { pid });
  // An http server's close() would also destroy the connections it deems
  // idle at once: among them those accepted a moment ago whose first
  // request is on its way, and kept-alive ones a client is sending a request
  // on. Those are served instead (their response closes them), and
  // keepAliveTimeout ends the ones that stay idle, as Node's own does.
  const close = isHttp ? () => net.Server.prototype.close.call(server) : () => server.close();
  // Connections whose PROXY header is still being read were accepted here:
  // they are delivered until the header's timeout, then the server closes.
  const headerWait = admissionOptions(server)?.proxy?.timeoutMs;
  if (headerWait) {
    setTimeout(close, headerWait);
  } else {
    close();
  }
}

function wasHandedOver(server) {
  return server[kHandedOver] === true;
}

module.exports = { isControlServer, ownsControl, register, wasHandedOver };
