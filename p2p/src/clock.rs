//! The one clock of the node, the agent and the bridge.
//!
//! A [`Clock`] gives two readings of one moment: [`Clock::now`], wall time
//! in whole Unix seconds (what protocol decisions take as their `now`), and
//! [`Clock::instant`], monotonic time (what stored deadlines, windows and
//! token buckets are measured in). Everything that keeps a time in its
//! state takes it from a `Clock` it was given, so that a test can hand it a
//! [`ManualClock`] and move time instead of sleeping.
//!
//! Waiting inside a task (`tokio::time::sleep`, `timeout`, a
//! `tokio::time::Instant` deadline in a loop) stays on tokio's time, which
//! tests control with `tokio::time::pause` (`docs/architecture.md`,
//! "Time").
//!
//! This module is the only place that reads the system's clocks: the
//! workspace's `clippy.toml` disallows `Instant::now` and `SystemTime::now`
//! everywhere else.

// The one place allowed to read the system's clocks (see the module doc).
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cyrcles_core::UnixTime;

/// Where time comes from. Cheap to clone (at most one `Arc`).
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    System,
    Manual(Arc<Manual>),
}

impl Clock {
    /// The system's clocks: `SystemTime` for wall time, `Instant` for
    /// monotonic time.
    pub fn system() -> Self {
        Clock(Source::System)
    }

    /// Wall time, in whole seconds since the Unix epoch (the epoch itself
    /// if the system clock is set before it).
    pub fn now(&self) -> UnixTime {
        match &self.0 {
            Source::System => UnixTime::from_secs(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            ),
            Source::Manual(m) => m.now(),
        }
    }

    /// Monotonic time, for deadlines and windows kept in state.
    pub fn instant(&self) -> Instant {
        match &self.0 {
            Source::System => Instant::now(),
            Source::Manual(m) => m.instant(),
        }
    }

    /// How long since `earlier` (an [`instant`](Self::instant) of this
    /// clock); zero if `earlier` is later.
    pub fn since(&self, earlier: Instant) -> Duration {
        self.instant().saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::System => f.write_str("Clock::system()"),
            Source::Manual(m) => write!(f, "Clock::manual(now {})", m.now()),
        }
    }
}

/// A clock that moves only when told, for tests: [`ManualClock::advance`]
/// moves its wall time and its monotonic time together.
///
/// Its monotonic time is an `Instant` taken when it was made plus the
/// total advanced. Nothing overflows: wall time saturates at the end of
/// `UnixTime`, and monotonic time stops at the last `Instant` the
/// platform can represent (centuries away).
#[derive(Clone)]
pub struct ManualClock(Arc<Manual>);

struct Manual {
    /// Wall time when made.
    start: UnixTime,
    /// Monotonic time when made.
    base: Instant,
    offsets: Mutex<Offsets>,
}

/// How far the clock was moved.
#[derive(Clone, Copy)]
struct Offsets {
    /// In all (wall time is `start` plus its whole seconds).
    wall: Duration,
    /// The part of it that fits after `base`.
    mono: Duration,
}

impl Manual {
    fn offsets(&self) -> Offsets {
        *self.offsets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> UnixTime {
        self.start.plus(self.offsets().wall.as_secs())
    }

    fn instant(&self) -> Instant {
        // `mono` is only ever set to an offset that fits after `base`.
        self.base
            .checked_add(self.offsets().mono)
            .unwrap_or(self.base)
    }
}

impl ManualClock {
    /// A manual clock whose wall time starts at `start`.
    pub fn new(start: UnixTime) -> Self {
        ManualClock(Arc::new(Manual {
            start,
            base: Instant::now(),
            offsets: Mutex::new(Offsets {
                wall: Duration::ZERO,
                mono: Duration::ZERO,
            }),
        }))
    }

    /// A manual clock that starts at the system's wall time (so that
    /// records made on it look live to nodes on the system clock).
    pub fn starting_now() -> Self {
        Self::new(Clock::system().now())
    }

    /// Moves wall and monotonic time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut o = self
            .0
            .offsets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        o.wall = o.wall.saturating_add(by);
        let mono = o.mono.saturating_add(by);
        if self.0.base.checked_add(mono).is_some() {
            o.mono = mono;
        }
    }

    /// Its wall time.
    pub fn now(&self) -> UnixTime {
        self.0.now()
    }

    /// Its monotonic time.
    pub fn instant(&self) -> Instant {
        self.0.instant()
    }

    /// A [`Clock`] reading this manual clock (every clone moves with it).
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(self.0.clone()))
    }
}

impl From<&ManualClock> for Clock {
    fn from(m: &ManualClock) -> Self {
        m.clock()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_wall_and_monotonic_time_together() {
        let manual = ManualClock::new(UnixTime::from_secs(1_000));
        let clock = manual.clock();
        let (t0, i0) = (clock.now(), clock.instant());
        assert_eq!(t0, UnixTime::from_secs(1_000));
        assert_eq!(clock.instant(), i0, "a manual clock stands still");
        manual.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), UnixTime::from_secs(1_001));
        assert_eq!(clock.since(i0), Duration::from_millis(1_500));
        manual.advance(Duration::from_millis(500));
        assert_eq!(clock.now(), UnixTime::from_secs(1_002));
        assert_eq!(clock.since(i0), Duration::from_secs(2));
        // A clone of the clock reads the same manual clock.
        assert_eq!(clock.clone().instant(), clock.instant());
    }

    #[test]
    fn advancing_past_the_end_saturates_instead_of_panicking() {
        let manual = ManualClock::new(UnixTime::from_secs(u64::MAX - 5));
        let i0 = manual.instant();
        manual.advance(Duration::from_secs(60));
        let i1 = manual.instant();
        assert_eq!(i1.duration_since(i0), Duration::from_secs(60));
        manual.advance(Duration::MAX);
        manual.advance(Duration::MAX);
        assert_eq!(manual.now(), UnixTime::from_secs(u64::MAX));
        assert!(manual.instant() >= i1, "monotonic time never goes back");
    }

    #[test]
    fn the_system_clock_is_monotonic_and_after_the_epoch() {
        let clock = Clock::system();
        let i0 = clock.instant();
        assert!(clock.instant() >= i0);
        // 2025-01-01: any machine running this is later.
        assert!(clock.now() > UnixTime::from_secs(1_735_689_600));
    }
}
