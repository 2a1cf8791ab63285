//! Objections to a recovery (docs/circle-authority.md, P4; protocol
//! section 9.2).
//!
//! **The device holding the ego** (`cyrcles recovery object EGO`): it was
//! told of a recovery (`warning.rs`) and its person did not ask for it.
//! It sends each friend of the ego an [`Objection`] signed by the current
//! ego key, for every recovery of that ego it was told of.
//!
//! **A member** that holds a request of that recovery checks the
//! objection against the ego's current record and marks the request
//! (`recovery_queue.rs`): a pending one is shown with the objection, an
//! approved one is paused until its person decides again. A thief holding
//! the stolen device holds the current key as well, so an objection only
//! ever hands the decision back to the person, once per request.
//! Objections about recoveries the member does not hold are answered
//! before any keystore read or DHT lookup.

use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{Noted, Objection, ObjectionBody, ObjectionNoted};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::{EgoId, PublicKey};
use cyrcles_p2p::PeerId;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::daemon::circle::snapshot;
use crate::daemon::egos::ego_by_name;
use crate::daemon::error::NotFound;
use crate::daemon::peers::{ANSWER_WITHIN, friend_peer, friend_record, friends_of, reach};
use crate::daemon::shares::{notice, refusal};
use crate::daemon::{Result, Shared, lock, notify};

/// Recoveries of one ego objected to at once (the newest the person was
/// told of).
const MAX_OBJECTED: usize = 4;

/// An objection reached the node of this agent's ego `my_ego`.
pub(crate) async fn on_objection(
    shared: &Shared,
    my_ego: EgoId,
    peer: PeerId,
    message: &Envelope,
) -> Envelope {
    let Ok(objection) = message.open::<Objection>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let owner = objection.body.ego_id;
    let new_key = objection.body.new_key;
    let now = shared.now();
    // In memory first: only a recovery this member holds is worth a look.
    if !lock(&shared.recoveries)
        .incoming
        .knows(&owner, &new_key, now.secs())
    {
        return noted(Noted::Unknown);
    }
    let Ok(Some(friend)) = shared.keystore.friend(&my_ego, &owner).await else {
        return refusal(refused::NOT_A_FRIEND);
    };
    let Some(record) = friend_record(shared, &my_ego, owner).await else {
        return refusal(refused::UNAVAILABLE);
    };
    if let Err(r) = objection.verify(&record, now) {
        warn!(%owner, %peer, "an objection that does not check was refused: {r}");
        return refusal(r.code());
    }
    let (outcome, ids) = lock(&shared.recoveries)
        .incoming
        .object(&owner, &new_key, now.secs());
    if matches!(outcome, Noted::Shown | Noted::Paused) {
        let name = crate::text::untrusted(&friend.petname);
        let list = ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let paused = if outcome == Noted::Paused {
            " Your approval is paused."
        } else {
            ""
        };
        let text = format!(
            "the device holding your friend \"{name}\"'s ego objects to recovery request {list}: \
             it says they did not ask for it.{paused} A thief holding their old device could say \
             so too: call {name}, then `cyrcles recovery approve {}` (final) or `cyrcles recovery \
             deny {}`",
            ids.first().copied().unwrap_or_default(),
            ids.first().copied().unwrap_or_default(),
        );
        info!(%owner, ?ids, ?outcome, "an objection to a recovery was noted");
        notify::send(
            shared.clock.instant(),
            "Cyrcles: a recovery is disputed",
            &text,
        );
        notice(shared, text);
    }
    noted(outcome)
}

fn noted(noted: Noted) -> Envelope {
    Envelope::wrap(kind::OBJECTION_NOTED, &ObjectionNoted { noted })
}

/// `recovery object EGO`: objects, to every friend of the ego, to each
/// recovery of it this device was told of.
pub(crate) async fn object(shared: &Shared, name: &str) -> Result<String> {
    let ego = ego_by_name(shared, name)?;
    let keys: Vec<PublicKey> = {
        let r = lock(&shared.recoveries);
        let mine: Vec<PublicKey> = r
            .alerted
            .iter()
            .filter(|(o, _)| *o == ego)
            .map(|(_, k)| *k)
            .collect();
        mine.into_iter().rev().take(MAX_OBJECTED).collect()
    };
    if keys.is_empty() {
        return Err(NotFound::RecoveryAlert(name.to_owned()).into());
    }
    let snap = snapshot(shared, &ego)?;
    let friends = friends_of(shared, &ego).await?;
    let now = shared.now();
    let mut sends = JoinSet::new();
    for key in &keys {
        let envelope = Envelope::wrap(
            kind::OBJECTION,
            &ObjectionBody {
                ego_id: ego,
                new_key: *key,
                issued_at: now,
            }
            .sign(&snap.ego_key),
        );
        for friend in friends.values() {
            let Ok(peer) = friend_peer(friend) else {
                continue;
            };
            let (node, envelope, friend) = (snap.node.clone(), envelope.clone(), friend.clone());
            sends.spawn(async move {
                let addrs = reach(&node, &friend, now).await;
                let answer =
                    tokio::time::timeout(ANSWER_WITHIN, node.circle(peer, addrs, &envelope)).await;
                let noted = match answer {
                    Ok(Ok(reply)) if reply.kind == kind::OBJECTION_NOTED => reply
                        .open::<ObjectionNoted>(MAX_CIRCLE_MESSAGE_SIZE)
                        .ok()
                        .map(|n| n.noted),
                    _ => None,
                };
                (friend.petname, noted)
            });
        }
    }
    let mut told = Vec::new();
    while let Some(done) = sends.join_next().await {
        let Ok((friend, outcome)) = done else {
            continue;
        };
        let what = match outcome {
            Some(Noted::Shown) => "shown to them",
            Some(Noted::Paused) => "their approval is paused",
            Some(Noted::Dropped) => "they had decided already",
            Some(Noted::Unknown) => "no such request there",
            None => "not reached",
        };
        told.push(format!("{friend}: {what}"));
    }
    told.sort();
    told.dedup();
    info!(%ego, attempts = keys.len(), "objected to recoveries of this ego");
    Ok(format!(
        "objected to {} recovery attempt(s); {}. Call your friends so that they deny it",
        keys.len(),
        told.join("; ")
    ))
}
