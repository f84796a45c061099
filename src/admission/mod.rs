//! Admission: what happens to an accepted connection before JavaScript sees
//! it — the `blockList` and the PROXY protocol, decided in Rust so that a
//! refused connection costs the event loop nothing.
//!
//! The decisions themselves are sans-IO code in the `rust-net-admission`
//! crate (the PROXY parser, Node's BlockList address rules, the trusted-source
//! policy); this module applies them to descriptors for both placements:
//! - [`Admission::on_accept`] runs right after `accept4`, on whichever thread
//!   accepts: a blocked peer is closed there; a connection that needs no
//!   header is delivered; one that does goes to [`header::read`];
//! - [`header::read`] reads the header on the tokio runtime (never on the
//!   event loop), bounded in size and time, consumes exactly its bytes, and
//!   delivers the connection with what the header said ([`Proxied`]).
//!
//! - [`peers::Peers`] counts each client address's open connections and
//!   its rate of new ones (`maxConnectionsPerAddress`,
//!   `acceptRatePerAddress`): checked once the client's address is known —
//!   at accept, or after the PROXY header named it.
//!
//! Every refusal is counted by reason; when the server asks for it, it is
//! also queued (bounded) for a `'connectionRejected'` event.

pub mod header;
pub mod info;
pub mod peers;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use rust_net_admission::cidr::RuleSet;
use rust_net_admission::policy::{Decision, Policy, Reason};
use rust_net_admission::proxy::Header;

/// Undelivered rejection reports kept at most; older ones are dropped (and
/// still counted), so a flood of bad peers cannot grow memory.
const MAX_REPORTS: usize = 256;

/// The PROXY protocol settings of one server.
pub struct ProxyConfig {
    /// The peers allowed to send a header.
    pub trusted: RuleSet,
    pub policy: Policy,
    /// How long a trusted peer has to complete its header.
    pub timeout: Duration,
}

/// A refused connection, for the `'connectionRejected'` event.
pub struct Rejection {
    pub code: &'static str,
    pub detail: Option<&'static str>,
    pub peer: Option<SocketAddr>,
}

/// What a PROXY header said about a connection, delivered beside it.
pub struct Proxied {
    pub header: Header,
    /// The real peer and local addresses, for LOCAL / UNKNOWN headers.
    pub real_peer: Option<SocketAddr>,
    pub real_local: Option<SocketAddr>,
}

/// What the accept loop does next with a connection.
pub enum Next {
    Deliver(OwnedFd),
    /// Closed here (blocked, or an untrusted peer on a proxies-only port).
    Refused,
    /// A trusted peer: read its header on the runtime.
    ReadHeader(OwnedFd, Option<SocketAddr>),
}

/// One server's admission settings and its counts.
#[derive(Default)]
pub struct Admission {
    /// The blockList's rules, replaced whenever the JavaScript BlockList
    /// changes.
    blocked: RwLock<Option<RuleSet>>,
    pub proxy: Option<ProxyConfig>,
    /// Queue refusals for JavaScript (the server listens for them).
    pub report: bool,
    /// Per-client limits, when the server has any.
    pub peers: Option<peers::Peers>,
    counts: Mutex<HashMap<&'static str, u64>>,
    reports: Mutex<VecDeque<Rejection>>,
}

impl Admission {
    pub fn new(blocked: Option<RuleSet>, proxy: Option<ProxyConfig>, report: bool) -> Self {
        Admission {
            blocked: RwLock::new(blocked),
            proxy,
            report,
            ..Default::default()
        }
    }

    /// The same settings, with per-client limits.
    pub fn limiting(mut self, peers: Option<peers::Peers>) -> Self {
        self.peers = peers;
        self
    }

    /// Applies the per-client limits to a connection that is otherwise
    /// admitted, from `client` (the PROXY header's source, else the real
    /// peer): gives it back, counted open, or counts and reports the refusal
    /// and closes it (`Err`: whether a report is waiting). Unix-socket
    /// peers have no address and no limits.
    pub fn limit(&self, conn: OwnedFd, client: Option<SocketAddr>) -> Result<OwnedFd, bool> {
        let (Some(peers), Some(client)) = (&self.peers, client) else {
            return Ok(conn);
        };
        match peers.open(conn.as_raw_fd(), client.ip()) {
            Ok(()) => Ok(conn),
            Err(reason) => {
                drop(conn);
                Err(self.refuse(reason, Some(client)))
            }
        }
    }

    /// Descriptor `fd`, counted by [`Admission::limit`], is closing.
    pub fn peer_closed(&self, fd: RawFd) {
        if let Some(peers) = &self.peers {
            peers.closed(fd);
        }
    }

    /// Replaces the block list (the JavaScript BlockList changed).
    pub fn set_blocked(&self, rules: Option<RuleSet>) {
        *self.blocked.write().unwrap_or_else(|p| p.into_inner()) = rules;
    }

    /// Step one, right after accept4.
    pub fn on_accept(&self, conn: OwnedFd) -> Next {
        let peer = peer_addr(&conn);
        let blocked = self.blocked.read().unwrap_or_else(|p| p.into_inner());
        if let (Some(rules), Some(peer)) = (blocked.as_ref(), peer) {
            if rules.contains(peer.ip()) {
                drop(blocked);
                self.refuse(Reason::Blocked, Some(peer));
                return Next::Refused;
            }
        }
        drop(blocked);
        let Some(proxy) = &self.proxy else {
            return self.limited(conn, peer);
        };
        // A Unix-socket peer is a process of this machine: as trusted as the
        // socket's file permissions make it (HAProxy's `send-proxy` to a
        // socket path).
        let trusted = peer.is_none_or(|peer| proxy.trusted.contains(peer.ip()));
        match proxy.policy.on_accept(trusted) {
            Decision::Accept(_) => self.limited(conn, peer),
            Decision::Reject(reason) => {
                self.refuse(reason, peer);
                Next::Refused
            }
            Decision::NeedMore { .. } => Next::ReadHeader(conn, peer),
        }
    }

    fn limited(&self, conn: OwnedFd, peer: Option<SocketAddr>) -> Next {
        match self.limit(conn, peer) {
            Ok(conn) => Next::Deliver(conn),
            Err(_) => Next::Refused,
        }
    }

    /// Counts a refusal and, when asked to, queues it for JavaScript.
    /// Returns whether JavaScript has something new to be told.
    pub fn refuse(&self, reason: Reason, peer: Option<SocketAddr>) -> bool {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason.code())
            .or_insert(0) += 1;
        if !self.report {
            return false;
        }
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        if reports.len() >= MAX_REPORTS {
            reports.pop_front();
        }
        reports.push_back(Rejection {
            code: reason.code(),
            detail: reason.detail(),
            peer,
        });
        true
    }

    /// Counts a connection a PROXY header was read for.
    pub fn count(&self, what: &'static str) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(what)
            .or_insert(0) += 1;
    }

    pub fn has_reports(&self) -> bool {
        self.report
            && !self
                .reports
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }

    pub fn take_reports(&self) -> Vec<Rejection> {
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect()
    }

    pub fn counts(&self) -> HashMap<String, u32> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .iter()
            .map(|(k, v)| ((*k).to_string(), u32::try_from(*v).unwrap_or(u32::MAX)))
            .collect()
    }
}

/// The peer's address (None for Unix sockets or a peer already gone).
pub fn peer_addr(fd: &impl AsFd) -> Option<SocketAddr> {
    socket2::SockRef::from(fd).peer_addr().ok()?.as_socket()
}

/// The connection's local address.
pub fn local_addr(fd: &impl AsFd) -> Option<SocketAddr> {
    socket2::SockRef::from(fd).local_addr().ok()?.as_socket()
}
