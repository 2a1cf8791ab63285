//! The maintenance loop: renews certificates and endpoints when due and
//! retries failed publications. It runs every `maintenance_interval`, and
//! at once when a node's addresses change or after an unlock.

use std::collections::BTreeMap;
use std::sync::Arc;

use cyrcles_core::EgoId;
use cyrcles_core::record::VerifiedEgo;
use cyrcles_p2p::PeerId;
use tracing::{info, warn};

use super::egos::EgoState;
use super::error::Chain;
use super::{Shared, egos, lifecycle, lock};

/// Runs until the daemon stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut stop = shared.stop.subscribe();
    loop {
        tick(&shared).await;
        tokio::select! {
            _ = tokio::time::sleep(shared.settings.maintenance_interval) => {}
            _ = shared.wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One pass over the egos, each under its reservation (a slow ego holds
/// up neither the others nor a read of the table).
pub(crate) async fn tick(shared: &Shared) {
    let Ok(key) = shared.data_key() else {
        return;
    };
    let mut to_publish = Vec::new();
    let mut via_friends = Vec::new();
    let now = shared.now();
    for id in shared.egos.ids() {
        let busy = shared.egos.reserve(id).await;
        let Some(state) = shared.egos.get(&id, EgoState::clone) else {
            continue;
        };
        if state.damage.is_some() {
            continue;
        }
        if state.circle.is_some()
            && !state.is_revoked()
            && state.node.is_some()
            && state
                .record
                .as_ref()
                .is_some_and(|r| now >= egos::rotation_due(&r.cert.body))
            && state.friends_retry.is_none_or(|(at, _)| now >= at)
        {
            via_friends.push(id);
        }
        match lifecycle::renew_if_due(shared, &busy, &state, &key).await {
            Ok(Some(bytes)) => {
                if let Some(node) = state.node.clone() {
                    to_publish.push((id, node, bytes));
                }
            }
            Ok(None) => {}
            Err(e) => {
                warn!(ego = %state.row.name, "renewal failed: {}", Chain(&e));
                let message = e.to_string();
                if let Err(e) = shared.keystore.set_status(&id, None, Some(&message)).await {
                    warn!("cannot record the failure: {}", Chain(&e));
                }
                shared
                    .egos
                    .update(&id, |s| s.row.last_error = Some(message));
            }
        }
    }
    for id in via_friends {
        rotate_through_friends(shared, id).await;
    }
    for (id, node, bytes) in to_publish {
        let _ = egos::publish(shared, id, &node, bytes).await;
    }
    sweep_shares(shared).await;
}

/// Member side: deletes the shares of friends' circles that the friends'
/// records no longer name (this friend was left out of a new circle, or
/// the circle changed while it was offline). At most every
/// `circles.share_sweep_secs`.
async fn sweep_shares(shared: &Shared) {
    let now = shared.now();
    {
        let mut last = lock(&shared.share_sweep);
        if last.is_some_and(|t| now.secs() < t.secs().saturating_add(shared.settings.share_sweep)) {
            return;
        }
        *last = Some(now);
    }
    let Ok(held) = shared.keystore.held_shares().await else {
        return;
    };
    // Each friend's ego once, looked up through the node of this agent's
    // ego that is the friend.
    let mut owners: BTreeMap<EgoId, (EgoId, u64)> = BTreeMap::new();
    for h in &held {
        let e = owners
            .entry(h.owner_ego_id)
            .or_insert((h.my_ego_id, h.generation));
        e.1 = e.1.min(h.generation);
    }
    for (owner, (my_ego, oldest)) in owners {
        let Some(record) = super::peers::friend_record(shared, &my_ego, owner).await else {
            continue;
        };
        repoint(shared, &my_ego, owner, &record).await;
        let current = u64::try_from(record.record().chain.len()).unwrap_or(u64::MAX);
        if oldest < current {
            match shared.keystore.drop_old_shares(&owner, current).await {
                Ok(n) if n > 0 => {
                    info!(%owner, dropped = n, "shares of a friend's former circle deleted");
                }
                Ok(_) => {}
                Err(e) => warn!(%owner, "cannot delete old shares: {}", Chain(&e)),
            }
        }
    }
}

/// After a recovery (a certificate of a new epoch), every member follows
/// its friend to the node the record names, not only the members that
/// signed (docs/circle-authority.md, P5): the node it knew may be a
/// thief's. A rotation on the device's word (epoch 0, the lost key's)
/// moves no friendship, and a record without live endpoints proves nothing.
async fn repoint(shared: &Shared, my_ego: &EgoId, owner: EgoId, record: &VerifiedEgo) {
    if record.cert().epoch == 0 {
        return;
    }
    let Some(endpoints) = record.live_endpoints(shared.now()) else {
        return;
    };
    let Ok(Some(friend)) = shared.keystore.friend(my_ego, &owner).await else {
        return;
    };
    if endpoints
        .peers
        .iter()
        .any(|p| p.peer_id == friend.friend_peer_id)
    {
        return;
    }
    let Some(node) = endpoints
        .peers
        .iter()
        .find(|p| PeerId::from_bytes(&p.peer_id).is_ok())
    else {
        return;
    };
    match shared
        .keystore
        .set_friend_peer(friend.id, &node.peer_id)
        .await
    {
        Ok(()) => {
            info!(%owner, friend = %friend.petname, "a recovered friend's new node is now the friend's node")
        }
        Err(e) => warn!(%owner, "cannot record a recovered friend's node: {}", Chain(&e)),
    }
}

/// First wait after a failed rotation through friends; it doubles up to
/// [`MAX_RETRY_SECS`].
const FIRST_RETRY_SECS: u64 = 60;
/// Longest wait between two tries.
const MAX_RETRY_SECS: u64 = 3600;

/// One try at rotating `id`'s key through its friends; on failure, the
/// error is recorded for `ego show` and the next try is scheduled.
async fn rotate_through_friends(shared: &Shared, id: cyrcles_core::EgoId) {
    match super::circle::owner::rotate_via_friends(shared, id).await {
        Ok(bytes) => {
            let node = shared
                .egos
                .update(&id, |s| {
                    s.friends_retry = None;
                    s.friends_error = None;
                    s.node.clone()
                })
                .flatten();
            if let Some(node) = node {
                let _ = egos::publish(shared, id, &node, bytes).await;
            }
        }
        Err(e) => {
            warn!(ego = %id, "rotation through friends failed: {}", Chain(&e));
            let message = format!("rotation through friends: {e}");
            if let Err(e) = shared.keystore.set_status(&id, None, Some(&message)).await {
                warn!("cannot record the failure: {}", Chain(&e));
            }
            let now = shared.now();
            shared.egos.update(&id, |s| {
                let wait = s
                    .friends_retry
                    .map_or(FIRST_RETRY_SECS, |(_, w)| (w * 2).min(MAX_RETRY_SECS));
                s.friends_retry = Some((now.plus(wait), wait));
                s.row.last_error = Some(message.clone());
                s.friends_error = Some(message);
            });
        }
    }
}
