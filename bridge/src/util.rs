//! Small shared helpers: random identifiers, hashing, time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // SystemRandom reads the OS generator; it fails only if the OS cannot
    // provide randomness, in which case nothing the bridge does is safe:
    // stop rather than hand out predictable tokens.
    if SystemRandom::new().fill(&mut out).is_err() {
        tracing::error!("the operating system's random generator failed");
        std::process::abort();
    }
    out
}

/// A random token with 256 bits of entropy, base64url without padding (43
/// characters).
pub fn token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A random identifier with 128 bits of entropy (22 characters).
pub fn id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// A new client id: 128 random bits, base64url, never starting with `-`
/// (an id that did was read as an option by command lines, `cyrcles
/// policy allow --client ID` among them).
pub fn client_id() -> String {
    loop {
        let id = id();
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// SHA-256 of a string (how tokens, codes and secrets are stored).
pub fn sha256(s: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A short random reference shown to a person when something failed
/// inside, and logged with the details.
pub fn reference() -> String {
    let b = random_bytes::<4>();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether `s` looks like one of our random tokens (base64url, 43 chars).
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Whether `s` looks like one of our random ids (base64url, 22 chars).
pub fn is_id_shaped(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Sets `key` in a JSON object (does nothing to other values, instead of
/// panicking as `value[key] = …` would).
pub fn set(v: &mut serde_json::Value, key: &str, x: serde_json::Value) {
    if let serde_json::Value::Object(m) = v {
        m.insert(key.to_string(), x);
    }
}

/// Reads `key` of a JSON object.
pub fn get<'a>(v: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    v.get(key).unwrap_or(&serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_ids_have_their_shapes() {
        let t = token();
        assert!(is_token_shaped(&t));
        assert!(is_id_shaped(&id()));
        assert_ne!(t, token());
        assert!(!is_token_shaped("short"));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert_eq!(reference().len(), 8);
    }
}
