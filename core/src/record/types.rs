//! The parts of an ego record and their canonical encodings.
//!
//! Every structure is a CBOR map with small unsigned-integer keys, written
//! in ascending key order, holding exactly the keys listed (see
//! `docs/protocol.md` for the CDDL). A signed part is the two-item array
//! `[body, signature]`; the signature covers
//! `context ‖ 0x00 ‖ canonical(body)`.

use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;
use crate::keys::{Context, PublicKey, Signature};
use crate::time::UnixTime;

/// The record format version this implementation reads and writes.
pub const RECORD_VERSION: u64 = 1;
/// The inception format version.
pub const INCEPTION_VERSION: u64 = 1;
/// Hard cap on an encoded record: the Kademlia packet limit.
pub const MAX_RECORD_SIZE: usize = 16 * 1024;
/// Most links a circle chain may hold.
pub const MAX_CHAIN_LINKS: usize = 128;
/// Most peers in an endpoints list.
pub const MAX_PEERS: usize = 8;
/// Most addresses per peer.
pub const MAX_ADDRS_PER_PEER: usize = 8;
/// Longest peer id (a libp2p `PeerId` in its binary multihash form).
pub const MAX_PEER_ID_LEN: usize = 64;
/// Longest address (a multiaddr in its binary form; relay circuits are long).
pub const MAX_ADDR_LEN: usize = 256;

/// A body that is signed in a given context.
pub trait SignedBody: Encode + Decode {
    /// The signing context of this kind of body.
    const CONTEXT: Context;
}

/// A body with its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    /// What was signed.
    pub body: T,
    /// Ed25519 signature over `T::CONTEXT ‖ 0x00 ‖ canonical(body)`.
    pub sig: Signature,
}

impl<T: SignedBody> Signed<T> {
    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        T::CONTEXT.signing_bytes(&self.body.to_cbor())
    }

    /// Verifies the signature under `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), crate::keys::SignatureError> {
        key.verify(T::CONTEXT, &self.body.to_cbor(), &self.sig)
    }
}

impl<T: SignedBody> Encode for Signed<T> {
    fn encode(&self, e: &mut Encoder) {
        e.array(2);
        self.body.encode(e);
        self.sig.encode(e);
    }
}

impl<T: SignedBody> Decode for Signed<T> {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.array_exact("signed part", 2)?;
        let body = T::decode(d)?;
        let sig = Signature::decode(d)?;
        Ok(Self { body, sig })
    }
}

fn time(d: &mut Decoder<'_>) -> Result<UnixTime, DecodeError> {
    d.uint().map(UnixTime::from_secs)
}

fn ego_id(d: &mut Decoder<'_>) -> Result<EgoId, DecodeError> {
    d.bytes_fixed::<32>("ego_id").map(EgoId::from_bytes)
}

/// The ego's birth certificate. Its hash is the ego id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inception {
    /// The root key: signs this inception and the first circle link.
    pub root_pk: PublicKey,
    /// The first circle key, held whole by the owner until the circle is
    /// first shared.
    pub circle_pk: PublicKey,
    /// When the ego was created.
    pub created_at: UnixTime,
}

impl Inception {
    /// The ego id: SHA-256 of this inception's canonical encoding.
    pub fn ego_id(&self) -> EgoId {
        EgoId::of_inception(&self.to_cbor())
    }
}

impl Encode for Inception {
    fn encode(&self, e: &mut Encoder) {
        e.map(4);
        e.key(0);
        e.uint(INCEPTION_VERSION);
        e.key(1);
        self.root_pk.encode(e);
        e.key(2);
        self.circle_pk.encode(e);
        e.key(3);
        e.uint(self.created_at.secs());
    }
}

impl Decode for Inception {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("inception")?;
        m.key(d, 0)?;
        let version = d.uint()?;
        if version != INCEPTION_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        m.expect_len(4)?;
        m.key(d, 1)?;
        let root_pk = PublicKey::decode(d, "root_pk")?;
        m.key(d, 2)?;
        let circle_pk = PublicKey::decode(d, "circle_pk")?;
        m.key(d, 3)?;
        let created_at = time(d)?;
        Ok(Self {
            root_pk,
            circle_pk,
            created_at,
        })
    }
}

impl SignedBody for Inception {
    const CONTEXT: Context = Context::Inception;
}

/// One step of the circle chain: a new circle key, vouched for by the
/// previous one (or by the root key for the first link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleLink {
    /// The ego whose chain this is (so that a link signature is never
    /// valid in another ego's record).
    pub ego_id: EgoId,
    /// Position in the chain, starting at 1.
    pub index: u64,
    /// The new circle key.
    pub circle_pk: PublicKey,
    /// When the link was made.
    pub issued_at: UnixTime,
}

impl Encode for CircleLink {
    fn encode(&self, e: &mut Encoder) {
        e.map(4);
        e.key(0);
        e.bytes(self.ego_id.as_bytes());
        e.key(1);
        e.uint(self.index);
        e.key(2);
        self.circle_pk.encode(e);
        e.key(3);
        e.uint(self.issued_at.secs());
    }
}

impl Decode for CircleLink {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("circle link")?;
        m.expect_len(4)?;
        m.key(d, 0)?;
        let ego_id = ego_id(d)?;
        m.key(d, 1)?;
        let index = d.uint()?;
        m.key(d, 2)?;
        let circle_pk = PublicKey::decode(d, "circle_pk")?;
        m.key(d, 3)?;
        let issued_at = time(d)?;
        Ok(Self {
            ego_id,
            index,
            circle_pk,
            issued_at,
        })
    }
}

impl SignedBody for CircleLink {
    const CONTEXT: Context = Context::CircleLink;
}

/// Whether a certificate vouches for its key or kills the ego.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertStatus {
    /// The ego key may sign logins and endpoints.
    Active,
    /// The ego is revoked: no key of it may be used any more.
    Revoked,
}

impl CertStatus {
    fn code(self) -> u64 {
        match self {
            CertStatus::Active => 0,
            CertStatus::Revoked => 1,
        }
    }
}

/// The circle's statement of which key is the ego's current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgoCert {
    /// The ego this certificate belongs to.
    pub ego_id: EgoId,
    /// Sequence number; each new certificate of an ego has a higher one.
    pub seq: u64,
    /// The certified ego key.
    pub ego_pk: PublicKey,
    /// Start of validity.
    pub not_before: UnixTime,
    /// End of validity.
    pub not_after: UnixTime,
    /// Active or revoked.
    pub status: CertStatus,
    /// Index of the circle key that signed it: 0 for the inception's circle
    /// key, otherwise the index of a chain link. It must be the last one.
    pub circle_index: u64,
    /// Authority epoch: a certificate the members' humans approved (a
    /// recovery) raises it by one; one signed on the device's word (a
    /// rotation) keeps it. A higher epoch wins over any seq of a lower one
    /// (docs/protocol.md, section 7). Encoded only when not 0.
    pub epoch: u64,
}

impl Encode for EgoCert {
    fn encode(&self, e: &mut Encoder) {
        e.map(if self.epoch == 0 { 7 } else { 8 });
        e.key(0);
        e.bytes(self.ego_id.as_bytes());
        e.key(1);
        e.uint(self.seq);
        e.key(2);
        self.ego_pk.encode(e);
        e.key(3);
        e.uint(self.not_before.secs());
        e.key(4);
        e.uint(self.not_after.secs());
        e.key(5);
        e.uint(self.status.code());
        e.key(6);
        e.uint(self.circle_index);
        if self.epoch != 0 {
            e.key(7);
            e.uint(self.epoch);
        }
    }
}

impl Decode for EgoCert {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("ego certificate")?;
        // Key 7 (epoch) is present only when not 0.
        let with_epoch = m.len() == 8;
        if !with_epoch {
            m.expect_len(7)?;
        }
        m.key(d, 0)?;
        let ego_id = ego_id(d)?;
        m.key(d, 1)?;
        let seq = d.uint()?;
        m.key(d, 2)?;
        let ego_pk = PublicKey::decode(d, "ego_pk")?;
        m.key(d, 3)?;
        let not_before = time(d)?;
        m.key(d, 4)?;
        let not_after = time(d)?;
        m.key(d, 5)?;
        let status = match d.uint()? {
            0 => CertStatus::Active,
            1 => CertStatus::Revoked,
            value => {
                return Err(DecodeError::UnknownValue {
                    what: "status",
                    value,
                });
            }
        };
        m.key(d, 6)?;
        let circle_index = d.uint()?;
        let epoch = if with_epoch {
            m.key(d, 7)?;
            match d.uint()? {
                0 => return Err(DecodeError::ExplicitDefault { what: "epoch" }),
                epoch => epoch,
            }
        } else {
            0
        };
        Ok(Self {
            ego_id,
            seq,
            ego_pk,
            not_before,
            not_after,
            status,
            circle_index,
            epoch,
        })
    }
}

impl SignedBody for EgoCert {
    const CONTEXT: Context = Context::EgoCert;
}

/// One network peer of the ego's agent and the addresses it is reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEndpoint {
    /// The peer's libp2p `PeerId`, binary multihash form.
    pub peer_id: Vec<u8>,
    /// Its multiaddrs, binary form, relay circuits included.
    pub addrs: Vec<Vec<u8>>,
}

impl Encode for PeerEndpoint {
    fn encode(&self, e: &mut Encoder) {
        e.map(2);
        e.key(0);
        e.bytes(&self.peer_id);
        e.key(1);
        e.array(self.addrs.len());
        for a in &self.addrs {
            e.bytes(a);
        }
    }
}

impl Decode for PeerEndpoint {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("peer")?;
        m.expect_len(2)?;
        m.key(d, 0)?;
        let peer_id = d.bytes_in("peer_id", 1, MAX_PEER_ID_LEN)?.to_vec();
        m.key(d, 1)?;
        let n = d.array("addrs", MAX_ADDRS_PER_PEER)?;
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            addrs.push(d.bytes_in("addr", 1, MAX_ADDR_LEN)?.to_vec());
        }
        Ok(Self { peer_id, addrs })
    }
}

/// Where the ego's agent can be reached, signed by the ego key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The ego.
    pub ego_id: EgoId,
    /// Sequence number; each new endpoints list has a higher one.
    pub seq: u64,
    /// The agent's peers.
    pub peers: Vec<PeerEndpoint>,
    /// When the list was signed.
    pub issued_at: UnixTime,
    /// After this the list is stale (the record stays valid).
    pub expires_at: UnixTime,
}

impl Encode for Endpoints {
    fn encode(&self, e: &mut Encoder) {
        e.map(5);
        e.key(0);
        e.bytes(self.ego_id.as_bytes());
        e.key(1);
        e.uint(self.seq);
        e.key(2);
        e.array(self.peers.len());
        for p in &self.peers {
            p.encode(e);
        }
        e.key(3);
        e.uint(self.issued_at.secs());
        e.key(4);
        e.uint(self.expires_at.secs());
    }
}

impl Decode for Endpoints {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("endpoints")?;
        m.expect_len(5)?;
        m.key(d, 0)?;
        let ego_id = ego_id(d)?;
        m.key(d, 1)?;
        let seq = d.uint()?;
        m.key(d, 2)?;
        let n = d.array("peers", MAX_PEERS)?;
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            peers.push(PeerEndpoint::decode(d)?);
        }
        m.key(d, 3)?;
        let issued_at = time(d)?;
        m.key(d, 4)?;
        let expires_at = time(d)?;
        Ok(Self {
            ego_id,
            seq,
            peers,
            issued_at,
            expires_at,
        })
    }
}

impl SignedBody for Endpoints {
    const CONTEXT: Context = Context::Endpoints;
}

/// A whole ego record, as stored in the DHT. Decoding one proves nothing;
/// [`crate::record::verify`] turns bytes into a [`crate::record::VerifiedEgo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgoRecord {
    /// The signed inception.
    pub inception: Signed<Inception>,
    /// The circle chain, link 1 first.
    pub chain: Vec<Signed<CircleLink>>,
    /// The current certificate.
    pub cert: Signed<EgoCert>,
    /// The agent's endpoints, if any.
    pub endpoints: Option<Signed<Endpoints>>,
}

impl EgoRecord {
    /// The ego id this record claims (hash of its inception).
    pub fn ego_id(&self) -> EgoId {
        self.inception.body.ego_id()
    }

    /// The key of the current circle: the last link's, or the inception's
    /// when the chain is empty.
    pub fn current_circle_pk(&self) -> PublicKey {
        self.chain
            .last()
            .map(|l| l.body.circle_pk)
            .unwrap_or(self.inception.body.circle_pk)
    }

    /// Decodes a record, checking the size cap first.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_cbor(bytes, MAX_RECORD_SIZE)
    }
}

impl Encode for EgoRecord {
    fn encode(&self, e: &mut Encoder) {
        e.map(5);
        e.key(0);
        e.uint(RECORD_VERSION);
        e.key(1);
        self.inception.encode(e);
        e.key(2);
        e.array(self.chain.len());
        for link in &self.chain {
            link.encode(e);
        }
        e.key(3);
        self.cert.encode(e);
        e.key(4);
        match &self.endpoints {
            Some(ep) => ep.encode(e),
            None => e.null(),
        }
    }
}

impl Decode for EgoRecord {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("ego record")?;
        m.key(d, 0)?;
        let version = d.uint()?;
        if version != RECORD_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        m.expect_len(5)?;
        m.key(d, 1)?;
        let inception = Signed::<Inception>::decode(d)?;
        m.key(d, 2)?;
        let n = d.array("chain", MAX_CHAIN_LINKS)?;
        let mut chain = Vec::with_capacity(n);
        for _ in 0..n {
            chain.push(Signed::<CircleLink>::decode(d)?);
        }
        m.key(d, 3)?;
        let cert = Signed::<EgoCert>::decode(d)?;
        m.key(d, 4)?;
        let endpoints = d.optional(Signed::<Endpoints>::decode)?;
        Ok(Self {
            inception,
            chain,
            cert,
            endpoints,
        })
    }
}
