//! The requests that wait for the person, bounded per source.
//!
//! Three bounds hold for each ego (`[quotas]` in the configuration):
//! `max_pending` requests in all, `max_pending_per_peer` from one sender
//! (a node, or a local program) and `max_pending_per_source` from one
//! source (a sender and the browser's network it reports; see
//! `source.rs`). A new request is always queued; when that would pass a
//! bound, one waiting request goes instead (it is answered as over quota):
//!
//! * its own source is full: that source's oldest request;
//! * its sender is full: the oldest of that sender's fullest source;
//! * the ego is full: the oldest of the fullest source of the fullest
//!   sender.
//!
//! "Fullest" counts the new request too, and a tie goes to the group
//! whose oldest request is oldest. So a flood only ever pushes out its
//! own requests once it holds the most, and a request from a source that
//! holds none always gets in.

use std::collections::BTreeMap;
use std::hash::Hash;

use cyrcles_core::EgoId;
use cyrcles_core::login::{LoginChallenge, LoginResponse};
use cyrcles_p2p::PeerId;
use tokio::sync::oneshot;

use super::source::{Sender, Source};
use crate::config::Quotas;
use crate::control::proto::LocalSignature;
use crate::daemon::Result;

/// What a waiting local program receives.
pub(crate) type LocalAnswer = Result<LocalSignature>;

/// What a pending request is.
#[derive(Debug)]
pub(crate) enum PendingKind {
    /// A bridge's login challenge.
    Login {
        challenge: LoginChallenge,
        peer: PeerId,
        answer: oneshot::Sender<LoginResponse>,
    },
    /// A local program's request.
    Local {
        program: String,
        pid: Option<u32>,
        reason: String,
        nonce: Vec<u8>,
        answer: oneshot::Sender<LocalAnswer>,
    },
}

/// A request waiting for the person.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) ego_id: EgoId,
    pub(crate) source: Source,
    pub(crate) code: u8,
    pub(crate) wrong_codes: u32,
    pub(crate) received_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) kind: PendingKind,
}

/// The bounds of the queue.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    per_ego: usize,
    per_sender: usize,
    per_source: usize,
}

/// The waiting requests of every ego, by id (ids grow with time, so the
/// map's order is arrival order).
#[derive(Debug)]
pub(crate) struct PendingQueue {
    bounds: Bounds,
    next_id: u64,
    items: BTreeMap<u64, Pending>,
}

/// Among groups of requests (`(id, key)` in arrival order, plus the new
/// request's key if it belongs here), the fullest key; ties go to the key
/// whose oldest request is oldest. The new request counts but is newer
/// than all.
fn fullest<K: Eq + Hash + Clone>(
    items: impl Iterator<Item = (u64, K)>,
    new: Option<&K>,
) -> Option<K> {
    let mut groups: Vec<(K, usize, u64)> = Vec::new();
    let mut add = |key: K, id: u64| match groups.iter_mut().find(|(k, _, _)| *k == key) {
        Some((_, n, oldest)) => {
            *n += 1;
            *oldest = (*oldest).min(id);
        }
        None => groups.push((key, 1, id)),
    };
    for (id, key) in items {
        add(key, id);
    }
    if let Some(new) = new {
        add(new.clone(), u64::MAX);
    }
    groups
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))
        .map(|(k, _, _)| k)
}

impl PendingQueue {
    pub(crate) fn new(q: &Quotas) -> Self {
        Self {
            bounds: Bounds {
                per_ego: q.max_pending.max(1),
                per_sender: q.max_pending_per_peer.max(1),
                per_source: q.max_pending_per_source.max(1),
            },
            next_id: 1,
            items: BTreeMap::new(),
        }
    }

    /// Queues a request; returns its id and the request it pushed out,
    /// if a bound was reached.
    pub(crate) fn insert(&mut self, pending: Pending) -> (u64, Option<(u64, Pending)>) {
        let evicted = self
            .victim(&pending)
            .and_then(|id| self.items.remove(&id).map(|p| (id, p)));
        let id = self.next_id;
        self.next_id += 1;
        self.items.insert(id, pending);
        (id, evicted)
    }

    /// The request that must go for `new` to fit, if any.
    fn victim(&self, new: &Pending) -> Option<u64> {
        let ego: Vec<(u64, &Source)> = self
            .items
            .iter()
            .filter(|(_, p)| p.ego_id == new.ego_id)
            .map(|(id, p)| (*id, &p.source))
            .collect();
        let oldest =
            |pred: &dyn Fn(&Source) -> bool| ego.iter().find(|(_, s)| pred(s)).map(|(id, _)| *id);
        // The oldest of the fullest source of `sender`.
        let from_sender = |sender: &Sender| {
            let mine = ego.iter().filter(|(_, s)| s.sender == *sender);
            let new_prefix = (new.source.sender == *sender).then_some(&new.source.prefix);
            let prefix = fullest(mine.map(|(id, s)| (*id, s.prefix)), new_prefix)?;
            oldest(&|s| s.sender == *sender && s.prefix == prefix)
        };
        let same_source = ego.iter().filter(|(_, s)| **s == new.source).count();
        if same_source >= self.bounds.per_source {
            return oldest(&|s| *s == new.source);
        }
        let same_sender = ego
            .iter()
            .filter(|(_, s)| s.sender == new.source.sender)
            .count();
        if same_sender >= self.bounds.per_sender {
            return from_sender(&new.source.sender);
        }
        if ego.len() >= self.bounds.per_ego {
            let sender = fullest(
                ego.iter().map(|(id, s)| (*id, s.sender.clone())),
                Some(&new.source.sender),
            )?;
            return from_sender(&sender).or_else(|| ego.first().map(|(id, _)| *id));
        }
        None
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Pending> {
        self.items.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Pending> {
        self.items.get_mut(&id)
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<Pending> {
        self.items.remove(&id)
    }

    /// Every waiting request, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &Pending)> {
        self.items.iter().map(|(id, p)| (*id, p))
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Takes every request of `ego` out.
    pub(crate) fn take_ego(&mut self, ego: &EgoId) -> Vec<(u64, Pending)> {
        let ids: Vec<u64> = self
            .items
            .iter()
            .filter(|(_, p)| p.ego_id == *ego)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.items.remove(&id).map(|p| (id, p)))
            .collect()
    }

    /// Takes every request out.
    pub(crate) fn take_all(&mut self) -> Vec<(u64, Pending)> {
        std::mem::take(&mut self.items).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(per_ego: usize, per_peer: usize, per_source: usize) -> Quotas {
        Quotas {
            max_pending: per_ego,
            max_pending_per_peer: per_peer,
            max_pending_per_source: per_source,
            ..Quotas::default()
        }
    }

    fn peer(n: u8) -> PeerId {
        let key = cyrcles_p2p::Keypair::ed25519_from_bytes([n; 32]).unwrap();
        key.public().to_peer_id()
    }

    fn request(ego: u8, from: u8, ip: &str) -> Pending {
        let (answer, _) = oneshot::channel();
        Pending {
            ego_id: EgoId::from_bytes([ego; 32]),
            source: Source::login(peer(from), Some(ip)),
            code: 0,
            wrong_codes: 0,
            received_at: 0,
            expires_at: 0,
            kind: PendingKind::Local {
                program: String::new(),
                pid: None,
                reason: String::new(),
                nonce: Vec::new(),
                answer,
            },
        }
    }

    fn ids_from(q: &PendingQueue, from: u8) -> Vec<u64> {
        q.iter()
            .filter(|(_, p)| p.source.sender == Sender::Peer(peer(from)))
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn a_full_source_gives_way_to_its_own_newest() {
        let mut q = PendingQueue::new(&quotas(16, 4, 2));
        let (a, none) = q.insert(request(1, 1, "198.51.100.1"));
        assert!(none.is_none());
        let (b, _) = q.insert(request(1, 1, "198.51.100.2"));
        let (_, gone) = q.insert(request(1, 1, "198.51.100.3"));
        assert_eq!(gone.map(|(id, _)| id), Some(a));
        // Another network of the same sender is not touched.
        let (_, none) = q.insert(request(1, 1, "203.0.113.7"));
        assert!(none.is_none());
        assert!(q.get(b).is_some());
    }

    #[test]
    fn a_full_sender_loses_its_fullest_network_first() {
        let mut q = PendingQueue::new(&quotas(16, 4, 2));
        let (flood1, _) = q.insert(request(1, 1, "198.51.100.1"));
        q.insert(request(1, 1, "198.51.100.2"));
        let (victim, _) = q.insert(request(1, 1, "203.0.113.7"));
        q.insert(request(1, 1, "192.0.2.1"));
        // The sender holds 4: a fifth from a new network pushes out the
        // oldest of the network holding 2, not the person's.
        let (_, gone) = q.insert(request(1, 1, "233.252.0.1"));
        assert_eq!(gone.map(|(id, _)| id), Some(flood1));
        assert!(q.get(victim).is_some());
    }

    #[test]
    fn a_full_ego_admits_a_new_sender_at_the_expense_of_the_fullest() {
        let mut q = PendingQueue::new(&quotas(6, 4, 4));
        let mut flood = Vec::new();
        for i in 0..4 {
            flood.push(q.insert(request(1, 1, &format!("198.51.100.{i}"))).0);
        }
        q.insert(request(1, 2, "203.0.113.7"));
        q.insert(request(1, 3, "192.0.2.1"));
        assert_eq!(q.len(), 6);
        let (new, gone) = q.insert(request(1, 4, "233.252.0.1"));
        assert_eq!(gone.map(|(id, _)| id), Some(flood[0]));
        assert!(q.get(new).is_some());
        assert_eq!(ids_from(&q, 2).len(), 1);
        assert_eq!(ids_from(&q, 3).len(), 1);
        // The flood keeps pushing only itself out.
        for i in 0..10 {
            let (_, gone) = q.insert(request(1, 1, &format!("198.51.101.{i}")));
            let (id, p) = gone.unwrap();
            assert_eq!(p.source.sender, Sender::Peer(peer(1)), "{id}");
        }
        assert_eq!(q.len(), 6);
        // Another ego's queue is its own.
        let (_, none) = q.insert(request(2, 1, "198.51.100.1"));
        assert!(none.is_none());
    }

    #[test]
    fn ties_go_to_the_oldest() {
        let mut q = PendingQueue::new(&quotas(3, 3, 3));
        let (first, _) = q.insert(request(1, 1, "198.51.100.1"));
        q.insert(request(1, 2, "198.51.100.1"));
        q.insert(request(1, 3, "198.51.100.1"));
        let (_, gone) = q.insert(request(1, 4, "198.51.100.1"));
        assert_eq!(gone.map(|(id, _)| id), Some(first));
    }
}
