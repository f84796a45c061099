//! v1: one line of US-ASCII, `PROXY <proto> <src> <dst> <sport> <dport>\r\n`.
//!
//! Grammar, held strictly (the spec: "any sequence which does not exactly
//! match the protocol must be discarded"):
//! - fields separated by exactly one space; no leading or trailing space
//!   (except after `UNKNOWN`, whose rest of line is ignored as the spec asks);
//! - `TCP4` addresses are four decimal numbers 0–255 joined by dots, with no
//!   leading zeros (`0` itself is fine; `01` is refused, as the spec forbids
//!   octal-looking numbers);
//! - `TCP6` addresses are RFC 4291 text: 1–4 hex digits per group (upper or
//!   lower case; the spec's "sets of 4 digits" is read as *up to* 4, since
//!   real senders print with `inet_ntop`, which drops leading zeros), at most
//!   one `::`, and an optional dotted IPv4 tail (`::ffff:1.2.3.4`, which
//!   `inet_ntop` produces for mapped addresses) whose numbers obey the IPv4
//!   rule above. No zone id, no brackets;
//! - ports are 0–65535 in decimal, no sign, no leading zeros;
//! - the line ends in CRLF within 107 bytes; a lone CR or LF anywhere is
//!   refused (the spec: a single CR or LF must not end the line).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{
    Addresses, Command, Family, Header, Invalid, Tlvs, Transport, Verdict, Version, V1_MAX_LEN,
};

const PREFIX: &[u8] = b"PROXY ";
const PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

pub(super) fn parse(buf: &[u8]) -> Verdict {
    let n = buf.len().min(PREFIX.len());
    if buf[..n] != PREFIX[..n] {
        // "PROXY" itself differs: this is not the protocol. Past that, it
        // is a broken v1 header.
        return Verdict::Invalid(if n <= 5 || buf[..5] != PREFIX[..5] {
            Invalid::NotProxy
        } else {
            Invalid::V1BadSyntax
        });
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    match window.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) if window[i] == b'\n' => Verdict::Invalid(Invalid::V1BadLineEnd),
        // CRLF would end past byte 107.
        Some(i) if i + 2 > V1_MAX_LEN => Verdict::Invalid(Invalid::V1TooLong),
        Some(i) => match buf.get(i + 1) {
            Some(b'\n') => match parse_line(&buf[..i]) {
                Ok(header) => Verdict::Complete(header, i + 2),
                Err(e) => Verdict::Invalid(e),
            },
            Some(_) => Verdict::Invalid(Invalid::V1BadLineEnd),
            // The line is final once its CR is in: judge it whole now.
            None => match parse_line(&buf[..i]) {
                Ok(_) => Verdict::Incomplete(i + 2),
                Err(e) => Verdict::Invalid(e),
            },
        },
        None if buf.len() >= V1_MAX_LEN => Verdict::Invalid(Invalid::V1TooLong),
        None => match check_partial(buf) {
            Ok(()) => Verdict::Incomplete(buf.len() + 1),
            Err(e) => Verdict::Invalid(e),
        },
    }
}

/// Cheap check that an unfinished line could still become a valid one, so a
/// wrong protocol or a stray character is refused before the CRLF arrives.
fn check_partial(line: &[u8]) -> Result<(), Invalid> {
    let Some(rest) = line.get(PREFIX.len()..) else {
        return Ok(()); // still inside "PROXY ", already compared
    };
    let (proto, tail) = match rest.iter().position(|&b| b == b' ') {
        Some(sp) => (&rest[..sp], Some(&rest[sp + 1..])),
        None => (rest, None),
    };
    let Some(tail) = tail else {
        return if PROTOCOLS.iter().any(|p| p.starts_with(proto)) {
            Ok(())
        } else {
            Err(Invalid::V1BadProtocol)
        };
    };
    let allowed: fn(u8) -> bool = match proto {
        b"UNKNOWN" => return Ok(()),
        b"TCP4" => |b| b.is_ascii_digit() || b == b'.' || b == b' ',
        b"TCP6" => |b| b.is_ascii_hexdigit() || b == b':' || b == b'.' || b == b' ',
        _ => return Err(Invalid::V1BadProtocol),
    };
    if !tail.iter().all(|&b| allowed(b)) {
        return Err(Invalid::V1BadSyntax);
    }
    // Fields must be non-empty and there are only four of them.
    let mut fields = tail.split(|&b| b == b' ');
    let count = tail.iter().filter(|&&b| b == b' ').count() + 1;
    if tail.first() == Some(&b' ') || tail.windows(2).any(|w| w == b"  ") || count > 4 {
        return Err(Invalid::V1BadSyntax);
    }
    // A complete port field can be checked early too.
    if count == 4 {
        if let Some(sport) = fields.nth(2) {
            parse_port(sport)?;
        }
    }
    Ok(())
}

/// Parses a whole line, CRLF already removed.
fn parse_line(line: &[u8]) -> Result<Header, Invalid> {
    let rest = line.get(PREFIX.len()..).ok_or(Invalid::V1BadSyntax)?;
    let (proto, fields) = match rest.iter().position(|&b| b == b' ') {
        Some(sp) => (&rest[..sp], Some(&rest[sp + 1..])),
        None => (rest, None),
    };
    let family = match proto {
        b"UNKNOWN" => {
            // "the receiver must ignore anything presented before the CRLF".
            return Ok(Header {
                version: Version::V1,
                command: Command::Proxy,
                family: Family::Unspec,
                transport: Transport::Unspec,
                addresses: Addresses::Unspec,
                tlvs: Tlvs::new(),
            });
        }
        b"TCP4" => Family::Inet,
        b"TCP6" => Family::Inet6,
        _ => return Err(Invalid::V1BadProtocol),
    };
    let fields = fields.ok_or(Invalid::V1BadSyntax)?;
    let mut it = fields.split(|&b| b == b' ');
    let (Some(src), Some(dst), Some(sport), Some(dport), None) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return Err(Invalid::V1BadSyntax);
    };
    if [src, dst, sport, dport].iter().any(|f| f.is_empty()) {
        return Err(Invalid::V1BadSyntax);
    }
    let (sport, dport) = (parse_port(sport)?, parse_port(dport)?);
    let (source, destination) = match family {
        Family::Inet => (
            SocketAddr::V4(SocketAddrV4::new(parse_ipv4(src)?, sport)),
            SocketAddr::V4(SocketAddrV4::new(parse_ipv4(dst)?, dport)),
        ),
        _ => (
            SocketAddr::V6(SocketAddrV6::new(parse_ipv6(src)?, sport, 0, 0)),
            SocketAddr::V6(SocketAddrV6::new(parse_ipv6(dst)?, dport, 0, 0)),
        ),
    };
    Ok(Header {
        version: Version::V1,
        command: Command::Proxy,
        family,
        transport: Transport::Stream,
        addresses: Addresses::Inet {
            source,
            destination,
        },
        tlvs: Tlvs::new(),
    })
}

/// Decimal 0..=max with 1..=max_digits digits and no leading zero.
fn parse_decimal(s: &[u8], max_digits: usize, max: u32) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    (v <= max).then_some(v)
}

fn parse_port(s: &[u8]) -> Result<u16, Invalid> {
    parse_decimal(s, 5, 65535)
        .and_then(|v| u16::try_from(v).ok())
        .ok_or(Invalid::V1BadPort)
}

fn parse_ipv4(s: &[u8]) -> Result<Ipv4Addr, Invalid> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for o in &mut octets {
        let part = parts.next().ok_or(Invalid::V1BadAddress)?;
        let v = parse_decimal(part, 3, 255).ok_or(Invalid::V1BadAddress)?;
        *o = u8::try_from(v).map_err(|_| Invalid::V1BadAddress)?;
    }
    if parts.next().is_some() {
        return Err(Invalid::V1BadAddress);
    }
    Ok(Ipv4Addr::from(octets))
}

fn parse_ipv6(s: &[u8]) -> Result<Ipv6Addr, Invalid> {
    // 45 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".
    if s.is_empty()
        || s.len() > 45
        || !s
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        return Err(Invalid::V1BadAddress);
    }
    // A dotted tail must obey the strict IPv4 rule (std's parser is strict
    // about leading zeros too, but the rule is ours to keep, not std's).
    if let Some(colon) = s.iter().rposition(|&b| b == b':') {
        let tail = &s[colon + 1..];
        if tail.contains(&b'.') {
            parse_ipv4(tail)?;
        }
    }
    let text = std::str::from_utf8(s).map_err(|_| Invalid::V1BadAddress)?;
    text.parse::<Ipv6Addr>().map_err(|_| Invalid::V1BadAddress)
}
