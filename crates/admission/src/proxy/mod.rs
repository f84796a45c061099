//! PROXY protocol v1 and v2 receiver, sans-IO.
//!
//! [`parse`] looks at the bytes read so far from a freshly accepted socket and
//! says one of three things:
//! - [`Verdict::Complete`]: a whole, valid header, and how many bytes it took.
//!   Exactly those bytes belong to the header; anything after them is the
//!   client's payload and must reach the application untouched.
//! - [`Verdict::Incomplete`]: every byte so far is consistent with a header;
//!   read more. It carries the minimum *total* buffer length worth parsing
//!   again (for v2, once the 16 fixed bytes are in, that is the whole header).
//! - [`Verdict::Invalid`]: these bytes can never start a valid header; close.
//!
//! **Re-parse from the start.** The parser keeps no state: after
//! `Incomplete`, append what the next read brings and call [`parse`] again on
//! the whole buffer. That is simple and cheap, because the work is bounded by
//! the header size limit (107 bytes for v1, [`ParseOptions::max_header_len`]
//! for v2), and it lets the caller read with `MSG_PEEK` or into its own buffer
//! as it likes.
//!
//! **Fail fast.** Bytes are checked as soon as they arrive: the first byte
//! must be `P` (v1) or CR (v2), every following byte must continue the v1
//! line or the v2 signature, and a v2 length over the limit is refused as
//! soon as the 16 fixed bytes are in. A client that does not speak the
//! protocol (an HTTP request, a TLS ClientHello) is rejected on its first
//! byte or two.
//!
//! **Safety.** Never panics, never indexes past the buffer, allocates only
//! for a complete header (one copy of its TLV block, which is bounded by the
//! limit). No `unsafe`.

mod header;
pub mod tlv;
mod v1;
mod v2;

#[cfg(any(test, feature = "encode"))]
pub mod encode;

#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_v1;
#[cfg(test)]
mod tests_v2;

use std::fmt;

pub use header::{Addresses, Command, Family, Header, Transport, UnixAddr, Version};
pub use tlv::{Ssl, Tlv, TlvIter, Tlvs};

/// The 12 bytes that open every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Fixed part of a v2 header: signature, version/command, family, length.
pub const V2_FIXED_LEN: usize = 16;
/// Largest possible v2 header (the length field is a u16).
pub const V2_MAX_LEN: usize = V2_FIXED_LEN + u16::MAX as usize;
/// Longest v1 line, CRLF included, that the spec lets a sender produce.
pub const V1_MAX_LEN: usize = 107;
/// Longest v2 address block: AF_UNIX, two 108-byte `sun_path`s (the spec's
/// `struct { uint8_t src_addr[108]; uint8_t dst_addr[108]; } unix_addr`).
pub const V2_MAX_ADDRESS_LEN: usize = Family::Unix.address_len();
/// The smallest bound a server may set on a header
/// ([`ParseOptions::max_header_len`]): the v2 fixed part plus the longest
/// address block (16 + 216 = 232), so that every header without TLVs fits,
/// whatever its family — a smaller bound would refuse a valid AF_UNIX header
/// from a proxy sending no TLVs at all. It is above [`V1_MAX_LEN`] too, so
/// every v1 line fits.
pub const MAX_HEADER_LEN_MIN: usize = V2_FIXED_LEN + V2_MAX_ADDRESS_LEN;
/// The largest bound a server may set: the largest header the protocol can
/// express ([`V2_MAX_LEN`], 16 + 65535 = 65551); a larger one would mean
/// nothing.
pub const MAX_HEADER_LEN_MAX: usize = V2_MAX_LEN;
const _: () =
    assert!(V1_MAX_LEN <= MAX_HEADER_LEN_MIN && MAX_HEADER_LEN_MIN <= DEFAULT_MAX_HEADER_LEN);
/// Default bound on a v2 header: far above what HAProxy, nginx, AWS, GCP or
/// Azure send (a few hundred bytes at most with SSL TLVs), far below the
/// 64 KiB the length field could claim.
pub const DEFAULT_MAX_HEADER_LEN: usize = 4096;

/// What the receiver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Total v2 header size bound (16 fixed bytes included). Values above
    /// [`V2_MAX_LEN`] mean "no bound but the protocol's"; v1 is always bounded
    /// by [`V1_MAX_LEN`].
    pub max_header_len: usize,
    /// Accept the v1 text format.
    pub v1: bool,
    /// Accept the v2 binary format.
    pub v2: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_header_len: DEFAULT_MAX_HEADER_LEN,
            v1: true,
            v2: true,
        }
    }
}

/// Outcome of [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid header that occupies exactly the first `consumed` bytes.
    Complete(Header, usize),
    /// Valid so far; parse again once the buffer holds at least this many
    /// bytes in total.
    Incomplete(usize),
    /// Not (or no longer possibly) a valid header.
    Invalid(Invalid),
}

/// Why bytes were refused. `as_str` gives a stable kebab-case detail for logs
/// and for JS (`ERR_PROXY_HEADER_INVALID` events carry it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invalid {
    /// Neither the v1 `PROXY ` prefix nor the v2 signature (or the matching
    /// version is disabled): the peer did not send a PROXY header at all.
    NotProxy,
    /// The stream ended (or the caller gave up) inside a header.
    Truncated,
    /// v1: no CRLF within the first 107 bytes.
    V1TooLong,
    /// v1: a CR not followed by LF, or an LF not preceded by CR.
    V1BadLineEnd,
    /// v1: protocol is not `TCP4`, `TCP6` or `UNKNOWN`.
    V1BadProtocol,
    /// v1: fields not separated by exactly one space, or a field missing or extra.
    V1BadSyntax,
    /// v1: an address that is not canonical for the family.
    V1BadAddress,
    /// v1: a port that is not 0–65535 in plain decimal.
    V1BadPort,
    /// v2: version nibble is not 2.
    V2BadVersion,
    /// v2: command nibble is neither LOCAL nor PROXY.
    V2BadCommand,
    /// v2: unassigned family or transport nibble.
    V2BadFamily,
    /// v2: a DGRAM (UDP) connection announced on a stream listener.
    V2UnsupportedTransport,
    /// v2: the length field is shorter than the family's address block.
    V2AddressTooShort,
    /// v2: the header is longer than [`ParseOptions::max_header_len`].
    TooLarge,
    /// v2: a TLV (or the block's tail) runs past the header.
    TlvTruncated,
    /// v2: an SSL sub-TLV runs past the SSL TLV.
    SslSubTlvTruncated,
    /// v2: a registered TLV (type given) has a value the spec forbids.
    TlvBadValue(u8),
    /// v2: a TLV that must be unique (type given) appears twice.
    TlvDuplicate(u8),
    /// v2: the CRC32C TLV does not match the header.
    Crc32cMismatch,
}

impl Invalid {
    pub fn as_str(&self) -> &'static str {
        match self {
            Invalid::NotProxy => "not-proxy-protocol",
            Invalid::Truncated => "truncated",
            Invalid::V1TooLong => "v1-too-long",
            Invalid::V1BadLineEnd => "v1-bad-line-end",
            Invalid::V1BadProtocol => "v1-bad-protocol",
            Invalid::V1BadSyntax => "v1-bad-syntax",
            Invalid::V1BadAddress => "v1-bad-address",
            Invalid::V1BadPort => "v1-bad-port",
            Invalid::V2BadVersion => "v2-bad-version",
            Invalid::V2BadCommand => "v2-bad-command",
            Invalid::V2BadFamily => "v2-bad-family",
            Invalid::V2UnsupportedTransport => "v2-unsupported-transport",
            Invalid::V2AddressTooShort => "v2-address-too-short",
            Invalid::TooLarge => "too-large",
            Invalid::TlvTruncated => "v2-tlv-truncated",
            Invalid::SslSubTlvTruncated => "v2-ssl-sub-tlv-truncated",
            Invalid::TlvBadValue(_) => "v2-tlv-bad-value",
            Invalid::TlvDuplicate(_) => "v2-tlv-duplicate",
            Invalid::Crc32cMismatch => "v2-crc32c-mismatch",
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::TlvBadValue(k) | Invalid::TlvDuplicate(k) => {
                write!(f, "{} (type 0x{k:02x})", self.as_str())
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

impl std::error::Error for Invalid {}

/// Parses with [`ParseOptions::default`] (v1 and v2, 4 KiB bound).
pub fn parse(buf: &[u8]) -> Verdict {
    parse_with(buf, &ParseOptions::default())
}

/// Parses a header at the start of `buf` (see the module doc).
pub fn parse_with(buf: &[u8], opts: &ParseOptions) -> Verdict {
    let Some(&first) = buf.first() else {
        // Nothing yet: one byte is enough to tell the versions apart.
        return Verdict::Incomplete(1);
    };
    match first {
        b'P' if opts.v1 => v1::parse(buf),
        b'\r' if opts.v2 => v2::parse(buf, opts),
        _ => Verdict::Invalid(Invalid::NotProxy),
    }
}
