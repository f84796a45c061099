//! v2 unit tests, with headers built byte by byte (not with `encode`, so the
//! encoder and the parser cannot share a mistake).

use std::net::SocketAddr;

use super::tlv::{client, kind};
use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(fam);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn tlv(k: u8, v: &[u8]) -> Vec<u8> {
    let mut out = vec![k];
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
    out
}

const INET: [u8; 12] = [127, 0, 0, 1, 10, 0, 0, 2, 0x1f, 0x90, 0x01, 0xbb];

fn inet_with(tlvs: &[u8]) -> Vec<u8> {
    let mut body = INET.to_vec();
    body.extend_from_slice(tlvs);
    v2(0x21, 0x11, &body)
}

fn complete(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Verdict::Complete(h, n) => (h, n),
        other => panic!("{buf:02x?}: {other:?}"),
    }
}

fn invalid(buf: &[u8]) -> Invalid {
    match parse(buf) {
        Verdict::Invalid(e) => e,
        other => panic!("{buf:02x?}: expected Invalid, got {other:?}"),
    }
}

#[test]
fn tcp4_with_payload() {
    let mut buf = inet_with(&[]);
    buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
    let (h, n) = complete(&buf);
    assert_eq!(n, 28);
    assert_eq!(&buf[n..], b"GET / HTTP/1.1\r\n");
    assert_eq!(
        (h.version, h.command, h.family, h.transport),
        (Version::V2, Command::Proxy, Family::Inet, Transport::Stream)
    );
    assert_eq!(h.source(), Some(sa("127.0.0.1:8080")));
    assert_eq!(h.destination(), Some(sa("10.0.0.2:443")));
}

#[test]
fn tcp6() {
    let mut body = vec![0u8; 36];
    body[15] = 1; // ::1
    body[16..18].copy_from_slice(&[0x20, 0x01]);
    body[31] = 2; // 2001::2
    body[32..36].copy_from_slice(&[0xff, 0xff, 0, 80]);
    let (h, n) = complete(&v2(0x21, 0x21, &body));
    assert_eq!(n, 52);
    assert_eq!(h.source(), Some(sa("[::1]:65535")));
    assert_eq!(h.destination(), Some(sa("[2001::2]:80")));
}

#[test]
fn unix_stream() {
    let mut body = vec![0u8; 216];
    body[..9].copy_from_slice(b"/tmp/a.sk");
    body[108..111].copy_from_slice(b"\0ab"); // abstract name
    let (h, _) = complete(&v2(0x21, 0x31, &body));
    assert_eq!(h.family, Family::Unix);
    assert_eq!(h.source(), None);
    assert!(h.uses_real_addresses());
    let Addresses::Unix {
        source,
        destination,
    } = &h.addresses
    else {
        panic!()
    };
    assert_eq!(source.path(), b"/tmp/a.sk");
    assert_eq!(destination.path(), b"\0ab");
    assert_eq!(
        invalid(&v2(0x21, 0x32, &body)),
        Invalid::V2UnsupportedTransport
    );
}

#[test]
fn local_keeps_real_addresses() {
    // HAProxy's health check: LOCAL, UNSPEC, no address.
    let (h, n) = complete(&v2(0x20, 0x00, &[]));
    assert_eq!(n, 16);
    assert_eq!(h.command, Command::Local);
    assert_eq!(h.addresses, Addresses::Unspec);
    // The block is skipped whatever it holds, family included.
    let (h, n) = complete(&v2(0x20, 0x11, &INET));
    assert_eq!((h.command, h.family, n), (Command::Local, Family::Inet, 28));
    assert_eq!(h.source(), None);
    let (h, _) = complete(&v2(0x20, 0x11, &[]));
    assert_eq!(h.addresses, Addresses::Unspec);
    complete(&v2(0x20, 0x12, &[1, 2, 3]));
    // Its TLVs, when the address block is whole, are still parsed.
    let mut body = INET.to_vec();
    body.extend(tlv(kind::AUTHORITY, b"health"));
    let (h, _) = complete(&v2(0x20, 0x11, &body));
    assert_eq!(h.tlvs.authority(), Some("health"));
}

#[test]
fn unspec_keeps_real_addresses() {
    let (h, _) = complete(&v2(0x21, 0x00, &[]));
    assert_eq!(
        (h.command, h.addresses.clone()),
        (Command::Proxy, Addresses::Unspec)
    );
    // INET family, UNSPEC transport: addresses ignored, TLVs after them read.
    let mut body = INET.to_vec();
    body.extend(tlv(kind::ALPN, b"h2"));
    let (h, _) = complete(&v2(0x21, 0x10, &body));
    assert_eq!(h.source(), None);
    assert_eq!(h.tlvs.alpn(), Some(&b"h2"[..]));
    // UNSPEC family with a DGRAM transport is still UNSPEC.
    complete(&v2(0x21, 0x02, &[]));
}

#[test]
fn bad_fixed_fields() {
    assert_eq!(invalid(&v2(0x11, 0x11, &INET)), Invalid::V2BadVersion);
    assert_eq!(invalid(&v2(0x31, 0x11, &INET)), Invalid::V2BadVersion);
    assert_eq!(invalid(&v2(0x22, 0x11, &INET)), Invalid::V2BadCommand);
    assert_eq!(invalid(&v2(0x2F, 0x11, &INET)), Invalid::V2BadCommand);
    assert_eq!(invalid(&v2(0x21, 0x41, &INET)), Invalid::V2BadFamily);
    assert_eq!(invalid(&v2(0x21, 0x13, &INET)), Invalid::V2BadFamily);
    assert_eq!(invalid(&v2(0x20, 0x13, &[])), Invalid::V2BadFamily);
    assert_eq!(
        invalid(&v2(0x21, 0x12, &INET)),
        Invalid::V2UnsupportedTransport
    );
    assert_eq!(
        invalid(&v2(0x21, 0x22, &[0; 36])),
        Invalid::V2UnsupportedTransport
    );
    assert_eq!(
        invalid(&v2(0x21, 0x11, &INET[..11])),
        Invalid::V2AddressTooShort
    );
    assert_eq!(
        invalid(&v2(0x21, 0x21, &[0; 35])),
        Invalid::V2AddressTooShort
    );
    assert_eq!(
        invalid(&v2(0x21, 0x31, &[0; 215])),
        Invalid::V2AddressTooShort
    );
    // Decided on the 13th/14th byte, before the length is in.
    assert_eq!(
        parse(&v2(0x31, 0x11, &INET)[..13]),
        Verdict::Invalid(Invalid::V2BadVersion)
    );
    assert_eq!(
        parse(&v2(0x21, 0x51, &INET)[..14]),
        Verdict::Invalid(Invalid::V2BadFamily)
    );
}

#[test]
fn size_bound() {
    let mut head = V2_SIGNATURE.to_vec();
    head.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    // Refused on the 16 fixed bytes alone, without waiting for 64 KiB.
    assert_eq!(parse(&head), Verdict::Invalid(Invalid::TooLarge));
    let opts = ParseOptions {
        max_header_len: V2_MAX_LEN,
        ..ParseOptions::default()
    };
    assert_eq!(parse_with(&head, &opts), Verdict::Incomplete(V2_MAX_LEN));
    // Exactly at the bound is fine, one over is not.
    let at = v2(
        0x21,
        0x11,
        &[
            INET.to_vec(),
            tlv(kind::NOOP, &vec![0; DEFAULT_MAX_HEADER_LEN - 31]),
        ]
        .concat(),
    );
    assert_eq!(at.len(), DEFAULT_MAX_HEADER_LEN);
    complete(&at);
    let over = v2(
        0x21,
        0x11,
        &[
            INET.to_vec(),
            tlv(kind::NOOP, &vec![0; DEFAULT_MAX_HEADER_LEN - 30]),
        ]
        .concat(),
    );
    assert_eq!(invalid(&over), Invalid::TooLarge);
    let tiny = ParseOptions {
        max_header_len: 16,
        ..ParseOptions::default()
    };
    assert!(matches!(
        parse_with(&v2(0x20, 0, &[]), &tiny),
        Verdict::Complete(_, 16)
    ));
    assert_eq!(
        parse_with(&inet_with(&[]), &tiny),
        Verdict::Invalid(Invalid::TooLarge)
    );
}

#[test]
fn signature_fails_fast() {
    assert_eq!(parse(b"\r"), Verdict::Incomplete(16));
    assert_eq!(parse(b"\r\n\r\n"), Verdict::Incomplete(16));
    assert_eq!(parse(b"\r\n\r\nGET"), Verdict::Invalid(Invalid::NotProxy));
    assert_eq!(parse(b"\r\r"), Verdict::Invalid(Invalid::NotProxy));
    assert_eq!(
        parse(b"\r\n\r\n\0\r\nQUIT\r"),
        Verdict::Invalid(Invalid::NotProxy)
    );
    assert_eq!(parse(&[]), Verdict::Incomplete(1));
    assert_eq!(parse(&[0]), Verdict::Invalid(Invalid::NotProxy));
    let opts = ParseOptions {
        v2: false,
        ..ParseOptions::default()
    };
    assert_eq!(
        parse_with(&inet_with(&[]), &opts),
        Verdict::Invalid(Invalid::NotProxy)
    );
}

#[test]
fn every_split_point_with_tlvs_and_payload() {
    let tlvs = [
        tlv(kind::ALPN, b"http/1.1"),
        tlv(kind::AUTHORITY, b"example.com"),
        tlv(kind::CRC32C, &[0; 4]),
    ]
    .concat();
    let mut hdr = inet_with(&tlvs);
    let at = hdr.len() - 4;
    let sum = crate::crc32c(&hdr).to_be_bytes();
    hdr[at..].copy_from_slice(&sum);
    let n = hdr.len();
    let mut buf = hdr.clone();
    buf.extend_from_slice(b"\x16\x03\x01payload");
    for cut in 0..n {
        match parse(&buf[..cut]) {
            Verdict::Incomplete(min) => assert!(min > cut && min <= n, "cut {cut}: {min}"),
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    for cut in n..=buf.len() {
        let (h, used) = complete(&buf[..cut]);
        assert_eq!(used, n);
        assert_eq!(h.tlvs.authority(), Some("example.com"));
    }
}

#[test]
fn crc32c_good_and_bad() {
    // Checksum computed independently (bitwise CRC32C in Python) for this
    // exact header: INET 127.0.0.1:8080 -> 10.0.0.2:443 + CRC32C TLV.
    let mut good = inet_with(&tlv(kind::CRC32C, &0x19dc_bd40u32.to_be_bytes()));
    let (h, _) = complete(&good);
    assert_eq!(h.tlvs.crc32c(), Some(0x19dc_bd40));
    good[33] ^= 1; // inside the checksum value (bytes 31..35)
    assert_eq!(invalid(&good), Invalid::Crc32cMismatch);
    // Any change elsewhere in the header breaks it too.
    let mut other = inet_with(&tlv(kind::CRC32C, &0x19dc_bd40u32.to_be_bytes()));
    other[17] ^= 0x80;
    assert_eq!(invalid(&other), Invalid::Crc32cMismatch);
    assert_eq!(
        invalid(&inet_with(&tlv(kind::CRC32C, &[0; 3]))),
        Invalid::TlvBadValue(kind::CRC32C)
    );
    let two = [tlv(kind::CRC32C, &[0; 4]), tlv(kind::CRC32C, &[0; 4])].concat();
    assert_eq!(
        invalid(&inet_with(&two)),
        Invalid::TlvDuplicate(kind::CRC32C)
    );
}

#[test]
fn registered_tlvs() {
    let ssl = [
        vec![client::SSL | client::CERT_CONN],
        0u32.to_be_bytes().to_vec(),
        tlv(kind::SSL_VERSION, b"TLSv1.3"),
        tlv(kind::SSL_CN, "clïent.example".as_bytes()),
        tlv(kind::SSL_CIPHER, b"TLS_AES_128_GCM_SHA256"),
        tlv(kind::SSL_SIG_ALG, b"RSA-SHA256"),
        tlv(kind::SSL_KEY_ALG, b"RSA2048"),
        tlv(0x26, b"\x30\x82"), // a sub-TLV this parser does not know
    ]
    .concat();
    let tlvs = [
        tlv(kind::ALPN, b"h2"),
        tlv(kind::AUTHORITY, b"example.com"),
        tlv(kind::NOOP, &[]),
        tlv(kind::UNIQUE_ID, &[7; 128]),
        tlv(kind::SSL, &ssl),
        tlv(kind::NETNS, b"blue"),
        tlv(0x42, b"\xff\x00raw"),
    ]
    .concat();
    let (h, _) = complete(&inet_with(&tlvs));
    let t = &h.tlvs;
    assert_eq!(t.alpn(), Some(&b"h2"[..]));
    assert_eq!(t.authority(), Some("example.com"));
    assert_eq!(t.unique_id(), Some(&[7u8; 128][..]));
    assert_eq!(t.netns(), Some("blue"));
    assert_eq!(t.get(0x42), Some(&b"\xff\x00raw"[..]));
    assert_eq!(t.iter().count(), 7);
    assert_eq!(t.as_bytes(), &tlvs[..]);
    let s = t.ssl().unwrap();
    assert!(s.client_ssl() && s.client_cert_conn() && !s.client_cert_sess() && s.verified());
    assert_eq!(s.version(), Some("TLSv1.3"));
    assert_eq!(s.cn(), Some("clïent.example"));
    assert_eq!(s.cipher(), Some("TLS_AES_128_GCM_SHA256"));
    assert_eq!(s.sig_alg(), Some("RSA-SHA256"));
    assert_eq!(s.key_alg(), Some("RSA2048"));
    assert_eq!(s.sub_tlvs().count(), 6);
    assert_eq!(t.crc32c(), None);
}

#[test]
fn malformed_tlvs() {
    let bad: &[(Vec<u8>, Invalid)] = &[
        (vec![kind::ALPN], Invalid::TlvTruncated),
        (vec![kind::ALPN, 0], Invalid::TlvTruncated),
        (vec![kind::ALPN, 0, 3, b'h', b'2'], Invalid::TlvTruncated),
        (
            [tlv(kind::ALPN, b"h2"), vec![0x42, 0]].concat(),
            Invalid::TlvTruncated,
        ),
        (
            tlv(kind::AUTHORITY, b"\xff\xfe"),
            Invalid::TlvBadValue(kind::AUTHORITY),
        ),
        (
            tlv(kind::UNIQUE_ID, &[0; 129]),
            Invalid::TlvBadValue(kind::UNIQUE_ID),
        ),
        (
            tlv(kind::NETNS, "nëtns".as_bytes()),
            Invalid::TlvBadValue(kind::NETNS),
        ),
        (
            tlv(kind::SSL, &[1, 0, 0, 0]),
            Invalid::TlvBadValue(kind::SSL),
        ),
        (
            tlv(kind::SSL, &[1, 0, 0, 0, 0, kind::SSL_VERSION, 0, 9, b'x']),
            Invalid::SslSubTlvTruncated,
        ),
        (
            tlv(kind::SSL, &[1, 0, 0, 0, 0, kind::SSL_VERSION, 0]),
            Invalid::SslSubTlvTruncated,
        ),
        (
            tlv(
                kind::SSL,
                &[
                    [1, 0, 0, 0, 0].to_vec(),
                    tlv(kind::SSL_VERSION, "TLSv1.ä".as_bytes()),
                ]
                .concat(),
            ),
            Invalid::TlvBadValue(kind::SSL_VERSION),
        ),
        (
            tlv(
                kind::SSL,
                &[[1, 0, 0, 0, 0].to_vec(), tlv(kind::SSL_CN, b"\xc3")].concat(),
            ),
            Invalid::TlvBadValue(kind::SSL_CN),
        ),
    ];
    for (tlvs, want) in bad {
        assert_eq!(invalid(&inet_with(tlvs)), *want, "{tlvs:02x?}");
    }
    // An SSL TLV with no sub-TLVs is fine (client connected without TLS details).
    let (h, _) = complete(&inet_with(&tlv(kind::SSL, &[0, 0, 0, 0, 1])));
    let s = h.tlvs.ssl().unwrap();
    assert!(!s.client_ssl() && !s.verified() && s.version().is_none());
}

#[test]
fn cloud_tlvs() {
    let tlvs = [
        tlv(kind::AWS, b"\x01vpce-0123456789abcdef0"),
        tlv(kind::AZURE, &[0x01, 0x78, 0x56, 0x34, 0x12]),
        tlv(kind::GCP, &0x0102_0304_0506_0708u64.to_be_bytes()),
    ]
    .concat();
    let (h, _) = complete(&inet_with(&tlvs));
    assert_eq!(h.tlvs.aws_vpce_id(), Some("vpce-0123456789abcdef0"));
    assert_eq!(h.tlvs.azure_link_id(), Some(0x1234_5678));
    assert_eq!(h.tlvs.gcp_psc_connection_id(), Some(0x0102_0304_0506_0708));
    // The custom range is not the spec's to police: odd shapes pass, the
    // accessors just find nothing.
    let odd = [
        tlv(kind::AWS, b"\x02other"),
        tlv(kind::AZURE, &[0x01, 1, 2]),
        tlv(kind::GCP, b"short"),
    ]
    .concat();
    let (h, _) = complete(&inet_with(&odd));
    assert_eq!(h.tlvs.aws_vpce_id(), None);
    assert_eq!(h.tlvs.azure_link_id(), None);
    assert_eq!(h.tlvs.gcp_psc_connection_id(), None);
    assert_eq!(h.tlvs.iter().count(), 3);
}

#[test]
fn invalid_strings_are_stable() {
    assert_eq!(Invalid::Crc32cMismatch.as_str(), "v2-crc32c-mismatch");
    assert_eq!(
        Invalid::TlvBadValue(0x22).to_string(),
        "v2-tlv-bad-value (type 0x22)"
    );
    assert_eq!(Invalid::NotProxy.to_string(), "not-proxy-protocol");
}

#[test]
fn header_length_bounds_are_the_protocols() {
    // v1: the spec's worst case, "PROXY UNKNOWN ffff:...:ffff ... 65535 65535\r\n".
    assert_eq!(V1_MAX_LEN, 107);
    // v2: 16 fixed bytes + AF_UNIX's two 108-byte paths.
    assert_eq!(MAX_HEADER_LEN_MIN, 16 + 216);
    // v2: 16 fixed bytes + the largest u16 length.
    assert_eq!(MAX_HEADER_LEN_MAX, 16 + 65535);
}
