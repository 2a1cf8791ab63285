//! How long the daemon takes to answer a login it approves by policy:
//! from the challenge reaching the daemon to the signed response handed
//! back to the network layer. The last [`KEEP`] samples are kept and
//! summarised in `cyrcles status`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::control::proto::LatencySummary;

/// Samples kept (a ring: the oldest goes first).
const KEEP: usize = 4096;

/// The most recent handling times.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    micros: VecDeque<u32>,
}

impl Samples {
    pub(crate) fn record(&mut self, d: Duration) {
        if self.micros.len() == KEEP {
            self.micros.pop_front();
        }
        self.micros
            .push_back(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }

    /// p50, p99 and max over the kept samples, `None` before the first.
    pub(crate) fn summary(&self) -> Option<LatencySummary> {
        let mut v: Vec<u32> = self.micros.iter().copied().collect();
        v.sort_unstable();
        let last = v.len().checked_sub(1)?;
        let at = |q: usize| v.get(last * q / 100).copied().unwrap_or_default();
        Some(LatencySummary {
            samples: v.len(),
            p50_us: at(50),
            p99_us: at(99),
            max_us: v.get(last).copied().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_and_forgets_the_oldest() {
        let mut s = Samples::default();
        assert_eq!(s.summary(), None);
        for us in 1..=100u64 {
            s.record(Duration::from_micros(us));
        }
        let sum = s.summary().unwrap();
        assert_eq!(
            (sum.samples, sum.p50_us, sum.p99_us, sum.max_us),
            (100, 50, 99, 100)
        );
        for _ in 0..KEEP {
            s.record(Duration::from_micros(7));
        }
        let sum = s.summary().unwrap();
        assert_eq!((sum.samples, sum.max_us), (KEEP, 7));
    }
}
