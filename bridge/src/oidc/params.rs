//! The authorization request (OIDC Core §3.1.2.1, RFC 6749 §4.1.1,
//! RFC 7636), parsed once at the edge into [`AuthRequest`].
//!
//! The client and the redirect URI are checked first: until both are known
//! good, errors are shown as a page, never redirected (RFC 6749 §4.1.2.1).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Code;
use crate::oidc::client::Client;

/// How the response goes back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query.
    Query,
    /// An auto-submitted HTML form POST (OAuth 2.0 Form Post Response Mode).
    FormPost,
}

/// `prompt` values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: no page may be shown.
    pub none: bool,
    /// `login`: authenticate again even with a session.
    pub login: bool,
    /// `consent`: ask for consent again.
    pub consent: bool,
}

/// A validated authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// The exact, registered redirect URI.
    pub redirect_uri: String,
    /// Requested scopes (contains `openid`), deduplicated, in order.
    pub scopes: Vec<String>,
    /// Opaque client state.
    pub state: Option<String>,
    /// Nonce for the ID token.
    pub nonce: Option<String>,
    /// Response mode.
    pub response_mode: ResponseMode,
    /// Prompt.
    pub prompt: Prompt,
    /// Maximum authentication age, seconds.
    pub max_age: Option<u64>,
    /// Suggested ego id.
    pub login_hint: Option<String>,
    /// A previously issued ID token naming the expected ego.
    pub id_token_hint: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// The `claims` parameter, JSON.
    pub claims: Option<String>,
    /// Requested ACR values.
    pub acr_values: Option<String>,
    /// Whether the person must confirm the login in their agent
    /// ([`crate::oidc::acr::wants_person`]); kept when the rest of the
    /// request's authentication parameters are dropped.
    #[serde(default)]
    pub person_required: bool,
    /// The DPoP key the code is bound to (RFC 9449 §10), a thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

/// A failure before the client and redirect URI are trusted: shown as a
/// page.
#[derive(Debug)]
pub struct PageProblem(pub String);

/// A failure after: redirected to the client.
#[derive(Debug)]
pub struct RedirectProblem {
    /// The error code.
    pub code: Code,
    /// A description.
    pub description: String,
    /// Where to send it.
    pub redirect_uri: String,
    /// The client's state.
    pub state: Option<String>,
    /// How.
    pub mode: ResponseMode,
}

/// Longest value accepted for any parameter.
const MAX_PARAM: usize = 4096;
/// Longest `state` (it is stored with the interaction and echoed back).
pub const MAX_STATE: usize = 1024;
/// Longest `nonce` (stored with the grant, copied into the ID token).
pub const MAX_NONCE: usize = 512;
/// Longest `claims` request (stored with the grant).
pub const MAX_CLAIMS: usize = 1024;
/// Longest `scope`, and most scope values.
pub const MAX_SCOPE: usize = 1024;
/// Most scope values in one request.
pub const MAX_SCOPES: usize = 32;
/// Longest `login_hint` kept (a longer one is no ego id, and a hint is only
/// a suggestion: it is dropped).
pub const MAX_LOGIN_HINT: usize = 128;
/// Most parameters accepted.
const MAX_PARAMS: usize = 64;

/// Collects raw pairs, noting duplicates.
pub fn collect(
    pairs: Vec<(String, String)>,
) -> Result<(HashMap<String, String>, Vec<String>), PageProblem> {
    if pairs.len() > MAX_PARAMS {
        return Err(PageProblem("too many parameters".into()));
    }
    let mut map = HashMap::new();
    let mut dups = Vec::new();
    for (k, v) in pairs {
        if v.len() > MAX_PARAM {
            return Err(PageProblem(format!("parameter {k} is too long")));
        }
        // Empty values count as absent (RFC 6749 §3.1).
        if v.is_empty() {
            continue;
        }
        if map.insert(k.clone(), v).is_some() {
            dups.push(k);
        }
    }
    Ok((map, dups))
}

fn valid_pkce_challenge(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
}

/// Validates a request for `client`, whose id and redirect URI the caller
/// has already matched. `require_pkce` applies to confidential clients.
pub fn validate(
    p: &HashMap<String, String>,
    dups: &[String],
    client: &Client,
    redirect_uri: &str,
    require_pkce_for_confidential: bool,
) -> Result<AuthRequest, RedirectProblem> {
    let state = p.get("state").cloned();
    let mode = match p.get("response_mode").map(String::as_str) {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err(()),
    };
    let fail = |code: Code, d: &str, mode: ResponseMode| RedirectProblem {
        code,
        description: d.to_string(),
        redirect_uri: redirect_uri.to_string(),
        state: state.clone(),
        mode,
    };
    let mode = match mode {
        Ok(m) => m,
        Err(()) => {
            return Err(fail(
                Code::InvalidRequest,
                "unsupported response_mode",
                ResponseMode::Query,
            ));
        }
    };
    if let Some(d) = dups.first() {
        return Err(fail(
            Code::InvalidRequest,
            &format!("parameter {d} appears more than once"),
            mode,
        ));
    }
    if p.contains_key("request") {
        return Err(fail(
            Code::RequestNotSupported,
            "request objects are not supported",
            mode,
        ));
    }
    if p.contains_key("request_uri") {
        return Err(fail(
            Code::RequestUriNotSupported,
            "request_uri is not supported",
            mode,
        ));
    }
    match p.get("response_type").map(String::as_str) {
        None => {
            return Err(fail(
                Code::InvalidRequest,
                "response_type is required",
                mode,
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                Code::UnsupportedResponseType,
                "only response_type=code is supported",
                mode,
            ));
        }
    }
    for (name, max) in [
        ("state", MAX_STATE),
        ("nonce", MAX_NONCE),
        ("claims", MAX_CLAIMS),
        ("scope", MAX_SCOPE),
    ] {
        if p.get(name).is_some_and(|v| v.len() > max) {
            return Err(fail(
                Code::InvalidRequest,
                &format!("{name} is too long (at most {max} bytes)"),
                mode,
            ));
        }
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in p.get("scope").map(String::as_str).unwrap_or("").split(' ') {
        if !s.is_empty() && !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    if scopes.len() > MAX_SCOPES {
        return Err(fail(
            Code::InvalidScope,
            &format!("too many scope values (at most {MAX_SCOPES})"),
            mode,
        ));
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(fail(
            Code::InvalidScope,
            "the openid scope is required",
            mode,
        ));
    }
    if let Some(allowed) = &client.meta.scope {
        let allowed: Vec<&str> = allowed.split(' ').collect();
        if let Some(s) = scopes
            .iter()
            .find(|s| *s != "openid" && !allowed.contains(&s.as_str()))
        {
            return Err(fail(
                Code::InvalidScope,
                &format!("scope {s} is not allowed for this client"),
                mode,
            ));
        }
    }
    let mut prompt = Prompt::default();
    if let Some(v) = p.get("prompt") {
        for x in v.split(' ').filter(|x| !x.is_empty()) {
            match x {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => {}
                _ => return Err(fail(Code::InvalidRequest, "unknown prompt value", mode)),
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(fail(
                Code::InvalidRequest,
                "prompt=none cannot be combined",
                mode,
            ));
        }
    }
    let max_age = match p.get("max_age") {
        None => client.meta.default_max_age,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Err(fail(
                    Code::InvalidRequest,
                    "max_age must be a non-negative integer",
                    mode,
                ));
            }
        },
    };
    let code_challenge = match (
        p.get("code_challenge"),
        p.get("code_challenge_method").map(String::as_str),
    ) {
        (None, None) => None,
        (Some(c), Some("S256")) if valid_pkce_challenge(c) => Some(c.clone()),
        (Some(_), Some("S256")) => {
            return Err(fail(Code::InvalidRequest, "malformed code_challenge", mode));
        }
        (Some(_), None) | (Some(_), Some("plain")) => {
            return Err(fail(
                Code::InvalidRequest,
                "code_challenge_method must be S256",
                mode,
            ));
        }
        (_, Some(_)) => {
            return Err(fail(
                Code::InvalidRequest,
                "unsupported code_challenge_method",
                mode,
            ));
        }
    };
    if code_challenge.is_none() && (client.is_public() || require_pkce_for_confidential) {
        return Err(fail(
            Code::InvalidRequest,
            "PKCE (code_challenge with S256) is required",
            mode,
        ));
    }
    let claims = match p.get("claims") {
        None => None,
        Some(c) => match serde_json::from_str::<serde_json::Value>(c) {
            Ok(serde_json::Value::Object(_)) => Some(c.clone()),
            _ => {
                return Err(fail(
                    Code::InvalidRequest,
                    "claims must be a JSON object",
                    mode,
                ));
            }
        },
    };
    // An RFC 7638 thumbprint: base64url of a SHA-256 digest.
    let dpop_jkt = match p.get("dpop_jkt") {
        None => None,
        Some(j) if crate::random::is_token_shaped(j) => Some(j.clone()),
        Some(_) => {
            return Err(fail(
                Code::InvalidRequest,
                "dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638), base64url",
                mode,
            ));
        }
    };
    let text = |k: &str| {
        p.get(k)
            .filter(|v| !v.chars().any(char::is_control))
            .cloned()
    };
    let mut req = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scopes,
        state,
        nonce: text("nonce"),
        response_mode: mode,
        prompt,
        max_age,
        login_hint: p
            .get("login_hint")
            .map(|h| h.trim().to_string())
            .filter(|h| h.len() <= MAX_LOGIN_HINT),
        id_token_hint: p.get("id_token_hint").cloned(),
        code_challenge,
        claims,
        acr_values: text("acr_values"),
        person_required: false,
        dpop_jkt,
    };
    req.person_required = crate::oidc::acr::wants_person(&req);
    Ok(req)
}

impl AuthRequest {
    /// What the later steps need, to be stored with the interaction: the
    /// `id_token_hint`, `max_age` and `acr_values` served their purpose at
    /// `/authorize` (the login that follows is always fresh, and
    /// `person_required` keeps what they asked of it).
    pub fn for_storage(&self) -> AuthRequest {
        AuthRequest {
            id_token_hint: None,
            acr_values: None,
            max_age: None,
            ..self.clone()
        }
    }
}

/// Whether `verifier` matches an S256 `challenge` (RFC 7636 §4.6).
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    if !valid_pkce_challenge(verifier) {
        return false;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    crate::crypto::ct_eq(
        crate::base64url::encode(digest.as_ref()).as_bytes(),
        challenge.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert!(pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "short"
        ));
    }

    #[test]
    fn duplicates_and_empty_values() {
        let (map, dups) = collect(vec![
            ("a".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "".into()),
        ])
        .unwrap();
        assert_eq!(dups, vec!["a".to_string()]);
        assert!(!map.contains_key("b"));
    }
}
