//! Friends' requests waiting for this person (member side), bounded so
//! that junk from strangers never keeps the real one out: recoveries on a
//! new device, and changes of a friend's circle or the end of their ego
//! ([`Asked`]; one queue each, each with its own ids).
//!
//! Anyone who knows a friend's ego id can send requests for it: a new
//! device is a new node, so requests cannot be limited to known peers,
//! and a request is cheap (a fresh key signs it). The queue holds:
//!
//! * **pending** requests: at most [`MAX_PENDING_PER_OWNER`] per friend's
//!   ego and [`MAX_PENDING`] in all, and one per sending node (a node's
//!   new request replaces its older one). At a bound the new request still
//!   gets in: the oldest pending request of that ego (or, for the total,
//!   of the ego holding the most) goes. A real new device asks again at
//!   each poll, so it is back within seconds; junk has to keep coming.
//! * **decided** requests, which no longer count: approved ones wait for
//!   the new device's next attempt ([`DECIDED_TTL_SECS`]), denied ones
//!   stay for the person to see and so that a repeat is answered
//!   `denied` ([`DENIED_TTL_SECS`]). At most [`MAX_DECIDED_PER_OWNER`]
//!   per ego; the oldest go first.
//!
//! Pending requests expire after [`PENDING_TTL_SECS`].
//!
//! An objection from the device holding the ego's current key
//! (`objection.rs`) marks the requests of that recovery: a pending one is
//! shown with it, an approved one is paused ([`Decision::Objected`]) until
//! the person confirms or withdraws. One objection per request; the
//! person's decision after it is final.

use cyrcles_core::circle::Noted;
use cyrcles_core::{EgoId, PublicKey};
use cyrcles_p2p::PeerId;

/// Pending requests kept per friend's ego.
pub(crate) const MAX_PENDING_PER_OWNER: usize = 4;
/// Pending requests kept in all.
pub(crate) const MAX_PENDING: usize = 32;
/// Decided requests kept per friend's ego.
pub(crate) const MAX_DECIDED_PER_OWNER: usize = 8;
/// How long a pending request is kept.
pub(crate) const PENDING_TTL_SECS: u64 = 7 * 86_400;
/// How long an approved request is kept (the recovery asks for 7 days).
pub(crate) const DECIDED_TTL_SECS: u64 = 7 * 86_400;
/// How long a denied request is kept.
pub(crate) const DENIED_TTL_SECS: u64 = 86_400;

/// What a friend asks this person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    /// To certify their new device's key (the key is the request's).
    Recovery,
    /// To sign the next link of their circle (the key is the new circle's).
    Link,
    /// To end their ego (the key is the one it ends).
    Revocation,
}

impl Asked {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Asked::Recovery => "recovery",
            Asked::Link => "circle-change",
            Asked::Revocation => "revocation",
        }
    }
}

/// The person's decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Pending,
    Approved,
    Denied,
    /// Approved, then objected to by the device holding the current key:
    /// nothing is signed until the person confirms or withdraws.
    Objected,
}

impl Decision {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Decision::Pending => "pending",
            Decision::Approved => "approved",
            Decision::Denied => "denied",
            Decision::Objected => "objected",
        }
    }
}

/// A friend's request, waiting for this person or decided.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub(crate) id: u64,
    pub(crate) what: Asked,
    pub(crate) owner: EgoId,
    pub(crate) petname: String,
    pub(crate) new_key: PublicKey,
    pub(crate) peer: PeerId,
    pub(crate) fingerprint: String,
    pub(crate) received_at: u64,
    /// When the person decided (`None` while pending).
    pub(crate) decided_at: Option<u64>,
    pub(crate) decision: Decision,
    /// The device holding the ego's current key objected to it.
    pub(crate) objected: bool,
}

/// A new request, before it has an id.
#[derive(Debug, Clone)]
pub(crate) struct NewRequest {
    pub(crate) what: Asked,
    pub(crate) owner: EgoId,
    pub(crate) petname: String,
    pub(crate) new_key: PublicKey,
    pub(crate) peer: PeerId,
    pub(crate) fingerprint: String,
}

/// Why a decision could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecideError {
    /// No such request.
    Unknown,
    /// Already decided.
    Decided(Decision),
}

/// The requests, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct IncomingQueue {
    items: Vec<Incoming>,
    next_id: u64,
}

impl IncomingQueue {
    /// Forgets what has expired.
    fn prune(&mut self, now: u64) {
        self.items.retain(|i| {
            let (from, ttl) = match (i.decision, i.decided_at) {
                (Decision::Pending, _) | (_, None) => (i.received_at, PENDING_TTL_SECS),
                (Decision::Approved | Decision::Objected, Some(at)) => (at, DECIDED_TTL_SECS),
                (Decision::Denied, Some(at)) => (at, DENIED_TTL_SECS),
            };
            now < from.saturating_add(ttl)
        });
    }

    /// The person's decision on this very request (same ego, key and
    /// node), if it is known.
    pub(crate) fn decision(
        &mut self,
        owner: &EgoId,
        new_key: &PublicKey,
        peer: &PeerId,
        now: u64,
    ) -> Option<Decision> {
        self.prune(now);
        self.items
            .iter()
            .find(|i| i.owner == *owner && i.new_key == *new_key && i.peer == *peer)
            .map(|i| i.decision)
    }

    fn pending(&self) -> impl Iterator<Item = &Incoming> {
        self.items
            .iter()
            .filter(|i| i.decision == Decision::Pending)
    }

    fn remove_first(&mut self, pred: impl Fn(&Incoming) -> bool) -> Option<Incoming> {
        let at = self.items.iter().position(pred)?;
        Some(self.items.remove(at))
    }

    /// Queues a new pending request (the caller checked it is not known
    /// yet). Returns its id and the requests it pushed out.
    pub(crate) fn push(&mut self, r: NewRequest, now: u64) -> (u64, Vec<Incoming>) {
        self.prune(now);
        let mut gone = Vec::new();
        let pending = |i: &Incoming| i.decision == Decision::Pending;
        // One pending request per sending node.
        while let Some(old) = self.remove_first(|i| pending(i) && i.peer == r.peer) {
            gone.push(old);
        }
        if self.pending().filter(|i| i.owner == r.owner).count() >= MAX_PENDING_PER_OWNER
            && let Some(old) = self.remove_first(|i| pending(i) && i.owner == r.owner)
        {
            gone.push(old);
        }
        if self.pending().count() >= MAX_PENDING {
            let fullest = self.fullest_owner();
            if let Some(old) = self.remove_first(|i| pending(i) && Some(i.owner) == fullest) {
                gone.push(old);
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        self.items.push(Incoming {
            id,
            what: r.what,
            owner: r.owner,
            petname: r.petname,
            new_key: r.new_key,
            peer: r.peer,
            fingerprint: r.fingerprint,
            received_at: now,
            decided_at: None,
            decision: Decision::Pending,
            objected: false,
        });
        (id, gone)
    }

    /// The ego with the most pending requests (ties: the one whose oldest
    /// is oldest).
    fn fullest_owner(&self) -> Option<EgoId> {
        let mut counts: Vec<(EgoId, usize)> = Vec::new();
        for i in self.pending() {
            match counts.iter_mut().find(|(o, _)| *o == i.owner) {
                Some((_, n)) => *n += 1,
                None => counts.push((i.owner, 1)),
            }
        }
        // `counts` is in order of each ego's oldest request: the first
        // maximum wins ties.
        let most = counts.iter().map(|(_, n)| *n).max()?;
        counts.into_iter().find(|(_, n)| *n == most).map(|(o, _)| o)
    }

    /// When the person approved this very request, if they did.
    pub(crate) fn approved_at(
        &mut self,
        owner: &EgoId,
        new_key: &PublicKey,
        peer: &PeerId,
        now: u64,
    ) -> Option<u64> {
        self.prune(now);
        self.items
            .iter()
            .find(|i| i.owner == *owner && i.new_key == *new_key && i.peer == *peer)
            .filter(|i| i.decision == Decision::Approved)
            .and_then(|i| i.decided_at)
    }

    /// The person decides on request `id`; a decided request no longer
    /// counts against the pending bounds. An approval can be withdrawn (a
    /// denial after it) for `withdraw_within` seconds after it was made:
    /// the recovery delay, in which this member does not sign.
    pub(crate) fn decide(
        &mut self,
        id: u64,
        approve: bool,
        now: u64,
        withdraw_within: u64,
    ) -> Result<Incoming, DecideError> {
        self.prune(now);
        let i = self
            .items
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or(DecideError::Unknown)?;
        let withdrawal = !approve
            && i.decision == Decision::Approved
            && i.decided_at
                .is_some_and(|at| now < at.saturating_add(withdraw_within));
        // After an objection the person decides again, either way; the
        // delay then counts from this decision.
        let objected = i.decision == Decision::Objected;
        if i.decision != Decision::Pending && !withdrawal && !objected {
            return Err(DecideError::Decided(i.decision));
        }
        i.decision = if approve {
            Decision::Approved
        } else {
            Decision::Denied
        };
        i.decided_at = Some(now);
        let decided = i.clone();
        let owner = decided.owner;
        while self
            .items
            .iter()
            .filter(|i| i.owner == owner && i.decision != Decision::Pending)
            .count()
            > MAX_DECIDED_PER_OWNER
        {
            // The oldest decision goes (never the one just made: it is
            // the newest).
            let oldest = self
                .items
                .iter()
                .filter(|i| i.owner == owner && i.decision != Decision::Pending)
                .min_by_key(|i| i.decided_at)
                .map(|i| i.id);
            match oldest {
                Some(id) => self.items.retain(|i| i.id != id),
                None => break,
            }
        }
        Ok(decided)
    }

    /// Whether a request of this recovery (any node) is kept.
    pub(crate) fn knows(&mut self, owner: &EgoId, new_key: &PublicKey, now: u64) -> bool {
        self.prune(now);
        self.items
            .iter()
            .any(|i| i.owner == *owner && i.new_key == *new_key)
    }

    /// An objection to the recovery of `new_key`: every request of it that
    /// was not objected to yet is marked; an approved one is paused.
    /// Returns what was done (the strongest outcome over the requests) and
    /// the ids marked.
    pub(crate) fn object(
        &mut self,
        owner: &EgoId,
        new_key: &PublicKey,
        now: u64,
    ) -> (Noted, Vec<u64>) {
        self.prune(now);
        let mut noted = Noted::Unknown;
        let mut ids = Vec::new();
        for i in self
            .items
            .iter_mut()
            .filter(|i| i.owner == *owner && i.new_key == *new_key)
        {
            let this = match (i.objected, i.decision) {
                (true, _) | (_, Decision::Denied | Decision::Objected) => Noted::Dropped,
                (false, Decision::Pending) => Noted::Shown,
                (false, Decision::Approved) => {
                    i.decision = Decision::Objected;
                    Noted::Paused
                }
            };
            if this != Noted::Dropped {
                i.objected = true;
                ids.push(i.id);
            }
            noted = stronger(noted, this);
        }
        (noted, ids)
    }

    /// Every request kept, oldest first.
    pub(crate) fn list(&mut self, now: u64) -> &[Incoming] {
        self.prune(now);
        &self.items
    }
}

/// The outcome that says more: paused, then shown, then dropped.
fn stronger(a: Noted, b: Noted) -> Noted {
    let rank = |n: Noted| match n {
        Noted::Unknown => 0,
        Noted::Dropped => 1,
        Noted::Shown => 2,
        Noted::Paused => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cyrcles_core::SecretKey;

    fn request(owner: u8, key: u8, peer: &PeerId) -> NewRequest {
        NewRequest {
            what: Asked::Recovery,
            owner: EgoId::from_bytes([owner; 32]),
            petname: "alice".into(),
            new_key: SecretKey::from_seed(&[key; 32]).public(),
            peer: *peer,
            fingerprint: String::new(),
        }
    }

    fn pending_of(q: &mut IncomingQueue, owner: u8) -> Vec<u64> {
        let owner = EgoId::from_bytes([owner; 32]);
        q.list(0)
            .iter()
            .filter(|i| i.owner == owner && i.decision == Decision::Pending)
            .map(|i| i.id)
            .collect()
    }

    #[test]
    fn denied_requests_leave_the_count_at_once_and_are_remembered() {
        let mut q = IncomingQueue::default();
        let mut ids = Vec::new();
        for k in 0..4 {
            ids.push(q.push(request(1, k, &PeerId::random()), 0).0);
        }
        for id in &ids {
            q.decide(*id, false, 1, 0).unwrap();
        }
        assert!(pending_of(&mut q, 1).is_empty());
        // A new request is pending, nothing pushed out.
        let real = PeerId::random();
        let (id, gone) = q.push(request(1, 9, &real), 2);
        assert!(gone.is_empty());
        assert_eq!(pending_of(&mut q, 1), vec![id]);
        // The denied ones are still known (a repeat is answered denied),
        // for a day.
        let junk = q.list(2)[0].clone();
        assert_eq!(
            q.decision(&junk.owner, &junk.new_key, &junk.peer, 3),
            Some(Decision::Denied)
        );
        assert_eq!(
            q.decide(ids[0], true, 3, 0).unwrap_err(),
            DecideError::Decided(Decision::Denied)
        );
        assert_eq!(q.decide(999, true, 3, 0).unwrap_err(), DecideError::Unknown);
        assert_eq!(
            q.decision(&junk.owner, &junk.new_key, &junk.peer, 1 + DENIED_TTL_SECS),
            None
        );
    }

    #[test]
    fn at_the_bound_a_new_sender_gets_in_and_one_sender_holds_one() {
        let mut q = IncomingQueue::default();
        let junk: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        let mut first = None;
        for (k, p) in junk.iter().enumerate() {
            let (id, _) = q.push(request(1, u8::try_from(k).unwrap(), p), 0);
            first.get_or_insert(id);
        }
        // One node sending more keys keeps one slot.
        for k in 10..20 {
            q.push(request(1, k, &junk[3]), 1);
        }
        assert_eq!(pending_of(&mut q, 1).len(), 4);
        let real = PeerId::random();
        let (id, gone) = q.push(request(1, 99, &real), 2);
        assert_eq!(gone.len(), 1);
        assert_eq!(Some(gone[0].id), first);
        assert!(pending_of(&mut q, 1).contains(&id));
        // The person approves it: it stays, and no longer counts.
        q.decide(id, true, 3, 0).unwrap();
        for k in 30..40 {
            q.push(request(1, k, &PeerId::random()), 4);
        }
        let owner = EgoId::from_bytes([1; 32]);
        let key = SecretKey::from_seed(&[99; 32]).public();
        assert_eq!(q.decision(&owner, &key, &real, 5), Some(Decision::Approved));
        assert_eq!(pending_of(&mut q, 1).len(), MAX_PENDING_PER_OWNER);
    }

    /// An approval can be withdrawn during the recovery delay (the old
    /// device reported an attempt the friend did not make), not after it;
    /// a denial is final.
    #[test]
    fn an_approval_is_withdrawn_only_within_the_delay() {
        let mut q = IncomingQueue::default();
        let peer = PeerId::random();
        let owner = EgoId::from_bytes([1; 32]);
        let key = SecretKey::from_seed(&[7; 32]).public();
        let (id, _) = q.push(request(1, 7, &peer), 10);
        q.decide(id, true, 100, 50).unwrap();
        assert_eq!(q.approved_at(&owner, &key, &peer, 120), Some(100));
        // Just before the delay ends: withdrawn, and no longer approved.
        q.decide(id, false, 149, 50).unwrap();
        assert_eq!(q.decision(&owner, &key, &peer, 150), Some(Decision::Denied));
        assert_eq!(q.approved_at(&owner, &key, &peer, 150), None);
        assert_eq!(
            q.decide(id, true, 151, 50).unwrap_err(),
            DecideError::Decided(Decision::Denied)
        );
        // Another approval, withdrawn too late: the member may have signed.
        let (id, _) = q.push(request(1, 8, &PeerId::random()), 200);
        q.decide(id, true, 300, 50).unwrap();
        assert_eq!(
            q.decide(id, false, 350, 50).unwrap_err(),
            DecideError::Decided(Decision::Approved)
        );
    }

    #[test]
    fn the_total_bound_takes_from_the_fullest_ego() {
        let mut q = IncomingQueue::default();
        for owner in 0..8u8 {
            for k in 0..4u8 {
                q.push(request(owner + 1, k, &PeerId::random()), 0);
            }
        }
        assert_eq!(q.list(0).len(), MAX_PENDING);
        let (_, gone) = q.push(request(50, 1, &PeerId::random()), 1);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].owner, EgoId::from_bytes([1; 32]));
        assert_eq!(q.list(1).len(), MAX_PENDING);
    }

    #[test]
    fn decided_requests_are_bounded_per_ego() {
        let mut q = IncomingQueue::default();
        for k in 0..20u8 {
            let (id, _) = q.push(request(1, k, &PeerId::random()), u64::from(k));
            q.decide(id, false, u64::from(k), 0).unwrap();
        }
        assert_eq!(q.list(20).len(), MAX_DECIDED_PER_OWNER);
    }

    /// The current key's device objects (a thief, or the owner whose
    /// device was not lost): a pending request is marked, an approved one
    /// pauses until the person decides again, and that decision is final;
    /// a second objection changes nothing.
    #[test]
    fn an_objection_pauses_an_approval_once_and_the_person_decides() {
        let mut q = IncomingQueue::default();
        let owner = EgoId::from_bytes([1; 32]);
        let key = SecretKey::from_seed(&[7; 32]).public();
        let peer = PeerId::random();
        assert_eq!(q.object(&owner, &key, 0).0, Noted::Unknown);
        let (id, _) = q.push(request(1, 7, &peer), 0);
        q.decide(id, true, 10, 3600).unwrap();
        assert_eq!(q.object(&owner, &key, 20), (Noted::Paused, vec![id]));
        assert_eq!(
            q.decision(&owner, &key, &peer, 21),
            Some(Decision::Objected)
        );
        assert_eq!(q.approved_at(&owner, &key, &peer, 21), None);
        // Objecting again is dropped: the thief cannot pause it twice.
        assert_eq!(q.object(&owner, &key, 22).0, Noted::Dropped);
        // The person confirms after calling the friend: final, and the
        // delay counts from now.
        q.decide(id, true, 30, 3600).unwrap();
        assert_eq!(q.approved_at(&owner, &key, &peer, 31), Some(30));
        assert_eq!(q.object(&owner, &key, 32).0, Noted::Dropped);
        assert_eq!(
            q.decision(&owner, &key, &peer, 33),
            Some(Decision::Approved)
        );
        // A pending request is shown with the objection; a withdrawal of a
        // paused approval is possible after the delay too.
        let other = SecretKey::from_seed(&[8; 32]).public();
        let (id2, _) = q.push(request(1, 8, &PeerId::random()), 40);
        assert_eq!(q.object(&owner, &other, 41), (Noted::Shown, vec![id2]));
        q.decide(id2, true, 42, 10).unwrap();
        assert_eq!(q.object(&owner, &other, 43).0, Noted::Dropped);
        let (id3, _) = q.push(request(1, 9, &PeerId::random()), 50);
        q.decide(id3, true, 51, 10).unwrap();
        let nine = SecretKey::from_seed(&[9; 32]).public();
        assert_eq!(q.object(&owner, &nine, 100).0, Noted::Paused);
        q.decide(id3, false, 200, 10).unwrap();
        assert_eq!(q.object(&owner, &nine, 201).0, Noted::Dropped);
    }
}
