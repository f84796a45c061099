//! `serverStats()`: what a listening server's accept loop and admission
//! counted, and its kernel accept queue, in one cheap call (a lock-free read
//! of a few counters, one small lock for admission's counts and one
//! getsockopt), so that it can be polled every second.

use std::collections::HashMap;

use super::Listener;
use crate::acceptor::overload::{LoadEvent, Overload, OverloadOptions};

/// One server's figures, as `serverStats()` builds its result from them.
#[napi_derive::napi(object)]
pub struct ServerStatsInfo {
    /// Connections waiting in the kernel's accept queue (TCP on Linux).
    pub queue_length: Option<u32>,
    /// How many the queue holds at most: the backlog as the kernel applied
    /// it (capped by `net.core.somaxconn`).
    pub queue_limit: Option<u32>,
    /// Handshakes the kernel dropped at the socket since it listened here
    /// (mostly a full queue; Linux).
    pub queue_drops: Option<u32>,
    /// Connections taken from the kernel, refused ones included.
    pub accepted: f64,
    /// Connections refused in Rust, by code (`ERR_PEER_LIMIT`, ...).
    pub rejected: HashMap<String, u32>,
    /// `accept4` failures (out of descriptors, and any other).
    pub accept_errors: f64,
    /// Of those, for lack of descriptors (EMFILE, ENFILE).
    pub emfile: f64,
    /// Accepting is paused now because the event loop is behind.
    pub paused: bool,
    /// How many times it paused, and for how long in all (milliseconds).
    pub pauses: f64,
    pub paused_ms: f64,
    /// Connections reset while paused (`shedAbove`).
    pub shed: f64,
}

impl Listener {
    /// The figures of a server that listens with a socket of its own; None
    /// before listen(), after close(), and for a member of a group sharing a
    /// socket across threads (its group accepts for it: `threadShareStats()`).
    pub fn server_stats(&self) -> Option<ServerStatsInfo> {
        if self.share.is_some() {
            return None;
        }
        let acceptor = self.acceptor.as_ref()?;
        let (queue, drops) = acceptor
            .with_listener(|s| {
                let fd = std::os::fd::AsRawFd::as_raw_fd(s);
                (crate::socket::accept_queue(fd), acceptor.drops(fd))
            })
            .unwrap_or((None, None));
        let counts = acceptor.counts();
        let load = acceptor.overload_counts();
        let rejected = self
            .admission
            .as_ref()
            .map(|a| a.counts())
            .unwrap_or_default()
            .into_iter()
            .filter(|(code, _)| code.starts_with("ERR_"))
            .collect();
        Some(ServerStatsInfo {
            queue_length: queue.map(|q| q.0),
            queue_limit: queue.map(|q| q.1),
            queue_drops: drops,
            accepted: counts.accepted as f64,
            rejected,
            accept_errors: counts.errors as f64,
            emfile: counts.emfile as f64,
            paused: load.as_ref().is_some_and(|l| l.paused),
            pauses: load.as_ref().map_or(0.0, |l| l.pauses as f64),
            paused_ms: load.as_ref().map_or(0.0, |l| l.paused_ms as f64),
            shed: load.as_ref().map_or(0.0, |l| l.shed as f64),
        })
    }
}

/// A change in load-aware accepting, for `diagnostics_channel`.
#[napi_derive::napi(object)]
pub struct LoadEventInfo {
    /// `"pause"`, `"resume"` or `"overflow"`.
    pub kind: String,
    pub queue_length: Option<u32>,
    pub queue_limit: Option<u32>,
    /// Connections shed during the pause that ended (`"resume"`).
    pub shed: f64,
    /// How long that pause lasted, in milliseconds (`"resume"`).
    pub paused_ms: f64,
    /// Handshakes the kernel dropped: since the last report (`"overflow"`),
    /// or during the pause that ended (`"resume"`).
    pub drops: f64,
}

impl LoadEventInfo {
    fn from_event(e: LoadEvent) -> Self {
        LoadEventInfo {
            kind: e.kind.to_string(),
            queue_length: e.queue.map(|q| q.0),
            queue_limit: e.queue.map(|q| q.1),
            shed: e.shed as f64,
            paused_ms: e.paused_ms as f64,
            drops: e.drops as f64,
        }
    }
}

impl Listener {
    /// Sets load-aware accepting (before listen()).
    pub fn configure_overload(&mut self, options: &OverloadOptions) {
        self.overload = Some(Overload::new(options));
    }

    /// Load-aware accepting's changes not yet told to JavaScript.
    pub fn take_load_events(&self) -> Vec<LoadEventInfo> {
        let Some(acceptor) = &self.acceptor else {
            return Vec::new();
        };
        acceptor
            .take_load_events()
            .into_iter()
            .map(LoadEventInfo::from_event)
            .collect()
    }

    /// An overflow not yet reported: the kernel dropped handshakes at the
    /// socket since the last report (None when it did not, or cannot say,
    /// and for a member of a group sharing a socket across threads).
    pub fn overflow(&self) -> Option<LoadEventInfo> {
        if self.share.is_some() {
            return None;
        }
        let acceptor = self.acceptor.as_ref()?;
        acceptor
            .with_listener(|s| {
                let fd = std::os::fd::AsRawFd::as_raw_fd(s);
                let drops = acceptor.new_drops(fd)?;
                Some(LoadEvent {
                    kind: "overflow",
                    queue: crate::socket::accept_queue(fd),
                    shed: 0,
                    paused_ms: 0,
                    drops: u64::from(drops),
                })
            })
            .flatten()
            .map(LoadEventInfo::from_event)
    }
}
