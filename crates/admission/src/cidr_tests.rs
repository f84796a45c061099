use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn set(rule: &str) -> RuleSet {
    RuleSet::from_node_rules([rule]).unwrap()
}

/// Each row was checked against `net.BlockList` on Node v20.20.2
/// (`b.check(addr, family)` with the family of the address as written).
#[test]
fn matches_node_blocklist() {
    let rows: &[(&str, &str, bool)] = &[
        ("Address: IPv4 1.2.3.4", "::ffff:1.2.3.4", true),
        ("Address: IPv4 1.2.3.4", "::ffff:102:304", true),
        ("Address: IPv4 1.2.3.4", "::1.2.3.4", false),
        ("Address: IPv4 1.2.3.4", "64:ff9b::1.2.3.4", false),
        ("Address: IPv6 ::ffff:1.2.3.4", "1.2.3.4", true),
        ("Address: IPv6 ::ffff:1.2.3.4", "::ffff:1.2.3.4", true),
        ("Address: IPv6 ::1.2.3.4", "1.2.3.4", false),
        ("Subnet: IPv4 1.2.3.0/24", "::ffff:1.2.3.9", true),
        ("Subnet: IPv6 ::ffff:0.0.0.0/96", "1.2.3.9", true),
        ("Subnet: IPv6 ::/0", "1.2.3.9", true),
        ("Subnet: IPv6 ::/64", "1.2.3.9", true),
        ("Subnet: IPv4 0.0.0.0/0", "::1", false),
        ("Subnet: IPv4 0.0.0.0/0", "::ffff:1.1.1.1", true),
        ("Subnet: IPv4 0.0.0.0/0", "5.6.7.8", true),
        ("Subnet: IPv4 1.2.3.4/32", "5.6.7.8", false),
        ("Subnet: IPv4 1.2.3.4/32", "1.2.3.4", true),
        ("Subnet: IPv4 1.2.3.4/32", "::ffff:5.6.7.8", false),
        ("Subnet: IPv4 1.2.3.4/24", "1.2.3.9", true),
        ("Subnet: IPv6 ::ffff:0.0.0.0/95", "1.2.3.9", true),
        ("Subnet: IPv6 ::ffff:0.0.0.0/97", "1.2.3.9", true),
        ("Subnet: IPv6 ::ffff:0.0.0.0/97", "129.2.3.9", false),
        ("Subnet: IPv6 ::ffff:1.2.3.0/120", "1.2.3.9", true),
        ("Subnet: IPv6 ::ffff:1.2.3.0/120", "::ffff:1.2.3.9", true),
        ("Subnet: IPv6 ::ffff:1.2.3.4/128", "1.2.3.4", true),
        ("Subnet: IPv6 ::ffff:1.2.3.4/128", "1.2.3.5", false),
        ("Subnet: IPv6 ::/96", "::1.2.3.9", true),
        ("Range: IPv4 1.1.1.1-1.1.1.9", "::ffff:1.1.1.5", true),
        ("Range: IPv4 1.1.1.1-1.1.1.9", "1.1.1.9", true),
        ("Range: IPv4 1.1.1.1-1.1.1.9", "::1", false),
        ("Range: IPv6 ::ffff:1.1.1.1-::ffff:1.1.1.9", "1.1.1.5", true),
        ("Range: IPv6 ::-::ffff:255.255.255.255", "1.1.1.5", false),
        ("Range: IPv6 ::-::1:0:0:0", "1.1.1.5", false),
        ("Range: IPv6 ::ffff:1.1.1.1-::1:0:0:0", "1.1.1.5", false),
        (
            "Range: IPv6 ::ffff:1.1.1.1-::1:0:0:0",
            "::ffff:1.1.1.5",
            true,
        ),
        ("Range: IPv6 ::fffe:0:0-::ffff:1.1.1.9", "1.1.1.5", false),
    ];
    for (rule, addr, want) in rows {
        assert_eq!(set(rule).contains(ip(addr)), *want, "{rule} vs {addr}");
    }
}

#[test]
fn node_rules_round_trip() {
    // Node 20's exact output for the brief's example plus a few more.
    let rules = [
        "Subnet: IPv4 10.0.0.0/8",
        "Range: IPv6 ::1-::9",
        "Address: IPv6 ::ffff:1.2.3.4",
        "Subnet: IPv6 ::/64",
        "Range: IPv4 1.1.1.1-1.1.1.9",
        "Address: IPv4 1.2.3.4",
    ];
    let s = RuleSet::from_node_rules(rules).unwrap();
    assert_eq!(s.len(), 6);
    let back: Vec<String> = s.rules().iter().map(Rule::to_node_string).collect();
    assert_eq!(back, rules);
}

#[test]
fn node_rules_rejects_garbage() {
    for bad in [
        "",
        "Address:IPv4 1.2.3.4",
        "Address: IPv5 1.2.3.4",
        "Address: IPv4 ::1",
        "Address: IPv6 1.2.3.4",
        "Range: IPv4 1.2.3.4",
        "Subnet: IPv4 1.2.3.4",
        "Subnet: IPv4 1.2.3.4/33",
        "Subnet: IPv6 ::/129",
        "Subnet: IPv4 1.2.3.4/+8",
        "Mask: IPv4 1.2.3.4",
        "Address: IPv4 01.2.3.4",
    ] {
        assert!(parse_node_rule(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn user_rules() {
    let s = RuleSet::from_strs([
        "10.0.0.0/8",
        "127.0.0.1",
        "::1",
        "fd00::/8",
        " 192.168.1.10 - 192.168.1.20 ",
    ])
    .unwrap();
    for yes in [
        "10.1.2.3",
        "::ffff:10.9.9.9",
        "127.0.0.1",
        "::1",
        "fdab::1",
        "192.168.1.15",
        "::ffff:192.168.1.20",
    ] {
        assert!(s.contains(ip(yes)), "{yes}");
    }
    for no in [
        "11.0.0.1",
        "127.0.0.2",
        "::2",
        "fe00::1",
        "192.168.1.21",
        "::a00:1",
    ] {
        assert!(!s.contains(ip(no)), "{no}");
    }
    assert_eq!(
        parse_rule("fe80::1%eth0").unwrap(),
        Rule::Address(ip("fe80::1"))
    );
    assert_eq!(
        parse_rule("10.1.2.3/8").unwrap(),
        Rule::Subnet(ip("10.1.2.3"), 8)
    );
    for bad in [
        "",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "1.2.3",
        "01.2.3.4",
        "10.0.0.9-10.0.0.1",
        "host",
        "1.2.3.4/",
    ] {
        assert!(parse_rule(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn builders_validate() {
    let mut s = RuleSet::new();
    assert_eq!(
        s.add_range(ip("1.1.1.9"), ip("1.1.1.1")),
        Err(RuleError::RangeReversed)
    );
    assert!(s.add_subnet(ip("1.1.1.1"), 33).is_err());
    assert!(s.add_subnet(ip("::"), 129).is_err());
    assert!(s.is_empty());
    // Not comparable: accepted, as Node does.
    s.add_range(ip("1.1.1.1"), ip("::5")).unwrap();
    assert!(!s.contains(ip("1.1.1.2")));
    assert!(!s.contains(ip("::3")));
    s.add_subnet(ip("::"), 0).unwrap();
    assert!(s.contains(ip("8.8.8.8")) && s.contains(ip("2001:db8::1")));
    assert!(!RuleSet::new().contains(ip("1.1.1.1")));
}

#[test]
fn a_set_survives_its_words_rule_for_rule() {
    let rules = [
        "Address: IPv4 1.2.3.4",
        "Address: IPv6 ::ffff:1.2.3.4",
        "Range: IPv4 10.0.0.1-10.0.0.9",
        "Range: IPv6 ::1-::ffff:ffff:ffff:ffff",
        "Subnet: IPv4 192.168.0.0/16",
        "Subnet: IPv6 fd00::/8",
        "Subnet: IPv6 ::/0",
    ];
    let set = RuleSet::from_node_rules(rules).unwrap();
    let words = set.to_words();
    assert_eq!(words.len(), rules.len() * RULE_WORDS);
    let back = RuleSet::from_words(&words).unwrap();
    assert_eq!(back, set);
    let printed: Vec<String> = back.rules().iter().map(Rule::to_node_string).collect();
    assert_eq!(printed, rules);
}

#[test]
fn words_it_did_not_write_are_refused() {
    let words = RuleSet::from_strs(["10.0.0.0/8"]).unwrap().to_words();
    assert_eq!(
        RuleSet::from_words(&words[..RULE_WORDS - 1]),
        Err(RuleError::BadWords)
    );
    let mut unknown_kind = words.clone();
    unknown_kind[0] = (unknown_kind[0] & !0xff) | 7;
    assert_eq!(RuleSet::from_words(&unknown_kind), Err(RuleError::BadWords));
    let mut stray_bits = words.clone();
    stray_bits[0] |= 1 << 12;
    assert_eq!(RuleSet::from_words(&stray_bits), Err(RuleError::BadWords));
    let mut wide_v4 = words.clone();
    wide_v4[1] = 1;
    assert_eq!(RuleSet::from_words(&wide_v4), Err(RuleError::BadWords));
    let mut long_prefix = words.clone();
    long_prefix[0] = (long_prefix[0] & 0xffff) | (33 << 16);
    assert_eq!(
        RuleSet::from_words(&long_prefix),
        Err(RuleError::BadPrefix("33".into()))
    );
    let mut reversed = RuleSet::from_strs(["10.0.0.1-10.0.0.9"])
        .unwrap()
        .to_words();
    reversed.swap(4, 8);
    assert_eq!(
        RuleSet::from_words(&reversed),
        Err(RuleError::RangeReversed)
    );
    assert_eq!(RuleSet::from_words(&[]), Ok(RuleSet::new()));
}
