//! `/.well-known/openid-configuration` (OIDC Discovery 1.0, RFC 8414) and
//! `/jwks`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::state::AppState;

/// Scopes accepted. Only `openid` yields claims; the others are accepted
/// and yield nothing, since Cyrcles holds no personal data.
pub const SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];
/// Claims that can appear.
pub const CLAIMS: [&str; 11] = [
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
];

/// The discovery document, built once at start.
pub fn document(s: &Settings) -> Value {
    let i = &s.issuer;
    let mut doc = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "revocation_endpoint": format!("{i}/revoke"),
        "introspection_endpoint": format!("{i}/introspect"),
        "pushed_authorization_request_endpoint": format!("{i}/par"),
        "require_pushed_authorization_requests": s.oidc.require_pushed_authorization_requests,
        "dpop_signing_alg_values_supported": crate::oidc::dpop::ALGS,
        "end_session_endpoint": format!("{i}/logout"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "acr_values_supported": crate::oidc::acr::SUPPORTED,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page", "popup", "touch"],
        "claim_types_supported": ["normal"],
        "ui_locales_supported": ["en"],
        "service_documentation": "https://github.com/cyrcles/cyrcles/blob/main/docs/integrating.md",
    });
    if s.oidc.dynamic_registration
        && let Value::Object(m) = &mut doc
    {
        m.insert(
            "registration_endpoint".into(),
            json!(format!("{i}/register")),
        );
    }
    doc
}

fn json_response(body: String, cache: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

/// `GET /.well-known/openid-configuration`
pub async fn configuration(State(state): State<AppState>) -> Response {
    json_response(state.discovery.clone(), "public, max-age=3600")
}

/// The JWKS's cache lifetime in seconds, as a literal for `concat!`.
macro_rules! jwks_max_age {
    () => {
        300
    };
}

/// How long clients may cache the JWKS (a new signing key is published
/// twice this long before it signs).
pub const JWKS_MAX_AGE_SECS: i64 = jwks_max_age!();

/// `GET /jwks`
pub async fn jwks(State(state): State<AppState>) -> Response {
    // Short caching: a rotation shows within a few minutes, and clients
    // refetch on an unknown kid anyway.
    json_response(
        state.keys.jwks().to_string(),
        concat!("public, max-age=", jwks_max_age!()),
    )
}
