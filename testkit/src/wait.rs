//! Polling until something holds.
//!
//! A test that waits for a state it cannot be told about (a record in the
//! DHT, a line in a log, a request listed by the CLI) asks again every
//! [`INTERVAL`] until the answer is the one wanted, and fails after a
//! deadline with a message naming what it waited for. Where an event
//! exists (a channel, a process exit, a printed line), a test waits on it
//! instead.
//!
//! The deadline cuts a check short: a check that hangs fails the wait
//! as a check that keeps saying no does.

use std::fmt::Debug;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The pause between two checks unless a [`Poll`] says otherwise: short,
/// so that a test goes on soon after the state it waits for.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// A wait: at most `secs` seconds, for `what` (named in the panic).
#[derive(Debug, Clone, Copy)]
pub struct Poll<'a> {
    secs: u64,
    what: &'a str,
    every: Duration,
}

impl<'a> Poll<'a> {
    pub fn new(secs: u64, what: &'a str) -> Poll<'a> {
        Poll {
            secs,
            what,
            every: INTERVAL,
        }
    }

    /// Checks every `every` instead of every [`INTERVAL`] (for a check
    /// that costs the system under test some work, such as a network
    /// round).
    pub fn every(self, every: Duration) -> Poll<'a> {
        Poll { every, ..self }
    }

    /// Until `check` returns true.
    pub async fn until<F, Fut>(self, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        self.value(|| {
            let done = check();
            async move { done.await.then_some(()) }
        })
        .await
    }

    /// Until `probe` returns `Some`; returns what it held.
    pub async fn value<T, F, Fut>(self, probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        match self.run(probe).await {
            Some(v) => v,
            None => panic!("{} took more than {} s", self.what, self.secs),
        }
    }

    /// Until `probe` returns `Ok`; returns what it held. The panic shows
    /// the last error.
    pub async fn ok<T, E, F, Fut>(self, mut probe: F) -> T
    where
        E: Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // A mutex rather than a cell keeps the wait `Send`.
        let last: Mutex<Option<E>> = Mutex::new(None);
        let found = self
            .run(|| {
                let attempt = probe();
                let last = &last;
                async move {
                    match attempt.await {
                        Ok(v) => Some(v),
                        Err(e) => {
                            *last.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                            None
                        }
                    }
                }
            })
            .await;
        let last = last.into_inner().unwrap_or_else(PoisonError::into_inner);
        match found {
            Some(v) => v,
            None => panic!(
                "{} took more than {} s; last: {last:?}",
                self.what, self.secs
            ),
        }
    }

    /// Whether `check` returns true before the deadline (no panic: for a
    /// caller that goes on either way, or reports the failure itself).
    pub async fn within<F, Fut>(self, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        self.run(|| {
            let done = check();
            async move { done.await.then_some(()) }
        })
        .await
        .is_some()
    }

    /// `Some` with the first value `probe` gives within the deadline.
    async fn run<T, F, Fut>(self, mut probe: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        tokio::time::timeout(Duration::from_secs(self.secs), async {
            loop {
                if let Some(v) = probe().await {
                    return v;
                }
                tokio::time::sleep(self.every).await;
            }
        })
        .await
        .ok()
    }

    /// Until `check` returns true, blocking the thread (for tests without
    /// a runtime). A check is not cut short: the deadline is looked at
    /// between checks.
    // A test's own deadline, outside any runtime: the real clock is the
    // one it runs against (no program's deadline is read here).
    #[allow(clippy::disallowed_methods)]
    pub fn until_sync(self, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now().checked_add(Duration::from_secs(self.secs));
        loop {
            if check() {
                return;
            }
            if deadline.is_none_or(|d| Instant::now() >= d) {
                panic!("{} took more than {} s", self.what, self.secs);
            }
            std::thread::sleep(self.every);
        }
    }
}

/// Polls `check` every [`INTERVAL`] until it returns true; panics with
/// "`what` took more than `secs` s" if it has not by then.
pub async fn wait_until<F, Fut>(secs: u64, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    Poll::new(secs, what).until(check).await
}

/// Polls `probe` until it returns `Some`, and returns what it held; panics
/// as [`wait_until`] does.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    Poll::new(secs, what).value(probe).await
}

/// Polls `probe` until it returns `Ok`, and returns what it held; the
/// panic shows the last error.
pub async fn wait_ok<T, E, F, Fut>(secs: u64, what: &str, probe: F) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    Poll::new(secs, what).ok(probe).await
}

/// Whether `check` returns true within `secs` seconds (polled every
/// [`INTERVAL`]); for tests that assert something does *not* happen, or
/// that report the failure themselves.
pub async fn within<F, Fut>(secs: u64, check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    Poll::new(secs, "").within(check).await
}

/// [`wait_until`] for tests without a runtime: blocks the thread between
/// checks.
pub fn wait_until_sync(secs: u64, what: &str, check: impl FnMut() -> bool) {
    Poll::new(secs, what).until_sync(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_returns_what_the_probe_found() {
        let mut n = 0;
        let got = wait_for(5, "the third try", || {
            n += 1;
            let n = n;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "the impossible took more than 1 s; last: Some(\"no\")")]
    async fn a_wait_that_runs_out_names_what_it_waited_for() {
        wait_ok(1, "the impossible", || async { Err::<(), _>("no") }).await;
    }

    #[tokio::test]
    async fn within_says_no_when_it_never_holds() {
        assert!(!within(1, || async { false }).await);
        assert!(within(1, || async { true }).await);
    }

    #[test]
    #[should_panic(expected = "never took more than 1 s")]
    fn the_blocking_wait_runs_out_too() {
        wait_until_sync(1, "never", || false);
    }
}
