//! The JavaScript values a [`Listener`](super::Listener) holds between
//! calls: the threadsafe function that wakes JavaScript (runtime placement
//! and shared groups), the claim counter, and the batch it hands out.

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

/// A batch for JavaScript as an Int32Array over a copy in V8's own memory:
/// two N-API calls per batch, where an Array costs a `napi_set_element`
/// (≈ 1,200 instructions) per descriptor, and no finaliser for the garbage
/// collector (as an external buffer would need); bench/RESULTS.md, C1.
pub struct Batch(pub Vec<i32>);

impl TypeName for Batch {
    fn type_name() -> &'static str {
        "Int32Array"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Batch {
    unsafe fn to_napi_value(
        env: napi::sys::napi_env,
        batch: Self,
    ) -> Result<napi::sys::napi_value> {
        let bytes = batch.0.len() * std::mem::size_of::<i32>();
        let mut buffer = ptr::null_mut();
        let mut data = ptr::null_mut();
        // SAFETY: called by napi-rs on `env`'s thread with a live env.
        let status =
            unsafe { napi::sys::napi_create_arraybuffer(env, bytes, &mut data, &mut buffer) };
        if status != napi::sys::Status::napi_ok || data.is_null() {
            return Err(Error::from_reason("rust-net: could not allocate a batch"));
        }
        // SAFETY: V8 just allocated `bytes` writable bytes at `data`, which
        // cannot overlap the Vec.
        unsafe {
            ptr::copy_nonoverlapping(batch.0.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes)
        };
        let mut array = ptr::null_mut();
        // SAFETY: as above; `buffer` is the live ArrayBuffer just created.
        let status = unsafe {
            napi::sys::napi_create_typedarray(
                env,
                napi::sys::TypedarrayType::int32_array,
                batch.0.len(),
                buffer,
                0,
                &mut array,
            )
        };
        if status != napi::sys::Status::napi_ok {
            return Err(Error::from_reason("rust-net: could not allocate a batch"));
        }
        Ok(array)
    }
}

/// The claim counter: a one-element Int32Array of JavaScript's, in which it
/// stores how many descriptors of the last batch it has taken ownership of.
/// A strong reference keeps its memory in place until close(); it is
/// JavaScript's own memory, so nothing is left for the garbage collector to
/// finalise.
pub(super) struct ClaimCounter {
    reference: napi::sys::napi_ref,
    pub(super) ptr: *mut i32,
    /// Its length in elements (a shared listener's carries its load too).
    pub(super) len: usize,
}

impl ClaimCounter {
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
        Ok(ClaimCounter {
            reference,
            ptr: data.cast::<i32>(),
            len: length,
        })
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
