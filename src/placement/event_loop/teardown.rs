//! The environment's teardown (a worker ending, the process exiting): this
//! thread's poll handles must be closed before libuv's loop is, and Node
//! waits only for async cleanup hooks to finish. See the parent module.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::rc::{Rc, Weak};

use napi::sys;

use super::{close_handles, Ctx};

/// This thread's polls and its environment's teardown hook.
pub(super) struct Teardown {
    /// The async cleanup hook, once added; removed when teardown is done.
    hook: sys::napi_async_cleanup_hook_handle,
    polls: Vec<Weak<Ctx>>,
    /// Handles closing for the teardown, not yet closed.
    pub(super) pending: usize,
}

thread_local! {
    pub(super) static TEARDOWN: RefCell<Teardown> =
        const { RefCell::new(Teardown { hook: ptr::null_mut(), polls: Vec::new(), pending: 0 }) };
}

/// Remembers `ctx` for the teardown, adding this thread's hook first.
///
/// # Safety
/// On `env`'s thread.
pub(super) unsafe fn watch_for_teardown(env: sys::napi_env, ctx: &Rc<Ctx>) {
    TEARDOWN.with(|t| {
        let mut t = t.borrow_mut();
        if t.hook.is_null() {
            let mut hook = ptr::null_mut();
            // SAFETY: on env's thread (the caller's contract); `on_teardown`
            // matches the hook signature and uses no argument.
            let status = unsafe {
                sys::napi_add_async_cleanup_hook(env, Some(on_teardown), ptr::null_mut(), &mut hook)
            };
            // On failure (only for an environment already tearing down) the
            // hook stays null and the next poll tries again; until then
            // libuv's own loop close ends these handles.
            if status == sys::Status::napi_ok {
                t.hook = hook;
            }
        }
        t.polls.retain(|p| p.strong_count() > 0);
        t.polls.push(Rc::downgrade(ctx));
    });
}

/// Removes the hook once nothing is left closing: Node's teardown goes on.
pub(super) fn finish_teardown_if_done(t: &mut Teardown) {
    if t.pending == 0 && !t.hook.is_null() {
        // SAFETY: the hook was added on this thread and not removed yet.
        let status = unsafe {
            sys::napi_remove_async_cleanup_hook(std::mem::replace(&mut t.hook, ptr::null_mut()))
        };
        // Nothing to do on failure: the handle is forgotten either way, and
        // Node ends the teardown when the environment goes.
        let _ = status;
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
