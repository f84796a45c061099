//! What one listening server counts for `serverStats()`: connections taken
//! from the kernel, and accept errors. Counted where `accept4` is called
//! ([`Acceptor::accept`]), in both placements, with relaxed atomics: an
//! increment per connection, no lock, and read only when JavaScript asks.
//! Refusals are admission's counts ([`crate::admission::Admission::counts`]);
//! the kernel's own accept queue is read on demand
//! ([`crate::socket::accept_queue`]), and so is the count of handshakes it
//! dropped at the socket ([`crate::socket::listen_drops`]), relative to
//! what it was when this acceptor began.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{accept_one, Accepted, Acceptor};

/// The counters of one acceptor.
#[derive(Default)]
pub struct Counters {
    /// Connections `accept4` returned (refused ones included).
    accepted: AtomicU64,
    /// `accept4` failures other than "nothing waiting", a peer gone or a
    /// signal: out of descriptors (EMFILE, ENFILE) and anything else.
    errors: AtomicU64,
    /// Of `errors`, those for lack of descriptors.
    emfile: AtomicU64,
    /// The socket's drop count when this acceptor began (a socket handed
    /// over by another process brings its own), and when an overflow was
    /// last reported: the kernel's counter is a wrapping u32.
    drops_base: u32,
    drops_told: AtomicU32,
}

/// A snapshot of [`Counters`].
pub struct Snapshot {
    pub accepted: u64,
    pub errors: u64,
    pub emfile: u64,
}

impl Counters {
    /// Counters for a socket whose drop count is `drops` now.
    pub fn new(drops: u32) -> Self {
        Counters {
            drops_base: drops,
            drops_told: AtomicU32::new(drops),
            ..Counters::default()
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            accepted: self.accepted.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            emfile: self.emfile.load(Ordering::Relaxed),
        }
    }
}

impl Acceptor {
    /// One `accept4` on `fd` (the listening socket, locked by the caller),
    /// counted.
    pub fn accept(&self, fd: RawFd) -> Accepted {
        let accepted = accept_one(fd);
        let counters = &self.counters;
        match &accepted {
            Accepted::Conn(_) => {
                counters.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Accepted::Shed | Accepted::Exhausted => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                counters.emfile.fetch_add(1, Ordering::Relaxed);
            }
            Accepted::Error(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            Accepted::WouldBlock | Accepted::Skipped => {}
        }
        accepted
    }

    /// What this acceptor counted.
    pub fn counts(&self) -> Snapshot {
        self.counters.snapshot()
    }

    /// Handshakes the kernel dropped at the listening socket `fd` since this
    /// acceptor began; None where the kernel cannot say.
    pub fn drops(&self, fd: RawFd) -> Option<u32> {
        crate::socket::listen_drops(fd).map(|now| now.wrapping_sub(self.counters.drops_base))
    }

    /// Handshakes dropped since the last call (or since this acceptor
    /// began), when there are any: an overflow to report, once.
    pub fn new_drops(&self, fd: RawFd) -> Option<u32> {
        let now = crate::socket::listen_drops(fd)?;
        let told = self.counters.drops_told.swap(now, Ordering::Relaxed);
        let new = now.wrapping_sub(told);
        (new > 0).then_some(new)
    }
}
