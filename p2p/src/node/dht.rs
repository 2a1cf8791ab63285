//! The validating DHT: inbound PUTs, lookups with entry correction, and
//! publication.
//!
//! Kademlia runs with `StoreInserts::FilterBoth`: libp2p acknowledges an
//! inbound PUT before we see it, so the acknowledgement means nothing; the
//! record is stored only if it verifies, passes the anti-rollback memory and
//! beats what is stored. Lookups return every peer's answer unverified;
//! each is verified here and the best one wins.

use std::collections::HashSet;
use std::time::Instant;

use cyrcles_core::record::{
    Choice, Conflict, DuplicityKind, EgoRecord, MAX_RECORD_SIZE, RollbackError, VerifiedEgo,
    select, verify_cached,
};
use cyrcles_core::{DhtKey, EgoId};
use libp2p::PeerId;
use libp2p::kad::store::RecordStore;
use libp2p::kad::{self, GetRecordOk, PeerRecord, QueryResult, Quorum, Record, RecordKey};
use libp2p::swarm::ConnectionId;

use super::{Admit, EventLoop, elapsed};
use crate::deadline::record_expiry;
use crate::events::NodeEvent;
use crate::handle::{Found, GetError, PublishError, Published, Reply};
use crate::metrics::Rejection;

/// A lookup in progress.
pub(crate) struct GetState {
    key: DhtKey,
    reply: Reply<Result<Found, GetError>>,
    started: Instant,
    best: Option<VerifiedEgo>,
    /// Peers that answered with the best record (`None`: the local store).
    best_peers: HashSet<Option<PeerId>>,
    /// Peers to send the best record to once the lookup ends.
    correct: HashSet<PeerId>,
    rejected: usize,
    duplicity: Option<DuplicityKind>,
}

/// A publication in progress.
pub(crate) struct PutState {
    reply: Option<Reply<Result<Published, PublishError>>>,
    started: Instant,
}

fn dht_key(key: &RecordKey) -> Option<DhtKey> {
    <[u8; 32]>::try_from(key.as_ref())
        .ok()
        .map(DhtKey::from_bytes)
}

fn record_key(key: &DhtKey) -> RecordKey {
    RecordKey::new(key.as_bytes())
}

impl EventLoop {
    pub(crate) fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        connection,
                        record: Some(record),
                    },
            } => self.inbound_put(source, connection, record),
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::AddProvider {
                        record: Some(record),
                    },
            } => {
                let source = record.provider;
                self.inbound_provider(source, record);
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                stats,
                step,
            } => match result {
                QueryResult::StartProviding(r) => self.on_provide_result(id, r, &stats),
                QueryResult::GetProviders(r) => self.on_providers(id, r, step.last),
                QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(PeerRecord {
                    peer,
                    record,
                }))) => {
                    self.answer(id, peer, record);
                }
                QueryResult::GetRecord(Ok(GetRecordOk::FinishedWithNoAdditionalRecord {
                    cache_candidates,
                })) => self.finish_get(id, cache_candidates.into_values().collect(), false),
                QueryResult::GetRecord(Err(kad::GetRecordError::NotFound { .. })) => {
                    self.finish_get(id, Vec::new(), false);
                }
                QueryResult::GetRecord(Err(_)) => self.finish_get(id, Vec::new(), true),
                QueryResult::PutRecord(result) => {
                    if let Some(mut state) = self.puts.remove(&id) {
                        let outcome = if result.is_ok() { "ok" } else { "no_quorum" };
                        self.metrics
                            .put_done(outcome, elapsed(&self.clock, state.started));
                        if let Some(reply) = state.reply.take() {
                            let stored_at = usize::try_from(stats.num_successes()).unwrap_or(0);
                            let _ = reply.send(Ok(Published { stored_at }));
                        }
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// A record a peer asks us to store.
    fn inbound_put(&mut self, source: PeerId, connection: ConnectionId, mut record: Record) {
        if !self.put_limiter.allow(&source, self.clock.instant()) {
            self.metrics.rejected(Rejection::RateLimited);
            return;
        }
        if record.value.len() > MAX_RECORD_SIZE {
            self.metrics.rejected(Rejection::Oversized);
            return;
        }
        let Some(key) = dht_key(&record.key) else {
            self.metrics.rejected(Rejection::BadKey);
            return;
        };
        let now = self.now();
        let candidate = match verify_cached(&record.value, &key, now, &mut self.sigs) {
            Ok(v) => v,
            Err(e) => {
                self.metrics.rejected(Rejection::Invalid(e.code()));
                return;
            }
        };
        if let Err(e) = self.memory.check(&candidate) {
            self.metrics.rejected(Rejection::from_rollback(&e));
            self.report_rollback_duplicity(e, &candidate);
            return;
        }
        let current = self
            .swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .get(&record.key)
            .map(|r| r.value.clone());
        let replaces = current.is_some();
        let mut held_epoch = 0;
        if let Some(current) = current
            && let Ok(held) = verify_cached(&current, &key, now, &mut self.sigs)
        {
            held_epoch = held.rank().epoch;
            match select(&held, &candidate) {
                Ok(Choice::TakeCandidate) => {}
                Ok(Choice::KeepCurrent) => {
                    if held.rank() != candidate.rank() {
                        self.metrics.rejected(Rejection::Stale);
                    }
                    return;
                }
                Err(Conflict::Duplicity(ev)) => {
                    self.metrics.rejected(Rejection::Duplicity);
                    let _ = self.emit(NodeEvent::Duplicity {
                        ego_id: ev.ego_id,
                        kind: ev.kind,
                        first: Some(ev.first),
                        second: ev.second,
                    });
                    return;
                }
                Err(Conflict::DifferentEgos) => return,
            }
        }
        // A newer version of a stored record takes the slot it had; a new
        // ego takes a slot charged to its sender (`quota.rs`).
        let charge = if replaces {
            None
        } else {
            let group = self.group_of(&source, Some(connection));
            let stored = self.records.len().saturating_add(self.own.len());
            match self
                .records
                .admit(&source, &group, stored, self.max_records)
            {
                Admit::Store => Some(group),
                Admit::Evict(victim) => {
                    self.swarm.behaviour_mut().kad.store_mut().remove(&victim);
                    self.records.release(&victim);
                    self.metrics.evicted();
                    Some(group)
                }
                Admit::OverQuota => {
                    self.metrics.rejected(Rejection::Quota);
                    return;
                }
                Admit::Full => {
                    self.metrics.rejected(Rejection::StoreFull);
                    return;
                }
            }
        };
        let cert_end = record_expiry(candidate.cert().not_after, now, self.clock.instant());
        record.expires = Some(record.expires.map_or(cert_end, |e| e.min(cert_end)));
        let stored_key = record.key.clone();
        match self.swarm.behaviour_mut().kad.store_mut().put(record) {
            Ok(()) => {
                if let Some(group) = charge {
                    self.records.charge(stored_key, source, group);
                }
                let _ = self.memory.accept_network(&candidate);
                self.metrics.stored();
                if candidate.rank().epoch > held_epoch {
                    let _ = self.emit(NodeEvent::Recovered {
                        ego_id: candidate.ego_id(),
                        record: candidate.bytes().to_vec(),
                    });
                }
            }
            Err(_) => self.metrics.rejected(Rejection::StoreFull),
        }
    }

    /// Reports a record the anti-rollback memory finds incompatible with
    /// the best one seen (whose bytes this node may no longer hold).
    fn report_rollback_duplicity(&mut self, e: RollbackError, candidate: &VerifiedEgo) {
        if let RollbackError::Duplicity(kind) = e {
            let _ = self.emit(NodeEvent::Duplicity {
                ego_id: candidate.ego_id(),
                kind,
                first: None,
                second: candidate.bytes().to_vec(),
            });
        }
    }

    pub(crate) fn start_get(&mut self, ego: EgoId, reply: Reply<Result<Found, GetError>>) {
        let key = ego.dht_key();
        let id = self.swarm.behaviour_mut().kad.get_record(record_key(&key));
        self.gets.insert(
            id,
            GetState {
                key,
                reply,
                started: self.clock.instant(),
                best: None,
                best_peers: HashSet::new(),
                correct: HashSet::new(),
                rejected: 0,
                duplicity: None,
            },
        );
    }

    /// One peer's answer to a lookup (`peer` is `None` for the local
    /// store).
    fn answer(&mut self, id: kad::QueryId, peer: Option<PeerId>, record: Record) {
        let now = self.now();
        let Some(state) = self.gets.get_mut(&id) else {
            return;
        };
        let refuse = |state: &mut GetState, why: Rejection, metrics: &crate::metrics::Metrics| {
            metrics.answer_rejected(why);
            state.rejected += 1;
            if let Some(p) = peer {
                state.correct.insert(p);
            }
        };
        let candidate = match verify_cached(&record.value, &state.key, now, &mut self.sigs) {
            Ok(v) => v,
            Err(e) => {
                refuse(state, Rejection::Invalid(e.code()), &self.metrics);
                return;
            }
        };
        if let Err(e) = self.memory.check(&candidate) {
            if let RollbackError::Duplicity(kind) = e {
                state.duplicity = Some(kind);
            }
            refuse(state, Rejection::from_rollback(&e), &self.metrics);
            self.report_rollback_duplicity(e, &candidate);
            return;
        }
        let Some(best) = &state.best else {
            state.best = Some(candidate);
            state.best_peers.insert(peer);
            return;
        };
        match select(best, &candidate) {
            Ok(Choice::TakeCandidate) => {
                let displaced: Vec<PeerId> = state.best_peers.drain().flatten().collect();
                state.correct.extend(displaced);
                state.best = Some(candidate);
                state.best_peers.insert(peer);
            }
            Ok(Choice::KeepCurrent) => {
                if best.rank() == candidate.rank() {
                    state.best_peers.insert(peer);
                } else {
                    refuse(state, Rejection::Stale, &self.metrics);
                }
            }
            Err(Conflict::Duplicity(ev)) => {
                state.duplicity = Some(ev.kind);
                refuse(state, Rejection::Duplicity, &self.metrics);
                let _ = self.emit(NodeEvent::Duplicity {
                    ego_id: ev.ego_id,
                    kind: ev.kind,
                    first: Some(ev.first),
                    second: ev.second,
                });
            }
            Err(Conflict::DifferentEgos) => refuse(state, Rejection::BadKey, &self.metrics),
        }
    }

    /// Ends a lookup: answers the caller and corrects the peers that
    /// answered with less than the best.
    fn finish_get(&mut self, id: kad::QueryId, cache_candidates: Vec<PeerId>, timed_out: bool) {
        let Some(mut state) = self.gets.remove(&id) else {
            return;
        };
        let seconds = elapsed(&self.clock, state.started);
        let Some(best) = state.best.take() else {
            let (outcome, err) = if timed_out {
                ("timeout", GetError::Timeout)
            } else {
                (
                    "not_found",
                    GetError::NotFound {
                        rejected: state.rejected,
                    },
                )
            };
            self.metrics.get_done(outcome, seconds);
            let _ = state.reply.send(Err(err));
            return;
        };
        let _ = self.memory.accept_local(&best);
        state.correct.extend(cache_candidates);
        let targets: Vec<PeerId> = state
            .correct
            .into_iter()
            .filter(|p| !state.best_peers.contains(&Some(*p)))
            .collect();
        let mut corrected = targets.len();
        // The local copy, if it was worse, is replaced too (it was verified
        // before being stored, so the best one is at least as valid).
        let local_is_worse =
            !state.best_peers.contains(&None) && self.stored(&best.ego_id()).is_some();
        if local_is_worse {
            let record = self.dht_record(&best);
            if self
                .swarm
                .behaviour_mut()
                .kad
                .store_mut()
                .put(record)
                .is_ok()
            {
                corrected += 1;
            }
        }
        if !targets.is_empty() {
            let record = self.dht_record(&best);
            self.swarm
                .behaviour_mut()
                .kad
                .put_record_to(record, targets.into_iter(), Quorum::One);
        }
        self.metrics.get_done("found", seconds);
        let _ = state.reply.send(Ok(Found {
            agreeing: state.best_peers.len(),
            rejected: state.rejected,
            corrected,
            duplicity: state.duplicity,
            ego: best,
        }));
    }

    pub(crate) fn stored(&mut self, ego: &EgoId) -> Option<Vec<u8>> {
        self.swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .get(&record_key(&ego.dht_key()))
            .map(|r| r.value.clone())
    }

    /// The Kademlia record for a verified ego, expiring with its
    /// certificate.
    fn dht_record(&self, ego: &VerifiedEgo) -> Record {
        let mut record = Record::new(record_key(&ego.dht_key()), ego.bytes().to_vec());
        record.expires = Some(record_expiry(
            ego.cert().not_after,
            self.now(),
            self.clock.instant(),
        ));
        record
    }

    pub(crate) fn publish(
        &mut self,
        bytes: Vec<u8>,
        reply: Reply<Result<Published, PublishError>>,
    ) {
        let now = self.now();
        let checked = EgoRecord::decode_bytes(&bytes)
            .map_err(|e| PublishError::Invalid(e.into()))
            .and_then(|r| {
                verify_cached(&bytes, &r.ego_id().dht_key(), now, &mut self.sigs)
                    .map_err(PublishError::Invalid)
            })
            .and_then(|v| {
                self.memory.accept_local(&v)?;
                Ok(v)
            });
        let ego = match checked {
            Ok(v) => v,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let record = self.dht_record(&ego);
        let key = record.key.clone();
        match self
            .swarm
            .behaviour_mut()
            .kad
            .put_record(record, Quorum::One)
        {
            Ok(id) => {
                self.own.insert(key, bytes);
                self.puts.insert(
                    id,
                    PutState {
                        reply: Some(reply),
                        started: self.clock.instant(),
                    },
                );
            }
            Err(_) => {
                let _ = reply.send(Err(PublishError::StoreFull));
            }
        }
    }

    /// Puts every own record again; drops those that no longer verify
    /// (their certificate expired). Returns how many were put.
    pub(crate) fn republish(&mut self) -> usize {
        let now = self.now();
        let own: Vec<(RecordKey, Vec<u8>)> = self.own.drain().collect();
        let mut count = 0;
        for (key, bytes) in own {
            let Some(dht) = dht_key(&key) else { continue };
            let Ok(ego) = verify_cached(&bytes, &dht, now, &mut self.sigs) else {
                self.swarm.behaviour_mut().kad.remove_record(&key);
                self.records.release(&key);
                continue;
            };
            let record = self.dht_record(&ego);
            if let Ok(id) = self
                .swarm
                .behaviour_mut()
                .kad
                .put_record(record, Quorum::One)
            {
                self.puts.insert(
                    id,
                    PutState {
                        reply: None,
                        started: self.clock.instant(),
                    },
                );
                count += 1;
            }
            self.own.insert(key, bytes);
        }
        count
    }
}

impl Rejection {
    fn from_rollback(e: &RollbackError) -> Self {
        match e {
            RollbackError::Stale { .. } => Rejection::Stale,
            RollbackError::Duplicity(_) => Rejection::Duplicity,
        }
    }
}
