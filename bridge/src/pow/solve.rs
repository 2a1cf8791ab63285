//! The work: the hash a solution must make small, and a brute-force
//! solver (the one `templates/static/pow.js` mirrors, for tests and the
//! load generators).

use ring::digest;

use super::MAX_DIFFICULTY;

/// Longest solution `verify` will look at, in bytes (decimal digits).
pub const MAX_SOLUTION_CHARS: usize = 20;

/// `SHA-256(token || ":" || solution)`.
pub(crate) fn work_hash(token: &str, solution: &str) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(token.as_bytes());
    ctx.update(b":");
    ctx.update(solution.as_bytes());
    ctx.finish()
}

/// Number of leading zero bits of `bytes`.
pub(crate) fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut bits = 0u32;
    for &b in bytes {
        if b == 0 {
            bits = bits.saturating_add(8);
        } else {
            return bits.saturating_add(b.leading_zeros());
        }
    }
    bits
}

/// A decimal counter of at most [`MAX_SOLUTION_CHARS`] digits, most
/// significant first, counting 0, 1, 2, ...
pub(crate) struct DecimalCounter {
    pub(crate) digits: [u8; MAX_SOLUTION_CHARS],
    pub(crate) len: usize,
}

impl DecimalCounter {
    pub(crate) fn new() -> Self {
        Self {
            digits: [b'0'; MAX_SOLUTION_CHARS],
            len: 1,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or_default()
    }

    /// Adds one; false once the 20-digit space is exhausted.
    pub(crate) fn increment(&mut self) -> bool {
        if let Some(active) = self.digits.get_mut(..self.len) {
            for d in active.iter_mut().rev() {
                if *d == b'9' {
                    *d = b'0';
                } else {
                    *d = d.saturating_add(1);
                    return true;
                }
            }
        }
        // 99..9 + 1 = 100..0: one digit longer (the others are all '0' now).
        match self.digits.get_mut(self.len) {
            Some(next) => {
                *next = b'0';
                if let Some(first) = self.digits.first_mut() {
                    *first = b'1';
                }
                self.len = self.len.saturating_add(1);
                true
            }
            None => false,
        }
    }
}

/// Returns a solution by brute force (used by the bridge's own tests and
/// load generators).
///
/// Tries `0`, `1`, `2`, ... and returns the first that meets `difficulty`,
/// the same one `pow.js` finds. Returns `None` if `difficulty` exceeds
/// [`MAX_DIFFICULTY`] or, in theory, when 20 digits run out.
pub fn solve(token: &str, difficulty: u8) -> Option<String> {
    if difficulty > MAX_DIFFICULTY {
        return None;
    }
    let mut prefix = digest::Context::new(&digest::SHA256);
    prefix.update(token.as_bytes());
    prefix.update(b":");
    let needed = u32::from(difficulty);
    let mut counter = DecimalCounter::new();
    loop {
        let mut ctx = prefix.clone();
        ctx.update(counter.as_bytes());
        if leading_zero_bits(ctx.finish().as_ref()) >= needed {
            return String::from_utf8(counter.as_bytes().to_vec()).ok();
        }
        if !counter.increment() {
            return None;
        }
    }
}
