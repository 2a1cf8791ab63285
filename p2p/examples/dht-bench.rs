//! DHT lookup benchmark: builds an N-node network in this process (libp2p's
//! memory transport, with the same noise and yamux upgrades as TCP),
//! publishes egos, and measures lookups from honest nodes.
//!
//! ```text
//! cargo run --release -p cyrcles-p2p --example dht-bench -- --nodes 200 [--attackers 0.3] [--lookups 300] [--egos 20]
//! ```
//!
//! With `--attackers F`, that fraction of the nodes are hostile: they serve
//! an older, validly signed record of every ego (the attack the selection
//! rule must beat) and ignore what is put to them. A lookup succeeds when
//! it returns the newest record.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects,
    // A benchmark measures real time.
    clippy::disallowed_methods
)]

#[path = "../tests/it/hostile.rs"]
mod hostile;

use std::time::{Duration, Instant};

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder;
use cyrcles_core::{EgoId, SecretKey};
use cyrcles_p2p::{Clock, DhtMode, Keypair, Multiaddr, Node, NodeConfig, NodeHandle};
use cyrcles_testkit::Poll;
use libp2p::multiaddr::Protocol;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

struct Args {
    nodes: usize,
    attackers: f64,
    lookups: usize,
    egos: usize,
}

fn args() -> Args {
    let mut a = Args {
        nodes: 50,
        attackers: 0.0,
        lookups: 300,
        egos: 20,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--nodes" => a.nodes = value.parse().expect("--nodes N"),
            "--attackers" => a.attackers = value.parse().expect("--attackers FRACTION"),
            "--lookups" => a.lookups = value.parse().expect("--lookups N"),
            "--egos" => a.egos = value.parse().expect("--egos N"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

async fn spawn(seed: u64, bootstrap: Option<&Multiaddr>) -> (NodeHandle, Multiaddr) {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut c = NodeConfig::new(Keypair::ed25519_from_bytes(bytes).unwrap());
    // In-process connections: 200 nodes over TCP would need more file
    // descriptors than this machine allows one process.
    c.listen = vec!["/memory/0".parse().unwrap()];
    c.mode = DhtMode::Server;
    c.bootstrap = bootstrap.into_iter().cloned().collect();
    let (handle, events) = Node::spawn(c).await.unwrap();
    drop(events);
    let addr = handle.status().await.unwrap().listen_addrs[0]
        .clone()
        .with(Protocol::P2p(handle.peer_id()));
    (handle, addr)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    let hostile_count = (a.nodes as f64 * a.attackers).round() as usize;
    let honest_count = a.nodes - hostile_count;
    let started = Instant::now();
    let (first, boot) = spawn(1, None).await;
    let mut honest = vec![first];
    for i in 1..honest_count {
        honest.push(spawn(1 + i as u64, Some(&boot)).await.0);
    }
    let mut hostile = Vec::new();
    for i in 0..hostile_count {
        hostile.push(hostile::Hostile::spawn(100_000 + i as u64, &boot).await);
    }
    for h in &hostile {
        h.bootstrap().await;
    }
    // Let every routing table fill.
    let want = (a.nodes - 1).min(15);
    // (Goes on after two minutes either way: the lookups then measure a
    // network that did not settle.)
    Poll::new(120, "the routing tables to fill")
        .every(Duration::from_millis(300))
        .within(|| async {
            let mut short = 0;
            for n in &honest {
                if n.status().await.unwrap().routing_table < want {
                    short += 1;
                    n.bootstrap().await.unwrap();
                }
            }
            short == 0
        })
        .await;
    eprintln!(
        "network: {} honest + {} hostile nodes up in {:.1} s",
        honest_count,
        hostile_count,
        started.elapsed().as_secs_f64()
    );

    // Egos: each published at seq 2 by an honest node; hostile nodes serve
    // its seq 1.
    let now = Clock::system().now();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut egos: Vec<(EgoId, Vec<u8>)> = Vec::new();
    for e in 0..a.egos {
        let mut new = builder::create_ego(&mut rng, now, 30 * 86_400, Vec::new(), 3_600).unwrap();
        let v1 = new.record.to_cbor();
        let key = SecretKey::generate(&mut rng);
        new.record
            .certify_with(&new.circle, &mut rng, key.public(), now, 30 * 86_400)
            .unwrap();
        let v2 = new.record.to_cbor();
        let id = new.record.ego_id();
        honest[e % honest.len()].publish(v2.clone()).await.unwrap();
        for h in &hostile {
            h.serve(id.dht_key().as_bytes(), v1.clone()).await;
        }
        egos.push((id, v2));
    }

    let mut latencies = Vec::with_capacity(a.lookups);
    let mut newest = 0usize;
    let mut failed = 0usize;
    for i in 0..a.lookups {
        let node = &honest[(rng.next_u32() as usize) % honest.len()];
        let (id, v2) = &egos[i % egos.len()];
        let t = Instant::now();
        let r = node.get(*id).await;
        latencies.push(t.elapsed());
        match r {
            Ok(found) if found.ego.bytes() == v2.as_slice() => newest += 1,
            _ => failed += 1,
        }
    }
    latencies.sort();
    // Stale answers refused during lookups: shows the attackers were asked.
    let refused: u64 = honest
        .iter()
        .map(|n| n.metrics().answers_rejected("stale"))
        .sum();
    println!(
        "nodes={} attackers={} lookups={} newest={:.1}% failed={} stale_answers_refused={} p50={:.2}ms p95={:.2}ms p99={:.2}ms",
        a.nodes,
        hostile_count,
        a.lookups,
        100.0 * newest as f64 / a.lookups as f64,
        failed,
        refused,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
    );
    for n in &honest {
        n.shutdown().await;
    }
}
