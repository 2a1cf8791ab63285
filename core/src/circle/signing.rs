//! A FROST signing session (flows 3 to 6 of the design).
//!
//! ```text
//! participant                         coordinator
//!   commit()      ── Round1 ──▶        add_commitments()   (≥ threshold)
//!                 ◀─ SigningRequest ── request()
//!   sign()        ── Round2 ──▶        add_share()         (every signer)
//!                                      aggregate()  → Ed25519 signature
//! ```
//!
//! Nonces are single-use: [`SignerNonces::sign`] consumes them. The
//! coordinator verifies every share as it aggregates and names the members
//! whose shares are invalid; the final signature is checked with
//! `ed25519-dalek`'s `verify_strict` under the circle key before it is
//! returned.

use std::collections::BTreeMap;
use std::fmt;

use frost_ed25519::round1::{NonceCommitment, SigningCommitments, SigningNonces};
use frost_ed25519::round2::SignatureShare;
use frost_ed25519::{CheaterDetection, Identifier, SigningPackage};
use rand_core::{CryptoRng, RngCore};

use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::keys::{Signature, element_bytes, signature_bytes};

use super::CircleError;
use super::dealer::{CirclePublic, MemberShare};
use super::messages::{
    CIRCLE_VERSION, MAX_MEMBERS, MAX_SIGNING_MESSAGE, MemberId, SessionId, point, scalar,
    scalar_bytes, version,
};

/// A participant's secret nonces for one session. Used once, zeroized on
/// drop.
pub struct SignerNonces {
    session: SessionId,
    member: MemberId,
    nonces: SigningNonces,
}

impl fmt::Debug for SignerNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerNonces")
            .field("session", &self.session)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// Round 1 for a participant: fresh nonces and their commitments.
pub fn commit<R: RngCore + CryptoRng>(
    share: &MemberShare,
    session: SessionId,
    rng: &mut R,
) -> (SignerNonces, Round1) {
    let (nonces, commitments) =
        frost_ed25519::round1::commit(share.key_package().signing_share(), rng);
    let member = share.member();
    (
        SignerNonces {
            session,
            member,
            nonces,
        },
        Round1 {
            session,
            member,
            commitments,
        },
    )
}

fn package(message: &[u8], commitments: &BTreeMap<MemberId, SigningCommitments>) -> SigningPackage {
    let by_id: BTreeMap<Identifier, SigningCommitments> =
        commitments.iter().map(|(m, c)| (m.frost(), *c)).collect();
    SigningPackage::new(by_id, message)
}

impl SignerNonces {
    /// Round 2 for a participant: checks the request (session, signers are
    /// members, at least the threshold, this member's commitment unchanged)
    /// and returns the signature share. The caller must have checked that
    /// `request.message` is something it agrees to sign.
    pub fn sign(
        self,
        share: &MemberShare,
        request: &SigningRequest,
    ) -> Result<Round2, CircleError> {
        if request.session != self.session || share.member() != self.member {
            return Err(CircleError::WrongSession);
        }
        check_message(&request.message)?;
        let public = share.public();
        if let Some(stranger) = request.commitments.keys().find(|m| !public.is_member(**m)) {
            return Err(CircleError::NotAMember(*stranger));
        }
        if request.commitments.len() < public.threshold() {
            return Err(CircleError::BelowThreshold {
                have: request.commitments.len(),
                need: public.threshold(),
            });
        }
        let pkg = package(&request.message, &request.commitments);
        let share_out = frost_ed25519::round2::sign(&pkg, &self.nonces, share.key_package())?;
        Ok(Round2 {
            session: self.session,
            member: self.member,
            share: share_out,
        })
    }
}

fn check_message(message: &[u8]) -> Result<(), CircleError> {
    if message.is_empty() || message.len() > MAX_SIGNING_MESSAGE {
        return Err(CircleError::Message);
    }
    Ok(())
}

/// The coordinator's side of one session.
#[derive(Debug)]
pub struct Coordinator {
    public: CirclePublic,
    session: SessionId,
    message: Vec<u8>,
    commitments: BTreeMap<MemberId, SigningCommitments>,
    request: Option<SigningRequest>,
    shares: BTreeMap<MemberId, SignatureShare>,
}

impl Coordinator {
    /// A session to sign `message` (the exact signed bytes: context ‖ 0x00
    /// ‖ body) with the circle described by `public`.
    pub fn new(
        public: CirclePublic,
        session: SessionId,
        message: Vec<u8>,
    ) -> Result<Self, CircleError> {
        check_message(&message)?;
        Ok(Self {
            public,
            session,
            message,
            commitments: BTreeMap::new(),
            request: None,
            shares: BTreeMap::new(),
        })
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Takes a member's round-1 commitments.
    pub fn add_commitments(&mut self, r1: Round1) -> Result<(), CircleError> {
        if r1.session != self.session {
            return Err(CircleError::WrongSession);
        }
        if self.request.is_some() {
            return Err(CircleError::OutOfOrder("signers already chosen"));
        }
        if !self.public.is_member(r1.member) {
            return Err(CircleError::NotAMember(r1.member));
        }
        if self.commitments.contains_key(&r1.member) {
            return Err(CircleError::Duplicate(r1.member));
        }
        self.commitments.insert(r1.member, r1.commitments);
        Ok(())
    }

    /// Whether enough members have committed to choose the signers.
    pub fn has_quorum(&self) -> bool {
        self.commitments.len() >= self.public.threshold()
    }

    /// Chooses every member that committed as a signer and returns the
    /// round-2 request to send to each of them.
    pub fn request(&mut self) -> Result<SigningRequest, CircleError> {
        if let Some(r) = &self.request {
            return Ok(r.clone());
        }
        if !self.has_quorum() {
            return Err(CircleError::BelowThreshold {
                have: self.commitments.len(),
                need: self.public.threshold(),
            });
        }
        let request = SigningRequest {
            session: self.session,
            message: self.message.clone(),
            commitments: self.commitments.clone(),
        };
        self.request = Some(request.clone());
        Ok(request)
    }

    /// Takes a signer's round-2 share.
    pub fn add_share(&mut self, r2: Round2) -> Result<(), CircleError> {
        if r2.session != self.session {
            return Err(CircleError::WrongSession);
        }
        let Some(request) = &self.request else {
            return Err(CircleError::OutOfOrder("no request sent yet"));
        };
        if !request.commitments.contains_key(&r2.member) {
            return Err(CircleError::NotAMember(r2.member));
        }
        if self.shares.contains_key(&r2.member) {
            return Err(CircleError::Duplicate(r2.member));
        }
        self.shares.insert(r2.member, r2.share);
        Ok(())
    }

    /// Signers whose shares have not arrived.
    pub fn missing(&self) -> Vec<MemberId> {
        self.request
            .as_ref()
            .map(|r| {
                r.commitments
                    .keys()
                    .filter(|m| !self.shares.contains_key(m))
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Aggregates the shares into the circle's signature, naming every
    /// member whose share is invalid.
    pub fn aggregate(&self) -> Result<Signature, CircleError> {
        let Some(request) = &self.request else {
            return Err(CircleError::OutOfOrder("no request sent yet"));
        };
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(CircleError::Incomplete(missing));
        }
        let pkg = package(&request.message, &request.commitments);
        let shares: BTreeMap<Identifier, SignatureShare> =
            self.shares.iter().map(|(m, s)| (m.frost(), *s)).collect();
        let sig = frost_ed25519::aggregate_custom(
            &pkg,
            &shares,
            &self.public.package,
            CheaterDetection::AllCheaters,
        )
        .map_err(|e| match e {
            frost_ed25519::Error::InvalidSignatureShare { culprits } => {
                CircleError::Cheaters(culprits.iter().filter_map(MemberId::from_frost).collect())
            }
            other => CircleError::Frost(other),
        })?;
        let sig = Signature(signature_bytes(&sig.serialize()));
        let key = ed25519_dalek::VerifyingKey::from_bytes(self.public.group_key().as_bytes())
            .map_err(|_| CircleError::BadAggregate)?;
        key.verify_strict(&self.message, &ed25519_dalek::Signature::from_bytes(&sig.0))
            .map_err(|_| CircleError::BadAggregate)?;
        Ok(sig)
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
