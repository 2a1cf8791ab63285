//! The load meter: a sliding count of login starts over the last minute,
//! in one-second buckets. The proof-of-work gate asks for work while it is
//! hot (`login.pow_threshold_per_minute`). It is per instance: behind a
//! load balancer each instance switches its gate on by its own share.

use std::fmt;
use std::sync::{Mutex, PoisonError};

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
}
