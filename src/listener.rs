//! One listening server's native state: its socket while bound, then its
//! acceptor and whatever wakes JavaScript for it.
//!
//! Listeners live in a table of the JavaScript thread that made them (see
//! `lib.rs`), not in objects the garbage collector finalises: Node-API
//! defers every finaliser of a module to a `setImmediate`, which would bring
//! an idle event loop back to life after `'beforeExit'` (Node's own wraps
//! never do). A listener ends at `close()`, or with its thread.

use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use napi::bindgen_prelude::*;
use napi::CleanupEnvHook;

use crate::acceptor::Acceptor;
use crate::admission::info::{AdmissionOptions, ProxyHeader, RejectionInfo};
use crate::admission::Admission;
use crate::bind::{TcpBind, TcpBindSpec};
use crate::placement::event_loop::LoopPoll;
use crate::placement::{self, runtime_thread, AcceptPlacement, Placement};
use crate::socket::{self, Bound, Kind};
use crate::{errno, reserve, runtime};

mod join_group;
mod js;
mod leave;
mod stats;
pub use join_group::ThreadShareStats;
pub use js::ConnectionCallback;
use js::{set_referenced, wake_up, SharedInts, Wake};
pub use stats::{LoadEventInfo, ServerStatsInfo};

/// One listening socket: bound (or adopted), then listening and accepting.
#[derive(Default)]
pub struct Listener {
    bound: Option<Bound>,
    kind: Option<Kind>,
    acceptor: Option<Arc<Acceptor>>,
    wake: Option<Arc<Wake>>,
    cleanup: Option<CleanupEnvHook<Weak<Acceptor>>>,
    /// The poll handle of the event-loop placement.
    loop_poll: Option<LoopPoll>,
    /// Where this server accepts, once listening.
    placement: Option<Placement>,
    /// The Int32Array JavaScript claims descriptors in.
    claim: Option<SharedInts>,
    /// The Int32Array `take()` writes each batch into.
    batch: Option<SharedInts>,
    /// blockList and PROXY protocol settings, set before listen().
    admission: Option<Arc<Admission>>,
    /// Load-aware accepting (`pauseAcceptAfter`), set before listen().
    overload: Option<crate::acceptor::overload::Overload>,
    /// The socket file a pipe server created, removed on close as libuv does.
    unlink_on_close: Option<PathBuf>,
    /// Its seat in a group of servers sharing one socket across threads
    /// (`shareAcrossThreads`), instead of a socket of its own.
    share: Option<Arc<crate::share::Seat>>,
    /// The socket option the kernel refused when binding failed.
    failed_option: Option<&'static str>,
    /// It bound its own SO_REUSEPORT socket (`reusePort`): leaving the
    /// group must not reset its queue (see [`leave`]).
    reuse_port: bool,
}

impl Listener {
    fn set_bound(&mut self, result: std::result::Result<Bound, i32>) -> i32 {
        match result {
            Ok(bound) => {
                self.kind = Some(bound.kind);
                self.bound = Some(bound);
                0
            }
            Err(code) => code,
        }
    }

    /// Creates and binds a TCP socket as `spec` says — shared across
    /// threads when it names the caller's thread (see
    /// [`Listener::share_tcp`]). A socket option the kernel refused is
    /// remembered for [`Listener::failed_option`].
    pub fn bind_tcp(&mut self, spec: TcpBindSpec) -> i32 {
        if self.kind.is_some() {
            return errno::UV_EINVAL;
        }
        let result = TcpBind::try_from(spec).and_then(|bind| match bind.share_thread_id {
            Some(thread_id) => self.share_tcp(&bind, thread_id),
            None => socket::bind_tcp(&bind).map(|bound| {
                self.reuse_port = bind.reuse_port;
                self.set_bound(Ok(bound))
            }),
        });
        match result {
            Ok(code) => code,
            Err(err) => {
                self.failed_option = err.option;
                err.code
            }
        }
    }

    /// The socket option whose `setsockopt` failed the last bind, if that
    /// is why it failed.
    pub fn failed_option(&self) -> Option<&'static str> {
        self.failed_option
    }

    /// Creates a Unix domain socket bound at `name` (abstract if it starts
    /// with a NUL byte). `unlink_on_close` is the file removed when the
    /// server closes, and `pad_abstract` whether an abstract name takes the
    /// whole address size — Node versions differ on both.
    pub fn bind_pipe(
        &mut self,
        name: Buffer,
        unlink_on_close: Option<Buffer>,
        pad_abstract: bool,
    ) -> i32 {
        if self.kind.is_some() {
            return errno::UV_EINVAL;
        }
        let code = self.set_bound(socket::bind_pipe(&name, pad_abstract));
        if code == 0 {
            self.unlink_on_close =
                unlink_on_close.map(|path| PathBuf::from(std::ffi::OsStr::from_bytes(&path)));
        }
        code
    }

    /// Adopts an existing socket descriptor (`listen({ fd })`).
    pub fn open(&mut self, fd: i32) -> i32 {
        if self.kind.is_some() {
            return errno::UV_EINVAL;
        }
        self.set_bound(socket::adopt(fd))
    }

    /// `"tcp"`, `"pipe"`, or null before a socket exists.
    pub fn kind(&self) -> Option<&'static str> {
        self.kind.map(|kind| match kind {
            Kind::Tcp => "tcp",
            Kind::Pipe => "pipe",
        })
    }

    /// The listening descriptor, or -1 when there is none.
    pub fn fd(&self) -> i32 {
        if let Some(seat) = &self.share {
            return seat.fd();
        }
        if let Some(acceptor) = &self.acceptor {
            return acceptor.with_listener(|s| s.as_raw_fd()).unwrap_or(-1);
        }
        self.bound.as_ref().map_or(-1, |b| socket::raw(&b.socket))
    }

    /// Starts listening and accepting. Connections (and accept errors) are
    /// reported through `onconnection`, in batches that `take()` writes
    /// into `batch` (an Int32Array of at least two elements). `placement` is
    /// where to accept (absent: `"auto"`, see [`placement::automatic`]).
    pub fn listen(
        &mut self,
        env: &Env,
        backlog: i32,
        onconnection: ConnectionCallback,
        claimed: &Unknown<'_>,
        batch: &Unknown<'_>,
        placement: Option<AcceptPlacement>,
    ) -> Result<i32> {
        if self.batch.is_none() {
            // SAFETY: called from JavaScript on `env`'s thread with a live
            // typed array; the reference keeps its memory until close(),
            // which every listener ends with.
            match unsafe { SharedInts::new(env, batch) } {
                Ok(slots) if slots.len >= 2 => self.batch = Some(slots),
                Ok(slots) => {
                    slots.delete(env);
                    return Ok(errno::UV_EINVAL);
                }
                Err(code) => return Ok(code),
            }
        }
        if let Some(seat) = self.share.clone() {
            return self.listen_shared(env, seat, backlog, onconnection, claimed);
        }
        if let Some(acceptor) = &self.acceptor {
            // Listening already (a handle shared by two servers, as Node
            // allows): only the backlog changes, as with a second uv_listen.
            let result =
                acceptor.with_listener(|s| s.listen(backlog).map_err(|e| errno::uv_code(&e)));
            return Ok(result.unwrap_or(Err(errno::UV_EBADF)).err().unwrap_or(0));
        }
        let placement = match placement.and_then(AcceptPlacement::forced) {
            // PROXY headers are read on the runtime, never on the event
            // loop, so such a server accepts there too; and a server that
            // refuses peers (blockList) does so there by default, so that a
            // flood of them never wakes the event loop (bench/JOURNAL.md,
            // admission): accepting on the event loop would refuse them
            // on the JavaScript thread.
            _ if self.admission.as_ref().is_some_and(|a| a.proxy.is_some()) => Placement::Runtime,
            // Only an accept thread can pause while the event loop is busy.
            _ if self.overload.is_some() => Placement::Runtime,
            None if self.admission.is_some() => Placement::Runtime,
            choice => choice.unwrap_or_else(placement::automatic),
        };
        let Some(bound) = self.bound.as_ref() else {
            return Ok(errno::UV_EINVAL);
        };
        if let Err(code) = socket::listen(bound, backlog) {
            return Ok(code);
        }
        reserve::ensure();
        let Some(bound) = self.bound.take() else {
            return Ok(errno::UV_EINVAL);
        };
        // SAFETY: called from JavaScript on `env`'s thread with a live typed
        // array; the reference keeps its memory alive until close().
        let claim = match unsafe { SharedInts::new(env, claimed) } {
            Ok(claim) => claim,
            Err(code) => return Ok(code),
        };
        let code = match placement {
            Placement::Runtime => {
                self.listen_on_runtime(env, bound.socket, backlog, onconnection)?
            }
            Placement::EventLoop => {
                self.listen_on_event_loop(env, bound.socket, backlog, &onconnection)
            }
        };
        if code == 0 {
            if let Some(acceptor) = &self.acceptor {
                acceptor.set_claim_counter(claim.ptr);
            }
            self.claim = Some(claim);
            self.placement = Some(placement);
        } else {
            claim.delete(env);
        }
        Ok(code)
    }

    fn listen_on_runtime(
        &mut self,
        env: &Env,
        socket: socket2::Socket,
        backlog: i32,
        onconnection: ConnectionCallback,
    ) -> Result<i32> {
        let handle = runtime::handle().map_err(|e| Error::from_reason(e.to_string()))?;
        let listening = match runtime_thread::register(socket, &handle) {
            Ok(listening) => listening,
            Err(err) => return Ok(errno::uv_code(&err)),
        };
        let acceptor = Arc::new(
            Acceptor::new(listening, backlog)
                .admitting(self.admission.clone())
                .pacing(self.overload.take()),
        );

        let (wake, notify) = wake_up(&onconnection)?;

        self.cleanup = Some(
            env.add_env_cleanup_hook(Arc::downgrade(&acceptor), |acceptor| {
                // The environment (a worker, or the main thread at exit) is going
                // away: stop accepting and close whatever JavaScript never took.
                if let Some(acceptor) = acceptor.upgrade() {
                    acceptor.shutdown();
                }
            })?,
        );

        handle.spawn(runtime_thread::run(Arc::clone(&acceptor), Arc::new(notify)));
        self.wake = Some(wake);
        self.acceptor = Some(acceptor);
        Ok(0)
    }

    fn listen_on_event_loop(
        &mut self,
        env: &Env,
        socket: socket2::Socket,
        backlog: i32,
        onconnection: &ConnectionCallback,
    ) -> i32 {
        let acceptor = Arc::new(
            Acceptor::new(placement::event_loop::listening(socket), backlog)
                .admitting(self.admission.clone()),
        );
        // SAFETY: called from JavaScript, so on `env`'s thread, with
        // `onconnection` a live function of that environment.
        match unsafe { LoopPoll::start(env.raw(), onconnection.raw(), Arc::clone(&acceptor)) } {
            Ok(poll) => {
                self.loop_poll = Some(poll);
                self.acceptor = Some(acceptor);
                0
            }
            Err(code) => {
                acceptor.shutdown();
                code
            }
        }
    }

    /// Where this server accepts: `"runtime"`, `"event-loop"`, or null
    /// before it listens.
    pub fn placement(&self) -> Option<&'static str> {
        self.placement.map(Placement::name)
    }

    /// Writes the next batch of connections into the batch array:
    /// `[error, fd, ...]` (see [`Acceptor::take`]), and returns how many
    /// descriptors it holds; as many as fit, so a count that fills the
    /// array means more may wait. Each descriptor must be claimed in the
    /// claim counter once a Node handle owns it, or released with
    /// `release()`.
    pub fn take(&mut self) -> u32 {
        let Some(slots) = self.batch.as_mut() else {
            return 0;
        };
        // SAFETY: called from JavaScript (lib.rs), on its thread, while
        // JavaScript waits for this call.
        let slots = unsafe { slots.elements() };
        let Some(acceptor) = &self.acceptor else {
            if let Some(error) = slots.first_mut() {
                *error = 0;
            }
            return 0;
        };
        let taken = acceptor.take(slots);
        if let Some(poll) = &self.loop_poll {
            poll.resume();
        }
        if let Some(seat) = &self.share {
            seat.refill();
        }
        u32::try_from(taken).unwrap_or(u32::MAX)
    }

    /// Closes in-flight descriptor `index` (0-based within the last batch's
    /// descriptors), which JavaScript could not wrap.
    pub fn release(&self, index: u32) {
        if let Some(acceptor) = &self.acceptor {
            acceptor.release(index as usize);
        }
    }

    /// `ref()` (true: keep the event loop alive while listening, the
    /// default) or `unref()` (false: let the process exit meanwhile).
    pub fn set_ref(&mut self, env: &Env, referenced: bool) -> Result<()> {
        if let Some(poll) = &self.loop_poll {
            poll.set_ref(referenced);
        }
        match &self.wake {
            Some(wake) => set_referenced(env, wake, referenced),
            None => Ok(()),
        }
    }

    /// Stops accepting, in the order ownership needs: untaken connections
    /// go to the other members of a shared socket while the claim counter is
    /// alive; the poll handle leaves libuv's epoll before the socket closes;
    /// then the socket and what JavaScript never took are closed.
    fn stop_accepting(&mut self) {
        if let Some(seat) = self.share.take() {
            seat.release();
        }
        if let Some(poll) = self.loop_poll.take() {
            poll.close();
        }
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.shutdown();
        }
    }

    /// Stops accepting for good but keeps the socket and what was accepted
    /// (for `take()`) until close(): a successor process took the socket over
    /// (lib/handover.js). A pipe's path now belongs to the successor, so
    /// close() leaves it in place.
    pub fn stop_accepting_for_handover(&mut self) {
        if let Some(seat) = &self.share {
            seat.stop_for_handover();
        }
        if let Some(poll) = &self.loop_poll {
            poll.close();
        }
        if let Some(acceptor) = &self.acceptor {
            acceptor.stop_accepting();
        }
        self.unlink_on_close = None;
    }

    /// Stops listening now: when this returns the port (or path) is free, and
    /// connections accepted but not yet handed to JavaScript are closed.
    pub fn close(&mut self, env: &Env) -> Result<()> {
        self.stop_accepting();
        self.bound = None;
        if let Some(claim) = self.claim.take() {
            // shutdown() settled the last batch and let go of its memory.
            claim.delete(env);
        }
        if let Some(slots) = self.batch.take() {
            slots.delete(env);
        }
        if let Some(wake) = self.wake.take() {
            // The accept task may hold its clone a moment longer; it must not
            // keep the process alive meanwhile.
            set_referenced(env, &wake, false)?;
        }
        if let Some(hook) = self.cleanup.take() {
            env.remove_env_cleanup_hook(hook)?;
        }
        if let Some(path) = self.unlink_on_close.take() {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// Sets the blockList and PROXY protocol settings; before listen().
    pub fn configure_admission(
        &mut self,
        options: &AdmissionOptions,
    ) -> std::result::Result<(), String> {
        if self.acceptor.is_some() {
            return Err("rust-net: admission settings after listen()".to_string());
        }
        self.admission = Some(Arc::new(options.build()?));
        Ok(())
    }

    /// Replaces the blockList's rules (the JavaScript BlockList changed).
    pub fn set_block_rules(&self, rules: Option<Vec<String>>) -> std::result::Result<(), String> {
        let Some(admission) = &self.admission else {
            return Ok(());
        };
        let rules = rules
            .as_deref()
            .map(crate::admission::info::rules)
            .transpose()?;
        admission.set_blocked(rules);
        Ok(())
    }

    /// What the PROXY header said for each descriptor of the last batch.
    pub fn take_proxied(&self) -> Vec<Option<ProxyHeader>> {
        match &self.acceptor {
            Some(acceptor) => acceptor.proxied_of_batch(|p| ProxyHeader::from(p)),
            None => Vec::new(),
        }
    }

    /// Refusals not yet reported to JavaScript.
    pub fn take_rejections(&self) -> Vec<RejectionInfo> {
        self.admission.as_ref().map_or_else(Vec::new, |a| {
            a.take_reports()
                .into_iter()
                .map(RejectionInfo::from)
                .collect()
        })
    }

    /// A client descriptor JavaScript owns is closing (per-client counts).
    pub fn peer_closed(&self, fd: i32) {
        if let Some(admission) = &self.admission {
            admission.peer_closed(fd);
        }
    }

    /// Connections counted by what admission did with them.
    pub fn admission_counts(&self) -> std::collections::HashMap<String, u32> {
        self.admission
            .as_ref()
            .map(|a| a.counts())
            .unwrap_or_default()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}
