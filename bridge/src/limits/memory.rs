//! Limits kept in this process (a bridge on SQLite).
//!
//! Bounds: at most `max_keys` rate keys. When a new key finds the map full,
//! the keys whose windows are over are dropped first, then the tenth least
//! recently hit (a forgotten key starts afresh, which errs towards serving;
//! reaching it takes `max_keys` distinct prefixes within two windows). The
//! spent set holds at most `max_spent` tags, as the contract says. The
//! epoch starts at a random value, so that tokens issued before a restart
//! are retired by it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::{LimitStore, Rate, Spend};
use crate::store::StoreError;

#[derive(Debug, Clone, Copy)]
struct Window {
    rate: Rate,
    start: i64,
    cur: i64,
    prev: i64,
    last: i64,
}

#[derive(Debug)]
struct State {
    rates: HashMap<String, Window>,
    epoch: u32,
    spent: HashMap<[u8; 16], i64>,
}

/// Rate windows and spent tokens in memory.
#[derive(Debug)]
pub struct MemoryLimits {
    max_keys: usize,
    state: Mutex<State>,
}

impl MemoryLimits {
    /// Keeps at most `max_keys` rate keys.
    pub fn new(max_keys: usize) -> Self {
        let epoch = u32::from_be_bytes(crate::random::random_bytes::<4>());
        Self {
            max_keys: max_keys.max(1),
            state: Mutex::new(State {
                rates: HashMap::new(),
                epoch,
                spent: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rate keys and spent tags held.
    pub fn sizes(&self) -> (usize, usize) {
        let s = self.lock();
        (s.rates.len(), s.spent.len())
    }

    fn make_room(rates: &mut HashMap<String, Window>, max_keys: usize, now: i64) {
        rates.retain(|_, w| now - w.start < 2 * i64::from(w.rate.window_secs.max(1)));
        if rates.len() < max_keys {
            return;
        }
        let mut ages: Vec<(i64, String)> = rates.iter().map(|(k, w)| (w.last, k.clone())).collect();
        ages.sort_unstable();
        for (_, k) in ages.into_iter().take((max_keys / 10).max(1)) {
            rates.remove(&k);
        }
    }
}

impl LimitStore for MemoryLimits {
    async fn hit(&self, key: &str, rate: Rate, now: i64) -> Result<Result<(), u64>, StoreError> {
        let mut s = self.lock();
        if !s.rates.contains_key(key) && s.rates.len() >= self.max_keys {
            Self::make_room(&mut s.rates, self.max_keys, now);
        }
        let start = rate.window_start(now);
        let w = s.rates.entry(key.to_string()).or_insert(Window {
            rate,
            start,
            cur: 0,
            prev: 0,
            last: now,
        });
        let len = i64::from(rate.window_secs.max(1));
        if start > w.start {
            // Moved on by one window, or by more (then nothing carries).
            w.prev = if start - w.start == len { w.cur } else { 0 };
            w.cur = 0;
            w.start = start;
        }
        w.rate = rate;
        w.last = now;
        w.cur = w.cur.saturating_add(1);
        Ok(rate.decide(w.prev, w.cur, now))
    }

    async fn pow_epoch(&self) -> Result<u32, StoreError> {
        Ok(self.lock().epoch)
    }

    async fn spend(
        &self,
        epoch: u32,
        tag: &[u8; 16],
        expires_at: i64,
        max_spent: u64,
        now: i64,
    ) -> Result<Spend, StoreError> {
        let mut s = self.lock();
        if epoch != s.epoch {
            return Ok(Spend::Retired { current: s.epoch });
        }
        if s.spent.contains_key(tag) {
            return Ok(Spend::Replayed);
        }
        let max = usize::try_from(max_spent).unwrap_or(usize::MAX);
        if s.spent.len() >= max {
            s.spent.retain(|_, exp| *exp >= now);
        }
        if s.spent.len() >= max {
            // Full of live tokens: end the epoch. Every outstanding token
            // of it is retired, so none of these tags can come back.
            s.spent.clear();
            s.epoch = s.epoch.wrapping_add(1);
            return Ok(Spend::EpochEnded { current: s.epoch });
        }
        s.spent.insert(*tag, expires_at);
        Ok(Spend::Fresh)
    }

    async fn purge_limits(&self, now: i64) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let before = s.rates.len() + s.spent.len();
        s.rates
            .retain(|_, w| now - w.start < 2 * i64::from(w.rate.window_secs.max(1)));
        s.spent.retain(|_, exp| *exp >= now);
        let after = s.rates.len() + s.spent.len();
        Ok(u64::try_from(before.saturating_sub(after)).unwrap_or(0))
    }
}
