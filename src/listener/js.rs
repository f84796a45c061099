//! The JavaScript values a [`Listener`](super::Listener) holds between
//! calls: the threadsafe function that wakes JavaScript (runtime placement
//! and shared groups), and the Int32Arrays it shares with JavaScript (claim counter, batch).

use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

use crate::errno;

/// The JavaScript callback of a listening server, called with no arguments
/// when connections (or an accept error) wait in `take()`.
pub type ConnectionCallback<'a> = Function<'a, (), Unknown<'static>>;
pub(super) type Wake = ThreadsafeFunction<(), Unknown<'static>, (), Status, false>;

/// `ref()`/`unref()` of a threadsafe function: whether it keeps the event
/// loop alive, which is what a listening Node server does unless unref'd.
pub(super) fn set_referenced(env: &Env, wake: &Wake, referenced: bool) -> Result<()> {
    wake.handle.with_read_aborted(|aborted| {
        if aborted {
            return Ok(());
        }
        // SAFETY: the function is not aborted, so N-API still owns a live
        // threadsafe function, and we are on its environment's thread.
        let status = unsafe {
            if referenced {
                napi::sys::napi_ref_threadsafe_function(env.raw(), wake.raw())
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), wake.raw())
            }
        };
        if status == napi::sys::Status::napi_ok {
            Ok(())
        } else {
            Err(Error::from_status(Status::from(status)))
        }
    })
}

/// The wake-up for a server whose connections are queued off the
/// JavaScript thread: a threadsafe function calling `onconnection` with no
/// arguments (the batch is pulled with `take()`, never carried, see
/// [`crate::acceptor`]), and the closure the accepting side calls, which
/// returns false once JavaScript can never be woken again (its environment
/// is gone). The one place both the runtime placement and a shared group's
/// member build it.
pub(super) fn wake_up(
    onconnection: &ConnectionCallback,
) -> Result<(Arc<Wake>, impl Fn() -> bool + Send + Sync + 'static)> {
    let wake: Arc<Wake> = Arc::new(
        onconnection
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .build_callback(|_ctx| Ok(()))?,
    );
    let task_wake = Arc::clone(&wake);
    let notify = move || task_wake.call((), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok;
    Ok((wake, notify))
}

/// An Int32Array of JavaScript's that Rust reads and writes in place: the
/// claim counter (how many descriptors of the last batch JavaScript has
/// taken ownership of; a shared listener's carries its load too) and the
/// batch slots `take()` fills. A strong reference keeps its memory in place
/// until close(); it is JavaScript's own memory, so nothing is left for the
/// garbage collector to finalise, and a batch costs no allocation on either
/// side (bench/JOURNAL.md, C2).
pub(super) struct SharedInts {
    reference: napi::sys::napi_ref,
    pub(super) ptr: *mut i32,
    /// Its length in elements (a shared listener's carries its load too).
    pub(super) len: usize,
}

impl SharedInts {
    /// # Safety
    /// On `env`'s thread, with `array` a live value of that environment.
    pub(super) unsafe fn new(env: &Env, array: &Unknown<'_>) -> std::result::Result<Self, i32> {
        let value = array.raw();
        let mut kind = 0;
        let mut length = 0usize;
        let mut data = ptr::null_mut();
        let mut buffer = ptr::null_mut();
        let mut offset = 0usize;
        // SAFETY: on env's thread with a live value (this function's
        // contract); every out pointer is a live local.
        let status = unsafe {
            napi::sys::napi_get_typedarray_info(
                env.raw(),
                value,
                &mut kind,
                &mut length,
                &mut data,
                &mut buffer,
                &mut offset,
            )
        };
        if status != napi::sys::Status::napi_ok
            || kind != napi::sys::TypedarrayType::int32_array
            || length < 1
            || data.is_null()
        {
            return Err(errno::UV_EINVAL);
        }
        let mut reference = ptr::null_mut();
        // SAFETY: as above; the reference keeps the array (and so `data`)
        // alive until delete().
        let status =
            unsafe { napi::sys::napi_create_reference(env.raw(), value, 1, &mut reference) };
        if status != napi::sys::Status::napi_ok {
            return Err(errno::UV_EINVAL);
        }
        Ok(SharedInts {
            reference,
            ptr: data.cast::<i32>(),
            len: length,
        })
    }

    /// The array's elements, for `take()` to write a batch into.
    ///
    /// # Safety
    /// On the environment's thread, while no JavaScript runs (the array
    /// is JavaScript's memory: only a call from JavaScript may write it).
    pub(super) unsafe fn elements(&mut self) -> &mut [i32] {
        // SAFETY: `ptr` points at `len` elements kept alive by `reference`
        // (an Int32Array's backing store never moves once its buffer has
        // been taken); the caller's contract keeps JavaScript off it, and
        // `&mut self` keeps Rust to one borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    pub(super) fn delete(self, env: &Env) {
        // SAFETY: the reference was created on this environment's thread,
        // which is the one calling.
        let status = unsafe { napi::sys::napi_delete_reference(env.raw(), self.reference) };
        // Fails only for an environment already going away, which frees the
        // reference itself: nothing to do in this close path.
        let _ = status;
    }
}
