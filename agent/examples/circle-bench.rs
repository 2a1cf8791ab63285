//! Circle benchmark: wall time of an ego-key rotation through a 3-of-5
//! circle, and of re-sharing that circle to 6 members, between real
//! agent daemons (in one process, each with its own home, its own libp2p
//! node per ego, talking over loopback TCP).
//!
//! ```text
//! cargo run --release -p cyrcles-agent --example circle-bench [-- --rounds 20]
//! ```
//!
//! A rotation: the owner's agent makes a new ego key, asks the five
//! friends' agents (each checks the request against the owner's record,
//! which it looks up in the DHT), runs FROST with the first three, and
//! stores the new record (publication is not included). A re-share: deal
//! 6 shares, deliver and check them, have the old circle sign the new link
//! through FROST, store.
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

use std::time::{Duration, Instant};

use cyrcles_agent::config::AgentConfig;
use cyrcles_agent::control::client::Client;
use cyrcles_agent::control::proto::{Reply, Request, SecretText};
use cyrcles_agent::daemon::{Daemon, DaemonOptions};
use cyrcles_agent::home::Home;
use cyrcles_p2p::{Clock, Multiaddr, NodeHandle};
use cyrcles_testkit::TempDir;

/// An agent daemon with an ego `main`, once the ego's record is in the DHT
/// (at `boot`, reached at `addr`).
async fn agent(
    dir: &std::path::Path,
    name: &str,
    boot: &NodeHandle,
    addr: &Multiaddr,
) -> (Daemon, Home) {
    let home = Home::at(dir.join(name));
    let mut config = AgentConfig::default();
    config.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    config.network.bootstrap = vec![addr.to_string()];
    // Every agent of the benchmark is on loopback.
    config.network.dial_private_addrs = true;
    config.notify = false;
    // The benchmark rotates back to back.
    config.circles.sign_interval_secs = 0;
    let daemon = Daemon::start(DaemonOptions {
        home: home.clone(),
        settings: config.validate().unwrap(),
        clock: Clock::system(),
        passphrase: None,
    })
    .await
    .unwrap();
    let reply = Client::call(
        &home,
        &Request::EgoCreate {
            name: "main".into(),
        },
    )
    .await
    .unwrap();
    let Reply::Ego(ego) = reply else {
        panic!("{reply:?}")
    };
    support::resolve(boot, ego.ego_id.parse().unwrap()).await;
    (daemon, home)
}

async fn befriend(owner: &Home, friend: &Home, name: &str) {
    let mut c = Client::connect(owner).await.unwrap();
    c.send(&Request::FriendInvite {
        ego: "main".into(),
        name: Some(name.into()),
    })
    .await
    .unwrap();
    let Some(Reply::InviteOpen { code, .. }) = c.next().await.unwrap() else {
        panic!("no invite")
    };
    let accepted = Client::call(
        friend,
        &Request::FriendAccept {
            code: SecretText::new(code),
            ego: None,
            name: Some("owner".into()),
        },
    )
    .await
    .unwrap();
    assert!(matches!(accepted, Reply::Friend(_)), "{accepted:?}");
    let done = c.next().await.unwrap();
    assert!(matches!(done, Some(Reply::Friend(_))), "{done:?}");
}

async fn call_ok(home: &Home, request: Request) -> Reply {
    match Client::call(home, &request).await {
        Ok(r) => r,
        Err(e) => panic!("{request:?}: {e}"),
    }
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<34} n={:>3} p50={:>7.1} ms  p90={:>7.1} ms  max={:>7.1} ms",
        times.len(),
        ms(times[(times.len() - 1) / 2]),
        ms(times[(times.len() - 1) * 9 / 10]),
        ms(*times.last().unwrap()),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap())
        .unwrap_or(20);
    let dir = TempDir::new("cyrcles-circle");
    let (boot, addr) = support::server_node().await;
    let (owner_daemon, owner) = agent(dir.path(), "owner", &boot, &addr).await;
    let mut friends = Vec::new();
    for i in 0..6 {
        friends.push(agent(dir.path(), &format!("friend{i}"), &boot, &addr).await);
    }
    for (i, (_, home)) in friends.iter().enumerate() {
        befriend(&owner, home, &format!("f{i}")).await;
    }
    call_ok(
        &owner,
        Request::CirclePolicy {
            ego: "main".into(),
            threshold: 3,
        },
    )
    .await;
    for i in 0..5 {
        call_ok(
            &owner,
            Request::CircleAdd {
                ego: "main".into(),
                friend: format!("f{i}"),
            },
        )
        .await;
    }

    let mut rotations = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        call_ok(
            &owner,
            Request::EgoRotate {
                name: "main".into(),
            },
        )
        .await;
        rotations.push(t.elapsed());
    }

    // Re-share: 5 → 6 members and back, alternately.
    let mut reshares = Vec::new();
    for i in 0..rounds.min(10) {
        let request = if i % 2 == 0 {
            Request::CircleAdd {
                ego: "main".into(),
                friend: "f5".into(),
            }
        } else {
            Request::CircleRemove {
                ego: "main".into(),
                friend: "f5".into(),
            }
        };
        let t = Instant::now();
        call_ok(&owner, request).await;
        if i % 2 == 0 {
            reshares.push(t.elapsed());
        }
    }
    println!("circle ceremonies between 7 agent daemons over loopback TCP:");
    report("rotation, 3 of 5", rotations);
    report("re-share 5 -> 6 members (t = 3)", reshares);

    for (d, _) in friends {
        d.shutdown().await;
    }
    owner_daemon.shutdown().await;
    boot.shutdown().await;
}
