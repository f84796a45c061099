//! The hand-over's I/O edge: the control connection's descriptor passing
//! (SCM_RIGHTS with `sendmsg`/`recvmsg`), the peer's credentials
//! (SO_PEERCRED), and the successor's blocking connect and read of one
//! frame. Everything about the bytes is [`super::protocol`]'s.
//!
//! The successor side blocks on purpose: a server's listen() sets up its
//! handle synchronously (Node's `_listen2`), so the socket must be adopted
//! before it returns. Each wait is bounded by the socket's timeouts.

use std::io;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use std::os::fd::AsRawFd;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::protocol::{self, DecodeError, Message, HEADER_LEN, MAX_FRAME};
use crate::errno::uv_code;

/// Who is at the other end of a Unix socket.
pub struct Peer {
    pub pid: u32,
    pub uid: u32,
}

impl Peer {
    /// Whether the peer runs as this process's effective user.
    pub fn is_same_user(&self) -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        self.uid == unsafe { libc::geteuid() }
    }
}

/// The credentials of the process at the other end of `fd`, as the kernel
/// recorded them at connect (or listen) time.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer(fd: RawFd) -> Result<Peer, i32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(crate::errno::last_uv_code());
    }
    Ok(Peer {
        pid: u32::try_from(cred.pid).unwrap_or(0),
        uid: cred.uid,
    })
}

/// As the Linux version, from `getpeereid` (no process id there).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn peer(fd: RawFd) -> Result<Peer, i32> {
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: `uid` and `gid` are valid for writes.
    if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
        return Err(crate::errno::last_uv_code());
    }
    Ok(Peer { pid: 0, uid })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

#[cfg(any(target_os = "linux", target_os = "android"))]
const RECV_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const RECV_FLAGS: libc::c_int = 0;

/// Room for this many descriptors in one message's ancillary data: a peer
/// that sends more has the extra ones closed, not leaked.
const MAX_FDS: usize = 4;

/// Sends `message`, with `pass` attached as SCM_RIGHTS when given. The
/// receiver gets its own descriptor for the same open socket (the same
/// kernel accept queue); `pass` stays open here.
pub fn send(fd: RawFd, message: &Message, pass: Option<RawFd>) -> Result<(), i32> {
    let frame = message.encode();
    let mut sent = 0;
    while sent < frame.len() {
        let rest = &frame[sent..];
        let mut iov = libc::iovec {
            iov_base: rest.as_ptr() as *mut libc::c_void,
            iov_len: rest.len(),
        };
        // u64s, so the control buffer is aligned for cmsghdr.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain old data; zeroed is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let (Some(pass), 0) = (pass, sent) {
            // SAFETY: CMSG_SPACE only computes a size.
            let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            // SAFETY: msg_control points at `control`, which is larger than
            // `space`, so the first header and its data are inside it.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), pass);
            }
        }
        // SAFETY: `msg` points at live buffers for the whole call.
        let n = unsafe { libc::sendmsg(fd, &msg, SEND_FLAGS) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(uv_code(&err));
        }
        sent += n as usize;
    }
    Ok(())
}

/// What reading one frame can end in, besides a message.
#[derive(Debug)]
pub enum RecvError {
    /// The peer closed the connection (or died) before a whole frame.
    Closed,
    /// The peer sent bytes that are not this protocol (or another version).
    Protocol(DecodeError),
    /// A descriptor came but could not be received: this process is out of
    /// descriptors (the kernel drops it and says MSG_CTRUNC).
    NoDescriptors,
    /// No whole frame within the socket's timeout, or another OS error.
    Os(i32),
}

/// One `recvmsg` of at most `buf.len()` bytes; any descriptors that come
/// along are appended to `fds` (close-on-exec). Returns the byte count.
fn recv_some(fd: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> Result<usize, RecvError> {
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: as in send().
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) };
        msg.msg_controllen = (space as usize).min(std::mem::size_of_val(&control)) as _;
        // SAFETY: `msg` points at live buffers for the whole call.
        let n = unsafe { libc::recvmsg(fd, &mut msg, RECV_FLAGS) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(RecvError::Os(uv_code(&err)));
        }
        // SAFETY: the kernel filled `msg`; the CMSG_* macros walk only
        // within msg_controllen of `control`, and each SCM_RIGHTS header
        // carries (cmsg_len - CMSG_LEN(0)) / 4 descriptors now ours.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    for i in 0..bytes / std::mem::size_of::<RawFd>() {
                        let raw = std::ptr::read_unaligned(data.add(i));
                        fds.push(OwnedFd::from_raw_fd(raw));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        for fd in fds.iter() {
            // SAFETY: fcntl on a descriptor this process owns.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(RecvError::NoDescriptors);
        }
        return Ok(n as usize);
    }
}

/// Reads exactly one frame (blocking, within the socket's read timeout)
/// and the descriptor that came with it, if any: the first one; extra ones
/// are closed.
pub fn recv(fd: RawFd) -> Result<(Message, Option<OwnedFd>), RecvError> {
    let mut buf = [0u8; MAX_FRAME];
    let mut have = 0;
    let mut fds = Vec::new();
    let mut want = HEADER_LEN;
    loop {
        let n = recv_some(fd, &mut buf[have..want], &mut fds)?;
        if n == 0 {
            return Err(RecvError::Closed);
        }
        have += n;
        match protocol::decode(&buf[..have]) {
            Err(err) => return Err(RecvError::Protocol(err)),
            Ok(Some((message, _))) => {
                let fd = if fds.is_empty() {
                    None
                } else {
                    Some(fds.swap_remove(0))
                };
                return Ok((message, fd));
            }
            Ok(None) if have >= HEADER_LEN => {
                // The header is whole and valid: read exactly its payload.
                want = HEADER_LEN + usize::from(u16::from_be_bytes([buf[6], buf[7]]));
            }
            Ok(None) => {}
        }
    }
}

/// Connects to the control socket at `path` (blocking), with `timeout` for
/// every later read and write on it.
pub fn connect(path: &str, timeout: Duration) -> Result<OwnedFd, i32> {
    let stream = UnixStream::connect(path).map_err(|e| uv_code(&e))?;
    let timeout = Some(timeout.max(Duration::from_millis(1)));
    stream.set_read_timeout(timeout).map_err(|e| uv_code(&e))?;
    stream.set_write_timeout(timeout).map_err(|e| uv_code(&e))?;
    Ok(OwnedFd::from(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    type TestResult = Result<(), String>;

    fn pair() -> Result<(UnixStream, UnixStream), String> {
        UnixStream::pair().map_err(|e| e.to_string())
    }

    #[test]
    fn a_descriptor_travels_with_its_frame() -> TestResult {
        let (a, b) = pair()?;
        let (x, _y) = pair()?;
        send(
            a.as_raw_fd(),
            &Message::Offer { token: 3 },
            Some(x.as_raw_fd()),
        )
        .map_err(|e| e.to_string())?;
        let (message, fd) = recv(b.as_raw_fd()).map_err(|e| format!("{e:?}"))?;
        assert_eq!(message, Message::Offer { token: 3 });
        let fd = fd.ok_or("no descriptor")?;
        assert_ne!(fd.as_raw_fd(), x.as_raw_fd());
        // SAFETY: fcntl on an open descriptor.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        assert!(flags & libc::FD_CLOEXEC != 0, "received close-on-exec");
        Ok(())
    }

    #[test]
    fn frames_are_read_one_at_a_time() -> TestResult {
        let (a, b) = pair()?;
        send(a.as_raw_fd(), &Message::Missing, None).map_err(|e| e.to_string())?;
        send(a.as_raw_fd(), &Message::Busy { pid: 5 }, None).map_err(|e| e.to_string())?;
        assert!(matches!(recv(b.as_raw_fd()), Ok((Message::Missing, None))));
        assert!(matches!(
            recv(b.as_raw_fd()),
            Ok((Message::Busy { pid: 5 }, None))
        ));
        Ok(())
    }

    #[test]
    fn garbage_and_a_closed_peer_are_errors() -> TestResult {
        let (a, b) = pair()?;
        (&a).write_all(b"HTTP/1.1 400").map_err(|e| e.to_string())?;
        assert!(matches!(
            recv(b.as_raw_fd()),
            Err(RecvError::Protocol(DecodeError::Magic))
        ));
        let (a, b) = pair()?;
        drop(a);
        assert!(matches!(recv(b.as_raw_fd()), Err(RecvError::Closed)));
        Ok(())
    }

    #[test]
    fn a_slow_peer_times_out() -> TestResult {
        let (_a, b) = pair()?;
        b.set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(|e| e.to_string())?;
        assert!(matches!(recv(b.as_raw_fd()), Err(RecvError::Os(_))));
        Ok(())
    }

    #[test]
    fn the_peer_of_a_socketpair_is_this_user() -> TestResult {
        let (a, _b) = pair()?;
        assert!(peer(a.as_raw_fd())
            .map_err(|e| e.to_string())?
            .is_same_user());
        Ok(())
    }
}
