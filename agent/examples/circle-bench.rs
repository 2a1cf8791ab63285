//! Circle benchmark: wall time of an ego-key rotation through a 3-of-5
//! circle, of re-sharing that circle to 6 members, and of the distributed
//! key generation of a new circle key among 5 and 9 friends, between real
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
//! stores the new record (publication is not included).
//!
//! A re-share runs twice, as a person does: the first run has the planned
//! friends generate the new circle key (DKG relayed by the owner's agent:
//! start, round 1, round 2, confirmations, acknowledgements) and asks the
//! old circle for the link, which waits for the old members' humans; the
//! bench's friends approve it through their control sockets (`circle
//! requests`, `circle approve`); the second run has the old circle sign
//! the link and the new circle the certificate (two FROST sessions), and
//! stores. The two are reported apart: "generate" is the DKG and the
//! link request answered `ask_human`; "sign" is the rest.
//!
//! A recovery (last, on the 5-of-9 circle, without the friends' delay): a
//! new device asks every friend; each friend's agent approves through its
//! control socket as soon as the request is there; the new device, at
//! its next poll (every second), gets a threshold of commitments, runs
//! round 2 and installs the new record. Reported from the request, and
//! from the last approval.
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
use cyrcles_agent::control::client::{Client, ClientError};
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
    // The benchmark rotates and re-shares back to back: more requests
    // from the owner's node than a friend's agent takes by default.
    config.circles.sign_interval_secs = 0;
    config.network.requests_per_peer_per_minute = 100_000;
    // Recoveries are timed without the friends' delay, and a new device
    // asks again every second (the shortest poll).
    config.circles.recovery_delay_secs = 0;
    config.circles.recovery_poll_secs = 1;
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

/// Approves every pending circle request on each friend's agent, as the
/// friends' humans do after the owner's call.
async fn approve_all(friends: &[Home]) {
    for home in friends {
        let Reply::CircleRequests { requests } = call_ok(home, Request::CircleRequests).await
        else {
            panic!("no circle requests")
        };
        for r in requests.iter().filter(|r| r.state == "pending") {
            call_ok(home, Request::CircleApprove { id: r.id }).await;
        }
    }
}

/// Runs a circle change; if the old circle's humans must approve it, the
/// friends approve and it runs again. Returns the first run's time and,
/// if it waited, the second run's.
async fn change(owner: &Home, friends: &[Home], request: Request) -> (Duration, Option<Duration>) {
    let t = Instant::now();
    match Client::call(owner, &request).await {
        Ok(_) => (t.elapsed(), None),
        Err(ClientError::Daemon(e)) if e.message.contains("must approve") => {
            let first = t.elapsed();
            approve_all(friends).await;
            let t = Instant::now();
            call_ok(owner, request).await;
            (first, Some(t.elapsed()))
        }
        Err(e) => panic!("{request:?}: {e}"),
    }
}

fn policy(threshold: u16) -> Request {
    Request::CirclePolicy {
        ego: "main".into(),
        threshold,
    }
}

fn add(friend: usize) -> Request {
    Request::CircleAdd {
        ego: "main".into(),
        friend: format!("f{friend}"),
    }
}

/// Re-shares `rounds` times between thresholds `t` and `t + 1` of the
/// current plan; returns the times of the runs at `t` (generate, sign).
async fn reshare_rounds(
    owner: &Home,
    friends: &[Home],
    t: u16,
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut generate, mut sign) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        change(owner, friends, policy(t + 1)).await;
        let (first, second) = change(owner, friends, policy(t)).await;
        generate.push(first);
        sign.extend(second);
    }
    (generate, sign)
}

/// Approves, on each friend's agent, the pending recovery request of
/// `ego` once it has arrived (as each friend's human does after the
/// call).
async fn approve_recovery(friends: &[Home], ego: &str) {
    for home in friends {
        let id = loop {
            let Reply::Recoveries { incoming, .. } = call_ok(home, Request::RecoveryList).await
            else {
                panic!("no recovery list")
            };
            if let Some(i) = incoming
                .iter()
                .find(|i| i.friend_ego_id == ego && i.state == "pending")
            {
                break i.id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        call_ok(home, Request::RecoveryApprove { id }).await;
    }
}

/// Recovers the ego `name` of `holder` onto a new device, `rounds` times,
/// each new device the next holder. Returns, per round, the time from the
/// new device's request to its new record being installed (every friend
/// approving as soon as the request is there), and from the last approval
/// to it (which includes waiting for the new device's next poll, at most
/// a second).
async fn recoveries(
    dir: &std::path::Path,
    (boot, addr): (&NodeHandle, &Multiaddr),
    holder: &Home,
    friends: &[Home],
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>, Vec<Daemon>) {
    let (mut whole, mut after, mut devices) = (Vec::new(), Vec::new(), Vec::new());
    let (mut holder, mut name) = (holder.clone(), "main".to_string());
    for i in 0..rounds {
        let Reply::Kit(kit) = call_ok(&holder, Request::RecoveryKit { name: name.clone() }).await
        else {
            panic!("no kit")
        };
        let (daemon, device) = agent(dir, &format!("device{i}"), boot, addr).await;
        let new_name = format!("recovered{i}");
        let t = Instant::now();
        call_ok(
            &device,
            Request::Recover {
                name: new_name.clone(),
                ego_id: kit.ego_id.clone(),
                friends: kit.friends.clone(),
            },
        )
        .await;
        approve_recovery(friends, &kit.ego_id).await;
        let approved = Instant::now();
        loop {
            let Reply::Recoveries { outgoing, .. } = call_ok(&device, Request::RecoveryList).await
            else {
                panic!("no recovery list")
            };
            if outgoing.iter().any(|o| o.state == "done") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        whole.push(t.elapsed());
        after.push(approved.elapsed());
        (holder, name) = (device, new_name);
        devices.push(daemon);
    }
    (whole, after, devices)
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<38} n={:>3} p50={:>7.1} ms  p90={:>7.1} ms  max={:>7.1} ms",
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
    let mut daemons = Vec::new();
    let mut friends = Vec::new();
    for i in 0..9 {
        let (d, home) = agent(dir.path(), &format!("friend{i}"), &boot, &addr).await;
        daemons.push(d);
        friends.push(home);
    }
    for (i, home) in friends.iter().enumerate() {
        befriend(&owner, home, &format!("f{i}")).await;
    }
    call_ok(&owner, policy(3)).await;
    for i in 0..5 {
        change(&owner, &friends, add(i)).await;
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

    // Re-share: 5 -> 6 members and back, alternately.
    let (mut grow_generate, mut grow_sign) = (Vec::new(), Vec::new());
    for i in 0..rounds.min(10) {
        let request = if i % 2 == 0 {
            add(5)
        } else {
            Request::CircleRemove {
                ego: "main".into(),
                friend: "f5".into(),
            }
        };
        let (first, second) = change(&owner, &friends, request).await;
        if i % 2 == 0 {
            grow_generate.push(first);
            grow_sign.extend(second);
        }
    }

    // The key generation alone, at 3 of 5 and at 5 of 9.
    let (gen5, sign5) = reshare_rounds(&owner, &friends, 3, rounds.min(10)).await;
    for i in 5..9 {
        change(&owner, &friends, add(i)).await;
    }
    let (gen9, sign9) = reshare_rounds(&owner, &friends, 5, rounds.min(10)).await;

    // Recovery of the 5-of-9 circle's ego onto a new device.
    let (recovered, after_approval, devices) =
        recoveries(dir.path(), (&boot, &addr), &owner, &friends, rounds.min(5)).await;

    println!("circle ceremonies between 10 agent daemons over loopback TCP:");
    report("rotation, 3 of 5", rotations);
    report("re-share 5 -> 6 (t = 3): generate", grow_generate);
    report("re-share 5 -> 6 (t = 3): sign", grow_sign);
    report("new circle 3 of 5: generate", gen5);
    report("new circle 3 of 5: sign", sign5);
    report("new circle 5 of 9: generate", gen9);
    report("new circle 5 of 9: sign", sign9);
    report("recovery 5 of 9: request to record", recovered);
    report("recovery 5 of 9: last approval to record", after_approval);

    for d in daemons.into_iter().chain(devices) {
        d.shutdown().await;
    }
    owner_daemon.shutdown().await;
    boot.shutdown().await;
}
