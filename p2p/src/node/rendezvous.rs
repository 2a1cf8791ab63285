//! Rendezvous through Kademlia provider records: a node announces itself
//! under a 32-byte key (an invite's rendezvous key, derived from its
//! nameplate and first word) and another finds it.
//!
//! Provider records hold no user data, only "peer P can be reached for key
//! K", and expire after [`crate::config::Timers::rendezvous_ttl`]. With
//! `StoreInserts::FilterBoth`, inbound announcements reach us unstored;
//! they are rate-limited per peer like PUTs and stored only under 32-byte
//! keys, and only for the announcing peer itself (libp2p drops a record
//! whose provider is not the sender).
//!
//! An agent announces without addresses (it has no confirmed external
//! address); the storing node fills in the addresses the agent reported
//! through identify on its connection.
//!
//! A lookup reports providers by peer id only; their addresses live in the
//! query while it runs. Each provider is therefore dialled the moment it
//! is found, so that the connection (and identify, which feeds the routing
//! table) outlives the query.

use std::collections::HashSet;
use std::time::Instant;

use super::Admit;

use libp2p::PeerId;
use libp2p::kad::store::RecordStore;
use libp2p::kad::{self, GetProvidersOk, ProviderRecord, RecordKey};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};

use super::EventLoop;
use crate::handle::{Cause, Reply, RequestError};
use crate::metrics::Rejection;

/// An announcement kept for another peer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Announcement {
    expires: Instant,
}

/// A provider lookup in progress.
pub(crate) struct FindState {
    reply: Reply<Vec<PeerId>>,
    found: HashSet<PeerId>,
}

/// An announcement in progress.
pub(crate) struct ProvideState {
    reply: Reply<Result<usize, RequestError>>,
}

impl EventLoop {
    pub(crate) fn start_providing(
        &mut self,
        key: [u8; 32],
        reply: Reply<Result<usize, RequestError>>,
    ) {
        match self
            .swarm
            .behaviour_mut()
            .kad
            .start_providing(RecordKey::new(&key))
        {
            Ok(id) => {
                self.provides.insert(id, ProvideState { reply });
            }
            Err(e) => {
                let _ = reply.send(Err(RequestError::Unreachable(Cause::caused_by(
                    format!("cannot announce: {e:?}"),
                    e,
                ))));
            }
        }
    }

    pub(crate) fn stop_providing(&mut self, key: [u8; 32]) {
        self.swarm
            .behaviour_mut()
            .kad
            .stop_providing(&RecordKey::new(&key));
    }

    pub(crate) fn find_providers(&mut self, key: [u8; 32], reply: Reply<Vec<PeerId>>) {
        let id = self
            .swarm
            .behaviour_mut()
            .kad
            .get_providers(RecordKey::new(&key));
        self.finds.insert(
            id,
            FindState {
                reply,
                found: HashSet::new(),
            },
        );
    }

    /// An announcement another peer asks us to keep.
    pub(crate) fn inbound_provider(&mut self, source: PeerId, mut record: ProviderRecord) {
        if !self.put_limiter.allow(&source, self.clock.instant()) {
            self.metrics.rejected(Rejection::RateLimited);
            return;
        }
        if record.key.as_ref().len() != 32 {
            self.metrics.rejected(Rejection::BadKey);
            return;
        }
        // An agent has no confirmed external address, so its announcement
        // comes without addresses, and it is not in the routing table (not
        // a DHT server): keep the addresses it reported on this connection
        // (identify), relay circuits included, so finders can reach it.
        if record.addresses.is_empty()
            && let Some(addrs) = self.identified.get(&source)
        {
            record.addresses.clone_from(addrs);
        }
        // Each announcement kept for another peer is charged to it and its
        // network, like records (`quota.rs`), and forgotten at its expiry.
        let slot = (record.key.clone(), source);
        let expires =
            crate::deadline::after_secs(self.clock.instant(), self.timers.rendezvous_ttl.as_secs());
        record.expires = Some(record.expires.map_or(expires, |e| e.min(expires)));
        if !self.providers.holds(&slot) {
            let group = self.group_of(&source, None);
            match self.providers.admit(
                &source,
                &group,
                self.providers.len(),
                crate::behaviour::MAX_PROVIDED_KEYS,
            ) {
                Admit::Store => {}
                Admit::Evict(victim) => self.drop_announcement(&victim),
                Admit::OverQuota => {
                    self.metrics.rejected(Rejection::Quota);
                    return;
                }
                Admit::Full => {
                    self.metrics.rejected(Rejection::StoreFull);
                    return;
                }
            }
            let store = self.swarm.behaviour_mut().kad.store_mut();
            if store.add_provider(record).is_err()
                || !store
                    .providers(&slot.0)
                    .iter()
                    .any(|p| p.provider == source)
            {
                // The key's list is full (first come) or too many keys.
                self.metrics.rejected(Rejection::StoreFull);
                return;
            }
            self.providers.charge(slot.clone(), source, group);
        } else if self
            .swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .add_provider(record)
            .is_err()
        {
            self.metrics.rejected(Rejection::StoreFull);
            return;
        }
        self.announcements.insert(slot, Announcement { expires });
    }

    fn drop_announcement(&mut self, slot: &(RecordKey, PeerId)) {
        self.swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .remove_provider(&slot.0, &slot.1);
        self.providers.release(slot);
        self.announcements.remove(slot);
    }

    /// Forgets announcements past their lifetime (libp2p itself drops
    /// them only when their key is asked for).
    pub(crate) fn sweep_announcements(&mut self, now: Instant) {
        let expired: Vec<(RecordKey, PeerId)> = self
            .announcements
            .iter()
            .filter(|(_, a)| a.expires <= now)
            .map(|(slot, _)| slot.clone())
            .collect();
        for slot in &expired {
            self.drop_announcement(slot);
        }
    }

    pub(crate) fn on_provide_result(
        &mut self,
        id: kad::QueryId,
        result: kad::AddProviderResult,
        stats: &kad::QueryStats,
    ) {
        if let Some(state) = self.provides.remove(&id) {
            let outcome = match result {
                Ok(_) => Ok(usize::try_from(stats.num_successes()).unwrap_or(0)),
                Err(e) => Err(RequestError::Unreachable(Cause::caused_by(
                    format!("no peer took the announcement: {e:?}"),
                    e,
                ))),
            };
            let _ = state.reply.send(outcome);
        }
    }

    pub(crate) fn on_providers(
        &mut self,
        id: kad::QueryId,
        result: kad::GetProvidersResult,
        last: bool,
    ) {
        let local = *self.swarm.local_peer_id();
        let Some(state) = self.finds.get_mut(&id) else {
            return;
        };
        if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = result {
            for p in providers {
                if p != local && state.found.insert(p) {
                    // While the query runs, libp2p still knows the
                    // addresses the provider came with.
                    let _ = self.swarm.dial(
                        DialOpts::peer_id(p)
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build(),
                    );
                }
            }
        }
        if last && let Some(state) = self.finds.remove(&id) {
            let _ = state.reply.send(state.found.into_iter().collect());
        }
    }
}
