//! Sets of address rules with Node's `net.BlockList` semantics, used both for
//! `blockList` and for the PROXY protocol's trusted sources.
//!
//! Three kinds of rule, as in Node: an address, an inclusive range, a subnet
//! (network + prefix length). A [`RuleSet`] matches if any rule does.
//!
//! # IPv4 and IPv6 (matching Node, `src/node_sockaddr.cc`)
//! Node treats the IPv4 address `a.b.c.d` and the IPv4-mapped IPv6 address
//! `::ffff:a.b.c.d` as the same address, in both directions, and nothing
//! else crosses families (`::a.b.c.d`, NAT64 `64:ff9b::/96` and the like are
//! plain IPv6). Precisely:
//! - **Address** rule: an IPv4 rule matches the IPv4 address and its mapped
//!   form; an IPv6 rule `::ffff:a.b.c.d` matches `a.b.c.d` too.
//! - **Subnet** rule: an IPv4 subnet `n/p` matches IPv4 addresses in it and
//!   mapped IPv6 addresses whose IPv4 part is in it; an IPv4 address is
//!   checked against an IPv6 subnet as its mapped form (so `::/64` or
//!   `::ffff:0:0/96` contain every IPv4 address, and `::/0` everything).
//! - **Range** rule: an address of the other family is compared only when the
//!   IPv6 side is mapped. So an IPv4 address matches an IPv6 range only if
//!   *both* ends are mapped addresses, and an IPv6 address matches an IPv4
//!   range only if it is mapped. An IPv6 address is compared with IPv6 ends
//!   as a 128-bit number, mapped or not.
//!
//! Pass [`RuleSet::contains`] the peer address exactly as the socket reports
//! it (a dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`), as
//! Node's own `server.blockList` check does; do not "canonicalise" it first,
//! or range rules would behave differently from Node.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The mapped prefix `::ffff:0:0/96` as the high 96 bits of a u128.
const MAPPED_PREFIX: u128 = 0xffff_u128 << 32;

/// One rule, kept in the form it was given (so it can be printed back in
/// Node's `rules` format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    Address(IpAddr),
    /// Inclusive range, `start <= end`.
    Range(IpAddr, IpAddr),
    /// Network and prefix length (≤ 32 for IPv4, ≤ 128 for IPv6). Host bits
    /// in the network are allowed and ignored, as in Node.
    Subnet(IpAddr, u8),
}

/// Why a rule could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// Not an IPv4 or IPv6 address.
    BadAddress(String),
    /// Prefix not a number, or larger than the family allows.
    BadPrefix(String),
    /// Range whose start comes after its end (Node throws for this too).
    RangeReversed,
    /// Not in Node's `rules` format (`Address: IPv4 1.2.3.4`, ...).
    BadNodeRule(String),
    /// Words that [`RuleSet::to_words`] did not write.
    BadWords,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::BadAddress(s) => write!(f, "invalid IP address: {s:?}"),
            RuleError::BadPrefix(s) => write!(f, "invalid prefix length: {s:?}"),
            RuleError::RangeReversed => f.write_str("range start must come before end"),
            RuleError::BadNodeRule(s) => write!(f, "not a BlockList rule: {s:?}"),
            RuleError::BadWords => f.write_str("not an encoded rule set"),
        }
    }
}

impl std::error::Error for RuleError {}

/// An address as a 128-bit number, IPv4 taken as its mapped form.
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => MAPPED_PREFIX | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn is_v4_or_mapped(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => u128::from(v6) >> 32 == 0xffff,
    }
}

/// Node's "comparable": same family, or the IPv6 one is mapped.
fn comparable(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4() || (is_v4_or_mapped(a) && is_v4_or_mapped(b))
}

/// Top `prefix` bits of a 128-bit address as a mask.
fn mask(prefix: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix.min(128))
    }
}

impl Rule {
    /// Whether `ip` matches this rule, with Node's semantics (module doc).
    pub fn matches(&self, ip: IpAddr) -> bool {
        match *self {
            Rule::Address(a) => bits(a) == bits(ip),
            Rule::Subnet(net, prefix) => {
                // An IPv4 subnet is the mapped subnet 96 bits longer.
                let p = u32::from(prefix) + if net.is_ipv4() { 96 } else { 0 };
                let m = mask(p);
                bits(net) & m == bits(ip) & m
            }
            Rule::Range(start, end) => {
                comparable(ip, start)
                    && comparable(ip, end)
                    && bits(start) <= bits(ip)
                    && bits(ip) <= bits(end)
            }
        }
    }

    /// The rule in the format of Node's `BlockList.prototype.rules`.
    pub fn to_node_string(&self) -> String {
        fn fam(ip: IpAddr) -> &'static str {
            if ip.is_ipv4() {
                "IPv4"
            } else {
                "IPv6"
            }
        }
        match self {
            Rule::Address(a) => format!("Address: {} {a}", fam(*a)),
            Rule::Range(s, e) => format!("Range: {} {s}-{e}", fam(*s)),
            Rule::Subnet(n, p) => format!("Subnet: {} {n}/{p}", fam(*n)),
        }
    }
}

/// A union of rules. Lookup is linear, like Node's: rule lists for trusted
/// proxies and block lists are short, and a linear scan of a few dozen
/// entries costs less than the accept that precedes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    pub fn new() -> Self {
        RuleSet::default()
    }

    /// Node's `addAddress(ip)`.
    pub fn add_address(&mut self, ip: IpAddr) {
        self.rules.push(Rule::Address(ip));
    }

    /// Node's `addRange(start, end)`: inclusive; refused when `start` comes
    /// after `end`. As in Node, ends that cannot be compared (an IPv4 and a
    /// non-mapped IPv6) are accepted; such a range then matches only
    /// addresses comparable with both ends, exactly as Node's would.
    pub fn add_range(&mut self, start: IpAddr, end: IpAddr) -> Result<(), RuleError> {
        if comparable(start, end) && bits(start) > bits(end) {
            return Err(RuleError::RangeReversed);
        }
        self.rules.push(Rule::Range(start, end));
        Ok(())
    }

    /// Node's `addSubnet(net, prefix)`: prefix ≤ 32 for IPv4, ≤ 128 for IPv6.
    pub fn add_subnet(&mut self, net: IpAddr, prefix: u8) -> Result<(), RuleError> {
        let max = if net.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(RuleError::BadPrefix(prefix.to_string()));
        }
        self.rules.push(Rule::Subnet(net, prefix));
        Ok(())
    }

    /// Adds a rule built by [`parse_rule`] or [`parse_node_rule`].
    pub fn add(&mut self, rule: Rule) -> Result<(), RuleError> {
        match rule {
            Rule::Address(a) => {
                self.add_address(a);
                Ok(())
            }
            Rule::Range(s, e) => self.add_range(s, e),
            Rule::Subnet(n, p) => self.add_subnet(n, p),
        }
    }

    /// Builds a set from user strings such as `"10.0.0.0/8"`, `"::1"`
    /// (see [`parse_rule`]).
    pub fn from_strs<I, S>(items: I) -> Result<Self, RuleError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = RuleSet::new();
        for s in items {
            set.add(parse_rule(s.as_ref())?)?;
        }
        Ok(set)
    }

    /// Mirrors a JS `net.BlockList` from its `rules` array.
    pub fn from_node_rules<I, S>(items: I) -> Result<Self, RuleError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = RuleSet::new();
        for s in items {
            set.add(parse_node_rule(s.as_ref())?)?;
        }
        Ok(set)
    }

    /// Whether any rule matches `ip` (Node's `check()`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.rules.iter().any(|r| r.matches(ip))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Parses an address as Node's `net.isIP` would accept it: dotted-quad IPv4
/// without leading zeros, or IPv6 text, optionally with a `%zone` suffix that
/// is dropped (Node keeps no zone in its rules either).
pub fn parse_ip(s: &str) -> Result<IpAddr, RuleError> {
    let bad = || RuleError::BadAddress(s.to_string());
    if s.contains(':') {
        let addr = s.split_once('%').map_or(s, |(a, _)| a);
        addr.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| bad())
    } else {
        s.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| bad())
    }
}

/// Parses a user-written rule: an address (`"127.0.0.1"`, `"::1"`), a subnet
/// in CIDR notation (`"10.0.0.0/8"`, `"fd00::/8"`) or an inclusive range
/// (`"10.0.0.1-10.0.0.9"`). Surrounding whitespace is ignored.
pub fn parse_rule(s: &str) -> Result<Rule, RuleError> {
    let s = s.trim();
    if let Some((net, prefix)) = s.split_once('/') {
        let net = parse_ip(net.trim())?;
        let p = prefix.trim();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match p.parse::<u8>() {
            Ok(v) if v <= max && !p.starts_with('+') => v,
            _ => return Err(RuleError::BadPrefix(p.to_string())),
        };
        return Ok(Rule::Subnet(net, prefix));
    }
    if let Some((start, end)) = s.split_once('-') {
        let (start, end) = (parse_ip(start.trim())?, parse_ip(end.trim())?);
        if comparable(start, end) && bits(start) > bits(end) {
            return Err(RuleError::RangeReversed);
        }
        return Ok(Rule::Range(start, end));
    }
    parse_ip(s).map(Rule::Address)
}

/// Parses one entry of Node's `BlockList.prototype.rules`:
/// `"Address: IPv4 1.2.3.4"`, `"Range: IPv6 ::1-::9"`,
/// `"Subnet: IPv4 10.0.0.0/8"` (format checked against Node 20's output;
/// it is the same `ToString()` in `node_sockaddr.cc` since Node 15). The
/// family word must agree with the address.
pub fn parse_node_rule(s: &str) -> Result<Rule, RuleError> {
    let bad = || RuleError::BadNodeRule(s.to_string());
    let (kind, rest) = s.split_once(": ").ok_or_else(bad)?;
    let (fam, body) = rest.split_once(' ').ok_or_else(bad)?;
    let want_v4 = match fam {
        "IPv4" => true,
        "IPv6" => false,
        _ => return Err(bad()),
    };
    let family_ok = |ip: IpAddr| {
        if ip.is_ipv4() == want_v4 {
            Ok(ip)
        } else {
            Err(bad())
        }
    };
    match kind {
        "Address" => Ok(Rule::Address(family_ok(parse_ip(body)?)?)),
        "Range" => {
            let (a, b) = body.split_once('-').ok_or_else(bad)?;
            Ok(Rule::Range(
                family_ok(parse_ip(a)?)?,
                family_ok(parse_ip(b)?)?,
            ))
        }
        "Subnet" => {
            let (n, p) = body.rsplit_once('/').ok_or_else(bad)?;
            let net = family_ok(parse_ip(n)?)?;
            let max = if want_v4 { 32 } else { 128 };
            match p.parse::<u8>() {
                Ok(prefix) if prefix <= max && !p.starts_with('+') => Ok(Rule::Subnet(net, prefix)),
                _ => Err(RuleError::BadPrefix(p.to_string())),
            }
        }
        _ => Err(bad()),
    }
}

/// How many `u32` words [`RuleSet::to_words`] writes per rule: a tag (the
/// kind, each address's family, the prefix length) and two 128-bit
/// addresses (the second is zero but for a range).
pub const RULE_WORDS: usize = 9;

const KIND_ADDRESS: u32 = 0;
const KIND_RANGE: u32 = 1;
const KIND_SUBNET: u32 = 2;
/// Tag bits: the first and the second address are IPv6.
const FIRST_V6: u32 = 1 << 8;
const SECOND_V6: u32 = 1 << 9;

fn push_ip(words: &mut Vec<u32>, ip: IpAddr) {
    let n = match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    // Truncation intended: the four 32-bit quarters of the address, high first.
    words.extend([96, 64, 32, 0].map(|shift| (n >> shift) as u32));
}

fn read_ip(quarters: &[u32], v6: bool) -> Result<IpAddr, RuleError> {
    let n = quarters
        .iter()
        .fold(0u128, |n, &q| (n << 32) | u128::from(q));
    if v6 {
        Ok(IpAddr::V6(Ipv6Addr::from(n)))
    } else {
        u32::try_from(n)
            .map(|v4| IpAddr::V4(Ipv4Addr::from(v4)))
            .map_err(|_| RuleError::BadWords)
    }
}

impl RuleSet {
    /// The rules as plain numbers, [`RULE_WORDS`] per rule, so that a set
    /// parsed from text once (when an option is given) can be handed on and
    /// rebuilt with no text to parse again ([`RuleSet::from_words`]).
    pub fn to_words(&self) -> Vec<u32> {
        let mut words = Vec::with_capacity(self.rules.len() * RULE_WORDS);
        for rule in &self.rules {
            let (kind, first, second, prefix) = match *rule {
                Rule::Address(a) => (KIND_ADDRESS, a, None, 0),
                Rule::Range(s, e) => (KIND_RANGE, s, Some(e), 0),
                Rule::Subnet(n, p) => (KIND_SUBNET, n, None, p),
            };
            let v6 = |ip: IpAddr, bit| if ip.is_ipv6() { bit } else { 0 };
            let tag = kind
                | v6(first, FIRST_V6)
                | second.map_or(0, |e| v6(e, SECOND_V6))
                | (u32::from(prefix) << 16);
            words.push(tag);
            push_ip(&mut words, first);
            push_ip(
                &mut words,
                second.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            );
        }
        words
    }

    /// The set [`RuleSet::to_words`] wrote, checked as [`RuleSet::add`]
    /// checks a rule; anything else is [`RuleError::BadWords`] or that
    /// rule's own error.
    pub fn from_words(words: &[u32]) -> Result<Self, RuleError> {
        if !words.len().is_multiple_of(RULE_WORDS) {
            return Err(RuleError::BadWords);
        }
        let mut set = RuleSet::new();
        for chunk in words.chunks_exact(RULE_WORDS) {
            let tag = chunk[0];
            if tag & !(0xff_u32 << 16 | FIRST_V6 | SECOND_V6 | 0xff) != 0 {
                return Err(RuleError::BadWords);
            }
            let first = read_ip(&chunk[1..5], tag & FIRST_V6 != 0)?;
            let second = read_ip(&chunk[5..9], tag & SECOND_V6 != 0)?;
            let prefix = u8::try_from(tag >> 16).map_err(|_| RuleError::BadWords)?;
            let rule = match tag & 0xff {
                KIND_ADDRESS => Rule::Address(first),
                KIND_RANGE => Rule::Range(first, second),
                KIND_SUBNET => Rule::Subnet(first, prefix),
                _ => return Err(RuleError::BadWords),
            };
            set.add(rule)?;
        }
        Ok(set)
    }
}

#[cfg(test)]
#[path = "cidr_tests.rs"]
mod tests;
