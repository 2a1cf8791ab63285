//! Pushed authorization requests (RFC 9126): the attacks they stop and
//! the bounds of what they store.

use super::*;

/// A request_uri works once: a second use (a replayed link, a back button)
/// is shown as a page, never redirected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_uri_is_used_once() {
    let bridge = bridge_with(&[]).await;
    let auth = public_client(&bridge, json!({})).await;
    let (_, body, _, _) = push(&bridge, &auth, &[]).await;
    let url = authorize_url(&bridge, auth.id(), body["request_uri"].as_str().unwrap());
    assert_interaction(open(&url).await);
    assert_page(open(&url).await, "invalid_request_uri");
}

/// A request_uri pushed by one client is refused to another, and stays
/// usable by its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_uri_is_refused_to_another_client() {
    let bridge = bridge_with(&[]).await;
    let owner = public_client(&bridge, json!({})).await;
    let other = public_client(&bridge, json!({})).await;
    let (_, body, _, _) = push(&bridge, &owner, &[]).await;
    let uri = body["request_uri"].as_str().unwrap();
    assert_page(
        open(&authorize_url(&bridge, other.id(), uri)).await,
        "invalid_request_uri",
    );
    // Without client_id: refused too.
    let mut u = url::Url::parse(&bridge.url("/authorize")).unwrap();
    u.query_pairs_mut().append_pair("request_uri", uri);
    assert_page(open(u.as_str()).await, "client_id");
    assert_interaction(open(&authorize_url(&bridge, owner.id(), uri)).await);
}

/// A request_uri expires `oidc.pushed_request_ttl_secs` after the push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_request_uri_is_refused() {
    let bridge = bridge_with(&[]).await;
    let auth = public_client(&bridge, json!({})).await;
    let (_, body, _, _) = push(&bridge, &auth, &[]).await;
    let url = authorize_url(&bridge, auth.id(), body["request_uri"].as_str().unwrap());
    bridge.clock.advance(61);
    assert_page(open(&url).await, "invalid_request_uri");
    // A made-up one is refused alike.
    let forged = authorize_url(&bridge, auth.id(), &format!("{URN}{}", random::token()));
    assert_page(open(&forged).await, "invalid_request_uri");
    // The maintenance purge sweeps expired pushes.
    let (_, _, _, _) = push(&bridge, &auth, &[]).await;
    bridge.clock.advance(61);
    bridge
        .state
        .store
        .purge_expired(bridge.clock.now())
        .await
        .unwrap();
    assert_eq!(bridge.state.store.rows("pushed_requests").await.unwrap(), 0);
}

/// A push authenticates as a token request does: a wrong secret is
/// `invalid_client` and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_with_a_wrong_secret_is_refused() {
    let bridge = bridge_with(&[]).await;
    let Auth::Basic(id, _) = confidential_client(&bridge).await else {
        unreachable!()
    };
    let wrong = Auth::Basic(id.clone(), "not-the-secret".into());
    let (status, body, _, _) = push(&bridge, &wrong, &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    // Naming a confidential client without its secret is no better.
    let (status, body, _, _) = push(&bridge, &Auth::Public(id), &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(bridge.state.store.rows("pushed_requests").await.unwrap(), 0);
}

/// What /authorize refuses, /par refuses, as JSON errors; and a pushed
/// request cannot itself name a request_uri.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_requests_are_validated_as_authorize_validates_them() {
    let bridge = bridge_with(&[]).await;
    let auth = public_client(&bridge, json!({})).await;
    let par = bridge.url("/par");
    for (extra, code) in [
        (
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (vec![("request_uri", "urn:x")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "profile")], "invalid_scope"),
        (vec![("prompt", "none login")], "invalid_request"),
    ] {
        let (status, body, _, _) = push(&bridge, &auth, &extra).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(code)),
            "{extra:?}: {body}"
        );
    }
    // No PKCE from a public client; a redirect URI it did not register.
    let (status, body) = post(
        &par,
        &auth,
        &[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(body["error_description"].as_str().unwrap().contains("PKCE"));
    let (status, body) = post(
        &par,
        &auth,
        &[
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("scope", "openid"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(bridge.state.store.rows("pushed_requests").await.unwrap(), 0);
}

/// The caps: the push beyond a client's maximum (429) or the bridge's
/// (503) is refused with a clear error; what is stored stays usable; once
/// pushes expire, there is room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_caps_refuse_the_next_push_and_keep_what_is_stored() {
    let bridge = bridge_with(&[
        ("CYRCLES_BRIDGE_OIDC_MAX_PUSHED_REQUESTS_PER_CLIENT", "2"),
        ("CYRCLES_BRIDGE_OIDC_MAX_PUSHED_REQUESTS", "3"),
    ])
    .await;
    let a = public_client(&bridge, json!({})).await;
    let b = public_client(&bridge, json!({})).await;
    let mut kept = Vec::new();
    for _ in 0..2 {
        let (status, body, _, _) = push(&bridge, &a, &[]).await;
        assert_eq!(status, 201, "{body}");
        kept.push((
            a.id().to_string(),
            body["request_uri"].as_str().unwrap().to_string(),
        ));
    }
    let (status, body, _, _) = push(&bridge, &a, &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("2 unused pushed requests")
    );

    let (status, body, _, _) = push(&bridge, &b, &[]).await;
    assert_eq!(status, 201, "{body}");
    kept.push((
        b.id().to_string(),
        body["request_uri"].as_str().unwrap().to_string(),
    ));
    let (status, body, _, _) = push(&bridge, &b, &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(bridge.state.store.rows("pushed_requests").await.unwrap(), 3);

    for (client, uri) in &kept {
        assert_interaction(open(&authorize_url(&bridge, client, uri)).await);
    }
    let (status, _, _, _) = push(&bridge, &a, &[]).await;
    assert_eq!(status, 201, "used pushes free their place");
    bridge.clock.advance(61);
    for _ in 0..2 {
        let (status, _, _, _) = push(&bridge, &b, &[]).await;
        assert_eq!(status, 201, "expired pushes free their place");
    }
}

/// A client registered with `require_pushed_authorization_requests` (RFC
/// 9126 §6) is refused a front-channel request; the same through /par
/// works. The bridge-wide setting does the same for every client and says
/// so in discovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_channel_request_is_refused_where_par_is_required() {
    let front = |bridge: &TestBridge, id: &str| {
        let (_, challenge) = pkce();
        let mut u = url::Url::parse(&bridge.url("/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        u.to_string()
    };
    let bridge = bridge_with(&[]).await;
    let strict = public_client(
        &bridge,
        json!({ "require_pushed_authorization_requests": true }),
    )
    .await;
    let lax = public_client(&bridge, json!({})).await;
    assert_page(
        open(&front(&bridge, strict.id())).await,
        "pushed authorization",
    );
    assert_interaction(open(&front(&bridge, lax.id())).await);
    let (_, body, _, _) = push(&bridge, &strict, &[]).await;
    let uri = body["request_uri"].as_str().unwrap();
    assert_interaction(open(&authorize_url(&bridge, strict.id(), uri)).await);

    let everywhere = bridge_with(&[(
        "CYRCLES_BRIDGE_OIDC_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS",
        "true",
    )])
    .await;
    let d = get_json(
        &browser(),
        &everywhere.url("/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(d["require_pushed_authorization_requests"], true);
    let lax = public_client(&everywhere, json!({})).await;
    assert_page(
        open(&front(&everywhere, lax.id())).await,
        "pushed authorization",
    );
    let (_, body, _, _) = push(&everywhere, &lax, &[]).await;
    let uri = body["request_uri"].as_str().unwrap();
    assert_interaction(open(&authorize_url(&everywhere, lax.id(), uri)).await);
}
