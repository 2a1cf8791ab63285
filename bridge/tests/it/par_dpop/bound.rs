//! Tokens and codes bound to a DPoP key: useless without it.

use super::*;

/// A proof is accepted once: replayed at the token endpoint or at
/// userinfo, it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_proof_is_refused() {
    let key = Key::ed25519();
    let bridge = bridge_with(&[]).await;
    let agent = TestAgent::start(&bridge, 903).await;
    let auth = public_client(&bridge, json!({})).await;
    let (code, verifier) = login(&bridge, &agent, &auth).await;
    let url = bridge.url("/token");
    let proof = key.proof_at("POST", &url, bridge.clock.now(), None);
    let (status, tokens) = post(
        &url,
        &auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
        Some(&proof),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = post(
        &url,
        &auth,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        Some(&proof),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );

    let access = tokens["access_token"].as_str().unwrap();
    let ui = bridge.url("/userinfo");
    let proof = key.proof_at("GET", &ui, bridge.clock.now(), Some(access));
    assert_eq!(userinfo(&ui, "DPoP", access, Some(&proof)).await.0, 200);
    let (status, challenge, body) = userinfo(&ui, "DPoP", access, Some(&proof)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(challenge.starts_with("DPoP "), "{challenge}");
}

/// A DPoP-bound access token stolen without its key is useless as a
/// bearer token, in the header or the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_access_token_is_refused_as_bearer() {
    let key = Key::ed25519();
    let l = Login::new(&[], 904, false, &key).await;
    let access = l.access();
    let (status, challenge, body) = userinfo(&l.userinfo_url(), "Bearer", &access, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");
    assert!(
        challenge.starts_with("DPoP error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(challenge.contains("algs=\"ES256 EdDSA\""), "{challenge}");
    let res = rp_http()
        .post(l.userinfo_url())
        .form(&[("access_token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // A Bearer presentation with a valid proof alongside is no better.
    let proof = key.proof_at(
        "GET",
        &l.userinfo_url(),
        l.bridge.clock.now(),
        Some(&access),
    );
    let (status, _, _) = userinfo(&l.userinfo_url(), "Bearer", &access, Some(&proof)).await;
    assert_eq!(status, 401);
}

/// A public client's refresh token is bound to its key (RFC 9449 §5):
/// another key is `invalid_grant`, no proof `invalid_dpop_proof`, and
/// neither burns the token for its holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_refresh_token_needs_its_key() {
    let key = Key::ed25519();
    let l = Login::new(&[], 905, false, &key).await;
    let refresh = l.refresh_token();
    let now = l.bridge.clock.now();
    let thief = Key::p256();
    let (status, body) = l
        .refresh(
            &refresh,
            Some(&thief.proof_at("POST", &l.token_url(), now, None)),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, body) = l.refresh(&refresh, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let (status, body) = l
        .refresh(
            &refresh,
            Some(&key.proof_at("POST", &l.token_url(), now, None)),
        )
        .await;
    assert_eq!(status, 200, "the holder still refreshes: {body}");
    assert_eq!(body["token_type"], "DPoP");
    // The new refresh token is bound to the same key.
    let next = body["refresh_token"].as_str().unwrap();
    let (status, body) = l
        .refresh(
            next,
            Some(&thief.proof_at("POST", &l.token_url(), now, None)),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

/// At userinfo the proof must carry the hash of the very token presented,
/// and be signed by the token's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_for_another_token_or_by_another_key_is_refused_at_userinfo() {
    let key = Key::p256();
    let l = Login::new(&[], 906, false, &key).await;
    let (access, ui, now) = (l.access(), l.userinfo_url(), l.bridge.clock.now());
    for proof in [
        key.proof_at("GET", &ui, now, Some("another token")),
        key.proof_at("GET", &ui, now, None),
        Key::p256().proof_at("GET", &ui, now, Some(&access)),
        key.proof_at("POST", &ui, now, Some(&access)),
    ] {
        let (status, challenge, body) = userinfo(&ui, "DPoP", &access, Some(&proof)).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_dpop_proof");
        assert!(challenge.starts_with("DPoP "), "{challenge}");
    }
    let (status, _, body) = userinfo(&ui, "DPoP", &access, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_dpop_proof"))
    );
    let proof = key.proof_at("GET", &ui, now, Some(&access));
    assert_eq!(userinfo(&ui, "DPoP", &access, Some(&proof)).await.0, 200);
}

/// The store of spent proofs at its cap: the next proof is refused (503,
/// nothing forgotten: a replay of a remembered one is still refused), and
/// once the remembered proofs leave their window there is room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proof_store_at_its_cap_refuses_and_forgets_nothing_early() {
    let key = Key::ed25519();
    let l = Login::new(
        &[("CYRCLES_BRIDGE_OIDC_MAX_DPOP_PROOFS", "3")],
        907,
        false,
        &key,
    )
    .await;
    let (access, ui) = (l.access(), l.userinfo_url());
    let now = l.bridge.clock.now();
    let first = key.proof_at("GET", &ui, now, Some(&access));
    assert_eq!(userinfo(&ui, "DPoP", &access, Some(&first)).await.0, 200);
    let second = key.proof_at("GET", &ui, now, Some(&access));
    assert_eq!(userinfo(&ui, "DPoP", &access, Some(&second)).await.0, 200);
    assert_eq!(l.bridge.state.store.rows("dpop_proofs").await.unwrap(), 3);

    let res = rp_http()
        .get(&ui)
        .header("Authorization", format!("DPoP {access}"))
        .header("DPoP", key.proof_at("GET", &ui, now, Some(&access)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().get("retry-after").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let (status, _, body) = userinfo(&ui, "DPoP", &access, Some(&first)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_dpop_proof"))
    );
    assert_eq!(l.bridge.state.store.rows("dpop_proofs").await.unwrap(), 3);

    l.bridge.clock.advance(61);
    let later = key.proof_at("GET", &ui, l.bridge.clock.now(), Some(&access));
    assert_eq!(userinfo(&ui, "DPoP", &access, Some(&later)).await.0, 200);
    assert_eq!(l.bridge.state.store.rows("dpop_proofs").await.unwrap(), 1);
}

/// Logs in through a pushed request carrying `extra` (and a proof at /par,
/// if given): the code and its PKCE verifier.
async fn login_pushed(
    bridge: &TestBridge,
    agent: &TestAgent,
    auth: &Auth,
    extra: &[(&str, &str)],
    par_proof: Option<&str>,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut pairs = vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    let (status, body) = post(&bridge.url("/par"), auth, &pairs, par_proof).await;
    assert_eq!(status, 201, "{body}");
    let uri = body["request_uri"].as_str().unwrap();
    let end = browse(
        bridge,
        &browser(),
        &authorize_url(bridge, auth.id(), uri),
        &agent.ego_text(),
    )
    .await;
    (end.code(), verifier)
}

/// `dpop_jkt` (RFC 9449 §10) binds the code to a key: redeemed without a
/// proof or with another key it is refused, and stays good for the key's
/// holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_bound_with_dpop_jkt_is_redeemed_only_with_that_key() {
    let bridge = bridge_with(&[]).await;
    let agent = TestAgent::start(&bridge, 909).await;
    let auth = public_client(&bridge, json!({})).await;
    let (key, thief) = (Key::ed25519(), Key::p256());
    let (status, body, _, _) = push(&bridge, &auth, &[("dpop_jkt", "not a thumbprint")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let jkt = key.jkt();
    let (code, verifier) = login_pushed(&bridge, &agent, &auth, &[("dpop_jkt", &jkt)], None).await;
    let (status, body) = exchange(&bridge, &auth, &code, &verifier, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let (status, body) = exchange(&bridge, &auth, &code, &verifier, Some(&thief)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, tokens) = exchange(&bridge, &auth, &code, &verifier, Some(&key)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
}

/// A proof sent to /par binds the code as `dpop_jkt` does (RFC 9449
/// §10.1); with a `dpop_jkt` naming another key, the push is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_at_par_binds_the_code_to_its_key() {
    let bridge = bridge_with(&[]).await;
    let agent = TestAgent::start(&bridge, 910).await;
    let auth = public_client(&bridge, json!({})).await;
    let (key, thief) = (Key::p256(), Key::ed25519());
    let par = bridge.url("/par");
    let now = bridge.clock.now();
    let (status, body) = post(
        &par,
        &auth,
        &[("response_type", "code"), ("dpop_jkt", &thief.jkt())],
        Some(&key.proof_at("POST", &par, now, None)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let (status, body) = post(
        &par,
        &auth,
        &[("response_type", "code")],
        Some(&key.proof_at("POST", &bridge.url("/token"), now, None)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "htu"
    );

    let proof = key.proof_at("POST", &par, now, None);
    let (code, verifier) = login_pushed(&bridge, &agent, &auth, &[], Some(&proof)).await;
    let (status, body) = exchange(&bridge, &auth, &code, &verifier, Some(&thief)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, tokens) = exchange(&bridge, &auth, &code, &verifier, Some(&key)).await;
    assert_eq!(status, 200, "{tokens}");
    // The proof sent to /par was spent there: a complete push replaying it
    // is refused.
    let (_, challenge) = pkce();
    let (status, body) = post(
        &par,
        &auth,
        &[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
        Some(&proof),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
}
