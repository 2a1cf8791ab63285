//! What the agent's benchmarks share: a DHT server node on loopback for the
//! agents to bootstrap from, and looking a record up in it.

use cyrcles_core::EgoId;
use cyrcles_core::record::VerifiedEgo;
use cyrcles_p2p::{DhtMode, Keypair, Multiaddr, Node, NodeConfig, NodeHandle};
use cyrcles_testkit::wait_for;

/// A DHT server node on loopback (a bridge's role) and its address.
pub(crate) async fn server_node() -> (NodeHandle, Multiaddr) {
    let mut c = NodeConfig::new(Keypair::generate_ed25519());
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c.mode = DhtMode::Server;
    c.dial_private_addrs = true;
    let (node, mut events) = Node::spawn(c).await.unwrap();
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let addr = node.status().await.unwrap().listen_addrs[0]
        .clone()
        .with(cyrcles_p2p::multiaddr::Protocol::P2p(node.peer_id()));
    (node, addr)
}

/// The ego's record, once `node` finds it in the DHT.
pub(crate) async fn resolve(node: &NodeHandle, ego: EgoId) -> VerifiedEgo {
    wait_for(30, "the ego's record in the DHT", || async {
        node.get(ego).await.ok().map(|found| found.ego)
    })
    .await
}
