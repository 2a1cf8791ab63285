//! The node: an actor whose event loop owns the libp2p swarm. The program
//! talks to it through a [`NodeHandle`] and hears from it through a bounded
//! channel of [`NodeEvent`]s.

mod dht;
mod memory;
mod quota;
mod rendezvous;
mod requests;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::future::FutureExt;
use futures::stream::FuturesUnordered;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad, request_response};
use tokio::sync::mpsc;

use cyrcles_core::record::SignatureCache;

use crate::addrs::{IpPrefix, first_ip};
use crate::behaviour::{self, Behaviour, BehaviourEvent};
use crate::clock::Clock;
use crate::config::{NodeConfig, Timers};
use crate::events::NodeEvent;
use crate::handle::{Cause, Command, NodeHandle, Protocol, Reply, RequestError, Status};
use crate::metrics::Metrics;
use crate::protocols;
use crate::ratelimit::{InFlight, RateLimiter};
use crate::transport::Exempt;

pub(crate) use dht::{GetState, PutState};
pub(crate) use memory::Memory;
pub(crate) use quota::{Admit, Group, Quota};
pub(crate) use rendezvous::Announcement;
pub(crate) use requests::{InboundDone, PendingRequest};

/// Commands queued from handles before the loop takes them.
const COMMAND_QUEUE: usize = 256;
/// Events queued for the embedding program; past this, inbound requests
/// are refused rather than queued.
const EVENT_QUEUE: usize = 256;
/// Addresses taken from one identify message.
const MAX_ADDRS_PER_PEER: usize = 8;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The swarm could not be built.
    #[error(transparent)]
    Build(#[from] behaviour::BuildError),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
}

/// Starts nodes.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Builds the swarm, starts listening (waiting until every listen
    /// address is bound), dials the bootstrap peers and spawns the event
    /// loop on the current tokio runtime.
    pub async fn spawn(
        config: NodeConfig,
    ) -> Result<(NodeHandle, mpsc::Receiver<NodeEvent>), SpawnError> {
        let metrics = Metrics::new();
        // The bootstrap peers are the operator's choice: dialled even at
        // private addresses (`transport.rs`).
        let exempt = Exempt::default();
        for addr in &config.bootstrap {
            exempt.add(addr);
        }
        let mut swarm = behaviour::build(&config, &metrics, &exempt)?;
        let mut pending: HashSet<ListenerId> = HashSet::new();
        for addr in &config.listen {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|e| SpawnError::Listen {
                    addr: addr.clone(),
                    reason: format!("{e:?}"),
                })?;
            pending.insert(id);
        }
        // Wait for the listeners to bind, so that the handle's first
        // `status()` already shows the addresses.
        // (A wait inside this task: tokio's time.)
        let deadline =
            crate::deadline::after_secs(tokio::time::Instant::now().into_std(), 10).into();
        while !pending.is_empty() {
            match tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
                Ok(SwarmEvent::NewListenAddr { listener_id, .. }) => {
                    pending.remove(&listener_id);
                }
                Ok(SwarmEvent::ListenerClosed {
                    listener_id,
                    addresses,
                    reason,
                }) if pending.contains(&listener_id) => {
                    return Err(SpawnError::Listen {
                        addr: addresses.first().cloned().unwrap_or_else(Multiaddr::empty),
                        reason: format!("{reason:?}"),
                    });
                }
                Ok(SwarmEvent::ListenerError { error, .. }) => {
                    return Err(SpawnError::Listen {
                        addr: Multiaddr::empty(),
                        reason: format!("{error:?}"),
                    });
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(SpawnError::Listen {
                        addr: Multiaddr::empty(),
                        reason: "timed out waiting for the listener".into(),
                    });
                }
            }
        }
        for addr in &config.external_addrs {
            swarm.add_external_address(addr.clone());
        }
        if config.relay_server && config.external_addrs.is_empty() {
            let bound: Vec<Multiaddr> = swarm.listeners().cloned().collect();
            for addr in bound {
                swarm.add_external_address(addr);
            }
        }
        for addr in &config.bootstrap {
            if let Some(peer) = peer_of(addr) {
                swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            }
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial bootstrap peer");
            }
        }
        if !config.bootstrap.is_empty() {
            let _ = swarm.behaviour_mut().kad.bootstrap();
        }

        let peer_id = *swarm.local_peer_id();
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let limits = &config.limits;
        let event_loop = EventLoop {
            swarm,
            commands: rx,
            events: events_tx,
            metrics: metrics.clone(),
            clock: config.clock.clone(),
            timers: config.timers.clone(),
            memory: Memory::new(limits.rollback_memory_local, limits.rollback_memory),
            records: Quota::new(limits.records_per_peer, limits.records_per_prefix),
            providers: Quota::new(limits.providers_per_peer, limits.providers_per_prefix),
            announcements: HashMap::new(),
            peer_ips: HashMap::new(),
            connection_ips: HashMap::new(),
            prefix_lens: (limits.ipv4_prefix, limits.ipv6_prefix),
            max_records: limits.max_records,
            exempt,
            sigs: SignatureCache::new(limits.signature_cache),
            put_limiter: RateLimiter::new(limits.puts_per_peer_per_minute, limits.tracked_peers),
            request_limiter: RateLimiter::new(
                limits.requests_per_peer_per_minute,
                limits.tracked_peers,
            ),
            inflight: InFlight::new(limits.inflight_per_peer),
            gets: HashMap::new(),
            puts: HashMap::new(),
            requests: HashMap::new(),
            inbound: FuturesUnordered::new(),
            own: HashMap::new(),
            provides: HashMap::new(),
            finds: HashMap::new(),
            identified: HashMap::new(),
            listens: HashMap::new(),
            dials: HashMap::new(),
        };
        tokio::spawn(event_loop.run());
        Ok((
            NodeHandle {
                tx,
                peer_id,
                metrics,
            },
            events_rx,
        ))
    }
}

pub(crate) struct EventLoop {
    pub(crate) swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<NodeEvent>,
    pub(crate) metrics: Metrics,
    pub(crate) clock: Clock,
    pub(crate) timers: Timers,
    pub(crate) memory: Memory,
    /// Records stored for others, charged to their senders.
    pub(crate) records: Quota<kad::RecordKey>,
    /// Rendezvous announcements kept for others, by (key, provider).
    pub(crate) providers: Quota<(kad::RecordKey, PeerId)>,
    /// When each announcement kept for others expires (libp2p drops
    /// expired ones only when their key is asked for).
    pub(crate) announcements: HashMap<(kad::RecordKey, PeerId), Announcement>,
    /// The IP address each connected peer came from (its latest
    /// connection), for the quotas; bounded by the connection limit.
    pub(crate) peer_ips: HashMap<PeerId, IpAddr>,
    /// The remote IP address of each open connection.
    pub(crate) connection_ips: HashMap<ConnectionId, IpAddr>,
    /// IPv4 and IPv6 prefix lengths of a quota group.
    prefix_lens: (u8, u8),
    pub(crate) max_records: usize,
    /// Addresses the program chose, dialled even when private.
    exempt: Exempt,
    pub(crate) sigs: SignatureCache,
    pub(crate) put_limiter: RateLimiter<PeerId>,
    pub(crate) request_limiter: RateLimiter<(Protocol, PeerId)>,
    pub(crate) inflight: InFlight<(Protocol, PeerId)>,
    pub(crate) gets: HashMap<kad::QueryId, GetState>,
    pub(crate) puts: HashMap<kad::QueryId, PutState>,
    pub(crate) requests: HashMap<(Protocol, request_response::OutboundRequestId), PendingRequest>,
    pub(crate) inbound: FuturesUnordered<BoxFuture<'static, InboundDone>>,
    /// Records this node published, by key, to republish.
    pub(crate) own: HashMap<kad::RecordKey, Vec<u8>>,
    pub(crate) provides: HashMap<kad::QueryId, rendezvous::ProvideState>,
    pub(crate) finds: HashMap<kad::QueryId, rendezvous::FindState>,
    /// Listen addresses that connected peers reported (identify); bounded
    /// by the connection limit, dropped when the last connection closes.
    pub(crate) identified: HashMap<PeerId, Vec<Multiaddr>>,
    listens: HashMap<ListenerId, Reply<Result<Multiaddr, RequestError>>>,
    dials: HashMap<ConnectionId, Reply<Result<(), RequestError>>>,
}

enum Flow {
    Continue,
    Stop(Option<Reply<()>>),
}

impl EventLoop {
    async fn run(mut self) {
        let mut republish = tokio::time::interval(self.timers.republish_interval);
        let mut sweep = tokio::time::interval(self.timers.sweep_interval);
        republish.tick().await;
        sweep.tick().await;
        let stop = loop {
            // A panic while handling one event (a bug reached by some
            // input) must not take the node down: it is caught here,
            // counted and logged, and the loop goes on with the next event.
            let step = AssertUnwindSafe(self.step(&mut republish, &mut sweep));
            match step.catch_unwind().await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop(reply)) => break reply,
                Err(payload) => self.on_panic(payload.as_ref()),
            }
        };
        // Dropping the swarm closes every connection and listener.
        drop(self.swarm);
        if let Some(reply) = stop {
            let _ = reply.send(());
        }
    }

    /// Waits for the next event and handles it.
    async fn step(
        &mut self,
        republish: &mut tokio::time::Interval,
        sweep: &mut tokio::time::Interval,
    ) -> Flow {
        tokio::select! {
            event = self.swarm.select_next_some() => {
                self.on_swarm_event(event);
                Flow::Continue
            }
            command = self.commands.recv() => match command {
                Some(c) => self.on_command(c),
                None => Flow::Stop(None),
            },
            Some(done) = self.inbound.next(), if !self.inbound.is_empty() => {
                self.on_inbound_done(done);
                Flow::Continue
            }
            _ = republish.tick() => {
                self.republish();
                Flow::Continue
            }
            _ = sweep.tick() => {
                self.sweep();
                Flow::Continue
            }
        }
    }

    fn on_panic(&mut self, payload: &(dyn std::any::Any + Send)) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        self.metrics.panicked();
        tracing::error!(panic = %message, "the p2p event loop caught a panic and goes on");
    }

    fn on_command(&mut self, command: Command) -> Flow {
        match command {
            Command::Get { ego, reply } => self.start_get(ego, reply),
            Command::Publish { record, reply } => self.publish(record, reply),
            Command::Republish { reply } => {
                let _ = reply.send(self.republish());
            }
            Command::Dial { addr, reply } => {
                self.exempt.add(&addr);
                let opts = DialOpts::from(addr);
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(RequestError::Unreachable(Cause::from_error(e))));
                    }
                }
            }
            Command::AddPeer { peer, addr } => {
                self.exempt.add(&addr);
                self.swarm.behaviour_mut().kad.add_address(&peer, addr);
            }
            Command::Bootstrap => {
                let _ = self.swarm.behaviour_mut().kad.bootstrap();
            }
            Command::ListenOn { addr, reply } => {
                // A relay circuit's relay is the program's choice.
                self.exempt.add(&addr);
                match self.swarm.listen_on(addr) {
                    Ok(id) => {
                        self.listens.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(RequestError::Unreachable(Cause::from_error(e))));
                    }
                }
            }
            Command::Request {
                protocol,
                peer,
                addrs,
                payload,
                reply,
            } => self.send_request(protocol, peer, addrs, payload, reply),
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Stored { ego, reply } => {
                let _ = reply.send(self.stored(&ego));
            }
            Command::Provide { key, reply } => self.start_providing(key, reply),
            Command::StopProviding { key } => self.stop_providing(key),
            Command::FindProviders { key, reply } => self.find_providers(key, reply),
            Command::Shutdown { reply } => return Flow::Stop(Some(reply)),
            Command::InjectPanic => {
                // Only the embedding program can send this (tests use it to
                // show that the loop survives a panic in a handler).
                #[allow(clippy::panic)]
                {
                    panic!("a panic injected by the embedding program");
                }
            }
        }
        Flow::Continue
    }

    fn status(&mut self) -> Status {
        use libp2p::kad::store::RecordStore;
        let kad = &mut self.swarm.behaviour_mut().kad;
        let routing_table = kad.kbuckets().map(|b| b.num_entries()).sum();
        let stored_records = kad.store_mut().records().count();
        let (local_memory, network_memory) = self.memory.len();
        let (groups, _) = self.records.tracked();
        let (tracked_peers, tracked_ips) = self.swarm.behaviour().limits.tracked();
        Status {
            connected_peers: self.swarm.connected_peers().count(),
            routing_table,
            stored_records,
            listen_addrs: self.swarm.listeners().cloned().collect(),
            panics: self.metrics.panics(),
            kept_announcements: self.announcements.len(),
            rollback_entries: local_memory + network_memory,
            store_groups: groups,
            connection_peers_tracked: tracked_peers,
            connection_ips_tracked: tracked_ips,
        }
    }

    pub(crate) fn now(&self) -> cyrcles_core::UnixTime {
        self.clock.now()
    }

    pub(crate) fn emit(&mut self, event: NodeEvent) -> bool {
        self.events.try_send(event).is_ok()
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let addrs: Vec<Multiaddr> = info
                    .listen_addrs
                    .into_iter()
                    .take(MAX_ADDRS_PER_PEER)
                    .collect();
                if info.protocols.contains(&protocols::KAD) {
                    // Only DHT servers go in the routing table, at their
                    // direct addresses (a relayed address is not a DHT
                    // server's).
                    let kad = &mut self.swarm.behaviour_mut().kad;
                    for addr in addrs
                        .iter()
                        .filter(|a| !a.iter().any(|p| p == AddrProtocol::P2pCircuit))
                    {
                        kad.add_address(&peer_id, addr.clone());
                    }
                }
                // Every connected peer's addresses, relayed ones included,
                // for the rendezvous announcements it may make.
                self.identified.insert(peer_id, addrs);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Login(e)) => self.on_rr(Protocol::Login, e),
            SwarmEvent::Behaviour(BehaviourEvent::Circle(e)) => self.on_rr(Protocol::Circle, e),
            SwarmEvent::Behaviour(BehaviourEvent::Invite(e)) => self.on_rr(Protocol::Invite, e),
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                if let Some(reply) = self.listens.remove(&listener_id) {
                    let _ = reply.send(Ok(address));
                }
                self.listen_addrs_changed();
            }
            SwarmEvent::ExpiredListenAddr { .. } => self.listen_addrs_changed(),
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some(reply) = self.listens.remove(&listener_id) {
                    let text = format!("{reason:?}");
                    let cause = match reason {
                        Err(e) => Cause::caused_by(text, e),
                        Ok(()) => Cause::new(text),
                    };
                    let _ = reply.send(Err(RequestError::Unreachable(cause)));
                }
                self.listen_addrs_changed();
            }
            SwarmEvent::ConnectionEstablished {
                connection_id,
                peer_id,
                endpoint,
                ..
            } => {
                if let Some(ip) = first_ip(endpoint.get_remote_address()) {
                    self.peer_ips.insert(peer_id, ip);
                    self.connection_ips.insert(connection_id, ip);
                }
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
                self.metrics
                    .set_connected(self.swarm.connected_peers().count());
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(RequestError::Unreachable(Cause::from_error(error))));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.connection_ips.remove(&connection_id);
                if num_established == 0 {
                    self.identified.remove(&peer_id);
                    self.peer_ips.remove(&peer_id);
                }
                self.metrics
                    .set_connected(self.swarm.connected_peers().count());
            }
            _ => {}
        }
    }

    fn listen_addrs_changed(&mut self) {
        let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
        // Best effort: a program that is not reading events does not need
        // this one.
        let _ = self.emit(NodeEvent::ListenAddrsChanged(addrs));
    }

    /// Drops records whose certificate has expired (by the node's clock) or
    /// whose Kademlia lifetime has ended, forgets expired own records, and
    /// drops rendezvous announcements past their lifetime.
    fn sweep(&mut self) {
        use libp2p::kad::store::RecordStore;
        let instant = self.clock.instant();
        let now = self.now();
        let store = self.swarm.behaviour_mut().kad.store_mut();
        let expired: Vec<kad::RecordKey> = store
            .records()
            .filter(|r| r.is_expired(instant) || !cert_alive(&r.value, now))
            .map(|r| r.key.clone())
            .collect();
        for key in &expired {
            store.remove(key);
            self.own.remove(key);
            self.records.release(key);
        }
        // Kademlia also drops expired records on its own: release their
        // charges too.
        let gone: Vec<kad::RecordKey> = self
            .records
            .keys()
            .filter(|k| store.get(k).is_none())
            .cloned()
            .collect();
        for key in &gone {
            self.records.release(key);
        }
        let stored = store.records().count();
        self.metrics.set_stored(stored);
        self.sweep_announcements(instant);
    }

    /// The quota group of a peer: the network of `connection` (the one
    /// its request came on) or of its latest connection, or the peer
    /// itself without an IP.
    pub(crate) fn group_of(&self, peer: &PeerId, connection: Option<ConnectionId>) -> Group {
        let (v4, v6) = self.prefix_lens;
        let ip = connection
            .and_then(|c| self.connection_ips.get(&c))
            .or_else(|| self.peer_ips.get(peer));
        match ip {
            Some(ip) => Group::Net(IpPrefix::of(*ip, v4, v6)),
            None => Group::Peer(*peer),
        }
    }
}

/// Whether the certificate of a stored record is still within its window
/// (records are verified before they are stored, so decoding suffices).
fn cert_alive(bytes: &[u8], now: cyrcles_core::UnixTime) -> bool {
    cyrcles_core::EgoRecord::decode_bytes(bytes).is_ok_and(|r| {
        now <= r
            .cert
            .body
            .not_after
            .plus(cyrcles_core::time::CLOCK_SKEW_SECS)
    })
}

/// Seconds as f64 since `start` (an instant of `clock`), for histograms.
pub(crate) fn elapsed(clock: &Clock, start: Instant) -> f64 {
    clock.since(start).as_secs_f64()
}

/// Peers are identified by the last `/p2p/` component of an address.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(AddrProtocol::P2p(p)) => Some(p),
        _ => None,
    }
}
