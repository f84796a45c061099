//! Serialisers for PROXY headers (cargo feature `encode`).
//!
//! They exist so tests can round-trip generated headers through the parser,
//! and so the addon's JS tests and bench can produce well-formed headers (and
//! break them on purpose) without a second implementation in JavaScript.
//! Senders, not receivers: nothing in the accept path uses them.

use std::net::SocketAddr;

use super::tlv::kind;
use super::{Addresses, Command, Family, Header, Tlvs, Transport, Version, V2_SIGNATURE};
use crate::crc32c::crc32c;

/// A PROXY (not LOCAL) header for a TCP connection from `source` to
/// `destination`. Both must be of the same IP family.
pub fn inet_header(
    version: Version,
    source: SocketAddr,
    destination: SocketAddr,
    tlvs: Tlvs,
) -> Header {
    Header {
        version,
        command: Command::Proxy,
        family: if source.is_ipv4() {
            Family::Inet
        } else {
            Family::Inet6
        },
        transport: Transport::Stream,
        addresses: Addresses::Inet {
            source,
            destination,
        },
        tlvs,
    }
}

/// The v1 line for `header`: `TCP4`/`TCP6` for IP addresses, the short
/// `UNKNOWN` form for [`Addresses::Unspec`]. `None` for UNIX addresses or
/// mixed families, which v1 cannot express.
pub fn v1(header: &Header) -> Option<Vec<u8>> {
    let line = match &header.addresses {
        Addresses::Unspec => "PROXY UNKNOWN\r\n".to_string(),
        Addresses::Inet {
            source: SocketAddr::V4(s),
            destination: SocketAddr::V4(d),
        } => {
            format!(
                "PROXY TCP4 {} {} {} {}\r\n",
                s.ip(),
                d.ip(),
                s.port(),
                d.port()
            )
        }
        Addresses::Inet {
            source: SocketAddr::V6(s),
            destination: SocketAddr::V6(d),
        } => {
            format!(
                "PROXY TCP6 {} {} {} {}\r\n",
                s.ip(),
                d.ip(),
                s.port(),
                d.port()
            )
        }
        _ => return None,
    };
    Some(line.into_bytes())
}

/// The v2 bytes for `header`. If its TLVs hold a CRC32C TLV, the checksum is
/// computed and written into it (whatever value it held). LOCAL headers and
/// UNSPEC addresses get a zero-filled address block of the family's size.
/// `None` if the addresses do not match `family`, if `transport` does not
/// fit the addresses, or if the header would exceed 65535 + 16 bytes.
pub fn v2(header: &Header) -> Option<Vec<u8>> {
    let cmd = match header.command {
        Command::Local => 0x20,
        Command::Proxy => 0x21,
    };
    let fam = match header.family {
        Family::Unspec => 0x00,
        Family::Inet => 0x10,
        Family::Inet6 => 0x20,
        Family::Unix => 0x30,
    };
    let proto = match header.transport {
        Transport::Unspec => 0x0,
        Transport::Stream => 0x1,
        Transport::Dgram => 0x2,
    };
    let mut block = Vec::new();
    match (&header.addresses, header.family) {
        (Addresses::Unspec, f) => block.resize(f.address_len(), 0),
        (
            Addresses::Inet {
                source: SocketAddr::V4(s),
                destination: SocketAddr::V4(d),
            },
            Family::Inet,
        ) => {
            block.extend_from_slice(&s.ip().octets());
            block.extend_from_slice(&d.ip().octets());
            block.extend_from_slice(&s.port().to_be_bytes());
            block.extend_from_slice(&d.port().to_be_bytes());
        }
        (
            Addresses::Inet {
                source: SocketAddr::V6(s),
                destination: SocketAddr::V6(d),
            },
            Family::Inet6,
        ) => {
            block.extend_from_slice(&s.ip().octets());
            block.extend_from_slice(&d.ip().octets());
            block.extend_from_slice(&s.port().to_be_bytes());
            block.extend_from_slice(&d.port().to_be_bytes());
        }
        (
            Addresses::Unix {
                source,
                destination,
            },
            Family::Unix,
        ) => {
            block.extend_from_slice(&source.0[..]);
            block.extend_from_slice(&destination.0[..]);
        }
        _ => return None,
    }
    if !matches!(header.addresses, Addresses::Unspec) && header.transport == Transport::Unspec {
        return None;
    }
    let tlv_start = V2_SIGNATURE.len() + 4 + block.len();
    block.extend_from_slice(header.tlvs.as_bytes());
    let len = u16::try_from(block.len()).ok()?;

    let mut out = Vec::with_capacity(16 + block.len());
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(cmd);
    out.push(fam | proto);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&block);

    // Locate the first CRC32C TLV, zero it, checksum, write it back.
    let mut at = tlv_start;
    for tlv in header.tlvs.iter() {
        let value_at = at + 3;
        if tlv.kind == kind::CRC32C && tlv.value.len() == 4 {
            out.get_mut(value_at..value_at + 4)?.fill(0);
            let sum = crc32c(&out).to_be_bytes();
            out.get_mut(value_at..value_at + 4)?.copy_from_slice(&sum);
            break;
        }
        at = value_at + tlv.value.len();
    }
    Some(out)
}

/// Value of a `PP2_TYPE_SSL` TLV: client bits, verify result, sub-TLVs.
pub fn ssl_value(client: u8, verify: u32, subs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut v = vec![client];
    v.extend_from_slice(&verify.to_be_bytes());
    for (k, val) in subs {
        v.push(*k);
        v.extend_from_slice(&(val.len() as u16).to_be_bytes());
        v.extend_from_slice(val);
    }
    v
}
