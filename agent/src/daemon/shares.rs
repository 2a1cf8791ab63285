//! Shares of friends' circles that this agent holds: keeping one sealed,
//! listing them (`cyrcles shares`), and the refusal a member sends (and
//! tells its person about) when it cannot or will not take part.

use std::collections::HashMap;

use cyrcles_core::EgoId;
use cyrcles_core::circle::messages::kind;
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{CircleRefused, MemberShare};
use cyrcles_core::envelope::Envelope;
use tracing::warn;

use super::error::Chain;
use super::{Result, Shared, notify};
use crate::control::proto::{ShareInfo, WatchEvent};
use crate::keystore::{FriendRow, HeldShare};

/// The answer refusing a circle message, with its `refused::*` code.
pub(crate) fn refusal(code: u16) -> Envelope {
    Envelope::wrap(kind::REFUSED, &CircleRefused { code })
}

/// Tells the person (in `cyrcles watch`) about a refused request.
pub(crate) fn notice(shared: &Shared, message: String) {
    // Strangers cause these: they are budgeted (`notify.rs`).
    if let Some(message) = notify::notice_text(message, shared.clock.instant()) {
        shared.emit(WatchEvent::Notice { message });
    }
}

/// Stores a share of a friend's circle, sealed, for this agent's ego
/// `my_ego` and the friendship `friend_id`; the refusal to send if it
/// cannot.
pub(crate) async fn keep_share(
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
            warn!(owner = %share.ego_id(), "cannot store a share: {}", Chain(&e));
            refusal(refused::UNAVAILABLE)
        })
}

/// `cyrcles shares`: whose circles this agent serves.
pub(crate) async fn list(shared: &Shared) -> Result<Vec<ShareInfo>> {
    let held = shared.keystore.held_shares().await?;
    let friends: HashMap<i64, FriendRow> = shared
        .keystore
        .friends()
        .await?
        .into_iter()
        .map(|f| (f.id, f))
        .collect();
    Ok(shared.egos.read(|egos| {
        held.into_iter()
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
            .collect()
    }))
}
