//! The circle messages that cross the wire, with their canonical encodings.
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

use std::collections::BTreeMap;
use std::fmt;

use frost_ed25519::Identifier;
use frost_ed25519::keys::repairable::{Delta, Sigma};
use frost_ed25519::keys::{SecretShare, SigningShare, VerifiableSecretSharingCommitment};
use frost_ed25519::round1::{NonceCommitment, SigningCommitments};
use frost_ed25519::round2::SignatureShare;
use zeroize::Zeroizing;

use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;
use crate::keys::{element_bytes, hex};

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
    /// [`super::CeremonyRequest`].
    pub const CEREMONY_REQUEST: u16 = 9;
    /// [`super::request::CircleRefused`].
    pub const REFUSED: u16 = 10;
    /// [`crate::circle::RecoveryRequest`].
    pub const RECOVERY_REQUEST: u16 = 11;
    /// [`crate::circle::RecoveryPending`].
    pub const RECOVERY_PENDING: u16 = 12;
    /// [`super::RepairKeys`].
    pub const REPAIR_KEYS: u16 = 13;
    /// [`super::RepairSealed`].
    pub const REPAIR_SEALED: u16 = 14;
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

fn version(d: &mut Decoder<'_>, m: &mut crate::cbor::MapReader) -> Result<(), DecodeError> {
    m.key(d, 0)?;
    match d.uint()? {
        CIRCLE_VERSION => Ok(()),
        v => Err(DecodeError::UnknownVersion(v)),
    }
}

fn point(d: &mut Decoder<'_>, what: &'static str) -> Result<[u8; 32], DecodeError> {
    let b = d.bytes_fixed::<32>(what)?;
    // Refuse the identity, small-order and mixed-order points here, once.
    frost_ed25519::VerifyingKey::deserialize(&b)
        .map_err(|_| DecodeError::InvalidCrypto { what })?;
    Ok(b)
}

fn scalar(d: &mut Decoder<'_>, what: &'static str) -> Result<[u8; 32], DecodeError> {
    let b = d.bytes_fixed::<32>(what)?;
    SigningShare::deserialize(&b).map_err(|_| DecodeError::InvalidCrypto { what })?;
    Ok(b)
}

fn members(d: &mut Decoder<'_>) -> Result<Vec<MemberId>, DecodeError> {
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

fn encode_members(e: &mut Encoder, members: &[MemberId]) {
    e.array(members.len());
    for m in members {
        m.encode(e);
    }
}

/// Coefficient commitments of the dealer's polynomial (VSS). The first is
/// the group (circle) public key; there are `threshold` of them.
fn commitment(d: &mut Decoder<'_>) -> Result<VerifiableSecretSharingCommitment, DecodeError> {
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

fn encode_commitment(e: &mut Encoder, c: &VerifiableSecretSharingCommitment) {
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

fn scalar_bytes(v: Vec<u8>) -> [u8; 32] {
    <[u8; 32]>::try_from(v.as_slice()).unwrap_or([0; 32])
}

/// A member's share of a new circle key, from the owner's agent acting as
/// trusted dealer. Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct DealtShare {
    /// The circle.
    pub circle_id: CircleId,
    /// The ego whose circle this is.
    pub ego_id: EgoId,
    /// The chain index of the link that introduces this circle key.
    pub generation: u64,
    /// All members, ascending.
    pub members: Vec<MemberId>,
    /// The receiving member.
    pub member: MemberId,
    /// The share with the dealer's VSS commitment (zeroized on drop).
    pub(crate) secret: SecretShare,
}

impl DealtShare {
    /// The dealer's VSS commitment: `threshold` points, the first being the
    /// circle key.
    pub fn commitment(&self) -> &VerifiableSecretSharingCommitment {
        self.secret.commitment()
    }

    /// The canonical encoding in a buffer that is zeroized when dropped.
    pub fn to_secret_cbor(&self) -> Zeroizing<Vec<u8>> {
        let mut e = Encoder::new();
        self.encode(&mut e);
        Zeroizing::new(e.into_bytes())
    }

    /// Decodes a share (from the wire or from encrypted storage).
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_cbor(bytes, MAX_CIRCLE_MESSAGE_SIZE)
    }
}

impl fmt::Debug for DealtShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DealtShare")
            .field("circle_id", &self.circle_id)
            .field("ego_id", &self.ego_id)
            .field("generation", &self.generation)
            .field("member", &self.member)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl Encode for DealtShare {
    fn encode(&self, e: &mut Encoder) {
        e.map(8);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.circle_id.0);
        e.key(2);
        e.bytes(self.ego_id.as_bytes());
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        encode_members(e, &self.members);
        e.key(5);
        self.member.encode(e);
        e.key(6);
        let share = Zeroizing::new(self.secret.signing_share().serialize());
        e.bytes(&share);
        e.key(7);
        encode_commitment(e, self.secret.commitment());
    }
}

impl Decode for DealtShare {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("dealt share")?;
        version(d, &mut m)?;
        m.expect_len(8)?;
        m.key(d, 1)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 2)?;
        let ego_id = EgoId::from_bytes(d.bytes_fixed::<32>("ego_id")?);
        m.key(d, 3)?;
        let generation = d.uint()?;
        m.key(d, 4)?;
        let members = members(d)?;
        m.key(d, 5)?;
        let member = MemberId::decode(d)?;
        m.key(d, 6)?;
        let share = Zeroizing::new(scalar(d, "signing share")?);
        m.key(d, 7)?;
        let commitment = commitment(d)?;
        let signing_share =
            SigningShare::deserialize(&*share).map_err(|_| DecodeError::InvalidCrypto {
                what: "signing share",
            })?;
        Ok(Self {
            circle_id,
            ego_id,
            generation,
            members,
            member,
            secret: SecretShare::new(member.frost(), signing_share, commitment),
        })
    }
}

/// A member's acknowledgement of its share: its verifying share and a
/// digest of the commitment it received, so the dealer can check that every
/// member holds a share of the same polynomial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareAck {
    /// The circle.
    pub circle_id: CircleId,
    /// The generation acknowledged.
    pub generation: u64,
    /// The acknowledging member.
    pub member: MemberId,
    /// G · share, as the member computed it.
    pub verifying_share: [u8; 32],
    /// SHA-256 of the concatenated coefficient commitments received.
    pub commitment_digest: [u8; 32],
}

impl Encode for ShareAck {
    fn encode(&self, e: &mut Encoder) {
        e.map(6);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.circle_id.0);
        e.key(2);
        e.uint(self.generation);
        e.key(3);
        self.member.encode(e);
        e.key(4);
        e.bytes(&self.verifying_share);
        e.key(5);
        e.bytes(&self.commitment_digest);
    }
}

impl Decode for ShareAck {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("share ack")?;
        version(d, &mut m)?;
        m.expect_len(6)?;
        m.key(d, 1)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 2)?;
        let generation = d.uint()?;
        m.key(d, 3)?;
        let member = MemberId::decode(d)?;
        m.key(d, 4)?;
        let verifying_share = point(d, "verifying share")?;
        m.key(d, 5)?;
        let commitment_digest = d.bytes_fixed::<32>("commitment digest")?;
        Ok(Self {
            circle_id,
            generation,
            member,
            verifying_share,
            commitment_digest,
        })
    }
}

/// FROST round 1: a signer's nonce commitments for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round1 {
    /// The session.
    pub session: SessionId,
    /// The signer.
    pub member: MemberId,
    /// Hiding and binding nonce commitments.
    pub commitments: SigningCommitments,
}

fn encode_commitments(e: &mut Encoder, c: &SigningCommitments) {
    e.bytes(&element_bytes(&c.hiding().serialize()));
    e.bytes(&element_bytes(&c.binding().serialize()));
}

fn decode_commitments(d: &mut Decoder<'_>) -> Result<SigningCommitments, DecodeError> {
    let hiding = point(d, "hiding commitment")?;
    let binding = point(d, "binding commitment")?;
    let hiding = NonceCommitment::deserialize(&hiding).map_err(|_| DecodeError::InvalidCrypto {
        what: "hiding commitment",
    })?;
    let binding =
        NonceCommitment::deserialize(&binding).map_err(|_| DecodeError::InvalidCrypto {
            what: "binding commitment",
        })?;
    Ok(SigningCommitments::new(hiding, binding))
}

impl Encode for Round1 {
    fn encode(&self, e: &mut Encoder) {
        e.map(5);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        self.member.encode(e);
        e.key(3);
        e.bytes(&element_bytes(&self.commitments.hiding().serialize()));
        e.key(4);
        e.bytes(&element_bytes(&self.commitments.binding().serialize()));
    }
}

impl Decode for Round1 {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("round 1")?;
        version(d, &mut m)?;
        m.expect_len(5)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let member = MemberId::decode(d)?;
        m.key(d, 3)?;
        let hiding = point(d, "hiding commitment")?;
        m.key(d, 4)?;
        let binding = point(d, "binding commitment")?;
        let commitments = SigningCommitments::new(
            NonceCommitment::deserialize(&hiding).map_err(|_| DecodeError::InvalidCrypto {
                what: "hiding commitment",
            })?,
            NonceCommitment::deserialize(&binding).map_err(|_| DecodeError::InvalidCrypto {
                what: "binding commitment",
            })?,
        );
        Ok(Self {
            session,
            member,
            commitments,
        })
    }
}

/// The coordinator's request for round 2: the message and every chosen
/// signer's commitments (the FROST signing package).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningRequest {
    /// The session.
    pub session: SessionId,
    /// The exact bytes to sign (context ‖ 0x00 ‖ body).
    pub message: Vec<u8>,
    /// Commitments of the signers, by member.
    pub commitments: BTreeMap<MemberId, SigningCommitments>,
}

impl Encode for SigningRequest {
    fn encode(&self, e: &mut Encoder) {
        e.map(4);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        e.bytes(&self.message);
        e.key(3);
        e.array(self.commitments.len());
        for (member, c) in &self.commitments {
            e.array(3);
            member.encode(e);
            encode_commitments(e, c);
        }
    }
}

impl Decode for SigningRequest {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("signing request")?;
        version(d, &mut m)?;
        m.expect_len(4)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let message = d.bytes_in("message", 1, MAX_SIGNING_MESSAGE)?.to_vec();
        m.key(d, 3)?;
        let n = d.array("signers", usize::from(MAX_MEMBERS))?;
        let mut commitments = BTreeMap::new();
        let mut last: Option<MemberId> = None;
        for _ in 0..n {
            d.array_exact("signer commitments", 3)?;
            let member = MemberId::decode(d)?;
            if last.is_some_and(|l| l >= member) {
                return Err(DecodeError::OutOfRange {
                    what: "signers (must ascend)",
                });
            }
            last = Some(member);
            commitments.insert(member, decode_commitments(d)?);
        }
        Ok(Self {
            session,
            message,
            commitments,
        })
    }
}

/// FROST round 2: a signer's signature share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round2 {
    /// The session.
    pub session: SessionId,
    /// The signer.
    pub member: MemberId,
    /// Its signature share.
    pub share: SignatureShare,
}

impl Encode for Round2 {
    fn encode(&self, e: &mut Encoder) {
        e.map(4);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        self.member.encode(e);
        e.key(3);
        e.bytes(&scalar_bytes(self.share.serialize()));
    }
}

impl Decode for Round2 {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("round 2")?;
        version(d, &mut m)?;
        m.expect_len(4)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let member = MemberId::decode(d)?;
        m.key(d, 3)?;
        let raw = scalar(d, "signature share")?;
        let share = SignatureShare::deserialize(&raw).map_err(|_| DecodeError::InvalidCrypto {
            what: "signature share",
        })?;
        Ok(Self {
            session,
            member,
            share,
        })
    }
}

/// The coordinator's call to repair `target`'s lost share with `helpers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairRequest {
    /// The session.
    pub session: SessionId,
    /// The circle.
    pub circle_id: CircleId,
    /// Its generation.
    pub generation: u64,
    /// The member whose share is lost.
    pub target: MemberId,
    /// The members who help, ascending; at least the threshold.
    pub helpers: Vec<MemberId>,
}

impl Encode for RepairRequest {
    fn encode(&self, e: &mut Encoder) {
        e.map(6);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        self.target.encode(e);
        e.key(5);
        encode_members(e, &self.helpers);
    }
}

impl Decode for RepairRequest {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("repair request")?;
        version(d, &mut m)?;
        m.expect_len(6)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 3)?;
        let generation = d.uint()?;
        m.key(d, 4)?;
        let target = MemberId::decode(d)?;
        m.key(d, 5)?;
        let helpers = members(d)?;
        Ok(Self {
            session,
            circle_id,
            generation,
            target,
            helpers,
        })
    }
}

/// Repair step 1: a delta from one helper to another. Secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RepairDelta {
    /// The session.
    pub session: SessionId,
    /// The sending helper.
    pub from: MemberId,
    /// The receiving helper.
    pub to: MemberId,
    /// The delta value.
    pub delta: Delta,
}

impl fmt::Debug for RepairDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepairDelta")
            .field("session", &self.session)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl Encode for RepairDelta {
    fn encode(&self, e: &mut Encoder) {
        e.map(5);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        self.from.encode(e);
        e.key(3);
        self.to.encode(e);
        e.key(4);
        e.bytes(&Zeroizing::new(scalar_bytes(self.delta.serialize()))[..]);
    }
}

impl Decode for RepairDelta {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("repair delta")?;
        version(d, &mut m)?;
        m.expect_len(5)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let from = MemberId::decode(d)?;
        m.key(d, 3)?;
        let to = MemberId::decode(d)?;
        m.key(d, 4)?;
        let raw = Zeroizing::new(scalar(d, "delta")?);
        let delta =
            Delta::deserialize(&*raw).map_err(|_| DecodeError::InvalidCrypto { what: "delta" })?;
        Ok(Self {
            session,
            from,
            to,
            delta,
        })
    }
}

/// Repair step 2: a helper's sigma for the target, with the public data the
/// target needs to rebuild and check its share. Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RepairSigma {
    /// The session.
    pub session: SessionId,
    /// The sending helper.
    pub from: MemberId,
    /// The sum of the deltas the helper received.
    pub sigma: Sigma,
    /// The circle.
    pub circle_id: CircleId,
    /// The ego whose circle it is.
    pub ego_id: EgoId,
    /// The circle generation.
    pub generation: u64,
    /// All members, ascending.
    pub members: Vec<MemberId>,
    /// The dealer's VSS commitment, as the helper holds it.
    pub commitment: VerifiableSecretSharingCommitment,
}

impl fmt::Debug for RepairSigma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepairSigma")
            .field("session", &self.session)
            .field("from", &self.from)
            .field("circle_id", &self.circle_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Encode for RepairSigma {
    fn encode(&self, e: &mut Encoder) {
        e.map(9);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        self.from.encode(e);
        e.key(3);
        e.bytes(&Zeroizing::new(scalar_bytes(self.sigma.serialize()))[..]);
        e.key(4);
        e.bytes(&self.circle_id.0);
        e.key(5);
        e.bytes(self.ego_id.as_bytes());
        e.key(6);
        e.uint(self.generation);
        e.key(7);
        encode_members(e, &self.members);
        e.key(8);
        encode_commitment(e, &self.commitment);
    }
}

impl Decode for RepairSigma {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("repair sigma")?;
        version(d, &mut m)?;
        m.expect_len(9)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let from = MemberId::decode(d)?;
        m.key(d, 3)?;
        let raw = Zeroizing::new(scalar(d, "sigma")?);
        let sigma =
            Sigma::deserialize(&*raw).map_err(|_| DecodeError::InvalidCrypto { what: "sigma" })?;
        m.key(d, 4)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 5)?;
        let ego_id = EgoId::from_bytes(d.bytes_fixed::<32>("ego_id")?);
        m.key(d, 6)?;
        let generation = d.uint()?;
        m.key(d, 7)?;
        let members = members(d)?;
        m.key(d, 8)?;
        let commitment = commitment(d)?;
        Ok(Self {
            session,
            from,
            sigma,
            circle_id,
            ego_id,
            generation,
            members,
            commitment,
        })
    }
}

/// Longest sealed item in a repair bundle.
pub const MAX_SEALED_ITEM: usize = 2048;

/// Repair participants' one-time sealing keys (`{0: 1, 1: session,
/// 2: [[member, bstr .size 32], ...]}`): one participant's in its answer
/// to a [`RepairRequest`], every participant's in the coordinator's next
/// step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairKeys {
    /// The session.
    pub session: SessionId,
    /// Member and public sealing key, by member ascending.
    pub keys: Vec<(MemberId, [u8; 32])>,
}

impl Encode for RepairKeys {
    fn encode(&self, e: &mut Encoder) {
        e.map(3);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        e.array(self.keys.len());
        for (m, k) in &self.keys {
            e.array(2);
            m.encode(e);
            e.bytes(k);
        }
    }
}

impl Decode for RepairKeys {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("repair keys")?;
        version(d, &mut m)?;
        m.expect_len(3)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let n = d.array("keys", usize::from(MAX_MEMBERS))?;
        let mut keys: Vec<(MemberId, [u8; 32])> = Vec::with_capacity(n);
        for _ in 0..n {
            d.array_exact("key", 2)?;
            let member = MemberId::decode(d)?;
            if keys.last().is_some_and(|(last, _)| *last >= member) {
                return Err(DecodeError::OutOfRange {
                    what: "keys (must ascend)",
                });
            }
            keys.push((member, d.bytes_fixed::<32>("sealing key")?));
        }
        Ok(Self { session, keys })
    }
}

/// Sealed repair items, each for or from one member (`{0: 1, 1: session,
/// 2: member, 3: [[member, bstr], ...]}`): a helper's deltas to the other
/// helpers, the deltas relayed to one helper, a helper's sigma for the
/// target, and the sigmas relayed to the target. Key 2 is the member
/// the bundle is from (or, relayed, for).
#[derive(Clone, PartialEq, Eq)]
pub struct RepairSealed {
    /// The session.
    pub session: SessionId,
    /// The member the bundle is from, or relayed to.
    pub member: MemberId,
    /// The other member of each item (recipient or sender) and the sealed
    /// bytes, by member ascending.
    pub items: Vec<(MemberId, Vec<u8>)>,
}

impl fmt::Debug for RepairSealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepairSealed")
            .field("session", &self.session)
            .field("member", &self.member)
            .field("items", &self.items.len())
            .finish()
    }
}

impl Encode for RepairSealed {
    fn encode(&self, e: &mut Encoder) {
        e.map(4);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        self.member.encode(e);
        e.key(3);
        e.array(self.items.len());
        for (m, b) in &self.items {
            e.array(2);
            m.encode(e);
            e.bytes(b);
        }
    }
}

impl Decode for RepairSealed {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("repair sealed")?;
        version(d, &mut m)?;
        m.expect_len(4)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let member = MemberId::decode(d)?;
        m.key(d, 3)?;
        let n = d.array("items", usize::from(MAX_MEMBERS))?;
        let mut items: Vec<(MemberId, Vec<u8>)> = Vec::with_capacity(n);
        for _ in 0..n {
            d.array_exact("item", 2)?;
            let other = MemberId::decode(d)?;
            if items.last().is_some_and(|(last, _)| *last >= other) {
                return Err(DecodeError::OutOfRange {
                    what: "items (must ascend)",
                });
            }
            items.push((
                other,
                d.bytes_in("sealed item", 1, MAX_SEALED_ITEM)?.to_vec(),
            ));
        }
        Ok(Self {
            session,
            member,
            items,
        })
    }
}
