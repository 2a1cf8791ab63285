//! Record validation: one pure function from bytes to [`VerifiedEgo`].
//!
//! The rules, checked in this order (the first that fails is reported):
//!
//! 1. **Encoding.** The size is at most [`super::MAX_RECORD_SIZE`], checked before
//!    parsing; the bytes are the canonical encoding of a version-1 record.
//! 2. **Identity.** The ego id is SHA-256 of the encoded inception; every
//!    link, the certificate and the endpoints name that id; the DHT key
//!    derived from it is the one the record was stored or asked under.
//! 3. **Signatures.** The inception verifies under its root key; link 1
//!    under the root key and link *i* > 1 under link *i*−1's circle key; the
//!    certificate under the circle key its `circle_index` names; the
//!    certified ego key is a usable key (not of small order) even when
//!    nothing in the record is signed by it; the endpoints under the
//!    certified ego key. Each in its own context, with `verify_strict`.
//! 4. **Continuity.** Link *i* carries index *i*, and no link is older than
//!    what precedes it; the certificate is signed by the last circle key.
//! 5. **Time.** Nothing was created or issued more than
//!    [`MAX_FUTURE_SECS`] after `now`; the certificate window is well formed,
//!    at most [`MAX_CERT_VALIDITY_SECS`] long, and holds at `now` within
//!    [`CLOCK_SKEW_SECS`]; the endpoints window is well formed and at most
//!    [`MAX_ENDPOINTS_VALIDITY_SECS`] long. Expired endpoints do not
//!    invalidate the record: they are reported as not live.
//!
//! So after `verify` at `now`, every time in the record is at most
//! `now + RECORD_HORIZON_SECS` ([`crate::time::RECORD_HORIZON_SECS`]), and
//! [`VerifiedEgo::cert_remaining`] is a `Duration` a caller may add to an
//! `Instant` with `checked_add` without ever hitting its limit.

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::cbor::{DecodeError, Encode};
use crate::id::{DhtKey, EgoId};
use crate::keys::{Context, PublicKey, Signature, SignatureError};
use crate::lru::Lru;
use crate::time::{
    CLOCK_SKEW_SECS, MAX_CERT_VALIDITY_SECS, MAX_ENDPOINTS_VALIDITY_SECS, MAX_FUTURE_SECS,
    RECORD_HORIZON_SECS, UnixTime,
};

use super::types::{CertStatus, EgoCert, EgoRecord, Endpoints, Signed, SignedBody};

/// A part of a record, to say where a rule failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The inception.
    Inception,
    /// The circle link with this index (1-based position in the chain).
    CircleLink(u64),
    /// The ego certificate.
    EgoCert,
    /// The endpoints list.
    Endpoints,
}

/// Why a record is not valid. Each variant belongs to one rule; see
/// [`RecordError::rule`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Rule 1: too large, or not a canonical version-1 encoding.
    #[error("rule 1 (encoding): {0}")]
    Encoding(#[from] DecodeError),
    /// Rule 2: a part names another ego than the inception's hash.
    #[error("rule 2 (identity): {0:?} names another ego id than the inception's hash")]
    EgoIdMismatch(Part),
    /// Rule 2: the record is not the one stored under the expected DHT key.
    #[error("rule 2 (identity): the DHT key does not match the ego id")]
    DhtKeyMismatch,
    /// Rule 3: a signature does not verify.
    #[error("rule 3 (signatures): {part:?}: {reason}")]
    BadSignature {
        /// Which part.
        part: Part,
        /// Why.
        reason: SignatureError,
    },
    /// Rule 4: link at `position` (1-based) carries another index.
    #[error("rule 4 (continuity): link at position {position} has index {found}")]
    ChainIndex {
        /// Where in the chain.
        position: u64,
        /// The index it carries.
        found: u64,
    },
    /// Rule 4: a link issued before the inception or the link before it.
    #[error("rule 4 (continuity): link {0} is older than what precedes it")]
    ChainOrder(u64),
    /// Rule 4: the certificate is not signed by the last circle key.
    #[error(
        "rule 4 (continuity): certificate from circle {circle_index}, but the chain has {chain_len} links"
    )]
    CertNotFromLastCircle {
        /// The circle index the certificate names.
        circle_index: u64,
        /// Links in the chain (the last circle key has this index).
        chain_len: u64,
    },
    /// Rule 5: a part issued or valid only from later than allowed.
    #[error("rule 5 (time): {0:?} is from the future")]
    NotYetValid(Part),
    /// Rule 5: the certificate has expired.
    #[error("rule 5 (time): the certificate expired at {0}")]
    CertExpired(UnixTime),
    /// Rule 5: a validity window that ends before it starts.
    #[error("rule 5 (time): {0:?} has an empty validity window")]
    InvalidWindow(Part),
    /// Rule 5: a certificate longer than [`MAX_CERT_VALIDITY_SECS`], or
    /// endpoints longer than [`MAX_ENDPOINTS_VALIDITY_SECS`].
    #[error("rule 5 (time): {0:?} is valid for longer than the protocol allows")]
    ValidityTooLong(Part),
}

impl RecordError {
    /// The number of the rule that failed (1 to 5).
    pub fn rule(&self) -> u8 {
        match self {
            RecordError::Encoding(_) => 1,
            RecordError::EgoIdMismatch(_) | RecordError::DhtKeyMismatch => 2,
            RecordError::BadSignature { .. } => 3,
            RecordError::ChainIndex { .. }
            | RecordError::ChainOrder(_)
            | RecordError::CertNotFromLastCircle { .. } => 4,
            RecordError::NotYetValid(_)
            | RecordError::CertExpired(_)
            | RecordError::InvalidWindow(_)
            | RecordError::ValidityTooLong(_) => 5,
        }
    }

    /// A stable name for the failed check, used in test vectors and
    /// metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::Encoding(DecodeError::TooLarge { .. }) => "too_large",
            RecordError::Encoding(_) => "encoding",
            RecordError::EgoIdMismatch(_) => "ego_id_mismatch",
            RecordError::DhtKeyMismatch => "dht_key_mismatch",
            RecordError::BadSignature { .. } => "bad_signature",
            RecordError::ChainIndex { .. } => "chain_index",
            RecordError::ChainOrder(_) => "chain_order",
            RecordError::CertNotFromLastCircle { .. } => "cert_not_from_last_circle",
            RecordError::NotYetValid(_) => "not_yet_valid",
            RecordError::CertExpired(_) => "cert_expired",
            RecordError::InvalidWindow(_) => "invalid_window",
            RecordError::ValidityTooLong(_) => "validity_too_long",
        }
    }
}

/// A record that passed every rule at `verified_at`. The only way to get
/// one is [`verify`].
#[derive(Debug, Clone)]
pub struct VerifiedEgo {
    ego_id: EgoId,
    dht_key: DhtKey,
    record: EgoRecord,
    bytes: Vec<u8>,
    /// `chain_digests[i]` commits to the inception and the first `i` links.
    chain_digests: Vec<[u8; 32]>,
    cert_digest: [u8; 32],
    verified_at: UnixTime,
}

/// Where a record stands in the selection order: the chain length, then
/// the certificate's epoch, then its seq, then the endpoints seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rank {
    /// Links in the circle chain.
    pub chain_len: u64,
    /// Certificate authority epoch.
    pub epoch: u64,
    /// Certificate sequence number.
    pub cert_seq: u64,
    /// Endpoints sequence number (0 without endpoints).
    pub endpoints_seq: u64,
}

impl VerifiedEgo {
    /// The ego id.
    pub fn ego_id(&self) -> EgoId {
        self.ego_id
    }

    /// The DHT key.
    pub fn dht_key(&self) -> DhtKey {
        self.dht_key
    }

    /// The decoded record.
    pub fn record(&self) -> &EgoRecord {
        &self.record
    }

    /// The exact bytes that were verified.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The certificate.
    pub fn cert(&self) -> &EgoCert {
        &self.record.cert.body
    }

    /// The certified ego key.
    pub fn ego_key(&self) -> PublicKey {
        self.record.cert.body.ego_pk
    }

    /// The current circle key.
    pub fn circle_key(&self) -> PublicKey {
        self.record.current_circle_pk()
    }

    /// Whether the certificate revokes the ego.
    pub fn is_revoked(&self) -> bool {
        self.record.cert.body.status == CertStatus::Revoked
    }

    /// Whether the ego key may be used at `now`: the certificate is active
    /// and its window holds (with the allowed skew).
    pub fn key_usable_at(&self, now: UnixTime) -> bool {
        let c = &self.record.cert.body;
        c.status == CertStatus::Active
            && c.not_before <= now.plus(CLOCK_SKEW_SECS)
            && now <= c.not_after.plus(CLOCK_SKEW_SECS)
    }

    /// When the ego key stops being usable: the certificate's `not_after`
    /// plus the allowed skew. A storage node drops the record then.
    pub fn cert_end(&self) -> UnixTime {
        self.record.cert.body.not_after.plus(CLOCK_SKEW_SECS)
    }

    /// How long from `now` until [`VerifiedEgo::cert_end`], zero if it has
    /// passed, and never more than `RECORD_HORIZON_SECS + CLOCK_SKEW_SECS`
    /// (about 90 days), whatever `now` is: safe to add to an `Instant`
    /// with `checked_add`.
    pub fn cert_remaining(&self, now: UnixTime) -> std::time::Duration {
        self.cert_end()
            .duration_until(now, RECORD_HORIZON_SECS + CLOCK_SKEW_SECS)
    }

    /// The endpoints, if the record has them.
    pub fn endpoints(&self) -> Option<&Endpoints> {
        self.record.endpoints.as_ref().map(|e| &e.body)
    }

    /// The endpoints if the ego is active and they have not expired at
    /// `now`.
    pub fn live_endpoints(&self, now: UnixTime) -> Option<&Endpoints> {
        if self.is_revoked() {
            return None;
        }
        self.endpoints()
            .filter(|e| now <= e.expires_at.plus(CLOCK_SKEW_SECS))
    }

    /// When verification ran.
    pub fn verified_at(&self) -> UnixTime {
        self.verified_at
    }

    /// The record's place in the selection order.
    pub fn rank(&self) -> Rank {
        Rank {
            chain_len: self.record.chain.len() as u64,
            epoch: self.record.cert.body.epoch,
            cert_seq: self.record.cert.body.seq,
            endpoints_seq: self.endpoints().map(|e| e.seq).unwrap_or(0),
        }
    }

    /// The digest of the inception and the first `len` links, or `None`
    /// past the chain's end. Two records share a chain prefix of length
    /// `len` exactly when these digests are equal.
    pub fn chain_digest(&self, len: u64) -> Option<[u8; 32]> {
        usize::try_from(len)
            .ok()
            .and_then(|i| self.chain_digests.get(i))
            .copied()
    }

    /// SHA-256 of the certificate body (its signature excluded, as FROST
    /// signatures over the same body differ).
    pub fn cert_digest(&self) -> [u8; 32] {
        self.cert_digest
    }
}

/// `chain_digests[0]` = SHA-256("cyrcles/v1/chain" ‖ ego_id);
/// `chain_digests[i]` = SHA-256(`chain_digests[i-1]` ‖ canonical(link i body)).
fn chain_digests(ego_id: &EgoId, record: &EgoRecord) -> Vec<[u8; 32]> {
    let mut out = Vec::with_capacity(record.chain.len() + 1);
    let mut h: [u8; 32] = Sha256::new()
        .chain_update(b"cyrcles/v1/chain")
        .chain_update(ego_id.as_bytes())
        .finalize()
        .into();
    out.push(h);
    for link in &record.chain {
        h = Sha256::new()
            .chain_update(h)
            .chain_update(link.body.to_cbor())
            .finalize()
            .into();
        out.push(h);
    }
    out
}

/// Remembers (key, context, message, signature) quadruples that verified,
/// so that a verifier seeing new versions of a record it knows checks only
/// the parts that changed. Bounded: the least recently used entries go
/// first. A hit stands for a successful `verify_strict` of exactly the
/// same bytes (SHA-256 of all of them), so the result is the same as
/// without the cache.
#[derive(Debug)]
pub struct SignatureCache {
    seen: Lru<[u8; 32], ()>,
}

impl SignatureCache {
    /// A cache of at most `capacity` signatures.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Lru::new(capacity),
        }
    }

    fn digest(key: &PublicKey, context: Context, message: &[u8], sig: &Signature) -> [u8; 32] {
        Sha256::new()
            .chain_update(key.as_bytes())
            .chain_update(sig.0)
            .chain_update(context.signing_bytes(message))
            .finalize()
            .into()
    }

    fn verify(
        &mut self,
        key: &PublicKey,
        context: Context,
        message: &[u8],
        sig: &Signature,
    ) -> Result<(), SignatureError> {
        let d = Self::digest(key, context, message, sig);
        if self.seen.touch(&d) {
            return Ok(());
        }
        key.verify(context, message, sig)?;
        self.seen.insert(d, ());
        Ok(())
    }
}

/// Verifies one signed part, through the cache if there is one.
fn check<T: SignedBody>(
    cache: &mut Option<&mut SignatureCache>,
    signed: &Signed<T>,
    key: &PublicKey,
    part: Part,
) -> Result<(), RecordError> {
    let body = signed.body.to_cbor();
    let result = match cache {
        Some(c) => c.verify(key, T::CONTEXT, &body, &signed.sig),
        None => key.verify(T::CONTEXT, &body, &signed.sig),
    };
    result.map_err(|reason| RecordError::BadSignature { part, reason })
}

/// Validates `bytes` as the ego record stored under `expected_key`, at time
/// `now`. This and [`verify_cached`] are the only constructors of
/// [`VerifiedEgo`].
pub fn verify(
    bytes: &[u8],
    expected_key: &DhtKey,
    now: UnixTime,
) -> Result<VerifiedEgo, RecordError> {
    verify_inner(bytes, expected_key, now, None)
}

/// [`verify`], skipping signature checks that `cache` has seen succeed.
pub fn verify_cached(
    bytes: &[u8],
    expected_key: &DhtKey,
    now: UnixTime,
    cache: &mut SignatureCache,
) -> Result<VerifiedEgo, RecordError> {
    verify_inner(bytes, expected_key, now, Some(cache))
}

fn verify_inner(
    bytes: &[u8],
    expected_key: &DhtKey,
    now: UnixTime,
    mut cache: Option<&mut SignatureCache>,
) -> Result<VerifiedEgo, RecordError> {
    // Rule 1.
    let record = EgoRecord::decode_bytes(bytes)?;

    // Rule 2.
    let ego_id = record.ego_id();
    if record.cert.body.ego_id != ego_id {
        return Err(RecordError::EgoIdMismatch(Part::EgoCert));
    }
    if let Some(i) = record.chain.iter().position(|l| l.body.ego_id != ego_id) {
        return Err(RecordError::EgoIdMismatch(Part::CircleLink(i as u64 + 1)));
    }
    if let Some(ep) = &record.endpoints
        && ep.body.ego_id != ego_id
    {
        return Err(RecordError::EgoIdMismatch(Part::Endpoints));
    }
    let dht_key = ego_id.dht_key();
    if &dht_key != expected_key {
        return Err(RecordError::DhtKeyMismatch);
    }

    // Rule 3. Circle key `k` is the inception's for k = 0, link k's after.
    let inception = &record.inception;
    let root = inception.body.root_pk;
    check(&mut cache, inception, &root, Part::Inception)?;
    let mut signer = root;
    for (i, link) in record.chain.iter().enumerate() {
        check(&mut cache, link, &signer, Part::CircleLink(i as u64 + 1))?;
        signer = link.body.circle_pk;
    }
    let cert = &record.cert.body;
    let chain_len = record.chain.len() as u64;
    let cert_signer = match cert.circle_index {
        0 => Some(inception.body.circle_pk),
        k => usize::try_from(k - 1)
            .ok()
            .and_then(|i| record.chain.get(i))
            .map(|l| l.body.circle_pk),
    };
    let Some(cert_signer) = cert_signer else {
        // A certificate naming a circle the chain does not have cannot be
        // signed by the last circle key.
        return Err(RecordError::CertNotFromLastCircle {
            circle_index: cert.circle_index,
            chain_len,
        });
    };
    check(&mut cache, &record.cert, &cert_signer, Part::EgoCert)?;
    // The certified key must be one that could verify a login, even if
    // nothing in the record is signed by it: a small-order key would let
    // anyone sign for the ego at a lenient verifier. With endpoints, their
    // strict check under that key (or its cached success) covers it.
    match &record.endpoints {
        Some(ep) => check(&mut cache, ep, &cert.ego_pk, Part::Endpoints)?,
        None => cert
            .ego_pk
            .check()
            .map_err(|reason| RecordError::BadSignature {
                part: Part::EgoCert,
                reason,
            })?,
    }

    // Rule 4.
    let mut previous = inception.body.created_at;
    for (i, link) in record.chain.iter().enumerate() {
        let position = i as u64 + 1;
        if link.body.index != position {
            return Err(RecordError::ChainIndex {
                position,
                found: link.body.index,
            });
        }
        if link.body.issued_at < previous {
            return Err(RecordError::ChainOrder(position));
        }
        previous = link.body.issued_at;
    }
    if cert.circle_index != chain_len {
        return Err(RecordError::CertNotFromLastCircle {
            circle_index: cert.circle_index,
            chain_len,
        });
    }

    // Rule 5.
    let horizon = now.plus(MAX_FUTURE_SECS);
    if inception.body.created_at > horizon {
        return Err(RecordError::NotYetValid(Part::Inception));
    }
    for link in &record.chain {
        if link.body.issued_at > horizon {
            return Err(RecordError::NotYetValid(Part::CircleLink(link.body.index)));
        }
    }
    if cert.not_after <= cert.not_before {
        return Err(RecordError::InvalidWindow(Part::EgoCert));
    }
    if cert.not_after.since(cert.not_before) > MAX_CERT_VALIDITY_SECS {
        return Err(RecordError::ValidityTooLong(Part::EgoCert));
    }
    if cert.not_before > now.plus(CLOCK_SKEW_SECS) {
        return Err(RecordError::NotYetValid(Part::EgoCert));
    }
    if now > cert.not_after.plus(CLOCK_SKEW_SECS) {
        return Err(RecordError::CertExpired(cert.not_after));
    }
    if let Some(ep) = &record.endpoints {
        if ep.body.expires_at <= ep.body.issued_at {
            return Err(RecordError::InvalidWindow(Part::Endpoints));
        }
        if ep.body.expires_at.since(ep.body.issued_at) > MAX_ENDPOINTS_VALIDITY_SECS {
            return Err(RecordError::ValidityTooLong(Part::Endpoints));
        }
        if ep.body.issued_at > horizon {
            return Err(RecordError::NotYetValid(Part::Endpoints));
        }
    }

    let chain_digests = chain_digests(&ego_id, &record);
    let cert_digest = Sha256::digest(cert.to_cbor()).into();
    Ok(VerifiedEgo {
        ego_id,
        dht_key,
        record,
        bytes: bytes.to_vec(),
        chain_digests,
        cert_digest,
        verified_at: now,
    })
}
