//! The new device (`cyrcles recover`): starts a node with a new device
//! key, asks the friends the kit names until a threshold commits, runs
//! round 2, and installs the recovered ego.

use std::collections::BTreeMap;
use std::sync::Arc;

use cyrcles_core::cbor::Encode;
use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{
    CircleId, CirclePublic, CircleRefused, Coordinator, Purpose, RecoveryBody, RecoveryPending,
    RecoveryRequest, Round1, SessionId, recovery_fingerprint,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::record::{EgoCert, EgoRecord, Signed, VerifiedEgo};
use cyrcles_core::{EgoId, PublicKey, SecretKey, Signature};
use cyrcles_p2p::{NodeHandle, PeerId};
use rand_core::{OsRng, RngCore};
use tokio::task::JoinSet;
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::control::proto::{KitFriend, OutgoingRecovery, RecoveryAnswer};
use crate::daemon::circle::coordinator::round2;
use crate::daemon::egos::{self, EgoState};
use crate::daemon::error::{BadInput, Chain, Conflict, Internal, Network, Refused, Unanswered};
use crate::daemon::peers::{ANSWER_WITHIN, published_addrs};
use crate::daemon::{Error, Result, Shared, lock, node};
use crate::keystore::{CircleRow, EgoRow, NewFriend, Recovered, SecretKind};

/// How long a recovery keeps asking.
const OUTGOING_TTL_SECS: u64 = 7 * 86_400;

/// A friend to ask, resolved from the kit.
#[derive(Debug, Clone)]
struct Friend {
    name: String,
    ego_id: EgoId,
    peer_id: Vec<u8>,
}

/// This device's recovery in progress.
struct Attempt {
    name: String,
    ego: EgoId,
    node: NodeHandle,
    device: Zeroizing<[u8; 32]>,
    new_key: SecretKey,
    record: EgoRecord,
    circle_key: PublicKey,
    friends: Vec<Friend>,
}

fn parse_friends(friends: &[KitFriend]) -> Result<Vec<Friend>> {
    if friends.is_empty() {
        return Err(BadInput::NoKitFriend.into());
    }
    friends
        .iter()
        .map(|f| {
            let ego_id = f
                .ego_id
                .trim()
                .parse::<EgoId>()
                .map_err(|source| BadInput::KitEgoId {
                    friend: f.name.clone(),
                    text: f.ego_id.clone(),
                    source,
                })?;
            let peer_id = if f.peer_id.is_empty() {
                Vec::new()
            } else {
                f.peer_id
                    .parse::<PeerId>()
                    .map_err(|e| BadInput::KitPeerId {
                        friend: f.name.clone(),
                        text: f.peer_id.clone(),
                        source: Box::new(e),
                    })?
                    .to_bytes()
            };
            Ok(Friend {
                name: f.name.clone(),
                ego_id,
                peer_id,
            })
        })
        .collect()
}

/// `recover`: starts recovering `ego_id` under the local `name`.
pub(crate) async fn start(
    shared: &Arc<Shared>,
    name: &str,
    ego_id: &str,
    friends: &[KitFriend],
) -> Result<OutgoingRecovery> {
    egos::check_name(name)?;
    let ego: EgoId = ego_id.trim().parse().map_err(|source| BadInput::EgoId {
        text: ego_id.into(),
        source,
    })?;
    let friends = parse_friends(friends)?;
    shared.data_key()?;
    shared.egos.read(|egos| {
        if egos.values().any(|e| e.row.name == name) {
            return Err(Conflict::NameTaken(name.into()));
        }
        if egos.contains_key(&ego) {
            return Err(Conflict::AlreadyHeld);
        }
        Ok(())
    })?;
    if lock(&shared.recoveries)
        .outgoing
        .get(&ego)
        .is_some_and(|o| o.state == "asking")
    {
        return Err(Conflict::Recovering.into());
    }
    let mut device = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut device[..]);
    let node = node::start(shared, ego, &device).await?;
    let record = match current_record(&node, ego).await {
        Ok(r) => r,
        Err(e) => {
            node.shutdown().await;
            return Err(e);
        }
    };
    let new_key = SecretKey::generate(&mut OsRng);
    let progress = OutgoingRecovery {
        name: name.to_string(),
        ego_id: ego.to_string(),
        fingerprint: recovery_fingerprint(&ego, &new_key.public(), &node.peer_id().to_bytes()),
        state: "asking".into(),
        threshold: None,
        friends: friends
            .iter()
            .map(|f| RecoveryAnswer {
                name: f.name.clone(),
                answer: "waiting".into(),
            })
            .collect(),
        note: "waiting for the friends' answers".into(),
        started_at: shared.now().secs(),
    };
    lock(&shared.recoveries)
        .outgoing
        .insert(ego, progress.clone());
    let attempt = Attempt {
        name: name.to_string(),
        ego,
        node,
        device,
        new_key,
        record: record.record().clone(),
        circle_key: record.circle_key(),
        friends,
    };
    info!(%ego, name, "recovery started");
    tokio::spawn(drive(shared.clone(), attempt));
    Ok(progress)
}

/// The ego's current record from the DHT (the new node may need a moment
/// to join).
async fn current_record(node: &NodeHandle, ego: EgoId) -> Result<VerifiedEgo> {
    let mut last = Unanswered::Timeout;
    for _ in 0..10 {
        match tokio::time::timeout(ANSWER_WITHIN, node.get(ego)).await {
            Ok(Ok(found)) => {
                if found.ego.is_revoked() {
                    return Err(Conflict::RevokedRecovery.into());
                }
                return Ok(found.ego);
            }
            Ok(Err(e)) => last = Unanswered::Lookup(e),
            Err(_) => last = Unanswered::Timeout,
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(Network::NoRecord { ego, source: last }.into())
}

fn set_progress(shared: &Shared, ego: &EgoId, f: impl FnOnce(&mut OutgoingRecovery)) {
    if let Some(o) = lock(&shared.recoveries).outgoing.get_mut(ego) {
        f(o);
    }
}

/// Asks the friends until a threshold signs, the time runs out or the
/// daemon stops.
async fn drive(shared: Arc<Shared>, a: Attempt) {
    let mut stop = shared.stop.subscribe();
    let started = shared.now().secs();
    alert_old_device(&shared, &a).await;
    // What friends told survives attempts: an approved friend answers
    // with commitments, no longer with the circle's public data.
    let mut learned = Learned::default();
    loop {
        match attempt(&shared, &a, &mut learned).await {
            Ok(cert) => {
                match finish(&shared, &a, cert, &learned).await {
                    Ok(()) => set_progress(&shared, &a.ego, |o| {
                        o.state = "done".into();
                        o.note = "recovered: the friends certified this device's new key".into();
                    }),
                    Err(e) => {
                        warn!(ego = %a.ego, "recovery could not be stored: {}", Chain(&e));
                        set_progress(&shared, &a.ego, |o| {
                            o.state = "failed".into();
                            o.note = e.to_string();
                        });
                        a.node.shutdown().await;
                    }
                }
                return;
            }
            Err(not_yet) => set_progress(&shared, &a.ego, |o| o.note = not_yet.to_string()),
        }
        if shared.now().secs() > started.saturating_add(OUTGOING_TTL_SECS) {
            set_progress(&shared, &a.ego, |o| {
                o.state = "failed".into();
                o.note = "no threshold of friends approved within 7 days".into();
            });
            a.node.shutdown().await;
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(shared.settings.recovery_poll) => {}
            _ = stop.changed() => {
                a.node.shutdown().await;
                return;
            }
        }
    }
}

fn request(shared: &Shared, a: &Attempt) -> (RecoveryRequest, EgoCert) {
    let now = shared.now();
    let cert = a
        .record
        .recovery_cert(a.new_key.public(), now, shared.settings.cert_validity);
    let mut sid = [0u8; 16];
    OsRng.fill_bytes(&mut sid);
    let body = RecoveryBody {
        ego_id: a.ego,
        peer_id: a.node.peer_id().to_bytes(),
        cert: cert.clone(),
        issued_at: now,
        session: SessionId(sid),
    };
    (body.sign(&a.new_key), cert)
}

/// Sends the request once to the nodes the current record names.
async fn alert_old_device(shared: &Shared, a: &Attempt) {
    let (req, _) = request(shared, a);
    let envelope = Envelope::wrap(kind::RECOVERY_REQUEST, &req);
    let Some(endpoints) = a.record.endpoints.as_ref() else {
        return;
    };
    for p in &endpoints.body.peers {
        let Ok(peer) = PeerId::from_bytes(&p.peer_id) else {
            continue;
        };
        let addrs = p
            .addrs
            .iter()
            .filter_map(|b| cyrcles_p2p::Multiaddr::try_from(b.clone()).ok())
            .collect();
        let node = a.node.clone();
        let envelope = envelope.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(ANSWER_WITHIN, node.circle(peer, addrs, &envelope)).await;
        });
    }
}

/// Why an attempt has no certificate yet (the note `recovery list` shows).
#[derive(Debug, thiserror::Error)]
enum NotYet {
    /// No friend has sent the circle's public data.
    #[error("{approved} approval(s); no friend has told the circle's threshold yet")]
    NoThreshold { approved: usize },
    /// Fewer approvals than the threshold.
    #[error("{approved} of the {needed} approvals needed; waiting for the friends")]
    TooFew { approved: usize, needed: usize },
    /// The commitments do not make a session.
    #[error("cannot coordinate: {0}")]
    Coordinate(#[source] cyrcles_core::circle::CircleError),
    /// Round 2 failed.
    #[error(transparent)]
    Round2(Error),
}

/// What one attempt learned of the circle.
#[derive(Default)]
struct Learned {
    public: Option<CirclePublic>,
    circle_id: Option<CircleId>,
    members: BTreeMap<u16, usize>,
    /// Each kit friend found so far (by index): its node and ego key.
    reached: BTreeMap<usize, (PeerId, PublicKey)>,
}

/// One attempt: every friend is asked; with a threshold of commitments,
/// round 2. Returns the certificate's signature, or what stopped it.
async fn attempt(
    shared: &Shared,
    a: &Attempt,
    learned: &mut Learned,
) -> Result<Signed<EgoCert>, NotYet> {
    let (req, cert) = request(shared, a);
    let message = Purpose::Certify(cert.clone()).signing_bytes();
    let envelope = Envelope::wrap(kind::RECOVERY_REQUEST, &req);
    let now = shared.now();
    let mut asks = JoinSet::new();
    for (index, f) in a.friends.iter().enumerate() {
        let (node, envelope, f) = (a.node.clone(), envelope.clone(), f.clone());
        asks.spawn(async move {
            let found = tokio::time::timeout(ANSWER_WITHIN, node.get(f.ego_id)).await;
            let Ok(Ok(found)) = found else {
                return (index, None, Err("unreachable".to_string()));
            };
            let peer_bytes = if f.peer_id.is_empty() {
                found
                    .ego
                    .live_endpoints(now)
                    .and_then(|e| e.peers.first())
                    .map(|p| p.peer_id.clone())
                    .unwrap_or_default()
            } else {
                f.peer_id.clone()
            };
            let Ok(peer) = PeerId::from_bytes(&peer_bytes) else {
                return (index, None, Err("unreachable".to_string()));
            };
            let addrs = published_addrs(&found.ego, &peer_bytes, now);
            let answer = tokio::time::timeout(ANSWER_WITHIN, node.circle(peer, addrs, &envelope))
                .await
                .map_err(|_| "unreachable".to_string())
                .and_then(|r| r.map_err(|_| "unreachable".to_string()));
            (index, Some((peer, found.ego.ego_key())), answer)
        });
    }
    let mut round1: Vec<(usize, PeerId, Round1)> = Vec::new();
    let mut answers: Vec<(usize, String)> = Vec::new();
    while let Some(done) = asks.join_next().await {
        let Ok((index, who, answer)) = done else {
            continue;
        };
        if let Some(who) = who {
            learned.reached.insert(index, who);
        }
        let text = match answer {
            Err(e) => e,
            Ok(reply) if reply.kind == kind::RECOVERY_PENDING => {
                match reply.open::<RecoveryPending>(MAX_CIRCLE_MESSAGE_SIZE) {
                    Ok(p) if p.public.group_key() == a.circle_key => {
                        learned.members.insert(p.member.get(), index);
                        learned.circle_id = Some(p.circle_id);
                        learned.public = Some(p.public);
                        if p.wait_secs > 0 {
                            format!(
                                "approved; signs in {} (the friend's recovery delay)",
                                crate::text::duration(p.wait_secs)
                            )
                        } else {
                            "waiting".into()
                        }
                    }
                    // A share of an older circle: that friend can no
                    // longer sign for this ego.
                    Ok(_) => "refused (an old circle)".into(),
                    Err(_) => "refused (a bad answer)".into(),
                }
            }
            Ok(reply) if reply.kind == kind::ROUND1 => {
                match reply.open::<Round1>(MAX_CIRCLE_MESSAGE_SIZE) {
                    Ok(r1) if r1.session == req.body.session => {
                        learned.members.insert(r1.member.get(), index);
                        if let Some((peer, _)) = learned.reached.get(&index) {
                            round1.push((index, *peer, r1));
                        }
                        "approved".into()
                    }
                    _ => "refused (a bad answer)".into(),
                }
            }
            Ok(reply) => match reply.open::<CircleRefused>(MAX_CIRCLE_MESSAGE_SIZE) {
                Ok(r) if r.code == refused::DENIED => "denied".into(),
                Ok(r) => format!("refused (code {})", r.code),
                Err(_) => "refused (a bad answer)".into(),
            },
        };
        answers.push((index, text));
    }
    let threshold = learned
        .public
        .as_ref()
        .map(|p| u16::try_from(p.threshold()).unwrap_or(u16::MAX));
    set_progress(shared, &a.ego, |o| {
        o.threshold = threshold;
        for (index, text) in &answers {
            if let Some(f) = o.friends.get_mut(*index) {
                f.answer.clone_from(text);
            }
        }
    });
    let approved = round1.len();
    let Some(public) = learned.public.clone() else {
        return Err(NotYet::NoThreshold { approved });
    };
    if approved < public.threshold() {
        return Err(NotYet::TooFew {
            approved,
            needed: public.threshold(),
        });
    }
    let mut coord =
        Coordinator::new(public.clone(), req.body.session, message).map_err(NotYet::Coordinate)?;
    let mut signers = Vec::new();
    for (_, peer, r1) in round1.into_iter().take(public.threshold()) {
        let m = r1.member.get();
        if coord.add_commitments(r1).is_ok() {
            signers.push((m, peer));
        }
    }
    let sig: Signature = round2(&a.node, coord, signers)
        .await
        .map_err(NotYet::Round2)?;
    Ok(Signed { body: cert, sig })
}

/// Stores the recovered ego: the certificate, new endpoints, the keys,
/// the friends and the circle; then publishes.
async fn finish(
    shared: &Arc<Shared>,
    a: &Attempt,
    cert: Signed<EgoCert>,
    learned: &Learned,
) -> Result<()> {
    let key = shared.data_key()?;
    let now = shared.now();
    let mut record = a.record.clone();
    record.set_cert(cert).map_err(Refused::RecoveredCert)?;
    let peers = egos::endpoint_peers(shared, &a.node).await;
    record
        .set_endpoints_dated(&a.new_key, peers, now, shared.settings.endpoints_validity)
        .map_err(Internal::Endpoints)?;
    let bytes = record.to_cbor();
    let circle_id = learned.circle_id.map_or_else(
        || {
            let mut c = [0u8; 16];
            OsRng.fill_bytes(&mut c);
            c
        },
        |c| c.0,
    );
    let row = EgoRow::new(a.ego, a.name.clone(), bytes.clone(), circle_id, now.secs());
    let secrets: [(SecretKind, &[u8]); 2] = [
        (SecretKind::Ego, &a.new_key.to_seed()[..]),
        (SecretKind::Device, &a.device[..]),
    ];
    // The friends the kit named become this ego's friends again (those
    // never reached have no known key and are not stored), and the
    // circle's members are known by the member ids they told. One
    // transaction: a crash or a failed write leaves nothing half-recovered.
    let mut friends = Vec::new();
    let fingerprints: Vec<String> = a
        .friends
        .iter()
        .map(|f| f.ego_id.fingerprint().to_string())
        .collect();
    let peers: BTreeMap<usize, Vec<u8>> = learned
        .reached
        .iter()
        .map(|(i, (peer, _))| (*i, peer.to_bytes()))
        .collect();
    for (index, f) in a.friends.iter().enumerate() {
        let (Some((_, ego_key)), Some(peer), Some(fingerprint)) = (
            learned.reached.get(&index),
            peers.get(&index),
            fingerprints.get(index),
        ) else {
            continue;
        };
        let member = learned
            .members
            .iter()
            .find(|(_, i)| **i == index)
            .map(|(m, _)| *m);
        friends.push((
            NewFriend {
                ego_id: &a.ego,
                petname: &f.name,
                friend_ego_id: &f.ego_id,
                friend_ego_key: ego_key,
                friend_peer_id: peer,
                fingerprint,
                now: now.secs(),
            },
            member,
        ));
    }
    let circle = learned.public.as_ref().map(|p| CircleRow {
        circle_id,
        generation: u64::try_from(record.chain.len()).unwrap_or(u64::MAX),
        threshold: u16::try_from(p.threshold()).unwrap_or(u16::MAX),
        public: p.to_cbor(),
        members: Vec::new(),
        created_at: now.secs(),
    });
    // Held until the ego is in the table, so that an `ego create` of the
    // name meanwhile is refused.
    let name_hold = shared.egos.reserve_name(&a.name)?;
    let installed = shared
        .keystore
        .install_recovered(
            &key,
            Recovered {
                row: &row,
                secrets: &secrets,
                friends,
                circle,
            },
        )
        .await?;
    for (friend, e) in &installed.skipped {
        warn!(%friend, "cannot store the friend: {}", Chain(e));
    }
    let circle = installed.circle;
    egos::set_signer(
        shared,
        a.ego,
        SecretKey::from_seed(&a.new_key.to_seed()),
        record.cert.body.seq,
    );
    let state = EgoState {
        row,
        record: Some(record),
        node: Some(a.node.clone()),
        damage: None,
        circle: circle.as_ref().map(|c| (c.threshold, c.members.len())),
        friends_retry: None,
        friends_error: None,
    };
    lock(&shared.approvals).track_ego(&state);
    shared.egos.insert(state);
    drop(name_hold);
    info!(ego = %a.ego, name = %a.name, "ego recovered");
    let _ = egos::publish(shared, a.ego, &a.node, bytes).await;
    shared.wake.notify_one();
    Ok(())
}
