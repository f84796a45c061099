//! The runtime placement: a task on the shared tokio runtime's thread accepts
//! and parks each new descriptor in the [`Acceptor`]'s queue, waking
//! JavaScript through a threadsafe function once per batch (never once per
//! connection) — for TCP, when TCP_INFO says a few connections are waiting,
//! before accepting them, so the event loop's wake-up overlaps the accept4
//! calls instead of following them.
//!
//! It pays off when the accept thread has a core of its own: the event loop
//! then does no accept4 and goes round once per batch. Without a spare core
//! every hand-off is a context switch, and the event-loop placement wins.

use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::runtime::Handle;

use crate::acceptor::overload::Load;
use crate::acceptor::{
    maybe_injected_panic, Accepted, Acceptor, Admitted, Listening, ACCEPT_BATCH, EMFILE_BACKOFF,
};
use crate::errno::UV_EIO;
use crate::socket;

/// Wake JavaScript before accepting only when at most this many connections
/// are waiting. Its take() waits on the acceptor lock until the round's
/// accept4 calls (≈ 3 µs each) are done, so for a larger backlog an early
/// wake-up would park the event loop on the lock instead of letting it serve
/// its other work; there the wake-up comes after the round, as it always did.
const EARLY_WAKE_MAX: usize = 4;

/// Wakes JavaScript; false once it never can again (its environment is
/// gone). Shared with the tasks that read PROXY headers.
pub type Notify = Arc<dyn Fn() -> bool + Send + Sync>;

/// What one accept round produced, for the task that runs it.
enum Step {
    /// Connections (or an error) are ready and JavaScript must be woken.
    Notify,
    /// Out of descriptors with no way to shed: wait, then try again.
    Backoff,
    /// The server closed; the task ends.
    Closed,
    /// JavaScript can never be woken again; the server shuts down.
    Gone,
    /// The round panicked; JavaScript is told, then the loop pauses.
    Failed,
    /// Accepting is paused for load (the event loop is behind): look again
    /// after this long.
    Paused(Duration),
}

/// Registers a listening socket with the runtime. Must run on the thread
/// that owns the socket; `handle` is the shared runtime.
pub fn register(listener: Socket, handle: &Handle) -> io::Result<Listening> {
    let _guard = handle.enter();
    // SAFETY: a socket2 `Socket` owns its descriptor and always reports the
    // same one; it is only closed when the `AsyncFd` drops it.
    let fd = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    Ok(Listening::Runtime(fd))
}

/// One round of accepting: accepts until the socket would block, the batch
/// is full or the queue is at its limit.
fn poll_accept(acceptor: &Arc<Acceptor>, cx: &mut Context<'_>, notify: &Notify) -> Poll<Step> {
    let mut reports = false;
    let mut refused = false;
    let mut guard = acceptor.lock();
    // Wake JavaScript before accepting only where what is accepted will
    // reach it: not for a server that reads PROXY headers (it delivers after
    // the header), nor while a flood of blocked peers is being refused
    // (bench/JOURNAL.md, A1).
    let early_wake = match acceptor.admission() {
        None => true,
        Some(admission) => admission.proxy.is_none() && !guard.refused_last_round(),
    };
    maybe_injected_panic();
    if guard.is_stopped() {
        // Handed over: the successor accepts now.
        return Poll::Ready(Step::Closed);
    }
    let (listening, state) = guard.parts();
    let Some(Listening::Runtime(listener)) = listening else {
        return Poll::Ready(Step::Closed);
    };
    // Load-aware accepting: nothing is taken from the kernel while the
    // event loop leaves a batch untaken too long (acceptor/overload.rs).
    let (load, news) = acceptor.load_check(state, listener.get_ref().as_raw_fd());
    if let Load::Paused(after) = load {
        return Poll::Ready(Step::Paused(after));
    }
    reports |= news;
    let mut accepted = 0usize;
    // Connections TCP_INFO says are queued, so a batch need not end on an
    // accept4 that fails with EAGAIN; Unix sockets cannot be counted.
    let mut waiting = 0usize;
    let mut can_count = true;
    loop {
        if state.is_full() {
            state.throttle();
            break;
        }
        let mut ready_guard = match listener.poll_read_ready(cx) {
            Poll::Ready(Ok(guard)) => guard,
            Poll::Ready(Err(err)) => {
                state.set_error(crate::errno::uv_code(&err));
                break;
            }
            Poll::Pending => break,
        };
        let fd = listener.get_ref().as_raw_fd();
        if can_count && waiting == 0 {
            let trusted = accepted > 0 || state.take_counted_out();
            match socket::pending_connections(fd) {
                Some(0) if trusted => {
                    // Race-free: a connection arriving after the count
                    // makes the socket readable again.
                    ready_guard.clear_ready();
                    continue;
                }
                Some(n) if n > 0 => {
                    waiting = n;
                    if early_wake && n <= EARLY_WAKE_MAX && state.mark_notified() {
                        // Wake JavaScript before accepting, so its wake-up
                        // (5-8 µs here, bench/JOURNAL.md E7) overlaps the
                        // accept4s; its take() waits on this lock until they
                        // are queued.
                        if !notify() {
                            return Poll::Ready(Step::Gone);
                        }
                    }
                }
                // Not countable, or woken with nothing counted: let accept4
                // decide for the rest of this round, so a kernel that does
                // not count can never stall the server.
                _ => can_count = false,
            }
        }
        match acceptor.accept(fd) {
            Accepted::Conn(conn) => {
                match acceptor.admit(state, conn) {
                    Admitted::Queued => {}
                    Admitted::Refused { report } => {
                        refused = true;
                        reports |= report;
                    }
                    Admitted::ReadHeader(conn, peer) => {
                        let (acceptor, notify) = (Arc::clone(acceptor), Arc::clone(notify));
                        tokio::spawn(async move {
                            // A false return from notify() (the environment
                            // is gone) is the accept task's to act on; this
                            // connection was queued and goes with the server.
                            if acceptor.admit_after_header(conn, peer).await {
                                let _ = notify();
                            }
                        });
                    }
                }
                accepted += 1;
                waiting = waiting.saturating_sub(1);
                if accepted >= ACCEPT_BATCH {
                    break;
                }
                if can_count && waiting == 0 {
                    // Everything counted is accepted: end the round so
                    // JavaScript can take them (it was woken before the
                    // accepts, or is woken now), and count again in the next
                    // round, off the path to 'connection'.
                    state.set_counted_out();
                    break;
                }
            }
            Accepted::WouldBlock | Accepted::Shed => ready_guard.clear_ready(),
            Accepted::Skipped => {}
            Accepted::Exhausted => return Poll::Ready(Step::Backoff),
            Accepted::Error(code) => {
                state.set_error(code);
                break;
            }
        }
    }
    if accepted > 0 {
        state.set_refused_last_round(refused);
    }
    if state.has_work(reports) && state.mark_notified() {
        return Poll::Ready(Step::Notify);
    }
    if (state.counted_out() || accepted >= ACCEPT_BATCH) && !state.is_throttled() {
        // More may be waiting: come back after letting others run.
        cx.waker().wake_by_ref();
    }
    state.register_waker(cx.waker());
    Poll::Pending
}

/// The accept task: accept, tell JavaScript, repeat until closed. `notify`
/// wakes JavaScript and returns false once it never can again (its
/// environment is gone), which ends the server.
pub async fn run(acceptor: Arc<Acceptor>, notify: Notify) {
    loop {
        let step = poll_fn(|cx| {
            // A panic here must not end the task silently (the server would
            // stop accepting) nor cross into Node: it is reported as an
            // accept error and the loop carries on after a pause.
            catch_unwind(AssertUnwindSafe(|| poll_accept(&acceptor, cx, &notify))).unwrap_or_else(
                |_| {
                    acceptor.fail(UV_EIO);
                    Poll::Ready(Step::Failed)
                },
            )
        })
        .await;
        match step {
            Step::Failed => {
                if !notify() {
                    acceptor.shutdown();
                    return;
                }
                tokio::time::sleep(EMFILE_BACKOFF).await;
            }
            Step::Notify => {
                if !notify() {
                    acceptor.shutdown();
                    return;
                }
            }
            Step::Backoff => {
                tokio::time::sleep(EMFILE_BACKOFF).await;
                // Descriptors may have been freed: take the reserve back.
                crate::reserve::ensure();
            }
            Step::Paused(after) => tokio::time::sleep(after).await,
            Step::Closed => return,
            Step::Gone => {
                acceptor.shutdown();
                return;
            }
        }
    }
}
