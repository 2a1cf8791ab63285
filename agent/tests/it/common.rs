//! The test harness: the real `cyrcles` binary (the daemon process and
//! CLI commands are `cyrcles_testkit::Agent`'s, run with [`BIN`]), and a
//! bridge-like libp2p peer that resolves egos and sends login challenges.

use std::path::Path;

use cyrcles_core::login::{ChallengeParams, LoginChallenge, LoginResponse};
use cyrcles_core::record::VerifiedEgo;
use cyrcles_core::{EgoId, UnixTime};
use cyrcles_p2p::{
    Clock, DhtMode, Keypair, Multiaddr, Node, NodeConfig, NodeHandle, PeerId, RequestError,
};
use cyrcles_testkit::{Output, wait_for};

pub const BIN: &str = env!("CARGO_BIN_EXE_cyrcles");
pub const ISSUER: &str = "https://bridge.test";

/// A clock tests move by hand (wall and monotonic time together).
pub use cyrcles_p2p::ManualClock;

/// Runs `cyrcles --home HOME ARGS…` (no daemon needed).
pub async fn cli(home: &Path, args: &[&str]) -> Output {
    cyrcles_testkit::agent::cli(BIN, home, args).await
}

/// A bridge's view of the network: a DHT server node that resolves egos
/// and sends login challenges, as `cyrcles-bridge` does.
#[derive(Clone)]
pub struct Bridge {
    pub node: NodeHandle,
    pub addr: Multiaddr,
    pub clock: Clock,
}

impl Bridge {
    pub async fn start(clock: Clock) -> Bridge {
        let (bridge, mut events) = Self::start_with_events(clock, None).await;
        // A bridge receives no requests here; drain its events.
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        bridge
    }

    /// A DHT server node on loopback, joined through `bootstrap`, whose
    /// events the caller handles (a stranger or a squatter in attack
    /// tests).
    pub async fn start_with_events(
        clock: Clock,
        bootstrap: Option<&Multiaddr>,
    ) -> (Bridge, tokio::sync::mpsc::Receiver<cyrcles_p2p::NodeEvent>) {
        let mut c = NodeConfig::new(Keypair::generate_ed25519());
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        c.bootstrap = bootstrap.into_iter().cloned().collect();
        c.dial_private_addrs = true;
        c.mode = DhtMode::Server;
        c.clock = clock.clone();
        let (node, events) = Node::spawn(c).await.unwrap();
        let listen = node.status().await.unwrap().listen_addrs[0].clone();
        let addr = listen.with(cyrcles_p2p::multiaddr::Protocol::P2p(node.peer_id()));
        (Bridge { node, addr, clock }, events)
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Resolves an ego until a record matching `pred` is found.
    pub async fn resolve_where(
        &self,
        ego: EgoId,
        pred: impl Fn(&VerifiedEgo) -> bool,
    ) -> VerifiedEgo {
        // Generous: on a loaded machine a new node may take a while to
        // join and publish.
        wait_for(60, "resolving the ego", || async {
            let found = self.node.get(ego).await.ok()?;
            pred(&found.ego).then_some(found.ego)
        })
        .await
    }

    pub async fn resolve(&self, ego: EgoId) -> VerifiedEgo {
        self.resolve_where(ego, |_| true).await
    }

    pub fn challenge(&self, ego: EgoId, client: &str, code: u8) -> LoginChallenge {
        self.challenge_from(ego, client, code, "203.0.113.7")
    }

    /// A challenge for `client` at [`ISSUER`] from a browser at `ip`.
    pub fn challenge_from(&self, ego: EgoId, client: &str, code: u8, ip: &str) -> LoginChallenge {
        let now = self.now();
        LoginChallenge::new(ChallengeParams {
            issuer: ISSUER.into(),
            client_id: client.into(),
            client_name: format!("The {client} site"),
            redirect_origin: format!("https://{client}.example"),
            ego_id: ego,
            nonce: rand_nonce(),
            issued_at: now,
            expires_at: now.plus(120),
            match_code: code,
            client_ip: Some(ip.into()),
            confirm: false,
        })
        .unwrap()
    }

    /// Sends a challenge to the ego's endpoints (from `record`).
    pub async fn login(
        &self,
        record: &VerifiedEgo,
        challenge: &LoginChallenge,
    ) -> Result<LoginResponse, RequestError> {
        let (id, addrs) = self.target(record);
        self.node.login(id, addrs, challenge).await
    }

    /// The first peer a record's endpoints publish, with its addresses.
    pub fn target(&self, record: &VerifiedEgo) -> (PeerId, Vec<Multiaddr>) {
        let ep = record
            .live_endpoints(self.now())
            .expect("the record has endpoints");
        let peer = &ep.peers[0];
        let id = PeerId::from_bytes(&peer.peer_id).unwrap();
        let addrs = peer
            .addrs
            .iter()
            .map(|a| Multiaddr::try_from(a.clone()).unwrap())
            .collect();
        (id, addrs)
    }
}

fn rand_nonce() -> Vec<u8> {
    use rand_core::{OsRng, RngCore};
    let mut n = vec![0u8; 16];
    OsRng.fill_bytes(&mut n);
    n
}
