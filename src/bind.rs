//! One TCP bind, specified once: what JavaScript asks for
//! ([`TcpBindSpec`], built in `lib/listener.js`) is checked and converted
//! here, once, into the [`TcpBind`] that `socket::bind_tcp` and
//! `share::bind_tcp` take — instead of six positional arguments each layer
//! passed on and re-checked.

use napi_derive::napi;

use crate::errno::UV_EINVAL;
use crate::sockopt::{SockOptError, SocketOptions, SocketOptionsSpec};

/// A TCP bind as JavaScript asks for it.
#[napi(object)]
pub struct TcpBindSpec {
    /// An IP literal (IPv6 may carry a `%scope`).
    pub address: String,
    pub port: u32,
    /// The literal's family, as Node's `bind` vs `bind6`.
    pub ipv6: bool,
    /// IPV6_V6ONLY (`ipv6Only`); only read for IPv6.
    pub ipv6_only: bool,
    /// SO_REUSEPORT (`reusePort`).
    pub reuse_port: bool,
    /// The calling thread's `threadId` when the socket is shared across
    /// threads (`shareAcrossThreads`); absent for a socket of its own.
    pub share_thread_id: Option<u32>,
    /// Socket options set before bind() (see [`crate::sockopt`]).
    pub socket_options: Option<SocketOptionsSpec>,
}

/// A checked TCP bind.
#[derive(Debug)]
pub struct TcpBind {
    pub address: String,
    pub port: u16,
    pub ipv6: bool,
    /// IPV6_V6ONLY; always false for IPv4.
    pub ipv6_only: bool,
    pub reuse_port: bool,
    pub share_thread_id: Option<u32>,
    pub options: SocketOptions,
}

impl TryFrom<TcpBindSpec> for TcpBind {
    type Error = BindError;

    fn try_from(spec: TcpBindSpec) -> Result<Self, BindError> {
        let port = u16::try_from(spec.port).map_err(|_| BindError::from(UV_EINVAL))?;
        Ok(TcpBind {
            address: spec.address,
            port,
            ipv6: spec.ipv6,
            ipv6_only: spec.ipv6 && spec.ipv6_only,
            reuse_port: spec.reuse_port,
            share_thread_id: spec.share_thread_id,
            options: spec
                .socket_options
                .map(SocketOptions::from)
                .unwrap_or_default(),
        })
    }
}

/// Why a bind failed: a libuv errno, and the socket option the kernel
/// refused when it was a `setsockopt` (JavaScript reports those with
/// syscall `'setsockopt'` rather than Node's `'listen'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindError {
    pub code: i32,
    pub option: Option<&'static str>,
}

impl From<i32> for BindError {
    fn from(code: i32) -> Self {
        BindError { code, option: None }
    }
}

impl From<SockOptError> for BindError {
    fn from(err: SockOptError) -> Self {
        BindError {
            code: err.code,
            option: Some(err.option),
        }
    }
}
