//! The owner's side of a new circle key: the planned friends' agents
//! generate it among themselves (docs/circle-authority.md, P6; protocol
//! section 9.4) and this agent only relays, so no device ever knows it
//! whole. The members do not know each other's nodes; every message goes
//! through here, each signed by its sender's ego key:
//!
//! ```text
//! owner → each member   dkg-start (signed by the ego key)        → DkgRound1
//! owner → each member   dkg-relay 1 (the others' round 1)        → DkgRound2
//! owner → each member   dkg-relay 2 (the others' round-2 bundles) → DkgConfirm
//! owner → each member   dkg-relay 3 (the others' confirmations)  → share-ack
//! ```
//!
//! A step whose messages do not fit one circle message is split; every
//! relay but a step's last is answered with an empty relay. A DKG needs
//! every participant at every step: the first failure ends it, naming the
//! friend. This agent derives the circle's public side from the round-1
//! commitments and checks every acknowledgement against it.

use cyrcles_core::cbor::Decode;
use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::{
    CirclePublic, CircleRefused, DkgConfirm, DkgRelay, DkgRound1, DkgRound2, DkgStartBody, DkgStep,
    MemberId, SessionId, ShareAck, circle_public_from_round1,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_p2p::{Multiaddr, NodeHandle, PeerId};
use rand_core::{OsRng, RngCore};
use tokio::task::JoinSet;

use super::Snapshot;
use crate::daemon::error::{BadInput, Internal, Network, Refused, Unanswered};
use crate::daemon::peers::{ANSWER_WITHIN, friend_peer, reach};
use crate::daemon::{Result, Shared};
use crate::keystore::FriendRow;

/// One participant, as the owner reaches it.
#[derive(Clone)]
struct Party {
    member: MemberId,
    name: String,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
}

/// What one step of the run is, for errors.
fn step_name(step: Option<DkgStep>) -> &'static str {
    match step {
        None => "start",
        Some(DkgStep::Round1) => "round 1",
        Some(DkgStep::Round2) => "round 2",
        Some(DkgStep::Confirm) => "confirmation",
    }
}

/// Sends `envelopes` to `party` one after the other; every answer but the
/// last must be an empty relay of `step` ("more"). Returns the last
/// answer's body if it is of kind `want`.
async fn exchange(
    node: &NodeHandle,
    party: &Party,
    session: SessionId,
    step: Option<DkgStep>,
    envelopes: &[Envelope],
    want: u16,
) -> Result<Vec<u8>, Unanswered> {
    let last = envelopes.len().saturating_sub(1);
    for (i, envelope) in envelopes.iter().enumerate() {
        let reply = match tokio::time::timeout(
            ANSWER_WITHIN,
            node.circle(party.peer, party.addrs.clone(), envelope),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(Unanswered::Request(e)),
            Err(_) => return Err(Unanswered::Timeout),
        };
        let expected = if i == last { want } else { kind::DKG_RELAY };
        if reply.kind == expected {
            if i == last {
                return Ok(reply.body);
            }
            let more = reply.open::<DkgRelay>(MAX_CIRCLE_MESSAGE_SIZE);
            match more {
                Ok(m) if m.session == session && Some(m.step) == step && m.messages.is_empty() => {
                    continue;
                }
                _ => return Err(Unanswered::BadAnswer),
            }
        }
        return Err(match reply.open::<CircleRefused>(MAX_CIRCLE_MESSAGE_SIZE) {
            Ok(r) => Unanswered::Refused(r.code),
            Err(_) => Unanswered::BadAnswer,
        });
    }
    Err(Unanswered::BadAnswer)
}

/// Runs one step with every party at once: `envelopes_for` gives each
/// party's envelopes; returns each party's answer body, in member order.
async fn step(
    node: &NodeHandle,
    parties: &[Party],
    session: SessionId,
    step: Option<DkgStep>,
    envelopes_for: impl Fn(&Party) -> Vec<Envelope>,
    want: u16,
) -> Result<Vec<Vec<u8>>> {
    let mut asks = JoinSet::new();
    for (i, p) in parties.iter().enumerate() {
        let (node, p, envelopes) = (node.clone(), p.clone(), envelopes_for(p));
        asks.spawn(async move {
            let answer = exchange(&node, &p, session, step, &envelopes, want).await;
            (i, p.name, answer)
        });
    }
    let mut out = vec![Vec::new(); parties.len()];
    while let Some(done) = asks.join_next().await {
        let Ok((i, name, answer)) = done else {
            return Err(Internal::DkgTask.into());
        };
        match answer {
            Ok(body) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = body;
                }
            }
            Err(source) => {
                return Err(Network::DkgSilent {
                    friend: name,
                    step: step_name(step),
                    source,
                }
                .into());
            }
        }
    }
    Ok(out)
}

/// The relays of `step` for `to`: every other party's message, in member
/// order, split to fit.
fn relays(session: SessionId, step: DkgStep, messages: &[Vec<u8>], to: &Party) -> Vec<Envelope> {
    let others: Vec<Vec<u8>> = messages
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != usize::from(to.member.get()))
        .map(|(_, m)| m.clone())
        .collect();
    DkgRelay::split(session, step, others)
        .iter()
        .map(|r| Envelope::wrap(kind::DKG_RELAY, r))
        .collect()
}

/// Has `members` (in member order) generate a new circle key `t` of n for
/// `generation`, relaying every step; each must acknowledge its share.
/// Returns the circle's public side. This agent never holds a secret of
/// the new circle.
pub(super) async fn generate(
    shared: &Shared,
    snap: &Snapshot,
    members: &[&FriendRow],
    t: u16,
    generation: u64,
) -> Result<CirclePublic> {
    let n = u16::try_from(members.len()).map_err(|_| BadInput::TooManyFriends)?;
    let now = shared.now();
    let mut sid = [0u8; 16];
    OsRng.fill_bytes(&mut sid);
    let session = SessionId(sid);
    let mut parties = Vec::with_capacity(members.len());
    let mut participants = Vec::with_capacity(members.len());
    for (i, f) in (1..=n).zip(members) {
        let member = MemberId::new(i).ok_or(BadInput::TooManyFriends)?;
        participants.push((member, f.friend_ego_id));
        parties.push(Party {
            member,
            name: f.petname.clone(),
            peer: friend_peer(f)?,
            addrs: Vec::new(),
        });
    }
    // Where each friend's node is, looked up once and in parallel; later
    // steps find the connections open.
    let mut lookups = JoinSet::new();
    for (i, f) in members.iter().enumerate() {
        let (node, f) = (snap.node.clone(), (*f).clone());
        lookups.spawn(async move { (i, reach(&node, &f, now).await) });
    }
    while let Some(done) = lookups.join_next().await {
        let Ok((i, addrs)) = done else {
            return Err(Internal::DkgTask.into());
        };
        if let Some(p) = parties.get_mut(i) {
            p.addrs = addrs;
        }
    }
    let body = DkgStartBody {
        ego_id: snap.record.ego_id(),
        circle_id: snap.circle_id,
        generation,
        session,
        threshold: t,
        participants,
        issued_at: now,
    };
    let start = body.clone().sign(&snap.ego_key);
    let start = Envelope::wrap(kind::DKG_START, &start);
    let node = &snap.node;

    let answers = step(
        node,
        &parties,
        session,
        None,
        |_| vec![start.clone()],
        kind::DKG_ROUND1,
    )
    .await?;
    let mut round1 = Vec::with_capacity(answers.len());
    for (p, a) in parties.iter().zip(&answers) {
        match DkgRound1::decode_bytes(a) {
            // A commitment of another length than t is named here (the
            // members refuse it too).
            Ok(r)
                if r.member == p.member
                    && r.session == session
                    && r.commitment.serialize().map(|c| c.len()).ok() == Some(usize::from(t)) =>
            {
                round1.push(r);
            }
            _ => return Err(Refused::DkgAnswer(p.name.clone()).into()),
        }
    }
    let public = circle_public_from_round1(&body, &round1).map_err(Refused::DkgPublic)?;

    let round2 = step(
        node,
        &parties,
        session,
        Some(DkgStep::Round1),
        |p| relays(session, DkgStep::Round1, &answers, p),
        kind::DKG_ROUND2,
    )
    .await?;
    for (p, a) in parties.iter().zip(&round2) {
        match DkgRound2::decode_bytes(a) {
            Ok(r) if r.member == p.member && r.session == session => {}
            _ => return Err(Refused::DkgAnswer(p.name.clone()).into()),
        }
    }

    let confirms = step(
        node,
        &parties,
        session,
        Some(DkgStep::Round2),
        |p| relays(session, DkgStep::Round2, &round2, p),
        kind::DKG_CONFIRM,
    )
    .await?;
    for (p, a) in parties.iter().zip(&confirms) {
        match DkgConfirm::decode_bytes(a) {
            Ok(c) if c.member == p.member && c.group_key == public.group_key() => {}
            _ => return Err(Refused::DkgAnswer(p.name.clone()).into()),
        }
    }

    let acks = step(
        node,
        &parties,
        session,
        Some(DkgStep::Confirm),
        |p| relays(session, DkgStep::Confirm, &confirms, p),
        kind::SHARE_ACK,
    )
    .await?;
    for (p, a) in parties.iter().zip(&acks) {
        let Ok(ack) = ShareAck::from_cbor(a, MAX_CIRCLE_MESSAGE_SIZE) else {
            return Err(Refused::ShareDeclined(p.name.clone()).into());
        };
        // What the friend's acknowledgement must name (fuzz finding F3).
        if (ack.circle_id, ack.generation, ack.member) != (snap.circle_id, generation, p.member) {
            return Err(Refused::OtherShareAcked(p.name.clone()).into());
        }
        public.check_ack(&ack).map_err(|source| Refused::ShareAck {
            friend: p.name.clone(),
            source,
        })?;
    }
    Ok(public)
}
