//! What an [`Acceptor`](super::Acceptor)'s mutex guards: the listening
//! socket and its [`Queue`]. The fields are private so that the claim
//! protocol (see the parent module) is kept here, in one place: a
//! descriptor enters `ready` only through [`Queue::enqueue`] or admission
//! ([`super::Acceptor::admit`]), moves to `in_flight` only with
//! [`Queue::take_batch`], and leaves Rust only in [`Queue::reconcile`]
//! (claimed by JavaScript), [`Queue::release`] / shutdown (closed) or
//! [`Queue::withdraw`] (handed to another member of a shared group).

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use super::{Listening, Route};
use crate::admission::Proxied;

/// The listening socket and the queue of what it accepted. Derefs to the
/// [`Queue`]: the socket is reached through [`State::listening`] or, for an
/// accept loop that keeps it borrowed while it queues, [`State::parts`].
pub struct State {
    /// The listening socket; `None` once closed (or for a queue-only member
    /// of a shared group).
    listener: Option<Listening>,
    queue: Queue,
    /// Accepting has stopped for good though the socket is still open: it
    /// was handed over to another process (see [`crate::handover`]), which
    /// accepts on it now; what was accepted before still goes to JavaScript.
    stopped: bool,
}

/// A descriptor taken back from a queue, with what its PROXY header said.
pub type Withdrawn = (OwnedFd, Option<Box<Proxied>>);

/// A shared group's holding queue, as its dispatch sees it: the descriptors
/// in order of acceptance, and what the PROXY headers of some said.
pub struct Held<'a> {
    pub fds: &'a mut Vec<OwnedFd>,
    pub proxied: &'a mut HashMap<RawFd, Box<Proxied>>,
}

/// Everything but the socket, so that an accept loop can borrow the socket
/// and fill the queue at once.
pub struct Queue {
    /// Accepted descriptors JavaScript has not taken yet. Rust owns them.
    ready: Vec<OwnedFd>,
    /// The batch JavaScript is wrapping, still owned by Rust until
    /// reconciled; `None` where JavaScript closed one through `release`.
    in_flight: Vec<Option<OwnedFd>>,
    /// An accept error JavaScript has not been told about (a libuv errno).
    error: i32,
    /// A wake-up is on its way to JavaScript; do not send another.
    notified: bool,
    /// When that wake-up was sent: how long JavaScript has left its batch
    /// waiting (load-aware accepting, [`super::overload`]).
    notified_at: Option<Instant>,
    /// The queue is full: accepting waits for JavaScript to drain it.
    throttled: bool,
    /// The runtime placement's task waker, so `close()` and a drain can
    /// wake it.
    waker: Option<Waker>,
    /// The last round ended once it had accepted every connection TCP_INFO
    /// counted, without counting again, so a count of 0 now is trustworthy.
    counted_out: bool,
    /// How many undelivered descriptors may pile up before accepting pauses;
    /// beyond it, connections wait in the kernel backlog as they do in Node.
    limit: usize,
    /// What the PROXY header said, for the descriptors in `ready` that had
    /// one (keyed by descriptor: Rust owns them, so the numbers are unique).
    proxied: HashMap<RawFd, Box<Proxied>>,
    /// The same for `in_flight`, in batch order.
    in_flight_proxied: Vec<Option<Box<Proxied>>>,
    /// The last accept round closed a connection admission refused: a flood
    /// of blocked peers must not wake JavaScript before each round.
    refused_last_round: bool,
    /// Where accepted descriptors go instead of `ready`: the members of a
    /// listener shared across threads (see [`crate::share`]); None for an
    /// ordinary listener.
    route: Option<Arc<dyn Route>>,
}

impl State {
    pub(super) fn new(listener: Option<Listening>, backlog: i32) -> Self {
        State {
            listener,
            queue: Queue {
                ready: Vec::new(),
                in_flight: Vec::new(),
                error: 0,
                notified: false,
                notified_at: None,
                throttled: false,
                waker: None,
                counted_out: false,
                limit: usize::try_from(backlog).unwrap_or(0).max(64),
                proxied: HashMap::new(),
                in_flight_proxied: Vec::new(),
                refused_last_round: false,
                route: None,
            },
            stopped: false,
        }
    }

    /// Whether accepting has stopped for good (the socket was handed over).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Stops accepting for good; the queue stays for JavaScript.
    pub(super) fn stop(&mut self) {
        self.stopped = true;
    }

    /// The listening socket while it is open.
    pub fn listening(&self) -> Option<&Listening> {
        self.listener.as_ref()
    }

    /// The socket and the queue, borrowed apart.
    pub fn parts(&mut self) -> (Option<&Listening>, &mut Queue) {
        (self.listener.as_ref(), &mut self.queue)
    }

    /// Takes the socket out for closing (shutdown).
    pub(super) fn take_listener(&mut self) -> Option<Listening> {
        self.listener.take()
    }
}

impl Deref for State {
    type Target = Queue;
    fn deref(&self) -> &Queue {
        &self.queue
    }
}

impl DerefMut for State {
    fn deref_mut(&mut self) -> &mut Queue {
        &mut self.queue
    }
}

impl Queue {
    /// Puts a descriptor, with what its PROXY header said, at the back of
    /// this queue (a shared group's member queue, filled by the group's
    /// dispatch).
    pub fn enqueue(&mut self, conn: OwnedFd, proxied: Option<Box<Proxied>>) {
        self.queue_proxied(conn, proxied);
    }

    /// Queues a newly accepted descriptor (with what its PROXY header said)
    /// for JavaScript, or hands it to the route of a shared listener: the
    /// one place accept loops deliver to, so that a shared listener needs no
    /// accept loop of its own.
    pub(super) fn push_accepted(&mut self, conn: OwnedFd, proxied: Option<Box<Proxied>>) {
        match &self.route {
            Some(route) => route.route(
                Held {
                    fds: &mut self.ready,
                    proxied: &mut self.proxied,
                },
                &mut self.error,
                conn,
                proxied,
            ),
            None => self.queue_proxied(conn, proxied),
        }
    }

    /// Queues a connection with what its PROXY header said.
    fn queue_proxied(&mut self, conn: OwnedFd, proxied: Option<Box<Proxied>>) {
        if let Some(proxied) = proxied {
            self.proxied.insert(conn.as_raw_fd(), proxied);
        }
        self.ready.push(conn);
    }

    /// Whether the queue is at its limit (accepting must pause).
    pub fn is_full(&self) -> bool {
        self.ready.len() >= self.limit
    }

    /// Accepting paused on a full queue; `take` (or a shared group's
    /// refill) lets it resume.
    pub fn throttle(&mut self) {
        self.throttled = true;
    }

    pub fn is_throttled(&self) -> bool {
        self.throttled
    }

    /// Lets accepting resume (waking the runtime task) once the queue has
    /// room again after a throttle.
    pub fn resume_if_room(&mut self) {
        if self.throttled && !self.is_full() {
            self.throttled = false;
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }

    /// Records an accept error for JavaScript (a libuv errno).
    pub fn set_error(&mut self, code: i32) {
        self.error = code;
    }

    /// Whether JavaScript has something to take: descriptors, an error, or
    /// (`reports`) refusals to be told of.
    pub fn has_work(&self, reports: bool) -> bool {
        !self.ready.is_empty() || self.error != 0 || reports
    }

    /// Marks a wake-up as on its way; true when the caller must send it
    /// (none was on its way already).
    pub fn mark_notified(&mut self) -> bool {
        let send = !std::mem::replace(&mut self.notified, true);
        if send {
            self.notified_at = Some(Instant::now());
        }
        send
    }

    /// Since when JavaScript has been told of a batch it has not taken.
    pub fn untaken_since(&self) -> Option<Instant> {
        self.notified_at.filter(|_| self.notified)
    }

    /// Reads and clears "the last round accepted all it counted".
    pub fn take_counted_out(&mut self) -> bool {
        std::mem::take(&mut self.counted_out)
    }

    pub fn set_counted_out(&mut self) {
        self.counted_out = true;
    }

    pub fn counted_out(&self) -> bool {
        self.counted_out
    }

    pub fn refused_last_round(&self) -> bool {
        self.refused_last_round
    }

    pub fn set_refused_last_round(&mut self, refused: bool) {
        self.refused_last_round = refused;
    }

    /// Keeps the runtime task's waker for `close()` and drains.
    pub fn register_waker(&mut self, waker: &Waker) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }

    pub(super) fn take_waker(&mut self) -> Option<Waker> {
        self.waker.take()
    }

    /// Sends what this queue accepts to `route` (a shared group's members).
    pub fn set_route(&mut self, route: Arc<dyn Route>) {
        self.route = Some(route);
    }

    /// For a shared group's dispatch: its holding queue and accept error,
    /// as [`Route::route`] gets them.
    pub fn with_held<R>(&mut self, f: impl FnOnce(Held<'_>, &mut i32) -> R) -> R {
        f(
            Held {
                fds: &mut self.ready,
                proxied: &mut self.proxied,
            },
            &mut self.error,
        )
    }

    /// How many descriptors JavaScript has been handed or will be and has
    /// not claimed, given how many of the batch it claimed.
    pub(super) fn waiting(&self, claimed: usize) -> usize {
        self.ready.len() + self.in_flight.len().saturating_sub(claimed)
    }

    /// Settles the previous batch: the first `claimed` descriptors are
    /// JavaScript's now; what it did not reach goes back to the front of
    /// the queue, with what their headers said.
    pub(super) fn reconcile(&mut self, claimed: usize) {
        let claimed = claimed.min(self.in_flight.len());
        for fd in self.in_flight.drain(..claimed).flatten() {
            // Owned by a Node handle now, which will close it (and may
            // reuse its number at once: its header info goes too).
            let _ = fd.into_raw_fd();
        }
        let rest_proxied: Vec<Option<Box<Proxied>>> =
            self.in_flight_proxied.drain(..).skip(claimed).collect();
        for (fd, proxied) in self.in_flight.iter().zip(rest_proxied) {
            if let (Some(fd), Some(proxied)) = (fd, proxied) {
                self.proxied.insert(fd.as_raw_fd(), proxied);
            }
        }
        let rest: Vec<OwnedFd> = self.in_flight.drain(..).flatten().collect();
        if !rest.is_empty() {
            self.ready.splice(0..0, rest);
        }
    }

    /// Moves the front of the queue to `in_flight`, writing `[error, fd,
    /// ...]` into `slots`, as many descriptors as fit; returns how many.
    /// The previous batch must be reconciled first. Reuses both vectors'
    /// memory, so a batch allocates nothing. Lets accepting resume if it had
    /// paused on a full queue.
    pub(super) fn take_batch(&mut self, slots: &mut [i32]) -> usize {
        debug_assert!(self.in_flight.is_empty(), "take_batch before reconcile");
        let Some((error, fds)) = slots.split_first_mut() else {
            return 0;
        };
        self.notified = false;
        self.notified_at = None;
        *error = std::mem::take(&mut self.error);
        let count = self.ready.len().min(fds.len());
        for (slot, fd) in fds.iter_mut().zip(&self.ready[..count]) {
            *slot = fd.as_raw_fd();
        }
        if !self.proxied.is_empty() {
            let proxied = &mut self.proxied;
            self.in_flight_proxied = self.ready[..count]
                .iter()
                .map(|fd| proxied.remove(&fd.as_raw_fd()))
                .collect();
        }
        self.in_flight.extend(self.ready.drain(..count).map(Some));
        self.resume_if_room();
        count
    }

    /// What the PROXY header said for each descriptor of the batch, in
    /// batch order.
    pub(super) fn in_flight_proxied(&self) -> &[Option<Box<Proxied>>] {
        &self.in_flight_proxied
    }

    /// Takes the in-flight descriptor at `index` out for closing.
    pub(super) fn release(&mut self, index: usize) -> Option<OwnedFd> {
        if let Some(proxied) = self.in_flight_proxied.get_mut(index) {
            *proxied = None;
        }
        self.in_flight.get_mut(index).and_then(Option::take)
    }

    /// Takes back every queued descriptor with what its PROXY header said
    /// (the batch must be reconciled first), without closing them.
    pub(super) fn withdraw(&mut self) -> Vec<Withdrawn> {
        let proxied = &mut self.proxied;
        std::mem::take(&mut self.ready)
            .into_iter()
            .map(|fd| {
                let header = proxied.remove(&fd.as_raw_fd());
                (fd, header)
            })
            .collect()
    }

    /// Forgets what the headers said, for shutdown.
    pub(super) fn clear_proxied(&mut self) {
        self.proxied.clear();
        self.in_flight_proxied.clear();
    }
}
