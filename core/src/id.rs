//! Identifiers: the ego id, its text form and fingerprint, and the DHT key.
//!
//! * `EgoId` = SHA-256 of the canonical encoding of the ego's `Inception`.
//! * Its text form is RFC 4648 base32, lower case, without padding: 52
//!   characters. Parsing accepts either case; the four unused bits of the
//!   last character must be zero, so each id has exactly one text form up
//!   to case.
//! * The fingerprint is 40 bits of SHA-256("cyrcles/v1/fingerprint" ‖ id),
//!   shown as two groups of four base32 characters, for people to compare
//!   by eye or over the phone.
//! * `DhtKey` = SHA-256("cyrcles/ego/v1" ‖ id): storage nodes index records
//!   by this hash and never see the id itself in a key.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// The RFC 4648 base32 alphabet, lower case.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Length of an ego id's text form.
pub const EGO_ID_TEXT_LEN: usize = 52;

/// Prefix hashed with the ego id to give its DHT key.
pub const DHT_KEY_PREFIX: &[u8] = b"cyrcles/ego/v1";

const FINGERPRINT_PREFIX: &[u8] = b"cyrcles/v1/fingerprint";

/// Encodes bytes as lower-case base32 without padding.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(symbol(acc >> bits));
        }
    }
    if bits > 0 {
        out.push(symbol(acc << (5 - bits)));
    }
    out
}

/// The base32 symbol for the low five bits of `v`.
fn symbol(v: u32) -> char {
    let i = (v & 31) as usize;
    ALPHABET.get(i).map(|&b| char::from(b)).unwrap_or('?')
}

/// Decodes unpadded base32 of either case into exactly `N` bytes, refusing
/// other lengths, foreign characters and non-zero unused trailing bits.
fn base32_decode<const N: usize>(text: &str) -> Result<[u8; N], ParseIdError> {
    let expected_len = (N * 8).div_ceil(5);
    if text.len() != expected_len {
        return Err(ParseIdError::Length {
            expected: expected_len,
            found: text.len(),
        });
    }
    let mut out = [0u8; N];
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut i = 0usize;
    for c in text.bytes() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(ParseIdError::Character),
        };
        acc = ((acc << 5) | u32::from(v)) & 0xfff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            let slot = out.get_mut(i).ok_or(ParseIdError::Character)?;
            *slot = u8::try_from((acc >> bits) & 0xff).unwrap_or_default();
            i += 1;
        }
    }
    if acc & ((1 << bits) - 1) != 0 {
        return Err(ParseIdError::NonCanonical);
    }
    Ok(out)
}

/// Why a text is not an ego id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseIdError {
    /// Wrong number of characters.
    #[error("an ego id has {expected} characters, this has {found}")]
    Length {
        /// Required length.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// A character outside a–z, A–Z, 2–7.
    #[error("an ego id uses only the letters a-z and the digits 2-7")]
    Character,
    /// The unused bits of the last character are not zero.
    #[error("the last character of the ego id is not valid")]
    NonCanonical,
}

/// The identifier of an ego: SHA-256 of its encoded inception.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EgoId([u8; 32]);

impl EgoId {
    /// Wraps 32 bytes (for decoding; an id is only meaningful when a
    /// verified record matches it).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The id of the inception whose canonical encoding is `encoded`.
    pub fn of_inception(encoded: &[u8]) -> Self {
        Self(Sha256::digest(encoded).into())
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key under which this ego's record is stored in the DHT.
    pub fn dht_key(&self) -> DhtKey {
        let mut h = Sha256::new();
        h.update(DHT_KEY_PREFIX);
        h.update(self.0);
        DhtKey(h.finalize().into())
    }

    /// The short form people compare, such as `k3vq-7mzd`.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = Sha256::new();
        h.update(FINGERPRINT_PREFIX);
        h.update(self.0);
        let digest: [u8; 32] = h.finalize().into();
        let mut five = [0u8; 5];
        five.copy_from_slice(&digest[..5]);
        Fingerprint(five)
    }
}

impl fmt::Display for EgoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32_encode(&self.0))
    }
}

impl fmt::Debug for EgoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EgoId({self})")
    }
}

impl FromStr for EgoId {
    type Err = ParseIdError;

    /// Parses the text form, in either case. Surrounding whitespace is not
    /// accepted here; user interfaces trim before parsing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        base32_decode::<32>(s).map(Self)
    }
}

/// 40 bits derived from an ego id, for people to compare.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 5]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = base32_encode(&self.0);
        let (a, b) = s.split_at(4);
        write!(f, "{a}-{b}")
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The DHT key of an ego's record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DhtKey([u8; 32]);

impl DhtKey {
    /// Wraps 32 bytes received from the network.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DhtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhtKey({})", base32_encode(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 §10, lower-cased, padding removed.
        assert_eq!(base32_encode(b""), "");
        assert_eq!(base32_encode(b"f"), "my");
        assert_eq!(base32_encode(b"fo"), "mzxq");
        assert_eq!(base32_encode(b"foo"), "mzxw6");
        assert_eq!(base32_encode(b"foob"), "mzxw6yq");
        assert_eq!(base32_encode(b"fooba"), "mzxw6ytb");
        assert_eq!(base32_encode(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn ego_id_text_round_trips_in_either_case() {
        let id = EgoId::from_bytes([0xa5; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), EGO_ID_TEXT_LEN);
        assert_eq!(text.parse::<EgoId>(), Ok(id));
        assert_eq!(text.to_uppercase().parse::<EgoId>(), Ok(id));
    }

    #[test]
    fn ego_id_parse_refuses_bad_text() {
        let text = EgoId::from_bytes([7; 32]).to_string();
        assert!(matches!(
            text[1..].parse::<EgoId>(),
            Err(ParseIdError::Length { .. })
        ));
        let bad_char = format!("1{}", &text[1..]);
        assert_eq!(bad_char.parse::<EgoId>(), Err(ParseIdError::Character));
        // The last character carries 1 data bit and 4 zero bits: "b" sets
        // one of the unused bits.
        let mut tail = text[..51].to_string();
        tail.push('b');
        assert_eq!(tail.parse::<EgoId>(), Err(ParseIdError::NonCanonical));
    }

    #[test]
    fn fingerprint_is_two_groups_of_four() {
        let fp = EgoId::from_bytes([1; 32]).fingerprint().to_string();
        assert_eq!(fp.len(), 9);
        assert_eq!(fp.as_bytes()[4], b'-');
    }
}
