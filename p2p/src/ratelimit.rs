//! Per-peer token buckets, bounded in the number of peers they track.

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
pub(crate) struct RateLimiter<K> {
    per_minute: f64,
    max_keys: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub(crate) fn new(per_minute: u32, max_keys: usize) -> Self {
        Self {
            per_minute: f64::from(per_minute.max(1)),
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` if it has one.
    pub(crate) fn allow(&mut self, key: &K, now: Instant) -> bool {
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
pub(crate) struct InFlight<K> {
    cap: usize,
    counts: HashMap<K, usize>,
}

impl<K: Hash + Eq + Clone> InFlight<K> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            counts: HashMap::new(),
        }
    }

    /// Starts one for `key` unless it already has `cap` in flight.
    pub(crate) fn start(&mut self, key: &K) -> bool {
        let n = self.counts.entry(key.clone()).or_insert(0);
        if *n >= self.cap {
            return false;
        }
        *n += 1;
        true
    }

    /// Ends one for `key`.
    pub(crate) fn end(&mut self, key: &K) {
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
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(r.allow(&1u8, t0));
        }
        assert!(!r.allow(&1u8, t0));
        assert!(r.allow(&2u8, t0), "another key has its own bucket");
        assert!(r.allow(&1u8, t0 + Duration::from_secs(1)));
        assert!(!r.allow(&1u8, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn tracked_keys_stay_bounded() {
        let mut r = RateLimiter::new(1, 100);
        let t0 = Instant::now();
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
