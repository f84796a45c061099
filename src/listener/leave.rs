//! A `reusePort` server that closes without handing its socket over leaves
//! its SO_REUSEPORT group. Linux resets every connection still waiting in
//! the accept queue of a listener that closes, unless
//! `net.ipv4.tcp_migrate_req=1` has the kernel move them to another
//! listener of the group (Linux 5.14+). Processes overlapping a restart
//! with `reusePort` would lose those connections at each restart, so
//! without migration the closing server first takes them all and hands
//! them to JavaScript as ordinary connections, then closes (docs/handover.md).

use super::Listener;
use crate::socket;

impl Listener {
    /// Closes the listening socket of a server that bound its own
    /// SO_REUSEPORT socket, keeping what it accepted for JavaScript: where
    /// the kernel would reset its queue, after taking every connection
    /// waiting there; where `tcp_migrate_req` moves them to another member,
    /// at once. Returns how many connections wait for `take()` then (the
    /// listener itself stays until `close()`): those, and those the runtime
    /// placement had accepted before (which no kernel can migrate). Returns
    /// -1, having done nothing, where `close()` loses nothing: no
    /// `reusePort`, a socket shared across threads or handed over to a
    /// successor (which accepts from that queue now), or not listening.
    /// `always`: drain any listener's socket, `reusePort` or not — an
    /// address of a server on several addresses that its successor did not
    /// take closes with the server's hand-over, and its queue must not be
    /// reset then (docs/handover.md).
    pub fn close_draining(&mut self, always: bool) -> i32 {
        if !(self.reuse_port || always) || self.share.is_some() {
            return -1;
        }
        let Some(acceptor) = &self.acceptor else {
            return -1;
        };
        if acceptor.lock().is_stopped() {
            return -1;
        }
        // The poll handle leaves libuv's epoll before the socket closes.
        if let Some(poll) = &self.loop_poll {
            poll.close();
        }
        // Only a SO_REUSEPORT group has another listener to move the queue to.
        let drain = !self.reuse_port || !socket::migrates_accept_queue();
        i32::try_from(acceptor.drain_and_close(drain)).unwrap_or(i32::MAX)
    }
}
