//! Limits that outsiders run into: event rates per key (a client address
//! prefix, an ego and prefix, a session) and the proof-of-work tokens
//! already spent.
//!
//! # Where they live
//!
//! One contract, [`LimitStore`], two implementations:
//!
//! * [`MemoryLimits`], in the process, for a bridge on SQLite (one
//!   instance: there is nobody to share with);
//! * the database, for a bridge on PostgreSQL, so that every instance
//!   behind a load balancer counts against the same windows and the same
//!   spent set (`store/limits.rs`, one portable query set that also runs
//!   on SQLite, where the tests check it against the same contract).
//!
//! [`Limits`] is the one the bridge uses, chosen by the database kind.
//!
//! # Rates
//!
//! A [`Rate`] allows `max` events per `window_secs` over a sliding window,
//! estimated from two fixed windows: with `prev` events in the previous
//! window, `cur` in the current one and a fraction `f` of the current
//! window elapsed, the count is `prev × (1 − f) + cur`. Every attempt
//! counts, refused ones included, so hammering does not refill a bucket.
//!
//! # Client addresses
//!
//! Per-address limits are keyed by [`IpPrefix`]: an IPv4 address, or the
//! /64 of an IPv6 address (one subscriber's usual allocation, so rotating
//! through the addresses of one /64 buys nothing). An IPv4-mapped IPv6
//! address counts as the IPv4 address.

mod memory;

use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cyrcles_p2p::Clock;
pub use memory::MemoryLimits;

use crate::store::{Store, StoreError};

/// The part of a client's address that per-address limits count by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix(IpAddr);

impl IpPrefix {
    /// The prefix of `ip`: itself for IPv4, its /64 for IPv6.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => IpPrefix(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpPrefix(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    let [a, b, c, d, ..] = s;
                    IpPrefix(IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0)))
                }
            },
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// At most `max` events per `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed per window (at least 1).
    pub max: u32,
    /// The window, seconds (at least 1).
    pub window_secs: u32,
}

impl Rate {
    /// `max` per minute.
    pub fn per_minute(max: u32) -> Self {
        Rate {
            max,
            window_secs: 60,
        }
    }

    /// `max` per hour.
    pub fn per_hour(max: u32) -> Self {
        Rate {
            max,
            window_secs: 3_600,
        }
    }

    fn window(self) -> i64 {
        i64::from(self.window_secs.max(1))
    }

    /// The start of the window holding `now`.
    pub(crate) fn window_start(self, now: i64) -> i64 {
        now - now.rem_euclid(self.window())
    }

    /// Decides on the counts of the previous and current windows (the
    /// current one including this attempt): `Ok` or the seconds to wait.
    pub(crate) fn decide(self, prev: i64, cur: i64, now: i64) -> Result<(), u64> {
        let w = self.window();
        let elapsed = now - self.window_start(now);
        let max = i64::from(self.max.max(1));
        // prev × (w − elapsed) / w + cur ≤ max, in integers.
        let weighted = prev.saturating_mul(w - elapsed);
        let total = weighted.saturating_add(cur.saturating_mul(w));
        if total <= max.saturating_mul(w) {
            return Ok(());
        }
        // Wait for the current window to end when it alone is full;
        // otherwise until enough of the previous one has slid out.
        let wait = if cur >= max || prev == 0 {
            w - elapsed
        } else {
            let need = total - max.saturating_mul(w);
            (need + prev - 1) / prev
        };
        Err(u64::try_from(wait.clamp(1, w)).unwrap_or(1))
    }
}

/// What spending a proof-of-work token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// First use: recorded.
    Fresh,
    /// First use, and the set was full of live tags: accepted, and its
    /// epoch ended (every outstanding token of it is retired, its tags are
    /// forgotten).
    EpochEnded {
        /// The new epoch.
        current: u32,
    },
    /// Spent before.
    Replayed,
    /// Its epoch is over; the current epoch is this one.
    Retired {
        /// The current epoch.
        current: u32,
    },
}

/// The contract of every limit store.
#[allow(async_fn_in_trait)]
pub trait LimitStore {
    /// Counts one event for `key` now; `Ok(Ok(()))` if it stays within
    /// `rate`, `Ok(Err(seconds))` if not.
    async fn hit(&self, key: &str, rate: Rate, now: i64) -> Result<Result<(), u64>, StoreError>;

    /// The current proof-of-work epoch (tokens carry it).
    async fn pow_epoch(&self) -> Result<u32, StoreError>;

    /// Spends the token with `tag`, issued in `epoch` and valid until
    /// `expires_at`. The set holds at most `max_spent` live tags per epoch;
    /// when a spend finds it full (after dropping expired tags), the epoch
    /// ends: its tags are forgotten and every outstanding token of it is
    /// retired, and the spend itself is accepted.
    async fn spend(
        &self,
        epoch: u32,
        tag: &[u8; 16],
        expires_at: i64,
        max_spent: u64,
        now: i64,
    ) -> Result<Spend, StoreError>;

    /// Forgets windows and tags that can no longer matter; returns how
    /// many were dropped.
    async fn purge_limits(&self, now: i64) -> Result<u64, StoreError>;
}

/// How long a bridge on PostgreSQL uses the epoch it last read before it
/// reads it again (a stale one only makes a fresh token come back
/// `Retired`, and the person gets another puzzle).
const EPOCH_CACHE: Duration = Duration::from_secs(2);

/// The bridge's limits: in memory (SQLite) or in the shared database
/// (PostgreSQL).
#[derive(Debug)]
pub enum Limits {
    /// In this process.
    Memory(MemoryLimits),
    /// In the database every instance uses.
    Shared {
        /// The database.
        store: Store,
        /// The epoch last read, and when (by `clock`).
        epoch: Mutex<Option<(u32, Instant)>>,
        /// The bridge's clock.
        clock: Clock,
    },
}

impl Limits {
    /// In memory, keeping at most `max_keys` rate keys.
    pub fn memory(max_keys: usize) -> Self {
        Limits::Memory(MemoryLimits::new(max_keys))
    }

    /// In `store`; `clock` times the epoch cache.
    pub fn shared(store: Store, clock: Clock) -> Self {
        Limits::Shared {
            store,
            epoch: Mutex::new(None),
            clock,
        }
    }

    /// Whether the limits are shared by every instance on the database.
    pub fn is_shared(&self) -> bool {
        matches!(self, Limits::Shared { .. })
    }

    fn remember_epoch(&self, e: u32) {
        if let Limits::Shared { epoch, clock, .. } = self {
            *epoch.lock().unwrap_or_else(|p| p.into_inner()) = Some((e, clock.instant()));
        }
    }

    /// Rate keys and spent tags held in memory (0 when shared).
    pub fn memory_sizes(&self) -> (usize, usize) {
        match self {
            Limits::Memory(m) => m.sizes(),
            Limits::Shared { .. } => (0, 0),
        }
    }
}

impl LimitStore for Limits {
    async fn hit(&self, key: &str, rate: Rate, now: i64) -> Result<Result<(), u64>, StoreError> {
        match self {
            Limits::Memory(m) => m.hit(key, rate, now).await,
            Limits::Shared { store, .. } => store.hit(key, rate, now).await,
        }
    }

    async fn pow_epoch(&self) -> Result<u32, StoreError> {
        match self {
            Limits::Memory(m) => m.pow_epoch().await,
            Limits::Shared {
                store,
                epoch,
                clock,
            } => {
                let cached = *epoch.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((e, at)) = cached
                    && clock.since(at) < EPOCH_CACHE
                {
                    return Ok(e);
                }
                let e = store.pow_epoch().await?;
                self.remember_epoch(e);
                Ok(e)
            }
        }
    }

    async fn spend(
        &self,
        epoch: u32,
        tag: &[u8; 16],
        expires_at: i64,
        max_spent: u64,
        now: i64,
    ) -> Result<Spend, StoreError> {
        match self {
            Limits::Memory(m) => m.spend(epoch, tag, expires_at, max_spent, now).await,
            Limits::Shared { store, .. } => {
                let s = store.spend(epoch, tag, expires_at, max_spent, now).await?;
                if let Spend::Retired { current } | Spend::EpochEnded { current } = s {
                    self.remember_epoch(current);
                }
                Ok(s)
            }
        }
    }

    async fn purge_limits(&self, now: i64) -> Result<u64, StoreError> {
        match self {
            Limits::Memory(m) => m.purge_limits(now).await,
            Limits::Shared { store, .. } => store.purge_limits(now).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_ipv4_addresses_and_ipv6_slash_64s() {
        let p = |s: &str| IpPrefix::of(s.parse().unwrap()).to_string();
        assert_eq!(p("203.0.113.7"), "203.0.113.7");
        assert_eq!(p("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(p("2001:db8:1:2:ffff::1"), p("2001:db8:1:2::9"));
        assert_ne!(p("2001:db8:1:2::1"), p("2001:db8:1:3::1"));
        assert_eq!(p("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(p("::1"), "::/64");
    }

    #[test]
    fn the_sliding_window_weighs_the_previous_one() {
        let r = Rate::per_minute(10);
        // At the start of a window, a full previous one counts whole.
        assert!(r.decide(10, 1, 600).is_err());
        // Half-way, it counts half.
        assert!(r.decide(10, 5, 630).is_ok());
        assert!(r.decide(10, 6, 630).is_err());
        // The current one alone.
        assert!(r.decide(0, 10, 659).is_ok());
        assert_eq!(r.decide(0, 11, 650), Err(10));
        // Waits are within the window.
        let wait = r.decide(10, 3, 610).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(r.decide(10, 3, 610 + i64::try_from(wait).unwrap()).is_ok());
    }
}
