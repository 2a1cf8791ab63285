//! The daemon and the CLI: starting, creating egos, finding them in the
//! DHT, and the CLI's answers to mistakes.

use cyrcles_core::record::CertStatus;

use crate::common::{BIN, Bridge, cli};
use cyrcles_testkit::{Agent, TempDir, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_ego_is_found_and_verified_by_another_node() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let agent = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    // A fresh home was initialised without a passphrase, and said so.
    assert!(
        agent.log_text().contains("without a passphrase"),
        "{}",
        agent.log_text()
    );
    let id = agent.create("gaming").await;
    let found = bridge.resolve(id).await;
    // The bridge's node verified it (a VerifiedEgo only comes out of
    // verification) and it is the agent's ego, with live endpoints.
    assert_eq!(found.ego_id(), id);
    assert_eq!(found.cert().seq, 1);
    assert_eq!(found.cert().status, CertStatus::Active);
    let shown = agent.json(&["ego", "show", "gaming"]).await;
    assert_eq!(shown["ego_id"], id.to_string());
    assert_eq!(shown["fingerprint"], id.fingerprint().to_string());
    assert_eq!(shown["ego_key"], hex::encode(found.ego_key().as_bytes()));
    let ep = found.live_endpoints(bridge.now()).unwrap();
    let peer = cyrcles_p2p::PeerId::from_bytes(&ep.peers[0].peer_id).unwrap();
    assert_eq!(shown["endpoints"]["peers"][0]["peer_id"], peer.to_string());
    // The certificate is renewed at half of its 30 days.
    let half = found.cert().not_before.plus(15 * 86_400).secs();
    assert_eq!(shown["next_rotation"], half);
    // Published to the bridge's node.
    let published = wait_for(20, "the publication status", || async {
        let v = agent.json(&["ego", "show", "gaming"]).await;
        v["last_published_at"].is_u64().then_some(v)
    })
    .await;
    assert!(published["last_error"].is_null(), "{published}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egos_have_their_own_network_identity() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let agent = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let a = agent.create("family").await;
    let b = agent.create("work").await;
    let ra = bridge.resolve(a).await;
    let rb = bridge.resolve(b).await;
    let peer = |r: &cyrcles_core::record::VerifiedEgo| {
        r.live_endpoints(bridge.now()).unwrap().peers[0]
            .peer_id
            .clone()
    };
    assert_ne!(peer(&ra), peer(&rb), "two egos must not share a peer id");
    let status = agent.json(&["status"]).await;
    assert_eq!(status["egos"], 2);
    assert_eq!(status["nodes"].as_array().unwrap().len(), 2);
    // Each node answers, and says so (a stopped one would say "stopped").
    for n in status["nodes"].as_array().unwrap() {
        assert_eq!(n["state"], "running", "{status}");
    }
    assert_eq!(
        agent.json(&["ego", "show", "work"]).await["node"],
        "running"
    );
    let list = agent.json(&["ego", "list"]).await;
    let names: Vec<&str> = list["egos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["family", "work"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_get_clear_errors_and_distinct_exit_codes() {
    // No daemon: exit 3, and the message says what to do.
    let dir = TempDir::new("cyt");
    let out = cli(dir.path(), &["status"]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("not running") && out.stderr.contains("cyrcles daemon"));
    let out = cli(dir.path(), &["--json", "requests"]).await;
    assert_eq!(out.code, 3);
    assert_eq!(out.json()["error"]["code"], "not-running");

    let agent = Agent::builder(BIN).start().await;
    agent.create::<cyrcles_core::EgoId>("gaming").await;
    // Unknown ego: 4.
    let out = agent.cli(&["ego", "show", "nope"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("no ego named \"nope\""));
    // A taken name: 8; a bad name: 2.
    assert_eq!(agent.cli(&["ego", "create", "gaming"]).await.code, 8);
    let out = agent.cli(&["ego", "create", "no spaces/here"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("not a valid ego name"));
    // Unknown request: 4; a code out of range is a usage error: 2.
    assert_eq!(agent.cli(&["approve", "99", "--code", "12"]).await.code, 4);
    assert_eq!(agent.cli(&["approve", "1", "--code", "100"]).await.code, 2);
    // Revocation asks for confirmation; without a terminal it refuses.
    let out = agent.cli(&["ego", "revoke", "gaming"]).await;
    assert_eq!(out.code, 8, "{out:?}");
    assert_eq!(
        agent.json(&["ego", "show", "gaming"]).await["state"],
        "active"
    );
    // A second daemon on the same home refuses to start.
    let second = agent.command(["daemon"]).output().await.unwrap();
    assert_eq!(second.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));
    // Help reads well and lists the exit codes.
    let help = agent.cli(&["--help"]).await;
    assert_eq!(help.code, 0);
    for word in [
        "daemon",
        "approve",
        "requests",
        "Exit codes",
        "wrong match code",
    ] {
        assert!(
            help.stdout.contains(word),
            "help lacks {word:?}:\n{}",
            help.stdout
        );
    }
    // Nothing panicked anywhere.
    assert!(!agent.log_text().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_published_and_ends_the_ego() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let agent = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let id = agent.create("old").await;
    let before = bridge.resolve(id).await;
    let v = agent.json(&["ego", "revoke", "old", "--yes"]).await;
    assert_eq!(v["state"], "revoked");
    let revoked = bridge
        .resolve_where(id, |r| r.cert().status == CertStatus::Revoked)
        .await;
    assert!(revoked.is_revoked());
    assert_eq!(revoked.cert().seq, 2);
    // It cannot be rotated or revoked again.
    assert_eq!(agent.cli(&["ego", "rotate", "old"]).await.code, 8);
    assert_eq!(agent.cli(&["ego", "revoke", "old", "--yes"]).await.code, 8);
    // A revocation carries no endpoints, so a bridge sends no challenge;
    // one sent to the old endpoints anyway is refused.
    assert!(revoked.endpoints().is_none());
    let ch = bridge.challenge(id, "shop", 11);
    let r = bridge.login(&before, &ch).await;
    assert_eq!(
        r,
        Ok(cyrcles_core::login::LoginResponse::Denied(
            cyrcles_core::login::DenyReason::UnknownEgo
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_kit_names_the_ego_and_holds_no_secret() {
    let agent = Agent::builder(BIN).start().await;
    let id: cyrcles_core::EgoId = agent.create("gaming").await;
    let file = agent.home.parent().unwrap().join("kit.json");
    let out = agent
        .cli(&[
            "ego",
            "recovery-kit",
            "gaming",
            "--out",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let kit: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(kit["format"], "cyrcles-recovery-kit");
    assert_eq!(kit["version"], 1);
    assert_eq!(kit["ego_id"], id.to_string());
    assert_eq!(kit["fingerprint"], id.fingerprint().to_string());
    assert_eq!(kit["circle_id"].as_str().unwrap().len(), 32);
    assert_eq!(kit["friends"], serde_json::json!([]));
    // The same kit every time (the circle id is stored, not made up).
    let again = agent.json(&["ego", "recovery-kit", "gaming"]).await;
    assert_eq!(again["circle_id"], kit["circle_id"]);
    let secrets = {
        let home = cyrcles_agent::home::Home::at(&agent.home);
        let ks = cyrcles_agent::keystore::Keystore::open(&home)
            .await
            .unwrap();
        let key = ks.unlock(&home, None).await.unwrap();
        let mut v = Vec::new();
        for kind in ks.secret_kinds(&id).await.unwrap() {
            v.push(ks.secret(&key, &id, kind).await.unwrap().to_vec());
        }
        v
    };
    assert_eq!(secrets.len(), 4);
    let text = std::fs::read_to_string(&file).unwrap();
    for s in secrets {
        assert!(!text.contains(&hex::encode(&s)));
    }
}

/// `cyrcles init | head -0`: standard output is a pipe nobody reads any
/// more. The command still does its work and ends quietly with status 0,
/// where `println!` panicked with a stack trace.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let dir = TempDir::new("cyt");
    let home = dir.join("home");
    let (reader, writer) = std::io::pipe().unwrap();
    // The reader is gone before the program writes its first byte.
    drop(reader);
    let out = std::process::Command::new(BIN)
        .arg("--home")
        .arg(&home)
        .arg("init")
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    assert!(home.join("agent.db").exists(), "the keystore was made");
}

/// An agent keeps its network (issue 16): started once with
/// `--bootstrap`, then stopped, it is started again exactly as the advice
/// says (`cyrcles daemon`, no address) and still joins the network: a new
/// ego's record reaches the bridge. A damaged memory of the network is a
/// clear error, not a silent agent without peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restarted_as_the_advice_says_joins_its_network_again() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let mut agent = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    agent.stop().await;
    let out = agent.cli(&["status"]).await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("`cyrcles daemon`"), "{out:?}");
    agent.spawn(None, &[]).await;
    assert!(
        agent.log_text().contains("remembered address"),
        "{}",
        agent.log_text()
    );
    let ego = agent.create("main").await;
    bridge.resolve(ego).await;
    agent.stop().await;

    // Junk where the addresses were: the daemon refuses to start and says
    // how to fix it; the keystore is untouched.
    std::fs::write(agent.home.join("bootstrap"), [0xff, 0xfe]).unwrap();
    let out =
        cyrcles_testkit::bounded(30, "a daemon on a damaged memory", agent.cli(&["daemon"])).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("not a list of bootstrap addresses")
            && out.stderr.contains("--bootstrap"),
        "{out:?}"
    );
    // Started with an address again, it is remembered again.
    agent.spawn(Some(&bridge.addr), &[]).await;
    let v = agent.json(&["ego", "list"]).await;
    assert_eq!(v["egos"][0]["ego_id"], ego.to_string().as_str(), "{v}");
    let saved = std::fs::read_to_string(agent.home.join("bootstrap")).unwrap();
    assert_eq!(saved.trim(), bridge.addr.to_string());
}
