//! The composed libp2p behaviour and the swarm that runs it.

use std::num::NonZeroUsize;

use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    Swarm, SwarmBuilder, Transport, connection_limits, dcutr, identify, kad, noise, relay,
    request_response, tcp, yamux,
};

use crate::codec::BytesCodec;
use crate::config::{DhtMode, NodeConfig};
use crate::handle::Protocol;

/// Peers kept per rendezvous key (one invite has one; a few more absorb
/// nameplate collisions).
const MAX_PROVIDERS_PER_KEY: usize = 8;
/// Rendezvous keys a node keeps at once, its own and others'
/// (`MemoryStore` counts both under this limit).
const MAX_PROVIDED_KEYS: usize = 4096;
use crate::protocols;

/// Everything a Cyrcles node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
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

pub(crate) fn build(config: &NodeConfig) -> Result<Swarm<Behaviour>, BuildError> {
    let err = |e: &dyn std::fmt::Display| BuildError(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
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
                    max_value_bytes: cyrcles_core::record::MAX_RECORD_SIZE,
                    max_providers_per_key: MAX_PROVIDERS_PER_KEY,
                    max_provided_keys: MAX_PROVIDED_KEYS,
                },
            );
            let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
            if config.mode == DhtMode::Server {
                kad.set_mode(Some(kad::Mode::Server));
            }
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established(Some(config.limits.max_connections))
                .with_max_established_per_peer(Some(config.limits.max_connections_per_peer))
                .with_max_pending_incoming(Some(config.limits.max_connections / 4 + 1));
            let relay = config
                .relay_server
                .then(|| relay::Behaviour::new(peer_id, relay::Config::default()));
            Behaviour {
                limits: connection_limits::Behaviour::new(limits),
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
