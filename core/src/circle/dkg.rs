//! Distributed key generation of a new circle key among its members
//! (design P6 in docs/circle-authority.md, protocol section 9.4), with
//! frost-ed25519's `keys::dkg` (Pedersen's DKG with proofs of knowledge),
//! relayed by the owner's agent, which must learn nothing and must not be
//! able to substitute or equivocate.
//!
//! ```text
//! each participant i (n of them)                        relay (owner's agent)
//!   DkgParticipant::start()  ── DkgRound1 (signed) ──▶  to every other
//!   add_round1() × (n−1)
//!   round2()                 ── DkgRound2 (signed, one item sealed
//!                               to each other member) ─▶ to every other
//!   add_round2() × (n−1)
//!   confirm()                ── DkgConfirm (signed transcript digest) ─▶
//!   add_confirm() × (n−1)
//!   finish() → (MemberShare, CirclePublic)
//! ```
//!
//! Invariants:
//! * every message is signed by its sender's ego key over its session,
//!   circle, generation and (for round 1) threshold and member count, so
//!   the relay can neither forge, substitute, nor replay one elsewhere;
//! * every round-1 commitment has exactly *t* coefficients;
//! * round-2 shares are sealed to the recipient's one-time key from its
//!   signed round-1 message, bound to the session and both members;
//! * [`DkgParticipant::finish`] hands out the share only once every other
//!   participant has confirmed the same transcript digest (every round-1
//!   message, in member order, and the group key): a relay that showed
//!   different round-1 messages to different members is caught as
//!   [`DkgError::Equivocation`] before anyone keeps a share.
//!
//! Until then the secret share lives only inside the state machine (frost's
//! secret packages and [`MemberShare`] zeroize themselves; `Debug` shows no
//! secret).

mod relay;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::traits::Identity;
use frost_ed25519::Identifier;
use frost_ed25519::keys::dkg::{part1, part2, part3, round1, round2};
use frost_ed25519::keys::{SecretShare, SigningShare, VerifiableSecretSharingCommitment};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use super::CircleError;
use super::dealer::{CirclePublic, MemberShare};
use super::messages::{
    CIRCLE_VERSION, CircleId, MAX_MEMBERS, MemberId, SessionId, commitment_points,
    encode_commitment,
};
use super::seal::{SealKey, seal};
use crate::cbor::Encoder;
use crate::id::EgoId;
use crate::keys::{Context, PublicKey, SecretKey, element_bytes, signature_bytes};

pub use relay::{
    DkgRelay, DkgStart, DkgStartBody, DkgStep, MAX_DKG_RELAY_SIZE, MAX_DKG_START_SIZE,
    MAX_RELAYED_MESSAGE,
};
pub use wire::{
    DkgConfirm, DkgRound1, DkgRound2, MAX_DKG_CONFIRM_SIZE, MAX_DKG_ROUND1_SIZE,
    MAX_DKG_ROUND2_SIZE, SEALED_SHARE_LEN,
};

/// Domain string of the transcript digest.
const TRANSCRIPT_DOMAIN: &[u8] = b"cyrcles/v1/dkg-transcript\0";

/// Why a DKG step was refused. Every variant about a message names the
/// member it claims to come from.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DkgError {
    /// Parameters out of range (2 ≤ t ≤ n ≤ 64, members 1..=n in order,
    /// valid and distinct ego keys, this member's own key).
    #[error("invalid DKG parameters: {0}")]
    Parameters(&'static str),
    /// A message from a member that is not a participant.
    #[error("member {0} is not a participant of this DKG")]
    NotAParticipant(MemberId),
    /// A second message from the same member in one round (or one claiming
    /// to come from this participant).
    #[error("member {0} already sent this round's message")]
    Duplicate(MemberId),
    /// A message for another session, circle or generation.
    #[error("member {member}'s message belongs to another session, circle or generation")]
    WrongSession {
        /// The claimed sender.
        member: MemberId,
    },
    /// The message's signature does not verify under the member's ego key.
    #[error("member {0}'s message is not signed by its ego key")]
    BadSignature(MemberId),
    /// A round-1 commitment with another number of coefficients than the
    /// threshold: the member tries to raise or lower it.
    #[error("member {member} committed to {found} coefficients, the threshold is {expected}")]
    WrongThreshold {
        /// The member.
        member: MemberId,
        /// Coefficients in its commitment.
        found: usize,
        /// The threshold.
        expected: usize,
    },
    /// A round-1 proof of knowledge that does not verify.
    #[error("member {0}'s proof of knowledge does not verify")]
    BadProof(MemberId),
    /// A round-2 share that does not match the sender's commitment.
    #[error("member {0}'s share does not match its commitment")]
    BadShare(MemberId),
    /// A round-2 bundle that does not address exactly the other members.
    #[error("member {0}'s round-2 bundle does not address every other member once")]
    Recipients(MemberId),
    /// A sealed round-2 package that does not open or does not hold a
    /// scalar (altered, redirected, replayed from another session), or a
    /// member's sealing key that cannot be sealed to.
    #[error("a sealed package from or to member {0} does not open")]
    Sealed(MemberId),
    /// A confirmation over another transcript or group key: the relay
    /// showed different round-1 messages to different members (or a member
    /// equivocated). No share is returned.
    #[error("member {member} confirmed another transcript: equivocation")]
    Equivocation {
        /// The member whose confirmation differs from this participant's.
        member: MemberId,
    },
    /// A step taken out of order.
    #[error("step out of order: {0}")]
    OutOfOrder(&'static str),
    /// Messages still missing from these members.
    #[error("waiting for members {0:?}")]
    Incomplete(Vec<MemberId>),
    /// The resulting share does not check out as a circle share.
    #[error("circle: {0}")]
    Circle(#[from] CircleError),
    /// An error reported by frost-ed25519.
    #[error("FROST: {0}")]
    Frost(frost_ed25519::Error),
}

/// Maps frost's errors, naming the culprit where frost does.
fn frost_error(e: frost_ed25519::Error) -> DkgError {
    match e {
        frost_ed25519::Error::InvalidProofOfKnowledge { culprit } => {
            match MemberId::from_frost(&culprit) {
                Some(m) => DkgError::BadProof(m),
                None => DkgError::Frost(e),
            }
        }
        frost_ed25519::Error::InvalidSecretShare {
            culprit: Some(culprit),
        } => match MemberId::from_frost(&culprit) {
            Some(m) => DkgError::BadShare(m),
            None => DkgError::Frost(e),
        },
        e => DkgError::Frost(e),
    }
}

/// What every participant of one DKG agrees on before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgParams {
    /// The ego whose circle key this is.
    pub ego_id: EgoId,
    /// The circle.
    pub circle_id: CircleId,
    /// The chain index of the link that will introduce the key.
    pub generation: u64,
    /// This run's random id.
    pub session: SessionId,
    /// Signers needed, 2..=n.
    pub threshold: u16,
    /// The participants: members 1..=n in order, each with the ego key
    /// that signs its messages.
    pub participants: Vec<(MemberId, PublicKey)>,
}

impl DkgParams {
    /// Checks the ranges: 2 ≤ t ≤ n ≤ 64, members exactly 1..=n ascending,
    /// every ego key valid and distinct.
    pub fn check(&self) -> Result<(), DkgError> {
        let n = self.participants.len();
        if n > usize::from(MAX_MEMBERS) {
            return Err(DkgError::Parameters("more than 64 participants"));
        }
        if self.threshold < 2 {
            return Err(DkgError::Parameters("threshold below 2"));
        }
        if usize::from(self.threshold) > n {
            return Err(DkgError::Parameters("threshold above participant count"));
        }
        let mut keys = BTreeSet::new();
        for (i, (m, k)) in self.participants.iter().enumerate() {
            if usize::from(m.get()) != i + 1 {
                return Err(DkgError::Parameters("participants must be members 1..=n"));
            }
            if k.check().is_err() {
                return Err(DkgError::Parameters("invalid ego key"));
            }
            if !keys.insert(*k) {
                return Err(DkgError::Parameters("two participants share an ego key"));
            }
        }
        Ok(())
    }

    /// n, the participant count (at most 64 once checked).
    pub fn count(&self) -> u16 {
        u16::try_from(self.participants.len()).unwrap_or(u16::MAX)
    }

    /// The members, ascending.
    pub fn members(&self) -> Vec<MemberId> {
        self.participants.iter().map(|(m, _)| *m).collect()
    }

    /// The ego key of member `m`.
    pub fn key_of(&self, m: MemberId) -> Option<&PublicKey> {
        self.participants
            .iter()
            .find(|(p, _)| *p == m)
            .map(|(_, k)| k)
    }

    /// Whether a message's session, circle and generation are this run's.
    fn same_run(&self, session: SessionId, circle_id: CircleId, generation: u64) -> bool {
        session == self.session && circle_id == self.circle_id && generation == self.generation
    }

    /// The start of every signed body: `{0: 1, 1: ego_id, 2: circle_id,
    /// 3: generation, 4: session, ...` (the caller announces the map size).
    fn encode_run(&self, e: &mut Encoder) {
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(self.ego_id.as_bytes());
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        e.bytes(&self.session.0);
    }
}

/// What a sealed round-2 package is bound to (the additional data of
/// [`seal`]): `"cyrcles/v1/dkg-round2" ‖ 0x00 ‖ session ‖ from (u16 BE) ‖
/// to (u16 BE)`.
pub fn dkg_aad(session: SessionId, from: MemberId, to: MemberId) -> Vec<u8> {
    let mut aad = b"cyrcles/v1/dkg-round2\0".to_vec();
    aad.extend_from_slice(&session.0);
    aad.extend_from_slice(&from.get().to_be_bytes());
    aad.extend_from_slice(&to.get().to_be_bytes());
    aad
}

/// The transcript digest every participant confirms: SHA-256 of
/// `"cyrcles/v1/dkg-transcript" ‖ 0x00 ‖ encode(transcript)` (protocol
/// section 9.4). `round1` must hold every participant's round-1 message in
/// member order.
fn transcript_digest(params: &DkgParams, round1: &[&DkgRound1], group_key: &PublicKey) -> [u8; 32] {
    let mut e = Encoder::new();
    e.map(9);
    params.encode_run(&mut e);
    e.key(5);
    e.uint(u64::from(params.threshold));
    e.key(6);
    e.array(params.participants.len());
    for (m, k) in &params.participants {
        e.array(2);
        m.encode(&mut e);
        k.encode(&mut e);
    }
    e.key(7);
    e.array(round1.len());
    for r in round1 {
        e.array(4);
        r.member.encode(&mut e);
        encode_commitment(&mut e, &r.commitment);
        e.bytes(&signature_bytes(&r.proof.serialize()));
        e.bytes(&r.seal_key);
    }
    e.key(8);
    group_key.encode(&mut e);
    let mut h = Sha256::new();
    h.update(TRANSCRIPT_DOMAIN);
    h.update(e.into_bytes());
    h.finalize().into()
}

/// The group commitment: the coefficient-wise sum of every participant's
/// commitment. Its first point is the circle key; member i's share is
/// checked against it exactly as a dealt share is.
fn group_commitment<'a>(
    commitments: impl Iterator<Item = &'a VerifiableSecretSharingCommitment>,
    threshold: usize,
) -> Result<VerifiableSecretSharingCommitment, DkgError> {
    let mut sums = vec![EdwardsPoint::identity(); threshold];
    for c in commitments {
        let points = commitment_points(c);
        if points.len() != threshold {
            return Err(DkgError::Parameters("commitment length"));
        }
        for (sum, p) in sums.iter_mut().zip(points) {
            let q = CompressedEdwardsY(p)
                .decompress()
                .ok_or(DkgError::Parameters("commitment point"))?;
            *sum = [*sum, q].iter().sum();
        }
    }
    // A sum that is the identity (only possible for a member who chose its
    // higher coefficients to cancel the others') is refused here.
    VerifiableSecretSharingCommitment::deserialize(sums.iter().map(|s| s.compress().to_bytes()))
        .map_err(frost_error)
}

/// The public side of the circle a DKG makes, from every participant's
/// round-1 message (in member order): the group commitment and the
/// verifying shares it gives, as for a dealt key. The owner's agent, which
/// relays but does not take part, keeps it to check the members'
/// acknowledgements and to coordinate the new circle's signing sessions.
/// It checks only what it needs: each message's run, member and
/// commitment length (the participants check the signatures and proofs,
/// and confirm the same transcript and group key before keeping a share,
/// whose acknowledgement is then checked against this).
pub fn circle_public_from_round1(
    start: &DkgStartBody,
    round1: &[DkgRound1],
) -> Result<CirclePublic, DkgError> {
    let members: Vec<MemberId> = start.participants.iter().map(|(m, _)| *m).collect();
    if round1.len() != members.len() {
        return Err(DkgError::Incomplete(
            members
                .iter()
                .filter(|m| !round1.iter().any(|r| r.member == **m))
                .copied()
                .collect(),
        ));
    }
    for (r, m) in round1.iter().zip(&members) {
        if r.member != *m {
            return Err(DkgError::Parameters(
                "round-1 messages must be in member order",
            ));
        }
        if (r.session, r.circle_id, r.generation)
            != (start.session, start.circle_id, start.generation)
        {
            return Err(DkgError::WrongSession { member: r.member });
        }
    }
    let commitment = group_commitment(
        round1.iter().map(|r| &r.commitment),
        usize::from(start.threshold),
    )?;
    Ok(CirclePublic::from_commitment(&members, &commitment)?)
}

enum Phase {
    /// Waiting for the others' round-1 messages.
    Round1(round1::SecretPackage),
    /// Round 2 sent; waiting for the others' round-2 packages.
    Round2(round2::SecretPackage),
    /// Share computed and confirmation sent; waiting for the others'.
    Confirm {
        share: Box<MemberShare>,
        digest: [u8; 32],
    },
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Round1(_) => "round1",
            Phase::Round2(_) => "round2",
            Phase::Confirm { .. } => "confirm",
        }
    }
}

/// One participant's side of a DKG. Holds its secret polynomial, then its
/// share, until every other participant confirmed the same transcript.
pub struct DkgParticipant {
    params: DkgParams,
    me: MemberId,
    seal: SealKey,
    own: DkgRound1,
    round1: BTreeMap<MemberId, DkgRound1>,
    round2: BTreeMap<Identifier, round2::Package>,
    confirms: BTreeMap<MemberId, DkgConfirm>,
    equivocation: Option<MemberId>,
    phase: Phase,
}

impl fmt::Debug for DkgParticipant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgParticipant")
            .field("params", &self.params)
            .field("member", &self.me)
            .field("phase", &self.phase.name())
            .field("round1_from", &self.round1.keys().collect::<Vec<_>>())
            .field("round2_count", &self.round2.len())
            .field("confirms_from", &self.confirms.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl DkgParticipant {
    /// Starts member `me`'s part: checks the parameters and that `ego_key`
    /// is `me`'s, draws the secret polynomial and a one-time sealing key,
    /// and returns the signed round-1 message to publish.
    pub fn start<R: RngCore + CryptoRng>(
        params: DkgParams,
        me: MemberId,
        ego_key: &SecretKey,
        rng: &mut R,
    ) -> Result<(Self, DkgRound1), DkgError> {
        params.check()?;
        let mine = params.key_of(me).ok_or(DkgError::NotAParticipant(me))?;
        if ego_key.public() != *mine {
            return Err(DkgError::Parameters("the ego key is not this member's"));
        }
        let (secret, package) =
            part1(me.frost(), params.count(), params.threshold, &mut *rng).map_err(frost_error)?;
        let seal = SealKey::generate(rng);
        let own = DkgRound1::signed(
            &params,
            me,
            package.commitment().clone(),
            *package.proof_of_knowledge(),
            seal.public(),
            ego_key,
        );
        let participant = Self {
            params,
            me,
            seal,
            own: own.clone(),
            round1: BTreeMap::new(),
            round2: BTreeMap::new(),
            confirms: BTreeMap::new(),
            equivocation: None,
            phase: Phase::Round1(secret),
        };
        Ok((participant, own))
    }

    /// This participant.
    pub fn member(&self) -> MemberId {
        self.me
    }

    /// The run's parameters.
    pub fn params(&self) -> &DkgParams {
        &self.params
    }

    /// The members whose message for the current step is still missing.
    pub fn missing(&self) -> Vec<MemberId> {
        let others = self.params.members().into_iter().filter(|m| *m != self.me);
        match &self.phase {
            Phase::Round1(_) => others.filter(|m| !self.round1.contains_key(m)).collect(),
            Phase::Round2(_) => others
                .filter(|m| !self.round2.contains_key(&m.frost()))
                .collect(),
            Phase::Confirm { .. } => others.filter(|m| !self.confirms.contains_key(m)).collect(),
        }
    }

    /// The transcript digest, once [`DkgParticipant::confirm`] computed it.
    pub fn transcript_digest(&self) -> Option<[u8; 32]> {
        match &self.phase {
            Phase::Confirm { digest, .. } => Some(*digest),
            _ => None,
        }
    }

    /// The sender's ego key, after the membership and run checks.
    fn sender(
        &self,
        member: MemberId,
        session: SessionId,
        circle_id: CircleId,
        generation: u64,
    ) -> Result<PublicKey, DkgError> {
        let key = *self
            .params
            .key_of(member)
            .ok_or(DkgError::NotAParticipant(member))?;
        if !self.params.same_run(session, circle_id, generation) {
            return Err(DkgError::WrongSession { member });
        }
        Ok(key)
    }

    /// Takes another participant's round-1 message. Checks, in order: the
    /// sender is a participant, the run is this one, the signature, that it
    /// is the first from that member, and that the commitment has exactly
    /// t coefficients. (The proof of knowledge is checked by
    /// [`DkgParticipant::round2`].)
    pub fn add_round1(&mut self, msg: DkgRound1) -> Result<(), DkgError> {
        let from = msg.member;
        let key = self.sender(from, msg.session, msg.circle_id, msg.generation)?;
        key.verify(
            Context::DkgRound1,
            &msg.signed_body(&self.params),
            &msg.signature,
        )
        .map_err(|_| DkgError::BadSignature(from))?;
        if from == self.me || self.round1.contains_key(&from) {
            return Err(DkgError::Duplicate(from));
        }
        if !matches!(self.phase, Phase::Round1(_)) {
            return Err(DkgError::OutOfOrder("round-1 message after round 2"));
        }
        let found = commitment_points(&msg.commitment).len();
        let expected = usize::from(self.params.threshold);
        if found != expected {
            return Err(DkgError::WrongThreshold {
                member: from,
                found,
                expected,
            });
        }
        self.round1.insert(from, msg);
        Ok(())
    }

    fn round1_packages(&self) -> BTreeMap<Identifier, round1::Package> {
        self.round1
            .iter()
            .map(|(m, r)| {
                (
                    m.frost(),
                    round1::Package::new(r.commitment.clone(), r.proof),
                )
            })
            .collect()
    }

    /// Once every other round-1 message is in: verifies every proof of
    /// knowledge (frost part 2), and returns the signed round-2 bundle, one
    /// share sealed to each other member.
    pub fn round2<R: RngCore + CryptoRng>(
        &mut self,
        ego_key: &SecretKey,
        rng: &mut R,
    ) -> Result<DkgRound2, DkgError> {
        let Phase::Round1(secret) = &self.phase else {
            return Err(DkgError::OutOfOrder("round 2 already sent"));
        };
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(DkgError::Incomplete(missing));
        }
        let (secret2, out) = part2(secret.clone(), &self.round1_packages()).map_err(frost_error)?;
        let mut items = Vec::with_capacity(out.len());
        for (id, package) in &out {
            let to = MemberId::from_frost(id).ok_or(DkgError::Parameters("member id"))?;
            let r1 = self
                .round1
                .get(&to)
                .ok_or(DkgError::Parameters("member id"))?;
            let plain = Zeroizing::new(package.signing_share().serialize());
            let sealed = seal(
                &r1.seal_key,
                &dkg_aad(self.params.session, self.me, to),
                &plain,
                rng,
            )
            .map_err(|_| DkgError::Sealed(to))?;
            items.push((to, sealed));
        }
        self.phase = Phase::Round2(secret2);
        Ok(DkgRound2::signed(&self.params, self.me, items, ego_key))
    }

    /// Takes another participant's round-2 bundle (it may arrive before
    /// this participant sent its own). Checks, in order: sender, run,
    /// signature, first from that member, that the bundle addresses every
    /// other member exactly once, and opens the item sealed to this member.
    pub fn add_round2(&mut self, msg: DkgRound2) -> Result<(), DkgError> {
        let from = msg.member;
        let key = self.sender(from, msg.session, msg.circle_id, msg.generation)?;
        key.verify(
            Context::DkgRound2,
            &msg.signed_body(&self.params),
            &msg.signature,
        )
        .map_err(|_| DkgError::BadSignature(from))?;
        if from == self.me || self.round2.contains_key(&from.frost()) {
            return Err(DkgError::Duplicate(from));
        }
        if matches!(self.phase, Phase::Confirm { .. }) {
            return Err(DkgError::OutOfOrder("round-2 message after the share"));
        }
        let expected: Vec<MemberId> = self
            .params
            .members()
            .into_iter()
            .filter(|m| *m != from)
            .collect();
        let addressed: Vec<MemberId> = msg.items.iter().map(|(m, _)| *m).collect();
        if addressed != expected {
            return Err(DkgError::Recipients(from));
        }
        let sealed = msg
            .items
            .iter()
            .find(|(to, _)| *to == self.me)
            .map(|(_, s)| s)
            .ok_or(DkgError::Recipients(from))?;
        let plain = self
            .seal
            .open(&dkg_aad(self.params.session, from, self.me), sealed)
            .map_err(|_| DkgError::Sealed(from))?;
        let share = SigningShare::deserialize(&plain).map_err(|_| DkgError::Sealed(from))?;
        self.round2
            .insert(from.frost(), round2::Package::new(share));
        Ok(())
    }

    /// Once every other round-2 package is in: checks each against its
    /// sender's commitment and computes the share (frost part 3), the group
    /// commitment and the transcript digest, and returns the signed
    /// confirmation. The share is not released yet.
    pub fn confirm(&mut self, ego_key: &SecretKey) -> Result<DkgConfirm, DkgError> {
        if let Some(member) = self.equivocation {
            return Err(DkgError::Equivocation { member });
        }
        if let Phase::Confirm { share, digest } = &self.phase {
            return Ok(DkgConfirm::signed(
                &self.params,
                self.me,
                *digest,
                share.group_key(),
                ego_key,
            ));
        }
        let Phase::Round2(secret2) = &self.phase else {
            return Err(DkgError::OutOfOrder("round 2 not sent yet"));
        };
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(DkgError::Incomplete(missing));
        }
        let (key_package, public_package) =
            part3(secret2, &self.round1_packages(), &self.round2).map_err(frost_error)?;
        let threshold = usize::from(self.params.threshold);
        let all: Vec<&DkgRound1> = self.all_round1();
        let commitment = group_commitment(all.iter().map(|r| &r.commitment), threshold)?;
        let group_key = PublicKey(element_bytes(&public_package.verifying_key().serialize()));
        // The public side checks that the group commitment's first point
        // is frost's group key; the share is then checked against the
        // group commitment as a dealt share is.
        let public = CirclePublic::from_dkg(&self.params.members(), &commitment, public_package)?;
        let secret = SecretShare::new(self.me.frost(), *key_package.signing_share(), commitment);
        let share = MemberShare::from_dkg(
            self.params.circle_id,
            self.params.ego_id,
            self.params.generation,
            self.me,
            secret,
            public,
        )?;
        let digest = transcript_digest(&self.params, &all, &group_key);
        self.phase = Phase::Confirm {
            share: Box::new(share),
            digest,
        };
        if let Some(m) = self
            .confirms
            .values()
            .find(|c| c.digest != digest || c.group_key != group_key)
            .map(|c| c.member)
        {
            self.equivocation = Some(m);
            return Err(DkgError::Equivocation { member: m });
        }
        Ok(DkgConfirm::signed(
            &self.params,
            self.me,
            digest,
            group_key,
            ego_key,
        ))
    }

    fn all_round1(&self) -> Vec<&DkgRound1> {
        let mut all: Vec<&DkgRound1> = self.round1.values().collect();
        let at = all.partition_point(|r| r.member < self.me);
        all.insert(at, &self.own);
        all
    }

    /// Takes another participant's confirmation (it may arrive before this
    /// participant's own). Checks sender, run, signature, first from that
    /// member; once this participant's digest is known, a confirmation over
    /// another digest or group key is [`DkgError::Equivocation`], and the
    /// run can no longer finish.
    pub fn add_confirm(&mut self, msg: DkgConfirm) -> Result<(), DkgError> {
        let from = msg.member;
        let key = self.sender(from, msg.session, msg.circle_id, msg.generation)?;
        key.verify(
            Context::DkgConfirm,
            &msg.signed_body(&self.params),
            &msg.signature,
        )
        .map_err(|_| DkgError::BadSignature(from))?;
        if from == self.me || self.confirms.contains_key(&from) {
            return Err(DkgError::Duplicate(from));
        }
        if let Phase::Confirm { share, digest } = &self.phase
            && (msg.digest != *digest || msg.group_key != share.group_key())
        {
            self.equivocation = Some(from);
            return Err(DkgError::Equivocation { member: from });
        }
        self.confirms.insert(from, msg);
        Ok(())
    }

    /// The share and the circle's public side, once every other
    /// participant confirmed this participant's transcript digest.
    pub fn finish(&self) -> Result<(MemberShare, CirclePublic), DkgError> {
        if let Some(member) = self.equivocation {
            return Err(DkgError::Equivocation { member });
        }
        let Phase::Confirm { share, .. } = &self.phase else {
            return Err(DkgError::OutOfOrder("no share before the confirmation"));
        };
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(DkgError::Incomplete(missing));
        }
        let share: MemberShare = (**share).clone();
        let public = share.public().clone();
        Ok((share, public))
    }
}
