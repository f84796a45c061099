//! v1 unit tests: the spec's examples and the edges of the grammar.

use std::net::SocketAddr;

use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn complete(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Verdict::Complete(h, n) => (h, n),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn invalid(buf: &[u8]) -> Invalid {
    match parse(buf) {
        Verdict::Invalid(e) => e,
        other => panic!(
            "{:?}: expected Invalid, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

#[test]
fn spec_example_with_http_payload() {
    let buf = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n";
    let (h, n) = complete(buf);
    assert_eq!(n, 47);
    assert_eq!(&buf[n..n + 3], b"GET");
    assert_eq!(h.version, Version::V1);
    assert_eq!(h.command, Command::Proxy);
    assert_eq!(h.family, Family::Inet);
    assert_eq!(h.transport, Transport::Stream);
    assert_eq!(h.source(), Some(sa("192.168.0.1:56324")));
    assert_eq!(h.destination(), Some(sa("192.168.0.11:443")));
    assert!(h.tlvs.is_empty());
}

#[test]
fn spec_maximum_lines() {
    let v4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(v4.len(), 56);
    assert_eq!(complete(v4).1, 56);

    let v6 = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(v6.len(), 104);
    let (h, n) = complete(v6);
    assert_eq!(n, 104);
    assert_eq!(
        h.source(),
        Some(sa("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"))
    );

    let unknown_short = b"PROXY UNKNOWN\r\n";
    assert_eq!(complete(unknown_short).1, 15);

    let worst = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(worst.len(), 107);
    let (h, n) = complete(worst);
    assert_eq!(n, 107);
    assert_eq!(h.addresses, Addresses::Unspec);
    assert!(h.uses_real_addresses());
}

#[test]
fn tcp6_forms() {
    let (h, _) = complete(b"PROXY TCP6 2001:db8::1 ::1 1 0\r\n");
    assert_eq!(h.family, Family::Inet6);
    assert_eq!(h.source(), Some(sa("[2001:db8::1]:1")));
    assert_eq!(h.destination(), Some(sa("[::1]:0")));
    // inet_ntop prints mapped addresses with a dotted tail.
    let (h, _) = complete(b"PROXY TCP6 ::ffff:10.0.0.1 2001:DB8:0:0:0:0:0:2 80 443\r\n");
    assert_eq!(h.source(), Some(sa("[::ffff:10.0.0.1]:80")));
    assert_eq!(h.destination(), Some(sa("[2001:db8::2]:443")));
    complete(b"PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0001 :: 1 2\r\n");
}

#[test]
fn unknown_ignores_rest_of_line() {
    let (h, n) = complete(b"PROXY UNKNOWN whatever garbage 123\r\nX");
    assert_eq!(n, 36);
    assert_eq!(h.family, Family::Unspec);
    assert_eq!(h.transport, Transport::Unspec);
    assert_eq!(h.source(), None);
    // But the keyword itself must be exact.
    assert_eq!(invalid(b"PROXY UNKNOWNX\r\n"), Invalid::V1BadProtocol);
    assert_eq!(invalid(b"PROXY UNKNOWN x\ry\r\n"), Invalid::V1BadLineEnd);
}

#[test]
fn strict_grammar() {
    let cases: &[(&[u8], Invalid)] = &[
        (
            b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            Invalid::V1BadProtocol,
        ),
        (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", Invalid::V1BadSyntax),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", Invalid::V1BadSyntax),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", Invalid::V1BadSyntax),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            Invalid::V1BadSyntax,
        ),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", Invalid::V1BadSyntax),
        (b"PROXY TCP4\r\n", Invalid::V1BadSyntax),
        (b"PROXY TCP4 \r\n", Invalid::V1BadSyntax),
        (b"PROXY \r\n", Invalid::V1BadProtocol),
        (b"PROXY\r\n", Invalid::V1BadSyntax),
        (
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            Invalid::V1BadProtocol,
        ),
        (
            b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
            Invalid::V1BadProtocol,
        ),
        (
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            Invalid::V1BadProtocol,
        ),
        (
            b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
            Invalid::V1BadAddress,
        ),
        (
            b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            Invalid::V1BadAddress,
        ),
        (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", Invalid::V1BadAddress),
        (
            b"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
            Invalid::V1BadAddress,
        ),
        (b"PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", Invalid::V1BadAddress),
        (
            b"PROXY TCP4 1.2.3.0004 5.6.7.8 1 2\r\n",
            Invalid::V1BadAddress,
        ),
        (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", Invalid::V1BadAddress),
        (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", Invalid::V1BadAddress),
        (
            b"PROXY TCP6 ::1 ::ffff:01.2.3.4 1 2\r\n",
            Invalid::V1BadAddress,
        ),
        (b"PROXY TCP6 1::2::3 ::1 1 2\r\n", Invalid::V1BadAddress),
        (b"PROXY TCP6 12345::1 ::1 1 2\r\n", Invalid::V1BadAddress),
        (b"PROXY TCP6 [::1] ::1 1 2\r\n", Invalid::V1BadAddress),
        (
            b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
            Invalid::V1BadAddress,
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            Invalid::V1BadPort,
        ),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", Invalid::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", Invalid::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", Invalid::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", Invalid::V1BadPort),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n",
            Invalid::V1BadPort,
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
            Invalid::V1BadPort,
        ),
        (b"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", Invalid::V1BadSyntax),
    ];
    for (buf, want) in cases {
        assert_eq!(invalid(buf), *want, "{:?}", String::from_utf8_lossy(buf));
    }
    // The boundaries that are fine.
    complete(b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n");
}

#[test]
fn line_endings() {
    // A lone LF, a CR followed by something else, an LF before the CR.
    assert_eq!(
        invalid(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
        Invalid::V1BadLineEnd
    );
    assert_eq!(
        invalid(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"),
        Invalid::V1BadLineEnd
    );
    assert_eq!(
        invalid(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r"),
        Invalid::V1BadLineEnd
    );
    assert_eq!(
        invalid(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"),
        Invalid::V1BadLineEnd
    );
    // A trailing lone CR is just "need the LF": no panic, no early verdict.
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"),
        Verdict::Incomplete(32)
    );
    assert_eq!(parse(b"PROXY UNKNOWN\r"), Verdict::Incomplete(15));
    assert_eq!(parse(b"PROXY \r"), Verdict::Invalid(Invalid::V1BadProtocol));
    assert_eq!(parse(b"P\r"), Verdict::Invalid(Invalid::NotProxy));
}

#[test]
fn no_crlf_within_107() {
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(107, b'a');
    assert_eq!(parse(&long[..106]), Verdict::Incomplete(107));
    assert_eq!(invalid(&long), Invalid::V1TooLong);
    // CR as byte 107: the LF would be byte 108.
    long[106] = b'\r';
    assert_eq!(invalid(&long), Invalid::V1TooLong);
    long.push(b'\n');
    assert_eq!(invalid(&long), Invalid::V1TooLong);
    // CRLF as bytes 106-107 is the longest accepted line.
    long.truncate(105);
    long.extend_from_slice(b"\r\n");
    assert_eq!(complete(&long).1, 107);
    // TCP6 with both dotted tails exceeds 107 even though each part is valid.
    let l = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n";
    assert_eq!(invalid(l), Invalid::V1TooLong);
}

#[test]
fn fails_fast_on_other_protocols() {
    for buf in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x16\x03\x01\x02\x00",
        b"SSH-2.0-OpenSSH",
        b"POST",
        b"PRI * HTTP/2.0",
    ] {
        assert_eq!(parse(buf), Verdict::Invalid(Invalid::NotProxy), "{buf:?}");
    }
    // Decided on the first wrong byte, long before a CRLF.
    assert_eq!(
        parse(b"PROXY TCP7"),
        Verdict::Invalid(Invalid::V1BadProtocol)
    );
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 x"),
        Verdict::Invalid(Invalid::V1BadSyntax)
    );
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 "),
        Verdict::Invalid(Invalid::V1BadPort)
    );
    assert_eq!(
        parse(b"PROXY TCP6 ::1 ::1 1 2 "),
        Verdict::Invalid(Invalid::V1BadSyntax)
    );
}

#[test]
fn every_split_point() {
    let buf = b"PROXY TCP6 2001:db8::1 2001:db8::2 65000 443\r\nhello";
    let hdr_len = buf.len() - 5;
    for cut in 0..hdr_len {
        match parse(&buf[..cut]) {
            Verdict::Incomplete(min) => assert!(min > cut && min <= hdr_len, "cut {cut}: {min}"),
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    for cut in hdr_len..=buf.len() {
        assert_eq!(complete(&buf[..cut]).1, hdr_len);
    }
}

#[test]
fn v1_can_be_disabled() {
    let opts = ParseOptions {
        v1: false,
        ..ParseOptions::default()
    };
    assert_eq!(
        parse_with(b"PROXY UNKNOWN\r\n", &opts),
        Verdict::Invalid(Invalid::NotProxy)
    );
}
