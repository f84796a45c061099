//! The acceptor: what one listening server shares between the code that
//! accepts (a placement, see [`crate::placement`]) and JavaScript, and the
//! claim protocol that hands each accepted descriptor to a Node handle.
//!
//! Every descriptor is owned by exactly one party at any moment, so none
//! leaks and none is closed twice, whatever happens — a close() racing
//! accepts, a throwing listener, or a worker thread terminated in the middle
//! of a batch:
//!
//! - `ready`: accepted, not yet handed out. Rust owns them.
//! - `in_flight`: handed to JavaScript by [`Acceptor::take`], still owned by
//!   Rust. JavaScript wraps each one in a Node handle and *claims* it by
//!   bumping a counter in memory shared with it (a one-element Int32Array),
//!   in the same straight-line code as the wrap, so no interruption can fall
//!   between the two. Claimed descriptors belong to their Node handles.
//! - [`Acceptor::reconcile`] settles a batch: the claimed prefix is released
//!   to JavaScript, the rest goes back to the front of `ready` (delivered
//!   next time) or, at shutdown, is closed.
//!
//! The queues are private to [`state`], so that only its methods move a
//! descriptor from one owner to the next. What happens to a connection
//! between `accept4` and the queue (blockList, PROXY header) is decided in
//! one place for both placements, [`Acceptor::admit`].
//!
//! Descriptors never travel inside calls into JavaScript: N-API drops the
//! payloads of threadsafe-function calls still queued when an environment
//! shuts down without running any destructor; the wake-up carries nothing,
//! and JavaScript pulls the batch.
//!
//! Everything shared sits behind one mutex. With the runtime placement the
//! accept task holds it while it accepts, so `close()` can drop the listening
//! socket on the JavaScript thread — freeing the port before `close()`
//! returns — without ever racing an `accept4` on a descriptor number that was
//! just reused. With the event-loop placement only the JavaScript thread
//! takes it, so it is never contended.

mod admit;
pub mod overload;
mod state;
pub mod stats;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use socket2::Socket;
use tokio::io::unix::AsyncFd;

use crate::admission::{Admission, Proxied};
use crate::errno::uv_code;
use crate::socket;

pub use admit::Admitted;
pub use state::{Held, Queue, State, Withdrawn};

/// At most this many accepts before JavaScript is told, so a connection
/// storm is delivered in steady batches rather than one huge one.
pub const ACCEPT_BATCH: usize = 128;

/// How long to leave connections in the kernel backlog when the process is
/// out of descriptors and the reserve descriptor is gone too, in either
/// placement: long enough for descriptors to be freed, short enough that the
/// backlog does not overflow under a steady load.
pub const EMFILE_BACKOFF_MS: u64 = 100;

/// How many connections a closing `reusePort` listener takes at most
/// where the kernel cannot count its queue (see [`Acceptor::drain_and_close`]).
const DRAIN_UNCOUNTED: usize = 4096;

/// [`EMFILE_BACKOFF_MS`] as a duration, for tokio's timer.
pub const EMFILE_BACKOFF: Duration = Duration::from_millis(EMFILE_BACKOFF_MS);

/// Panics if a test asked for it (`injectAcceptPanic()`, see
/// [`crate::test_hooks`]). Without the `test-hooks` feature it is empty, so
/// the release addon's accept rounds check nothing.
#[cfg(feature = "test-hooks")]
pub use crate::test_hooks::maybe_injected_panic;

/// See the `test-hooks` version above.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn maybe_injected_panic() {}

/// The listening socket, as the placement that accepts on it holds it.
pub enum Listening {
    /// Registered with the tokio runtime (the runtime placement).
    Runtime(AsyncFd<Socket>),
    /// Polled by the event loop of the JavaScript thread (libuv's epoll).
    EventLoop(Socket),
}

impl Listening {
    pub fn socket(&self) -> &Socket {
        match self {
            Listening::Runtime(fd) => fd.get_ref(),
            Listening::EventLoop(socket) => socket,
        }
    }

    pub fn fd(&self) -> RawFd {
        self.socket().as_raw_fd()
    }
}

/// What one `accept4` on the listening socket gave.
pub enum Accepted {
    Conn(OwnedFd),
    /// Nothing is waiting.
    WouldBlock,
    /// The peer gave up before we accepted, or a signal: libuv skips these.
    Skipped,
    /// Out of descriptors: the pending connections were accepted and closed
    /// with the reserve descriptor, as libuv does.
    Shed,
    /// Out of descriptors and no reserve to shed with: leave the connections
    /// in the backlog and look again a little later.
    Exhausted,
    /// Any other error, as a libuv errno, for an 'error' event.
    Error(i32),
}

/// One `accept4` with libuv's handling of each outcome.
pub fn accept_one(fd: RawFd) -> Accepted {
    match socket::accept(fd) {
        Ok(conn) => Accepted::Conn(conn),
        Err(err) => match err.raw_os_error() {
            Some(libc::EAGAIN) => Accepted::WouldBlock,
            Some(libc::ECONNABORTED) | Some(libc::EINTR) => Accepted::Skipped,
            Some(libc::EMFILE) | Some(libc::ENFILE) => {
                if crate::reserve::shed_pending(fd) {
                    Accepted::Shed
                } else {
                    Accepted::Exhausted
                }
            }
            _ => Accepted::Error(uv_code(&err)),
        },
    }
}

/// Takes each descriptor a shared listener accepts, in place of its own
/// queue: [`crate::share`] hands it to one of the servers sharing the socket.
pub trait Route: Send + Sync {
    /// Called with the accepting listener's state locked, with its `ready`
    /// (the route's holding queue: its length throttles accepting) and
    /// `error` (an accept error the route passes on); `proxied` is what the
    /// connection's PROXY header said.
    fn route(&self, held: Held<'_>, error: &mut i32, conn: OwnedFd, proxied: Option<Box<Proxied>>);
}

/// The state one listening server shares between JavaScript and whatever
/// accepts for it.
pub struct Acceptor {
    state: Mutex<State>,
    /// How many descriptors of `in_flight` JavaScript has claimed: the one
    /// element of a JavaScript Int32Array, which the listener keeps alive
    /// until it closes; null before listen() and after shutdown().
    claimed: AtomicPtr<i32>,
    /// The blockList and PROXY protocol settings, when the server has any.
    admission: Option<Arc<Admission>>,
    /// Connections accepted and accept errors, for `serverStats()`.
    counters: stats::Counters,
    /// Load-aware accepting (`pauseAcceptAfter`), when the server has it.
    overload: Option<overload::Overload>,
}

impl Acceptor {
    pub fn new(listener: Listening, backlog: i32) -> Self {
        Self::with_socket(Some(listener), backlog)
    }

    fn with_socket(listener: Option<Listening>, backlog: i32) -> Self {
        let drops = listener.as_ref().and_then(|l| socket::listen_drops(l.fd()));
        Acceptor {
            state: Mutex::new(State::new(listener, backlog)),
            claimed: AtomicPtr::new(std::ptr::null_mut()),
            admission: None,
            counters: stats::Counters::new(drops.unwrap_or(0)),
            overload: None,
        }
    }

    /// The same acceptor, deciding admission with `admission`.
    pub fn admitting(mut self, admission: Option<Arc<Admission>>) -> Self {
        self.admission = admission;
        self
    }

    /// The same acceptor, pausing for load as `overload` says.
    pub fn pacing(mut self, overload: Option<overload::Overload>) -> Self {
        self.overload = overload;
        self
    }

    /// The blockList and PROXY protocol settings, when the server has any.
    pub fn admission(&self) -> Option<&Arc<Admission>> {
        self.admission.as_ref()
    }

    /// Queues a connection whose PROXY header was read (on the runtime)
    /// with what it said. Returns whether JavaScript must be woken for it.
    pub fn deliver(&self, conn: OwnedFd, proxied: Option<Box<Proxied>>) -> bool {
        let mut state = self.lock();
        if state.listening().is_none() {
            // Closed meanwhile: the connection goes with the server.
            return false;
        }
        state.push_accepted(conn, proxied);
        state.mark_notified()
    }

    /// Marks a wake-up as due (a refusal to report); returns whether one
    /// must be sent now.
    pub fn wake_due(&self) -> bool {
        let mut state = self.lock();
        state.listening().is_some() && state.mark_notified()
    }

    /// What the PROXY header said for each descriptor of the batch `take()`
    /// returned last (None where there was no header), in batch order,
    /// converted by `f`. The entries stay until their descriptor is claimed
    /// or closed, so a batch cut short (a throwing listener) is delivered
    /// with them next time.
    pub fn proxied_of_batch<R>(&self, f: impl Fn(&Proxied) -> R) -> Vec<Option<R>> {
        let state = self.lock();
        state
            .in_flight_proxied()
            .iter()
            .map(|p| p.as_deref().map(&f))
            .collect()
    }

    /// An acceptor with no socket of its own: a member of a shared listener,
    /// whose queue the group's accept loop fills (see [`crate::share`]).
    pub fn queue_only(backlog: i32) -> Self {
        Self::with_socket(None, backlog)
    }

    /// How many descriptors JavaScript has been handed or will be, and has
    /// not claimed: the queue plus the unclaimed rest of the batch it is
    /// wrapping. The load measure a shared listener dispatches by.
    pub fn waiting(&self, state: &State) -> usize {
        let counter = self.claimed.load(Ordering::Acquire);
        let claimed = if counter.is_null() {
            0
        } else {
            // SAFETY: as in take_claimed(): live until shutdown() nulls it
            // under the state lock, which the caller holds (`state`).
            usize::try_from(unsafe { AtomicI32::from_ptr(counter) }.load(Ordering::Relaxed))
                .unwrap_or(0)
        };
        state.waiting(claimed)
    }

    /// Takes back every descriptor JavaScript has not claimed — the queue and
    /// the unclaimed rest of the current batch — without closing them, for a
    /// member of a shared listener that is leaving (see [`crate::share`]).
    /// The caller holds the state lock (`state`).
    pub fn withdraw(&self, state: &mut State) -> Vec<Withdrawn> {
        self.reconcile(state);
        state.withdraw()
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent
        // in a way that matters more than stopping service, so carry on.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the listening socket while it is open.
    pub fn with_listener<R>(&self, f: impl FnOnce(&Socket) -> R) -> Option<R> {
        let state = self.lock();
        state.listening().map(|l| f(l.socket()))
    }

    /// Where JavaScript counts its claims: the memory of an Int32Array that
    /// stays alive until [`Acceptor::shutdown`] returns.
    pub fn set_claim_counter(&self, counter: *mut i32) {
        let _state = self.lock();
        self.claimed.store(counter, Ordering::Release);
    }

    /// Reads and resets the claim counter (0 when there is none).
    fn take_claimed(&self) -> i32 {
        let counter = self.claimed.load(Ordering::Acquire);
        if counter.is_null() {
            return 0;
        }
        // SAFETY: the counter is a live, aligned i32 of an Int32Array kept
        // alive until shutdown() nulls this pointer (under the state lock,
        // which the caller holds); only the JavaScript thread writes it.
        unsafe { AtomicI32::from_ptr(counter) }.swap(0, Ordering::Relaxed)
    }

    /// Settles the previous batch: what JavaScript claimed is its own now;
    /// what it did not reach goes back to the front of the queue.
    fn reconcile(&self, state: &mut State) {
        let claimed = usize::try_from(self.take_claimed()).unwrap_or(0);
        state.reconcile(claimed);
    }

    /// Hands JavaScript the next batch by writing `[error, fd, fd, ...]`
    /// into `slots` (JavaScript's own Int32Array), where `error` is an
    /// accept error (a libuv errno) or 0; returns how many descriptors it
    /// wrote, at most `slots.len() - 1` (the rest stay queued for the next
    /// take). JavaScript must claim each descriptor as it wraps it. Lets
    /// accepting resume if it had paused on a full queue.
    pub fn take(&self, slots: &mut [i32]) -> usize {
        let mut state = self.lock();
        self.reconcile(&mut state);
        state.take_batch(slots)
    }

    /// Closes the in-flight descriptor at `index` (JavaScript could not wrap
    /// it); JavaScript then claims it like the others.
    pub fn release(&self, index: usize) {
        let closed = self.lock().release(index);
        if let (Some(admission), Some(fd)) = (&self.admission, &closed) {
            admission.peer_closed(fd.as_raw_fd());
        }
        // Closed outside the lock: it is a syscall.
        drop(closed);
    }

    /// Records an internal failure (a panic while accepting) as an accept
    /// error for JavaScript.
    pub fn fail(&self, code: i32) {
        self.lock().set_error(code);
    }

    /// Stops accepting for good but keeps the socket open and the queue for
    /// JavaScript: the socket was handed over to a successor process, which
    /// now accepts from the same kernel queue. Ends the runtime task (the
    /// event-loop placement's caller closes its poll handle). Connections
    /// whose PROXY header is still being read are still delivered.
    pub fn stop_accepting(&self) {
        let waker = {
            let mut state = self.lock();
            state.stop();
            state.take_waker()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// A `reusePort` listener leaving its group (see `crate::listener::leave`):
    /// with `drain` (a kernel that would reset its queue), takes every
    /// connection waiting in the kernel's accept queue into this queue, then
    /// closes the listening socket, all under the state lock so that nothing
    /// else runs between the last `accept4` and the close; connections
    /// arriving after that `accept4` go to the group's other listeners, or
    /// are reset in the microseconds before the close. Without `drain` (the
    /// kernel migrates its queue) it only closes. Either way what was
    /// accepted stays queued: returns how many descriptors wait for
    /// JavaScript, the queue and the part of the last batch it had not
    /// claimed. A drained peer whose PROXY header has not arrived yet is
    /// closed (its header would be read on the runtime, after the close).
    pub fn drain_and_close(&self, drain: bool) -> usize {
        let (waiting, unread, waker) = {
            let mut state = self.lock();
            self.reconcile(&mut state);
            let mut unread = Vec::new();
            if let Some(fd) = state.listening().map(Listening::fd).filter(|_| drain) {
                // What the queue holds, and a batch more for those arriving
                // meanwhile: a steady flood must not keep the server open.
                let bound =
                    socket::pending_connections(fd).unwrap_or(DRAIN_UNCOUNTED) + ACCEPT_BATCH;
                for _ in 0..bound {
                    match self.accept(fd) {
                        Accepted::Conn(conn) => {
                            if let Admitted::ReadHeader(conn, _) = self.admit(&mut state, conn) {
                                unread.push(conn);
                            }
                        }
                        Accepted::Skipped | Accepted::Shed => {}
                        Accepted::WouldBlock | Accepted::Exhausted | Accepted::Error(_) => break,
                    }
                }
            }
            // Closed here, under the lock, right after the last accept4.
            drop(state.take_listener());
            (state.waiting(0), unread, state.take_waker())
        };
        drop(unread);
        if let Some(waker) = waker {
            waker.wake();
        }
        waiting
    }

    /// Stops accepting for good: closes the listening socket (the port or
    /// path is free when this returns), closes every accepted descriptor
    /// JavaScript has not taken, and wakes the runtime task so it ends. With
    /// the event-loop placement the caller stops the poll handle first.
    pub fn shutdown(&self) {
        let (listener, ready, waker) = {
            let mut state = self.lock();
            self.reconcile(&mut state);
            // The counter's memory may go once this returns.
            self.claimed.store(std::ptr::null_mut(), Ordering::Release);
            state.clear_proxied();
            (state.take_listener(), state.withdraw(), state.take_waker())
        };
        // Dropped outside the lock: deregistering and closing are syscalls.
        drop(listener);
        drop(ready);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
