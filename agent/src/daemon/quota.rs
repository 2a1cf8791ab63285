//! Sliding-window quotas on login and signing requests, per ego.
//!
//! Two kinds, counted at different times:
//!
//! * **What a sender may spend**, counted when a request arrives (every
//!   request that passes the bans, whether it prompts or a policy
//!   approves it): `per_source` per source (sending node and the
//!   browser's network it reports, see `source.rs`), `per_peer` per
//!   sending node, `per_program` per local program. A flood spends its
//!   own allowance, never the person's.
//! * **What the person grants**, counted when the person (or an
//!   auto-approve policy) approves: `per_site`, `per_bridge` (by the
//!   names the challenge claims) and `total`. A request the person never
//!   approved (denied, expired, pushed out of the queue) counts for
//!   nothing here, so nobody can spend these but the person.
//!
//! Both are checked when a request arrives. Each ego has its own book: a
//! site exhausting one ego's quota learns nothing about the person's
//! other egos.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use super::source::{Sender, Source};
use crate::config::Quotas;

/// Keys (sources, senders, sites, bridges) tracked per ego and kind; past
/// this, the keys used least recently are forgotten (a forgotten key
/// starts afresh, which only errs towards serving).
const MAX_KEYS: usize = 4096;

/// A quota was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    /// Which quota: `source`, `peer`, `program`, `site`, `bridge` or
    /// `total`.
    pub(crate) which: &'static str,
    /// Seconds until a request would be admitted again.
    pub(crate) retry_after: u64,
}

/// The request times inside one window, oldest first.
#[derive(Debug, Default)]
struct Window {
    hits: VecDeque<u64>,
}

impl Window {
    fn prune(&mut self, now: u64, span: u64) {
        while self
            .hits
            .front()
            .is_some_and(|&t| t.saturating_add(span) <= now)
        {
            self.hits.pop_front();
        }
    }

    /// Whether one more hit fits, after forgetting hits older than `span`.
    fn check(
        &mut self,
        now: u64,
        span: u64,
        limit: u32,
        which: &'static str,
    ) -> Result<(), Exceeded> {
        self.prune(now, span);
        if self.hits.len() < limit as usize {
            return Ok(());
        }
        let oldest = self.hits.front().copied().unwrap_or(now);
        Err(Exceeded {
            which,
            retry_after: oldest.saturating_add(span).saturating_sub(now).max(1),
        })
    }

    fn hit(&mut self, now: u64, limit: u32) {
        self.hits.push_back(now);
        // A window never needs more than its limit of hits.
        while self.hits.len() > limit as usize {
            self.hits.pop_front();
        }
    }

    fn last(&self) -> u64 {
        self.hits.back().copied().unwrap_or(0)
    }
}

/// The windows of one key kind.
#[derive(Debug)]
struct Keyed<K> {
    windows: HashMap<K, Window>,
}

impl<K: Eq + Hash + Clone> Keyed<K> {
    fn new() -> Self {
        Self {
            windows: HashMap::new(),
        }
    }

    /// Whether one more hit of `key` fits.
    fn check(
        &mut self,
        key: &K,
        now: u64,
        span: u64,
        limit: u32,
        which: &'static str,
    ) -> Result<(), Exceeded> {
        match self.windows.get_mut(key) {
            Some(w) => w.check(now, span, limit, which),
            None if limit == 0 => Err(Exceeded {
                which,
                retry_after: span,
            }),
            None => Ok(()),
        }
    }

    /// Counts a hit of `key`.
    fn hit(&mut self, key: &K, now: u64, span: u64, limit: u32) {
        if !self.windows.contains_key(key) && self.windows.len() >= MAX_KEYS {
            self.forget(now, span);
        }
        self.windows.entry(key.clone()).or_default().hit(now, limit);
    }

    /// Drops idle keys, then the eighth used least recently.
    fn forget(&mut self, now: u64, span: u64) {
        self.windows.retain(|_, w| {
            w.prune(now, span);
            !w.hits.is_empty()
        });
        if self.windows.len() < MAX_KEYS {
            return;
        }
        let mut lasts: Vec<u64> = self.windows.values().map(Window::last).collect();
        lasts.sort_unstable();
        let cut = lasts.get(MAX_KEYS / 8).copied().unwrap_or(u64::MAX);
        self.windows.retain(|_, w| w.last() > cut);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows.len()
    }
}

/// One ego's quotas.
#[derive(Debug)]
pub(crate) struct QuotaBook {
    sources: Keyed<Source>,
    senders: Keyed<Sender>,
    programs: Keyed<String>,
    sites: Keyed<(String, String)>,
    bridges: Keyed<String>,
    total: Window,
}

impl QuotaBook {
    pub(crate) fn new() -> Self {
        Self {
            sources: Keyed::new(),
            senders: Keyed::new(),
            programs: Keyed::new(),
            sites: Keyed::new(),
            bridges: Keyed::new(),
            total: Window::default(),
        }
    }

    /// Admits a login request from `source` for `client_id` at `issuer`,
    /// counting it against the source and its sender, or says which quota
    /// it exceeds (and counts nothing).
    pub(crate) fn admit_login(
        &mut self,
        source: &Source,
        issuer: &str,
        client_id: &str,
        now: u64,
        q: &Quotas,
    ) -> Result<(), Exceeded> {
        let site = (issuer.to_string(), client_id.to_string());
        let bridge = issuer.to_string();
        self.total
            .check(now, q.total_window_secs, q.total, "total")?;
        self.sites
            .check(&site, now, q.site_window_secs, q.per_site, "site")?;
        self.bridges
            .check(&bridge, now, q.bridge_window_secs, q.per_bridge, "bridge")?;
        self.senders
            .check(&source.sender, now, q.peer_window_secs, q.per_peer, "peer")?;
        self.sources
            .check(source, now, q.source_window_secs, q.per_source, "source")?;
        self.senders
            .hit(&source.sender, now, q.peer_window_secs, q.per_peer);
        self.sources
            .hit(source, now, q.source_window_secs, q.per_source);
        Ok(())
    }

    /// The person (or a policy) approved a login for `client_id` at
    /// `issuer`: it counts against the person's quotas.
    pub(crate) fn approved_login(&mut self, issuer: &str, client_id: &str, now: u64, q: &Quotas) {
        let site = (issuer.to_string(), client_id.to_string());
        self.sites.hit(&site, now, q.site_window_secs, q.per_site);
        self.bridges
            .hit(&issuer.to_string(), now, q.bridge_window_secs, q.per_bridge);
        self.total.hit(now, q.total);
    }

    /// Admits a local signing request from `program`.
    pub(crate) fn admit_local(
        &mut self,
        program: &str,
        now: u64,
        q: &Quotas,
    ) -> Result<(), Exceeded> {
        let key = program.to_string();
        self.total
            .check(now, q.total_window_secs, q.total, "total")?;
        self.programs
            .check(&key, now, q.program_window_secs, q.per_program, "program")?;
        self.programs
            .hit(&key, now, q.program_window_secs, q.per_program);
        Ok(())
    }

    /// The person approved a local request.
    pub(crate) fn approved_local(&mut self, now: u64, q: &Quotas) {
        self.total.hit(now, q.total);
    }

    /// Keys tracked (for tests of the bound).
    #[cfg(test)]
    fn keys(&self) -> usize {
        self.sources.len()
            + self.senders.len()
            + self.programs.len()
            + self.sites.len()
            + self.bridges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> cyrcles_p2p::PeerId {
        cyrcles_p2p::Keypair::ed25519_from_bytes([n; 32])
            .unwrap()
            .public()
            .to_peer_id()
    }

    fn from(n: u8, ip: &str) -> Source {
        Source::login(peer(n), Some(ip))
    }

    /// Admits and approves a login.
    fn login(b: &mut QuotaBook, s: &Source, issuer: &str, client: &str, now: u64) {
        let q = Quotas::default();
        b.admit_login(s, issuer, client, now, &q).unwrap();
        b.approved_login(issuer, client, now, &q);
    }

    #[test]
    fn per_site_quota_counts_approvals_and_has_its_window() {
        let q = Quotas::default();
        let mut b = QuotaBook::new();
        let me = from(1, "203.0.113.7");
        for i in 0..5 {
            login(&mut b, &me, "https://b", "shop", 1000 + i);
        }
        let e = b
            .admit_login(&me, "https://b", "shop", 1010, &q)
            .unwrap_err();
        assert_eq!(e.which, "site");
        assert_eq!(e.retry_after, 590);
        // Another site at the same bridge is still admitted.
        b.admit_login(&me, "https://b", "forum", 1010, &q).unwrap();
        // Once the window has passed, the first site is admitted again.
        b.admit_login(&me, "https://b", "shop", 1600, &q).unwrap();
    }

    #[test]
    fn bridge_and_total_quotas_count_approvals() {
        let q = Quotas::default();
        let mut b = QuotaBook::new();
        for i in 0..10u64 {
            let s = from(1, &format!("203.0.113.{i}"));
            login(&mut b, &s, "https://b", &format!("site{}", i % 3), 100 + i);
        }
        let s = from(1, "198.51.100.1");
        assert_eq!(
            b.admit_login(&s, "https://b", "site9", 120, &q)
                .unwrap_err()
                .which,
            "bridge"
        );
        for i in 0..10u64 {
            let s = from(u8::try_from(i).unwrap() + 2, "192.0.2.1");
            login(&mut b, &s, &format!("https://b{i}"), "x", 130 + i);
        }
        assert_eq!(
            b.admit_login(&from(30, "192.0.2.1"), "https://other", "x", 200, &q)
                .unwrap_err()
                .which,
            "total"
        );
        // Refused requests were not counted: an hour after the first, the
        // total admits again.
        b.admit_login(&from(30, "192.0.2.1"), "https://other", "x", 100 + 3600, &q)
            .unwrap();
    }

    #[test]
    fn a_flood_spends_its_own_source_and_peer_never_the_persons_quotas() {
        let q = Quotas::default();
        let mut b = QuotaBook::new();
        // A node floods with the person's site, from one network, then
        // from many: it is refused, first per source, then per peer.
        let evil = from(9, "198.51.100.1");
        let mut admitted = 0u32;
        for t in 0..100 {
            if b.admit_login(&evil, "https://b", "shop", t, &q).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, q.per_source);
        let e = b
            .admit_login(&evil, "https://b", "shop", 100, &q)
            .unwrap_err();
        assert_eq!(e.which, "source");
        let mut spread = 0u32;
        for i in 0..=255u8 {
            let s = from(9, &format!("192.0.{i}.1"));
            if b.admit_login(&s, "https://b", "shop", 200, &q).is_ok() {
                spread += 1;
            }
        }
        assert_eq!(spread + admitted, q.per_peer);
        let e = b
            .admit_login(&from(9, "233.252.0.1"), "https://b", "shop", 201, &q)
            .unwrap_err();
        assert_eq!(e.which, "peer");
        // None of it was approved: the person's logins through the real
        // bridge, and the same site, are admitted as many times as ever.
        let real = from(1, "203.0.113.7");
        for t in 0..5 {
            login(&mut b, &real, "https://b", "shop", 300 + t);
        }
        // The same bridge's other browsers have their own allowance.
        b.admit_login(&from(1, "198.51.100.1"), "https://b", "forum", 400, &q)
            .unwrap();
    }

    #[test]
    fn programs_have_their_own_quota() {
        let q = Quotas::default();
        let mut b = QuotaBook::new();
        for i in 0..5 {
            b.admit_local("/usr/bin/tool", i, &q).unwrap();
        }
        assert_eq!(
            b.admit_local("/usr/bin/tool", 6, &q).unwrap_err().which,
            "program"
        );
        b.admit_local("/usr/bin/other", 6, &q).unwrap();
    }

    #[test]
    fn keys_are_bounded_and_the_least_recent_forgotten() {
        let q = Quotas {
            per_peer: u32::MAX,
            ..Quotas::default()
        };
        let mut b = QuotaBook::new();
        let real = from(1, "203.0.113.7");
        b.admit_login(&real, "https://b", "shop", 0, &q).unwrap();
        // A flood of made-up sources never refuses a new one, and the
        // book stays bounded.
        for i in 0..u32::try_from(3 * MAX_KEYS).unwrap() {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8));
            let s = from(9, &ip.to_string());
            b.admit_login(&s, "https://b", "shop", 1 + u64::from(i), &q)
                .unwrap();
        }
        assert!(b.keys() <= 2 * MAX_KEYS + 2, "{}", b.keys());
        b.admit_login(&from(2, "192.0.2.1"), "https://b", "shop", 1 << 20, &q)
            .unwrap();
    }
}
