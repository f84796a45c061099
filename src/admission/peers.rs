//! Per-client limits (`maxConnectionsPerAddress`, `acceptRatePerAddress`)
//! applied to descriptors: the counting is the sans-IO
//! [`rust_net_admission::peers::PeerTable`]; this module gives it the time
//! and remembers which client each admitted descriptor counts for, so that
//! its close can be counted.
//!
//! The close signal: a counted descriptor is JavaScript's once claimed, so
//! JavaScript reports its close (`listenerPeerClosed(fd)`, from the client
//! handle's `close()`, before libuv closes the descriptor — the number
//! cannot have been reused by then). Descriptors Rust closes itself (one
//! JavaScript could not wrap) are reported here. And should a close ever go
//! unreported, the kernel reusing the number for a new connection proves the
//! old one closed: [`Peers::open`] counts it closed then.
//!
//! Memory: the table's entries (see the crate's `peers` module: ≈ 64 bytes
//! per tracked address, at most `max_tracked` beyond those holding
//! connections) plus ≈ 40 bytes per open counted connection here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::time::Instant;

use napi_derive::napi;
use rust_net_admission::peers::{PeerKey, PeerLimits, PeerTable, Rate};
use rust_net_admission::policy::Reason;

/// `maxConnectionsPerAddress`, `acceptRatePerAddress` and the prefixes,
/// normalised by lib/options.js.
#[napi(object)]
pub struct PeerLimitOptions {
    pub max_connections: Option<u32>,
    /// Connections per second (> 0, finite).
    pub rate: Option<f64>,
    /// The bucket's size (≥ 1); with `rate`.
    pub burst: Option<u32>,
    /// 1..=32.
    pub ipv4_prefix: u32,
    /// 1..=128.
    pub ipv6_prefix: u32,
}

impl PeerLimitOptions {
    pub fn build(&self) -> Result<Peers, String> {
        let prefix = |value: u32, max: u8, name: &str| {
            u8::try_from(value)
                .ok()
                .filter(|p| (1..=max).contains(p))
                .ok_or_else(|| format!("{name} {value} is not from 1 to {max}"))
        };
        let rate = match (self.rate, self.burst) {
            (Some(per_second), Some(burst)) if per_second.is_finite() && per_second > 0.0 => {
                Some(Rate {
                    per_second,
                    burst: burst.max(1),
                })
            }
            (None, _) => None,
            _ => return Err("acceptRatePerAddress needs a positive rate and a burst".into()),
        };
        if self.max_connections == Some(0) {
            return Err("maxConnectionsPerAddress must be at least 1".into());
        }
        Ok(Peers::new(PeerLimits {
            max_open: self.max_connections,
            rate,
            ipv4_prefix: prefix(self.ipv4_prefix, 32, "perAddressIPv4Prefix")?,
            ipv6_prefix: prefix(self.ipv6_prefix, 128, "perAddressIPv6Prefix")?,
            ..PeerLimits::default()
        }))
    }
}

struct Counted {
    table: PeerTable,
    /// The client each counted, open descriptor counts for.
    by_fd: HashMap<RawFd, PeerKey>,
}

/// One server's per-client counts.
pub struct Peers {
    counted: Mutex<Counted>,
    /// The origin of the table's clock (monotonic).
    origin: Instant,
}

impl Peers {
    pub fn new(limits: PeerLimits) -> Self {
        Peers {
            counted: Mutex::new(Counted {
                table: PeerTable::new(limits),
                by_fd: HashMap::new(),
            }),
            origin: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counted> {
        self.counted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts descriptor `fd`, a connection from `ip`, open; or says which
    /// limit refuses it (nothing is counted then).
    pub fn open(&self, fd: RawFd, ip: IpAddr) -> Result<(), Reason> {
        let now = self.now_ms();
        let mut counted = self.lock();
        let Counted { table, by_fd } = &mut *counted;
        if let Some(stale) = by_fd.remove(&fd) {
            // The number was reused: that connection closed unreported.
            table.close(stale, now);
        }
        let key = table.key(ip);
        table.open(key, now).map_err(Reason::from)?;
        by_fd.insert(fd, key);
        Ok(())
    }

    /// Descriptor `fd` is closing (a no-op for one not counted).
    pub fn closed(&self, fd: RawFd) {
        let now = self.now_ms();
        let mut counted = self.lock();
        let Counted { table, by_fd } = &mut *counted;
        if let Some(key) = by_fd.remove(&fd) {
            table.close(key, now);
        }
    }

    /// Addresses tracked and connections counted open.
    pub fn sizes(&self) -> (usize, usize) {
        let counted = self.lock();
        (counted.table.len(), counted.by_fd.len())
    }
}
