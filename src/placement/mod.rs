//! Where a listening server accepts: on the shared tokio runtime's thread
//! ([`runtime_thread`]) or on the JavaScript thread's own event loop
//! ([`event_loop`]). Both keep the same ownership rules ([`crate::acceptor`]);
//! they differ only in who calls `accept4` and how JavaScript is told.
//!
//! The accept thread costs a cross-thread wake-up and, without a spare core,
//! a context switch per hand-off; accepting on the event loop, which
//! batches as well (TCP_INFO count), measured as fast or faster in both
//! regimes, so it is the automatic choice (bench/JOURNAL.md).

pub mod event_loop;
pub mod runtime_thread;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    Runtime,
    EventLoop,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Runtime => "runtime",
            Placement::EventLoop => "event-loop",
        }
    }
}

/// The `acceptPlacement` option as JavaScript passes it (lib/options.js
/// validates it; a value outside these is refused by napi-rs's conversion as
/// a thrown TypeError, before any Rust runs).
#[napi_derive::napi(string_enum)]
pub enum AcceptPlacement {
    /// The automatic choice ([`automatic`]).
    #[napi(value = "auto")]
    Auto,
    #[napi(value = "runtime")]
    Runtime,
    #[napi(value = "event-loop")]
    EventLoop,
}

impl AcceptPlacement {
    /// The placement asked for; None for the automatic choice.
    pub fn forced(self) -> Option<Placement> {
        match self {
            AcceptPlacement::Auto => None,
            AcceptPlacement::Runtime => Some(Placement::Runtime),
            AcceptPlacement::EventLoop => Some(Placement::EventLoop),
        }
    }
}

/// The placement a server gets when none is forced: the event loop, with
/// or without a spare core. Measured on a 2-CPU machine in both regimes
/// (bench/JOURNAL.md, "Accept placements"): with the server confined to one
/// CPU, and with a core to spare, accepting on the event loop served as
/// many or more connections per second at 1, 32 and 256 in flight, cost the
/// process less CPU per connection, and answered sequential connections as
/// fast or faster; the accept thread led only the median latency with 32
/// connecting at once and a spare core. Nothing measured depends on the
/// machine, so nothing about it is consulted.
pub fn automatic() -> Placement {
    Placement::EventLoop
}
