//! OAuth clients: registered metadata, its validation (RFC 7591, OIDC
//! Registration 1.0), and client authentication at the token,
//! introspection and revocation endpoints (RFC 6749 §2.3).

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{ApiError, Code};
use crate::jose::Alg;
use crate::store::ClientRow;
use crate::{crypto, random};

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with client id and secret.
    SecretBasic,
    /// `client_id` and `client_secret` in the form body.
    SecretPost,
    /// A public client: no secret, PKCE required.
    None,
}

impl AuthMethod {
    /// The registration value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::SecretBasic => "client_secret_basic",
            AuthMethod::SecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }

    /// Parses a registration value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(AuthMethod::SecretBasic),
            "client_secret_post" => Some(AuthMethod::SecretPost),
            "none" => Some(AuthMethod::None),
            _ => None,
        }
    }
}

fn default_auth() -> String {
    "client_secret_basic".into()
}
fn default_grants() -> Vec<String> {
    vec!["authorization_code".into()]
}
fn default_response_types() -> Vec<String> {
    vec!["code".into()]
}
fn default_alg() -> String {
    "RS256".into()
}
fn default_subject() -> String {
    "pairwise".into()
}

/// Registered client metadata (the subset this provider uses; other members
/// of a registration request are ignored, as RFC 7591 allows).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientMetadata {
    /// Exact redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Token endpoint authentication method.
    #[serde(default = "default_auth")]
    pub token_endpoint_auth_method: String,
    /// Grant types: `authorization_code`, `refresh_token`.
    #[serde(default = "default_grants")]
    pub grant_types: Vec<String>,
    /// Response types: only `code`.
    #[serde(default = "default_response_types")]
    pub response_types: Vec<String>,
    /// ID token signing algorithm: RS256 (default), ES256, EdDSA.
    #[serde(default = "default_alg")]
    pub id_token_signed_response_alg: String,
    /// `pairwise` (default) or `public`.
    #[serde(default = "default_subject")]
    pub subject_type: String,
    /// Back-channel logout endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Whether logout tokens must carry `sid` (they always do here).
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// Terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Contacts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// Default `max_age`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_age: Option<u64>,
    /// Always include `auth_time` (it always is here).
    #[serde(default)]
    pub require_auth_time: bool,
    /// Scopes the client may ask for (space-separated); empty: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Authorization requests must come through `/par` (RFC 9126 §6).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_pushed_authorization_requests: bool,
    /// Token requests must carry a DPoP proof (RFC 9449 §5.2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
}

/// Why metadata is refused.
#[derive(Debug)]
pub struct MetadataError {
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    pub code: Code,
    /// What is wrong.
    pub description: String,
}

fn meta_err(code: Code, d: impl Into<String>) -> MetadataError {
    MetadataError {
        code,
        description: d.into(),
    }
}

/// Checks a redirect URI: absolute, no fragment, and https, or http on a
/// loopback host, or a private-use scheme with a dot (RFC 8252 §7.1).
pub fn check_redirect_uri(s: &str) -> Result<Url, String> {
    if s.len() > 2000 {
        return Err("redirect URI too long".into());
    }
    let u = Url::parse(s).map_err(|e| format!("not an absolute URI: {e}"))?;
    if u.fragment().is_some() {
        return Err("redirect URIs must not have a fragment".into());
    }
    match u.scheme() {
        "https" => Ok(u),
        "http" if is_loopback(u.host_str()) => Ok(u),
        "http" => Err("http redirect URIs are only allowed on loopback hosts".into()),
        "javascript" | "data" | "file" | "vbscript" => Err("scheme not allowed".into()),
        scheme if scheme.contains('.') => Ok(u),
        _ => Err("use https, http on a loopback host, or a reverse-domain private scheme".into()),
    }
}

/// Whether a URI's host is one of the loopback hosts `http` is allowed on.
fn is_loopback(host: Option<&str>) -> bool {
    matches!(host, Some("localhost" | "127.0.0.1" | "[::1]"))
}

fn check_https_or_loopback(what: &str, s: &str) -> Result<(), MetadataError> {
    let u =
        Url::parse(s).map_err(|e| meta_err(Code::InvalidClientMetadata, format!("{what}: {e}")))?;
    if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(u.host_str())) {
        Ok(())
    } else {
        Err(meta_err(
            Code::InvalidClientMetadata,
            format!("{what} must be https"),
        ))
    }
}

impl ClientMetadata {
    /// Validates and normalizes metadata for registration.
    pub fn validate(mut self) -> Result<Self, MetadataError> {
        if self.redirect_uris.is_empty() {
            return Err(meta_err(
                Code::InvalidRedirectUri,
                "at least one redirect URI is required",
            ));
        }
        if self.redirect_uris.len() > 20 {
            return Err(meta_err(
                Code::InvalidRedirectUri,
                "at most 20 redirect URIs",
            ));
        }
        for r in &self.redirect_uris {
            check_redirect_uri(r)
                .map_err(|e| meta_err(Code::InvalidRedirectUri, format!("{r}: {e}")))?;
        }
        if self.post_logout_redirect_uris.len() > 20 {
            return Err(meta_err(
                Code::InvalidClientMetadata,
                "at most 20 post-logout redirect URIs",
            ));
        }
        for r in &self.post_logout_redirect_uris {
            check_redirect_uri(r).map_err(|e| {
                meta_err(
                    Code::InvalidClientMetadata,
                    format!("post_logout_redirect_uri {r}: {e}"),
                )
            })?;
        }
        if AuthMethod::parse(&self.token_endpoint_auth_method).is_none() {
            return Err(meta_err(
                Code::InvalidClientMetadata,
                "token_endpoint_auth_method must be client_secret_basic, client_secret_post or none",
            ));
        }
        for g in &self.grant_types {
            if g != "authorization_code" && g != "refresh_token" {
                return Err(meta_err(
                    Code::InvalidClientMetadata,
                    format!("unsupported grant type {g}"),
                ));
            }
        }
        if !self.grant_types.iter().any(|g| g == "authorization_code") {
            return Err(meta_err(
                Code::InvalidClientMetadata,
                "grant_types must include authorization_code",
            ));
        }
        if self.response_types.iter().any(|r| r != "code") {
            return Err(meta_err(
                Code::InvalidClientMetadata,
                "only the code response type is supported",
            ));
        }
        if Alg::parse(&self.id_token_signed_response_alg).is_none() {
            return Err(meta_err(
                Code::InvalidClientMetadata,
                "id_token_signed_response_alg must be RS256, ES256 or EdDSA",
            ));
        }
        if self.subject_type != "pairwise" && self.subject_type != "public" {
            return Err(meta_err(
                Code::InvalidClientMetadata,
                "subject_type must be pairwise or public",
            ));
        }
        {
            // Without a sector identifier document (not supported), every
            // redirect URI must share one host: it is the pairwise sector,
            // and the person is shown the origin the code goes to, which a
            // client could otherwise spread over hosts it does not name.
            let hosts: std::collections::BTreeSet<String> = self
                .redirect_uris
                .iter()
                .filter_map(|r| Url::parse(r).ok())
                .map(|u| u.host_str().unwrap_or(u.scheme()).to_string())
                .collect();
            if hosts.len() > 1 {
                return Err(meta_err(
                    Code::InvalidClientMetadata,
                    "a client's redirect URIs must share one host (register one client per host)",
                ));
            }
        }
        if let Some(u) = &self.backchannel_logout_uri {
            check_https_or_loopback("backchannel_logout_uri", u)?;
            if Url::parse(u).is_ok_and(|u| u.fragment().is_some()) {
                return Err(meta_err(
                    Code::InvalidClientMetadata,
                    "backchannel_logout_uri must not have a fragment",
                ));
            }
        }
        for (what, v) in [
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("policy_uri", &self.policy_uri),
            ("tos_uri", &self.tos_uri),
        ] {
            if let Some(v) = v {
                check_https_or_loopback(what, v)?;
            }
        }
        if let Some(n) = &self.client_name
            && (n.trim().is_empty() || n.len() > 128 || !cyrcles_core::text::is_allowed(n))
        {
            return Err(meta_err(
                Code::InvalidClientMetadata,
                "client_name must be 1-128 printable characters",
            ));
        }
        if self.contacts.len() > 10 || self.contacts.iter().any(|c| c.len() > 256) {
            return Err(meta_err(
                Code::InvalidClientMetadata,
                "too many or too long contacts",
            ));
        }
        if let Some(s) = &self.scope
            && s.len() > 1024
        {
            return Err(meta_err(Code::InvalidClientMetadata, "scope too long"));
        }
        self.redirect_uris.dedup();
        Ok(self)
    }
}

/// A client ready to use.
#[derive(Clone)]
pub struct Client {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// SHA-256 of its secret, for confidential clients.
    pub secret_hash: Option<Vec<u8>>,
    /// Its metadata.
    pub meta: ClientMetadata,
    /// Authentication method.
    pub auth: AuthMethod,
    /// ID token algorithm.
    pub alg: Alg,
    /// Pairwise subjects.
    pub pairwise: bool,
    /// The sector of pairwise subjects ([`sector_of`]).
    pub sector: String,
    /// Registration access token hash (RFC 7592).
    pub registration_token_hash: Option<Vec<u8>>,
    /// Created.
    pub created_at: i64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Reads a stored client.
    pub fn from_row(row: ClientRow) -> Result<Self, crate::store::StoreError> {
        let meta: ClientMetadata = serde_json::from_str(&row.metadata)
            .map_err(|_| crate::store::StoreError::Corrupt("client metadata"))?;
        let auth = AuthMethod::parse(&meta.token_endpoint_auth_method)
            .ok_or(crate::store::StoreError::Corrupt("client auth method"))?;
        let alg = Alg::parse(&meta.id_token_signed_response_alg)
            .ok_or(crate::store::StoreError::Corrupt("client alg"))?;
        let sector = sector_of(&row.client_id, &meta);
        Ok(Client {
            id: row.client_id,
            name: row.name,
            secret_hash: row.secret_hash,
            pairwise: meta.subject_type != "public",
            auth,
            alg,
            sector,
            meta,
            registration_token_hash: row.registration_token_hash,
            created_at: row.created_at,
        })
    }

    /// Whether the client is public (no secret).
    pub fn is_public(&self) -> bool {
        self.auth == AuthMethod::None
    }

    /// The host whose sites all share this client's pairwise subjects (OIDC
    /// Core §8.1), or `None` when the client is its own sector.
    pub fn shared_sector(&self) -> Option<&str> {
        (!self.sector.starts_with(CLIENT_SECTOR)).then_some(self.sector.as_str())
    }

    /// Whether a stranger registered it (RFC 7591) rather than the operator.
    pub fn is_dynamic(&self) -> bool {
        self.registration_token_hash.is_some()
    }

    /// Whether `uri` is one of its redirect URIs, compared exactly.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.meta.redirect_uris.iter().any(|r| r == uri)
    }

    /// Whether it may use refresh tokens.
    pub fn may_refresh(&self) -> bool {
        self.meta.grant_types.iter().any(|g| g == "refresh_token")
    }
}

/// The sector of a client's pairwise subjects (OIDC Core §8.1): the host of
/// its redirect URIs, which every site on that host shares, or, where a
/// host proves nothing (loopback, which every local client shares, and a
/// private-use scheme, which any app can claim), the client itself.
pub fn sector_of(client_id: &str, meta: &ClientMetadata) -> String {
    // `url` lowercases the hosts of http and https URIs.
    let host = meta
        .redirect_uris
        .first()
        .and_then(|r| Url::parse(r).ok())
        .filter(|u| u.scheme() == "https" || u.scheme() == "http")
        .and_then(|u| u.host_str().map(str::to_string));
    match host {
        Some(h) if !is_loopback(Some(&h)) => h,
        _ => format!("{CLIENT_SECTOR}{client_id}"),
    }
}

/// How a sector that is a client, not a host, begins.
const CLIENT_SECTOR: &str = "client:";

/// The origin of a redirect URI, shown to people: that of the request's
/// own `redirect_uri`, where the code goes, not of whichever URI the client
/// registered first.
pub fn origin_of(redirect_uri: &str) -> String {
    Url::parse(redirect_uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The credentials a request presents.
#[derive(Debug, Default)]
pub struct Presented {
    /// From the Basic header.
    pub basic: Option<(String, String)>,
    /// `client_id` in the body.
    pub body_id: Option<String>,
    /// `client_secret` in the body.
    pub body_secret: Option<String>,
}

fn percent_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

impl Presented {
    /// Reads the Basic header (RFC 6749 §2.3.1: id and secret are
    /// form-urlencoded before base64) and the body fields.
    pub fn read(
        headers: &HeaderMap,
        body_id: Option<&str>,
        body_secret: Option<&str>,
    ) -> Result<Self, ApiError> {
        let mut p = Presented {
            body_id: body_id.map(str::to_string),
            body_secret: body_secret.map(str::to_string),
            basic: None,
        };
        let mut auths = headers.get_all(axum::http::header::AUTHORIZATION).iter();
        if let Some(h) = auths.next() {
            if auths.next().is_some() {
                return Err(ApiError::bad(
                    Code::InvalidRequest,
                    "more than one Authorization header",
                ));
            }
            let h = h.to_str().map_err(|_| ApiError::invalid_client(true))?;
            if let Some(b64) = h
                .strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
            {
                let raw = STANDARD
                    .decode(b64.trim())
                    .map_err(|_| ApiError::invalid_client(true))?;
                let raw = String::from_utf8(raw).map_err(|_| ApiError::invalid_client(true))?;
                let (id, secret) = raw
                    .split_once(':')
                    .ok_or_else(|| ApiError::invalid_client(true))?;
                let id = percent_decode(id).ok_or_else(|| ApiError::invalid_client(true))?;
                let secret =
                    percent_decode(secret).ok_or_else(|| ApiError::invalid_client(true))?;
                p.basic = Some((id, secret));
            }
        }
        if p.basic.is_some() && p.body_secret.is_some() {
            return Err(ApiError::bad(
                Code::InvalidRequest,
                "use one client authentication method, not two",
            ));
        }
        if let (Some((bid, _)), Some(id)) = (&p.basic, &p.body_id)
            && bid != id
        {
            return Err(ApiError::bad(
                Code::InvalidRequest,
                "client_id does not match the credentials",
            ));
        }
        Ok(p)
    }

    /// The client id claimed.
    pub fn client_id(&self) -> Option<&str> {
        self.basic
            .as_ref()
            .map(|(id, _)| id.as_str())
            .or(self.body_id.as_deref())
    }

    /// Checks the credentials against the client's registered method.
    pub fn authenticate(&self, client: &Client) -> Result<(), ApiError> {
        let used_basic = self.basic.is_some();
        let secret = match (client.auth, &self.basic, &self.body_secret) {
            (AuthMethod::SecretBasic, Some((_, s)), None) => s,
            (AuthMethod::SecretPost, None, Some(s)) => s,
            (AuthMethod::None, None, None) => return Ok(()),
            _ => {
                let used = match (&self.basic, &self.body_secret) {
                    (Some(_), _) => AuthMethod::SecretBasic,
                    (None, Some(_)) => AuthMethod::SecretPost,
                    (None, None) => AuthMethod::None,
                };
                return Err(ApiError::invalid_client(used_basic).describe(format!(
                    "the client registered {} and authenticated with {}",
                    client.auth.as_str(),
                    used.as_str()
                )));
            }
        };
        match &client.secret_hash {
            Some(h) if crypto::ct_eq(h, &crypto::sha256(secret)) => Ok(()),
            _ => Err(ApiError::invalid_client(used_basic)),
        }
    }
}

/// A new client secret: 256 random bits.
pub fn new_secret() -> String {
    random::token()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uris: &[&str]) -> ClientMetadata {
        serde_json::from_value(serde_json::json!({ "redirect_uris": uris })).unwrap()
    }

    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("https://app.example/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8000/cb").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("com.example.app:/cb").is_ok());
        assert!(check_redirect_uri("http://app.example/cb").is_err());
        assert!(check_redirect_uri("https://app.example/cb#frag").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }

    #[test]
    fn metadata_defaults_and_checks() {
        let m = meta(&["https://a.example/cb"]).validate().unwrap();
        assert_eq!(m.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(m.id_token_signed_response_alg, "RS256");
        assert_eq!(m.subject_type, "pairwise");
        assert!(meta(&[]).validate().is_err());
        assert!(
            meta(&["https://a.example/cb", "https://b.example/cb"])
                .validate()
                .is_err()
        );
        let mut m = meta(&["https://a.example/cb"]);
        m.id_token_signed_response_alg = "none".into();
        assert!(m.validate().is_err());
        let mut m = meta(&["https://a.example/cb"]);
        m.response_types = vec!["token".into()];
        assert!(m.validate().is_err());
    }

    #[test]
    fn sectors_are_hosts_only_where_a_host_proves_something() {
        let of = |uri: &str| sector_of("c1", &meta(&[uri]));
        assert_eq!(of("https://shop.example/cb"), "shop.example");
        assert_eq!(of("https://Shop.Example:8443/other"), "shop.example");
        assert_eq!(of("http://127.0.0.1:9/cb"), "client:c1");
        assert_eq!(of("http://localhost/cb"), "client:c1");
        assert_eq!(of("http://[::1]:3000/cb"), "client:c1");
        assert_eq!(of("com.example.app:/cb"), "client:c1");
        assert_ne!(
            sector_of("c2", &meta(&["com.example.app:/cb"])),
            of("com.example.app:/cb"),
            "a private-use scheme is anyone's"
        );
    }

    #[test]
    fn client_names_follow_the_protocol_text_rule() {
        // The name goes into every login challenge for this client; one the
        // challenge would refuse (a bidi override, a line separator) is
        // refused at registration instead of failing each login.
        for bad in ["Bank\u{202E}moc.live", "Bank\u{2028}Login", "a\u{1b}[2J"] {
            let mut m = meta(&["https://a.example/cb"]);
            m.client_name = Some(bad.into());
            assert!(m.validate().is_err(), "{bad:?}");
        }
        let mut m = meta(&["https://a.example/cb"]);
        m.client_name = Some("Café Crème 日本".into());
        assert!(m.validate().is_ok());
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let creds = STANDARD.encode("my%20client:s%3Acret");
        h.insert("authorization", format!("Basic {creds}").parse().unwrap());
        let p = Presented::read(&h, None, None).unwrap();
        assert_eq!(p.basic, Some(("my client".into(), "s:cret".into())));
        assert!(Presented::read(&h, None, Some("x")).is_err());
    }
}
