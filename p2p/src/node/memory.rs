//! The anti-rollback memory, in two parts that cannot flush each other.
//!
//! The node remembers the best record it accepted for each ego (protocol
//! section 7). Entries come from two places: records other peers put here
//! (anyone can make valid throwaway egos and send them), and records this
//! node looked up or published for its own program (the egos the bridge or
//! the agent cares about). Each part is an LRU of its own size, so a flood
//! of throwaway records evicts only other peers' entries, never the ones
//! the node's program relies on. A candidate must pass both parts.

use cyrcles_core::record::{Freshness, RollbackError, RollbackMemory, VerifiedEgo};

/// Both parts.
#[derive(Debug)]
pub(crate) struct Memory {
    local: RollbackMemory,
    network: RollbackMemory,
}

impl Memory {
    pub(crate) fn new(local: usize, network: usize) -> Self {
        Self {
            local: RollbackMemory::new(local),
            network: RollbackMemory::new(network),
        }
    }

    /// Whether `candidate` is at least as good as what either part holds.
    pub(crate) fn check(&self, candidate: &VerifiedEgo) -> Result<(), RollbackError> {
        self.local.check(candidate)?;
        self.network.check(candidate)?;
        Ok(())
    }

    /// Remembers a record the node's own program looked up or published.
    pub(crate) fn accept_local(
        &mut self,
        candidate: &VerifiedEgo,
    ) -> Result<Freshness, RollbackError> {
        self.network.check(candidate)?;
        self.local.accept(candidate)
    }

    /// Remembers a record stored for another peer.
    pub(crate) fn accept_network(
        &mut self,
        candidate: &VerifiedEgo,
    ) -> Result<Freshness, RollbackError> {
        self.local.check(candidate)?;
        // Keep the program's own entry current too, when it has one.
        if self.local.get(&candidate.ego_id()).is_some() {
            let _ = self.local.accept(candidate);
        }
        self.network.accept(candidate)
    }

    /// Entries in each part.
    pub(crate) fn len(&self) -> (usize, usize) {
        (self.local.len(), self.network.len())
    }
}
