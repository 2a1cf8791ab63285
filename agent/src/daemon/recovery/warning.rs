//! Warning the owner of a recovery (docs/circle-authority.md, P4): the
//! person whose device still holds an ego is told when someone asks the
//! circle to recover it, whichever way the news arrives.
//!
//! * The new device sends its request to the nodes the record names
//!   (`recovery-request`, answered `own_ego`): [`own_ego_alert`].
//! * Each member that queues a new request for its human tells those
//!   nodes itself, from its own node ([`tell_recorded_nodes`], a
//!   `recovery-notice` carrying the request as received), so a modified
//!   new device that skips its own send still cannot hide the attempt.
//!   The receiver ([`on_notice`]) checks the request itself.
//!
//! The person is told once per new key, whichever path comes first
//! (at most [`MAX_ALERTS`] keys are remembered). A member has at most
//! [`MAX_NOTICES_OUT`] notices on their way; each waits at most
//! [`ANSWER_WITHIN`] for the record and for each node. A notice from a
//! node that is not a friend's, or for an ego the receiving node does not
//! hold, is refused before any keystore write or notification.

use std::sync::Arc;

use cyrcles_core::EgoId;
use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{RecoveryNotice, RecoveryNoticed, RecoveryRequest, Refusal};
use cyrcles_core::envelope::Envelope;
use cyrcles_p2p::PeerId;
use tracing::{debug, info, warn};

use crate::daemon::peers::{ANSWER_WITHIN, friend_record, friends_of, published_addrs};
use crate::daemon::shares::{notice, refusal};
use crate::daemon::{Shared, lock, notify};

/// Own-ego alerts remembered (so a repeated request alerts once).
pub(crate) const MAX_ALERTS: usize = 64;

/// Notices a member has on their way at once; beyond, a new request's
/// notice is dropped (and logged).
pub(crate) const MAX_NOTICES_OUT: usize = 16;

/// The old device (or another device holding this ego) hears of a
/// recovery: the person is told, once per new key. `told_by` names the
/// friend that passed the request on, if one did.
pub(crate) fn own_ego_alert(shared: &Shared, request: &RecoveryRequest, told_by: Option<&str>) {
    if request.check_possession().is_err() {
        return;
    }
    {
        let mut r = lock(&shared.recoveries);
        let seen = (request.body.ego_id, request.new_key());
        if r.alerted.contains(&seen) {
            return;
        }
        if r.alerted.len() >= MAX_ALERTS {
            r.alerted.remove(0);
        }
        r.alerted.push(seen);
    }
    let owner = request.body.ego_id;
    let name = shared
        .egos
        .get(&owner, |s| s.row.name.clone())
        .unwrap_or_else(|| owner.to_string());
    let node = PeerId::from_bytes(&request.body.peer_id)
        .map_or_else(|_| "unknown".to_string(), |p| p.to_string());
    let via = told_by.map_or_else(String::new, |f| {
        format!(
            "; your friend \"{}\" was asked and told this device",
            crate::text::untrusted(f)
        )
    });
    let text = format!(
        "someone is recovering your ego {owner} on another device (node {node}, fingerprint \
         {}{via}). If it is not you, run `cyrcles recovery object {}` and call your friends: \
         they deny it with `cyrcles recovery deny`",
        request.fingerprint(),
        crate::text::untrusted(&name)
    );
    warn!(%owner, %node, ?told_by, "a recovery of this agent's ego was requested from another device");
    notify::send(
        shared.clock.instant(),
        "Cyrcles: your ego is being recovered elsewhere",
        &text,
    );
    notice(shared, text);
}

/// Gives back a place among the notices on their way when dropped.
struct NoticeSlot(Arc<Shared>);

impl Drop for NoticeSlot {
    fn drop(&mut self) {
        let mut r = lock(&self.0.recoveries);
        r.notices_out = r.notices_out.saturating_sub(1);
    }
}

/// A member queued a new recovery request of its friend's ego: it tells
/// every node the ego's current record names, from the node of its ego
/// `my_ego`, in a task of its own (the new device's answer never waits).
pub(crate) fn tell_recorded_nodes(shared: &Arc<Shared>, my_ego: EgoId, request: &RecoveryRequest) {
    let owner = request.body.ego_id;
    let Some(node) = shared.egos.get(&my_ego, |s| s.node.clone()).flatten() else {
        return;
    };
    {
        let mut r = lock(&shared.recoveries);
        if r.notices_out >= MAX_NOTICES_OUT {
            warn!(%owner, "too many recovery notices on their way: this one is not sent");
            return;
        }
        r.notices_out += 1;
    }
    let slot = NoticeSlot(shared.clone());
    let envelope = Envelope::wrap(
        kind::RECOVERY_NOTICE,
        &RecoveryNotice {
            request: request.clone(),
        },
    );
    tokio::spawn(async move {
        let shared = &slot.0;
        let Some(record) = friend_record(shared, &my_ego, owner).await else {
            info!(%owner, "no record found: the friend's devices are not told of the recovery request");
            return;
        };
        let now = shared.now();
        let peers: Vec<Vec<u8>> = record
            .live_endpoints(now)
            .map(|e| e.peers.iter().map(|p| p.peer_id.clone()).collect())
            .unwrap_or_default();
        for peer_bytes in peers {
            let Ok(peer) = PeerId::from_bytes(&peer_bytes) else {
                continue;
            };
            let addrs = published_addrs(&record, &peer_bytes, now);
            match tokio::time::timeout(ANSWER_WITHIN, node.circle(peer, addrs, &envelope)).await {
                Ok(Ok(answer)) if answer.kind == kind::RECOVERY_NOTICED => {
                    info!(%owner, %peer, "the friend's device was told of a recovery request");
                }
                Ok(Ok(answer)) => {
                    debug!(%owner, %peer, kind = answer.kind, "a recorded node did not take the recovery notice");
                }
                Ok(Err(e)) => debug!(%owner, %peer, "a recovery notice was not delivered: {e}"),
                Err(_) => debug!(%owner, %peer, "a recovery notice got no answer in time"),
            }
        }
    });
}

/// A `recovery-notice` reached the node of this agent's ego `my_ego` from
/// `peer`: if the request it carries is for `my_ego`, proves possession of
/// its new key, and `peer` is a friend's node, the person is told.
pub(crate) async fn on_notice(
    shared: &Shared,
    my_ego: EgoId,
    peer: PeerId,
    message: &Envelope,
) -> Envelope {
    let Ok(RecoveryNotice { request }) = message.open::<RecoveryNotice>(MAX_CIRCLE_MESSAGE_SIZE)
    else {
        return refusal(refused::INVALID);
    };
    // In memory first: the ego must be this node's, and held here.
    if request.body.ego_id != my_ego || shared.egos.get(&my_ego, |_| ()).is_none() {
        return refusal(Refusal::WrongEgo.code());
    }
    if let Err(r) = request.check_possession() {
        return refusal(r.code());
    }
    let peer_bytes = peer.to_bytes();
    let friend = match friends_of(shared, &my_ego).await {
        Ok(friends) => friends
            .into_values()
            .find(|f| f.friend_peer_id == peer_bytes),
        Err(_) => return refusal(refused::UNAVAILABLE),
    };
    let Some(friend) = friend else {
        return refusal(refused::NOT_A_FRIEND);
    };
    own_ego_alert(shared, &request, Some(&friend.petname));
    Envelope::wrap(kind::RECOVERY_NOTICED, &RecoveryNoticed)
}
