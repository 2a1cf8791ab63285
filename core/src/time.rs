//! Time as a parameter: seconds since the Unix epoch, passed in by callers.
//! Nothing in this crate reads a clock.

use std::fmt;

/// Clock skew tolerated between the signer of a record and its verifier.
pub const CLOCK_SKEW_SECS: u64 = 5 * 60;

/// A record part issued further than this in the verifier's future is
/// refused outright.
pub const MAX_FUTURE_SECS: u64 = 2 * 60 * 60;

/// A point in time, in whole seconds since 1970-01-01T00:00:00Z (UTC,
/// leap seconds ignored, as in POSIX time).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn secs(self) -> u64 {
        self.0
    }

    /// `self + secs`, saturating at the largest representable time.
    pub const fn plus(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// `self - secs`, saturating at the epoch.
    pub const fn minus(self, secs: u64) -> Self {
        Self(self.0.saturating_sub(secs))
    }

    /// Seconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub const fn since(self, earlier: UnixTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Debug for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixTime({})", self.0)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
