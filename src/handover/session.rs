//! The successor's conversations with the process it replaces, one per
//! control path for the whole process.
//!
//! A successor's server takes its socket over at listen(), then puts its own
//! control socket at the path: from then on, the old process is reachable
//! only through the connection already open. Servers of other threads
//! listening later must use that same connection, so it lives here rather
//! than in one thread's JavaScript. Each exchange (a message and its
//! answer) runs under one lock, so two threads never read each other's
//! answers, and the descriptor is closed only under it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use super::{HandoverMessage, HandoverReceived};

static SESSIONS: Mutex<Vec<(String, OwnedFd)>> = Mutex::new(Vec::new());

fn sessions() -> MutexGuard<'static, Vec<(String, OwnedFd)>> {
    SESSIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `ENOTCONN`: no conversation on that path (or it was closed meanwhile).
const UV_ENOTCONN: i32 = -libc::ENOTCONN;

/// Keeps `fd` (a control connection past its hello) as the process's
/// conversation on `path`, unless another thread stored one meanwhile:
/// then `fd` is closed and that one is used. Returns whether `fd` was kept.
pub fn keep(path: String, fd: OwnedFd) -> bool {
    let mut sessions = sessions();
    if sessions.iter().any(|(p, _)| *p == path) {
        return false;
    }
    sessions.push((path, fd));
    true
}

/// Whether the process converses with an old process on `path`.
pub fn exists(path: &str) -> bool {
    sessions().iter().any(|(p, _)| p == path)
}

/// Sends `message` on `path`'s conversation and, with `answer`, reads the
/// answer (see [`super::receive`]).
pub fn exchange(
    path: &str,
    message: &HandoverMessage,
    answer: bool,
) -> napi::Result<HandoverReceived> {
    let sessions = sessions();
    let Some((_, fd)) = sessions.iter().find(|(p, _)| p == path) else {
        return Ok(HandoverReceived {
            code: UV_ENOTCONN,
            message: None,
            fd: -1,
            error: None,
        });
    };
    let fd = fd.as_raw_fd();
    let mut sent = super::send(fd, message, -1)?;
    if sent == -libc::EPIPE || sent == -libc::ECONNRESET {
        // The old process is gone: as a closed connection read.
        sent = super::UV_EOF;
    }
    if sent != 0 || !answer {
        return Ok(HandoverReceived {
            code: sent,
            message: None,
            fd: -1,
            error: None,
        });
    }
    Ok(super::receive(fd))
}

/// Ends the conversation on `path` (closes its connection).
pub fn close(path: &str) {
    let mut sessions = sessions();
    sessions.retain(|(p, _)| p != path);
}
