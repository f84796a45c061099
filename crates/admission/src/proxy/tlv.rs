//! v2 Type-Length-Value extensions: validation at parse time, typed reading
//! afterwards.
//!
//! The TLV block is stored once, as the exact bytes from the wire (bounded by
//! the header size limit), and read through iterators. That keeps a header to
//! one allocation however many TLVs a sender packs in, and makes "unknown TLVs
//! kept raw" free.
//!
//! Validation policy:
//! - every TLV must fit in the block, and no partial TLV may trail it;
//! - the registered types (0x01–0x05, 0x20–0x25, 0x30) are held to the spec:
//!   AUTHORITY and SSL_CN are UTF-8; SSL_VERSION, SSL_CIPHER, SSL_SIG_ALG,
//!   SSL_KEY_ALG and NETNS are US-ASCII; CRC32C is exactly 4 bytes (and is
//!   verified, see `v2`); UNIQUE_ID is at most 128 bytes; SSL is at least 5
//!   bytes and its sub-TLVs fit exactly; a second CRC32C is rejected because
//!   "the" checksum would be ambiguous;
//! - the application-specific range 0xE0–0xEF (where AWS, Azure and GCP put
//!   their TLVs) is *not* rejected when its shape is unexpected, because the
//!   spec leaves that range to any vendor: another product behind a trusted
//!   proxy may use 0xE0 differently. The typed accessors return `None` instead.
//! - other types are kept raw and never rejected (the spec says to skip what
//!   one does not understand).

use std::str;

use super::Invalid;

/// Registered and well-known TLV type numbers.
pub mod kind {
    pub const ALPN: u8 = 0x01;
    pub const AUTHORITY: u8 = 0x02;
    pub const CRC32C: u8 = 0x03;
    pub const NOOP: u8 = 0x04;
    pub const UNIQUE_ID: u8 = 0x05;
    pub const SSL: u8 = 0x20;
    pub const SSL_VERSION: u8 = 0x21;
    pub const SSL_CN: u8 = 0x22;
    pub const SSL_CIPHER: u8 = 0x23;
    pub const SSL_SIG_ALG: u8 = 0x24;
    pub const SSL_KEY_ALG: u8 = 0x25;
    pub const NETNS: u8 = 0x30;
    /// GCP Private Service Connect: value is the PSC connection id, u64 BE.
    pub const GCP: u8 = 0xE0;
    /// AWS (NLB / PrivateLink): first byte is a subtype; 0x01 = VPC endpoint id.
    pub const AWS: u8 = 0xEA;
    /// Azure Private Link: first byte is a subtype; 0x01 = link id, u32 LE.
    pub const AZURE: u8 = 0xEE;

    pub const AWS_VPCE_ID: u8 = 0x01;
    pub const AZURE_PRIVATE_LINK_ID: u8 = 0x01;
}

/// Bits of the SSL TLV's `client` field.
pub mod client {
    pub const SSL: u8 = 0x01;
    pub const CERT_CONN: u8 = 0x02;
    pub const CERT_SESS: u8 = 0x04;
}

/// Longest UNIQUE_ID value the spec allows.
pub const UNIQUE_ID_MAX: usize = 128;

/// One TLV as it appeared on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub kind: u8,
    pub value: &'a [u8],
}

/// Walks a TLV sequence. Stops (rather than erring) at a malformed tail; the
/// parser has validated the blocks it builds, so that only matters for blocks
/// assembled by hand with [`Tlvs::push`].
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> TlvIter<'a> {
    pub fn new(block: &'a [u8]) -> Self {
        TlvIter { rest: block }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        match split_tlv(self.rest) {
            Some(Ok((tlv, rest))) => {
                self.rest = rest;
                Some(tlv)
            }
            _ => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Split one TLV off the front: `None` at the end, `Err` if what remains is
/// not a whole TLV.
fn split_tlv(block: &[u8]) -> Option<Result<(Tlv<'_>, &[u8]), ()>> {
    let (&kind, rest) = block.split_first()?;
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return Some(Err(()));
    };
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return Some(Err(()));
    }
    let (value, rest) = rest.split_at(len);
    Some(Ok((Tlv { kind, value }, rest)))
}

/// The TLVs of a header, as the raw block plus typed accessors. For repeated
/// types the accessors return the first occurrence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tlvs {
    block: Vec<u8>,
}

/// Returned by [`Tlvs::push`] for a value longer than a TLV can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueTooLong;

impl Tlvs {
    pub fn new() -> Self {
        Tlvs::default()
    }

    /// Wraps a block that [`validate`] accepted.
    pub(crate) fn from_validated(block: &[u8]) -> Self {
        Tlvs {
            block: block.to_vec(),
        }
    }

    /// Appends a TLV (for building headers in tests and encoders).
    pub fn push(&mut self, kind: u8, value: &[u8]) -> Result<(), ValueTooLong> {
        let len = u16::try_from(value.len()).map_err(|_| ValueTooLong)?;
        self.block.push(kind);
        self.block.extend_from_slice(&len.to_be_bytes());
        self.block.extend_from_slice(value);
        Ok(())
    }

    /// The TLV block exactly as on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.block
    }

    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }

    /// All TLVs in wire order, known and unknown alike.
    pub fn iter(&self) -> TlvIter<'_> {
        TlvIter::new(&self.block)
    }

    /// First value of the given type.
    pub fn get(&self, kind: u8) -> Option<&[u8]> {
        self.iter().find(|t| t.kind == kind).map(|t| t.value)
    }

    pub fn alpn(&self) -> Option<&[u8]> {
        self.get(kind::ALPN)
    }

    /// SNI or other host name the client asked for (validated UTF-8).
    pub fn authority(&self) -> Option<&str> {
        self.get(kind::AUTHORITY)
            .and_then(|v| str::from_utf8(v).ok())
    }

    /// The checksum that was sent (and verified) — `None` if none was sent.
    pub fn crc32c(&self) -> Option<u32> {
        let v: [u8; 4] = self.get(kind::CRC32C)?.try_into().ok()?;
        Some(u32::from_be_bytes(v))
    }

    pub fn unique_id(&self) -> Option<&[u8]> {
        self.get(kind::UNIQUE_ID)
    }

    pub fn ssl(&self) -> Option<Ssl<'_>> {
        Ssl::parse(self.get(kind::SSL)?)
    }

    pub fn netns(&self) -> Option<&str> {
        self.get(kind::NETNS).and_then(|v| str::from_utf8(v).ok())
    }

    /// AWS VPC endpoint id (`vpce-...`), from TLV 0xEA subtype 0x01.
    pub fn aws_vpce_id(&self) -> Option<&str> {
        self.iter()
            .filter(|t| t.kind == kind::AWS)
            .find_map(|t| match t.value.split_first() {
                Some((&kind::AWS_VPCE_ID, id)) if id.is_ascii() => str::from_utf8(id).ok(),
                _ => None,
            })
    }

    /// Azure Private Link `LINKID`, from TLV 0xEE subtype 0x01 (u32 little-endian).
    pub fn azure_link_id(&self) -> Option<u32> {
        self.iter()
            .filter(|t| t.kind == kind::AZURE)
            .find_map(|t| match t.value {
                [kind::AZURE_PRIVATE_LINK_ID, a, b, c, d] => {
                    Some(u32::from_le_bytes([*a, *b, *c, *d]))
                }
                _ => None,
            })
    }

    /// GCP Private Service Connect connection id, from TLV 0xE0 (u64 big-endian).
    pub fn gcp_psc_connection_id(&self) -> Option<u64> {
        self.iter()
            .filter(|t| t.kind == kind::GCP)
            .find_map(|t| <[u8; 8]>::try_from(t.value).ok().map(u64::from_be_bytes))
    }
}

/// A view of the `PP2_TYPE_SSL` TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ssl<'a> {
    /// Bit field, see [`client`].
    pub client: u8,
    /// Zero iff the client presented a certificate and it verified.
    pub verify: u32,
    subs: &'a [u8],
}

impl<'a> Ssl<'a> {
    fn parse(value: &'a [u8]) -> Option<Self> {
        let (&client, rest) = value.split_first()?;
        let (verify, subs) = rest.split_first_chunk::<4>()?;
        Some(Ssl {
            client,
            verify: u32::from_be_bytes(*verify),
            subs,
        })
    }

    /// The client connected over SSL/TLS.
    pub fn client_ssl(&self) -> bool {
        self.client & client::SSL != 0
    }
    /// The client presented a certificate on this connection.
    pub fn client_cert_conn(&self) -> bool {
        self.client & client::CERT_CONN != 0
    }
    /// The client presented a certificate at least once in this TLS session.
    pub fn client_cert_sess(&self) -> bool {
        self.client & client::CERT_SESS != 0
    }
    /// A certificate was presented and verified (`verify == 0` alone also
    /// holds when no certificate was asked for, so both are checked).
    pub fn verified(&self) -> bool {
        self.verify == 0 && (self.client_cert_conn() || self.client_cert_sess())
    }

    pub fn sub_tlvs(&self) -> TlvIter<'a> {
        TlvIter::new(self.subs)
    }

    fn sub_str(&self, k: u8) -> Option<&'a str> {
        self.sub_tlvs()
            .find(|t| t.kind == k)
            .and_then(|t| str::from_utf8(t.value).ok())
    }

    pub fn version(&self) -> Option<&'a str> {
        self.sub_str(kind::SSL_VERSION)
    }
    pub fn cn(&self) -> Option<&'a str> {
        self.sub_str(kind::SSL_CN)
    }
    pub fn cipher(&self) -> Option<&'a str> {
        self.sub_str(kind::SSL_CIPHER)
    }
    pub fn sig_alg(&self) -> Option<&'a str> {
        self.sub_str(kind::SSL_SIG_ALG)
    }
    pub fn key_alg(&self) -> Option<&'a str> {
        self.sub_str(kind::SSL_KEY_ALG)
    }
}

/// Validates a v2 TLV block (see the module doc for the rules). Returns the
/// offset, within `block`, of the CRC32C value if one is present, so the
/// caller can verify it over the whole header.
pub(crate) fn validate(block: &[u8]) -> Result<Option<usize>, Invalid> {
    let mut crc_at = None;
    let mut rest = block;
    while let Some(split) = split_tlv(rest) {
        let (tlv, next) = split.map_err(|()| Invalid::TlvTruncated)?;
        let value_at = block.len() - next.len() - tlv.value.len();
        let ok = match tlv.kind {
            kind::AUTHORITY => str::from_utf8(tlv.value).is_ok(),
            kind::CRC32C => {
                if crc_at.is_some() {
                    return Err(Invalid::TlvDuplicate(kind::CRC32C));
                }
                crc_at = Some(value_at);
                tlv.value.len() == 4
            }
            kind::UNIQUE_ID => tlv.value.len() <= UNIQUE_ID_MAX,
            kind::SSL => {
                validate_ssl(tlv.value)?;
                true
            }
            kind::NETNS => tlv.value.is_ascii(),
            _ => true,
        };
        if !ok {
            return Err(Invalid::TlvBadValue(tlv.kind));
        }
        rest = next;
    }
    Ok(crc_at)
}

fn validate_ssl(value: &[u8]) -> Result<(), Invalid> {
    let Some(ssl) = Ssl::parse(value) else {
        return Err(Invalid::TlvBadValue(kind::SSL));
    };
    let mut rest = ssl.subs;
    while let Some(split) = split_tlv(rest) {
        let (sub, next) = split.map_err(|()| Invalid::SslSubTlvTruncated)?;
        let ok = match sub.kind {
            kind::SSL_CN => str::from_utf8(sub.value).is_ok(),
            kind::SSL_VERSION | kind::SSL_CIPHER | kind::SSL_SIG_ALG | kind::SSL_KEY_ALG => {
                sub.value.is_ascii()
            }
            _ => true,
        };
        if !ok {
            return Err(Invalid::TlvBadValue(sub.kind));
        }
        rest = next;
    }
    Ok(())
}
