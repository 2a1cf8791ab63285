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

use frost_ed25519::keys::SecretShare;
use frost_ed25519::keys::repairable::{
    Delta, Sigma, repair_share_part1, repair_share_part2, repair_share_part3,
};
use frost_ed25519::{Ed25519Sha512, Identifier};
use rand_core::{CryptoRng, RngCore};

use super::CircleError;
use super::dealer::{CirclePublic, MemberShare};
use super::messages::{MemberId, RepairDelta, RepairRequest, RepairSigma, SessionId};

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
