//! The random values the bridge hands out (tokens, ids, client ids, error
//! references) and the shapes that tell them apart in what comes back.
//!
//! Every one comes from the operating system's generator: if it fails, the
//! bridge stops rather than hand out predictable values.

use ring::rand::{SecureRandom, SystemRandom};

use crate::base64url;

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
    base64url::encode(&random_bytes::<32>())
}

/// A random identifier with 128 bits of entropy (22 characters).
pub fn id() -> String {
    base64url::encode(&random_bytes::<16>())
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
        assert_eq!(reference().len(), 8);
    }
}
