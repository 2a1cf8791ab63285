//! A member's side of a friend's circle: taking a share (dealt, or made
//! by a key generation, `dkg.rs`), answering round 1 of a signing session
//! under its policy, and round 2 of an open session. Nonces live in
//! memory for one session, at most [`SESSION_TTL`].

use std::time::Duration;

use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{
    CeremonyRequest, DealtShare, MemberShare, Purpose, SessionId, SignerNonces, SigningRequest,
    authorize, commit,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::{EgoId, PublicKey};
use cyrcles_p2p::PeerId;
use rand_core::OsRng;
use tracing::{info, warn};

use super::changes;
use crate::daemon::error::Chain;
use crate::daemon::peers::{friend_record, friendship};
use crate::daemon::sessions::{SessionTable, Taken};
use crate::daemon::shares::{keep_share, notice, refusal};
use crate::daemon::{Shared, lock};
use crate::keystore::FriendRow;

/// How long a member keeps a session's nonces.
const SESSION_TTL: Duration = Duration::from_secs(60);
/// Sessions a member keeps open at once.
const MAX_SESSIONS: usize = 64;
/// Sessions one peer keeps open at once.
const MAX_SESSIONS_PER_PEER: usize = 4;

/// A member's open signing session (its peer and age are the table's).
pub(crate) struct Session {
    pub(crate) owner: EgoId,
    pub(crate) generation: u64,
    pub(crate) message: Vec<u8>,
    pub(crate) nonces: SignerNonces,
    /// For a recovery: the friendship whose node becomes the peer once
    /// this member has signed.
    pub(crate) repeer: Option<i64>,
}

/// Keeps a member's session for round 2 (see `sessions.rs` for the
/// bounds); false if the id is in use.
pub(crate) fn open_session(shared: &Shared, id: SessionId, peer: PeerId, session: Session) -> bool {
    let mut sessions = lock(&shared.sessions);
    match sessions.0.open(id.0, peer, session, shared.clock.instant()) {
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
        Self(table())
    }
}

/// A table with a member's bounds and [`SESSION_TTL`].
fn table<V>() -> SessionTable<V> {
    SessionTable::new(MAX_SESSIONS_PER_PEER, MAX_SESSIONS, SESSION_TTL)
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({} open)", self.0.len())
    }
}

pub(crate) async fn on_share(
    shared: &Shared,
    my_ego: EgoId,
    peer: PeerId,
    message: &Envelope,
) -> Envelope {
    let Ok(dealt) = DealtShare::decode_bytes(&message.body) else {
        return refusal(refused::INVALID);
    };
    let owner = dealt.ego_id;
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
    take_share(shared, my_ego, &friend, &share).await
}

/// Keeps a new share of the friend's circle (dealt, or made by a DKG)
/// unless this member holds a live share of that circle and generation
/// already; the answer to send: the share's acknowledgement, or a
/// refusal.
pub(super) async fn take_share(
    shared: &Shared,
    my_ego: EgoId,
    friend: &FriendRow,
    share: &MemberShare,
) -> Envelope {
    let owner = share.ego_id();
    let generation = share.generation();
    match held_share_stays(shared, &my_ego, share).await {
        Ok(Held::Same) => return Envelope::wrap(kind::SHARE_ACK, &share.ack()),
        Ok(Held::None | Held::Replaceable) => {}
        Ok(Held::Live) => {
            warn!(%owner, generation, "a new share for the circle key the record names was refused");
            notice(
                shared,
                format!(
                    "a new share of generation {generation} of your friend's ego {owner} was refused: \
                     you hold that circle's share already (a copy of your friend's device may be trying \
                     to replace the circle)"
                ),
            );
            return refusal(refused::SHARE_HELD);
        }
        Err(refused) => return refused,
    }
    if let Err(refused) = keep_share(shared, my_ego, friend.id, share).await {
        return refused;
    }
    info!(%owner, generation, friend = %friend.petname, "holding a share of a friend's circle");
    Envelope::wrap(kind::SHARE_ACK, &share.ack())
}

/// What this member already holds for the circle and generation of a new
/// share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Nothing.
    None,
    /// The same share (a dealer sending again after a lost ack).
    Same,
    /// Another share of a circle key the owner's record does not name (a
    /// ceremony that stopped before its link was published): it may go.
    Replaceable,
    /// Another share of the circle key the owner's record names: it stays
    /// (docs/circle-authority.md, P2). Whoever holds the owner's device
    /// could otherwise deal the current generation again and leave every
    /// member with shares of a key the thief knows whole.
    Live,
}

/// Decides between a held share and a new one of the same circle and
/// generation, given the circle key the owner's record names.
fn compare_held(held: &MemberShare, new: &MemberShare, record_circle_key: &PublicKey) -> Held {
    if held.to_secret_cbor().as_slice() == new.to_secret_cbor().as_slice() {
        Held::Same
    } else if held.group_key() == *record_circle_key {
        Held::Live
    } else {
        Held::Replaceable
    }
}

/// What this member holds for `share`'s circle and generation; the
/// refusal to send when that cannot be told (locked, no record: a live
/// share is never risked).
async fn held_share_stays(
    shared: &Shared,
    my_ego: &EgoId,
    share: &MemberShare,
) -> Result<Held, Envelope> {
    let unavailable = || refusal(refused::UNAVAILABLE);
    let key = shared.data_key().map_err(|_| unavailable())?;
    let owner = share.ego_id();
    let secret = match shared
        .keystore
        .held_share(&key, &owner, share.generation())
        .await
    {
        Ok(None) => return Ok(Held::None),
        Ok(Some((_, secret))) => secret,
        Err(e) => {
            warn!(%owner, error = %Chain(&e), "cannot open a held share");
            return Err(unavailable());
        }
    };
    let held = MemberShare::from_secret_cbor(&secret).map_err(|_| unavailable())?;
    if held.to_secret_cbor().as_slice() == share.to_secret_cbor().as_slice() {
        return Ok(Held::Same);
    }
    let record = friend_record(shared, my_ego, owner)
        .await
        .ok_or_else(unavailable)?;
    Ok(compare_held(&held, share, &record.circle_key()))
}

pub(crate) async fn on_request(
    shared: &Shared,
    my_ego: EgoId,
    peer: PeerId,
    message: &Envelope,
) -> Envelope {
    let Ok(request) = message.open::<CeremonyRequest>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let b = &request.body;
    let owner = b.ego_id;
    let Some(friend) = friendship(shared, &my_ego, &owner, &peer).await else {
        warn!(%peer, %owner, "a signing request from someone who is not a friend was refused");
        notice(
            shared,
            format!(
                "a signing request for ego {owner} from a node that is not a friend's was refused"
            ),
        );
        return refusal(refused::NOT_A_FRIEND);
    };
    let Ok(key) = shared.data_key() else {
        return refusal(refused::UNAVAILABLE);
    };
    let (held, secret) = match shared.keystore.held_share(&key, &owner, b.generation).await {
        Ok(Some(h)) => h,
        Ok(None) => return refusal(refused::NO_SHARE),
        Err(e) => {
            warn!(%owner, "cannot open a held share: {}", Chain(&e));
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
    let authorized = match authorize(
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
    // A new link or a revocation: only this person decides.
    if let Some(change) = authorized.change
        && let Some(answer) = changes::gate(shared, owner, &friend.petname, change, peer)
    {
        return answer;
    }
    let message = authorized.message;
    // The friend's circle is at this generation: older shares can go.
    // (Not for `enter`: the record names the new circle only once the
    // owner publishes it; the sweep drops the older shares then.)
    if !matches!(b.purpose, Purpose::Enter { .. })
        && let Ok(n) = shared.keystore.drop_old_shares(&owner, b.generation).await
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

pub(crate) async fn on_signing(shared: &Shared, peer: PeerId, message: &Envelope) -> Envelope {
    let Ok(request) = message.open::<SigningRequest>(MAX_CIRCLE_MESSAGE_SIZE) else {
        return refusal(refused::INVALID);
    };
    let session = lock(&shared.sessions)
        .0
        .take(&request.session.0, &peer, shared.clock.instant())
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
                    warn!(owner = %session.owner, "cannot record the friend's new node: {}", Chain(&e));
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

#[cfg(test)]
mod tests {
    use cyrcles_core::UnixTime;
    use cyrcles_core::circle::{CircleId, deal};
    use cyrcles_core::keys::CircleSecret;
    use cyrcles_p2p::ManualClock;

    use super::*;

    /// Member 2's share of a fresh 2-of-3 dealing of generation 1, and the
    /// dealt circle key.
    fn member_share(ego: EgoId) -> (MemberShare, PublicKey) {
        let circle = CircleSecret::generate(&mut OsRng);
        let dealing = deal(&circle, ego, CircleId([7; 16]), 1, 2, 3, &mut OsRng).unwrap();
        let dealt = dealing.shares.into_iter().nth(1).unwrap();
        (MemberShare::accept(dealt).unwrap(), circle.public())
    }

    /// A thief holding the owner's device deals generation 1 again: the
    /// member keeps the share of the circle key the record names, takes
    /// the same share again (a lost ack), and lets a share of a key no
    /// record names be replaced (a ceremony that stopped before its link).
    #[test]
    fn a_live_share_is_never_replaced_by_a_new_dealing() {
        let ego = EgoId::from_bytes([1; 32]);
        let (live, live_key) = member_share(ego);
        let (thiefs, thiefs_key) = member_share(ego);
        assert_ne!(live_key, thiefs_key);
        assert_eq!(compare_held(&live, &thiefs, &live_key), Held::Live);
        assert_eq!(compare_held(&live, &live, &live_key), Held::Same);
        assert_eq!(compare_held(&thiefs, &live, &live_key), Held::Replaceable);
    }

    /// Hostile friends' devices fill every member session with round 1s
    /// they never finish: until the sessions' time is up a real friend's
    /// session costs one of theirs; after it, nothing.
    #[test]
    fn sessions_held_open_by_attackers_are_dropped_at_the_ttl() {
        let manual = ManualClock::new(UnixTime::from_secs(1_000));
        let clock = manual.clock();
        let mut sessions = table::<&str>();
        let attackers: Vec<PeerId> = (0..MAX_SESSIONS / MAX_SESSIONS_PER_PEER)
            .map(|_| PeerId::random())
            .collect();
        let mut n = 0u16;
        for peer in &attackers {
            for _ in 0..MAX_SESSIONS_PER_PEER {
                n += 1;
                let mut id = [0u8; 16];
                id[..2].copy_from_slice(&n.to_be_bytes());
                assert_eq!(sessions.open(id, *peer, "held", clock.instant()), Ok(0));
            }
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        let friend = PeerId::random();
        manual.advance(SESSION_TTL.saturating_sub(Duration::from_millis(1)));
        // Just before the TTL the attackers' sessions live: room is made.
        assert_eq!(
            sessions.open([0xf1; 16], friend, "round 1", clock.instant()),
            Ok(1)
        );
        assert_eq!(sessions.len(), MAX_SESSIONS);
        // At the TTL they are gone; the friend's session (a millisecond
        // old) stays, and the next one ends nobody's.
        manual.advance(Duration::from_millis(1));
        assert_eq!(
            sessions.open([0xf2; 16], friend, "round 1", clock.instant()),
            Ok(0)
        );
        assert_eq!(sessions.len(), 2);
        assert!(
            sessions
                .take(&[0xf1; 16], &friend, clock.instant())
                .is_some()
        );
    }
}
