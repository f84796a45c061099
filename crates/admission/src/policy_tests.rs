use super::*;
use crate::proxy::V2_SIGNATURE;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const REQUIRE: Policy = Policy {
    untrusted: Untrusted::Pass,
    trusted_without_header: TrustedWithoutHeader::Reject,
    parse: ParseOptions {
        max_header_len: 4096,
        v1: true,
        v2: true,
    },
};

fn pass_mode() -> Policy {
    Policy {
        trusted_without_header: TrustedWithoutHeader::Pass,
        ..Policy::default()
    }
}

#[test]
fn defaults_are_require_and_pass_untrusted() {
    assert_eq!(Policy::default(), REQUIRE);
}

#[test]
fn untrusted_peers() {
    let p = Policy::default();
    assert_eq!(
        p.on_accept(false),
        Decision::Accept(Admit {
            header: None,
            consumed: 0
        })
    );
    let strict = Policy {
        untrusted: Untrusted::Reject,
        ..p
    };
    assert_eq!(strict.on_accept(false), Decision::Reject(Reason::Untrusted));
    assert_eq!(p.on_accept(true), Decision::NeedMore { min_len: 1 });
}

#[test]
fn trusted_with_header_and_payload() {
    let buf = b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 443\r\nGET /";
    let Decision::Accept(admit) = REQUIRE.on_data(buf, false) else {
        panic!()
    };
    assert_eq!(admit.consumed, buf.len() - 5);
    assert_eq!(admit.remote(sa("10.0.0.1:5555")), sa("1.2.3.4:1000"));
    assert_eq!(admit.local(sa("10.0.0.2:443")), sa("5.6.7.8:443"));
}

#[test]
fn local_and_unknown_keep_real_addresses() {
    let mut local = V2_SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    for buf in [&local[..], b"PROXY UNKNOWN\r\n"] {
        let Decision::Accept(admit) = REQUIRE.on_data(buf, false) else {
            panic!()
        };
        assert_eq!(admit.consumed, buf.len());
        assert!(admit.header.is_some());
        assert_eq!(admit.remote(sa("10.0.0.1:5555")), sa("10.0.0.1:5555"));
        assert_eq!(admit.local(sa("10.0.0.2:443")), sa("10.0.0.2:443"));
    }
}

#[test]
fn partial_header_needs_more() {
    assert_eq!(
        REQUIRE.on_data(b"", false),
        Decision::NeedMore { min_len: 1 }
    );
    assert_eq!(
        REQUIRE.on_data(b"PROXY TCP4 1.2", false),
        Decision::NeedMore { min_len: 15 }
    );
    assert_eq!(
        REQUIRE.on_data(&V2_SIGNATURE[..5], false),
        Decision::NeedMore { min_len: 16 }
    );
}

#[test]
fn missing_header() {
    let http = b"GET / HTTP/1.1\r\n";
    assert_eq!(
        REQUIRE.on_data(http, false),
        Decision::Reject(Reason::NoHeader)
    );
    assert_eq!(
        pass_mode().on_data(http, false),
        Decision::Accept(Admit {
            header: None,
            consumed: 0
        })
    );
    assert_eq!(
        REQUIRE.on_data(b"", true),
        Decision::Reject(Reason::NoHeader)
    );
    assert_eq!(
        pass_mode().on_data(b"", true),
        Decision::Reject(Reason::NoHeader)
    );
}

#[test]
fn broken_header_is_rejected_in_both_modes() {
    for p in [REQUIRE, pass_mode()] {
        assert_eq!(
            p.on_data(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", false),
            Decision::Reject(Reason::InvalidHeader(Invalid::V1BadLineEnd))
        );
        assert_eq!(
            p.on_data(b"PROXY TCP4 1.2", true),
            Decision::Reject(Reason::InvalidHeader(Invalid::Truncated))
        );
        let mut big = V2_SIGNATURE.to_vec();
        big.extend_from_slice(&[0x21, 0x11, 0x20, 0x00]);
        assert_eq!(p.on_data(&big, false), Decision::Reject(Reason::TooLarge));
    }
}

#[test]
fn timeouts() {
    assert_eq!(REQUIRE.on_timeout(b""), Decision::Reject(Reason::Timeout));
    assert_eq!(
        REQUIRE.on_timeout(b"PROXY"),
        Decision::Reject(Reason::Timeout)
    );
    assert_eq!(
        pass_mode().on_timeout(b""),
        Decision::Accept(Admit {
            header: None,
            consumed: 0
        })
    );
    assert_eq!(
        pass_mode().on_timeout(b"PROXY"),
        Decision::Reject(Reason::Timeout)
    );
}

#[test]
fn reason_codes_are_stable() {
    let all = [
        (Reason::NoHeader, "ERR_PROXY_HEADER_MISSING"),
        (
            Reason::InvalidHeader(Invalid::Crc32cMismatch),
            "ERR_PROXY_HEADER_INVALID",
        ),
        (Reason::Timeout, "ERR_PROXY_HEADER_TIMEOUT"),
        (Reason::Untrusted, "ERR_PROXY_PEER_UNTRUSTED"),
        (Reason::Blocked, "ERR_PEER_BLOCKED"),
        (Reason::TooLarge, "ERR_PROXY_HEADER_TOO_LARGE"),
    ];
    for (r, code) in all {
        assert_eq!(r.code(), code);
    }
    let r = Reason::InvalidHeader(Invalid::Crc32cMismatch);
    assert_eq!(r.detail(), Some("v2-crc32c-mismatch"));
    assert_eq!(
        r.to_string(),
        "ERR_PROXY_HEADER_INVALID: v2-crc32c-mismatch"
    );
    assert_eq!(Reason::Blocked.detail(), None);
    assert_eq!(
        Policy::default().blocked(),
        Decision::Reject(Reason::Blocked)
    );
}
