//! The composed libp2p behaviour and the swarm that runs it.

use std::num::{NonZeroU32, NonZeroUsize};

use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    Swarm, SwarmBuilder, Transport, dcutr, identify, kad, noise, relay, request_response, tcp,
    yamux,
};

use crate::codec::BytesCodec;
use crate::config::{DhtMode, NodeConfig, RelayLimits};
use crate::connections::{self, ConnectionLimits};
use crate::handle::Protocol;
use crate::metrics::Metrics;
use crate::transport::{Exempt, PublicDials};

/// Peers kept per rendezvous key (one invite has one; a few more absorb
/// nameplate collisions).
const MAX_PROVIDERS_PER_KEY: usize = 8;
/// Rendezvous keys a node keeps at once, its own and others'
/// (`MemoryStore` counts both under this limit).
pub(crate) const MAX_PROVIDED_KEYS: usize = 4096;
use crate::protocols;

/// Everything a Cyrcles node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connections::Behaviour,
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) relay: Toggle<relay::Behaviour>,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) login: request_response::Behaviour<BytesCodec>,
    pub(crate) circle: request_response::Behaviour<BytesCodec>,
    pub(crate) invite: request_response::Behaviour<BytesCodec>,
}

impl Behaviour {
    pub(crate) fn protocol(&mut self, p: Protocol) -> &mut request_response::Behaviour<BytesCodec> {
        match p {
            Protocol::Login => &mut self.login,
            Protocol::Circle => &mut self.circle,
            Protocol::Invite => &mut self.invite,
        }
    }
}

/// Why the swarm could not be built.
#[derive(Debug, thiserror::Error)]
#[error("could not build the libp2p swarm: {0}")]
pub struct BuildError(String);

fn request_response(p: Protocol, config: &NodeConfig) -> request_response::Behaviour<BytesCodec> {
    let codec = BytesCodec {
        max_request: protocols::max_request(p),
        max_response: protocols::max_response(p),
    };
    let timeout = match p {
        Protocol::Login => config.timers.login_timeout,
        Protocol::Circle | Protocol::Invite => config.timers.request_timeout,
    };
    let cfg = request_response::Config::default()
        .with_request_timeout(timeout)
        .with_max_concurrent_streams(config.limits.inflight_per_peer.saturating_mul(64));
    request_response::Behaviour::with_codec(
        codec,
        [(
            protocols::stream_protocol(p),
            request_response::ProtocolSupport::Full,
        )],
        cfg,
    )
}

/// The relay service's configuration, every limit explicit.
fn relay_config(l: &RelayLimits) -> relay::Config {
    let rate = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    relay::Config {
        max_reservations: l.max_reservations,
        max_reservations_per_peer: l.max_reservations_per_peer,
        reservation_duration: l.reservation_duration,
        reservation_rate_limiters: Vec::new(),
        max_circuits: l.max_circuits,
        max_circuits_per_peer: l.max_circuits_per_peer,
        max_circuit_duration: l.max_circuit_duration,
        max_circuit_bytes: l.max_circuit_bytes,
        circuit_src_rate_limiters: Vec::new(),
    }
    .reservation_rate_per_peer(rate(l.reservations_per_peer), l.rate_interval)
    .reservation_rate_per_ip(rate(l.reservations_per_ip), l.rate_interval)
    .circuit_src_per_peer(rate(l.circuits_per_peer), l.rate_interval)
    .circuit_src_per_ip(rate(l.circuits_per_ip), l.rate_interval)
}

pub(crate) fn build(
    config: &NodeConfig,
    metrics: &Metrics,
    exempt: &Exempt,
) -> Result<Swarm<Behaviour>, BuildError> {
    let err = |e: &dyn std::fmt::Display| BuildError(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        // TCP, dialling only public addresses unless configured otherwise
        // (`transport.rs`).
        .with_other_transport(|key| {
            let tcp = PublicDials::new(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true)),
                config.dial_private_addrs,
                exempt.clone(),
                metrics.clone(),
            );
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                tcp.upgrade(upgrade::Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()),
            )
        })
        .map_err(|e| err(&e))?
        // In-process connections (`/memory/N`), for tests and benchmarks
        // that run many nodes in one process without using sockets.
        .with_other_transport(|key| {
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                MemoryTransport::default()
                    .upgrade(upgrade::Version::V1)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()),
            )
        })
        .map_err(|e| err(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| err(&e))?
        .with_behaviour(|key, relay_client| {
            let peer_id = key.public().to_peer_id();
            let mut kad_config = kad::Config::new(protocols::KAD);
            kad_config
                .set_record_filtering(kad::StoreInserts::FilterBoth)
                .set_max_packet_size(protocols::KAD_MAX_PACKET)
                .set_query_timeout(config.timers.query_timeout)
                .set_replication_interval(Some(config.timers.replication_interval))
                // Publication of this node's own records is done by the
                // node (republish), so that it always puts the newest one.
                .set_publication_interval(None)
                // Provider records serve only as invite rendezvous: short
                // lived, never republished.
                .set_provider_record_ttl(Some(config.timers.rendezvous_ttl))
                .set_provider_publication_interval(None);
            if let Some(k) = NonZeroUsize::new(20) {
                kad_config.set_replication_factor(k);
            }
            let store = MemoryStore::with_config(
                peer_id,
                MemoryStoreConfig {
                    max_records: config.limits.max_records,
                    // `MemoryStore` refuses values of `max_value_bytes` or
                    // more; the protocol allows exactly MAX_RECORD_SIZE.
                    max_value_bytes: cyrcles_core::record::MAX_RECORD_SIZE + 1,
                    max_providers_per_key: MAX_PROVIDERS_PER_KEY,
                    max_provided_keys: MAX_PROVIDED_KEYS,
                },
            );
            let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
            if config.mode == DhtMode::Server {
                kad.set_mode(Some(kad::Mode::Server));
            }
            let l = &config.limits;
            let limits = ConnectionLimits {
                max_established: l.max_connections as usize,
                max_per_peer: l.max_connections_per_peer as usize,
                max_pending_incoming: l.max_pending_connections as usize,
                max_incoming_per_ip: l.max_connections_per_ip as usize,
                max_pending_per_ip: l.max_pending_connections_per_ip as usize,
            };
            let relay = config
                .relay_server
                .then(|| relay::Behaviour::new(peer_id, relay_config(&l.relay)));
            Behaviour {
                limits: connections::Behaviour::new(limits),
                kad,
                identify: identify::Behaviour::new(
                    identify::Config::new(protocols::IDENTIFY_VERSION.to_string(), key.public())
                        .with_agent_version(config.agent_version.clone()),
                ),
                relay_client,
                relay: relay.into(),
                dcutr: dcutr::Behaviour::new(peer_id),
                login: request_response(Protocol::Login, config),
                circle: request_response(Protocol::Circle, config),
                invite: request_response(Protocol::Invite, config),
            }
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(config.timers.idle_connection_timeout)
        })
        .build();
    Ok(swarm)
}
