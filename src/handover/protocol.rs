//! The hand-over protocol, sans I/O: the messages a running process (the
//! *old* side, which owns the control socket) and its successor exchange,
//! and their byte encoding. Nothing here reads, writes or knows about
//! descriptors; the one message that travels with one (`Offer`) is sent by
//! [`super::edge`] with the socket as SCM_RIGHTS ancillary data.
//!
//! Every frame is `"RNHO"`, a version byte, a type byte, a big-endian u16
//! payload length, then the payload. The decoder is strict and bounded: it
//! never needs more than [`MAX_FRAME`] bytes to decide, rejects an unknown
//! magic, version or type, a payload longer than its type allows, and
//! trailing bytes inside a payload. A peer speaking anything else therefore
//! gets a clear error after at most [`HEADER_LEN`] bytes.
//!
//! The conversation (docs/handover.md): the successor sends `Hello`, the old
//! side answers `Welcome` (or `Refused`); then for each server the
//! successor sends `Take` with the address it is about to listen on, and the
//! old side answers `Offer` (with the socket), `Missing` or `Busy`; the
//! successor ends each offer with `Confirm` once it listens, or `Abort`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"RNHO";
/// The protocol version this build speaks.
pub const VERSION: u8 = 1;
/// Magic, version, type, payload length.
pub const HEADER_LEN: usize = 8;
/// The longest payload of any message: a `Take` of a pipe path (at most
/// [`MAX_PATH`] bytes) plus its tag.
pub const MAX_PAYLOAD: usize = 1 + MAX_PATH;
/// The longest frame there is.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD;
/// The longest pipe path a `Take` may name: more than any `sun_path`.
pub const MAX_PATH: usize = 1024;

/// What a server listens on, as the successor asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Tcp {
        ip: IpAddr,
        port: u16,
    },
    /// A Unix socket path (or abstract name, leading NUL), as given to
    /// listen().
    Pipe(Vec<u8>),
}

/// Why the old side refused a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The peer is another user (SO_PEERCRED).
    Forbidden = 1,
    /// The peer sent something that is not this protocol.
    Malformed = 2,
    /// The peer speaks another version of it.
    Version = 3,
    /// A message out of turn (an `Offer` from a successor, a `Confirm` of
    /// nothing).
    Unexpected = 4,
}

impl Refusal {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Refusal::Forbidden,
            2 => Refusal::Malformed,
            3 => Refusal::Version,
            4 => Refusal::Unexpected,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Refusal::Forbidden => "forbidden",
            Refusal::Malformed => "malformed",
            Refusal::Version => "version",
            Refusal::Unexpected => "unexpected",
        }
    }
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Successor → old: who is asking.
    Hello { pid: u32 },
    /// Old → successor: who answers.
    Welcome { pid: u32 },
    /// Successor → old: the socket listening on `address`, please.
    Take(Address),
    /// Old → successor, with the socket attached: here it is; `token` names
    /// the offer in `Confirm`/`Abort`.
    Offer { token: u32 },
    /// Old → successor: no server of mine listens there.
    Missing,
    /// Old → successor: that socket is offered to another successor (process
    /// `pid`) right now.
    Busy { pid: u32 },
    /// Successor → old: I listen on offer `token`'s socket; stop accepting.
    Confirm { token: u32 },
    /// Successor → old: I could not use offer `token`; keep serving.
    Abort { token: u32 },
    /// Old → successor, before it closes the connection.
    Refused(Refusal),
}

const T_HELLO: u8 = 1;
const T_WELCOME: u8 = 2;
const T_TAKE: u8 = 3;
const T_OFFER: u8 = 4;
const T_MISSING: u8 = 5;
const T_BUSY: u8 = 6;
const T_CONFIRM: u8 = 7;
const T_ABORT: u8 = 8;
const T_REFUSED: u8 = 9;

const TAG_V4: u8 = 4;
const TAG_V6: u8 = 6;
const TAG_PIPE: u8 = b'p';

/// Why bytes do not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not this protocol at all.
    Magic,
    /// This protocol, another version.
    Version(u8),
    /// A type byte this version does not know.
    Type(u8),
    /// A payload of the wrong size or content for its type.
    Payload(u8),
}

impl DecodeError {
    /// What the old side answers with before it hangs up.
    pub fn refusal(&self) -> Refusal {
        match self {
            DecodeError::Version(_) => Refusal::Version,
            _ => Refusal::Malformed,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Magic => write!(f, "not a rust-net hand-over message"),
            DecodeError::Version(v) => write!(
                f,
                "hand-over protocol version {v} is not supported (this side speaks {VERSION})"
            ),
            DecodeError::Type(t) => write!(f, "unknown hand-over message type {t}"),
            DecodeError::Payload(t) => write!(f, "malformed hand-over message of type {t}"),
        }
    }
}

impl Message {
    /// The frame for this message.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload) = match self {
            Message::Hello { pid } => (T_HELLO, pid.to_be_bytes().to_vec()),
            Message::Welcome { pid } => (T_WELCOME, pid.to_be_bytes().to_vec()),
            Message::Take(address) => (T_TAKE, encode_address(address)),
            Message::Offer { token } => (T_OFFER, token.to_be_bytes().to_vec()),
            Message::Missing => (T_MISSING, Vec::new()),
            Message::Busy { pid } => (T_BUSY, pid.to_be_bytes().to_vec()),
            Message::Confirm { token } => (T_CONFIRM, token.to_be_bytes().to_vec()),
            Message::Abort { token } => (T_ABORT, token.to_be_bytes().to_vec()),
            Message::Refused(why) => (T_REFUSED, vec![*why as u8]),
        };
        // Only a Take of an over-long path could exceed this; it is cut to
        // the bound rather than sent as a frame no peer would accept.
        let len = payload.len().min(MAX_PAYLOAD);
        let mut frame = Vec::with_capacity(HEADER_LEN + len);
        frame.extend_from_slice(&MAGIC);
        frame.push(VERSION);
        frame.push(kind);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
        frame.extend_from_slice(&payload[..len]);
        frame
    }
}

fn encode_address(address: &Address) -> Vec<u8> {
    match address {
        Address::Tcp { ip, port } => {
            let mut out = Vec::with_capacity(19);
            match ip {
                IpAddr::V4(v4) => {
                    out.push(TAG_V4);
                    out.extend_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    out.push(TAG_V6);
                    out.extend_from_slice(&v6.octets());
                }
            }
            out.extend_from_slice(&port.to_be_bytes());
            out
        }
        Address::Pipe(path) => {
            let mut out = Vec::with_capacity(1 + path.len());
            out.push(TAG_PIPE);
            out.extend_from_slice(path);
            out
        }
    }
}

fn u32_of(kind: u8, payload: &[u8]) -> Result<u32, DecodeError> {
    let bytes: [u8; 4] = payload.try_into().map_err(|_| DecodeError::Payload(kind))?;
    Ok(u32::from_be_bytes(bytes))
}

fn decode_address(payload: &[u8]) -> Result<Address, DecodeError> {
    let bad = DecodeError::Payload(T_TAKE);
    let (&tag, rest) = payload.split_first().ok_or(bad.clone())?;
    match tag {
        TAG_V4 | TAG_V6 => {
            let ip_len = if tag == TAG_V4 { 4 } else { 16 };
            if rest.len() != ip_len + 2 {
                return Err(bad);
            }
            let port = u16::from_be_bytes([rest[ip_len], rest[ip_len + 1]]);
            let ip = if tag == TAG_V4 {
                let octets: [u8; 4] = rest[..4].try_into().map_err(|_| bad.clone())?;
                IpAddr::V4(Ipv4Addr::from(octets))
            } else {
                let octets: [u8; 16] = rest[..16].try_into().map_err(|_| bad.clone())?;
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            Ok(Address::Tcp { ip, port })
        }
        TAG_PIPE if !rest.is_empty() && rest.len() <= MAX_PATH => Ok(Address::Pipe(rest.to_vec())),
        _ => Err(bad),
    }
}

/// Decodes the frame at the start of `bytes`: the message and how many
/// bytes it took, `Ok(None)` when more bytes are needed (never more than
/// [`MAX_FRAME`] in all), or why it can never decode. Each header byte is
/// checked as soon as it is there, so garbage fails early.
pub fn decode(bytes: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
    let magic_seen = bytes.len().min(MAGIC.len());
    if bytes[..magic_seen] != MAGIC[..magic_seen] {
        return Err(DecodeError::Magic);
    }
    if let Some(&version) = bytes.get(4) {
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
    }
    let Some(&kind) = bytes.get(5) else {
        return Ok(None);
    };
    let max = match kind {
        T_HELLO | T_WELCOME | T_OFFER | T_BUSY | T_CONFIRM | T_ABORT => 4,
        T_MISSING => 0,
        T_REFUSED => 1,
        T_TAKE => MAX_PAYLOAD,
        other => return Err(DecodeError::Type(other)),
    };
    let (Some(&hi), Some(&lo)) = (bytes.get(6), bytes.get(7)) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len > max {
        return Err(DecodeError::Payload(kind));
    }
    let Some(payload) = bytes.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let message = match kind {
        T_HELLO => Message::Hello {
            pid: u32_of(kind, payload)?,
        },
        T_WELCOME => Message::Welcome {
            pid: u32_of(kind, payload)?,
        },
        T_TAKE => Message::Take(decode_address(payload)?),
        T_OFFER => Message::Offer {
            token: u32_of(kind, payload)?,
        },
        T_MISSING => Message::Missing,
        T_BUSY => Message::Busy {
            pid: u32_of(kind, payload)?,
        },
        T_CONFIRM => Message::Confirm {
            token: u32_of(kind, payload)?,
        },
        T_ABORT => Message::Abort {
            token: u32_of(kind, payload)?,
        },
        _ => {
            let why = payload.first().copied().and_then(Refusal::from_byte);
            Message::Refused(why.ok_or(DecodeError::Payload(kind))?)
        }
    };
    Ok(Some((message, HEADER_LEN + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Message> {
        vec![
            Message::Hello { pid: 1234 },
            Message::Welcome { pid: u32::MAX },
            Message::Take(Address::Tcp {
                ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
                port: 8080,
            }),
            Message::Take(Address::Tcp {
                ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                port: 0,
            }),
            Message::Take(Address::Pipe(b"/tmp/x.sock".to_vec())),
            Message::Take(Address::Pipe(b"\0abstract".to_vec())),
            Message::Offer { token: 7 },
            Message::Missing,
            Message::Busy { pid: 9 },
            Message::Confirm { token: 7 },
            Message::Abort { token: 8 },
            Message::Refused(Refusal::Forbidden),
            Message::Refused(Refusal::Malformed),
            Message::Refused(Refusal::Version),
            Message::Refused(Refusal::Unexpected),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for message in all() {
            let frame = message.encode();
            assert_eq!(decode(&frame), Ok(Some((message, frame.len()))));
        }
    }

    #[test]
    fn every_prefix_of_a_frame_asks_for_more() {
        for message in all() {
            let frame = message.encode();
            for cut in 0..frame.len() {
                assert_eq!(decode(&frame[..cut]), Ok(None), "{message:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn a_frame_decodes_alone_when_more_follows() {
        let mut bytes = Message::Missing.encode();
        let first = bytes.len();
        bytes.extend(Message::Confirm { token: 1 }.encode());
        assert_eq!(decode(&bytes), Ok(Some((Message::Missing, first))));
    }

    #[test]
    fn garbage_fails_at_its_first_byte() {
        assert_eq!(decode(b"G"), Err(DecodeError::Magic));
        assert_eq!(decode(b"GET / HTTP/1.1\r\n"), Err(DecodeError::Magic));
        assert_eq!(decode(b"RNHx"), Err(DecodeError::Magic));
    }

    #[test]
    fn another_version_is_named_as_such() {
        let mut frame = Message::Hello { pid: 1 }.encode();
        frame[4] = 2;
        assert_eq!(decode(&frame[..5]), Err(DecodeError::Version(2)));
        let err = decode(&frame).err();
        assert_eq!(
            err.as_ref().map(DecodeError::refusal),
            Some(Refusal::Version)
        );
        assert!(err.is_some_and(|e| e.to_string().contains("version 2")));
    }

    #[test]
    fn unknown_types_and_oversized_payloads_are_refused_from_the_header() {
        assert_eq!(decode(b"RNHO\x01\x63"), Err(DecodeError::Type(0x63)));
        // A Hello claiming a 5-byte payload: refused before the payload.
        assert_eq!(
            decode(b"RNHO\x01\x01\x00\x05"),
            Err(DecodeError::Payload(1))
        );
        // A Take longer than any path: refused from its length alone.
        assert_eq!(
            decode(b"RNHO\x01\x03\xff\xff"),
            Err(DecodeError::Payload(3))
        );
    }

    #[test]
    fn payloads_must_be_exact() {
        // A Hello with a 2-byte payload.
        assert_eq!(
            decode(b"RNHO\x01\x01\x00\x02ab"),
            Err(DecodeError::Payload(1))
        );
        // A Take of an IPv4 address missing its port's last byte.
        assert_eq!(
            decode(b"RNHO\x01\x03\x00\x06\x04\x7f\x00\x00\x01\x1f"),
            Err(DecodeError::Payload(3))
        );
        // A Take with an unknown address tag, and an empty path.
        assert_eq!(
            decode(b"RNHO\x01\x03\x00\x01z"),
            Err(DecodeError::Payload(3))
        );
        assert_eq!(
            decode(b"RNHO\x01\x03\x00\x01p"),
            Err(DecodeError::Payload(3))
        );
        // A refusal with an unknown reason.
        assert_eq!(
            decode(b"RNHO\x01\x09\x00\x01\x63"),
            Err(DecodeError::Payload(9))
        );
    }

    #[test]
    fn the_longest_path_fits_and_one_more_byte_does_not() {
        let path = vec![b'a'; MAX_PATH];
        let frame = Message::Take(Address::Pipe(path.clone())).encode();
        assert_eq!(frame.len(), MAX_FRAME);
        assert!(
            matches!(decode(&frame), Ok(Some((Message::Take(Address::Pipe(p)), _))) if p == path)
        );
        let mut too_long = b"RNHO\x01\x03".to_vec();
        too_long.extend_from_slice(&((MAX_PAYLOAD + 1) as u16).to_be_bytes());
        assert_eq!(decode(&too_long), Err(DecodeError::Payload(3)));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_ask_for_more_than_a_frame() {
        // A small deterministic generator: every outcome is an error, a
        // message within the bytes given, or a request for more while
        // fewer than MAX_FRAME bytes are there.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|i| (seed.rotate_left(i as u32 * 5) & 0xff) as u8)
                .collect();
            if round % 2 == 0 {
                // Half of them start as a real header, to reach the payloads.
                let header = [b'R', b'N', b'H', b'O', 1, (seed % 11) as u8];
                for (i, b) in header.iter().enumerate() {
                    if i < bytes.len() {
                        bytes[i] = *b;
                    }
                }
            }
            match decode(&bytes) {
                Ok(Some((_, used))) => assert!(used <= bytes.len()),
                Ok(None) => assert!(bytes.len() < MAX_FRAME),
                Err(_) => {}
            }
        }
    }
}
