//! OS errors → libuv error numbers.
//!
//! Node builds every `listen`/`accept` error it shows a program (`code`,
//! `errno`, the message text) from a libuv error number, and on Unix libuv's
//! number is simply `-errno`. So the native layer never invents messages: it
//! hands JavaScript the same negative number libuv would have, and the Node
//! code that formats errors does the rest.

use std::io;

/// libuv's `UV_EINVAL`: what libuv returns for arguments it rejects before any
/// syscall (an unparsable address, a descriptor of the wrong kind).
pub const UV_EINVAL: i32 = -libc::EINVAL;

/// libuv's `UV_EIO`, reported (as an accept error) after an internal
/// failure: a panic while accepting, in either placement.
pub const UV_EIO: i32 = -libc::EIO;

/// libuv's `UV_EBADF`: the listening socket is gone (closed meanwhile).
pub const UV_EBADF: i32 = -libc::EBADF;

/// libuv's `UV_EEXIST`: the event loop already watches that descriptor.
pub const UV_EEXIST: i32 = -libc::EEXIST;

/// libuv's `UV_ENOMEM`.
pub const UV_ENOMEM: i32 = -libc::ENOMEM;

/// The libuv error number for an I/O error.
pub fn uv_code(err: &io::Error) -> i32 {
    match err.raw_os_error() {
        Some(code) if code > 0 => -code,
        // Errors that did not come from the OS (e.g. an address that does not
        // parse) are argument errors to libuv.
        _ => UV_EINVAL,
    }
}

/// The libuv error number for the calling thread's current `errno`.
pub fn last_uv_code() -> i32 {
    uv_code(&io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_become_negative_errno() {
        let err = io::Error::from_raw_os_error(libc::EADDRINUSE);
        assert_eq!(uv_code(&err), -libc::EADDRINUSE);
    }

    #[test]
    fn non_os_errors_are_einval() {
        let err = io::Error::new(io::ErrorKind::InvalidInput, "bad address");
        assert_eq!(uv_code(&err), UV_EINVAL);
    }
}
