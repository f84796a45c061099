//! Load-aware accepting (`pauseAcceptAfter`, `shedAbove`): when the event
//! loop leaves a batch of connections untaken for too long, the accept loop
//! stops taking connections from the kernel, so they wait in its accept
//! queue — or go to another process or thread sharing the port — instead of
//! piling up as descriptors in a process that cannot serve them. While
//! paused, connections beyond `shed_above` in the kernel's queue are
//! accepted and reset at once, so that clients and load balancers retry
//! elsewhere rather than wait.
//!
//! Only the runtime placement can do this: the accept thread keeps running
//! while the event loop is busy. (On the event loop nothing is accepted
//! while it is busy anyway; the connections wait in the kernel.)
//!
//! An overflow is the kernel's own count of handshakes dropped at the
//! socket rising ([`Acceptor::new_drops`]), read at each look while paused;
//! JavaScript reads it too, when it takes a batch, for every server.
//!
//! Each change is recorded as an event (bounded) for JavaScript, which
//! publishes it on `diagnostics_channel` when it next takes a batch — the
//! event loop cannot hear of anything sooner, since it is what is busy.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{accept_one, Accepted, Acceptor, Queue};

/// Events kept for JavaScript at most; older ones are dropped.
const MAX_EVENTS: usize = 64;

/// How often a paused accept loop looks again (whether the event loop has
/// taken its batch, and what to shed) at most.
const CHECK_MAX: Duration = Duration::from_millis(10);

/// `pauseAcceptAfter` / `shedAbove`, normalised by lib/options.js.
#[napi_derive::napi(object)]
pub struct OverloadOptions {
    /// Pause once a batch has waited this long for the event loop.
    pub pause_after_ms: u32,
    /// While paused, reset what the kernel queue holds beyond this many.
    pub shed_above: Option<u32>,
}

/// What changed, for `diagnostics_channel`.
pub struct LoadEvent {
    /// `"pause"`, `"resume"` or `"overflow"`.
    pub kind: &'static str,
    /// The kernel queue's length and limit when it happened.
    pub queue: Option<(u32, u32)>,
    /// Connections shed in the pause that ended (`"resume"`).
    pub shed: u64,
    /// How long the pause that ended lasted, in milliseconds (`"resume"`).
    pub paused_ms: u64,
    /// Handshakes the kernel dropped at the socket: since the last report
    /// (`"overflow"`), or during the pause that ended (`"resume"`).
    pub drops: u64,
}

#[derive(Default)]
struct Pause {
    since: Option<Instant>,
    shed: u64,
    /// Handshakes the kernel dropped during this pause.
    drops: u64,
    /// An overflow was reported during this pause (one event each; the
    /// rest of its drops go with the resume event).
    overflowed: bool,
    events: VecDeque<LoadEvent>,
}

/// One server's load-aware accepting: its policy, its state and counts.
pub struct Overload {
    pause_after: Duration,
    shed_above: Option<u32>,
    pause: Mutex<Pause>,
    shed: AtomicU64,
    pauses: AtomicU64,
    paused_ms: AtomicU64,
}

/// A snapshot of what load-aware accepting counted.
pub struct OverloadCounts {
    pub paused: bool,
    pub pauses: u64,
    pub paused_ms: u64,
    pub shed: u64,
}

impl Overload {
    pub fn new(options: &OverloadOptions) -> Self {
        Overload {
            pause_after: Duration::from_millis(u64::from(options.pause_after_ms.max(1))),
            shed_above: options.shed_above,
            pause: Mutex::new(Pause::default()),
            shed: AtomicU64::new(0),
            pauses: AtomicU64::new(0),
            paused_ms: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pause> {
        self.pause.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long a paused loop sleeps before it looks again.
    pub fn check_interval(&self) -> Duration {
        self.pause_after.min(CHECK_MAX)
    }

    fn push(pause: &mut Pause, event: LoadEvent) {
        if pause.events.len() >= MAX_EVENTS {
            pause.events.pop_front();
        }
        pause.events.push_back(event);
    }

    pub fn take_events(&self) -> Vec<LoadEvent> {
        self.lock().events.drain(..).collect()
    }

    pub fn counts(&self) -> OverloadCounts {
        let pause = self.lock();
        let current = pause.since.map_or(0, |since| millis(since.elapsed()));
        OverloadCounts {
            paused: pause.since.is_some(),
            pauses: self.pauses.load(Ordering::Relaxed),
            paused_ms: self.paused_ms.load(Ordering::Relaxed) + current,
            shed: self.shed.load(Ordering::Relaxed),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What an accept round should do, by [`Acceptor::load_check`].
pub enum Load {
    /// Accept as usual.
    Accept,
    /// Paused: accept nothing, look again after this long.
    Paused(Duration),
}

impl Acceptor {
    /// Looks, at the start of a runtime accept round with the state locked
    /// (`queue`), whether the event loop is behind: starts or ends a pause,
    /// and sheds the kernel queue's excess while paused. Returns whether the
    /// round should accept, and whether JavaScript has events to be told.
    pub fn load_check(&self, queue: &Queue, fd: RawFd) -> (Load, bool) {
        let Some(overload) = &self.overload else {
            return (Load::Accept, false);
        };
        let behind = queue
            .untaken_since()
            .is_some_and(|since| since.elapsed() >= overload.pause_after);
        let mut pause = overload.lock();
        if !behind {
            let Some(since) = pause.since.take() else {
                return (Load::Accept, false);
            };
            let paused_ms = millis(since.elapsed());
            overload.paused_ms.fetch_add(paused_ms, Ordering::Relaxed);
            let event = LoadEvent {
                kind: "resume",
                queue: crate::socket::accept_queue(fd),
                shed: std::mem::take(&mut pause.shed),
                paused_ms,
                drops: std::mem::take(&mut pause.drops),
            };
            pause.overflowed = false;
            Overload::push(&mut pause, event);
            return (Load::Accept, true);
        }
        let mut news = false;
        // The kernel's queue (TCP on Linux; None elsewhere: nothing to shed).
        let queue = crate::socket::accept_queue(fd);
        if pause.since.is_none() {
            pause.since = Some(Instant::now());
            overload.pauses.fetch_add(1, Ordering::Relaxed);
            Overload::push(
                &mut pause,
                LoadEvent {
                    kind: "pause",
                    queue,
                    shed: 0,
                    paused_ms: 0,
                    drops: 0,
                },
            );
            news = true;
        }
        if let Some(dropped) = self.new_drops(fd) {
            pause.drops += u64::from(dropped);
            if !pause.overflowed {
                pause.overflowed = true;
                Overload::push(
                    &mut pause,
                    LoadEvent {
                        kind: "overflow",
                        queue,
                        shed: 0,
                        paused_ms: 0,
                        drops: u64::from(dropped),
                    },
                );
                news = true;
            }
        }
        if let (Some(bound), Some((length, _))) = (overload.shed_above, queue) {
            let shed = shed_excess(fd, length.saturating_sub(bound));
            pause.shed += shed;
            overload.shed.fetch_add(shed, Ordering::Relaxed);
        }
        (Load::Paused(overload.check_interval()), news)
    }

    /// Load-aware accepting's counts, when the server has it.
    pub fn overload_counts(&self) -> Option<OverloadCounts> {
        self.overload.as_ref().map(Overload::counts)
    }

    /// Load events not yet told to JavaScript.
    pub fn take_load_events(&self) -> Vec<LoadEvent> {
        self.overload
            .as_ref()
            .map_or_else(Vec::new, Overload::take_events)
    }
}

/// Accepts up to `excess` connections from the kernel queue of `fd` and
/// resets each at once (SO_LINGER 0: an RST, no TIME_WAIT), returning how
/// many it shed. Nothing of them reaches JavaScript or admission.
fn shed_excess(fd: RawFd, excess: u32) -> u64 {
    let mut shed = 0;
    for _ in 0..excess {
        match accept_one(fd) {
            Accepted::Conn(conn) => {
                let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
                drop(conn);
                shed += 1;
            }
            Accepted::Skipped => {}
            _ => break,
        }
    }
    shed
}
