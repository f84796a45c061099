//! Listeners shared across threads (`shareAcrossThreads`): servers in
//! several Node environments of this process (the main thread, worker
//! threads) listening on one TCP address or pipe path.
//!
//! Node cannot do this between threads (a second bind is `EADDRINUSE`, and
//! `reusePort` lets the kernel hash connections to listeners that cannot see
//! how busy each loop is). Every environment here shares one Rust runtime,
//! so the servers can share one socket instead: the first server to bind
//! creates a **group** in a process-wide registry, keyed by the address it
//! is bound to; later servers asking for that address with the option join
//! it; the socket closes when the last of them closes. Only servers that ask
//! for the option ever join, so everything else keeps Node's `EADDRINUSE`.
//!
//! The group accepts with one ordinary runtime-placement accept loop whose
//! descriptors go to a [`Route`](crate::acceptor::Route) instead of a queue
//! of its own ([`dispatch`]). Each member is an ordinary queue-only
//! [`Acceptor`] with its own wake-up and claim counter, so taking and
//! claiming connections works exactly as for an unshared server.

mod dispatch;

use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::acceptor::Acceptor;
use crate::admission::Admission;
use crate::bind::{BindError, TcpBind};
use crate::placement::runtime_thread;
use crate::socket::{self, Bound, Kind};
use crate::{errno, runtime};

use dispatch::Members;
pub use dispatch::{GroupStats, Notify, LOAD_SLOTS};

/// What a group is found by: the address its socket is bound to (a wildcard
/// stays a wildcard) and, for IPv6, whether it is IPv6-only; or the pipe
/// name as bound.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Key {
    Tcp(IpAddr, u16, bool),
    Pipe(Vec<u8>),
}

struct Entry {
    key: Key,
    group: Arc<Group>,
    /// Servers holding a seat: bound or listening, not yet closed.
    seats: usize,
}

/// Every group of the process. Seats are counted under this lock, and the
/// last one closes the socket under it too, so a server binding the same
/// address meanwhile either joins the group or binds after it is gone —
/// never `EADDRINUSE` from a group that is closing.
static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn registry() -> MutexGuard<'static, Vec<Entry>> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shared socket: bound until the first member listens, then owned by
/// the group's acceptor.
enum Socket {
    Bound(Bound),
    Listening(Arc<Acceptor>),
    Closed,
}

struct Group {
    kind: Kind,
    socket: Mutex<Socket>,
    members: Arc<Members>,
    next_member: AtomicU64,
    /// The socket file a pipe group created, removed when the group closes
    /// — unless the socket was handed over to another process, whose file
    /// it is then.
    unlink_on_close: Mutex<Option<PathBuf>>,
}

impl Group {
    fn new(bound: Bound, unlink_on_close: Option<PathBuf>) -> Arc<Group> {
        Arc::new(Group {
            kind: bound.kind,
            socket: Mutex::new(Socket::Bound(bound)),
            members: Arc::new(Members::default()),
            next_member: AtomicU64::new(1),
            unlink_on_close: Mutex::new(unlink_on_close),
        })
    }

    fn socket(&self) -> MutexGuard<'_, Socket> {
        self.socket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn acceptor(&self) -> Option<Arc<Acceptor>> {
        match &*self.socket() {
            Socket::Listening(acceptor) => Some(Arc::clone(acceptor)),
            _ => None,
        }
    }

    fn fd(&self) -> RawFd {
        match &*self.socket() {
            Socket::Bound(bound) => bound.socket.as_raw_fd(),
            Socket::Listening(acceptor) => acceptor.with_listener(|s| s.as_raw_fd()).unwrap_or(-1),
            Socket::Closed => -1,
        }
    }

    /// Listens and starts the group's accept loop, unless a member did
    /// already. Always the runtime placement: the members live on several
    /// threads, and the accept loop must run while any of them is busy.
    fn listen(&self, backlog: i32, admission: Option<Arc<Admission>>) -> i32 {
        let mut socket = self.socket();
        let bound = match std::mem::replace(&mut *socket, Socket::Closed) {
            Socket::Bound(bound) => bound,
            other => {
                let code = if matches!(other, Socket::Closed) {
                    crate::errno::UV_EBADF
                } else {
                    0
                };
                *socket = other;
                return code;
            }
        };
        if let Err(code) = socket::listen(&bound, backlog) {
            *socket = Socket::Bound(bound);
            return code;
        }
        let handle = match runtime::handle() {
            Ok(handle) => handle,
            Err(err) => {
                *socket = Socket::Bound(bound);
                return errno::uv_code(&err);
            }
        };
        crate::reserve::ensure();
        let listening = match runtime_thread::register(bound.socket, &handle) {
            Ok(listening) => listening,
            Err(err) => return errno::uv_code(&err),
        };
        // PROXY headers are read here, before dispatch, so that a
        // connection reaches its member with what its header said.
        let acceptor = Arc::new(Acceptor::new(listening, backlog).admitting(admission));
        {
            let mut state = acceptor.lock();
            state.set_route(Arc::clone(&self.members) as Arc<dyn crate::acceptor::Route>);
            // Nobody takes from the group's own queue (it only holds), so it
            // never wakes anyone: the accept loop then never calls `notify`
            // with the state locked, only after a panicking round.
            state.mark_notified();
        }
        let weak = Arc::downgrade(&acceptor);
        let members = Arc::clone(&self.members);
        let notify: runtime_thread::Notify = Arc::new(move || {
            // After a panicking round: give its error to a member. Spawned,
            // so as never to take the state lock from inside the loop.
            if let (Ok(rt), Some(acceptor)) =
                (tokio::runtime::Handle::try_current(), weak.upgrade())
            {
                let members = Arc::clone(&members);
                rt.spawn(async move { members.refill(&mut acceptor.lock()) });
            }
            true
        });
        handle.spawn(runtime_thread::run(Arc::clone(&acceptor), notify));
        *socket = Socket::Listening(acceptor);
        0
    }

    /// Closes the socket and whatever it held; under the registry lock.
    fn close(&self) {
        let socket = std::mem::replace(&mut *self.socket(), Socket::Closed);
        if let Socket::Listening(acceptor) = &socket {
            acceptor.shutdown();
        }
        drop(socket);
        if let Some(path) = self.take_unlink() {
            let _ = std::fs::remove_file(path);
        }
    }

    fn take_unlink(&self) -> Option<PathBuf> {
        self.unlink_on_close
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// A successor process listens on the group's socket (docs/handover.md):
    /// the group stops accepting for good, for every member at once. What
    /// was accepted still reaches the members, and a pipe's file stays.
    fn stop_for_handover(&self) {
        self.take_unlink();
        if let Some(acceptor) = self.acceptor() {
            acceptor.stop_accepting();
        }
    }
}

/// What binding with the option gave.
pub enum Bind {
    /// A seat in a group (new or joined).
    Seat(Arc<Seat>),
    /// A socket that could not form a group — its address is in use by a
    /// socket outside any group (`EADDRINUSE` at listen(), as node:net).
    Plain(Bound),
}

/// The key of a TCP address as asked for, when it can be compared with the
/// keys of bound groups (literal IPs without a scope, a fixed port).
fn tcp_key(address: &str, port: u16, ipv6: bool, ipv6_only: bool) -> Option<Key> {
    if port == 0 {
        return None;
    }
    let ip: IpAddr = address.parse().ok()?;
    (ip.is_ipv6() == ipv6).then_some(Key::Tcp(ip, port, ipv6 && ipv6_only))
}

/// Joins the group on `key`, if there is one.
fn join(registry: &mut [Entry], key: &Key, thread_id: u32) -> Option<Arc<Seat>> {
    let entry = registry.iter_mut().find(|e| &e.key == key)?;
    entry.seats += 1;
    Some(Seat::new(Arc::clone(&entry.group), thread_id))
}

/// Binds a TCP socket shared across threads, or joins the group bound there
/// (whose socket keeps the options its first member set).
/// Port 0 always binds a new socket (on a free port, which other servers can
/// then join).
pub fn bind_tcp(bind: &TcpBind, thread_id: u32) -> Result<Bind, BindError> {
    let mut registry = registry();
    if let Some(seat) = tcp_key(&bind.address, bind.port, bind.ipv6, bind.ipv6_only)
        .and_then(|key| join(&mut registry, &key, thread_id))
    {
        return Ok(Bind::Seat(seat));
    }
    let bound = socket::bind_tcp(bind)?;
    let local = bound.socket.local_addr().ok().and_then(|a| a.as_socket());
    let Some(local) = local.filter(|_| bound.delayed_error == 0) else {
        return Ok(Bind::Plain(bound));
    };
    let key = Key::Tcp(local.ip(), local.port(), bind.ipv6_only);
    Ok(found(&mut registry, key, bound, None, thread_id))
}

/// Registers a new group on `bound` under `key`, with its first seat (the
/// caller holds the registry lock and found no group there).
fn found(
    registry: &mut Vec<Entry>,
    key: Key,
    bound: Bound,
    unlink_on_close: Option<PathBuf>,
    thread_id: u32,
) -> Bind {
    let group = Group::new(bound, unlink_on_close);
    registry.push(Entry {
        key,
        group: Arc::clone(&group),
        seats: 1,
    });
    Bind::Seat(Seat::new(group, thread_id))
}

/// Whether a group listens on `address:port` (TCP) or pipe `name`: a
/// server of this process can join it, rather than take a socket over from
/// another process.
pub fn has_group(address: Option<(&str, u16)>, name: Option<&[u8]>) -> bool {
    let registry = registry();
    registry
        .iter()
        .any(|entry| match (&entry.key, address, name) {
            (Key::Tcp(ip, port, _), Some((address, want)), _) => {
                *port == want && address.parse::<IpAddr>().is_ok_and(|a| a == *ip)
            }
            (Key::Pipe(bound), None, Some(name)) => bound.as_slice() == name,
            _ => false,
        })
}

/// Starts a group on a listening socket another process handed over
/// (docs/handover.md), keyed by the address it listens on (`name` for a
/// pipe): later servers of this process join it as if it had been bound
/// here. On error the caller still owns `fd`.
pub fn adopt(
    fd: RawFd,
    name: Option<&[u8]>,
    unlink_on_close: Option<PathBuf>,
    thread_id: u32,
) -> Result<Bind, i32> {
    let mut registry = registry();
    let bound = socket::adopt(fd)?;
    let key = match (bound.kind, name) {
        (Kind::Pipe, Some(name)) => Key::Pipe(name.to_vec()),
        (Kind::Tcp, _) => {
            let local = bound.socket.local_addr().ok().and_then(|a| a.as_socket());
            let Some(local) = local else {
                return Ok(Bind::Plain(bound));
            };
            let v6_only = local.is_ipv6() && bound.socket.only_v6().unwrap_or(false);
            Key::Tcp(local.ip(), local.port(), v6_only)
        }
        _ => return Ok(Bind::Plain(bound)),
    };
    if let Some(seat) = join(&mut registry, &key, thread_id) {
        // A group formed meanwhile: this socket is the same one, or another
        // that cannot listen here anyway.
        drop(bound);
        return Ok(Bind::Seat(seat));
    }
    Ok(found(&mut registry, key, bound, unlink_on_close, thread_id))
}

/// Binds a Unix domain socket shared across threads at `name`, or joins the
/// group bound there. The file is removed when the last member closes.
pub fn bind_pipe(
    name: &[u8],
    pad_abstract: bool,
    unlink_on_close: Option<PathBuf>,
    thread_id: u32,
) -> Result<Bind, i32> {
    let mut registry = registry();
    let key = Key::Pipe(name.to_vec());
    if let Some(seat) = join(&mut registry, &key, thread_id) {
        return Ok(Bind::Seat(seat));
    }
    let bound = socket::bind_pipe(name, pad_abstract)?;
    Ok(found(&mut registry, key, bound, unlink_on_close, thread_id))
}

/// One server's place in a group, from bind to close.
pub struct Seat {
    group: Arc<Group>,
    thread_id: u32,
    /// Its member id once listening.
    member: Mutex<Option<u64>>,
    released: AtomicBool,
}

impl Seat {
    fn new(group: Arc<Group>, thread_id: u32) -> Arc<Seat> {
        Arc::new(Seat {
            group,
            thread_id,
            member: Mutex::new(None),
            released: AtomicBool::new(false),
        })
    }

    pub fn kind(&self) -> Kind {
        self.group.kind
    }

    /// The shared listening socket, or -1 once closed.
    pub fn fd(&self) -> RawFd {
        self.group.fd()
    }

    /// Starts receiving connections into `acceptor` (a queue-only acceptor
    /// whose claim counter is `load`'s first element), woken by `notify`.
    /// `admission` (PROXY protocol) is the group's if this member is the
    /// first to listen. Returns 0 or a libuv errno.
    pub fn listen(
        &self,
        backlog: i32,
        acceptor: Arc<Acceptor>,
        notify: Notify,
        load: *mut i32,
        admission: Option<Arc<Admission>>,
    ) -> i32 {
        if self.released.load(Ordering::Acquire) {
            return crate::errno::UV_EBADF;
        }
        let code = self.group.listen(backlog, admission);
        if code != 0 {
            return code;
        }
        let Some(group_acceptor) = self.group.acceptor() else {
            return crate::errno::UV_EBADF;
        };
        let id = self.group.next_member.fetch_add(1, Ordering::Relaxed);
        let mut member = self.member.lock().unwrap_or_else(|p| p.into_inner());
        self.group.members.join(
            &mut group_acceptor.lock(),
            id,
            self.thread_id,
            acceptor,
            notify,
            load,
        );
        *member = Some(id);
        0
    }

    /// Stops receiving connections; those not yet taken go to the other
    /// members. Must run before the member's claim counter goes.
    fn leave(&self) {
        let id = self.member.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(id) = id else { return };
        match self.group.acceptor() {
            Some(acceptor) => self.group.members.leave(Some(&mut acceptor.lock()), id),
            None => self.group.members.leave(None, id),
        }
    }

    /// Leaves the group for good (close(), or the environment going away);
    /// the last seat closes the socket. Does nothing the second time.
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        self.leave();
        let mut registry = registry();
        let Some(pos) = registry
            .iter()
            .position(|e| Arc::ptr_eq(&e.group, &self.group))
        else {
            return;
        };
        registry[pos].seats -= 1;
        if registry[pos].seats == 0 {
            let entry = registry.remove(pos);
            entry.group.close();
        }
    }

    /// The group's socket was handed over to another process: no member
    /// accepts any more (see [`Group::stop_for_handover`]).
    pub fn stop_for_handover(&self) {
        self.group.stop_for_handover();
    }

    /// The group's admission settings (PROXY protocol), once it listens.
    pub fn admission(&self) -> Option<Arc<Admission>> {
        self.group.acceptor()?.admission().cloned()
    }

    /// Lets held connections move to members with room; called after a
    /// member took its queue. Cheap when nothing is held.
    pub fn refill(&self) {
        if !self.group.members.holding() {
            return;
        }
        if let Some(acceptor) = self.group.acceptor() {
            self.group.members.refill(&mut acceptor.lock());
        }
    }

    /// The group's counts, and which member is this seat's.
    pub fn stats(&self) -> (GroupStats, Option<u64>) {
        let id = *self.member.lock().unwrap_or_else(|p| p.into_inner());
        (self.group.members.stats(), id)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_addresses_not_spellings() {
        assert_eq!(
            tcp_key("::", 8000, true, false),
            tcp_key("0:0::0", 8000, true, false)
        );
        assert_ne!(
            tcp_key("::", 8000, true, false),
            tcp_key("::", 8000, true, true)
        );
        assert_eq!(tcp_key("127.0.0.1", 0, false, false), None);
        assert_eq!(tcp_key("fe80::1%eth0", 8000, true, false), None);
    }
}
