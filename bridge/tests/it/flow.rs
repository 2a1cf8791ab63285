//! The full authorization code flow, driven by a relying party built on
//! the `openidconnect` crate, with a real agent peer answering over the
//! real DHT and `/cyrcles/login/1`.

use openidconnect::core::CoreUserInfoClaims;
use openidconnect::{AccessTokenHash, OAuth2TokenResponse, TokenResponse};

use crate::common::{Rp, TestAgent, TestBridge, browse, browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_code_flow_with_an_openidconnect_relying_party() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 1).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;

    // Authorization: PKCE, nonce, state.
    let (url, csrf, nonce, verifier) = rp.auth_url(&["profile"], &[]);
    let b = browser();
    let end = browse(&bridge, &b, &url, &agent.ego_text()).await;
    let params = end.params();
    assert_eq!(params.get("state"), Some(csrf.secret()));
    assert_eq!(
        params.get("iss"),
        Some(&bridge.issuer),
        "RFC 9207 iss parameter"
    );
    // The agent saw one challenge naming the site and the bridge.
    {
        let seen = agent.challenges.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let p = seen[0].params();
        assert_eq!(p.issuer, bridge.issuer);
        assert_eq!(p.client_id, id);
        assert_eq!(p.client_name, "Test Site");
        assert_eq!(p.redirect_origin, "http://127.0.0.1:9");
        assert_eq!(p.ego_id, agent.ego_id);
    }

    // Code exchange, ID token verification (signature, iss, aud, exp,
    // nonce), at_hash.
    let tokens = rp.exchange(end.code(), verifier).await.unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = rp.client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    assert!(claims.auth_time().is_some());
    assert_eq!(
        claims.auth_context_ref().map(|a| a.as_str()),
        Some(cyrcles_bridge::oidc::acr::PERSON)
    );
    let sub = claims.subject().as_str().to_string();
    assert_ne!(sub, agent.ego_text(), "subjects are pairwise by default");
    let raw: serde_json::Value = serde_json::from_slice(&base64_decode(
        id_token.to_string().split('.').nth(1).unwrap(),
    ))
    .unwrap();
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
        "acr",
        "amr",
        "sid",
    ] {
        assert!(raw.get(claim).is_some(), "ID token lacks {claim}: {raw}");
    }
    assert!(
        raw.get("name").is_none() && raw.get("email").is_none(),
        "no invented personal data"
    );

    // Userinfo.
    let info: CoreUserInfoClaims = rp
        .client
        .user_info(tokens.access_token().to_owned(), None)
        .unwrap()
        .request_async(&rp.http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), sub);

    // Refresh: a new access token and ID token, same subject; the old
    // refresh token is spent.
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = rp
        .client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&rp.http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let again = rp
        .client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&rp.http)
        .await;
    assert!(
        again.is_err(),
        "a rotated refresh token must not work twice"
    );
    // Reuse revoked the grant: the refreshed access token is dead too.
    let info: Result<CoreUserInfoClaims, _> = rp
        .client
        .user_info(refreshed.access_token().to_owned(), None)
        .unwrap()
        .request_async(&rp.http)
        .await;
    assert!(info.is_err(), "refresh reuse must revoke the grant");

    // A second login: the reuse revoked the site's grant, so the session no
    // longer answers for the site and the agent is asked again.
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let end = browse(&bridge, &b, &url, &agent.ego_text()).await;
    rp.exchange(end.code(), verifier).await.unwrap();
    assert_eq!(
        agent.challenges.lock().unwrap().len(),
        2,
        "a revoked grant is no approval"
    );
    // A third (the session is live and the site's grant too: no agent
    // prompt), then revoke.
    let (url, _, nonce, verifier) = rp.auth_url(&[], &[]);
    let end = browse(&bridge, &b, &url, &agent.ego_text()).await;
    assert_eq!(
        agent.challenges.lock().unwrap().len(),
        2,
        "the session answered, not the agent"
    );
    let tokens = rp.exchange(end.code(), verifier).await.unwrap();
    tokens
        .id_token()
        .unwrap()
        .claims(&rp.client.id_token_verifier(), &nonce)
        .unwrap();
    let status = rp
        .revoke(&bridge, tokens.access_token().secret(), &id, &secret)
        .await;
    assert_eq!(status, 200);
    let info: Result<CoreUserInfoClaims, _> = rp
        .client
        .user_info(tokens.access_token().to_owned(), None)
        .unwrap()
        .request_async(&rp.http)
        .await;
    assert!(info.is_err(), "a revoked access token must not work");
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// A relying party's back-channel logout endpoint: collects logout tokens.
pub(crate) async fn logout_receiver() -> (String, tokio::sync::mpsc::Receiver<String>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let app = axum::Router::new().route(
        "/bcl",
        post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let form: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(&body).into_owned().collect();
                let _ = tx
                    .send(form.get("logout_token").cloned().unwrap_or_default())
                    .await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bcl", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rx)
}

pub(crate) async fn next_logout_token(
    bridge: &TestBridge,
    rx: &mut tokio::sync::mpsc::Receiver<String>,
) -> serde_json::Value {
    let token = cyrcles_testkit::bounded(10, "back-channel logout", rx.recv())
        .await
        .unwrap();
    let claims = bridge
        .state
        .keys
        .verify_own(&token, bridge.clock.now())
        .await
        .expect("a logout token signed by the bridge");
    let header: serde_json::Value =
        serde_json::from_slice(&base64_decode(token.split('.').next().unwrap())).unwrap();
    assert_eq!(header["typ"], "logout+jwt");
    assert!(claims.get("nonce").is_none());
    assert!(
        claims["events"]
            .get("http://schemas.openid.net/event/backchannel-logout")
            .is_some()
    );
    claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_initiated_logout_sends_a_back_channel_logout_token() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 2).await;
    let (bcl, mut tokens_rx) = logout_receiver().await;
    let (id, secret) = bridge
        .client(serde_json::json!({
            "redirect_uris": [crate::common::REDIRECT],
            "post_logout_redirect_uris": ["http://127.0.0.1:9/bye"],
            "backchannel_logout_uri": bcl,
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    let secret = secret.unwrap();
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let b = browser();
    let (url, _, nonce, verifier) = rp.auth_url(&[], &[]);
    let end = browse(&bridge, &b, &url, &agent.ego_text()).await;
    let tokens = rp.exchange(end.code(), verifier).await.unwrap();
    let id_token = tokens.id_token().unwrap();
    let claims = id_token
        .claims(&rp.client.id_token_verifier(), &nonce)
        .unwrap();
    let sid: serde_json::Value = serde_json::from_slice(&base64_decode(
        id_token.to_string().split('.').nth(1).unwrap(),
    ))
    .unwrap();

    // The RP sends the browser to the end-session endpoint.
    let mut logout = url::Url::parse(&bridge.url("/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", &id_token.to_string())
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:9/bye")
        .append_pair("state", "bye-state");
    let page = b
        .get(logout.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::common::input(&page, "csrf").unwrap();
    let logout_state = crate::common::input(&page, "logout_state").unwrap();
    let res = b
        .post(bridge.url("/logout"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("logout_state", logout_state.as_str()),
            ("decision", "logout"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        crate::common::location(&res),
        "http://127.0.0.1:9/bye?state=bye-state"
    );

    let lt = next_logout_token(&bridge, &mut tokens_rx).await;
    assert_eq!(lt["aud"], id);
    assert_eq!(lt["sid"], sid["sid"]);
    assert_eq!(lt["sub"], claims.subject().as_str());

    // The session is over and what it issued is revoked.
    let (url, _, _, _) = rp.auth_url(&[], &[("prompt", "none")]);
    let end = browse(&bridge, &b, &url, &agent.ego_text()).await;
    assert_eq!(end.params()["error"], "login_required");
    let info: Result<CoreUserInfoClaims, _> = rp
        .client
        .user_info(tokens.access_token().to_owned(), None)
        .unwrap()
        .request_async(&rp.http)
        .await;
    assert!(info.is_err());

    // An unregistered post-logout URI is refused with a page.
    let mut bad = url::Url::parse(&bridge.url("/logout")).unwrap();
    bad.query_pairs_mut()
        .append_pair("id_token_hint", &id_token.to_string())
        .append_pair("post_logout_redirect_uri", "https://evil.example/");
    assert_eq!(b.get(bad.as_str()).send().await.unwrap().status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_or_replaced_ego_key_ends_its_sessions() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 3).await;
    let (bcl, mut tokens_rx) = logout_receiver().await;
    let (id, _) = bridge
        .client(serde_json::json!({
            "redirect_uris": [crate::common::REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "backchannel_logout_uri": bcl,
        }))
        .await;
    let rp = Rp::discover(&bridge, &id, None).await;
    let b = browser();
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    browse(&bridge, &b, &url, &agent.ego_text()).await.code();
    // Nothing changed: the check keeps the session.
    assert_eq!(
        cyrcles_bridge::tasks::check_sessions(&bridge.state)
            .await
            .unwrap(),
        0
    );
    // A new ego key: the session opened with the old one ends.
    agent.rotate(bridge.clock.now()).await;
    assert_eq!(
        cyrcles_bridge::tasks::check_sessions(&bridge.state)
            .await
            .unwrap(),
        1
    );
    let lt = next_logout_token(&bridge, &mut tokens_rx).await;
    assert_eq!(lt["aud"], id);
    // Another browser logs in and the site keeps the refresh token; a day
    // later that browser session has expired, the refresh token has not.
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let code = browse(&bridge, &browser(), &url, &agent.ego_text())
        .await
        .code();
    let tokens = rp.exchange(code, verifier).await.unwrap();
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    bridge.clock.advance(86_400 + 60);
    // Log in again with the new key, then revoke the ego.
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    browse(&bridge, &b, &url, &agent.ego_text()).await.code();
    agent.revoke(bridge.clock.now()).await;
    assert_eq!(
        cyrcles_bridge::tasks::check_sessions(&bridge.state)
            .await
            .unwrap(),
        1
    );
    next_logout_token(&bridge, &mut tokens_rx).await;
    // The live session ended; the refresh token of the expired one, which
    // no session check reaches, is refused at the token endpoint.
    let refused = rp
        .client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&rp.http)
        .await;
    assert!(
        refused.is_err(),
        "a revoked ego's refresh token must not work"
    );
    // A revoked ego cannot log in.
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    match browse(&bridge, &browser(), &url, &agent.ego_text()).await {
        crate::common::Outcome::Page(400, html) => assert!(html.contains("revoked"), "{html}"),
        other => panic!("a revoked ego got {other:?}"),
    }
}
