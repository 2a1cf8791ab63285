//! Repairing a friend's lost share (DESIGN.md, flow 7).
//!
//! The owner's agent coordinates; it knows which friend is which member
//! but holds no share. The members do not know each other, so every
//! message goes through the owner, sealed to its one recipient
//! ([`cyrcles_core::circle::seal`]):
//!
//! ```text
//! owner → helpers and target   RepairRequest       → RepairKeys (one sealing key each)
//! owner → each helper          RepairKeys (all)    → RepairSealed (deltas, one per other helper)
//! owner → each helper          RepairSealed (in)   → RepairSealed (its sigma, for the target)
//! owner → target               RepairSealed (all)  → ShareAck (checked against the circle)
//! ```
//!
//! A helper takes part only for a friend whose node is the requester and
//! with a share of the named circle; the target takes the role only when
//! it holds no share of that circle, and keeps the rebuilt share only if
//! it matches the dealer's commitment and the key the friend's record
//! names. Sessions live in memory for at most [`REPAIR_TTL`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cyrcles_core::EgoId;
use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::seal::{SealKey, seal};
use cyrcles_core::circle::{
    CircleId, CirclePublic, CircleRefused, MemberId, MemberShare, RepairDelta, RepairHelper,
    RepairKeys, RepairRequest, RepairSealed, RepairSigma, RepairTarget, SessionId, ShareAck,
    repair_aad,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_p2p::{NodeHandle, PeerId};
use rand_core::{OsRng, RngCore};
use tokio::task::JoinSet;
use tracing::{info, warn};
use zeroize::Zeroizing;

use super::circle::snapshot;
use super::circle::view::describe;
use super::egos::ego_by_name;
use super::error::{Conflict, Damaged, Internal, Network, NotFound, Refused, Unanswered};
use super::peers::{ANSWER_WITHIN, find_friend, friend_peer, friend_record, friends_of, reach};
use super::sessions::{Entry, SessionTable};
use super::shares::{keep_share, refusal};
use super::{Result, Shared, lock};
use crate::control::proto::CircleInfo;
use crate::keystore::FriendRow;

/// How long a member keeps a repair session.
pub(crate) const REPAIR_TTL: Duration = Duration::from_secs(60);
/// Repair sessions a member keeps at once.
const MAX_REPAIRS: usize = 16;

enum Role {
    /// Sent its key; waits for every participant's.
    Helper(Box<RepairHelper>),
    /// Sent its deltas; waits for the others' (and seals its sigma to
    /// the target's key).
    Deltas(Box<RepairHelper>, [u8; 32]),
    /// Waits for the helpers' sigmas.
    Target(Box<RepairTarget>),
    /// Taken by the step running now.
    Done,
}

struct Repair {
    owner: EgoId,
    my_ego: EgoId,
    friend_id: i64,
    me: MemberId,
    key: SealKey,
    role: Role,
}

/// Open repair sessions, by session id (member side): one per requester
/// (a new request ends its older session), [`MAX_REPAIRS`] in all (see
/// `sessions.rs`).
pub(crate) struct Repairs(SessionTable<Repair>);

impl Default for Repairs {
    fn default() -> Self {
        Self(table())
    }
}

/// A table with a member's repair bounds and [`REPAIR_TTL`].
fn table<V>() -> SessionTable<V> {
    SessionTable::new(1, MAX_REPAIRS, REPAIR_TTL)
}

impl std::fmt::Debug for Repairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repairs({} open)", self.0.len())
    }
}

// --------------------------------------------------------------- member

/// The friendship whose node is `peer`, among `my_ego`'s.
async fn requester(shared: &Shared, my_ego: EgoId, peer: &PeerId) -> Option<FriendRow> {
    let bytes = peer.to_bytes();
    shared
        .keystore
        .friends()
        .await
        .ok()?
        .into_iter()
        .find(|f| f.ego_id == my_ego && f.friend_peer_id == bytes)
}

/// A repair message reached `my_ego`'s node from `peer`.
pub(crate) async fn on_message(
    shared: &Shared,
    my_ego: EgoId,
    peer: PeerId,
    message: &Envelope,
) -> Envelope {
    match message.kind {
        kind::REPAIR_REQUEST => on_request(shared, my_ego, peer, message).await,
        kind::REPAIR_KEYS => on_keys(shared, peer, message),
        kind::REPAIR_SEALED => on_sealed(shared, peer, message).await,
        _ => refusal(refused::INVALID),
    }
}

async fn on_request(shared: &Shared, my_ego: EgoId, peer: PeerId, message: &Envelope) -> Envelope {
    let Ok(req) = message.open::<RepairRequest>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let Some(friend) = requester(shared, my_ego, &peer).await else {
        warn!(%peer, "a repair request from a node that is not a friend's was refused");
        return refusal(refused::NOT_A_FRIEND);
    };
    let owner = friend.friend_ego_id;
    let Ok(key) = shared.data_key() else {
        return refusal(refused::UNAVAILABLE);
    };
    let held = match shared
        .keystore
        .held_share(&key, &owner, req.generation)
        .await
    {
        Ok(h) => h,
        Err(_) => return refusal(refused::UNAVAILABLE),
    };
    let sealing = SealKey::generate(&mut OsRng);
    let (me, role) = match held {
        Some((_, secret)) => {
            let Ok(share) = MemberShare::from_secret_cbor(&secret) else {
                return refusal(refused::UNAVAILABLE);
            };
            let me = share.member();
            if me == req.target {
                // This member holds its share: nothing to repair.
                return refusal(refused::INVALID);
            }
            match RepairHelper::new(share, req.clone()) {
                Ok(h) => (me, Role::Helper(Box::new(h))),
                Err(e) => {
                    warn!(%owner, "a repair request that does not fit was refused: {e}");
                    return refusal(refused::INVALID);
                }
            }
        }
        // No share of that circle here: the owner says this member lost
        // it. The rebuilt share is checked before it is kept.
        None => (
            req.target,
            Role::Target(Box::new(RepairTarget::new(req.clone()))),
        ),
    };
    let answer = RepairKeys {
        session: req.session,
        keys: vec![(me, sealing.public())],
    };
    let opened = lock(&shared.repairs).0.open(
        req.session.0,
        peer,
        Repair {
            owner,
            my_ego,
            friend_id: friend.id,
            me,
            key: sealing,
            role,
        },
        shared.clock.instant(),
    );
    if opened.is_err() {
        return refusal(refused::UNAVAILABLE);
    }
    Envelope::wrap(kind::REPAIR_KEYS, &answer)
}

/// Takes the session of `id` if `peer` opened it.
fn take(shared: &Shared, id: SessionId, peer: &PeerId) -> Option<Entry<Repair>> {
    lock(&shared.repairs)
        .0
        .take(&id.0, peer, shared.clock.instant())
}

fn put_back(shared: &Shared, id: SessionId, r: Entry<Repair>) {
    lock(&shared.repairs).0.put_back(id.0, r);
}

fn on_keys(shared: &Shared, peer: PeerId, message: &Envelope) -> Envelope {
    let Ok(keys) = message.open::<RepairKeys>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let Some(mut r) = take(shared, keys.session, &peer) else {
        return refusal(refused::NO_SESSION);
    };
    let Role::Helper(mut helper) = r.value.role else {
        return refusal(refused::INVALID);
    };
    let by_member: BTreeMap<MemberId, [u8; 32]> = keys.keys.iter().copied().collect();
    let Ok(deltas) = helper.deltas(&mut OsRng) else {
        return refusal(refused::INVALID);
    };
    let target = helper.target();
    let Some(target_key) = by_member.get(&target).copied() else {
        return refusal(refused::INVALID);
    };
    let mut items = Vec::new();
    for d in deltas {
        if d.to == r.value.me {
            if helper.add_delta(d).is_err() {
                return refusal(refused::INVALID);
            }
            continue;
        }
        let Some(to_key) = by_member.get(&d.to) else {
            return refusal(refused::INVALID);
        };
        let plain = Zeroizing::new(d.to_cbor());
        let aad = repair_aad(b"delta", keys.session, r.value.me, d.to);
        match seal(to_key, &aad, &plain, &mut OsRng) {
            Ok(sealed) => items.push((d.to, sealed)),
            Err(_) => return refusal(refused::INVALID),
        }
    }
    items.sort_by_key(|(m, _)| *m);
    let answer = RepairSealed {
        session: keys.session,
        member: r.value.me,
        items,
    };
    r.value.role = Role::Deltas(helper, target_key);
    put_back(shared, keys.session, r);
    Envelope::wrap(kind::REPAIR_SEALED, &answer)
}

async fn on_sealed(shared: &Shared, peer: PeerId, message: &Envelope) -> Envelope {
    let Ok(bundle) = message.open::<RepairSealed>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let Some(mut r) = take(shared, bundle.session, &peer) else {
        return refusal(refused::NO_SESSION);
    };
    if bundle.member != r.value.me {
        return refusal(refused::INVALID);
    }
    match std::mem::replace(&mut r.value.role, Role::Done) {
        Role::Deltas(helper, target_key) => helper_sigma(&r.value, *helper, target_key, &bundle),
        Role::Target(target) => target_finish(shared, &r.value, *target, &bundle).await,
        Role::Helper(_) | Role::Done => refusal(refused::INVALID),
    }
}

/// A helper's last step: the other helpers' deltas in, its sigma out.
fn helper_sigma(
    r: &Repair,
    mut helper: RepairHelper,
    target_key: [u8; 32],
    bundle: &RepairSealed,
) -> Envelope {
    for (from, sealed) in &bundle.items {
        let aad = repair_aad(b"delta", bundle.session, *from, r.me);
        let Ok(plain) = r.key.open(&aad, sealed) else {
            return refusal(refused::INVALID);
        };
        let Ok(delta) = RepairDelta::from_cbor(&plain, MAX_CIRCLE_MESSAGE_SIZE) else {
            return refusal(refused::INVALID);
        };
        if delta.from != *from || helper.add_delta(delta).is_err() {
            return refusal(refused::INVALID);
        }
    }
    let Ok(sigma) = helper.sigma() else {
        return refusal(refused::INVALID);
    };
    let target = helper.target();
    let plain = Zeroizing::new(sigma.to_cbor());
    let aad = repair_aad(b"sigma", bundle.session, r.me, target);
    let Ok(sealed) = seal(&target_key, &aad, &plain, &mut OsRng) else {
        return refusal(refused::INVALID);
    };
    info!(owner = %r.owner, "helped repair a friend's circle share");
    Envelope::wrap(
        kind::REPAIR_SEALED,
        &RepairSealed {
            session: bundle.session,
            member: r.me,
            items: vec![(target, sealed)],
        },
    )
}

/// The target's last step: the sigmas in, the rebuilt share checked
/// against the commitment and the friend's record, stored, acknowledged.
async fn target_finish(
    shared: &Shared,
    r: &Repair,
    mut target: RepairTarget,
    bundle: &RepairSealed,
) -> Envelope {
    for (from, sealed) in &bundle.items {
        let aad = repair_aad(b"sigma", bundle.session, *from, r.me);
        let Ok(plain) = r.key.open(&aad, sealed) else {
            return refusal(refused::INVALID);
        };
        let Ok(sigma) = RepairSigma::from_cbor(&plain, MAX_CIRCLE_MESSAGE_SIZE) else {
            return refusal(refused::INVALID);
        };
        if sigma.from != *from || sigma.ego_id != r.owner || target.add_sigma(sigma).is_err() {
            return refusal(refused::INVALID);
        }
    }
    let share = match target.finish() {
        Ok(s) => s,
        Err(e) => {
            warn!(owner = %r.owner, "a repaired share does not check: {e}");
            return refusal(refused::INVALID);
        }
    };
    // The share must be of the circle the friend's record names now.
    match friend_record(shared, &r.my_ego, r.owner).await {
        Some(record) if record.circle_key() == share.group_key() => {}
        Some(_) => return refusal(refused::INVALID),
        None => return refusal(refused::UNAVAILABLE),
    }
    if let Err(refused) = keep_share(shared, r.my_ego, r.friend_id, &share).await {
        return refused;
    }
    info!(owner = %r.owner, generation = share.generation(), "a lost share of a friend's circle was repaired");
    Envelope::wrap(kind::SHARE_ACK, &share.ack())
}

// ---------------------------------------------------------------- owner

/// Sends `envelope` to `peer` and opens the answer as `T` of `want`.
async fn ask<T: Decode>(
    node: &NodeHandle,
    peer: PeerId,
    addrs: Vec<cyrcles_p2p::Multiaddr>,
    envelope: &Envelope,
    want: u16,
) -> Result<T, Unanswered> {
    let reply = match tokio::time::timeout(ANSWER_WITHIN, node.circle(peer, addrs, envelope)).await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(Unanswered::Request(e)),
        Err(_) => return Err(Unanswered::Timeout),
    };
    if reply.kind == want {
        return reply
            .open::<T>(MAX_CIRCLE_MESSAGE_SIZE)
            .map_err(|_| Unanswered::BadAnswer);
    }
    Err(match reply.open::<CircleRefused>(MAX_CIRCLE_MESSAGE_SIZE) {
        Ok(r) => Unanswered::Refused(r.code),
        Err(_) => Unanswered::BadAnswer,
    })
}

/// One participant, as the owner reaches it.
#[derive(Clone)]
struct Party {
    member: MemberId,
    friend: i64,
    name: String,
    peer: PeerId,
}

/// `circle repair EGO FRIEND`.
pub(crate) async fn repair(shared: &Arc<Shared>, name: &str, friend: &str) -> Result<CircleInfo> {
    let ego = ego_by_name(shared, name)?;
    let friends = friends_of(shared, &ego).await?;
    let row = find_friend(&friends, name, friend)?;
    let circle = shared
        .keystore
        .circle(&ego)
        .await?
        .ok_or_else(|| Conflict::NothingToRepair(name.into()))?;
    let public = CirclePublic::from_cbor(&circle.public).map_err(Damaged::Circle)?;
    let member_of = |id: i64| {
        circle
            .members
            .iter()
            .find(|(_, f)| *f == id)
            .and_then(|(m, _)| MemberId::new(*m))
    };
    let target_member = member_of(row.id).ok_or_else(|| NotFound::CircleMember {
        ego: name.into(),
        friend: friend.into(),
    })?;
    let snap = snapshot(shared, &ego)?;
    let now = shared.now();
    let target = Party {
        member: target_member,
        friend: row.id,
        name: row.petname.clone(),
        peer: friend_peer(row)?,
    };
    let mut helpers: Vec<Party> = Vec::new();
    for (m, id) in &circle.members {
        let (Some(f), Some(member)) = (friends.get(id), MemberId::new(*m)) else {
            continue;
        };
        if member != target_member {
            helpers.push(Party {
                member,
                friend: f.id,
                name: f.petname.clone(),
                peer: friend_peer(f)?,
            });
        }
    }
    if helpers.len() < public.threshold() {
        return Err(Conflict::RepairImpossible {
            others: helpers.len(),
            needed: public.threshold(),
        }
        .into());
    }
    // Every participant's published addresses, looked up once; the first
    // step dials them and later steps reuse the connections.
    let mut dialled = JoinSet::new();
    for (_, id) in &circle.members {
        if let Some(f) = friends.get(id) {
            let (node, f) = (snap.node.clone(), f.clone());
            dialled.spawn(async move { (f.id, reach(&node, &f, now).await) });
        }
    }
    let mut addrs: HashMap<i64, Vec<cyrcles_p2p::Multiaddr>> = HashMap::new();
    while let Some(Ok((id, a))) = dialled.join_next().await {
        addrs.insert(id, a);
    }
    let addr_of = |p: &Party| addrs.get(&p.friend).cloned().unwrap_or_default();
    let threshold = public.threshold();
    // Step A: the participants' sealing keys. Helpers that do not answer
    // are left out and the step is run again with the others.
    let mut attempt = 0;
    let (session, keys, helpers) = loop {
        attempt += 1;
        if helpers.len() < threshold {
            return Err(Network::TooFewHelpers {
                online: helpers.len(),
                needed: threshold,
            }
            .into());
        }
        let mut sid = [0u8; 16];
        OsRng.fill_bytes(&mut sid);
        let session = SessionId(sid);
        let request = RepairRequest {
            session,
            circle_id: CircleId(circle.circle_id),
            generation: circle.generation,
            target: target_member,
            helpers: helpers.iter().map(|h| h.member).collect(),
        };
        let envelope = Envelope::wrap(kind::REPAIR_REQUEST, &request);
        let mut asks = JoinSet::new();
        for p in helpers.iter().chain(std::iter::once(&target)) {
            let (node, envelope, p, a) =
                (snap.node.clone(), envelope.clone(), p.clone(), addr_of(p));
            asks.spawn(async move {
                let answer: Result<RepairKeys, Unanswered> =
                    ask(&node, p.peer, a, &envelope, kind::REPAIR_KEYS).await;
                (p, answer)
            });
        }
        let mut keys: BTreeMap<MemberId, [u8; 32]> = BTreeMap::new();
        let mut problems = Vec::new();
        while let Some(Ok((p, answer))) = asks.join_next().await {
            match answer.map(|k| (k.session, k.keys.as_slice().first().copied(), k.keys.len())) {
                Ok((s, Some((m, key)), 1)) if s == session && m == p.member => {
                    keys.insert(p.member, key);
                }
                Ok(_) => problems.push(format!("{}: a bad answer", p.name)),
                Err(e) => problems.push(format!("{}: {e}", p.name)),
            }
        }
        if !keys.contains_key(&target_member) {
            return Err(Network::TargetAbsent {
                friend: target.name,
                problems,
            }
            .into());
        }
        let answered: Vec<Party> = helpers
            .iter()
            .filter(|h| keys.contains_key(&h.member))
            .cloned()
            .collect();
        if answered.len() == helpers.len() {
            break (session, keys, helpers);
        }
        if attempt >= 2 || answered.len() < threshold {
            return Err(Network::HelpersSilent {
                answered: answered.len(),
                needed: threshold,
                problems,
            }
            .into());
        }
        helpers = answered;
    };

    // Step B: every helper's deltas, sealed to the other helpers.
    let all_keys = RepairKeys {
        session,
        keys: keys.iter().map(|(m, k)| (*m, *k)).collect(),
    };
    let envelope = Envelope::wrap(kind::REPAIR_KEYS, &all_keys);
    let bundles = gather(&snap.node, &helpers, |_| envelope.clone()).await?;
    let mut inbound: BTreeMap<MemberId, Vec<(MemberId, Vec<u8>)>> = BTreeMap::new();
    for (from, bundle) in bundles {
        for (to, sealed) in bundle.items {
            inbound.entry(to).or_default().push((from, sealed));
        }
    }
    // Step C: each helper's inbound deltas; its sigma comes back sealed to
    // the target.
    let step_c: HashMap<MemberId, Envelope> = helpers
        .iter()
        .map(|h| {
            let mut items = inbound.remove(&h.member).unwrap_or_default();
            items.sort_by_key(|(m, _)| *m);
            let b = RepairSealed {
                session,
                member: h.member,
                items,
            };
            (h.member, Envelope::wrap(kind::REPAIR_SEALED, &b))
        })
        .collect();
    let sigmas = gather(&snap.node, &helpers, |m| {
        step_c
            .get(&m)
            .cloned()
            .unwrap_or_else(|| refusal(refused::INVALID))
    })
    .await?;
    let mut items: Vec<(MemberId, Vec<u8>)> = Vec::new();
    for (from, bundle) in sigmas {
        match bundle.items.into_iter().next() {
            Some((to, sealed)) if to == target_member => items.push((from, sealed)),
            _ => {
                return Err(Refused::NoSigma(from.get()).into());
            }
        }
    }
    items.sort_by_key(|(m, _)| *m);
    // Step D: the target rebuilds, checks and acknowledges its share.
    let envelope = Envelope::wrap(
        kind::REPAIR_SEALED,
        &RepairSealed {
            session,
            member: target_member,
            items,
        },
    );
    let ack: ShareAck = ask(
        &snap.node,
        target.peer,
        Vec::new(),
        &envelope,
        kind::SHARE_ACK,
    )
    .await
    .map_err(|source| Refused::Rebuild {
        friend: target.name.clone(),
        source,
    })?;
    public
        .check_ack(&ack)
        .map_err(|source| Refused::RepairAck {
            friend: target.name.clone(),
            source,
        })?;
    info!(%ego, friend = %target.name, helpers = helpers.len(), "a friend's share was repaired");
    let note = format!(
        "{:?}'s share was rebuilt by {} ({}); nobody learned it but them",
        target.name,
        crate::text::count(helpers.len() as u64, "friend", "friends"),
        helpers
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    describe(shared, ego, name, Some(note)).await
}

/// Sends each helper its envelope (connections are open); every helper
/// must answer with a sealed bundle from itself.
async fn gather(
    node: &NodeHandle,
    helpers: &[Party],
    envelope_for: impl Fn(MemberId) -> Envelope,
) -> Result<Vec<(MemberId, RepairSealed)>> {
    let mut asks = JoinSet::new();
    for h in helpers {
        let (node, h, envelope) = (node.clone(), h.clone(), envelope_for(h.member));
        asks.spawn(async move {
            let answer: Result<RepairSealed, Unanswered> =
                ask(&node, h.peer, Vec::new(), &envelope, kind::REPAIR_SEALED).await;
            (h, answer)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = asks.join_next().await {
        let Ok((h, answer)) = done else {
            return Err(Internal::RepairTask.into());
        };
        match answer {
            Ok(b) if b.member == h.member => out.push((h.member, b)),
            Ok(_) => return Err(Refused::HelperAnswer(h.name).into()),
            Err(source) => {
                return Err(Network::HelperSilent {
                    helper: h.name,
                    source,
                }
                .into());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use cyrcles_core::UnixTime;
    use cyrcles_p2p::ManualClock;

    use super::*;

    /// Requesters that start repairs and never finish them hold every
    /// repair session until [`REPAIR_TTL`], not a moment longer.
    #[test]
    fn repairs_held_open_by_attackers_are_dropped_at_the_ttl() {
        let manual = ManualClock::new(UnixTime::from_secs(1_000));
        let clock = manual.clock();
        let mut repairs = table::<&str>();
        let attackers: Vec<PeerId> = (0..MAX_REPAIRS).map(|_| PeerId::random()).collect();
        for (n, peer) in (0u8..).zip(&attackers) {
            assert_eq!(repairs.open([n; 16], *peer, "held", clock.instant()), Ok(0));
        }
        manual.advance(REPAIR_TTL.saturating_sub(Duration::from_millis(1)));
        // Just before the TTL: still held, so a friend's repair ends one.
        let e = repairs.take(&[0; 16], &attackers[0], clock.instant());
        let e = e.expect("an attacker's session lives until its TTL");
        repairs.put_back([0; 16], e);
        let friend = PeerId::random();
        assert_eq!(
            repairs.open([0xf1; 16], friend, "repair", clock.instant()),
            Ok(1)
        );
        assert_eq!(repairs.len(), MAX_REPAIRS);
        // At the TTL: every attacker's session is gone.
        manual.advance(Duration::from_millis(1));
        assert!(
            repairs
                .take(&[1; 16], &attackers[1], clock.instant())
                .is_none()
        );
        let other = PeerId::random();
        assert_eq!(
            repairs.open([0xf2; 16], other, "repair", clock.instant()),
            Ok(0)
        );
        assert_eq!(repairs.len(), 2);
    }
}
