//! Time as a parameter: seconds since the Unix epoch, passed in by callers.
//! Nothing in this crate reads a clock.
//!
//! Every time a peer sends is a `u64` it chose. The protocol bounds each
//! one relative to the verifier's `now` (docs/protocol.md, section 6): after
//! [`crate::record::verify`] at `now`, every time in the record is at most
//! `now + RECORD_HORIZON_SECS`. Arithmetic on these values saturates, and
//! [`UnixTime::duration_until`] turns a time into a [`Duration`] no longer
//! than a cap, so a caller converting protocol times for its timers never
//! adds an unbounded value to an `Instant`.

use std::fmt;
use std::time::Duration;

/// Clock skew tolerated between the signer of a record and its verifier.
pub const CLOCK_SKEW_SECS: u64 = 5 * 60;

/// A record part issued further than this in the verifier's future is
/// refused outright.
pub const MAX_FUTURE_SECS: u64 = 2 * 60 * 60;

/// Longest certificate the protocol accepts (`not_after - not_before`):
/// 90 days, the members' default signing bound. A longer certificate,
/// even validly signed, makes the record invalid (`validity_too_long`).
pub const MAX_CERT_VALIDITY_SECS: u64 = 90 * 24 * 60 * 60;

/// Longest endpoints list the protocol accepts (`expires_at - issued_at`):
/// 30 days (agents sign theirs for a day by default).
pub const MAX_ENDPOINTS_VALIDITY_SECS: u64 = 30 * 24 * 60 * 60;

/// After `verify` at `now`, every time in the record is at most
/// `now + RECORD_HORIZON_SECS`: the certificate's `not_after` is at most
/// `not_before + MAX_CERT_VALIDITY_SECS` with `not_before` at most
/// `now + CLOCK_SKEW_SECS`, and every other time is closer (see the
/// assertion below). The end of a certificate's use, `not_after +
/// CLOCK_SKEW_SECS`, is at most `now + RECORD_HORIZON_SECS +
/// CLOCK_SKEW_SECS`.
pub const RECORD_HORIZON_SECS: u64 = MAX_CERT_VALIDITY_SECS + CLOCK_SKEW_SECS;

// The endpoints' expiry (issued at most MAX_FUTURE_SECS ahead, valid at
// most MAX_ENDPOINTS_VALIDITY_SECS) and every inception or link time
// (at most MAX_FUTURE_SECS ahead) stay within the horizon.
const _: () = assert!(MAX_FUTURE_SECS + MAX_ENDPOINTS_VALIDITY_SECS <= RECORD_HORIZON_SECS);

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

    /// Whether `self` and `other` are at most `secs` apart (in either
    /// direction). Never overflows.
    pub const fn within(self, other: UnixTime, secs: u64) -> bool {
        self.since(other) <= secs && other.since(self) <= secs
    }

    /// How long from `now` until `self` (zero if `self` is not later),
    /// and never more than `cap_secs`. The safe way to turn a protocol
    /// time into a timer: `Instant::now().checked_add(t.duration_until(now,
    /// cap))` cannot overflow for any `t` a peer chooses as long as the
    /// cap is sane (e.g. [`RECORD_HORIZON_SECS`] plus the skew).
    pub const fn duration_until(self, now: UnixTime, cap_secs: u64) -> Duration {
        let secs = self.since(now);
        Duration::from_secs(if secs < cap_secs { secs } else { cap_secs })
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

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: UnixTime = UnixTime::from_secs(u64::MAX);

    #[test]
    fn arithmetic_saturates_at_both_ends() {
        assert_eq!(MAX.plus(1), MAX);
        assert_eq!(UnixTime::from_secs(0).minus(1), UnixTime::from_secs(0));
        assert_eq!(UnixTime::from_secs(0).since(MAX), 0);
        assert_eq!(MAX.since(UnixTime::from_secs(0)), u64::MAX);
    }

    #[test]
    fn within_is_symmetric_and_never_overflows() {
        let t = UnixTime::from_secs(1_000);
        assert!(t.within(t.plus(300), 300));
        assert!(t.plus(300).within(t, 300));
        assert!(!t.within(t.plus(301), 300));
        assert!(!t.plus(301).within(t, 300));
        assert!(!MAX.within(UnixTime::from_secs(0), CLOCK_SKEW_SECS));
        assert!(MAX.within(MAX.minus(5), 5));
        assert!(UnixTime::from_secs(0).within(UnixTime::from_secs(0), 0));
    }

    #[test]
    // The core reads no clock; the last check needs a real `Instant`.
    #[allow(clippy::disallowed_methods)]
    fn duration_until_is_capped_and_zero_for_the_past() {
        let now = UnixTime::from_secs(1_767_225_600);
        assert_eq!(
            now.plus(60).duration_until(now, 3_600),
            Duration::from_secs(60)
        );
        assert_eq!(now.minus(60).duration_until(now, 3_600), Duration::ZERO);
        assert_eq!(now.duration_until(now, 3_600), Duration::ZERO);
        // A time a peer chose near the end of u64 gives the cap.
        assert_eq!(MAX.duration_until(now, 3_600), Duration::from_secs(3_600));
        assert_eq!(
            MAX.duration_until(UnixTime::from_secs(0), u64::MAX),
            Duration::from_secs(u64::MAX)
        );
        // And the cap itself is safe for an Instant.
        let cap = RECORD_HORIZON_SECS + CLOCK_SKEW_SECS;
        assert!(
            std::time::Instant::now()
                .checked_add(MAX.duration_until(now, cap))
                .is_some()
        );
    }

    #[test]
    fn the_horizon_covers_every_bounded_time() {
        assert_eq!(MAX_CERT_VALIDITY_SECS, 7_776_000);
        assert_eq!(MAX_ENDPOINTS_VALIDITY_SECS, 2_592_000);
        assert_eq!(RECORD_HORIZON_SECS, 7_776_300);
    }
}
