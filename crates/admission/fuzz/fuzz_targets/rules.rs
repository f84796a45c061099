//! Arbitrary strings into the rule parsers, arbitrary addresses into
//! matching: no panic, and printing a rule in Node's format parses back to
//! the same rule.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use rust_net_admission::cidr::{parse_node_rule, parse_rule, RuleSet};

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (addr, text) = data.split_at(16);
    let Ok(text) = std::str::from_utf8(text) else { return };
    let mut arr = [0u8; 16];
    arr.copy_from_slice(addr);
    let v6 = Ipv6Addr::from(arr);
    let ips = [IpAddr::V6(v6), v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)];
    for parsed in [parse_rule(text), parse_node_rule(text)] {
        if let Ok(rule) = parsed {
            let back = parse_node_rule(&rule.to_node_string()).expect("own output parses");
            assert_eq!(back, rule);
            let mut set = RuleSet::new();
            if set.add(rule).is_ok() {
                for ip in ips {
                    assert_eq!(set.contains(ip), rule.matches(ip));
                }
            }
        }
    }
});
