//! v2: binary header, 16 fixed bytes then `len` bytes of addresses and TLVs.
//!
//! Choices where the spec leaves room (a stream listener's point of view):
//! - **Version** must be 2, **command** LOCAL or PROXY; anything else is
//!   refused, as the spec requires.
//! - **Family/transport nibbles** outside the assigned values are refused,
//!   even for LOCAL (the spec says they "must be rejected as invalid").
//! - **LOCAL**: the real endpoints are kept and the address block is skipped.
//!   The spec forbids assuming `len == 0`, so when `len` covers the family's
//!   address block, what follows it is parsed (and CRC-checked) as TLVs; when
//!   it is shorter, the whole block is ignored as the spec says.
//! - **PROXY + UNSPEC** family or transport: accepted with the real endpoints
//!   ([`Addresses::Unspec`]); the spec says to ignore the addresses. With an
//!   INET/INET6/UNIX family the address block is still skipped by the
//!   family's size, so the TLVs after it are found.
//! - **PROXY + DGRAM** (UDP or UNIX_DGRAM): refused
//!   ([`Invalid::V2UnsupportedTransport`]). The bytes arrive on a TCP
//!   listener, so a datagram announcement means a misconfigured proxy, and
//!   presenting a UDP peer as a TCP `remoteAddress` would be a lie.
//! - **PROXY + UNIX stream**: accepted; the paths are exposed in
//!   [`Addresses::Unix`], and [`Header::source`] is `None` (the server keeps
//!   the real IP endpoints, since a path is not an IP address).
//! - A `len` shorter than the family's address block is refused for PROXY.
//! - The total size (16 + `len`) is checked against the configured bound as
//!   soon as the 16 fixed bytes are in, before waiting for the rest.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::crc32c::Crc32c;

use super::tlv;
use super::{
    Addresses, Command, Family, Header, Invalid, ParseOptions, Tlvs, Transport, UnixAddr, Verdict,
    Version, V2_FIXED_LEN, V2_SIGNATURE,
};

pub(super) fn parse(buf: &[u8], opts: &ParseOptions) -> Verdict {
    match parse_inner(buf, opts) {
        Ok(Some((header, consumed))) => Verdict::Complete(header, consumed),
        Ok(None) => Verdict::Incomplete(needed(buf)),
        Err(e) => Verdict::Invalid(e),
    }
}

/// Minimum total length worth re-parsing at: the fixed part, then the whole
/// header once its length field is known.
fn needed(buf: &[u8]) -> usize {
    match buf.get(14..16) {
        Some(&[hi, lo]) => V2_FIXED_LEN + usize::from(u16::from_be_bytes([hi, lo])),
        _ => V2_FIXED_LEN,
    }
}

fn parse_inner(buf: &[u8], opts: &ParseOptions) -> Result<Option<(Header, usize)>, Invalid> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Err(Invalid::NotProxy);
    }
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(None);
    };
    if ver_cmd >> 4 != 2 {
        return Err(Invalid::V2BadVersion);
    }
    let command = match ver_cmd & 0x0F {
        0 => Command::Local,
        1 => Command::Proxy,
        _ => return Err(Invalid::V2BadCommand),
    };
    let Some(&fam) = buf.get(13) else {
        return Ok(None);
    };
    let family = match fam >> 4 {
        0 => Family::Unspec,
        1 => Family::Inet,
        2 => Family::Inet6,
        3 => Family::Unix,
        _ => return Err(Invalid::V2BadFamily),
    };
    let transport = match fam & 0x0F {
        0 => Transport::Unspec,
        1 => Transport::Stream,
        2 => Transport::Dgram,
        _ => return Err(Invalid::V2BadFamily),
    };
    let Some(&[hi, lo]) = buf.get(14..16) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let total = V2_FIXED_LEN + len;
    if total > opts.max_header_len {
        return Err(Invalid::TooLarge);
    }
    let addr_len = family.address_len();
    if command == Command::Proxy {
        if family != Family::Unspec && transport == Transport::Dgram {
            return Err(Invalid::V2UnsupportedTransport);
        }
        if len < addr_len {
            return Err(Invalid::V2AddressTooShort);
        }
    }
    let Some(header_bytes) = buf.get(..total) else {
        return Ok(None);
    };
    let block = &header_bytes[V2_FIXED_LEN..];

    let addresses = if command == Command::Local
        || family == Family::Unspec
        || transport == Transport::Unspec
    {
        Addresses::Unspec
    } else {
        parse_addresses(family, block).ok_or(Invalid::V2AddressTooShort)?
    };
    // LOCAL with a block shorter than its family's addresses: ignore it all.
    let tlv_start = if len >= addr_len { addr_len } else { len };
    let tlv_block = &block[tlv_start..];
    if let Some(off) = tlv::validate(tlv_block)? {
        verify_crc(header_bytes, V2_FIXED_LEN + tlv_start + off)?;
    }
    let header = Header {
        version: Version::V2,
        command,
        family,
        transport,
        addresses,
        tlvs: Tlvs::from_validated(tlv_block),
    };
    Ok(Some((header, total)))
}

fn parse_addresses(family: Family, block: &[u8]) -> Option<Addresses> {
    Some(match family {
        Family::Inet => {
            let a: &[u8; 12] = block.get(..12)?.try_into().ok()?;
            let (src, dst) = (
                Ipv4Addr::new(a[0], a[1], a[2], a[3]),
                Ipv4Addr::new(a[4], a[5], a[6], a[7]),
            );
            let (sport, dport) = (
                u16::from_be_bytes([a[8], a[9]]),
                u16::from_be_bytes([a[10], a[11]]),
            );
            Addresses::Inet {
                source: SocketAddr::V4(SocketAddrV4::new(src, sport)),
                destination: SocketAddr::V4(SocketAddrV4::new(dst, dport)),
            }
        }
        Family::Inet6 => {
            let src: [u8; 16] = block.get(..16)?.try_into().ok()?;
            let dst: [u8; 16] = block.get(16..32)?.try_into().ok()?;
            let p = block.get(32..36)?;
            let (sport, dport) = (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            );
            Addresses::Inet {
                source: SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(src), sport, 0, 0)),
                destination: SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(dst), dport, 0, 0)),
            }
        }
        Family::Unix => Addresses::Unix {
            source: UnixAddr(Box::new(block.get(..108)?.try_into().ok()?)),
            destination: UnixAddr(Box::new(block.get(108..216)?.try_into().ok()?)),
        },
        Family::Unspec => Addresses::Unspec,
    })
}

/// Checks the CRC32C whose 4-byte value starts at `at`: the checksum is
/// computed over the whole header with those 4 bytes taken as zeros.
fn verify_crc(header: &[u8], at: usize) -> Result<(), Invalid> {
    let (before, rest) = header.split_at_checked(at).ok_or(Invalid::TlvTruncated)?;
    let (value, after) = rest.split_first_chunk::<4>().ok_or(Invalid::TlvTruncated)?;
    let mut crc = Crc32c::new();
    crc.update(before);
    crc.update(&[0; 4]);
    crc.update(after);
    if crc.finish() == u32::from_be_bytes(*value) {
        Ok(())
    } else {
        Err(Invalid::Crc32cMismatch)
    }
}
