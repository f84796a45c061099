//! Test hooks: functions only the test build exports (cargo feature
//! `test-hooks`, which `npm test` builds, see scripts/test.js). The release
//! addon has none of them, and its accept rounds do no check for them.
//!
//! - `injectAcceptPanic()` makes the next accept round panic, so a test can
//!   prove that a panic while accepting becomes an 'error' event, not an
//!   abort, and that the server keeps serving;
//! - `panicForTests()` panics inside an exported function, which must reach
//!   JavaScript as a thrown Error;
//! - `inspectSocket(fd)` reads a descriptor's options back from the OS, so
//!   tests check what the kernel really has, not what rust-net meant to set;
//! - `getsockoptForTests(fd, level, name, len)` reads any one option.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errno::{last_uv_code, uv_code, UV_EINVAL};
use crate::socket::guess_kind;

/// Set by `injectAcceptPanic()`; taken by the next accept round.
static INJECT_PANIC: AtomicBool = AtomicBool::new(false);

/// Panics if a test asked for it (see [`INJECT_PANIC`]). Both placements
/// call this at the start of every accept round.
pub fn maybe_injected_panic() {
    if INJECT_PANIC.swap(false, Ordering::Relaxed) {
        panic!("rust-net: injected accept-loop panic (test hook)");
    }
}

/// Test hook: the next accept round panics. The panic
/// must surface as an 'error' event (EIO, syscall 'accept') and the server
/// must keep serving.
#[napi]
pub fn inject_accept_panic() {
    INJECT_PANIC.store(true, Ordering::Relaxed);
}

/// Test hook: panics inside an exported function, which must reach
/// JavaScript as a thrown Error rather than abort the process.
#[napi(catch_unwind)]
pub fn panic_for_tests() {
    panic!("rust-net: panic_for_tests (test hook)");
}

/// A socket's options as the OS reports them (see [`inspect`]).
#[napi(object)]
pub struct SocketOptions {
    pub reuse_address: bool,
    pub accepting: bool,
    pub no_delay: Option<bool>,
    pub keep_alive: bool,
    pub ipv6_only: Option<bool>,
    pub close_on_exec: bool,
    pub non_blocking: bool,
}

/// Reads a socket descriptor's options, so tests can check what the OS
/// really has (SO_REUSEADDR, close-on-exec, TCP_NODELAY...). Errors are
/// thrown as `Error` with a libuv errno in the message.
#[napi(catch_unwind)]
pub fn inspect_socket(fd: i32) -> Result<SocketOptions> {
    inspect(fd).map_err(|code| Error::from_reason(format!("inspectSocket: errno {code}")))
}

/// Reads the options of any open socket descriptor.
fn inspect(fd: RawFd) -> std::result::Result<SocketOptions, i32> {
    if guess_kind(fd).is_none() {
        return Err(UV_EINVAL);
    }
    // SAFETY: `fd` was just checked to be an open socket; the borrow ends
    // before this function returns and SockRef never closes it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&borrowed);
    let family = sock.local_addr().map_err(|e| uv_code(&e))?.family() as i32;
    let is_ip = family == libc::AF_INET || family == libc::AF_INET6;
    // SAFETY: F_GETFD / F_GETFL only read flags of an open descriptor.
    let fd_flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    let fl_flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fd_flags < 0 || fl_flags < 0 {
        return Err(last_uv_code());
    }
    Ok(SocketOptions {
        reuse_address: sock.reuse_address().map_err(|e| uv_code(&e))?,
        accepting: crate::socket::is_listener(&sock).map_err(|e| uv_code(&e))?,
        no_delay: if is_ip { sock.tcp_nodelay().ok() } else { None },
        keep_alive: sock.keepalive().map_err(|e| uv_code(&e))?,
        ipv6_only: if family == libc::AF_INET6 {
            sock.only_v6().ok()
        } else {
            None
        },
        close_on_exec: fd_flags & libc::FD_CLOEXEC != 0,
        non_blocking: fl_flags & libc::O_NONBLOCK != 0,
    })
}

/// Test hook: `getsockopt(fd, level, name)` with a buffer of `len` bytes;
/// the bytes the kernel wrote. Throws with the errno when it refuses.
/// Tests read socket options back with it (lib/socket-options.js sets
/// them), on listening and on accepted descriptors alike.
#[napi(catch_unwind)]
pub fn getsockopt_for_tests(fd: i32, level: i32, name: i32, len: u32) -> Result<Buffer> {
    let mut value = vec![0u8; len as usize];
    let mut value_len = libc::socklen_t::try_from(value.len())
        .map_err(|_| Error::from_reason("getsockoptForTests: length"))?;
    // SAFETY: the kernel writes at most `value_len` bytes into `value`,
    // which we own; an invalid descriptor is an error, not undefined
    // behaviour.
    let rc =
        unsafe { libc::getsockopt(fd, level, name, value.as_mut_ptr().cast(), &mut value_len) };
    if rc != 0 {
        let code = last_uv_code();
        return Err(Error::from_reason(format!(
            "getsockoptForTests: errno {code}"
        )));
    }
    value.truncate(value_len as usize);
    Ok(value.into())
}
