//! Agent benchmark.
//!
//! 1. Login latency with an auto-approve policy: a bridge-like peer sends
//!    N challenges (one at a time) over loopback TCP to an in-process
//!    daemon; the round trip per challenge is timed at the bridge. The
//!    same is done against a bare node that signs at once, so the agent's
//!    own share (policy, quotas, signing) shows as the difference.
//! 2. Memory: the release `cyrcles daemon` process, idle and with 10 egos
//!    (VmRSS from /proc).
//!
//! ```text
//! cargo build --release -p cyrcles-agent
//! cargo run --release -p cyrcles-agent --example agent-bench [-- --challenges 1000]
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    // A benchmark measures real time.
    clippy::disallowed_methods
)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use cyrcles_agent::config::AgentConfig;
use cyrcles_agent::control::client::Client;
use cyrcles_agent::control::proto::{Reply, Request};
use cyrcles_agent::daemon::{Daemon, DaemonOptions};
use cyrcles_agent::home::Home;
use cyrcles_core::EgoId;
use cyrcles_core::login::{ApprovedBy, ChallengeParams, LoginChallenge, LoginResponse};
use cyrcles_core::record::{PeerEndpoint, VerifiedEgo, builder};
use cyrcles_p2p::{Clock, Keypair, Multiaddr, Node, NodeConfig, NodeEvent, NodeHandle, PeerId};
use cyrcles_testkit::{Agent, TempDir};
use rand_core::{OsRng, RngCore};

const ISSUER: &str = "https://bench.test";

/// The `pct`-th percentile (nearest rank below) of sorted samples.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    sorted[(sorted.len() - 1) * pct / 100]
}

fn challenge(ego: EgoId, code: u8) -> LoginChallenge {
    let now = Clock::system().now();
    let mut nonce = vec![0u8; 16];
    OsRng.fill_bytes(&mut nonce);
    LoginChallenge::new(ChallengeParams {
        issuer: ISSUER.into(),
        client_id: "shop".into(),
        client_name: "Bench shop".into(),
        redirect_origin: "https://shop.example".into(),
        ego_id: ego,
        nonce,
        issued_at: now,
        expires_at: now.plus(120),
        match_code: code,
        client_ip: None,
        confirm: false,
    })
    .unwrap()
}

fn target(record: &VerifiedEgo) -> (PeerId, Vec<Multiaddr>) {
    let ep = record.live_endpoints(Clock::system().now()).unwrap();
    let p = &ep.peers[0];
    (
        PeerId::from_bytes(&p.peer_id).unwrap(),
        p.addrs
            .iter()
            .map(|a| Multiaddr::try_from(a.clone()).unwrap())
            .collect(),
    )
}

/// Times `n` challenges, one after another; returns sorted round trips.
async fn time_logins(bridge: &NodeHandle, record: &VerifiedEgo, n: usize) -> Vec<Duration> {
    let (peer, addrs) = target(record);
    // Warm up the connection.
    for _ in 0..20 {
        let r = bridge
            .login(peer, addrs.clone(), &challenge(record.ego_id(), 1))
            .await
            .unwrap();
        assert!(matches!(r, LoginResponse::Approved(_)), "{r:?}");
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let ch = challenge(record.ego_id(), u8::try_from(i % 100).unwrap());
        let t = Instant::now();
        let r = bridge.login(peer, addrs.clone(), &ch).await.unwrap();
        times.push(t.elapsed());
        assert!(matches!(r, LoginResponse::Approved(_)), "{r:?}");
    }
    times.sort();
    times
}

fn report(name: &str, times: &[Duration]) {
    println!(
        "{name:<34} n={} p50={:>7.1} µs  p99={:>7.1} µs  max={:>7.1} µs",
        times.len(),
        percentile(times, 50).as_secs_f64() * 1e6,
        percentile(times, 99).as_secs_f64() * 1e6,
        times.last().unwrap().as_secs_f64() * 1e6,
    );
}

/// A bare node holding an ego key, answering every challenge at once.
async fn bare_signer(bootstrap: &Multiaddr) -> (NodeHandle, EgoId) {
    let mut c = NodeConfig::new(Keypair::generate_ed25519());
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c.bootstrap = vec![bootstrap.clone()];
    c.dial_private_addrs = true;
    c.limits.requests_per_peer_per_minute = 1_000_000;
    let (node, mut events) = Node::spawn(c).await.unwrap();
    let status = node.status().await.unwrap();
    let peer = PeerEndpoint {
        peer_id: node.peer_id().to_bytes(),
        addrs: status.listen_addrs.iter().map(|a| a.to_vec()).collect(),
    };
    let keys = builder::create_ego(
        &mut OsRng,
        Clock::system().now(),
        builder::DEFAULT_CERT_VALIDITY_SECS,
        vec![peer],
        86_400,
    )
    .unwrap();
    use cyrcles_core::cbor::Encode;
    node.publish(keys.record.to_cbor()).await.unwrap();
    let id = keys.record.ego_id();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if let NodeEvent::Login {
                challenge,
                responder,
                ..
            } = e
            {
                // The bench stands for an agent with an auto-approve
                // policy.
                responder.respond(challenge.approve(&keys.ego, 1, ApprovedBy::Policy));
            }
        }
    });
    (node, id)
}

async fn latency(n: usize) {
    let (bridge, addr) = support::server_node().await;
    let dir = TempDir::new("cyrcles-lat");
    let home = Home::at(dir.join("home"));
    let mut config = AgentConfig::default();
    config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    config.network.bootstrap = vec![addr.to_string()];
    config.network.requests_per_peer_per_minute = 1_000_000;
    config.notify = false;
    let q = &mut config.quotas;
    q.per_source = 1_000_000;
    q.per_peer = 1_000_000;
    q.per_site = 1_000_000;
    q.per_bridge = 1_000_000;
    q.total = 1_000_000;
    let daemon = Daemon::start(DaemonOptions {
        home: home.clone(),
        settings: config.validate().unwrap(),
        clock: Clock::system(),
        passphrase: None,
    })
    .await
    .unwrap();
    let Reply::Ego(info) = Client::call(
        &home,
        &Request::EgoCreate {
            name: "bench".into(),
        },
    )
    .await
    .unwrap() else {
        panic!("no ego")
    };
    Client::call(
        &home,
        &Request::PolicyAllow {
            ego: "bench".into(),
            bridge: ISSUER.into(),
            client: "shop".into(),
            auto: true,
        },
    )
    .await
    .unwrap();
    let id: EgoId = info.ego_id.parse().unwrap();
    let record = support::resolve(&bridge, id).await;
    let agent_times = time_logins(&bridge, &record, n).await;
    let Reply::Status(status) = Client::call(&home, &Request::Status).await.unwrap() else {
        panic!("no status")
    };
    let inside = status
        .auto_approvals
        .expect("the daemon recorded no approval");

    let (bare, bare_id) = bare_signer(&addr).await;
    let bare_record = support::resolve(&bridge, bare_id).await;
    let bare_times = time_logins(&bridge, &bare_record, n).await;
    println!("login round trip over loopback TCP, auto-approve, {n} challenges:");
    report("cyrcles daemon (policy + quotas + sign)", &agent_times);
    report("bare node (sign only)", &bare_times);
    println!(
        "inside the daemon (challenge in -> signed response out), last {} of {} incl. warm-up:",
        inside.samples,
        n + 20
    );
    println!(
        "{:<34}       p50={:>7.1} µs  p99={:>7.1} µs  max={:>7.1} µs",
        "policy + quotas + sign",
        f64::from(inside.p50_us),
        f64::from(inside.p99_us),
        f64::from(inside.max_us)
    );
    daemon.shutdown().await;
    bare.shutdown().await;
    bridge.shutdown().await;
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn memory() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("cyrcles"))
        .unwrap();
    if !bin.exists() {
        eprintln!(
            "{} is missing: run `cargo build --release -p cyrcles-agent` first",
            bin.display()
        );
        std::process::exit(2);
    }
    let mut agent = Agent::builder(&bin)
        .env("CYRCLES_LOG", "warn")
        .start()
        .await;
    let pid = agent.pid().unwrap();
    // Measured after the start has settled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle, _) = rss_kib(pid);
    for i in 0..10 {
        agent.json(&["ego", "create", &format!("ego{i}")]).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (ten, peak) = rss_kib(pid);
    println!("daemon memory (release binary, VmRSS):");
    println!("  idle, no ego:        {:>6.1} MiB", idle as f64 / 1024.0);
    println!(
        "  with 10 egos:        {:>6.1} MiB (peak {:.1} MiB)",
        ten as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    agent.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args
        .iter()
        .position(|a| a == "--challenges")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap())
        .unwrap_or(1000);
    latency(n).await;
    memory().await;
}
