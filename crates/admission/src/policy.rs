//! Who may send a PROXY header, and what happens when a header is missing,
//! broken or late — in the spirit of go-proxyproto's USE / REQUIRE / REJECT /
//! IGNORE, expressed as two switches.
//!
//! The flow for one accepted connection, driven by the addon:
//! 1. (`blockList`, if any, is checked by the caller on the real peer first;
//!    a blocked peer is refused with [`Reason::Blocked`] before any of this.)
//! 2. [`Policy::on_accept`] with whether the peer is a trusted proxy.
//!    - untrusted, `untrusted: Pass` → `Accept` with the real addresses and
//!      nothing consumed: the peer's bytes (a `PROXY` line included) reach the
//!      application untouched and are never interpreted. Its header is never
//!      believed — the spec's "MUST NOT try to guess" rule.
//!    - untrusted, `untrusted: Reject` → `Reject(Untrusted)`: a port for
//!      proxies only (HAProxy's `accept-proxy` plus an ACL).
//!    - trusted → `NeedMore`: read, then go to 3.
//! 3. [`Policy::on_data`] with everything read so far (from the start) and
//!    whether the peer closed its side. `NeedMore { min_len }` → read on.
//!    - a complete header → `Accept` with the header and its length; LOCAL,
//!      UNKNOWN and UNSPEC headers accept with the real addresses (the
//!      header is still consumed).
//!    - bytes that are not the protocol at all (`Invalid::NotProxy`):
//!      `trusted_without_header: Reject` (the default: REQUIRE, as HAProxy's
//!      `accept-proxy`, nginx's `proxy_protocol` and go-proxyproto ≥ 0.15) →
//!      `Reject(NoHeader)`; `Pass` (go-proxyproto's USE) → `Accept` with the
//!      real addresses and nothing consumed.
//!    - a broken header → `Reject(InvalidHeader(detail))` whatever the mode:
//!      a peer that started a header and got it wrong is never passed on.
//!    - a v2 length over the bound → `Reject(TooLarge)`.
//!    - the peer closed first → `Reject(NoHeader)` if it sent nothing,
//!      `Reject(InvalidHeader(Truncated))` if it stopped inside a header.
//! 4. [`Policy::on_timeout`] when the header timer fires first (the addon
//!    owns the timer): `Reject(Timeout)`, except that in `Pass` mode a peer
//!    that has sent *nothing* yet is accepted with its real addresses (it may
//!    be a client of a server-speaks-first protocol). A peer that sent part of
//!    a header is rejected in both modes.

use std::fmt;
use std::net::SocketAddr;

use crate::proxy::{self, Header, Invalid, ParseOptions, Verdict};

/// What to do with a peer that is not a trusted proxy (JS: `'pass' | 'reject'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Untrusted {
    /// Serve it as a direct client, bytes untouched, header not parsed.
    #[default]
    Pass,
    /// Close it.
    Reject,
}

/// What to do with a trusted peer whose first bytes are not a PROXY header
/// (JS: `'reject' | 'pass'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustedWithoutHeader {
    /// Close it (REQUIRE).
    #[default]
    Reject,
    /// Serve it with its real addresses, bytes untouched (USE).
    Pass,
}

/// The admission policy for a listener with `proxyProtocol` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub untrusted: Untrusted,
    pub trusted_without_header: TrustedWithoutHeader,
    pub parse: ParseOptions,
}

/// Why a connection was refused. [`Reason::code`] is stable and is what the
/// JS side sees (e.g. in a `'proxyReject'`-style event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A trusted peer sent bytes that are not a PROXY header, or closed
    /// without sending anything.
    NoHeader,
    /// The header is malformed; the detail says how.
    InvalidHeader(Invalid),
    /// The header did not complete before the header timeout.
    Timeout,
    /// The peer is not a trusted proxy and the policy rejects such peers.
    Untrusted,
    /// The peer matched the `blockList`.
    Blocked,
    /// The header is longer than the configured bound.
    TooLarge,
    /// The client address holds `maxConnectionsPerAddress` connections
    /// already ([`crate::peers`]).
    PeerLimit,
    /// The client address opens connections faster than
    /// `acceptRatePerAddress` allows ([`crate::peers`]).
    PeerRate,
}

impl Reason {
    /// Stable code for JavaScript.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NoHeader => "ERR_PROXY_HEADER_MISSING",
            Reason::InvalidHeader(_) => "ERR_PROXY_HEADER_INVALID",
            Reason::Timeout => "ERR_PROXY_HEADER_TIMEOUT",
            Reason::Untrusted => "ERR_PROXY_PEER_UNTRUSTED",
            Reason::Blocked => "ERR_PEER_BLOCKED",
            Reason::TooLarge => "ERR_PROXY_HEADER_TOO_LARGE",
            Reason::PeerLimit => "ERR_PEER_LIMIT",
            Reason::PeerRate => "ERR_PEER_RATE",
        }
    }

    /// Stable detail for `InvalidHeader` (e.g. `"v2-crc32c-mismatch"`).
    pub fn detail(&self) -> Option<&'static str> {
        match self {
            Reason::InvalidHeader(i) => Some(i.as_str()),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::InvalidHeader(i) => write!(f, "{}: {i}", self.code()),
            _ => f.write_str(self.code()),
        }
    }
}

impl std::error::Error for Reason {}

/// An accepted connection: the header if one was read, and how many bytes
/// of the stream it took (drop exactly these; the rest is the application's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admit {
    pub header: Option<Header>,
    pub consumed: usize,
}

impl Admit {
    fn real() -> Self {
        Admit {
            header: None,
            consumed: 0,
        }
    }

    /// The peer address to report: the header's source, else the real one.
    pub fn remote(&self, real: SocketAddr) -> SocketAddr {
        self.header
            .as_ref()
            .and_then(Header::source)
            .unwrap_or(real)
    }

    /// The local address to report: the header's destination, else the real one.
    pub fn local(&self, real: SocketAddr) -> SocketAddr {
        self.header
            .as_ref()
            .and_then(Header::destination)
            .unwrap_or(real)
    }
}

/// What the addon should do next with the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Hand it to JavaScript.
    Accept(Admit),
    /// Close it (in Rust; count it; optionally report the reason).
    Reject(Reason),
    /// Read until the buffer holds at least `min_len` bytes in total, then
    /// call [`Policy::on_data`] again with the whole buffer.
    NeedMore { min_len: usize },
}

impl Policy {
    /// Step 2 of the module doc: decide on trust alone.
    pub fn on_accept(&self, trusted: bool) -> Decision {
        match (trusted, self.untrusted) {
            (true, _) => Decision::NeedMore { min_len: 1 },
            (false, Untrusted::Pass) => Decision::Accept(Admit::real()),
            (false, Untrusted::Reject) => Decision::Reject(Reason::Untrusted),
        }
    }

    /// Step 3: `buf` is everything a trusted peer has sent so far; `eof` is
    /// true once it has shut down its side (or the read failed).
    pub fn on_data(&self, buf: &[u8], eof: bool) -> Decision {
        match proxy::parse_with(buf, &self.parse) {
            Verdict::Complete(header, consumed) => Decision::Accept(Admit {
                header: Some(header),
                consumed,
            }),
            Verdict::Incomplete(_) if eof && buf.is_empty() => Decision::Reject(Reason::NoHeader),
            Verdict::Incomplete(_) if eof => {
                Decision::Reject(Reason::InvalidHeader(Invalid::Truncated))
            }
            Verdict::Incomplete(min_len) => Decision::NeedMore { min_len },
            Verdict::Invalid(Invalid::NotProxy) => match self.trusted_without_header {
                TrustedWithoutHeader::Reject => Decision::Reject(Reason::NoHeader),
                TrustedWithoutHeader::Pass => Decision::Accept(Admit::real()),
            },
            Verdict::Invalid(Invalid::TooLarge) => Decision::Reject(Reason::TooLarge),
            Verdict::Invalid(e) => Decision::Reject(Reason::InvalidHeader(e)),
        }
    }

    /// Step 4: the header timer fired before `on_data` decided.
    pub fn on_timeout(&self, buf: &[u8]) -> Decision {
        if buf.is_empty() && self.trusted_without_header == TrustedWithoutHeader::Pass {
            Decision::Accept(Admit::real())
        } else {
            Decision::Reject(Reason::Timeout)
        }
    }

    /// Convenience for the `blockList` check, so every refusal goes through
    /// one type.
    pub fn blocked(&self) -> Decision {
        Decision::Reject(Reason::Blocked)
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
