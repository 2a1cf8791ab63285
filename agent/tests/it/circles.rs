//! Circles of friends between real agents: sharing the circle key (the
//! root and whole circle keys leave the owner's keystore), rotation of the
//! ego key through the friends (a FROST signature that verifies as plain
//! Ed25519 in the record), re-sharing to a larger circle signed by the old
//! one, and rotation with friends offline.

use std::time::Duration;

use cyrcles_core::EgoId;
use cyrcles_core::record::VerifiedEgo;
use serde_json::Value;

use crate::common::{BIN, Bridge};
use crate::friends::befriend;
use cyrcles_testkit::{Agent, bounded, wait_for, wait_until};

/// Friends of the test sign for each other without the hourly limit, and
/// look for shares of former circles every second.
const FRIEND_CONFIG: &str = "maintenance_interval_secs = 1\n\
                             [circles]\nsign_interval_secs = 0\nshare_sweep_secs = 1\n";

/// An agent on the test network with [`FRIEND_CONFIG`].
async fn circle_agent(bridge: &Bridge) -> Agent {
    Agent::builder(BIN)
        .bootstrap(&bridge.addr)
        .config(FRIEND_CONFIG)
        .start()
        .await
}

async fn record_where(
    bridge: &Bridge,
    id: EgoId,
    what: &str,
    pred: impl Fn(&VerifiedEgo) -> bool,
) -> VerifiedEgo {
    bounded(60, what, bridge.resolve_where(id, pred)).await
}

/// The secret kinds the owner's keystore holds for `ego`.
async fn secret_kinds(agent: &Agent, ego: EgoId) -> Vec<String> {
    secret_kinds_at(&agent.home, ego).await
}

/// The secret kinds the keystore in `home` holds for `ego`.
pub(crate) async fn secret_kinds_at(home: &std::path::Path, ego: EgoId) -> Vec<String> {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", home.join("agent.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM secrets WHERE ego_id = $1 ORDER BY kind")
            .bind(ego.to_string())
            .fetch_all(&mut c)
            .await
            .unwrap();
    c.close().await.unwrap();
    kinds
}

/// `ego rotate` until it succeeds (friends' records may take a moment to
/// show their new addresses after a restart).
async fn rotate_until_ok(agent: &Agent) -> Value {
    agent
        .until_ok(&["ego", "rotate", "main"], "a rotation through friends", 90)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circle_is_shared_rotates_the_ego_key_and_grows() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let alice = circle_agent(&bridge).await;
    let bob = circle_agent(&bridge).await;
    let mut carol = circle_agent(&bridge).await;
    let mut dave = circle_agent(&bridge).await;
    let a = alice.create("main").await;
    for f in [&bob, &carol, &dave] {
        let id = f.create("main").await;
        bridge.resolve(id).await;
    }
    bridge.resolve(a).await;
    befriend(&alice, "main", "bob", &bob, "main", "alice").await;
    befriend(&alice, "main", "carol", &carol, "main", "alice").await;
    befriend(&alice, "main", "dave", &dave, "main", "alice").await;

    // One friend is not a circle yet (FROST needs a threshold of two).
    let v = alice.json(&["circle", "add", "main", "bob"]).await;
    assert!(v["state"].as_str().unwrap().contains("held whole"), "{v}");
    assert_eq!(
        secret_kinds(&alice, a).await,
        ["circle", "device", "ego", "root"]
    );

    // Two friends: the circle is shared 2 of 2.
    let v = alice.json(&["circle", "add", "main", "carol"]).await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 2 of 2"),
        "{v}"
    );
    assert_eq!(v["generation"], 1);
    let rec = record_where(&bridge, a, "the shared record", |r| {
        r.record().chain.len() == 1
    })
    .await;
    // The owner keeps no root key and no circle key.
    assert_eq!(secret_kinds(&alice, a).await, ["device", "ego"]);
    // Each friend holds one share of alice's circle.
    for f in [&bob, &carol] {
        let shares = f.json(&["shares"]).await;
        assert_eq!(shares["shares"][0]["friend"], "alice", "{shares}");
        assert_eq!(shares["shares"][0]["generation"], 1);
    }
    assert_eq!(dave.json(&["shares"]).await["shares"], Value::Array(vec![]));
    // The recovery kit names the circle's members, no secret.
    let kit = alice.json(&["ego", "recovery-kit", "main"]).await;
    let names: Vec<&str> = kit["friends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "carol"], "{kit}");

    // The friends certify a new ego key: a FROST signature, verified by
    // the bridge's node like any record (verify_strict).
    let before = rec.cert().seq;
    let shown = rotate_until_ok(&alice).await;
    let rotated = record_where(&bridge, a, "the rotated record", |r| {
        r.cert().seq == before + 1
    })
    .await;
    assert_eq!(hex::encode(rotated.ego_key().as_bytes()), shown["ego_key"]);
    assert_eq!(rotated.circle_key(), rec.circle_key());
    assert_ne!(rotated.ego_key(), rec.ego_key());

    // A third friend: the old circle (bob and carol) signs the new link,
    // once their humans approved it (a change of who holds the circle is
    // never signed on the device's word alone).
    let v = alice
        .with_approvals(&["circle", "add", "main", "dave"], &[&bob, &carol], 60)
        .await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 2 of 3"),
        "{v}"
    );
    assert_eq!(v["generation"], 2);
    let grown = record_where(&bridge, a, "the grown circle", |r| {
        r.record().chain.len() == 2
    })
    .await;
    assert_ne!(grown.circle_key(), rec.circle_key());

    // Dave offline: bob and carol are enough.
    dave.stop().await;
    let seq = grown.cert().seq;
    rotate_until_ok(&alice).await;
    record_where(&bridge, a, "rotation with one friend offline", |r| {
        r.cert().seq == seq + 1
    })
    .await;

    // Carol offline too: one friend is not enough; the rotation fails and
    // says so, and the record stays as it was.
    carol.stop().await;
    let out = bounded(
        90,
        "a rotation with too few friends",
        alice.cli(&["ego", "rotate", "main"]),
    )
    .await;
    assert_eq!(out.code, 11, "{out:?}");
    assert!(
        out.stderr.contains("friends needed answered"),
        "{}",
        out.stderr
    );

    // Carol returns: the rotation succeeds.
    carol.spawn(Some(&bridge.addr), &[]).await;
    let seq = seq + 1;
    rotate_until_ok(&alice).await;
    let before = record_where(&bridge, a, "rotation after a friend returned", |r| {
        r.cert().seq == seq + 1
    })
    .await;

    // Dave leaves the circle: bob and carol share a new circle key, the
    // old circle signs the link; dave's share is of a key the record no
    // longer names.
    dave.spawn(Some(&bridge.addr), &[]).await;
    let v = alice
        .with_approvals(&["circle", "remove", "main", "dave"], &[&bob, &carol], 60)
        .await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 2 of 2"),
        "{v}"
    );
    let names: Vec<&str> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "carol"]);
    let shrunk = record_where(&bridge, a, "the smaller circle", |r| {
        r.record().chain.len() == 3
    })
    .await;
    assert_ne!(shrunk.circle_key(), before.circle_key());
    // Dave got no share of the new circle, and his agent deletes the old
    // one once it sees the record name a circle without him.
    assert!(!held_generations(&dave, a).await.contains(&3));
    wait_until(30, "dave's old share to be deleted", || async {
        held_generations(&dave, a).await.is_empty()
    })
    .await;

    // The friends' humans also approve the revocation: the ego ends, and
    // the owner's keystore keeps only the node's key.
    bounded(
        90,
        "revoking",
        alice.with_approvals(&["ego", "revoke", "main", "--yes"], &[&bob, &carol], 60),
    )
    .await;
    record_where(&bridge, a, "the revocation", |r| r.is_revoked()).await;
    assert_eq!(secret_kinds(&alice, a).await, ["device"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circle_and_friend_mistakes_get_clear_errors() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let alice = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    alice.create::<cyrcles_core::EgoId>("main").await;
    // A code that is not one.
    let out = alice.cli(&["friend", "accept", "hello-world"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("NUMBER-WORD-WORD"), "{}", out.stderr);
    let out = alice.cli(&["friend", "accept", "12-orbit-notaword"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("notaword"), "{}", out.stderr);
    // An unknown friend, an unknown ego, a threshold of one.
    let out = alice.cli(&["circle", "add", "main", "nobody"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("friend list"), "{}", out.stderr);
    let out = alice.cli(&["circle", "show", "other"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    let out = alice
        .cli(&["circle", "policy", "main", "--threshold", "1"])
        .await;
    assert_eq!(out.code, 2, "{out:?}");
    // An invite for an ego that does not exist.
    let out = alice.cli(&["friend", "invite", "--ego", "other"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    // Nothing was changed by the mistakes.
    let v = alice.json(&["circle", "show", "main"]).await;
    assert_eq!(v["planned"], Value::Array(vec![]));
    assert_eq!(
        alice.json(&["shares"]).await["shares"],
        Value::Array(vec![])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_request_from_a_stranger_is_refused_and_shown() {
    use cyrcles_core::circle::messages::kind;
    use cyrcles_core::circle::request::refused;
    use cyrcles_core::circle::{CircleId, CircleRefused, Purpose, RequestBody, SessionId};
    use cyrcles_core::envelope::Envelope;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let alice = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let a = alice.create("main").await;
    let record = bridge.resolve(a).await;
    let mut watch = alice
        .command(["--json", "watch"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();

    // Mallory, not a friend, asks alice's agent to sign a certificate for
    // an ego of hers.
    let key = cyrcles_core::SecretKey::from_seed(&[3; 32]);
    let stranger = crate::friends::stranger_ego();
    let body = RequestBody {
        ego_id: stranger,
        circle_id: CircleId([1; 16]),
        generation: 1,
        session: SessionId([2; 16]),
        purpose: Purpose::Link(cyrcles_core::record::CircleLink {
            ego_id: stranger,
            index: 1,
            circle_pk: key.public(),
            issued_at: bridge.now(),
        }),
        issued_at: bridge.now(),
    };
    let request = Envelope::wrap(kind::CEREMONY_REQUEST, &body.sign(&key));
    let (peer, addrs) = bridge.target(&record);

    // The person sees it in `cyrcles watch`. `watch` subscribes some time
    // after it starts and says nothing until an event, so Mallory asks
    // again until the notice of a refusal shows up.
    let line = bounded(10, "the notice", async {
        loop {
            let answer = bridge
                .node
                .circle(peer, addrs.clone(), &request)
                .await
                .unwrap();
            assert_eq!(answer.kind, kind::REFUSED);
            let r: CircleRefused = answer
                .open(cyrcles_core::circle::messages::MAX_CIRCLE_MESSAGE_SIZE)
                .unwrap();
            assert_eq!(r.code, refused::NOT_A_FRIEND);
            if let Ok(line) =
                tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await
            {
                return line.unwrap().unwrap();
            }
        }
    })
    .await;
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["event"], "notice", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("not a friend"),
        "{v}"
    );
}

/// `cyrcles --json shares` of `agent`: the generations held of `owner`.
async fn held_generations(agent: &Agent, owner: EgoId) -> Vec<u64> {
    let v = agent.json(&["shares"]).await;
    v["shares"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["friend_ego_id"] == owner.to_string().as_str())
        .map(|s| s["generation"].as_u64().unwrap())
        .collect()
}

/// The sizes: Alice and four friends at threshold 3, then a
/// fifth friend; rotations with two friends offline (enough) and three
/// (not enough until one returns); a friend loses their home, the others
/// rebuild the share, and a rotation needs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_friends_threshold_three_offline_friends_and_a_repaired_share() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let alice = circle_agent(&bridge).await;
    let bob = circle_agent(&bridge).await;
    let mut carol = circle_agent(&bridge).await;
    let mut dave = circle_agent(&bridge).await;
    let mut erin = circle_agent(&bridge).await;
    let mut frank = circle_agent(&bridge).await;
    let a = alice.create("main").await;
    let friends = [
        (&bob, "bob"),
        (&carol, "carol"),
        (&dave, "dave"),
        (&erin, "erin"),
        (&frank, "frank"),
    ];
    for (f, _) in friends {
        let id = f.create("main").await;
        bridge.resolve(id).await;
    }
    bridge.resolve(a).await;
    for (f, name) in friends {
        befriend(&alice, "main", name, f, "main", "alice").await;
    }
    // Dave's backup, taken before he held any share.
    dave.stop().await;
    let backup = cyrcles_testkit::TempDir::new("cyt");
    copy_home(&dave.home, backup.path());
    dave.spawn(Some(&bridge.addr), &[]).await;

    // Four friends, threshold 3 (the default majority).
    let four = [
        (&bob, "bob"),
        (&carol, "carol"),
        (&dave, "dave"),
        (&erin, "erin"),
    ];
    let v = grow_circle(&alice, &four).await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 3 of 4"),
        "{v}"
    );
    let four = record_where(&bridge, a, "the 3-of-4 circle", |r| {
        r.record().chain.len() == 3
    })
    .await;
    assert_eq!(secret_kinds(&alice, a).await, ["device", "ego"]);

    // A fifth friend: the circle is shared again, 3 of 5, and the new link
    // is signed by the old circle once its members' humans approved it.
    let v = alice
        .with_approvals(
            &["circle", "add", "main", "frank"],
            &[&bob, &carol, &dave, &erin],
            60,
        )
        .await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 3 of 5"),
        "{v}"
    );
    let five = record_where(&bridge, a, "the 3-of-5 circle", |r| {
        r.record().chain.len() == 4
    })
    .await;
    assert_ne!(five.circle_key(), four.circle_key());
    assert_eq!(held_generations(&frank, a).await, [4]);
    assert!(held_generations(&bob, a).await.contains(&4));

    // Two friends offline: three remain, enough.
    erin.stop().await;
    frank.stop().await;
    let seq = five.cert().seq;
    rotate_until_ok(&alice).await;
    record_where(&bridge, a, "rotation with two friends offline", |r| {
        r.cert().seq == seq + 1
    })
    .await;

    // Three offline: refused, and the record stays; one returns: done.
    carol.stop().await;
    let out = bounded(
        90,
        "a rotation with three friends offline",
        alice.cli(&["ego", "rotate", "main"]),
    )
    .await;
    assert_eq!(out.code, 11, "{out:?}");
    assert!(
        out.stderr.contains("2 of the 3 friends needed answered"),
        "{}",
        out.stderr
    );
    let shown = alice.json(&["ego", "show", "main"]).await;
    assert!(shown["last_error"].is_string() || shown["last_error"].is_null());
    assert_eq!(bridge.resolve(a).await.cert().seq, seq + 1);
    carol.spawn(Some(&bridge.addr), &[]).await;
    rotate_until_ok(&alice).await;
    let after = record_where(&bridge, a, "rotation once a friend returned", |r| {
        r.cert().seq == seq + 2
    })
    .await;

    // Dave loses his home and restores the old backup: his ego and the
    // friendship are back, the share is not.
    let dave_id: EgoId = dave.json(&["ego", "show", "main"]).await["ego_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    dave.stop().await;
    let stopped_at = bridge.now().secs();
    std::fs::remove_dir_all(&dave.home).unwrap();
    copy_home(backup.path(), &dave.home);
    // Endpoint seqs follow the clock in seconds: the restored home's next
    // publication must come after the second of the last one (which the
    // bridge sees, and which was before dave stopped).
    let last = bridge
        .resolve(dave_id)
        .await
        .endpoints()
        .map_or(0, |e| e.seq)
        .max(stopped_at);
    wait_until(10, "the clock to pass dave's last endpoints", || async {
        bridge.now().secs() > last
    })
    .await;
    dave.spawn(Some(&bridge.addr), &[]).await;
    assert_eq!(held_generations(&dave, a).await, Vec::<u64>::new());
    // Too few helpers online (bob, carol; frank and erin are away).
    let out = bounded(
        90,
        "a repair with too few helpers",
        alice.cli(&["circle", "repair", "main", "dave"]),
    )
    .await;
    assert_eq!(out.code, 11, "{out:?}");
    // Erin returns: bob, carol and erin rebuild dave's share.
    erin.spawn(Some(&bridge.addr), &[]).await;
    let v = alice
        .until_ok(&["circle", "repair", "main", "dave"], "the repair", 90)
        .await;
    assert!(v["note"].as_str().unwrap().contains("rebuilt"), "{v}");
    assert_eq!(held_generations(&dave, a).await, [4]);
    // Repairing a friend who is not in the circle, or who holds the share.
    let out = alice.cli(&["circle", "repair", "main", "nobody"]).await;
    assert_eq!(out.code, 4, "{out:?}");

    // Erin leaves again: bob, carol and dave must sign, with dave's
    // rebuilt share.
    erin.stop().await;
    rotate_until_ok(&alice).await;
    record_where(
        &bridge,
        a,
        "a rotation signed with the repaired share",
        |r| r.cert().seq == after.cert().seq + 1,
    )
    .await;
    let dave_shares = dave.json(&["shares"]).await;
    assert!(
        dave_shares["shares"][0]["last_signed_at"].is_u64(),
        "{dave_shares}"
    );
}

/// Copies a home directory (files and subdirectories), keeping it private.
pub fn copy_home(from: &std::path::Path, to: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_home(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// With a shared circle, the daemon rotates through the friends by itself
/// at half-life; with too few friends online it says why in `ego show`,
/// waits (1 minute, then longer) and succeeds once a friend returns.
/// Every node runs on one manual clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_rotates_through_friends_by_itself_and_retries() {
    use cyrcles_agent::daemon::{Daemon, DaemonOptions};
    use cyrcles_agent::home::Home;

    let clock = crate::common::ManualClock::starting_now();
    let bridge = Bridge::start(clock.clock()).await;
    let dir = cyrcles_testkit::TempDir::new("cyt");
    let start = |name: &str| {
        let options = DaemonOptions {
            home: Home::at(dir.path().join(name)),
            settings: crate::persistence::settings(&bridge),
            clock: clock.clock(),
            passphrase: None,
        };
        async move { Daemon::start(options).await.unwrap() }
    };
    let on = |name: &str| Agent::on_home(BIN, dir.path().join(name), dir.path().join("unused.log"));
    let alice_daemon = start("alice").await;
    let bob_daemon = start("bob").await;
    let carol_daemon = start("carol").await;
    let (alice, bob, carol) = (on("alice"), on("bob"), on("carol"));
    let a = alice.create("main").await;
    for f in [&bob, &carol] {
        let id = f.create("main").await;
        bridge.resolve(id).await;
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
    let shared = record_where(&bridge, a, "the shared record", |r| {
        r.record().chain.len() == 1
    })
    .await;

    // Carol is away when the certificate reaches half its life: the
    // rotation fails, and `ego show` says why.
    carol_daemon.shutdown().await;
    clock.advance(std::time::Duration::from_secs(16 * 86_400));
    let shown = wait_for(90, "the failed rotation to show", || async {
        let v = alice.json(&["ego", "show", "main"]).await;
        v["rotation_problem"]
            .as_str()
            .is_some_and(|e| e.contains("friends needed answered"))
            .then_some(v)
    })
    .await;
    assert_eq!(shown["cert_seq"], shared.cert().seq, "{shown}");
    // The next try is after the first wait (a minute).
    assert_eq!(
        shown["next_rotation"].as_u64().unwrap(),
        clock.now().secs() + 60,
        "{shown}"
    );

    // Carol returns; after the first wait, the daemon tries again and the
    // friends certify a new key.
    let carol_daemon = start("carol").await;
    clock.advance(Duration::from_secs(61));
    let rotated = record_where(&bridge, a, "the automatic rotation", |r| {
        r.cert().seq == shared.cert().seq + 1
    })
    .await;
    assert_ne!(rotated.ego_key(), shared.ego_key());
    let v = wait_for(30, "the problem to clear", || async {
        let v = alice.json(&["ego", "show", "main"]).await;
        v["rotation_problem"].is_null().then_some(v)
    })
    .await;
    assert_eq!(v["cert_seq"], rotated.cert().seq);
    for d in [alice_daemon, bob_daemon, carol_daemon] {
        d.shutdown().await;
    }
}

/// Adds `friends` one by one to `alice`'s circle of ego "main"; returns
/// the last `circle show`-like answer. The first two need nobody (the
/// circle is still the owner's); from the third on, the friends already
/// in the circle approve each change, as their humans would after a call.
pub(crate) async fn grow_circle(alice: &Agent, friends: &[(&Agent, &str)]) -> Value {
    let mut v = Value::Null;
    for (i, (_, name)) in friends.iter().enumerate() {
        let args = ["circle", "add", "main", name];
        v = if i < 2 {
            alice.json(&args).await
        } else {
            let holders: Vec<&Agent> = friends[..i].iter().map(|(f, _)| *f).collect();
            alice.with_approvals(&args, &holders, 60).await
        };
    }
    v
}

/// Docs/circle-authority.md, P6: the friends generate every new circle key
/// among themselves; the owner's agent only relays. Its keystore never
/// holds a key it did not hold before (polled while the circle is shared
/// and grown), holds no circle or root key after, and the friends' shares
/// combine: rotations through each new circle verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_device_holds_a_new_circle_key_and_the_friends_shares_sign() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let alice = circle_agent(&bridge).await;
    let bob = circle_agent(&bridge).await;
    let carol = circle_agent(&bridge).await;
    let dave = circle_agent(&bridge).await;
    let a = alice.create("main").await;
    for f in [&bob, &carol, &dave] {
        let id = f.create("main").await;
        bridge.resolve(id).await;
    }
    bridge.resolve(a).await;
    befriend(&alice, "main", "bob", &bob, "main", "alice").await;
    befriend(&alice, "main", "carol", &carol, "main", "alice").await;
    befriend(&alice, "main", "dave", &dave, "main", "alice").await;
    alice.json(&["circle", "add", "main", "bob"]).await;
    let before = secret_kinds(&alice, a).await;
    assert_eq!(before, ["circle", "device", "ego", "root"]);

    // Watch the owner's keystore while the circle is shared, then grown.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, home) = (stop.clone(), alice.home.clone());
        tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                seen.extend(secret_kinds_at(&home, a).await);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    let v = alice.json(&["circle", "add", "main", "carol"]).await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 2 of 2"),
        "{v}"
    );
    assert!(
        v["note"]
            .as_str()
            .unwrap()
            .contains("no device knows it whole"),
        "{v}"
    );
    let shared = record_where(&bridge, a, "the shared record", |r| {
        r.record().chain.len() == 1
    })
    .await;
    assert_eq!(secret_kinds(&alice, a).await, ["device", "ego"]);
    // The certificate under the new circle was signed by bob and carol's
    // shares: the record verifies, and so does a rotation through them.
    let seq = shared.cert().seq;
    rotate_until_ok(&alice).await;
    record_where(&bridge, a, "a rotation through the generated circle", |r| {
        r.cert().seq == seq + 1
    })
    .await;

    // Growing: the old circle signs the link, the new one (generated by
    // bob, carol and dave) the certificate.
    let v = alice
        .with_approvals(&["circle", "add", "main", "dave"], &[&bob, &carol], 60)
        .await;
    assert_eq!(v["generation"], 2, "{v}");
    let grown = record_where(&bridge, a, "the grown circle", |r| {
        r.record().chain.len() == 2
    })
    .await;
    assert_ne!(grown.circle_key(), shared.circle_key());
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.await.unwrap();
    let allowed: std::collections::BTreeSet<String> = before.into_iter().collect();
    assert!(seen.is_subset(&allowed), "{seen:?}");
    assert_eq!(secret_kinds(&alice, a).await, ["device", "ego"]);
    for f in [&bob, &carol, &dave] {
        assert!(held_generations(f, a).await.contains(&2));
    }
    let seq = grown.cert().seq;
    rotate_until_ok(&alice).await;
    record_where(&bridge, a, "a rotation through the grown circle", |r| {
        r.cert().seq == seq + 1
    })
    .await;
}

/// In a 2-of-2 circle a lost share cannot be rebuilt (the one other friend
/// is not a threshold): the repair says so at once, instead of "try again
/// when more are online", which could never happen; counts read as words
/// ("1 link", not "1 links").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_circle_says_at_once_that_a_repair_cannot_work() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let crate::recovery::TwoFriends { alice, .. } =
        crate::recovery::two_friends(&bridge, crate::recovery::CONFIG).await;
    let out = alice.cli(&["circle", "repair", "main", "bob"]).await;
    assert_eq!(out.code, 8, "{out:?}");
    assert!(
        out.stderr.contains("cannot rebuild a lost share") && out.stderr.contains("has 1"),
        "{out:?}"
    );
    let v = alice.json(&["ego", "show", "main"]).await;
    assert!(v["circle"].as_str().unwrap().ends_with("(1 link)"), "{v}");
}
