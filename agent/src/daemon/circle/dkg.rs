//! A member's part in the distributed key generation of a friend's new
//! circle key (docs/circle-authority.md, P6; protocol section 9.4). The
//! friend's agent relays; this agent takes part:
//!
//! ```text
//! dkg-start (signed by the friend's ego key)  → DkgRound1
//! dkg-relay step 1 (the others' round 1)      → DkgRound2
//! dkg-relay step 2 (the others' round 2)      → DkgConfirm
//! dkg-relay step 3 (the others' confirmations) → share-ack, share kept
//! ```
//!
//! A relay that leaves its step incomplete (the owner split it to fit) is
//! answered with an empty relay of that step. The run is started only for
//! a friend's node, with a start signed by the friend's current ego key,
//! for the generation after the one the friend's record names, and with
//! every other participant's current ego key from its own record (each
//! participant's messages are signed by it). The participant's state,
//! secret polynomial then share, lives in memory only, for at most
//! [`DKG_TTL`]; the share is stored only after every participant
//! confirmed the same transcript, and never over a live share.

use std::sync::Arc;
use std::time::Duration;

use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{
    DkgConfirm, DkgError, DkgParticipant, DkgRelay, DkgRound1, DkgRound2, DkgStart, DkgStep,
    Refusal,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::time::CLOCK_SKEW_SECS;
use cyrcles_core::{EgoId, PublicKey, SecretKey};
use cyrcles_p2p::PeerId;
use rand_core::OsRng;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::member::take_share;
use crate::daemon::peers::{ANSWER_WITHIN, friend_record, friendship};
use crate::daemon::sessions::{Entry, SessionTable};
use crate::daemon::shares::{notice, refusal};
use crate::daemon::{Shared, lock, read};
use crate::keystore::FriendRow;

/// How long a member keeps a DKG run between two steps.
pub(crate) const DKG_TTL: Duration = Duration::from_secs(60);
/// Runs a member keeps at once.
const MAX_RUNS: usize = 16;
/// Runs one peer keeps at once.
const MAX_RUNS_PER_PEER: usize = 2;

/// One run this member takes part in (its peer and age are the table's).
struct Run {
    my_ego: EgoId,
    friend: FriendRow,
    ego_key: Arc<SecretKey>,
    participant: DkgParticipant,
    /// The step whose relay comes next.
    next: DkgStep,
}

/// Open DKG runs, by session id (member side; see `sessions.rs` for the
/// bounds).
pub(crate) struct Dkgs(SessionTable<Run>);

impl Default for Dkgs {
    fn default() -> Self {
        Self(table())
    }
}

fn table<V>() -> SessionTable<V> {
    SessionTable::new(MAX_RUNS_PER_PEER, MAX_RUNS, DKG_TTL)
}

impl std::fmt::Debug for Dkgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dkgs({} open)", self.0.len())
    }
}

/// A `dkg-start` or `dkg-relay` reached `my_ego`'s node from `peer`.
pub(crate) async fn on_message(
    shared: &Shared,
    my_ego: EgoId,
    peer: PeerId,
    message: &Envelope,
) -> Envelope {
    match message.kind {
        kind::DKG_START => on_start(shared, my_ego, peer, message).await,
        kind::DKG_RELAY => on_relay(shared, peer, message).await,
        _ => refusal(refused::INVALID),
    }
}

/// The current ego key of each participant, in member order: this
/// agent's own for `me`, the others' from their records (looked up in
/// parallel). `Err(ego)` names a participant whose valid record was not
/// found.
async fn participant_keys(
    shared: &Shared,
    my_ego: EgoId,
    own: PublicKey,
    participants: &[EgoId],
) -> Result<Vec<PublicKey>, Option<EgoId>> {
    let node = shared
        .egos
        .get(&my_ego, |s| s.node.clone())
        .flatten()
        .ok_or(None)?;
    let now = shared.now();
    let mut lookups = JoinSet::new();
    for (i, ego) in participants.iter().copied().enumerate() {
        if ego == my_ego {
            continue;
        }
        let node = node.clone();
        lookups.spawn(async move {
            let found = match tokio::time::timeout(ANSWER_WITHIN, node.get(ego)).await {
                Ok(Ok(found)) if found.ego.key_usable_at(now) => Some(found.ego.ego_key()),
                _ => None,
            };
            (i, ego, found)
        });
    }
    let mut keys = vec![own; participants.len()];
    while let Some(done) = lookups.join_next().await {
        let Ok((i, ego, found)) = done else {
            return Err(None);
        };
        match (found, keys.get_mut(i)) {
            (Some(k), Some(slot)) => *slot = k,
            _ => return Err(Some(ego)),
        }
    }
    Ok(keys)
}

async fn on_start(shared: &Shared, my_ego: EgoId, peer: PeerId, message: &Envelope) -> Envelope {
    let Ok(start) = DkgStart::decode_bytes(&message.body) else {
        return refusal(refused::INVALID);
    };
    let b = &start.body;
    let owner = b.ego_id;
    let Some(friend) = friendship(shared, &my_ego, &owner, &peer).await else {
        warn!(%peer, %owner, "a key generation from a node that is not a friend's was refused");
        notice(
            shared,
            format!(
                "a circle key generation for ego {owner} from a node that is not a friend's was \
                 refused"
            ),
        );
        return refusal(refused::NOT_A_FRIEND);
    };
    if shared.is_locked() {
        return refusal(refused::UNAVAILABLE);
    }
    let Some(me) = b.member_of(&my_ego) else {
        warn!(%owner, "a key generation that does not name this ego was refused");
        return refusal(refused::INVALID);
    };
    let Some(record) = friend_record(shared, &my_ego, owner).await else {
        return refusal(refused::UNAVAILABLE);
    };
    let now = shared.now();
    let refuse = |r: Refusal| {
        warn!(%owner, "a key generation was refused: {r}");
        refusal(r.code())
    };
    if record.is_revoked() || !record.key_usable_at(now) {
        return refuse(Refusal::CertNotValid);
    }
    if start.verify(&record.ego_key()).is_err() {
        return refuse(Refusal::BadSignature);
    }
    if !b.issued_at.within(now, CLOCK_SKEW_SECS) {
        return refuse(Refusal::Stale);
    }
    // A new circle key is for the link after the record's last one: a
    // live circle is never generated again.
    let chain_len = u64::try_from(record.record().chain.len()).unwrap_or(u64::MAX);
    if Some(b.generation) != chain_len.checked_add(1) {
        return refuse(Refusal::NotNext);
    }
    let Some(signer) = read(&shared.signers).get(&my_ego).cloned() else {
        return refusal(refused::UNAVAILABLE);
    };
    let egos: Vec<EgoId> = b.participants.iter().map(|(_, e)| *e).collect();
    let keys = match participant_keys(shared, my_ego, signer.key.public(), &egos).await {
        Ok(k) => k,
        Err(Some(missing)) => {
            warn!(%owner, participant = %missing, "a key generation naming an ego whose record is not found was refused");
            return refusal(refused::NO_RECORD);
        }
        Err(None) => return refusal(refused::UNAVAILABLE),
    };
    let started = b
        .params(&keys)
        .and_then(|params| DkgParticipant::start(params, me, &signer.key, &mut OsRng));
    let (participant, round1) = match started {
        Ok(s) => s,
        Err(e) => {
            warn!(%owner, error = %e, "a key generation that does not fit was refused");
            return refusal(refused::INVALID);
        }
    };
    let run = Run {
        my_ego,
        friend,
        ego_key: signer.key,
        participant,
        next: DkgStep::Round1,
    };
    let opened = lock(&shared.dkgs)
        .0
        .open(b.session.0, peer, run, shared.clock.instant());
    match opened {
        Ok(ended) if ended > 0 => {
            info!(%peer, ended, "older key generations made room for a new one");
        }
        Ok(_) => {}
        Err(_) => return refusal(refused::INVALID),
    }
    Envelope::wrap(kind::DKG_ROUND1, &round1)
}

/// Why a relayed step failed, for the log.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("a relayed message does not decode")]
    Decode,
    #[error(transparent)]
    Dkg(#[from] DkgError),
}

/// What a relayed step leaves this member with.
enum Next {
    /// The step is not complete yet (the owner split it).
    More,
    /// The next message to send.
    Send(Envelope),
    /// Every confirmation is in: the share can be taken.
    Finished,
}

/// Adds the relayed messages of `run.next`'s step; once the step is
/// complete, the next message to send.
fn add_step(run: &mut Run, relay: &DkgRelay) -> Result<Next, StepError> {
    let p = &mut run.participant;
    for m in &relay.messages {
        match relay.step {
            DkgStep::Round1 => {
                p.add_round1(DkgRound1::decode_bytes(m).map_err(|_| StepError::Decode)?)?;
            }
            DkgStep::Round2 => {
                p.add_round2(DkgRound2::decode_bytes(m).map_err(|_| StepError::Decode)?)?;
            }
            DkgStep::Confirm => {
                p.add_confirm(DkgConfirm::decode_bytes(m).map_err(|_| StepError::Decode)?)?;
            }
        }
    }
    if !p.missing().is_empty() {
        return Ok(Next::More);
    }
    Ok(match relay.step {
        DkgStep::Round1 => {
            run.next = DkgStep::Round2;
            Next::Send(Envelope::wrap(
                kind::DKG_ROUND2,
                &p.round2(&run.ego_key, &mut OsRng)?,
            ))
        }
        DkgStep::Round2 => {
            run.next = DkgStep::Confirm;
            Next::Send(Envelope::wrap(kind::DKG_CONFIRM, &p.confirm(&run.ego_key)?))
        }
        DkgStep::Confirm => Next::Finished,
    })
}

async fn on_relay(shared: &Shared, peer: PeerId, message: &Envelope) -> Envelope {
    let Ok(relay) = message.open::<DkgRelay>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let taken = lock(&shared.dkgs)
        .0
        .take(&relay.session.0, &peer, shared.clock.instant());
    let Some(mut entry): Option<Entry<Run>> = taken else {
        return refusal(refused::NO_SESSION);
    };
    let owner = entry.value.friend.friend_ego_id;
    if relay.step != entry.value.next {
        // Out of turn: the run ends.
        warn!(%owner, step = ?relay.step, "a key generation step out of turn was refused");
        return refusal(refused::INVALID);
    }
    match add_step(&mut entry.value, &relay) {
        Ok(Next::More) => {
            let more = DkgRelay {
                session: relay.session,
                step: relay.step,
                messages: Vec::new(),
            };
            lock(&shared.dkgs).0.put_back(relay.session.0, entry);
            return Envelope::wrap(kind::DKG_RELAY, &more);
        }
        Ok(Next::Send(answer)) => {
            lock(&shared.dkgs).0.put_back(relay.session.0, entry);
            return answer;
        }
        Ok(Next::Finished) => {}
        Err(e) => {
            // Any failure ends the run: nobody keeps a share of it.
            warn!(%owner, step = ?relay.step, error = %e, "a key generation failed");
            return refusal(refused::INVALID);
        }
    }
    let run = entry.value;
    let share = match run.participant.finish() {
        Ok((share, _)) => share,
        Err(e) => {
            warn!(%owner, error = %e, "a key generation did not finish");
            return refusal(refused::INVALID);
        }
    };
    if shared.is_locked() {
        return refusal(refused::UNAVAILABLE);
    }
    info!(%owner, generation = share.generation(), "a friend's new circle key was generated");
    take_share(shared, run.my_ego, &run.friend, &share).await
}

#[cfg(test)]
mod tests {
    use cyrcles_core::UnixTime;
    use cyrcles_p2p::ManualClock;

    use super::*;

    /// A hostile friend's device starts key generations and never relays:
    /// it holds at most its own share of runs, and none past the TTL.
    #[test]
    fn runs_held_open_by_an_attacker_end_at_the_ttl_and_spare_others() {
        let manual = ManualClock::new(UnixTime::from_secs(1_000));
        let clock = manual.clock();
        let mut runs = table::<&str>();
        let hostile = PeerId::random();
        for n in 0..10u8 {
            runs.open([n; 16], hostile, "held", clock.instant())
                .unwrap();
        }
        assert_eq!(runs.len(), MAX_RUNS_PER_PEER);
        let friend = PeerId::random();
        assert_eq!(runs.open([0xf1; 16], friend, "run", clock.instant()), Ok(0));
        manual.advance(DKG_TTL);
        assert!(runs.take(&[9; 16], &hostile, clock.instant()).is_none());
        assert!(runs.take(&[0xf1; 16], &friend, clock.instant()).is_none());
    }
}
