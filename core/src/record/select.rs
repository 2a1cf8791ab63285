//! Choosing between two valid records of one ego, and spotting duplicity.
//!
//! In order:
//! 1. If neither chain is a prefix of the other, the circle signed two
//!    histories: that is duplicity, never resolved by picking one.
//! 2. The longer chain wins.
//! 3. On the same chain, the higher certificate epoch wins, whatever the
//!    seqs: a certificate the members' humans approved (a recovery) beats
//!    every certificate signed on a device's word before it.
//! 4. In the same epoch, the higher certificate seq wins; two different
//!    certificates with the same epoch and seq are duplicity too (only the
//!    circle key can sign certificates).
//! 5. Under the same certificate, the higher endpoints seq wins; on a tie
//!    the record already held is kept.
//!
//! Links and certificates are compared by their bodies: FROST signatures
//! are randomized, so one body may carry several valid signatures.

use thiserror::Error;

use crate::id::EgoId;

use super::verify::VerifiedEgo;

/// Which of two valid records to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The record already held is at least as good.
    KeepCurrent,
    /// The candidate is better.
    TakeCandidate,
}

/// What kind of duplicity two records show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicityKind {
    /// The chains differ at this link (1-based); both are validly signed.
    DivergentChains {
        /// First link that differs.
        at_link: u64,
    },
    /// Two different certificates with one epoch and seq under one circle
    /// key.
    ConflictingCertificates {
        /// The seq both carry.
        seq: u64,
    },
}

/// Proof that an ego's circle signed two incompatible statements: both
/// records, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The ego.
    pub ego_id: EgoId,
    /// What conflicts.
    pub kind: DuplicityKind,
    /// The record seen first (the one to keep).
    pub first: Vec<u8>,
    /// The conflicting record.
    pub second: Vec<u8>,
}

/// Why two records cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Conflict {
    /// They belong to different egos (a caller bug).
    #[error("the records belong to different egos")]
    DifferentEgos,
    /// The circle is compromised; keep the first, report both.
    #[error("duplicity: {:?}", .0.kind)]
    Duplicity(Box<Evidence>),
}

/// Compares a candidate with the record held; see the module doc.
pub fn select(current: &VerifiedEgo, candidate: &VerifiedEgo) -> Result<Choice, Conflict> {
    if current.ego_id() != candidate.ego_id() {
        return Err(Conflict::DifferentEgos);
    }
    let (a, b) = (current.rank(), candidate.rank());
    let common = a.chain_len.min(b.chain_len);
    if current.chain_digest(common) != candidate.chain_digest(common) {
        let at_link = (1..=common)
            .find(|&i| current.chain_digest(i) != candidate.chain_digest(i))
            .unwrap_or(common);
        return Err(duplicity(
            current,
            candidate,
            DuplicityKind::DivergentChains { at_link },
        ));
    }
    if a.chain_len != b.chain_len {
        return Ok(pick(b.chain_len > a.chain_len));
    }
    if a.epoch != b.epoch {
        return Ok(pick(b.epoch > a.epoch));
    }
    if a.cert_seq != b.cert_seq {
        return Ok(pick(b.cert_seq > a.cert_seq));
    }
    if current.cert_digest() != candidate.cert_digest() {
        return Err(duplicity(
            current,
            candidate,
            DuplicityKind::ConflictingCertificates { seq: a.cert_seq },
        ));
    }
    Ok(pick(b.endpoints_seq > a.endpoints_seq))
}

fn pick(candidate_wins: bool) -> Choice {
    if candidate_wins {
        Choice::TakeCandidate
    } else {
        Choice::KeepCurrent
    }
}

fn duplicity(first: &VerifiedEgo, second: &VerifiedEgo, kind: DuplicityKind) -> Conflict {
    Conflict::Duplicity(Box::new(Evidence {
        ego_id: first.ego_id(),
        kind,
        first: first.bytes().to_vec(),
        second: second.bytes().to_vec(),
    }))
}
