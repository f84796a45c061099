//! Hand-over of listening sockets to a successor process (docs/handover.md).
//!
//! - [`protocol`]: the messages and their encoding, sans I/O.
//! - [`edge`]: descriptor passing (SCM_RIGHTS), peer credentials
//!   (SO_PEERCRED) and the successor's blocking reads.
//! - [`offers`]: what this process can hand over, from all its threads,
//!   and which thread serves each control socket.
//! - [`session`]: a successor's conversation with the old process, shared
//!   by the successor's threads.
//! - `surface`: the N-API functions of those two.
//!
//! The conversation itself is driven from JavaScript (lib/handover.js): the
//! old side reads its control connections as ordinary Node sockets and
//! decodes with [`decode`]; the successor's listen() calls [`connect`],
//! [`send`] and [`receive`] synchronously. This module converts between
//! the protocol's types and the plain objects JavaScript sees.

pub mod edge;
pub mod offers;
pub mod protocol;
pub mod session;
pub mod surface;

use std::net::IpAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use protocol::{Address, Message, Refusal};

/// One message as JavaScript sees it: `type` names it, the other members
/// are those of its kind.
#[napi(object)]
#[derive(Default)]
pub struct HandoverMessage {
    /// hello, welcome, take, offer, missing, busy, confirm, abort, refused.
    pub r#type: String,
    pub pid: Option<u32>,
    pub token: Option<u32>,
    /// take (TCP): the IP literal and port.
    pub ip: Option<String>,
    pub port: Option<u32>,
    /// take (pipe): the path.
    pub path: Option<Buffer>,
    /// refused: forbidden, malformed, version, unexpected.
    pub reason: Option<String>,
}

impl From<&Message> for HandoverMessage {
    fn from(message: &Message) -> Self {
        let of = |kind: &str| HandoverMessage {
            r#type: kind.to_string(),
            ..Default::default()
        };
        match message {
            Message::Hello { pid } => HandoverMessage {
                pid: Some(*pid),
                ..of("hello")
            },
            Message::Welcome { pid } => HandoverMessage {
                pid: Some(*pid),
                ..of("welcome")
            },
            Message::Take(Address::Tcp { ip, port }) => HandoverMessage {
                ip: Some(ip.to_string()),
                port: Some(u32::from(*port)),
                ..of("take")
            },
            Message::Take(Address::Pipe(path)) => HandoverMessage {
                path: Some(path.clone().into()),
                ..of("take")
            },
            Message::Offer { token } => HandoverMessage {
                token: Some(*token),
                ..of("offer")
            },
            Message::Missing => of("missing"),
            Message::Busy { pid } => HandoverMessage {
                pid: Some(*pid),
                ..of("busy")
            },
            Message::Confirm { token } => HandoverMessage {
                token: Some(*token),
                ..of("confirm")
            },
            Message::Abort { token } => HandoverMessage {
                token: Some(*token),
                ..of("abort")
            },
            Message::Refused(why) => HandoverMessage {
                reason: Some(why.name().to_string()),
                ..of("refused")
            },
        }
    }
}

impl TryFrom<&HandoverMessage> for Message {
    type Error = String;

    fn try_from(m: &HandoverMessage) -> Result<Self, String> {
        let need = |v: Option<u32>, what: &str| v.ok_or(format!("{} needs {what}", m.r#type));
        Ok(match m.r#type.as_str() {
            "hello" => Message::Hello {
                pid: need(m.pid, "pid")?,
            },
            "welcome" => Message::Welcome {
                pid: need(m.pid, "pid")?,
            },
            "take" => match (&m.ip, &m.path) {
                (Some(ip), None) => Message::Take(Address::Tcp {
                    ip: ip.parse::<IpAddr>().map_err(|e| e.to_string())?,
                    port: u16::try_from(need(m.port, "port")?).map_err(|e| e.to_string())?,
                }),
                (None, Some(path)) if !path.is_empty() && path.len() <= protocol::MAX_PATH => {
                    Message::Take(Address::Pipe(path.to_vec()))
                }
                _ => return Err("take needs an ip and port, or a path".into()),
            },
            "offer" => Message::Offer {
                token: need(m.token, "token")?,
            },
            "missing" => Message::Missing,
            "busy" => Message::Busy {
                pid: need(m.pid, "pid")?,
            },
            "confirm" => Message::Confirm {
                token: need(m.token, "token")?,
            },
            "abort" => Message::Abort {
                token: need(m.token, "token")?,
            },
            "refused" => Message::Refused(match m.reason.as_deref() {
                Some("forbidden") => Refusal::Forbidden,
                Some("version") => Refusal::Version,
                Some("unexpected") => Refusal::Unexpected,
                _ => Refusal::Malformed,
            }),
            other => return Err(format!("unknown hand-over message type {other:?}")),
        })
    }
}

/// What [`decode`] found at the start of some bytes.
#[napi(object)]
pub struct HandoverDecoded {
    /// Bytes the message took (0 when more are needed or on error).
    pub used: u32,
    pub message: Option<HandoverMessage>,
    /// Why the bytes can never decode.
    pub error: Option<String>,
    /// The refusal to answer that error with (malformed or version).
    pub refusal: Option<String>,
}

/// Decodes the first frame of `bytes` (see [`protocol::decode`]).
pub fn decode(bytes: &[u8]) -> HandoverDecoded {
    match protocol::decode(bytes) {
        Ok(Some((message, used))) => HandoverDecoded {
            used: used as u32,
            message: Some(HandoverMessage::from(&message)),
            error: None,
            refusal: None,
        },
        Ok(None) => HandoverDecoded {
            used: 0,
            message: None,
            error: None,
            refusal: None,
        },
        Err(err) => HandoverDecoded {
            used: 0,
            message: None,
            error: Some(err.to_string()),
            refusal: Some(err.refusal().name().to_string()),
        },
    }
}

/// A control connection's peer.
#[napi(object)]
pub struct HandoverPeer {
    /// 0 or a negative libuv errno (then the rest is meaningless).
    pub code: i32,
    pub pid: u32,
    pub uid: u32,
    pub same_user: bool,
}

/// Who is at the other end of control connection `fd`.
pub fn peer(fd: i32) -> HandoverPeer {
    match edge::peer(fd) {
        Ok(p) => HandoverPeer {
            code: 0,
            pid: p.pid,
            uid: p.uid,
            same_user: p.is_same_user(),
        },
        Err(code) => HandoverPeer {
            code,
            pid: 0,
            uid: 0,
            same_user: false,
        },
    }
}

/// A blocking connection to the control socket at `path`, whose reads and
/// writes each wait at most `timeout_ms`: its descriptor (the caller owns
/// it), or a negative libuv errno.
pub fn connect(path: &str, timeout_ms: u32) -> i32 {
    match edge::connect(path, Duration::from_millis(u64::from(timeout_ms))) {
        Ok(fd) => fd.into_raw_fd(),
        Err(code) => code,
    }
}

/// Sends `message` on control connection `fd`, with descriptor `pass`
/// attached when it is not negative: 0 or a negative libuv errno; an
/// invalid message throws.
pub fn send(fd: i32, message: &HandoverMessage, pass: i32) -> napi::Result<i32> {
    let message = Message::try_from(message).map_err(napi::Error::from_reason)?;
    let pass = (pass >= 0).then_some(pass);
    Ok(edge::send(fd, &message, pass).err().unwrap_or(0))
}

/// What [`receive`] read.
#[napi(object)]
pub struct HandoverReceived {
    /// 0; or a negative libuv errno (`UV_EOF` for a closed connection,
    /// `UV_EMFILE` when a descriptor came but could not be received).
    pub code: i32,
    pub message: Option<HandoverMessage>,
    /// The descriptor that came with the message (the caller owns it), or -1.
    pub fd: i32,
    /// Why the bytes were not this protocol.
    pub error: Option<String>,
}

/// libuv's `UV_EOF`.
const UV_EOF: i32 = -4095;

/// Reads one frame from control connection `fd`, blocking (at most its
/// timeout).
pub fn receive(fd: i32) -> HandoverReceived {
    let failed = |code: i32, error: Option<String>| HandoverReceived {
        code,
        message: None,
        fd: -1,
        error,
    };
    match edge::recv(fd) {
        Ok((message, passed)) => HandoverReceived {
            code: 0,
            message: Some(HandoverMessage::from(&message)),
            fd: passed.map_or(-1, IntoRawFd::into_raw_fd),
            error: None,
        },
        Err(edge::RecvError::Closed) => failed(UV_EOF, None),
        Err(edge::RecvError::NoDescriptors) => failed(-libc::EMFILE, None),
        Err(edge::RecvError::Os(code)) => failed(code, None),
        Err(edge::RecvError::Protocol(err)) => {
            failed(crate::errno::UV_EINVAL, Some(err.to_string()))
        }
    }
}

/// The address a `take` message names (how JavaScript describes a
/// server's address to [`offers`]).
fn address_of(m: &HandoverMessage) -> napi::Result<Address> {
    match Message::try_from(m).map_err(napi::Error::from_reason)? {
        Message::Take(address) => Ok(address),
        _ => Err(napi::Error::from_reason("an address is a take message")),
    }
}

/// Registers a listening server that can be handed over (see
/// [`offers::register`]); the first registration of a thread also makes
/// sure the thread's registrations go with it when it ends.
pub fn register(
    env: &napi::Env,
    control: String,
    address: &HandoverMessage,
    thread_id: u32,
    fd: i32,
    group: u32,
    on_notice: &offers::NoticeCallback,
) -> napi::Result<i32> {
    let address = address_of(address)?;
    watch_thread(env, thread_id)?;
    offers::register(env, control, address, thread_id, fd, group, on_notice)
}

/// The other addresses of the server on `address` (see
/// [`offers::siblings`]), as take messages.
pub fn siblings(control: &str, address: &HandoverMessage) -> napi::Result<Vec<HandoverMessage>> {
    let address = address_of(address)?;
    Ok(offers::siblings(control, &address)
        .into_iter()
        .map(|a| HandoverMessage::from(&Message::Take(a)))
        .collect())
}

thread_local! {
    static WATCHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Once per thread: when its environment goes (a worker terminated, or the
/// process exiting), its registrations and the control sockets it served go
/// too — the latter to another thread with servers on them.
fn watch_thread(env: &napi::Env, thread_id: u32) -> napi::Result<()> {
    if WATCHED.with(|watched| watched.replace(true)) {
        return Ok(());
    }
    env.add_env_cleanup_hook(thread_id, offers::thread_gone)?;
    Ok(())
}

/// Sends the socket listening on `address` as `offer {token}` on control
/// connection `session`: the registration it came from (> 0), 0 when no
/// server here listens there, or a negative libuv errno.
pub fn offer(
    session: i32,
    control: &str,
    address: &HandoverMessage,
    token: u32,
) -> napi::Result<i64> {
    let address = address_of(address)?;
    Ok(match offers::offer(session, control, &address, token) {
        offers::Offered::Sent(id) => i64::from(id),
        offers::Offered::Missing => 0,
        offers::Offered::Failed(code) => i64::from(code),
    })
}

/// The successor `pid` confirmed the socket listening on `address`: see
/// [`offers::handed_over`].
pub fn handed_over(control: &str, address: &HandoverMessage, pid: u32) -> napi::Result<u32> {
    Ok(offers::handed_over(control, &address_of(address)?, pid))
}

/// Keeps control connection `fd` as this process's conversation on `path`
/// (see [`session::keep`]); the descriptor is the registry's either way.
pub fn keep_session(path: String, fd: i32) -> bool {
    if fd < 0 {
        return false;
    }
    // SAFETY: JavaScript hands over a descriptor `connect` returned, which
    // it owns and uses no more after this call.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    session::keep(path, fd)
}
