//! Proof-of-work gate for the login form.
//!
//! Under load the bridge makes a login start cost the client some CPU: the
//! login page embeds a challenge token, the static script
//! `templates/static/pow.js` finds a solution in the browser, and
//! [`PowGate::verify`] checks it in a few microseconds. [`LoadMeter`] is the
//! switch: the bridge records every login start (the ego form and "send
//! again") and asks for a solution only while [`LoadMeter::is_hot`].
//!
//! # Layout
//!
//! * `token.rs`: the token's bytes, strict decoding and tag;
//! * `solve.rs`: the work hash and a brute-force solver;
//! * `spent.rs`: replay, the spent set and its rule at the bound;
//! * `tests.rs`: unit tests, including the cross-check of `pow.js`.
//!
//! [`LoadMeter`]: crate::load::LoadMeter
//! [`LoadMeter::is_hot`]: crate::load::LoadMeter::is_hot
//!
//! # Token
//!
//! A challenge token is `base64url_nopad(bytes)` (no padding, 62 ASCII
//! characters) where `bytes` is 46 bytes:
//!
//! | offset | size | field                                             |
//! |-------:|-----:|---------------------------------------------------|
//! | 0      | 1    | version, [`TOKEN_VERSION`] = 2                    |
//! | 1      | 4    | `epoch` of the spent set, big-endian `u32`        |
//! | 5      | 8    | `issued_at`, Unix seconds, big-endian `u64`       |
//! | 13     | 1    | difficulty in bits                                |
//! | 14     | 16   | random, from `ring::rand::SystemRandom`           |
//! | 30     | 16   | tag: first 16 bytes of HMAC-SHA256(secret, 0..30) |
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
//! single hash. The message is 63 + len(N) bytes, so two SHA-256 blocks.
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
//!    bits, no whitespace) to exactly 46 bytes;
//! 3. version;
//! 4. tag, compared in constant time (see below);
//! 5. age: `issued_at <= now + CLOCK_SLACK_SECS` (60 s, for clocks of other
//!    instances running ahead) and `now - issued_at <= max_age`;
//! 6. the token's difficulty is at least the gate's current
//!    [`PowGate::difficulty`] (so raising it retires easier tokens at once,
//!    and lowering it keeps harder ones valid);
//! 7. the hash has the token's number of leading zero bits;
//! 8. replay (`spent.rs`): the token's epoch is the current one
//!    ([`PowError::Retired`] otherwise) and it was not spent before
//!    ([`PowError::Replayed`]); on success it is marked spent.
//!
//! Checks 1 to 7 need no state ([`PowGate::check`]); check 8 goes to the
//! limit store.
//!
//! The tag is truncated to 16 bytes to keep the token short, and
//! `ring::hmac::verify` only accepts a full-length tag, so the gate computes
//! the full HMAC with `ring::hmac::sign` and compares its first 16 bytes to
//! the token's with a branch-free fold whose every step goes through
//! [`std::hint::black_box`].
//!
//! # Replay and the bound of the spent set
//!
//! A solved token may be used once, on any instance: the spent set lives
//! in the limit store ([`crate::limits`]), in memory for a bridge on SQLite
//! and in the database for bridges sharing PostgreSQL, so a solution spent
//! on one instance is refused on every other. A tag is kept until its
//! token can no longer be presented (`issued_at + max_age + 60 s`).
//!
//! The set holds at most `max_spent` live tags (`login.pow_max_spent`,
//! 100 000 by default, a few megabytes). When a spend finds it full of live
//! tags, the spend is accepted and the *epoch* ends: the set starts empty
//! and every outstanding token, which carries the old epoch under its tag,
//! is refused as [`PowError::Retired`]. Filling the set therefore locks
//! nobody out: the attacker's stock of solved tokens is void and must be
//! solved again, while a person gets a new puzzle with the page that
//! explains the refusal. A bridge on SQLite starts each run with a random
//! epoch, so tokens issued before a restart are retired too.

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

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};
use zeroize::Zeroize as _;

mod solve;
mod spent;
#[cfg(test)]
mod tests;
mod token;

pub use solve::{MAX_SOLUTION_CHARS, solve};
pub use token::{MAX_TOKEN_CHARS, TOKEN_CHARS, TOKEN_VERSION};

use solve::{leading_zero_bits, work_hash};
use token::{RANDOM_LEN, Token};

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
pub const DEFAULT_MAX_SPENT: u64 = 100_000;

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
    /// The token's epoch is over (the spent set filled up, or the bridge
    /// restarted): a new puzzle is needed.
    #[error("proof-of-work token was retired; solve a new one")]
    Retired,
}

/// A challenge to embed in the login page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowChallenge {
    /// The token, [`TOKEN_CHARS`] base64url characters, for
    /// `data-pow-token` and the hidden `pow_token` field.
    pub token: String,
    /// Leading zero bits the solution must produce, for
    /// `data-pow-difficulty`.
    pub difficulty: u8,
}

/// The proof-of-work gate: issues challenge tokens and verifies solutions.
///
/// Cheap to share behind an `Arc`; all methods take `&self`. It holds no
/// state per token: the spent set is in the limit store given to
/// [`PowGate::verify`].
pub struct PowGate {
    /// HMAC-SHA256 key made from the 32-byte secret.
    key: hmac::Key,
    /// Bits the gate issues and requires now.
    difficulty: AtomicU8,
    /// Maximum token age in seconds.
    max_age_secs: u64,
    /// Bound on the number of remembered spent tokens.
    max_spent: u64,
    /// Source of the random field.
    rng: SystemRandom,
    /// Counter for the fallback random field.
    fallback_counter: AtomicU64,
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

impl PowGate {
    /// Builds a gate from a 32-byte secret (wiped from this copy once the
    /// HMAC key is made), the difficulty in bits (capped at
    /// [`MAX_DIFFICULTY`]), the maximum token age in seconds, and the bound on
    /// remembered spent tokens.
    pub fn new(secret: [u8; 32], difficulty_bits: u8, max_age_secs: u64, max_spent: u64) -> Self {
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

    /// The maximum token age, seconds.
    pub fn max_age_secs(&self) -> u64 {
        self.max_age_secs
    }

    /// The bound of the spent set.
    pub fn max_spent(&self) -> u64 {
        self.max_spent
    }

    /// Issues a fresh challenge of spent-set `epoch`, stamped with
    /// `now_secs` (Unix seconds), at the gate's current difficulty.
    pub fn challenge(&self, now_secs: u64, epoch: u32) -> PowChallenge {
        let difficulty = self.difficulty();
        let mut random = [0u8; RANDOM_LEN];
        if self.rng.fill(&mut random).is_err() {
            random = self.fallback_random(now_secs);
        }
        PowChallenge {
            token: token::encode(&self.key, epoch, now_secs, difficulty, &random),
            difficulty,
        }
    }

    /// Checks 1 to 7 of the module documentation (everything but replay):
    /// the token's fields if `solution` solves it.
    pub(crate) fn check(
        &self,
        token: &str,
        solution: &str,
        now_secs: u64,
    ) -> Result<Token, PowError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(PowError::TokenTooLong);
        }
        if solution.len() > MAX_SOLUTION_CHARS {
            return Err(PowError::SolutionTooLong);
        }
        if solution.is_empty() || !solution.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PowError::SolutionNotDigits);
        }
        let parsed = token::decode(&self.key, token)?;
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
        Ok(parsed)
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
