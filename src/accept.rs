//! The accept loop and the descriptor handoff to JavaScript.
//!
//! A tokio task accepts on the listening socket and parks each new descriptor
//! in [`Acceptor`]'s queue; JavaScript drains the whole queue on each wake-up.
//! Descriptors never travel inside a threadsafe-function call: N-API drops the
//! payloads of calls still queued when an environment shuts down without
//! running any destructor, which would leak them. Kept here instead, every
//! descriptor is always owned by exactly one of: this queue, JavaScript (after
//! [`Acceptor::take`]), or nobody because it was closed.
//!
//! Everything shared between the JavaScript thread and the runtime sits behind
//! one mutex. JavaScript takes it once per batch and on close; the accept task
//! holds it while it accepts, so `close()` can drop the listening socket on
//! the JavaScript thread — freeing the port before `close()` returns — without
//! ever racing an `accept4` on a descriptor number that was just reused.

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
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

/// How long to leave connections in the kernel backlog when the process is out
/// of descriptors and the reserve descriptor is gone too.
const EMFILE_BACKOFF: Duration = Duration::from_millis(100);

/// What one accept round produced, for the task that runs it.
enum Step {
    /// Connections (or an error) are ready and JavaScript must be woken.
    Notify,
    /// Out of descriptors with no way to shed: wait, then try again.
    Backoff,
    /// The server closed; the task ends.
    Closed,
}

struct State {
    /// The listening socket, registered with the runtime; `None` once closed.
    listener: Option<AsyncFd<Socket>>,
    /// Accepted descriptors JavaScript has not taken yet.
    ready: Vec<OwnedFd>,
    /// An accept error JavaScript has not been told about (a libuv errno).
    error: i32,
    /// A wake-up is on its way to JavaScript; do not send another.
    notified: bool,
    /// The queue is full: the task waits for JavaScript to drain it.
    throttled: bool,
    /// The accept task's waker, so `close()` and a drain can wake it.
    waker: Option<Waker>,
    /// How many undelivered descriptors may pile up before accepting pauses;
    /// beyond it, connections wait in the kernel backlog as they do in Node.
    limit: usize,
}

/// The state one listening server shares between JavaScript and its task.
pub struct Acceptor {
    state: Mutex<State>,
}

/// A batch of work for JavaScript: an accept error (0 if none) and the
/// descriptors to wrap in sockets.
pub struct Batch {
    pub error: i32,
    pub fds: Vec<OwnedFd>,
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
                error: 0,
                notified: false,
                throttled: false,
                waker: None,
                limit: usize::try_from(backlog).unwrap_or(0).max(64),
            }),
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

    /// Hands everything accepted so far to JavaScript, and lets the task
    /// accept again if it had paused on a full queue.
    pub fn take(&self) -> Batch {
        let mut state = self.lock();
        state.notified = false;
        let batch = Batch {
            error: std::mem::take(&mut state.error),
            fds: std::mem::take(&mut state.ready),
        };
        if state.throttled {
            state.throttled = false;
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
        batch
    }

    /// Stops accepting for good: closes the listening socket (the port or
    /// path is free when this returns), closes every accepted descriptor
    /// JavaScript has not taken, and wakes the task so it ends.
    pub fn shutdown(&self) {
        let (listener, ready, waker) = {
            let mut state = self.lock();
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
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Step> {
        let mut guard = self.lock();
        let State { listener, ready, error, notified, throttled, waker, limit } = &mut *guard;
        let Some(listener) = listener.as_ref() else {
            return Poll::Ready(Step::Closed);
        };
        let mut accepted = 0usize;
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
            match socket::accept(fd) {
                Ok(conn) => {
                    ready.push(conn);
                    accepted += 1;
                    if accepted >= ACCEPT_BATCH {
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
        if accepted >= ACCEPT_BATCH && !*throttled {
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
            match poll_fn(|cx| self.poll_accept(cx)).await {
                Step::Notify => {
                    if !notify() {
                        self.shutdown();
                        return;
                    }
                }
                Step::Backoff => tokio::time::sleep(EMFILE_BACKOFF).await,
                Step::Closed => return,
            }
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
