//! The checks of the OpenID Foundation's Basic OP and Config OP
//! certification plans, one test per module, named after it. Each asserts
//! what the conformance module asserts (as documented in the OpenID
//! conformance suite), against the real bridge and a relying party on the
//! `openidconnect` crate.

use openidconnect::core::{
    CoreIdToken, CoreJwsSigningAlgorithm, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{AuthType, Nonce, OAuth2TokenResponse, PkceCodeVerifier, TokenResponse};
use serde_json::{Value, json};

use crate::common::{
    Outcome, REDIRECT, Rp, TestAgent, TestBridge, browse, browser, input, location, query,
};

struct Env {
    bridge: TestBridge,
    agent: TestAgent,
    id: String,
    secret: String,
    rp: Rp,
    browser: reqwest::Client,
}

async fn env() -> Env {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 7).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    Env {
        bridge,
        agent,
        id,
        secret,
        rp,
        browser: browser(),
    }
}

impl Env {
    async fn authorize(
        &self,
        scopes: &[&str],
        extra: &[(&str, &str)],
    ) -> (Outcome, Nonce, PkceCodeVerifier) {
        let (url, _, nonce, verifier) = self.rp.auth_url(scopes, extra);
        let end = browse(&self.bridge, &self.browser, &url, &self.agent.ego_text()).await;
        (end, nonce, verifier)
    }

    async fn exchange(
        &self,
        code: &str,
        verifier: PkceCodeVerifier,
    ) -> Result<CoreTokenResponse, String> {
        self.rp.exchange(code.to_string(), verifier).await
    }

    /// A complete login: code, tokens, verified ID token claims.
    async fn login(&self, scopes: &[&str], extra: &[(&str, &str)]) -> (CoreTokenResponse, Value) {
        let (end, nonce, verifier) = self.authorize(scopes, extra).await;
        let tokens = self.exchange(&end.code(), verifier).await.unwrap();
        let claims = self.verify_id_token(tokens.id_token().unwrap(), Some(&nonce));
        (tokens, claims)
    }

    /// Verifies an ID token with the RP library; returns its raw claims.
    fn verify_id_token(&self, t: &CoreIdToken, nonce: Option<&Nonce>) -> Value {
        let verifier = self.rp.client.id_token_verifier();
        match nonce {
            Some(n) => {
                t.claims(&verifier, n).unwrap();
            }
            None => {
                t.claims(&verifier, |n: Option<&Nonce>| {
                    if n.is_none() {
                        Ok(())
                    } else {
                        Err("unexpected nonce".to_string())
                    }
                })
                .unwrap();
            }
        }
        payload(&t.to_string())
    }

    fn challenges(&self) -> usize {
        self.agent.challenges.lock().unwrap().len()
    }

    async fn userinfo(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    fn manual_url(&self, params: &[(&str, &str)]) -> String {
        let mut u = url::Url::parse(&self.bridge.url("/authorize")).unwrap();
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        u.to_string()
    }
}

fn payload(jwt: &str) -> Value {
    serde_json::from_slice(&crate::flow::base64_decode(jwt.split('.').nth(1).unwrap())).unwrap()
}

fn error_of(o: &Outcome) -> (String, Option<String>) {
    let p = o.params();
    (
        p.get("error").cloned().unwrap_or_default(),
        p.get("state").cloned(),
    )
}

#[tokio::test]
async fn oidcc_server() {
    let e = env().await;
    let (tokens, claims) = e.login(&[], &[]).await;
    assert_eq!(claims["iss"], e.bridge.issuer);
    assert_eq!(claims["aud"], e.id);
    let (status, info) = e
        .userinfo(
            e.browser
                .get(e.bridge.url("/userinfo"))
                .bearer_auth(tokens.access_token().secret()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["sub"], claims["sub"]);
}

#[tokio::test]
async fn oidcc_response_type_missing() {
    let e = env().await;
    let url = e.manual_url(&[
        ("client_id", &e.id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "s1"),
    ]);
    let res = e.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let q = query(&location(&res));
    assert_eq!(q.get("error").map(String::as_str), Some("invalid_request"));
    assert_eq!(q.get("state").map(String::as_str), Some("s1"));
    assert_eq!(q.get("iss"), Some(&e.bridge.issuer));
}

#[tokio::test]
async fn oidcc_idtoken_signature() {
    let e = env().await;
    let (tokens, claims) = e.login(&[], &[]).await;
    let raw = tokens.id_token().unwrap().to_string();
    let header: Value =
        serde_json::from_slice(&crate::flow::base64_decode(raw.split('.').next().unwrap()))
            .unwrap();
    assert_eq!(header["alg"], "RS256");
    let jwks: Value = e
        .browser
        .get(e.bridge.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"])
    );
    assert!(claims["sub"].is_string());
    // A token with a changed signature does not verify (a character in the
    // middle: the last one may only carry padding bits).
    let sig_start = raw.rfind('.').unwrap() + 1;
    let at = sig_start + 20;
    let mut forged = raw.clone();
    let c = forged.as_bytes()[at];
    forged.replace_range(at..at + 1, if c == b'A' { "B" } else { "A" });
    let t: CoreIdToken = forged.parse().unwrap();
    assert!(
        t.claims(&e.rp.client.id_token_verifier(), |_: Option<&Nonce>| Ok::<
            (),
            String,
        >(
            ()
        ))
        .is_err()
    );
}

#[tokio::test]
async fn oidcc_idtoken_unsigned() {
    let e = env().await;
    let disc: Value = e
        .browser
        .get(e.bridge.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !disc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none"))
    );
    let res = e
        .browser
        .post(e.bridge.url("/register"))
        .json(&json!({ "redirect_uris": [REDIRECT], "id_token_signed_response_alg": "none" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
}

#[tokio::test]
async fn oidcc_userinfo_get() {
    let e = env().await;
    let (tokens, claims) = e.login(&[], &[]).await;
    let (status, info) = e
        .userinfo(
            e.browser
                .get(e.bridge.url("/userinfo"))
                .bearer_auth(tokens.access_token().secret()),
        )
        .await;
    assert_eq!((status, &info["sub"]), (200, &claims["sub"]));
    // Never from the query string (RFC 6750 §2.3 is not supported).
    let (status, _) = e
        .userinfo(e.browser.get(format!(
            "{}?access_token={}",
            e.bridge.url("/userinfo"),
            tokens.access_token().secret()
        )))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn oidcc_userinfo_post_header() {
    let e = env().await;
    let (tokens, claims) = e.login(&[], &[]).await;
    let (status, info) = e
        .userinfo(
            e.browser
                .post(e.bridge.url("/userinfo"))
                .bearer_auth(tokens.access_token().secret()),
        )
        .await;
    assert_eq!((status, &info["sub"]), (200, &claims["sub"]));
}

#[tokio::test]
async fn oidcc_userinfo_post_body() {
    let e = env().await;
    let (tokens, claims) = e.login(&[], &[]).await;
    let (status, info) = e
        .userinfo(
            e.browser
                .post(e.bridge.url("/userinfo"))
                .form(&[("access_token", tokens.access_token().secret().as_str())]),
        )
        .await;
    assert_eq!((status, &info["sub"]), (200, &claims["sub"]));
}

#[tokio::test]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let e = env().await;
    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    let url = e.manual_url(&[
        ("client_id", &e.id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let end = browse(&e.bridge, &e.browser, &url, &e.agent.ego_text()).await;
    let tokens = e.exchange(&end.code(), verifier).await.unwrap();
    let claims = e.verify_id_token(tokens.id_token().unwrap(), None);
    assert!(claims.get("nonce").is_none());
}

async fn scope_test(scopes: &[&str]) {
    let e = env().await;
    let (tokens, _) = e.login(scopes, &[]).await;
    let granted: Vec<String> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for s in scopes {
        assert!(
            granted.iter().any(|g| g == s),
            "scope {s} not granted: {granted:?}"
        );
    }
    let (status, info) = e
        .userinfo(
            e.browser
                .get(e.bridge.url("/userinfo"))
                .bearer_auth(tokens.access_token().secret()),
        )
        .await;
    assert_eq!(status, 200);
    // Cyrcles holds no personal data: only the subject, nothing invented.
    assert_eq!(
        info.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["sub"]
    );
    // The userinfo response parses with the RP library too.
    let parsed: Result<CoreUserInfoClaims, _> =
        e.rp.client
            .user_info(tokens.access_token().to_owned(), None)
            .unwrap()
            .request_async(&e.rp.http)
            .await;
    parsed.unwrap();
}

#[tokio::test]
async fn oidcc_scope_profile() {
    scope_test(&["profile"]).await;
}

#[tokio::test]
async fn oidcc_scope_email() {
    scope_test(&["email"]).await;
}

#[tokio::test]
async fn oidcc_scope_address() {
    scope_test(&["address"]).await;
}

#[tokio::test]
async fn oidcc_scope_phone() {
    scope_test(&["phone"]).await;
}

#[tokio::test]
async fn oidcc_scope_all() {
    scope_test(&["profile", "email", "address", "phone"]).await;
}

#[tokio::test]
async fn oidcc_alternate_happy_flow() {
    // Another kind of client: client_secret_post, ES256, public subjects.
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 8).await;
    let (id, secret) = bridge
        .client(json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_post",
            "id_token_signed_response_alg": "ES256",
            "subject_type": "public",
        }))
        .await;
    let secret = secret.unwrap();
    let mut rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    rp.client = rp.client.set_auth_type(AuthType::RequestBody);
    let (url, _, nonce, verifier) = rp.auth_url(&[], &[]);
    let end = browse(&bridge, &browser(), &url, &agent.ego_text()).await;
    let tokens = rp.exchange(end.code(), verifier).await.unwrap();
    let v = rp
        .client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = tokens.id_token().unwrap().claims(&v, &nonce).unwrap();
    assert_eq!(
        claims.subject().as_str(),
        agent.ego_text(),
        "public subject is the ego id"
    );
}

#[tokio::test]
async fn oidcc_display_page() {
    let e = env().await;
    e.login(&[], &[("display", "page")]).await;
}

#[tokio::test]
async fn oidcc_display_popup() {
    let e = env().await;
    e.login(&[], &[("display", "popup")]).await;
}

#[tokio::test]
async fn oidcc_prompt_login() {
    let e = env().await;
    let (_, first) = e.login(&[], &[]).await;
    assert_eq!(e.challenges(), 1);
    e.bridge.clock.advance(5);
    let (_, second) = e.login(&[], &[("prompt", "login")]).await;
    assert_eq!(e.challenges(), 2, "prompt=login must authenticate again");
    assert!(second["auth_time"].as_i64() > first["auth_time"].as_i64());
}

#[tokio::test]
async fn oidcc_prompt_none_not_logged_in() {
    let e = env().await;
    let (end, _, _) = e.authorize(&[], &[("prompt", "none")]).await;
    assert_eq!(error_of(&end).0, "login_required");
    assert_eq!(e.challenges(), 0);
}

#[tokio::test]
async fn oidcc_prompt_none_logged_in() {
    let e = env().await;
    let (_, first) = e.login(&[], &[]).await;
    let (tokens, second) = e.login(&[], &[("prompt", "none")]).await;
    assert_eq!(e.challenges(), 1, "no new authentication");
    assert_eq!(first["sub"], second["sub"]);
    assert!(tokens.access_token().secret().len() > 20);
}

#[tokio::test]
async fn oidcc_max_age_1() {
    let e = env().await;
    let (_, first) = e.login(&[], &[]).await;
    e.bridge.clock.advance(2);
    let (_, second) = e.login(&[], &[("max_age", "1")]).await;
    assert_eq!(e.challenges(), 2, "an older authentication must be renewed");
    assert!(second["auth_time"].as_i64().unwrap() > first["auth_time"].as_i64().unwrap());
}

#[tokio::test]
async fn oidcc_max_age_10000() {
    let e = env().await;
    let (_, first) = e.login(&[], &[]).await;
    e.bridge.clock.advance(2);
    let (_, second) = e.login(&[], &[("max_age", "10000")]).await;
    assert_eq!(e.challenges(), 1);
    assert_eq!(second["auth_time"], first["auth_time"]);
}

#[tokio::test]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    let e = env().await;
    e.login(&[], &[("extra_parameter", "value")]).await;
}

#[tokio::test]
async fn oidcc_id_token_hint() {
    let e = env().await;
    let (tokens, first) = e.login(&[], &[]).await;
    let hint = tokens.id_token().unwrap().to_string();
    let (_, second) = e
        .login(&[], &[("prompt", "none"), ("id_token_hint", &hint)])
        .await;
    assert_eq!(first["sub"], second["sub"]);
    // A hint this bridge did not sign is refused.
    let mut bad = hint.clone();
    bad.pop();
    let (end, _, _) = e.authorize(&[], &[("id_token_hint", &bad)]).await;
    assert_eq!(error_of(&end).0, "invalid_request");
}

#[tokio::test]
async fn oidcc_login_hint() {
    let e = env().await;
    let (url, _, _, _) = e.rp.auth_url(&[], &[("login_hint", &e.agent.ego_text())]);
    let res = e.browser.get(url).send().await.unwrap();
    let page = e
        .browser
        .get(e.bridge.url(&location(&res)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        input(&page, "ego_id").as_deref(),
        Some(e.agent.ego_text().as_str()),
        "the hint prefills the form"
    );
}

#[tokio::test]
async fn oidcc_ui_locales() {
    let e = env().await;
    e.login(&[], &[("ui_locales", "se")]).await;
}

#[tokio::test]
async fn oidcc_claims_locales() {
    let e = env().await;
    e.login(&[], &[("claims_locales", "se")]).await;
}

#[tokio::test]
async fn oidcc_ensure_request_with_acr_values_succeeds() {
    let e = env().await;
    let (_, claims) = e.login(&[], &[("acr_values", "1 2")]).await;
    assert!(claims["acr"].is_string());
}

#[tokio::test]
async fn oidcc_codereuse() {
    let e = env().await;
    let (end, _, verifier) = e.authorize(&[], &[]).await;
    let code = end.code();
    let v2 = PkceCodeVerifier::new(verifier.secret().clone());
    let tokens = e.exchange(&code, verifier).await.unwrap();
    let again = e.exchange(&code, v2).await;
    assert!(again.unwrap_err().contains("invalid_grant"));
    // The tokens issued from the code are revoked.
    let (status, _) = e
        .userinfo(
            e.browser
                .get(e.bridge.url("/userinfo"))
                .bearer_auth(tokens.access_token().secret()),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn oidcc_codereuse_30seconds() {
    let e = env().await;
    let (end, _, verifier) = e.authorize(&[], &[]).await;
    let code = end.code();
    let v2 = PkceCodeVerifier::new(verifier.secret().clone());
    let tokens = e.exchange(&code, verifier).await.unwrap();
    e.bridge.clock.advance(30);
    assert!(
        e.exchange(&code, v2)
            .await
            .unwrap_err()
            .contains("invalid_grant")
    );
    let introspected: Value = e
        .browser
        .post(e.bridge.url("/introspect"))
        .basic_auth(&e.id, Some(&e.secret))
        .form(&[("token", tokens.access_token().secret().as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], false);
}

#[tokio::test]
async fn oidcc_ensure_registered_redirect_uri() {
    let e = env().await;
    let url = e.manual_url(&[
        ("client_id", &e.id),
        ("redirect_uri", "https://attacker.example/cb"),
        ("response_type", "code"),
        ("scope", "openid"),
    ]);
    let res = e.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.headers().get("location").is_none(),
        "never redirect to an unregistered URI"
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("not one the site registered")
    );
}

#[tokio::test]
async fn oidcc_ensure_post_request_succeeds() {
    let e = env().await;
    let (url, _, nonce, verifier) = e.rp.auth_url(&[], &[]);
    let (base, q) = url.split_once('?').unwrap();
    let res = e
        .browser
        .post(base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(q.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let next = e.bridge.url(&location(&res));
    let end = browse(&e.bridge, &e.browser, &next, &e.agent.ego_text()).await;
    let tokens = e.exchange(&end.code(), verifier).await.unwrap();
    e.verify_id_token(tokens.id_token().unwrap(), Some(&nonce));
}

#[tokio::test]
async fn oidcc_server_client_secret_post() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 9).await;
    let (id, secret) = bridge
        .client(json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post" }))
        .await;
    let mut rp = Rp::discover(&bridge, &id, secret.as_deref()).await;
    // Basic authentication is refused for a client registered for POST.
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let b = browser();
    let end = browse(&bridge, &b, &url, &agent.ego_text()).await;
    let basic = rp.exchange(end.code(), verifier).await;
    assert!(format!("{basic:?}").contains("invalid_client"));
    rp.client = rp.client.set_auth_type(AuthType::RequestBody);
    let (url, _, nonce, verifier) = rp.auth_url(&[], &[]);
    let end = browse(&bridge, &b, &url, &agent.ego_text()).await;
    let tokens = rp.exchange(end.code(), verifier).await.unwrap();
    tokens
        .id_token()
        .unwrap()
        .claims(&rp.client.id_token_verifier(), &nonce)
        .unwrap();
}

#[tokio::test]
async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported() {
    let e = env().await;
    let (end, _, _) = e
        .authorize(&[], &[("request_uri", "https://rp.example/request.jwt")])
        .await;
    assert_eq!(error_of(&end).0, "request_uri_not_supported");
}

#[tokio::test]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    let e = env().await;
    let object = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none"}"#),
        base64url(
            format!(
                r#"{{"client_id":"{}","response_type":"code","scope":"openid"}}"#,
                e.id
            )
            .as_bytes()
        )
    );
    let (end, _, _) = e.authorize(&[], &[("request", &object)]).await;
    assert_eq!(error_of(&end).0, "request_not_supported");
}

#[tokio::test]
async fn oidcc_claims_essential() {
    let e = env().await;
    let claims = r#"{"userinfo":{"name":{"essential":true}}}"#;
    let (tokens, _) = e.login(&[], &[("claims", claims)]).await;
    let (status, info) = e
        .userinfo(
            e.browser
                .get(e.bridge.url("/userinfo"))
                .bearer_auth(tokens.access_token().secret()),
        )
        .await;
    assert_eq!(status, 200);
    // The claim cannot be supplied; none is invented.
    assert!(info.get("name").is_none());
}

#[tokio::test]
async fn oidcc_ensure_request_object_with_redirect_uri() {
    let e = env().await;
    let object = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none"}"#),
        base64url(
            format!(
                r#"{{"client_id":"{}","redirect_uri":"{}"}}"#,
                e.id, REDIRECT
            )
            .as_bytes()
        )
    );
    let (end, _, _) = e.authorize(&[], &[("request", &object)]).await;
    let (err, state) = error_of(&end);
    assert_eq!(err, "request_not_supported");
    assert!(state.is_some(), "the error carries the client's state");
}

#[tokio::test]
async fn oidcc_refresh_token() {
    let e = env().await;
    let (tokens, first) = e.login(&[], &[]).await;
    let refreshed =
        e.rp.client
            .exchange_refresh_token(tokens.refresh_token().unwrap())
            .unwrap()
            .request_async(&e.rp.http)
            .await
            .unwrap();
    let claims = e.verify_id_token(refreshed.id_token().unwrap(), None);
    assert_eq!(claims["sub"], first["sub"]);
    assert_eq!(claims["iss"], first["iss"]);
    assert_eq!(claims["aud"], first["aud"]);
    assert_eq!(claims["auth_time"], first["auth_time"]);
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
}

#[tokio::test]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    let e = env().await;
    e.login(&[], &[]).await;
    // And a wrong verifier fails.
    let (end, _, _) = e.authorize(&[], &[]).await;
    let wrong = PkceCodeVerifier::new("x".repeat(50));
    assert!(
        e.exchange(&end.code(), wrong)
            .await
            .unwrap_err()
            .contains("invalid_grant")
    );
}

#[tokio::test]
async fn oidcc_discovery_endpoint_verification() {
    let e = env().await;
    let d: Value = e
        .browser
        .get(e.bridge.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], e.bridge.issuer);
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "registration_endpoint",
        "end_session_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let u = d[k].as_str().unwrap_or_else(|| panic!("{k} missing"));
        assert!(u.starts_with(&e.bridge.issuer), "{k} = {u}");
    }
    let has = |k: &str, v: &str| d[k].as_array().unwrap().iter().any(|x| x == v);
    assert!(has("scopes_supported", "openid"));
    assert!(has("response_types_supported", "code"));
    assert!(has("subject_types_supported", "pairwise") || has("subject_types_supported", "public"));
    assert!(has("id_token_signing_alg_values_supported", "RS256"));
    assert!(has("id_token_signing_alg_values_supported", "EdDSA"));
    assert!(has("id_token_signing_alg_values_supported", "ES256"));
    assert!(has("code_challenge_methods_supported", "S256"));
    assert!(has("grant_types_supported", "authorization_code"));
    assert!(has("grant_types_supported", "refresh_token"));
    assert!(has("response_modes_supported", "form_post"));
    assert!(has("claims_supported", "sub"));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["backchannel_logout_supported"], true);
    // The JWKS is reachable and holds only public keys.
    let jwks: Value = e
        .browser
        .get(d["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for k in jwks["keys"].as_array().unwrap() {
        assert!(k.get("d").is_none());
        assert!(k["kid"].is_string());
    }
    // The RP library accepts the document.
    assert_eq!(e.rp.metadata.issuer().as_str(), e.bridge.issuer);
}

fn base64url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Not a conformance module: signing-key rotation is staged (issue 13,
/// item 11). A new key is in the JWKS before it signs anything, for twice
/// the JWKS cache lifetime, so a relying party with a cached JWKS never
/// meets an unknown `kid`; the key it replaces keeps signing until then and,
/// retired, stays published while the tokens it signed are valid.
#[tokio::test]
async fn key_rotation_is_staged_and_keeps_retired_keys_published() {
    let mut e = env().await;
    let (old_tokens, _) = e.login(&[], &[]).await;
    let old_kid = header_kid(&old_tokens.id_token().unwrap().to_string());
    let new_kids = e
        .bridge
        .state
        .keys
        .rotate(e.bridge.clock.now(), 7_200, false)
        .await
        .unwrap();
    let published = || async {
        let jwks: Value = e
            .browser
            .get(e.bridge.url("/jwks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let kids = published().await;
    assert!(kids.contains(&old_kid));
    assert!(
        new_kids.iter().all(|k| kids.contains(k)),
        "staged keys are published"
    );
    // While staged, logins are still signed with the old key...
    let (staged, _) = e.login(&[], &[]).await;
    assert_eq!(header_kid(&staged.id_token().unwrap().to_string()), old_kid);

    // ...and once the stage is over, with a new one; the old key is
    // retired and still published.
    e.bridge.clock.advance(cyrcles_bridge::keys::STAGE_SECS + 1);
    let now = e.bridge.clock.now();
    assert_eq!(e.bridge.state.keys.settle(now, 7_200).await.unwrap(), 3);
    let rp = Rp::discover(&e.bridge, &e.id, Some(&e.secret)).await;
    e.rp = rp;
    let (new_tokens, _) = e.login(&[], &[]).await;
    let new_kid = header_kid(&new_tokens.id_token().unwrap().to_string());
    assert_ne!(new_kid, old_kid);
    assert!(new_kids.contains(&new_kid));
    assert!(published().await.contains(&old_kid));
    // A fresh RP (fresh JWKS) still verifies the token of the old key.
    staged
        .id_token()
        .unwrap()
        .claims(&e.rp.client.id_token_verifier(), |_: Option<&Nonce>| {
            Ok::<(), String>(())
        })
        .unwrap();
}

fn header_kid(jwt: &str) -> String {
    let h: Value =
        serde_json::from_slice(&crate::flow::base64_decode(jwt.split('.').next().unwrap()))
            .unwrap();
    h["kid"].as_str().unwrap().to_string()
}
