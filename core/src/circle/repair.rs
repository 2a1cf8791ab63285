//! Share repair (flow 7 of the design), with frost's repairable threshold
//! scheme: a threshold of helpers rebuild a member's lost share; the deltas
//! each helper sends are random masks, so no helper and not the target
//! learns any other member's share.
//!
//! ```text
//! each helper h                                  target
//!   RepairHelper::new(share, request)
//!   deltas()        ── RepairDelta(h → h') ──▶   (to every helper h')
//!   add_delta()  × helpers
//!   sigma()         ── RepairSigma ─────────▶    RepairTarget::add_sigma() × helpers
//!                                                finish() → MemberShare
//! ```
//!
//! The target checks the rebuilt share against the dealer's VSS commitment,
//! which every helper sends and which must agree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use frost_ed25519::keys::repairable::{
    Delta, Sigma, repair_share_part1, repair_share_part2, repair_share_part3,
};
use frost_ed25519::keys::{SecretShare, VerifiableSecretSharingCommitment};
use frost_ed25519::{Ed25519Sha512, Identifier};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::CircleError;
use super::dealer::{CirclePublic, MemberShare};
use super::messages::{
    CIRCLE_VERSION, CircleId, MemberId, SessionId, commitment, encode_commitment, encode_members,
    members, scalar, scalar_bytes, version,
};
use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;

fn check_request(share: &MemberShare, req: &RepairRequest) -> Result<(), CircleError> {
    if req.circle_id != share.circle_id() || req.generation != share.generation() {
        return Err(CircleError::WrongSession);
    }
    let public = share.public();
    if !public.is_member(req.target) {
        return Err(CircleError::NotAMember(req.target));
    }
    if let Some(h) = req.helpers.iter().find(|h| !public.is_member(**h)) {
        return Err(CircleError::NotAMember(*h));
    }
    let unique: BTreeSet<MemberId> = req.helpers.iter().copied().collect();
    if unique.len() != req.helpers.len() || unique.contains(&req.target) {
        return Err(CircleError::Parameters(
            "helpers must be distinct and exclude the target",
        ));
    }
    if req.helpers.len() < public.threshold() {
        return Err(CircleError::BelowThreshold {
            have: req.helpers.len(),
            need: public.threshold(),
        });
    }
    Ok(())
}

/// One helper's side of a repair.
pub struct RepairHelper {
    request: RepairRequest,
    share: MemberShare,
    received: BTreeMap<MemberId, Delta>,
}

impl std::fmt::Debug for RepairHelper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepairHelper")
            .field("request", &self.request)
            .field("share", &self.share)
            .field("received_from", &self.received.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RepairHelper {
    /// Starts helping with `request`, which must name this member as a
    /// helper and a target in the same circle.
    pub fn new(share: MemberShare, request: RepairRequest) -> Result<Self, CircleError> {
        check_request(&share, &request)?;
        if !request.helpers.contains(&share.member()) {
            return Err(CircleError::NotAMember(share.member()));
        }
        Ok(Self {
            request,
            share,
            received: BTreeMap::new(),
        })
    }

    /// Step 1: the deltas to send, one to each helper (this one included).
    pub fn deltas<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
    ) -> Result<Vec<RepairDelta>, CircleError> {
        let helpers: Vec<Identifier> = self.request.helpers.iter().map(|m| m.frost()).collect();
        let out = repair_share_part1::<Ed25519Sha512, R>(
            &helpers,
            self.share.key_package(),
            rng,
            self.request.target.frost(),
        )?;
        out.iter()
            .map(|(id, delta)| {
                let to = MemberId::from_frost(id).ok_or(CircleError::Parameters("helper id"))?;
                Ok(RepairDelta {
                    session: self.request.session,
                    from: self.share.member(),
                    to,
                    delta: *delta,
                })
            })
            .collect()
    }

    /// The member whose share is rebuilt.
    pub fn target(&self) -> MemberId {
        self.request.target
    }

    /// Takes a delta addressed to this helper.
    pub fn add_delta(&mut self, d: RepairDelta) -> Result<(), CircleError> {
        if d.session != self.request.session || d.to != self.share.member() {
            return Err(CircleError::WrongSession);
        }
        if !self.request.helpers.contains(&d.from) {
            return Err(CircleError::NotAMember(d.from));
        }
        if self.received.contains_key(&d.from) {
            return Err(CircleError::Duplicate(d.from));
        }
        self.received.insert(d.from, d.delta);
        Ok(())
    }

    /// Step 2: once every helper's delta is in, the sigma for the target.
    pub fn sigma(&self) -> Result<RepairSigma, CircleError> {
        let missing: Vec<MemberId> = self
            .request
            .helpers
            .iter()
            .filter(|h| !self.received.contains_key(h))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(CircleError::Incomplete(missing));
        }
        let deltas: Vec<Delta> = self.received.values().copied().collect();
        Ok(RepairSigma {
            session: self.request.session,
            from: self.share.member(),
            sigma: repair_share_part2(&deltas),
            circle_id: self.share.circle_id(),
            ego_id: self.share.ego_id(),
            generation: self.share.generation(),
            members: self.share.members().to_vec(),
            commitment: self.share.commitment().clone(),
        })
    }
}

/// The side of the member whose share is lost.
#[derive(Debug)]
pub struct RepairTarget {
    request: RepairRequest,
    sigmas: BTreeMap<MemberId, RepairSigma>,
}

impl RepairTarget {
    /// Waits for the sigmas of `request`'s helpers.
    pub fn new(request: RepairRequest) -> Self {
        Self {
            request,
            sigmas: BTreeMap::new(),
        }
    }

    /// Takes one helper's sigma; every helper must send the same circle
    /// data.
    pub fn add_sigma(&mut self, s: RepairSigma) -> Result<(), CircleError> {
        if s.session != self.request.session
            || s.circle_id != self.request.circle_id
            || s.generation != self.request.generation
        {
            return Err(CircleError::WrongSession);
        }
        if !self.request.helpers.contains(&s.from) {
            return Err(CircleError::NotAMember(s.from));
        }
        if self.sigmas.contains_key(&s.from) {
            return Err(CircleError::Duplicate(s.from));
        }
        if let Some(first) = self.sigmas.values().next()
            && (first.members != s.members
                || first.commitment != s.commitment
                || first.ego_id != s.ego_id)
        {
            return Err(CircleError::Inconsistent);
        }
        self.sigmas.insert(s.from, s);
        Ok(())
    }

    /// Rebuilds the share and checks it against the dealer's commitment.
    pub fn finish(&self) -> Result<MemberShare, CircleError> {
        let missing: Vec<MemberId> = self
            .request
            .helpers
            .iter()
            .filter(|h| !self.sigmas.contains_key(h))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(CircleError::Incomplete(missing));
        }
        let Some(first) = self.sigmas.values().next() else {
            return Err(CircleError::Incomplete(self.request.helpers.clone()));
        };
        let public = CirclePublic::from_commitment(&first.members, &first.commitment)?;
        let sigmas: Vec<Sigma> = self.sigmas.values().map(|s| s.sigma).collect();
        let key = repair_share_part3(&sigmas, self.request.target.frost(), &public.package)?;
        let secret = SecretShare::new(
            self.request.target.frost(),
            *key.signing_share(),
            first.commitment.clone(),
        );
        // Accepting checks the rebuilt share against the commitment: a
        // helper that sent a wrong sigma makes this fail.
        MemberShare::from_parts(
            first.circle_id,
            first.ego_id,
            first.generation,
            first.members.clone(),
            self.request.target,
            secret,
        )
    }
}

/// What a sealed repair item is bound to (the additional data of
/// [`super::seal::seal`]): the step (`b"delta"` or `b"sigma"`), the
/// session and both members.
pub fn repair_aad(step: &[u8], session: SessionId, from: MemberId, to: MemberId) -> Vec<u8> {
    let mut aad = b"cyrcles/v1/repair\0".to_vec();
    aad.extend_from_slice(step);
    aad.push(0);
    aad.extend_from_slice(&session.0);
    aad.extend_from_slice(&from.get().to_be_bytes());
    aad.extend_from_slice(&to.get().to_be_bytes());
    aad
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
