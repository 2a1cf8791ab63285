//! base64url without padding (RFC 4648 section 5), the one encoding of
//! the bridge's tokens, ids, digests on the wire and JOSE segments.
//!
//! Decoding is strict: the URL-safe alphabet only, no padding, no
//! whitespace, and canonical trailing bits, so one value has one encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use base64::{DecodeError, DecodeSliceError};

/// `bytes` in base64url, without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strictly decodes base64url without padding.
pub fn decode(s: &str) -> Result<Vec<u8>, DecodeError> {
    URL_SAFE_NO_PAD.decode(s)
}

/// Strictly decodes base64url without padding into `out`, returning the
/// number of bytes written (an error if they do not fit): for untrusted
/// input decoded without allocating.
pub fn decode_into(s: &str, out: &mut [u8]) -> Result<usize, DecodeSliceError> {
    URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_strict() {
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode("-_8").unwrap(), [0xfb, 0xff]);
        // Padding, the standard alphabet, whitespace, non-canonical
        // trailing bits.
        for bad in ["-_8=", "+/8", "-_8 ", "-_9"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        let mut buf = [0u8; 1];
        assert!(decode_into("-_8", &mut buf).is_err());
        let mut buf = [0u8; 2];
        assert_eq!(decode_into("-_8", &mut buf).unwrap(), 2);
    }
}
