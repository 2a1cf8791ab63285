//! Proof-of-work gate for the login form.
//!
//! Under load the bridge makes a login start cost the client some CPU: the
//! login page embeds a challenge token, the static script
//! `templates/static/pow.js` finds a solution in the browser, and
//! [`PowGate::verify`] checks it in a few microseconds. [`LoadMeter`] is the
//! switch: the bridge records every login start and asks for a solution only
//! while [`LoadMeter::is_hot`].
//!
//! # Token
//!
//! A challenge token is `base64url_nopad(bytes)` (no padding, 56 ASCII
//! characters) where `bytes` is 42 bytes:
//!
//! | offset | size | field                                             |
//! |-------:|-----:|---------------------------------------------------|
//! | 0      | 1    | version, [`TOKEN_VERSION`] = 1                    |
//! | 1      | 8    | `issued_at`, Unix seconds, big-endian `u64`       |
//! | 9      | 1    | difficulty in bits                                |
//! | 10     | 16   | random, from `ring::rand::SystemRandom`           |
//! | 26     | 16   | tag: first 16 bytes of HMAC-SHA256(secret, 0..26) |
//!
//! The server keeps no state per challenge: everything it needs is in the
//! token, and the tag makes it unforgeable without the gate's 32-byte secret.
//! Bridge instances that share the secret accept each other's tokens.
//!
//! # Work
//!
//! A solution is 1 to 20 ASCII decimal digits `N` such that
//! `SHA-256(token || ":" || N)` (the token in its ASCII form) starts with at
//! least `difficulty` zero bits. Leading zeros in `N` are allowed; a token is
//! spent by its first accepted solution whatever `N` was. Finding one takes
//! 2^difficulty hashes on average (the search is memoryless: the median is
//! about 0.69 × 2^d, the 95th percentile about 3 × 2^d); checking one takes a
//! single hash. The message is 57 + len(N) bytes, so two SHA-256 blocks.
//!
//! # Default difficulty
//!
//! [`DEFAULT_DIFFICULTY`] is 18 bits, the bridge's configured default
//! (`login.pow_difficulty`). The solver in `pow.js` tries about 1.4 million
//! candidates per second on one core of a 2-core AMD EPYC virtual machine,
//! both under Node.js 20 and in Chromium 156 (V8, the engine of Chrome and
//! Edge); on a real login page, with the work cut into 40 ms slices between
//! which the page can repaint, about 1.2 million. 2^18 ≈ 262 000 expected
//! tries is then about 0.2 s on average (0.65 s for the unluckiest one in
//! twenty) on a typical desktop, and a second or two on a slow phone; each
//! extra bit doubles that (20 bits: 0.75 to 0.9 s on average). The gate only
//! asks for work when the login form is under load.
//! Native code does about 7.5 million tries per second per core (ring), so
//! the gate slows a bot down rather than stopping it.
//!
//! # Verification
//!
//! [`PowGate::verify`] runs these checks in order and returns the first
//! failure, each as its own [`PowError`] variant:
//!
//! 1. size: token at most [`MAX_TOKEN_CHARS`] bytes, solution at most
//!    [`MAX_SOLUTION_CHARS`] bytes, solution non-empty ASCII digits;
//! 2. strict base64url decoding (URL-safe alphabet, no padding, no trailing
//!    bits, no whitespace) to exactly 42 bytes;
//! 3. version;
//! 4. tag, compared in constant time (see below);
//! 5. age: `issued_at <= now + CLOCK_SLACK_SECS` (60 s, for clocks of other
//!    instances running ahead) and `now - issued_at <= max_age`;
//! 6. the token's difficulty is at least the gate's current
//!    [`PowGate::difficulty`] (so raising it retires easier tokens at once,
//!    and lowering it keeps harder ones valid);
//! 7. the hash has the token's number of leading zero bits;
//! 8. replay: the token has not been spent before, and there is room to
//!    remember it (see below); on success it is marked spent.
//!
//! The tag is truncated to 16 bytes to keep the token short, and
//! `ring::hmac::verify` only accepts a full-length tag, so the gate computes
//! the full HMAC with `ring::hmac::sign` and compares its first 16 bytes to
//! the token's with a branch-free fold whose every step goes through
//! [`std::hint::black_box`].
//!
//! # Replay
//!
//! A solved token may be used once. The gate remembers the tags of spent
//! tokens in two generations of hash sets: every `max_age + 60` seconds the
//! current set becomes the previous one and the old previous one is dropped.
//! A tag is therefore remembered for at least `max_age + 60` seconds, which
//! covers the whole life of its token including the clock slack. The two
//! sets together hold at most `max_spent` tags; when they are full,
//! `verify` refuses new tokens with [`PowError::Busy`] instead of growing,
//! until a rotation frees room (at most `2 × (max_age + 60)` seconds later).
//! At 16 bytes plus hash-table overhead per tag, 100 000 tags cost a few
//! megabytes.
//!
//! The spent set lives in the memory of one process: **instances of the
//! bridge do not share it**, so behind a load balancer a solved token can be
//! replayed once per instance (and after a restart). The gate raises the cost
//! of a login start; it is not a one-time-use guarantee across a cluster.
//! Rotation assumes the `now` passed in does not run backwards by much.
//!
//! # Other choices
//!
//! * Difficulty is capped at [`MAX_DIFFICULTY`] (32 bits, about an hour of
//!   browser work) when the gate is built or changed.
//! * A difficulty of 0 accepts any well-formed solution: the token is still
//!   checked for tag, age and replay.
//! * Should the system random source fail (it does not on supported
//!   platforms), the random field is derived instead from the secret, the
//!   time, the process id and a counter with HMAC, so tokens stay unique and
//!   unpredictable; [`PowGate::challenge`] therefore cannot fail.
//! * `now_secs` arguments are Unix seconds supplied by the caller, which
//!   keeps the gate deterministic under test.
//!
//! # The page
//!
//! ```html
//! <form method="post" data-pow-token="TOKEN" data-pow-difficulty="20">
//!   <input type="hidden" name="pow_token" value="TOKEN">
//!   <input type="hidden" name="pow_solution" value="">
//!   <p id="pow-status" aria-live="polite"></p>
//! </form>
//! <script src="/static/pow.js" defer></script>
//! ```
//!
//! Without JavaScript the form cannot pass the gate, so the page should say
//! so in a `<noscript>` element while the gate is on.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};
use zeroize::Zeroize as _;

/// Version byte of the token format described in the module documentation.
pub const TOKEN_VERSION: u8 = 1;
/// Longest token `verify` will look at, in bytes (real tokens have 56).
pub const MAX_TOKEN_CHARS: usize = 128;
/// Longest solution `verify` will look at, in bytes (decimal digits).
pub const MAX_SOLUTION_CHARS: usize = 20;
/// How far in the future a token's `issued_at` may be, in seconds, to allow
/// for clocks of other bridge instances running ahead.
pub const CLOCK_SLACK_SECS: u64 = 60;
/// Highest difficulty a gate will ask for, in bits.
pub const MAX_DIFFICULTY: u8 = 32;
/// The default difficulty in bits: about 0.2 s of work on a desktop
/// browser (see the module documentation for the arithmetic).
pub const DEFAULT_DIFFICULTY: u8 = 18;
/// Suggested lifetime of a challenge, in seconds.
pub const DEFAULT_MAX_AGE_SECS: u64 = 300;
/// Suggested bound on the number of remembered spent tokens.
pub const DEFAULT_MAX_SPENT: usize = 100_000;

/// Length of the random field in a token.
const RANDOM_LEN: usize = 16;
/// Length of the truncated HMAC tag in a token.
const TAG_LEN: usize = 16;
/// Length of the signed part of a token: version, issued_at, difficulty,
/// random.
const SIGNED_LEN: usize = 1 + 8 + 1 + RANDOM_LEN;
/// Length of a decoded token.
const TOKEN_LEN: usize = SIGNED_LEN + TAG_LEN;
/// Decode buffer: enough for any base64 input of `MAX_TOKEN_CHARS`.
const DECODE_BUF_LEN: usize = MAX_TOKEN_CHARS / 4 * 3;
/// Domain separation for the fallback random field.
const FALLBACK_LABEL: &[u8] = b"cyrcles-pow-fallback-random\0";

/// Why [`PowGate::verify`] refused a solution.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum PowError {
    /// The token is longer than [`MAX_TOKEN_CHARS`].
    #[error("proof-of-work token is too long")]
    TokenTooLong,
    /// The solution is longer than [`MAX_SOLUTION_CHARS`].
    #[error("proof-of-work solution is too long")]
    SolutionTooLong,
    /// The solution is empty or has a character other than `0`-`9`.
    #[error("proof-of-work solution is not a string of decimal digits")]
    SolutionNotDigits,
    /// The token is not strict unpadded base64url of the right length.
    #[error("proof-of-work token is malformed")]
    Malformed,
    /// The token's version byte is not [`TOKEN_VERSION`].
    #[error("proof-of-work token has unsupported version {0}")]
    UnsupportedVersion(u8),
    /// The token's tag does not match: forged, altered, or from another key.
    #[error("proof-of-work token failed authentication")]
    BadTag,
    /// The token claims to be issued more than [`CLOCK_SLACK_SECS`] ahead.
    #[error("proof-of-work token is not valid yet")]
    NotYetValid,
    /// The token is older than the gate's maximum age.
    #[error("proof-of-work token has expired")]
    Expired,
    /// The token asks for less work than the gate currently requires.
    #[error("proof-of-work token difficulty {token} is below the required {required}")]
    DifficultyTooLow {
        /// Difficulty in the token, in bits.
        token: u8,
        /// Difficulty the gate requires now, in bits.
        required: u8,
    },
    /// The hash of token and solution has too few leading zero bits.
    #[error("proof-of-work solution does not meet the difficulty")]
    InsufficientWork,
    /// The token was already spent.
    #[error("proof-of-work token was already used")]
    Replayed,
    /// The spent-token set is full; try again later.
    #[error("too many proof-of-work tokens spent recently")]
    Busy,
}

/// A challenge to embed in the login page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowChallenge {
    /// The token, 56 base64url characters, for `data-pow-token` and the
    /// hidden `pow_token` field.
    pub token: String,
    /// Leading zero bits the solution must produce, for
    /// `data-pow-difficulty`.
    pub difficulty: u8,
}

/// Tags of spent tokens, in two generations (see the module documentation).
#[derive(Debug, Default)]
struct SpentSet {
    /// Tags spent since `rotated_at`.
    current: HashSet<[u8; TAG_LEN]>,
    /// Tags spent in the generation before.
    previous: HashSet<[u8; TAG_LEN]>,
    /// When `current` was started, in Unix seconds.
    rotated_at: u64,
}

impl SpentSet {
    /// Ages the generations so that every tag is kept for at least `period`
    /// seconds after it was inserted.
    fn rotate(&mut self, now: u64, period: u64) {
        let elapsed = now.saturating_sub(self.rotated_at);
        if elapsed >= period.saturating_mul(2) {
            self.current.clear();
            self.previous.clear();
            self.rotated_at = now;
        } else if elapsed >= period {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
            self.rotated_at = now;
        }
    }

    fn contains(&self, tag: &[u8; TAG_LEN]) -> bool {
        self.current.contains(tag) || self.previous.contains(tag)
    }

    fn len(&self) -> usize {
        self.current.len().saturating_add(self.previous.len())
    }
}

/// The proof-of-work gate: issues challenge tokens and verifies solutions.
///
/// Cheap to share behind an `Arc`; all methods take `&self`.
pub struct PowGate {
    /// HMAC-SHA256 key made from the 32-byte secret.
    key: hmac::Key,
    /// Bits the gate issues and requires now.
    difficulty: AtomicU8,
    /// Maximum token age in seconds.
    max_age_secs: u64,
    /// Bound on the number of remembered spent tokens.
    max_spent: usize,
    /// Source of the random field.
    rng: SystemRandom,
    /// Counter for the fallback random field.
    fallback_counter: AtomicU64,
    /// Spent tokens.
    spent: Mutex<SpentSet>,
}

impl fmt::Debug for PowGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowGate")
            .field("difficulty", &self.difficulty())
            .field("max_age_secs", &self.max_age_secs)
            .field("max_spent", &self.max_spent)
            .finish_non_exhaustive()
    }
}

/// Fields of a token that passed decoding and the version check.
struct ParsedToken<'a> {
    signed: &'a [u8],
    tag: &'a [u8],
    issued_at: u64,
    difficulty: u8,
}

impl PowGate {
    /// Builds a gate from a 32-byte secret (wiped from this copy once the
    /// HMAC key is made), the difficulty in bits (capped at
    /// [`MAX_DIFFICULTY`]), the maximum token age in seconds, and the bound on
    /// remembered spent tokens (0 refuses every solution with
    /// [`PowError::Busy`]).
    pub fn new(secret: [u8; 32], difficulty_bits: u8, max_age_secs: u64, max_spent: usize) -> Self {
        let mut secret = secret;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        secret.zeroize();
        Self {
            key,
            difficulty: AtomicU8::new(difficulty_bits.min(MAX_DIFFICULTY)),
            max_age_secs,
            max_spent,
            rng: SystemRandom::new(),
            fallback_counter: AtomicU64::new(0),
            spent: Mutex::new(SpentSet::default()),
        }
    }

    /// The difficulty in bits that new challenges carry and that `verify`
    /// requires at least.
    pub fn difficulty(&self) -> u8 {
        self.difficulty.load(Ordering::Relaxed)
    }

    /// Changes the difficulty (capped at [`MAX_DIFFICULTY`]); outstanding
    /// tokens below the new value are refused from now on.
    pub fn set_difficulty(&self, bits: u8) {
        self.difficulty
            .store(bits.min(MAX_DIFFICULTY), Ordering::Relaxed);
    }

    /// Issues a fresh challenge stamped with `now_secs` (Unix seconds) at the
    /// gate's current difficulty.
    pub fn challenge(&self, now_secs: u64) -> PowChallenge {
        let difficulty = self.difficulty();
        let mut random = [0u8; RANDOM_LEN];
        if self.rng.fill(&mut random).is_err() {
            random = self.fallback_random(now_secs);
        }
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&now_secs.to_be_bytes());
        bytes.push(difficulty);
        bytes.extend_from_slice(&random);
        let tag = hmac::sign(&self.key, &bytes);
        bytes.extend(tag.as_ref().iter().take(TAG_LEN));
        PowChallenge {
            token: URL_SAFE_NO_PAD.encode(&bytes),
            difficulty,
        }
    }

    /// Checks `solution` for `token` at `now_secs` (Unix seconds), in the
    /// order given in the module documentation, and on success marks the
    /// token spent.
    ///
    /// # Errors
    ///
    /// The first failed check, as a [`PowError`].
    pub fn verify(&self, token: &str, solution: &str, now_secs: u64) -> Result<(), PowError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(PowError::TokenTooLong);
        }
        if solution.len() > MAX_SOLUTION_CHARS {
            return Err(PowError::SolutionTooLong);
        }
        if solution.is_empty() || !solution.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PowError::SolutionNotDigits);
        }

        let mut buf = [0u8; DECODE_BUF_LEN];
        let parsed = parse_token(token, &mut buf)?;

        let expected = hmac::sign(&self.key, parsed.signed);
        let expected = expected.as_ref().get(..TAG_LEN).ok_or(PowError::BadTag)?;
        if !constant_time_eq(expected, parsed.tag) {
            return Err(PowError::BadTag);
        }

        if parsed.issued_at > now_secs.saturating_add(CLOCK_SLACK_SECS) {
            return Err(PowError::NotYetValid);
        }
        if now_secs.saturating_sub(parsed.issued_at) > self.max_age_secs {
            return Err(PowError::Expired);
        }

        let required = self.difficulty();
        if parsed.difficulty < required {
            return Err(PowError::DifficultyTooLow {
                token: parsed.difficulty,
                required,
            });
        }

        if leading_zero_bits(work_hash(token, solution).as_ref()) < u32::from(parsed.difficulty) {
            return Err(PowError::InsufficientWork);
        }

        let tag: [u8; TAG_LEN] = parsed.tag.try_into().map_err(|_| PowError::Malformed)?;
        let mut spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        spent.rotate(now_secs, self.rotation_period());
        if spent.contains(&tag) {
            return Err(PowError::Replayed);
        }
        if spent.len() >= self.max_spent {
            return Err(PowError::Busy);
        }
        spent.current.insert(tag);
        Ok(())
    }

    /// Seconds between generations of the spent set: a token's whole life.
    fn rotation_period(&self) -> u64 {
        self.max_age_secs.saturating_add(CLOCK_SLACK_SECS)
    }

    /// Random field used if the system random source fails: a keyed hash of
    /// the time, process id and a counter.
    fn fallback_random(&self, now_secs: u64) -> [u8; RANDOM_LEN] {
        let count = self.fallback_counter.fetch_add(1, Ordering::Relaxed);
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(FALLBACK_LABEL);
        ctx.update(&now_secs.to_be_bytes());
        ctx.update(&std::process::id().to_be_bytes());
        ctx.update(&count.to_be_bytes());
        let mac = ctx.sign();
        let mut out = [0u8; RANDOM_LEN];
        for (o, m) in out.iter_mut().zip(mac.as_ref()) {
            *o = *m;
        }
        out
    }
}

/// Strictly decodes `token` into `buf` and splits it into its fields.
fn parse_token<'a>(
    token: &str,
    buf: &'a mut [u8; DECODE_BUF_LEN],
) -> Result<ParsedToken<'a>, PowError> {
    let n = URL_SAFE_NO_PAD
        .decode_slice(token.as_bytes(), buf)
        .map_err(|_| PowError::Malformed)?;
    if n != TOKEN_LEN {
        return Err(PowError::Malformed);
    }
    let bytes = buf.get(..TOKEN_LEN).ok_or(PowError::Malformed)?;
    let (signed, tag) = bytes
        .split_at_checked(SIGNED_LEN)
        .ok_or(PowError::Malformed)?;
    let &[version, i0, i1, i2, i3, i4, i5, i6, i7, difficulty, ..] = signed else {
        return Err(PowError::Malformed);
    };
    if version != TOKEN_VERSION {
        return Err(PowError::UnsupportedVersion(version));
    }
    Ok(ParsedToken {
        signed,
        tag,
        issued_at: u64::from_be_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
        difficulty,
    })
}

/// `SHA-256(token || ":" || solution)`.
fn work_hash(token: &str, solution: &str) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(token.as_bytes());
    ctx.update(b":");
    ctx.update(solution.as_bytes());
    ctx.finish()
}

/// Number of leading zero bits of `bytes`.
fn leading_zero_bits(bytes: &[u8]) -> u32 {
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

/// Compares two byte strings without branching on their contents (lengths
/// are public).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    std::hint::black_box(diff) == 0
}

/// A decimal counter of at most [`MAX_SOLUTION_CHARS`] digits, most
/// significant first, counting 0, 1, 2, ...
struct DecimalCounter {
    digits: [u8; MAX_SOLUTION_CHARS],
    len: usize,
}

impl DecimalCounter {
    fn new() -> Self {
        Self {
            digits: [b'0'; MAX_SOLUTION_CHARS],
            len: 1,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or_default()
    }

    /// Adds one; false once the 20-digit space is exhausted.
    fn increment(&mut self) -> bool {
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

/// Counts work for tests/benchmarks: returns a solution by brute force (used
/// by the bridge's own tests and load generator).
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

/// Longest window a [`LoadMeter`] keeps, in seconds (one bucket each).
pub const MAX_LOAD_WINDOW_SECS: u64 = 3600;

/// One second of a [`LoadMeter`].
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// The Unix second this bucket counts.
    second: u64,
    /// Events in that second.
    count: u64,
}

/// Sliding count of events over the last `window` seconds, in 1-second
/// buckets; `is_hot(now)` when the count exceeds `threshold`.
///
/// Memory is one bucket per second of window (the window is clamped to
/// 1..=[`MAX_LOAD_WINDOW_SECS`]). Events older than the window, or recorded
/// with a time more than a window behind the newest bucket in their slot,
/// are ignored.
pub struct LoadMeter {
    window_secs: u64,
    threshold: u64,
    buckets: Mutex<Vec<Bucket>>,
}

impl fmt::Debug for LoadMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadMeter")
            .field("window_secs", &self.window_secs)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl LoadMeter {
    /// A meter over the last `window_secs` seconds (clamped to
    /// 1..=[`MAX_LOAD_WINDOW_SECS`]) that is hot above `threshold` events.
    pub fn new(window_secs: u64, threshold: u64) -> Self {
        let window_secs = window_secs.clamp(1, MAX_LOAD_WINDOW_SECS);
        let len = usize::try_from(window_secs).unwrap_or(1);
        Self {
            window_secs,
            threshold,
            buckets: Mutex::new(vec![Bucket::default(); len]),
        }
    }

    /// Records one event at `now_secs` (Unix seconds).
    pub fn record(&self, now_secs: u64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bucket) = usize::try_from(now_secs % self.window_secs)
            .ok()
            .and_then(|i| buckets.get_mut(i))
        else {
            return;
        };
        if bucket.second == now_secs {
            bucket.count = bucket.count.saturating_add(1);
        } else if bucket.second < now_secs {
            *bucket = Bucket {
                second: now_secs,
                count: 1,
            };
        }
        // Otherwise the slot holds a newer second: this event is a window or
        // more in the past, so it no longer counts.
    }

    /// Events recorded in the window ending at `now_secs`, that is in the
    /// seconds `now_secs - window + 1 ..= now_secs`.
    pub fn count(&self, now_secs: u64) -> u64 {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .iter()
            .filter(|b| b.second <= now_secs && now_secs - b.second < self.window_secs)
            .fold(0u64, |sum, b| sum.saturating_add(b.count))
    }

    /// Whether the count in the window ending at `now_secs` exceeds the
    /// threshold.
    pub fn is_hot(&self, now_secs: u64) -> bool {
        self.count(now_secs) > self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7u8; 32];
    const T0: u64 = 1_700_000_000;

    fn gate(difficulty: u8) -> PowGate {
        PowGate::new(SECRET, difficulty, 300, 1000)
    }

    fn decode(token: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(token).unwrap()
    }

    /// A solution string that does NOT meet `difficulty` for `token`.
    fn non_solution(token: &str, difficulty: u8) -> String {
        (0u64..)
            .map(|n| n.to_string())
            .find(|s| leading_zero_bits(work_hash(token, s).as_ref()) < u32::from(difficulty))
            .unwrap()
    }

    #[test]
    fn challenge_has_documented_layout() {
        let g = gate(12);
        let c = g.challenge(T0);
        assert_eq!(c.difficulty, 12);
        assert_eq!(c.token.len(), 56);
        let bytes = decode(&c.token);
        assert_eq!(bytes.len(), TOKEN_LEN);
        assert_eq!(bytes[0], TOKEN_VERSION);
        assert_eq!(bytes[1..9], T0.to_be_bytes());
        assert_eq!(bytes[9], 12);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &SECRET), &bytes[..26]);
        assert_eq!(&bytes[26..], &tag.as_ref()[..16]);
        // Random field differs between challenges.
        let c2 = g.challenge(T0);
        assert_ne!(c.token, c2.token);
        assert_ne!(decode(&c2.token)[10..26], bytes[10..26]);
    }

    #[test]
    fn round_trip() {
        let g = gate(12);
        let c = g.challenge(T0);
        let sol = solve(&c.token, c.difficulty).unwrap();
        assert!(sol.len() <= MAX_SOLUTION_CHARS);
        assert_eq!(g.verify(&c.token, &sol, T0 + 5), Ok(()));
    }

    #[test]
    fn difficulty_zero_accepts_any_digits() {
        let g = gate(0);
        let c = g.challenge(T0);
        assert_eq!(solve(&c.token, 0).as_deref(), Some("0"));
        assert_eq!(g.verify(&c.token, "12345", T0), Ok(()));
    }

    #[test]
    fn replay_refused() {
        let g = gate(8);
        let c = g.challenge(T0);
        let sol = solve(&c.token, 8).unwrap();
        assert_eq!(g.verify(&c.token, &sol, T0), Ok(()));
        assert_eq!(g.verify(&c.token, &sol, T0 + 1), Err(PowError::Replayed));
        // Another valid solution of the same token is also a replay.
        let first: u64 = sol.parse().unwrap();
        let other = (first + 1..)
            .map(|n| n.to_string())
            .find(|s| leading_zero_bits(work_hash(&c.token, s).as_ref()) >= 8)
            .unwrap();
        assert_eq!(g.verify(&c.token, &other, T0 + 2), Err(PowError::Replayed));
        // A different token is fine.
        let c2 = g.challenge(T0);
        let sol2 = solve(&c2.token, 8).unwrap();
        assert_eq!(g.verify(&c2.token, &sol2, T0), Ok(()));
    }

    #[test]
    fn wrong_solution_refused() {
        let g = gate(12);
        let c = g.challenge(T0);
        let bad = non_solution(&c.token, 12);
        assert_eq!(
            g.verify(&c.token, &bad, T0),
            Err(PowError::InsufficientWork)
        );
        // A refused attempt does not spend the token.
        let sol = solve(&c.token, 12).unwrap();
        assert_eq!(g.verify(&c.token, &sol, T0), Ok(()));
    }

    #[test]
    fn solution_of_other_token_refused() {
        let g = gate(12);
        let a = g.challenge(T0);
        let b = g.challenge(T0);
        let sol_a = solve(&a.token, 12).unwrap();
        if leading_zero_bits(work_hash(&b.token, &sol_a).as_ref()) < 12 {
            assert_eq!(
                g.verify(&b.token, &sol_a, T0),
                Err(PowError::InsufficientWork)
            );
        }
    }

    #[test]
    fn tampered_token_refused_for_every_byte_and_bit() {
        let g = gate(4);
        let c = g.challenge(T0);
        let sol = solve(&c.token, 4).unwrap();
        let bytes = decode(&c.token);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut t = bytes.clone();
                t[i] ^= 1 << bit;
                let tok = URL_SAFE_NO_PAD.encode(&t);
                let want = if i == 0 {
                    PowError::UnsupportedVersion(t[0])
                } else {
                    PowError::BadTag
                };
                assert_eq!(g.verify(&tok, &sol, T0), Err(want), "byte {i} bit {bit}");
            }
        }
        // Same for every character position of the ASCII token.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..c.token.len() {
            let mut t = c.token.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let tok = String::from_utf8(t).unwrap();
            assert!(g.verify(&tok, &sol, T0).is_err(), "char {i}");
            assert!(tok.bytes().all(|b| alphabet.contains(&b)));
        }
        // A token made with another secret.
        let other = PowGate::new([8u8; 32], 4, 300, 10).challenge(T0);
        let sol = solve(&other.token, 4).unwrap();
        assert_eq!(g.verify(&other.token, &sol, T0), Err(PowError::BadTag));
        // Untampered still verifies.
        let sol = solve(&c.token, 4).unwrap();
        assert_eq!(g.verify(&c.token, &sol, T0), Ok(()));
    }

    #[test]
    fn malformed_tokens_refused() {
        let g = gate(0);
        let c = g.challenge(T0);
        let cases = [
            String::new(),
            "A".to_string(),
            c.token[..55].to_string(),
            format!("{}A", c.token),
            format!("{}AAAA", c.token),
            format!("{}==", c.token),
            format!(" {}", &c.token[1..]),
            format!("+{}", &c.token[1..]),
            format!("{}/", &c.token[..55]),
            format!("{}\n", &c.token[..55]),
            "!".repeat(56),
            "é".repeat(28),
        ];
        for (i, t) in cases.iter().enumerate() {
            assert_eq!(
                g.verify(t, "1", T0),
                Err(PowError::Malformed),
                "case {i}: {t:?}"
            );
        }
        // Well-formed base64 of the wrong length.
        let short = URL_SAFE_NO_PAD.encode([1u8; TOKEN_LEN - 1]);
        assert_eq!(g.verify(&short, "1", T0), Err(PowError::Malformed));
        let long = URL_SAFE_NO_PAD.encode([1u8; TOKEN_LEN + 3]);
        assert_eq!(g.verify(&long, "1", T0), Err(PowError::Malformed));
        // Non-canonical trailing bits (41 bytes end in a 2-bit remainder; a
        // real 42-byte token has none, so this is Malformed either way).
        let mut t = URL_SAFE_NO_PAD.encode([1u8; TOKEN_LEN - 1]).into_bytes();
        let last = t.last_mut().unwrap();
        *last = b'B'; // sets a bit that should be zero
        assert_eq!(
            g.verify(&String::from_utf8(t).unwrap(), "1", T0),
            Err(PowError::Malformed)
        );
        // Largest accepted length still decodes (and is then malformed).
        let max = "A".repeat(MAX_TOKEN_CHARS);
        assert_eq!(g.verify(&max, "1", T0), Err(PowError::Malformed));
    }

    #[test]
    fn version_checked_before_tag() {
        let g = gate(0);
        let mut bytes = decode(&g.challenge(T0).token);
        bytes[0] = 2;
        let tok = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(
            g.verify(&tok, "1", T0),
            Err(PowError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn oversized_and_non_digit_inputs_refused() {
        let g = gate(4);
        let c = g.challenge(T0);
        let long_token = "A".repeat(MAX_TOKEN_CHARS + 1);
        assert_eq!(g.verify(&long_token, "1", T0), Err(PowError::TokenTooLong));
        assert_eq!(
            g.verify(&"A".repeat(100_000), "1", T0),
            Err(PowError::TokenTooLong)
        );
        // Size caps come before anything else.
        assert_eq!(g.verify(&long_token, "x", T0), Err(PowError::TokenTooLong));
        let long_sol = "1".repeat(MAX_SOLUTION_CHARS + 1);
        assert_eq!(
            g.verify(&c.token, &long_sol, T0),
            Err(PowError::SolutionTooLong)
        );
        for bad in [
            "", "12a", "-1", "+1", " 1", "1 ", "1.0", "0x10", "\u{ff11}", "١",
        ] {
            assert_eq!(
                g.verify(&c.token, bad, T0),
                Err(PowError::SolutionNotDigits),
                "{bad:?}"
            );
        }
        // 20 digits is a permitted format (it fails or passes on the work).
        let twenty = "9".repeat(MAX_SOLUTION_CHARS);
        let r = g.verify(&c.token, &twenty, T0);
        assert!(r.is_ok() || r == Err(PowError::InsufficientWork));
    }

    #[test]
    fn expired_and_future_tokens_refused() {
        let g = PowGate::new(SECRET, 4, 300, 1000);
        let c = g.challenge(T0);
        let sol = solve(&c.token, 4).unwrap();
        assert_eq!(g.verify(&c.token, &sol, T0 + 301), Err(PowError::Expired));
        assert_eq!(g.verify(&c.token, &sol, u64::MAX), Err(PowError::Expired));
        assert_eq!(
            g.verify(&c.token, &sol, T0 - 61),
            Err(PowError::NotYetValid)
        );
        assert_eq!(g.verify(&c.token, &sol, 0), Err(PowError::NotYetValid));
        // Boundaries are inclusive.
        assert_eq!(g.verify(&c.token, &sol, T0 + 300), Ok(()));
        let c = g.challenge(T0);
        let sol = solve(&c.token, 4).unwrap();
        assert_eq!(g.verify(&c.token, &sol, T0 - 60), Ok(()));
        // Extreme issue times do not overflow.
        let c = g.challenge(u64::MAX);
        let sol = solve(&c.token, 4).unwrap();
        assert_eq!(g.verify(&c.token, &sol, 0), Err(PowError::NotYetValid));
        assert_eq!(g.verify(&c.token, &sol, u64::MAX), Ok(()));
    }

    #[test]
    fn difficulty_below_minimum_refused() {
        let easy = PowGate::new(SECRET, 4, 300, 1000);
        let hard = PowGate::new(SECRET, 8, 300, 1000);
        let c = easy.challenge(T0);
        let sol = solve(&c.token, 12).unwrap(); // plenty of work, still refused
        assert_eq!(
            hard.verify(&c.token, &sol, T0),
            Err(PowError::DifficultyTooLow {
                token: 4,
                required: 8
            })
        );
        // Raising the gate's difficulty retires easier outstanding tokens...
        easy.set_difficulty(8);
        assert_eq!(
            easy.verify(&c.token, &sol, T0),
            Err(PowError::DifficultyTooLow {
                token: 4,
                required: 8
            })
        );
        // ...and lowering it keeps harder ones valid, at their own difficulty.
        let c8 = hard.challenge(T0);
        hard.set_difficulty(2);
        let weak = (0u64..)
            .map(|n| n.to_string())
            .find(|s| {
                let z = leading_zero_bits(work_hash(&c8.token, s).as_ref());
                (2..8).contains(&z)
            })
            .unwrap();
        assert_eq!(
            hard.verify(&c8.token, &weak, T0),
            Err(PowError::InsufficientWork)
        );
        let sol8 = solve(&c8.token, 8).unwrap();
        assert_eq!(hard.verify(&c8.token, &sol8, T0), Ok(()));
    }

    #[test]
    fn difficulty_is_capped() {
        let g = PowGate::new(SECRET, 200, 300, 10);
        assert_eq!(g.difficulty(), MAX_DIFFICULTY);
        g.set_difficulty(255);
        assert_eq!(g.difficulty(), MAX_DIFFICULTY);
        g.set_difficulty(3);
        assert_eq!(g.difficulty(), 3);
        assert_eq!(solve("x", MAX_DIFFICULTY + 1), None);
    }

    #[test]
    fn spent_set_is_bounded() {
        let g = PowGate::new(SECRET, 0, 100, 3);
        let tokens: Vec<_> = (0..5).map(|_| g.challenge(T0).token).collect();
        for t in &tokens[..3] {
            assert_eq!(g.verify(t, "0", T0), Ok(()));
        }
        assert_eq!(g.verify(&tokens[3], "0", T0), Err(PowError::Busy));
        // Busy does not spend the token, and replays are still named as such.
        assert_eq!(g.verify(&tokens[0], "0", T0), Err(PowError::Replayed));
        assert_eq!(g.spent.lock().unwrap().len(), 3);
        // One rotation (max_age + slack = 160 s) keeps the tags: still full.
        let later = T0 + 160;
        let fresh = g.challenge(later).token;
        assert_eq!(g.verify(&fresh, "0", later), Err(PowError::Busy));
        // Two rotations drop them; the tokens have expired by then anyway.
        let much_later = T0 + 320;
        let fresh = g.challenge(much_later).token;
        assert_eq!(g.verify(&fresh, "0", much_later), Ok(()));
        assert_eq!(
            g.verify(&tokens[4], "0", much_later),
            Err(PowError::Expired)
        );
        assert_eq!(g.spent.lock().unwrap().len(), 1);

        let none = PowGate::new(SECRET, 0, 100, 0);
        let t = none.challenge(T0).token;
        assert_eq!(none.verify(&t, "0", T0), Err(PowError::Busy));
    }

    #[test]
    fn replay_refused_for_whole_token_life() {
        // max_age 100 s, so rotation every 160 s. A token from a clock 60 s
        // ahead is spent as early as allowed and must stay refused while it
        // is valid (until T0 + 160), wherever the generation boundary falls.
        for generation_start in [T0, T0 - 159] {
            let g = PowGate::new(SECRET, 0, 100, 100);
            let start = g.challenge(generation_start).token;
            assert_eq!(g.verify(&start, "0", generation_start), Ok(()));
            let a = g.challenge(T0 + 60).token;
            assert_eq!(g.verify(&a, "0", T0), Ok(()));
            for now in [T0 + 1, T0 + 100, T0 + 159, T0 + 160] {
                // Spend something at `now` to drive rotation.
                let filler = g.challenge(now).token;
                assert_eq!(g.verify(&filler, "0", now), Ok(()));
                assert_eq!(
                    g.verify(&a, "1", now),
                    Err(PowError::Replayed),
                    "start {generation_start}, at T0 + {}",
                    now - T0
                );
            }
            assert_eq!(g.verify(&a, "1", T0 + 161), Err(PowError::Expired));
        }
    }

    #[test]
    fn rotation_keeps_recent_and_drops_old() {
        let mut s = SpentSet::default();
        s.rotate(1000, 10);
        s.current.insert([1; 16]);
        s.rotate(1009, 10);
        assert!(s.contains(&[1; 16]));
        s.rotate(1010, 10);
        assert!(s.contains(&[1; 16]) && s.current.is_empty());
        s.current.insert([2; 16]);
        s.rotate(1019, 10);
        assert!(s.contains(&[1; 16]));
        s.rotate(1020, 10);
        assert!(!s.contains(&[1; 16]) && s.contains(&[2; 16]));
        s.rotate(1040, 10);
        assert_eq!(s.len(), 0);
        // Time running backwards does not rotate.
        s.current.insert([3; 16]);
        s.rotate(5, 10);
        assert!(s.contains(&[3; 16]));
    }

    #[test]
    fn debug_hides_secret() {
        let g = PowGate::new([0xAB; 32], 9, 300, 10);
        let s = format!("{g:?}");
        assert!(s.contains("PowGate") && s.contains("difficulty: 9"), "{s}");
        assert!(
            !s.contains("171") && !s.to_lowercase().contains("ab,"),
            "{s}"
        );
        assert!(!s.contains("key"), "{s}");
    }

    #[test]
    fn fallback_random_is_unique() {
        let g = gate(4);
        let a = g.fallback_random(T0);
        let b = g.fallback_random(T0);
        assert_ne!(a, b);
        assert_ne!(a, [0; 16]);
    }

    #[test]
    fn leading_zero_bits_counts() {
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0, 0x40]), 9);
        assert_eq!(leading_zero_bits(&[0, 0, 0, 0]), 32);
        assert_eq!(leading_zero_bits(&[]), 0);
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn decimal_counter_counts_like_integers() {
        let mut c = DecimalCounter::new();
        for n in 0u64..=12_345 {
            assert_eq!(c.as_bytes(), n.to_string().as_bytes());
            assert!(c.increment());
        }
        let mut c = DecimalCounter {
            digits: *b"99999999999999999998",
            len: 20,
        };
        assert!(c.increment());
        assert_eq!(c.as_bytes(), b"99999999999999999999");
        assert!(!c.increment());
    }

    #[test]
    fn solve_finds_first_solution() {
        let tok = "test-token";
        let sol = solve(tok, 10).unwrap();
        let n: u64 = sol.parse().unwrap();
        assert!(leading_zero_bits(work_hash(tok, &sol).as_ref()) >= 10);
        for m in 0..n {
            assert!(leading_zero_bits(work_hash(tok, &m.to_string()).as_ref()) < 10);
        }
    }

    #[test]
    fn load_meter_counts_and_expires() {
        let m = LoadMeter::new(10, 7);
        assert_eq!(m.count(100), 0);
        for _ in 0..5 {
            m.record(100);
        }
        for _ in 0..3 {
            m.record(101);
        }
        assert_eq!(m.count(101), 8);
        assert!(m.is_hot(101));
        assert_eq!(m.count(109), 8);
        assert_eq!(m.count(110), 3); // second 100 left the window
        assert!(!m.is_hot(110));
        assert_eq!(m.count(111), 0);
        // Buckets seen from before they were filled do not count.
        assert_eq!(m.count(99), 0);
        // A slot is reused for a new second.
        m.record(110);
        assert_eq!(m.count(110), 4);
        assert_eq!(m.count(119), 1);
        // An event a whole window older than its slot is ignored.
        m.record(100);
        assert_eq!(m.count(110), 4);
        // Threshold is "exceeds", not "reaches".
        let m = LoadMeter::new(5, 2);
        m.record(1);
        m.record(2);
        assert!(!m.is_hot(2));
        m.record(3);
        assert!(m.is_hot(3));
        assert!(!m.is_hot(1000));
    }

    #[test]
    fn load_meter_window_is_clamped() {
        let m = LoadMeter::new(0, 0);
        m.record(5);
        assert_eq!(m.count(5), 1);
        assert_eq!(m.count(6), 0);
        let m = LoadMeter::new(u64::MAX, 0);
        assert_eq!(m.buckets.lock().unwrap().len(), 3600);
        m.record(u64::MAX);
        assert_eq!(m.count(u64::MAX), 1);
        assert!(format!("{m:?}").contains("window_secs: 3600"));
    }

    /// Cross-checks pow.js against ring's SHA-256 and this module's solver
    /// and verifier, when `node` is available.
    #[test]
    fn javascript_solver_matches_rust() {
        use std::fmt::Write as _;
        use std::io::Write as _;
        use std::process::{Command, Stdio};

        const POW_JS: &str = include_str!("../../templates/static/pow.js");
        let node_ok = Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !node_ok {
            println!("javascript_solver_matches_rust: skipped, `node` is not on PATH");
            return;
        }

        // Strings to hash: every length 0..=200 of a pattern (all padding
        // cases), the standard vectors, and non-ASCII text.
        let mut strings: Vec<String> = (0..=200)
            .map(|n| {
                (0..n)
                    .map(|i| char::from(b'a' + u8::try_from(i * 7 % 26).unwrap()))
                    .collect()
            })
            .collect();
        strings.push("abc".into());
        strings.push("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".into());
        strings.push("héllo ✓ 😀 \u{7f}\u{80}\u{7ff}\u{800}\u{ffff}".into());

        // Tokens to solve: real challenges, plus strings of every length
        // around the block boundaries so that the solver's midstate and
        // schedule caching is exercised (prefix = token + ':').
        let g = gate(10);
        let real: Vec<String> = (0..4).map(|_| g.challenge(T0).token).collect();
        let mut tokens = real.clone();
        for len in (0..=8).chain(50..=70).chain(110..=130) {
            tokens.push(
                (0..len)
                    .map(|i| char::from(b'A' + u8::try_from(i % 26).unwrap()))
                    .collect(),
            );
        }
        let hard = gate(16).challenge(T0).token;

        // JSON array of strings; non-ASCII as \u escapes (surrogate pairs
        // beyond the BMP) so the text survives the environment unchanged.
        let json = |items: &[String]| {
            let mut out = String::from("[");
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                for ch in s.chars() {
                    if ch.is_ascii_alphanumeric() || " -_:.".contains(ch) {
                        out.push(ch);
                    } else {
                        let mut units = [0u16; 2];
                        for unit in ch.encode_utf16(&mut units) {
                            write!(out, "\\u{unit:04x}").unwrap();
                        }
                    }
                }
                out.push('"');
            }
            out.push(']');
            out
        };

        let harness = r#"
;(function () {
  var api = module.exports;
  var strings = JSON.parse(process.env.POW_STRINGS);
  var tokens = JSON.parse(process.env.POW_TOKENS);
  var lines = [];
  strings.forEach(function (s, i) { lines.push('hash ' + i + ' ' + api.sha256hex(s)); });
  tokens.forEach(function (t, i) { lines.push('solve ' + i + ' ' + api.solve(t, 10, 1 << 20)); });
  lines.push('hard ' + api.solve(process.env.POW_HARD, 16, 1 << 24));
  process.stdout.write(lines.join('\n') + '\n');
})();
"#;
        // Each search is bounded (null after 2^20 or 2^24 tries, 2^10 and
        // 2^16 expected), so a broken solver fails instead of hanging.
        let mut child = Command::new("node")
            .arg("-")
            .env("POW_STRINGS", json(&strings))
            .env("POW_TOKENS", json(&tokens))
            .env("POW_HARD", &hard)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(POW_JS.as_bytes()).unwrap();
        stdin.write_all(harness.as_bytes()).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "node failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let mut hashes = 0;
        let mut solves = 0;
        let mut hard_seen = false;
        for line in stdout.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts[0] {
                "hash" => {
                    let i: usize = parts[1].parse().unwrap();
                    let want = digest::digest(&digest::SHA256, strings[i].as_bytes());
                    let want: String = want.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                    assert_eq!(parts[2], want, "sha256 of string {i}");
                    hashes += 1;
                }
                "solve" => {
                    let i: usize = parts[1].parse().unwrap();
                    let rust = solve(&tokens[i], 10).unwrap();
                    assert_eq!(parts[2], rust, "first solution for token {i}");
                    solves += 1;
                }
                "hard" => {
                    assert_eq!(parts[1], solve(&hard, 16).unwrap());
                    hard_seen = true;
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        assert_eq!(hashes, strings.len());
        let js_hash = |i: usize| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("hash {i} ")))
                .unwrap()
                .to_string()
        };
        assert_eq!(strings[0], "");
        assert_eq!(
            js_hash(0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(strings[201], "abc");
        assert_eq!(
            js_hash(201),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            js_hash(202),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(solves, tokens.len());
        assert!(hard_seen);

        // JS solutions pass the Rust verifier.
        let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("solve ")).collect();
        for (i, tok) in real.iter().enumerate() {
            let sol = lines[i].split(' ').nth(2).unwrap();
            assert_eq!(g.verify(tok, sol, T0 + 1), Ok(()), "token {i}");
        }
        let hard_sol = stdout
            .lines()
            .find_map(|l| l.strip_prefix("hard "))
            .unwrap();
        assert_eq!(gate(16).verify(&hard, hard_sol, T0), Ok(()));
    }
}
