//! Junk recovery requests against a friend's queue: strangers who know
//! Alice's ego id send her friends recovery requests from fresh nodes
//! with fresh keys (each one cheap and validly signed). The friends deny
//! them, more come; Alice's real recovery still reaches both friends,
//! who approve it by its digits, and completes.

use cyrcles_core::EgoId;
use cyrcles_core::SecretKey;
use cyrcles_core::circle::messages::kind;
use cyrcles_core::circle::{RecoveryBody, SessionId};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::record::VerifiedEgo;
use serde_json::Value;

use crate::common::Bridge;
use crate::friends::befriend;
use crate::recovery::{recoveries_where, start};
use cyrcles_testkit::{Poll, TempDir, bounded};

/// Sends a junk recovery request for `ego` (whose current record is
/// `record`) from `from` to the node of `friend`; returns the answer's
/// kind.
async fn junk(from: &Bridge, friend: &VerifiedEgo, record: &VerifiedEgo, seed: u8) -> u16 {
    let key = SecretKey::from_seed(&[seed; 32]);
    let now = from.now();
    let body = RecoveryBody {
        ego_id: record.ego_id(),
        peer_id: from.node.peer_id().to_bytes(),
        cert: record.record().next_cert(key.public(), now, 30 * 86_400),
        issued_at: now,
        session: SessionId([seed; 16]),
    };
    let request = body.sign(&key);
    let (peer, addrs) = from.target(friend);
    let envelope = Envelope::wrap(kind::RECOVERY_REQUEST, &request);
    // A loaded machine may fail a first dial: try until it answers.
    Poll::new(60, "a junk request's answer")
        .every(std::time::Duration::from_millis(200))
        .ok(|| async {
            let answer = from.node.circle(peer, addrs.clone(), &envelope).await?;
            Ok::<_, cyrcles_p2p::RequestError>(answer.kind)
        })
        .await
}

/// The friend's incoming requests for `ego` in state `state`.
fn incoming(v: &Value, ego: EgoId, state: &str) -> Vec<Value> {
    let id = ego.to_string();
    v["incoming"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["friend_ego_id"] == id.as_str() && i["state"] == state)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_recovery_completes_after_junk_requests_were_sent_and_denied() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let mut alice = start(&bridge).await;
    let bob = start(&bridge).await;
    let carol = start(&bridge).await;
    let a = alice.create("main").await;
    let mut friends = Vec::new();
    for f in [&bob, &carol] {
        let id = f.create("main").await;
        friends.push(bridge.resolve(id).await);
    }
    bridge.resolve(a).await;
    befriend(&alice, "main", "bob", &bob, "main", "alice").await;
    befriend(&alice, "main", "carol", &carol, "main", "alice").await;
    alice.json(&["circle", "add", "main", "bob"]).await;
    let v = alice.json(&["circle", "add", "main", "carol"]).await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 2 of 2"),
        "{v}"
    );
    // The shared circle's link.
    let shared = bridge
        .resolve_where(a, |r| r.record().chain.len() == 1)
        .await;
    let kit_dir = TempDir::new("cyt");
    let kit = kit_dir.path().join("kit.json");
    alice
        .json(&[
            "ego",
            "recovery-kit",
            "main",
            "--out",
            kit.to_str().unwrap(),
        ])
        .await;
    alice.stop().await;
    std::fs::remove_dir_all(&alice.home).unwrap();

    // Strangers know Alice's ego id and where her friends' nodes are (the
    // friends' records are public; the friendships are a guess they may
    // make). Each sends a request from a fresh node with a fresh key.
    let mut strangers = Vec::new();
    for _ in 0..9 {
        let (s, mut events) =
            Bridge::start_with_events(cyrcles_p2p::Clock::system(), Some(&bridge.addr)).await;
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        strangers.push(s);
    }
    for (n, s) in strangers[..4].iter().enumerate() {
        for f in &friends {
            let k = junk(s, f, &shared, 100 + u8::try_from(n).unwrap()).await;
            assert_eq!(k, kind::RECOVERY_PENDING);
        }
    }
    // The friends see them and deny them all.
    for f in [&bob, &carol] {
        let v = recoveries_where(f, "the junk requests", |v| {
            incoming(v, a, "pending").len() == 4
        })
        .await;
        for i in incoming(&v, a, "pending") {
            assert_eq!(
                f.cli(&["recovery", "deny", &i["id"].to_string()])
                    .await
                    .code,
                0
            );
        }
    }
    // More junk keeps coming: the queue fills again, and one node with
    // many keys holds one place.
    for (n, s) in strangers[4..].iter().enumerate() {
        for f in &friends {
            junk(s, f, &shared, 120 + u8::try_from(n).unwrap()).await;
        }
    }
    for seed in 140..146 {
        junk(&strangers[8], &friends[0], &shared, seed).await;
    }
    let v = bob.json(&["recovery", "list"]).await;
    assert_eq!(incoming(&v, a, "pending").len(), 4, "{v}");
    // The denials are still shown, and a repeat is refused.
    assert_eq!(incoming(&v, a, "denied").len(), 4, "{v}");

    // Alice's new device recovers from the kit: its request reaches both
    // friends beside the junk, and they approve it by its digits.
    let fresh = start(&bridge).await;
    let started = fresh
        .json(&["recover", "--kit", kit.to_str().unwrap(), "--name", "main"])
        .await;
    let fingerprint = started["outgoing"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    for f in [&bob, &carol] {
        let v = recoveries_where(f, "the real request", |v| {
            incoming(v, a, "pending")
                .iter()
                .any(|i| i["fingerprint"] == fingerprint.as_str())
        })
        .await;
        let real = incoming(&v, a, "pending")
            .into_iter()
            .find(|i| i["fingerprint"] == fingerprint.as_str())
            .unwrap();
        let out = f
            .cli(&["recovery", "approve", &real["id"].to_string()])
            .await;
        assert_eq!(out.code, 0, "{out:?}");
    }
    recoveries_where(&fresh, "the recovery to finish", |v| {
        v["outgoing"][0]["state"] == "done"
    })
    .await;
    let recovered = bounded(
        60,
        "the recovered record",
        bridge.resolve_where(a, |r| r.cert().seq == shared.cert().seq + 1),
    )
    .await;
    assert_ne!(recovered.ego_key(), shared.ego_key());
    // A denied stranger asking again is refused.
    let again = junk(&strangers[0], &friends[0], &shared, 100).await;
    assert_eq!(again, kind::REFUSED);
}
