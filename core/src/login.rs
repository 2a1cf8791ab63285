//! The login challenge a bridge sends to an ego's agent over
//! `/cyrcles/login/1`, the agent's answer, and the bridge's check of it.
//!
//! The agent signs, with the ego key,
//! `"cyrcles/v1/login-approval" ‖ 0x00 ‖ canonical([challenge, approved_by])`:
//! the challenge and how the login was approved ([`ApprovedBy`]: the person
//! typed the match code, a remembered site, or a policy), so that an answer
//! made one way can never be shown as made another way. The challenge binds
//! the bridge (issuer), the site (client id, name and redirect origin), the
//! ego, a fresh nonce, a short window, the two-digit match code the person
//! types into their agent and, with `confirm`, that the site asks the person
//! to confirm this very login (no remembered site or policy may answer it).
//!
//! A legacy approval (version 1 as first published, four fields) says
//! nothing about how it was approved; it signs
//! `"cyrcles/v1/login" ‖ 0x00 ‖ canonical(challenge)`. It is still accepted,
//! except for a challenge with `confirm` ([`LoginError::NotConfirmed`]).
//!
//! Freshness and single use are the bridge's to enforce (it stores the
//! nonce); [`verify_approval`] checks everything that needs no storage.

use thiserror::Error;

use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;
use crate::keys::{Context, PublicKey, SecretKey, Signature, SignatureError};
use crate::record::VerifiedEgo;
use crate::time::{CLOCK_SKEW_SECS, UnixTime};

/// Challenge format version.
pub const LOGIN_VERSION: u64 = 1;
/// Longest a challenge may stay valid.
pub const MAX_CHALLENGE_TTL_SECS: u64 = 120;
/// Shortest nonce: 128 bits.
pub const MIN_NONCE_LEN: usize = 16;
/// Longest nonce.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest issuer URL.
pub const MAX_ISSUER_LEN: usize = 256;
/// Longest client id.
pub const MAX_CLIENT_ID_LEN: usize = 128;
/// Longest client name.
pub const MAX_CLIENT_NAME_LEN: usize = 128;
/// Longest redirect origin.
pub const MAX_ORIGIN_LEN: usize = 256;
/// Longest reported client IP address (text form).
pub const MAX_IP_LEN: usize = 64;
/// Cap on an encoded challenge.
pub const MAX_CHALLENGE_SIZE: usize = 2048;
/// Cap on an encoded response.
pub const MAX_RESPONSE_SIZE: usize = 256;
/// Match codes are 00 to 99.
pub const MAX_MATCH_CODE: u8 = 99;

/// What a challenge asks the agent to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeParams {
    /// The bridge's OIDC issuer URL.
    pub issuer: String,
    /// The site's OAuth client id.
    pub client_id: String,
    /// The site's display name.
    pub client_name: String,
    /// Origin (scheme://host\[:port\]) of the redirect URI.
    pub redirect_origin: String,
    /// The ego asked to log in.
    pub ego_id: EgoId,
    /// At least 128 random bits from the bridge.
    pub nonce: Vec<u8>,
    /// When the bridge made the challenge.
    pub issued_at: UnixTime,
    /// When it stops being answerable (at most 120 s later).
    pub expires_at: UnixTime,
    /// The number shown on the login page, 0..=99.
    pub match_code: u8,
    /// The browser's IP address as the bridge saw it, if it reports it.
    pub client_ip: Option<String>,
    /// The person must confirm this login now (by typing the match code):
    /// a remembered site or a policy is not enough. Encoded only when
    /// true.
    pub confirm: bool,
}

/// Why challenge parameters or bytes are not a valid challenge.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    /// A field breaks its limit (length, lifetime, match code).
    #[error("invalid challenge field: {0}")]
    Field(&'static str),
    /// A text field holds a character the text rule refuses
    /// ([`crate::text`]).
    #[error("challenge field {0} holds a forbidden character")]
    Text(&'static str),
    /// The bytes are not a canonical challenge.
    #[error("malformed challenge: {0}")]
    Encoding(#[from] DecodeError),
}

impl ChallengeError {
    /// A stable name for the refusal, as in the test vectors:
    /// `too_large`, `encoding`, `limit` or `text` (see
    /// [`DecodeError::code`]). The same broken field gives the same code
    /// whether it was caught while decoding or while building.
    pub fn code(&self) -> &'static str {
        match self {
            ChallengeError::Field(_) => "limit",
            ChallengeError::Text(_) => "text",
            ChallengeError::Encoding(e) => e.code(),
        }
    }

    /// The field a `limit` or `text` refusal names.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ChallengeError::Field(f) | ChallengeError::Text(f) => Some(f),
            ChallengeError::Encoding(e) => e.field(),
        }
    }
}

/// A validated login challenge. Built by [`LoginChallenge::new`] or decoded;
/// either way its fields meet every limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginChallenge(ChallengeParams);

fn check_text(s: &str, max: usize, what: &'static str) -> Result<(), ChallengeError> {
    if s.is_empty() || s.len() > max {
        return Err(ChallengeError::Field(what));
    }
    if !crate::text::is_allowed(s) {
        return Err(ChallengeError::Text(what));
    }
    Ok(())
}

impl LoginChallenge {
    /// Validates the parameters.
    pub fn new(p: ChallengeParams) -> Result<Self, ChallengeError> {
        check_text(&p.issuer, MAX_ISSUER_LEN, "issuer")?;
        check_text(&p.client_id, MAX_CLIENT_ID_LEN, "client_id")?;
        check_text(&p.client_name, MAX_CLIENT_NAME_LEN, "client_name")?;
        check_text(&p.redirect_origin, MAX_ORIGIN_LEN, "redirect_origin")?;
        if let Some(ip) = &p.client_ip {
            check_text(ip, MAX_IP_LEN, "client_ip")?;
        }
        if p.nonce.len() < MIN_NONCE_LEN || p.nonce.len() > MAX_NONCE_LEN {
            return Err(ChallengeError::Field("nonce"));
        }
        if p.expires_at <= p.issued_at || p.expires_at.since(p.issued_at) > MAX_CHALLENGE_TTL_SECS {
            return Err(ChallengeError::Field("expires_at"));
        }
        if p.match_code > MAX_MATCH_CODE {
            return Err(ChallengeError::Field("match_code"));
        }
        Ok(Self(p))
    }

    /// The fields.
    pub fn params(&self) -> &ChallengeParams {
        &self.0
    }

    /// Decodes and validates a challenge received from the network.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, ChallengeError> {
        let p = RawChallenge::from_cbor(bytes, MAX_CHALLENGE_SIZE)?.0;
        Self::new(p)
    }

    /// Whether the challenge can still be answered at `now`, by the
    /// agent's clock (with the allowed skew). When it is, both its times
    /// are at most `now + CLOCK_SKEW_SECS + MAX_CHALLENGE_TTL_SECS`, since
    /// every challenge lives at most [`MAX_CHALLENGE_TTL_SECS`].
    pub fn is_live_at(&self, now: UnixTime) -> bool {
        now.plus(CLOCK_SKEW_SECS) >= self.0.issued_at
            && now <= self.0.expires_at.plus(CLOCK_SKEW_SECS)
    }

    /// The legacy signature, which does not say how the login was
    /// approved: over `"cyrcles/v1/login" ‖ 0x00 ‖ canonical(challenge)`.
    /// Agents answer with [`LoginChallenge::approve`]; this one stays for
    /// the test vectors of legacy approvals.
    pub fn sign(&self, ego: &SecretKey) -> Signature {
        ego.sign(Context::Login, &self.to_cbor())
    }

    /// The message an approval by `by` signs (in the context
    /// `cyrcles/v1/login-approval`): the canonical encoding of the array
    /// `[challenge, approved_by]`, that is
    /// `0x82 ‖ canonical(challenge) ‖ canonical(uint)`.
    pub fn approval_message(&self, by: ApprovedBy) -> Vec<u8> {
        let mut e = Encoder::new();
        e.array(2);
        self.encode(&mut e);
        e.uint(by.code());
        e.into_bytes()
    }

    /// Signs the challenge and how it was approved with the ego key
    /// (agent side).
    pub fn sign_approval(&self, ego: &SecretKey, by: ApprovedBy) -> Signature {
        ego.sign(Context::LoginApproval, &self.approval_message(by))
    }

    /// The agent's approval: its signature over the challenge and how it
    /// was approved, with the key and certificate seq it used so a bridge
    /// holding an older record knows to look again.
    pub fn approve(&self, ego: &SecretKey, cert_seq: u64, by: ApprovedBy) -> LoginResponse {
        LoginResponse::Approved(Approval {
            ego_pk: ego.public(),
            cert_seq,
            approved_by: Some(by),
            sig: self.sign_approval(ego, by),
        })
    }
}

impl Encode for LoginChallenge {
    fn encode(&self, e: &mut Encoder) {
        let p = &self.0;
        e.map(if p.confirm { 12 } else { 11 });
        e.key(0);
        e.uint(LOGIN_VERSION);
        e.key(1);
        e.text(&p.issuer);
        e.key(2);
        e.text(&p.client_id);
        e.key(3);
        e.text(&p.client_name);
        e.key(4);
        e.text(&p.redirect_origin);
        e.key(5);
        e.bytes(p.ego_id.as_bytes());
        e.key(6);
        e.bytes(&p.nonce);
        e.key(7);
        e.uint(p.issued_at.secs());
        e.key(8);
        e.uint(p.expires_at.secs());
        e.key(9);
        e.uint(u64::from(p.match_code));
        e.key(10);
        match &p.client_ip {
            Some(ip) => e.text(ip),
            None => e.null(),
        }
        if p.confirm {
            e.key(11);
            e.bool(true);
        }
    }
}

/// The challenge's fields as decoded, before the semantic checks of
/// [`LoginChallenge::new`].
struct RawChallenge(ChallengeParams);

impl Decode for RawChallenge {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("login challenge")?;
        m.key(d, 0)?;
        let version = d.uint()?;
        if version != LOGIN_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        // Key 11 (confirm) is present only when true.
        let with_confirm = m.len() == 12;
        if !with_confirm {
            m.expect_len(11)?;
        }
        m.key(d, 1)?;
        let issuer = d.text("issuer", MAX_ISSUER_LEN)?.to_owned();
        m.key(d, 2)?;
        let client_id = d.text("client_id", MAX_CLIENT_ID_LEN)?.to_owned();
        m.key(d, 3)?;
        let client_name = d.text("client_name", MAX_CLIENT_NAME_LEN)?.to_owned();
        m.key(d, 4)?;
        let redirect_origin = d.text("redirect_origin", MAX_ORIGIN_LEN)?.to_owned();
        m.key(d, 5)?;
        let ego_id = EgoId::from_bytes(d.bytes_fixed::<32>("ego_id")?);
        m.key(d, 6)?;
        let nonce = d.bytes_in("nonce", MIN_NONCE_LEN, MAX_NONCE_LEN)?.to_vec();
        m.key(d, 7)?;
        let issued_at = UnixTime::from_secs(d.uint()?);
        m.key(d, 8)?;
        let expires_at = UnixTime::from_secs(d.uint()?);
        m.key(d, 9)?;
        let match_code = u8::try_from(d.uint_max("match_code", u64::from(MAX_MATCH_CODE))?)
            .map_err(|_| DecodeError::OutOfRange { what: "match_code" })?;
        m.key(d, 10)?;
        let client_ip = d.optional(|d| d.text("client_ip", MAX_IP_LEN).map(str::to_owned))?;
        let confirm = if with_confirm {
            m.key(d, 11)?;
            if !d.bool()? {
                return Err(DecodeError::ExplicitDefault { what: "confirm" });
            }
            true
        } else {
            false
        };
        Ok(Self(ChallengeParams {
            issuer,
            client_id,
            client_name,
            redirect_origin,
            ego_id,
            nonce,
            issued_at,
            expires_at,
            match_code,
            client_ip,
            confirm,
        }))
    }
}

/// Why an agent refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The person refused.
    User,
    /// Too many requests for this site or in all (quota).
    RateLimited,
    /// The site or the bridge is banned.
    Banned,
    /// This agent does not hold the ego.
    UnknownEgo,
    /// Nobody answered before the challenge expired.
    Expired,
    /// The challenge itself was malformed or not live.
    Invalid,
}

impl DenyReason {
    fn code(self) -> u64 {
        match self {
            DenyReason::User => 0,
            DenyReason::RateLimited => 1,
            DenyReason::Banned => 2,
            DenyReason::UnknownEgo => 3,
            DenyReason::Expired => 4,
            DenyReason::Invalid => 5,
        }
    }

    fn from_code(value: u64) -> Result<Self, DecodeError> {
        Ok(match value {
            0 => DenyReason::User,
            1 => DenyReason::RateLimited,
            2 => DenyReason::Banned,
            3 => DenyReason::UnknownEgo,
            4 => DenyReason::Expired,
            5 => DenyReason::Invalid,
            value => {
                return Err(DecodeError::UnknownValue {
                    what: "deny reason",
                    value,
                });
            }
        })
    }
}

/// How the agent decided to approve a login. The agent signs it with the
/// challenge, so a bridge can trust it as much as the ego key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovedBy {
    /// The person confirmed this very login in the agent by typing the
    /// match code shown on the login page (number matching).
    Person,
    /// The agent approved without asking: when the person approved an
    /// earlier login to this site, they asked it to approve this site
    /// automatically (`cyrcles approve N --remember --auto`).
    RememberedSite,
    /// The agent approved without asking under a rule the person set in it
    /// (`cyrcles policy allow --auto`).
    Policy,
}

impl ApprovedBy {
    /// Every value, in wire order.
    pub const ALL: [ApprovedBy; 3] = [
        ApprovedBy::Person,
        ApprovedBy::RememberedSite,
        ApprovedBy::Policy,
    ];

    /// The wire value: 0, 1 or 2.
    pub fn code(self) -> u64 {
        match self {
            ApprovedBy::Person => 0,
            ApprovedBy::RememberedSite => 1,
            ApprovedBy::Policy => 2,
        }
    }

    /// The value of a wire code; an unknown one is a decoding error.
    pub fn from_code(value: u64) -> Result<Self, DecodeError> {
        Ok(match value {
            0 => ApprovedBy::Person,
            1 => ApprovedBy::RememberedSite,
            2 => ApprovedBy::Policy,
            value => {
                return Err(DecodeError::UnknownValue {
                    what: "approved by",
                    value,
                });
            }
        })
    }

    /// A stable name, as in the test vectors: `person`,
    /// `remembered_site` or `policy`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovedBy::Person => "person",
            ApprovedBy::RememberedSite => "remembered_site",
            ApprovedBy::Policy => "policy",
        }
    }
}

/// A signed approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approval {
    /// The ego key that signed.
    pub ego_pk: PublicKey,
    /// The seq of the certificate the agent holds for that key.
    pub cert_seq: u64,
    /// How the agent decided; none for a legacy approval (four fields),
    /// which does not say.
    pub approved_by: Option<ApprovedBy>,
    /// With `approved_by`: the signature over `[challenge, approved_by]` in
    /// the context `cyrcles/v1/login-approval`; without: over the challenge
    /// in the context `cyrcles/v1/login`.
    pub sig: Signature,
}

/// The agent's answer to a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResponse {
    /// Signed.
    Approved(Approval),
    /// Refused, with the reason.
    Denied(DenyReason),
}

impl LoginResponse {
    /// Decodes a response received from the network.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_cbor(bytes, MAX_RESPONSE_SIZE)
    }
}

impl Encode for LoginResponse {
    fn encode(&self, e: &mut Encoder) {
        match self {
            LoginResponse::Approved(a) => {
                e.map(if a.approved_by.is_some() { 5 } else { 4 });
                e.key(0);
                e.uint(0);
                e.key(1);
                e.bytes(a.ego_pk.as_bytes());
                e.key(2);
                e.uint(a.cert_seq);
                e.key(3);
                e.bytes(&a.sig.0);
                if let Some(by) = a.approved_by {
                    e.key(4);
                    e.uint(by.code());
                }
            }
            LoginResponse::Denied(r) => {
                e.map(2);
                e.key(0);
                e.uint(1);
                e.key(1);
                e.uint(r.code());
            }
        }
    }
}

impl Decode for LoginResponse {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("login response")?;
        m.key(d, 0)?;
        match d.uint()? {
            0 => {
                // Four pairs: a legacy approval; five: key 4 says how.
                let legacy = m.len() == 4;
                if !legacy {
                    m.expect_len(5)?;
                }
                m.key(d, 1)?;
                let ego_pk = PublicKey(d.bytes_fixed::<32>("ego_pk")?);
                m.key(d, 2)?;
                let cert_seq = d.uint()?;
                m.key(d, 3)?;
                let sig = Signature(d.bytes_fixed::<64>("signature")?);
                let approved_by = if legacy {
                    None
                } else {
                    m.key(d, 4)?;
                    Some(ApprovedBy::from_code(d.uint()?)?)
                };
                Ok(LoginResponse::Approved(Approval {
                    ego_pk,
                    cert_seq,
                    approved_by,
                    sig,
                }))
            }
            1 => {
                m.expect_len(2)?;
                m.key(d, 1)?;
                Ok(LoginResponse::Denied(DenyReason::from_code(d.uint()?)?))
            }
            value => Err(DecodeError::UnknownValue {
                what: "response kind",
                value,
            }),
        }
    }
}

/// Why a bridge refuses an approval.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoginError {
    /// The challenge was for another ego than the record's.
    #[error("the challenge is for another ego")]
    WrongEgo,
    /// The ego is revoked.
    #[error("the ego is revoked")]
    Revoked,
    /// The certificate is not valid now.
    #[error("the ego's certificate is not valid now")]
    CertNotValid,
    /// The challenge is past its expiry (or not yet issued) by the
    /// bridge's clock.
    #[error("the challenge has expired")]
    Expired,
    /// The agent signed with another key than the record certifies. If its
    /// certificate seq differs, the bridge's copy of the record may be
    /// stale (a higher seq, or a recovery's, which may be lower).
    #[error("signed with key of certificate seq {approval_seq}, record has seq {record_seq}")]
    KeyMismatch {
        /// The seq the agent reported.
        approval_seq: u64,
        /// The seq of the record the bridge holds.
        record_seq: u64,
    },
    /// The signature does not verify (under the context of the
    /// approval's form: a signature made for one way of approving, or for
    /// the legacy form, is bad for any other).
    #[error("bad login signature: {0}")]
    BadSignature(SignatureError),
    /// The challenge asked the person to confirm (`confirm`) and the
    /// approval does not say the person did: a remembered site, a policy,
    /// or a legacy approval that does not say.
    #[error("the site asked the person to confirm, and the approval was not made by the person")]
    NotConfirmed,
}

impl LoginError {
    /// A stable name for the refusal, as in the test vectors:
    /// `wrong_ego`, `revoked`, `cert_not_valid`, `expired`, `key_mismatch`,
    /// `bad_signature` or `not_confirmed`.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::WrongEgo => "wrong_ego",
            LoginError::Revoked => "revoked",
            LoginError::CertNotValid => "cert_not_valid",
            LoginError::Expired => "expired",
            LoginError::KeyMismatch { .. } => "key_mismatch",
            LoginError::BadSignature(_) => "bad_signature",
            LoginError::NotConfirmed => "not_confirmed",
        }
    }

    /// Whether the refusal means the bridge's copy of the record may be
    /// older than the agent's: a key mismatch with another certificate seq
    /// in the approval (a higher one, or a recovery's: a recovery raises
    /// the epoch, and its seq may be below the lost key's last one). The
    /// bridge then looks the record up again before deciding
    /// (docs/protocol.md, section 8).
    pub fn record_is_stale(&self) -> bool {
        matches!(self, LoginError::KeyMismatch { approval_seq, record_seq } if approval_seq != record_seq)
    }
}

/// Checks an approval against the challenge the bridge sent and the
/// verified record of the ego, at the bridge's time `now`, in the order of
/// docs/protocol.md section 8: the ego, its certificate, the challenge's
/// window, the key, the signature (under the context of the approval's
/// form), and last whether a challenge with `confirm` was approved by the
/// person. That check comes after the signature so that only an authentic
/// answer is refused as [`LoginError::NotConfirmed`]. The bridge must also
/// make sure the challenge is answered only once.
pub fn verify_approval(
    challenge: &LoginChallenge,
    approval: &Approval,
    ego: &VerifiedEgo,
    now: UnixTime,
) -> Result<(), LoginError> {
    let p = challenge.params();
    if p.ego_id != ego.ego_id() {
        return Err(LoginError::WrongEgo);
    }
    if ego.is_revoked() {
        return Err(LoginError::Revoked);
    }
    if !ego.key_usable_at(now) {
        return Err(LoginError::CertNotValid);
    }
    if now < p.issued_at || now > p.expires_at {
        return Err(LoginError::Expired);
    }
    if approval.ego_pk != ego.ego_key() {
        return Err(LoginError::KeyMismatch {
            approval_seq: approval.cert_seq,
            record_seq: ego.cert().seq,
        });
    }
    let key = ego.ego_key();
    match approval.approved_by {
        Some(by) => key.verify(
            Context::LoginApproval,
            &challenge.approval_message(by),
            &approval.sig,
        ),
        None => key.verify(Context::Login, &challenge.to_cbor(), &approval.sig),
    }
    .map_err(LoginError::BadSignature)?;
    if p.confirm && approval.approved_by != Some(ApprovedBy::Person) {
        return Err(LoginError::NotConfirmed);
    }
    Ok(())
}
