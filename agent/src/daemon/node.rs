//! An ego's network node: its configuration from the settings, its relay
//! reservations, and its events handed to the router (`inbound.rs`).

use std::sync::Arc;

use cyrcles_core::EgoId;
use cyrcles_p2p::multiaddr::Protocol as AddrProtocol;
use cyrcles_p2p::{DhtMode, Keypair, Node, NodeConfig, NodeHandle};
use tracing::{info, warn};
use zeroize::Zeroizing;

use super::error::{Chain, Damaged, Network};
use super::{Result, Shared, inbound};

/// Starts an ego's node from its device key and spawns its event loop.
pub(crate) async fn start(
    shared: &Arc<Shared>,
    ego: EgoId,
    device: &Zeroizing<[u8; 32]>,
) -> Result<NodeHandle> {
    let mut seed = Zeroizing::new(**device);
    let keypair =
        Keypair::ed25519_from_bytes(&mut seed[..]).map_err(|e| Damaged::DeviceKey(Box::new(e)))?;
    let s = &shared.settings;
    let mut c = NodeConfig::new(keypair);
    c.listen = s.listen.clone();
    c.bootstrap = s.bootstrap.clone();
    c.external_addrs = s.external_addrs.clone();
    c.mode = DhtMode::Auto;
    c.dial_private_addrs = s.dial_private_addrs;
    c.clock = shared.clock.clone();
    c.agent_version = format!("cyrcles-agent/{}", env!("CARGO_PKG_VERSION"));
    // An agent stores few records for others; keep its memory small.
    c.limits.requests_per_peer_per_minute = s.requests_per_peer_per_minute;
    c.limits.max_records = 2_000;
    c.limits.rollback_memory = 10_000;
    c.limits.signature_cache = 10_000;
    c.limits.tracked_peers = 2_000;
    c.limits.max_connections = 256;
    let (node, events) = Node::spawn(c).await.map_err(Network::NodeStart)?;
    for relay in &s.relays {
        let node = node.clone();
        let circuit = relay.clone().with(AddrProtocol::P2pCircuit);
        tokio::spawn(async move {
            match node.listen_on(circuit.clone()).await {
                Ok(a) => info!(%a, "relay circuit reserved"),
                Err(e) => warn!(%circuit, "relay reservation failed: {}", Chain(&e)),
            }
        });
    }
    inbound::spawn(shared.clone(), ego, events);
    Ok(node)
}
