//! The strict decoder.

use thiserror::Error;

/// Why a byte string is not a canonical encoding of the expected value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the cap for this kind of message. Checked
    /// before any parsing.
    #[error("input of {len} bytes exceeds the cap of {max} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The input ends inside a data item.
    #[error("input ends early")]
    Truncated,
    /// Bytes follow the top-level item.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// How many bytes are left.
        count: usize,
    },
    /// A head whose argument is not in its shortest form.
    #[error("non-canonical integer or length encoding")]
    NonCanonical,
    /// An indefinite-length string, array or map.
    #[error("indefinite lengths are not allowed")]
    IndefiniteLength,
    /// Reserved additional-information values 28..=30.
    #[error("malformed data item head")]
    Malformed,
    /// A data item of another type than the schema requires.
    #[error("expected {expected}, found major type {major}")]
    UnexpectedType {
        /// What the schema wanted.
        expected: &'static str,
        /// The major type found (7 for simple values and floats).
        major: u8,
    },
    /// A map key seen twice.
    #[error("duplicate map key {0}")]
    DuplicateKey(u64),
    /// A map key smaller than the one before it.
    #[error("map key {0} out of ascending order")]
    UnsortedKey(u64),
    /// A map key that is not the one the schema requires at this position
    /// (an unknown key, or a required key missing).
    #[error("expected map key {expected}, found {found}")]
    UnexpectedKey {
        /// The key the schema requires here.
        expected: u64,
        /// The key found.
        found: u64,
    },
    /// A map or array with the wrong number of entries for its schema.
    #[error("{what}: expected {expected} entries, found {found}")]
    WrongCount {
        /// The field or structure.
        what: &'static str,
        /// Entries the schema requires.
        expected: u64,
        /// Entries found.
        found: u64,
    },
    /// A fixed-size byte string of another size.
    #[error("{what}: expected {expected} bytes, found {found}")]
    WrongSize {
        /// The field.
        what: &'static str,
        /// Required size.
        expected: usize,
        /// Size found.
        found: usize,
    },
    /// A length or value outside the range the schema allows.
    #[error("{what}: value out of range")]
    OutOfRange {
        /// The field.
        what: &'static str,
    },
    /// A text string that is not UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// A text string holding a character the text rule refuses (a control
    /// character, a line or paragraph separator, or a bidirectional
    /// control; see [`crate::text`]), so that text shown to a person cannot
    /// carry terminal escapes, hidden lines or reordered words.
    #[error("{what}: text holds a forbidden character")]
    ForbiddenCharacter {
        /// The field.
        what: &'static str,
    },
    /// A version number this implementation does not know.
    #[error("unknown version {0}")]
    UnknownVersion(u64),
    /// An enumeration value this implementation does not know.
    #[error("{what}: unknown value {value}")]
    UnknownValue {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// An optional field written with the value its absence stands for
    /// (such as `false` for a flag that is absent when false): the
    /// canonical encoding leaves it out, so one value has one encoding.
    #[error("{what}: the default value is written out; the canonical encoding leaves it out")]
    ExplicitDefault {
        /// The field.
        what: &'static str,
    },
    /// A value that decodes but is not a valid key, point or scalar.
    #[error("{what}: invalid cryptographic value")]
    InvalidCrypto {
        /// The field.
        what: &'static str,
    },
}

impl DecodeError {
    /// A stable name for the kind of refusal, used in the message test
    /// vectors (docs/protocol.md, section 11): `too_large` (over the size
    /// cap, checked before parsing), `text` (a text string breaks the text
    /// rule of section 1), `limit` (a length, count or value outside the
    /// range its field allows) and `encoding` (anything else: not the
    /// canonical encoding of the schema).
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::ForbiddenCharacter { .. } => "text",
            DecodeError::OutOfRange { .. } => "limit",
            _ => "encoding",
        }
    }

    /// The field a `text` or `limit` refusal names.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DecodeError::ForbiddenCharacter { what } | DecodeError::OutOfRange { what } => {
                Some(what)
            }
            _ => None,
        }
    }
}

/// Reads canonical CBOR items from a byte slice.
#[derive(Debug)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

/// The major types of RFC 8949 §3.1 that the subset uses.
const UINT: u8 = 0;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const SIMPLE: u8 = 7;

const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;

fn type_name(major: u8) -> &'static str {
    match major {
        UINT => "unsigned integer",
        BYTES => "byte string",
        TEXT => "text string",
        ARRAY => "array",
        MAP => "map",
        _ => "simple value",
    }
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    /// The current offset in the input.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The input between two offsets (used to take the exact bytes of a
    /// nested item, which are its canonical encoding).
    pub fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        self.input.get(start..end).unwrap_or(&[])
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self
            .input
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.input.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    /// Reads a head of the given major type and returns its argument.
    fn head(&mut self, want: u8) -> Result<u64, DecodeError> {
        let start = self.pos;
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        if major != want {
            self.pos = start;
            return Err(DecodeError::UnexpectedType {
                expected: type_name(want),
                major,
            });
        }
        let arg = match info {
            0..=23 => u64::from(info),
            24 => {
                let v = u64::from(self.byte()?);
                if v < 24 {
                    return Err(DecodeError::NonCanonical);
                }
                v
            }
            25 => {
                let v = u64::from(u16::from_be_bytes(self.array_of::<2>()?));
                if v <= 0xff {
                    return Err(DecodeError::NonCanonical);
                }
                v
            }
            26 => {
                let v = u64::from(u32::from_be_bytes(self.array_of::<4>()?));
                if v <= 0xffff {
                    return Err(DecodeError::NonCanonical);
                }
                v
            }
            27 => {
                let v = u64::from_be_bytes(self.array_of::<8>()?);
                if v <= 0xffff_ffff {
                    return Err(DecodeError::NonCanonical);
                }
                v
            }
            31 => return Err(DecodeError::IndefiniteLength),
            _ => return Err(DecodeError::Malformed),
        };
        Ok(arg)
    }

    fn array_of<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// A length argument, bounded by the bytes left (every item takes at
    /// least one byte), so no caller allocates more than the input size.
    fn length(&mut self, major: u8) -> Result<usize, DecodeError> {
        let n = self.head(major)?;
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => Ok(n),
            _ => Err(DecodeError::Truncated),
        }
    }

    /// An unsigned integer.
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        self.head(UINT)
    }

    /// An unsigned integer no larger than `max`.
    pub fn uint_max(&mut self, what: &'static str, max: u64) -> Result<u64, DecodeError> {
        let v = self.uint()?;
        if v > max {
            return Err(DecodeError::OutOfRange { what });
        }
        Ok(v)
    }

    /// A byte string of any length.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.length(BYTES)?;
        self.take(n)
    }

    /// A byte string whose length lies in `min..=max`.
    pub fn bytes_in(
        &mut self,
        what: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let b = self.bytes()?;
        if b.len() < min || b.len() > max {
            return Err(DecodeError::OutOfRange { what });
        }
        Ok(b)
    }

    /// A byte string of exactly `N` bytes.
    pub fn bytes_fixed<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let b = self.bytes()?;
        <[u8; N]>::try_from(b).map_err(|_| DecodeError::WrongSize {
            what,
            expected: N,
            found: b.len(),
        })
    }

    /// A text string of at most `max` bytes, valid UTF-8, that follows the
    /// text rule ([`crate::text`]).
    pub fn text(&mut self, what: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let n = self.length(TEXT)?;
        if n > max {
            return Err(DecodeError::OutOfRange { what });
        }
        let raw = self.take(n)?;
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        if !crate::text::is_allowed(s) {
            return Err(DecodeError::ForbiddenCharacter { what });
        }
        Ok(s)
    }

    /// An array header; returns the number of items, which must lie in
    /// `0..=max`.
    pub fn array(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let n = self.length(ARRAY)?;
        if n > max {
            return Err(DecodeError::OutOfRange { what });
        }
        Ok(n)
    }

    /// An array header that must announce exactly `len` items.
    pub fn array_exact(&mut self, what: &'static str, len: usize) -> Result<(), DecodeError> {
        let n = self.length(ARRAY)?;
        if n != len {
            return Err(DecodeError::WrongCount {
                what,
                expected: len as u64,
                found: n as u64,
            });
        }
        Ok(())
    }

    /// A map header; the returned reader checks the keys that follow.
    pub fn map(&mut self, what: &'static str) -> Result<MapReader, DecodeError> {
        // Each pair takes at least two bytes; `length` bounds by one byte per
        // entry, which is enough to rule out huge counts.
        let len = self.length(MAP)?;
        Ok(MapReader {
            what,
            len: len as u64,
            read: 0,
            last: None,
        })
    }

    /// `true` or `false`.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.peek()? {
            FALSE => {
                self.pos += 1;
                Ok(false)
            }
            TRUE => {
                self.pos += 1;
                Ok(true)
            }
            b => Err(DecodeError::UnexpectedType {
                expected: "boolean",
                major: b >> 5,
            }),
        }
    }

    /// Consumes a `null` if one is next; returns whether it did.
    pub fn null(&mut self) -> Result<bool, DecodeError> {
        if self.peek()? == NULL {
            self.pos += 1;
            return Ok(true);
        }
        // Any other simple value or float in a nullable position is an error
        // of the value's own decoder; leave the byte for it.
        Ok(false)
    }

    /// Reads `value` or `null`.
    pub fn optional<T>(
        &mut self,
        value: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.null()? {
            Ok(None)
        } else {
            value(self).map(Some)
        }
    }

    /// Whether the next item has major type 7 (a simple value or float).
    pub fn next_is_simple(&self) -> bool {
        self.peek().map(|b| b >> 5 == SIMPLE).unwrap_or(false)
    }
}

/// Checks the keys of one map: present in the exact order the schema lists
/// them, each once.
#[derive(Debug)]
pub struct MapReader {
    what: &'static str,
    len: u64,
    read: u64,
    last: Option<u64>,
}

impl MapReader {
    /// The number of pairs the map announces.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fails unless the map has exactly `n` pairs.
    pub fn expect_len(&self, n: u64) -> Result<(), DecodeError> {
        if self.len != n {
            return Err(DecodeError::WrongCount {
                what: self.what,
                expected: n,
                found: self.len,
            });
        }
        Ok(())
    }

    /// Reads the next key and fails unless it is `expected`.
    pub fn key(&mut self, d: &mut Decoder<'_>, expected: u64) -> Result<(), DecodeError> {
        if self.read >= self.len {
            return Err(DecodeError::WrongCount {
                what: self.what,
                expected: self.read + 1,
                found: self.len,
            });
        }
        self.read += 1;
        let found = d.uint()?;
        if let Some(last) = self.last {
            if found == last {
                return Err(DecodeError::DuplicateKey(found));
            }
            if found < last {
                return Err(DecodeError::UnsortedKey(found));
            }
        }
        self.last = Some(found);
        if found != expected {
            return Err(DecodeError::UnexpectedKey { expected, found });
        }
        Ok(())
    }
}
