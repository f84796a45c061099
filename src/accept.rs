//! The accept loop and the descriptor handoff to JavaScript.
//!
//! A tokio task accepts on the listening socket and parks each new descriptor
//! in [`Acceptor`]'s queue, waking JavaScript once per batch (never once per
//! connection) — for TCP, when TCP_INFO says a few connections are waiting,
//! before accepting them, so the event loop's wake-up overlaps the accept4
//! calls instead of following them. Every descriptor is owned by
//! exactly one party at any moment, so none leaks and none is closed twice,
//! whatever happens — a close() racing accepts, a throwing listener, or a
//! worker thread terminated in the middle of a batch:
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
//! Descriptors never travel inside threadsafe-function calls: N-API drops the
//! payloads of calls still queued when an environment shuts down without
//! running any destructor, and may dispatch a call while JavaScript can no
//! longer run; the wake-up carries nothing, and JavaScript pulls the batch.
//!
//! Everything shared between the JavaScript thread and the runtime sits behind
//! one mutex. JavaScript takes it once per batch and on close; the accept task
//! holds it while it accepts, so `close()` can drop the listening socket on
//! the JavaScript thread — freeing the port before `close()` returns — without
//! ever racing an `accept4` on a descriptor number that was just reused.

use std::future::poll_fn;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::runtime::Handle;

use crate::errno::uv_code;
use crate::socket;

/// At most this many accepts per readiness wake-up before JavaScript is told,
/// so a connection storm is delivered in steady batches rather than one
/// huge one.
const ACCEPT_BATCH: usize = 128;

/// Wake JavaScript before accepting only when at most this many connections
/// are waiting. Its take() waits on the acceptor lock until the round's
/// accept4 calls (≈ 3 µs each) are done, so for a larger backlog an early
/// wake-up would park the event loop on the lock instead of letting it serve
/// its other work; there the wake-up comes after the round, as it always did.
const EARLY_WAKE_MAX: usize = 4;

/// How long to leave connections in the kernel backlog when the process is out
/// of descriptors and the reserve descriptor is gone too.
const EMFILE_BACKOFF: Duration = Duration::from_millis(100);

/// Set by tests to make the next accept round panic, proving that a Rust
/// panic on the accept thread becomes an 'error' event, not an abort.
pub static INJECT_PANIC: AtomicBool = AtomicBool::new(false);

/// libuv's `UV_EIO`, reported (as an accept error) after an internal failure.
const UV_EIO: i32 = -libc::EIO;

/// What one accept round produced, for the task that runs it.
enum Step {
    /// Connections (or an error) are ready and JavaScript must be woken.
    Notify,
    /// Out of descriptors with no way to shed, or an internal failure: wait,
    /// then try again.
    Backoff,
    /// The server closed; the task ends.
    Closed,
    /// JavaScript can never be woken again; the server shuts down.
    Gone,
    /// The round panicked; JavaScript is told, then the loop pauses.
    Failed,
}

struct State {
    /// The listening socket, registered with the runtime; `None` once closed.
    listener: Option<AsyncFd<Socket>>,
    /// Accepted descriptors JavaScript has not taken yet.
    ready: Vec<OwnedFd>,
    /// The batch JavaScript is wrapping; `None` where JavaScript closed one
    /// itself through [`Acceptor::release`].
    in_flight: Vec<Option<OwnedFd>>,
    /// An accept error JavaScript has not been told about (a libuv errno).
    error: i32,
    /// A wake-up is on its way to JavaScript; do not send another.
    notified: bool,
    /// The queue is full: the task waits for JavaScript to drain it.
    throttled: bool,
    /// The accept task's waker, so `close()` and a drain can wake it.
    waker: Option<Waker>,
    /// The last round ended once it had accepted every connection TCP_INFO
    /// counted, without counting again, so a count of 0 now is trustworthy.
    counted_out: bool,
    /// How many undelivered descriptors may pile up before accepting pauses;
    /// beyond it, connections wait in the kernel backlog as they do in Node.
    limit: usize,
}

/// The state one listening server shares between JavaScript and its task.
pub struct Acceptor {
    state: Mutex<State>,
    /// How many descriptors of `in_flight` JavaScript has claimed. Its
    /// memory is the backing store of a JavaScript Int32Array; only the
    /// JavaScript thread touches it while JavaScript can run.
    claimed: AtomicI32,
}

impl Acceptor {
    /// Registers a listening socket with the runtime. Must run on the thread
    /// that owns the socket; `handle` is the shared runtime.
    pub fn new(listener: Socket, backlog: i32, handle: &Handle) -> io::Result<Arc<Self>> {
        let _guard = handle.enter();
        // SAFETY: a socket2 `Socket` owns its descriptor and always reports
        // the same one; it is only closed when the `AsyncFd` drops it.
        let listener = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Arc::new(Acceptor {
            state: Mutex::new(State {
                listener: Some(listener),
                ready: Vec::new(),
                in_flight: Vec::new(),
                error: 0,
                notified: false,
                throttled: false,
                counted_out: false,
                waker: None,
                limit: usize::try_from(backlog).unwrap_or(0).max(64),
            }),
            claimed: AtomicI32::new(0),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent
        // in a way that matters more than stopping service, so carry on.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the listening socket while it is open.
    pub fn with_listener<R>(&self, f: impl FnOnce(&Socket) -> R) -> Option<R> {
        let state = self.lock();
        state.listener.as_ref().map(|l| f(l.get_ref()))
    }

    /// The claim counter's memory, for the JavaScript Int32Array over it.
    pub fn claimed_ptr(&self) -> *mut i32 {
        self.claimed.as_ptr()
    }

    /// Settles the previous batch: what JavaScript claimed is its own now;
    /// what it did not reach goes back to the front of the queue.
    fn reconcile(&self, state: &mut State) {
        let claimed = usize::try_from(self.claimed.swap(0, Ordering::Relaxed)).unwrap_or(0);
        let claimed = claimed.min(state.in_flight.len());
        for fd in state.in_flight.drain(..claimed).flatten() {
            // Owned by a Node handle now, which will close it.
            let _ = fd.into_raw_fd();
        }
        let rest: Vec<OwnedFd> = state.in_flight.drain(..).flatten().collect();
        if !rest.is_empty() {
            state.ready.splice(0..0, rest);
        }
    }

    /// Hands JavaScript the next batch: `[error, fd, fd, ...]`, where `error`
    /// is an accept error (a libuv errno) or 0. JavaScript must claim each
    /// descriptor as it wraps it. Lets the task accept again if it had paused
    /// on a full queue.
    pub fn take(&self) -> Vec<i32> {
        let mut state = self.lock();
        self.reconcile(&mut state);
        state.notified = false;
        let mut batch = Vec::with_capacity(state.ready.len() + 1);
        batch.push(std::mem::take(&mut state.error));
        let ready = std::mem::take(&mut state.ready);
        batch.extend(ready.iter().map(AsRawFd::as_raw_fd));
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
        let closed = self.lock().in_flight.get_mut(index).and_then(Option::take);
        drop(closed);
    }

    /// Stops accepting for good: closes the listening socket (the port or
    /// path is free when this returns), closes every accepted descriptor
    /// JavaScript has not taken, and wakes the task so it ends.
    pub fn shutdown(&self) {
        let (listener, ready, waker) = {
            let mut state = self.lock();
            self.reconcile(&mut state);
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

    /// One round of accepting: accepts until the socket would block, the
    /// batch is full or the queue is at its limit.
    fn poll_accept(&self, cx: &mut Context<'_>, notify: &dyn Fn() -> bool) -> Poll<Step> {
        let mut guard = self.lock();
        if INJECT_PANIC.swap(false, Ordering::Relaxed) {
            panic!("rust-net: injected accept-loop panic (test hook)");
        }
        let State { listener, ready, error, notified, throttled, waker, limit, counted_out, .. } = &mut *guard;
        let Some(listener) = listener.as_ref() else {
            return Poll::Ready(Step::Closed);
        };
        let mut accepted = 0usize;
        // Connections TCP_INFO says are queued, so a batch need not end on an
        // accept4 that fails with EAGAIN; Unix sockets cannot be counted.
        let mut waiting = 0usize;
        let mut can_count = true;
        loop {
            if ready.len() >= *limit {
                *throttled = true;
                break;
            }
            let mut ready_guard = match listener.poll_read_ready(cx) {
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(err)) => {
                    *error = uv_code(&err);
                    break;
                }
                Poll::Pending => break,
            };
            let fd = listener.get_ref().as_raw_fd();
            if can_count && waiting == 0 {
                let trusted = accepted > 0 || std::mem::take(counted_out);
                match socket::pending_connections(fd) {
                    Some(0) if trusted => {
                        // Race-free: a connection arriving after the count
                        // makes the socket readable again.
                        ready_guard.clear_ready();
                        continue;
                    }
                    Some(n) if n > 0 => {
                        waiting = n;
                        if !*notified && n <= EARLY_WAKE_MAX {
                            // Wake JavaScript before accepting, so its
                            // wake-up (5-8 µs here, bench/RESULTS.md E7)
                            // overlaps the accept4s; its take() waits on this
                            // lock until they are queued.
                            *notified = true;
                            if !notify() {
                                return Poll::Ready(Step::Gone);
                            }
                        }
                    }
                    // Not countable, or woken with nothing counted: let
                    // accept4 decide for the rest of this round, so a kernel
                    // that does not count can never stall the server.
                    _ => can_count = false,
                }
            }
            match socket::accept(fd) {
                Ok(conn) => {
                    ready.push(conn);
                    accepted += 1;
                    waiting = waiting.saturating_sub(1);
                    if accepted >= ACCEPT_BATCH {
                        break;
                    }
                    if can_count && waiting == 0 {
                        // Everything counted is accepted: end the round so
                        // JavaScript can take them (it was woken before the
                        // accepts, or is woken now), and count again in the
                        // next round, off the path to 'connection'.
                        *counted_out = true;
                        break;
                    }
                }
                Err(err) => match err.raw_os_error() {
                    Some(libc::EAGAIN) => ready_guard.clear_ready(),
                    // The peer gave up before we accepted: libuv skips these.
                    Some(libc::ECONNABORTED) | Some(libc::EINTR) => {}
                    Some(libc::EMFILE) | Some(libc::ENFILE) => {
                        if !crate::reserve::shed_pending(fd) {
                            // Nothing to shed with: leave the connections in
                            // the backlog and look again a little later.
                            return Poll::Ready(Step::Backoff);
                        }
                        ready_guard.clear_ready();
                    }
                    _ => {
                        *error = uv_code(&err);
                        break;
                    }
                },
            }
        }
        let has_work = !ready.is_empty() || *error != 0;
        if has_work && !*notified {
            *notified = true;
            return Poll::Ready(Step::Notify);
        }
        if (*counted_out || accepted >= ACCEPT_BATCH) && !*throttled {
            // More may be waiting: come back after letting others run.
            cx.waker().wake_by_ref();
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The accept task: accept, tell JavaScript, repeat until closed.
    /// `notify` wakes JavaScript and returns false once it never can again
    /// (its environment is gone), which ends the server.
    pub async fn run(self: Arc<Self>, notify: impl Fn() -> bool) {
        loop {
            let step = poll_fn(|cx| {
                // A panic here must not end the task silently (the server
                // would stop accepting) nor cross into Node: it is reported
                // as an accept error and the loop carries on after a pause.
                catch_unwind(AssertUnwindSafe(|| self.poll_accept(cx, &notify))).unwrap_or_else(|_| {
                    self.lock().error = UV_EIO;
                    Poll::Ready(Step::Failed)
                })
            })
            .await;
            match step {
                Step::Failed => {
                    if !notify() {
                        self.shutdown();
                        return;
                    }
                    tokio::time::sleep(EMFILE_BACKOFF).await;
                }
                Step::Notify => {
                    if !notify() {
                        self.shutdown();
                        return;
                    }
                }
                Step::Backoff => {
                    tokio::time::sleep(EMFILE_BACKOFF).await;
                    // Descriptors may have been freed: take the reserve back.
                    crate::reserve::ensure();
                }
                Step::Closed => return,
                Step::Gone => {
                    self.shutdown();
                    return;
                }
            }
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
