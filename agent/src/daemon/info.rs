//! What the daemon tells about an ego: `ego show` and the recovery kit.

use cyrcles_p2p::{Multiaddr, PeerId};

use super::egos::{EgoState, rotation_due};
use crate::control::proto::{EgoInfo, EndpointsInfo, PeerInfo, RecoveryKit};

/// The text form of a peer id (unreadable bytes are shown as hex).
pub(crate) fn peer_text(peer_id: &[u8]) -> String {
    PeerId::from_bytes(peer_id)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| hex::encode(peer_id))
}

/// Text forms of a published peer (unreadable bytes are shown as hex).
fn peer_info(peer_id: &[u8], addrs: &[Vec<u8>]) -> PeerInfo {
    PeerInfo {
        peer_id: peer_text(peer_id),
        addrs: addrs
            .iter()
            .map(|a| {
                Multiaddr::try_from(a.clone())
                    .map(|m| m.to_string())
                    .unwrap_or_else(|_| hex::encode(a))
            })
            .collect(),
    }
}

/// `ego show`.
pub(crate) fn ego_info(state: &EgoState, locked: bool) -> EgoInfo {
    let row = &state.row;
    let mut info = EgoInfo {
        name: row.name.clone(),
        ego_id: row.ego_id.to_string(),
        fingerprint: row.ego_id.fingerprint().to_string(),
        state: "active".into(),
        damage: state.damage.clone(),
        cert_seq: 0,
        cert_not_before: 0,
        cert_not_after: 0,
        ego_key: String::new(),
        circle_links: 0,
        circle: String::new(),
        endpoints: None,
        next_rotation: None,
        created_at: row.created_at,
        last_published_at: row.last_published_at,
        last_error: row.last_error.clone(),
        rotation_problem: state.friends_error.clone(),
        node: None,
    };
    let Some(record) = &state.record else {
        info.state = "damaged".into();
        return info;
    };
    let cert = &record.cert.body;
    info.cert_seq = cert.seq;
    info.cert_not_before = cert.not_before.secs();
    info.cert_not_after = cert.not_after.secs();
    info.ego_key = hex::encode(cert.ego_pk.as_bytes());
    info.circle_links = record.chain.len();
    info.circle = match state.circle {
        Some((t, n)) => format!(
            "shared {t} of {n} with friends ({})",
            crate::text::count(record.chain.len() as u64, "link", "links")
        ),
        None => "held whole by this agent (no circle shared yet)".into(),
    };
    info.endpoints = record.endpoints.as_ref().map(|e| EndpointsInfo {
        seq: e.body.seq,
        issued_at: e.body.issued_at.secs(),
        expires_at: e.body.expires_at.secs(),
        peers: e
            .body
            .peers
            .iter()
            .map(|p| peer_info(&p.peer_id, &p.addrs))
            .collect(),
    });
    if state.damage.is_some() {
        info.state = "damaged".into();
    } else if state.is_revoked() {
        info.state = "revoked".into();
    } else {
        let due = rotation_due(cert).secs();
        info.next_rotation = Some(
            state
                .friends_retry
                .map_or(due, |(at, _)| at.secs().max(due)),
        );
        if locked {
            info.state = "locked".into();
        }
    }
    info
}

/// The recovery kit: what a new device needs to reach the friends. No
/// secret.
pub(crate) fn kit(state: &EgoState, now: u64) -> RecoveryKit {
    RecoveryKit {
        format: "cyrcles-recovery-kit".into(),
        version: 1,
        ego_id: state.row.ego_id.to_string(),
        fingerprint: state.row.ego_id.fingerprint().to_string(),
        circle_id: hex::encode(state.row.circle_id),
        friends: Vec::new(),
        written_at: now,
        note: "Keep this file somewhere other than this device (it holds no secret). \
               With it, `cyrcles recover --kit FILE` on a new device asks the friends of \
               this ego's circle to certify a new key. Write a new kit after the circle \
               changes."
            .into(),
    }
}
