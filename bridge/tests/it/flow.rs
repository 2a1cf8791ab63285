//! The full authorization code flow, driven by a relying party built on
//! the `openidconnect` crate, with a real agent peer answering over the
//! real DHT and `/cyrcles/login/1`.

use openidconnect::core::CoreUserInfoClaims;
use openidconnect::{AccessTokenHash, AuthorizationCode, OAuth2TokenResponse, TokenResponse};

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
    let tokens = rp
        .client
        .exchange_code(AuthorizationCode::new(end.code()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp.http)
        .await
        .unwrap();
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
        Some("urn:cyrcles:acr:agent-match-code")
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

    // A second login (the session is live: no agent prompt), then revoke.
    let (url, _, nonce, verifier) = rp.auth_url(&[], &[]);
    let end = browse(&bridge, &b, &url, &agent.ego_text()).await;
    assert_eq!(
        agent.challenges.lock().unwrap().len(),
        1,
        "the session answered, not the agent"
    );
    let tokens = rp
        .client
        .exchange_code(AuthorizationCode::new(end.code()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp.http)
        .await
        .unwrap();
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
