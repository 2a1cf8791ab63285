//! The one router of inbound network messages: every [`NodeEvent`] of an
//! ego's node comes here and goes to its receiver. Receivers do not route:
//!
//! | event / circle message kind          | receiver                        |
//! |--------------------------------------|---------------------------------|
//! | `Login`                              | `approval::on_login`            |
//! | `Invite`                             | `friends::on_message`           |
//! | circle `DEALT_SHARE`                 | `circle::member::on_share`      |
//! | circle `CEREMONY_REQUEST`            | `circle::member::on_request`    |
//! | circle `SIGNING_REQUEST`             | `circle::member::on_signing`    |
//! | circle `DKG_START`, `DKG_RELAY`      | `circle::dkg::on_message`       |
//! | circle `REPAIR_*`                    | `repair::on_message`            |
//! | circle `RECOVERY_REQUEST`            | `recovery::friend::on_request`  |
//! | circle `RECOVERY_NOTICE`             | `recovery::warning::on_notice`  |
//! | anything else on the circle protocol | refused as invalid              |
//!
//! Each circle message is answered by its own task, so a slow answer
//! (a keystore write, a DHT lookup) does not hold up the node's events.

use std::sync::Arc;

use cyrcles_core::EgoId;
use cyrcles_core::circle::messages::kind;
use cyrcles_core::circle::request::refused;
use cyrcles_core::envelope::Envelope;
use cyrcles_p2p::{NodeEvent, PeerId, Responder};
use tokio::sync::mpsc;
use tracing::error;

use super::circle::{dkg, member};
use super::recovery::friend as recovery_friend;
use super::recovery::warning as recovery_warning;
use super::shares::refusal;
use super::{Shared, approval, friends, repair};

/// Spawns the loop that routes the events of `ego`'s node until the node
/// stops.
pub(crate) fn spawn(shared: Arc<Shared>, ego: EgoId, mut events: mpsc::Receiver<NodeEvent>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NodeEvent::Login {
                    peer,
                    challenge,
                    responder,
                } => approval::on_login(&shared, ego, peer, challenge, responder),
                NodeEvent::ListenAddrsChanged(_) => shared.wake.notify_one(),
                // A member follows a recovered friend at its share sweep
                // (`maintenance.rs`), from the record it fetches itself.
                NodeEvent::Recovered { .. } => {}
                NodeEvent::Duplicity { ego_id, kind, .. } => {
                    error!(
                        ego = %ego_id,
                        "two valid, conflicting records of an ego were seen ({kind:?}): \
                         its circle is compromised"
                    );
                }
                NodeEvent::Invite {
                    peer,
                    message,
                    responder,
                } => friends::on_message(&shared, ego, peer, message, responder),
                NodeEvent::Circle {
                    peer,
                    message,
                    responder,
                } => on_circle(&shared, ego, peer, message, responder),
            }
        }
    });
}

/// A circle message reached `my_ego`'s node from `peer`.
fn on_circle(
    shared: &Arc<Shared>,
    my_ego: EgoId,
    peer: PeerId,
    message: Envelope,
    responder: Responder<Envelope>,
) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let answer = match message.kind {
            kind::DEALT_SHARE => member::on_share(&shared, my_ego, peer, &message).await,
            kind::CEREMONY_REQUEST => member::on_request(&shared, my_ego, peer, &message).await,
            kind::SIGNING_REQUEST => member::on_signing(&shared, peer, &message).await,
            kind::DKG_START | kind::DKG_RELAY => {
                dkg::on_message(&shared, my_ego, peer, &message).await
            }
            kind::REPAIR_REQUEST | kind::REPAIR_KEYS | kind::REPAIR_SEALED => {
                repair::on_message(&shared, my_ego, peer, &message).await
            }
            kind::RECOVERY_REQUEST => {
                recovery_friend::on_request(&shared, my_ego, peer, &message).await
            }
            kind::RECOVERY_NOTICE => {
                recovery_warning::on_notice(&shared, my_ego, peer, &message).await
            }
            kind::OBJECTION => {
                super::recovery::objection::on_objection(&shared, my_ego, peer, &message).await
            }
            _ => refusal(refused::INVALID),
        };
        responder.respond(answer);
    });
}
