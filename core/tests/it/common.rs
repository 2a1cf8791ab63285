//! Deterministic fixtures: seeded keys and records built through the
//! public builder API.

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder::{self, sign_with_circle, sign_with_key};
use cyrcles_core::record::{EgoRecord, PeerEndpoint, Signed, SignedBody, VerifiedEgo};
use cyrcles_core::{CircleSecret, SecretKey, UnixTime, verify};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// 2026-01-01T00:00:00Z.
pub const T0: UnixTime = UnixTime::from_secs(1_767_225_600);
/// When fixtures are verified: shortly after they were built.
pub const NOW: UnixTime = UnixTime::from_secs(1_767_225_600 + 3_600);

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub fn peer(n: u8) -> PeerEndpoint {
    PeerEndpoint {
        // An identity multihash of a 36-byte protobuf Ed25519 key, as libp2p
        // writes PeerIds: 0x00 0x24 then the key.
        peer_id: [&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20][..], &[n; 32][..]].concat(),
        // /ip4/127.0.0.1/tcp/4001 in binary multiaddr form.
        addrs: vec![vec![0x04, 127, 0, 0, 1, 0x06, 0x0f, 0xa1]],
    }
}

/// An ego and every secret its owner holds, with the circle keys of each
/// generation (index 0 = the inception's).
pub struct Owner {
    pub root: SecretKey,
    pub circles: Vec<CircleSecret>,
    pub ego: SecretKey,
    pub record: EgoRecord,
    pub rng: ChaCha20Rng,
}

impl Owner {
    /// A fresh ego created at [`T0`] with one endpoint.
    pub fn new(seed: u64) -> Self {
        let mut rng = rng(seed);
        let new = builder::create_ego(
            &mut rng,
            T0,
            builder::DEFAULT_CERT_VALIDITY_SECS,
            vec![peer(1)],
            builder::DEFAULT_ENDPOINTS_VALIDITY_SECS,
        )
        .unwrap();
        Self {
            root: new.root,
            circles: vec![new.circle],
            ego: new.ego,
            record: new.record,
            rng,
        }
    }

    pub fn circle(&self) -> &CircleSecret {
        self.circles.last().unwrap()
    }

    /// Signs a body with the current (last) circle key.
    pub fn sign_current<T: SignedBody>(&mut self, body: T) -> Signed<T> {
        sign_with_circle(self.circles.last().unwrap(), &mut self.rng, body)
    }

    /// Adds a circle link (signed by the root key or the previous circle
    /// key) and re-certifies the same ego key under the new circle.
    pub fn add_link(&mut self, at: UnixTime) {
        let next = CircleSecret::generate(&mut self.rng);
        let body = self.record.next_link(next.public(), at);
        let link = if self.record.chain.is_empty() {
            sign_with_key(&self.root, body)
        } else {
            sign_with_circle(self.circles.last().unwrap(), &mut self.rng, body)
        };
        self.record.push_link(link).unwrap();
        self.circles.push(next);
        let cert =
            self.record
                .next_cert(self.ego.public(), at, builder::DEFAULT_CERT_VALIDITY_SECS);
        let signed = sign_with_circle(self.circles.last().unwrap(), &mut self.rng, cert);
        self.record.set_cert(signed).unwrap();
    }

    /// Rotates the ego key with the whole current circle key, then signs
    /// fresh endpoints.
    pub fn rotate(&mut self, at: UnixTime) {
        let new_key = SecretKey::generate(&mut self.rng);
        let circle = self.circles.last().unwrap();
        self.record
            .certify_with(
                circle,
                &mut self.rng,
                new_key.public(),
                at,
                builder::DEFAULT_CERT_VALIDITY_SECS,
            )
            .unwrap();
        self.ego = new_key;
        self.record
            .set_endpoints(
                &self.ego,
                vec![peer(2)],
                at,
                builder::DEFAULT_ENDPOINTS_VALIDITY_SECS,
            )
            .unwrap();
    }

    /// A recovery: a new ego key certified with the epoch raised by one (as
    /// a threshold of members sign it), then fresh endpoints.
    pub fn recover(&mut self, at: UnixTime) {
        let new_key = SecretKey::generate(&mut self.rng);
        let cert =
            self.record
                .recovery_cert(new_key.public(), at, builder::DEFAULT_CERT_VALIDITY_SECS);
        let signed = sign_with_circle(self.circles.last().unwrap(), &mut self.rng, cert);
        self.record.set_cert(signed).unwrap();
        self.ego = new_key;
        self.record
            .set_endpoints(
                &self.ego,
                vec![peer(2)],
                at,
                builder::DEFAULT_ENDPOINTS_VALIDITY_SECS,
            )
            .unwrap();
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.record.to_cbor()
    }

    pub fn verify_at(&self, now: UnixTime) -> VerifiedEgo {
        let bytes = self.bytes();
        verify(&bytes, &self.record.ego_id().dht_key(), now).unwrap()
    }
}

/// Signs `body` as the link at `index` (0-based) of `o`'s chain: by the root
/// key for the first link, by circle key `index` after.
pub fn sign_link(
    o: &mut Owner,
    index: usize,
    body: cyrcles_core::record::CircleLink,
) -> Signed<cyrcles_core::record::CircleLink> {
    if index == 0 {
        sign_with_key(&o.root, body)
    } else {
        sign_with_circle(&o.circles[index], &mut o.rng, body)
    }
}

/// An owner whose chain has three links (made at T0+10, +20, +30).
pub fn three_links(seed: u64) -> Owner {
    let mut o = Owner::new(seed);
    for i in 1..=3 {
        o.add_link(T0.plus(10 * i));
    }
    o
}
