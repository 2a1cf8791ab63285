//! What survives a restart, automatic rotation on the daemon's clock, and
//! the passphrase-protected keystore.

use cyrcles_agent::config::AgentConfig;
use cyrcles_agent::daemon::{Daemon, DaemonOptions};
use cyrcles_agent::home::Home;
use cyrcles_core::login::{LoginResponse, verify_approval};

use crate::common::{BIN, Bridge, ISSUER, ManualClock, cli};
use cyrcles_testkit::{Agent, TempDir, bounded, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_egos_policies_and_bans() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let mut agent = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let id = agent.create("gaming").await;
    agent
        .json(&[
            "policy", "allow", "--ego", "gaming", "--bridge", ISSUER, "--client", "shop", "--auto",
        ])
        .await;
    agent
        .json(&[
            "ban",
            "add",
            "--ego",
            "gaming",
            "--bridge",
            "https://evil.test",
        ])
        .await;
    agent
        .json(&["ban", "add", "--program", "/usr/bin/nosy"])
        .await;
    let before = (
        agent.json(&["ego", "list"]).await,
        agent.json(&["policy", "list"]).await,
        agent.json(&["ban", "list"]).await,
        agent.json(&["status"]).await["nodes"][0]["peer_id"].clone(),
    );
    let first = bridge.resolve(id).await;
    let old_port = first.live_endpoints(bridge.now()).unwrap().peers[0]
        .addrs
        .clone();

    agent.stop().await;
    assert!(
        !agent.home.join("agent.sock").exists(),
        "the socket is removed"
    );
    agent.spawn(Some(&bridge.addr), &[]).await;

    let after = (
        agent.json(&["ego", "list"]).await,
        agent.json(&["policy", "list"]).await,
        agent.json(&["ban", "list"]).await,
        agent.json(&["status"]).await["nodes"][0]["peer_id"].clone(),
    );
    // The ego keeps its id, its certificate and its network identity.
    assert_eq!(before.0["egos"][0]["ego_id"], after.0["egos"][0]["ego_id"]);
    assert_eq!(
        before.0["egos"][0]["cert_seq"],
        after.0["egos"][0]["cert_seq"]
    );
    assert_eq!(before.1, after.1);
    assert_eq!(before.2, after.2);
    assert_eq!(before.3, after.3);
    // The node listens on a new port: the agent signs new endpoints and the
    // bridge finds them; the remembered site is still signed without asking.
    let fresh = bridge
        .resolve_where(id, |r| {
            r.live_endpoints(bridge.now())
                .is_some_and(|e| e.peers[0].addrs != old_port)
        })
        .await;
    let ch = bridge.challenge(id, "shop", 12);
    let r = bounded(10, "a login after restart", bridge.login(&fresh, &ch))
        .await
        .unwrap();
    let LoginResponse::Approved(a) = r else {
        panic!("expected an approval, got {r:?}");
    };
    assert_eq!(verify_approval(&ch, &a, &fresh, bridge.now()), Ok(()));
    assert_eq!(a.approved_by, Some(cyrcles_core::login::ApprovedBy::Policy));
    // The bridge ban survived too.
    let r = bridge
        .login(&fresh, &{
            let mut p = ch.params().clone();
            p.issuer = "https://evil.test".into();
            cyrcles_core::login::LoginChallenge::new(p).unwrap()
        })
        .await
        .unwrap();
    assert_eq!(
        r,
        LoginResponse::Denied(cyrcles_core::login::DenyReason::Banned)
    );
}

pub(crate) fn settings(bridge: &Bridge) -> cyrcles_agent::config::Settings {
    let mut c = AgentConfig::default();
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.network.bootstrap = vec![bridge.addr.to_string()];
    // Every agent of the tests is on loopback.
    c.network.dial_private_addrs = true;
    c.maintenance_interval_secs = 1;
    c.notify = false;
    c.validate().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ego_key_rotates_when_the_clock_says_so() {
    let clock = ManualClock::starting_now();
    let bridge = Bridge::start(clock.clock()).await;
    let dir = TempDir::new("cyt");
    let home = dir.path().join("home");
    let daemon = Daemon::start(DaemonOptions {
        home: Home::at(&home),
        settings: settings(&bridge),
        clock: clock.clock(),
        passphrase: None,
    })
    .await
    .unwrap();
    let v = cli(&home, &["--json", "ego", "create", "gaming"])
        .await
        .ok();
    let id = v["ego_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(v["cert_seq"], 1);
    let key1 = v["ego_key"].clone();
    let first = bridge.resolve(id).await;

    // Fourteen days on: not yet at half-life; the certificate stays. The
    // same maintenance pass renews the day-long endpoints (which it checks
    // after the rotation), so a record with endpoints signed at the new
    // time proves the pass ran before the certificate is looked at.
    clock.advance(std::time::Duration::from_secs(14 * 86_400));
    let day14 = clock.now();
    let renewed = bridge
        .resolve_where(id, |r| r.endpoints().is_some_and(|e| e.issued_at == day14))
        .await;
    assert_eq!(renewed.cert().seq, 1);
    let v = cli(&home, &["--json", "ego", "show", "gaming"]).await.ok();
    assert_eq!(v["cert_seq"], 1);

    // Past half of the 30 days: the daemon certifies a new key by itself.
    clock.advance(std::time::Duration::from_secs(2 * 86_400));
    let v = wait_for(20, "the rotation", || async {
        let v = cli(&home, &["--json", "ego", "show", "gaming"]).await.ok();
        (v["cert_seq"] == 2).then_some(v)
    })
    .await;
    assert_ne!(v["ego_key"], key1);
    let now = clock.now().secs();
    assert_eq!(v["cert_not_before"], now);
    assert_eq!(v["next_rotation"], now + 15 * 86_400);
    // The bridge sees the new certificate, and a login is signed by the new
    // key, which verifies against it (and not against the old record).
    let second = bridge.resolve_where(id, |r| r.cert().seq == 2).await;
    assert_eq!(
        hex::encode(second.ego_key().as_bytes()),
        v["ego_key"].as_str().unwrap()
    );
    cli(
        &home,
        &[
            "--json", "policy", "allow", "--ego", "gaming", "--bridge", ISSUER, "--client", "shop",
            "--auto",
        ],
    )
    .await
    .ok();
    let ch = bridge.challenge(id, "shop", 5);
    let LoginResponse::Approved(a) = bridge.login(&second, &ch).await.unwrap() else {
        panic!("expected an approval");
    };
    assert_eq!(a.cert_seq, 2);
    assert_eq!(verify_approval(&ch, &a, &second, bridge.now()), Ok(()));
    assert!(verify_approval(&ch, &a, &first, bridge.now()).is_err());
    daemon.shutdown().await;
    assert!(!home.join("agent.sock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_keystore_starts_locked_and_unlocks() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let dir = TempDir::new("cyt");
    let home = dir.path().join("home");
    let pass = dir.path().join("pass");
    let wrong = dir.path().join("wrong");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    std::fs::write(&wrong, "incorrect horse\n").unwrap();
    let out = cli(
        &home,
        &["init", "--passphrase-file", pass.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("passphrase"));
    // A second init refuses: 8.
    assert_eq!(cli(&home, &["init"]).await.code, 8);
    assert!(!home.join("agent.key").exists());

    let mut agent = Agent::on_home(BIN, home.clone(), dir.path().join("daemon.log"));
    agent.spawn(Some(&bridge.addr), &[]).await;
    assert!(agent.log_text().contains("locked"));
    let status = agent.json(&["status"]).await;
    assert_eq!(status["locked"], true);
    assert_eq!(status["protection"], "passphrase");
    // Locked: nothing that needs a key works (6).
    let out = agent.cli(&["ego", "create", "gaming"]).await;
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("unlock"));
    // A wrong passphrase: 6.
    let out = agent
        .cli(&["unlock", "--passphrase-file", wrong.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("wrong passphrase"));
    agent
        .json(&["unlock", "--passphrase-file", pass.to_str().unwrap()])
        .await;
    let id = agent.create("gaming").await;
    let record = bridge.resolve(id).await;
    // Locking forgets the keys: an approval needs an unlock first.
    agent.json(&["lock"]).await;
    let ch = bridge.challenge(id, "shop", 77);
    let (b, r, c) = (bridge.clone(), record.clone(), ch.clone());
    let answer = tokio::spawn(async move { b.login(&r, &c).await.unwrap() });
    let rid = agent.wait_requests(1).await[0]["id"].to_string();
    assert_eq!(agent.cli(&["approve", &rid, "--code", "77"]).await.code, 6);
    agent
        .json(&["unlock", "--passphrase-file", pass.to_str().unwrap()])
        .await;
    agent.json(&["approve", &rid, "--code", "77"]).await;
    assert!(matches!(
        bounded(10, "the answer", answer).await.unwrap(),
        LoginResponse::Approved(_)
    ));
    // Restarted with --passphrase-file, it is unlocked at once.
    agent.stop().await;
    agent
        .spawn(
            Some(&bridge.addr),
            &["--passphrase-file", pass.to_str().unwrap()],
        )
        .await;
    assert_eq!(agent.json(&["status"]).await["locked"], false);
    assert_eq!(
        agent.json(&["ego", "list"]).await["egos"][0]["ego_id"],
        id.to_string()
    );
    // The passphrase is nowhere in the home or the log.
    crate::security::assert_absent(
        &home,
        &agent.log,
        &[b"correct horse battery staple".to_vec()],
    );
}
