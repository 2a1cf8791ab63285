//! The sessions a member keeps between two messages of a friend's
//! ceremony (FROST round 1 to round 2) or repair, bounded per peer and in
//! all.
//!
//! Only a friend's node (or a new device whose recovery the person
//! approved) opens one, but a friend's device can be hostile. Each peer
//! holds at most `per_peer` sessions, the table at most `max`, each for
//! at most `ttl`. At a bound the new session still opens: the peer's own
//! oldest session goes, or at the total the oldest session of the peer
//! holding the most. So one peer's burst ends its own sessions, never
//! everyone else's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cyrcles_p2p::PeerId;

/// One open session.
#[derive(Debug)]
pub(crate) struct Entry<V> {
    pub(crate) peer: PeerId,
    pub(crate) opened: Instant,
    pub(crate) value: V,
}

/// The id is already in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken;

/// Sessions by session id.
#[derive(Debug)]
pub(crate) struct SessionTable<V> {
    per_peer: usize,
    max: usize,
    ttl: Duration,
    items: HashMap<[u8; 16], Entry<V>>,
}

impl<V> SessionTable<V> {
    pub(crate) fn new(per_peer: usize, max: usize, ttl: Duration) -> Self {
        Self {
            per_peer: per_peer.max(1),
            max: max.max(1),
            ttl,
            items: HashMap::new(),
        }
    }

    fn live(&self, e: &Entry<V>, now: Instant) -> bool {
        now.saturating_duration_since(e.opened) < self.ttl
    }

    /// The oldest session among those `pred` selects.
    fn oldest(&self, pred: impl Fn(&Entry<V>) -> bool) -> Option<[u8; 16]> {
        self.items
            .iter()
            .filter(|(_, e)| pred(e))
            .min_by_key(|(_, e)| e.opened)
            .map(|(id, _)| *id)
    }

    /// Opens a session for `peer`, making room if a bound is reached;
    /// returns how many sessions it ended.
    pub(crate) fn open(
        &mut self,
        id: [u8; 16],
        peer: PeerId,
        value: V,
        now: Instant,
    ) -> Result<usize, Taken> {
        let ttl = self.ttl;
        self.items
            .retain(|_, e| now.saturating_duration_since(e.opened) < ttl);
        if self.items.contains_key(&id) {
            return Err(Taken);
        }
        let mut ended = 0;
        while self.items.values().filter(|e| e.peer == peer).count() >= self.per_peer {
            match self.oldest(|e| e.peer == peer) {
                Some(old) => {
                    self.items.remove(&old);
                    ended += 1;
                }
                None => break,
            }
        }
        if self.items.len() >= self.max {
            let mut counts: HashMap<PeerId, (usize, Instant)> = HashMap::new();
            for e in self.items.values() {
                let c = counts.entry(e.peer).or_insert((0, e.opened));
                c.0 += 1;
                c.1 = c.1.min(e.opened);
            }
            let fullest = counts
                .into_iter()
                .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
                .map(|(p, _)| p);
            if let Some(old) = fullest.and_then(|p| self.oldest(|e| e.peer == p)) {
                self.items.remove(&old);
                ended += 1;
            }
        }
        self.items.insert(
            id,
            Entry {
                peer,
                opened: now,
                value,
            },
        );
        Ok(ended)
    }

    /// Takes the session `id` out if `peer` opened it and it is live.
    pub(crate) fn take(&mut self, id: &[u8; 16], peer: &PeerId, now: Instant) -> Option<Entry<V>> {
        match self.items.get(id) {
            Some(e) if e.peer == *peer && self.live(e, now) => self.items.remove(id),
            _ => None,
        }
    }

    /// Puts a taken session back (its next step waits).
    pub(crate) fn put_back(&mut self, id: [u8; 16], entry: Entry<V>) {
        self.items.insert(id, entry);
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 16] {
        [n; 16]
    }

    #[test]
    fn one_peer_s_burst_ends_its_own_sessions_only() {
        let mut t = SessionTable::new(4, 8, Duration::from_secs(60));
        let now = cyrcles_p2p::Clock::system().instant();
        let (friend, hostile) = (PeerId::random(), PeerId::random());
        t.open(id(0), friend, "round 1", now).unwrap();
        for n in 1..=40u8 {
            let at = now + Duration::from_millis(u64::from(n));
            t.open(id(n), hostile, "junk", at).unwrap();
        }
        assert_eq!(t.len(), 5);
        let e = t
            .take(&id(0), &friend, now + Duration::from_secs(1))
            .unwrap();
        assert_eq!(e.value, "round 1");
        // Only the peer that opened a session may take it, while it lives.
        assert!(t.take(&id(40), &friend, now).is_none());
        assert!(
            t.take(&id(40), &hostile, now + Duration::from_secs(61))
                .is_none()
        );
        assert_eq!(t.open(id(39), hostile, "again", now), Err(Taken));
    }

    #[test]
    fn an_attacker_s_held_sessions_end_at_their_deadline_not_before() {
        use cyrcles_core::UnixTime;
        use cyrcles_p2p::ManualClock;

        let manual = ManualClock::new(UnixTime::from_secs(1_000));
        let clock = manual.clock();
        let mut t = SessionTable::new(4, 8, Duration::from_secs(60));
        let (friend, hostile) = (PeerId::random(), PeerId::random());
        // A hostile friend's device opens its share of sessions and never
        // sends round 2.
        for n in 1..=4u8 {
            t.open(id(n), hostile, "held", clock.instant()).unwrap();
        }
        // A millisecond before the deadline they still live.
        manual.advance(Duration::from_millis(59_999));
        let e = t.take(&id(1), &hostile, clock.instant()).expect("live");
        t.put_back(id(1), e);
        assert_eq!(t.len(), 4);
        // At the deadline they are dead: none can be taken, and the next
        // session opened drops them all without counting them as room made.
        manual.advance(Duration::from_millis(1));
        assert!(t.take(&id(2), &hostile, clock.instant()).is_none());
        assert_eq!(t.open(id(9), friend, "round 1", clock.instant()), Ok(0));
        assert_eq!(t.len(), 1);
        assert!(t.take(&id(9), &friend, clock.instant()).is_some());
    }

    #[test]
    fn at_the_total_the_fullest_peer_makes_room() {
        let mut t = SessionTable::new(3, 6, Duration::from_secs(60));
        let now = cyrcles_p2p::Clock::system().instant();
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let mut n = 0u8;
        for (i, p) in peers.iter().enumerate() {
            for _ in 0..(3 - i.min(2)) {
                n += 1;
                t.open(id(n), *p, n, now + Duration::from_millis(u64::from(n)))
                    .unwrap();
            }
        }
        // 3 + 2 + 1 = 6: full. A new peer gets in; the first peer (the
        // fullest) loses its oldest.
        let newcomer = PeerId::random();
        assert_eq!(
            t.open(id(99), newcomer, 99, now + Duration::from_secs(1)),
            Ok(1)
        );
        assert!(t.take(&id(1), &peers[0], now).is_none());
        assert!(t.take(&id(2), &peers[0], now).is_some());
        assert!(
            t.take(&id(99), &newcomer, now + Duration::from_secs(2))
                .is_some()
        );
    }
}
