//! systemd socket activation (`listen({ systemd })`, docs/systemd.md): the
//! check a descriptor systemd passed must pass before a server takes it.
//!
//! JavaScript reads `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` and
//! picks the descriptor; here, before anything owns it, rust-net makes sure
//! it is what a server can listen on — an open, listening stream socket of a
//! family Node serves — and marks it close-on-exec, as `sd_listen_fds(3)`
//! does: systemd hands the descriptors over without `FD_CLOEXEC`, and a
//! child the program spawns must not inherit its listening socket.

use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, RawFd};

use socket2::{SockRef, Type};

/// Why a passed descriptor cannot be listened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfit {
    NotOpen,
    NotSocket,
    NotStream,
    /// Neither IPv4, IPv6 nor a Unix domain socket.
    Family,
    /// A stream socket, but not listening (a connected socket, or one
    /// systemd passed with `Accept=yes`).
    NotListening,
    /// `FD_CLOEXEC` could not be set: the libuv errno.
    Os(i32),
}

impl Unfit {
    /// The reason as JavaScript words it after "descriptor N from systemd".
    pub fn reason(self) -> String {
        match self {
            Unfit::NotOpen => "is not open".into(),
            Unfit::NotSocket => "is not a socket".into(),
            Unfit::NotStream => "is not a stream socket".into(),
            Unfit::Family => "is neither an IPv4, IPv6 nor Unix domain socket".into(),
            Unfit::NotListening => "is not a listening socket".into(),
            Unfit::Os(code) => format!("could not be made close-on-exec (errno {code})"),
        }
    }
}

/// Checks descriptor `fd` and sets its `FD_CLOEXEC`. Nothing takes
/// ownership here: on success JavaScript hands it to `listen({ fd })`.
pub fn check(fd: RawFd) -> Result<(), Unfit> {
    if fd < 0 {
        return Err(Unfit::NotOpen);
    }
    // SAFETY: F_GETFD only reads the flags of a descriptor; one that is not
    // open is EBADF, not undefined behaviour.
    let fd_flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if fd_flags < 0 {
        return Err(Unfit::NotOpen);
    }
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a `struct stat` into the buffer we own.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return Err(Unfit::NotOpen);
    }
    // SAFETY: fstat returned 0, so it initialised the buffer.
    let stat = unsafe { stat.assume_init() };
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(Unfit::NotSocket);
    }
    // SAFETY: `fd` is open (F_GETFD succeeded) for the duration of this
    // borrow; SockRef never closes it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let socket = SockRef::from(&borrowed);
    if socket.r#type().map_err(|_| Unfit::NotSocket)? != Type::STREAM {
        return Err(Unfit::NotStream);
    }
    let local = socket.local_addr().map_err(|_| Unfit::Family)?;
    if !matches!(
        i32::from(local.family()),
        libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX
    ) {
        return Err(Unfit::Family);
    }
    if !crate::socket::is_listener(&socket).unwrap_or(false) {
        return Err(Unfit::NotListening);
    }
    // SAFETY: F_SETFD only sets the flags of the open descriptor.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, fd_flags | libc::FD_CLOEXEC) } < 0 {
        return Err(Unfit::Os(crate::errno::last_uv_code()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use socket2::{Domain, Socket};

    use super::*;

    fn flags(fd: RawFd) -> i32 {
        // SAFETY: F_GETFD only reads flags of the test's open descriptor.
        unsafe { libc::fcntl(fd, libc::F_GETFD) }
    }

    #[test]
    fn a_listening_tcp_socket_passes_and_becomes_close_on_exec() -> io::Result<()> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        socket.listen(8)?;
        let fd = socket.as_raw_fd();
        // SAFETY: clears the flags of the test's own descriptor, as systemd
        // passes it.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        assert_eq!(check(fd), Ok(()));
        assert_ne!(flags(fd) & libc::FD_CLOEXEC, 0);
        Ok(())
    }

    #[test]
    fn sockets_that_cannot_listen_are_refused_with_their_reason() -> io::Result<()> {
        let bound = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        assert_eq!(check(bound.as_raw_fd()), Err(Unfit::NotListening));
        let udp = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        assert_eq!(check(udp.as_raw_fd()), Err(Unfit::NotStream));
        let file = std::fs::File::open("/dev/null")?;
        assert_eq!(check(file.as_raw_fd()), Err(Unfit::NotSocket));
        assert_eq!(check(-1), Err(Unfit::NotOpen));
        Ok(())
    }
}
