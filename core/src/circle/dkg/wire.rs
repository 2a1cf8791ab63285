//! The three DKG messages and the bodies their senders sign (protocol
//! section 9.4). Decoding checks only the encoding; the state machine
//! checks the run, the sender and the signature.

use std::fmt;

use frost_ed25519::keys::VerifiableSecretSharingCommitment;

use super::DkgParams;
use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::circle::messages::{
    CIRCLE_VERSION, CircleId, MAX_MEMBERS, MemberId, SessionId, encode_commitment, point, version,
};
use crate::circle::seal::SEAL_OVERHEAD;
use crate::keys::{Context, PublicKey, SecretKey, Signature, signature_bytes};

/// Cap on an encoded [`DkgRound1`] (a 64-point commitment is 2.2 KiB).
pub const MAX_DKG_ROUND1_SIZE: usize = 4096;
/// Cap on an encoded [`DkgRound2`] (63 sealed items are 5.3 KiB).
pub const MAX_DKG_ROUND2_SIZE: usize = 8192;
/// Cap on an encoded [`DkgConfirm`].
pub const MAX_DKG_CONFIRM_SIZE: usize = 512;
/// Length of one sealed round-2 package: a 32-byte scalar and the seal's
/// overhead.
pub const SEALED_SHARE_LEN: usize = 32 + SEAL_OVERHEAD;

/// Round 1, from one participant to all others through the relay:
/// `{0: 1, 1: session, 2: circle_id, 3: generation, 4: member,
/// 5: commitment, 6: proof, 7: seal key, 8: signature}`.
#[derive(Clone, PartialEq, Eq)]
pub struct DkgRound1 {
    /// The run.
    pub session: SessionId,
    /// The circle.
    pub circle_id: CircleId,
    /// The generation of the key being made.
    pub generation: u64,
    /// The sender.
    pub member: MemberId,
    /// The sender's VSS commitment: t points, its secret's first.
    pub commitment: VerifiableSecretSharingCommitment,
    /// The proof of knowledge of the commitment's secret (R ‖ z).
    pub proof: frost_ed25519::Signature,
    /// The sender's one-time X25519 key, to seal round-2 packages to.
    pub seal_key: [u8; 32],
    /// The sender's ego-key signature (context `cyrcles/v1/dkg-round1`)
    /// over [`DkgRound1::signed_body`].
    pub signature: Signature,
}

impl fmt::Debug for DkgRound1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgRound1")
            .field("session", &self.session)
            .field("circle_id", &self.circle_id)
            .field("generation", &self.generation)
            .field("member", &self.member)
            .field(
                "coefficients",
                &self.commitment.serialize().map(|c| c.len()),
            )
            .finish_non_exhaustive()
    }
}

impl DkgRound1 {
    pub(super) fn signed(
        params: &DkgParams,
        member: MemberId,
        commitment: VerifiableSecretSharingCommitment,
        proof: frost_ed25519::Signature,
        seal_key: [u8; 32],
        key: &SecretKey,
    ) -> Self {
        let mut msg = Self {
            session: params.session,
            circle_id: params.circle_id,
            generation: params.generation,
            member,
            commitment,
            proof,
            seal_key,
            signature: Signature([0; 64]),
        };
        msg.sign(params, key);
        msg
    }

    /// The signed body: `{0: 1, 1: ego_id, 2: circle_id, 3: generation,
    /// 4: session, 5: t, 6: n, 7: member, 8: commitment, 9: proof,
    /// 10: seal key}`, with the ego id, t and n of `params`.
    pub fn signed_body(&self, params: &DkgParams) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(11);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(params.ego_id.as_bytes());
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        e.bytes(&self.session.0);
        e.key(5);
        e.uint(u64::from(params.threshold));
        e.key(6);
        e.uint(u64::from(params.count()));
        e.key(7);
        self.member.encode(&mut e);
        e.key(8);
        encode_commitment(&mut e, &self.commitment);
        e.key(9);
        e.bytes(&signature_bytes(&self.proof.serialize()));
        e.key(10);
        e.bytes(&self.seal_key);
        e.into_bytes()
    }

    /// Signs (or signs again, after a change) with the sender's ego key.
    pub fn sign(&mut self, params: &DkgParams, key: &SecretKey) {
        self.signature = key.sign(Context::DkgRound1, &self.signed_body(params));
    }

    /// Decodes a message from the wire, within [`MAX_DKG_ROUND1_SIZE`].
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_cbor(bytes, MAX_DKG_ROUND1_SIZE)
    }
}

/// A commitment of 2 to 64 points. frost's deserialization makes the
/// checks of [`point`] (a canonical, non-identity, prime-order point) on
/// each, so they are made once, not twice: a round-1 message is decoded by
/// every other participant.
fn commitment(d: &mut Decoder<'_>) -> Result<VerifiableSecretSharingCommitment, DecodeError> {
    let n = d.array("commitment", usize::from(MAX_MEMBERS))?;
    if n < 2 {
        return Err(DecodeError::OutOfRange { what: "commitment" });
    }
    let mut points = Vec::with_capacity(n);
    for _ in 0..n {
        points.push(d.bytes_fixed::<32>("coefficient commitment")?);
    }
    VerifiableSecretSharingCommitment::deserialize(points).map_err(|_| DecodeError::InvalidCrypto {
        what: "coefficient commitment",
    })
}

fn proof(d: &mut Decoder<'_>) -> Result<frost_ed25519::Signature, DecodeError> {
    let b = d.bytes_fixed::<64>("proof of knowledge")?;
    frost_ed25519::Signature::deserialize(&b).map_err(|_| DecodeError::InvalidCrypto {
        what: "proof of knowledge",
    })
}

impl Encode for DkgRound1 {
    fn encode(&self, e: &mut Encoder) {
        e.map(9);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        self.member.encode(e);
        e.key(5);
        encode_commitment(e, &self.commitment);
        e.key(6);
        e.bytes(&signature_bytes(&self.proof.serialize()));
        e.key(7);
        e.bytes(&self.seal_key);
        e.key(8);
        self.signature.encode(e);
    }
}

impl Decode for DkgRound1 {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("dkg round1")?;
        version(d, &mut m)?;
        m.expect_len(9)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 3)?;
        let generation = d.uint()?;
        m.key(d, 4)?;
        let member = MemberId::decode(d)?;
        m.key(d, 5)?;
        let commitment = commitment(d)?;
        m.key(d, 6)?;
        let proof = proof(d)?;
        m.key(d, 7)?;
        let seal_key = d.bytes_fixed::<32>("seal key")?;
        m.key(d, 8)?;
        let signature = Signature::decode(d)?;
        Ok(Self {
            session,
            circle_id,
            generation,
            member,
            commitment,
            proof,
            seal_key,
            signature,
        })
    }
}

/// Round 2, from one participant, relayed whole to every other:
/// `{0: 1, 1: session, 2: circle_id, 3: generation, 4: member,
/// 5: [[member, sealed], ...], 6: signature}`. Each item is the sender's
/// share for that member, sealed to the member's round-1 seal key.
#[derive(Clone, PartialEq, Eq)]
pub struct DkgRound2 {
    /// The run.
    pub session: SessionId,
    /// The circle.
    pub circle_id: CircleId,
    /// The generation of the key being made.
    pub generation: u64,
    /// The sender.
    pub member: MemberId,
    /// Recipient and sealed share, one per other member, ascending.
    pub items: Vec<(MemberId, Vec<u8>)>,
    /// The sender's ego-key signature (context `cyrcles/v1/dkg-round2`)
    /// over [`DkgRound2::signed_body`].
    pub signature: Signature,
}

impl fmt::Debug for DkgRound2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgRound2")
            .field("session", &self.session)
            .field("circle_id", &self.circle_id)
            .field("generation", &self.generation)
            .field("member", &self.member)
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

impl DkgRound2 {
    pub(super) fn signed(
        params: &DkgParams,
        member: MemberId,
        items: Vec<(MemberId, Vec<u8>)>,
        key: &SecretKey,
    ) -> Self {
        let mut msg = Self {
            session: params.session,
            circle_id: params.circle_id,
            generation: params.generation,
            member,
            items,
            signature: Signature([0; 64]),
        };
        msg.sign(params, key);
        msg
    }

    /// The signed body: `{0: 1, 1: ego_id, 2: circle_id, 3: generation,
    /// 4: session, 5: member, 6: items}`.
    pub fn signed_body(&self, params: &DkgParams) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(7);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(params.ego_id.as_bytes());
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        e.bytes(&self.session.0);
        e.key(5);
        self.member.encode(&mut e);
        e.key(6);
        encode_items(&mut e, &self.items);
        e.into_bytes()
    }

    /// Signs (or signs again, after a change) with the sender's ego key.
    pub fn sign(&mut self, params: &DkgParams, key: &SecretKey) {
        self.signature = key.sign(Context::DkgRound2, &self.signed_body(params));
    }

    /// Decodes a message from the wire, within [`MAX_DKG_ROUND2_SIZE`].
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_cbor(bytes, MAX_DKG_ROUND2_SIZE)
    }
}

fn encode_items(e: &mut Encoder, items: &[(MemberId, Vec<u8>)]) {
    e.array(items.len());
    for (m, b) in items {
        e.array(2);
        m.encode(e);
        e.bytes(b);
    }
}

impl Encode for DkgRound2 {
    fn encode(&self, e: &mut Encoder) {
        e.map(7);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        self.member.encode(e);
        e.key(5);
        encode_items(e, &self.items);
        e.key(6);
        self.signature.encode(e);
    }
}

impl Decode for DkgRound2 {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("dkg round2")?;
        version(d, &mut m)?;
        m.expect_len(7)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 3)?;
        let generation = d.uint()?;
        m.key(d, 4)?;
        let member = MemberId::decode(d)?;
        m.key(d, 5)?;
        let n = d.array("items", usize::from(MAX_MEMBERS - 1))?;
        if n == 0 {
            return Err(DecodeError::OutOfRange { what: "items" });
        }
        let mut items: Vec<(MemberId, Vec<u8>)> = Vec::with_capacity(n);
        for _ in 0..n {
            d.array_exact("item", 2)?;
            let to = MemberId::decode(d)?;
            if items.last().is_some_and(|(last, _)| *last >= to) {
                return Err(DecodeError::OutOfRange {
                    what: "items (must ascend)",
                });
            }
            let sealed = d.bytes_fixed::<SEALED_SHARE_LEN>("sealed share")?;
            items.push((to, sealed.to_vec()));
        }
        m.key(d, 6)?;
        let signature = Signature::decode(d)?;
        Ok(Self {
            session,
            circle_id,
            generation,
            member,
            items,
            signature,
        })
    }
}

/// The confirmation, from one participant to all others: `{0: 1,
/// 1: session, 2: circle_id, 3: generation, 4: member, 5: digest,
/// 6: group key, 7: signature}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgConfirm {
    /// The run.
    pub session: SessionId,
    /// The circle.
    pub circle_id: CircleId,
    /// The generation of the key made.
    pub generation: u64,
    /// The sender.
    pub member: MemberId,
    /// The sender's transcript digest.
    pub digest: [u8; 32],
    /// The group (circle) key the sender computed.
    pub group_key: PublicKey,
    /// The sender's ego-key signature (context `cyrcles/v1/dkg-confirm`)
    /// over [`DkgConfirm::signed_body`].
    pub signature: Signature,
}

impl DkgConfirm {
    pub(super) fn signed(
        params: &DkgParams,
        member: MemberId,
        digest: [u8; 32],
        group_key: PublicKey,
        key: &SecretKey,
    ) -> Self {
        let mut msg = Self {
            session: params.session,
            circle_id: params.circle_id,
            generation: params.generation,
            member,
            digest,
            group_key,
            signature: Signature([0; 64]),
        };
        msg.sign(params, key);
        msg
    }

    /// The signed body: `{0: 1, 1: ego_id, 2: circle_id, 3: generation,
    /// 4: session, 5: member, 6: digest, 7: group key}`.
    pub fn signed_body(&self, params: &DkgParams) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(8);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(params.ego_id.as_bytes());
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        e.bytes(&self.session.0);
        e.key(5);
        self.member.encode(&mut e);
        e.key(6);
        e.bytes(&self.digest);
        e.key(7);
        self.group_key.encode(&mut e);
        e.into_bytes()
    }

    /// Signs (or signs again, after a change) with the sender's ego key.
    pub fn sign(&mut self, params: &DkgParams, key: &SecretKey) {
        self.signature = key.sign(Context::DkgConfirm, &self.signed_body(params));
    }

    /// Decodes a message from the wire, within [`MAX_DKG_CONFIRM_SIZE`].
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_cbor(bytes, MAX_DKG_CONFIRM_SIZE)
    }
}

impl Encode for DkgConfirm {
    fn encode(&self, e: &mut Encoder) {
        e.map(8);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        self.member.encode(e);
        e.key(5);
        e.bytes(&self.digest);
        e.key(6);
        self.group_key.encode(e);
        e.key(7);
        self.signature.encode(e);
    }
}

impl Decode for DkgConfirm {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("dkg confirm")?;
        version(d, &mut m)?;
        m.expect_len(8)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 3)?;
        let generation = d.uint()?;
        m.key(d, 4)?;
        let member = MemberId::decode(d)?;
        m.key(d, 5)?;
        let digest = d.bytes_fixed::<32>("digest")?;
        m.key(d, 6)?;
        let group_key = PublicKey(point(d, "group key")?);
        m.key(d, 7)?;
        let signature = Signature::decode(d)?;
        Ok(Self {
            session,
            circle_id,
            generation,
            member,
            digest,
            group_key,
            signature,
        })
    }
}
