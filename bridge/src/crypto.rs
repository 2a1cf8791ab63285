//! The hash the bridge stores its handed-out secrets as, and the one
//! comparison a presented secret, tag or digest is checked with.
//!
//! Tokens, codes, session cookies and client secrets are kept only as
//! their [`sha256`]; [`ct_eq`] takes the same time whatever the contents
//! (only the lengths, which are public, can end it early).

use subtle::ConstantTimeEq as _;

/// SHA-256 of a string (how tokens, codes and secrets are stored).
pub fn sha256(s: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

/// Constant-time equality of two byte strings: false if their lengths
/// differ, and otherwise without branching on their contents.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"ab", b"abc"));
        assert!(!ct_eq(b"", b"a"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn sha256_is_sha256() {
        // FIPS 180-2, "abc".
        let abc = sha256("abc");
        assert_eq!(abc.len(), 32);
        assert_eq!(abc.get(..4), Some(&[0xba, 0x78, 0x16, 0xbf][..]));
    }
}
