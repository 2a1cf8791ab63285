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

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::CircleError;

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
