//! Node configuration: identity, addresses, mode, timers and limits.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cyrcles_core::UnixTime;
use libp2p::{Multiaddr, identity::Keypair};

/// Reads the current time. Injected so tests can move time.
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        UnixTime::from_secs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    })
}

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
    /// The clock.
    pub clock: Clock,
    /// Program name and version sent in identify.
    pub agent_version: String,
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
            clock: system_clock(),
            agent_version: format!("cyrcles-p2p/{}", env!("CARGO_PKG_VERSION")),
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
            .field("limits", &self.limits)
            .field("timers", &self.timers)
            .finish_non_exhaustive()
    }
}
