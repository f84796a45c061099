//! Admission for rust-net, decided on an accepted socket before JavaScript
//! wakes: a PROXY protocol v1/v2 parser ([`proxy`]), Node-compatible address
//! rules for `blockList` and trusted proxies ([`cidr`]), the policy that
//! combines them ([`policy`]), and per-client connection and rate limits
//! ([`peers`]).
//!
//! Everything here is sans-IO and synchronous: bytes and addresses in,
//! decisions out. The addon owns the sockets, the reads and the timers; this
//! crate owns the rules, so they can be unit-tested, property-tested and
//! fuzzed without a socket or a Node process.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod cidr;
mod crc32c;
pub mod peers;
pub mod policy;
pub mod proxy;

pub use crc32c::{crc32c, Crc32c};
