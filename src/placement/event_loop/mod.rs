//! The event-loop placement: Rust accepts on the JavaScript thread, when the
//! environment's own libuv loop reports the listening socket readable.
//!
//! A `uv_poll_t` on the Rust-owned listening socket (`uv_poll_init_socket`,
//! one of the libuv functions Node exports to addons) calls
//! [`on_readable`], which accepts the waiting connections into the
//! [`Acceptor`]'s queue and calls the JavaScript batch callback with
//! `napi_make_callback` — the same callback, `take()` and claim protocol as
//! the runtime placement, without the cross-thread wake-up: no accept thread
//! to wake, no threadsafe function, no lock contention. This is the cheaper
//! placement when the process has no core to spare for an accept thread,
//! and for connections that arrive one at a time (bench/JOURNAL.md).
//!
//! Everything here runs on the JavaScript thread; [`LoopPoll`] is `!Send`.
//! The uv handles outlive `close()` until libuv's close callbacks run, so
//! their shared context is reference counted: one count for each open
//! handle and one for the [`LoopPoll`] the Listener holds.
//!
//! At the environment's teardown (a worker ending, the process exiting) the
//! handles must be closed before libuv's loop is, and Node waits only for
//! async cleanup hooks to finish. One such hook per thread, added with the
//! first poll and removed only at teardown: removing a hook schedules an
//! immediate (Node releases its reference to the environment from one), which
//! a `close()` must not leave behind — Node's own handles never do
//! (parallel/test-handle-wrap-hasref).

mod js;
mod teardown;
mod uv;

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;

use napi::sys;
use socket2::Socket;

use crate::acceptor::{
    maybe_injected_panic, Accepted, Acceptor, Admitted, Listening, ACCEPT_BATCH, EMFILE_BACKOFF_MS,
};
use crate::errno::{UV_EBADF, UV_EINVAL, UV_EIO, UV_ENOMEM};
use crate::socket;
use js::{call_javascript, JsSide};
use teardown::{finish_teardown_if_done, watch_for_teardown, TEARDOWN};
use uv::{alloc_handle, free_handle, UV_POLL, UV_READABLE, UV_TIMER};

/// What the two uv handles and the Listener share.
struct Ctx {
    acceptor: Arc<Acceptor>,
    env: sys::napi_env,
    callback: Cell<sys::napi_ref>,
    async_context: Cell<sys::napi_async_context>,
    poll: *mut c_void,
    timer: *mut c_void,
    /// The poll handle is started (not paused on a full queue or a backoff).
    polling: Cell<bool>,
    /// The backoff timer runs; the poll resumes when it fires.
    backing_off: Cell<bool>,
    /// The handles are closing or closed: nothing may start them again.
    closing: Cell<bool>,
    /// Closing was started by the environment's teardown: its close
    /// callbacks count down [`Teardown::pending`].
    teardown: Cell<bool>,
}

/// A uv handle's `data`, its first field in every libuv version.
///
/// # Safety
/// `handle` must point at a uv handle from [`alloc_handle`].
unsafe fn data(handle: *mut c_void) -> *mut *const Ctx {
    handle.cast::<*const Ctx>()
}

/// The Listener's side of an event-loop acceptor.
pub struct LoopPoll {
    ctx: Rc<Ctx>,
}

/// Creates the listening state for this placement (nothing to register:
/// the poll handle is made by [`LoopPoll::start`]).
pub fn listening(socket: Socket) -> Listening {
    Listening::EventLoop(socket)
}

impl LoopPoll {
    /// Starts polling the acceptor's listening socket on `env`'s loop.
    /// Returns a libuv errno on failure (the caller shuts the acceptor down).
    ///
    /// # Safety
    /// Must run on `env`'s JavaScript thread, with `callback` a live function
    /// value of that environment.
    pub unsafe fn start(
        env: sys::napi_env,
        callback: sys::napi_value,
        acceptor: Arc<Acceptor>,
    ) -> Result<LoopPoll, i32> {
        let Some(fd) = acceptor.with_listener(|s| s.as_raw_fd()) else {
            return Err(UV_EBADF);
        };
        // SAFETY: on env's thread (this function's contract).
        let Some(uv_loop) = (unsafe { uv::event_loop(env) }) else {
            return Err(UV_EINVAL);
        };
        // SAFETY: as above, with `callback` live.
        let js = unsafe { JsSide::new(env, callback) }?;
        let (poll, timer) = (alloc_handle(UV_POLL), alloc_handle(UV_TIMER));
        let rc = if poll.is_null() || timer.is_null() {
            UV_ENOMEM
        } else {
            // SAFETY: env's loop, on its thread; `poll` is handle-sized
            // zeroed memory from alloc_handle.
            unsafe { uv::uv_poll_init_socket(uv_loop, poll, fd) }
        };
        if rc != 0 {
            // SAFETY: neither handle was initialised, so libuv never saw
            // them; on env's thread for the JavaScript side.
            unsafe {
                free_handle(poll);
                free_handle(timer);
                js.release(env);
            }
            return Err(rc);
        }
        // SAFETY: as for the poll handle.
        let rc = unsafe { uv::uv_timer_init(uv_loop, timer) };
        if rc != 0 {
            // SAFETY: the poll handle is initialised, so it is closed (its
            // callback frees it); the timer never was, so it is freed now.
            unsafe {
                uv::uv_close(poll, Some(uv::free_on_close));
                free_handle(timer);
                js.release(env);
            }
            return Err(rc);
        }

        let ctx = Rc::new(Ctx {
            acceptor,
            env,
            callback: Cell::new(js.callback),
            async_context: Cell::new(js.async_context),
            poll,
            timer,
            polling: Cell::new(false),
            backing_off: Cell::new(false),
            closing: Cell::new(false),
            teardown: Cell::new(false),
        });
        // SAFETY: both handles are initialised; `data` is theirs to set. One
        // count per handle, released by its close callback.
        unsafe {
            *data(poll) = Rc::into_raw(Rc::clone(&ctx));
            *data(timer) = Rc::into_raw(Rc::clone(&ctx));
        }
        let this = LoopPoll { ctx };

        // SAFETY: on env's thread.
        unsafe { watch_for_teardown(env, &this.ctx) };
        let rc = resume(&this.ctx);
        if rc != 0 {
            this.close();
            return Err(rc);
        }
        Ok(this)
    }

    /// Starts the poll handle again after a pause (a full queue, or a
    /// backoff that has ended). Called after every `take()`. Should libuv
    /// refuse, the error is recorded for JavaScript and the backoff timer
    /// tries again (and wakes JavaScript if it fails again), so a server
    /// never stops accepting silently.
    pub fn resume(&self) {
        let rc = resume(&self.ctx);
        if rc != 0 {
            self.ctx.acceptor.fail(rc);
            start_backoff(&self.ctx);
        }
    }

    /// `ref()`/`unref()`: whether a listening server keeps the loop alive.
    pub fn set_ref(&self, referenced: bool) {
        if self.ctx.closing.get() {
            return;
        }
        for handle in [self.ctx.poll, self.ctx.timer] {
            // SAFETY: both handles are open (not closing) and on this thread.
            unsafe {
                if referenced {
                    uv::uv_ref(handle);
                } else {
                    uv::uv_unref(handle);
                }
            }
        }
    }

    /// Stops polling now (libuv removes the descriptor from its epoll before
    /// `uv_close` returns, so the socket may be closed right after) and
    /// frees the JavaScript callback.
    pub fn close(&self) {
        let ctx = &self.ctx;
        if ctx.closing.replace(true) {
            return;
        }
        close_handles(ctx);
        let js = JsSide {
            callback: ctx.callback.replace(ptr::null_mut()),
            async_context: ctx.async_context.replace(ptr::null_mut()),
        };
        // SAFETY: on the environment's thread, with the environment alive
        // (close() comes from JavaScript, never after the teardown hook,
        // which sets `closing` first); taken out of `ctx`, so released once.
        unsafe { js.release(ctx.env) };
    }
}

/// Starts the poll handle unless it runs, is paused for a backoff, or is
/// closing; 0 or libuv's errno.
fn resume(ctx: &Ctx) -> c_int {
    if ctx.closing.get() || ctx.polling.get() || ctx.backing_off.get() {
        return 0;
    }
    // SAFETY: the poll handle is open (not closing) and on this thread.
    let rc = unsafe { uv::uv_poll_start(ctx.poll, UV_READABLE, on_readable) };
    if rc == 0 {
        ctx.polling.set(true);
    }
    rc
}

fn pause(ctx: &Ctx) {
    if ctx.polling.replace(false) {
        // SAFETY: the poll handle is open and on this thread.
        let rc = unsafe { uv::uv_poll_stop(ctx.poll) };
        // uv_poll_stop fails only for a handle that is not a poll, which
        // this is; the handle counts as stopped either way.
        let _ = rc;
    }
}

/// Pauses accepting for [`EMFILE_BACKOFF_MS`], after which
/// [`on_backoff_end`] resumes it.
fn start_backoff(ctx: &Ctx) {
    if ctx.closing.get() || ctx.backing_off.replace(true) {
        return;
    }
    pause(ctx);
    // SAFETY: the timer is open (not closing) and on this thread.
    let rc = unsafe { uv::uv_timer_start(ctx.timer, on_backoff_end, EMFILE_BACKOFF_MS, 0) };
    if rc != 0 {
        // No timer to resume with: resume now instead, rather than never.
        ctx.backing_off.set(false);
        ctx.acceptor.fail(rc);
        let _ = resume(ctx);
    }
}

fn close_handles(ctx: &Ctx) {
    ctx.polling.set(false);
    // SAFETY: both handles are open; each close callback releases the
    // handle's count of the context and frees the handle.
    unsafe {
        uv::uv_close(ctx.poll, Some(on_close));
        uv::uv_close(ctx.timer, Some(on_close));
    }
}

unsafe extern "C" fn on_close(handle: *mut c_void) {
    // SAFETY: `data` holds the count this handle was given in `start`.
    let ctx = unsafe { Rc::from_raw(*data(handle)) };
    // SAFETY: libuv is done with the handle once it calls this.
    unsafe { free_handle(handle) };
    if ctx.teardown.get() {
        TEARDOWN.with(|t| {
            let mut t = t.borrow_mut();
            t.pending = t.pending.saturating_sub(1);
            finish_teardown_if_done(&mut t);
        });
    }
}

unsafe extern "C" fn on_backoff_end(handle: *mut c_void) {
    // SAFETY: the timer's `data` is a live context until its close callback.
    let ctx = unsafe { &**data(handle) };
    ctx.backing_off.set(false);
    // Descriptors may have been freed: take the reserve back.
    crate::reserve::ensure();
    let rc = resume(ctx);
    if rc != 0 {
        // Polling could not start again: tell JavaScript (an accept error),
        // whose take() tries again.
        ctx.acceptor.fail(rc);
        // SAFETY: on the environment's thread inside a libuv callback; the
        // callback reference is live (the timer is not closed).
        unsafe { call_javascript(ctx) };
    }
}

/// What an accept round leaves for the callback.
struct Round {
    deliver: bool,
    backoff: bool,
}

/// Accepts what is waiting: the connections TCP_INFO counts (at most a
/// batch), or until accept4 would block where nothing can be counted.
fn accept_round(acceptor: &Acceptor) -> Round {
    let mut state = acceptor.lock();
    maybe_injected_panic();
    let Some(fd) = state.listening().map(Listening::fd) else {
        return Round {
            deliver: false,
            backoff: false,
        };
    };
    // One getsockopt instead of the accept4 that fails with EAGAIN at the
    // end of every round; a count of 0 with the socket readable is not
    // trusted (accept4 then decides), so the loop can never spin.
    let counted = socket::pending_connections(fd).filter(|&n| n > 0);
    let want = counted.unwrap_or(ACCEPT_BATCH).min(ACCEPT_BATCH);
    let mut backoff = false;
    let mut reports = false;
    let mut accepted = 0;
    while accepted < want && !state.is_full() {
        match acceptor.accept(fd) {
            Accepted::Conn(conn) => {
                accepted += 1;
                match acceptor.admit(&mut state, conn) {
                    Admitted::Queued => {}
                    Admitted::Refused { report } => reports |= report,
                    // Servers that read PROXY headers accept on the runtime
                    // (Listener::listen): a header that did not come whole
                    // cannot be waited for here, and a connection whose
                    // header was not read is never delivered.
                    Admitted::ReadHeader(conn, _) => drop(conn),
                }
            }
            Accepted::Skipped => {}
            Accepted::WouldBlock | Accepted::Shed => break,
            Accepted::Exhausted => {
                backoff = true;
                break;
            }
            Accepted::Error(code) => {
                state.set_error(code);
                break;
            }
        }
    }
    if state.is_full() {
        state.throttle();
    }
    Round {
        deliver: state.has_work(reports),
        backoff,
    }
}

unsafe extern "C" fn on_readable(handle: *mut c_void, status: c_int, _events: c_int) {
    // SAFETY: the poll's `data` is a live context until its close callback;
    // the clone keeps it alive while JavaScript (which may close the server)
    // runs below.
    let ctx = unsafe {
        let raw = *data(handle);
        Rc::increment_strong_count(raw);
        Rc::from_raw(raw)
    };
    if ctx.closing.get() {
        return;
    }
    let round = if status < 0 {
        ctx.acceptor.fail(status);
        Round {
            deliver: true,
            backoff: false,
        }
    } else {
        // A panic must neither unwind into libuv nor stop the server
        // silently: it is reported as an accept error, then polling pauses.
        catch_unwind(AssertUnwindSafe(|| accept_round(&ctx.acceptor))).unwrap_or_else(|_| {
            ctx.acceptor.fail(UV_EIO);
            Round {
                deliver: true,
                backoff: true,
            }
        })
    };
    if round.backoff {
        start_backoff(&ctx);
    } else if ctx.acceptor.lock().is_throttled() {
        pause(&ctx);
    }
    if round.deliver {
        // SAFETY: on the environment's thread inside a libuv callback, with
        // the callback reference live (not closing).
        unsafe { call_javascript(&ctx) };
    }
}

/// Whether `env`'s event loop already watches descriptor `fd` (another
/// server, socket or poll handle of this thread has it). libuv refuses to
/// open a handle on such a descriptor with `EEXIST` (`uv_tcp_open`,
/// `uv_pipe_open`), which is what Node reports for `listen({ fd })` then;
/// the same check on a throwaway poll handle tells us.
///
/// # Safety
/// Must run on `env`'s JavaScript thread.
pub unsafe fn loop_watches(env: sys::napi_env, fd: c_int) -> bool {
    // SAFETY: on env's thread (this function's contract).
    let Some(uv_loop) = (unsafe { uv::event_loop(env) }) else {
        return false;
    };
    let probe = alloc_handle(UV_POLL);
    if probe.is_null() {
        return false;
    }
    // SAFETY: env's loop on its thread; `probe` is handle-sized zeroed
    // memory, closed (and so freed) if initialised, freed directly if not.
    unsafe {
        match uv::uv_poll_init_socket(uv_loop, probe, fd) {
            0 => {
                uv::uv_close(probe, Some(uv::free_on_close));
                false
            }
            rc => {
                free_handle(probe);
                rc == crate::errno::UV_EEXIST
            }
        }
    }
}
