//! The members of a shared listener, and which of them gets each accepted
//! descriptor.
//!
//! The group's accept loop (the ordinary runtime one, see
//! [`crate::placement::runtime_thread`]) delivers through [`Route`]: each
//! descriptor goes straight into one member's queue — the same queue, wake-up
//! and claim protocol as an unshared listener's, so every descriptor still
//! has exactly one owner: the group's holding queue, one member's queue or
//! batch, or a Node handle.
//!
//! The member chosen is the one whose event loop has the fewest connections
//! handed to it and not yet taken ([`Acceptor::waiting`]): a loop busy
//! running JavaScript does not take its queue, so its count grows and it is
//! passed over until it catches up. Ties go round-robin. Members that Node
//! would make drop the connection (`maxConnections` reached, counting the
//! ones on their way) come last: only when every member is full does one of
//! them get it, and Node drops it there as node:net would. Members whose
//! queue is at its limit get nothing; when every member's is, descriptors
//! wait in the group's holding queue and, once that is full too, in the
//! kernel backlog.
//!
//! Locks are always taken in this order: the group acceptor's state, then
//! [`Members`], then one member acceptor's state at a time.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::acceptor::{Acceptor, Held, Route, State, Withdrawn};
use crate::admission::Proxied;

/// Elements of a member's claim Int32Array after the claim counter, which
/// its JavaScript keeps up to date: the server's `_connections`, and the
/// connection count at which Node drops new connections (-1: no limit).
pub const LOAD_CONNECTIONS: usize = 1;
pub const LOAD_MAX: usize = 2;
/// How long a member's claim Int32Array must be.
pub const LOAD_SLOTS: usize = 3;

/// Wakes a member's JavaScript; false once its environment is gone.
pub type Notify = Box<dyn Fn() -> bool + Send + Sync>;

/// A member's published load: its claim Int32Array.
struct Load(*mut i32);

// SAFETY: the pointer is into a JavaScript Int32Array of at least
// LOAD_SLOTS elements that its listener keeps alive (a strong reference)
// until after the member has left (`Members::leave`, under the lock every
// reader holds); it is only read here, atomically.
unsafe impl Send for Load {}
// SAFETY: as above: shared reads are atomic loads.
unsafe impl Sync for Load {}

impl Load {
    fn read(&self, slot: usize) -> i32 {
        // SAFETY: see `impl Send for Load`; slot < LOAD_SLOTS.
        unsafe { AtomicI32::from_ptr(self.0.add(slot)) }.load(Ordering::Relaxed)
    }

    /// Whether Node would drop one more connection: its open connections
    /// plus those on their way reach its limit.
    fn full(&self, waiting: usize) -> bool {
        let max = self.read(LOAD_MAX);
        if max < 0 {
            return false;
        }
        let connections = usize::try_from(self.read(LOAD_CONNECTIONS)).unwrap_or(0);
        connections + waiting >= max as usize
    }
}

struct Member {
    id: u64,
    /// `threadId` of the member's JavaScript thread (0: the main thread).
    thread_id: u32,
    acceptor: Arc<Acceptor>,
    notify: Notify,
    load: Load,
    /// Descriptors put in its queue, re-routed ones included.
    dispatched: u64,
    /// Of those, how many came from a member that left.
    rerouted: u64,
}

#[derive(Default)]
struct Inner {
    members: Vec<Member>,
    /// Where the round-robin among equally loaded members goes on.
    cursor: usize,
    /// Descriptors taken back from leaving members.
    rerouted: u64,
    /// Members that have left.
    departed: u64,
}

/// One member's counts, for `threadShareStats()`.
pub struct MemberStats {
    pub id: u64,
    pub thread_id: u32,
    pub dispatched: u64,
    pub taken: u64,
    pub waiting: u64,
    pub rerouted: u64,
    pub connections: i32,
    pub max_connections: i32,
}

/// The group's counts.
pub struct GroupStats {
    pub members: Vec<MemberStats>,
    pub rerouted: u64,
    pub departed: u64,
    pub held: u64,
}

/// The servers (one per environment, or several) sharing one socket.
#[derive(Default)]
pub struct Members {
    inner: Mutex<Inner>,
    /// Length of the group's holding queue, readable without its lock so
    /// that a member's take() only locks it when there is something to move.
    held: AtomicUsize,
}

impl Members {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the holding queue has descriptors for members to take.
    pub fn holding(&self) -> bool {
        self.held.load(Ordering::Relaxed) > 0
    }

    /// Adds a member; `hold` is the group acceptor's state, whose holding
    /// queue it may take from at once.
    pub fn join(
        &self,
        hold: &mut State,
        id: u64,
        thread_id: u32,
        acceptor: Arc<Acceptor>,
        notify: Notify,
        load: *mut i32,
    ) {
        let mut inner = self.lock();
        inner.members.push(Member {
            id,
            thread_id,
            acceptor,
            notify,
            load: Load(load),
            dispatched: 0,
            rerouted: 0,
        });
        self.settle(&mut inner, hold);
    }

    /// Removes member `id` and gives what it had not claimed to the others
    /// (first, since they were accepted first), or to the holding queue when
    /// none can take them. With no holding queue (`hold` None: the socket is
    /// gone) they are closed.
    pub fn leave(&self, hold: Option<&mut State>, id: u64) {
        let mut inner = self.lock();
        let Some(pos) = inner.members.iter().position(|m| m.id == id) else {
            return;
        };
        let member = inner.members.remove(pos);
        let fds = {
            let mut state = member.acceptor.lock();
            member.acceptor.withdraw(&mut state)
        };
        inner.departed += 1;
        inner.rerouted += fds.len() as u64;
        let mut left: Vec<Withdrawn> = Vec::new();
        for (fd, proxied) in fds {
            match inner.pick() {
                Some(i) => inner.deliver(i, fd, proxied, true),
                None => left.push((fd, proxied)),
            }
        }
        if let Some(hold) = hold {
            hold.with_held(|held, _| {
                let mut fds = Vec::with_capacity(left.len());
                for (fd, proxied) in left {
                    if let Some(proxied) = proxied {
                        held.proxied.insert(fd.as_raw_fd(), proxied);
                    }
                    fds.push(fd);
                }
                held.fds.splice(0..0, fds);
            });
            self.settle(&mut inner, hold);
        }
    }

    /// Moves held descriptors to members that can take them now, and lets
    /// accepting resume once the holding queue has room.
    pub fn refill(&self, hold: &mut State) {
        let mut inner = self.lock();
        self.settle(&mut inner, hold);
    }

    fn settle(&self, inner: &mut Inner, hold: &mut State) {
        hold.with_held(|held, _| self.drain(inner, held));
        hold.resume_if_room();
        hold.with_held(|_, error| forward_error(inner, error));
    }

    /// Delivers held descriptors, in order of acceptance, while members can
    /// take them (with what their PROXY headers said).
    fn drain(&self, inner: &mut Inner, held: Held<'_>) {
        let mut queue = std::mem::take(&mut *held.fds).into_iter();
        while let Some(fd) = queue.next() {
            match inner.pick() {
                Some(i) => {
                    let proxied = held.proxied.remove(&fd.as_raw_fd());
                    inner.deliver(i, fd, proxied, false);
                }
                None => {
                    held.fds.push(fd);
                    held.fds.extend(queue);
                    break;
                }
            }
        }
        self.held.store(held.fds.len(), Ordering::Relaxed);
    }

    /// Every member's counts.
    pub fn stats(&self) -> GroupStats {
        let inner = self.lock();
        let members = inner
            .members
            .iter()
            .map(|m| {
                let waiting = {
                    let state = m.acceptor.lock();
                    m.acceptor.waiting(&state) as u64
                };
                MemberStats {
                    id: m.id,
                    thread_id: m.thread_id,
                    dispatched: m.dispatched,
                    taken: m.dispatched.saturating_sub(waiting),
                    waiting,
                    rerouted: m.rerouted,
                    connections: m.load.read(LOAD_CONNECTIONS),
                    max_connections: m.load.read(LOAD_MAX),
                }
            })
            .collect();
        GroupStats {
            members,
            rerouted: inner.rerouted,
            departed: inner.departed,
            held: self.held.load(Ordering::Relaxed) as u64,
        }
    }
}

/// Gives an accept error of the group's socket to one member, whose server
/// emits it as node:net would.
fn forward_error(inner: &mut Inner, error: &mut i32) {
    if *error == 0 || inner.members.is_empty() {
        return;
    }
    let code = std::mem::take(error);
    let i = inner.cursor % inner.members.len();
    let member = &inner.members[i];
    let mut state = member.acceptor.lock();
    state.set_error(code);
    if state.mark_notified() {
        drop(state);
        (member.notify)();
    }
}

impl Inner {
    /// The member to give the next descriptor to, if any can take one.
    fn pick(&mut self) -> Option<usize> {
        let n = self.members.len();
        let mut best: Option<(usize, (bool, usize))> = None;
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let member = &self.members[i];
            let waiting = {
                let state = member.acceptor.lock();
                if state.is_full() {
                    continue;
                }
                member.acceptor.waiting(&state)
            };
            let key = (member.load.full(waiting), waiting);
            if best.is_none_or(|(_, b)| key < b) {
                best = Some((i, key));
            }
        }
        let (i, _) = best?;
        self.cursor = (i + 1) % n;
        Some(i)
    }

    /// Puts `fd` (with what its PROXY header said) in member `i`'s queue
    /// and wakes its JavaScript if needed.
    fn deliver(&mut self, i: usize, fd: OwnedFd, proxied: Option<Box<Proxied>>, rerouted: bool) {
        let member = &mut self.members[i];
        member.dispatched += 1;
        if rerouted {
            member.rerouted += 1;
        }
        let mut state = member.acceptor.lock();
        state.enqueue(fd, proxied);
        if state.mark_notified() {
            drop(state);
            // A member whose environment is gone stays until its cleanup
            // hook makes it leave, which re-routes its queue.
            (member.notify)();
        }
    }
}

impl Route for Members {
    fn route(&self, held: Held<'_>, error: &mut i32, conn: OwnedFd, proxied: Option<Box<Proxied>>) {
        let mut inner = self.lock();
        let chosen = if held.fds.is_empty() {
            inner.pick()
        } else {
            None
        };
        match chosen {
            Some(i) => inner.deliver(i, conn, proxied, false),
            None => {
                // Behind whatever is held already.
                if let Some(proxied) = proxied {
                    held.proxied.insert(conn.as_raw_fd(), proxied);
                }
                held.fds.push(conn);
                self.drain(&mut inner, held);
            }
        }
        forward_error(&mut inner, error);
    }
}
