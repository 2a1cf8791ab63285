//! Token buckets per key (a peer, an IP address, an ego), bounded in the
//! number of keys they track. Used by the node and by the bridge.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Allows each key `per_minute` events a minute, in bursts of up to
/// `per_minute`. Tracks at most `max_keys` keys; when full it forgets the
/// keys seen least recently (a forgotten key starts with a full bucket,
/// which only ever errs towards serving a peer).
#[derive(Debug)]
pub struct RateLimiter<K> {
    per_minute: f64,
    max_keys: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter of `per_minute` events per key, tracking at most
    /// `max_keys` keys.
    pub fn new(per_minute: u32, max_keys: usize) -> Self {
        Self {
            per_minute: f64::from(per_minute.max(1)),
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` if it has one.
    pub fn allow(&mut self, key: &K, now: Instant) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            self.forget_oldest(now);
        }
        let per_minute = self.per_minute;
        let b = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: per_minute,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_minute / 60.0).min(per_minute);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until `key` has a token again (zero if it has one now).
    pub fn retry_after(&self, key: &K, now: Instant) -> Duration {
        match self.buckets.get(key) {
            None => Duration::ZERO,
            Some(b) => {
                let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
                let tokens = (b.tokens + elapsed * self.per_minute / 60.0).min(self.per_minute);
                if tokens >= 1.0 {
                    Duration::ZERO
                } else {
                    Duration::from_secs_f64((1.0 - tokens) * 60.0 / self.per_minute)
                }
            }
        }
    }

    /// Drops the tenth of keys idle longest (and any idle over a minute,
    /// whose buckets are full again anyway).
    fn forget_oldest(&mut self, now: Instant) {
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last) < Duration::from_secs(60));
        if self.buckets.len() < self.max_keys {
            return;
        }
        let mut ages: Vec<(Instant, K)> = self
            .buckets
            .iter()
            .map(|(k, b)| (b.last, k.clone()))
            .collect();
        ages.sort_by_key(|(t, _)| *t);
        let drop = (self.max_keys / 10).max(1);
        for (_, k) in ages.into_iter().take(drop) {
            self.buckets.remove(&k);
        }
    }
}

/// Counts requests in flight per key, refusing past a cap.
#[derive(Debug)]
pub struct InFlight<K> {
    cap: usize,
    counts: HashMap<K, usize>,
}

impl<K: Hash + Eq + Clone> InFlight<K> {
    /// At most `cap` in flight per key.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            counts: HashMap::new(),
        }
    }

    /// Starts one for `key` unless it already has `cap` in flight.
    pub fn start(&mut self, key: &K) -> bool {
        let n = self.counts.entry(key.clone()).or_insert(0);
        if *n >= self.cap {
            return false;
        }
        *n += 1;
        true
    }

    /// Ends one for `key`.
    pub fn end(&mut self, key: &K) {
        if let Some(n) = self.counts.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_the_configured_rate() {
        let mut r = RateLimiter::new(60, 10);
        let t0 = crate::Clock::system().instant();
        for _ in 0..60 {
            assert!(r.allow(&1u8, t0));
        }
        assert!(!r.allow(&1u8, t0));
        assert!(r.allow(&2u8, t0), "another key has its own bucket");
        assert!(r.retry_after(&1u8, t0) > Duration::from_millis(900));
        assert!(r.allow(&1u8, t0 + Duration::from_secs(1)));
        assert!(!r.allow(&1u8, t0 + Duration::from_secs(1)));
        assert_eq!(r.retry_after(&2u8, t0), Duration::ZERO);
    }

    #[test]
    fn a_drained_bucket_refills_only_as_the_clock_moves() {
        use crate::ManualClock;
        use cyrcles_core::UnixTime;

        let manual = ManualClock::new(UnixTime::from_secs(1_000));
        let clock = manual.clock();
        // Six a minute: one token back every ten seconds.
        let mut r = RateLimiter::new(6, 10);
        for _ in 0..6 {
            assert!(r.allow(&"attacker", clock.instant()));
        }
        assert!(!r.allow(&"attacker", clock.instant()));
        // Hammering while time stands still buys nothing.
        for _ in 0..100 {
            assert!(!r.allow(&"attacker", clock.instant()));
        }
        manual.advance(Duration::from_millis(9_900));
        assert!(
            !r.allow(&"attacker", clock.instant()),
            "not before its time"
        );
        manual.advance(Duration::from_millis(200));
        assert!(r.allow(&"attacker", clock.instant()), "one token back");
        assert!(!r.allow(&"attacker", clock.instant()));
        // A long pause refills the bucket to its burst, no more.
        manual.advance(Duration::from_secs(3_600));
        for _ in 0..6 {
            assert!(r.allow(&"attacker", clock.instant()));
        }
        assert!(!r.allow(&"attacker", clock.instant()));
    }

    #[test]
    fn tracked_keys_stay_bounded() {
        let mut r = RateLimiter::new(1, 100);
        let t0 = crate::Clock::system().instant();
        for k in 0..10_000u32 {
            r.allow(&k, t0);
        }
        assert!(r.buckets.len() <= 100);
    }

    #[test]
    fn inflight_caps_per_key() {
        let mut f = InFlight::new(2);
        assert!(f.start(&1u8));
        assert!(f.start(&1u8));
        assert!(!f.start(&1u8));
        f.end(&1u8);
        assert!(f.start(&1u8));
        assert!(f.start(&2u8));
    }
}
