//! The canonical encoder. It cannot produce a non-canonical head; map key
//! order is the caller's duty (keys are written in ascending order by every
//! `Encode` implementation in this crate, and the decoder checks it).

/// Writes canonical CBOR into a growing buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Writes a head with the shortest encoding of `arg`.
    fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        let small = u8::try_from(arg).ok().filter(|v| *v < 24);
        if let Some(v) = small {
            self.buf.push(m | v);
        } else if let Ok(v) = u8::try_from(arg) {
            self.buf.push(m | 24);
            self.buf.push(v);
        } else if let Ok(v) = u16::try_from(arg) {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&v.to_be_bytes());
        } else if let Ok(v) = u32::try_from(arg) {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&v.to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&arg.to_be_bytes());
        }
    }

    /// An unsigned integer (major type 0).
    pub fn uint(&mut self, v: u64) {
        self.head(0, v);
    }

    /// A byte string (major type 2).
    pub fn bytes(&mut self, b: &[u8]) {
        self.head(2, b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// A text string (major type 3).
    pub fn text(&mut self, s: &str) {
        self.head(3, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// An array header for `len` items (major type 4).
    pub fn array(&mut self, len: usize) {
        self.head(4, len as u64);
    }

    /// A map header for `len` pairs (major type 5).
    pub fn map(&mut self, len: usize) {
        self.head(5, len as u64);
    }

    /// A map key (an unsigned integer).
    pub fn key(&mut self, k: u64) {
        self.uint(k);
    }

    /// `true` or `false`.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(if v { 0xf5 } else { 0xf4 });
    }

    /// `null`.
    pub fn null(&mut self) {
        self.buf.push(0xf6);
    }

    /// Appends bytes that are already a canonical encoding of one item.
    pub fn raw(&mut self, item: &[u8]) {
        self.buf.extend_from_slice(item);
    }
}
