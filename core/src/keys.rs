//! Keys and domain-separated signatures.
//!
//! Every signature in the protocol is a plain RFC 8032 Ed25519 signature
//! over `context ‖ 0x00 ‖ message`, where `context` is one of the ASCII
//! strings of [`Context`] and `message` is the canonical encoding of the
//! signed body. The NUL byte ends the context, so no context can be read as
//! a prefix of another. Verification uses `ed25519-dalek`'s
//! `verify_strict`, which refuses small-order keys and non-canonical
//! signatures.
//!
//! Secret keys are wrapped so that their `Debug` output shows only the
//! public key, and they are zeroized on drop (both `ed25519-dalek` and
//! `frost-ed25519` keys zeroize themselves).

use std::fmt;

use ed25519_dalek::{Signer, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::cbor::{DecodeError, Decoder, Encoder};

/// The signing contexts. Each kind of signed message has its own, so a
/// signature made for one purpose is never valid for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// `Inception`, signed by the root key.
    Inception,
    /// `CircleLink`, signed by the root key (first link) or the previous
    /// circle key.
    CircleLink,
    /// `EgoCert`, signed by the current circle key.
    EgoCert,
    /// `Endpoints`, signed by the certified ego key.
    Endpoints,
    /// `LoginChallenge`, signed by the ego key to answer a login (the
    /// legacy approval, which does not say how the login was approved).
    Login,
    /// `[LoginChallenge, approved-by]`, signed by the ego key to answer a
    /// login and say how the agent decided.
    LoginApproval,
    /// `LocalRequest`, signed by the ego key for a program on the owner's
    /// machine.
    Local,
    /// `CeremonyRequest`, signed by the ego key to ask the circle for a
    /// signature.
    CircleRequest,
    /// `RecoveryRequest`, signed by a new ego key to ask the circle to
    /// certify it after a lost device.
    RecoveryRequest,
    /// `Objection`, signed by the current ego key: the device holding it
    /// did not ask for a recovery.
    Objection,
    /// `dkg-round1` body, signed by a DKG participant's ego key.
    DkgRound1,
    /// `dkg-round2` body, signed by a DKG participant's ego key.
    DkgRound2,
    /// `dkg-confirm` body, signed by a DKG participant's ego key.
    DkgConfirm,
    /// `dkg-start`, signed by the ego key of the owner whose agent relays
    /// a DKG among the new members.
    DkgStart,
}

impl Context {
    /// The ASCII context string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Context::Inception => "cyrcles/v1/inception",
            Context::CircleLink => "cyrcles/v1/circle-link",
            Context::EgoCert => "cyrcles/v1/ego-cert",
            Context::Endpoints => "cyrcles/v1/endpoints",
            Context::Login => "cyrcles/v1/login",
            Context::LoginApproval => "cyrcles/v1/login-approval",
            Context::Local => "cyrcles/v1/local",
            Context::CircleRequest => "cyrcles/v1/circle-request",
            Context::RecoveryRequest => "cyrcles/v1/recovery-request",
            Context::Objection => "cyrcles/v1/objection",
            Context::DkgRound1 => "cyrcles/v1/dkg-round1",
            Context::DkgRound2 => "cyrcles/v1/dkg-round2",
            Context::DkgConfirm => "cyrcles/v1/dkg-confirm",
            Context::DkgStart => "cyrcles/v1/dkg-start",
        }
    }

    /// The exact bytes a signer signs: `context ‖ 0x00 ‖ message`.
    pub fn signing_bytes(self, message: &[u8]) -> Vec<u8> {
        let ctx = self.as_str().as_bytes();
        let mut out = Vec::with_capacity(ctx.len() + 1 + message.len());
        out.extend_from_slice(ctx);
        out.push(0);
        out.extend_from_slice(message);
        out
    }
}

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The 32 bytes are not a valid Ed25519 public key.
    #[error("malformed public key")]
    MalformedKey,
    /// The key is a point of small order (the identity or another point
    /// of the 8-torsion): under it, signatures can be made without a
    /// secret, so it never verifies anything.
    #[error("small-order public key")]
    WeakKey,
    /// The signature does not verify under the key (strict rules).
    #[error("signature does not verify")]
    Invalid,
}

/// An Ed25519 public key as carried in records: its 32-byte encoding.
/// Whether it decodes to a valid point is checked when it is used to
/// verify.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether the key could verify a signature: it decodes as a curve
    /// point and is not of small order (the key checks of
    /// `verify_strict`).
    pub fn check(&self) -> Result<(), SignatureError> {
        self.verifying_key().map(|_| ())
    }

    fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::MalformedKey)?;
        if key.is_weak() {
            return Err(SignatureError::WeakKey);
        }
        Ok(key)
    }

    /// Verifies `sig` over `context ‖ 0x00 ‖ message` with `verify_strict`:
    /// the key and R must not be of small order, S must be below the group
    /// order, and the cofactorless equation must hold.
    pub fn verify(
        &self,
        context: Context,
        message: &[u8],
        sig: &Signature,
    ) -> Result<(), SignatureError> {
        let key = self.verifying_key()?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        key.verify_strict(&context.signing_bytes(message), &sig)
            .map_err(|_| SignatureError::Invalid)
    }

    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.bytes(&self.0);
    }

    pub(crate) fn decode(d: &mut Decoder<'_>, what: &'static str) -> Result<Self, DecodeError> {
        d.bytes_fixed::<32>(what).map(Self)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex(&self.0))
    }
}

/// A 64-byte Ed25519 signature (R ‖ S).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.bytes(&self.0);
    }

    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.bytes_fixed::<64>("signature").map(Self)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex(&self.0[..8]))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// An Ed25519 secret key: a root key or an ego key.
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// A fresh random key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(ed25519_dalek::SigningKey::generate(rng))
    }

    /// The key with the given 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for encrypted storage. Zeroized when dropped.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `context ‖ 0x00 ‖ message` (RFC 8032, deterministic).
    pub fn sign(&self, context: Context, message: &[u8]) -> Signature {
        Signature(self.0.sign(&context.signing_bytes(message)).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// A whole circle key, as the owner's agent holds it before the circle is
/// first shared (and, briefly, as the trusted dealer while it splits a new
/// one). It is a FROST-Ed25519 signing key: a scalar rather than an RFC 8032
/// seed, so that it can be split into shares; its signatures verify as
/// ordinary Ed25519 signatures.
pub struct CircleSecret(pub(crate) frost_ed25519::SigningKey);

impl CircleSecret {
    /// A fresh random circle key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(frost_ed25519::SigningKey::new(rng))
    }

    /// Restores a key from its 32-byte scalar encoding.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SignatureError> {
        frost_ed25519::SigningKey::deserialize(bytes)
            .map(Self)
            .map_err(|_| SignatureError::MalformedKey)
    }

    /// The 32-byte scalar, for encrypted storage. Zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.serialize())
    }

    /// The public circle key.
    pub fn public(&self) -> PublicKey {
        let vk = frost_ed25519::VerifyingKey::from(&self.0);
        PublicKey(element_bytes(&vk.serialize()))
    }

    /// Signs `context ‖ 0x00 ‖ message`. Schnorr signatures by a scalar key
    /// need a random nonce; the result verifies as RFC 8032 Ed25519.
    pub fn sign<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        context: Context,
        message: &[u8],
    ) -> Signature {
        let sig = self.0.sign(rng, &context.signing_bytes(message));
        Signature(signature_bytes(&sig.serialize()))
    }
}

impl fmt::Debug for CircleSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircleSecret")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// frost-ed25519 serializes group elements as 32 bytes; any other result
/// would be a bug in that crate, mapped to all zeroes (an invalid key that
/// fails every verification) rather than a panic.
pub(crate) fn element_bytes(r: &Result<Vec<u8>, frost_ed25519::Error>) -> [u8; 32] {
    r.as_ref()
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
        .unwrap_or([0; 32])
}

/// Same as [`element_bytes`] for 64-byte signatures.
pub(crate) fn signature_bytes(r: &Result<Vec<u8>, frost_ed25519::Error>) -> [u8; 64] {
    r.as_ref()
        .ok()
        .and_then(|v| <[u8; 64]>::try_from(v.as_slice()).ok())
        .unwrap_or([0; 64])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn contexts_are_distinct_and_none_is_a_prefix_of_another() {
        let all = [
            Context::Inception,
            Context::CircleLink,
            Context::EgoCert,
            Context::Endpoints,
            Context::Login,
            Context::LoginApproval,
            Context::Local,
            Context::CircleRequest,
            Context::RecoveryRequest,
            Context::Objection,
            Context::DkgRound1,
            Context::DkgRound2,
            Context::DkgConfirm,
            Context::DkgStart,
        ];
        for a in all {
            for b in all {
                if a != b {
                    let (sa, sb) = (a.signing_bytes(b""), b.signing_bytes(b""));
                    assert!(!sb.starts_with(&sa), "{a:?} prefixes {b:?}");
                }
            }
        }
    }

    #[test]
    fn signature_is_bound_to_its_context() {
        let key = SecretKey::from_seed(&[9; 32]);
        let sig = key.sign(Context::EgoCert, b"body");
        assert_eq!(key.public().verify(Context::EgoCert, b"body", &sig), Ok(()));
        assert_eq!(
            key.public().verify(Context::Endpoints, b"body", &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn circle_secret_signs_plain_ed25519() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let circle = CircleSecret::generate(&mut rng);
        let sig = circle.sign(&mut rng, Context::CircleLink, b"link");
        let vk = ed25519_dalek::VerifyingKey::from_bytes(circle.public().as_bytes()).unwrap();
        let msg = Context::CircleLink.signing_bytes(b"link");
        vk.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
            .unwrap();
    }

    #[test]
    fn debug_never_shows_secret_bytes() {
        let seed = [0x5a; 32];
        let key = SecretKey::from_seed(&seed);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex(&seed)));
        assert!(shown.contains(&hex(key.public().as_bytes())));
        let circle = CircleSecret::from_bytes(&[3; 32]).unwrap();
        assert!(!format!("{circle:?}").contains(&hex(&circle.to_bytes())));
    }
}
