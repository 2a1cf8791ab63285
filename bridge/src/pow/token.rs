//! The challenge token: its bytes, its strict decoding, and its tag (see
//! the layout in the module documentation of [`crate::pow`]).

use ring::hmac;

use super::PowError;
use crate::{base64url, crypto};

/// Version byte of the token format.
pub const TOKEN_VERSION: u8 = 2;
/// Longest token `verify` will look at, in bytes (real tokens have 62).
pub const MAX_TOKEN_CHARS: usize = 128;

/// Length of the random field in a token.
pub(crate) const RANDOM_LEN: usize = 16;
/// Length of the truncated HMAC tag in a token.
pub(crate) const TAG_LEN: usize = 16;
/// Length of the signed part: version, epoch, issued_at, difficulty,
/// random.
pub(crate) const SIGNED_LEN: usize = 1 + 4 + 8 + 1 + RANDOM_LEN;
/// Length of a decoded token.
pub(crate) const TOKEN_LEN: usize = SIGNED_LEN + TAG_LEN;
/// Length of a token in its ASCII form.
pub const TOKEN_CHARS: usize = (TOKEN_LEN * 8).div_ceil(6);
/// Decode buffer: enough for any base64 input of `MAX_TOKEN_CHARS`.
const DECODE_BUF_LEN: usize = MAX_TOKEN_CHARS / 4 * 3;

/// The fields of a token that decoded, had the right version and tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    /// The spent-set epoch it was issued in.
    pub epoch: u32,
    /// Unix seconds.
    pub issued_at: u64,
    /// Leading zero bits asked.
    pub difficulty: u8,
    /// Its tag: what the spent set remembers.
    pub tag: [u8; TAG_LEN],
}

/// Builds a token.
pub(crate) fn encode(
    key: &hmac::Key,
    epoch: u32,
    issued_at: u64,
    difficulty: u8,
    random: &[u8; RANDOM_LEN],
) -> String {
    let mut bytes = Vec::with_capacity(TOKEN_LEN);
    bytes.push(TOKEN_VERSION);
    bytes.extend_from_slice(&epoch.to_be_bytes());
    bytes.extend_from_slice(&issued_at.to_be_bytes());
    bytes.push(difficulty);
    bytes.extend_from_slice(random);
    let tag = hmac::sign(key, &bytes);
    bytes.extend(tag.as_ref().iter().take(TAG_LEN));
    base64url::encode(&bytes)
}

/// Strictly decodes `token` and checks its version and tag.
pub(crate) fn decode(key: &hmac::Key, token: &str) -> Result<Token, PowError> {
    let mut buf = [0u8; DECODE_BUF_LEN];
    let n = base64url::decode_into(token, &mut buf).map_err(|_| PowError::Malformed)?;
    if n != TOKEN_LEN {
        return Err(PowError::Malformed);
    }
    let bytes = buf.get(..TOKEN_LEN).ok_or(PowError::Malformed)?;
    let (signed, tag) = bytes
        .split_at_checked(SIGNED_LEN)
        .ok_or(PowError::Malformed)?;
    let &[
        version,
        e0,
        e1,
        e2,
        e3,
        i0,
        i1,
        i2,
        i3,
        i4,
        i5,
        i6,
        i7,
        difficulty,
        ..,
    ] = signed
    else {
        return Err(PowError::Malformed);
    };
    if version != TOKEN_VERSION {
        return Err(PowError::UnsupportedVersion(version));
    }
    let expected = hmac::sign(key, signed);
    let expected = expected.as_ref().get(..TAG_LEN).ok_or(PowError::BadTag)?;
    if !crypto::ct_eq(expected, tag) {
        return Err(PowError::BadTag);
    }
    Ok(Token {
        epoch: u32::from_be_bytes([e0, e1, e2, e3]),
        issued_at: u64::from_be_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
        difficulty,
        tag: tag.try_into().map_err(|_| PowError::Malformed)?,
    })
}
