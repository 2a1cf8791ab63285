//! Friends: invites, on both sides, and the friend list.
//!
//! The inviter's agent opens an invite for one of its egos: it makes a
//! code, announces the ego's node under the code's rendezvous key (from
//! the nameplate and the first word), and waits (while `cyrcles friend
//! invite` waits) for a hello. The acceptor's agent finds the node from
//! the code, and the two run the SPAKE2 exchange of
//! `cyrcles_core::invite`. Each side checks the other's party against the
//! DHT: the ego's record must be valid, not revoked, and certify the ego
//! key the party names; the peer id must be the connection's.
//!
//! **Only a real guess spends an invite.** A hello is checked before the
//! invite is touched: its sender's rate (`hello_gate.rs`), the nameplate
//! and rendezvous key (so the sender knows the first word), the node it
//! names, then its party. A hello that fails any of these is refused and
//! the invite stays open. One that passes gets the inviter's reply, from
//! which the acceptor can tell whether its code was right: from then on
//! the invite is spent, and a confirmation that does not match, or none
//! within [`CONFIRM_WITHIN`], ends it. A wrong code ends both sides at
//! once (the acceptor sends a confirmation that cannot match).
//!
//! **The acceptor** tries every node announced under the key (at most
//! [`MAX_PROVIDERS_TRIED`]): a node that refuses, fails, answers out of
//! turn or names a party that does not check out is not the inviter, and
//! the next is tried. It stops only at a completed exchange, right or
//! wrong.

use std::collections::{BTreeMap, HashMap, HashSet};
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
use super::error::{
    BadInput, Chain, Conflict, Expired, Internal, Locked, Network, NotFound, PartyCheck, Refused,
    Unannounced, WrongCode,
};
use super::hello_gate::HelloGate;
use super::{Error, Result, Shared, egos, lock, read};
use crate::control::proto::FriendInfo;
use crate::keystore::{FriendRow, NewFriend};

/// How long a code works.
pub(crate) const INVITE_TTL_SECS: u64 = 600;
/// Invites open at once on this agent.
const MAX_OPEN: usize = 16;
/// How long the acceptor looks for the inviter's node.
const FIND_FOR: Duration = Duration::from_secs(30);
/// How long one side waits for the other's record.
const RESOLVE_FOR: Duration = Duration::from_secs(15);
/// How long the inviter waits for the confirmation once it replied.
const CONFIRM_WITHIN: Duration = Duration::from_secs(60);
/// Nodes announced under a key that the acceptor tries, at most.
const MAX_PROVIDERS_TRIED: usize = 8;

/// What the inviter's CLI waits for.
pub(crate) type Outcome = oneshot::Receiver<Result<FriendInfo>>;

enum Stage {
    /// Waiting for a hello.
    Open(Inviter),
    /// Replied to a hello (the guess is spent); waiting for its sender's
    /// confirmation.
    Waiting { peer: PeerId, state: InviterWaiting },
}

/// An invite this agent opened.
pub(crate) struct OpenInvite {
    ego: EgoId,
    petname: Option<String>,
    stage: Stage,
    done: Option<oneshot::Sender<Result<FriendInfo>>>,
    node: NodeHandle,
    rendezvous: [u8; 32],
}

/// The open invites, by nameplate, and the gate hellos pass first.
#[derive(Default)]
pub(crate) struct Invites {
    open: HashMap<u16, OpenInvite>,
    gate: HelloGate,
}

impl std::fmt::Debug for Invites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Invites({} open)", self.open.len())
    }
}

/// The answer refusing an invite step (as `shares::refusal` is
/// a member's refusal of a circle message).
fn refusal(reason: RefusedReason) -> Envelope {
    Envelope::wrap(kind::REFUSED, &InviteRefused { reason })
}

/// This side's party for `ego`: its current ego key and its node.
fn me(shared: &Shared, ego_name: Option<&str>) -> Result<(Party, NodeHandle)> {
    shared.egos.read(|egos| me_in(shared, egos, ego_name))
}

fn me_in(
    shared: &Shared,
    egos: &BTreeMap<EgoId, EgoState>,
    ego_name: Option<&str>,
) -> Result<(Party, NodeHandle)> {
    let state = match ego_name {
        Some(name) => egos::find(egos, name)?,
        None => {
            let mut live = egos.values().filter(|e| !e.is_revoked());
            match (live.next(), live.next()) {
                (Some(one), None) => one,
                (None, _) => return Err(NotFound::NoEgoYet.into()),
                (Some(_), Some(_)) => return Err(BadInput::WhichEgo.into()),
            }
        }
    };
    if state.is_revoked() {
        return Err(Conflict::EgoRevoked(state.row.name.clone()).into());
    }
    let ego_id = state.ego_id();
    let signer = read(&shared.signers).get(&ego_id).cloned();
    let (Some(node), Some(signer)) = (state.node.clone(), signer) else {
        return Err(Locked::Invite.into());
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
async fn check_party(node: &NodeHandle, party: &Party) -> Result<(), PartyCheck> {
    let found = tokio::time::timeout(RESOLVE_FOR, node.get(party.ego_id))
        .await
        .map_err(|_| PartyCheck::Timeout)?
        .map_err(PartyCheck::NotFound)?;
    if found.ego.is_revoked() {
        return Err(PartyCheck::Revoked);
    }
    if found.ego.ego_key() != party.ego_pk {
        return Err(PartyCheck::WrongKey);
    }
    Ok(())
}

/// `friend invite`: opens an invite and returns the code to read out.
pub(crate) async fn open(
    shared: &Arc<Shared>,
    ego: &str,
    petname: Option<String>,
) -> Result<(InviteCode, u64, Outcome)> {
    if let Some(p) = &petname {
        egos::check_name(p)?;
    }
    let (party, node) = me(shared, Some(ego))?;
    if lock(&shared.invites).open.len() >= MAX_OPEN {
        return Err(Refused::TooManyInvites(MAX_OPEN).into());
    }
    let code = loop {
        let c = InviteCode::generate(&mut OsRng);
        if !lock(&shared.invites).open.contains_key(&c.nameplate()) {
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
            Ok(_) => last = Some(Unannounced::NoPeer),
            Err(e) => last = Some(Unannounced::Failed(e)),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some(why) = last {
        node.stop_providing(rendezvous).await.ok();
        return Err(Network::Unannounced(why).into());
    }
    let (tx, rx) = oneshot::channel();
    let expires_at = shared.now().secs() + INVITE_TTL_SECS;
    lock(&shared.invites).open.insert(
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
pub(crate) async fn close(shared: &Shared, nameplate: u16, why: &'static str) {
    let gone = lock(&shared.invites).open.remove(&nameplate);
    if let Some(mut inv) = gone {
        info!(nameplate, "invite closed: {why}");
        inv.node.stop_providing(inv.rendezvous).await.ok();
        if let Some(done) = inv.done.take() {
            let _ = done.send(Err(Expired::InviteClosed(why).into()));
        }
    }
}

/// Ends an invite with an error for the inviter's CLI (it is burnt), if
/// `pred` holds for it.
async fn burn_if(
    shared: &Shared,
    nameplate: u16,
    pred: impl FnOnce(&OpenInvite) -> bool,
    error: Error,
) {
    let gone = {
        let mut invites = lock(&shared.invites);
        match invites.open.get(&nameplate) {
            Some(inv) if pred(inv) => invites.open.remove(&nameplate),
            _ => None,
        }
    };
    if let Some(mut inv) = gone {
        warn!(nameplate, "invite failed: {}", Chain(&error));
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
                Err(_) => refusal(RefusedReason::Invalid),
            },
            kind::CONFIRM => match message.open::<InviteConfirm>(MAX_INVITE_MESSAGE_SIZE) {
                Ok(confirm) => on_confirm(&shared, ego, peer, confirm).await,
                Err(_) => refusal(RefusedReason::Invalid),
            },
            _ => refusal(RefusedReason::Invalid),
        };
        responder.respond(answer);
    });
}

async fn on_hello(shared: &Arc<Shared>, ego: EgoId, peer: PeerId, hello: InviteHello) -> Envelope {
    let nameplate = hello.nameplate;
    let Some(slot) = lock(&shared.invites)
        .gate
        .admit(&peer, shared.clock.instant())
    else {
        info!(%peer, "invite hello refused: over the rate");
        return refusal(RefusedReason::RateLimited);
    };
    // An open invite this hello is for: its nameplate and rendezvous key
    // (so its sender knows the first word). Nothing is taken yet.
    let node = {
        let invites = lock(&shared.invites);
        match invites.open.get(&nameplate) {
            Some(inv) if inv.ego == ego => match &inv.stage {
                Stage::Open(inviter) if inviter.expects(&hello) => Some(inv.node.clone()),
                _ => None,
            },
            _ => None,
        }
    };
    let Some(node) = node else {
        info!(%peer, nameplate, "invite hello refused: no open invite");
        return refusal(RefusedReason::NoInvite);
    };
    if hello.acceptor.peer_id != peer.to_bytes() {
        info!(%peer, nameplate, "invite hello refused: it names another node than its sender");
        return refusal(RefusedReason::Invalid);
    }
    if let Err(why) = check_party(&node, &hello.acceptor).await {
        info!(%peer, nameplate, "invite hello refused: the ego does not check out: {}", Chain(&why));
        return refusal(RefusedReason::UnknownParty);
    }
    drop(slot);
    // A real guess: the reply lets the acceptor tell whether its code was
    // right, so the invite is spent from here.
    let replied = {
        let mut invites = lock(&shared.invites);
        match invites.open.get_mut(&nameplate) {
            Some(inv) if inv.ego == ego => match &inv.stage {
                Stage::Open(inviter) => match inviter.on_hello(&hello, &mut OsRng) {
                    Ok((state, reply)) => {
                        inv.stage = Stage::Waiting { peer, state };
                        Ok(reply)
                    }
                    Err(e) => Err(Some(e)),
                },
                Stage::Waiting { .. } => Err(None),
            },
            _ => Err(None),
        }
    };
    match replied {
        Ok(reply) => {
            info!(%peer, nameplate, "invite hello answered: waiting for the confirmation");
            expire_waiting(shared.clone(), nameplate, peer);
            Envelope::wrap(kind::REPLY, &reply)
        }
        // Taken by another hello meanwhile.
        Err(None) => refusal(RefusedReason::NoInvite),
        // Its own ego, or a SPAKE2 message that is not one: no guess.
        Err(Some(e)) => {
            info!(%peer, nameplate, "invite hello refused: {e}");
            refusal(RefusedReason::Invalid)
        }
    }
}

/// Ends the invite if `peer`, who got the reply, has not confirmed within
/// [`CONFIRM_WITHIN`]: its guess is spent either way.
fn expire_waiting(shared: Arc<Shared>, nameplate: u16, peer: PeerId) {
    tokio::spawn(async move {
        tokio::time::sleep(CONFIRM_WITHIN).await;
        burn_if(
            &shared,
            nameplate,
            |inv| matches!(&inv.stage, Stage::Waiting { peer: p, .. } if *p == peer),
            Expired::Unconfirmed.into(),
        )
        .await;
    });
}

async fn on_confirm(shared: &Shared, ego: EgoId, peer: PeerId, confirm: InviteConfirm) -> Envelope {
    let nameplate = confirm.nameplate;
    let taken = {
        let mut invites = lock(&shared.invites);
        let ours = invites.open.get(&nameplate).is_some_and(|inv| {
            inv.ego == ego && matches!(&inv.stage, Stage::Waiting { peer: p, .. } if *p == peer)
        });
        if ours {
            invites.open.remove(&nameplate)
        } else {
            None
        }
    };
    let Some(mut inv) = taken else {
        return refusal(RefusedReason::NoInvite);
    };
    inv.node.stop_providing(inv.rendezvous).await.ok();
    let Stage::Waiting { state, .. } = inv.stage else {
        return refusal(RefusedReason::Invalid);
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
        Err(e) => Err(invite_error(e)),
    };
    let answer = match &outcome {
        Ok(f) => {
            info!(ego = %ego, friend = %f.ego_id, "friend added (invite)");
            Envelope::wrap(kind::DONE, &InviteDone)
        }
        Err(Error::WrongCode(_)) => refusal(RefusedReason::WrongCode),
        Err(_) => refusal(RefusedReason::Invalid),
    };
    if let Some(done) = inv.done.take() {
        let _ = done.send(outcome);
    }
    answer
}

fn invite_error(e: InviteError) -> Error {
    match e {
        InviteError::Mismatch => WrongCode::Invite.into(),
        other => Refused::Invite(other).into(),
    }
}

async fn store(
    shared: &Shared,
    ego: EgoId,
    petname: Option<&str>,
    friend: &Party,
    fingerprint: &str,
) -> Result<FriendInfo> {
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
    Ok(shared.egos.read(|egos| info_of(egos, &row)))
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
pub(crate) async fn list(shared: &Shared) -> Result<Vec<FriendInfo>> {
    let rows = shared.keystore.friends().await?;
    Ok(shared
        .egos
        .read(|egos| rows.iter().map(|r| info_of(egos, r)).collect()))
}

/// Sends one invite message and reads the answer's kind.
async fn exchange(node: &NodeHandle, peer: PeerId, message: Envelope) -> Result<Envelope> {
    Ok(node
        .invite(peer, Vec::new(), &message)
        .await
        .map_err(Network::InviterSilent)?)
}

/// Why the inviter refused, if `answer` is its refusal.
fn refusal_reason(answer: &Envelope) -> Option<RefusedReason> {
    (answer.kind == kind::REFUSED)
        .then(|| answer.open::<InviteRefused>(MAX_INVITE_MESSAGE_SIZE).ok())
        .flatten()
        .map(|r| r.reason)
}

fn refused_error(reason: RefusedReason) -> Error {
    match reason {
        RefusedReason::NoInvite => NotFound::Invite.into(),
        RefusedReason::WrongCode => WrongCode::Inviter.into(),
        RefusedReason::UnknownParty => Refused::UnknownParty.into(),
        RefusedReason::RateLimited => Refused::InviterBusy.into(),
        RefusedReason::Invalid => Refused::ByInviter.into(),
    }
}

/// `friend accept CODE`.
pub(crate) async fn accept(
    shared: &Shared,
    code: &str,
    ego: Option<&str>,
    petname: Option<String>,
) -> Result<FriendInfo> {
    let code: InviteCode = code.parse().map_err(BadInput::InviteCode)?;
    if let Some(p) = &petname {
        egos::check_name(p)?;
    }
    let (party, node) = me(shared, ego)?;
    let me_peer = node.peer_id();
    let deadline: tokio::time::Instant =
        cyrcles_p2p::deadline::after(tokio::time::Instant::now().into_std(), FIND_FOR).into();
    let mut tried: HashSet<PeerId> = HashSet::new();
    let mut last = refused_error(RefusedReason::NoInvite);
    let mut found_any = false;
    loop {
        let providers: Vec<PeerId> = node
            .find_providers(code.rendezvous())
            .await
            .map_err(Network::NodeStopped)?
            .into_iter()
            .filter(|p| *p != me_peer && !tried.contains(p))
            .collect();
        // Every announced node tried, and no new one: the last refusal.
        if providers.is_empty() && found_any {
            return Err(last);
        }
        for peer in providers {
            if tried.len() >= MAX_PROVIDERS_TRIED {
                return Err(last);
            }
            tried.insert(peer);
            found_any = true;
            let x = Exchange {
                node: &node,
                peer,
                nameplate: code.nameplate(),
                ego: party.ego_id,
            };
            match try_provider(shared, &x, &code, &party, petname.as_deref()).await {
                Tried::Done(outcome) => return outcome,
                Tried::NotTheInviter(why) => {
                    info!(%peer, "an announced node is not the inviter: {}", Chain(&why));
                    last = why;
                }
            }
        }
        if !found_any {
            if tokio::time::Instant::now() >= deadline {
                return Err(NotFound::Inviter(code.nameplate()).into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// What one announced node gave.
enum Tried {
    /// A completed exchange, right or wrong: the acceptor stops.
    Done(Result<FriendInfo>),
    /// Not the inviter (or not now): the next node is tried.
    NotTheInviter(Error),
}

/// Runs the exchange with one announced node.
async fn try_provider(
    shared: &Shared,
    x: &Exchange<'_>,
    code: &InviteCode,
    party: &Party,
    petname: Option<&str>,
) -> Tried {
    let (acceptor, hello) = match Acceptor::start(code, party.clone(), &mut OsRng) {
        Ok(a) => a,
        Err(e) => return Tried::Done(Err(Internal::InviteStart(e).into())),
    };
    let answer = match exchange(x.node, x.peer, Envelope::wrap(kind::HELLO, &hello)).await {
        Ok(a) => a,
        Err(e) => return Tried::NotTheInviter(e),
    };
    if let Some(reason) = refusal_reason(&answer) {
        return Tried::NotTheInviter(refused_error(reason));
    }
    if answer.kind != kind::REPLY {
        return Tried::NotTheInviter(Refused::OutOfTurn.into());
    }
    let reply: InviteReply = match answer.open(MAX_INVITE_MESSAGE_SIZE) {
        Ok(r) => r,
        Err(e) => {
            return Tried::NotTheInviter(Refused::MalformedReply(e).into());
        }
    };
    // Who answers must be who it says, with a valid ego, before its
    // confirmation is looked at: a squatter under the key is skipped.
    if reply.inviter.peer_id != x.peer.to_bytes() {
        return Tried::NotTheInviter(Refused::OtherNode.into());
    }
    if let Err(why) = check_party(x.node, &reply.inviter).await {
        return Tried::NotTheInviter(Refused::InviterEgo(why).into());
    }
    Tried::Done(finish(shared, x, acceptor, &reply, petname).await)
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
) -> Result<FriendInfo> {
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
            return Err(invite_error(e));
        }
    };
    let answer = exchange(node, peer, Envelope::wrap(kind::CONFIRM, &confirm)).await?;
    if let Some(reason) = refusal_reason(&answer) {
        return Err(refused_error(reason));
    }
    if answer.kind != kind::DONE || answer.open::<InviteDone>(MAX_INVITE_MESSAGE_SIZE).is_err() {
        return Err(Refused::OutOfTurn.into());
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
