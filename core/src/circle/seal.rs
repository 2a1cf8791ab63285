//! Sealing a repair message to one member, through a relay that must not
//! read it (DESIGN.md, flow 7: the owner's agent relays between members
//! who do not know each other, and must learn no share).
//!
//! Each participant of a repair makes a one-time X25519 key
//! ([`SealKey`]) and tells its public half through the relay. A sender
//! seals with a fresh ephemeral key: `eph_pk (32) ‖ ChaCha20-Poly1305(k,
//! nonce 0, aad)`, where `k = SHA-256("cyrcles/v1/repair-seal" ‖ 0x00 ‖
//! eph_pk ‖ recipient_pk ‖ X25519(eph, recipient))`. Every key is used
//! once, so the zero nonce never repeats under one key. The additional
//! data binds the session and both members, so a sealed item cannot be
//! replayed into another session or redirected.
//!
//! What this does not do: members do not know each other, so they cannot
//! authenticate each other's keys. A relay that lies about keys (a
//! compromised owner's device) could learn the repaired share: one share,
//! below the threshold. Sealing keeps shares out of an honest relay's
//! memory, logs and network traces.
//!
//! The relay's messages: [`RepairKeys`] carries the participants' public
//! sealing keys, [`RepairSealed`] a bundle of sealed items.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::CircleError;
use super::messages::{CIRCLE_VERSION, MAX_MEMBERS, MemberId, SessionId, version};
use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};

/// Length of a sealed item's overhead: ephemeral key and tag.
pub const SEAL_OVERHEAD: usize = 32 + 16;

/// A one-time X25519 key to receive sealed items. Zeroized on drop.
pub struct SealKey {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey(public {})", crate::keys::hex(&self.public))
    }
}

fn key_of(eph: &[u8; 32], recipient: &[u8; 32], shared: &MontgomeryPoint) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(b"cyrcles/v1/repair-seal\0");
    h.update(eph);
    h.update(recipient);
    h.update(shared.as_bytes());
    Zeroizing::new(h.finalize().into())
}

/// A shared point of all zeroes means a low-order public key: refused.
fn checked(shared: MontgomeryPoint) -> Result<MontgomeryPoint, CircleError> {
    if shared.as_bytes() == &[0u8; 32] {
        return Err(CircleError::Sealed);
    }
    Ok(shared)
}

impl SealKey {
    /// A new key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut secret[..]);
        let public = MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
        Self { secret, public }
    }

    /// The public half, to hand to senders.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// Opens an item sealed to this key with `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CircleError> {
        let (eph, body) = sealed
            .split_first_chunk::<32>()
            .ok_or(CircleError::Sealed)?;
        let shared = checked(MontgomeryPoint(*eph).mul_clamped(*self.secret))?;
        let key = key_of(eph, &self.public, &shared);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
        cipher
            .decrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: body, aad })
            .map(Zeroizing::new)
            .map_err(|_| CircleError::Sealed)
    }
}

/// Seals `plaintext` to the holder of `recipient` with `aad`.
pub fn seal<R: RngCore + CryptoRng>(
    recipient: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, CircleError> {
    let mut eph_secret = [0u8; 32];
    rng.fill_bytes(&mut eph_secret);
    let eph = MontgomeryPoint::mul_base_clamped(eph_secret).to_bytes();
    let shared = checked(MontgomeryPoint(*recipient).mul_clamped(eph_secret));
    eph_secret.zeroize();
    let key = key_of(&eph, recipient, &shared?);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
    let body = cipher
        .encrypt(
            Nonce::from_slice(&[0u8; 12]),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CircleError::Sealed)?;
    let mut out = Vec::with_capacity(32 + body.len());
    out.extend_from_slice(&eph);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Longest sealed item in a repair bundle.
pub const MAX_SEALED_ITEM: usize = 2048;

/// Repair participants' one-time sealing keys (`{0: 1, 1: session,
/// 2: [[member, bstr .size 32], ...]}`): one participant's in its answer
/// to a [`RepairRequest`], every participant's in the coordinator's next
/// step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairKeys {
    /// The session.
    pub session: SessionId,
    /// Member and public sealing key, by member ascending.
    pub keys: Vec<(MemberId, [u8; 32])>,
}

impl Encode for RepairKeys {
    fn encode(&self, e: &mut Encoder) {
        e.map(3);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        e.array(self.keys.len());
        for (m, k) in &self.keys {
            e.array(2);
            m.encode(e);
            e.bytes(k);
        }
    }
}

impl Decode for RepairKeys {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("repair keys")?;
        version(d, &mut m)?;
        m.expect_len(3)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let n = d.array("keys", usize::from(MAX_MEMBERS))?;
        let mut keys: Vec<(MemberId, [u8; 32])> = Vec::with_capacity(n);
        for _ in 0..n {
            d.array_exact("key", 2)?;
            let member = MemberId::decode(d)?;
            if keys.last().is_some_and(|(last, _)| *last >= member) {
                return Err(DecodeError::OutOfRange {
                    what: "keys (must ascend)",
                });
            }
            keys.push((member, d.bytes_fixed::<32>("sealing key")?));
        }
        Ok(Self { session, keys })
    }
}

/// Sealed repair items, each for or from one member (`{0: 1, 1: session,
/// 2: member, 3: [[member, bstr], ...]}`): a helper's deltas to the other
/// helpers, the deltas relayed to one helper, a helper's sigma for the
/// target, and the sigmas relayed to the target. Key 2 is the member
/// the bundle is from (or, relayed, for).
#[derive(Clone, PartialEq, Eq)]
pub struct RepairSealed {
    /// The session.
    pub session: SessionId,
    /// The member the bundle is from, or relayed to.
    pub member: MemberId,
    /// The other member of each item (recipient or sender) and the sealed
    /// bytes, by member ascending.
    pub items: Vec<(MemberId, Vec<u8>)>,
}

impl fmt::Debug for RepairSealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepairSealed")
            .field("session", &self.session)
            .field("member", &self.member)
            .field("items", &self.items.len())
            .finish()
    }
}

impl Encode for RepairSealed {
    fn encode(&self, e: &mut Encoder) {
        e.map(4);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        self.member.encode(e);
        e.key(3);
        e.array(self.items.len());
        for (m, b) in &self.items {
            e.array(2);
            m.encode(e);
            e.bytes(b);
        }
    }
}

impl Decode for RepairSealed {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("repair sealed")?;
        version(d, &mut m)?;
        m.expect_len(4)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let member = MemberId::decode(d)?;
        m.key(d, 3)?;
        let n = d.array("items", usize::from(MAX_MEMBERS))?;
        let mut items: Vec<(MemberId, Vec<u8>)> = Vec::with_capacity(n);
        for _ in 0..n {
            d.array_exact("item", 2)?;
            let other = MemberId::decode(d)?;
            if items.last().is_some_and(|(last, _)| *last >= other) {
                return Err(DecodeError::OutOfRange {
                    what: "items (must ascend)",
                });
            }
            items.push((
                other,
                d.bytes_in("sealed item", 1, MAX_SEALED_ITEM)?.to_vec(),
            ));
        }
        Ok(Self {
            session,
            member,
            items,
        })
    }
}
