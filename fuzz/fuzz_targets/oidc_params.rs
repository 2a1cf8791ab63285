//! The bridge's form and query parsing (`bridge/src/oidc/params.rs`,
//! `token.rs`, `client.rs`, `register.rs`): what a browser or a client
//! sends to `/authorize`, `/token`, `/logout` and `/register`.
//!
//! * Authorize: a raw query string, parsed as `/authorize` does
//!   (`form_urlencoded`, `params::collect`, then `params::validate` for a
//!   public and a confidential client). `collect` matches a model of its
//!   rules (caps, empty values absent, duplicates listed in order); an
//!   accepted request obeys every rule of `validate` and survives the JSON
//!   round trip through the interaction table; a refusal is sent only to
//!   the registered redirect URI.
//! * Token: a form body and an `Authorization` header, as `/token` reads
//!   them (`token::form`, `Presented::read`, `Presented::authenticate`).
//!   `form` matches a model (no repeats, caps); only the registered secret
//!   by the registered method authenticates.
//! * Register: a JSON body, as `/register` parses it; accepted metadata is
//!   valid again, survives storage (JSON) and loads back as a client.
//! * A redirect URI alone (`check_redirect_uri`).

#![no_main]

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use cyrcles_bridge::oidc::client::{
    AuthMethod, Client, ClientMetadata, Presented, check_redirect_uri,
};
use cyrcles_bridge::oidc::params::{self, AuthRequest};
use cyrcles_bridge::oidc::token;
use cyrcles_bridge::store::ClientRow;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const SECRET: &str = "s3cret+/=%:é";
const REDIRECT: &str = "https://rp.example/cb";

fn client(id: &str, auth: AuthMethod, scope: Option<&str>) -> Client {
    let meta = serde_json::json!({
        "redirect_uris": [REDIRECT, "https://rp.example/other"],
        "token_endpoint_auth_method": auth.as_str(),
        "scope": scope,
    });
    let secret_hash = (auth != AuthMethod::None).then(|| cyrcles_bridge::crypto::sha256(SECRET));
    let row = ClientRow {
        client_id: id.into(),
        secret_hash,
        name: "RP".into(),
        metadata: meta.to_string(),
        registration_token_hash: None,
        created_at: 0,
        updated_at: 0,
    };
    Client::from_row(row).unwrap_or_else(|e| panic!("fixture client: {e}"))
}

#[derive(Arbitrary, Debug)]
enum Input {
    Authorize {
        query: Vec<u8>,
        /// Put the client's id and redirect URI in, to reach `validate`.
        fill: bool,
        public: bool,
        scoped: bool,
        require_pkce: bool,
    },
    Token {
        body: Vec<u8>,
        authorization: Option<Vec<u8>>,
        /// A second `Authorization` header.
        twice: bool,
        form: bool,
    },
    Register(Vec<u8>),
    Redirect(String),
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    match input {
        Input::Authorize {
            query,
            fill,
            public,
            scoped,
            require_pkce,
        } => authorize(&query, fill, public, scoped, require_pkce),
        Input::Token {
            body,
            authorization,
            twice,
            form,
        } => token_request(&body, authorization.as_deref(), twice, form),
        Input::Register(body) => register(&body),
        Input::Redirect(uri) => redirect(&uri),
    }
});

fn authorize(query: &[u8], fill: bool, public: bool, scoped: bool, require_pkce: bool) {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query).into_owned().collect();
    let got = params::collect(pairs.clone());
    let too_long = pairs.iter().any(|(_, v)| v.len() > 4096);
    let (mut map, dups) = match got {
        Err(_) => {
            assert!(
                pairs.len() > 64 || too_long,
                "collect refused a fine request"
            );
            return;
        }
        Ok(x) => x,
    };
    assert!(pairs.len() <= 64 && !too_long, "collect took too much");
    let mut model: HashMap<String, String> = HashMap::new();
    let mut model_dups = Vec::new();
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        if model.insert(k.clone(), v.clone()).is_some() {
            model_dups.push(k.clone());
        }
    }
    assert_eq!(map, model);
    assert_eq!(dups, model_dups);

    let auth = if public {
        AuthMethod::None
    } else {
        AuthMethod::SecretBasic
    };
    let c = client("rp-1", auth, scoped.then_some("profile email"));
    if fill {
        map.insert("client_id".into(), c.id.clone());
        map.insert("redirect_uri".into(), REDIRECT.into());
    }
    // The handler's own checks before `validate`.
    if dups.iter().any(|d| d == "client_id" || d == "redirect_uri")
        || map.get("client_id") != Some(&c.id)
    {
        return;
    }
    let Some(redirect_uri) = map.get("redirect_uri").cloned() else {
        return;
    };
    if !c.has_redirect_uri(&redirect_uri) {
        return;
    }
    match params::validate(&map, &dups, &c, &redirect_uri, require_pkce) {
        Ok(req) => accepted(&req, &map, &dups, &c, &redirect_uri, require_pkce),
        Err(p) => {
            assert_eq!(p.redirect_uri, redirect_uri, "an error sent elsewhere");
            assert!(c.has_redirect_uri(&p.redirect_uri));
            assert_eq!(p.state.as_ref(), map.get("state"));
        }
    }
}

fn accepted(
    req: &AuthRequest,
    map: &HashMap<String, String>,
    dups: &[String],
    c: &Client,
    redirect_uri: &str,
    require_pkce: bool,
) {
    assert!(dups.is_empty());
    assert_eq!(req.client_id, c.id);
    assert_eq!(req.redirect_uri, redirect_uri);
    assert_eq!(map.get("response_type").map(String::as_str), Some("code"));
    assert!(!map.contains_key("request") && !map.contains_key("request_uri"));
    assert!(req.scopes.iter().any(|s| s == "openid"));
    assert!(req.scopes.iter().all(|s| !s.is_empty() && !s.contains(' ')));
    let mut sorted = req.scopes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), req.scopes.len(), "repeated scope");
    if let Some(allowed) = &c.meta.scope {
        let allowed: Vec<&str> = allowed.split(' ').collect();
        assert!(
            req.scopes
                .iter()
                .all(|s| s == "openid" || allowed.contains(&s.as_str()))
        );
    }
    assert!(!(req.prompt.none && (req.prompt.login || req.prompt.consent)));
    match &req.code_challenge {
        Some(ch) => {
            assert_eq!(
                map.get("code_challenge_method").map(String::as_str),
                Some("S256")
            );
            assert!((43..=128).contains(&ch.len()));
            assert!(
                ch.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            );
        }
        None => {
            assert!(
                !c.is_public() && !require_pkce,
                "a request without PKCE accepted"
            );
            assert!(!map.contains_key("code_challenge"));
        }
    }
    for v in [&req.nonce, &req.acr_values].into_iter().flatten() {
        assert!(!v.chars().any(char::is_control));
    }
    if let Some(claims) = &req.claims {
        assert!(serde_json::from_str::<Value>(claims).is_ok_and(|v| v.is_object()));
    }
    // The request waits in the interaction table as JSON.
    let stored = serde_json::to_string(req).unwrap_or_else(|e| panic!("store: {e}"));
    let back: AuthRequest = serde_json::from_str(&stored).unwrap_or_else(|e| panic!("load: {e}"));
    assert_eq!(
        serde_json::to_string(&back).ok().as_deref(),
        Some(stored.as_str())
    );
}

fn token_request(body: &[u8], authorization: Option<&[u8]>, twice: bool, form: bool) {
    let mut headers = HeaderMap::new();
    let ct = if form {
        "application/x-www-form-urlencoded"
    } else {
        "text/plain"
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Some(v) = authorization.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        if twice {
            headers.append(header::AUTHORIZATION, v.clone());
        }
        headers.append(header::AUTHORIZATION, v);
    }
    let got = token::form(&headers, body);
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let mut keys: Vec<&String> = pairs.iter().map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let fine = form
        && pairs.iter().all(|(_, v)| v.len() <= 8192)
        && keys.len() == pairs.len()
        && pairs.len() <= 32;
    let Ok(f) = got else {
        assert!(!fine, "form refused a fine body");
        return;
    };
    assert!(fine, "form took a body it must refuse");
    assert_eq!(f, pairs.into_iter().collect::<HashMap<_, _>>());

    let presented = Presented::read(
        &headers,
        f.get("client_id").map(String::as_str),
        f.get("client_secret").map(String::as_str),
    );
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        assert!(presented.is_err(), "two Authorization headers taken");
    }
    let Ok(p) = presented else {
        return;
    };
    assert!(
        !(p.basic.is_some() && p.body_secret.is_some()),
        "two authentication methods"
    );
    if let (Some((bid, _)), Some(id)) = (&p.basic, &p.body_id) {
        assert_eq!(bid, id);
    }
    for auth in [
        AuthMethod::SecretBasic,
        AuthMethod::SecretPost,
        AuthMethod::None,
    ] {
        let c = client("rp-1", auth, None);
        if p.authenticate(&c).is_ok() {
            match auth {
                AuthMethod::SecretBasic => {
                    assert_eq!(p.basic.as_ref().map(|(_, s)| s.as_str()), Some(SECRET));
                    assert!(p.body_secret.is_none());
                }
                AuthMethod::SecretPost => {
                    assert_eq!(p.body_secret.as_deref(), Some(SECRET));
                    assert!(p.basic.is_none());
                }
                AuthMethod::None => assert!(p.basic.is_none() && p.body_secret.is_none()),
            }
        }
    }
    // The honest client's header, next to whatever the body says.
    if p.body_secret.is_none() && p.body_id.as_deref().is_none_or(|id| id == "rp-1") {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc("rp-1"),
            enc(SECRET)
        ));
        let mut h = HeaderMap::new();
        let v = HeaderValue::from_str(&format!("Basic {basic}"))
            .unwrap_or_else(|e| panic!("header: {e}"));
        h.insert(header::AUTHORIZATION, v);
        let honest = Presented::read(&h, p.body_id.as_deref(), None)
            .unwrap_or_else(|_| panic!("the honest Basic header was refused"));
        assert_eq!(honest.client_id(), Some("rp-1"));
        assert!(
            honest
                .authenticate(&client("rp-1", AuthMethod::SecretBasic, None))
                .is_ok()
        );
    }
}

fn register(body: &[u8]) {
    // As `register::parse_meta` does.
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if !v.is_object() {
        return;
    }
    let Ok(meta) = serde_json::from_value::<ClientMetadata>(v) else {
        return;
    };
    let Ok(meta) = meta.validate() else {
        return;
    };
    assert!((1..=20).contains(&meta.redirect_uris.len()));
    for r in &meta.redirect_uris {
        assert!(check_redirect_uri(r).is_ok());
    }
    let again = meta
        .clone()
        .validate()
        .unwrap_or_else(|e| panic!("valid once, not twice: {}", e.description));
    assert_eq!(again, meta);
    // Stored as JSON, loaded as a client.
    let json = serde_json::to_string(&meta).unwrap_or_else(|e| panic!("store: {e}"));
    let back: ClientMetadata = serde_json::from_str(&json).unwrap_or_else(|e| panic!("load: {e}"));
    assert_eq!(back, meta);
    let row = ClientRow {
        client_id: "new".into(),
        secret_hash: None,
        name: meta.client_name.clone().unwrap_or_default(),
        metadata: json,
        registration_token_hash: None,
        created_at: 0,
        updated_at: 0,
    };
    let c =
        Client::from_row(row).unwrap_or_else(|e| panic!("a registered client does not load: {e}"));
    for r in &meta.redirect_uris {
        assert!(c.has_redirect_uri(r));
    }
}

fn redirect(uri: &str) {
    let Ok(u) = check_redirect_uri(uri) else {
        return;
    };
    assert!(u.fragment().is_none());
    assert!(!["javascript", "data", "file", "vbscript"].contains(&u.scheme()));
    if u.scheme() == "http" {
        assert!(matches!(
            u.host_str(),
            Some("localhost" | "127.0.0.1" | "[::1]")
        ));
    }
}
