'use strict';

// The native listener of one server, by id. Its state lives in a table of
// this thread in Rust, not in an object the garbage collector finalises
// (Node-API runs finalisers from a setImmediate, which would wake an idle
// loop after 'beforeExit'), so every Listener must end with close() — as
// every libuv handle must.

const { threadId } = require('worker_threads');
const native = require('./native');

// A shared listener's claim Int32Array carries, after the claim counter, the
// load its server publishes for the dispatcher (src/share/dispatch.rs):
// `_connections`, and the count at which Node drops connections (-1: none).
const LOAD_CONNECTIONS = 1;
const LOAD_MAX = 2;
const LOAD_SLOTS = 3;

// The batch array take() writes into: the accept error, then up to
// BATCH_SLOTS - 1 descriptors (more wait for the next take()). 128 is what
// one accept round takes at most (ACCEPT_BATCH in src/acceptor).
const BATCH_SLOTS = 1 + 128;

class Listener {
  constructor() {
    this.id = native.listenerCreate();
    // The Int32Array JavaScript claims accepted descriptors in (see
    // onconnectionBatch in handle.js); Rust reads it, JavaScript owns it.
    this.claimed = new Int32Array(1);
    // Where take() writes each batch: one array for the server's life, so a
    // batch allocates nothing. JavaScript reads it; Rust writes it only
    // inside take().
    this.batch = new Int32Array(BATCH_SLOTS);
  }

  // Creates and binds a TCP socket as `spec` says ({ address, port, ipv6,
  // ipv6Only, reusePort, socketOptions? }, see src/bind.rs); with `share`
  // (shareAcrossThreads) it joins the group of this process's servers bound
  // there, or starts one. Returns 0 or a libuv errno; failedOption then
  // names the socket option the kernel refused, if that was the cause.
  bindTcp(spec, share = false) {
    if (share) {
      this.#shareLoad();
      spec.shareThreadId = threadId;
    }
    return native.listenerBindTcp(this.id, spec);
  }

  get failedOption() { return native.listenerFailedOption(this.id); }

  bindPipe(name, unlinkName, padAbstract) {
    return native.listenerBindPipe(this.id, name, unlinkName, padAbstract);
  }

  // bindPipe() for shareAcrossThreads.
  sharePipe(name, unlinkName, padAbstract) {
    this.#shareLoad();
    return native.listenerSharePipe(this.id, name, unlinkName, padAbstract, threadId);
  }

  // Adopts a socket handed over by another process as a new group's
  // (shareAcrossThreads); `name` keys a pipe's group, `unlinkName` is the
  // file removed when the group's last member closes.
  shareAdopt(fd, name, unlinkName) {
    this.#shareLoad();
    return native.listenerShareAdopt(this.id, fd, name, unlinkName, threadId);
  }

  #shareLoad() {
    this.claimed = new Int32Array(LOAD_SLOTS);
    this.claimed[LOAD_MAX] = -1;
  }

  // The counts of the group this listener shares, or null.
  get shareStats() { return native.listenerShareStats(this.id); }

  open(fd) { return native.listenerOpen(this.id, fd); }

  get kind() { return native.listenerKind(this.id); }

  get fd() { return native.listenerFd(this.id); }

  get placement() { return native.listenerPlacement(this.id); }

  listen(backlog, onconnection, placement) {
    return native.listenerListen(this.id, backlog, onconnection, this.claimed, this.batch, placement);
  }

  // Writes the next batch into this.batch ([error, fd, ...]) and returns how
  // many descriptors it holds; a full array means more may wait.
  take() { return native.listenerTake(this.id); }

  release(index) { native.listenerRelease(this.id, index); }

  ref() { native.listenerSetRef(this.id, true); }

  unref() { native.listenerSetRef(this.id, false); }

  close() { native.listenerClose(this.id); }

  // A reusePort server closing: takes every connection waiting in the kernel
  // queue where the kernel would reset them, closes the socket, and returns
  // how many accepted connections wait for take() before close(); -1 when it
  // did nothing (not such a server: close() loses nothing).
  closeDraining(always = false) { return native.listenerCloseDraining(this.id, always); }

  // Handed over to another process: stop accepting, keep the queue.
  stopAccepting() { native.listenerStopAccepting(this.id); }

  // Admission (blockList, PROXY protocol): see src/admission.
  configureAdmission(options) { native.listenerConfigureAdmission(this.id, options); }

  setBlockRules(rules) { native.listenerSetBlockRules(this.id, rules); }

  takeProxied() { return native.listenerTakeProxied(this.id); }

  takeRejections() { return native.listenerTakeRejections(this.id); }

  peerClosed(fd) { native.listenerPeerClosed(this.id, fd); }

  admissionCounts() { return native.listenerAdmissionCounts(this.id); }

  // Load-aware accepting (pauseAcceptAfter, shedAbove): src/acceptor/overload.rs.
  configureOverload(options) { native.listenerConfigureOverload(this.id, options); }

  takeLoadEvents() { return native.listenerTakeLoadEvents(this.id); }
  overflow() { return native.listenerOverflow(this.id); }

  // serverStats()'s figures (src/listener/stats.rs), or null.
  stats() { return native.listenerStats(this.id); }

  static dup(fd) { return native.dup(fd); }

  static closeFds(fds) { native.closeFds(fds); }
}

module.exports = { LOAD_CONNECTIONS, LOAD_MAX, Listener };
