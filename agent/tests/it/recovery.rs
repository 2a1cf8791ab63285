//! Recovery after a lost device, between real agents: Alice's home is
//! gone; on a new home her agent asks the friends of the circle named by
//! her recovery kit; each friend's human approves (or denies) after
//! comparing six digits; with a threshold of approvals the friends
//! certify the new key. Fewer approvals certify nothing, the old device
//! sees the attempt, a login with the new key verifies and one with the
//! old key does not.

use cyrcles_core::EgoId;
use cyrcles_core::login::{LoginResponse, verify_approval};
use cyrcles_core::record::VerifiedEgo;
use serde_json::Value;

use crate::common::{BIN, Bridge};
use crate::friends::befriend;
use cyrcles_testkit::{Agent, TempDir, bounded, wait_ok, wait_until};

/// Friends sign without the hourly limit and without the recovery delay
/// (its own test sets one), and a recovering device asks again every
/// second.
pub const CONFIG: &str = "maintenance_interval_secs = 1\n\
                      [circles]\nsign_interval_secs = 0\nrecovery_poll_secs = 1\nshare_sweep_secs = 1\n\
                      recovery_delay_secs = 0\n";

pub async fn start(bridge: &Bridge) -> Agent {
    start_with(bridge, CONFIG).await
}

async fn start_with(bridge: &Bridge, config: &str) -> Agent {
    Agent::builder(BIN)
        .bootstrap(&bridge.addr)
        .config(config)
        .start()
        .await
}

/// Alice and her friends Bob and Carol (started with `friends_config`),
/// who share her ego's circle 2 of 2.
pub struct TwoFriends {
    pub alice: Agent,
    pub bob: Agent,
    pub carol: Agent,
    /// Alice's ego.
    pub ego: EgoId,
    /// Bob's and Carol's records.
    pub friends: Vec<VerifiedEgo>,
    /// Alice's record once the circle is shared (its first link).
    pub shared: VerifiedEgo,
}

pub async fn two_friends(bridge: &Bridge, friends_config: &str) -> TwoFriends {
    let alice = start(bridge).await;
    let bob = start_with(bridge, friends_config).await;
    let carol = start_with(bridge, friends_config).await;
    let ego = alice.create("main").await;
    let mut friends = Vec::new();
    for f in [&bob, &carol] {
        let id = f.create("main").await;
        friends.push(bridge.resolve(id).await);
    }
    bridge.resolve(ego).await;
    befriend(&alice, "main", "bob", &bob, "main", "alice").await;
    befriend(&alice, "main", "carol", &carol, "main", "alice").await;
    alice.json(&["circle", "add", "main", "bob"]).await;
    let v = alice.json(&["circle", "add", "main", "carol"]).await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 2 of 2"),
        "{v}"
    );
    let shared = bridge
        .resolve_where(ego, |r| r.record().chain.len() == 1)
        .await;
    TwoFriends {
        alice,
        bob,
        carol,
        ego,
        friends,
        shared,
    }
}

/// Alice's device is stolen: she stops, the thief runs a copy of her home
/// (in `dir`, its log `dir/NAME.log`) on the network, and her own home is
/// gone. Returns the thief's agent.
pub(crate) async fn steal(
    alice: &mut Agent,
    bridge: &Bridge,
    dir: &std::path::Path,
    name: &str,
) -> Agent {
    alice.stop().await;
    let stolen = dir.join("stolen");
    crate::circles::copy_home(&alice.home, &stolen);
    std::fs::remove_dir_all(&alice.home).unwrap();
    let mut thief = Agent::on_home(BIN, stolen, dir.join(format!("{name}.log")));
    thief.spawn(Some(&bridge.addr), &[]).await;
    thief
}

/// Waits until `agent`'s `recovery list` satisfies `pred`; returns it.
pub async fn recoveries_where(agent: &Agent, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_ok(60, what, || async {
        let v = agent.json(&["recovery", "list"]).await;
        if pred(&v) { Ok(v) } else { Err(v) }
    })
    .await
}

/// A friend's pending request for `ego`; returns its id and fingerprint.
pub(crate) async fn pending_request(friend: &Agent, ego: EgoId) -> (String, String) {
    let id = ego.to_string();
    let v = recoveries_where(friend, "the friend's recovery request", |v| {
        v["incoming"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["friend_ego_id"] == id.as_str()))
    })
    .await;
    let i = v["incoming"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["friend_ego_id"] == id.as_str())
        .unwrap();
    assert_eq!(i["state"], "pending", "{v}");
    assert_eq!(i["friend"], "alice", "{v}");
    (
        i["id"].as_u64().unwrap().to_string(),
        i["fingerprint"].as_str().unwrap().to_string(),
    )
}

/// A login at the bridge with the ego's current record, approved on
/// `agent` with the match code; returns the verification's outcome.
pub(crate) async fn login(
    bridge: &Bridge,
    agent: &Agent,
    record: &VerifiedEgo,
    to: &VerifiedEgo,
) -> bool {
    let ch = bridge.challenge(record.ego_id(), "shop", 37);
    let (b, r, c) = (bridge.clone(), to.clone(), ch.clone());
    let answer = tokio::spawn(async move { b.login(&r, &c).await.unwrap() });
    let pending = agent.wait_requests(1).await;
    let rid = pending[0]["id"].as_u64().unwrap().to_string();
    let out = agent.cli(&["approve", &rid, "--code", "37"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let resp = bounded(20, "the login answer", answer).await.unwrap();
    let LoginResponse::Approved(a) = resp else {
        panic!("expected an approval, got {resp:?}");
    };
    verify_approval(&ch, &a, record, bridge.now()).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friends_recover_a_lost_ego_onto_a_new_device() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let mut alice = start(&bridge).await;
    let bob = start(&bridge).await;
    let carol = start(&bridge).await;
    let dave = start(&bridge).await;
    let erin = start(&bridge).await;
    let a = alice.create("main").await;
    for f in [&bob, &carol, &dave, &erin] {
        let id = f.create("main").await;
        bridge.resolve(id).await;
    }
    bridge.resolve(a).await;
    let friends = [
        (&bob, "bob"),
        (&carol, "carol"),
        (&dave, "dave"),
        (&erin, "erin"),
    ];
    for (f, name) in friends {
        befriend(&alice, "main", name, f, "main", "alice").await;
    }
    let v = crate::circles::grow_circle(&alice, &friends).await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 3 of 4"),
        "{v}"
    );
    let shared = bridge
        .resolve_where(a, |r| r.record().chain.len() == 3)
        .await;

    // The kit is kept off the device; then the device is lost. A thief
    // keeps a copy of the old home and runs it.
    let kit_dir = TempDir::new("cyt");
    let kit = alice.write_kit("main", kit_dir.path()).await;
    let old = steal(&mut alice, &bridge, kit_dir.path(), "old").await;
    // It publishes its new addresses (same node, same key).
    let old_addrs = bridge.target(&shared).1;
    bridge
        .resolve_where(a, |r| bridge.target(r).1 != old_addrs)
        .await;

    // A new device recovers from the kit.
    let fresh = start(&bridge).await;
    let started = fresh
        .json(&["recover", "--kit", kit.to_str().unwrap(), "--name", "main"])
        .await;
    let fingerprint = started["outgoing"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(started["outgoing"][0]["state"], "asking");

    // Each friend's human sees the request with the same six digits.
    let mut ids = Vec::new();
    for f in [&bob, &carol, &dave, &erin] {
        let (id, fp) = pending_request(f, a).await;
        assert_eq!(fp, fingerprint);
        ids.push(id);
    }
    // The old device shows the attempt.
    wait_until(30, "the old device's alert", || async {
        old.log_text()
            .contains("recovery of this agent's ego was requested")
    })
    .await;

    // Two approvals and a denial: below the threshold, nothing is signed.
    assert_eq!(bob.cli(&["recovery", "approve", &ids[0]]).await.code, 0);
    assert_eq!(carol.cli(&["recovery", "approve", &ids[1]]).await.code, 0);
    assert_eq!(dave.cli(&["recovery", "deny", &ids[2]]).await.code, 0);
    // Deciding twice, or an unknown request, is an error.
    assert_eq!(dave.cli(&["recovery", "approve", &ids[2]]).await.code, 8);
    assert_eq!(dave.cli(&["recovery", "approve", "999"]).await.code, 4);
    let v = recoveries_where(&fresh, "two approvals seen", |v| {
        let f = &v["outgoing"][0]["friends"];
        f[0]["answer"] == "approved" && f[1]["answer"] == "approved" && f[2]["answer"] == "denied"
    })
    .await;
    assert_eq!(v["outgoing"][0]["state"], "asking", "{v}");
    assert_eq!(v["outgoing"][0]["threshold"], 3, "{v}");
    assert!(
        v["outgoing"][0]["note"]
            .as_str()
            .unwrap()
            .contains("2 of the 3"),
        "{v}"
    );
    let still = bridge.resolve(a).await;
    assert_eq!(still.cert().seq, shared.cert().seq);
    assert_eq!(
        fresh.json(&["ego", "list"]).await["egos"],
        Value::Array(vec![])
    );

    // The third approval: the friends certify the new key.
    assert_eq!(erin.cli(&["recovery", "approve", &ids[3]]).await.code, 0);
    recoveries_where(&fresh, "the recovery to finish", |v| {
        v["outgoing"][0]["state"] == "done"
    })
    .await;
    let recovered = bridge
        .resolve_where(a, |r| r.cert().seq == shared.cert().seq + 1)
        .await;
    assert_ne!(recovered.ego_key(), shared.ego_key());
    assert_eq!(recovered.circle_key(), shared.circle_key());
    let shown = fresh.json(&["ego", "show", "main"]).await;
    assert_eq!(
        shown["ego_key"],
        hex::encode(recovered.ego_key().as_bytes())
    );
    let circle = fresh.json(&["circle", "show", "main"]).await;
    assert!(
        circle["state"]
            .as_str()
            .unwrap()
            .starts_with("shared 3 of 4"),
        "{circle}"
    );

    // A login with the new key verifies; the old device still answers
    // with the old key, which the current record no longer certifies.
    assert!(login(&bridge, &fresh, &recovered, &recovered).await);
    assert!(!login(&bridge, &old, &recovered, &shared).await);

    // Every member follows the circle's verdict to the new device, dave
    // too, who denied and did not sign (his node knew only the old one).
    let new_node =
        cyrcles_p2p::PeerId::from_bytes(&recovered.endpoints().unwrap().peers[0].peer_id)
            .unwrap()
            .to_string();
    for f in [&bob, &carol, &dave, &erin] {
        wait_until(30, "each member to know the new node", || async {
            let v = f.json(&["friend", "list"]).await;
            v["friends"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x["peer_id"] == new_node.as_str()))
        })
        .await;
    }
    // The friends know the new device: a rotation through them works.
    fresh
        .until_ok(&["ego", "rotate", "main"], "a rotation after recovery", 90)
        .await;
    bridge
        .resolve_where(a, |r| r.cert().seq == recovered.cert().seq + 1)
        .await;
}

/// The recovery delay (docs/circle-authority.md, P4): friends whose human
/// approved do not sign for `circles.recovery_delay_secs` (an hour here),
/// the new device shows how long each still waits, and in that time a
/// friend can withdraw the approval (say after the owner's old device
/// reported an attempt its owner did not make). Nothing is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_recovery_waits_and_can_be_withdrawn() {
    const DELAYED: &str = "maintenance_interval_secs = 1\n\
                           [circles]\nsign_interval_secs = 0\nrecovery_poll_secs = 1\n\
                           recovery_delay_secs = 3600\n";
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let TwoFriends {
        alice,
        bob,
        carol,
        ego: a,
        shared,
        ..
    } = two_friends(&bridge, DELAYED).await;
    let kit_dir = TempDir::new("cyt");
    let kit = alice.write_kit("main", kit_dir.path()).await;
    let kit_arg = kit.to_str().unwrap();

    let fresh = start(&bridge).await;
    fresh
        .json(&["recover", "--kit", kit_arg, "--name", "main"])
        .await;
    let mut ids = Vec::new();
    for f in [&bob, &carol] {
        let (id, _) = pending_request(f, a).await;
        let out = f.cli(&["recovery", "approve", &id]).await;
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("withdraws the approval"), "{out:?}");
        ids.push(id);
    }
    // Both approved; both wait, and say so.
    let v = recoveries_where(&fresh, "both friends to report their delay", |v| {
        v["outgoing"][0]["friends"].as_array().is_some_and(|f| {
            f.len() == 2
                && f.iter()
                    .all(|x| x["answer"].as_str().unwrap_or("").contains("signs in"))
        })
    })
    .await;
    assert_eq!(v["outgoing"][0]["state"], "asking", "{v}");
    // Bob withdraws; he refuses from then on, and nothing was signed.
    let out = bob.cli(&["recovery", "deny", &ids[0]]).await;
    assert_eq!(out.code, 0, "{out:?}");
    recoveries_where(&fresh, "bob's withdrawal to reach the new device", |v| {
        v["outgoing"][0]["friends"][0]["answer"]
            .as_str()
            .is_some_and(|a| a.contains("denied"))
    })
    .await;
    let still = bridge.resolve(a).await;
    assert_eq!(still.cert().seq, shared.cert().seq);
    assert_eq!(still.ego_key(), shared.ego_key());
    // A denial is final: approving again is a conflict.
    assert_eq!(bob.cli(&["recovery", "approve", &ids[0]]).await.code, 8);
}

/// Someone who is not Alice starts a recovery of her ego; the friends,
/// fooled, approve. Alice's device, which she still has, is told and
/// objects with the current key (docs/circle-authority.md, P4): each
/// approval pauses, the new device is told nothing will be signed, and
/// each friend decides again. Carol calls Alice and denies; Bob confirms
/// (wrongly): his decision is final and a second objection is dropped.
/// One friend is not the threshold: nothing is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_objection_pauses_approvals_until_each_friend_decides_again() {
    const DELAYED: &str = "maintenance_interval_secs = 1\n\
                           [circles]\nsign_interval_secs = 0\nrecovery_poll_secs = 1\n\
                           recovery_delay_secs = 3600\n";
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let TwoFriends {
        alice,
        bob,
        carol,
        ego: a,
        shared,
        ..
    } = two_friends(&bridge, DELAYED).await;
    // No recovery was reported yet: nothing to object to.
    let out = alice.cli(&["recovery", "object", "main"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    let kit_dir = TempDir::new("cyt");
    let kit = alice.write_kit("main", kit_dir.path()).await;
    let kit_arg = kit.to_str().unwrap();
    let impostor = start(&bridge).await;
    impostor
        .json(&["recover", "--kit", kit_arg, "--name", "main"])
        .await;
    let mut ids = Vec::new();
    for f in [&bob, &carol] {
        let (id, _) = pending_request(f, a).await;
        assert_eq!(f.cli(&["recovery", "approve", &id]).await.code, 0);
        ids.push(id);
    }
    let signs_in = |v: &Value, n: usize| {
        v["outgoing"][0]["friends"][n]["answer"]
            .as_str()
            .is_some_and(|a| a.contains("signs in"))
    };
    recoveries_where(&impostor, "both approvals to wait their delay", |v| {
        signs_in(v, 0) && signs_in(v, 1)
    })
    .await;
    wait_until(30, "alice's device to hear of the recovery", || async {
        alice
            .log_text()
            .contains("a recovery of this agent's ego was requested")
    })
    .await;
    let out = alice.cli(&["recovery", "object", "main"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("approval is paused"), "{out:?}");
    for f in [&bob, &carol] {
        let v = recoveries_where(f, "the paused approval", |v| {
            v["incoming"][0]["state"] == "objected"
        })
        .await;
        assert_eq!(v["incoming"][0]["objected"], true, "{v}");
    }
    recoveries_where(&impostor, "the approvals to stop counting down", |v| {
        !signs_in(v, 0) && !signs_in(v, 1)
    })
    .await;
    assert_eq!(carol.cli(&["recovery", "deny", &ids[1]]).await.code, 0);
    assert_eq!(bob.cli(&["recovery", "approve", &ids[0]]).await.code, 0);
    // Bob's confirmation is final: objecting again is dropped.
    let out = alice.cli(&["recovery", "object", "main"]).await;
    assert!(out.stdout.contains("decided already"), "{out:?}");
    recoveries_where(&impostor, "bob's confirmation and carol's denial", |v| {
        signs_in(v, 0)
            && v["outgoing"][0]["friends"][1]["answer"]
                .as_str()
                .is_some_and(|a| a.contains("denied"))
    })
    .await;
    let still = bridge.resolve(a).await;
    assert_eq!(still.ego_key(), shared.ego_key());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_mistakes_get_clear_errors() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let agent = start(&bridge).await;
    let dir = TempDir::new("cyt");
    let bad = dir.path().join("kit.json");
    std::fs::write(&bad, "{\"not\": \"a kit\"}").unwrap();
    let out = agent
        .cli(&["recover", "--kit", bad.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("not a recovery kit"), "{}", out.stderr);
    let out = agent
        .cli(&["recover", "--ego-id", "nope", "--friend", "x"])
        .await;
    assert_eq!(out.code, 2, "{out:?}");
    // An ego nobody published: nothing to recover, nothing stored.
    let ghost = crate::friends::stranger_ego().to_string();
    let out = bounded(
        60,
        "recovering an unknown ego",
        agent.cli(&["recover", "--ego-id", &ghost, "--friend", &ghost]),
    )
    .await;
    assert_eq!(out.code, 11, "{out:?}");
    assert_eq!(
        agent.json(&["ego", "list"]).await["egos"],
        Value::Array(vec![])
    );
    assert_eq!(agent.cli(&["recovery", "approve", "1"]).await.code, 4);
}
