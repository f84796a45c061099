//! The JavaScript side of an event-loop poll: the batch callback's
//! reference and async context, and calling it as Node calls its own
//! `onconnection`.

use std::ptr;

use napi::sys;

use super::Ctx;
use crate::errno::UV_EINVAL;

/// The JavaScript side of a poll: a reference to the batch callback and the
/// async context it is called in.
pub(super) struct JsSide {
    pub(super) callback: sys::napi_ref,
    pub(super) async_context: sys::napi_async_context,
}

impl JsSide {
    /// # Safety
    /// On `env`'s thread, with `callback` a live function of `env`.
    pub(super) unsafe fn new(env: sys::napi_env, callback: sys::napi_value) -> Result<JsSide, i32> {
        let mut callback_ref = ptr::null_mut();
        // SAFETY: on env's thread with a live value (the caller's contract).
        if unsafe { sys::napi_create_reference(env, callback, 1, &mut callback_ref) }
            != sys::Status::napi_ok
        {
            return Err(UV_EINVAL);
        }
        const NAME: &std::ffi::CStr = c"rust-net:accept";
        let mut name = ptr::null_mut();
        let mut async_context = ptr::null_mut();
        // SAFETY: as above; NAME is NUL-terminated and `len` excludes it.
        let ok = unsafe {
            sys::napi_create_string_utf8(env, NAME.as_ptr(), NAME.count_bytes() as isize, &mut name)
                == sys::Status::napi_ok
                && sys::napi_async_init(env, ptr::null_mut(), name, &mut async_context)
                    == sys::Status::napi_ok
        };
        let side = JsSide {
            callback: callback_ref,
            async_context,
        };
        if !ok {
            // SAFETY: on env's thread; what was created is released.
            unsafe { side.release(env) };
            return Err(UV_EINVAL);
        }
        Ok(side)
    }

    /// Deletes the reference and destroys the async context.
    ///
    /// # Safety
    /// On `env`'s thread while it is alive, once per `JsSide`.
    pub(super) unsafe fn release(self, env: sys::napi_env) {
        // A failure of either leaves nothing to do in a close path: at worst
        // the function stays alive until the environment goes.
        if !self.callback.is_null() {
            // SAFETY: created on this env's thread and not deleted yet.
            let _ = unsafe { sys::napi_delete_reference(env, self.callback) };
        }
        if !self.async_context.is_null() {
            // SAFETY: as above.
            let _ = unsafe { sys::napi_async_destroy(env, self.async_context) };
        }
    }
}

/// Calls the batch callback as Node calls its own `onconnection`: through
/// MakeCallback, so process.nextTick and microtasks run after it and an
/// exception reaches 'uncaughtException'.
///
/// # Safety
/// On the environment's thread, from a libuv callback (no JavaScript on
/// the stack), with `ctx.callback` live.
pub(super) unsafe fn call_javascript(ctx: &Ctx) {
    let env = ctx.env;
    let mut scope = ptr::null_mut();
    // SAFETY: on env's thread (this function's contract).
    if unsafe { sys::napi_open_handle_scope(env, &mut scope) } != sys::Status::napi_ok {
        // No scope, no call: the batch stays queued and the next readable
        // socket (or take()) delivers it.
        return;
    }
    let mut callback = ptr::null_mut();
    // napi_make_callback wants an object as `this`; the callback ignores it.
    let mut recv = ptr::null_mut();
    // SAFETY: on env's thread inside the scope just opened; the reference
    // is live (the contract) and every out pointer is a live local.
    unsafe {
        if sys::napi_get_reference_value(env, ctx.callback.get(), &mut callback)
            == sys::Status::napi_ok
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
                if sys::napi_get_and_clear_last_exception(env, &mut exception)
                    == sys::Status::napi_ok
                {
                    // Hands it to 'uncaughtException' (or ends the process
                    // as Node does); nothing is left to do here if it fails.
                    let _ = sys::napi_fatal_exception(env, exception);
                }
            }
        }
        // Fails only for a scope that is not the innermost, which it is.
        let _ = sys::napi_close_handle_scope(env, scope);
    }
}
