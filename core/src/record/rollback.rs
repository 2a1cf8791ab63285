//! The anti-rollback rule: a verifier remembers the best record it has seen
//! for each ego and never accepts less.
//!
//! [`BestSeen`] is the small summary remembered per ego (it can be stored,
//! as the bridge does); [`RollbackMemory`] keeps a bounded number of them in
//! memory, forgetting the least recently used ego first.

use thiserror::Error;

use crate::id::EgoId;
use crate::lru::Lru;

use super::select::DuplicityKind;
use super::verify::{Rank, VerifiedEgo};

/// What a verifier remembers of the best record of one ego.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BestSeen {
    /// Chain length, certificate seq and endpoints seq.
    pub rank: Rank,
    /// [`VerifiedEgo::chain_digest`] at `rank.chain_len`.
    pub chain_digest: [u8; 32],
    /// [`VerifiedEgo::cert_digest`].
    pub cert_digest: [u8; 32],
}

impl BestSeen {
    /// The summary of a verified record.
    pub fn of(v: &VerifiedEgo) -> Self {
        let rank = v.rank();
        Self {
            rank,
            chain_digest: v.chain_digest(rank.chain_len).unwrap_or_default(),
            cert_digest: v.cert_digest(),
        }
    }

    /// How `candidate` compares with what was seen.
    pub fn check(&self, candidate: &VerifiedEgo) -> Result<Freshness, RollbackError> {
        let r = candidate.rank();
        if r.chain_len < self.rank.chain_len {
            return Err(RollbackError::Stale {
                seen: self.rank,
                offered: r,
            });
        }
        if candidate.chain_digest(self.rank.chain_len) != Some(self.chain_digest) {
            return Err(RollbackError::Duplicity(DuplicityKind::DivergentChains {
                at_link: self.rank.chain_len,
            }));
        }
        if r.chain_len > self.rank.chain_len {
            return Ok(Freshness::Newer);
        }
        if r.epoch != self.rank.epoch {
            return if r.epoch > self.rank.epoch {
                Ok(Freshness::Newer)
            } else {
                Err(RollbackError::Stale {
                    seen: self.rank,
                    offered: r,
                })
            };
        }
        if r.cert_seq != self.rank.cert_seq {
            return if r.cert_seq > self.rank.cert_seq {
                Ok(Freshness::Newer)
            } else {
                Err(RollbackError::Stale {
                    seen: self.rank,
                    offered: r,
                })
            };
        }
        if candidate.cert_digest() != self.cert_digest {
            return Err(RollbackError::Duplicity(
                DuplicityKind::ConflictingCertificates { seq: r.cert_seq },
            ));
        }
        match r.endpoints_seq.cmp(&self.rank.endpoints_seq) {
            std::cmp::Ordering::Greater => Ok(Freshness::Newer),
            std::cmp::Ordering::Equal => Ok(Freshness::Same),
            std::cmp::Ordering::Less => Err(RollbackError::Stale {
                seen: self.rank,
                offered: r,
            }),
        }
    }
}

/// A record that passes the anti-rollback check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Better than anything seen before (or the first seen).
    Newer,
    /// The same rank as the best seen.
    Same,
}

/// Why a valid record is refused by the anti-rollback rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RollbackError {
    /// Older than a record already seen.
    #[error("stale record: seen {seen:?}, offered {offered:?}")]
    Stale {
        /// The best seen.
        seen: Rank,
        /// The offered record.
        offered: Rank,
    },
    /// Incompatible with a record already seen: the circle is compromised.
    #[error("duplicity: {0:?}")]
    Duplicity(DuplicityKind),
}

/// The best record seen per ego, for at most `capacity` egos.
#[derive(Debug)]
pub struct RollbackMemory {
    entries: Lru<EgoId, BestSeen>,
}

impl RollbackMemory {
    /// An empty memory for at most `capacity` egos (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Lru::new(capacity),
        }
    }

    /// Egos remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// What is remembered of `ego`.
    pub fn get(&self, ego: &EgoId) -> Option<&BestSeen> {
        self.entries.get(ego)
    }

    /// Checks `candidate` without remembering it.
    pub fn check(&self, candidate: &VerifiedEgo) -> Result<Freshness, RollbackError> {
        match self.get(&candidate.ego_id()) {
            Some(best) => best.check(candidate),
            None => Ok(Freshness::Newer),
        }
    }

    /// Checks `candidate` and, if it is newer, remembers it as the best.
    pub fn accept(&mut self, candidate: &VerifiedEgo) -> Result<Freshness, RollbackError> {
        let freshness = self.check(candidate)?;
        let ego = candidate.ego_id();
        match freshness {
            Freshness::Newer => self.remember(ego, BestSeen::of(candidate)),
            Freshness::Same => {
                self.entries.touch(&ego);
            }
        }
        Ok(freshness)
    }

    /// Sets what is remembered of `ego` (for example, loaded from storage).
    pub fn remember(&mut self, ego: EgoId, best: BestSeen) {
        self.entries.insert(ego, best);
    }
}
