//! `listenerTake(id)` as a plain N-API function, without napi-rs's call
//! wrapper.
//!
//! JavaScript calls `take()` once per batch of connections — once per
//! connection when they arrive one at a time — so its fixed cost is part of
//! every connection's. A `#[napi]` function with arguments pays napi-rs 3's
//! borrow-tracking scope, barrier and deferral on every call: ≈ 1,000 of the
//! ≈ 1,850 instructions a `take()` cost on Node 26 (callgrind, one connection
//! at a time; bench/JOURNAL.md, "Node 24 and 26"). This function takes one
//! number and returns one number, borrows nothing from JavaScript, and so
//! needs none of that: N-API's own three calls are all it makes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::*;
use napi::sys;

/// Adds `listenerTake` to the module's exports.
pub fn register(env: &Env, exports: &Object) -> Result<()> {
    const NAME: &str = "listenerTake";
    let mut function = ptr::null_mut();
    // SAFETY: called during module initialisation on `env`'s thread; the
    // name is valid for the given length and `take` matches napi_callback.
    let status = unsafe {
        sys::napi_create_function(
            env.raw(),
            NAME.as_ptr().cast(),
            NAME.len() as isize,
            Some(take),
            ptr::null_mut(),
            &mut function,
        )
    };
    check(status)?;
    // SAFETY: `exports` is the live exports object of this module and
    // `function` was just created in the same environment.
    let status = unsafe {
        sys::napi_set_named_property(env.raw(), exports.raw(), c"listenerTake".as_ptr(), function)
    };
    check(status)
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::from_reason(format!(
            "rust-net: could not export listenerTake (napi status {status})"
        )))
    }
}

/// `listenerTake(id)`: see [`crate::listener::Listener::take`]. An id that
/// is not a number, or a listener that is closed, takes nothing (0), as the
/// `#[napi]` functions of lib.rs answer for a missing listener.
unsafe extern "C" fn take(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let mut argc = 1usize;
    let mut argv = [ptr::null_mut(); 1];
    // SAFETY: `info` is this call's callback info; argv has room for argc
    // values, and this and data may be null.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    let mut id = u32::MAX;
    if status == sys::Status::napi_ok && argc >= 1 {
        // SAFETY: argv[0] is a value of this call; on failure `id` keeps
        // u32::MAX, which names no listener in practice and takes nothing.
        unsafe { sys::napi_get_value_uint32(env, argv[0], &mut id) };
    }
    // A panic must not unwind into V8: it becomes a JavaScript exception,
    // as `#[napi(catch_unwind)]` makes of it for the other functions.
    let taken = match catch_unwind(AssertUnwindSafe(|| crate::take(id))) {
        Ok(taken) => taken,
        Err(_) => {
            // SAFETY: a NUL-terminated message, on this call's thread.
            unsafe {
                sys::napi_throw_error(env, ptr::null(), c"rust-net: panic in take()".as_ptr())
            };
            return ptr::null_mut();
        }
    };
    let mut result = ptr::null_mut();
    // SAFETY: creates a number in this call's scope; on failure the null
    // result reads as undefined, which JavaScript's loop treats as 0.
    unsafe { sys::napi_create_uint32(env, taken, &mut result) };
    result
}
