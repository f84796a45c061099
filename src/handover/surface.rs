//! The N-API surface of hand-over between threads and processes: the
//! registry of offerable sockets ([`super::offers`]) and the successor's
//! shared conversation ([`super::session`]), kept here so that `lib.rs`
//! stays the addon's short index (lib/handover.js and
//! lib/handover-control.js are the callers).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::offers::NoticeCallback;
use super::HandoverMessage;

/// Registers a listening server whose socket can be handed over through
/// the control socket at `control` (src/handover/offers.rs): an id, or a
/// negative libuv errno. `onNotice(value)` is called on this thread: 0 asks
/// it to serve the control socket, another value is the pid of the
/// successor now listening on the socket. `group`: 0, or the id of the
/// first address's registration of a server on several addresses.
#[napi(catch_unwind)]
pub fn handover_register(
    env: Env,
    control: String,
    address: HandoverMessage,
    thread_id: u32,
    fd: i32,
    group: u32,
    on_notice: NoticeCallback,
) -> Result<i32> {
    super::register(&env, control, &address, thread_id, fd, group, &on_notice)
}

/// Whether registration `id` is still offerable (not confirmed to a
/// successor, not withdrawn).
#[napi(catch_unwind)]
pub fn handover_registered(id: u32) -> bool {
    super::offers::is_registered(id)
}

/// The other addresses (take messages) of the server registered on
/// `address` through `control`, when it listens on several.
#[napi(catch_unwind)]
pub fn handover_siblings(
    control: String,
    address: HandoverMessage,
) -> Result<Vec<HandoverMessage>> {
    super::siblings(&control, &address)
}

/// Keeps control connection `fd` (past its hello) as this process's
/// conversation with the old process at `path`: false when another thread
/// keeps one already (`fd` is closed then; use that one).
#[napi(catch_unwind)]
pub fn handover_session_keep(path: String, fd: i32) -> bool {
    super::keep_session(path, fd)
}

/// Whether this process converses with an old process at `path`.
#[napi(catch_unwind)]
pub fn handover_session_exists(path: String) -> bool {
    super::session::exists(&path)
}

/// Sends `message` on the conversation at `path`, and reads the answer
/// when `answer` (`ENOTCONN` when there is no conversation).
#[napi(catch_unwind)]
pub fn handover_session_exchange(
    path: String,
    message: HandoverMessage,
    answer: bool,
) -> Result<super::HandoverReceived> {
    super::session::exchange(&path, &message, answer)
}

/// Ends the conversation at `path`.
#[napi(catch_unwind)]
pub fn handover_session_close(path: String) {
    super::session::close(&path)
}

/// Forgets a registration (its server stopped listening).
#[napi(catch_unwind)]
pub fn handover_withdraw(id: u32) {
    super::offers::withdraw(id)
}

/// Sends the socket listening on `address` (a take message) on control
/// connection `session` as `offer {token}`: the registration's id, 0 when
/// there is none, or a negative libuv errno.
#[napi(catch_unwind)]
pub fn handover_offer(
    session: i32,
    control: String,
    address: HandoverMessage,
    token: u32,
) -> Result<i64> {
    super::offer(session, &control, &address, token)
}

/// The successor `pid` confirmed the socket listening on `address` (a take
/// message): every server on it is told, on its thread. How many were.
#[napi(catch_unwind)]
pub fn handover_confirmed(control: String, address: HandoverMessage, pid: u32) -> Result<u32> {
    super::handed_over(&control, &address, pid)
}

/// Whether this thread serves (now) the control socket at `control`.
#[napi(catch_unwind)]
pub fn handover_claim_control(control: String, thread_id: u32) -> bool {
    super::offers::claim_control(&control, thread_id)
}

/// Whether a thread of this process serves the control socket at `control`.
#[napi(catch_unwind)]
pub fn handover_control_served(control: String) -> bool {
    super::offers::control_served(&control)
}

/// This thread has put its control socket file at `control`; `onIdle()` is
/// called on it when no server of the process is left on that path.
#[napi(catch_unwind)]
pub fn handover_control_in_place(
    env: Env,
    control: String,
    thread_id: u32,
    on_idle: NoticeCallback,
) -> Result<()> {
    super::offers::control_in_place(&env, &control, thread_id, &on_idle)
}

/// This thread, serving `control`, has no server on it left: whether it
/// stops serving it now (no thread has one, or `force`: it could not put
/// its socket there).
#[napi(catch_unwind)]
pub fn handover_release_control(control: String, thread_id: u32, force: bool) -> bool {
    super::offers::release_control(&control, thread_id, force)
}
