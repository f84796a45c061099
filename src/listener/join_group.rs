//! A [`Listener`] that shares its socket with servers of other threads
//! (`shareAcrossThreads`, see [`crate::share`]). Kept apart from the
//! unshared listener's code: a member has a seat in a group instead of a
//! socket, and a queue-only acceptor the group's accept loop fills.

use super::*;
use crate::bind::{BindError, TcpBind};
use crate::share::{self, Bind, Seat, LOAD_SLOTS};

/// One member's counts, as `threadShareStats()` gives them.
#[napi_derive::napi(object)]
pub struct ThreadShareMember {
    /// `threadId` of the member's thread (0: the main thread).
    pub thread_id: u32,
    /// This server (the one asked), rather than another member.
    pub own: bool,
    /// Connections handed to it, re-routed ones included.
    pub dispatched: f64,
    /// Of those, how many its event loop took.
    pub taken: f64,
    /// Handed to it and not yet taken.
    pub waiting: f64,
    /// Of `dispatched`, how many came from a member that left.
    pub rerouted: f64,
    /// Its `server._connections`, as its thread last published it.
    pub connections: i32,
    /// The count at which Node drops connections there; -1: no limit.
    pub max_connections: i32,
}

/// A group's counts, as `threadShareStats()` gives them.
#[napi_derive::napi(object)]
pub struct ThreadShareStats {
    pub members: Vec<ThreadShareMember>,
    /// Connections moved from members that left to the others.
    pub rerouted: f64,
    /// Members that have left the group.
    pub departed: f64,
    /// Connections accepted that no member could take yet.
    pub held: f64,
}

impl Listener {
    fn set_shared(&mut self, result: std::result::Result<Bind, i32>) -> i32 {
        match result {
            Ok(Bind::Seat(seat)) => {
                self.kind = Some(seat.kind());
                self.share = Some(seat);
                0
            }
            Ok(Bind::Plain(bound)) => self.set_bound(Ok(bound)),
            Err(code) => code,
        }
    }

    /// As [`Listener::bind_tcp`], but joins the group of servers sharing
    /// the address across threads, or starts one (see [`crate::share`]).
    pub(super) fn share_tcp(
        &mut self,
        bind: &TcpBind,
        thread_id: u32,
    ) -> std::result::Result<i32, BindError> {
        let bind = share::bind_tcp(bind, thread_id)?;
        Ok(self.set_shared(Ok(bind)))
    }

    /// As [`Listener::bind_pipe`], shared across threads.
    pub fn share_pipe(
        &mut self,
        name: Buffer,
        unlink_on_close: Option<Buffer>,
        pad_abstract: bool,
        thread_id: u32,
    ) -> i32 {
        if self.kind.is_some() {
            return errno::UV_EINVAL;
        }
        let unlink = unlink_on_close.map(|path| PathBuf::from(std::ffi::OsStr::from_bytes(&path)));
        self.set_shared(share::bind_pipe(&name, pad_abstract, unlink, thread_id))
    }

    /// Adopts a listening socket handed over by another process as a new
    /// group's (or joins the group that formed on its address meanwhile).
    /// `name`: a pipe's name, its key; `unlink_on_close`: the file the
    /// group removes when its last member closes.
    pub fn share_adopt(
        &mut self,
        fd: i32,
        name: Option<Buffer>,
        unlink_on_close: Option<Buffer>,
        thread_id: u32,
    ) -> i32 {
        if self.kind.is_some() {
            return errno::UV_EINVAL;
        }
        let unlink = unlink_on_close.map(|path| PathBuf::from(std::ffi::OsStr::from_bytes(&path)));
        self.set_shared(share::adopt(fd, name.as_deref(), unlink, thread_id))
    }

    /// Listening as a member of a group: a queue-only acceptor, woken by a
    /// threadsafe function as with the runtime placement, whose claim
    /// Int32Array also carries the load its JavaScript publishes.
    pub(super) fn listen_shared(
        &mut self,
        env: &Env,
        seat: Arc<Seat>,
        backlog: i32,
        onconnection: ConnectionCallback,
        claimed: &Unknown<'_>,
    ) -> Result<i32> {
        if self.acceptor.is_some() {
            // Listening already (a handle shared by two servers).
            return Ok(0);
        }
        // SAFETY: called from JavaScript on `env`'s thread with a live typed
        // array; the reference keeps its memory alive until close().
        let claim = match unsafe { SharedInts::new(env, claimed) } {
            Ok(claim) if claim.len >= LOAD_SLOTS => claim,
            Ok(claim) => {
                claim.delete(env);
                return Ok(errno::UV_EINVAL);
            }
            Err(code) => return Ok(code),
        };
        let acceptor = Arc::new(Acceptor::queue_only(backlog));
        acceptor.set_claim_counter(claim.ptr);
        let (wake, notify) = wake_up(&onconnection)?;
        let code = seat.listen(
            backlog,
            Arc::clone(&acceptor),
            Box::new(notify),
            claim.ptr,
            self.admission.clone(),
        );
        if code != 0 {
            acceptor.shutdown();
            claim.delete(env);
            set_referenced(env, &wake, false)?;
            return Ok(code);
        }
        let weak_seat = Arc::downgrade(&seat);
        self.cleanup = Some(env.add_env_cleanup_hook(
            Arc::downgrade(&acceptor),
            move |acceptor| {
                // The environment (a worker, or the main thread at exit) is going
                // away: its untaken connections go to the other members first.
                if let Some(seat) = weak_seat.upgrade() {
                    seat.release();
                }
                if let Some(acceptor) = acceptor.upgrade() {
                    acceptor.shutdown();
                }
            },
        )?);
        self.wake = Some(wake);
        self.acceptor = Some(acceptor);
        self.claim = Some(claim);
        if self.admission.is_some() {
            // The group admits (PROXY headers) for all its members, with the
            // settings of the first to listen: its refusals and counts are
            // what every member reports.
            self.admission = seat.admission();
        }
        self.placement = Some(Placement::Runtime);
        Ok(0)
    }

    /// The counts of the group this listener shares, or None when unshared.
    pub fn share_stats(&self) -> Option<ThreadShareStats> {
        let seat = self.share.as_ref()?;
        let (stats, own) = seat.stats();
        Some(ThreadShareStats {
            members: stats
                .members
                .into_iter()
                .map(|m| ThreadShareMember {
                    thread_id: m.thread_id,
                    own: Some(m.id) == own,
                    dispatched: m.dispatched as f64,
                    taken: m.taken as f64,
                    waiting: m.waiting as f64,
                    rerouted: m.rerouted as f64,
                    connections: m.connections,
                    max_connections: m.max_connections,
                })
                .collect(),
            rerouted: stats.rerouted as f64,
            departed: stats.departed as f64,
            held: stats.held as f64,
        })
    }
}
