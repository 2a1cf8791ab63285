//! What a node tells the program that embeds it.

use cyrcles_core::EgoId;
use cyrcles_core::envelope::Envelope;
use cyrcles_core::login::{LoginChallenge, LoginResponse};
use cyrcles_core::record::DuplicityKind;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;

/// Answers one inbound request. Dropping it without answering makes the
/// node reset the stream (or, for logins, answer `Denied { Invalid }`).
#[derive(Debug)]
pub struct Responder<T> {
    pub(crate) tx: oneshot::Sender<T>,
}

impl<T> Responder<T> {
    /// Sends the answer.
    pub fn respond(self, answer: T) {
        let _ = self.tx.send(answer);
    }
}

/// An event from the node.
#[derive(Debug)]
pub enum NodeEvent {
    /// A bridge sent a login challenge (agents).
    Login {
        /// The bridge's peer.
        peer: PeerId,
        /// The challenge, decoded and within its limits.
        challenge: LoginChallenge,
        /// Where the answer goes.
        responder: Responder<LoginResponse>,
    },
    /// A circle message.
    Circle {
        /// The sender.
        peer: PeerId,
        /// The message.
        message: Envelope,
        /// Where the answer goes.
        responder: Responder<Envelope>,
    },
    /// An invite message.
    Invite {
        /// The sender.
        peer: PeerId,
        /// The message.
        message: Envelope,
        /// Where the answer goes.
        responder: Responder<Envelope>,
    },
    /// Two valid, incompatible records of one ego were seen: its circle is
    /// compromised.
    Duplicity {
        /// The ego.
        ego_id: EgoId,
        /// What conflicts.
        kind: DuplicityKind,
        /// The record kept (first seen), when this node holds it.
        first: Option<Vec<u8>>,
        /// The conflicting record.
        second: Vec<u8>,
    },
    /// A peer stored a record of a higher authority epoch (a recovery) than
    /// the one this node held for the ego, or the first record of it this
    /// node holds with an epoch above 0: whoever caches records elsewhere
    /// (a bridge's database) drops the superseded one at once, instead of
    /// using it until its cache time is up (docs/circle-authority.md, P5).
    /// At most one per stored record; peers' stores are rate-limited.
    Recovered {
        /// The ego.
        ego_id: EgoId,
        /// The record as stored, verified.
        record: Vec<u8>,
    },
    /// The node's listen addresses changed (a relay reservation was made or
    /// lost); agents republish their endpoints.
    ListenAddrsChanged(Vec<Multiaddr>),
}
