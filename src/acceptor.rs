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

use std::collections::HashMap;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use socket2::Socket;
use tokio::io::unix::AsyncFd;

use crate::admission::{Admission, Proxied};
use crate::errno::uv_code;
use crate::socket;

/// At most this many accepts before JavaScript is told, so a connection
/// storm is delivered in steady batches rather than one huge one.
pub const ACCEPT_BATCH: usize = 128;

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

pub struct State {
    /// The listening socket; `None` once closed.
    pub listener: Option<Listening>,
    /// Accepted descriptors JavaScript has not taken yet.
    pub ready: Vec<OwnedFd>,
    /// The batch JavaScript is wrapping; `None` where JavaScript closed one
    /// itself through [`Acceptor::release`].
    in_flight: Vec<Option<OwnedFd>>,
    /// An accept error JavaScript has not been told about (a libuv errno).
    pub error: i32,
    /// A wake-up is on its way to JavaScript; do not send another.
    pub notified: bool,
    /// The queue is full: accepting waits for JavaScript to drain it.
    pub throttled: bool,
    /// The runtime placement's task waker, so `close()` and a drain can
    /// wake it.
    pub waker: Option<Waker>,
    /// The last round ended once it had accepted every connection TCP_INFO
    /// counted, without counting again, so a count of 0 now is trustworthy.
    pub counted_out: bool,
    /// How many undelivered descriptors may pile up before accepting pauses;
    /// beyond it, connections wait in the kernel backlog as they do in Node.
    pub limit: usize,
    /// What the PROXY header said, for the descriptors in `ready` that had
    /// one (keyed by descriptor: Rust owns them, so the numbers are unique).
    pub proxied: HashMap<RawFd, Box<Proxied>>,
    /// The same for `in_flight`, in batch order.
    in_flight_proxied: Vec<Option<Box<Proxied>>>,
    /// The last accept round closed a connection admission refused: a flood
    /// of blocked peers must not wake JavaScript before each round.
    pub refused_last_round: bool,
    /// Where accepted descriptors go instead of `ready`: the members of a
    /// listener shared across threads (see [`crate::share`]); None for an
    /// ordinary listener.
    pub route: Option<Arc<dyn Route>>,
}

/// Takes each descriptor a shared listener accepts, in place of its own
/// queue: [`crate::share`] hands it to one of the servers sharing the socket.
pub trait Route: Send + Sync {
    /// Called with the accepting listener's state locked, with its `ready`
    /// (the route's holding queue: its length throttles accepting) and
    /// `error` (an accept error the route passes on).
    fn route(&self, ready: &mut Vec<OwnedFd>, error: &mut i32, conn: OwnedFd);
}

/// Queues a newly accepted descriptor for JavaScript (`ready`), or hands it
/// to the route of a shared listener: the one place accept loops deliver
/// to, so that a shared listener needs no accept loop of its own. Takes the
/// fields of [`State`] it needs, so the caller may keep borrowing the
/// listening socket.
pub fn push_ready(
    ready: &mut Vec<OwnedFd>,
    error: &mut i32,
    route: Option<&Arc<dyn Route>>,
    conn: OwnedFd,
) {
    match route {
        Some(route) => route.route(ready, error, conn),
        None => ready.push(conn),
    }
}

impl State {
    /// Queues a connection with what its PROXY header said.
    pub fn queue_proxied(&mut self, conn: OwnedFd, proxied: Option<Box<Proxied>>) {
        if let Some(proxied) = proxied {
            self.proxied.insert(conn.as_raw_fd(), proxied);
        }
        self.ready.push(conn);
    }
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
    pub admission: Option<Arc<Admission>>,
}

impl Acceptor {
    pub fn new(listener: Listening, backlog: i32) -> Self {
        Self::with_socket(Some(listener), backlog)
    }

    fn with_socket(listener: Option<Listening>, backlog: i32) -> Self {
        Acceptor {
            state: Mutex::new(State {
                listener,
                ready: Vec::new(),
                in_flight: Vec::new(),
                error: 0,
                notified: false,
                throttled: false,
                counted_out: false,
                waker: None,
                limit: usize::try_from(backlog).unwrap_or(0).max(64),
                proxied: HashMap::new(),
                in_flight_proxied: Vec::new(),
                refused_last_round: false,
                route: None,
            }),
            claimed: AtomicPtr::new(std::ptr::null_mut()),
            admission: None,
        }
    }

    /// The same acceptor, deciding admission with `admission`.
    pub fn admitting(mut self, admission: Option<Arc<Admission>>) -> Self {
        self.admission = admission;
        self
    }

    /// Queues a connection whose PROXY header was read (on the runtime)
    /// with what it said. Returns whether JavaScript must be woken for it.
    pub fn deliver(&self, conn: OwnedFd, proxied: Option<Box<Proxied>>) -> bool {
        let mut state = self.lock();
        if state.listener.is_none() {
            // Closed meanwhile: the connection goes with the server.
            return false;
        }
        state.queue_proxied(conn, proxied);
        !std::mem::replace(&mut state.notified, true)
    }

    /// Marks a wake-up as due (a refusal to report); returns whether one
    /// must be sent now.
    pub fn wake_due(&self) -> bool {
        let mut state = self.lock();
        state.listener.is_some() && !std::mem::replace(&mut state.notified, true)
    }

    /// What the PROXY header said for each descriptor of the batch `take()`
    /// returned last (None where there was no header), in batch order,
    /// converted by `f`. The entries stay until their descriptor is claimed
    /// or closed, so a batch cut short (a throwing listener) is delivered
    /// with them next time.
    pub fn proxied_of_batch<R>(&self, f: impl Fn(&Proxied) -> R) -> Vec<Option<R>> {
        let state = self.lock();
        state
            .in_flight_proxied
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
        state.ready.len() + state.in_flight.len().saturating_sub(claimed)
    }

    /// Takes back every descriptor JavaScript has not claimed — the queue and
    /// the unclaimed rest of the current batch — without closing them, for a
    /// member of a shared listener that is leaving (see [`crate::share`]).
    /// The caller holds the state lock (`state`).
    pub fn withdraw(&self, state: &mut State) -> Vec<OwnedFd> {
        self.reconcile(state);
        std::mem::take(&mut state.ready)
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
        state.listener.as_ref().map(|l| f(l.socket()))
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
        let claimed = claimed.min(state.in_flight.len());
        for fd in state.in_flight.drain(..claimed).flatten() {
            // Owned by a Node handle now, which will close it (and may
            // reuse its number at once: its header info goes too).
            let _ = fd.into_raw_fd();
        }
        let rest_proxied: Vec<Option<Box<Proxied>>> =
            state.in_flight_proxied.drain(..).skip(claimed).collect();
        for (fd, proxied) in state.in_flight.iter().zip(rest_proxied) {
            if let (Some(fd), Some(proxied)) = (fd, proxied) {
                state.proxied.insert(fd.as_raw_fd(), proxied);
            }
        }
        let rest: Vec<OwnedFd> = state.in_flight.drain(..).flatten().collect();
        if !rest.is_empty() {
            state.ready.splice(0..0, rest);
        }
    }

    /// Hands JavaScript the next batch: `[error, fd, fd, ...]`, where `error`
    /// is an accept error (a libuv errno) or 0. JavaScript must claim each
    /// descriptor as it wraps it. Lets accepting resume if it had paused on
    /// a full queue.
    pub fn take(&self) -> Vec<i32> {
        let mut state = self.lock();
        self.reconcile(&mut state);
        state.notified = false;
        let mut batch = Vec::with_capacity(state.ready.len() + 1);
        batch.push(std::mem::take(&mut state.error));
        let ready = std::mem::take(&mut state.ready);
        batch.extend(ready.iter().map(AsRawFd::as_raw_fd));
        if !state.proxied.is_empty() {
            let State {
                proxied,
                in_flight_proxied,
                ..
            } = &mut *state;
            *in_flight_proxied = ready
                .iter()
                .map(|fd| proxied.remove(&fd.as_raw_fd()))
                .collect();
        }
        state.in_flight = ready.into_iter().map(Some).collect();
        if state.throttled {
            state.throttled = false;
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
        batch
    }

    /// Closes the in-flight descriptor at `index` (JavaScript could not wrap
    /// it); JavaScript then claims it like the others.
    pub fn release(&self, index: usize) {
        let mut state = self.lock();
        let closed = state.in_flight.get_mut(index).and_then(Option::take);
        if let Some(proxied) = state.in_flight_proxied.get_mut(index) {
            *proxied = None;
        }
        drop(state);
        drop(closed);
    }

    /// Records an internal failure (a panic while accepting) as an accept
    /// error for JavaScript.
    pub fn fail(&self, code: i32) {
        self.lock().error = code;
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
            state.proxied.clear();
            state.in_flight_proxied.clear();
            (
                state.listener.take(),
                std::mem::take(&mut state.ready),
                state.waker.take(),
            )
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
