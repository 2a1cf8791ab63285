//! Protocol ids and their message caps (also listed in docs/protocol.md).

use cyrcles_core::circle::messages::MAX_CIRCLE_MESSAGE_SIZE;
use cyrcles_core::login::{MAX_CHALLENGE_SIZE, MAX_RESPONSE_SIZE};
use cyrcles_core::record::MAX_RECORD_SIZE;
use libp2p::StreamProtocol;

use crate::handle::Protocol;

/// The Kademlia protocol of the Cyrcles DHT.
pub const KAD: StreamProtocol = StreamProtocol::new("/cyrcles/kad/1.0.0");
/// Bridge → agent login challenges.
pub const LOGIN: StreamProtocol = StreamProtocol::new("/cyrcles/login/1");
/// Agent ↔ agent circle ceremonies.
pub const CIRCLE: StreamProtocol = StreamProtocol::new("/cyrcles/circle/1");
/// Agent ↔ agent invites (PAKE).
pub const INVITE: StreamProtocol = StreamProtocol::new("/cyrcles/invite/1");
/// The `protocol_version` announced in identify.
pub const IDENTIFY_VERSION: &str = "/cyrcles/1.0.0";

/// Envelope overhead over its body: map head, version, kind, byte-string
/// head.
const ENVELOPE_OVERHEAD: usize = 16;
/// Largest invite message body.
pub const MAX_INVITE_MESSAGE_SIZE: usize = 4 * 1024;

/// Largest Kademlia message: one record plus its key and framing.
pub const KAD_MAX_PACKET: usize = MAX_RECORD_SIZE + 4 * 1024;

/// The stream protocol of a request-response protocol.
pub fn stream_protocol(p: Protocol) -> StreamProtocol {
    match p {
        Protocol::Login => LOGIN,
        Protocol::Circle => CIRCLE,
        Protocol::Invite => INVITE,
    }
}

/// Largest request of a protocol.
pub fn max_request(p: Protocol) -> usize {
    match p {
        Protocol::Login => MAX_CHALLENGE_SIZE,
        Protocol::Circle => MAX_CIRCLE_MESSAGE_SIZE + ENVELOPE_OVERHEAD,
        Protocol::Invite => MAX_INVITE_MESSAGE_SIZE + ENVELOPE_OVERHEAD,
    }
}

/// Largest response of a protocol.
pub fn max_response(p: Protocol) -> usize {
    match p {
        Protocol::Login => MAX_RESPONSE_SIZE,
        Protocol::Circle => MAX_CIRCLE_MESSAGE_SIZE + ENVELOPE_OVERHEAD,
        Protocol::Invite => MAX_INVITE_MESSAGE_SIZE + ENVELOPE_OVERHEAD,
    }
}
