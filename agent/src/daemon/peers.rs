//! Talking to a friend's node: the friend rows of an ego, where a friend's
//! node is, a friend's current record, and which friendship a message
//! comes from. Used by the circle, repair and recovery ceremonies on both
//! sides.

use std::collections::BTreeMap;
use std::time::Duration;

use cyrcles_core::record::VerifiedEgo;
use cyrcles_core::{EgoId, UnixTime};
use cyrcles_p2p::{Multiaddr, NodeHandle, PeerId};

use super::error::{Damaged, NotFound};
use super::{Result, Shared};
use crate::keystore::FriendRow;

/// How long the owner waits for one friend's answer.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// The friend rows of an ego, by id.
pub(crate) async fn friends_of(shared: &Shared, ego: &EgoId) -> Result<BTreeMap<i64, FriendRow>> {
    Ok(shared
        .keystore
        .friends()
        .await?
        .into_iter()
        .filter(|f| f.ego_id == *ego)
        .map(|f| (f.id, f))
        .collect())
}

/// The friend of ego `name` called `friend` (petname or ego id).
pub(crate) fn find_friend<'a>(
    friends: &'a BTreeMap<i64, FriendRow>,
    name: &str,
    friend: &str,
) -> Result<&'a FriendRow> {
    friends
        .values()
        .find(|f| f.petname == friend || f.friend_ego_id.to_string() == friend)
        .ok_or_else(|| {
            NotFound::Friend {
                ego: name.into(),
                friend: friend.into(),
            }
            .into()
        })
}

pub(crate) fn friend_peer(f: &FriendRow) -> Result<PeerId> {
    PeerId::from_bytes(&f.friend_peer_id).map_err(|_| Damaged::FriendPeer(f.petname.clone()).into())
}
/// Where a friend's node is: the addresses its ego's record publishes for
/// the peer the friendship was made with (friends' nodes are not DHT
/// servers, so the routing table does not know them).
pub(crate) async fn reach(node: &NodeHandle, f: &FriendRow, now: UnixTime) -> Vec<Multiaddr> {
    reach_peer(node, f.friend_ego_id, &f.friend_peer_id, now).await
}

/// The addresses `ego`'s record publishes for its node `peer`.
pub(crate) async fn reach_peer(
    node: &NodeHandle,
    ego: EgoId,
    peer: &[u8],
    now: UnixTime,
) -> Vec<Multiaddr> {
    match tokio::time::timeout(ANSWER_WITHIN, node.get(ego)).await {
        Ok(Ok(found)) => published_addrs(&found.ego, peer, now),
        _ => Vec::new(),
    }
}

/// The addresses `record` publishes for its node `peer`.
pub(crate) fn published_addrs(record: &VerifiedEgo, peer: &[u8], now: UnixTime) -> Vec<Multiaddr> {
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

/// The friend row of `my_ego` whose ego is `owner`, if `peer` is its node.
pub(crate) async fn friendship(
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
pub(crate) async fn friend_record(
    shared: &Shared,
    my_ego: &EgoId,
    owner: EgoId,
) -> Option<VerifiedEgo> {
    let node = shared.egos.get(my_ego, |s| s.node.clone()).flatten()?;
    match tokio::time::timeout(ANSWER_WITHIN, node.get(owner)).await {
        Ok(Ok(found)) => Some(found.ego),
        _ => None,
    }
}
