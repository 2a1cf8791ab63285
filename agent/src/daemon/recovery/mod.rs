//! Recovery after a lost device (DESIGN.md, flow 6).
//!
//! **The new device** (`cyrcles recover`): it starts a node with a new
//! device key, fetches the ego's current record, makes a new ego key and
//! asks every friend named by the kit, again every
//! `circles.recovery_poll_secs`, with a [`RecoveryRequest`] signed by the
//! new key. It also sends the request once to the nodes the record
//! names, so a still-running old device shows it; each friend that
//! queues the request tells those nodes too ([`warning`]), so a modified
//! new device cannot keep the old one unaware. Friends answer
//! "pending" (with their member id and the circle's public data) until
//! their human approves, then with FROST commitments. With a threshold of
//! commitments the new device runs round 2, installs the certificate
//! (seq + 1, the new key), stores the ego with the friends and the circle
//! and publishes: bridges refuse the old key from then on.
//!
//! **A friend's agent** queues each request for its human (`cyrcles
//! recovery list`), with six digits to compare by phone, and signs only
//! after `cyrcles recovery approve`, and only a certificate that is the
//! next one of the ego's current record
//! ([`cyrcles_core::circle::authorize_recovery`]). Once it signed, the
//! friendship's node becomes the new device's. The queue is bounded so
//! that junk requests never keep the real one out: denied requests stop
//! counting at once, one node holds one request, and at a bound the new
//! request gets in (`recovery_queue.rs`).
//!
//! Queues and recoveries in progress live in memory: a restarted friend
//! sees the request again at the next poll (and must approve it again);
//! a restarted new device must run `cyrcles recover` again.
//!
//! [`new_device`] holds the first side, [`friend`] the second, and
//! [`warning`] what tells the owner's device; they keep their state in
//! [`Recoveries`].

pub(crate) mod friend;
pub(crate) mod new_device;
pub(crate) mod objection;
pub(crate) mod warning;

use std::collections::BTreeMap;

use cyrcles_core::{EgoId, PublicKey};

use super::recovery_queue::IncomingQueue;
use super::{Shared, lock};
use crate::control::proto::{IncomingRecovery, OutgoingRecovery};

pub(crate) use friend::decide;
pub(crate) use new_device::start;

/// Recoveries: friends' requests (member side) and this device's own.
#[derive(Debug, Default)]
pub(crate) struct Recoveries {
    incoming: IncomingQueue,
    outgoing: BTreeMap<EgoId, OutgoingRecovery>,
    /// Recoveries of this agent's egos (ego, new key) the person was told
    /// of (`warning.rs`); `recovery object` objects to them.
    alerted: Vec<(EgoId, PublicKey)>,
    /// Recovery notices on their way (`warning.rs`).
    notices_out: usize,
}

/// `recovery list`.
pub(crate) fn list(shared: &Shared) -> (Vec<IncomingRecovery>, Vec<OutgoingRecovery>) {
    let now = shared.now().secs();
    let mut r = lock(&shared.recoveries);
    let incoming = r
        .incoming
        .list(now)
        .iter()
        .map(|i| IncomingRecovery {
            id: i.id,
            friend: i.petname.clone(),
            friend_ego_id: i.owner.to_string(),
            fingerprint: i.fingerprint.clone(),
            peer_id: i.peer.to_string(),
            state: i.decision.as_str().into(),
            objected: i.objected,
            received_at: i.received_at,
        })
        .collect();
    (incoming, r.outgoing.values().cloned().collect())
}
