//! Circles of friends (DESIGN.md, flows 2 to 5), by role:
//!
//! * [`owner`]: the person picks friends for an ego's circle (`circle
//!   add`, `circle remove`) and a threshold (`circle policy`). Once the
//!   plan has at least two friends (FROST needs a threshold of at least
//!   two), the planned friends' agents generate a new circle key among
//!   themselves (`generate.rs`: a DKG this agent relays over
//!   `/cyrcles/circle/1`, checking every acknowledgement; it never holds
//!   the key), the agent has the new circle link signed (by the root key
//!   or the whole circle key while it still holds them, else by a
//!   threshold of the old circle through FROST), has a threshold of the
//!   new circle certify the ego key under it (`enter`), commits the new
//!   record and deletes the root and whole circle keys in the same
//!   transaction, then publishes. Later rotations of the ego key go
//!   through the friends.
//! * [`coordinator`]: the owner's side of a FROST session: a request
//!   signed by the current ego key, which each friend's agent checks
//!   (`cyrcles_core::circle::authorize`) and signs without asking its
//!   human for a rotation; a new link or a revocation waits for the
//!   members' humans ([`changes`]).
//! * [`member`]: the agent takes shares only from friends (the peer and
//!   ego of a friendship made by invite), stores them sealed, and signs in
//!   a session only for a request its policy allows. Nonces live in memory
//!   for one session, at most a minute.
//! * [`dkg`]: the agent takes part in a friend's key generation (the
//!   friend's node, a start signed by the friend's ego key, every
//!   participant's key from its record), and keeps the share as a dealt
//!   one.
//! * [`view`]: `circle show` and the recovery kit's friends.
//!
//! No network call is made while the egos lock or the ego's reservation
//! is held: the owner side takes a [`Snapshot`], runs the ceremony, then
//! applies the result, under the ego's reservation, only if the ego did
//! not change meanwhile.

pub(crate) mod changes;
pub(crate) mod coordinator;
pub(crate) mod dkg;
mod generate;
pub(crate) mod member;
pub(crate) mod owner;
pub(crate) mod view;

use std::sync::Arc;

use cyrcles_core::circle::CircleId;
use cyrcles_core::record::EgoRecord;
use cyrcles_core::{EgoId, SecretKey};
use cyrcles_p2p::NodeHandle;

use super::error::{Conflict, Locked, NotFound};
use super::{Result, Shared, read};

/// The default threshold for `n` friends: a majority, at least two.
pub(crate) fn default_threshold(n: usize) -> u16 {
    u16::try_from((n / 2 + 1).max(2)).unwrap_or(u16::MAX)
}

/// What the owner side needs from the ego, taken under the lock.
pub(crate) struct Snapshot {
    pub(crate) record: EgoRecord,
    pub(crate) node: NodeHandle,
    pub(crate) ego_key: Arc<SecretKey>,
    pub(crate) circle_id: CircleId,
}

pub(crate) fn snapshot(shared: &Shared, ego: &EgoId) -> Result<Snapshot> {
    let (revoked, node, record, circle_id) = shared
        .egos
        .get(ego, |state| {
            (
                state.is_revoked(),
                state.node.clone(),
                state.record().cloned(),
                CircleId(state.row.circle_id),
            )
        })
        .ok_or(NotFound::Ego(*ego))?;
    if revoked {
        return Err(Conflict::Revoked.into());
    }
    let signer = read(&shared.signers).get(ego).cloned();
    let (Some(node), Some(signer)) = (node, signer) else {
        return Err(Locked::Ceremony.into());
    };
    Ok(Snapshot {
        record: record?,
        node,
        ego_key: signer.key,
        circle_id,
    })
}
