//! Property tests: generated valid headers round-trip through `encode` and
//! `parse`; prefixes are Incomplete; payload after a header is never eaten;
//! arbitrary bytes never panic; a CRC32C-protected header does not survive
//! a flipped byte.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::collection::vec;
use proptest::prelude::*;

use super::tlv::kind;
use super::*;

fn ip_pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(a, b, p, q)| (
                SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), p),
                SocketAddr::new(IpAddr::V4(Ipv4Addr::from(b)), q)
            )),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(a, b, p, q)| (
                SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), p),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::from(b)), q)
            )),
    ]
}

fn ascii(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(0x20u8..0x7f, 0..max)
}

/// A TLV that the parser must accept (CRC32C excluded: added separately).
fn valid_tlv() -> impl Strategy<Value = (u8, Vec<u8>)> {
    let ssl = (
        any::<u8>(),
        any::<u32>(),
        vec((0x21u8..=0x25, ascii(24)), 0..5),
    )
        .prop_map(|(c, v, subs)| {
            let subs: Vec<(u8, &[u8])> = subs.iter().map(|(k, s)| (*k, &s[..])).collect();
            encode::ssl_value(c, v, &subs)
        });
    prop_oneof![
        vec(any::<u8>(), 0..32).prop_map(|v| (kind::ALPN, v)),
        "[a-z0-9.é-]{0,40}".prop_map(|s| (kind::AUTHORITY, s.into_bytes())),
        vec(any::<u8>(), 0..32).prop_map(|v| (kind::NOOP, v)),
        vec(any::<u8>(), 0..=128).prop_map(|v| (kind::UNIQUE_ID, v)),
        ssl.prop_map(|v| (kind::SSL, v)),
        ascii(16).prop_map(|v| (kind::NETNS, v)),
        ascii(30).prop_map(|v| (kind::AWS, [&[1u8][..], &v].concat())),
        any::<u32>().prop_map(|v| (kind::AZURE, [&[1u8][..], &v.to_le_bytes()].concat())),
        any::<u64>().prop_map(|v| (kind::GCP, v.to_be_bytes().to_vec())),
        // Unregistered types are kept raw, whatever they hold.
        (
            prop_oneof![0x06u8..0x20, 0x26u8..0x30, 0x31u8..=0xff],
            vec(any::<u8>(), 0..32)
        ),
    ]
}

fn tlvs(with_crc: bool) -> impl Strategy<Value = Tlvs> {
    (vec(valid_tlv(), 0..6), any::<prop::sample::Index>()).prop_map(move |(list, at)| {
        let mut t = Tlvs::new();
        let crc_at = at.index(list.len() + 1);
        for (i, (k, v)) in list.iter().enumerate() {
            if with_crc && i == crc_at {
                t.push(kind::CRC32C, &[0; 4]).unwrap();
            }
            t.push(*k, v).unwrap();
        }
        if with_crc && crc_at == list.len() {
            t.push(kind::CRC32C, &[0; 4]).unwrap();
        }
        t
    })
}

fn v1_header() -> impl Strategy<Value = Header> {
    prop_oneof![
        ip_pair().prop_map(|(s, d)| encode::inet_header(Version::V1, s, d, Tlvs::new())),
        Just(Header {
            version: Version::V1,
            command: Command::Proxy,
            family: Family::Unspec,
            transport: Transport::Unspec,
            addresses: Addresses::Unspec,
            tlvs: Tlvs::new(),
        }),
    ]
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![
        Just(Family::Unspec),
        Just(Family::Inet),
        Just(Family::Inet6),
        Just(Family::Unix)
    ]
}

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![
        Just(Transport::Unspec),
        Just(Transport::Stream),
        Just(Transport::Dgram)
    ]
}

fn unix() -> impl Strategy<Value = UnixAddr> {
    vec(1u8..=255, 0..108).prop_map(|p| UnixAddr::from_path(&p))
}

fn v2_header(with_crc: bool) -> impl Strategy<Value = Header> {
    let base = |command, family, transport, addresses, tlvs| Header {
        version: Version::V2,
        command,
        family,
        transport,
        addresses,
        tlvs,
    };
    prop_oneof![
        (ip_pair(), tlvs(with_crc)).prop_map(|((s, d), t)| encode::inet_header(
            Version::V2,
            s,
            d,
            t
        )),
        (unix(), unix(), tlvs(with_crc)).prop_map(move |(s, d, t)| base(
            Command::Proxy,
            Family::Unix,
            Transport::Stream,
            Addresses::Unix {
                source: s,
                destination: d
            },
            t
        )),
        // LOCAL: any family and transport, addresses ignored.
        (family(), transport(), tlvs(with_crc)).prop_map(move |(f, tr, t)| base(
            Command::Local,
            f,
            tr,
            Addresses::Unspec,
            t
        )),
        // PROXY with an UNSPEC family, or an UNSPEC transport.
        (transport(), tlvs(with_crc)).prop_map(move |(tr, t)| base(
            Command::Proxy,
            Family::Unspec,
            tr,
            Addresses::Unspec,
            t
        )),
        (family(), tlvs(with_crc)).prop_map(move |(f, t)| base(
            Command::Proxy,
            f,
            Transport::Unspec,
            Addresses::Unspec,
            t
        )),
    ]
}

fn any_header() -> impl Strategy<Value = Header> {
    prop_oneof![v1_header(), v2_header(false), v2_header(true)]
}

fn bytes_of(h: &Header) -> Vec<u8> {
    match h.version {
        Version::V1 => encode::v1(h).unwrap(),
        Version::V2 => encode::v2(h).unwrap(),
    }
}

/// Same header, except that a CRC32C TLV's value is the computed one.
fn same_but_crc(a: &Header, b: &Header) -> bool {
    let strip = |h: &Header| -> Vec<(u8, Vec<u8>)> {
        h.tlvs
            .iter()
            .map(|t| {
                (
                    t.kind,
                    if t.kind == kind::CRC32C {
                        vec![]
                    } else {
                        t.value.to_vec()
                    },
                )
            })
            .collect()
    };
    (a.version, a.command, a.family, a.transport, &a.addresses)
        == (b.version, b.command, b.family, b.transport, &b.addresses)
        && strip(a) == strip(b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(h in any_header()) {
        let buf = bytes_of(&h);
        match parse(&buf) {
            Verdict::Complete(got, n) => {
                prop_assert_eq!(n, buf.len());
                prop_assert!(same_but_crc(&got, &h), "{:?} != {:?}", got, h);
                prop_assert_eq!(bytes_of(&got), buf);
            }
            other => prop_assert!(false, "{:?} for {:02x?}", other, buf),
        }
    }

    #[test]
    fn every_prefix_is_incomplete(h in any_header()) {
        let buf = bytes_of(&h);
        for cut in 0..buf.len() {
            match parse(&buf[..cut]) {
                Verdict::Incomplete(min) => prop_assert!(min > cut && min <= buf.len()),
                other => prop_assert!(false, "cut {}: {:?}", cut, other),
            }
        }
    }

    #[test]
    fn payload_is_never_consumed(h in any_header(), payload in vec(any::<u8>(), 0..64)) {
        let header = bytes_of(&h);
        let buf = [&header[..], &payload[..]].concat();
        match parse(&buf) {
            Verdict::Complete(_, n) => prop_assert_eq!(n, header.len()),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in vec(any::<u8>(), 0..300), max in 0usize..5000) {
        let opts = ParseOptions { max_header_len: max, ..ParseOptions::default() };
        for v in [parse(&buf), parse_with(&buf, &opts)] {
            match v {
                Verdict::Complete(_, n) => prop_assert!(n <= buf.len()),
                Verdict::Incomplete(min) => prop_assert!(min > buf.len()),
                Verdict::Invalid(_) => {}
            }
        }
    }

    #[test]
    fn bytes_after_a_valid_start_never_panic(v2 in any::<bool>(), tail in vec(any::<u8>(), 0..300)) {
        let mut buf = if v2 { V2_SIGNATURE.to_vec() } else { b"PROXY TCP".to_vec() };
        buf.extend_from_slice(&tail);
        let _ = parse(&buf);
    }

    #[test]
    fn crc_catches_a_flipped_byte(
        (s, d) in ip_pair(),
        rest in vec(valid_tlv(), 0..4),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut t = Tlvs::new();
        t.push(kind::CRC32C, &[0; 4]).unwrap();
        for (k, v) in &rest { t.push(*k, v).unwrap(); }
        let mut buf = encode::v2(&encode::inet_header(Version::V2, s, d, t)).unwrap();
        let crc_tlv = 16 + if s.is_ipv4() { 12 } else { 36 };
        // Leave alone what decides *where* the checksum is: the family and
        // length fields, and the CRC TLV's own type and length.
        let i = pos.index(buf.len());
        prop_assume!(!(13..16).contains(&i) && !(crc_tlv..crc_tlv + 3).contains(&i));
        buf[i] ^= 1 << bit;
        prop_assert!(!matches!(parse(&buf), Verdict::Complete(..)));
    }
}
