//! Sliding-window quotas on login and signing requests, per ego.
//!
//! Each ego has its own book: a site exhausting one ego's quota learns
//! nothing about the person's other egos.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::config::Quotas;

/// Keys (sites, bridges, programs) tracked per ego before idle ones are
/// forgotten; past this, new keys are refused until old ones age out.
const MAX_KEYS: usize = 4096;

/// A quota was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    /// Which quota: `site`, `bridge`, `program` or `total`.
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

    fn hit(&mut self, now: u64) {
        self.hits.push_back(now);
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

    fn window(
        &mut self,
        key: &K,
        now: u64,
        span: u64,
        which: &'static str,
    ) -> Result<&mut Window, Exceeded> {
        if !self.windows.contains_key(key) && self.windows.len() >= MAX_KEYS {
            self.windows.retain(|_, w| {
                w.prune(now, span);
                !w.hits.is_empty()
            });
            if self.windows.len() >= MAX_KEYS {
                return Err(Exceeded {
                    which,
                    retry_after: span,
                });
            }
        }
        Ok(self.windows.entry(key.clone()).or_default())
    }
}

/// One ego's quotas.
#[derive(Debug)]
pub(crate) struct QuotaBook {
    sites: Keyed<(String, String)>,
    bridges: Keyed<String>,
    programs: Keyed<String>,
    total: Window,
}

impl QuotaBook {
    pub(crate) fn new() -> Self {
        Self {
            sites: Keyed::new(),
            bridges: Keyed::new(),
            programs: Keyed::new(),
            total: Window::default(),
        }
    }

    /// Admits a login request from `client_id` at `issuer`, counting it,
    /// or says which quota it exceeds (and counts nothing).
    pub(crate) fn admit_login(
        &mut self,
        issuer: &str,
        client_id: &str,
        now: u64,
        q: &Quotas,
    ) -> Result<(), Exceeded> {
        self.total
            .check(now, q.total_window_secs, q.total, "total")?;
        let site = (issuer.to_string(), client_id.to_string());
        self.sites
            .window(&site, now, q.site_window_secs, "site")?
            .check(now, q.site_window_secs, q.per_site, "site")?;
        self.bridges
            .window(&issuer.to_string(), now, q.bridge_window_secs, "bridge")?
            .check(now, q.bridge_window_secs, q.per_bridge, "bridge")?;
        // Every check passed: count the request everywhere.
        self.total.hit(now);
        self.sites
            .window(&site, now, q.site_window_secs, "site")?
            .hit(now);
        self.bridges
            .window(&issuer.to_string(), now, q.bridge_window_secs, "bridge")?
            .hit(now);
        Ok(())
    }

    /// Admits a local signing request from `program`.
    pub(crate) fn admit_local(
        &mut self,
        program: &str,
        now: u64,
        q: &Quotas,
    ) -> Result<(), Exceeded> {
        self.total
            .check(now, q.total_window_secs, q.total, "total")?;
        let key = program.to_string();
        let w = self
            .programs
            .window(&key, now, q.program_window_secs, "program")?;
        w.check(now, q.program_window_secs, q.per_program, "program")?;
        w.hit(now);
        self.total.hit(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_site_quota_and_its_window() {
        let q = Quotas::default();
        let mut b = QuotaBook::new();
        for i in 0..5 {
            b.admit_login("https://b", "shop", 1000 + i, &q).unwrap();
        }
        let e = b.admit_login("https://b", "shop", 1010, &q).unwrap_err();
        assert_eq!(e.which, "site");
        assert_eq!(e.retry_after, 590);
        // Another site at the same bridge is still admitted.
        b.admit_login("https://b", "forum", 1010, &q).unwrap();
        // Once the window has passed, the first site is admitted again.
        b.admit_login("https://b", "shop", 1600, &q).unwrap();
    }

    #[test]
    fn bridge_and_total_quotas() {
        let q = Quotas::default();
        let mut b = QuotaBook::new();
        for i in 0..10u64 {
            b.admit_login("https://b", &format!("site{}", i % 3), 100 + i, &q)
                .unwrap();
        }
        assert_eq!(
            b.admit_login("https://b", "site9", 120, &q)
                .unwrap_err()
                .which,
            "bridge"
        );
        for i in 0..10u64 {
            b.admit_login(&format!("https://b{i}"), "x", 130 + i, &q)
                .unwrap();
        }
        assert_eq!(
            b.admit_login("https://other", "x", 200, &q)
                .unwrap_err()
                .which,
            "total"
        );
        // Refused requests were not counted: an hour after the first, the
        // total admits again.
        b.admit_login("https://other", "x", 100 + 3600, &q).unwrap();
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
}
