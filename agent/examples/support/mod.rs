//! What the agent's benchmarks share: a scratch directory and a DHT
//! server node on loopback for the agents to bootstrap from.

use std::path::PathBuf;

use cyrcles_p2p::{DhtMode, Keypair, Multiaddr, Node, NodeConfig, NodeHandle};

/// A fresh directory under the system's temporary directory.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("cyrcles-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

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
