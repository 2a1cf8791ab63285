//! Owner-side builders: everything an owner's agent does to its own
//! record. Each step checks what it is given, so a record built only
//! through these functions always verifies.
//!
//! Signatures by a threshold circle come from a FROST session
//! ([`crate::circle::signing`]): the builder hands out the body to sign
//! ([`EgoRecord::next_link`], [`EgoRecord::next_cert`]) and takes back the
//! signed part ([`EgoRecord::push_link`], [`EgoRecord::set_cert`]), which it
//! verifies before accepting.

use rand_core::{CryptoRng, RngCore};
use thiserror::Error;

use crate::cbor::Encode;
use crate::keys::{CircleSecret, PublicKey, SecretKey, SignatureError};
use crate::time::{MAX_CERT_VALIDITY_SECS, MAX_ENDPOINTS_VALIDITY_SECS, UnixTime};

use super::types::{
    CertStatus, CircleLink, EgoCert, EgoRecord, Endpoints, Inception, MAX_ADDR_LEN,
    MAX_ADDRS_PER_PEER, MAX_CHAIN_LINKS, MAX_PEER_ID_LEN, MAX_PEERS, MAX_RECORD_SIZE, PeerEndpoint,
    Signed, SignedBody,
};

/// Default certificate validity: 30 days.
pub const DEFAULT_CERT_VALIDITY_SECS: u64 = 30 * 24 * 60 * 60;
/// Default endpoints validity: 1 day (the agent re-signs them daily).
pub const DEFAULT_ENDPOINTS_VALIDITY_SECS: u64 = 24 * 60 * 60;

/// Why a builder step was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The signed part does not verify under the key that must sign it.
    #[error("the part is not signed by the required key: {0}")]
    WrongSigner(SignatureError),
    /// The part does not follow the current record (index, seq or ego id).
    #[error("the part does not follow the current record: {0}")]
    OutOfSequence(&'static str),
    /// The ego is revoked; its record can no longer change.
    #[error("the ego is revoked")]
    Revoked,
    /// The chain has reached its maximum length.
    #[error("the circle chain is full")]
    ChainFull,
    /// A limit of the record format would be exceeded.
    #[error("record limit exceeded: {0}")]
    Limit(&'static str),
    /// The signing key is not the certified ego key.
    #[error("the key is not the certified ego key")]
    NotTheEgoKey,
    /// A validity period of zero.
    #[error("validity must be at least one second")]
    EmptyValidity,
}

/// Signs a body with an Ed25519 key (root or ego key).
pub fn sign_with_key<T: SignedBody>(key: &SecretKey, body: T) -> Signed<T> {
    let sig = key.sign(T::CONTEXT, &body.to_cbor());
    Signed { body, sig }
}

/// Signs a body with a whole circle key.
pub fn sign_with_circle<T: SignedBody, R: RngCore + CryptoRng>(
    key: &CircleSecret,
    rng: &mut R,
    body: T,
) -> Signed<T> {
    let sig = key.sign(rng, T::CONTEXT, &body.to_cbor());
    Signed { body, sig }
}

/// A freshly created ego: its three secret keys and its first record.
#[derive(Debug)]
pub struct NewEgo {
    /// Signs the inception and the first circle link; deleted once the
    /// circle is first shared.
    pub root: SecretKey,
    /// The first circle key, held whole until a friend joins.
    pub circle: CircleSecret,
    /// The hot ego key.
    pub ego: SecretKey,
    /// The first record: certificate seq 1, and endpoints if peers were
    /// given.
    pub record: EgoRecord,
}

/// Creates an ego: generates the root, circle and ego keys, signs the
/// inception, a certificate with seq 1 valid `cert_validity` seconds (at
/// most [`MAX_CERT_VALIDITY_SECS`]), and the endpoints (when `peers` is not
/// empty; at most [`MAX_ENDPOINTS_VALIDITY_SECS`]).
pub fn create_ego<R: RngCore + CryptoRng>(
    rng: &mut R,
    now: UnixTime,
    cert_validity: u64,
    peers: Vec<PeerEndpoint>,
    endpoints_validity: u64,
) -> Result<NewEgo, BuildError> {
    let root = SecretKey::generate(rng);
    let circle = CircleSecret::generate(rng);
    let ego = SecretKey::generate(rng);
    let record = first_record(&root, &circle, &ego, rng, now, cert_validity)?;
    let mut new = NewEgo {
        root,
        circle,
        ego,
        record,
    };
    if !peers.is_empty() {
        new.record
            .set_endpoints(&new.ego, peers, now, endpoints_validity)?;
    }
    Ok(new)
}

/// The record of a new ego from given keys, without endpoints.
pub fn first_record<R: RngCore + CryptoRng>(
    root: &SecretKey,
    circle: &CircleSecret,
    ego: &SecretKey,
    rng: &mut R,
    now: UnixTime,
    cert_validity: u64,
) -> Result<EgoRecord, BuildError> {
    if cert_validity == 0 {
        return Err(BuildError::EmptyValidity);
    }
    if cert_validity > MAX_CERT_VALIDITY_SECS {
        return Err(BuildError::Limit("certificate validity"));
    }
    let inception = Inception {
        root_pk: root.public(),
        circle_pk: circle.public(),
        created_at: now,
    };
    let ego_id = inception.ego_id();
    let cert = EgoCert {
        ego_id,
        seq: 1,
        ego_pk: ego.public(),
        not_before: now,
        not_after: now.plus(cert_validity),
        status: CertStatus::Active,
        circle_index: 0,
        epoch: 0,
    };
    Ok(EgoRecord {
        inception: sign_with_key(root, inception),
        chain: Vec::new(),
        cert: sign_with_circle(circle, rng, cert),
        endpoints: None,
    })
}

impl EgoRecord {
    fn ensure_not_revoked(&self) -> Result<(), BuildError> {
        if self.cert.body.status == CertStatus::Revoked {
            return Err(BuildError::Revoked);
        }
        Ok(())
    }

    /// The key that must sign the next link: the root key for link 1, the
    /// current circle key after.
    pub fn next_link_signer(&self) -> PublicKey {
        match self.chain.last() {
            None => self.inception.body.root_pk,
            Some(l) => l.body.circle_pk,
        }
    }

    /// The body of the next circle link, introducing `circle_pk`.
    pub fn next_link(&self, circle_pk: PublicKey, now: UnixTime) -> CircleLink {
        let previous = self
            .chain
            .last()
            .map(|l| l.body.issued_at)
            .unwrap_or(self.inception.body.created_at);
        CircleLink {
            ego_id: self.ego_id(),
            index: self.chain.len() as u64 + 1,
            circle_pk,
            // Never older than what precedes it (rule 4), even if the
            // caller's clock went back.
            issued_at: now.max(previous),
        }
    }

    /// Appends a signed link after checking its index and its signature by
    /// [`EgoRecord::next_link_signer`]. The certificate must be re-issued by
    /// the new circle key next ([`EgoRecord::set_cert`]); until then the
    /// record does not verify.
    pub fn push_link(&mut self, link: Signed<CircleLink>) -> Result<(), BuildError> {
        self.ensure_not_revoked()?;
        if self.chain.len() >= MAX_CHAIN_LINKS {
            return Err(BuildError::ChainFull);
        }
        if link.body.ego_id != self.ego_id() {
            return Err(BuildError::OutOfSequence("ego id"));
        }
        if link.body.index != self.chain.len() as u64 + 1 {
            return Err(BuildError::OutOfSequence("link index"));
        }
        let previous = self
            .chain
            .last()
            .map(|l| l.body.issued_at)
            .unwrap_or(self.inception.body.created_at);
        if link.body.issued_at < previous {
            return Err(BuildError::OutOfSequence("link time"));
        }
        link.verify(&self.next_link_signer())
            .map_err(BuildError::WrongSigner)?;
        self.chain.push(link);
        Ok(())
    }

    /// The body of the next certificate (seq + 1, the same epoch, signed by
    /// the last circle key) for `ego_pk`, valid from `now` for `validity`
    /// seconds, taken between 1 and [`MAX_CERT_VALIDITY_SECS`]: a rotation.
    pub fn next_cert(&self, ego_pk: PublicKey, now: UnixTime, validity: u64) -> EgoCert {
        EgoCert {
            ego_id: self.ego_id(),
            seq: self.cert.body.seq.saturating_add(1),
            ego_pk,
            not_before: now,
            not_after: now.plus(validity.clamp(1, MAX_CERT_VALIDITY_SECS)),
            status: CertStatus::Active,
            circle_index: self.chain.len() as u64,
            epoch: self.cert.body.epoch,
        }
    }

    /// The body of a recovery's certificate: like [`EgoRecord::next_cert`]
    /// with the epoch raised by one, so that it wins over every certificate
    /// of the current epoch, whatever their seqs (a thief's rotations).
    pub fn recovery_cert(&self, ego_pk: PublicKey, now: UnixTime, validity: u64) -> EgoCert {
        let mut cert = self.next_cert(ego_pk, now, validity);
        cert.epoch = cert.epoch.saturating_add(1);
        cert
    }

    /// The body of a revocation: seq + 1, status revoked, valid at least as
    /// long as the certificate it replaces so that it outlives every key it
    /// revokes. It starts at `now`, or at the current certificate's start
    /// if that is later (within the clock skew), so that it never spans
    /// more than the current one plus `validity` and stays within
    /// [`MAX_CERT_VALIDITY_SECS`].
    pub fn revocation(&self, now: UnixTime, validity: u64) -> EgoCert {
        let current = &self.cert.body;
        let start = now.max(current.not_before);
        let mut cert = self.next_cert(current.ego_pk, start, validity);
        cert.status = CertStatus::Revoked;
        cert.not_after = cert.not_after.max(current.not_after);
        cert
    }

    /// Installs a signed certificate after checking that it follows the
    /// current one and is signed by the last circle key. Endpoints signed
    /// by another ego key, or kept on a revoked ego, are dropped.
    pub fn set_cert(&mut self, cert: Signed<EgoCert>) -> Result<(), BuildError> {
        self.ensure_not_revoked()?;
        let body = &cert.body;
        if body.ego_id != self.ego_id() {
            return Err(BuildError::OutOfSequence("ego id"));
        }
        let current = &self.cert.body;
        if body.epoch < current.epoch {
            return Err(BuildError::OutOfSequence("certificate epoch"));
        }
        if body.epoch == current.epoch && body.seq <= current.seq {
            return Err(BuildError::OutOfSequence("certificate seq"));
        }
        if body.circle_index != self.chain.len() as u64 {
            return Err(BuildError::OutOfSequence("circle index"));
        }
        if body.not_after <= body.not_before {
            return Err(BuildError::EmptyValidity);
        }
        if body.not_after.since(body.not_before) > MAX_CERT_VALIDITY_SECS {
            return Err(BuildError::Limit("certificate validity"));
        }
        cert.verify(&self.current_circle_pk())
            .map_err(BuildError::WrongSigner)?;
        if body.ego_pk != self.cert.body.ego_pk || body.status == CertStatus::Revoked {
            self.endpoints = None;
        }
        self.cert = cert;
        Ok(())
    }

    /// Signs a new endpoints list with the ego key. Its seq is one more
    /// than the current list's, or 1 (endpoints seqs are compared only
    /// between records with the same certificate).
    pub fn set_endpoints(
        &mut self,
        ego: &SecretKey,
        peers: Vec<PeerEndpoint>,
        now: UnixTime,
        validity: u64,
    ) -> Result<(), BuildError> {
        self.set_endpoints_from(ego, peers, now, validity, 1)
    }

    /// Like [`EgoRecord::set_endpoints`], with a seq of at least `now` in
    /// seconds. An agent restored from an older backup signs from a record
    /// whose endpoints seq is behind the ones it published since; a seq
    /// that follows the clock still wins over those (as pkarr's
    /// timestamps do).
    pub fn set_endpoints_dated(
        &mut self,
        ego: &SecretKey,
        peers: Vec<PeerEndpoint>,
        now: UnixTime,
        validity: u64,
    ) -> Result<(), BuildError> {
        self.set_endpoints_from(ego, peers, now, validity, now.secs())
    }

    fn set_endpoints_from(
        &mut self,
        ego: &SecretKey,
        peers: Vec<PeerEndpoint>,
        now: UnixTime,
        validity: u64,
        floor: u64,
    ) -> Result<(), BuildError> {
        self.ensure_not_revoked()?;
        if ego.public() != self.cert.body.ego_pk {
            return Err(BuildError::NotTheEgoKey);
        }
        if validity == 0 {
            return Err(BuildError::EmptyValidity);
        }
        if validity > MAX_ENDPOINTS_VALIDITY_SECS {
            return Err(BuildError::Limit("endpoints validity"));
        }
        check_peers(&peers)?;
        let seq = self
            .endpoints
            .as_ref()
            .map(|e| e.body.seq.saturating_add(1))
            .unwrap_or(1)
            .max(floor);
        let endpoints = Endpoints {
            ego_id: self.ego_id(),
            seq,
            peers,
            issued_at: now,
            expires_at: now.plus(validity),
        };
        let previous = self.endpoints.replace(sign_with_key(ego, endpoints));
        if self.to_cbor().len() > MAX_RECORD_SIZE {
            self.endpoints = previous;
            return Err(BuildError::Limit("record size"));
        }
        Ok(())
    }

    /// Convenience for an owner holding the whole circle key: issues and
    /// installs the next certificate for `ego_pk`.
    pub fn certify_with<R: RngCore + CryptoRng>(
        &mut self,
        circle: &CircleSecret,
        rng: &mut R,
        ego_pk: PublicKey,
        now: UnixTime,
        validity: u64,
    ) -> Result<(), BuildError> {
        let body = self.next_cert(ego_pk, now, validity);
        self.set_cert(sign_with_circle(circle, rng, body))
    }

    /// Convenience for an owner holding the whole circle key: revokes the
    /// ego.
    pub fn revoke_with<R: RngCore + CryptoRng>(
        &mut self,
        circle: &CircleSecret,
        rng: &mut R,
        now: UnixTime,
        validity: u64,
    ) -> Result<(), BuildError> {
        let body = self.revocation(now, validity);
        self.set_cert(sign_with_circle(circle, rng, body))
    }
}

fn check_peers(peers: &[PeerEndpoint]) -> Result<(), BuildError> {
    if peers.len() > MAX_PEERS {
        return Err(BuildError::Limit("peers"));
    }
    for p in peers {
        if p.peer_id.is_empty() || p.peer_id.len() > MAX_PEER_ID_LEN {
            return Err(BuildError::Limit("peer id length"));
        }
        if p.addrs.len() > MAX_ADDRS_PER_PEER {
            return Err(BuildError::Limit("addresses per peer"));
        }
        if p.addrs
            .iter()
            .any(|a| a.is_empty() || a.len() > MAX_ADDR_LEN)
        {
            return Err(BuildError::Limit("address length"));
        }
    }
    Ok(())
}
