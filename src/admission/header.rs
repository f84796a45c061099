//! Reading a PROXY protocol header on the tokio runtime, off the event loop.
//!
//! The header is *peeked* until the parser decides, so that when it is
//! complete exactly its bytes can be taken off the socket and the first
//! payload byte stays in the kernel for Node to read — also when header and
//! payload came in one segment, and when the header came in many. The read
//! is bounded in size (the parser's limit) and in time (the header timeout);
//! a peer that sends nothing, garbage or half a header is closed here.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use rust_net_admission::policy::{Admit, Decision, Reason};
use rust_net_admission::proxy::{MAX_HEADER_LEN_MAX, MAX_HEADER_LEN_MIN};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::{timeout_at, Instant};

use super::{local_addr, Admission, Proxied};

/// What became of a connection whose header was read.
pub enum Outcome {
    /// Deliver it, with what the header said (None: no header, or the real
    /// addresses stand).
    Deliver(OwnedFd, Option<Box<Proxied>>),
    /// Refused and closed (counted, and reported when asked for).
    Refused(Reason),
}

/// Reads the header of a trusted peer's connection (see the module doc).
/// Must run inside the runtime.
pub async fn read(conn: OwnedFd, peer: Option<SocketAddr>, admission: &Admission) -> Outcome {
    let Some(proxy) = &admission.proxy else {
        return Outcome::Deliver(conn, None);
    };
    let deadline = Instant::now() + proxy.timeout;
    let capacity = proxy
        .policy
        .parse
        .max_header_len
        .clamp(MAX_HEADER_LEN_MIN, MAX_HEADER_LEN_MAX);
    let mut buf = vec![0u8; capacity];
    // SAFETY: an OwnedFd owns its descriptor and always reports the same
    // one; it is closed only when the AsyncFd (or what into_inner returns)
    // drops it.
    let socket = match unsafe { AsyncFd::register_with_interest(conn, Interest::READABLE) } {
        Ok(socket) => socket,
        // Not registrable (out of memory for epoll): treat as a failed read.
        Err(_) => return Outcome::Refused(Reason::NoHeader),
    };
    let decision = loop {
        let mut guard = match timeout_at(deadline, socket.readable()).await {
            Err(_elapsed) => {
                break proxy
                    .policy
                    .on_timeout(peek(socket.get_ref(), &mut buf).unwrap_or(&[]))
            }
            Ok(Err(_)) => break proxy.policy.on_data(&[], true),
            Ok(Ok(guard)) => guard,
        };
        let closed = guard.ready().is_read_closed();
        let seen = match peek(socket.get_ref(), &mut buf) {
            Ok(seen) => seen,
            Err(Peek::WouldBlock) => {
                guard.clear_ready();
                continue;
            }
            Err(Peek::Failed) => break proxy.policy.on_data(&[], true),
        };
        // A read of 0 bytes is the peer's FIN with nothing sent.
        let eof = closed || seen.is_empty();
        match proxy.policy.on_data(seen, eof) {
            Decision::NeedMore { .. } => guard.clear_ready(),
            decision => break decision,
        }
    };
    match decision {
        Decision::Accept(admit) => accept(socket, admit, peer, &mut buf),
        Decision::Reject(reason) => Outcome::Refused(reason),
        // The parser never asks for more once the peer has closed; a
        // decision that still wants more is a failed read.
        Decision::NeedMore { .. } => Outcome::Refused(Reason::NoHeader),
    }
}

/// Decides at once when the whole header (or a fatal byte) is already in
/// the socket — usual when the proxy sends the header with the client's
/// first bytes — so the connection is delivered in the accept round that
/// took it, with no task and no second wake-up. Gives the connection back
/// when the decision must wait for more bytes.
pub fn try_now(
    conn: OwnedFd,
    peer: Option<SocketAddr>,
    admission: &Admission,
) -> Result<Outcome, OwnedFd> {
    let Some(proxy) = &admission.proxy else {
        return Ok(Outcome::Deliver(conn, None));
    };
    let mut buf = [0u8; FAST_PATH_BYTES];
    let decision = match peek(&conn, &mut buf) {
        // Nothing yet, or a FIN (the task then sees it as such).
        Ok([]) | Err(Peek::WouldBlock) => return Err(conn),
        Ok(seen) => proxy.policy.on_data(seen, false),
        Err(Peek::Failed) => proxy.policy.on_data(&[], true),
    };
    match decision {
        Decision::Accept(admit) => Ok(finish(conn, admit, peer, &mut buf)),
        Decision::Reject(reason) => Ok(Outcome::Refused(reason)),
        Decision::NeedMore { .. } => Err(conn),
    }
}

/// How much the accept round peeks: every v1 header, and v2 headers with
/// the TLVs load balancers usually send; longer ones go to the task.
const FAST_PATH_BYTES: usize = 512;

enum Peek {
    WouldBlock,
    Failed,
}

/// What the peer has sent so far, left in the socket.
fn peek<'a>(socket: &impl AsRawFd, buf: &'a mut [u8]) -> Result<&'a [u8], Peek> {
    // SAFETY: recv writes at most `buf.len()` bytes into `buf`, which we own;
    // the descriptor stays open for the call.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match usize::try_from(n) {
        Ok(n) => Ok(&buf[..n.min(buf.len())]),
        Err(_) => match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Err(Peek::WouldBlock),
            _ => Err(Peek::Failed),
        },
    }
}

/// Takes exactly the header's bytes off the socket and hands the connection
/// back to the event loop's side.
fn accept(
    socket: AsyncFd<OwnedFd>,
    admit: Admit,
    peer: Option<SocketAddr>,
    buf: &mut [u8],
) -> Outcome {
    finish(socket.into_inner(), admit, peer, buf)
}

fn finish(conn: OwnedFd, admit: Admit, peer: Option<SocketAddr>, buf: &mut [u8]) -> Outcome {
    let fd = conn.as_raw_fd();
    let mut left = admit.consumed.min(buf.len());
    while left > 0 {
        // SAFETY: as in `peek`; these bytes were peeked, so they are queued.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), left, libc::MSG_DONTWAIT) };
        match usize::try_from(n) {
            Ok(0) => return Outcome::Refused(Reason::NoHeader),
            Ok(n) => left = left.saturating_sub(n),
            Err(_) if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            Err(_) => return Outcome::Refused(Reason::NoHeader),
        }
    }
    let proxied = admit.header.map(|header| {
        Box::new(Proxied {
            header,
            real_peer: peer,
            real_local: local_addr(&conn),
        })
    });
    Outcome::Deliver(conn, proxied)
}
