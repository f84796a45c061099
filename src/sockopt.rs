//! Socket options a server operator sets on a TCP listening socket, typed
//! once: what JavaScript normalised (`lib/socket-options.js`) arrives as
//! [`SocketOptionsSpec`], becomes a list of [`SockOpt`], and is applied to
//! the new socket after socket() and before bind()/listen().
//!
//! The options meant for accepted connections (keep-alive and its timers,
//! `TCP_USER_TIMEOUT`, `TCP_NODELAY`, `TCP_CONGESTION`) are set on the
//! listening socket too: Linux clones an accepted socket from its listener
//! (`sk_clone_lock`, `tcp_create_openreq_child`), so every connection
//! arrives with them already set, in Rust, before JavaScript sees it — at no
//! system call per connection at all (docs/socket-options.md; the tests read
//! each one back from the accepted descriptor).
//!
//! Linux only: elsewhere any option is `ENOTSUP` (JavaScript refuses them
//! first, with `ERR_FEATURE_UNAVAILABLE_ON_PLATFORM`).

use napi_derive::napi;
use socket2::Socket;

/// A raw `setsockopt(level, name, value)` from `socketOptions`; `int` is a C
/// `int` value, `bytes` the value's bytes as given (exactly one is set).
#[napi(object)]
#[derive(Clone, Debug)]
pub struct RawSocketOption {
    pub level: i32,
    pub name: i32,
    pub int: Option<i32>,
    pub bytes: Option<Vec<u8>>,
}

/// The options as JavaScript normalised them (already validated there;
/// Rust re-checks only what the kernel could misread). Times are in the
/// kernel's units: seconds, except `userTimeout` (milliseconds).
#[napi(object)]
#[derive(Clone, Debug, Default)]
pub struct SocketOptionsSpec {
    pub defer_accept: Option<u32>,
    pub fast_open: Option<u32>,
    pub freebind: Option<bool>,
    pub transparent: Option<bool>,
    pub bind_to_device: Option<String>,
    pub receive_buffer_size: Option<u32>,
    pub send_buffer_size: Option<u32>,
    pub keep_alive: Option<bool>,
    pub keep_alive_initial_delay: Option<u32>,
    pub keep_alive_interval: Option<u32>,
    pub keep_alive_count: Option<u32>,
    pub user_timeout: Option<u32>,
    pub no_delay: Option<bool>,
    pub congestion: Option<String>,
    pub raw: Option<Vec<RawSocketOption>>,
}

/// One option, typed, with the name it had in JavaScript (for the error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockOpt {
    DeferAccept(u32),
    FastOpen(u32),
    Freebind(bool),
    Transparent(bool),
    BindToDevice(Vec<u8>),
    ReceiveBuffer(u32),
    SendBuffer(u32),
    KeepAlive(bool),
    KeepIdle(u32),
    KeepInterval(u32),
    KeepCount(u32),
    UserTimeout(u32),
    NoDelay(bool),
    Congestion(Vec<u8>),
    Raw {
        level: i32,
        name: i32,
        value: Vec<u8>,
    },
}

impl SockOpt {
    /// The option's name as the user wrote it, reported with a failure.
    pub fn name(&self) -> &'static str {
        match self {
            SockOpt::DeferAccept(_) => "deferAccept",
            SockOpt::FastOpen(_) => "fastOpen",
            SockOpt::Freebind(_) => "freebind",
            SockOpt::Transparent(_) => "transparent",
            SockOpt::BindToDevice(_) => "bindToDevice",
            SockOpt::ReceiveBuffer(_) => "receiveBufferSize",
            SockOpt::SendBuffer(_) => "sendBufferSize",
            SockOpt::KeepAlive(_) => "keepAlive",
            SockOpt::KeepIdle(_) => "keepAliveInitialDelay",
            SockOpt::KeepInterval(_) => "keepAliveInterval",
            SockOpt::KeepCount(_) => "keepAliveCount",
            SockOpt::UserTimeout(_) => "userTimeout",
            SockOpt::NoDelay(_) => "noDelay",
            SockOpt::Congestion(_) => "congestion",
            SockOpt::Raw { .. } => "socketOptions",
        }
    }
}

/// A failed option: the libuv errno and which option it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOptError {
    pub code: i32,
    pub option: &'static str,
}

/// The options of one listening socket, in the order they are applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketOptions(Vec<SockOpt>);

fn int_bytes(value: i32) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

impl From<SocketOptionsSpec> for SocketOptions {
    fn from(spec: SocketOptionsSpec) -> Self {
        let mut list = Vec::new();
        let mut push = |opt: Option<SockOpt>| list.extend(opt);
        // Binding options first: freebind and transparent decide whether
        // bind() may take a foreign or absent address.
        push(spec.freebind.map(SockOpt::Freebind));
        push(spec.transparent.map(SockOpt::Transparent));
        push(
            spec.bind_to_device
                .map(|d| SockOpt::BindToDevice(d.into_bytes())),
        );
        push(spec.receive_buffer_size.map(SockOpt::ReceiveBuffer));
        push(spec.send_buffer_size.map(SockOpt::SendBuffer));
        push(spec.defer_accept.map(SockOpt::DeferAccept));
        push(spec.fast_open.map(SockOpt::FastOpen));
        push(spec.keep_alive.map(SockOpt::KeepAlive));
        push(spec.keep_alive_initial_delay.map(SockOpt::KeepIdle));
        push(spec.keep_alive_interval.map(SockOpt::KeepInterval));
        push(spec.keep_alive_count.map(SockOpt::KeepCount));
        push(spec.user_timeout.map(SockOpt::UserTimeout));
        push(spec.no_delay.map(SockOpt::NoDelay));
        push(spec.congestion.map(|c| SockOpt::Congestion(c.into_bytes())));
        for raw in spec.raw.unwrap_or_default() {
            let value = match (raw.int, raw.bytes) {
                (Some(int), _) => int_bytes(int),
                (None, Some(bytes)) => bytes,
                (None, None) => Vec::new(),
            };
            push(Some(SockOpt::Raw {
                level: raw.level,
                name: raw.name,
                value,
            }));
        }
        SocketOptions(list)
    }
}

impl SocketOptions {
    /// Sets every option on `socket` (an IPv6 socket when `ipv6`), stopping
    /// at the first the kernel refuses. The caller drops the socket then,
    /// which closes it: a failure leaks nothing.
    pub fn apply(&self, socket: &Socket, ipv6: bool) -> Result<(), SockOptError> {
        for opt in &self.0 {
            imp::apply(socket, opt, ipv6).map_err(|e| SockOptError {
                code: crate::errno::uv_code(&e),
                option: opt.name(),
            })?;
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::AsRawFd;

    use socket2::Socket;

    use super::{int_bytes, SockOpt};

    fn flag(on: bool) -> Vec<u8> {
        int_bytes(i32::from(on))
    }

    fn clamp(value: u32) -> Vec<u8> {
        int_bytes(i32::try_from(value).unwrap_or(i32::MAX))
    }

    /// `(level, name, value)` of one option on a socket of that family.
    fn triple(opt: &SockOpt, ipv6: bool) -> (i32, i32, Vec<u8>) {
        use libc::*;
        match opt {
            SockOpt::DeferAccept(secs) => (IPPROTO_TCP, TCP_DEFER_ACCEPT, clamp(*secs)),
            SockOpt::FastOpen(queue) => (IPPROTO_TCP, TCP_FASTOPEN, clamp(*queue)),
            SockOpt::Freebind(on) if ipv6 => (IPPROTO_IPV6, IPV6_FREEBIND, flag(*on)),
            SockOpt::Freebind(on) => (IPPROTO_IP, IP_FREEBIND, flag(*on)),
            SockOpt::Transparent(on) if ipv6 => (IPPROTO_IPV6, IPV6_TRANSPARENT, flag(*on)),
            SockOpt::Transparent(on) => (IPPROTO_IP, IP_TRANSPARENT, flag(*on)),
            SockOpt::BindToDevice(name) => (SOL_SOCKET, SO_BINDTODEVICE, name.clone()),
            SockOpt::ReceiveBuffer(size) => (SOL_SOCKET, SO_RCVBUF, clamp(*size)),
            SockOpt::SendBuffer(size) => (SOL_SOCKET, SO_SNDBUF, clamp(*size)),
            SockOpt::KeepAlive(on) => (SOL_SOCKET, SO_KEEPALIVE, flag(*on)),
            SockOpt::KeepIdle(secs) => (IPPROTO_TCP, TCP_KEEPIDLE, clamp(*secs)),
            SockOpt::KeepInterval(secs) => (IPPROTO_TCP, TCP_KEEPINTVL, clamp(*secs)),
            SockOpt::KeepCount(count) => (IPPROTO_TCP, TCP_KEEPCNT, clamp(*count)),
            SockOpt::UserTimeout(ms) => (IPPROTO_TCP, TCP_USER_TIMEOUT, clamp(*ms)),
            SockOpt::NoDelay(on) => (IPPROTO_TCP, TCP_NODELAY, flag(*on)),
            SockOpt::Congestion(name) => (IPPROTO_TCP, TCP_CONGESTION, name.clone()),
            SockOpt::Raw { level, name, value } => (*level, *name, value.clone()),
        }
    }

    pub fn apply(socket: &Socket, opt: &SockOpt, ipv6: bool) -> io::Result<()> {
        let (level, name, value) = triple(opt, ipv6);
        let len = libc::socklen_t::try_from(value.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the kernel reads at most `len` bytes from `value`, which
        // lives for the call; the socket is open while borrowed.
        let rc = unsafe {
            libc::setsockopt(socket.as_raw_fd(), level, name, value.as_ptr().cast(), len)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    use socket2::Socket;

    use super::SockOpt;

    /// The options are Linux's (JavaScript refuses them elsewhere first).
    pub fn apply(_socket: &Socket, _opt: &SockOpt, _ipv6: bool) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::ENOTSUP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_apply_binding_ones_first_and_raw_last() {
        let spec = SocketOptionsSpec {
            no_delay: Some(true),
            freebind: Some(true),
            raw: Some(vec![RawSocketOption {
                level: 1,
                name: 2,
                int: Some(3),
                bytes: None,
            }]),
            ..Default::default()
        };
        let options = SocketOptions::from(spec);
        assert_eq!(
            options.0,
            vec![
                SockOpt::Freebind(true),
                SockOpt::NoDelay(true),
                SockOpt::Raw {
                    level: 1,
                    name: 2,
                    value: 3i32.to_ne_bytes().to_vec()
                },
            ]
        );
    }

    #[test]
    fn no_options_is_empty() {
        assert!(SocketOptions::from(SocketOptionsSpec::default())
            .0
            .is_empty());
    }
}
