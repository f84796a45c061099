//! The reserve descriptor, libuv's answer to `EMFILE`.
//!
//! When the process is out of descriptors, pending connections stay in the
//! listen backlog and the listening socket stays readable, so a naive accept
//! loop spins at 100% CPU. libuv keeps one spare descriptor open; on `EMFILE`
//! it closes it, accepts and immediately closes every pending connection (the
//! client sees a reset rather than a hang), then reopens the spare. We do the
//! same, once for the whole process.

use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

use crate::socket;

static RESERVE: Mutex<Option<OwnedFd>> = Mutex::new(None);

fn open_reserve() -> Option<OwnedFd> {
    const ROOT: &CStr = c"/";
    // SAFETY: ROOT is a valid NUL-terminated path.
    let fd = unsafe { libc::open(ROOT.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: open just returned this descriptor and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the reserve if it is not open yet; called whenever a server starts
/// listening, while descriptors are still available.
pub fn ensure() {
    let mut reserve = RESERVE.lock().unwrap_or_else(|p| p.into_inner());
    if reserve.is_none() {
        *reserve = open_reserve();
    }
}

/// Frees the reserve, accepts and closes every pending connection on
/// `listener`, and takes the reserve back. Returns false when there was no
/// reserve to free (the caller then backs off instead of spinning).
pub fn shed_pending(listener: i32) -> bool {
    let mut reserve = RESERVE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(spare) = reserve.take() else {
        return false;
    };
    drop(spare);
    loop {
        match socket::accept(listener) {
            Ok(conn) => drop(conn),
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
            Err(_) => break,
        }
    }
    *reserve = open_reserve();
    true
}
