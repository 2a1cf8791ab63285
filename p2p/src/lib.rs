//! The libp2p node that the agent and the bridge both embed.
//!
//! It is an actor: [`Node::spawn`] builds the swarm and starts an event
//! loop that owns it; the returned [`NodeHandle`] (cloneable) sends typed
//! commands with oneshot replies, and a bounded channel carries
//! [`NodeEvent`]s (inbound requests, duplicity reports) to the program.
//!
//! What it speaks:
//!
//! * a Kademlia DHT on `/cyrcles/kad/1.0.0` whose records are ego records
//!   under their DHT keys. Every stored record has passed
//!   `cyrcles_core::record::verify`, the anti-rollback memory and the
//!   selection rule against what was stored; lookups verify every peer's
//!   answer, keep the best and correct the peers that answered with less;
//! * `/cyrcles/login/1`, `/cyrcles/circle/1` and `/cyrcles/invite/1`,
//!   request-response protocols with size caps and per-peer rate and
//!   concurrency limits;
//! * identify (which feeds peers' listen addresses into the routing table),
//!   circuit relay v2 (server on bridges, client everywhere) and DCUtR.
//!
//! # Layout
//!
//! * [`config`]: identity, addresses, mode, limits, timers.
//! * [`clock`]: [`Clock`], wall and monotonic time from one source, and
//!   [`ManualClock`] for tests.
//! * [`handle`]: [`NodeHandle`] and the result types of its commands.
//! * [`events`]: [`NodeEvent`] and [`Responder`].
//! * [`metrics`]: counters and histograms, Prometheus text.
//! * [`protocols`]: protocol ids and message caps.
//! * `node`: the event loop (`node/dht.rs`: the validating DHT;
//!   `node/requests.rs`: request-response).
//! * [`addrs`]: which addresses are public, and IP prefixes for quotas.
//! * [`deadline`]: protocol times to `Instant`s, capped, never overflowing.
//! * `node`: also `node/quota.rs` (who filled the store: quotas per peer
//!   and per network, eviction from the heaviest network) and
//!   `node/memory.rs` (the two-part anti-rollback memory).
//! * `connections`: connection limits, per peer and per IP address.
//! * `transport`: TCP that dials only public addresses unless configured.
//! * `codec`, `ratelimit`, `behaviour`: the pieces it is built from.
//!
//! # Hostile peers
//!
//! Whatever a peer sends, the node keeps running: a panic while the event
//! loop handles one event is caught, counted ([`Status::panics`]) and
//! logged, and the loop goes on. Every structure a peer can grow has a
//! bound (`docs/threat-model.md`, "Bounds on what outsiders can grow").

pub mod addrs;
mod behaviour;
pub mod clock;
pub mod codec;
pub mod config;
mod connections;
pub mod deadline;
pub mod events;
pub mod handle;
pub mod metrics;
mod node;
pub mod protocols;
pub mod ratelimit;
mod transport;

pub use clock::{Clock, ManualClock};
pub use config::{DhtMode, Limits, NodeConfig, RelayLimits, Timers};
pub use events::{NodeEvent, Responder};
pub use handle::{
    Cause, Found, GetError, NodeHandle, Protocol, PublishError, Published, RequestError, Status,
    Stopped,
};
pub use libp2p::{Multiaddr, PeerId, identity::Keypair, multiaddr};
pub use metrics::Metrics;
pub use node::{Node, SpawnError};
