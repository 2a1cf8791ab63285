//! What else strangers can make an agent keep or do: desktop
//! notifications and `watch` notices (bounded per minute, the rest held
//! back and counted), and circle messages from nodes that are not a
//! friend's (refused before any state is kept). The person's own login
//! is still shown.

use std::process::Stdio;
use std::time::Duration;

use cyrcles_core::circle::messages::kind;
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{
    CircleId, CircleRefused, Purpose, RecoveryBody, RepairRequest, RequestBody, SessionId,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::record::VerifiedEgo;
use cyrcles_core::{EgoId, SecretKey};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{BIN, Bridge};
use cyrcles_testkit::{Agent, TempDir, bounded};

/// Desktop notifications the agent raises in a minute, at most.
const PER_MINUTE: usize = 10;

/// An agent whose `notify-send` is a script that appends its arguments
/// to a file; returns the agent and that file.
async fn agent_with_fake_notifier(bridge: &Bridge, dir: &TempDir) -> (Agent, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let calls = dir.path().join("calls");
    let fake = dir.path().join("notify-send");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s|' \"$@\" >> {}\necho >> {}\n",
            calls.display(),
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let agent = Agent::builder(BIN)
        .bootstrap(&bridge.addr)
        .env("PATH", path)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .start()
        .await;
    (agent, calls)
}

/// The notifications raised: each call starts with its `--app-name`.
fn calls_in(file: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split("--app-name=Cyrcles|")
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_raises_a_bounded_number_of_notifications() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let dir = TempDir::new("cyt");
    let (agent, calls) = agent_with_fake_notifier(&bridge, &dir).await;
    let id = agent.create("main").await;
    let record = bridge.resolve(id).await;
    // Two hostile nodes send challenges claiming many bridges and sites;
    // each one that is admitted prompts the person.
    let mut floods = tokio::task::JoinSet::new();
    for n in 0..2 {
        let evil = Bridge::start(cyrcles_p2p::Clock::system()).await;
        let record = record.clone();
        floods.spawn(async move {
            let mut sends = tokio::task::JoinSet::new();
            for i in 0..60 {
                let ch =
                    evil.challenge_from(id, &format!("site{n}-{i}"), 1, &format!("198.51.{n}.{i}"));
                let (evil, record) = (evil.clone(), record.clone());
                sends.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(5), evil.login(&record, &ch))
                        .await;
                });
                if sends.len() >= 6 {
                    sends.join_next().await;
                }
            }
            while sends.join_next().await.is_some() {}
        });
    }
    while floods.join_next().await.is_some() {}
    // The person's own login is still listed, whether or not it got a
    // notification of its own.
    let ch = bridge.challenge(id, "shop", 5);
    let (b, r) = (bridge.clone(), record.clone());
    let _answer = tokio::spawn(async move { b.login(&r, &ch).await });
    agent
        .wait_request("the person's request", |r| r["client_id"] == "shop")
        .await;
    let raised = calls_in(&calls);
    assert!(!raised.is_empty());
    assert!(
        raised.len() <= PER_MINUTE,
        "{} notifications: {raised:?}",
        raised.len()
    );
}

/// A recovery request for `ego` (record `record`) from `from`, with a
/// fresh key from `seed`, to the node `to` publishes.
fn recovery_request(from: &Bridge, record: &VerifiedEgo, seed: u8) -> Envelope {
    let key = SecretKey::from_seed(&[seed; 32]);
    let now = from.now();
    let body = RecoveryBody {
        ego_id: record.ego_id(),
        peer_id: from.node.peer_id().to_bytes(),
        cert: record.record().next_cert(key.public(), now, 30 * 86_400),
        issued_at: now,
        session: SessionId([seed; 16]),
    };
    Envelope::wrap(kind::RECOVERY_REQUEST, &body.sign(&key))
}

fn refusal_code(e: &Envelope) -> Option<u16> {
    (e.kind == kind::REFUSED)
        .then(|| e.open::<CircleRefused>(16_384).ok())
        .flatten()
        .map(|r| r.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_circle_messages_are_refused_and_their_notices_bounded() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let agent = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let id = agent.create("main").await;
    let record = bridge.resolve(id).await;
    let mut watch = agent
        .command(["--json", "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut events = BufReader::new(watch.stdout.take().unwrap()).lines();
    let (stranger, mut ev) =
        Bridge::start_with_events(cyrcles_p2p::Clock::system(), Some(&bridge.addr)).await;
    tokio::spawn(async move { while ev.recv().await.is_some() {} });
    let (peer, addrs) = bridge.target(&record);
    let send = |m: Envelope| {
        let (node, addrs) = (stranger.node.clone(), addrs.clone());
        async move { node.circle(peer, addrs, &m).await.unwrap() }
    };
    // Someone "recovering" the agent's own ego from 40 new keys (each an
    // alert for the person), and signing requests for egos that are not
    // friends' (each a notice).
    for seed in 0..40u8 {
        let answer = send(recovery_request(&stranger, &record, seed)).await;
        assert_eq!(refusal_code(&answer), Some(refused::OWN_EGO));
        let body = RequestBody {
            ego_id: EgoId::from_bytes([seed; 32]),
            circle_id: CircleId([seed; 16]),
            generation: 1,
            session: SessionId([seed; 16]),
            purpose: Purpose::Certify(record.record().next_cert(
                SecretKey::from_seed(&[seed; 32]).public(),
                stranger.now(),
                86_400,
            )),
            issued_at: stranger.now(),
        };
        let request = body.sign(&SecretKey::from_seed(&[seed; 32]));
        let answer = send(Envelope::wrap(kind::CEREMONY_REQUEST, &request)).await;
        assert_eq!(refusal_code(&answer), Some(refused::NOT_A_FRIEND));
    }
    // Round 2 and repair steps for sessions it never opened.
    for seed in 0..10u8 {
        let repair = RepairRequest {
            session: SessionId([seed; 16]),
            circle_id: CircleId([seed; 16]),
            generation: 1,
            target: cyrcles_core::circle::MemberId::new(1).unwrap(),
            helpers: vec![
                cyrcles_core::circle::MemberId::new(2).unwrap(),
                cyrcles_core::circle::MemberId::new(3).unwrap(),
            ],
        };
        let answer = send(Envelope::wrap(kind::REPAIR_REQUEST, &repair)).await;
        assert_eq!(refusal_code(&answer), Some(refused::NOT_A_FRIEND));
        let junk = Envelope {
            kind: kind::SIGNING_REQUEST,
            body: vec![seed; 64],
        };
        let answer = send(junk).await;
        assert_eq!(refusal_code(&answer), Some(refused::INVALID));
    }
    // A login after it all: once watch shows it, every notice before it
    // has been shown too.
    let ch = bridge.challenge(id, "shop", 5);
    let (b, r) = (bridge.clone(), record.clone());
    let _answer = tokio::spawn(async move { b.login(&r, &ch).await });
    let notices = bounded(30, "the login in watch", async {
        let mut notices = Vec::new();
        while let Ok(Some(line)) = events.next_line().await {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["event"] == "notice" {
                notices.push(line);
            } else if line.contains("\"shop\"") {
                return notices;
            }
        }
        panic!("watch ended");
    })
    .await;
    assert!(!notices.is_empty());
    assert!(
        notices.len() <= PER_MINUTE,
        "{} notices: {notices:#?}",
        notices.len()
    );
}
