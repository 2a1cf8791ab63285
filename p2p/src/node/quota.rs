//! Who filled the DHT store: records and rendezvous announcements kept for
//! others, counted per sending peer and per sending network.
//!
//! Anyone can make egos, so anyone can send this node valid records. A node
//! that stored whatever came first would let one host fill its store and
//! refuse every ego after. Each record stored for another peer is charged
//! to that peer and to its *group*: the IP prefix it connected from (IPv4
//! /24 and IPv6 /48 by default), or the peer itself when it has no IP
//! (in-process connections). Both have a quota. When the store is full, a
//! new record from a group that holds less than the heaviest group evicts
//! the heaviest group's oldest record; otherwise it is refused. A flood
//! from a few networks therefore ends up holding about as much as any other
//! network that stores here, never everything.
//!
//! Records this node published itself are not charged and never evicted.

use std::collections::{BTreeMap, HashMap};

use std::hash::Hash;

use libp2p::PeerId;

use crate::addrs::IpPrefix;

/// The unit sharing a quota: a network prefix, or a peer without an IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Group {
    /// Peers that connected from this prefix.
    Net(IpPrefix),
    /// A peer whose connection has no IP address.
    Peer(PeerId),
}

/// What to do with a new entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit<K> {
    /// Store it.
    Store,
    /// Store it after removing this entry (the heaviest group's oldest).
    Evict(K),
    /// The sender is over its quota.
    OverQuota,
    /// The store is full and the sender's group is the heaviest.
    Full,
}

#[derive(Debug)]
struct Charge {
    peer: PeerId,
    group: Group,
    order: u64,
}

/// The book of one store (records by key, or rendezvous announcements by
/// key and provider).
#[derive(Debug)]
pub(crate) struct Quota<K> {
    per_peer: usize,
    per_group: usize,
    charges: HashMap<K, Charge>,
    peers: HashMap<PeerId, usize>,
    groups: HashMap<Group, BTreeMap<u64, K>>,
    next: u64,
}

impl<K: Clone + Eq + Hash> Quota<K> {
    pub(crate) fn new(per_peer: usize, per_group: usize) -> Self {
        Self {
            per_peer: per_peer.max(1),
            per_group: per_group.max(1),
            charges: HashMap::new(),
            peers: HashMap::new(),
            groups: HashMap::new(),
            next: 0,
        }
    }

    /// Whether `key` is charged to someone (a record stored for another
    /// peer).
    pub(crate) fn holds(&self, key: &K) -> bool {
        self.charges.contains_key(key)
    }

    /// Entries charged in all.
    pub(crate) fn len(&self) -> usize {
        self.charges.len()
    }

    /// The charged entries.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.charges.keys()
    }

    /// Entries charged to `group`.
    pub(crate) fn group_len(&self, group: &Group) -> usize {
        self.groups.get(group).map_or(0, BTreeMap::len)
    }

    /// Groups and peers tracked (each has at least one entry).
    pub(crate) fn tracked(&self) -> (usize, usize) {
        (self.groups.len(), self.peers.len())
    }

    /// Decides on a new entry from `peer` in `group`, for a store holding
    /// `stored` entries out of `capacity`.
    pub(crate) fn admit(
        &self,
        peer: &PeerId,
        group: &Group,
        stored: usize,
        capacity: usize,
    ) -> Admit<K> {
        if self.peers.get(peer).copied().unwrap_or(0) >= self.per_peer
            || self.group_len(group) >= self.per_group
        {
            return Admit::OverQuota;
        }
        if stored < capacity {
            return Admit::Store;
        }
        let mine = self.group_len(group);
        let heaviest = self
            .groups
            .iter()
            .max_by_key(|(_, entries)| entries.len())
            .and_then(|(_, entries)| {
                let (_, oldest) = entries.first_key_value()?;
                Some((entries.len(), oldest.clone()))
            });
        match heaviest {
            // Evict only from a group that would still hold more than the
            // sender after the exchange: no two groups trade places for ever.
            Some((len, oldest)) if len > mine.saturating_add(1) => Admit::Evict(oldest),
            _ => Admit::Full,
        }
    }

    /// Records that `key` is now stored for `peer` in `group`.
    pub(crate) fn charge(&mut self, key: K, peer: PeerId, group: Group) {
        if self.charges.contains_key(&key) {
            return;
        }
        let order = self.next;
        self.next = self.next.wrapping_add(1);
        *self.peers.entry(peer).or_insert(0) += 1;
        self.groups
            .entry(group)
            .or_default()
            .insert(order, key.clone());
        self.charges.insert(key, Charge { peer, group, order });
    }

    /// Forgets `key` (removed from the store). Unknown keys are ignored.
    pub(crate) fn release(&mut self, key: &K) {
        let Some(c) = self.charges.remove(key) else {
            return;
        };
        if let Some(n) = self.peers.get_mut(&c.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.peers.remove(&c.peer);
            }
        }
        if let Some(entries) = self.groups.get_mut(&c.group) {
            entries.remove(&c.order);
            if entries.is_empty() {
                self.groups.remove(&c.group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> u32 {
        i
    }

    fn net(last: u8) -> Group {
        Group::Net(IpPrefix::of(
            std::net::IpAddr::from([203, 0, last, 1]),
            24,
            48,
        ))
    }

    #[test]
    fn quotas_per_peer_and_per_group_hold() {
        let mut q: Quota<u32> = Quota::new(2, 3);
        let (a, b) = (PeerId::random(), PeerId::random());
        for i in 0..2u32 {
            assert_eq!(q.admit(&a, &net(1), i as usize, 100), Admit::Store);
            q.charge(key(i), a, net(1));
        }
        assert_eq!(q.admit(&a, &net(1), 2, 100), Admit::OverQuota);
        assert_eq!(q.admit(&b, &net(1), 2, 100), Admit::Store);
        q.charge(key(10), b, net(1));
        assert_eq!(q.admit(&b, &net(1), 3, 100), Admit::OverQuota);
        assert_eq!(q.admit(&b, &net(2), 3, 100), Admit::Store);
        q.release(&key(0));
        assert_eq!(q.admit(&a, &net(1), 2, 100), Admit::Store);
    }

    #[test]
    fn a_full_store_evicts_from_the_heaviest_group_only() {
        let mut q: Quota<u32> = Quota::new(100, 100);
        let flood = PeerId::random();
        for i in 0..5 {
            q.charge(key(i), flood, net(1));
        }
        let victim = PeerId::random();
        // The flood's group holds 5 of 5: a newcomer evicts its oldest.
        assert_eq!(q.admit(&victim, &net(9), 5, 5), Admit::Evict(key(0)));
        // The flood itself cannot evict its own records to grow.
        assert_eq!(q.admit(&flood, &net(1), 5, 5), Admit::Full);
        q.release(&key(0));
        q.charge(key(100), victim, net(9));
        // Groups of 4 and 1: one more eviction, then 3 and 2 are close
        // enough that the store refuses instead.
        assert_eq!(q.admit(&victim, &net(9), 5, 5), Admit::Evict(key(1)));
        q.release(&key(1));
        q.charge(key(101), victim, net(9));
        assert_eq!(q.admit(&victim, &net(9), 5, 5), Admit::Full);
        assert_eq!(q.tracked(), (2, 2));
        for k in [2, 3, 4, 100, 101] {
            q.release(&key(k));
        }
        assert_eq!(q.tracked(), (0, 0));
    }
}
