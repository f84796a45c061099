//! The sockets this process can hand over, from every thread.
//!
//! A process has one control socket per path, but servers in any of its
//! Node environments (the main thread, worker threads, the members of a
//! `shareAcrossThreads` group) may listen with hand-over. JavaScript is per
//! thread, so the list of what can be offered lives here, process-wide: each
//! listening server registers its address with a duplicate of its socket
//! (owned by this registry until the server closes), and the one thread
//! serving the control socket consults it — sends the socket asked for
//! without ever holding a descriptor of another thread's — and, once the
//! successor confirms, tells each server listening on that socket, on its
//! own thread, through its threadsafe function.
//!
//! The control socket is owned by one thread per path (the first whose
//! server listens with it). When that thread lets go (its last such server
//! closed, or the thread ended), another thread with servers on that path
//! is told to own it, so that a worker's end does not leave the rest of the
//! process unreachable for a successor.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

use super::protocol::{Address, Message};

/// What a server's thread is told: [`OWN_CONTROL`], or the pid of the
/// successor that now listens on its socket.
pub type NoticeCallback<'a> = Function<'a, u32, Unknown<'static>>;
type Notice = ThreadsafeFunction<u32, Unknown<'static>, u32, Status, false>;

/// The notice that asks a thread to own the control socket of its path.
pub const OWN_CONTROL: u32 = 0;

struct Offerable {
    id: u32,
    /// The registrations of one server on several addresses share this
    /// (the first one's id); a server on one address has its own id.
    group: u32,
    control: String,
    address: Address,
    thread_id: u32,
    /// A duplicate of the listening socket: the registry's own, closed when
    /// the server withdraws.
    fd: OwnedFd,
    notice: Arc<Notice>,
}

#[derive(Default)]
struct Registry {
    next_id: u32,
    offerables: Vec<Offerable>,
    controls: Vec<Control>,
}

/// A control socket path and the thread serving it.
struct Control {
    path: String,
    thread_id: u32,
    /// The device and inode of the socket file that thread put at the
    /// path: a successor process may have replaced it since.
    file: Option<(u64, u64)>,
    /// Tells the thread that no server of the process is on the path any
    /// more (it may be serving it for other threads' servers).
    notice: Option<Arc<Notice>>,
}

impl Control {
    /// Whether the file at the path is still this process's control socket
    /// (not yet replaced by a successor's), so that another thread should
    /// serve it when this one lets go.
    fn still_ours(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(file) = self.file else { return false };
        std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == file)
    }
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 0,
    offerables: Vec::new(),
    controls: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn tell(notice: &Notice, value: u32) -> bool {
    notice.call(value, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
}

/// A threadsafe function calling `callback` that never keeps the event
/// loop alive.
fn notice_of(env: &Env, callback: &NoticeCallback) -> Result<Arc<Notice>> {
    let notice: Notice = callback
        .build_threadsafe_function::<u32>()
        .callee_handled::<false>()
        .build_callback(|ctx| Ok(ctx.value))?;
    // SAFETY: on `env`'s thread (called from JavaScript), with a threadsafe
    // function just created there and not yet aborted.
    let status = unsafe { napi::sys::napi_unref_threadsafe_function(env.raw(), notice.raw()) };
    if status != napi::sys::Status::napi_ok {
        return Err(Error::from_status(Status::from(status)));
    }
    Ok(Arc::new(notice))
}

/// After registrations went: tells the thread serving each path where no
/// server is left that it may let go.
fn tell_idle_controls(registry: &Registry) {
    for control in &registry.controls {
        if registry
            .offerables
            .iter()
            .all(|o| o.control != control.path)
        {
            if let Some(notice) = &control.notice {
                tell(notice, 0);
            }
        }
    }
}

/// Registers a listening server of thread `thread_id`: `fd` (its listening
/// socket, duplicated here) listens on `address` and takes part through
/// `control`. `on_notice` is called on that thread with [`OWN_CONTROL`] or
/// a successor's pid; it never keeps the event loop alive. `group`: 0, or
/// the id of the registration of the same server's first address (a server
/// on several addresses). Returns the registration's id (> 0) or a
/// negative libuv errno.
pub fn register(
    env: &Env,
    control: String,
    address: Address,
    thread_id: u32,
    fd: RawFd,
    group: u32,
    on_notice: &NoticeCallback,
) -> Result<i32> {
    let dup = match crate::socket::duplicate(fd) {
        Ok(dup) => dup,
        Err(code) => return Ok(code),
    };
    // SAFETY: `duplicate` just created this descriptor for us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(dup) };
    let notice = notice_of(env, on_notice)?;
    let mut registry = registry();
    registry.next_id = registry.next_id.wrapping_add(1).max(1);
    let id = registry.next_id;
    registry.offerables.push(Offerable {
        id,
        group: if group == 0 { id } else { group },
        control,
        address,
        thread_id,
        fd,
        notice,
    });
    Ok(i32::try_from(id).unwrap_or(i32::MAX))
}

/// Forgets registration `id` (its server stopped listening) and closes the
/// registry's descriptor of it.
pub fn withdraw(id: u32) {
    let removed = {
        let mut registry = registry();
        let pos = registry.offerables.iter().position(|o| o.id == id);
        let removed = pos.map(|pos| registry.offerables.remove(pos));
        tell_idle_controls(&registry);
        removed
    };
    // Dropped outside the lock: releasing a threadsafe function may wait.
    drop(removed);
}

/// Makes `thread_id` the thread serving the control socket at `control`,
/// unless another thread does: whether it is now (or already was) this one.
pub fn claim_control(control: &str, thread_id: u32) -> bool {
    let mut registry = registry();
    match registry.controls.iter().find(|c| c.path == control) {
        Some(c) => c.thread_id == thread_id,
        None => {
            registry.controls.push(Control {
                path: control.to_string(),
                thread_id,
                file: None,
                notice: None,
            });
            true
        }
    }
}

/// The thread serving `control` has put its socket file there;
/// `on_idle` is called there when no server of the process is left on it.
pub fn control_in_place(
    env: &Env,
    control: &str,
    thread_id: u32,
    on_idle: &NoticeCallback,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::metadata(control).ok().map(|m| (m.dev(), m.ino()));
    let notice = notice_of(env, on_idle)?;
    let mut registry = registry();
    if let Some(c) = registry
        .controls
        .iter_mut()
        .find(|c| c.path == control && c.thread_id == thread_id)
    {
        c.file = file;
        c.notice = Some(notice);
    }
    Ok(())
}

/// Whether a thread of this process serves the control socket at `control`.
pub fn control_served(control: &str) -> bool {
    registry().controls.iter().any(|c| c.path == control)
}

/// Thread `thread_id`, which serves the control socket at `control`, has
/// no server on it left: whether it lets go now — only when no thread of
/// the process has one (their successors reach them through it, and the
/// conversations it serves would end with it), unless `force` (it could
/// not put its socket there). Its thread's end lets go in any case
/// ([`thread_gone`]).
pub fn release_control(control: &str, thread_id: u32, force: bool) -> bool {
    let mut registry = registry();
    if !force && registry.offerables.iter().any(|o| o.control == control) {
        return false;
    }
    let before = registry.controls.len();
    registry
        .controls
        .retain(|c| !(c.path == control && c.thread_id == thread_id));
    registry.controls.len() != before
}

/// Asks a thread other than `gone` with servers on `control` to serve it.
fn hand_control_on(registry: &mut Registry, control: &str, gone: u32) -> bool {
    let mut heirs: Vec<(u32, Arc<Notice>)> = Vec::new();
    for offerable in &registry.offerables {
        if offerable.control == control && offerable.thread_id != gone {
            heirs.push((offerable.thread_id, Arc::clone(&offerable.notice)));
        }
    }
    // The first thread that can still be told; its claim makes it the owner
    // (a notice that finds the thread gone leaves the next one to try).
    for (thread_id, notice) in heirs {
        if tell(&notice, OWN_CONTROL) {
            registry.controls.push(Control {
                path: control.to_string(),
                thread_id,
                file: None,
                notice: None,
            });
            return true;
        }
    }
    false
}

/// Thread `thread_id` is going away (its environment's cleanup): its
/// registrations go, and the control sockets it served pass to others.
pub fn thread_gone(thread_id: u32) {
    let (removed, served) = {
        let mut registry = registry();
        let (gone, kept) = std::mem::take(&mut registry.offerables)
            .into_iter()
            .partition(|o| o.thread_id == thread_id);
        registry.offerables = kept;
        let (served, kept): (Vec<Control>, Vec<Control>) = std::mem::take(&mut registry.controls)
            .into_iter()
            .partition(|c| c.thread_id == thread_id);
        registry.controls = kept;
        // A path a successor has taken over stays the successor's; one no
        // other thread serves next is removed, as its thread would at exit.
        for control in served.iter().filter(|c| c.still_ours()) {
            if !hand_control_on(&mut registry, &control.path, thread_id) {
                let _ = std::fs::remove_file(&control.path);
            }
        }
        (gone, served)
    };
    drop(removed);
    drop(served);
}

/// Whether registration `id` is still offerable: neither confirmed to a
/// successor nor withdrawn.
pub fn is_registered(id: u32) -> bool {
    registry().offerables.iter().any(|o| o.id == id)
}

/// The other addresses of the server listening on `address` through
/// `control` (a server on several addresses), still offerable: the old side
/// holds back a confirmation while a successor has one of them offered and
/// not yet settled, so that the server hands over all it was asked for at
/// once.
pub fn siblings(control: &str, address: &Address) -> Vec<Address> {
    let registry = registry();
    let Some(group) = registry
        .offerables
        .iter()
        .find(|o| o.control == control && &o.address == address)
        .map(|o| o.group)
    else {
        return Vec::new();
    };
    registry
        .offerables
        .iter()
        .filter(|o| o.group == group && o.control == control && &o.address != address)
        .map(|o| o.address.clone())
        .collect()
}

/// What [`offer`] did.
pub enum Offered {
    /// Sent, from registration `id`.
    Sent(u32),
    /// No server of this process listens on the address asked for.
    Missing,
    /// The control connection failed (a negative libuv errno).
    Failed(i32),
}

/// Sends `offer {token}` on control connection `session` with the socket
/// listening on `address` attached, or says there is none. The descriptor
/// is sent under the registry's lock, so its server cannot close it
/// meanwhile.
pub fn offer(session: RawFd, control: &str, address: &Address, token: u32) -> Offered {
    let registry = registry();
    let Some(offerable) = registry
        .offerables
        .iter()
        .find(|o| o.control == control && &o.address == address)
    else {
        return Offered::Missing;
    };
    let message = Message::Offer { token };
    match super::edge::send(session, &message, Some(offerable.fd.as_raw_fd())) {
        Ok(()) => Offered::Sent(offerable.id),
        Err(code) => Offered::Failed(code),
    }
}

/// The successor process `pid` listens on the socket that listens on
/// `address`: every server of this process on it (one, or each member of a
/// group shared across threads, whichever of them it was sent from) is told
/// so on its thread and forgotten here. Returns how many were told.
pub fn handed_over(control: &str, address: &Address, pid: u32) -> u32 {
    let told = {
        let mut registry = registry();
        let (told, kept): (Vec<Offerable>, Vec<Offerable>) =
            std::mem::take(&mut registry.offerables)
                .into_iter()
                .partition(|o| o.control == control && &o.address == address);
        registry.offerables = kept;
        tell_idle_controls(&registry);
        told
    };
    let mut count = 0;
    for offerable in &told {
        if tell(&offerable.notice, pid) {
            count += 1;
        }
    }
    count
}
