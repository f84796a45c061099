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
//! and for connections that arrive one at a time (bench/RESULTS.md).
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

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use napi::sys;
use socket2::Socket;

use crate::acceptor::{
    accept_one, maybe_injected_panic, Accepted, Acceptor, Listening, ACCEPT_BATCH,
};
use crate::admission::Next;
use crate::placement::runtime_thread::{EMFILE_BACKOFF, UV_EIO};
use crate::socket;

extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_poll_init_socket(loop_: *mut sys::uv_loop_s, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(
        handle: *mut c_void,
        events: c_int,
        cb: unsafe extern "C" fn(*mut c_void, c_int, c_int),
    ) -> c_int;
    fn uv_poll_stop(handle: *mut c_void) -> c_int;
    fn uv_timer_init(loop_: *mut sys::uv_loop_s, handle: *mut c_void) -> c_int;
    fn uv_timer_start(
        handle: *mut c_void,
        cb: unsafe extern "C" fn(*mut c_void),
        timeout: u64,
        repeat: u64,
    ) -> c_int;
    fn uv_close(handle: *mut c_void, cb: Option<unsafe extern "C" fn(*mut c_void)>);
    fn uv_ref(handle: *mut c_void);
    fn uv_unref(handle: *mut c_void);
}

/// `uv_handle_type` values (stable across libuv 1.x).
const UV_POLL: c_int = 8;
const UV_TIMER: c_int = 13;
const UV_READABLE: c_int = 1;

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

/// This thread's polls and its environment's teardown hook.
struct Teardown {
    /// The async cleanup hook, once added; removed when teardown is done.
    hook: sys::napi_async_cleanup_hook_handle,
    polls: Vec<Weak<Ctx>>,
    /// Handles closing for the teardown, not yet closed.
    pending: usize,
}

thread_local! {
    static TEARDOWN: RefCell<Teardown> =
        const { RefCell::new(Teardown { hook: ptr::null_mut(), polls: Vec::new(), pending: 0 }) };
}

/// Remembers `ctx` for the teardown, adding this thread's hook first.
///
/// # Safety
/// On `env`'s thread.
unsafe fn watch_for_teardown(env: sys::napi_env, ctx: &Rc<Ctx>) {
    TEARDOWN.with(|t| {
        let mut t = t.borrow_mut();
        if t.hook.is_null() {
            let mut hook = ptr::null_mut();
            if sys::napi_add_async_cleanup_hook(env, Some(on_teardown), ptr::null_mut(), &mut hook)
                == sys::Status::napi_ok
            {
                t.hook = hook;
            }
        }
        t.polls.retain(|p| p.strong_count() > 0);
        t.polls.push(Rc::downgrade(ctx));
    });
}

/// Removes the hook once nothing is left closing: Node's teardown goes on.
fn finish_teardown_if_done(t: &mut Teardown) {
    if t.pending == 0 && !t.hook.is_null() {
        // SAFETY: the hook was added on this thread and not removed yet.
        unsafe {
            sys::napi_remove_async_cleanup_hook(std::mem::replace(&mut t.hook, ptr::null_mut()))
        };
    }
}

/// A uv handle's `data`, its first field in every libuv version.
///
/// # Safety
/// `handle` must point at an initialised uv handle.
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
            return Err(-libc::EBADF);
        };
        let mut uv_loop: *mut sys::uv_loop_s = ptr::null_mut();
        if sys::napi_get_uv_event_loop(env, &mut uv_loop) != sys::Status::napi_ok
            || uv_loop.is_null()
        {
            return Err(-libc::EINVAL);
        }
        let poll = libc::calloc(1, uv_handle_size(UV_POLL));
        let timer = libc::calloc(1, uv_handle_size(UV_TIMER));
        if poll.is_null() || timer.is_null() {
            libc::free(poll);
            libc::free(timer);
            return Err(-libc::ENOMEM);
        }
        let rc = uv_poll_init_socket(uv_loop, poll, fd);
        if rc != 0 {
            libc::free(poll);
            libc::free(timer);
            return Err(rc);
        }
        // uv_timer_init cannot fail once the loop is valid.
        uv_timer_init(uv_loop, timer);

        let mut callback_ref = ptr::null_mut();
        sys::napi_create_reference(env, callback, 1, &mut callback_ref);
        let mut name = ptr::null_mut();
        sys::napi_create_string_utf8(
            env,
            c"rust-net:accept".as_ptr(),
            "rust-net:accept".len() as isize,
            &mut name,
        );
        let mut async_context = ptr::null_mut();
        sys::napi_async_init(env, ptr::null_mut(), name, &mut async_context);

        let ctx = Rc::new(Ctx {
            acceptor,
            env,
            callback: Cell::new(callback_ref),
            async_context: Cell::new(async_context),
            poll,
            timer,
            polling: Cell::new(false),
            backing_off: Cell::new(false),
            closing: Cell::new(false),
            teardown: Cell::new(false),
        });
        // One count per handle, released by its close callback.
        *data(poll) = Rc::into_raw(Rc::clone(&ctx));
        *data(timer) = Rc::into_raw(Rc::clone(&ctx));
        let this = LoopPoll { ctx };

        watch_for_teardown(env, &this.ctx);
        this.resume();
        if !this.ctx.polling.get() {
            this.close();
            return Err(-libc::EINVAL);
        }
        Ok(this)
    }

    /// Starts the poll handle again after a pause (a full queue, or a
    /// backoff that has ended). Called after every `take()`.
    pub fn resume(&self) {
        resume(&self.ctx);
    }

    /// `ref()`/`unref()`: whether a listening server keeps the loop alive.
    pub fn set_ref(&self, referenced: bool) {
        if self.ctx.closing.get() {
            return;
        }
        // SAFETY: both handles are open (not closing) and on this thread.
        unsafe {
            for handle in [self.ctx.poll, self.ctx.timer] {
                if referenced {
                    uv_ref(handle);
                } else {
                    uv_unref(handle);
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
        // SAFETY: on the environment's thread, with the environment alive
        // (close() comes from JavaScript or a finaliser, never after the
        // teardown hook, which sets `closing` first).
        unsafe {
            sys::napi_delete_reference(ctx.env, ctx.callback.replace(ptr::null_mut()));
            sys::napi_async_destroy(ctx.env, ctx.async_context.replace(ptr::null_mut()));
        }
    }
}

fn resume(ctx: &Ctx) {
    if ctx.closing.get() || ctx.polling.get() || ctx.backing_off.get() {
        return;
    }
    // SAFETY: the poll handle is open (not closing) and on this thread.
    if unsafe { uv_poll_start(ctx.poll, UV_READABLE, on_readable) } == 0 {
        ctx.polling.set(true);
    }
}

fn pause(ctx: &Ctx) {
    if ctx.polling.replace(false) {
        // SAFETY: the poll handle is open and on this thread.
        unsafe { uv_poll_stop(ctx.poll) };
    }
}

fn close_handles(ctx: &Ctx) {
    ctx.polling.set(false);
    // SAFETY: both handles are open; each close callback releases the
    // handle's count of the context and frees the handle.
    unsafe {
        uv_close(ctx.poll, Some(on_close));
        uv_close(ctx.timer, Some(on_close));
    }
}

unsafe extern "C" fn on_close(handle: *mut c_void) {
    // SAFETY: `data` holds the count this handle was given in `start`.
    let ctx = unsafe { Rc::from_raw(*data(handle)) };
    // SAFETY: allocated with calloc in `start`; libuv is done with it.
    unsafe { libc::free(handle) };
    if ctx.teardown.get() {
        TEARDOWN.with(|t| {
            let mut t = t.borrow_mut();
            t.pending = t.pending.saturating_sub(1);
            finish_teardown_if_done(&mut t);
        });
    }
}

/// The environment (a worker, or the main thread at exit) is going away:
/// close the handles (Node waits for it) and the listening socket.
unsafe extern "C" fn on_teardown(_hook: sys::napi_async_cleanup_hook_handle, _arg: *mut c_void) {
    let polls = TEARDOWN.with(|t| std::mem::take(&mut t.borrow_mut().polls));
    for ctx in polls.iter().filter_map(Weak::upgrade) {
        if ctx.closing.replace(true) {
            continue;
        }
        ctx.teardown.set(true);
        TEARDOWN.with(|t| t.borrow_mut().pending += 2);
        close_handles(&ctx);
        ctx.acceptor.shutdown();
    }
    TEARDOWN.with(|t| finish_teardown_if_done(&mut t.borrow_mut()));
}

unsafe extern "C" fn on_backoff_end(handle: *mut c_void) {
    // SAFETY: the timer's `data` is a live context until its close callback.
    let ctx = unsafe { &**data(handle) };
    ctx.backing_off.set(false);
    // Descriptors may have been freed: take the reserve back.
    crate::reserve::ensure();
    resume(ctx);
}

/// What an accept round leaves for the callback.
struct Round {
    deliver: bool,
    backoff: bool,
}

/// Accepts what is waiting: the connections TCP_INFO counts (at most a
/// batch), or until accept4 would block where nothing can be counted.
fn accept_round(acceptor: &Acceptor) -> Round {
    let mut guard = acceptor.lock();
    maybe_injected_panic();
    let state = &mut *guard;
    let Some(listener) = state.listener.as_ref() else {
        return Round {
            deliver: false,
            backoff: false,
        };
    };
    let fd = listener.fd();
    // One getsockopt instead of the accept4 that fails with EAGAIN at the
    // end of every round; a count of 0 with the socket readable is not
    // trusted (accept4 then decides), so the loop can never spin.
    let counted = socket::pending_connections(fd).filter(|&n| n > 0);
    let want = counted.unwrap_or(ACCEPT_BATCH).min(ACCEPT_BATCH);
    let mut backoff = false;
    let mut reports = false;
    let mut accepted = 0;
    while accepted < want && state.ready.len() < state.limit {
        match accept_one(fd) {
            Accepted::Conn(conn) => {
                accepted += 1;
                match &acceptor.admission {
                    None => state.ready.push(conn),
                    Some(admission) => match admission.on_accept(conn) {
                        Next::Deliver(conn) => state.ready.push(conn),
                        Next::Refused => reports |= admission.report,
                        // Servers that read PROXY headers accept on the
                        // runtime (Listener::listen); never deliver a
                        // connection whose header was not read.
                        Next::ReadHeader(conn, _) => drop(conn),
                    },
                }
            }
            Accepted::Skipped => {}
            Accepted::WouldBlock | Accepted::Shed => break,
            Accepted::Exhausted => {
                backoff = true;
                break;
            }
            Accepted::Error(code) => {
                state.error = code;
                break;
            }
        }
    }
    if state.ready.len() >= state.limit {
        state.throttled = true;
    }
    Round {
        deliver: !state.ready.is_empty() || state.error != 0 || reports,
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
    if round.backoff || ctx.acceptor.lock().throttled {
        pause(&ctx);
    }
    if round.backoff && !ctx.backing_off.replace(true) {
        let ms = u64::try_from(EMFILE_BACKOFF.as_millis()).unwrap_or(100);
        // SAFETY: the timer is open (not closing) and on this thread.
        unsafe { uv_timer_start(ctx.timer, on_backoff_end, ms, 0) };
    }
    if round.deliver {
        // SAFETY: on the environment's thread inside a libuv callback, with
        // the callback reference live (not closing).
        unsafe { call_javascript(&ctx) };
    }
}

/// Calls the batch callback as Node calls its own `onconnection`: through
/// MakeCallback, so process.nextTick and microtasks run after it and an
/// exception reaches 'uncaughtException'.
unsafe fn call_javascript(ctx: &Ctx) {
    let env = ctx.env;
    let mut scope = ptr::null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
        return;
    }
    let mut callback = ptr::null_mut();
    // napi_make_callback wants an object as `this`; the callback ignores it.
    let mut recv = ptr::null_mut();
    if sys::napi_get_reference_value(env, ctx.callback.get(), &mut callback) == sys::Status::napi_ok
        && !callback.is_null()
        && sys::napi_get_global(env, &mut recv) == sys::Status::napi_ok
    {
        let mut result = ptr::null_mut();
        let status = sys::napi_make_callback(
            env,
            ctx.async_context.get(),
            recv,
            callback,
            0,
            ptr::null(),
            &mut result,
        );
        if status == sys::Status::napi_pending_exception {
            let mut exception = ptr::null_mut();
            if sys::napi_get_and_clear_last_exception(env, &mut exception) == sys::Status::napi_ok {
                sys::napi_fatal_exception(env, exception);
            }
        }
    }
    sys::napi_close_handle_scope(env, scope);
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
    let mut uv_loop: *mut sys::uv_loop_s = ptr::null_mut();
    if sys::napi_get_uv_event_loop(env, &mut uv_loop) != sys::Status::napi_ok || uv_loop.is_null() {
        return false;
    }
    let probe = libc::calloc(1, uv_handle_size(UV_POLL));
    if probe.is_null() {
        return false;
    }
    match uv_poll_init_socket(uv_loop, probe, fd) {
        0 => {
            uv_close(probe, Some(free_handle));
            false
        }
        rc => {
            libc::free(probe);
            rc == -libc::EEXIST
        }
    }
}

unsafe extern "C" fn free_handle(handle: *mut c_void) {
    // SAFETY: allocated with calloc by `loop_watches`; libuv is done with it.
    unsafe { libc::free(handle) };
}
