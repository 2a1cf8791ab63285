//! DPoP proofs (RFC 9449) refused at the token endpoint, each for the
//! rule it breaks.

use super::*;

/// A token request with `proof` and an unknown code: a proof that passes
/// its checks reaches the code check (`invalid_grant`); one that fails
/// stops at `invalid_dpop_proof`.
async fn token_error(bridge: &TestBridge, auth: &Auth, proof: &str) -> (u16, String) {
    let (status, body) = post(
        &bridge.url("/token"),
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &random::token()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce().0),
        ],
        Some(proof),
    )
    .await;
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

async fn proof_bridge() -> (TestBridge, Auth) {
    let bridge = bridge_with(&[]).await;
    let auth = public_client(&bridge, json!({})).await;
    (bridge, auth)
}

fn invalid_proof() -> (u16, String) {
    (400, "invalid_dpop_proof".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_for_another_url_or_method_is_refused() {
    let (bridge, auth) = proof_bridge().await;
    let key = Key::ed25519();
    let now = bridge.clock.now();
    let good = key.proof_at("POST", &bridge.url("/token"), now, None);
    assert_eq!(
        token_error(&bridge, &auth, &good).await,
        (400, "invalid_grant".into())
    );
    for proof in [
        key.proof_at("POST", &bridge.url("/userinfo"), now, None),
        key.proof_at("POST", "https://elsewhere.example/token", now, None),
        key.proof_at("GET", &bridge.url("/token"), now, None),
        key.proof_at("post", &bridge.url("/token"), now, None),
    ] {
        assert_eq!(token_error(&bridge, &auth, &proof).await, invalid_proof());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_or_future_proof_is_refused() {
    let (bridge, auth) = proof_bridge().await;
    let key = Key::p256();
    let url = bridge.url("/token");
    let now = bridge.clock.now();
    for (iat, want) in [
        (now - 60, (400, "invalid_grant".to_string())),
        (now + 5, (400, "invalid_grant".to_string())),
        (now - 61, invalid_proof()),
        (now + 6, invalid_proof()),
    ] {
        let proof = key.proof_at("POST", &url, iat, None);
        assert_eq!(
            token_error(&bridge, &auth, &proof).await,
            want,
            "iat {}",
            iat - now
        );
    }
    // The bridge's clock decides: a proof made now is stale in a minute.
    let proof = key.proof_at("POST", &url, now, None);
    bridge.clock.advance(61);
    assert_eq!(token_error(&bridge, &auth, &proof).await, invalid_proof());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_and_hmac_proofs_are_refused() {
    let (bridge, auth) = proof_bridge().await;
    let key = Key::ed25519();
    let claims = json!({
        "jti": random::id(), "htm": "POST", "htu": bridge.url("/token"), "iat": bridge.clock.now(),
    });
    let enc = |v: &Value| base64url::encode(v.to_string().as_bytes());
    let mut none = key.header();
    none["alg"] = json!("none");
    let unsigned = format!("{}.{}.", enc(&none), enc(&claims));
    assert_eq!(
        token_error(&bridge, &auth, &unsigned).await,
        invalid_proof()
    );
    let with_sig = key.sign(&none, &claims);
    assert_eq!(
        token_error(&bridge, &auth, &with_sig).await,
        invalid_proof()
    );
    let mut hs = key.header();
    hs["alg"] = json!("HS256");
    let input = format!("{}.{}", enc(&hs), enc(&claims));
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"a shared secret"),
        input.as_bytes(),
    );
    let hmac = format!("{input}.{}", base64url::encode(mac.as_ref()));
    assert_eq!(token_error(&bridge, &auth, &hmac).await, invalid_proof());
    // And a token typed as something else.
    let mut jwt = key.header();
    jwt["typ"] = json!("JWT");
    assert_eq!(
        token_error(&bridge, &auth, &key.sign(&jwt, &claims)).await,
        invalid_proof()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwk_holding_a_private_key_is_refused() {
    let (bridge, auth) = proof_bridge().await;
    let key = Key::p256();
    let claims = json!({
        "jti": random::id(), "htm": "POST", "htu": bridge.url("/token"), "iat": bridge.clock.now(),
    });
    let mut header = key.header();
    header["jwk"]["d"] = json!(base64url::encode(&[1; 32]));
    assert_eq!(
        token_error(&bridge, &auth, &key.sign(&header, &claims)).await,
        invalid_proof()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_signed_by_another_key_than_its_jwk_is_refused() {
    let (bridge, auth) = proof_bridge().await;
    let (key, other) = (Key::ed25519(), Key::ed25519());
    let claims = json!({
        "jti": random::id(), "htm": "POST", "htu": bridge.url("/token"), "iat": bridge.clock.now(),
    });
    // Other's signature under key's jwk.
    let forged = other.sign(&key.header(), &claims);
    assert_eq!(token_error(&bridge, &auth, &forged).await, invalid_proof());
    // Two DPoP headers: refused, whatever they hold.
    let (status, body) = {
        let good = key.proof_at("POST", &bridge.url("/token"), bridge.clock.now(), None);
        let res = rp_http()
            .post(bridge.url("/token"))
            .header("DPoP", good.clone())
            .header("DPoP", good)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", auth.id()),
            ])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
}

/// A client registered with `dpop_bound_access_tokens` (RFC 9449 §5.2)
/// gets no token without a proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_for_dpop_needs_a_proof() {
    let bridge = bridge_with(&[]).await;
    let auth = public_client(&bridge, json!({ "dpop_bound_access_tokens": true })).await;
    let (status, body) = post(
        &bridge.url("/token"),
        &auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &random::token()),
            ("redirect_uri", REDIRECT),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let key = Key::ed25519();
    let proof = key.proof_at("POST", &bridge.url("/token"), bridge.clock.now(), None);
    assert_eq!(
        token_error(&bridge, &auth, &proof).await,
        (400, "invalid_grant".into())
    );
}
