//! Arbitrary bytes into the PROXY parser and the policy.
//!
//! Beyond "no panic, no out-of-bounds read" (which the sanitizer checks), it
//! asserts the parser's contract: a Complete verdict depends only on the
//! header's own bytes, every strict prefix of an accepted header is
//! Incomplete, Incomplete asks for more than it was given, and an accepted
//! header re-encodes to bytes that parse back to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rust_net_admission::policy::{Policy, TrustedWithoutHeader};
use rust_net_admission::proxy::{self, encode, ParseOptions, Verdict, Version};

fuzz_target!(|data: &[u8]| {
    // First byte picks the size bound, so small limits get exercised too.
    let (knob, buf) = match data.split_first() {
        Some((k, rest)) => (*k, rest),
        None => (0, data),
    };
    let opts = ParseOptions { max_header_len: usize::from(knob) * 64, ..ParseOptions::default() };
    for o in [ParseOptions::default(), opts] {
        check(buf, &o);
    }
    let pass = Policy { trusted_without_header: TrustedWithoutHeader::Pass, ..Policy::default() };
    for p in [Policy::default(), pass] {
        let _ = p.on_data(buf, knob & 1 == 1);
        let _ = p.on_timeout(buf);
    }
});

fn check(buf: &[u8], opts: &ParseOptions) {
    match proxy::parse_with(buf, opts) {
        Verdict::Incomplete(min) => assert!(min > buf.len()),
        Verdict::Invalid(_) => {}
        Verdict::Complete(h, n) => {
            assert!(n > 0 && n <= buf.len());
            match proxy::parse_with(&buf[..n], opts) {
                Verdict::Complete(h2, n2) => assert!(h2 == h && n2 == n),
                other => panic!("header alone: {other:?}"),
            }
            for cut in 0..n {
                assert!(matches!(proxy::parse_with(&buf[..cut], opts), Verdict::Incomplete(_)), "cut {cut}");
            }
            let again = match h.version {
                Version::V1 => encode::v1(&h),
                Version::V2 => encode::v2(&h),
            };
            let again = again.expect("an accepted header can be encoded");
            match proxy::parse_with(&again, &ParseOptions { max_header_len: usize::MAX, ..*opts }) {
                Verdict::Complete(h3, n3) => assert!(same(&h3, &h) && n3 == again.len()),
                other => panic!("re-encoded: {other:?}"),
            }
        }
    }
}

/// Equal, except that a CRC32C value may differ: re-encoding zero-fills the
/// ignored address block of LOCAL/UNSPEC headers, which changes the checksum.
fn same(a: &proxy::Header, b: &proxy::Header) -> bool {
    if a.tlvs.crc32c().is_none() {
        return a == b;
    }
    let kinds = |h: &proxy::Header| h.tlvs.iter().map(|t| (t.kind, t.kind == 3 || t.value.is_empty())).collect::<Vec<_>>();
    (a.version, a.command, a.family, a.transport, &a.addresses) == (b.version, b.command, b.family, b.transport, &b.addresses)
        && kinds(a) == kinds(b)
}
