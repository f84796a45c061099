//! The few libuv functions the event-loop placement calls (Node exports
//! them to addons), and the handle memory they work on. libuv handles are
//! opaque here: allocated with the size libuv reports, zeroed, freed in
//! their close callback.

use std::ffi::{c_int, c_void};

use napi::sys;

extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    pub fn uv_poll_init_socket(loop_: *mut sys::uv_loop_s, handle: *mut c_void, fd: c_int)
        -> c_int;
    pub fn uv_poll_start(
        handle: *mut c_void,
        events: c_int,
        cb: unsafe extern "C" fn(*mut c_void, c_int, c_int),
    ) -> c_int;
    pub fn uv_poll_stop(handle: *mut c_void) -> c_int;
    pub fn uv_timer_init(loop_: *mut sys::uv_loop_s, handle: *mut c_void) -> c_int;
    pub fn uv_timer_start(
        handle: *mut c_void,
        cb: unsafe extern "C" fn(*mut c_void),
        timeout: u64,
        repeat: u64,
    ) -> c_int;
    pub fn uv_close(handle: *mut c_void, cb: Option<unsafe extern "C" fn(*mut c_void)>);
    pub fn uv_ref(handle: *mut c_void);
    pub fn uv_unref(handle: *mut c_void);
}

/// `uv_handle_type` values (stable across libuv 1.x).
pub const UV_POLL: c_int = 8;
pub const UV_TIMER: c_int = 13;
/// `uv_poll_event`'s `UV_READABLE`.
pub const UV_READABLE: c_int = 1;

/// Zeroed memory for a handle of `kind`, or null when out of memory. Freed
/// with [`free_handle`] (directly if never initialised, else from the
/// handle's close callback).
pub fn alloc_handle(kind: c_int) -> *mut c_void {
    // SAFETY: uv_handle_size only reads a table for a valid handle type
    // (both callers pass one of the constants above).
    let size = unsafe { uv_handle_size(kind) };
    // SAFETY: calloc has no preconditions; a null return is the caller's
    // to check.
    unsafe { libc::calloc(1, size) }
}

/// Frees handle memory from [`alloc_handle`].
///
/// # Safety
/// `handle` is null, never initialised, or closed (libuv is done with it).
pub unsafe fn free_handle(handle: *mut c_void) {
    // SAFETY: calloc'd by alloc_handle and no longer used, per the contract.
    unsafe { libc::free(handle) }
}

/// A close callback that only frees the handle (for handles with no
/// context, such as [`super::loop_watches`]'s probe).
pub unsafe extern "C" fn free_on_close(handle: *mut c_void) {
    // SAFETY: libuv calls this once the handle is closed: it is done with it.
    unsafe { free_handle(handle) };
}

/// The event loop of `env`, or None when Node-API cannot give it.
///
/// # Safety
/// On `env`'s JavaScript thread.
pub unsafe fn event_loop(env: sys::napi_env) -> Option<*mut sys::uv_loop_s> {
    let mut uv_loop: *mut sys::uv_loop_s = std::ptr::null_mut();
    // SAFETY: on env's thread (the caller's contract); the out pointer is
    // a live local.
    let status = unsafe { sys::napi_get_uv_event_loop(env, &mut uv_loop) };
    (status == sys::Status::napi_ok && !uv_loop.is_null()).then_some(uv_loop)
}
