//! Node configuration: identity, addresses, mode, timers and limits.

use std::fmt;
use std::time::Duration;

use libp2p::{Multiaddr, identity::Keypair};

use crate::clock::Clock;

/// How the node takes part in the DHT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhtMode {
    /// Always answer DHT queries and store records (bridges, bootstrap
    /// nodes).
    Server,
    /// Let libp2p decide from confirmed external addresses (agents).
    Auto,
}

/// Limits that keep a node's memory and work bounded whatever its peers
/// send.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most records stored for others.
    pub max_records: usize,
    /// Inbound DHT PUTs allowed per peer per minute (burst of the same
    /// size).
    pub puts_per_peer_per_minute: u32,
    /// Inbound requests per protocol allowed per peer per minute.
    pub requests_per_peer_per_minute: u32,
    /// Inbound requests per protocol in flight per peer.
    pub inflight_per_peer: usize,
    /// Egos remembered by the anti-rollback memory.
    pub rollback_memory: usize,
    /// Verified signatures remembered.
    pub signature_cache: usize,
    /// Established connections in all.
    pub max_connections: u32,
    /// Established connections per peer.
    pub max_connections_per_peer: u32,
    /// Peers whose rate-limit state is kept (least recently seen forgotten).
    pub tracked_peers: usize,
    /// Records stored for one peer.
    pub records_per_peer: usize,
    /// Records stored for the peers of one network (see `ipv4_prefix`).
    pub records_per_prefix: usize,
    /// Rendezvous announcements kept for one peer.
    pub providers_per_peer: usize,
    /// Rendezvous announcements kept for the peers of one network.
    pub providers_per_prefix: usize,
    /// Prefix length that makes one IPv4 network for the store quotas.
    pub ipv4_prefix: u8,
    /// Prefix length that makes one IPv6 network for the store quotas.
    pub ipv6_prefix: u8,
    /// Egos remembered by the anti-rollback memory from this node's own
    /// lookups and publications (kept apart from `rollback_memory`, which
    /// records taken from other peers fill, so that a flood of valid
    /// throwaway records cannot flush what the node looked up).
    pub rollback_memory_local: usize,
    /// Inbound connections (being set up or established) from one IPv4
    /// address or IPv6 /64.
    pub max_connections_per_ip: u32,
    /// Inbound connections being set up (handshake unfinished) at once.
    pub max_pending_connections: u32,
    /// Inbound connections being set up from one IPv4 address or IPv6
    /// /64: a slow-loris host holds at most this many of the slots above.
    pub max_pending_connections_per_ip: u32,
    /// Relay service limits (bridges).
    pub relay: RelayLimits,
}

/// Limits of the circuit relay service, set explicitly rather than left
/// to libp2p's defaults (they are part of what a bridge promises to bound).
#[derive(Debug, Clone)]
pub struct RelayLimits {
    /// Reservations held at once.
    pub max_reservations: usize,
    /// Reservations per peer.
    pub max_reservations_per_peer: usize,
    /// How long a reservation lasts before the peer must renew it.
    pub reservation_duration: Duration,
    /// New reservations one peer may make per `rate_interval`.
    pub reservations_per_peer: u32,
    /// New reservations one IP address may make per `rate_interval`.
    pub reservations_per_ip: u32,
    /// Circuits open at once.
    pub max_circuits: usize,
    /// Circuits per peer (as source or destination).
    pub max_circuits_per_peer: usize,
    /// Longest life of a circuit (a login waits up to 130 s for a person).
    pub max_circuit_duration: Duration,
    /// Bytes a circuit may carry in each direction.
    pub max_circuit_bytes: u64,
    /// New circuits one source peer may open per `rate_interval`.
    pub circuits_per_peer: u32,
    /// New circuits one source IP address may open per `rate_interval`.
    pub circuits_per_ip: u32,
    /// The window of the rates above.
    pub rate_interval: Duration,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_reservations: 1_024,
            max_reservations_per_peer: 2,
            reservation_duration: Duration::from_secs(60 * 60),
            reservations_per_peer: 30,
            reservations_per_ip: 60,
            max_circuits: 256,
            max_circuits_per_peer: 8,
            max_circuit_duration: Duration::from_secs(5 * 60),
            max_circuit_bytes: 1 << 20,
            circuits_per_peer: 60,
            circuits_per_ip: 120,
            rate_interval: Duration::from_secs(60 * 60),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_records: 20_000,
            puts_per_peer_per_minute: 120,
            requests_per_peer_per_minute: 120,
            inflight_per_peer: 8,
            rollback_memory: 100_000,
            signature_cache: 100_000,
            max_connections: 1_024,
            max_connections_per_peer: 4,
            tracked_peers: 10_000,
            records_per_peer: 1_000,
            records_per_prefix: 2_000,
            providers_per_peer: 16,
            providers_per_prefix: 64,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            rollback_memory_local: 100_000,
            max_connections_per_ip: 64,
            max_pending_connections: 512,
            max_pending_connections_per_ip: 4,
            relay: RelayLimits::default(),
        }
    }
}

/// Timers.
#[derive(Debug, Clone)]
pub struct Timers {
    /// A DHT get or put gives up after this.
    pub query_timeout: Duration,
    /// Records this node published are put again this often.
    pub republish_interval: Duration,
    /// Records this node stores for others are replicated this often.
    pub replication_interval: Duration,
    /// Expired records are dropped this often.
    pub sweep_interval: Duration,
    /// Login requests wait this long for the agent's answer (a person
    /// types a code).
    pub login_timeout: Duration,
    /// Circle and invite requests wait this long.
    pub request_timeout: Duration,
    /// Idle connections close after this.
    pub idle_connection_timeout: Duration,
    /// Rendezvous announcements (provider records) are kept this long by
    /// the peers that store them. Invites last 10 minutes.
    pub rendezvous_ttl: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(10),
            republish_interval: Duration::from_secs(60 * 60),
            replication_interval: Duration::from_secs(60 * 60),
            sweep_interval: Duration::from_secs(5 * 60),
            login_timeout: Duration::from_secs(130),
            request_timeout: Duration::from_secs(30),
            idle_connection_timeout: Duration::from_secs(60),
            rendezvous_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// Everything a node needs to start.
#[derive(Clone)]
pub struct NodeConfig {
    /// The node's identity (its PeerId). Agents use one per ego; bridges
    /// keep theirs across restarts.
    pub keypair: Keypair,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/4001`.
    pub listen: Vec<Multiaddr>,
    /// Peers to join the network through; each must end in `/p2p/<id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// DHT server or automatic.
    pub mode: DhtMode,
    /// Addresses at which others can reach this node (its public
    /// addresses). Relay service is only offered on confirmed external
    /// addresses; a relay server with none configured offers its listen
    /// addresses.
    pub external_addrs: Vec<Multiaddr>,
    /// Serve as a circuit relay (bridges).
    pub relay_server: bool,
    /// Limits.
    pub limits: Limits,
    /// Timers.
    pub timers: Timers,
    /// The clock (wall time for record checks, monotonic time for the
    /// node's deadlines and rate limits).
    pub clock: Clock,
    /// Program name and version sent in identify.
    pub agent_version: String,
    /// Dial loopback, private and link-local addresses taken from records.
    /// Off by default: a record is anyone's, and its addresses would
    /// otherwise point the node at its own host and networks. Tests and
    /// single-machine setups (the demo) turn it on.
    pub dial_private_addrs: bool,
}

impl NodeConfig {
    /// A configuration with defaults: no listen address, no bootstrap,
    /// automatic mode, no relay service.
    pub fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            mode: DhtMode::Auto,
            external_addrs: Vec::new(),
            relay_server: false,
            limits: Limits::default(),
            timers: Timers::default(),
            clock: Clock::system(),
            agent_version: format!("cyrcles-p2p/{}", env!("CARGO_PKG_VERSION")),
            dial_private_addrs: false,
        }
    }
}

impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConfig")
            .field("peer_id", &self.keypair.public().to_peer_id())
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("mode", &self.mode)
            .field("external_addrs", &self.external_addrs)
            .field("relay_server", &self.relay_server)
            .field("dial_private_addrs", &self.dial_private_addrs)
            .field("limits", &self.limits)
            .field("timers", &self.timers)
            .finish_non_exhaustive()
    }
}
