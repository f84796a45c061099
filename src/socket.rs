//! Listening-socket set-up: create, configure, bind and listen with socket2,
//! following what libuv does for Node so that every observable result (which
//! call fails, with which errno, which options are set) is the same.
//!
//! Linux gets the single-syscall forms libuv uses there (`SOCK_NONBLOCK` at
//! creation, `accept4`, the TCP_INFO accept-queue count, abstract socket
//! names); other Unixes (macOS) get libuv's portable equivalents: `fcntl`
//! after `socket`/`accept`, no queue count, and `EINVAL` for abstract names.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::bind::{BindError, TcpBind};
use crate::errno::{last_uv_code, uv_code, UV_EINVAL};

/// What kind of stream socket a listener is: Node gives TCP and pipe servers
/// different handles (a pipe server's `address()` is its path, not a
/// `getsockname()` result), so JavaScript needs to know which one it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Pipe,
}

/// A socket that is bound (or adopted) but not yet listening.
pub struct Bound {
    pub socket: Socket,
    pub kind: Kind,
    /// libuv reports `EADDRINUSE` from `listen()`, not from `bind()` (it keeps
    /// it as the handle's "delayed error"), and Node's error messages and its
    /// `::` → `0.0.0.0` fallback depend on that. We keep the same split.
    pub delayed_error: i32,
}

/// A non-blocking, close-on-exec stream socket, as `uv__socket` makes it.
/// socket2 sets close-on-exec (SOCK_CLOEXEC on Linux, FD_CLOEXEC right after
/// `socket()` elsewhere), so a spawned child inherits nothing.
#[cfg(target_os = "linux")]
fn stream_socket(domain: Domain) -> io::Result<Socket> {
    Socket::new(domain, Type::STREAM.nonblocking(), None)
}

#[cfg(not(target_os = "linux"))]
fn stream_socket(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Parses an IP literal the way `uv_ip4_addr`/`uv_ip6_addr` do: IPv6 may carry
/// a `%scope` suffix (a numeric index or an interface name).
fn parse_ip(address: &str, ipv6: bool, port: u16) -> Result<SockAddr, i32> {
    if !ipv6 {
        let ip: Ipv4Addr = address.parse().map_err(|_| UV_EINVAL)?;
        return Ok(SockAddr::from(SocketAddr::new(IpAddr::V4(ip), port)));
    }
    let (literal, scope) = match address.split_once('%') {
        Some((literal, scope)) => (literal, Some(scope)),
        None => (address, None),
    };
    let ip: Ipv6Addr = literal.parse().map_err(|_| UV_EINVAL)?;
    let scope_id = match scope {
        None => 0,
        Some(scope) => scope
            .parse::<u32>()
            .unwrap_or_else(|_| interface_index(scope)),
    };
    Ok(SockAddr::from(std::net::SocketAddrV6::new(
        ip, port, 0, scope_id,
    )))
}

fn interface_index(name: &str) -> u32 {
    let Ok(name) = std::ffi::CString::new(name) else {
        return 0;
    };
    // SAFETY: `name` is a valid NUL-terminated string for the whole call.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}

/// Creates a TCP socket bound as `bind` says, as `uv_tcp_bind` does:
/// SO_REUSEADDR always, IPV6_V6ONLY set explicitly on IPv6 sockets,
/// SO_REUSEPORT when asked (Node 22.12+'s `reusePort`), and `EADDRINUSE`
/// deferred to `listen()`. rust-net's socket options (`bind.options`) are
/// set between socket() and bind(); the socket is closed on any failure.
pub fn bind_tcp(bind: &TcpBind) -> Result<Bound, BindError> {
    let addr = parse_ip(&bind.address, bind.ipv6, bind.port)?;
    let domain = if bind.ipv6 {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = stream_socket(domain).map_err(|e| {
        // libuv maps "no IPv6 here" to EINVAL at bind time.
        if e.raw_os_error() == Some(libc::EAFNOSUPPORT) {
            UV_EINVAL
        } else {
            uv_code(&e)
        }
    })?;
    socket.set_reuse_address(true).map_err(|e| uv_code(&e))?;
    if bind.ipv6 {
        socket
            .set_only_v6(bind.ipv6_only)
            .map_err(|e| uv_code(&e))?;
    }
    if bind.reuse_port {
        socket.set_reuse_port(true).map_err(|e| uv_code(&e))?;
    }
    bind.options.apply(&socket, bind.ipv6)?;
    let delayed_error = match socket.bind(&addr) {
        Ok(()) => 0,
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => -libc::EADDRINUSE,
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => return Err(UV_EINVAL.into()),
        Err(e) => return Err(uv_code(&e).into()),
    };
    Ok(Bound {
        socket,
        kind: Kind::Tcp,
        delayed_error,
    })
}

/// `sizeof(sockaddr_un.sun_path)`: 108 on Linux, where a pathname of exactly
/// this many bytes is legal (the kernel does not need a terminating NUL);
/// 104 on macOS and the BSDs.
pub const SUN_PATH_LEN: usize = {
    // SAFETY: sockaddr_un is plain old data, valid when zeroed; this runs at
    // compile time only to measure the field.
    let addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    std::mem::size_of_val(&addr.sun_path)
};

/// A `sockaddr_un` for `name` laid out as libuv lays it out: pathnames use the
/// whole structure's size; abstract names (leading NUL) only their length,
/// except with `pad_abstract` — older libuv (Node 18, 20) used the whole size
/// for them too, and a client only reaches a server whose length matches.
fn unix_addr(name: &[u8], pad_abstract: bool) -> Result<SockAddr, i32> {
    if name.is_empty() || name.len() > SUN_PATH_LEN {
        return Err(UV_EINVAL);
    }
    let abstract_name = name[0] == 0;
    if !abstract_name && name.contains(&0) {
        return Err(UV_EINVAL);
    }
    // Abstract names are Linux's; libuv refuses them elsewhere.
    if abstract_name && !cfg!(target_os = "linux") {
        return Err(UV_EINVAL);
    }
    // SAFETY: `init` receives zeroed storage large enough for a sockaddr_un
    // and writes only within it; the length it returns covers what it wrote.
    let ((), addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let un = storage.cast::<libc::sockaddr_un>();
            (*un).sun_family = libc::AF_UNIX as libc::sa_family_t;
            std::ptr::copy_nonoverlapping(
                name.as_ptr(),
                (*un).sun_path.as_mut_ptr().cast::<u8>(),
                name.len(),
            );
            let path_offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
            *len = if abstract_name && !pad_abstract {
                (path_offset + name.len()) as libc::socklen_t
            } else {
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t
            };
            Ok(())
        })
    }
    .map_err(|e| uv_code(&e))?;
    Ok(addr)
}

/// Creates a Unix domain stream socket bound to `name`, as `uv_pipe_bind`
/// does. A leading NUL byte names a Linux abstract socket. How over-long
/// names are treated differs between Node versions; JavaScript passes the
/// name already cut the way the running Node does.
pub fn bind_pipe(name: &[u8], pad_abstract: bool) -> Result<Bound, i32> {
    let addr = unix_addr(name, pad_abstract)?;
    let socket = stream_socket(Domain::UNIX).map_err(|e| uv_code(&e))?;
    match socket.bind(&addr) {
        Ok(()) => Ok(Bound {
            socket,
            kind: Kind::Pipe,
            delayed_error: 0,
        }),
        // libuv reports a missing directory as EACCES (Windows compatibility).
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(-libc::EACCES),
        Err(e) => Err(uv_code(&e)),
    }
}

/// Takes ownership of an existing descriptor, as Node's `handle.open(fd)` does
/// for `listen({ fd })`. Only stream sockets of the families Node accepts
/// qualify; anything else is `EINVAL` (Node's ERR_INVALID_FD_TYPE, caught and
/// turned into `UV_EINVAL` by `createServerHandle`).
pub fn adopt(fd: RawFd) -> Result<Bound, i32> {
    let kind = guess_kind(fd).ok_or(UV_EINVAL)?;
    // Everything that can fail happens before ownership is taken, so on
    // error the caller still owns (and may close) the descriptor.
    set_nonblocking(fd)?;
    // SAFETY: the caller hands this descriptor over (Node's semantics for
    // `listen({ fd })`: the server owns and eventually closes it), and
    // `guess_kind` has just checked it is an open socket.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Bound {
        socket: Socket::from(owned),
        kind,
        delayed_error: 0,
    })
}

fn set_nonblocking(fd: RawFd) -> Result<(), i32> {
    // SAFETY: F_GETFL/F_SETFL only read and set flags of an open descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(last_uv_code());
    }
    Ok(())
}

/// The kind of listening socket `fd` can be, like libuv's `uv_guess_handle`.
pub fn guess_kind(fd: RawFd) -> Option<Kind> {
    if fd < 0 {
        return None;
    }
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a `struct stat` into the buffer we own.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat returned 0, so it initialised the buffer.
    let stat = unsafe { stat.assume_init() };
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return None;
    }
    // SAFETY: `fd` is an open socket for the duration of this borrow; SockRef
    // never closes it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let socket = socket2::SockRef::from(&borrowed);
    if socket.r#type().ok()? != Type::STREAM {
        return None;
    }
    let local = socket.local_addr().ok()?;
    match local.family() as i32 {
        libc::AF_INET | libc::AF_INET6 => Some(Kind::Tcp),
        libc::AF_UNIX => Some(Kind::Pipe),
        _ => None,
    }
}

/// `listen(2)`, reporting a delayed bind error first as libuv does.
pub fn listen(bound: &Bound, backlog: i32) -> Result<(), i32> {
    if bound.delayed_error != 0 {
        return Err(bound.delayed_error);
    }
    bound.socket.listen(backlog).map_err(|e| uv_code(&e))
}

/// `accept4(2)` with the flags libuv uses, without asking for the peer
/// address (JavaScript reads it lazily, as Node does).
#[cfg(target_os = "linux")]
pub fn accept(listener: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: null address pointers are allowed by accept4; `listener` is a
    // descriptor the caller keeps open for the duration of the call.
    let fd = unsafe {
        libc::accept4(
            listener,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `accept(2)`, then close-on-exec and non-blocking with `fcntl`, as libuv
/// does where there is no `accept4` (macOS). The descriptor is owned (and so
/// closed on error) before the `fcntl` calls.
#[cfg(not(target_os = "linux"))]
pub fn accept(listener: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: null address pointers are allowed by accept; `listener` is a
    // descriptor the caller keeps open for the duration of the call.
    let fd = unsafe { libc::accept(listener, std::ptr::null_mut(), std::ptr::null_mut()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept just returned this descriptor and nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_GETFD/F_SETFD only read and set flags of the open descriptor
    // owned above.
    let fd_flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    if fd_flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, fd_flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    set_nonblocking(fd).map_err(|code| io::Error::from_raw_os_error(-code))?;
    Ok(owned)
}

/// `tcpi_state` of a listening socket (the kernel's TCP_LISTEN).
#[cfg(target_os = "linux")]
const TCP_STATE_LISTEN: u8 = 10;

/// How many connections wait in a TCP listener's accept queue, or None when
/// the kernel cannot say (not a listening TCP socket). For a listening socket
/// Linux reports the accept-queue length as `tcpi_unacked`. One getsockopt is
/// far cheaper than the accept4 that fails with EAGAIN at the end of every
/// batch: the kernel allocates and frees a socket, inode and file for that
/// failure (bench/JOURNAL.md, experiment E1).
#[cfg(target_os = "linux")]
pub fn pending_connections(listener: RawFd) -> Option<usize> {
    accept_queue(listener).and_then(|(length, _)| usize::try_from(length).ok())
}

/// A TCP listener's accept queue: how many connections wait in it
/// (`tcpi_unacked`) and how many it may hold (`tcpi_sacked`: the backlog as
/// the kernel applied it, capped by `net.core.somaxconn`); None when it is
/// not a listening TCP socket.
#[cfg(target_os = "linux")]
pub fn accept_queue(listener: RawFd) -> Option<(u32, u32)> {
    // SAFETY: tcp_info is plain old data, valid when zeroed.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which we
    // own; `listener` is an open descriptor for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            listener,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 || info.tcpi_state != TCP_STATE_LISTEN {
        return None;
    }
    Some((info.tcpi_unacked, info.tcpi_sacked))
}

/// How many handshakes the kernel has dropped at the listening socket `fd`
/// since it was created: the socket's own `sk_drops`, read with SO_MEMINFO
/// (Linux 4.13 and later). Linux counts a listener's drops where it counts
/// `ListenDrops` for the whole machine — mostly a full accept queue, each
/// retransmitted SYN or ACK again — so a rise is the one per-socket sign of
/// an overflowing queue. None where it cannot be read.
#[cfg(target_os = "linux")]
pub fn listen_drops(listener: RawFd) -> Option<u32> {
    /// `SO_MEMINFO` on every architecture rust-net builds for (the libc
    /// crate exports it only for some).
    const SO_MEMINFO: libc::c_int = 55;
    const DROPS: usize = libc::SK_MEMINFO_DROPS as usize;
    let mut info = [0u32; DROPS + 1];
    let size = std::mem::size_of_val(&info);
    let mut len = size as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which we
    // own; `listener` is an open descriptor for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            listener,
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 || (len as usize) < size {
        return None;
    }
    Some(info[DROPS])
}

/// Elsewhere no per-socket drop count can be read.
#[cfg(not(target_os = "linux"))]
pub fn listen_drops(_listener: RawFd) -> Option<u32> {
    None
}

/// Elsewhere (macOS's TCP_CONNECTION_INFO has no accept-queue length) the
/// kernel cannot say: the accept loop then lets accept() decide.
#[cfg(not(target_os = "linux"))]
pub fn pending_connections(_listener: RawFd) -> Option<usize> {
    None
}

/// Elsewhere the accept queue cannot be read.
#[cfg(not(target_os = "linux"))]
pub fn accept_queue(_listener: RawFd) -> Option<(u32, u32)> {
    None
}

/// Whether the kernel moves the connections waiting in a closing
/// SO_REUSEPORT listener's accept queue to another listener of its group
/// instead of resetting them: `net.ipv4.tcp_migrate_req=1` (Linux 5.14+,
/// per network namespace, 0 by default). Read at each close, since an
/// operator may set it at any time; false where it cannot be read (older
/// kernels) and on other systems, whose close resets the queue.
#[cfg(target_os = "linux")]
pub fn migrates_accept_queue() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req")
        .is_ok_and(|value| !matches!(value.trim(), "" | "0"))
}

/// See the Linux version above: no other system migrates a closing
/// listener's queue.
#[cfg(not(target_os = "linux"))]
pub fn migrates_accept_queue() -> bool {
    false
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a new descriptor for the same socket, owned by
/// the caller.
pub fn duplicate(fd: RawFd) -> Result<RawFd, i32> {
    if fd < 0 {
        return Err(crate::errno::UV_EBADF);
    }
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`; on success the new descriptor
    // is returned to the caller, who takes ownership of it.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(last_uv_code());
    }
    Ok(dup)
}

/// Closes descriptors JavaScript could not hand to a Socket.
pub fn close_raw(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: JavaScript passes back descriptors this addon accepted and
        // handed over, which no handle took ownership of.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// The raw descriptor of a socket, for reporting `server._handle.fd`.
pub fn raw(socket: &Socket) -> RawFd {
    socket.as_raw_fd()
}

/// `SO_ACCEPTCONN`: whether `listen()` was called on the socket (systemd's
/// descriptors are checked with it; the test hooks report it).
#[cfg(target_os = "linux")]
pub fn is_listener(sock: &socket2::SockRef<'_>) -> io::Result<bool> {
    sock.is_listener()
}

/// `SO_ACCEPTCONN` where socket2 does not offer it (macOS has the option).
#[cfg(not(target_os = "linux"))]
pub fn is_listener(sock: &socket2::SockRef<'_>) -> io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`, which we
    // own; the descriptor is open for the duration of the borrow.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value != 0)
}
