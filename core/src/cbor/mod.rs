//! Deterministic CBOR (RFC 8949 §4.2.1), restricted to the subset the
//! protocol uses.
//!
//! Allowed data items: unsigned integers (major type 0), byte strings (2),
//! text strings (3), arrays (4), maps (5) whose keys are unsigned integers,
//! and the simple values `false`, `true` and `null`. Every head uses the
//! shortest form of its argument; lengths are always definite.
//!
//! The decoder is strict: anything outside the subset, any non-shortest head,
//! any indefinite length, map keys out of ascending order or repeated, and
//! bytes left over after the top-level item are errors. Lengths read from the
//! input are checked against the bytes that remain before anything is
//! allocated, so memory use is bounded by the input size.

mod decode;
mod encode;

pub use decode::{DecodeError, Decoder, MapReader};
pub use encode::Encoder;

/// A type with exactly one canonical CBOR encoding.
pub trait Encode {
    /// Appends the canonical encoding of `self` to `e`.
    fn encode(&self, e: &mut Encoder);

    /// Returns the canonical encoding of `self`.
    fn to_cbor(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        self.encode(&mut e);
        e.into_bytes()
    }
}

/// A type decoded strictly from its canonical CBOR encoding.
pub trait Decode: Sized {
    /// Reads one value of this type from `d`.
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError>;

    /// Decodes a whole byte string: checks `bytes.len() <= max_len` before
    /// reading anything, and refuses trailing bytes.
    fn from_cbor(bytes: &[u8], max_len: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_len {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: max_len,
            });
        }
        let mut d = Decoder::new(bytes);
        let value = Self::decode(&mut d)?;
        d.finish()?;
        Ok(value)
    }
}
