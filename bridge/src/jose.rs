//! JOSE for the bridge: ID-token signing keys (RS256, ES256, EdDSA), JWS compact
//! serialization, JWKS, RFC 7638 thumbprints, and sealing secrets with the master key.

use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use ring::signature::{ECDSA_P256_SHA256_FIXED as P256_VERIFY, VerificationAlgorithm};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING as P256, RsaPublicKeyComponents};
use ring::signature::{ED25519 as ED25519_VERIFY, RSA_PKCS1_2048_8192_SHA256 as RSA_VERIFY};
use ring::{aead, digest, hmac};
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::base64url;

/// Longest compact JWS accepted by [`SigningKey::verify_jwt`] and [`peek_kid`], in bytes.
pub const MAX_JWT_LEN: usize = 16 * 1024;

/// RSA modulus size, in bits, of generated RS256 keys.
const RSA_BITS: usize = 2048;

/// Prefix of every label passed to [`MasterKey::derive`].
const DERIVE_PREFIX: &[u8] = b"cyrcles-bridge/v1/";

/// Label of the subkey used by [`MasterKey::seal`] and [`MasterKey::open`]; reserved.
const SEAL_LABEL: &str = "seal/chacha20-poly1305";

const NONCE_LEN: usize = aead::NONCE_LEN;
const TAG_LEN: usize = 16;

/// A JWS signature algorithm the bridge can sign ID tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), RSA-2048 keys.
    RS256,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    ES256,
    /// EdDSA with Ed25519 (RFC 8037).
    EdDSA,
}

impl Alg {
    /// Every supported algorithm.
    pub const ALL: [Alg; 3] = [Alg::RS256, Alg::ES256, Alg::EdDSA];

    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE `alg` name (case-sensitive); `None` for anything unsupported, including `none`.
    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.as_str() == s)
    }
}

/// Errors from key handling, JWS signing and verification, and sealing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Generating a key (or randomness for one) failed.
    #[error("key generation failed")]
    KeyGeneration,
    /// Key material was rejected (bad encoding, wrong algorithm, too small).
    #[error("invalid key material")]
    BadKey,
    /// Producing a signature failed.
    #[error("signing failed")]
    Signing,
    /// The token (or the claims to sign) is not well-formed.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The token's `alg` is not the algorithm of the key (this includes `none`).
    #[error("unexpected or unsupported JWS algorithm")]
    UnexpectedAlg,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The token's `kid` is missing or does not name this key.
    #[error("unknown key id")]
    UnknownKey,
    /// Sealing a secret failed.
    #[error("sealing failed")]
    Seal,
    /// A sealed secret could not be opened (wrong key or context, or tampered with).
    #[error("opening sealed data failed")]
    Open,
}

/// The ring key pair behind a [`SigningKey`].
enum Pair {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// Public JWK members (base64url, no padding) of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicParams {
    Rsa { n: String, e: String },
    Ec { x: String, y: String },
    Okp { x: String },
}

impl PublicParams {
    /// RFC 7638 thumbprint: SHA-256 of the required members, sorted, without whitespace.
    /// The members are base64url strings and fixed names, so no JSON escaping is needed.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            PublicParams::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            PublicParams::Ec { x, y } => {
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            PublicParams::Okp { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        base64url::encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    }
}

/// The RFC 7638 thumbprint of a P-256 key (`x`, `y`: canonical base64url
/// of 32 bytes each), as a DPoP proof's key is named (RFC 9449 §6).
pub(crate) fn ec_p256_thumbprint(x: &str, y: &str) -> String {
    PublicParams::Ec {
        x: x.to_owned(),
        y: y.to_owned(),
    }
    .thumbprint()
}

/// The RFC 7638 thumbprint of an Ed25519 key (`x`: canonical base64url of
/// 32 bytes).
pub(crate) fn ed25519_thumbprint(x: &str) -> String {
    PublicParams::Okp { x: x.to_owned() }.thumbprint()
}

/// A private signing key with its key id (kid = RFC 7638 JWK thumbprint, base64url, no padding).
pub struct SigningKey {
    alg: Alg,
    kid: String,
    pair: Pair,
    public: PublicParams,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key: RSA-2048 (via the `rsa` crate), P-256 or Ed25519.
    pub fn generate(alg: Alg) -> Result<SigningKey, JoseError> {
        let pkcs8: Zeroizing<Vec<u8>> = match alg {
            Alg::RS256 => {
                use rsa::pkcs8::EncodePrivateKey as _;
                let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS)
                    .map_err(|_| JoseError::KeyGeneration)?;
                let der = key.to_pkcs8_der().map_err(|_| JoseError::KeyGeneration)?;
                Zeroizing::new(der.as_bytes().to_vec())
            }
            Alg::ES256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&P256, &SystemRandom::new())
                    .map_err(|_| JoseError::KeyGeneration)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            Alg::EdDSA => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| JoseError::KeyGeneration)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
        };
        SigningKey::from_pkcs8(alg, &pkcs8)
    }

    /// Loads a PKCS#8 (DER) private key for `alg`. Ed25519 accepts PKCS#8 v1 and v2.
    pub fn from_pkcs8(alg: Alg, pkcs8: &[u8]) -> Result<SigningKey, JoseError> {
        let (pair, public) = match alg {
            Alg::RS256 => {
                let kp = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| JoseError::BadKey)?;
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(kp.public());
                let (n, e) = (base64url::encode(&c.n), base64url::encode(&c.e));
                (Pair::Rsa(kp), PublicParams::Rsa { n, e })
            }
            Alg::ES256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&P256, pkcs8, &SystemRandom::new())
                    .map_err(|_| JoseError::BadKey)?;
                // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
                let (x, y) = match kp.public_key().as_ref().split_first() {
                    Some((0x04, xy)) => match xy.split_first_chunk::<32>() {
                        Some((x, y)) if y.len() == 32 => {
                            (base64url::encode(x), base64url::encode(y))
                        }
                        _ => return Err(JoseError::BadKey),
                    },
                    _ => return Err(JoseError::BadKey),
                };
                (Pair::Ecdsa(kp), PublicParams::Ec { x, y })
            }
            Alg::EdDSA => {
                let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                    .map_err(|_| JoseError::BadKey)?;
                let x = base64url::encode(kp.public_key().as_ref());
                (Pair::Ed25519(kp), PublicParams::Okp { x })
            }
        };
        Ok(SigningKey {
            alg,
            kid: public.thumbprint(),
            pair,
            public,
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
        })
    }

    /// The PKCS#8 (DER) private key. Secret: only for sealing into storage.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signature algorithm of this key.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public key as a JWK with `kid`, `alg` and `use: "sig"`; never any private member.
    pub fn public_jwk(&self) -> Value {
        let (kid, alg) = (self.kid.as_str(), self.alg.as_str());
        match &self.public {
            PublicParams::Rsa { n, e } => json!({
                "kty": "RSA", "kid": kid, "alg": alg, "use": "sig", "n": n, "e": e,
            }),
            PublicParams::Ec { x, y } => json!({
                "kty": "EC", "crv": "P-256", "kid": kid, "alg": alg, "use": "sig", "x": x, "y": y,
            }),
            PublicParams::Okp { x } => json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": alg, "use": "sig", "x": x,
            }),
        }
    }

    /// Signs `claims` (a JSON object) as a compact JWS with header `{"alg", "kid", "typ"?}`.
    pub fn sign_jwt(&self, claims: &Value, typ: Option<&str>) -> Result<String, JoseError> {
        if !claims.is_object() {
            return Err(JoseError::Malformed("claims must be a JSON object"));
        }
        let mut header = json!({ "alg": self.alg.as_str(), "kid": self.kid });
        if let (Some(typ), Some(map)) = (typ, header.as_object_mut()) {
            map.insert("typ".to_owned(), Value::String(typ.to_owned()));
        }
        let header = serde_json::to_vec(&header).map_err(|_| JoseError::Signing)?;
        let payload = serde_json::to_vec(claims).map_err(|_| JoseError::Signing)?;
        let mut jwt = format!(
            "{}.{}",
            base64url::encode(&header),
            base64url::encode(&payload)
        );
        let sig = self.sign_bytes(jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&base64url::encode(&sig));
        Ok(jwt)
    }

    fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.pair {
            Pair::Rsa(kp) => {
                let (rng, mut sig) = (SystemRandom::new(), vec![0; kp.public().modulus_len()]);
                let signed = kp.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig);
                signed.map(|()| sig).map_err(|_| JoseError::Signing)
            }
            Pair::Ecdsa(kp) => kp
                .sign(&SystemRandom::new(), msg)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| JoseError::Signing),
            Pair::Ed25519(kp) => Ok(kp.sign(msg).as_ref().to_vec()),
        }
    }

    /// Verifies a compact JWS made with this key and returns its claims object.
    ///
    /// The header `alg` must be this key's algorithm (so `none` is refused), `kid` must be
    /// this key's id, and `crit` must be absent. Base64url must be unpadded and canonical.
    pub fn verify_jwt(&self, jwt: &str) -> Result<Value, JoseError> {
        let (header, signing_input, payload, sig) = split_jws(jwt)?;
        if Alg::parse(&header.alg) != Some(self.alg) {
            return Err(JoseError::UnexpectedAlg);
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(JoseError::UnknownKey);
        }
        if header.crit.is_some() {
            return Err(JoseError::Malformed("unsupported critical header"));
        }
        let (payload, sig) = (base64url::decode(payload)?, base64url::decode(sig)?);
        let (verify_alg, public): (&dyn VerificationAlgorithm, &[u8]) = match &self.pair {
            Pair::Rsa(kp) => (&RSA_VERIFY, kp.public_key().as_ref()),
            Pair::Ecdsa(kp) => (&P256_VERIFY, kp.public_key().as_ref()),
            Pair::Ed25519(kp) => (&ED25519_VERIFY, kp.public_key().as_ref()),
        };
        signature::UnparsedPublicKey::new(verify_alg, public)
            .verify(signing_input.as_bytes(), &sig)
            .map_err(|_| JoseError::BadSignature)?;
        match serde_json::from_slice(&payload) {
            Ok(claims @ Value::Object(_)) => Ok(claims),
            _ => Err(JoseError::Malformed("payload is not a JSON object")),
        }
    }
}

/// The JOSE header members the bridge looks at. Serde refuses duplicate members.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Splits a compact JWS (size-capped, exactly three non-empty segments) and decodes its
/// header. Returns the header, the signing input (`header.payload`), payload and signature.
fn split_jws(jwt: &str) -> Result<(Header, &str, &str, &str), JoseError> {
    if jwt.len() > MAX_JWT_LEN {
        return Err(JoseError::Malformed("token too large"));
    }
    let bad = JoseError::Malformed("expected three non-empty segments");
    let (signing_input, sig) = jwt.rsplit_once('.').ok_or(bad)?;
    let (header, payload) = signing_input.split_once('.').ok_or(bad)?;
    if payload.contains('.') || [header, payload, sig].contains(&"") {
        return Err(bad);
    }
    let header = base64url::decode(header)?;
    // A JOSE header is a JSON object (RFC 7515 §4); serde would also read the struct from an array.
    if !header.trim_ascii_start().starts_with(b"{") {
        return Err(JoseError::Malformed("bad header"));
    }
    let header = serde_json::from_slice(&header).map_err(|_| JoseError::Malformed("bad header"))?;
    Ok((header, signing_input, payload, sig))
}

/// Reads the `kid` from a compact JWS header without verifying anything (to pick the key), with the same strict parsing and size cap.
pub fn peek_kid(jwt: &str) -> Result<String, JoseError> {
    split_jws(jwt)?.0.kid.ok_or(JoseError::UnknownKey)
}

/// {"keys": [...]} from public JWKs.
pub fn jwks(public_jwks: &[Value]) -> Value {
    json!({ "keys": public_jwks })
}

/// OIDC Core `at_hash` / `c_hash`: base64url of the left-most half of the hash of the ASCII
/// token, where the hash is SHA-256 for RS256 and ES256 and SHA-512 for EdDSA (Ed25519), as
/// the `openidconnect` crate computes it.
pub fn token_hash(alg: Alg, token: &str) -> String {
    let hash_alg = match alg {
        Alg::RS256 | Alg::ES256 => &digest::SHA256,
        Alg::EdDSA => &digest::SHA512,
    };
    let hash = digest::digest(hash_alg, token.as_bytes());
    let bytes = hash.as_ref();
    base64url::encode(bytes.get(..bytes.len() / 2).unwrap_or_default())
}

/// The bridge's 32-byte master key (shared by every instance of a deployment): seals secrets at
/// rest and derives purpose-specific keys. Zeroized on drop; Debug shows nothing secret.
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// Generates a random master key with the system CSPRNG.
    pub fn generate() -> Result<MasterKey, JoseError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| JoseError::KeyGeneration)?;
        Ok(MasterKey { bytes })
    }

    /// A copy of the key bytes (secret), zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.bytes)
    }

    fn seal_key(&self, err: JoseError) -> Result<aead::LessSafeKey, JoseError> {
        let subkey = self.derive(SEAL_LABEL);
        let key = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, subkey.as_ref());
        key.map(aead::LessSafeKey::new).map_err(|_| err)
    }

    /// ChaCha20-Poly1305 (`ring::aead::CHACHA20_POLY1305`) under a subkey derived for sealing, random 96-bit nonce:
    /// output = nonce (12 bytes) || ciphertext || tag. `aad` binds the context (e.g. the key id).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, JoseError> {
        let key = self.seal_key(JoseError::Seal)?;
        let nonce = ring::rand::generate::<[u8; NONCE_LEN]>(&SystemRandom::new())
            .map_err(|_| JoseError::Seal)?
            .expose();
        // Sized up front so the buffer holding plaintext is never reallocated (and left behind).
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let body = out.get_mut(NONCE_LEN..).ok_or(JoseError::Seal)?;
        let nonce = aead::Nonce::assume_unique_for_key(nonce);
        let tag = key.seal_in_place_separate_tag(nonce, aead::Aad::from(aad), body);
        out.extend_from_slice(tag.map_err(|_| JoseError::Seal)?.as_ref());
        Ok(out)
    }

    /// Opens the output of [`MasterKey::seal`] made with the same key and `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        let (nonce, body) = sealed.split_first_chunk().ok_or(JoseError::Open)?;
        if body.len() < TAG_LEN {
            return Err(JoseError::Open);
        }
        let key = self.seal_key(JoseError::Open)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let nonce = aead::Nonce::assume_unique_for_key(*nonce);
        let opened = key.open_in_place(nonce, aead::Aad::from(aad), buf.as_mut_slice());
        let len = opened.map_err(|_| JoseError::Open)?.len();
        buf.truncate(len);
        Ok(buf)
    }

    /// A 32-byte key for one purpose: HMAC-SHA256(master, "cyrcles-bridge/v1/" || label).
    /// The label `seal/chacha20-poly1305` is reserved for [`MasterKey::seal`].
    pub fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.bytes.as_ref());
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(DERIVE_PREFIX);
        ctx.update(label.as_bytes());
        let tag = ctx.sign();
        let mut out = Zeroizing::new([0u8; 32]);
        for (o, t) in out.iter_mut().zip(tag.as_ref()) {
            *o = *t;
        }
        out
    }
}

/// A segment that is not strict base64url (see [`base64url`]).
impl From<base64url::DecodeError> for JoseError {
    fn from(_: base64url::DecodeError) -> Self {
        JoseError::Malformed("bad base64url")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::secrets::tests::leaks;
    use openidconnect::core::CoreJwsSigningAlgorithm as Js;
    use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet};
    use openidconnect::{AccessToken, AccessTokenHash as AtHash, AuthorizationCode};
    use openidconnect::{AuthorizationCodeHash as CHash, ClientId, IssuerUrl, Nonce};
    use std::collections::BTreeMap;
    use std::str::FromStr as _;
    use std::time::UNIX_EPOCH;

    /// One key per algorithm, generated once (RSA generation is slow).
    fn keys() -> &'static [SigningKey] {
        static KEYS: std::sync::OnceLock<Vec<SigningKey>> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| Vec::from(Alg::ALL.map(|a| SigningKey::generate(a).unwrap())))
    }

    /// The error variant's name, or "ok".
    fn kind<T>(r: Result<T, JoseError>) -> String {
        let name = |e: JoseError| format!("{e:?}").split('(').next().unwrap().to_owned();
        r.err().map_or("ok".into(), name)
    }

    fn claims() -> Value {
        json!({ "iss": "https://bridge.example", "sub": "alice", "aud": "rp", "n": [1, "é\"\\"] })
    }

    /// Independent RFC 7638 thumbprint: required members via a sorted map, compact JSON, SHA-256.
    fn rfc7638(jwk: &Value) -> String {
        let required: &[&str] = match jwk["kty"].as_str().unwrap() {
            "RSA" => &["e", "kty", "n"],
            "EC" => &["crv", "kty", "x", "y"],
            _ => &["crv", "kty", "x"],
        };
        let map: BTreeMap<_, _> = required.iter().map(|&m| (m, jwk[m].as_str())).collect();
        let json = serde_json::to_string(&map).unwrap();
        base64url::encode(digest::digest(&digest::SHA256, json.as_bytes()).as_ref())
    }

    fn header_of(jwt: &str) -> Value {
        let h = jwt.split('.').next().unwrap();
        serde_json::from_slice(&b64d(h)).unwrap()
    }

    /// Replaces the header of `jwt` (as JSON text), keeping payload and signature.
    fn with_header(jwt: &str, header: &str) -> String {
        let (_, rest) = jwt.split_once('.').unwrap();
        format!("{}.{rest}", base64url::encode(header.as_bytes()))
    }

    fn b64d(s: &str) -> Vec<u8> {
        base64url::decode(s).unwrap()
    }

    #[test]
    fn sign_verify_and_reload() {
        for s in ["none", "rs256", "HS256", "Ed25519", ""] {
            assert_eq!(Alg::parse(s), None);
        }
        for key in keys() {
            assert_eq!(Alg::parse(key.alg().as_str()), Some(key.alg()));
            let jwt = key.sign_jwt(&claims(), Some("JWT")).unwrap();
            assert_eq!(key.verify_jwt(&jwt).unwrap(), claims());
            let want = json!({ "alg": key.alg().as_str(), "kid": key.kid(), "typ": "JWT" });
            assert_eq!(header_of(&jwt), want);
            assert_eq!(peek_kid(&jwt).unwrap(), key.kid());
            let untyped = key.sign_jwt(&claims(), None).unwrap();
            assert!(header_of(&untyped).get("typ").is_none());
            assert_eq!(key.verify_jwt(&untyped).unwrap(), claims());
            // RS256: 2048-bit; ES256: fixed-width r || s (not DER); EdDSA: 64 bytes.
            let sig = b64d(jwt.rsplit('.').next().unwrap());
            assert_eq!(sig.len(), if key.alg() == Alg::RS256 { 256 } else { 64 });
            assert_eq!(kind(key.sign_jwt(&json!([1]), None)), "Malformed");
            // Reloading from PKCS#8 gives the same key.
            let again = SigningKey::from_pkcs8(key.alg(), key.pkcs8()).unwrap();
            assert_eq!(again.kid(), key.kid());
            assert_eq!(again.public_jwk(), key.public_jwk());
            let jwt = again.sign_jwt(&claims(), None).unwrap();
            assert_eq!(key.verify_jwt(&jwt).unwrap(), claims());
            for other in Alg::ALL.into_iter().filter(|&a| a != key.alg()) {
                assert_eq!(kind(SigningKey::from_pkcs8(other, key.pkcs8())), "BadKey");
            }
        }
        assert_eq!(kind(SigningKey::from_pkcs8(Alg::EdDSA, b"junk")), "BadKey");
        let fresh = SigningKey::generate(Alg::EdDSA).unwrap();
        assert_ne!(fresh.kid(), keys()[2].kid());
    }

    #[test]
    fn tampering_is_refused() {
        for (i, key) in keys().iter().enumerate() {
            let (alg, kid) = (key.alg().as_str(), key.kid());
            let other = &keys()[(i + 1) % 3];
            let jwt = key.sign_jwt(&claims(), Some("JWT")).unwrap();
            let p: Vec<&str> = jwt.split('.').collect();
            let mut sig = b64d(p[2]);
            sig[5] ^= 1;
            let mallory = base64url::encode(br#"{"iss":"https://bridge.example","sub":"mallory"}"#);
            let re = |a: &str, k: &str, extra: &str| {
                with_header(&jwt, &format!(r#"{{"alg":"{a}","kid":"{k}"{extra}}}"#))
            };
            let none = re("none", kid, "");
            let no_kid = with_header(&jwt, &format!(r#"{{"alg":"{alg}"}}"#));
            let unsigned = none.rsplit_once('.').unwrap().0;
            let big = |n: usize| key.sign_jwt(&json!({ "pad": "a".repeat(n) }), None);
            let cases = [
                (jwt.clone(), "ok"),
                (big(10_000).unwrap(), "ok"),
                (format!("{}.{mallory}.{}", p[0], p[2]), "BadSignature"),
                (
                    format!("{}.{}.{}", p[0], p[1], base64url::encode(&sig)),
                    "BadSignature",
                ),
                (re(alg, kid, ""), "BadSignature"),
                (none.clone(), "UnexpectedAlg"),
                (format!("{unsigned}."), "Malformed"),
                (unsigned.to_owned(), "Malformed"),
                (re("HS256", kid, ""), "UnexpectedAlg"),
                (re(other.alg().as_str(), kid, ""), "UnexpectedAlg"),
                (re(alg, other.kid(), ""), "UnknownKey"),
                (no_kid, "UnknownKey"),
                (other.sign_jwt(&claims(), None).unwrap(), "UnexpectedAlg"),
                (re(alg, kid, r#","crit":["b64"]"#), "Malformed"),
                (re(alg, kid, &format!(r#","kid":"{kid}""#)), "Malformed"),
                (format!("{jwt}="), "Malformed"),
                (format!("{jwt}.x"), "Malformed"),
                (format!("{}=.{}.{}", p[0], p[1], p[2]), "Malformed"),
                (format!("{}.{}+.{}", p[0], p[1], p[2]), "Malformed"),
                (format!(" {jwt}"), "Malformed"),
                (format!("..{}", p[2]), "Malformed"),
                (String::new(), "Malformed"),
                (big(MAX_JWT_LEN).unwrap(), "Malformed"),
            ];
            for (token, want) in cases {
                assert_eq!(kind(key.verify_jwt(&token)), want, "{alg}: {token}");
            }
            assert_eq!(kind(peek_kid(&big(MAX_JWT_LEN).unwrap())), "Malformed");
        }
        assert_eq!(kind(peek_kid("e30.e30.AA")), "Malformed");
        // Fuzz finding F2 (docs/security.md): a header that is a JSON array.
        let array = with_header("x.e30.AA", r#"["ES256","kid",null]"#);
        assert_eq!(kind(peek_kid(&array)), "Malformed");
        let key = &keys()[1];
        let jwt = key.sign_jwt(&claims(), None).unwrap();
        let as_array = format!(r#"["{}","{}",null]"#, key.alg().as_str(), key.kid());
        assert_eq!(
            kind(key.verify_jwt(&with_header(&jwt, &as_array))),
            "Malformed"
        );
        let no_kid = with_header("x.e30.AA", r#"{"alg":"ES256"}"#);
        assert_eq!(kind(peek_kid(&no_kid)), "UnknownKey");
    }

    #[test]
    fn public_jwks_and_thumbprints() {
        for key in keys() {
            let jwk = key.public_jwk();
            // Exactly these members: no "d", "p", "q", "dp", "dq", "qi", "oth" or "k".
            let mut want = match key.alg() {
                Alg::RS256 => json!({ "kty": "RSA", "n": jwk["n"], "e": "AQAB" }),
                Alg::ES256 => json!({ "kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"] }),
                Alg::EdDSA => json!({ "kty": "OKP", "crv": "Ed25519", "x": jwk["x"] }),
            };
            want["kid"] = json!(key.kid());
            want["alg"] = json!(key.alg().as_str());
            want["use"] = json!("sig");
            assert_eq!(jwk, want);
            for (m, len) in [("n", 256), ("x", 32), ("y", 32)] {
                let decoded = jwk.get(m).map(|v| b64d(v.as_str().unwrap()));
                assert!(decoded.is_none_or(|b| b.len() == len), "{m}");
            }
            assert_eq!(key.kid(), rfc7638(&jwk));
        }
        assert_eq!(jwks(&[json!(1)]), json!({ "keys": [1] }));
        // RFC 7638 §3.1 example key.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let expected = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        let (n, e) = (n.to_owned(), "AQAB".to_owned());
        assert_eq!(rfc7638(&json!({ "kty": "RSA", "n": n, "e": e })), expected);
        assert_eq!(PublicParams::Rsa { n, e }.thumbprint(), expected);
    }

    #[test]
    fn openidconnect_verifies_id_tokens() {
        let public: Vec<Value> = keys().iter().map(SigningKey::public_jwk).collect();
        let set: CoreJsonWebKeySet = serde_json::from_value(jwks(&public)).unwrap();
        let (issuer, access_token, code) = ("https://bridge.example", "SlAV32hk-at", "Qcb0Orv-c");
        let now = UNIX_EPOCH.elapsed().unwrap().as_secs();
        let nonce = Nonce::new("n-0S6_WzA2Mj".into());
        for key in keys() {
            let alg = match key.alg() {
                Alg::RS256 => Js::RsaSsaPkcs1V15Sha256,
                Alg::ES256 => Js::EcdsaP256Sha256,
                Alg::EdDSA => Js::EdDsa,
            };
            let mut claims = json!({
                "iss": issuer, "sub": "alice", "aud": "rp-1", "iat": now, "exp": now + 300,
                "nonce": nonce.secret(),
                "at_hash": token_hash(key.alg(), access_token),
                "c_hash": token_hash(key.alg(), code),
            });
            let jwt = key.sign_jwt(&claims, Some("JWT")).unwrap();
            let id_token = CoreIdToken::from_str(&jwt).unwrap();
            let (client, iss) = (ClientId::new("rp-1".into()), IssuerUrl::new(issuer.into()));
            let verifier =
                CoreIdTokenVerifier::new_public_client(client, iss.unwrap(), set.clone())
                    .set_allowed_algs([alg.clone()]);
            let verified = id_token.claims(&verifier, &nonce).unwrap();
            assert_eq!(verified.subject().as_str(), "alice");
            // at_hash / c_hash exactly as the RP library computes them.
            let jwk = id_token.signing_key(&verifier).unwrap();
            let at = AtHash::from_token(&AccessToken::new(access_token.into()), &alg, jwk);
            assert_eq!(verified.access_token_hash(), Some(&at.unwrap()));
            let ch = CHash::from_code(&AuthorizationCode::new(code.into()), &alg, jwk);
            assert_eq!(verified.code_hash(), Some(&ch.unwrap()));
            // The RP refuses a swapped payload.
            claims["sub"] = json!("mallory");
            let (head, rest) = jwt.split_once('.').unwrap();
            let sig = rest.rsplit_once('.').unwrap().1;
            let payload = base64url::encode(&serde_json::to_vec(&claims).unwrap());
            let forged = CoreIdToken::from_str(&format!("{head}.{payload}.{sig}")).unwrap();
            assert!(forged.claims(&verifier, &nonce).is_err());
        }
    }

    #[test]
    fn token_hash_vectors() {
        // OpenID Connect Core 1.0 appendix A.3 (at_hash) and A.4 (c_hash).
        let at = token_hash(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y");
        assert_eq!(at, "77QmUPtjPfzWtF2AnpK9RQ");
        let code = "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk";
        assert_eq!(token_hash(Alg::ES256, code), "LDktKdoQak3Pk0cnXxCltA");
        // EdDSA: left half of SHA-512 (32 bytes, 43 characters).
        let ed = token_hash(Alg::EdDSA, "dNZX1hEZ9wBCzNL40Upu646bdzQA");
        assert_eq!(ed, "8xltSlOGYrWy8W9yNvRlEth1i_bXW-JROWPLvCv5zog");
        let full = digest::digest(&digest::SHA512, b"dNZX1hEZ9wBCzNL40Upu646bdzQA");
        assert_eq!(ed, base64url::encode(&full.as_ref()[..32]));
    }

    #[test]
    fn master_key_seal_open_derive() {
        let mk = MasterKey::generate().unwrap();
        let secret = b"pkcs8 bytes would go here";
        let sealed = mk.seal(b"kid-1", secret).unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + secret.len() + TAG_LEN);
        assert_eq!(mk.open(b"kid-1", &sealed).unwrap().as_slice(), secret);
        assert_eq!(kind(mk.open(b"kid-2", &sealed)), "Open");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert_eq!(kind(mk.open(b"kid-1", &bad)), "Open", "byte {i}");
        }
        for len in [sealed.len() - 1, NONCE_LEN + TAG_LEN - 1, 0] {
            assert_eq!(kind(mk.open(b"kid-1", &sealed[..len])), "Open");
        }
        let again = mk.seal(b"kid-1", secret).unwrap();
        assert!(again != sealed && again[..NONCE_LEN] != sealed[..NONCE_LEN]);
        let empty = mk.seal(b"", b"").unwrap();
        assert!(mk.open(b"", &empty).unwrap().is_empty());
        let stranger = MasterKey::generate().unwrap();
        assert_eq!(kind(stranger.open(b"kid-1", &sealed)), "Open");
        let copy = MasterKey::from_bytes(*mk.to_bytes());
        assert_eq!(copy.open(b"kid-1", &sealed).unwrap().as_slice(), secret);
        let (key, aad) = (&keys()[1], keys()[1].kid().as_bytes());
        let opened = mk.open(aad, &mk.seal(aad, key.pkcs8()).unwrap()).unwrap();
        let reloaded = SigningKey::from_pkcs8(key.alg(), &opened).unwrap();
        assert_eq!(reloaded.kid(), key.kid());
        // derive(): HMAC-SHA256(master, "cyrcles-bridge/v1/" || label).
        let mk = MasterKey::from_bytes([7; 32]);
        let other = MasterKey::from_bytes([8; 32]);
        assert_eq!(*mk.derive("csrf"), *mk.derive("csrf"));
        assert_ne!(*mk.derive("csrf"), *mk.derive("cookie"));
        assert_ne!(*mk.derive("csrf"), *other.derive("csrf"));
        let hkey = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        let want = hmac::sign(&hkey, b"cyrcles-bridge/v1/csrf");
        assert_eq!(mk.derive("csrf").as_slice(), want.as_ref());
    }

    #[test]
    fn debug_output_has_no_secrets() {
        for key in keys() {
            for dbg in [format!("{key:?}"), format!("{key:#?}")] {
                assert!(!leaks(&dbg, key.pkcs8()), "{dbg}");
            }
            let (alg, kid) = (key.alg(), key.kid());
            let want = format!("SigningKey {{ alg: {alg:?}, kid: {kid:?}, .. }}");
            assert_eq!(format!("{key:?}"), want);
        }
        let mk = MasterKey::generate().unwrap();
        for dbg in [format!("{mk:?}"), format!("{mk:#?}")] {
            assert!(dbg == "MasterKey(..)" && !leaks(&dbg, mk.to_bytes().as_slice()));
        }
    }
}
