//! PAR and DPoP end to end, and instances sharing one database.

use super::*;

/// PAR push → authorize with the request_uri → login through the agent →
/// code → token with a DPoP proof → userinfo with DPoP → refresh with DPoP,
/// by a public client with an Ed25519 key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_request_login_and_dpop_bound_tokens_end_to_end() {
    let key = Key::ed25519();
    let bridge = bridge_with(&[]).await;
    let d = get_json(&browser(), &bridge.url("/.well-known/openid-configuration")).await;
    assert_eq!(
        d["pushed_authorization_request_endpoint"],
        bridge.url("/par")
    );
    assert_eq!(d["require_pushed_authorization_requests"], false);
    assert_eq!(
        d["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"])
    );

    let agent = TestAgent::start(&bridge, 901).await;
    let auth = public_client(&bridge, json!({})).await;
    let (status, body, state, verifier) = push(&bridge, &auth, &[]).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap();
    assert!(uri.starts_with(URN) && uri.len() == URN.len() + 43, "{uri}");
    // Only a hash of the request_uri is stored.
    assert_eq!(bridge.state.store.rows("pushed_requests").await.unwrap(), 1);

    // The front channel carries only client_id and request_uri.
    let end = browse(
        &bridge,
        &browser(),
        &authorize_url(&bridge, auth.id(), uri),
        &agent.ego_text(),
    )
    .await;
    assert_eq!(end.params().get("state"), Some(&state));
    assert_eq!(bridge.state.store.rows("pushed_requests").await.unwrap(), 0);

    let (status, tokens) = exchange(&bridge, &auth, &end.code(), &verifier, Some(&key)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap();

    let ui = bridge.url("/userinfo");
    let proof = key.proof_at("GET", &ui, bridge.clock.now(), Some(access));
    let (status, _, info) = userinfo(&ui, "DPoP", access, Some(&proof)).await;
    assert_eq!(status, 200, "{info}");
    assert!(info["sub"].is_string());

    let token_url = bridge.url("/token");
    let proof = key.proof_at("POST", &token_url, bridge.clock.now(), None);
    let (status, refreshed) = post(
        &token_url,
        &auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
        Some(&proof),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["token_type"], "DPoP");
    let access2 = refreshed["access_token"].as_str().unwrap();
    let proof = key.proof_at("GET", &ui, bridge.clock.now(), Some(access2));
    let (status, _, again) = userinfo(&ui, "DPoP", access2, Some(&proof)).await;
    assert_eq!(status, 200);
    assert_eq!(again["sub"], info["sub"]);
}

/// A confidential client with a P-256 key: introspection names the key
/// (`cnf.jkt`, RFC 9449 §6.2) and the type; its refresh token is bound by
/// its authentication, so a refresh without a proof gets a Bearer token
/// that works as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_names_the_key_of_a_bound_token() {
    let key = Key::p256();
    let l = Login::new(&[], 902, true, &key).await;
    assert_eq!(l.tokens["token_type"], "DPoP");
    let (status, seen) = post(
        &l.bridge.url("/introspect"),
        &l.auth,
        &[("token", &l.access())],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["token_type"], "DPoP");
    assert_eq!(seen["cnf"], json!({ "jkt": key.jkt() }));

    let (status, bearer) = l.refresh(&l.refresh_token(), None).await;
    assert_eq!(status, 200, "{bearer}");
    assert_eq!(bearer["token_type"], "Bearer");
    let access = bearer["access_token"].as_str().unwrap();
    let (status, _, _) = userinfo(&l.userinfo_url(), "Bearer", access, None).await;
    assert_eq!(status, 200, "an unbound token works as Bearer, as before");
    let (status, seen) = post(
        &l.bridge.url("/introspect"),
        &l.auth,
        &[("token", access)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seen["token_type"], "Bearer");
    assert!(seen.get("cnf").is_none(), "{seen}");
    // An unbound token presented as DPoP is refused.
    let proof = key.proof_at("GET", &l.userinfo_url(), l.bridge.clock.now(), Some(access));
    let (status, _, _) = userinfo(&l.userinfo_url(), "DPoP", access, Some(&proof)).await;
    assert_eq!(status, 401);
}

/// Two instances on one PostgreSQL database behind one issuer, and the
/// base URL of the second.
async fn two_instances() -> Option<(TestBridge, TestBridge, String)> {
    let Some(url) = postgres_db().await else {
        eprintln!("CYRCLES_TEST_POSTGRES_URL is not set: skipped");
        return None;
    };
    let master = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(random::random_bytes::<32>())
    };
    let mut pairs = vec![("CYRCLES_BRIDGE_MASTER_KEY".to_string(), master)];
    let clock = crate::common::TestClock::new();
    let a = TestBridge::start_with(BridgeOptions {
        db: Db::Postgres(url.clone()),
        clock: clock.clone(),
        env: pairs.clone(),
        ..BridgeOptions::default()
    })
    .await;
    pairs.push(("CYRCLES_BRIDGE_ISSUER".into(), a.issuer.clone()));
    let b = TestBridge::start_with(BridgeOptions {
        db: Db::Postgres(url),
        clock,
        env: pairs,
        ..BridgeOptions::default()
    })
    .await;
    let b_base = format!("http://127.0.0.1:{}", b.state.settings.listen.port());
    Some((a, b, b_base))
}

/// Instances behind one issuer agree: a request_uri used at one is gone
/// at the other, and a proof spent at one is a replay at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_a_database_agree_on_request_uris_and_proofs() {
    let Some((a, _b, b_base)) = two_instances().await else {
        return;
    };
    let agent = TestAgent::start(&a, 908).await;
    let auth = public_client(&a, json!({})).await;
    let (_, body, _, _) = push(&a, &auth, &[]).await;
    let uri = body["request_uri"].as_str().unwrap();
    let at_a = authorize_url(&a, auth.id(), uri);
    let at_b = at_a.replace(&a.issuer, &b_base);
    assert_interaction(open(&at_b).await);
    assert_page(open(&at_a).await, "invalid_request_uri");

    let key = Key::p256();
    let (code, verifier) = login(&a, &agent, &auth).await;
    let (status, tokens) = exchange(&a, &auth, &code, &verifier, Some(&key)).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    // The proof names the issuer's URL, wherever the balancer sends it.
    let proof = key.proof_at("GET", &a.url("/userinfo"), a.clock.now(), Some(access));
    let ui_b = format!("{b_base}/userinfo");
    assert_eq!(userinfo(&ui_b, "DPoP", access, Some(&proof)).await.0, 200);
    let (status, _, body) = userinfo(&a.url("/userinfo"), "DPoP", access, Some(&proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_dpop_proof"))
    );
}
