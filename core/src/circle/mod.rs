//! Circle ceremonies over FROST(Ed25519, SHA-512) (RFC 9591), as pure state
//! machines: no I/O, randomness passed in, each step checking what it is
//! given.
//!
//! * [`dealer`]: the owner's agent splits a new circle key t-of-n and each
//!   member checks its share against the dealer's VSS commitment.
//! * [`dkg`]: the new members generate a circle key among themselves
//!   (distributed key generation relayed by the owner's agent), ending
//!   with the same [`MemberShare`] and [`CirclePublic`] as a dealing.
//! * [`signing`]: a coordinator (the owner's agent) and participants (the
//!   members' agents) run the two FROST rounds; aggregation detects and
//!   names cheaters. The result is a plain Ed25519 signature by the circle
//!   key.
//! * [`request`]: the owner's signed request to the circle, and the
//!   member's check before it signs without its human.
//! * [`recovery`]: a new device's request to certify a new ego key, which
//!   the friends' humans approve.
//! * [`objection`]: the current key's word that the device did not ask
//!   for a recovery, which pauses a member's approval until its human decides.
//! * [`repair`]: a threshold of members rebuild a member's lost share
//!   without anyone learning a secret.
//! * [`seal`]: sealing a repair message to one member through the owner's
//!   agent, which relays it without reading it.
//! * [`messages`]: what every message shares on the wire (envelope kinds,
//!   size caps, ids, encodings), and an index of the messages, which live
//!   next to their step.

pub mod dealer;
pub mod dkg;
pub mod messages;
pub mod objection;
pub mod recovery;
pub mod repair;
pub mod request;
pub mod seal;
pub mod signing;

use thiserror::Error;

pub use dealer::{CirclePublic, Dealing, DealtShare, MemberShare, ShareAck, deal};
pub use dkg::{
    DkgConfirm, DkgError, DkgParams, DkgParticipant, DkgRelay, DkgRound1, DkgRound2, DkgStart,
    DkgStartBody, DkgStep, circle_public_from_round1, dkg_aad,
};
pub use messages::{CircleId, MemberId, SessionId};
pub use objection::{Noted, Objection, ObjectionBody, ObjectionNoted};
pub use recovery::{
    MAX_NOTICE_REQUEST_LEN, RecoveryBody, RecoveryNotice, RecoveryNoticed, RecoveryPending,
    RecoveryRequest, authorize_recovery, recovery_fingerprint,
};
pub use repair::{RepairDelta, RepairHelper, RepairRequest, RepairSigma, RepairTarget, repair_aad};
pub use request::{
    Authorized, CeremonyRequest, Change, CircleRefused, Purpose, Refusal, RequestBody,
    SigningPolicy, authorize,
};
pub use seal::{RepairKeys, RepairSealed};
pub use signing::{Coordinator, Round1, Round2, SignerNonces, SigningRequest, commit};

/// Why a ceremony step was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CircleError {
    /// Threshold or member count out of range (2 ≤ t ≤ n ≤ 64).
    #[error("invalid circle parameters: {0}")]
    Parameters(&'static str),
    /// A share that does not match the dealer's commitment.
    #[error("the share does not match the dealer's commitment")]
    InvalidShare,
    /// A message from a peer that is not a member of this circle.
    #[error("member {0} is not in this circle")]
    NotAMember(MemberId),
    /// A second message from the same member in one step.
    #[error("member {0} already answered")]
    Duplicate(MemberId),
    /// A message for another session, circle or generation.
    #[error("the message belongs to another session or circle")]
    WrongSession,
    /// Fewer signers or helpers than the threshold.
    #[error("{have} participants, the threshold is {need}")]
    BelowThreshold {
        /// Participants available.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// A step taken out of order (for example a share before the request).
    #[error("step out of order: {0}")]
    OutOfOrder(&'static str),
    /// Not every chosen participant has answered yet.
    #[error("waiting for members {0:?}")]
    Incomplete(Vec<MemberId>),
    /// Signature shares that do not verify: these members cheated (or their
    /// messages were corrupted).
    #[error("invalid signature shares from members {0:?}")]
    Cheaters(Vec<MemberId>),
    /// The message to sign is empty or too long.
    #[error("the message to sign is empty or too long")]
    Message,
    /// Helpers disagree on the circle's public data.
    #[error("helpers disagree on the circle's public data")]
    Inconsistent,
    /// An acknowledgement that does not match what was dealt.
    #[error("member {0} acknowledged a different share")]
    BadAck(MemberId),
    /// The aggregate does not verify as Ed25519 under the circle key.
    #[error("the aggregate signature does not verify")]
    BadAggregate,
    /// A sealed item that does not open (wrong key, altered, or for
    /// another session or member), or a low-order key.
    #[error("a sealed repair message does not open")]
    Sealed,
    /// An error reported by frost-ed25519.
    #[error("FROST: {0}")]
    Frost(#[from] frost_ed25519::Error),
}
