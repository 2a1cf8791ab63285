//! Journeys across the real programs, each started as a process on ports
//! and homes picked at runtime: `cyrcles-bridge serve`, `cyrcles-demo
//! site` (an OpenID Connect relying party on the `openidconnect` crate),
//! and `cyrcles` daemons driven through their CLI. The browser is an HTTP
//! client with cookies that clicks through the pages as a person would;
//! the headless-Chromium test is separate.
#![allow(
    unreachable_pub,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod browser;
mod common;

use common::{
    AGENT, Bridge, Ended, Login, Site, befriend, browser, by_id, journey_dir, log_in, start_agent,
};
use cyrcles_testkit::{Agent, require_env, wait_for, wait_until};

/// 1. A newcomer: an agent and an ego; a login to the demo site through
/// the bridge, approved with the code; the site verified the ID token and
/// shows its claims; a denied login logs nobody in; RP-initiated logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_logs_in_to_the_demo_site() {
    let dir = journey_dir("newcomer");
    let bridge = Bridge::start(dir.path(), &[]).await;
    let site = Site::start(dir.path(), &bridge.issuer).await;
    let alice = start_agent(dir.path(), "alice", &bridge.bootstrap).await;
    let ego: String = alice.create("main").await;
    let b = browser();
    assert!(site.home(&b).await.contains("Login with Cyrcles"));

    let login = Login::approved(&site, &bridge.issuer, &alice);
    let page = log_in(&b, &login, &ego).await.welcome();
    assert_eq!(by_id(&page, "claim-iss").unwrap(), bridge.issuer);
    assert!(!by_id(&page, "claim-sub").unwrap().is_empty());

    // Log out at the site: it sends the browser to the bridge, which asks
    // and sends it back, logged out.
    let res = b.post(format!("{}/logout", site.url)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to_bridge = res.headers()["location"].to_str().unwrap().to_string();
    assert!(to_bridge.starts_with(&bridge.url("/logout")), "{to_bridge}");
    let page = b
        .get(&to_bridge)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let field = |name: &str| common::input(&page, name).unwrap();
    let res = b
        .post(bridge.url("/logout"))
        .form(&[
            ("csrf", field("csrf")),
            ("logout_state", field("logout_state")),
            ("decision", "logout".into()),
        ])
        .send()
        .await
        .unwrap();
    let back = res.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with(&site.url), "{back}");
    assert!(site.home(&b).await.contains("id=\"login\""));

    // A login the person denies: the bridge says so; the site logs nobody in.
    let other = browser();
    let denied = Login {
        approve: false,
        ..login
    };
    match log_in(&other, &denied, &ego).await {
        Ended::Bridge(status, html) => {
            assert!(
                status < 500 && html.contains("you denied it, or a wrong number"),
                "{html}"
            );
        }
        e @ Ended::Site(..) => panic!("a denied login reached the site: {e:?}"),
    }
    assert!(site.home(&other).await.contains("id=\"login\""));

    // Bad input at the site: a callback nobody started, a forged logout
    // token; clear 400s.
    let res = other
        .get(format!("{}/callback?code=x&state=y", site.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = other
        .post(format!("{}/backchannel-logout", site.url))
        .form(&[("logout_token", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    bridge.stop().await;
}

/// The README's quickstart: `cyrcles-demo` starts a bridge on its
/// defaults (SQLite in `./cyrcles-bridge-data`, a new DHT) and the demo
/// site, and prints the agent's bootstrap address; with it, an agent logs
/// in on the site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_as_the_readme_says() {
    let dir = journey_dir("quickstart");
    let (site, issuer, bootstrap) = Site::quickstart(dir.path()).await;
    assert!(bootstrap.starts_with("/ip4/127.0.0.1/tcp/"), "{bootstrap}");
    // The bridge keeps its data where the README says.
    assert!(dir.join("cyrcles-bridge-data").join("bridge.db").exists());
    let alice = start_agent(dir.path(), "alice", &bootstrap).await;
    let ego: String = alice.create("main").await;
    let login = Login::approved(&site, &issuer, &alice);
    let page = log_in(&browser(), &login, &ego).await.welcome();
    assert_eq!(by_id(&page, "claim-iss").unwrap(), issuer);
}

/// Shares alice's circle with her three friends (2 of 3): the third
/// friend is a change of who holds the circle, which the first two
/// approve as their humans would after alice's call.
async fn circle_of_three(alice: &Agent, friends: [(&Agent, &str); 3]) {
    for (f, name) in friends {
        f.create::<String>("main").await;
        befriend(alice, name, f, "alice").await;
    }
    for (_, name) in &friends[..2] {
        alice
            .until_ok(&["circle", "add", "main", name], "adding a friend", 90)
            .await;
    }
    let v = alice
        .with_approvals(
            &["circle", "add", "main", friends[2].1],
            &[friends[0].0, friends[1].0],
            90,
        )
        .await;
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 2 of 3"),
        "{v}"
    );
}

/// 2. Friends: invites by code, the circle shared, the ego key rotated by
/// the friends; a login still works, with the same subject at the site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friends_rotate_the_key_and_logins_go_on() {
    let dir = journey_dir("friends");
    let bridge = Bridge::start(dir.path(), &[]).await;
    let site = Site::start(dir.path(), &bridge.issuer).await;
    let alice = start_agent(dir.path(), "alice", &bridge.bootstrap).await;
    let bob = start_agent(dir.path(), "bob", &bridge.bootstrap).await;
    let carol = start_agent(dir.path(), "carol", &bridge.bootstrap).await;
    let dave = start_agent(dir.path(), "dave", &bridge.bootstrap).await;
    let ego: String = alice.create("main").await;
    circle_of_three(&alice, [(&bob, "bob"), (&carol, "carol"), (&dave, "dave")]).await;
    let login = Login::approved(&site, &bridge.issuer, &alice);
    let before = log_in(&browser(), &login, &ego).await.welcome();
    let key = alice.json(&["ego", "show", "main"]).await["ego_key"].clone();

    let rotated = alice
        .until_ok(&["ego", "rotate", "main"], "a rotation through friends", 90)
        .await;
    assert_ne!(rotated["ego_key"], key);
    // The bridge learns the new record and the new key signs the login.
    let after = log_in(&browser(), &login, &ego).await.welcome();
    assert_eq!(
        by_id(&after, "claim-sub").unwrap(),
        by_id(&before, "claim-sub").unwrap()
    );
    bridge.stop().await;
}

/// 3. A stolen device against a 3-of-5 circle (docs/threat-model.md,
/// "The circle against a stolen device"): a thief runs a copy of alice's
/// home. It tries to hand her circle to two sock puppets and to end her
/// ego; both wait for the friends' humans, who deny. Alice recovers on a
/// new device; the thief objects, the three friends who spoke to her
/// approve anyway. She logs in to the demo site with the same subject as
/// before; the thief's copy is never asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_device_loses_to_the_friends_and_alice_logs_in_again() {
    let dir = journey_dir("recovery");
    let bridge = Bridge::start(dir.path(), &[]).await;
    let site = Site::start(dir.path(), &bridge.issuer).await;
    let mut alice = start_agent(dir.path(), "alice", &bridge.bootstrap).await;
    let ego: String = alice.create("main").await;
    let mut friends = Vec::new();
    for name in ["bob", "carol", "dave", "erin", "frank"] {
        let f = start_agent(dir.path(), name, &bridge.bootstrap).await;
        f.create::<String>("main").await;
        befriend(&alice, name, &f, "alice").await;
        friends.push((f, name));
    }
    // The circle grows to 3 of 5; from the third friend on, the friends
    // already in it approve each change.
    let mut v = serde_json::Value::Null;
    for (i, (_, name)) in friends.iter().enumerate() {
        let args = ["circle", "add", "main", name];
        v = if i < 2 {
            alice.until_ok(&args, "adding a friend", 90).await
        } else {
            let holders: Vec<&Agent> = friends[..i].iter().map(|(f, _)| f).collect();
            alice.with_approvals(&args, &holders, 90).await
        };
    }
    assert!(
        v["state"].as_str().unwrap().starts_with("shared 3 of 5"),
        "{v}"
    );
    let login = Login::approved(&site, &bridge.issuer, &alice);
    let before = log_in(&browser(), &login, &ego).await.welcome();
    let kit = alice.write_kit("main", dir.path()).await;
    let old_key = alice.json(&["ego", "show", "main"]).await["ego_key"].clone();

    // The device is stolen: the thief keeps the home and runs it.
    alice.stop().await;
    let stolen = dir.join("stolen");
    std::fs::rename(&alice.home, &stolen).unwrap();
    let mut thief = Agent::on_home(AGENT, stolen, dir.join("thief.log"));
    thief.spawn(Some(&bridge.bootstrap), &[]).await;
    let all: Vec<&Agent> = friends.iter().map(|(f, _)| f).collect();

    // Two sock puppets into the circle, then the end of the ego: each
    // waits for the friends' humans, who were not called and deny.
    let mut puppets = Vec::new();
    for name in ["mallory", "trent"] {
        let p = start_agent(dir.path(), name, &bridge.bootstrap).await;
        p.create::<String>("main").await;
        befriend(&thief, name, &p, "alice").await;
        puppets.push(p);
    }
    // Mallory first: her change stays waiting at the friends.
    let _ = thief.cli(&["circle", "add", "main", "mallory"]).await;
    for args in [
        &["circle", "add", "main", "trent"][..],
        &["ego", "revoke", "main", "--yes"][..],
    ] {
        let out = thief.cli(args).await;
        assert_ne!(out.code, 0, "{out:?}");
        let digits = cyrcles_testkit::fingerprint_in(&out.stderr)
            .unwrap_or_else(|| panic!("no digits: {out:?}"));
        for f in &all {
            f.decide_change(&digits, false).await;
        }
        let out = thief.cli(args).await;
        assert!(out.stderr.contains("denied by their human"), "{out:?}");
    }

    // Alice recovers on a new device; the thief objects; bob, carol and
    // dave, who spoke to her, approve anyway: final.
    let fresh = start_agent(dir.path(), "alice-new", &bridge.bootstrap).await;
    // A node that has just started may not find the record at once.
    let started = fresh
        .until_ok(
            &["recover", "--kit", kit.to_str().unwrap(), "--name", "main"],
            "starting the recovery",
            60,
        )
        .await;
    let digits = started["outgoing"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until(60, "the thief's copy to hear of the recovery", || async {
        std::fs::read_to_string(&thief.log)
            .unwrap_or_default()
            .contains("recovery of this agent's ego was requested")
    })
    .await;
    let out = thief.cli(&["recovery", "object", "main"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    for f in &all[..3] {
        let request = wait_for(60, "the recovery request", || async {
            let v = f.json(&["recovery", "list"]).await;
            v["incoming"].as_array().and_then(|l| l.first().cloned())
        })
        .await;
        assert_eq!(request["fingerprint"], digits.as_str());
        let id = request["id"].as_u64().unwrap().to_string();
        f.json(&["recovery", "approve", &id]).await;
    }
    wait_until(90, "the recovery", || async {
        let v = fresh.json(&["recovery", "list"]).await;
        v["outgoing"][0]["state"] == "done"
    })
    .await;
    let new_key = fresh.json(&["ego", "show", "main"]).await["ego_key"].clone();
    assert_ne!(new_key, old_key);
    // Once the recovered record is published, the bridge (which looked the
    // ego up a moment ago) uses it at once, not its cached one.
    wait_until(60, "the recovered record to be published", || async {
        !fresh.json(&["ego", "show", "main"]).await["last_published_at"].is_null()
    })
    .await;

    // A login now reaches the new device, signed by the new key, with the
    // same subject at the site; the thief's copy is never asked.
    let login = Login::approved(&site, &bridge.issuer, &fresh);
    let after = log_in(&browser(), &login, &ego).await.welcome();
    assert_eq!(
        by_id(&after, "claim-sub").unwrap(),
        by_id(&before, "claim-sub").unwrap()
    );
    let thief_requests = thief.json(&["requests"]).await;
    assert_eq!(thief_requests["requests"], serde_json::json!([]));
    bridge.stop().await;
}

/// 4. Revocation: the ego is revoked; the bridge ends its session and
/// sends a back-channel logout that the demo site receives; new logins
/// are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_ego_is_logged_out_and_refused() {
    let dir = journey_dir("revocation");
    let bridge = Bridge::start(dir.path(), &[]).await;
    let site = Site::start(dir.path(), &bridge.issuer).await;
    let alice = start_agent(dir.path(), "alice", &bridge.bootstrap).await;
    let ego: String = alice.create("main").await;
    let login = Login::approved(&site, &bridge.issuer, &alice);
    let b = browser();
    log_in(&b, &login, &ego).await.welcome();

    let out = alice.cli(&["ego", "revoke", "main", "--yes"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    // The bridge's session check sees the revocation and tells the site.
    let page = wait_for(60, "the back-channel logout", || async {
        let page = site.home(&b).await;
        (!page.contains("id=\"welcome\"")).then_some(page)
    })
    .await;
    assert!(
        by_id(&page, "note")
            .unwrap()
            .contains("back-channel logout"),
        "{page}"
    );
    // A new login is refused by the bridge.
    match log_in(&browser(), &login, &ego).await {
        Ended::Bridge(status, html) => {
            assert!(status < 500 && html.contains("revoked"), "{status}: {html}");
        }
        e @ Ended::Site(..) => panic!("a revoked ego logged in: {e:?}"),
    }
    bridge.stop().await;
}

/// 5. Two bridge instances on one PostgreSQL database, sharing nothing
/// else but the master key: a login started on one completes while the
/// browser polls the other. Runs when `CYRCLES_TEST_POSTGRES_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_on_one_bridge_completes_on_another() {
    use base64::Engine;
    use rand_core::{OsRng, RngCore};
    use sqlx::Connection;

    let Some(admin_url) = require_env("CYRCLES_TEST_POSTGRES_URL") else {
        return;
    };
    // A database of its own.
    let name = format!("cyrcles_e2e_{}_{}", std::process::id(), OsRng.next_u32());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let db = format!("{base}/{name}");

    let dir = journey_dir("scale-out");
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    let master = base64::engine::general_purpose::STANDARD.encode(key);
    let env = |dir: &str| {
        vec![
            ("CYRCLES_BRIDGE_DATABASE_URL", db.clone()),
            ("CYRCLES_BRIDGE_MASTER_KEY", master.clone()),
            ("CYRCLES_BRIDGE_DATA_DIR", dir.to_string()),
        ]
    };
    let first = Bridge::start(dir.path(), &env(&dir.join("a").display().to_string())).await;
    let mut second_env = env(&dir.join("b").display().to_string());
    second_env.push(("CYRCLES_BRIDGE_P2P_BOOTSTRAP", first.bootstrap.clone()));
    // The second instance serves the same issuer (behind a load balancer,
    // both answer for one URL); the browser reaches it on its own port.
    let second_dir = dir.join("second");
    std::fs::create_dir_all(&second_dir).unwrap();
    second_env.push(("CYRCLES_BRIDGE_ISSUER", first.issuer.clone()));
    let second = Bridge::start(&second_dir, &second_env).await;

    let site = Site::start(dir.path(), &first.issuer).await;
    let alice = start_agent(dir.path(), "alice", &first.bootstrap).await;
    let ego: String = alice.create("main").await;
    let login = Login {
        site: &site,
        bridge: &first.issuer,
        poll: &second.http,
        agent: &alice,
        approve: true,
    };
    let page = log_in(&browser(), &login, &ego).await.welcome();
    assert_eq!(by_id(&page, "claim-iss").unwrap(), first.issuer);
    first.stop().await;
    second.stop().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
