//! Changes of who holds a circle, and the end of an ego, wait for the
//! humans (docs/circle-authority.md, P2).
//!
//! **Member side.** A friend's link request (a new circle key: someone
//! added or removed, another threshold) or revocation request passes the
//! rules of [`cyrcles_core::circle::authorize`] and is then queued for this
//! person (`cyrcles circle requests`), with the six digits of its
//! [`Change::fingerprint`]. The agent answers `ask_human` until the person
//! approves (`cyrcles circle approve N`), `denied` after `cyrcles circle
//! deny N`. The approval holds for that change (that new circle key, or
//! the end of that ego key), whatever session, time or body the owner's
//! retries carry. Whoever copied the owner's device signs requests with
//! the ego key too: the digits, read by the owner on the phone, tell the
//! owner's change from the thief's. The queue has the bounds of the
//! recovery queue (`recovery_queue.rs`).
//!
//! **Owner side.** A new circle whose link waits for the old members'
//! humans is kept in memory ([`PendingCircle`]): running the same `circle
//! add`, `circle remove` or `circle policy` again uses the same dealing,
//! so the friends' approvals still hold; a restart deals again (new
//! digits). The owner's agent holds that new circle key whole until the
//! link is signed: docs/circle-authority.md, P6, replaces this dealing by a
//! distributed key generation.

use std::collections::BTreeMap;

use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{Change, CirclePublic};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::{CircleSecret, EgoId};
use cyrcles_p2p::PeerId;
use tracing::info;

use crate::control::proto::IncomingChange;
use crate::daemon::error::{Conflict, NotFound};
use crate::daemon::recovery_queue::{Asked, DecideError, Decision, IncomingQueue, NewRequest};
use crate::daemon::shares::{notice, refusal};
use crate::daemon::{Error, Result, Shared, lock, notify};

/// Friends' changes waiting for this person, and this agent's own circle
/// changes waiting for the friends' humans.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    incoming: IncomingQueue,
    pending: BTreeMap<EgoId, PendingCircle>,
}

/// A new circle, dealt and delivered, whose link the old circle's members'
/// humans have not all approved yet.
pub(crate) struct PendingCircle {
    /// The friendships planned, in member order.
    pub(crate) plan: Vec<i64>,
    pub(crate) threshold: u16,
    pub(crate) generation: u64,
    pub(crate) secret: CircleSecret,
    pub(crate) public: CirclePublic,
}

impl std::fmt::Debug for PendingCircle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PendingCircle(generation {}, {} of {})",
            self.generation,
            self.threshold,
            self.plan.len()
        )
    }
}

/// Takes the pending circle of `ego` if it was dealt for this plan,
/// threshold and generation; a pending circle for another plan is dropped.
pub(crate) fn take_pending(
    shared: &Shared,
    ego: &EgoId,
    plan: &[i64],
    threshold: u16,
    generation: u64,
) -> Option<PendingCircle> {
    let p = lock(&shared.changes).pending.remove(ego)?;
    (p.plan == plan && p.threshold == threshold && p.generation == generation).then_some(p)
}

/// Keeps a dealt circle whose link waits for the humans.
pub(crate) fn keep_pending(shared: &Shared, ego: EgoId, pending: PendingCircle) {
    lock(&shared.changes).pending.insert(ego, pending);
}

/// The digits of the change `ego`'s agent waits for, if one is pending.
pub(crate) fn pending_fingerprint(shared: &Shared, ego: &EgoId) -> Option<String> {
    lock(&shared.changes)
        .pending
        .get(ego)
        .map(|p| Change::Link(p.secret.public()).fingerprint(ego))
}

/// Member side: a friend's change passed the rules. `None` if this person
/// approved it (the agent signs), else the answer to send (after queuing
/// it for the person the first time).
pub(crate) fn gate(
    shared: &Shared,
    owner: EgoId,
    petname: &str,
    change: Change,
    peer: PeerId,
) -> Option<Envelope> {
    let now = shared.now().secs();
    let mut c = lock(&shared.changes);
    match c.incoming.decision(&owner, &change.subject(), &peer, now) {
        Some(Decision::Approved) => return None,
        Some(Decision::Denied) => return Some(refusal(refused::DENIED)),
        Some(Decision::Pending | Decision::Objected) => return Some(refusal(refused::ASK_HUMAN)),
        None => {}
    }
    let what = match change {
        Change::Link(_) => Asked::Link,
        Change::Revocation(_) => Asked::Revocation,
    };
    let fingerprint = change.fingerprint(&owner);
    let (id, gone) = c.incoming.push(
        NewRequest {
            what,
            owner,
            petname: petname.to_owned(),
            new_key: change.subject(),
            peer,
            fingerprint: fingerprint.clone(),
        },
        now,
    );
    drop(c);
    for old in gone {
        info!(owner = %old.owner, id = old.id, "a waiting circle request made room for a newer one");
    }
    let name = crate::text::untrusted(petname);
    let asks = match change {
        Change::Link(_) => "change who holds their circle (a friend added or removed)",
        Change::Revocation(_) => "end their ego for good",
    };
    let text = format!(
        "your friend \"{name}\"'s device asks to {asks} (request {id}, fingerprint \
         {fingerprint}). Call them: approve with `cyrcles circle approve {id}` only if they \
         asked and read you the same digits; a copy of their device would ask too"
    );
    info!(%owner, id, friend = %petname, what = what.as_str(), "a circle request is waiting for the person");
    notify::send(
        shared.clock.instant(),
        "Cyrcles: a friend's circle needs you",
        &text,
    );
    notice(shared, text);
    Some(refusal(refused::ASK_HUMAN))
}

/// `circle requests`.
pub(crate) fn list(shared: &Shared) -> Vec<IncomingChange> {
    let now = shared.now().secs();
    lock(&shared.changes)
        .incoming
        .list(now)
        .iter()
        .map(|i| IncomingChange {
            id: i.id,
            what: i.what.as_str().into(),
            friend: i.petname.clone(),
            friend_ego_id: i.owner.to_string(),
            fingerprint: i.fingerprint.clone(),
            state: i.decision.as_str().into(),
            received_at: i.received_at,
        })
        .collect()
}

/// `circle approve` (`approve = true`) and `circle deny`. A decision is
/// final: the owner's agent may sign at once after an approval.
pub(crate) fn decide(shared: &Shared, id: u64, approve: bool) -> Result<String> {
    let now = shared.now().secs();
    let decided = lock(&shared.changes)
        .incoming
        .decide(id, approve, now, 0)
        .map_err(|e| -> Error {
            match e {
                DecideError::Unknown => NotFound::CircleRequest(id).into(),
                DecideError::Decided(d) => Conflict::Decided {
                    what: "circle request",
                    id,
                    decision: d.as_str(),
                }
                .into(),
            }
        })?;
    info!(owner = %decided.owner, id, approve, what = decided.what.as_str(), "circle request decided");
    let name = &decided.petname;
    Ok(match (approve, decided.what) {
        (true, Asked::Revocation) => {
            format!("approved: this agent signs the end of {name:?}'s ego when their device asks")
        }
        (true, _) => {
            format!("approved: this agent signs {name:?}'s new circle when their device asks again")
        }
        (false, _) => format!("denied: {name:?}'s device gets no signature for this change"),
    })
}
