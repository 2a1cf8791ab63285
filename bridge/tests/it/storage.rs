//! Storage on SQLite always, and on PostgreSQL when
//! `CYRCLES_TEST_POSTGRES_URL` is set (each test its own database);
//! restarts; several instances sharing one PostgreSQL database.

use cyrcles_bridge::config::DbKind;
use cyrcles_bridge::store::{
    ChallengeRow, ChallengeStatus, CodeRow, EgoRow, NewGrant, RotateOutcome, Store, TokenKind,
    UseCodeOutcome,
};
use openidconnect::{OAuth2TokenResponse, PkceCodeVerifier, TokenResponse};
use serde_json::Value;

use crate::common::{
    BridgeOptions, Db, Rp, TestAgent, TestBridge, TestClock, browse, browser, location, postgres_db,
};
use cyrcles_testkit::wait_for;

async fn stores() -> Vec<(&'static str, Store)> {
    let dir = std::env::temp_dir().join(format!(
        "cyrcles-store-test-{}",
        cyrcles_bridge::random::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let sqlite = Store::connect(&url, DbKind::Sqlite, 4).await.unwrap();
    sqlite.migrate().await.unwrap();
    let mut out = vec![("sqlite", sqlite)];
    match postgres_db().await {
        Some(url) => {
            let pg = Store::connect(&url, DbKind::Postgres, 4).await.unwrap();
            pg.migrate().await.unwrap();
            // Migrating twice is a no-op.
            pg.migrate().await.unwrap();
            out.push(("postgres", pg));
        }
        None => {
            eprintln!("CYRCLES_TEST_POSTGRES_URL is not set: PostgreSQL storage not tested here")
        }
    }
    out
}

fn grant(id: &str) -> NewGrant {
    NewGrant {
        grant_id: id.into(),
        client_id: "c1".into(),
        ego_id: "e1".into(),
        sid: Some("s1".into()),
        sub: "sub1".into(),
        scope: "openid".into(),
        claims: None,
        nonce: Some("n".into()),
        auth_time: 100,
        acr: "acr".into(),
        cert_seq: None,
        cert_epoch: None,
        created_at: 100,
        revoked_at: None,
    }
}

#[tokio::test]
async fn codes_tokens_challenges_and_the_ego_cache_behave_on_every_backend() {
    for (name, s) in stores().await {
        // A code is redeemed once; the second try is reported as reuse.
        s.insert_grant(&grant("g1")).await.unwrap();
        let code = CodeRow {
            code_hash: vec![1; 32],
            grant_id: "g1".into(),
            client_id: "c1".into(),
            redirect_uri: "https://a.example/cb".into(),
            code_challenge: None,
            expires_at: 200,
        };
        s.insert_code(&code).await.unwrap();
        // Another client's try neither redeems nor uses it up.
        assert!(
            matches!(
                s.use_code(&[1; 32], "c2", 150).await.unwrap(),
                UseCodeOutcome::Unknown
            ),
            "{name}"
        );
        assert!(
            matches!(
                s.use_code(&[1; 32], "c1", 150).await.unwrap(),
                UseCodeOutcome::Fresh(_)
            ),
            "{name}"
        );
        assert!(
            matches!(
                s.use_code(&[1; 32], "c1", 150).await.unwrap(),
                UseCodeOutcome::Reused { .. }
            ),
            "{name}"
        );
        assert!(
            matches!(
                s.use_code(&[9; 32], "c1", 150).await.unwrap(),
                UseCodeOutcome::Unknown
            ),
            "{name}"
        );
        s.insert_code(&CodeRow {
            code_hash: vec![2; 32],
            ..code.clone()
        })
        .await
        .unwrap();
        assert!(
            matches!(
                s.use_code(&[2; 32], "c1", 300).await.unwrap(),
                UseCodeOutcome::Expired
            ),
            "{name}"
        );

        // Refresh rotation and reuse.
        s.insert_token(
            &[3; 32],
            TokenKind::Refresh,
            "g1",
            "c1",
            "openid",
            100,
            1_000,
        )
        .await
        .unwrap();
        s.insert_token(
            &[4; 32],
            TokenKind::Access,
            "g1",
            "c1",
            "openid",
            100,
            1_000,
        )
        .await
        .unwrap();
        assert!(matches!(
            s.rotate_refresh(&[3; 32], "other", 150).await.unwrap(),
            RotateOutcome::Invalid
        ));
        assert!(matches!(
            s.rotate_refresh(&[3; 32], "c1", 150).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        assert!(matches!(
            s.rotate_refresh(&[3; 32], "c1", 151).await.unwrap(),
            RotateOutcome::Reused { .. }
        ));
        assert!(s.active_token(&[4; 32], 150).await.unwrap().is_some());
        s.revoke_grant("g1", 152).await.unwrap();
        assert!(
            s.active_token(&[4; 32], 150).await.unwrap().is_none(),
            "{name}: revocation cascades"
        );

        // A challenge moves out of pending once.
        let ch = ChallengeRow {
            id: "ch1".into(),
            interaction_id: "ix".into(),
            ego_id: "e1".into(),
            challenge: vec![0xa0],
            match_code: 7,
            issued_at: 100,
            expires_at: 220,
            status: ChallengeStatus::Pending,
            detail: None,
            ego_pk: None,
            cert_seq: None,
            cert_epoch: None,
            client_prefix: "192.0.2.1".into(),
        };
        s.insert_challenge(&ch, 100).await.unwrap();
        assert_eq!(s.pending_challenges("e1", 150).await.unwrap(), 1);
        assert!(
            s.transition_challenge(
                "ch1",
                ChallengeStatus::Pending,
                ChallengeStatus::Approved,
                None,
                Some(&[5; 32]),
                Some((2, 1)),
                151
            )
            .await
            .unwrap()
        );
        assert!(
            !s.transition_challenge(
                "ch1",
                ChallengeStatus::Pending,
                ChallengeStatus::Denied,
                None,
                None,
                None,
                152
            )
            .await
            .unwrap()
        );
        let got = s.get_challenge("ch1").await.unwrap().unwrap();
        assert_eq!(
            (got.status, got.cert_seq, got.cert_epoch),
            (ChallengeStatus::Approved, Some(2), Some(1))
        );

        // The ego cache never goes back to a lower rank.
        let row = |cert_seq: i64, record: u8| EgoRow {
            ego_id: "e1".into(),
            record: vec![record],
            chain_len: 1,
            epoch: 0,
            cert_seq,
            endpoints_seq: 1,
            chain_digest: vec![0; 32],
            cert_digest: vec![record; 32],
            fetched_at: 100,
        };
        s.put_ego(&row(3, 3)).await.unwrap();
        s.put_ego(&row(2, 2)).await.unwrap();
        assert_eq!(
            s.get_ego("e1").await.unwrap().unwrap().record,
            vec![3],
            "{name}: rolled back"
        );
        s.put_ego(&row(4, 4)).await.unwrap();
        assert_eq!(s.get_ego("e1").await.unwrap().unwrap().cert_seq, 4);
        // A recovery (a higher epoch) replaces it whatever its seq, and the
        // lost key's later certificates (the old epoch) do not come back.
        let recovered = EgoRow {
            epoch: 1,
            ..row(2, 5)
        };
        s.put_ego(&recovered).await.unwrap();
        let got = s.get_ego("e1").await.unwrap().unwrap();
        assert_eq!(
            (got.epoch, got.cert_seq, got.record),
            (1, 2, vec![5]),
            "{name}"
        );
        s.put_ego(&row(9, 9)).await.unwrap();
        assert_eq!(
            s.get_ego("e1").await.unwrap().unwrap().record,
            vec![5],
            "{name}: a lower epoch replaced a recovery"
        );

        // Consents widen.
        s.put_consent("e1", "c1", "openid", 1).await.unwrap();
        s.put_consent("e1", "c1", "openid profile", 2)
            .await
            .unwrap();
        assert_eq!(
            s.consent("e1", "c1").await.unwrap().as_deref(),
            Some("openid profile")
        );
        assert!(s.purge_expired(10_000_000).await.unwrap() > 0);
    }
}

async fn login_code(
    bridge: &TestBridge,
    agent: &TestAgent,
    rp: &Rp,
    b: &reqwest::Client,
) -> (String, PkceCodeVerifier) {
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let end = browse(bridge, b, &url, &agent.ego_text()).await;
    (end.code(), verifier)
}

async fn restart_keeps_state(db: Db) {
    let clock = TestClock::new();
    let mut bridge = TestBridge::start_with(BridgeOptions {
        db: db.clone(),
        clock: clock.clone(),
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 21).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let b = browser();
    let (code_a, verifier_a) = login_code(&bridge, &agent, &rp, &b).await;
    let (code_b, verifier_b) = login_code(&bridge, &agent, &rp, &b).await;
    let tokens = rp.exchange(code_a, verifier_a).await.unwrap();
    let jwks_before: Value = b
        .get(bridge.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = bridge.dir.clone();
    bridge.stop().await;

    // The same data directory (SQLite file, master key) or database.
    let bridge = TestBridge::start_with(BridgeOptions {
        db,
        clock,
        dir: Some(dir),
        ..Default::default()
    })
    .await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let jwks_after: Value = b
        .get(bridge.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_before, jwks_after, "signing keys survive the restart");
    // A code issued before the restart is redeemable after it.
    let after = rp.exchange(code_b, verifier_b).await.unwrap();
    assert!(after.id_token().is_some());
    // Tokens issued before it still introspect as active.
    let v: Value = b
        .post(bridge.url("/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", tokens.access_token().secret().as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_codes_tokens_and_keys_on_sqlite() {
    restart_keeps_state(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_codes_tokens_and_keys_on_postgres() {
    let Some(url) = postgres_db().await else {
        eprintln!("CYRCLES_TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    restart_keeps_state(Db::Postgres(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_on_one_instance_completes_on_another() {
    let Some(url) = postgres_db().await else {
        eprintln!("CYRCLES_TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    let key = "CYRCLES_BRIDGE_MASTER_KEY".to_string();
    let master = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(cyrcles_bridge::random::random_bytes::<32>())
    };
    let clock = TestClock::new();
    let a = TestBridge::start_with(BridgeOptions {
        db: Db::Postgres(url.clone()),
        clock: clock.clone(),
        env: vec![(key.clone(), master.clone())],
        ..Default::default()
    })
    .await;
    // Instance B serves the same issuer (as behind a load balancer) from
    // its own port, with its own p2p node, on the same database.
    let b_bridge = TestBridge::start_with(BridgeOptions {
        db: Db::Postgres(url),
        clock,
        env: vec![
            (key, master),
            ("CYRCLES_BRIDGE_ISSUER".into(), a.issuer.clone()),
            (
                "CYRCLES_BRIDGE_P2P_BOOTSTRAP".into(),
                a.p2p_addr.to_string(),
            ),
        ],
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&a, 31).await;
    let (id, secret) = a.confidential().await;
    let rp = Rp::discover(&a, &id, Some(&secret)).await;
    let browser = browser();
    let (url, _, nonce, verifier) = rp.auth_url(&[], &[]);
    // Start at A: authorize, then the ego form (A sends the challenge).
    let res = browser.get(&url).send().await.unwrap();
    let ix = location(&res);
    let page = browser
        .get(a.url(&ix))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::common::input(&page, "csrf").unwrap();
    let res = browser
        .post(a.url(&format!("{ix}/ego")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("ego_id", agent.ego_text().as_str()),
        ])
        .send()
        .await
        .unwrap();
    let wait = location(&res);
    // Poll B until the answer A received shows there.
    let b_base = format!("http://127.0.0.1:{}", b_bridge_port(&b_bridge));
    let s = wait_for(30, "the answer to show at B", || async {
        let s: Value = browser
            .get(format!("{b_base}{wait}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (s["status"] != "pending").then_some(s)
    })
    .await;
    assert_eq!(s["status"], "approved");
    // Continue at B: consent page, then the code.
    let res = browser
        .get(format!("{b_base}{wait}/continue"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let consent = browser
        .get(format!("{b_base}{}", location(&res)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::common::input(&consent, "csrf").unwrap();
    let res = browser
        .post(format!("{b_base}{ix}/consent"))
        .form(&[("csrf", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    let code = crate::common::query(&location(&res))["code"].clone();
    let tokens = rp.exchange(code, verifier).await.unwrap();
    tokens
        .id_token()
        .unwrap()
        .claims(&rp.client.id_token_verifier(), &nonce)
        .unwrap();
}

fn b_bridge_port(b: &TestBridge) -> u16 {
    b.state.settings.listen.port()
}

#[tokio::test]
async fn the_fair_caps_behave_on_every_backend() {
    use cyrcles_bridge::store::{
        Admission, Caps, ChallengeAdmission, ClientRow, InteractionRow, PendingCaps,
    };
    for (name, s) in stores().await {
        let ix = |id: &str, prefix: &str, at: i64| InteractionRow {
            id: id.into(),
            client_id: "c".into(),
            request: "{}".into(),
            csrf: "x".into(),
            created_at: at,
            expires_at: at + 900,
            ego_id: None,
            session_sid: None,
            finished_at: None,
            client_prefix: prefix.into(),
            approval: None,
        };
        let caps = Caps {
            per_prefix: 2,
            total: 3,
        };
        let put = |i: InteractionRow| {
            let s = s.clone();
            async move { s.insert_interaction_bounded(&i, caps, 100).await.unwrap() }
        };
        assert_eq!(put(ix("a1", "A", 1)).await, Admission::Admitted, "{name}");
        assert_eq!(put(ix("a2", "A", 2)).await, Admission::Admitted, "{name}");
        // A full prefix replaces its own oldest.
        assert_eq!(put(ix("a3", "A", 3)).await, Admission::Replaced, "{name}");
        assert!(
            s.get_interaction("a1", 100).await.unwrap().is_none(),
            "{name}"
        );
        assert_eq!(put(ix("b1", "B", 4)).await, Admission::Admitted, "{name}");
        // The total is full: a newcomer takes the heaviest prefix's oldest...
        assert_eq!(put(ix("c1", "C", 5)).await, Admission::Replaced, "{name}");
        assert!(
            s.get_interaction("a2", 100).await.unwrap().is_none(),
            "{name}"
        );
        // ...and a prefix as heavy as any is refused.
        assert_eq!(put(ix("b2", "B", 6)).await, Admission::Refused, "{name}");
        assert_eq!(s.interaction_load(100).await.unwrap().0, 3, "{name}");

        let ch = |id: &str, prefix: &str, at: i64| ChallengeRow {
            id: id.into(),
            interaction_id: "ix".into(),
            ego_id: "ego".into(),
            challenge: vec![0xa0],
            match_code: 1,
            issued_at: at,
            expires_at: at + 120,
            status: ChallengeStatus::Pending,
            detail: None,
            ego_pk: None,
            cert_seq: None,
            cert_epoch: None,
            client_prefix: prefix.into(),
        };
        let caps = PendingCaps {
            per_prefix: 2,
            total: 2,
        };
        let start = |c: ChallengeRow| {
            let s = s.clone();
            async move { s.insert_challenge_fair(&c, 100, caps).await.unwrap() }
        };
        assert_eq!(start(ch("x1", "X", 90)).await, ChallengeAdmission::Admitted);
        assert_eq!(start(ch("x2", "X", 91)).await, ChallengeAdmission::Admitted);
        assert_eq!(
            start(ch("x3", "X", 92)).await,
            ChallengeAdmission::PrefixFull
        );
        assert_eq!(
            start(ch("y1", "Y", 93)).await,
            ChallengeAdmission::Replaced {
                cancelled: "x1".into()
            },
            "{name}"
        );
        assert_eq!(start(ch("x4", "X", 94)).await, ChallengeAdmission::EgoFull);
        assert_eq!(s.pending_challenges_of("ego", "Y", 100).await.unwrap(), 1);
        let x1 = s.get_challenge("x1").await.unwrap().unwrap();
        assert_eq!(x1.status, ChallengeStatus::Cancelled, "{name}");

        let client = |id: &str, at: i64| ClientRow {
            client_id: id.into(),
            secret_hash: None,
            name: "n".into(),
            metadata: "{}".into(),
            registration_token_hash: None,
            created_at: at,
            updated_at: at,
            dynamic: true,
            first_used_at: None,
        };
        assert!(
            s.insert_dynamic_client_bounded(&client("k1", 1), 2, 100)
                .await
                .unwrap()
        );
        assert!(
            s.insert_dynamic_client_bounded(&client("k2", 2), 2, 100)
                .await
                .unwrap()
        );
        s.mark_client_used("k2", 50).await.unwrap();
        // The oldest never used makes room; then all are used: refused.
        assert!(
            s.insert_dynamic_client_bounded(&client("k3", 3), 2, 100)
                .await
                .unwrap()
        );
        assert!(s.get_client("k1").await.unwrap().is_none(), "{name}");
        s.mark_client_used("k3", 60).await.unwrap();
        assert!(
            !s.insert_dynamic_client_bounded(&client("k4", 4), 2, 100)
                .await
                .unwrap()
        );
        assert_eq!(s.dynamic_clients().await.unwrap(), 2, "{name}");
    }
}
