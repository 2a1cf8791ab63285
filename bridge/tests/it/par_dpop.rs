//! Pushed authorization requests (RFC 9126) and DPoP (RFC 9449), end to
//! end and as the attacks they stop. A raw client: reqwest, and proofs
//! signed here with ring's Ed25519 and P-256 keys. Every bridge runs on
//! PostgreSQL when `CYRCLES_TEST_POSTGRES_URL` is set, on SQLite otherwise.

use std::collections::BTreeMap;

use cyrcles_bridge::util;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use crate::common::{
    BridgeOptions, Db, REDIRECT, TestAgent, TestBridge, browse, browser, env, get_json, location,
    postgres_db, rp_http,
};

const URN: &str = "urn:ietf:params:oauth:request_uri:";

/// A client's DPoP key.
enum Key {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

impl Key {
    fn ed25519() -> Key {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Key::Ed25519(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
    }

    fn p256() -> Key {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Key::P256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap(),
        )
    }

    fn alg(&self) -> &'static str {
        match self {
            Key::Ed25519(_) => "EdDSA",
            Key::P256(_) => "ES256",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            Key::Ed25519(k) => json!({
                "kty": "OKP", "crv": "Ed25519", "x": util::b64(k.public_key().as_ref()),
            }),
            Key::P256(k) => {
                let p = k.public_key().as_ref();
                json!({
                    "kty": "EC", "crv": "P-256",
                    "x": util::b64(&p[1..33]), "y": util::b64(&p[33..65]),
                })
            }
        }
    }

    /// RFC 7638, computed independently of the bridge: the required
    /// members, sorted, as compact JSON, hashed.
    fn jkt(&self) -> String {
        let jwk = self.jwk();
        let map: BTreeMap<&String, &Value> = jwk.as_object().unwrap().iter().collect();
        util::b64(&util::sha256(&serde_json::to_string(&map).unwrap()))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            util::b64(header.to_string().as_bytes()),
            util::b64(claims.to_string().as_bytes())
        );
        let sig = match self {
            Key::Ed25519(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            Key::P256(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", util::b64(&sig))
    }

    fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk() })
    }

    /// A fresh proof (new jti) for `method` at `url`, made at `iat`.
    fn proof_at(&self, method: &str, url: &str, iat: i64, token: Option<&str>) -> String {
        let mut claims = json!({ "jti": util::id(), "htm": method, "htu": url, "iat": iat });
        if let Some(t) = token {
            claims["ath"] = json!(util::b64(&util::sha256(t)));
        }
        self.sign(&self.header(), &claims)
    }
}

async fn db() -> Db {
    match postgres_db().await {
        Some(url) => Db::Postgres(url),
        None => Db::Sqlite,
    }
}

async fn bridge_with(pairs: &[(&str, &str)]) -> TestBridge {
    TestBridge::start_with(BridgeOptions {
        db: db().await,
        env: env(pairs),
        ..BridgeOptions::default()
    })
    .await
}

/// How a client authenticates in these tests.
#[derive(Clone)]
enum Auth {
    Public(String),
    Basic(String, String),
}

impl Auth {
    fn id(&self) -> &str {
        match self {
            Auth::Public(id) | Auth::Basic(id, _) => id,
        }
    }

    fn apply(
        &self,
        req: reqwest::RequestBuilder,
        form: &mut Vec<(String, String)>,
    ) -> reqwest::RequestBuilder {
        match self {
            Auth::Public(id) => {
                form.push(("client_id".into(), id.clone()));
                req
            }
            Auth::Basic(id, secret) => req.basic_auth(id, Some(secret)),
        }
    }
}

async fn public_client(bridge: &TestBridge, extra: Value) -> Auth {
    let mut meta = json!({
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    });
    for (k, v) in extra.as_object().unwrap() {
        meta[k] = v.clone();
    }
    Auth::Public(bridge.client(meta).await.0)
}

async fn confidential_client(bridge: &TestBridge) -> Auth {
    let (id, secret) = bridge.confidential().await;
    Auth::Basic(id, secret)
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = format!("{}{}", util::token(), util::id());
    let challenge = util::b64(&util::sha256(&verifier));
    (verifier, challenge)
}

/// `POST url` as `auth` with the form `pairs` and optional DPoP proof.
async fn post(url: &str, auth: &Auth, pairs: &[(&str, &str)], proof: Option<&str>) -> (u16, Value) {
    let mut form: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut req = auth.apply(rp_http().post(url), &mut form);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    let res = req.form(&form).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Pushes an authorization request (`extra` replaces or adds parameters);
/// the state and PKCE verifier it used are returned with the answer.
async fn push(
    bridge: &TestBridge,
    auth: &Auth,
    extra: &[(&str, &str)],
) -> (u16, Value, String, String) {
    let (verifier, challenge) = pkce();
    let state = util::id();
    let mut pairs = vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid offline_access"),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        match pairs.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v,
            None => pairs.push((k, v)),
        }
    }
    let (status, body) = post(&bridge.url("/par"), auth, &pairs, None).await;
    (status, body, state, verifier)
}

/// The front-channel URL for a pushed request.
fn authorize_url(bridge: &TestBridge, client_id: &str, request_uri: &str) -> String {
    let mut u = url::Url::parse(&bridge.url("/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    u.to_string()
}

/// Opens an authorization URL once: where it redirects (an interaction)
/// or the page it shows.
async fn open(url: &str) -> Result<String, (u16, String)> {
    let res = browser().get(url).send().await.unwrap();
    match res.status().as_u16() {
        303 => Ok(location(&res)),
        s => Err((s, res.text().await.unwrap())),
    }
}

fn assert_page(r: Result<String, (u16, String)>, needle: &str) {
    match r {
        Err((400, html)) => assert!(html.contains(needle), "{html}"),
        other => panic!("expected a 400 page with {needle:?}, got {other:?}"),
    }
}

fn assert_interaction(r: Result<String, (u16, String)>) {
    match r {
        Ok(loc) => assert!(loc.starts_with("/interaction/"), "{loc}"),
        Err(e) => panic!("expected the login to open, got {e:?}"),
    }
}

/// A bridge, an agent, a client, and a login done through PAR, with its
/// tokens obtained with a DPoP proof by `key`.
struct Login {
    bridge: TestBridge,
    _agent: TestAgent,
    auth: Auth,
    tokens: Value,
}

impl Login {
    async fn new(pairs: &[(&str, &str)], seed: u64, confidential: bool, key: &Key) -> Login {
        let bridge = bridge_with(pairs).await;
        let agent = TestAgent::start(&bridge, seed).await;
        let auth = if confidential {
            confidential_client(&bridge).await
        } else {
            public_client(&bridge, json!({})).await
        };
        let (code, verifier) = login(&bridge, &agent, &auth).await;
        let (status, tokens) = exchange(&bridge, &auth, &code, &verifier, Some(key)).await;
        assert_eq!(status, 200, "{tokens}");
        Login {
            bridge,
            _agent: agent,
            auth,
            tokens,
        }
    }

    fn access(&self) -> String {
        self.tokens["access_token"].as_str().unwrap().to_string()
    }

    fn refresh_token(&self) -> String {
        self.tokens["refresh_token"].as_str().unwrap().to_string()
    }

    fn token_url(&self) -> String {
        self.bridge.url("/token")
    }

    fn userinfo_url(&self) -> String {
        self.bridge.url("/userinfo")
    }

    async fn refresh(&self, token: &str, proof: Option<&str>) -> (u16, Value) {
        post(
            &self.token_url(),
            &self.auth,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
            proof,
        )
        .await
    }
}

/// Pushes, opens the request_uri in a browser, logs in: the code and the
/// PKCE verifier.
async fn login(bridge: &TestBridge, agent: &TestAgent, auth: &Auth) -> (String, String) {
    let (status, body, state, verifier) = push(bridge, auth, &[]).await;
    assert_eq!(status, 201, "{body}");
    let uri = body["request_uri"].as_str().unwrap();
    let end = browse(
        bridge,
        &browser(),
        &authorize_url(bridge, auth.id(), uri),
        &agent.ego_text(),
    )
    .await;
    assert_eq!(end.params().get("state"), Some(&state), "the pushed state");
    (end.code(), verifier)
}

async fn exchange(
    bridge: &TestBridge,
    auth: &Auth,
    code: &str,
    verifier: &str,
    key: Option<&Key>,
) -> (u16, Value) {
    let url = bridge.url("/token");
    let proof = key.map(|k| k.proof_at("POST", &url, bridge.clock.now(), None));
    post(
        &url,
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
        proof.as_deref(),
    )
    .await
}

/// `GET /userinfo` with `Authorization: <scheme> <token>` and a proof.
async fn userinfo(
    url: &str,
    scheme: &str,
    token: &str,
    proof: Option<&str>,
) -> (u16, String, Value) {
    let mut req = rp_http()
        .get(url)
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, challenge, res.json().await.unwrap_or(Value::Null))
}

// ---------------------------------------------------------------- end to end

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

// ---------------------------------------------------------------- PAR

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
    let forged = authorize_url(&bridge, auth.id(), &format!("{URN}{}", util::token()));
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

// ---------------------------------------------------------------- DPoP proofs at /token

/// A token request with `proof` and an unknown code: a proof that passes
/// its checks reaches the code check (`invalid_grant`); one that fails
/// stops at `invalid_dpop_proof`.
async fn token_error(bridge: &TestBridge, auth: &Auth, proof: &str) -> (u16, String) {
    let (status, body) = post(
        &bridge.url("/token"),
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &util::token()),
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
        "jti": util::id(), "htm": "POST", "htu": bridge.url("/token"), "iat": bridge.clock.now(),
    });
    let enc = |v: &Value| util::b64(v.to_string().as_bytes());
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
    let hmac = format!("{input}.{}", util::b64(mac.as_ref()));
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
        "jti": util::id(), "htm": "POST", "htu": bridge.url("/token"), "iat": bridge.clock.now(),
    });
    let mut header = key.header();
    header["jwk"]["d"] = json!(util::b64(&[1; 32]));
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
        "jti": util::id(), "htm": "POST", "htu": bridge.url("/token"), "iat": bridge.clock.now(),
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
            ("code", &util::token()),
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

// ---------------------------------------------------------------- bound tokens

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

// ---------------------------------------------------------------- several instances

/// Two instances on one PostgreSQL database behind one issuer, and the
/// base URL of the second.
async fn two_instances() -> Option<(TestBridge, TestBridge, String)> {
    let Some(url) = postgres_db().await else {
        eprintln!("CYRCLES_TEST_POSTGRES_URL is not set: skipped");
        return None;
    };
    let master = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(util::random_bytes::<32>())
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

// ---------------------------------------------------------------- codes bound to a key

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
