//! What an attacker sent and what came back, and the addresses it sends
//! from.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Default)]
pub struct Tally {
    sent: AtomicU64,
    /// Outcomes of what was sent (the shares are of these).
    outcomes: Mutex<BTreeMap<String, u64>>,
    /// Other things seen (connections closed, …), counted apart.
    events: Mutex<BTreeMap<String, u64>>,
    notes: Mutex<Vec<String>>,
}

impl Tally {
    /// One request sent and its outcome.
    pub fn request(&self, outcome: impl Into<String>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.got(outcome);
    }

    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn got(&self, outcome: impl Into<String>) {
        *self
            .outcomes
            .lock()
            .unwrap()
            .entry(outcome.into())
            .or_default() += 1;
    }

    pub fn event(&self, what: impl Into<String>) {
        *self.events.lock().unwrap().entry(what.into()).or_default() += 1;
    }

    pub fn note(&self, s: impl Into<String>) {
        self.notes.lock().unwrap().push(s.into());
    }

    pub fn sent_count(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Requests per second over `secs`.
    pub fn rate(&self, secs: f64) -> f64 {
        self.sent_count() as f64 / secs.max(0.001)
    }

    /// The outcomes, most frequent first, each with its share.
    pub fn shares(&self) -> String {
        let o = self.outcomes.lock().unwrap();
        let total: u64 = o.values().sum();
        let mut v: Vec<(&String, &u64)> = o.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        v.iter()
            .map(|(k, n)| format!("{k} {:.1} %", **n as f64 * 100.0 / total.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn lines(&self, secs: f64) -> Vec<String> {
        let mut out = vec![format!(
            "sent {} ({:.0}/s); outcomes: {}",
            self.sent_count(),
            self.rate(secs),
            self.shares()
        )];
        let ev = self.events.lock().unwrap();
        if !ev.is_empty() {
            out.push(format!(
                "also seen: {}",
                ev.iter()
                    .map(|(k, n)| format!("{k} ×{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.extend(self.notes.lock().unwrap().iter().cloned());
        out
    }
}

/// The `i`-th address of attacker group `net`: 127.`net + i/250`.`1 + i%250`.1,
/// each in its own /24 (whatever prefix the bridge keys its limits by, up
/// to /24, every address counts apart). The legitimate people use
/// 127.0.`k`.1.
pub fn attacker_ip(net: u8, i: usize) -> Ipv4Addr {
    let hi = u8::try_from(i / 250).unwrap();
    let lo = u8::try_from(1 + i % 250).unwrap();
    Ipv4Addr::new(127, net.checked_add(hi).unwrap(), lo, 1)
}

pub fn ip(net: u8, i: usize) -> IpAddr {
    IpAddr::V4(attacker_ip(net, i))
}

/// Runs `op` again and again until `deadline` (an operation still running
/// then is dropped, uncounted).
pub async fn until<F, Fut>(deadline: Instant, mut op: F)
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut n = 0;
    while Instant::now() < deadline {
        if tokio::time::timeout_at(deadline.into(), op(n))
            .await
            .is_err()
        {
            break;
        }
        n += 1;
    }
}

/// A string of `len` URL- and text-safe characters, random.
pub fn filler(len: usize) -> String {
    let mut s = String::with_capacity(len + 43);
    while s.len() < len {
        s.push_str(&cyrcles_bridge::random::token());
    }
    s.truncate(len);
    s
}
