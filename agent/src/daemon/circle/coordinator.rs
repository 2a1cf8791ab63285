//! The owner's side of a FROST session of the current circle: asks every
//! member for round 1, takes the first threshold of commitments, runs
//! round 2 and aggregates. A link or a revocation that members answer
//! `ask_human` ends in [`Refused::AwaitingHumans`], with the digits the
//! owner reads to them (`changes.rs`).

use cyrcles_core::Signature;
use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{
    Change, CircleId, CirclePublic, CircleRefused, Coordinator, Purpose, RequestBody, Round1,
    Round2, SessionId,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_p2p::{NodeHandle, PeerId};
use rand_core::{OsRng, RngCore};
use tokio::task::JoinSet;

use super::Snapshot;
use crate::daemon::error::{Damaged, Internal, Network, Refused};
use crate::daemon::peers::{ANSWER_WITHIN, friend_peer, friends_of, reach};
use crate::daemon::{Result, Shared};
use crate::keystore::CircleRow;

/// Runs a FROST session of the current circle on `purpose`; returns the
/// aggregate signature.
pub(crate) async fn session(
    shared: &Shared,
    snap: &Snapshot,
    circle: &CircleRow,
    purpose: Purpose,
) -> Result<Signature> {
    let public = CirclePublic::from_cbor(&circle.public).map_err(Damaged::Circle)?;
    let friends = friends_of(shared, &snap.record.ego_id()).await?;
    let mut sid = [0u8; 16];
    OsRng.fill_bytes(&mut sid);
    let session_id = SessionId(sid);
    let message = purpose.signing_bytes();
    let change = purpose.change(snap.record.cert.body.ego_pk);
    let request = RequestBody {
        ego_id: snap.record.ego_id(),
        circle_id: CircleId(circle.circle_id),
        generation: circle.generation,
        session: session_id,
        purpose,
        issued_at: shared.now(),
    }
    .sign(&snap.ego_key);
    let mut coord =
        Coordinator::new(public.clone(), session_id, message).map_err(Internal::Frost)?;

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
    let mut asked = Vec::new();
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
                match code {
                    refused::ASK_HUMAN => asked.push(name),
                    refused::DENIED => problems.push(format!("{name}: denied by their human")),
                    code => problems.push(format!("{name}: refused (code {code})")),
                }
            }
            Ok(Err(e)) => problems.push(format!("{name}: {e}")),
            Err(_) => problems.push(format!("{name}: no answer in time")),
        }
    }
    // Waiting is worth it only if the humans not asked yet can still make
    // the threshold; denials can make it out of reach.
    if signers.len() < public.threshold()
        && let Some(change) = change
        && !asked.is_empty()
        && signers.len() + asked.len() >= public.threshold()
    {
        return Err(Refused::AwaitingHumans {
            change: match change {
                Change::Link(_) => "change of your circle",
                Change::Revocation(_) => "revocation",
            },
            fingerprint: change.fingerprint(&snap.record.ego_id()),
            verb: if asked.len() == 1 { "was" } else { "were" },
            asked: asked.join(", "),
            needed: public.threshold() - signers.len(),
        }
        .into());
    }
    if signers.len() < public.threshold() {
        problems.extend(
            asked
                .into_iter()
                .map(|n| format!("{n}: waiting for their human")),
        );
        return Err(Network::TooFewSigners {
            got: signers.len(),
            needed: public.threshold(),
            problems,
        }
        .into());
    }

    round2(&snap.node, coord, signers).await
}

/// Round 2 of a session: the chosen signers sign the package; returns
/// the aggregate signature.
pub(crate) async fn round2(
    node: &NodeHandle,
    mut coord: Coordinator,
    signers: Vec<(u16, PeerId)>,
) -> Result<Signature> {
    let signing = coord.request().map_err(Internal::Frost)?;
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
            return Err(Network::Unsigned(m).into());
        };
        coord
            .add_share(r2)
            .map_err(|source| Refused::SignatureShare { member: m, source })?;
    }
    Ok(coord.aggregate().map_err(Refused::Aggregate)?)
}
