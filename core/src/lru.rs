//! A small bounded map that forgets the least recently used entry first.
//! Used by the in-memory caches of this crate, so that no peer can make
//! them grow without bound.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

#[derive(Debug)]
pub(crate) struct Lru<K, V> {
    capacity: usize,
    entries: HashMap<K, (V, u64)>,
    by_use: BTreeMap<u64, K>,
    tick: u64,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty map holding at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            tick: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.entries.get(k).map(|(v, _)| v)
    }

    /// Inserts or replaces `k`, making it the most recently used.
    pub(crate) fn insert(&mut self, k: K, v: V) {
        self.tick += 1;
        if let Some((_, old)) = self.entries.insert(k.clone(), (v, self.tick)) {
            self.by_use.remove(&old);
        }
        self.by_use.insert(self.tick, k);
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    /// Marks `k` as the most recently used; returns whether it is present.
    pub(crate) fn touch(&mut self, k: &K) -> bool {
        let Some((_, used)) = self.entries.get_mut(k) else {
            return false;
        };
        self.tick += 1;
        self.by_use.remove(used);
        *used = self.tick;
        self.by_use.insert(self.tick, k.clone());
        true
    }
}
