//! The envelope of the circle (`/cyrcles/circle/1`) and invite
//! (`/cyrcles/invite/1`) protocols: a message kind and the canonical
//! encoding of the message of that kind.
//!
//! ```cddl
//! envelope = {
//!   0: 1,                 ; version
//!   1: uint .le 65535,    ; kind (each protocol lists its kinds)
//!   2: bstr,              ; body: the encoded message of that kind
//! }
//! ```
//!
//! The transport reads and caps the envelope; the receiver decodes the body
//! with the decoder its kind names, under the cap of that protocol.

use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};

/// Envelope format version.
pub const ENVELOPE_VERSION: u64 = 1;

/// A typed message in transit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Which message the body holds.
    pub kind: u16,
    /// The message's canonical encoding.
    pub body: Vec<u8>,
}

impl Envelope {
    /// Wraps a message.
    pub fn wrap<T: Encode>(kind: u16, message: &T) -> Self {
        Self {
            kind,
            body: message.to_cbor(),
        }
    }

    /// Decodes the body as `T`, under `max_len`.
    pub fn open<T: Decode>(&self, max_len: usize) -> Result<T, DecodeError> {
        T::from_cbor(&self.body, max_len)
    }
}

impl Encode for Envelope {
    fn encode(&self, e: &mut Encoder) {
        e.map(3);
        e.key(0);
        e.uint(ENVELOPE_VERSION);
        e.key(1);
        e.uint(u64::from(self.kind));
        e.key(2);
        e.bytes(&self.body);
    }
}

impl Decode for Envelope {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("envelope")?;
        m.key(d, 0)?;
        let version = d.uint()?;
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        m.expect_len(3)?;
        m.key(d, 1)?;
        let kind =
            u16::try_from(d.uint()?).map_err(|_| DecodeError::OutOfRange { what: "kind" })?;
        m.key(d, 2)?;
        let body = d.bytes()?.to_vec();
        Ok(Self { kind, body })
    }
}
