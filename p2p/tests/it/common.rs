//! Networks of real nodes on loopback, and ego records to put in them.

use std::time::Duration;

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::PeerEndpoint;
use cyrcles_core::record::builder::{self, NewEgo};
use cyrcles_core::{SecretKey, UnixTime};
use cyrcles_p2p::{Clock, DhtMode, Keypair, Multiaddr, Node, NodeConfig, NodeEvent, NodeHandle};
use cyrcles_testkit::Poll;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::mpsc;

pub const LOOPBACK: &str = "/ip4/127.0.0.1/tcp/0";

pub fn now() -> UnixTime {
    Clock::system().now()
}

pub struct TestNode {
    pub handle: NodeHandle,
    pub events: mpsc::Receiver<NodeEvent>,
    pub addr: Multiaddr,
}

pub fn config(seed: u64) -> NodeConfig {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8] = 0xc7;
    let keypair = Keypair::ed25519_from_bytes(bytes).unwrap();
    let mut c = NodeConfig::new(keypair);
    c.listen = vec![LOOPBACK.parse().unwrap()];
    c.mode = DhtMode::Server;
    c.timers.query_timeout = Duration::from_secs(5);
    // Every test node is on loopback.
    c.dial_private_addrs = true;
    c
}

pub async fn spawn(config: NodeConfig) -> TestNode {
    let (handle, events) = Node::spawn(config).await.unwrap();
    let status = handle.status().await.unwrap();
    let addr = status.listen_addrs[0]
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(handle.peer_id()));
    TestNode {
        handle,
        events,
        addr,
    }
}

/// `n` server nodes: the first alone, the others bootstrapping from it;
/// returns once every routing table knows at least `min(n-1, 10)` peers.
pub async fn network(n: usize, first_seed: u64, tweak: impl Fn(&mut NodeConfig)) -> Vec<TestNode> {
    let mut c = network_config(first_seed);
    tweak(&mut c);
    let first = spawn(c).await;
    let boot = first.addr.clone();
    let mut nodes = vec![first];
    for i in 1..n {
        let mut c = network_config(first_seed + i as u64);
        c.bootstrap = vec![boot.clone()];
        tweak(&mut c);
        nodes.push(spawn(c).await);
    }
    settle(&nodes, n.saturating_sub(1).min(10)).await;
    nodes
}

/// A node of a test network. Every node of a test shares 127.0.0.1, so
/// the per-address limits on inbound handshakes (four at once, for one
/// host) would refuse the many peers of a network that bootstraps at
/// once, and a refused dial takes the peer out of the dialer's routing
/// table again; those limits have their own tests (bounds.rs) and are
/// raised here to what a network of distinct hosts would see.
fn network_config(seed: u64) -> NodeConfig {
    let mut c = config(seed);
    c.limits.max_pending_connections_per_ip = c.limits.max_pending_connections;
    c.limits.max_connections_per_ip = c.limits.max_connections;
    c
}

/// How often a node whose routing table is still short is bootstrapped
/// again: a bootstrap is several lookups, and starting one every poll
/// would pile them up.
const REBOOTSTRAP_EVERY: Duration = Duration::from_secs(2);

/// Bootstraps the nodes again until each routing table has `want` peers;
/// fails with every table's size.
pub async fn settle(nodes: &[TestNode], want: usize) {
    let last_bootstrap = std::sync::Mutex::new(vec![None::<tokio::time::Instant>; nodes.len()]);
    let last_bootstrap = &last_bootstrap;
    Poll::new(60, "routing tables filling")
        .every(Duration::from_millis(200))
        .ok(|| async move {
            let mut short = Vec::new();
            let mut sizes = Vec::with_capacity(nodes.len());
            for (i, node) in nodes.iter().enumerate() {
                let size = node.handle.status().await.unwrap().routing_table;
                sizes.push(size);
                let due = last_bootstrap.lock().unwrap()[i]
                    .is_none_or(|t| t.elapsed() >= REBOOTSTRAP_EVERY);
                if size < want && due {
                    short.push(i);
                }
            }
            if sizes.iter().all(|&s| s >= want) {
                return Ok(());
            }
            for i in short {
                nodes[i].handle.bootstrap().await.unwrap();
                last_bootstrap.lock().unwrap()[i] = Some(tokio::time::Instant::now());
            }
            Err(format!("sizes {sizes:?}, want {want} each"))
        })
        .await
}

/// An owner with its keys and record, publishing through the builders.
pub struct Owner {
    pub keys: NewEgo,
    pub rng: ChaCha20Rng,
}

impl Owner {
    pub fn new(seed: u64, at: UnixTime) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let keys = builder::create_ego(
            &mut rng,
            at,
            builder::DEFAULT_CERT_VALIDITY_SECS,
            vec![PeerEndpoint {
                peer_id: vec![0, 36, 8, 1, 18, 32, 1, 2, 3],
                addrs: vec![vec![4, 127, 0, 0, 1, 6, 15, 161]],
            }],
            3_600,
        )
        .unwrap();
        Self { keys, rng }
    }

    pub fn ego_id(&self) -> cyrcles_core::EgoId {
        self.keys.record.ego_id()
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.keys.record.to_cbor()
    }

    /// A new ego key certified by the whole circle key: the next version.
    pub fn rotate(&mut self, at: UnixTime) {
        let key = SecretKey::generate(&mut self.rng);
        self.keys
            .record
            .certify_with(
                &self.keys.circle,
                &mut self.rng,
                key.public(),
                at,
                builder::DEFAULT_CERT_VALIDITY_SECS,
            )
            .unwrap();
        self.keys.ego = key;
    }

    pub fn cert_seq(&self) -> u64 {
        self.keys.record.cert.body.seq
    }

    /// Re-signs the certificate with the whole circle key after `edit`
    /// (for records with extreme field values).
    pub fn recert(&mut self, edit: impl FnOnce(&mut cyrcles_core::record::EgoCert)) {
        let mut body = self.keys.record.cert.body.clone();
        edit(&mut body);
        self.keys.record.cert = builder::sign_with_circle(&self.keys.circle, &mut self.rng, body);
    }
}
