use super::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn limited(max_open: u32) -> PeerTable {
    PeerTable::new(PeerLimits {
        max_open: Some(max_open),
        ..PeerLimits::default()
    })
}

fn rated(per_second: f64, burst: u32) -> PeerTable {
    PeerTable::new(PeerLimits {
        rate: Some(Rate { per_second, burst }),
        ..PeerLimits::default()
    })
}

#[test]
fn at_most_max_open_connections_per_address() {
    let mut t = limited(2);
    let a = t.key(ip("10.0.0.1"));
    let b = t.key(ip("10.0.0.2"));
    assert_eq!(t.open(a, 0), Ok(()));
    assert_eq!(t.open(a, 0), Ok(()));
    assert_eq!(t.open(a, 0), Err(Over::Limit));
    assert_eq!(t.open(b, 0), Ok(()), "another address has its own count");
    t.close(a, 0);
    assert_eq!(t.open(a, 0), Ok(()), "a close makes room");
    assert_eq!(t.open_count(a), 2);
}

#[test]
fn closing_everything_forgets_the_address() {
    let mut t = limited(3);
    let a = t.key(ip("10.0.0.1"));
    t.open(a, 0).unwrap();
    t.open(a, 0).unwrap();
    t.close(a, 0);
    assert_eq!(t.len(), 1);
    t.close(a, 0);
    assert!(t.is_empty());
    // A stray close (a connection counted elsewhere) is harmless.
    t.close(a, 0);
    assert!(t.is_empty());
}

#[test]
fn ipv6_is_grouped_by_its_64_and_mapped_ipv4_is_ipv4() {
    let t = limited(1);
    assert_eq!(
        t.key(ip("2001:db8:1:2::1")),
        t.key(ip("2001:db8:1:2:ffff::9"))
    );
    assert_ne!(t.key(ip("2001:db8:1:2::1")), t.key(ip("2001:db8:1:3::1")));
    assert_eq!(t.key(ip("::ffff:10.0.0.1")), t.key(ip("10.0.0.1")));
    assert_ne!(t.key(ip("10.0.0.1")), t.key(ip("10.0.0.2")));
    // 0.0.0.0 and :: are different families.
    assert_ne!(
        t.key(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        t.key(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    );
}

#[test]
fn prefixes_are_configurable() {
    let t = PeerTable::new(PeerLimits {
        ipv4_prefix: 24,
        ipv6_prefix: 128,
        ..PeerLimits::default()
    });
    assert_eq!(t.key(ip("10.0.0.1")), t.key(ip("10.0.0.200")));
    assert_ne!(t.key(ip("10.0.0.1")), t.key(ip("10.0.1.1")));
    assert_ne!(t.key(ip("2001:db8::1")), t.key(ip("2001:db8::2")));
}

#[test]
fn the_bucket_allows_a_burst_then_the_rate() {
    let mut t = rated(10.0, 3);
    let a = t.key(ip("10.0.0.1"));
    for _ in 0..3 {
        assert_eq!(t.open(a, 1000), Ok(()));
    }
    assert_eq!(t.open(a, 1000), Err(Over::Rate));
    assert_eq!(t.open(a, 1099), Err(Over::Rate), "0.99 of a token");
    assert_eq!(t.open(a, 1100), Ok(()), "one token after 100 ms at 10/s");
    assert_eq!(t.open(a, 1100), Err(Over::Rate));
    // A long pause refills to the burst, not beyond.
    for _ in 0..3 {
        assert_eq!(t.open(a, 100_000), Ok(()));
    }
    assert_eq!(t.open(a, 100_000), Err(Over::Rate));
}

#[test]
fn a_clock_that_goes_back_adds_nothing() {
    let mut t = rated(1.0, 1);
    let a = t.key(ip("10.0.0.1"));
    t.open(a, 5000).unwrap();
    assert_eq!(t.open(a, 0), Err(Over::Rate));
    assert_eq!(t.open(a, 5999), Err(Over::Rate));
    assert_eq!(t.open(a, 6000), Ok(()));
}

#[test]
fn a_connection_over_the_limit_takes_no_token() {
    let mut t = PeerTable::new(PeerLimits {
        max_open: Some(1),
        rate: Some(Rate {
            per_second: 1.0,
            burst: 2,
        }),
        ..PeerLimits::default()
    });
    let a = t.key(ip("10.0.0.1"));
    t.open(a, 0).unwrap();
    assert_eq!(t.open(a, 0), Err(Over::Limit));
    assert_eq!(t.open(a, 0), Err(Over::Limit));
    t.close(a, 0);
    assert_eq!(t.open(a, 0), Ok(()), "the second token is still there");
}

#[test]
fn a_refilling_bucket_is_remembered_until_full() {
    let mut t = rated(1.0, 2);
    let a = t.key(ip("10.0.0.1"));
    t.open(a, 0).unwrap();
    t.close(a, 0);
    assert_eq!(t.len(), 1, "one token short: still tracked");
    t.open(a, 0).unwrap();
    t.close(a, 2000);
    assert!(t.is_empty(), "full again at close: forgotten");
}

#[test]
fn the_table_is_capped_by_dropping_idle_then_refilling_entries() {
    let mut t = PeerTable::new(PeerLimits {
        rate: Some(Rate {
            per_second: 1.0,
            burst: 1,
        }),
        max_tracked: 100,
        ..PeerLimits::default()
    });
    // 1000 addresses, one connection each, closed at once: each bucket is
    // empty, so each stays tracked until the cap sweeps it.
    for i in 0..1000u32 {
        let k = t.key(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
        t.open(k, 0).unwrap();
        t.close(k, 0);
        assert!(t.len() <= 100, "{} tracked after {i}", t.len());
    }
}

#[test]
fn entries_holding_connections_survive_a_sweep() {
    let mut t = PeerTable::new(PeerLimits {
        max_open: Some(1),
        max_tracked: 10,
        ..PeerLimits::default()
    });
    let held: Vec<PeerKey> = (0..50u32)
        .map(|i| t.key(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))))
        .collect();
    for &k in &held {
        t.open(k, 0).unwrap();
    }
    assert_eq!(t.len(), 50, "open connections are never forgotten");
    for &k in &held {
        assert_eq!(t.open(k, 0), Err(Over::Limit));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Open(u8, u16),
    Close(u8, u16),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (0u8..8, 0u16..200).prop_map(|(a, dt)| Op::Open(a, dt)),
            (0u8..8, 0u16..200).prop_map(|(a, dt)| Op::Close(a, dt)),
        ],
        0..300,
    )
}

proptest! {
    /// Against a model: the open count per address never exceeds the limit,
    /// equals opens admitted minus closes of admitted connections, and the
    /// tokens spent in any window never exceed burst + rate × window.
    #[test]
    fn limits_hold_against_a_model(
        ops in ops(),
        max_open in 1u32..5,
        burst in 1u32..5,
        per_second in 1u32..50,
        max_tracked in 1usize..6,
    ) {
        let mut t = PeerTable::new(PeerLimits {
            max_open: Some(max_open),
            rate: Some(Rate { per_second: f64::from(per_second), burst }),
            max_tracked,
            ..PeerLimits::default()
        });
        let mut now = 0u64;
        let mut open = [0u32; 8];
        let mut admitted: [Vec<u64>; 8] = Default::default();
        for op in ops {
            match op {
                Op::Open(a, dt) => {
                    now += u64::from(dt);
                    let k = t.key(IpAddr::V4(Ipv4Addr::new(10, 0, 0, a)));
                    match t.open(k, now) {
                        Ok(()) => {
                            open[a as usize] += 1;
                            admitted[a as usize].push(now);
                        }
                        Err(Over::Limit) => prop_assert!(open[a as usize] >= max_open),
                        Err(Over::Rate) => {}
                    }
                    prop_assert!(open[a as usize] <= max_open);
                    prop_assert_eq!(t.open_count(k), open[a as usize]);
                }
                Op::Close(a, dt) => {
                    now += u64::from(dt);
                    if open[a as usize] > 0 {
                        let k = t.key(IpAddr::V4(Ipv4Addr::new(10, 0, 0, a)));
                        t.close(k, now);
                        open[a as usize] -= 1;
                        prop_assert_eq!(t.open_count(k), open[a as usize]);
                    }
                }
            }
        }
        // The rate holds for addresses never swept while refilling (with a
        // table that fits all eight).
        if max_tracked >= 8 {
            for times in &admitted {
                for (i, &start) in times.iter().enumerate() {
                    let within = times[i..].iter().filter(|&&t| t - start <= 1000).count();
                    prop_assert!(within as u64 <= u64::from(burst) + u64::from(per_second));
                }
            }
        }
        let held = open.iter().filter(|&&n| n > 0).count();
        prop_assert!(t.len() <= held.max(max_tracked) * 2 + 1);
    }
}
