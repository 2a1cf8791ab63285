//! Sealing secrets at rest: XChaCha20-Poly1305 with a random 192-bit nonce
//! per secret, and associated data that names what the secret is, so a
//! sealed value moved to another row does not open.
//!
//! Two levels of keys:
//! * the **data key** (random, 256 bits) seals every secret;
//! * the **key-encryption key** wraps the data key. It comes from the
//!   passphrase through Argon2id, or is the content of the 0600 key file.
//!
//! A sealed value is `nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

/// Nonce length.
const NONCE_LEN: usize = 24;
/// Tag length.
const TAG_LEN: usize = 16;
/// Associated data of the wrapped data key.
pub(crate) const DATA_KEY_AAD: &[u8] = b"cyrcles-agent/v1/data-key";

/// A sealed value did not open: the key is wrong or the bytes changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the sealed value does not open (wrong key, or damaged data)")]
pub struct SealError;

/// A 256-bit symmetric key. Zeroized on drop; `Debug` prints nothing of it.
#[derive(Clone)]
pub struct SymmetricKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

impl SymmetricKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut k[..]);
        Self(k)
    }

    /// A key from bytes (taken by value and zeroized by the caller's
    /// wrapper).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    /// The raw bytes, for writing the key file.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.0).into())
    }

    /// Seals `plaintext` bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Encryption fails only for messages longer than 2^38 bytes.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a sealed value bound to `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError)
    }

    /// Opens a sealed 32-byte value.
    pub fn open_32(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<[u8; 32]>, SealError> {
        let v = self.open(aad, sealed)?;
        let mut out = Zeroizing::new([0u8; 32]);
        if v.len() != 32 {
            return Err(SealError);
        }
        out.copy_from_slice(&v);
        Ok(out)
    }
}

/// Argon2id cost parameters, stored with the keystore so they can be
/// raised later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 19 MiB, 2 passes, 1 lane: the OWASP minimum for Argon2id, about a
    /// fifth of a second here.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Derives the key-encryption key from a passphrase.
pub fn derive_from_passphrase(
    passphrase: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<SymmetricKey, argon2::Error> {
    let p = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase, salt, &mut out[..])?;
    Ok(SymmetricKey(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_aad() {
        let k = SymmetricKey::generate();
        let s = k.seal(b"a", b"secret bytes");
        assert_eq!(&k.open(b"a", &s).unwrap()[..], b"secret bytes");
        assert_eq!(k.open(b"b", &s), Err(SealError));
        assert_eq!(SymmetricKey::generate().open(b"a", &s), Err(SealError));
        let mut flipped = s.clone();
        flipped[30] ^= 1;
        assert_eq!(k.open(b"a", &flipped), Err(SealError));
        assert_eq!(k.open(b"a", &s[..10]), Err(SealError));
        // Two seals of one value differ (fresh nonces).
        assert_ne!(k.seal(b"a", b"x"), k.seal(b"a", b"x"));
    }

    #[test]
    fn the_passphrase_key_depends_on_passphrase_and_salt() {
        let cheap = KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let a = derive_from_passphrase(b"pw", b"salt-salt-salt-1", cheap).unwrap();
        let b = derive_from_passphrase(b"pw", b"salt-salt-salt-1", cheap).unwrap();
        let c = derive_from_passphrase(b"pW", b"salt-salt-salt-1", cheap).unwrap();
        let d = derive_from_passphrase(b"pw", b"salt-salt-salt-2", cheap).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
        assert_ne!(a.expose(), d.expose());
        assert_eq!(format!("{a:?}"), "SymmetricKey(..)");
    }
}
