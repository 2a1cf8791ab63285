//! A thief runs a copy of Alice's device (every key, the node identity,
//! the agent database) against her friends (docs/circle-authority.md, P2):
//! it tries to move the circle to sock-puppet friends it controls and to
//! end the ego. Neither is signed on the ego key's word: each waits for
//! the friends' humans, who see digits Alice never read them and say no.
//! Alice, on a new device, then recovers with the same friends; the
//! thief objects with the key it holds, the friends' humans (who spoke to
//! Alice) approve anyway, and that is final. The thief's requests are
//! refused from then on and its login fails, hers verifies.

use serde_json::Value;

use crate::common::Bridge;
use crate::friends::befriend;
use crate::recovery::{
    CONFIG, TwoFriends, login, pending_request, recoveries_where, start, steal, two_friends,
};
use cyrcles_testkit::{Agent, Output, TempDir, fingerprint_in, wait_for, wait_until};

/// A refusal that asks for the friends' approval; returns its digits.
fn asks_approval(out: &Output) -> String {
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("must approve"), "{out:?}");
    fingerprint_in(&out.stderr).unwrap_or_else(|| panic!("no fingerprint: {out:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_device_changes_nothing_the_friends_humans_did_not_approve() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let TwoFriends {
        mut alice,
        bob,
        carol,
        ego: a,
        shared,
        ..
    } = two_friends(&bridge, CONFIG).await;
    let kit_dir = TempDir::new("cyt");
    let kit = alice.write_kit("main", kit_dir.path()).await;

    // The device is stolen: the thief runs a copy of its home.
    let thief = steal(&mut alice, &bridge, kit_dir.path(), "thief").await;

    // Two sock puppets become "friends" of the stolen ego (the thief runs
    // both sides of each invite) and are added to its circle: a link to a
    // new circle key the thief's agent dealt. Bob and Carol's agents do
    // not sign it; they ask their humans.
    let puppets = [start(&bridge).await, start(&bridge).await];
    for (p, name) in puppets.iter().zip(["mallory", "trent"]) {
        p.create::<String>("main").await;
        befriend(&thief, "main", name, p, "main", "alice").await;
    }
    let out = thief.cli(&["circle", "add", "main", "mallory"]).await;
    let link_digits = asks_approval(&out);
    for f in [&bob, &carol] {
        let r = f.circle_request(&link_digits).await;
        assert_eq!(r["what"], "circle-change", "{r}");
        assert_eq!(r["friend"], "alice", "{r}");
        assert_eq!(r["state"], "pending", "{r}");
    }
    // Bob's human was not called by Alice: he denies. Carol does nothing.
    bob.decide_change(&link_digits, false).await;
    let out = thief.cli(&["circle", "add", "main", "trent"]).await;
    assert_ne!(out.code, 0, "{out:?}");
    // A revocation through the friends waits for them too, with other
    // digits; Bob denies it.
    let out = thief.cli(&["ego", "revoke", "main", "--yes"]).await;
    let end_digits = asks_approval(&out);
    assert_ne!(end_digits, link_digits);
    let r = bob.circle_request(&end_digits).await;
    assert_eq!(r["what"], "revocation", "{r}");
    bob.decide_change(&end_digits, false).await;
    let out = thief.cli(&["ego", "revoke", "main", "--yes"]).await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("denied by their human"), "{out:?}");
    // The record still names Alice's circle, unrevoked.
    let now = bridge.resolve(a).await;
    assert_eq!(now.circle_key(), shared.circle_key());
    assert_eq!(now.record().chain.len(), shared.record().chain.len());
    assert!(!now.is_revoked());
    // No puppet holds a share the record names.
    for p in &puppets {
        let v = p.json(&["shares"]).await;
        assert!(
            v["shares"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["generation"] != 1),
            "{v}"
        );
    }

    // Alice, on a new device, recovers with Bob and Carol.
    let fresh = start(&bridge).await;
    let started = fresh
        .json(&["recover", "--kit", kit.to_str().unwrap(), "--name", "main"])
        .await;
    let fingerprint = started["outgoing"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    // The friends tell the stolen device (its node is the one the record
    // names); the thief objects with the key it holds. Each friend's
    // request is shown with the objection; their humans, who spoke to
    // Alice, approve anyway, and that is final.
    wait_until(30, "the stolen device to hear of the recovery", || async {
        thief
            .log_text()
            .contains("a recovery of this agent's ego was requested")
    })
    .await;
    let out = thief.cli(&["recovery", "object", "main"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("shown to them"), "{out:?}");
    for f in [&bob, &carol] {
        let (id, fp) = pending_request(f, a).await;
        assert_eq!(fp, fingerprint);
        let v = f.json(&["recovery", "list"]).await;
        assert_eq!(v["incoming"][0]["objected"], true, "{v}");
        assert_eq!(f.cli(&["recovery", "approve", &id]).await.code, 0);
    }
    // A second objection changes nothing.
    let out = thief.cli(&["recovery", "object", "main"]).await;
    assert!(out.stdout.contains("decided already"), "{out:?}");
    recoveries_where(&fresh, "the recovery to finish", |v| {
        v["outgoing"][0]["state"] == "done"
    })
    .await;
    let recovered = bridge
        .resolve_where(a, |r| r.cert().epoch == shared.cert().epoch + 1)
        .await;
    assert_eq!(recovered.circle_key(), shared.circle_key());

    // The thief's changes now fail the friends' rules (its key is not the
    // record's), before any human is asked; its login fails, Alice's
    // verifies.
    let asked_before = requests_of(&bob).await;
    let out = thief.cli(&["circle", "add", "main", "trent"]).await;
    assert_ne!(out.code, 0, "{out:?}");
    assert_eq!(requests_of(&bob).await, asked_before);
    assert!(login(&bridge, &fresh, &recovered, &recovered).await);
    assert!(!login(&bridge, &thief, &recovered, &shared).await);
}

/// How many circle requests `friend` lists.
async fn requests_of(friend: &Agent) -> usize {
    friend.json(&["circle", "requests"]).await["requests"]
        .as_array()
        .map_or(0, Vec::len)
}

/// The thief also controls one member of a 2-of-3 circle (t − 1 of them),
/// whose agent approves everything the thief asks. With the stolen device
/// and that member it still cannot move the circle, end the ego or
/// recover it onto a device of its own: each needs one more honest human.
/// Alice, with the two honest friends, recovers and logs in; the thief's
/// login fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thief_with_one_member_of_the_circle_still_needs_an_honest_human() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let TwoFriends {
        mut alice,
        bob,
        carol,
        ego: a,
        ..
    } = two_friends(&bridge, CONFIG).await;
    let mallory = start(&bridge).await;
    mallory.create::<String>("main").await;
    befriend(&alice, "main", "mallory", &mallory, "main", "alice").await;
    alice
        .with_approvals(&["circle", "add", "main", "mallory"], &[&bob, &carol], 60)
        .await;
    let shared = bridge
        .resolve_where(a, |r| r.record().chain.len() == 2)
        .await;
    let kit_dir = TempDir::new("cyt");
    let kit = alice.write_kit("main", kit_dir.path()).await;
    let thief = steal(&mut alice, &bridge, kit_dir.path(), "thief").await;

    // A sock puppet into the circle: Mallory approves, Bob and Carol deny.
    let puppet = start(&bridge).await;
    puppet.create::<String>("main").await;
    befriend(&thief, "main", "puppet", &puppet, "main", "alice").await;
    let digits = asks_approval(&thief.cli(&["circle", "add", "main", "puppet"]).await);
    mallory.decide_change(&digits, true).await;
    bob.decide_change(&digits, false).await;
    carol.decide_change(&digits, false).await;
    let out = thief.cli(&["circle", "add", "main", "puppet"]).await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("denied by their human"), "{out:?}");
    // The end of the ego: Mallory approves, Bob denies, Carol is not
    // reached by a call and never approves.
    let digits = asks_approval(&thief.cli(&["ego", "revoke", "main", "--yes"]).await);
    mallory.decide_change(&digits, true).await;
    bob.decide_change(&digits, false).await;
    let out = thief.cli(&["ego", "revoke", "main", "--yes"]).await;
    assert!(out.stderr.contains("must approve"), "{out:?}");
    let now = bridge.resolve(a).await;
    assert_eq!(now.circle_key(), shared.circle_key());
    assert!(!now.is_revoked());

    // A recovery onto the thief's own new device: Mallory approves; the
    // honest friends, who hear other digits from Alice, deny.
    let thiefs_kit = kit_dir.path().join("thiefs-kit.json");
    thief
        .json(&[
            "ego",
            "recovery-kit",
            "main",
            "--out",
            thiefs_kit.to_str().unwrap(),
        ])
        .await;
    let thiefs_device = start(&bridge).await;
    thiefs_device
        .json(&[
            "recover",
            "--kit",
            thiefs_kit.to_str().unwrap(),
            "--name",
            "main",
        ])
        .await;
    for f in [&mallory, &bob, &carol] {
        let (id, _) = pending_request(f, a).await;
        let verb = if std::ptr::eq(f, &mallory) {
            "approve"
        } else {
            "deny"
        };
        assert_eq!(f.cli(&["recovery", verb, &id]).await.code, 0);
    }
    recoveries_where(&thiefs_device, "the honest friends' denials", |v| {
        let f = &v["outgoing"][0]["friends"];
        f.as_array()
            .is_some_and(|l| l.iter().filter(|x| x["answer"] == "denied").count() == 2)
    })
    .await;
    assert_eq!(bridge.resolve(a).await.cert().epoch, shared.cert().epoch);

    // Alice recovers with Bob and Carol; Mallory's denial does not matter.
    let fresh = start(&bridge).await;
    fresh
        .json(&["recover", "--kit", kit.to_str().unwrap(), "--name", "main"])
        .await;
    let alices = |v: &Value| {
        v["incoming"].as_array().and_then(|l| {
            l.iter()
                .find(|i| i["state"] == "pending")
                .and_then(|i| i["id"].as_u64())
        })
    };
    for (f, verb) in [(&mallory, "deny"), (&bob, "approve"), (&carol, "approve")] {
        let id = wait_for(30, "alice's recovery request", || async {
            alices(&f.json(&["recovery", "list"]).await)
        })
        .await;
        assert_eq!(f.cli(&["recovery", verb, &id.to_string()]).await.code, 0);
    }
    recoveries_where(&fresh, "alice's recovery to finish", |v| {
        v["outgoing"][0]["state"] == "done"
    })
    .await;
    let recovered = bridge
        .resolve_where(a, |r| r.cert().epoch == shared.cert().epoch + 1)
        .await;
    assert!(login(&bridge, &fresh, &recovered, &recovered).await);
    assert!(!login(&bridge, &thief, &recovered, &shared).await);
}
