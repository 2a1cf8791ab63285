//! What lets a member's agent take part in a signing session without its
//! human: a [`CeremonyRequest`] signed by the ego's current key, and the
//! member's check of it, [`authorize`] (DESIGN.md, flow 4).
//!
//! The owner's agent asks the circle for one of three things:
//!
//! * a certificate for a new ego key (`certify`: automatic rotation), or
//!   the revocation certificate that ends the ego;
//! * the next circle link (`link`: a new circle key after a membership
//!   change or a periodic circle rotation);
//! * from the members of a new circle, made by a distributed key
//!   generation that no device knows whole: the first certificate under it
//!   (`enter`), with the link that introduces it, already signed by the
//!   old circle (or the root key). The link was the humans' decision; the
//!   certificate that follows it is automatic.
//!
//! A member's agent signs only if, at its own time: the request is signed
//! by the ego key certified by the ego's current, valid record; the
//! member's share belongs to the circle that record names; the body is
//! the one next step of the chain (seq or index plus one) with sane times;
//! and the member has not signed for this ego too recently. The bytes
//! FROST then signs are the body's ordinary signing bytes, so the
//! aggregate is the plain Ed25519 signature the record carries.
//!
//! A rotation is signed without the member's human. A [`Change`] is not: a
//! new circle link (who holds the circle) and a revocation (the end of the
//! ego) wait until the member's human approved that very change, named by
//! its [`Change::fingerprint`] (docs/circle-authority.md, P2). Whoever
//! copied the owner's device holds the ego key, so the ego key's word
//! alone must never decide them.
//!
//! ```cddl
//! ceremony-request = {
//!   0: 1,                    ; version
//!   1: ego-id,
//!   2: bstr .size 16,        ; circle id (the members' shares name it)
//!   3: uint,                 ; generation of the signing circle
//!   4: bstr .size 16,        ; session id
//!   5: 0 / 1 / 2,            ; purpose: 0 certify, 1 link, 2 enter
//!   6: bstr,                 ; the body: encode(ego-cert), encode(circle-link),
//!                            ; or encode([signed circle-link, ego-cert])
//!   7: time,                 ; issued_at
//!   8: signature,            ; by the current ego key over
//!                            ; "cyrcles/v1/circle-request" || 0x00 || encode(keys 0..7)
//! }
//! ```

use thiserror::Error;

use super::dealer::MemberShare;
use super::messages::{CircleId, SessionId};
use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;
use crate::keys::{Context, PublicKey, SecretKey, Signature};
use crate::record::{CertStatus, CircleLink, EgoCert, Signed, SignedBody, VerifiedEgo};
use crate::time::{CLOCK_SKEW_SECS, MAX_CERT_VALIDITY_SECS, UnixTime};

/// Request format version.
pub const REQUEST_VERSION: u64 = 1;
/// Longest body carried (an `enter` body, a signed link and a
/// certificate, is about 240 bytes).
pub const MAX_BODY_LEN: usize = 512;

/// What the circle is asked to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// A certificate for a new ego key.
    Certify(EgoCert),
    /// The next link of the circle chain.
    Link(CircleLink),
    /// The first certificate under a new circle (asked of its members),
    /// with the signed link that introduces that circle.
    Enter {
        /// The next link, signed by the current circle key (or the root
        /// key for the first link), whose circle key is the new one.
        link: Signed<CircleLink>,
        /// The next certificate, for the same ego key, under that link.
        cert: EgoCert,
    },
}

/// The body of an `enter` request: `[signed circle-link, ego-cert]`.
struct EnterBody(Signed<CircleLink>, EgoCert);

impl Encode for EnterBody {
    fn encode(&self, e: &mut Encoder) {
        e.array(2);
        self.0.encode(e);
        self.1.encode(e);
    }
}

impl Decode for EnterBody {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.array_exact("enter body", 2)?;
        let link = Signed::<CircleLink>::decode(d)?;
        let cert = EgoCert::decode(d)?;
        Ok(Self(link, cert))
    }
}

impl Purpose {
    fn code(&self) -> u64 {
        match self {
            Purpose::Certify(_) => 0,
            Purpose::Link(_) => 1,
            Purpose::Enter { .. } => 2,
        }
    }

    fn body(&self) -> Vec<u8> {
        match self {
            Purpose::Certify(c) => c.to_cbor(),
            Purpose::Link(l) => l.to_cbor(),
            Purpose::Enter { link, cert } => EnterBody(link.clone(), cert.clone()).to_cbor(),
        }
    }

    /// The change a member's human must approve before this is signed
    /// ([`Change`]), given the key the ego's current certificate names:
    /// `None` for a rotation.
    pub fn change(&self, current_ego_pk: PublicKey) -> Option<Change> {
        match self {
            Purpose::Link(link) => Some(Change::Link(link.circle_pk)),
            Purpose::Certify(c) if c.status == CertStatus::Revoked => {
                Some(Change::Revocation(current_ego_pk))
            }
            Purpose::Certify(_) | Purpose::Enter { .. } => None,
        }
    }

    /// The exact bytes the circle signs (the body's signing bytes).
    pub fn signing_bytes(&self) -> Vec<u8> {
        match self {
            Purpose::Certify(c) | Purpose::Enter { cert: c, .. } => {
                EgoCert::CONTEXT.signing_bytes(&c.to_cbor())
            }
            Purpose::Link(l) => CircleLink::CONTEXT.signing_bytes(&l.to_cbor()),
        }
    }
}

/// The fields of a request, before the owner signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBody {
    /// The ego.
    pub ego_id: EgoId,
    /// The circle whose members sign.
    pub circle_id: CircleId,
    /// That circle's generation.
    pub generation: u64,
    /// The signing session.
    pub session: SessionId,
    /// What to sign.
    pub purpose: Purpose,
    /// When the owner's agent asked.
    pub issued_at: UnixTime,
}

impl RequestBody {
    fn encode_fields(&self, e: &mut Encoder) {
        e.key(0);
        e.uint(REQUEST_VERSION);
        e.key(1);
        e.bytes(self.ego_id.as_bytes());
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        e.bytes(&self.session.0);
        e.key(5);
        e.uint(self.purpose.code());
        e.key(6);
        e.bytes(&self.purpose.body());
        e.key(7);
        e.uint(self.issued_at.secs());
    }

    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(8);
        self.encode_fields(&mut e);
        e.into_bytes()
    }

    /// Signs with the current ego key (owner side).
    pub fn sign(self, ego: &SecretKey) -> CeremonyRequest {
        let sig = ego.sign(Context::CircleRequest, &self.unsigned_bytes());
        CeremonyRequest { body: self, sig }
    }
}

/// A signed request from the owner's agent to a circle member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRequest {
    /// The fields.
    pub body: RequestBody,
    /// By the current ego key.
    pub sig: Signature,
}

impl Encode for CeremonyRequest {
    fn encode(&self, e: &mut Encoder) {
        e.map(9);
        self.body.encode_fields(e);
        e.key(8);
        self.sig.encode(e);
    }
}

impl Decode for CeremonyRequest {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("ceremony request")?;
        m.key(d, 0)?;
        match d.uint()? {
            REQUEST_VERSION => {}
            v => return Err(DecodeError::UnknownVersion(v)),
        }
        m.expect_len(9)?;
        m.key(d, 1)?;
        let ego_id = EgoId::from_bytes(d.bytes_fixed::<32>("ego_id")?);
        m.key(d, 2)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 3)?;
        let generation = d.uint()?;
        m.key(d, 4)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 5)?;
        let code = d.uint()?;
        m.key(d, 6)?;
        let body = d.bytes_in("body", 1, MAX_BODY_LEN)?;
        let purpose = match code {
            0 => Purpose::Certify(EgoCert::from_cbor(body, MAX_BODY_LEN)?),
            1 => Purpose::Link(CircleLink::from_cbor(body, MAX_BODY_LEN)?),
            2 => {
                let EnterBody(link, cert) = EnterBody::from_cbor(body, MAX_BODY_LEN)?;
                Purpose::Enter { link, cert }
            }
            value => {
                return Err(DecodeError::UnknownValue {
                    what: "purpose",
                    value,
                });
            }
        };
        m.key(d, 7)?;
        let issued_at = UnixTime::from_secs(d.uint()?);
        m.key(d, 8)?;
        let sig = Signature::decode(d)?;
        Ok(Self {
            body: RequestBody {
                ego_id,
                circle_id,
                generation,
                session,
                purpose,
                issued_at,
            },
            sig,
        })
    }
}

/// A member's rules for signing without its human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningPolicy {
    /// Longest certificate the member certifies, in seconds.
    pub max_cert_validity: u64,
    /// Least time between two signatures for one ego, in seconds.
    pub min_interval: u64,
}

impl Default for SigningPolicy {
    /// 90-day certificates at most (the protocol maximum; the agent's
    /// default is 30), and one signature per ego per hour.
    fn default() -> Self {
        Self {
            max_cert_validity: MAX_CERT_VALIDITY_SECS,
            min_interval: 3600,
        }
    }
}

/// The longest certificate a member signs: its policy, never more than the
/// protocol maximum (a longer one would not verify).
pub(crate) fn max_validity(policy: &SigningPolicy) -> u64 {
    policy.max_cert_validity.min(MAX_CERT_VALIDITY_SECS)
}

/// Why a member refuses to sign. Each names the rule it broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The request, the record and the share are not about one ego.
    #[error("the request is for another ego")]
    WrongEgo,
    /// The share is not of the circle the request names, or that circle
    /// is no longer the record's current one.
    #[error("the share is not of the ego's current circle")]
    WrongCircle,
    /// The ego is revoked, or its certificate is not valid now.
    #[error("the ego's certificate is revoked or not valid now")]
    CertNotValid,
    /// The signature is not by the current ego key.
    #[error("the request is not signed by the ego's current key")]
    BadSignature,
    /// `issued_at` is too far from the member's clock.
    #[error("the request is stale or from the future")]
    Stale,
    /// The body is not the one next step of the chain.
    #[error("the body is not the next step of the ego's record")]
    NotNext,
    /// The body's times break the policy.
    #[error("the body's validity breaks the signing policy")]
    BadValidity,
    /// The member signed for this ego too recently.
    #[error("signed for this ego too recently")]
    TooSoon,
    /// An `enter` request whose link is not the next link of the record,
    /// signed by its current circle key (or the root key for the first).
    #[error("the link is not the record's next link, signed by its current circle")]
    LinkNotSigned,
}

/// A change that only the member's human lets its agent sign: the ego
/// key's word is not enough (docs/circle-authority.md, P2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The next circle link, to this circle key: who holds the circle
    /// changes (a member added or removed, the threshold, a re-keying).
    Link(PublicKey),
    /// The revocation of the ego whose certified key is this one.
    Revocation(PublicKey),
}

impl Change {
    /// What the change is about: the new circle key, or the key it ends.
    /// A member's approval holds for this key, across the owner's retries
    /// (each with a new session, time and body).
    pub fn subject(&self) -> PublicKey {
        match self {
            Change::Link(k) | Change::Revocation(k) => *k,
        }
    }

    /// The six digits the owner's agent and the member's prompt both show
    /// (the owner reads them to the friend): SHA-256 over
    /// `"cyrcles/v1/change-fingerprint" || 0x00 || ego_id || kind ||
    /// subject`, kind 1 for a link and 2 for a revocation.
    pub fn fingerprint(&self, ego: &EgoId) -> String {
        use sha2::{Digest, Sha256};
        let kind: u8 = match self {
            Change::Link(_) => 1,
            Change::Revocation(_) => 2,
        };
        let mut h = Sha256::new();
        h.update(b"cyrcles/v1/change-fingerprint\0");
        h.update(ego.as_bytes());
        h.update([kind]);
        h.update(self.subject().as_bytes());
        crate::invite::six_digits(&h.finalize().into())
    }
}

/// A request that passed every rule: the bytes to sign, and the change the
/// member's human must approve first, if it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// The bytes FROST signs.
    pub message: Vec<u8>,
    /// `Some` for a link or a revocation: the member's agent signs only
    /// once its human approved this change.
    pub change: Option<Change>,
}

/// Checks a request against the ego's current record (verified, from the
/// DHT), the member's share, when the member last signed for this ego,
/// and the member's clock. On success, the bytes to sign and the change
/// the member's human must approve, if any.
pub fn authorize(
    request: &CeremonyRequest,
    record: &VerifiedEgo,
    share: &MemberShare,
    last_signed: Option<UnixTime>,
    now: UnixTime,
    policy: &SigningPolicy,
) -> Result<Authorized, Refusal> {
    let b = &request.body;
    if b.ego_id != record.ego_id() || share.ego_id() != b.ego_id {
        return Err(Refusal::WrongEgo);
    }
    // The share must be of the circle that signs: the record's current
    // one, or for `enter` the new circle the link introduces.
    let signing_circle = match &b.purpose {
        Purpose::Enter { link, .. } => {
            if link.body.index != b.generation {
                return Err(Refusal::WrongCircle);
            }
            link.body.circle_pk
        }
        _ => record.circle_key(),
    };
    if share.circle_id() != b.circle_id
        || share.generation() != b.generation
        || share.group_key() != signing_circle
    {
        return Err(Refusal::WrongCircle);
    }
    let cert = record.cert();
    if cert.status != CertStatus::Active || !record.key_usable_at(now) {
        return Err(Refusal::CertNotValid);
    }
    record
        .ego_key()
        .verify(Context::CircleRequest, &b.unsigned_bytes(), &request.sig)
        .map_err(|_| Refusal::BadSignature)?;
    if !b.issued_at.within(now, CLOCK_SKEW_SECS) {
        return Err(Refusal::Stale);
    }
    match &b.purpose {
        Purpose::Certify(next) => {
            let revocation = next.status == CertStatus::Revoked;
            if next.ego_id != b.ego_id
                || Some(next.seq) != cert.seq.checked_add(1)
                || next.epoch != cert.epoch
                || next.circle_index != cert.circle_index
                || (!revocation && next.ego_pk == cert.ego_pk)
            {
                return Err(Refusal::NotNext);
            }
            let starts_now = next.not_before.within(now, CLOCK_SKEW_SECS);
            let span = next.not_after.since(next.not_before);
            let valid = if revocation {
                // It certifies no key; it must outlast the certificate it
                // ends, so no older record can win over it, and still be a
                // certificate the protocol accepts.
                starts_now
                    && next.not_after >= cert.not_after
                    && span > 0
                    && span <= MAX_CERT_VALIDITY_SECS
            } else {
                starts_now && span > 0 && span <= max_validity(policy)
            };
            if !valid {
                return Err(Refusal::BadValidity);
            }
        }
        Purpose::Link(link) => {
            let chain_len = u64::try_from(record.record().chain.len()).unwrap_or(u64::MAX);
            if link.ego_id != b.ego_id
                || Some(link.index) != chain_len.checked_add(1)
                || link.circle_pk == record.circle_key()
            {
                return Err(Refusal::NotNext);
            }
            if !link.issued_at.within(now, CLOCK_SKEW_SECS) {
                return Err(Refusal::BadValidity);
            }
        }
        Purpose::Enter { link, cert: next } => {
            // The humans approved the link; its signature by the current
            // circle (or the root key) is what this member relies on.
            let mut linked = record.record().clone();
            linked
                .push_link(link.clone())
                .map_err(|_| Refusal::LinkNotSigned)?;
            if next.ego_id != b.ego_id
                || Some(next.seq) != cert.seq.checked_add(1)
                || next.epoch != cert.epoch
                || next.circle_index != link.body.index
                || next.ego_pk != cert.ego_pk
                || next.status != CertStatus::Active
            {
                return Err(Refusal::NotNext);
            }
            let span = next.not_after.since(next.not_before);
            if !next.not_before.within(now, CLOCK_SKEW_SECS)
                || span == 0
                || span > max_validity(policy)
            {
                return Err(Refusal::BadValidity);
            }
        }
    }
    // A revocation is never held back by the rate policy: the owner ends
    // the ego, perhaps because its key leaked.
    let revocation = matches!(&b.purpose, Purpose::Certify(c) if c.status == CertStatus::Revoked);
    if !revocation && last_signed.is_some_and(|t| now < t.plus(policy.min_interval)) {
        return Err(Refusal::TooSoon);
    }
    Ok(Authorized {
        message: b.purpose.signing_bytes(),
        change: b.purpose.change(cert.ego_pk),
    })
}

impl Refusal {
    /// The code carried in a [`CircleRefused`].
    pub fn code(self) -> u16 {
        match self {
            Refusal::WrongEgo => 1,
            Refusal::WrongCircle => 2,
            Refusal::CertNotValid => 3,
            Refusal::BadSignature => 4,
            Refusal::Stale => 5,
            Refusal::NotNext => 6,
            Refusal::BadValidity => 7,
            Refusal::TooSoon => 8,
            Refusal::LinkNotSigned => 9,
        }
    }
}

/// Refusal codes that are not [`Refusal`] rules.
pub mod refused {
    /// The sender is not a friend of this agent's ego.
    pub const NOT_A_FRIEND: u16 = 20;
    /// This agent holds no share of that circle.
    pub const NO_SHARE: u16 = 21;
    /// No open session (round 2 without round 1, or it expired).
    pub const NO_SESSION: u16 = 22;
    /// The message is malformed or out of turn.
    pub const INVALID: u16 = 23;
    /// The agent cannot sign now (locked, or busy).
    pub const UNAVAILABLE: u16 = 24;
    /// The member's human denied this recovery.
    pub const DENIED: u16 = 25;
    /// The request names an ego of this agent's own: a recovery of it
    /// from another device (shown to the person).
    pub const OWN_EGO: u16 = 26;
    /// A `dealt-share` for a circle and generation whose share this member
    /// holds already, of the circle key the owner's record names: a live
    /// share is never replaced (only a new generation, after a link, brings
    /// new shares).
    pub const SHARE_HELD: u16 = 27;
    /// A link or a revocation ([`super::Change`]) the member's human has
    /// not approved (yet): it is shown to them; the owner asks again later.
    pub const ASK_HUMAN: u16 = 28;
    /// A `dkg-start` naming a participant whose current, valid record
    /// this member cannot find: it cannot check that participant's
    /// messages.
    pub const NO_RECORD: u16 = 29;
}

/// A member's refusal of a circle message: `{0: 1, 1: uint}` (a
/// [`Refusal::code`] or one of [`refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircleRefused {
    /// Why.
    pub code: u16,
}

impl Encode for CircleRefused {
    fn encode(&self, e: &mut Encoder) {
        e.map(2);
        e.key(0);
        e.uint(REQUEST_VERSION);
        e.key(1);
        e.uint(u64::from(self.code));
    }
}

impl Decode for CircleRefused {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("circle refused")?;
        m.key(d, 0)?;
        match d.uint()? {
            REQUEST_VERSION => {}
            v => return Err(DecodeError::UnknownVersion(v)),
        }
        m.expect_len(2)?;
        m.key(d, 1)?;
        let code =
            u16::try_from(d.uint_max("refusal code", u64::from(u16::MAX))?).map_err(|_| {
                DecodeError::OutOfRange {
                    what: "refusal code",
                }
            })?;
        Ok(Self { code })
    }
}
