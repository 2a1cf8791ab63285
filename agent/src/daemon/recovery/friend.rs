//! A friend's agent: queues a recovery request of a friend's ego for its
//! human, and signs round 1 only once the human approved it.

use std::sync::Arc;

use cyrcles_core::EgoId;
use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{
    MemberShare, RecoveryPending, RecoveryRequest, authorize_recovery, commit,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::record::VerifiedEgo;
use cyrcles_p2p::PeerId;
use rand_core::OsRng;
use tracing::{info, warn};

use super::warning::{own_ego_alert, tell_recorded_nodes};
use crate::daemon::circle::member::{Session, open_session};
use crate::daemon::error::{Conflict, NotFound};
use crate::daemon::peers::friend_record;
use crate::daemon::recovery_queue::{Asked, DecideError, Decision, NewRequest};
use crate::daemon::shares::{notice, refusal};
use crate::daemon::{Error, Result, Shared, lock, notify};

/// A recovery request reached `my_ego`'s node from `peer`.
pub(crate) async fn on_request(
    shared: &Arc<Shared>,
    my_ego: EgoId,
    peer: PeerId,
    message: &Envelope,
) -> Envelope {
    let Ok(request) = message.open::<RecoveryRequest>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let owner = request.body.ego_id;
    if request.body.peer_id != peer.to_bytes() {
        return refusal(refused::INVALID);
    }
    // Cheap, and before any keystore read.
    if let Err(r) = request.check_possession() {
        return refusal(r.code());
    }
    if shared.egos.get(&owner, |_| ()).is_some() {
        own_ego_alert(shared, &request, None);
        return refusal(refused::OWN_EGO);
    }
    // Only a friend whose circle this agent serves gets any work done.
    let Ok(Some(friend)) = shared.keystore.friend(&my_ego, &owner).await else {
        return refusal(refused::NOT_A_FRIEND);
    };
    let held = match shared.keystore.held_shares().await {
        Ok(held) => held
            .iter()
            .filter(|h| h.owner_ego_id == owner && h.my_ego_id == my_ego)
            .map(|h| h.generation)
            .collect::<Vec<_>>(),
        Err(_) => return refusal(refused::UNAVAILABLE),
    };
    if held.is_empty() {
        return refusal(refused::NO_SHARE);
    }
    let (decision, new) = queue(shared, &request, &friend, peer);
    if new {
        // The request passed the cheap checks and is new to this member:
        // the devices the record names hear of it from here too.
        tell_recorded_nodes(shared, my_ego, &request);
    }
    if decision == Decision::Denied {
        return refusal(refused::DENIED);
    }
    let Ok(key) = shared.data_key() else {
        return refusal(refused::UNAVAILABLE);
    };
    // The share of the circle the record names, not the newest one held:
    // a copy of the owner's device can deal a next generation to the
    // members (its link then waits for their humans), and a new device
    // told that circle's data could never gather a threshold.
    let Some(record) = friend_record(shared, &my_ego, owner).await else {
        return refusal(refused::UNAVAILABLE);
    };
    let current = u64::try_from(record.record().chain.len()).unwrap_or(u64::MAX);
    if !held.contains(&current) {
        return refusal(refused::NO_SHARE);
    }
    match decision {
        Decision::Denied => refusal(refused::DENIED),
        Decision::Pending => pending(shared, &key, &owner, current, 0).await,
        Decision::Approved => {
            // The recovery delay: the human may still withdraw the approval
            // (docs/circle-authority.md, P4), so nothing is signed yet.
            let now = shared.now().secs();
            let approved_at = lock(&shared.recoveries)
                .incoming
                .approved_at(&owner, &request.new_key(), &peer, now)
                .unwrap_or(now);
            let wait = approved_at
                .saturating_add(shared.settings.recovery_delay)
                .saturating_sub(now);
            if wait > 0 {
                return pending(shared, &key, &owner, current, wait).await;
            }
            sign_round1(shared, peer, &request, &record, friend.id, &key).await
        }
    }
}

/// The answer while this member does not sign: who it is in the circle and
/// the circle's public data, and how long an approved recovery still waits.
async fn pending(
    shared: &Shared,
    key: &crate::keystore::seal::SymmetricKey,
    owner: &EgoId,
    generation: u64,
    wait_secs: u64,
) -> Envelope {
    let Ok(Some((_, secret))) = shared.keystore.held_share(key, owner, generation).await else {
        return refusal(refused::UNAVAILABLE);
    };
    let Ok(share) = MemberShare::from_secret_cbor(&secret) else {
        return refusal(refused::UNAVAILABLE);
    };
    Envelope::wrap(
        kind::RECOVERY_PENDING,
        &RecoveryPending {
            member: share.member(),
            circle_id: share.circle_id(),
            public: share.public().clone(),
            wait_secs,
        },
    )
}

/// Finds or queues the request; returns the person's decision so far,
/// and whether the request is new (queued now). A new request always
/// gets in (see `recovery_queue.rs`).
fn queue(
    shared: &Shared,
    request: &RecoveryRequest,
    friend: &crate::keystore::FriendRow,
    peer: PeerId,
) -> (Decision, bool) {
    let now = shared.now().secs();
    let owner = request.body.ego_id;
    let mut r = lock(&shared.recoveries);
    if let Some(d) = r.incoming.decision(&owner, &request.new_key(), &peer, now) {
        return (d, false);
    }
    let fingerprint = request.fingerprint();
    let (id, gone) = r.incoming.push(
        NewRequest {
            what: Asked::Recovery,
            owner,
            petname: friend.petname.clone(),
            new_key: request.new_key(),
            peer,
            fingerprint: fingerprint.clone(),
        },
        now,
    );
    drop(r);
    for old in gone {
        info!(owner = %old.owner, id = old.id, "a waiting recovery request made room for a newer one");
    }
    let text = format!(
        "your friend \"{}\" asks to recover their ego on a new device (request {id}, \
         fingerprint {fingerprint}). Call them: approve with `cyrcles recovery approve {id}` \
         only if they read you the same digits",
        crate::text::untrusted(&friend.petname)
    );
    info!(%owner, id, friend = %friend.petname, "a recovery request is waiting for the person");
    notify::send(
        shared.clock.instant(),
        "Cyrcles: a friend asks for recovery",
        &text,
    );
    notice(shared, text);
    (Decision::Pending, true)
}

/// An approved request: check it against the ego's current record and
/// commit to a signing session.
async fn sign_round1(
    shared: &Shared,
    peer: PeerId,
    request: &RecoveryRequest,
    record: &VerifiedEgo,
    friend_id: i64,
    key: &crate::keystore::seal::SymmetricKey,
) -> Envelope {
    let owner = request.body.ego_id;
    let generation = u64::try_from(record.record().chain.len()).unwrap_or(u64::MAX);
    let share = match shared.keystore.held_share(key, &owner, generation).await {
        Ok(Some((_, secret))) => match MemberShare::from_secret_cbor(&secret) {
            Ok(s) => s,
            Err(_) => return refusal(refused::UNAVAILABLE),
        },
        Ok(None) => return refusal(refused::NO_SHARE),
        Err(_) => return refusal(refused::UNAVAILABLE),
    };
    let message = match authorize_recovery(
        request,
        record,
        &share,
        shared.now(),
        &shared.settings.signing,
    ) {
        Ok(m) => m,
        Err(r) => {
            warn!(%owner, "an approved recovery was refused: {r}");
            notice(
                shared,
                format!("an approved recovery of your friend's ego {owner} was refused: {r}"),
            );
            return refusal(r.code());
        }
    };
    let (nonces, r1) = commit(&share, request.body.session, &mut OsRng);
    let session = Session {
        owner,
        generation,
        message,
        nonces,
        repeer: Some(friend_id),
    };
    if !open_session(shared, request.body.session, peer, session) {
        return refusal(refused::UNAVAILABLE);
    }
    Envelope::wrap(kind::ROUND1, &r1)
}

/// `recovery approve` (`approve = true`) and `recovery deny`.
pub(crate) fn decide(shared: &Shared, id: u64, approve: bool) -> Result<String> {
    let now = shared.now().secs();
    let decided = lock(&shared.recoveries)
        .incoming
        .decide(id, approve, now, shared.settings.recovery_delay)
        .map_err(|e| -> Error {
            match e {
                DecideError::Unknown => NotFound::Recovery(id).into(),
                DecideError::Decided(d) => Conflict::Decided {
                    what: "recovery request",
                    id,
                    decision: d.as_str(),
                }
                .into(),
            }
        })?;
    info!(owner = %decided.owner, id, approve, "recovery request decided");
    let delay = shared.settings.recovery_delay;
    Ok(if approve && delay > 0 {
        format!(
            "approved: this agent signs {:?}'s new key in {}, at their device's next attempt \
             after that; until then `cyrcles recovery deny {id}` withdraws the approval",
            decided.petname,
            crate::text::duration(delay),
        )
    } else if approve {
        format!(
            "approved: this agent signs {:?}'s new key at their device's next attempt",
            decided.petname
        )
    } else {
        format!(
            "denied: {:?}'s new device gets no signature",
            decided.petname
        )
    })
}
