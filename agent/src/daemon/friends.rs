//! Friends: invites, on both sides, and the friend list.
//!
//! The inviter's agent opens an invite for one of its egos: it makes a
//! code, announces the ego's node under the code's rendezvous key, and
//! waits (while `cyrcles friend invite` waits) for a hello. The acceptor's
//! agent finds the node from the code, and the two run the SPAKE2
//! exchange of `cyrcles_core::invite`. Each side checks the other's party
//! against the DHT: the ego's record must be valid, not revoked, and
//! certify the ego key the party names; the peer id must be the
//! connection's.
//!
//! One guess per code: the first hello takes the invite out of the open
//! set, whatever follows. A wrong code ends both sides at once (the
//! acceptor sends a confirmation that cannot match, so the inviter does
//! not wait for the expiry).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cyrcles_core::EgoId;
use cyrcles_core::envelope::Envelope;
use cyrcles_core::invite::{
    Acceptor, InviteCode, InviteConfirm, InviteDone, InviteError, InviteHello, InviteRefused,
    InviteReply, Inviter, InviterWaiting, MAX_INVITE_MESSAGE_SIZE, Party, RefusedReason, kind,
};
use cyrcles_p2p::{NodeHandle, PeerId, Responder};
use rand_core::OsRng;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::egos::EgoState;
use super::{Shared, egos, lock, read};
use crate::control::proto::{ErrorCode, ErrorReply, FriendInfo};
use crate::keystore::{FriendRow, NewFriend};

/// How long a code works.
pub(crate) const INVITE_TTL_SECS: u64 = 600;
/// How long the acceptor looks for the inviter's node.
const FIND_FOR: Duration = Duration::from_secs(30);
/// How long one side waits for the other's record.
const RESOLVE_FOR: Duration = Duration::from_secs(15);

/// What the inviter's CLI waits for.
pub(crate) type Outcome = oneshot::Receiver<Result<FriendInfo, ErrorReply>>;

enum Stage {
    /// Waiting for a hello.
    Open(Inviter),
    /// A hello arrived; its sender is being checked.
    Checking,
    /// Waiting for the acceptor's confirmation.
    Waiting { peer: PeerId, state: InviterWaiting },
}

/// An invite this agent opened.
pub(crate) struct OpenInvite {
    ego: EgoId,
    petname: Option<String>,
    stage: Stage,
    done: Option<oneshot::Sender<Result<FriendInfo, ErrorReply>>>,
    node: NodeHandle,
    rendezvous: [u8; 32],
}

/// The open invites, by nameplate.
#[derive(Default)]
pub(crate) struct Invites(HashMap<u16, OpenInvite>);

impl std::fmt::Debug for Invites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Invites({} open)", self.0.len())
    }
}

fn refused(reason: RefusedReason) -> Envelope {
    Envelope::wrap(kind::REFUSED, &InviteRefused { reason })
}

fn network(what: &str, e: impl std::fmt::Display) -> ErrorReply {
    ErrorReply::new(ErrorCode::Network, format!("{what}: {e}"))
}

/// This side's party for `ego`: its current ego key and its node.
async fn me(shared: &Shared, ego_name: Option<&str>) -> Result<(Party, NodeHandle), ErrorReply> {
    let egos = shared.egos.lock().await;
    let state = match ego_name {
        Some(name) => egos::find(&egos, name)?,
        None => {
            let mut live = egos.values().filter(|e| !e.is_revoked());
            match (live.next(), live.next()) {
                (Some(one), None) => one,
                (None, _) => {
                    return Err(ErrorReply::new(
                        ErrorCode::NotFound,
                        "no ego yet: create one with `cyrcles ego create NAME`",
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(ErrorReply::new(
                        ErrorCode::BadRequest,
                        "this agent has several egos: name the one that befriends with --as EGO",
                    ));
                }
            }
        }
    };
    if state.is_revoked() {
        return Err(ErrorReply::new(
            ErrorCode::Conflict,
            format!("ego {:?} is revoked", state.row.name),
        ));
    }
    let ego_id = state.ego_id();
    let signer = read(&shared.signers).get(&ego_id).cloned();
    let (Some(node), Some(signer)) = (state.node.clone(), signer) else {
        return Err(ErrorReply::new(
            ErrorCode::Locked,
            "the keys are locked; run `cyrcles unlock` first",
        ));
    };
    Ok((
        Party {
            ego_id,
            ego_pk: signer.key.public(),
            peer_id: node.peer_id().to_bytes(),
        },
        node,
    ))
}

/// Checks a party against the DHT: a valid, live record of its ego whose
/// certified key is the one it names.
async fn check_party(node: &NodeHandle, party: &Party) -> Result<(), String> {
    let found = tokio::time::timeout(RESOLVE_FOR, node.get(party.ego_id))
        .await
        .map_err(|_| "its record was not found in time".to_string())?
        .map_err(|e| format!("its record was not found: {e}"))?;
    if found.ego.is_revoked() {
        return Err("the ego is revoked".into());
    }
    if found.ego.ego_key() != party.ego_pk {
        return Err("the ego key is not the one its record certifies".into());
    }
    Ok(())
}

/// `friend invite`: opens an invite and returns the code to read out.
pub(crate) async fn open(
    shared: &Arc<Shared>,
    ego: &str,
    petname: Option<String>,
) -> Result<(InviteCode, u64, Outcome), ErrorReply> {
    if let Some(p) = &petname {
        egos::check_name(p)?;
    }
    let (party, node) = me(shared, Some(ego)).await?;
    let code = loop {
        let c = InviteCode::generate(&mut OsRng);
        if !lock(&shared.invites).0.contains_key(&c.nameplate()) {
            break c;
        }
    };
    let rendezvous = code.rendezvous();
    // The announcement must reach at least one peer, or nobody can find
    // the invite; a node that just started may need a moment.
    let mut last = None;
    for _ in 0..10 {
        match node.provide(rendezvous).await {
            Ok(n) if n > 0 => {
                last = None;
                break;
            }
            Ok(_) => last = Some("no peer stored it".to_string()),
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some(why) = last {
        node.stop_providing(rendezvous).await.ok();
        return Err(ErrorReply::new(
            ErrorCode::Network,
            format!(
                "the invite could not be announced on the network ({why}); \
                 is the agent connected to a bridge (--bootstrap)?"
            ),
        ));
    }
    let (tx, rx) = oneshot::channel();
    let expires_at = shared.now().secs() + INVITE_TTL_SECS;
    lock(&shared.invites).0.insert(
        code.nameplate(),
        OpenInvite {
            ego: party.ego_id,
            petname,
            stage: Stage::Open(Inviter::new(code.clone(), party)),
            done: Some(tx),
            node,
            rendezvous,
        },
    );
    info!(nameplate = code.nameplate(), "invite opened");
    Ok((code, expires_at, rx))
}

/// Ends an invite that is still open (expired, or its CLI left).
pub(crate) async fn close(shared: &Shared, nameplate: u16, why: &str) {
    let gone = lock(&shared.invites).0.remove(&nameplate);
    if let Some(mut inv) = gone {
        info!(nameplate, "invite closed: {why}");
        inv.node.stop_providing(inv.rendezvous).await.ok();
        if let Some(done) = inv.done.take() {
            let _ = done.send(Err(ErrorReply::new(ErrorCode::Expired, why.to_string())));
        }
    }
}

/// Ends an invite with an error for the inviter's CLI (it is burnt).
async fn burn(shared: &Shared, nameplate: u16, error: ErrorReply) {
    let gone = lock(&shared.invites).0.remove(&nameplate);
    if let Some(mut inv) = gone {
        warn!(nameplate, "invite failed: {}", error.message);
        inv.node.stop_providing(inv.rendezvous).await.ok();
        if let Some(done) = inv.done.take() {
            let _ = done.send(Err(error));
        }
    }
}

/// An invite message reached `ego`'s node from `peer` (inviter side).
pub(crate) fn on_message(
    shared: &Arc<Shared>,
    ego: EgoId,
    peer: PeerId,
    message: Envelope,
    responder: Responder<Envelope>,
) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let answer = match message.kind {
            kind::HELLO => match message.open::<InviteHello>(MAX_INVITE_MESSAGE_SIZE) {
                Ok(hello) => on_hello(&shared, ego, peer, hello).await,
                Err(_) => refused(RefusedReason::Invalid),
            },
            kind::CONFIRM => match message.open::<InviteConfirm>(MAX_INVITE_MESSAGE_SIZE) {
                Ok(confirm) => on_confirm(&shared, ego, peer, confirm).await,
                Err(_) => refused(RefusedReason::Invalid),
            },
            _ => refused(RefusedReason::Invalid),
        };
        responder.respond(answer);
    });
}

async fn on_hello(shared: &Shared, ego: EgoId, peer: PeerId, hello: InviteHello) -> Envelope {
    let nameplate = hello.nameplate;
    // One guess: the inviter state leaves the open set now.
    let taken = {
        let mut invites = lock(&shared.invites);
        match invites.0.get_mut(&nameplate) {
            Some(inv) if inv.ego == ego => match std::mem::replace(&mut inv.stage, Stage::Checking)
            {
                Stage::Open(inviter) => Some((inviter, inv.node.clone())),
                other => {
                    inv.stage = other;
                    None
                }
            },
            _ => None,
        }
    };
    let Some((inviter, node)) = taken else {
        info!(%peer, nameplate, "invite hello refused: no open invite");
        return refused(RefusedReason::NoInvite);
    };
    if hello.acceptor.peer_id != peer.to_bytes() {
        burn(
            shared,
            nameplate,
            ErrorReply::new(
                ErrorCode::Refused,
                "the friend's agent named another node than its own: invite abandoned",
            ),
        )
        .await;
        return refused(RefusedReason::Invalid);
    }
    if let Err(why) = check_party(&node, &hello.acceptor).await {
        burn(
            shared,
            nameplate,
            ErrorReply::new(
                ErrorCode::Refused,
                format!("the friend's ego does not check out: {why}"),
            ),
        )
        .await;
        return refused(RefusedReason::UnknownParty);
    }
    match inviter.on_hello(&hello, &mut OsRng) {
        Ok((state, reply)) => {
            if let Some(inv) = lock(&shared.invites).0.get_mut(&nameplate) {
                inv.stage = Stage::Waiting { peer, state };
            }
            Envelope::wrap(kind::REPLY, &reply)
        }
        Err(e) => {
            burn(shared, nameplate, invite_error(&e)).await;
            refused(RefusedReason::Invalid)
        }
    }
}

async fn on_confirm(shared: &Shared, ego: EgoId, peer: PeerId, confirm: InviteConfirm) -> Envelope {
    let nameplate = confirm.nameplate;
    let taken = {
        let mut invites = lock(&shared.invites);
        let ours = invites.0.get(&nameplate).is_some_and(|inv| {
            inv.ego == ego && matches!(&inv.stage, Stage::Waiting { peer: p, .. } if *p == peer)
        });
        if ours {
            invites.0.remove(&nameplate)
        } else {
            None
        }
    };
    let Some(mut inv) = taken else {
        return refused(RefusedReason::NoInvite);
    };
    inv.node.stop_providing(inv.rendezvous).await.ok();
    let Stage::Waiting { state, .. } = inv.stage else {
        return refused(RefusedReason::Invalid);
    };
    let outcome = match state.on_confirm(&confirm) {
        Ok(friendship) => {
            store(
                shared,
                ego,
                inv.petname.as_deref(),
                &friendship.friend,
                &friendship.fingerprint,
            )
            .await
        }
        Err(e) => Err(invite_error(&e)),
    };
    let answer = match &outcome {
        Ok(f) => {
            info!(ego = %ego, friend = %f.ego_id, "friend added (invite)");
            Envelope::wrap(kind::DONE, &InviteDone)
        }
        Err(e) if e.code == ErrorCode::WrongCode => refused(RefusedReason::WrongCode),
        Err(_) => refused(RefusedReason::Invalid),
    };
    if let Some(done) = inv.done.take() {
        let _ = done.send(outcome);
    }
    answer
}

fn invite_error(e: &InviteError) -> ErrorReply {
    match e {
        InviteError::Mismatch => ErrorReply::new(
            ErrorCode::WrongCode,
            "the invite code did not match: a wrong code, or someone in the middle; \
             the invite is burnt, open a new one",
        ),
        other => ErrorReply::new(ErrorCode::Refused, other.to_string()),
    }
}

async fn store(
    shared: &Shared,
    ego: EgoId,
    petname: Option<&str>,
    friend: &Party,
    fingerprint: &str,
) -> Result<FriendInfo, ErrorReply> {
    let default = friend.ego_id.fingerprint().to_string();
    let row = shared
        .keystore
        .add_friend(NewFriend {
            ego_id: &ego,
            petname: petname.unwrap_or(&default),
            friend_ego_id: &friend.ego_id,
            friend_ego_key: &friend.ego_pk,
            friend_peer_id: &friend.peer_id,
            fingerprint,
            now: shared.now().secs(),
        })
        .await?;
    Ok(info_of(&*shared.egos.lock().await, &row))
}

/// A friendship as shown, with the name of the person's ego.
fn info_of(egos: &BTreeMap<EgoId, EgoState>, row: &FriendRow) -> FriendInfo {
    FriendInfo {
        id: row.id,
        ego: egos
            .get(&row.ego_id)
            .map_or_else(|| row.ego_id.to_string(), |e| e.row.name.clone()),
        name: row.petname.clone(),
        ego_id: row.friend_ego_id.to_string(),
        fingerprint: row.fingerprint.clone(),
        peer_id: super::info::peer_text(&row.friend_peer_id),
        created_at: row.created_at,
    }
}

/// `friend list`.
pub(crate) async fn list(shared: &Shared) -> Result<Vec<FriendInfo>, ErrorReply> {
    let rows = shared.keystore.friends().await?;
    let egos = shared.egos.lock().await;
    Ok(rows.iter().map(|r| info_of(&egos, r)).collect())
}

/// Sends one invite message and reads the answer's kind.
async fn exchange(
    node: &NodeHandle,
    peer: PeerId,
    message: Envelope,
) -> Result<Envelope, ErrorReply> {
    node.invite(peer, Vec::new(), &message)
        .await
        .map_err(|e| network("the inviter's agent did not answer", e))
}

fn refusal(answer: &Envelope) -> Option<RefusedReason> {
    (answer.kind == kind::REFUSED)
        .then(|| answer.open::<InviteRefused>(MAX_INVITE_MESSAGE_SIZE).ok())
        .flatten()
        .map(|r| r.reason)
}

fn refused_error(reason: RefusedReason) -> ErrorReply {
    match reason {
        RefusedReason::NoInvite => ErrorReply::new(
            ErrorCode::NotFound,
            "no open invite has this code (expired, already used, or mistyped number)",
        ),
        RefusedReason::WrongCode => ErrorReply::new(
            ErrorCode::WrongCode,
            "the invite code did not match; ask your friend for a new invite",
        ),
        RefusedReason::UnknownParty => ErrorReply::new(
            ErrorCode::Refused,
            "the inviter's agent could not find your ego's record; is your agent connected?",
        ),
        RefusedReason::RateLimited => {
            ErrorReply::new(ErrorCode::Refused, "the inviter's agent is busy; try again")
        }
        RefusedReason::Invalid => ErrorReply::new(
            ErrorCode::Refused,
            "the inviter's agent refused the exchange",
        ),
    }
}

/// `friend accept CODE`.
pub(crate) async fn accept(
    shared: &Shared,
    code: &str,
    ego: Option<&str>,
    petname: Option<String>,
) -> Result<FriendInfo, ErrorReply> {
    let code: InviteCode = code.parse().map_err(|e: cyrcles_core::invite::CodeError| {
        ErrorReply::new(ErrorCode::BadRequest, e.to_string())
    })?;
    if let Some(p) = &petname {
        egos::check_name(p)?;
    }
    let (party, node) = me(shared, ego).await?;
    let me_peer = node.peer_id();
    let deadline = tokio::time::Instant::now() + FIND_FOR;
    let providers = loop {
        let found: Vec<PeerId> = node
            .find_providers(code.rendezvous())
            .await
            .map_err(|e| network("the agent's node stopped", e))?
            .into_iter()
            .filter(|p| *p != me_peer)
            .collect();
        if !found.is_empty() {
            break found;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ErrorReply::new(
                ErrorCode::NotFound,
                format!(
                    "nobody is waiting with invite number {} (expired, mistyped, or the \
                     inviter's agent is offline)",
                    code.nameplate()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut last = refused_error(RefusedReason::NoInvite);
    for peer in providers {
        let (acceptor, hello) = Acceptor::start(&code, party.clone(), &mut OsRng)
            .map_err(|e| ErrorReply::new(ErrorCode::Internal, e.to_string()))?;
        let answer = exchange(&node, peer, Envelope::wrap(kind::HELLO, &hello)).await?;
        if let Some(reason) = refusal(&answer) {
            last = refused_error(reason);
            if reason == RefusedReason::NoInvite {
                // A nameplate collision: another invite under this number.
                continue;
            }
            return Err(last);
        }
        if answer.kind != kind::REPLY {
            return Err(ErrorReply::new(
                ErrorCode::Refused,
                "the inviter's agent answered out of turn",
            ));
        }
        let reply: InviteReply = answer
            .open(MAX_INVITE_MESSAGE_SIZE)
            .map_err(|e| ErrorReply::new(ErrorCode::Refused, format!("malformed reply: {e}")))?;
        let exchange = Exchange {
            node: &node,
            peer,
            nameplate: code.nameplate(),
            ego: party.ego_id,
        };
        return finish(shared, &exchange, acceptor, &reply, petname.as_deref()).await;
    }
    Err(last)
}

/// The acceptor's exchange with one inviter node.
struct Exchange<'a> {
    node: &'a NodeHandle,
    peer: PeerId,
    nameplate: u16,
    ego: EgoId,
}

async fn finish(
    shared: &Shared,
    x: &Exchange<'_>,
    acceptor: Acceptor,
    reply: &InviteReply,
    petname: Option<&str>,
) -> Result<FriendInfo, ErrorReply> {
    let (node, peer, ego) = (x.node, x.peer, x.ego);
    let (friendship, confirm) = match acceptor.on_reply(reply) {
        Ok(ok) => ok,
        Err(e) => {
            // End the inviter's side now: a confirmation that cannot match.
            let abort = InviteConfirm {
                nameplate: x.nameplate,
                confirm: [0; 32],
            };
            let _ = exchange(node, peer, Envelope::wrap(kind::CONFIRM, &abort)).await;
            return Err(invite_error(&e));
        }
    };
    if reply.inviter.peer_id != peer.to_bytes() {
        return Err(ErrorReply::new(
            ErrorCode::Refused,
            "the inviter's agent named another node than its own",
        ));
    }
    if let Err(why) = check_party(node, &reply.inviter).await {
        return Err(ErrorReply::new(
            ErrorCode::Refused,
            format!("the inviter's ego does not check out: {why}"),
        ));
    }
    let answer = exchange(node, peer, Envelope::wrap(kind::CONFIRM, &confirm)).await?;
    if let Some(reason) = refusal(&answer) {
        return Err(refused_error(reason));
    }
    if answer.kind != kind::DONE || answer.open::<InviteDone>(MAX_INVITE_MESSAGE_SIZE).is_err() {
        return Err(ErrorReply::new(
            ErrorCode::Refused,
            "the inviter's agent answered out of turn",
        ));
    }
    let info = store(
        shared,
        ego,
        petname,
        &friendship.friend,
        &friendship.fingerprint,
    )
    .await?;
    info!(ego = %ego, friend = %info.ego_id, "friend added (accepted an invite)");
    Ok(info)
}
