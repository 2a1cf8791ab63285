//! Circles of friends (DESIGN.md, flows 2 to 5).
//!
//! **Owner side.** The person picks friends for an ego's circle
//! (`circle add`, `circle remove`) and a threshold (`circle policy`). Once
//! the plan has at least two friends (FROST needs a threshold of at least
//! two), the agent shares a new circle key: it deals the shares, delivers
//! them over `/cyrcles/circle/1` and checks every acknowledgement, has the
//! new circle link signed (by the root key or the whole circle key while
//! the agent still holds them, else by a threshold of the old circle
//! through FROST), certifies the ego key under the new circle, commits the
//! new record and deletes the root and whole circle keys in the same
//! transaction, then publishes. Later rotations of the ego key go through
//! the friends: a FROST session on a request signed by the current ego
//! key, which each friend's agent checks (`cyrcles_core::circle::authorize`)
//! and signs without asking its human.
//!
//! **Member side.** The agent takes shares only from friends (the peer
//! and ego of a friendship made by invite), stores them sealed, and signs
//! in a session only for a request its policy allows. Nonces live in
//! memory for one session, at most [`SESSION_TTL`].
//!
//! No network call is made while the egos lock is held: the owner side
//! takes a snapshot, runs the ceremony, then applies the result only if
//! the ego did not change meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{
    CeremonyRequest, CircleId, CirclePublic, CircleRefused, Coordinator, DealtShare, MemberShare,
    Purpose, RequestBody, Round1, Round2, SessionId, ShareAck, SignerNonces, SigningRequest,
    authorize, commit, deal,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::record::builder::{sign_with_circle, sign_with_key};
use cyrcles_core::record::{EgoCert, EgoRecord, Signed};
use cyrcles_core::{CircleSecret, EgoId, SecretKey, Signature};
use cyrcles_p2p::{Multiaddr, NodeHandle, PeerId, Responder};
use rand_core::{OsRng, RngCore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::sessions::{SessionTable, Taken};
use super::{Shared, egos, lock, read};
use crate::control::proto::{
    CircleInfo, CircleMember, ErrorCode, ErrorReply, KitFriend, ShareInfo, WatchEvent,
};
use crate::keystore::seal::SymmetricKey;
use crate::keystore::{CircleRow, FriendRow, HeldShare, SecretKind};

/// How long a member keeps a session's nonces.
const SESSION_TTL: Duration = Duration::from_secs(60);
/// Sessions a member keeps open at once.
const MAX_SESSIONS: usize = 64;
/// Sessions one peer keeps open at once.
const MAX_SESSIONS_PER_PEER: usize = 4;
/// How long the owner waits for one friend's answer.
pub(super) const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// The default threshold for `n` friends: a majority, at least two.
pub(crate) fn default_threshold(n: usize) -> u16 {
    u16::try_from((n / 2 + 1).max(2)).unwrap_or(u16::MAX)
}

/// A member's open signing session (its peer and age are the table's).
pub(crate) struct Session {
    pub(super) owner: EgoId,
    pub(super) generation: u64,
    pub(super) message: Vec<u8>,
    pub(super) nonces: SignerNonces,
    /// For a recovery: the friendship whose node becomes the peer once
    /// this member has signed.
    pub(super) repeer: Option<i64>,
}

/// Keeps a member's session for round 2 (see `sessions.rs` for the
/// bounds); false if the id is in use.
pub(super) fn open_session(shared: &Shared, id: SessionId, peer: PeerId, session: Session) -> bool {
    let mut sessions = lock(&shared.sessions);
    match sessions.0.open(id.0, peer, session, Instant::now()) {
        Ok(ended) => {
            if ended > 0 {
                info!(%peer, ended, "older signing sessions made room for a new one");
            }
            true
        }
        Err(Taken) => false,
    }
}

/// Open sessions, by session id (member side).
pub(crate) struct Sessions(SessionTable<Session>);

impl Default for Sessions {
    fn default() -> Self {
        Self(SessionTable::new(
            MAX_SESSIONS_PER_PEER,
            MAX_SESSIONS,
            SESSION_TTL,
        ))
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({} open)", self.0.len())
    }
}

pub(super) fn refusal(code: u16) -> Envelope {
    Envelope::wrap(kind::REFUSED, &CircleRefused { code })
}

/// Tells the person (in `cyrcles watch`) about a refused request.
pub(super) fn notice(shared: &Shared, message: String) {
    // Strangers cause these: they are budgeted (`notify.rs`).
    if let Some(message) = super::notify::notice_text(message) {
        shared.emit(WatchEvent::Notice { message });
    }
}

pub(super) fn err(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
    ErrorReply::new(code, message)
}

// ---------------------------------------------------------------- owner

/// The friend rows of an ego, by id.
pub(super) async fn friends_of(
    shared: &Shared,
    ego: &EgoId,
) -> Result<BTreeMap<i64, FriendRow>, ErrorReply> {
    Ok(shared
        .keystore
        .friends()
        .await?
        .into_iter()
        .filter(|f| f.ego_id == *ego)
        .map(|f| (f.id, f))
        .collect())
}

pub(super) async fn ego_by_name(shared: &Shared, name: &str) -> Result<EgoId, ErrorReply> {
    let egos = shared.egos.lock().await;
    Ok(egos::find(&egos, name)?.ego_id())
}

pub(super) fn friend_peer(f: &FriendRow) -> Result<PeerId, ErrorReply> {
    PeerId::from_bytes(&f.friend_peer_id).map_err(|_| {
        err(
            ErrorCode::Damaged,
            format!("friend {:?} has no valid peer id", f.petname),
        )
    })
}

/// Where a friend's node is: the addresses its ego's record publishes for
/// the peer the friendship was made with (friends' nodes are not DHT
/// servers, so the routing table does not know them).
pub(super) async fn reach(
    node: &NodeHandle,
    f: &FriendRow,
    now: cyrcles_core::UnixTime,
) -> Vec<Multiaddr> {
    reach_peer(node, f.friend_ego_id, &f.friend_peer_id, now).await
}

/// The addresses `ego`'s record publishes for its node `peer`.
pub(super) async fn reach_peer(
    node: &NodeHandle,
    ego: EgoId,
    peer: &[u8],
    now: cyrcles_core::UnixTime,
) -> Vec<Multiaddr> {
    match tokio::time::timeout(ANSWER_WITHIN, node.get(ego)).await {
        Ok(Ok(found)) => published_addrs(&found.ego, peer, now),
        _ => Vec::new(),
    }
}

/// The addresses `record` publishes for its node `peer`.
pub(super) fn published_addrs(
    record: &cyrcles_core::record::VerifiedEgo,
    peer: &[u8],
    now: cyrcles_core::UnixTime,
) -> Vec<Multiaddr> {
    record
        .live_endpoints(now)
        .and_then(|e| e.peers.iter().find(|p| p.peer_id == peer))
        .map(|p| {
            p.addrs
                .iter()
                .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `circle show`.
pub(crate) async fn show(shared: &Shared, name: &str) -> Result<CircleInfo, ErrorReply> {
    let ego = ego_by_name(shared, name).await?;
    describe(shared, ego, name, None).await
}

pub(super) async fn describe(
    shared: &Shared,
    ego: EgoId,
    name: &str,
    note: Option<String>,
) -> Result<CircleInfo, ErrorReply> {
    let friends = friends_of(shared, &ego).await?;
    let (plan, asked) = shared.keystore.plan(&ego).await?;
    let circle = shared.keystore.circle(&ego).await?;
    let member = |id: &i64, m: Option<u16>| CircleMember {
        name: friends
            .get(id)
            .map_or_else(|| format!("friend #{id}"), |f| f.petname.clone()),
        ego_id: friends
            .get(id)
            .map(|f| f.friend_ego_id.to_string())
            .unwrap_or_default(),
        member: m,
    };
    let members = circle
        .as_ref()
        .map(|c| {
            c.members
                .iter()
                .map(|(m, id)| member(id, Some(*m)))
                .collect()
        })
        .unwrap_or_default();
    let planned: Vec<CircleMember> = plan.iter().map(|id| member(id, None)).collect();
    let threshold = asked.unwrap_or_else(|| default_threshold(plan.len()));
    let mut warnings = Vec::new();
    if !plan.is_empty() && plan.len() < 3 {
        warnings.push(format!(
            "with {} friends, losing one may leave too few to sign; 3 or more are safer",
            plan.len()
        ));
    }
    if usize::from(threshold) == plan.len() && plan.len() >= 2 {
        warnings.push(
            "a strict circle: every friend must answer for each rotation and for recovery".into(),
        );
    }
    let state = match &circle {
        Some(c) => format!(
            "shared {} of {} with friends (generation {})",
            c.threshold,
            c.members.len(),
            c.generation
        ),
        None if plan.len() < 2 => {
            "held whole by this agent: a circle is shared once it has at least 2 friends".into()
        }
        None => "held whole by this agent; sharing did not complete".into(),
    };
    Ok(CircleInfo {
        ego: name.to_string(),
        state,
        threshold: circle.as_ref().map_or(threshold, |c| c.threshold),
        members,
        planned,
        planned_threshold: threshold,
        generation: circle.as_ref().map(|c| c.generation),
        shared_at: circle.as_ref().map(|c| c.created_at),
        warnings,
        note,
    })
}

/// The friend of ego `name` called `friend` (petname or ego id).
pub(super) fn find_friend<'a>(
    friends: &'a BTreeMap<i64, FriendRow>,
    name: &str,
    friend: &str,
) -> Result<&'a FriendRow, ErrorReply> {
    friends
        .values()
        .find(|f| f.petname == friend || f.friend_ego_id.to_string() == friend)
        .ok_or_else(|| {
            err(
                ErrorCode::NotFound,
                format!("ego {name:?} has no friend {friend:?}; `cyrcles friend list` shows them"),
            )
        })
}

/// `circle add` (`member = true`) and `circle remove`.
pub(crate) async fn change(
    shared: &Arc<Shared>,
    name: &str,
    friend: &str,
    member: bool,
) -> Result<CircleInfo, ErrorReply> {
    let ego = ego_by_name(shared, name).await?;
    let friends = friends_of(shared, &ego).await?;
    let row = find_friend(&friends, name, friend)?;
    shared.keystore.set_planned(&ego, row.id, member).await?;
    let note = reshare(shared, ego).await?;
    describe(shared, ego, name, Some(note)).await
}

/// `circle policy --threshold T`.
pub(crate) async fn set_threshold(
    shared: &Arc<Shared>,
    name: &str,
    threshold: u16,
) -> Result<CircleInfo, ErrorReply> {
    let ego = ego_by_name(shared, name).await?;
    if threshold < 2 {
        return Err(err(
            ErrorCode::BadRequest,
            "the threshold must be at least 2: with 1, any single friend could certify a key",
        ));
    }
    shared.keystore.set_threshold(&ego, Some(threshold)).await?;
    let note = reshare(shared, ego).await?;
    describe(shared, ego, name, Some(note)).await
}

/// What the owner side needs from the ego, taken under the lock.
pub(super) struct Snapshot {
    pub(super) record: EgoRecord,
    pub(super) node: NodeHandle,
    pub(super) ego_key: Arc<SecretKey>,
    pub(super) circle_id: CircleId,
}

pub(super) async fn snapshot(shared: &Shared, ego: &EgoId) -> Result<Snapshot, ErrorReply> {
    let egos = shared.egos.lock().await;
    let state = egos
        .get(ego)
        .ok_or_else(|| err(ErrorCode::NotFound, format!("no ego {ego}")))?;
    if state.is_revoked() {
        return Err(err(ErrorCode::Conflict, "the ego is revoked"));
    }
    let signer = read(&shared.signers).get(ego).cloned();
    let (Some(node), Some(signer)) = (state.node.clone(), signer) else {
        return Err(err(
            ErrorCode::Locked,
            "the keys are locked; run `cyrcles unlock`",
        ));
    };
    Ok(Snapshot {
        record: state.record()?.clone(),
        node,
        ego_key: signer.key,
        circle_id: CircleId(state.row.circle_id),
    })
}

/// Brings the shared circle in line with the plan; returns what happened.
async fn reshare(shared: &Arc<Shared>, ego: EgoId) -> Result<String, ErrorReply> {
    let friends = friends_of(shared, &ego).await?;
    let (plan, asked) = shared.keystore.plan(&ego).await?;
    let n = plan.len();
    if n < 2 {
        return Ok(format!(
            "{n} friend(s) planned: the circle is shared once it has at least 2"
        ));
    }
    let t = asked.unwrap_or_else(|| default_threshold(n));
    if usize::from(t) > n {
        return Ok(format!(
            "the threshold {t} is more than the {n} friends planned: add friends or lower it"
        ));
    }
    let current = shared.keystore.circle(&ego).await?;
    if let Some(c) = &current {
        let same: Vec<i64> = c.members.iter().map(|(_, f)| *f).collect();
        if same == plan && c.threshold == t {
            return Ok("the circle already matches the plan".into());
        }
    }
    let key = shared.data_key()?;
    let snap = snapshot(shared, &ego).await?;
    let now = shared.now();
    let members: Vec<&FriendRow> = plan.iter().filter_map(|id| friends.get(id)).collect();
    let n16 =
        u16::try_from(members.len()).map_err(|_| err(ErrorCode::BadRequest, "too many friends"))?;
    let generation = u64::try_from(snap.record.chain.len()).unwrap_or(u64::MAX) + 1;
    let new_circle = CircleSecret::generate(&mut OsRng);
    let dealing = deal(
        &new_circle,
        ego,
        snap.circle_id,
        generation,
        t,
        n16,
        &mut OsRng,
    )
    .map_err(|e| {
        err(
            ErrorCode::BadRequest,
            format!("cannot split the circle key: {e}"),
        )
    })?;

    // Deliver every share; each friend must acknowledge the right one.
    let mut deliveries = JoinSet::new();
    for (dealt, friend) in dealing.shares.into_iter().zip(members.iter()) {
        let node = snap.node.clone();
        let peer = friend_peer(friend)?;
        let friend = (*friend).clone();
        // What the friend's acknowledgement must name (fuzz finding F3).
        let expected = (dealt.circle_id, dealt.generation, dealt.member);
        let envelope = Envelope {
            kind: kind::DEALT_SHARE,
            body: dealt.to_secret_cbor().to_vec(),
        };
        deliveries.spawn(async move {
            let addrs = reach(&node, &friend, now).await;
            let answer =
                tokio::time::timeout(ANSWER_WITHIN, node.circle(peer, addrs, &envelope)).await;
            (friend.petname, expected, answer)
        });
    }
    while let Some(done) = deliveries.join_next().await {
        let Ok((name, expected, answer)) = done else {
            return Err(err(ErrorCode::Internal, "a share delivery task failed"));
        };
        let reply = match answer {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                return Err(err(
                    ErrorCode::Network,
                    format!(
                        "friend {name:?} did not take its share ({e}); the circle is unchanged"
                    ),
                ));
            }
            Err(_) => {
                return Err(err(
                    ErrorCode::Network,
                    format!("friend {name:?} did not answer in time; the circle is unchanged"),
                ));
            }
        };
        let ack = (reply.kind == kind::SHARE_ACK)
            .then(|| reply.open::<ShareAck>(MAX_CIRCLE_MESSAGE_SIZE).ok())
            .flatten()
            .ok_or_else(|| {
                err(
                    ErrorCode::Refused,
                    format!("friend {name:?} refused its share; the circle is unchanged"),
                )
            })?;
        if (ack.circle_id, ack.generation, ack.member) != expected {
            return Err(err(
                ErrorCode::Refused,
                format!(
                    "friend {name:?} acknowledged another share than the one it was sent; \
                     the circle is unchanged"
                ),
            ));
        }
        dealing.public.check_ack(&ack).map_err(|e| {
            err(
                ErrorCode::Refused,
                format!("friend {name:?} acknowledged wrongly: {e}"),
            )
        })?;
    }

    // The new link, signed by whoever holds the current circle.
    let mut record = snap.record.clone();
    let body = record.next_link(new_circle.public(), now);
    let kinds = shared.keystore.secret_kinds(&ego).await?;
    let link = if record.chain.is_empty() && kinds.contains(&SecretKind::Root) {
        let root = shared.keystore.secret(&key, &ego, SecretKind::Root).await?;
        sign_with_key(&SecretKey::from_seed(&root), body)
    } else if kinds.contains(&SecretKind::Circle) {
        let whole = shared
            .keystore
            .secret(&key, &ego, SecretKind::Circle)
            .await?;
        let whole = CircleSecret::from_bytes(&whole)
            .map_err(|_| err(ErrorCode::Damaged, "the stored circle key is not valid"))?;
        sign_with_circle(&whole, &mut OsRng, body)
    } else {
        let old = current
            .as_ref()
            .ok_or_else(|| err(ErrorCode::Damaged, "no circle key and no shared circle"))?;
        let sig = session(shared, &snap, old, Purpose::Link(body.clone())).await?;
        Signed { body, sig }
    };
    record.push_link(link).map_err(|e| {
        err(
            ErrorCode::Internal,
            format!("the new link does not fit: {e}"),
        )
    })?;
    let cert = record.next_cert(snap.ego_key.public(), now, shared.settings.cert_validity);
    let cert = sign_with_circle(&new_circle, &mut OsRng, cert);
    record.set_cert(cert).map_err(|e| {
        err(
            ErrorCode::Internal,
            format!("the new certificate does not fit: {e}"),
        )
    })?;
    drop(new_circle);
    let row = CircleRow {
        circle_id: snap.circle_id.0,
        generation,
        threshold: t,
        public: dealing.public.to_cbor(),
        members: members
            .iter()
            .zip(dealing.public.members())
            .map(|(f, m)| (m.get(), f.id))
            .collect(),
        created_at: now.secs(),
    };
    let bytes = apply(shared, &ego, &snap, record, Store::Circle(&row)).await?;
    info!(%ego, t, n, generation, "circle shared");
    publish_later(shared, ego, snap.node.clone(), bytes);
    Ok(format!(
        "shared {t} of {n}: the friends' agents hold the shares; this agent keeps no circle key"
    ))
}

/// How a new record is stored.
enum Store<'a> {
    /// A new circle: the circle row, and the root and whole circle keys go.
    Circle(&'a CircleRow),
    /// A rotation: the new ego key, sealed under the data key.
    Rotation(&'a SymmetricKey, Box<SecretKey>),
    /// A revocation at this time: every secret but the device key goes.
    Revocation(u64),
}

/// Applies a new record if the ego did not change since the snapshot;
/// the keystore, the in-memory state and the signer follow. Returns the
/// record's bytes.
async fn apply(
    shared: &Shared,
    ego: &EgoId,
    snap: &Snapshot,
    record: EgoRecord,
    store: Store<'_>,
) -> Result<Vec<u8>, ErrorReply> {
    use cyrcles_core::cbor::Encode;
    let mut egos = shared.egos.lock().await;
    let state = egos
        .get_mut(ego)
        .ok_or_else(|| err(ErrorCode::NotFound, format!("no ego {ego}")))?;
    let held = state.record()?;
    if held.cert.body.seq != snap.record.cert.body.seq
        || held.chain.len() != snap.record.chain.len()
    {
        return Err(err(
            ErrorCode::Conflict,
            "the ego changed during the ceremony; try again",
        ));
    }
    match store {
        Store::Circle(row) => {
            let bytes = record.to_cbor();
            shared.keystore.commit_circle(ego, &bytes, row).await?;
            state.circle = Some((row.threshold, row.members.len()));
            state.record = Some(record);
            state.row.record = bytes.clone();
            Ok(bytes)
        }
        Store::Rotation(key, new_key) => {
            egos::store_rotation(shared, state, record, key, *new_key).await
        }
        Store::Revocation(at) => egos::store_revocation(shared, state, record, at).await,
    }
}

fn publish_later(shared: &Arc<Shared>, ego: EgoId, node: NodeHandle, bytes: Vec<u8>) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let _ = egos::publish(&shared, ego, &node, bytes).await;
    });
}

/// Runs a FROST session of the current circle on `purpose`; returns the
/// aggregate signature.
async fn session(
    shared: &Shared,
    snap: &Snapshot,
    circle: &CircleRow,
    purpose: Purpose,
) -> Result<Signature, ErrorReply> {
    let public = CirclePublic::from_cbor(&circle.public).map_err(|e| {
        err(
            ErrorCode::Damaged,
            format!("the stored circle is damaged: {e}"),
        )
    })?;
    let friends = friends_of(shared, &snap.record.ego_id()).await?;
    let mut sid = [0u8; 16];
    OsRng.fill_bytes(&mut sid);
    let session_id = SessionId(sid);
    let message = purpose.signing_bytes();
    let request = RequestBody {
        ego_id: snap.record.ego_id(),
        circle_id: CircleId(circle.circle_id),
        generation: circle.generation,
        session: session_id,
        purpose,
        issued_at: shared.now(),
    }
    .sign(&snap.ego_key);
    let mut coord = Coordinator::new(public.clone(), session_id, message)
        .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;

    // Round 1: every member is asked; the first `t` to commit sign.
    let envelope = Envelope::wrap(kind::CEREMONY_REQUEST, &request);
    let mut asks = JoinSet::new();
    let now = shared.now();
    for (m, friend_id) in &circle.members {
        let Some(friend) = friends.get(friend_id) else {
            continue;
        };
        let peer = friend_peer(friend)?;
        let (node, envelope, m, friend) = (snap.node.clone(), envelope.clone(), *m, friend.clone());
        asks.spawn(async move {
            let addrs = reach(&node, &friend, now).await;
            let answer =
                tokio::time::timeout(ANSWER_WITHIN, node.circle(peer, addrs, &envelope)).await;
            (m, peer, friend.petname, answer)
        });
    }
    let mut signers: Vec<(u16, PeerId)> = Vec::new();
    let mut problems = Vec::new();
    while let Some(done) = asks.join_next().await {
        let Ok((m, peer, name, answer)) = done else {
            continue;
        };
        if signers.len() >= public.threshold() {
            continue;
        }
        match answer {
            Ok(Ok(reply)) if reply.kind == kind::ROUND1 => {
                match reply.open::<Round1>(MAX_CIRCLE_MESSAGE_SIZE) {
                    Ok(r1) if r1.member.get() == m && coord.add_commitments(r1).is_ok() => {
                        signers.push((m, peer));
                    }
                    _ => problems.push(format!("{name}: a bad answer")),
                }
            }
            Ok(Ok(reply)) => {
                let code = reply
                    .open::<CircleRefused>(MAX_CIRCLE_MESSAGE_SIZE)
                    .map_or(refused::INVALID, |r| r.code);
                problems.push(format!("{name}: refused (code {code})"));
            }
            Ok(Err(e)) => problems.push(format!("{name}: {e}")),
            Err(_) => problems.push(format!("{name}: no answer in time")),
        }
    }
    if signers.len() < public.threshold() {
        return Err(err(
            ErrorCode::Network,
            format!(
                "{} of the {} friends needed answered ({}); retrying later",
                signers.len(),
                public.threshold(),
                problems.join("; ")
            ),
        ));
    }

    round2(&snap.node, coord, signers).await
}

/// Round 2 of a session: the chosen signers sign the package; returns
/// the aggregate signature.
pub(super) async fn round2(
    node: &NodeHandle,
    mut coord: Coordinator,
    signers: Vec<(u16, PeerId)>,
) -> Result<Signature, ErrorReply> {
    let signing = coord
        .request()
        .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
    let envelope = Envelope::wrap(kind::SIGNING_REQUEST, &signing);
    let mut shares = JoinSet::new();
    for (m, peer) in signers {
        let (node, envelope) = (node.clone(), envelope.clone());
        shares.spawn(async move {
            let answer =
                tokio::time::timeout(ANSWER_WITHIN, node.circle(peer, Vec::new(), &envelope)).await;
            (m, answer)
        });
    }
    while let Some(done) = shares.join_next().await {
        let Ok((m, answer)) = done else {
            continue;
        };
        let r2 = match answer {
            Ok(Ok(reply)) if reply.kind == kind::ROUND2 => {
                reply.open::<Round2>(MAX_CIRCLE_MESSAGE_SIZE).ok()
            }
            _ => None,
        };
        let Some(r2) = r2.filter(|r| r.member.get() == m) else {
            return Err(err(
                ErrorCode::Network,
                format!("member {m} did not complete the signature; retrying later"),
            ));
        };
        coord
            .add_share(r2)
            .map_err(|e| err(ErrorCode::Refused, format!("member {m}: {e}")))?;
    }
    coord.aggregate().map_err(|e| {
        err(
            ErrorCode::Refused,
            format!("the friends' signature failed: {e}"),
        )
    })
}

/// Rotates the ego key through the friends (flow 4): a new key certified
/// by a threshold of the circle. Returns the record to publish.
pub(crate) async fn rotate_via_friends(shared: &Shared, ego: EgoId) -> Result<Vec<u8>, ErrorReply> {
    let circle = shared
        .keystore
        .circle(&ego)
        .await?
        .ok_or_else(|| err(ErrorCode::Conflict, "the ego has no shared circle"))?;
    let key = shared.data_key()?;
    let snap = snapshot(shared, &ego).await?;
    let now = shared.now();
    let new_key = SecretKey::generate(&mut OsRng);
    let cert: EgoCert = snap
        .record
        .next_cert(new_key.public(), now, shared.settings.cert_validity);
    let sig = session(shared, &snap, &circle, Purpose::Certify(cert.clone())).await?;
    let mut record = snap.record.clone();
    record.set_cert(Signed { body: cert, sig }).map_err(|e| {
        err(
            ErrorCode::Refused,
            format!("the friends' certificate does not fit: {e}"),
        )
    })?;
    let peers = egos::endpoint_peers(shared, &snap.node).await;
    record
        .set_endpoints_dated(&new_key, peers, now, shared.settings.endpoints_validity)
        .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
    let bytes = apply(
        shared,
        &ego,
        &snap,
        record,
        Store::Rotation(&key, Box::new(new_key)),
    )
    .await?;
    info!(%ego, "ego key rotated by the friends");
    Ok(bytes)
}

/// Revokes the ego through the friends: a threshold of the circle signs
/// the revocation certificate. Returns the record to publish.
pub(crate) async fn revoke_via_friends(shared: &Shared, ego: EgoId) -> Result<Vec<u8>, ErrorReply> {
    let circle = shared
        .keystore
        .circle(&ego)
        .await?
        .ok_or_else(|| err(ErrorCode::Conflict, "the ego has no shared circle"))?;
    let snap = snapshot(shared, &ego).await?;
    let now = shared.now();
    let body = snap.record.revocation(now, shared.settings.cert_validity);
    let sig = session(shared, &snap, &circle, Purpose::Certify(body.clone())).await?;
    let mut record = snap.record.clone();
    record.set_cert(Signed { body, sig }).map_err(|e| {
        err(
            ErrorCode::Refused,
            format!("the friends' revocation does not fit: {e}"),
        )
    })?;
    let bytes = apply(shared, &ego, &snap, record, Store::Revocation(now.secs())).await?;
    info!(%ego, "ego revoked by the friends");
    Ok(bytes)
}

// --------------------------------------------------------------- member

/// The friend row of `my_ego` whose ego is `owner`, if `peer` is its node.
pub(super) async fn friendship(
    shared: &Shared,
    my_ego: &EgoId,
    owner: &EgoId,
    peer: &PeerId,
) -> Option<FriendRow> {
    shared
        .keystore
        .friend(my_ego, owner)
        .await
        .ok()
        .flatten()
        .filter(|f| f.friend_peer_id == peer.to_bytes())
}

/// A friend's current record, looked up through the node of this agent's
/// ego `my_ego` (none if that node is not running or the DHT does not
/// answer in time).
pub(super) async fn friend_record(
    shared: &Shared,
    my_ego: &EgoId,
    owner: EgoId,
) -> Option<cyrcles_core::record::VerifiedEgo> {
    let node = {
        let egos = shared.egos.lock().await;
        egos.get(my_ego).and_then(|s| s.node.clone())
    }?;
    match tokio::time::timeout(ANSWER_WITHIN, node.get(owner)).await {
        Ok(Ok(found)) => Some(found.ego),
        _ => None,
    }
}

/// Stores a share of a friend's circle, sealed, for this agent's ego
/// `my_ego` and the friendship `friend_id`; the refusal to send if it
/// cannot.
pub(super) async fn keep_share(
    shared: &Shared,
    my_ego: EgoId,
    friend_id: i64,
    share: &MemberShare,
) -> Result<(), Envelope> {
    let key = shared
        .data_key()
        .map_err(|_| refusal(refused::UNAVAILABLE))?;
    let held = HeldShare {
        owner_ego_id: share.ego_id(),
        generation: share.generation(),
        my_ego_id: my_ego,
        friend_id,
        last_signed_at: None,
        created_at: shared.now().secs(),
    };
    shared
        .keystore
        .store_share(&key, &held, &share.to_secret_cbor())
        .await
        .map_err(|e| {
            warn!(owner = %share.ego_id(), "cannot store a share: {e}");
            refusal(refused::UNAVAILABLE)
        })
}

/// A circle message reached `my_ego`'s node from `peer`.
pub(crate) fn on_message(
    shared: &Arc<Shared>,
    my_ego: EgoId,
    peer: PeerId,
    message: Envelope,
    responder: Responder<Envelope>,
) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let answer = match message.kind {
            kind::DEALT_SHARE => on_share(&shared, my_ego, peer, &message).await,
            kind::CEREMONY_REQUEST => on_request(&shared, my_ego, peer, &message).await,
            kind::SIGNING_REQUEST => on_signing(&shared, peer, &message).await,
            kind::REPAIR_REQUEST | kind::REPAIR_KEYS | kind::REPAIR_SEALED => {
                super::repair::on_message(&shared, my_ego, peer, &message).await
            }
            kind::RECOVERY_REQUEST => {
                super::recovery::on_request(&shared, my_ego, peer, &message).await
            }
            _ => refusal(refused::INVALID),
        };
        responder.respond(answer);
    });
}

async fn on_share(shared: &Shared, my_ego: EgoId, peer: PeerId, message: &Envelope) -> Envelope {
    let Ok(dealt) = DealtShare::decode_bytes(&message.body) else {
        return refusal(refused::INVALID);
    };
    let owner = dealt.ego_id;
    let generation = dealt.generation;
    let Some(friend) = friendship(shared, &my_ego, &owner, &peer).await else {
        warn!(%peer, %owner, "a share from someone who is not a friend was refused");
        return refusal(refused::NOT_A_FRIEND);
    };
    if shared.is_locked() {
        return refusal(refused::UNAVAILABLE);
    }
    let share = match MemberShare::accept(dealt) {
        Ok(s) => s,
        Err(e) => {
            warn!(%owner, "a share that does not check was refused: {e}");
            return refusal(refused::INVALID);
        }
    };
    if let Err(refused) = keep_share(shared, my_ego, friend.id, &share).await {
        return refused;
    }
    info!(%owner, generation, friend = %friend.petname, "holding a share of a friend's circle");
    Envelope::wrap(kind::SHARE_ACK, &share.ack())
}

async fn on_request(shared: &Shared, my_ego: EgoId, peer: PeerId, message: &Envelope) -> Envelope {
    let Ok(request) = message.open::<CeremonyRequest>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let b = &request.body;
    let owner = b.ego_id;
    if friendship(shared, &my_ego, &owner, &peer).await.is_none() {
        warn!(%peer, %owner, "a signing request from someone who is not a friend was refused");
        notice(
            shared,
            format!(
                "a signing request for ego {owner} from a node that is not a friend's was refused"
            ),
        );
        return refusal(refused::NOT_A_FRIEND);
    }
    let Ok(key) = shared.data_key() else {
        return refusal(refused::UNAVAILABLE);
    };
    let (held, secret) = match shared.keystore.held_share(&key, &owner, b.generation).await {
        Ok(Some(h)) => h,
        Ok(None) => return refusal(refused::NO_SHARE),
        Err(e) => {
            warn!(%owner, "cannot open a held share: {e}");
            return refusal(refused::UNAVAILABLE);
        }
    };
    let Ok(share) = MemberShare::from_secret_cbor(&secret) else {
        return refusal(refused::UNAVAILABLE);
    };
    let Some(record) = friend_record(shared, &my_ego, owner).await else {
        return refusal(refused::UNAVAILABLE);
    };
    let now = shared.now();
    let last = held.last_signed_at.map(cyrcles_core::UnixTime::from_secs);
    let message = match authorize(
        &request,
        &record,
        &share,
        last,
        now,
        &shared.settings.signing,
    ) {
        Ok(m) => m,
        Err(r) => {
            warn!(%owner, "a signing request was refused: {r}");
            notice(
                shared,
                format!("a signing request from your friend's ego {owner} was refused: {r}"),
            );
            return refusal(r.code());
        }
    };
    // The friend's circle is at this generation: older shares can go.
    if let Ok(n) = shared.keystore.drop_old_shares(&owner, b.generation).await
        && n > 0
    {
        info!(%owner, dropped = n, "old shares of a friend's circle deleted");
    }
    let (nonces, r1) = commit(&share, b.session, &mut OsRng);
    let session = Session {
        owner,
        generation: b.generation,
        message,
        nonces,
        repeer: None,
    };
    if !open_session(shared, b.session, peer, session) {
        return refusal(refused::UNAVAILABLE);
    }
    Envelope::wrap(kind::ROUND1, &r1)
}

async fn on_signing(shared: &Shared, peer: PeerId, message: &Envelope) -> Envelope {
    let Ok(request) = message.open::<SigningRequest>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let session = lock(&shared.sessions)
        .0
        .take(&request.session.0, &peer, Instant::now())
        .map(|e| e.value);
    let Some(session) = session else {
        return refusal(refused::NO_SESSION);
    };
    if request.message != session.message {
        warn!(owner = %session.owner, "round 2 asked to sign other bytes than round 1 allowed");
        return refusal(refused::INVALID);
    }
    let Ok(key) = shared.data_key() else {
        return refusal(refused::UNAVAILABLE);
    };
    let Ok(Some((_, secret))) = shared
        .keystore
        .held_share(&key, &session.owner, session.generation)
        .await
    else {
        return refusal(refused::NO_SHARE);
    };
    let Ok(share) = MemberShare::from_secret_cbor(&secret) else {
        return refusal(refused::UNAVAILABLE);
    };
    match session.nonces.sign(&share, &request) {
        Ok(r2) => {
            let _ = shared
                .keystore
                .set_share_used(&session.owner, session.generation, shared.now().secs())
                .await;
            if let Some(friend) = session.repeer {
                // The human approved this device as the friend's: later
                // requests of the friend come from it.
                if let Err(e) = shared
                    .keystore
                    .set_friend_peer(friend, &peer.to_bytes())
                    .await
                {
                    warn!(owner = %session.owner, "cannot record the friend's new node: {e}");
                }
            }
            info!(owner = %session.owner, "signed in a friend's circle session");
            Envelope::wrap(kind::ROUND2, &r2)
        }
        Err(e) => {
            warn!(owner = %session.owner, "round 2 refused: {e}");
            refusal(refused::INVALID)
        }
    }
}

/// The members of an ego's shared circle, for its recovery kit.
pub(crate) async fn kit_friends(
    shared: &Shared,
    ego: &EgoId,
) -> Result<Vec<KitFriend>, ErrorReply> {
    let Some(circle) = shared.keystore.circle(ego).await? else {
        return Ok(Vec::new());
    };
    let friends = friends_of(shared, ego).await?;
    Ok(circle
        .members
        .iter()
        .filter_map(|(_, id)| friends.get(id))
        .map(|f| KitFriend {
            name: f.petname.clone(),
            ego_id: f.friend_ego_id.to_string(),
            peer_id: super::info::peer_text(&f.friend_peer_id),
        })
        .collect())
}

/// `cyrcles shares`: whose circles this agent serves.
pub(crate) async fn shares(shared: &Shared) -> Result<Vec<ShareInfo>, ErrorReply> {
    let held = shared.keystore.held_shares().await?;
    let friends: HashMap<i64, FriendRow> = shared
        .keystore
        .friends()
        .await?
        .into_iter()
        .map(|f| (f.id, f))
        .collect();
    let egos = shared.egos.lock().await;
    Ok(held
        .into_iter()
        .map(|h| ShareInfo {
            friend: friends
                .get(&h.friend_id)
                .map_or_else(|| format!("friend #{}", h.friend_id), |f| f.petname.clone()),
            friend_ego_id: h.owner_ego_id.to_string(),
            my_ego: egos
                .get(&h.my_ego_id)
                .map_or_else(|| h.my_ego_id.to_string(), |e| e.row.name.clone()),
            generation: h.generation,
            last_signed_at: h.last_signed_at,
            received_at: h.created_at,
        })
        .collect())
}
