//! rust-net's native half: the listening socket of a Node `net.Server`, in Rust.
//!
//! This file is only the N-API surface; the work is in these modules:
//!
//! - [`acceptor`]: what one listening server shares between the code that
//!   accepts and JavaScript — the queue, the claim protocol that hands each
//!   descriptor to exactly one owner, and admission of each accepted
//!   connection ([`acceptor::Acceptor::admit`]), written once for both
//!   placements; what `serverStats()` counts (`acceptor::stats`) and
//!   load-aware accepting (`acceptor::overload`).
//! - [`admission`]: the blockList, PROXY protocol and per-client limits
//!   applied to descriptors
//!   (the rules themselves are the sans-IO `rust-net-admission` crate), and
//!   the option and result objects JavaScript sees of them.
//! - [`bind`]: one TCP bind as JavaScript specifies it (address, flags,
//!   socket options), checked and converted once.
//! - [`errno`]: OS errors as the libuv error numbers Node formats, and the
//!   libuv codes the addon reports itself (`UV_EIO`, `UV_EBADF`, ...).
//! - [`fast_call`]: `listenerTake`, called once per batch, as a plain N-API
//!   function without napi-rs's per-call wrapper.
//! - [`handover`]: passing listening sockets to a successor process over a
//!   Unix control socket — the sans-IO protocol and its SCM_RIGHTS edge
//!   (docs/handover.md).
//! - [`listener`]: one server's native state from bind to close, kept in
//!   this thread's table below; `listener::join_group` is its side of a
//!   group sharing a socket across threads.
//! - [`placement`]: where a server accepts — a task on the tokio runtime's
//!   thread, or the JavaScript thread's own libuv loop — and which is
//!   chosen.
//! - [`reserve`]: the spare descriptor closed to shed connections when the
//!   process runs out of descriptors (EMFILE), as libuv does.
//! - [`runtime`]: the one tokio runtime the process's servers share.
//! - [`share`]: groups of servers of different threads sharing one
//!   listening socket (`shareAcrossThreads`), and how connections are
//!   dispatched among them.
//! - [`socket`]: creating, binding, adopting and accepting on sockets with
//!   Node's options, in socket2 and libc.
//! - [`sockopt`]: the socket options set on a TCP listening socket before
//!   bind() (`deferAccept`, `keepAliveInterval`, raw `socketOptions`, ...),
//!   which accepted connections inherit.
//! - [`systemd`]: the check a descriptor passed by systemd socket
//!   activation passes before `listen({ systemd })` takes it.
//! - `test_hooks`: functions only the test build exports (cargo feature
//!   `test-hooks`).
//!
//! Every method returns libuv-style results (0 or a negative errno) rather
//! than throwing, because Node's own `net` code decides what to throw or emit
//! for each failure and JavaScript passes these numbers straight to it.

#![deny(clippy::unwrap_used, clippy::expect_used)]
// Every unsafe operation sits in its own `unsafe {}` block with a `// SAFETY:`
// comment, also inside an `unsafe fn`, whose contract alone proves nothing.
#![deny(unsafe_op_in_unsafe_fn)]

mod acceptor;
mod admission;
mod bind;
mod errno;
mod fast_call;
mod handover;
mod listener;
mod placement;
mod reserve;
mod runtime;
mod share;
mod socket;
mod sockopt;
mod systemd;
#[cfg(feature = "test-hooks")]
// The hooks are reached only through napi-rs's registration, which is not
// compiled into `cargo test`'s harness, so there they look unused.
#[cfg_attr(test, allow(dead_code))]
mod test_hooks;

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use listener::{ConnectionCallback, Listener};

thread_local! {
    /// This JavaScript thread's listeners, by id. A table rather than
    /// wrapped objects, so that nothing of rust-net is ever finalised by the
    /// garbage collector (see `listener.rs`).
    static LISTENERS: RefCell<Table> = RefCell::new(Table::default());
}

#[derive(Default)]
struct Table {
    next: u32,
    listeners: HashMap<u32, Listener, BuildHasherDefault<IdHasher>>,
}

/// Hashes listener ids, which this addon hands out in sequence and no peer
/// chooses: std's SipHash resists chosen keys at ≈ 120 instructions a
/// look-up, paid by every call from JavaScript (once per batch of
/// connections); a multiply spreads sequential ids over the table just as
/// well here.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8 | u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Runs `f` on listener `id`; `missing` when it is closed or unknown.
fn with_listener<R>(id: u32, missing: R, f: impl FnOnce(&mut Listener) -> R) -> R {
    LISTENERS.with(|table| match table.borrow_mut().listeners.get_mut(&id) {
        Some(listener) => f(listener),
        None => missing,
    })
}

/// A new listener, with no socket yet; returns its id.
#[napi(catch_unwind)]
pub fn listener_create() -> u32 {
    LISTENERS.with(|table| {
        let mut table = table.borrow_mut();
        let id = table.next;
        table.next = table.next.wrapping_add(1);
        table.listeners.insert(id, Listener::default());
        id
    })
}

/// Creates and binds a TCP socket as `spec` says (address, port, flags,
/// socket options; shared across threads when it names the caller's
/// thread). Returns 0 or a libuv errno; `listenerFailedOption` says whether
/// a socket option was the cause.
#[napi(catch_unwind)]
pub fn listener_bind_tcp(id: u32, spec: bind::TcpBindSpec) -> i32 {
    with_listener(id, errno::UV_EINVAL, |l| l.bind_tcp(spec))
}

/// The socket option (as named in JavaScript) whose `setsockopt` failed
/// listener `id`'s bind, or null.
#[napi(catch_unwind)]
pub fn listener_failed_option(id: u32) -> Option<&'static str> {
    with_listener(id, None, |l| l.failed_option())
}

/// As `listenerBindPipe`, shared across threads.
#[napi(catch_unwind)]
pub fn listener_share_pipe(
    id: u32,
    name: Buffer,
    unlink_on_close: Option<Buffer>,
    pad_abstract: bool,
    thread_id: u32,
) -> i32 {
    with_listener(id, errno::UV_EINVAL, |l| {
        l.share_pipe(name, unlink_on_close, pad_abstract, thread_id)
    })
}

/// Adopts a socket handed over by another process as the socket of a new
/// group shared across threads (see [`share::adopt`]).
#[napi(catch_unwind)]
pub fn listener_share_adopt(
    id: u32,
    fd: i32,
    name: Option<Buffer>,
    unlink_on_close: Option<Buffer>,
    thread_id: u32,
) -> i32 {
    with_listener(id, errno::UV_EINVAL, |l| {
        l.share_adopt(fd, name, unlink_on_close, thread_id)
    })
}

/// Whether a group shared across threads listens on TCP `address`:`port`
/// or on pipe `name` in this process.
#[napi(catch_unwind)]
pub fn share_has_group(address: Option<String>, port: Option<u32>, name: Option<Buffer>) -> bool {
    let tcp = address
        .as_deref()
        .zip(port.and_then(|p| u16::try_from(p).ok()));
    share::has_group(tcp, name.as_deref())
}

/// Per-member counts of the group listener `id` shares, or null when it
/// shares nothing.
#[napi(catch_unwind)]
pub fn listener_share_stats(id: u32) -> Option<listener::ThreadShareStats> {
    with_listener(id, None, |l| l.share_stats())
}

/// Creates a Unix domain socket bound at `name` (see [`Listener::bind_pipe`]).
#[napi(catch_unwind)]
pub fn listener_bind_pipe(
    id: u32,
    name: Buffer,
    unlink_on_close: Option<Buffer>,
    pad_abstract: bool,
) -> i32 {
    with_listener(id, errno::UV_EINVAL, |l| {
        l.bind_pipe(name, unlink_on_close, pad_abstract)
    })
}

/// Adopts an existing socket descriptor (`listen({ fd })`).
#[napi(catch_unwind)]
pub fn listener_open(env: Env, id: u32, fd: i32) -> i32 {
    // As Node: a descriptor of the wrong type is EINVAL first (its
    // createHandle() checks the type before libuv's open()); one the loop
    // already watches is EEXIST, as libuv's uv_tcp_open/uv_pipe_open say.
    // SAFETY: called from JavaScript, so on `env`'s thread.
    if socket::guess_kind(fd).is_some()
        && unsafe { placement::event_loop::loop_watches(env.raw(), fd) }
    {
        return errno::UV_EEXIST;
    }
    with_listener(id, errno::UV_EINVAL, |l| l.open(fd))
}

/// `"tcp"`, `"pipe"`, or null before a socket exists.
#[napi(catch_unwind)]
pub fn listener_kind(id: u32) -> Option<&'static str> {
    with_listener(id, None, |l| l.kind())
}

/// The listening descriptor, or -1 when there is none.
#[napi(catch_unwind)]
pub fn listener_fd(id: u32) -> i32 {
    with_listener(id, -1, |l| l.fd())
}

/// Starts listening and accepting (see [`Listener::listen`]); `claimed` is
/// the Int32Array JavaScript claims descriptors in, `batch` the one each
/// `take()` writes into.
#[napi(catch_unwind)]
pub fn listener_listen(
    env: Env,
    id: u32,
    backlog: i32,
    onconnection: ConnectionCallback,
    claimed: Unknown,
    batch: Unknown,
    placement: Option<placement::AcceptPlacement>,
) -> Result<i32> {
    with_listener(id, Ok(errno::UV_EINVAL), |l| {
        l.listen(&env, backlog, onconnection, &claimed, &batch, placement)
    })
}

/// Where listener `id` accepts: `"runtime"`, `"event-loop"`, or null.
#[napi(catch_unwind)]
pub fn listener_placement(id: u32) -> Option<&'static str> {
    with_listener(id, None, |l| l.placement())
}

/// Writes the next batch of connections into the batch array given to
/// listen: `[error, fd, ...]` (see [`acceptor::Acceptor::take`]); returns how
/// many descriptors it holds. Each descriptor must be claimed once a Node
/// handle owns it, or released with `listenerRelease()`. Exported to
/// JavaScript as `listenerTake(id)` by [`fast_call`], without napi-rs's call
/// wrapper: it runs once per batch.
fn take(id: u32) -> u32 {
    with_listener(id, 0, |l| l.take())
}

/// Adds the functions napi-rs's macros do not generate (see [`fast_call`]).
#[napi(module_exports)]
pub fn register_fast_calls(exports: Object, env: Env) -> Result<()> {
    fast_call::register(&env, &exports)
}

/// Closes in-flight descriptor `index` (0-based within the last batch's
/// descriptors), which JavaScript could not wrap.
#[napi(catch_unwind)]
pub fn listener_release(id: u32, index: u32) {
    with_listener(id, (), |l| l.release(index))
}

/// `ref()` (true) or `unref()` (false): whether listening keeps the event
/// loop alive.
#[napi(catch_unwind)]
pub fn listener_set_ref(env: Env, id: u32, referenced: bool) -> Result<()> {
    with_listener(id, Ok(()), |l| l.set_ref(&env, referenced))
}

/// Stops listening now and forgets the listener: when this returns the port
/// (or path) is free, and connections accepted but not yet handed to
/// JavaScript are closed.
#[napi(catch_unwind)]
pub fn listener_close(env: Env, id: u32) -> Result<()> {
    let listener = LISTENERS.with(|table| table.borrow_mut().listeners.remove(&id));
    match listener {
        Some(mut listener) => listener.close(&env),
        None => Ok(()),
    }
}

/// A `reusePort` server's close: takes every connection waiting in its
/// kernel queue where the kernel would reset them, then closes the socket;
/// returns how many accepted connections wait for `take()` before
/// `listenerClose`, or -1 when nothing was done and `listenerClose` alone
/// loses nothing. `always`: any listener's, not only a `reusePort` one's.
#[napi(catch_unwind)]
pub fn listener_close_draining(id: u32, always: bool) -> i32 {
    with_listener(id, -1, |l| l.close_draining(always))
}

/// Sets listener `id`'s blockList and PROXY protocol settings (before
/// listen()). Throws on a rule that does not parse.
#[napi(catch_unwind)]
pub fn listener_configure_admission(
    id: u32,
    options: admission::info::AdmissionOptions,
) -> Result<()> {
    with_listener(id, Ok(()), |l| {
        l.configure_admission(&options).map_err(Error::from_reason)
    })
}

/// Parses `rules` (address, CIDR or Node BlockList strings) once, when the
/// option that lists them is given: the parsed set as plain numbers, which
/// `listenerConfigureAdmission` takes back with nothing left to parse, or
/// why a rule does not parse.
#[napi(catch_unwind)]
pub fn parse_rules(rules: Vec<String>) -> admission::info::ParsedRules {
    admission::info::ParsedRules::of(&rules)
}

/// Replaces listener `id`'s blockList rules (Node's `rules` format).
#[napi(catch_unwind)]
pub fn listener_set_block_rules(id: u32, rules: Option<Vec<String>>) -> Result<()> {
    with_listener(id, Ok(()), |l| {
        l.set_block_rules(rules).map_err(Error::from_reason)
    })
}

/// What the PROXY header said for each descriptor of the batch
/// `listenerTake()` returned last (null where there was none).
#[napi(catch_unwind)]
pub fn listener_take_proxied(id: u32) -> Vec<Option<admission::info::ProxyHeader>> {
    with_listener(id, Vec::new(), |l| l.take_proxied())
}

/// Connections refused since the last call, for `'connectionRejected'`.
#[napi(catch_unwind)]
pub fn listener_take_rejections(id: u32) -> Vec<admission::info::RejectionInfo> {
    with_listener(id, Vec::new(), |l| l.take_rejections())
}

/// Listener `id`'s connections counted by what admission did with them
/// (`ERR_PEER_BLOCKED`, `ERR_PROXY_HEADER_TIMEOUT`, ..., `proxied`).
#[napi(catch_unwind)]
pub fn listener_admission_counts(id: u32) -> std::collections::HashMap<String, u32> {
    with_listener(id, Default::default(), |l| l.admission_counts())
}

/// Client descriptor `fd` of listener `id` is closing: its client's open
/// count goes down (`maxConnectionsPerAddress`). Called from the client
/// handle's close(), before libuv closes the descriptor.
#[napi(catch_unwind)]
pub fn listener_peer_closed(id: u32, fd: i32) {
    with_listener(id, (), |l| l.peer_closed(fd))
}

/// What listener `id` counted and its kernel accept queue, for
/// `serverStats()`; null when it does not listen with a socket of its own.
#[napi(catch_unwind)]
pub fn listener_stats(id: u32) -> Option<listener::ServerStatsInfo> {
    with_listener(id, None, |l| l.server_stats())
}

/// Sets listener `id`'s load-aware accepting (`pauseAcceptAfter`,
/// `shedAbove`; before listen()).
#[napi(catch_unwind)]
pub fn listener_configure_overload(id: u32, options: acceptor::overload::OverloadOptions) {
    with_listener(id, (), |l| l.configure_overload(&options))
}

/// Load-aware accepting's changes since the last call, for
/// `diagnostics_channel`.
#[napi(catch_unwind)]
pub fn listener_take_load_events(id: u32) -> Vec<listener::LoadEventInfo> {
    with_listener(id, Vec::new(), |l| l.take_load_events())
}

/// An overflow of the kernel's accept queue not yet reported (handshakes it
/// dropped at the socket since the last call), or null.
#[napi(catch_unwind)]
pub fn listener_overflow(id: u32) -> Option<listener::LoadEventInfo> {
    with_listener(id, None, |l| l.overflow())
}

/// A close-on-exec duplicate of `fd` (the caller owns it), or a libuv errno.
/// Node's stream wraps are opened on duplicates of Rust-owned listening
/// sockets, so that `server._handle` is a genuine TCPWrap or PipeWrap while
/// the original descriptor stays with Rust.
#[napi(catch_unwind)]
pub fn dup(fd: i32) -> i32 {
    socket::duplicate(fd).unwrap_or_else(|code| code)
}

/// Checks a descriptor systemd passed (`listen({ systemd })`): null when it
/// is a listening stream socket (now close-on-exec), else why not.
#[napi(catch_unwind)]
pub fn systemd_check(fd: i32) -> Option<String> {
    systemd::check(fd).err().map(systemd::Unfit::reason)
}

/// Closes descriptors that JavaScript received but could not wrap.
#[napi(catch_unwind)]
pub fn close_fds(fds: Vec<i32>) {
    for fd in fds {
        socket::close_raw(fd);
    }
}

// --- Hand-over to a successor process (src/handover, lib/handover.js;
// between threads: src/handover/surface.rs, re-exported so that it is this
// crate's surface as the rest) ---

pub use handover::surface::*;

/// Decodes the first hand-over frame of `bytes`.
#[napi(catch_unwind)]
pub fn handover_decode(bytes: Buffer) -> handover::HandoverDecoded {
    handover::decode(&bytes)
}

/// Who is at the other end of control connection `fd`.
#[napi(catch_unwind)]
pub fn handover_peer(fd: i32) -> handover::HandoverPeer {
    handover::peer(fd)
}

/// A blocking connection to the control socket at `path` (see
/// [`handover::connect`]): a descriptor or a negative libuv errno.
#[napi(catch_unwind)]
pub fn handover_connect(path: String, timeout_ms: u32) -> i32 {
    handover::connect(&path, timeout_ms)
}

/// Sends a hand-over message, with descriptor `pass` when not negative.
#[napi(catch_unwind)]
pub fn handover_send(fd: i32, message: handover::HandoverMessage, pass: i32) -> Result<i32> {
    handover::send(fd, &message, pass)
}

/// Reads one hand-over frame from `fd`, blocking at most its timeout.
#[napi(catch_unwind)]
pub fn handover_receive(fd: i32) -> handover::HandoverReceived {
    handover::receive(fd)
}

/// Stops listener `id` accepting for good while the connections it has
/// accepted stay queued for `take()`: its socket was handed over.
#[napi(catch_unwind)]
pub fn listener_stop_accepting(id: u32) {
    with_listener(id, (), |l| l.stop_accepting_for_handover())
}

/// The Node-API version this module is built for, read by Node (≥ 21)
/// when it loads the module: `NAPI_VERSION_EXPERIMENTAL`.
///
/// Node-API queues the finalisers of every other module's collected values
/// (napi-rs's and Node's own per-function callback data included) and runs
/// them from a `setImmediate`, so a `gc()` in `'beforeExit'` revives the
/// idle event loop and `'beforeExit'` fires again — which Node's own wraps
/// never cause (`sequential/test-async-wrap-getasyncid`). Modules of the
/// experimental version have those finalisers run by the collector itself,
/// which requires that none of them touch JavaScript: rust-net has no
/// finaliser of its own (listeners live in a table until `close()`, the
/// claim counter is JavaScript's memory), and napi-rs releases the
/// JavaScript values it holds through its own threadsafe function, not from
/// a finaliser.
#[no_mangle]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    NAPI_VERSION_EXPERIMENTAL
}

const NAPI_VERSION_EXPERIMENTAL: i32 = 2147483647;
