//! Wakes the browsers waiting on a challenge when this instance records its
//! outcome. Waiters on other instances (behind a load balancer) fall back
//! to reading the database a few times a second.
//!
//! # Bounds
//!
//! * Only a challenge that exists and belongs to the caller's interaction
//!   is watched: the status handler loads it before it subscribes, so a
//!   made-up id never reaches the map.
//! * An entry lives exactly as long as its waiters. Each waiter holds a
//!   [`Waiter`]; its `Drop` releases it, so every way out of a handler
//!   (an answer, an error, a dropped connection, a timeout) leaves the map
//!   as it was.
//! * At most [`MAX_WAITERS_PER_CHALLENGE`] waiters per challenge and
//!   [`MAX_WAITERS`] in all. Past either, [`Watch::subscribe`] says no and
//!   the caller answers at once with the current status instead of holding
//!   the request (the page's script then polls again a second later).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// Most browsers waiting on one challenge (a person has one tab, perhaps
/// two; a stranger holding many requests open gets answered at once).
pub const MAX_WAITERS_PER_CHALLENGE: usize = 4;
/// Most waiters on this instance in all.
pub const MAX_WAITERS: usize = 10_000;

#[derive(Debug)]
struct Entry {
    notify: Arc<Notify>,
    waiters: usize,
}

#[derive(Debug, Default)]
struct Map {
    entries: HashMap<String, Entry>,
    waiters: usize,
}

/// Challenge id → the waiters' notifier and count.
#[derive(Debug, Default)]
pub struct Watch {
    map: Mutex<Map>,
}

/// One browser waiting on a challenge; dropping it releases its place.
#[derive(Debug)]
pub struct Waiter<'a> {
    watch: &'a Watch,
    id: String,
    notify: Arc<Notify>,
}

impl Waiter<'_> {
    /// Resolves when the challenge's outcome is recorded here. Create it
    /// (and `enable` it) before reading the status, so that an outcome
    /// recorded in between still wakes it.
    pub fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut m = self.watch.lock();
        m.waiters = m.waiters.saturating_sub(1);
        let last = match m.entries.get_mut(&self.id) {
            Some(e) => {
                e.waiters = e.waiters.saturating_sub(1);
                e.waiters == 0
            }
            None => false,
        };
        if last {
            m.entries.remove(&self.id);
        }
    }
}

impl Watch {
    fn lock(&self) -> MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place among the waiters of challenge `id`, which the caller has
    /// checked exists; `None` when the bounds are reached.
    pub fn subscribe(&self, id: &str) -> Option<Waiter<'_>> {
        let mut m = self.lock();
        if m.waiters >= MAX_WAITERS {
            return None;
        }
        let entry = m.entries.entry(id.to_string()).or_insert_with(|| Entry {
            notify: Arc::new(Notify::new()),
            waiters: 0,
        });
        if entry.waiters >= MAX_WAITERS_PER_CHALLENGE {
            return None;
        }
        entry.waiters += 1;
        let notify = entry.notify.clone();
        m.waiters += 1;
        Some(Waiter {
            watch: self,
            id: id.to_string(),
            notify,
        })
    }

    /// Wakes every waiter of `id` (their entry goes when they leave).
    pub fn notify(&self, id: &str) {
        if let Some(e) = self.lock().entries.get(id) {
            e.notify.notify_waiters();
        }
    }

    /// How many challenges have waiters.
    pub fn challenges(&self) -> usize {
        self.lock().entries.len()
    }

    /// How many waiters there are.
    pub fn waiters(&self) -> usize {
        self.lock().waiters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_as_long_as_their_waiters() {
        let w = Watch::default();
        let a = w.subscribe("a").unwrap();
        let b = w.subscribe("a").unwrap();
        let c = w.subscribe("c").unwrap();
        assert_eq!((w.challenges(), w.waiters()), (2, 3));
        drop(a);
        assert_eq!((w.challenges(), w.waiters()), (2, 2));
        drop(b);
        drop(c);
        assert_eq!((w.challenges(), w.waiters()), (0, 0));
    }

    #[test]
    fn waiters_per_challenge_are_capped() {
        let w = Watch::default();
        let held: Vec<_> = (0..MAX_WAITERS_PER_CHALLENGE)
            .map(|_| w.subscribe("a").unwrap())
            .collect();
        assert!(w.subscribe("a").is_none());
        assert!(w.subscribe("b").is_some(), "another challenge has room");
        drop(held);
        assert_eq!((w.challenges(), w.waiters()), (0, 0));
        assert!(w.subscribe("a").is_some());
    }

    #[test]
    fn waiters_in_all_are_capped() {
        let w = Watch::default();
        let held: Vec<_> = (0..MAX_WAITERS)
            .map(|i| w.subscribe(&i.to_string()).unwrap())
            .collect();
        assert!(w.subscribe("one more").is_none());
        assert_eq!(w.challenges(), MAX_WAITERS);
        drop(held);
        assert_eq!((w.challenges(), w.waiters()), (0, 0));
    }

    #[tokio::test]
    async fn notify_wakes_a_waiter_that_enabled_first() {
        let w = Watch::default();
        let a = w.subscribe("a").unwrap();
        {
            let n = a.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            w.notify("a");
            n.await;
        }
        assert_eq!(w.challenges(), 1, "the entry stays until its waiter leaves");
        drop(a);
        assert_eq!(w.challenges(), 0);
    }
}
