//! Wakes the browsers waiting on a challenge when this instance records its
//! outcome. Waiters on other instances (behind a load balancer) fall back
//! to reading the database a few times a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Challenge id → the waiters' notifier.
#[derive(Debug, Default)]
pub struct Watch {
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Watch {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The notifier of `id` (created on first use).
    pub fn subscribe(&self, id: &str) -> Arc<Notify> {
        self.lock().entry(id.to_string()).or_default().clone()
    }

    /// Wakes every waiter of `id`.
    pub fn notify(&self, id: &str) {
        if let Some(n) = self.lock().remove(id) {
            n.notify_waiters();
        }
    }

    /// Drops the notifier of `id` when its last waiter leaves, so that the
    /// map holds only challenges someone is waiting on.
    pub fn release(&self, id: &str, n: Arc<Notify>) {
        drop(n);
        let mut m = self.lock();
        if m.get(id).is_some_and(|x| Arc::strong_count(x) == 1) {
            m.remove(id);
        }
    }
}
