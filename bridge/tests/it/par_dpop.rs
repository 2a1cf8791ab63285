//! Pushed authorization requests (RFC 9126) and DPoP (RFC 9449), end to
//! end and as the attacks they stop. A raw client: reqwest, and proofs
//! signed here with ring's Ed25519 and P-256 keys. Every bridge runs on
//! PostgreSQL when `CYRCLES_TEST_POSTGRES_URL` is set, on SQLite otherwise.

use std::collections::BTreeMap;

use cyrcles_bridge::{base64url, crypto, random};
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
                "kty": "OKP", "crv": "Ed25519", "x": base64url::encode(k.public_key().as_ref()),
            }),
            Key::P256(k) => {
                let p = k.public_key().as_ref();
                json!({
                    "kty": "EC", "crv": "P-256",
                    "x": base64url::encode(&p[1..33]), "y": base64url::encode(&p[33..65]),
                })
            }
        }
    }

    /// RFC 7638, computed independently of the bridge: the required
    /// members, sorted, as compact JSON, hashed.
    fn jkt(&self) -> String {
        let jwk = self.jwk();
        let map: BTreeMap<&String, &Value> = jwk.as_object().unwrap().iter().collect();
        base64url::encode(&crypto::sha256(&serde_json::to_string(&map).unwrap()))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            base64url::encode(header.to_string().as_bytes()),
            base64url::encode(claims.to_string().as_bytes())
        );
        let sig = match self {
            Key::Ed25519(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            Key::P256(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", base64url::encode(&sig))
    }

    fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk() })
    }

    /// A fresh proof (new jti) for `method` at `url`, made at `iat`.
    fn proof_at(&self, method: &str, url: &str, iat: i64, token: Option<&str>) -> String {
        let mut claims = json!({ "jti": random::id(), "htm": method, "htu": url, "iat": iat });
        if let Some(t) = token {
            claims["ath"] = json!(base64url::encode(&crypto::sha256(t)));
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
    let verifier = format!("{}{}", random::token(), random::id());
    let challenge = base64url::encode(&crypto::sha256(&verifier));
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
    let state = random::id();
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

mod bound;
mod flows;
mod par;
mod proofs;
