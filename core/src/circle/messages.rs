//! What every circle message shares on the wire: the envelope kinds, the
//! size caps, the member, circle and session ids, and the canonical
//! encodings of points, scalars, member lists and VSS commitments. Each
//! message lives next to the step that sends it, as frost names its
//! modules after rounds; they are all re-exported here:
//!
//! | step | module | messages |
//! |---|---|---|
//! | dealing | [`dealer`](super::dealer) | [`DealtShare`], [`ShareAck`] |
//! | signing | [`signing`](super::signing) | [`Round1`], [`SigningRequest`], [`Round2`] |
//! | asking the circle | [`request`](super::request) | [`CeremonyRequest`](super::CeremonyRequest), [`CircleRefused`](super::CircleRefused) |
//! | recovery | [`recovery`](super::recovery) | [`RecoveryRequest`](super::RecoveryRequest), [`RecoveryPending`](super::RecoveryPending), [`RecoveryNotice`](super::RecoveryNotice), [`RecoveryNoticed`](super::RecoveryNoticed) |
//! | repair | [`repair`](super::repair) | [`RepairRequest`], [`RepairDelta`], [`RepairSigma`] |
//! | distributed key generation | [`dkg`](super::dkg) | [`DkgRound1`], [`DkgRound2`], [`DkgConfirm`], [`DkgStart`], [`DkgRelay`] |
//! | repair through a relay | [`seal`](super::seal) | [`RepairKeys`], [`RepairSealed`] |
//!
//! Group elements (nonce commitments, verifying shares, coefficient
//! commitments) are 32-byte compressed Edwards points (RFC 8032 §5.1.2),
//! refused when they are the identity or not in the prime-order subgroup.
//! Scalars (signing shares, signature shares, repair deltas and sigmas) are
//! 32-byte little-endian integers below the group order. Member ids are the
//! FROST identifiers 1..=[`MAX_MEMBERS`], carried as plain integers.
//!
//! Messages holding secrets ([`DealtShare`], [`RepairDelta`],
//! [`RepairSigma`]) travel only over authenticated, encrypted channels; their
//! `Debug` output hides the secret parts.

use std::fmt;

use frost_ed25519::Identifier;
use frost_ed25519::keys::{SigningShare, VerifiableSecretSharingCommitment};

use crate::cbor::{DecodeError, Decoder, Encoder};
use crate::keys::{element_bytes, hex};

pub use super::dealer::{DealtShare, ShareAck};
pub use super::dkg::{
    DkgConfirm, DkgRelay, DkgRound1, DkgRound2, DkgStart, MAX_DKG_CONFIRM_SIZE,
    MAX_DKG_ROUND1_SIZE, MAX_DKG_ROUND2_SIZE,
};
pub use super::repair::{RepairDelta, RepairRequest, RepairSigma};
pub use super::seal::{MAX_SEALED_ITEM, RepairKeys, RepairSealed};
pub use super::signing::{Round1, Round2, SigningRequest};

/// Envelope kinds of the circle messages on `/cyrcles/circle/1`
/// (see [`crate::envelope::Envelope`]).
pub mod kind {
    /// [`super::DealtShare`].
    pub const DEALT_SHARE: u16 = 1;
    /// [`super::ShareAck`].
    pub const SHARE_ACK: u16 = 2;
    /// [`super::Round1`].
    pub const ROUND1: u16 = 3;
    /// [`super::SigningRequest`].
    pub const SIGNING_REQUEST: u16 = 4;
    /// [`super::Round2`].
    pub const ROUND2: u16 = 5;
    /// [`super::RepairRequest`].
    pub const REPAIR_REQUEST: u16 = 6;
    /// [`super::RepairDelta`].
    pub const REPAIR_DELTA: u16 = 7;
    /// [`super::RepairSigma`].
    pub const REPAIR_SIGMA: u16 = 8;
    /// [`crate::circle::CeremonyRequest`].
    pub const CEREMONY_REQUEST: u16 = 9;
    /// [`crate::circle::CircleRefused`].
    pub const REFUSED: u16 = 10;
    /// [`crate::circle::RecoveryRequest`].
    pub const RECOVERY_REQUEST: u16 = 11;
    /// [`crate::circle::RecoveryPending`].
    pub const RECOVERY_PENDING: u16 = 12;
    /// [`super::RepairKeys`].
    pub const REPAIR_KEYS: u16 = 13;
    /// [`super::RepairSealed`].
    pub const REPAIR_SEALED: u16 = 14;
    /// [`crate::circle::RecoveryNotice`].
    pub const RECOVERY_NOTICE: u16 = 15;
    /// [`crate::circle::RecoveryNoticed`].
    pub const RECOVERY_NOTICED: u16 = 16;
    /// [`super::DkgRound1`].
    pub const DKG_ROUND1: u16 = 17;
    /// [`super::DkgRound2`].
    pub const DKG_ROUND2: u16 = 18;
    /// [`super::DkgConfirm`].
    pub const DKG_CONFIRM: u16 = 19;
    /// [`super::DkgStart`].
    pub const DKG_START: u16 = 20;
    /// [`super::DkgRelay`].
    pub const DKG_RELAY: u16 = 21;
    /// [`crate::circle::Objection`].
    pub const OBJECTION: u16 = 22;
    /// [`crate::circle::ObjectionNoted`].
    pub const OBJECTION_NOTED: u16 = 23;
}

/// Circle message format version.
pub const CIRCLE_VERSION: u64 = 1;
/// Most members a circle may have.
pub const MAX_MEMBERS: u16 = 64;
/// Longest message a circle may be asked to sign (a signed link or
/// certificate body with its context is far shorter).
pub const MAX_SIGNING_MESSAGE: usize = 4096;
/// Cap on any encoded circle message.
pub const MAX_CIRCLE_MESSAGE_SIZE: usize = 16 * 1024;

/// A circle member's FROST identifier, 1..=[`MAX_MEMBERS`].
#[derive(Clone, Copy)]
pub struct MemberId {
    n: u16,
    id: Identifier,
}

impl MemberId {
    /// The member id `n`, if it is in range.
    pub fn new(n: u16) -> Option<Self> {
        if !(1..=MAX_MEMBERS).contains(&n) {
            return None;
        }
        // FROST refuses only zero, which the range excludes.
        Identifier::try_from(n).ok().map(|id| Self { n, id })
    }

    /// Its number.
    pub fn get(self) -> u16 {
        self.n
    }

    /// The FROST identifier.
    pub(crate) fn frost(self) -> Identifier {
        self.id
    }

    pub(crate) fn from_frost(id: &Identifier) -> Option<Self> {
        (1..=MAX_MEMBERS)
            .filter_map(Self::new)
            .find(|m| &m.id == id)
    }

    pub(crate) fn encode(self, e: &mut Encoder) {
        e.uint(u64::from(self.n));
    }

    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let n = d.uint_max("member", u64::from(MAX_MEMBERS))?;
        u16::try_from(n)
            .ok()
            .and_then(Self::new)
            .ok_or(DecodeError::OutOfRange { what: "member" })
    }
}

impl PartialEq for MemberId {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n
    }
}

impl Eq for MemberId {}

impl PartialOrd for MemberId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MemberId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.n.cmp(&other.n)
    }
}

impl std::hash::Hash for MemberId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.n.hash(state);
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({})", self.n)
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.n)
    }
}

/// A random 128-bit circle id, known only to the owner and the members.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CircleId(pub [u8; 16]);

impl fmt::Debug for CircleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CircleId({})", hex(&self.0))
    }
}

/// A random 128-bit id naming one signing or repair session.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub [u8; 16]);

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", hex(&self.0))
    }
}

pub(super) fn version(
    d: &mut Decoder<'_>,
    m: &mut crate::cbor::MapReader,
) -> Result<(), DecodeError> {
    m.key(d, 0)?;
    match d.uint()? {
        CIRCLE_VERSION => Ok(()),
        v => Err(DecodeError::UnknownVersion(v)),
    }
}

pub(super) fn point(d: &mut Decoder<'_>, what: &'static str) -> Result<[u8; 32], DecodeError> {
    let b = d.bytes_fixed::<32>(what)?;
    // Refuse the identity, small-order and mixed-order points here, once.
    frost_ed25519::VerifyingKey::deserialize(&b)
        .map_err(|_| DecodeError::InvalidCrypto { what })?;
    Ok(b)
}

pub(super) fn scalar(d: &mut Decoder<'_>, what: &'static str) -> Result<[u8; 32], DecodeError> {
    let b = d.bytes_fixed::<32>(what)?;
    SigningShare::deserialize(&b).map_err(|_| DecodeError::InvalidCrypto { what })?;
    Ok(b)
}

pub(super) fn members(d: &mut Decoder<'_>) -> Result<Vec<MemberId>, DecodeError> {
    let n = d.array("members", usize::from(MAX_MEMBERS))?;
    let mut out: Vec<MemberId> = Vec::with_capacity(n);
    for _ in 0..n {
        let m = MemberId::decode(d)?;
        if out.last().is_some_and(|last| *last >= m) {
            return Err(DecodeError::OutOfRange {
                what: "members (must ascend)",
            });
        }
        out.push(m);
    }
    Ok(out)
}

pub(super) fn encode_members(e: &mut Encoder, members: &[MemberId]) {
    e.array(members.len());
    for m in members {
        m.encode(e);
    }
}

/// Coefficient commitments of the dealer's polynomial (VSS). The first is
/// the group (circle) public key; there are `threshold` of them.
pub(super) fn commitment(
    d: &mut Decoder<'_>,
) -> Result<VerifiableSecretSharingCommitment, DecodeError> {
    let n = d.array("commitment", usize::from(MAX_MEMBERS))?;
    if n < 2 {
        return Err(DecodeError::OutOfRange { what: "commitment" });
    }
    let mut points = Vec::with_capacity(n);
    for _ in 0..n {
        points.push(point(d, "coefficient commitment")?);
    }
    VerifiableSecretSharingCommitment::deserialize(points)
        .map_err(|_| DecodeError::InvalidCrypto { what: "commitment" })
}

pub(crate) fn commitment_points(c: &VerifiableSecretSharingCommitment) -> Vec<[u8; 32]> {
    c.serialize()
        .unwrap_or_default()
        .iter()
        .map(|v| element_bytes(&Ok(v.clone())))
        .collect()
}

pub(super) fn encode_commitment(e: &mut Encoder, c: &VerifiableSecretSharingCommitment) {
    let points = commitment_points(c);
    e.array(points.len());
    for p in &points {
        e.bytes(p);
    }
}

/// Encodes a circle's public side: `{0: 1, 1: members, 2: commitment}`.
pub(crate) fn encode_public(
    members: &[MemberId],
    commitment: &VerifiableSecretSharingCommitment,
) -> Vec<u8> {
    let mut e = Encoder::new();
    e.map(3);
    e.key(0);
    e.uint(CIRCLE_VERSION);
    e.key(1);
    encode_members(&mut e, members);
    e.key(2);
    encode_commitment(&mut e, commitment);
    e.into_bytes()
}

/// Decodes [`encode_public`]'s output strictly.
pub(crate) fn decode_public(
    bytes: &[u8],
) -> Result<(Vec<MemberId>, VerifiableSecretSharingCommitment), DecodeError> {
    let mut d = Decoder::new(bytes);
    if bytes.len() > MAX_CIRCLE_MESSAGE_SIZE {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_CIRCLE_MESSAGE_SIZE,
        });
    }
    let mut m = d.map("circle public")?;
    version(&mut d, &mut m)?;
    m.expect_len(3)?;
    m.key(&mut d, 1)?;
    let members = members(&mut d)?;
    m.key(&mut d, 2)?;
    let commitment = commitment(&mut d)?;
    d.finish()?;
    Ok((members, commitment))
}

pub(super) fn scalar_bytes(v: Vec<u8>) -> [u8; 32] {
    <[u8; 32]>::try_from(v.as_slice()).unwrap_or([0; 32])
}
