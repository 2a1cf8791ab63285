//! Trusted-dealer key splitting (flow 2 of the design) and share checking,
//! with the dealing's two messages: a [`DealtShare`] to each member and its
//! [`ShareAck`] back.

use std::collections::BTreeSet;
use std::fmt;

use frost_ed25519::Identifier;
use frost_ed25519::keys::{
    IdentifierList, KeyPackage, PublicKeyPackage, SecretShare, SigningShare,
    VerifiableSecretSharingCommitment,
};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;
use crate::keys::{CircleSecret, PublicKey, element_bytes};

use super::CircleError;
use super::messages::{
    CIRCLE_VERSION, CircleId, MAX_CIRCLE_MESSAGE_SIZE, MAX_MEMBERS, MemberId, commitment,
    commitment_points, encode_commitment, encode_members, members, point, scalar, version,
};

fn commitment_digest(c: &VerifiableSecretSharingCommitment) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in commitment_points(c) {
        h.update(p);
    }
    h.finalize().into()
}

fn check_parameters(threshold: usize, members: usize) -> Result<(), CircleError> {
    if members > usize::from(MAX_MEMBERS) {
        return Err(CircleError::Parameters("more than 64 members"));
    }
    if threshold < 2 {
        return Err(CircleError::Parameters("threshold below 2"));
    }
    if threshold > members {
        return Err(CircleError::Parameters("threshold above member count"));
    }
    Ok(())
}

/// The public side of a shared circle key, as the coordinator needs it.
/// Never published: it reveals the member count and the verifying shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CirclePublic {
    pub(crate) package: PublicKeyPackage,
    members: Vec<MemberId>,
    threshold: usize,
    commitment_digest: [u8; 32],
    commitment: VerifiableSecretSharingCommitment,
}

impl CirclePublic {
    pub(crate) fn from_commitment(
        members: &[MemberId],
        commitment: &VerifiableSecretSharingCommitment,
    ) -> Result<Self, CircleError> {
        let threshold = commitment.coefficients_len();
        check_parameters(threshold, members.len())?;
        let ids: BTreeSet<Identifier> = members.iter().map(|m| m.frost()).collect();
        if ids.len() != members.len() {
            return Err(CircleError::Parameters("duplicate member"));
        }
        let package = PublicKeyPackage::from_commitment(&ids, commitment)?;
        Ok(Self {
            package,
            members: members.to_vec(),
            threshold,
            commitment_digest: commitment_digest(commitment),
            commitment: commitment.clone(),
        })
    }

    /// The public side of a DKG's result: the group commitment (the sum of
    /// the participants' commitments) with the public key package frost's
    /// part 3 computed from the same commitments, so that the verifying
    /// shares are not computed twice.
    pub(crate) fn from_dkg(
        members: &[MemberId],
        commitment: &VerifiableSecretSharingCommitment,
        package: PublicKeyPackage,
    ) -> Result<Self, CircleError> {
        let threshold = commitment.coefficients_len();
        check_parameters(threshold, members.len())?;
        let ids: BTreeSet<Identifier> = members.iter().map(|m| m.frost()).collect();
        let first = commitment_points(commitment).first().copied();
        if ids.len() != members.len()
            || package.verifying_shares().keys().ne(ids.iter())
            || first != Some(element_bytes(&package.verifying_key().serialize()))
        {
            return Err(CircleError::Inconsistent);
        }
        Ok(Self {
            package,
            members: members.to_vec(),
            threshold,
            commitment_digest: commitment_digest(commitment),
            commitment: commitment.clone(),
        })
    }

    /// The canonical encoding, for the owner's agent to keep:
    /// `{0: 1, 1: members, 2: commitment}` (section 9 of the protocol).
    pub fn to_cbor(&self) -> Vec<u8> {
        super::messages::encode_public(&self.members, &self.commitment)
    }

    /// Decodes what [`CirclePublic::to_cbor`] wrote, rebuilding the
    /// verifying shares from the commitment.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (members, commitment) = super::messages::decode_public(bytes)?;
        Self::from_commitment(&members, &commitment).map_err(|_| DecodeError::InvalidCrypto {
            what: "circle commitment",
        })
    }

    /// The circle key.
    pub fn group_key(&self) -> PublicKey {
        PublicKey(element_bytes(&self.package.verifying_key().serialize()))
    }

    /// The members, ascending.
    pub fn members(&self) -> &[MemberId] {
        &self.members
    }

    /// Signers needed.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Whether `m` is a member.
    pub fn is_member(&self, m: MemberId) -> bool {
        self.members.binary_search(&m).is_ok()
    }

    /// Checks a member's acknowledgement against what was dealt.
    pub fn check_ack(&self, ack: &ShareAck) -> Result<(), CircleError> {
        let expected = self
            .package
            .verifying_shares()
            .get(&ack.member.frost())
            .ok_or(CircleError::NotAMember(ack.member))?;
        if element_bytes(&expected.serialize()) != ack.verifying_share
            || ack.commitment_digest != self.commitment_digest
        {
            return Err(CircleError::BadAck(ack.member));
        }
        Ok(())
    }
}

/// Helper on frost's commitment type.
trait CoefficientsLen {
    fn coefficients_len(&self) -> usize;
}

impl CoefficientsLen for VerifiableSecretSharingCommitment {
    fn coefficients_len(&self) -> usize {
        commitment_points(self).len()
    }
}

/// The result of splitting a circle key: the public side for the
/// coordinator and one share per member, to deliver.
#[derive(Debug)]
pub struct Dealing {
    /// Public data of the new circle.
    pub public: CirclePublic,
    /// One share per member, in member order.
    pub shares: Vec<DealtShare>,
}

/// Splits `circle` into `members` shares, any `threshold` of which can
/// sign. Member ids are 1..=members.
pub fn deal<R: RngCore + CryptoRng>(
    circle: &CircleSecret,
    ego_id: EgoId,
    circle_id: CircleId,
    generation: u64,
    threshold: u16,
    members: u16,
    rng: &mut R,
) -> Result<Dealing, CircleError> {
    check_parameters(usize::from(threshold), usize::from(members))?;
    let (shares, _package) =
        frost_ed25519::keys::split(&circle.0, members, threshold, IdentifierList::Default, rng)?;
    let member_ids: Vec<MemberId> = (1..=members).filter_map(MemberId::new).collect();
    let mut dealt = Vec::with_capacity(shares.len());
    let mut commitment = None;
    for (id, secret) in shares {
        let member = MemberId::from_frost(&id).ok_or(CircleError::Parameters("member id"))?;
        commitment.get_or_insert_with(|| secret.commitment().clone());
        dealt.push(DealtShare {
            circle_id,
            ego_id,
            generation,
            members: member_ids.clone(),
            member,
            secret,
        });
    }
    let commitment = commitment.ok_or(CircleError::Parameters("no shares"))?;
    let public = CirclePublic::from_commitment(&member_ids, &commitment)?;
    Ok(Dealing {
        public,
        shares: dealt,
    })
}

/// A member's checked share of a circle key, ready to sign. Secret; its
/// `Debug` output hides the share and it is zeroized on drop.
#[derive(Clone)]
pub struct MemberShare {
    dealt: DealtShare,
    key: KeyPackage,
    public: CirclePublic,
}

impl MemberShare {
    /// Checks a dealt share: the member list, the threshold, and the share
    /// against the dealer's VSS commitment.
    pub fn accept(dealt: DealtShare) -> Result<Self, CircleError> {
        Self::check_dealt(&dealt)?;
        let public = CirclePublic::from_commitment(&dealt.members, dealt.commitment())?;
        Self::accept_with(dealt, public)
    }

    /// The checks of a share's own fields.
    fn check_dealt(dealt: &DealtShare) -> Result<(), CircleError> {
        if !dealt.members.is_sorted_by(|a, b| a < b) {
            return Err(CircleError::Parameters("members not ascending"));
        }
        if dealt.members.binary_search(&dealt.member).is_err() {
            return Err(CircleError::NotAMember(dealt.member));
        }
        if dealt.secret.identifier() != &dealt.member.frost() {
            return Err(CircleError::InvalidShare);
        }
        Ok(())
    }

    /// [`MemberShare::accept`] with the public side already built: checks
    /// that it matches the share and the share against the commitment.
    fn accept_with(dealt: DealtShare, public: CirclePublic) -> Result<Self, CircleError> {
        if public.commitment != *dealt.commitment() || public.members != dealt.members {
            return Err(CircleError::Inconsistent);
        }
        // The VSS check of the share against the commitment.
        let key =
            KeyPackage::try_from(dealt.secret.clone()).map_err(|_| CircleError::InvalidShare)?;
        Ok(Self { dealt, key, public })
    }

    /// A share from a DKG, with the public side built from frost's result.
    pub(crate) fn from_dkg(
        circle_id: CircleId,
        ego_id: EgoId,
        generation: u64,
        member: MemberId,
        secret: SecretShare,
        public: CirclePublic,
    ) -> Result<Self, CircleError> {
        let dealt = DealtShare {
            circle_id,
            ego_id,
            generation,
            members: public.members.clone(),
            member,
            secret,
        };
        Self::check_dealt(&dealt)?;
        Self::accept_with(dealt, public)
    }

    /// Restores a share from its stored encoding.
    pub fn from_secret_cbor(bytes: &[u8]) -> Result<Self, ShareLoadError> {
        let dealt = DealtShare::decode_bytes(bytes)?;
        Ok(Self::accept(dealt)?)
    }

    /// The encoding to store (encrypted) or send; zeroized when dropped.
    pub fn to_secret_cbor(&self) -> Zeroizing<Vec<u8>> {
        self.dealt.to_secret_cbor()
    }

    /// The circle.
    pub fn circle_id(&self) -> CircleId {
        self.dealt.circle_id
    }

    /// The ego whose circle it is.
    pub fn ego_id(&self) -> EgoId {
        self.dealt.ego_id
    }

    /// The chain index of the circle key.
    pub fn generation(&self) -> u64 {
        self.dealt.generation
    }

    /// This member.
    pub fn member(&self) -> MemberId {
        self.dealt.member
    }

    /// The circle's public side.
    pub fn public(&self) -> &CirclePublic {
        &self.public
    }

    /// The circle key.
    pub fn group_key(&self) -> PublicKey {
        self.public.group_key()
    }

    /// The acknowledgement to send back to the dealer.
    pub fn ack(&self) -> ShareAck {
        ShareAck {
            circle_id: self.dealt.circle_id,
            generation: self.dealt.generation,
            member: self.dealt.member,
            verifying_share: element_bytes(&self.key.verifying_share().serialize()),
            commitment_digest: self.public.commitment_digest,
        }
    }

    pub(crate) fn key_package(&self) -> &KeyPackage {
        &self.key
    }

    pub(crate) fn commitment(&self) -> &VerifiableSecretSharingCommitment {
        self.dealt.commitment()
    }

    pub(crate) fn members(&self) -> &[MemberId] {
        &self.dealt.members
    }

    pub(crate) fn from_parts(
        circle_id: CircleId,
        ego_id: EgoId,
        generation: u64,
        members: Vec<MemberId>,
        member: MemberId,
        secret: SecretShare,
    ) -> Result<Self, CircleError> {
        Self::accept(DealtShare {
            circle_id,
            ego_id,
            generation,
            members,
            member,
            secret,
        })
    }
}

impl fmt::Debug for MemberShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberShare")
            .field("circle_id", &self.dealt.circle_id)
            .field("ego_id", &self.dealt.ego_id)
            .field("generation", &self.dealt.generation)
            .field("member", &self.dealt.member)
            .field("threshold", &self.public.threshold)
            .field("members", &self.dealt.members)
            .finish_non_exhaustive()
    }
}

/// Why a stored share cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareLoadError {
    /// Not a canonical encoding.
    #[error("malformed share: {0}")]
    Encoding(#[from] DecodeError),
    /// Decodes but does not check out.
    #[error("invalid share: {0}")]
    Invalid(#[from] CircleError),
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
