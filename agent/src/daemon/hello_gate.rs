//! What strangers can spend of an inviter's work: invite hellos per peer,
//! and the party checks (one DHT lookup each) running at once.
//!
//! A hello costs the invite nothing unless its sender knows the code's
//! nameplate and first word and names a valid ego of its own (see
//! `friends.rs`); this gate bounds the work before that point. Peers over
//! their rate, and hellos while [`MAX_CHECKS`] checks run, are answered
//! `rate_limited` and the invite stays open.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cyrcles_p2p::PeerId;
use cyrcles_p2p::ratelimit::RateLimiter;

/// Hellos one peer may send per minute (in bursts of as many).
pub(crate) const HELLOS_PER_PEER_PER_MINUTE: u32 = 6;
/// Peers whose hello rate is tracked (the least recently seen are
/// forgotten).
const TRACKED_PEERS: usize = 1024;
/// Party checks running at once, for all invites.
pub(crate) const MAX_CHECKS: usize = 8;

/// The gate in front of the inviter's hello handling.
#[derive(Debug)]
pub(crate) struct HelloGate {
    per_peer: RateLimiter<PeerId>,
    checks: Arc<AtomicUsize>,
}

impl Default for HelloGate {
    fn default() -> Self {
        Self {
            per_peer: RateLimiter::new(HELLOS_PER_PEER_PER_MINUTE, TRACKED_PEERS),
            checks: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// A party check in progress; the slot frees when it drops.
#[derive(Debug)]
pub(crate) struct CheckSlot(Arc<AtomicUsize>);

impl Drop for CheckSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HelloGate {
    /// Lets a hello from `peer` through, with a check slot, or not.
    pub(crate) fn admit(&mut self, peer: &PeerId, now: Instant) -> Option<CheckSlot> {
        if !self.per_peer.allow(peer, now) {
            return None;
        }
        let taken = self
            .checks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_CHECKS).then_some(n + 1)
            });
        taken.ok().map(|_| CheckSlot(self.checks.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        cyrcles_p2p::Keypair::ed25519_from_bytes([n; 32])
            .unwrap()
            .public()
            .to_peer_id()
    }

    #[test]
    fn a_peer_has_its_rate_and_all_share_the_checks() {
        let mut gate = HelloGate::default();
        let now = cyrcles_p2p::Clock::system().instant();
        let mut held = Vec::new();
        for _ in 0..HELLOS_PER_PEER_PER_MINUTE {
            drop(gate.admit(&peer(1), now).unwrap());
        }
        assert!(gate.admit(&peer(1), now).is_none());
        // Another peer is not affected; checks at once are bounded.
        for n in 0..u8::try_from(MAX_CHECKS).unwrap() {
            held.push(gate.admit(&peer(10 + n), now).unwrap());
        }
        assert!(gate.admit(&peer(2), now).is_none());
        held.pop();
        assert!(gate.admit(&peer(3), now).is_some());
    }

    #[test]
    fn a_peer_over_its_hello_rate_waits_for_the_clock() {
        use std::time::Duration;

        use cyrcles_core::UnixTime;
        use cyrcles_p2p::ManualClock;

        let manual = ManualClock::new(UnixTime::from_secs(1_000));
        let clock = manual.clock();
        let mut gate = HelloGate::default();
        let guesser = peer(7);
        for _ in 0..HELLOS_PER_PEER_PER_MINUTE {
            assert!(gate.admit(&guesser, clock.instant()).is_some());
        }
        // Guessing on while time stands still gets nothing through.
        for _ in 0..50 {
            assert!(gate.admit(&guesser, clock.instant()).is_none());
        }
        // One hello comes back every 60 / HELLOS_PER_PEER_PER_MINUTE
        // seconds (10 s): not a moment before.
        manual.advance(Duration::from_millis(9_900));
        assert!(gate.admit(&guesser, clock.instant()).is_none());
        manual.advance(Duration::from_millis(200));
        assert!(gate.admit(&guesser, clock.instant()).is_some());
        assert!(gate.admit(&guesser, clock.instant()).is_none());
    }
}
