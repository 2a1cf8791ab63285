//! Signatures for local programs.
//!
//! A program on the person's own machine may ask the agent, through its
//! local socket, to sign a statement with an ego key (DESIGN.md: "local
//! software may request auth"). The agent shows the person which binary
//! asks and the reason it gives; on approval it signs
//! `"cyrcles/v1/local" ‖ 0x00 ‖ canonical(request)`.
//!
//! The context differs from the bridge login's, so a local program can
//! never obtain a signature that a bridge would accept as a login: it
//! could otherwise relay a bridge's challenge to the agent and log in as
//! the person somewhere else.

use thiserror::Error;

use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;
use crate::keys::{Context, PublicKey, SecretKey, Signature, SignatureError};
use crate::time::{CLOCK_SKEW_SECS, UnixTime};

/// Format version of a local request.
pub const LOCAL_VERSION: u64 = 1;
/// Longest program path.
pub const MAX_PROGRAM_LEN: usize = 1024;
/// Longest reason.
pub const MAX_REASON_LEN: usize = 200;
/// Shortest nonce: 128 bits.
pub const MIN_LOCAL_NONCE_LEN: usize = 16;
/// Longest nonce.
pub const MAX_LOCAL_NONCE_LEN: usize = 64;
/// Cap on an encoded request.
pub const MAX_LOCAL_REQUEST_SIZE: usize = 2048;

/// What the agent signs for a local program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalParams {
    /// The ego that signs.
    pub ego_id: EgoId,
    /// The path of the program that asked, as the agent saw it.
    pub program: String,
    /// The reason the program gave, shown to the person.
    pub reason: String,
    /// A value chosen by the program (or the agent when it gave none), at
    /// least 128 bits, so that every signature is fresh.
    pub nonce: Vec<u8>,
    /// When the agent signed.
    pub issued_at: UnixTime,
}

/// Why local request fields or bytes are not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LocalError {
    /// A field breaks its limit.
    #[error("invalid local request field: {0}")]
    Field(&'static str),
    /// A text field holds a character the text rule refuses
    /// ([`crate::text`]).
    #[error("local request field {0} holds a forbidden character")]
    Text(&'static str),
    /// The bytes are not a canonical local request.
    #[error("malformed local request: {0}")]
    Encoding(#[from] DecodeError),
}

/// A validated local signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRequest(LocalParams);

impl LocalError {
    /// A stable name for the refusal, as in the test vectors:
    /// `too_large`, `encoding`, `limit` or `text` (see
    /// [`DecodeError::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            LocalError::Field(_) => "limit",
            LocalError::Text(_) => "text",
            LocalError::Encoding(e) => e.code(),
        }
    }

    /// The field a `limit` or `text` refusal names.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            LocalError::Field(f) | LocalError::Text(f) => Some(f),
            LocalError::Encoding(e) => e.field(),
        }
    }
}

fn check_text(s: &str, max: usize, what: &'static str) -> Result<(), LocalError> {
    if s.is_empty() || s.len() > max {
        return Err(LocalError::Field(what));
    }
    if !crate::text::is_allowed(s) {
        return Err(LocalError::Text(what));
    }
    Ok(())
}

impl LocalRequest {
    /// Validates the fields.
    pub fn new(p: LocalParams) -> Result<Self, LocalError> {
        check_text(&p.program, MAX_PROGRAM_LEN, "program")?;
        check_text(&p.reason, MAX_REASON_LEN, "reason")?;
        if p.nonce.len() < MIN_LOCAL_NONCE_LEN || p.nonce.len() > MAX_LOCAL_NONCE_LEN {
            return Err(LocalError::Field("nonce"));
        }
        Ok(Self(p))
    }

    /// The fields.
    pub fn params(&self) -> &LocalParams {
        &self.0
    }

    /// Decodes and validates an encoded request.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, LocalError> {
        let p = RawLocal::from_cbor(bytes, MAX_LOCAL_REQUEST_SIZE)?.0;
        Self::new(p)
    }

    /// Signs with the ego key (agent side).
    pub fn sign(&self, ego: &SecretKey) -> Signature {
        ego.sign(Context::Local, &self.to_cbor())
    }

    /// Whether the request is fresh at the verifier's `now`: signed no
    /// later than `now + CLOCK_SKEW_SECS` and no earlier than `max_age`
    /// seconds before `now`. How old a signature a program accepts is its
    /// own policy; a request from further in the future than the skew is
    /// never fresh.
    pub fn is_fresh_at(&self, now: UnixTime, max_age: u64) -> bool {
        self.0.issued_at <= now.plus(CLOCK_SKEW_SECS) && now.since(self.0.issued_at) <= max_age
    }

    /// Checks a signature by `ego_pk` (the verifier must also check, from
    /// the ego's verified record, that `ego_pk` is its certified key).
    pub fn verify(&self, ego_pk: &PublicKey, sig: &Signature) -> Result<(), SignatureError> {
        ego_pk.verify(Context::Local, &self.to_cbor(), sig)
    }
}

impl Encode for LocalRequest {
    fn encode(&self, e: &mut Encoder) {
        let p = &self.0;
        e.map(6);
        e.key(0);
        e.uint(LOCAL_VERSION);
        e.key(1);
        e.bytes(p.ego_id.as_bytes());
        e.key(2);
        e.text(&p.program);
        e.key(3);
        e.text(&p.reason);
        e.key(4);
        e.bytes(&p.nonce);
        e.key(5);
        e.uint(p.issued_at.secs());
    }
}

struct RawLocal(LocalParams);

impl Decode for RawLocal {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("local request")?;
        m.key(d, 0)?;
        let version = d.uint()?;
        if version != LOCAL_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        m.expect_len(6)?;
        m.key(d, 1)?;
        let ego_id = EgoId::from_bytes(d.bytes_fixed::<32>("ego_id")?);
        m.key(d, 2)?;
        let program = d.text("program", MAX_PROGRAM_LEN)?.to_owned();
        m.key(d, 3)?;
        let reason = d.text("reason", MAX_REASON_LEN)?.to_owned();
        m.key(d, 4)?;
        let nonce = d
            .bytes_in("nonce", MIN_LOCAL_NONCE_LEN, MAX_LOCAL_NONCE_LEN)?
            .to_vec();
        m.key(d, 5)?;
        let issued_at = UnixTime::from_secs(d.uint()?);
        Ok(Self(LocalParams {
            ego_id,
            program,
            reason,
            nonce,
            issued_at,
        }))
    }
}
