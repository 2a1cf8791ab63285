//! Junk recovery requests against a friend's queue: strangers who know
//! Alice's ego id send her friends recovery requests from fresh nodes
//! with fresh keys (each one cheap and validly signed). The friends deny
//! them, more come; Alice's real recovery still reaches both friends,
//! who approve it by its digits, and completes.
//!
//! A thief's modified new device never tells Alice's still-running
//! device: the friends it asks tell it instead (`recovery-notice`).

use std::process::Stdio;

use cyrcles_core::EgoId;
use cyrcles_core::SecretKey;
use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{
    CircleRefused, RecoveryBody, RecoveryNotice, RecoveryRequest, Refusal, SessionId,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::record::VerifiedEgo;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::Bridge;
use crate::recovery::{CONFIG, TwoFriends, recoveries_where, start, two_friends};
use cyrcles_testkit::{Poll, TempDir, bounded};

/// Sends a junk recovery request for `ego` (whose current record is
/// `record`) from `from` to the node of `friend`; returns the answer's
/// kind.
async fn junk(from: &Bridge, friend: &VerifiedEgo, record: &VerifiedEgo, seed: u8) -> u16 {
    let request = recovery_request(from, record, seed);
    send(
        from,
        friend,
        Envelope::wrap(kind::RECOVERY_REQUEST, &request),
    )
    .await
    .kind
}

/// A validly signed recovery request for `record`'s ego from `from`'s
/// node, with a new key from `seed`.
fn recovery_request(from: &Bridge, record: &VerifiedEgo, seed: u8) -> RecoveryRequest {
    let key = SecretKey::from_seed(&[seed; 32]);
    let now = from.now();
    let body = RecoveryBody {
        ego_id: record.ego_id(),
        peer_id: from.node.peer_id().to_bytes(),
        cert: record.record().next_cert(key.public(), now, 30 * 86_400),
        issued_at: now,
        session: SessionId([seed; 16]),
    };
    body.sign(&key)
}

/// Sends `envelope` from `from` to the node `to`'s record names; returns
/// the answer.
async fn send(from: &Bridge, to: &VerifiedEgo, envelope: Envelope) -> Envelope {
    let (peer, addrs) = from.target(to);
    // A loaded machine may fail a first dial: try until it answers.
    Poll::new(60, "a junk request's answer")
        .every(std::time::Duration::from_millis(200))
        .ok(|| async {
            let answer = from.node.circle(peer, addrs.clone(), &envelope).await?;
            Ok::<_, cyrcles_p2p::RequestError>(answer)
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
    let TwoFriends {
        mut alice,
        bob,
        carol,
        ego: a,
        friends,
        shared,
    } = two_friends(&bridge, CONFIG).await;
    let kit_dir = TempDir::new("cyt");
    let kit = alice.write_kit("main", kit_dir.path()).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_friends_warn_the_owner_of_a_recovery_the_new_device_hid_from_it() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    // Bob and Carol keep running (an Agent stops when dropped).
    let TwoFriends {
        alice,
        bob: _bob,
        carol: _carol,
        ego: a,
        friends,
        shared,
    } = two_friends(&bridge, CONFIG).await;
    // Alice's device still runs, and her person watches it.
    let mut watch = alice
        .command(["--json", "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut events = BufReader::new(watch.stdout.take().unwrap()).lines();
    // Once watch shows a login, it is listening.
    let ch = bridge.challenge(a, "shop", 5);
    let (b, r) = (bridge.clone(), shared.clone());
    let _login = tokio::spawn(async move { b.login(&r, &ch).await });
    bounded(30, "the login in watch", async {
        while let Ok(Some(line)) = events.next_line().await {
            if line.contains("\"shop\"") {
                return;
            }
        }
        panic!("watch ended");
    })
    .await;

    // A thief's modified new device: a valid request for Alice's ego
    // (its own new key and node), sent only to the friends, never to the
    // node Alice's record names.
    let (thief, mut ev) =
        Bridge::start_with_events(cyrcles_p2p::Clock::system(), Some(&bridge.addr)).await;
    tokio::spawn(async move { while ev.recv().await.is_some() {} });
    let request = recovery_request(&thief, &shared, 7);
    let fingerprint = request.fingerprint();
    for f in &friends {
        let answer = send(&thief, f, Envelope::wrap(kind::RECOVERY_REQUEST, &request)).await;
        assert_eq!(answer.kind, kind::RECOVERY_PENDING);
    }
    // The friends told Alice's device, which shows the attempt.
    let message = bounded(60, "the warning in Alice's watch", async {
        while let Ok(Some(line)) = events.next_line().await {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["event"] == "notice"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(fingerprint.as_str()))
            {
                return v["message"].as_str().unwrap().to_string();
            }
        }
        panic!("watch ended");
    })
    .await;
    assert!(message.contains("recovering your ego"), "{message}");
    assert!(
        message.contains(&thief.node.peer_id().to_string()),
        "{message}"
    );
    assert!(message.contains("your friend"), "{message}");
    // The same attempt reaching Alice's node directly (an honest new
    // device's own send) is refused as hers and not shown again: once
    // watch shows a later login, every notice before it was shown.
    let direct = send(
        &thief,
        &shared,
        Envelope::wrap(kind::RECOVERY_REQUEST, &request),
    )
    .await;
    assert_eq!(
        direct
            .open::<CircleRefused>(MAX_CIRCLE_MESSAGE_SIZE)
            .unwrap()
            .code,
        refused::OWN_EGO
    );
    let ch = bridge.challenge(a, "later", 6);
    let (b, r) = (bridge.clone(), shared.clone());
    let _later = tokio::spawn(async move { b.login(&r, &ch).await });
    bounded(30, "the later login in watch", async {
        while let Ok(Some(line)) = events.next_line().await {
            assert!(
                !line.contains(fingerprint.as_str()),
                "the attempt was shown twice: {line}"
            );
            if line.contains("\"later\"") {
                return;
            }
        }
        panic!("watch ended");
    })
    .await;

    // A notice from a node that is not a friend's, one for an ego Alice's
    // node does not hold, and a malformed one are refused.
    let code = |e: &Envelope| {
        assert_eq!(e.kind, kind::REFUSED);
        e.open::<CircleRefused>(MAX_CIRCLE_MESSAGE_SIZE)
            .unwrap()
            .code
    };
    let notice = |request: RecoveryRequest| {
        Envelope::wrap(kind::RECOVERY_NOTICE, &RecoveryNotice { request })
    };
    let stranger = send(
        &thief,
        &shared,
        notice(recovery_request(&thief, &shared, 8)),
    )
    .await;
    assert_eq!(code(&stranger), refused::NOT_A_FRIEND);
    let not_hers = send(
        &thief,
        &shared,
        notice(recovery_request(&thief, &friends[0], 9)),
    )
    .await;
    assert_eq!(code(&not_hers), Refusal::WrongEgo.code());
    let junk = Envelope {
        kind: kind::RECOVERY_NOTICE,
        body: vec![0xa2; 40],
    };
    assert_eq!(code(&send(&thief, &shared, junk).await), refused::INVALID);
}
