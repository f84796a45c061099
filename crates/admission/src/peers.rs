//! Per-client limits: how many connections one client address may hold open
//! (`maxConnectionsPerAddress`, nginx's `limit_conn`) and how fast it may open
//! new ones (`acceptRatePerAddress`, a token bucket as nginx's `limit_req`).
//!
//! Sans-IO like the rest of the crate: the caller passes the client's
//! address (the PROXY header's source when there is one) and the time, in
//! milliseconds from any fixed origin; nothing here reads a clock.
//!
//! Addresses are grouped before counting: IPv4 by a /32 by default, IPv6 by
//! a /64 (one subscriber's prefix: a client that owns a /64 could otherwise
//! take a fresh address for every connection). An IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`, what a dual-stack socket reports for an IPv4 peer)
//! counts as its IPv4 address.
//!
//! Memory is bounded. An address is tracked while it holds a connection open
//! or while its bucket is refilling; an entry that is neither (*idle*) is
//! forgotten — eagerly at close when no rate is set, else at the next sweep.
//! A sweep runs when a new address would push the table past its cap
//! ([`PeerLimits::max_tracked`]): it drops idle entries, then, if the table
//! is still full, entries whose bucket is still refilling (their address
//! starts again with a full burst: the cap errs on the side of admitting).
//! Entries with open connections are never dropped — there are at most as
//! many as the process has connections, which its descriptor limit bounds.
//! Each entry costs about 64 bytes (a 32-byte key and 24-byte counters in a
//! hash table).

use std::collections::HashMap;
use std::net::IpAddr;

/// How many addresses the table tracks at most, beyond those that hold
/// connections open (≈ 1 MiB at ≈ 64 bytes each).
pub const DEFAULT_MAX_TRACKED: usize = 16_384;

/// A token bucket: `rate` new connections a second on average, at most
/// `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second (> 0).
    pub per_second: f64,
    /// The bucket's size (≥ 1): how many connections an address that has
    /// been quiet may open at once.
    pub burst: u32,
}

/// The limits of one server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerLimits {
    /// At most this many open connections per address (`None`: no limit).
    pub max_open: Option<u32>,
    /// New connections per address over time (`None`: no limit).
    pub rate: Option<Rate>,
    /// Prefix length IPv4 addresses are grouped by (1..=32).
    pub ipv4_prefix: u8,
    /// Prefix length IPv6 addresses are grouped by (1..=128).
    pub ipv6_prefix: u8,
    /// The table's cap (see the module doc).
    pub max_tracked: usize,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            max_open: None,
            rate: None,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            max_tracked: DEFAULT_MAX_TRACKED,
        }
    }
}

/// An address group: the address masked to its prefix, and its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerKey {
    bits: u128,
    v6: bool,
}

/// Why a connection is over its address's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// `max_open` connections are open already (`ERR_PEER_LIMIT`).
    Limit,
    /// The address's bucket is empty (`ERR_PEER_RATE`).
    Rate,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    open: u32,
    /// Tokens left at `at_ms` (only meaningful with a rate).
    tokens: f64,
    at_ms: u64,
}

/// The per-address counts of one server.
#[derive(Debug)]
pub struct PeerTable {
    limits: PeerLimits,
    entries: HashMap<PeerKey, Entry>,
    /// The size at which the next new address sweeps the table.
    sweep_at: usize,
}

fn mask(bits: u128, width: u32, prefix: u8) -> u128 {
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        return 0;
    }
    let keep = u128::MAX << (width - prefix);
    bits & keep
}

impl PeerTable {
    pub fn new(limits: PeerLimits) -> Self {
        let limits = PeerLimits {
            ipv4_prefix: limits.ipv4_prefix.clamp(1, 32),
            ipv6_prefix: limits.ipv6_prefix.clamp(1, 128),
            max_tracked: limits.max_tracked.max(1),
            ..limits
        };
        PeerTable {
            limits,
            entries: HashMap::new(),
            sweep_at: limits.max_tracked,
        }
    }

    pub fn limits(&self) -> &PeerLimits {
        &self.limits
    }

    /// The group `ip` is counted in.
    pub fn key(&self, ip: IpAddr) -> PeerKey {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => PeerKey {
                bits: mask(u128::from(u32::from(v4)), 32, self.limits.ipv4_prefix),
                v6: false,
            },
            IpAddr::V6(v6) => PeerKey {
                bits: mask(u128::from(v6), 128, self.limits.ipv6_prefix),
                v6: true,
            },
        }
    }

    /// How many addresses are tracked now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Open connections counted for `key`.
    pub fn open_count(&self, key: PeerKey) -> u32 {
        self.entries.get(&key).map_or(0, |e| e.open)
    }

    /// A new connection from `key` at `now_ms`: counts it open and returns
    /// `Ok`, or leaves everything as it was and says which limit it is over.
    /// The connection limit is checked first, so a connection refused for
    /// it takes no token.
    pub fn open(&mut self, key: PeerKey, now_ms: u64) -> Result<(), Over> {
        let limits = self.limits;
        if !self.entries.contains_key(&key) && self.entries.len() >= self.sweep_at {
            self.sweep(now_ms);
        }
        let entry = self.entries.entry(key).or_insert(Entry {
            open: 0,
            tokens: limits.rate.map_or(0.0, |r| f64::from(r.burst)),
            at_ms: now_ms,
        });
        let result = Self::charge(entry, &limits, now_ms);
        if result.is_ok() {
            entry.open = entry.open.saturating_add(1);
        } else if entry.open == 0 && Self::is_idle(entry, &limits, now_ms) {
            // Only possible with limits that admit nothing (never built).
            self.entries.remove(&key);
        }
        result
    }

    fn charge(entry: &mut Entry, limits: &PeerLimits, now_ms: u64) -> Result<(), Over> {
        if limits.max_open.is_some_and(|max| entry.open >= max) {
            return Err(Over::Limit);
        }
        if let Some(rate) = limits.rate {
            Self::refill(entry, rate, now_ms);
            if entry.tokens < 1.0 {
                return Err(Over::Rate);
            }
            entry.tokens -= 1.0;
        }
        Ok(())
    }

    fn refill(entry: &mut Entry, rate: Rate, now_ms: u64) {
        // A clock that went back adds nothing (and takes nothing).
        let elapsed = now_ms.saturating_sub(entry.at_ms);
        let added = elapsed as f64 * rate.per_second / 1000.0;
        entry.tokens = (entry.tokens + added).min(f64::from(rate.burst));
        entry.at_ms = entry.at_ms.max(now_ms);
    }

    /// A connection counted by [`PeerTable::open`] closed.
    pub fn close(&mut self, key: PeerKey, now_ms: u64) {
        let limits = self.limits;
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 && Self::is_idle(entry, &limits, now_ms) {
                self.entries.remove(&key);
            }
        }
    }

    /// Whether an entry with no open connection can be forgotten without
    /// changing any decision: its bucket (if any) is full again.
    fn is_idle(entry: &mut Entry, limits: &PeerLimits, now_ms: u64) -> bool {
        match limits.rate {
            None => true,
            Some(rate) => {
                Self::refill(entry, rate, now_ms);
                entry.tokens >= f64::from(rate.burst)
            }
        }
    }

    /// Drops idle entries; if the table is still at its cap, drops every
    /// entry with no open connection. See the module doc.
    fn sweep(&mut self, now_ms: u64) {
        let limits = self.limits;
        self.entries
            .retain(|_, e| e.open > 0 || !Self::is_idle(e, &limits, now_ms));
        if self.entries.len() >= limits.max_tracked {
            self.entries.retain(|_, e| e.open > 0);
        }
        // What is left holds connections open: sweep again only once the
        // table has grown well past it, so that a table full of open
        // connections does not sweep on every new address.
        self.sweep_at = limits.max_tracked.max(self.entries.len().saturating_mul(2));
    }
}

impl From<Over> for crate::policy::Reason {
    fn from(over: Over) -> Self {
        match over {
            Over::Limit => crate::policy::Reason::PeerLimit,
            Over::Rate => crate::policy::Reason::PeerRate,
        }
    }
}

#[cfg(test)]
#[path = "peers_tests.rs"]
mod tests;
