//! Admission of an accepted connection, written once for both placements:
//! the decision ([`crate::admission::Admission::on_accept`]) and what follows
//! from it — queue it, close it (counted, and reported when asked for), or
//! read its PROXY header first.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use super::{Acceptor, Queue};
use crate::admission::header::{self, Outcome};
use crate::admission::{Admission, Next, Proxied};

/// What [`Acceptor::admit`] did with a connection.
pub enum Admitted {
    /// Queued for JavaScript (or handed to a shared group's route).
    Queued,
    /// Refused and closed here. `report`: a refusal JavaScript must be told
    /// of (`'connectionRejected'`) is waiting.
    Refused { report: bool },
    /// A trusted peer whose PROXY header has not all arrived yet: the caller
    /// reads it off the event loop with [`Acceptor::admit_after_header`].
    ReadHeader(OwnedFd, Option<SocketAddr>),
}

impl Acceptor {
    /// Admits one connection `accept4` just returned, with the acceptor's
    /// state locked (`queue`): delivers it when nothing stands in the way,
    /// refuses a blocked or untrusted peer, and reads a trusted peer's
    /// header at once when it is already in the socket (usual when the proxy
    /// sends it with the client's first bytes), so that such a connection is
    /// delivered in the round that accepted it.
    pub fn admit(&self, queue: &mut Queue, conn: OwnedFd) -> Admitted {
        let Some(admission) = &self.admission else {
            queue.push_accepted(conn, None);
            return Admitted::Queued;
        };
        match admission.on_accept(conn) {
            Next::Deliver(conn) => {
                queue.push_accepted(conn, None);
                Admitted::Queued
            }
            Next::Refused => Admitted::Refused {
                report: admission.report,
            },
            Next::ReadHeader(conn, peer) => match header::try_now(conn, peer, admission) {
                Ok(outcome) => match settle(admission, outcome, peer) {
                    Ok((conn, proxied)) => {
                        queue.push_accepted(conn, proxied);
                        Admitted::Queued
                    }
                    Err(report) => Admitted::Refused { report },
                },
                Err(conn) => Admitted::ReadHeader(conn, peer),
            },
        }
    }

    /// Reads a trusted peer's PROXY header (on the runtime, bounded in size
    /// and time), then queues the connection or counts and closes it.
    /// Returns whether JavaScript must be woken (no wake-up is on its way).
    pub async fn admit_after_header(&self, conn: OwnedFd, peer: Option<SocketAddr>) -> bool {
        let Some(admission) = &self.admission else {
            return self.deliver(conn, None);
        };
        let outcome = header::read(conn, peer, admission).await;
        match settle(admission, outcome, peer) {
            Ok((conn, proxied)) => self.deliver(conn, proxied),
            Err(report) => report && self.wake_due(),
        }
    }
}

/// A connection to deliver, with what its PROXY header said.
type Delivery = (OwnedFd, Option<Box<Proxied>>);

/// Counts what a header read came to: the connection to deliver, or (it was
/// refused and closed) whether a refusal is waiting to be reported.
fn settle(
    admission: &Admission,
    outcome: Outcome,
    peer: Option<SocketAddr>,
) -> Result<Delivery, bool> {
    match outcome {
        Outcome::Deliver(conn, proxied) => {
            // The client is who the header names, else the real peer.
            let client = proxied
                .as_ref()
                .filter(|p| !p.header.uses_real_addresses())
                .and_then(|p| p.header.source())
                .or(peer);
            let conn = admission.limit(conn, client)?;
            admission.count(if proxied.is_some() {
                "proxied"
            } else {
                "direct"
            });
            Ok((conn, proxied))
        }
        Outcome::Refused(reason) => Err(admission.refuse(reason, peer)),
    }
}
