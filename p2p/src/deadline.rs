//! Turning protocol times into `Instant`s without overflow.
//!
//! `Instant + Duration` panics when the sum does not fit, and a time taken
//! from a record or a message is whatever its sender chose. Every deadline
//! the node derives from a protocol time goes through [`after_secs`], which
//! caps the span and adds with `checked_add`. The workspace's clippy
//! configuration flags `Instant`/`Duration` arithmetic
//! (`clippy::arithmetic_side_effects`), so a new unchecked sum does not
//! compile in CI.

use std::time::{Duration, Instant};

use cyrcles_core::UnixTime;
use cyrcles_core::time::CLOCK_SKEW_SECS;

/// The longest span the node ever schedules: a little over a year. Record
/// certificates are valid for at most 90 days (protocol section 6), so no
/// honest value comes near it.
pub const MAX_SPAN_SECS: u64 = 400 * 86_400;

/// The instant `secs` seconds after `from`, with `secs` capped at
/// [`MAX_SPAN_SECS`]; should even that not fit (a clock near the end of
/// `Instant`'s range), `from` itself.
pub fn after_secs(from: Instant, secs: u64) -> Instant {
    from.checked_add(Duration::from_secs(secs.min(MAX_SPAN_SECS)))
        .unwrap_or(from)
}

/// The instant `span` after `from`, capped like [`after_secs`] (for
/// timers of the program's own, e.g. `tokio::time::Instant` deadlines:
/// convert with `.into()`).
pub fn after(from: Instant, span: Duration) -> Instant {
    from.checked_add(span.min(Duration::from_secs(MAX_SPAN_SECS)))
        .unwrap_or(from)
}

/// The instant at which a record whose certificate ends at `not_after`
/// (plus the allowed clock skew) expires, seen from `now` (Unix time) and
/// `instant` (the same moment on the monotonic clock).
pub fn record_expiry(not_after: UnixTime, now: UnixTime, instant: Instant) -> Instant {
    after_secs(instant, not_after.plus(CLOCK_SKEW_SECS).since(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_spans_are_capped_instead_of_panicking() {
        let t = crate::Clock::system().instant();
        let capped = after_secs(t, u64::MAX);
        assert_eq!(capped.duration_since(t), Duration::from_secs(MAX_SPAN_SECS));
        assert_eq!(after_secs(t, 10).duration_since(t), Duration::from_secs(10));
        let far = record_expiry(UnixTime::from_secs(u64::MAX), UnixTime::from_secs(0), t);
        assert_eq!(far, capped);
    }

    #[test]
    fn a_past_certificate_expires_now() {
        let t = crate::Clock::system().instant();
        let e = record_expiry(UnixTime::from_secs(100), UnixTime::from_secs(10_000), t);
        assert_eq!(e, t);
    }
}
