//! DPoP (RFC 9449): proofs of possession of a client's key, and the tokens
//! bound to that key.
//!
//! A proof is a compact JWS in the one `DPoP` header of a request. It is
//! accepted when all of these hold ([`verify`], a pure function of the
//! proof, the request and the time):
//!
//! * it is at most [`MAX_PROOF_LEN`] bytes, three base64url segments;
//! * its header says `typ: dpop+jwt`, `alg` ES256 or EdDSA (never `none`,
//!   HMAC or RSA), names no critical extension, and carries in `jwk` a
//!   public P-256 or Ed25519 key of that algorithm, with no private member;
//! * its signature verifies with that key;
//! * `jti` is 1 to [`MAX_JTI`] bytes, `htm` is the request's method and
//!   `htu` the endpoint's URL under the configured issuer (query and
//!   fragment ignored, RFC 9449 §4.3);
//! * `iat` is at most `oidc.dpop_max_age_secs` old and at most
//!   `oidc.dpop_max_future_secs` ahead of the bridge's clock;
//! * at a resource endpoint, `ath` is base64url(SHA-256(access token)).
//!
//! Then [`spend`] records it (its key's thumbprint and `jti`) in the
//! database every instance shares, once: a replay within the window is
//! refused. A proof is spent only after the rest of the request was found
//! good (the code, the refresh token, the bound access token, a pushed
//! request), so that the store grows only with requests of someone holding
//! a live grant or within the push rate of `/par`. It is bounded
//! (`oidc.max_dpop_proofs`), and at the bound a proof is refused, never a
//! remembered one forgotten.
//!
//! The binding is the key's RFC 7638 thumbprint (`jkt`), stored with each
//! token it binds: access tokens of any client that sent a proof, refresh
//! tokens of public clients (RFC 9449 §5; a confidential client's refresh
//! token is bound by its authentication already), and codes whose request
//! named a key (`dpop_jkt` at `/authorize` or `/par`, or a proof at
//! `/par`, RFC 9449 §10).

use axum::http::{HeaderMap, Method, header};
use ring::signature::{self, ECDSA_P256_SHA256_FIXED, ED25519};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::{ApiError, Code};
use crate::jose::{ec_p256_thumbprint, ed25519_thumbprint};
use crate::oidc::client::Client;
use crate::state::AppState;
use crate::store::{Binding, ProofSpend};
use crate::{base64url, crypto};

/// The proof algorithms accepted (discovery's
/// `dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 2] = ["ES256", "EdDSA"];
/// Longest proof accepted, bytes (a P-256 proof is about 600).
pub const MAX_PROOF_LEN: usize = 4096;
/// Longest `jti`, bytes.
pub const MAX_JTI: usize = 256;
/// The `typ` a proof's header must carry.
const TYP: &str = "dpop+jwt";

/// Why a proof is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// More than one `DPoP` header.
    #[error("a request carries at most one DPoP header")]
    Multiple,
    /// Over [`MAX_PROOF_LEN`], or not visible ASCII.
    #[error("the DPoP proof is too large or not ASCII")]
    TooLarge,
    /// Not a compact JWS with JSON header and claims.
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(&'static str),
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Typ,
    /// `alg` is not ES256 or EdDSA, or not the algorithm of the key.
    #[error("the DPoP proof's alg must be ES256 or EdDSA, matching its key")]
    Alg,
    /// A `crit` header.
    #[error("the DPoP proof names a critical extension this bridge does not know")]
    Crit,
    /// `jwk` missing or not a P-256 or Ed25519 public key.
    #[error("the DPoP proof's jwk must be a P-256 or Ed25519 public key")]
    Jwk,
    /// `jwk` holds a private member.
    #[error("the DPoP proof's jwk holds a private key")]
    PrivateKey,
    /// The signature does not verify with `jwk`.
    #[error("the DPoP proof's signature does not verify with its jwk")]
    Signature,
    /// A required claim is missing.
    #[error("the DPoP proof lacks the {0} claim")]
    Missing(&'static str),
    /// `jti` empty or too long.
    #[error("the DPoP proof's jti must be 1 to 256 bytes")]
    Jti,
    /// `htm` is not the request's method.
    #[error("the DPoP proof's htm is not this request's method")]
    Htm,
    /// `htu` is not this endpoint.
    #[error("the DPoP proof's htu is not this endpoint's URL")]
    Htu,
    /// `iat` outside the window.
    #[error("the DPoP proof's iat is too old or too far in the future")]
    Iat,
    /// `ath` missing or not the access token's hash.
    #[error("the DPoP proof's ath is not the hash of the access token")]
    Ath,
    /// Seen before.
    #[error("the DPoP proof was already used")]
    Replayed,
}

/// A proof whose signature, claims and time were checked. Its `jti` is
/// not yet spent ([`spend`]).
#[derive(Debug, Clone)]
pub struct Proof {
    jkt: String,
    jti: String,
    iat: i64,
}

impl Proof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}

/// What a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The endpoint's URL (issuer and path).
    pub url: &'a str,
    /// At a resource endpoint: the access token presented.
    pub access_token: Option<&'a str>,
}

/// When a proof may have been made.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Now, Unix seconds.
    pub now: i64,
    /// Oldest accepted `iat`, seconds before now.
    pub max_age: i64,
    /// Newest accepted `iat`, seconds after now.
    pub max_future: i64,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Option<Jwk>,
    crit: Option<IgnoredAny>,
}

/// A JWK's members. Every private member of every key type is named so
/// that its presence is seen; duplicate members are refused by serde.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<IgnoredAny>,
    p: Option<IgnoredAny>,
    q: Option<IgnoredAny>,
    dp: Option<IgnoredAny>,
    dq: Option<IgnoredAny>,
    qi: Option<IgnoredAny>,
    oth: Option<IgnoredAny>,
    k: Option<IgnoredAny>,
}

impl Jwk {
    fn has_private_member(&self) -> bool {
        [
            &self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi, &self.oth, &self.k,
        ]
        .iter()
        .any(|m| m.is_some())
    }
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    ath: Option<String>,
}

/// A public key read from a proof's `jwk`.
enum Key {
    P256 { point: Vec<u8>, jkt: String },
    Ed25519 { x: Vec<u8>, jkt: String },
}

/// 32 bytes of canonical base64url.
fn coordinate(s: Option<&String>) -> Result<(&str, Vec<u8>), ProofError> {
    let s = s.ok_or(ProofError::Jwk)?;
    match base64url::decode(s) {
        Ok(b) if b.len() == 32 => Ok((s.as_str(), b)),
        _ => Err(ProofError::Jwk),
    }
}

fn key_of(jwk: &Jwk, alg: &str) -> Result<Key, ProofError> {
    if jwk.has_private_member() {
        return Err(ProofError::PrivateKey);
    }
    match (alg, jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("ES256", "EC", Some("P-256")) => {
            let (x, xb) = coordinate(jwk.x.as_ref())?;
            let (y, yb) = coordinate(jwk.y.as_ref())?;
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&xb);
            point.extend_from_slice(&yb);
            Ok(Key::P256 {
                point,
                jkt: ec_p256_thumbprint(x, y),
            })
        }
        ("EdDSA", "OKP", Some("Ed25519")) => {
            if jwk.y.is_some() {
                return Err(ProofError::Jwk);
            }
            let (x, xb) = coordinate(jwk.x.as_ref())?;
            Ok(Key::Ed25519 {
                x: xb,
                jkt: ed25519_thumbprint(x),
            })
        }
        ("ES256" | "EdDSA", _, _) => Err(ProofError::Jwk),
        _ => Err(ProofError::Alg),
    }
}

/// The URL a proof's `htu` names, without query and fragment, normalized
/// as the URL standard does (case of scheme and host, default port).
fn normalized(u: &str) -> Option<String> {
    let mut u = url::Url::parse(u).ok()?;
    u.set_query(None);
    u.set_fragment(None);
    Some(u.to_string())
}

/// base64url(SHA-256(`access_token`)), a proof's `ath`.
pub fn ath(access_token: &str) -> String {
    base64url::encode(&crypto::sha256(access_token))
}

/// Checks a proof against a request (see the module's rules).
pub fn verify(proof: &str, target: &Target<'_>, window: &Window) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF_LEN || !proof.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ProofError::TooLarge);
    }
    let bad = ProofError::Malformed("expected three base64url segments");
    let (signing_input, sig) = proof.rsplit_once('.').ok_or(bad)?;
    let (header, payload) = signing_input.split_once('.').ok_or(bad)?;
    if payload.contains('.') || [header, payload, sig].contains(&"") {
        return Err(bad);
    }
    let header = base64url::decode(header).map_err(|_| bad)?;
    if !header.trim_ascii_start().starts_with(b"{") {
        return Err(ProofError::Malformed("the header is not a JSON object"));
    }
    let header: Header = serde_json::from_slice(&header)
        .map_err(|_| ProofError::Malformed("the header is not a valid JOSE header"))?;
    if header.typ.as_deref() != Some(TYP) {
        return Err(ProofError::Typ);
    }
    if !ALGS.contains(&header.alg.as_str()) {
        return Err(ProofError::Alg);
    }
    if header.crit.is_some() {
        return Err(ProofError::Crit);
    }
    let key = key_of(header.jwk.as_ref().ok_or(ProofError::Jwk)?, &header.alg)?;
    let sig = base64url::decode(sig).map_err(|_| bad)?;
    let (alg, public, jkt): (&dyn signature::VerificationAlgorithm, &[u8], String) = match &key {
        Key::P256 { point, jkt } => (&ECDSA_P256_SHA256_FIXED, point, jkt.clone()),
        Key::Ed25519 { x, jkt } => (&ED25519, x, jkt.clone()),
    };
    signature::UnparsedPublicKey::new(alg, public)
        .verify(signing_input.as_bytes(), &sig)
        .map_err(|_| ProofError::Signature)?;
    let payload = base64url::decode(payload).map_err(|_| bad)?;
    if !payload.trim_ascii_start().starts_with(b"{") {
        return Err(ProofError::Malformed("the claims are not a JSON object"));
    }
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|_| ProofError::Malformed("the claims are not valid"))?;
    let jti = claims.jti.ok_or(ProofError::Missing("jti"))?;
    if jti.is_empty() || jti.len() > MAX_JTI {
        return Err(ProofError::Jti);
    }
    if claims.htm.ok_or(ProofError::Missing("htm"))? != target.method {
        return Err(ProofError::Htm);
    }
    let htu = claims.htu.ok_or(ProofError::Missing("htu"))?;
    match (normalized(&htu), normalized(target.url)) {
        (Some(a), Some(b)) if a == b => {}
        _ => return Err(ProofError::Htu),
    }
    let iat = claims.iat.ok_or(ProofError::Missing("iat"))?;
    if iat < window.now.saturating_sub(window.max_age)
        || iat > window.now.saturating_add(window.max_future)
    {
        return Err(ProofError::Iat);
    }
    if let Some(token) = target.access_token {
        match claims.ath {
            Some(a) if crypto::ct_eq(a.as_bytes(), ath(token).as_bytes()) => {}
            _ => return Err(ProofError::Ath),
        }
    }
    Ok(Proof { jkt, jti, iat })
}

/// The request's proof: `None` without a `DPoP` header; an error with
/// more than one.
pub fn header_of(headers: &HeaderMap) -> Result<Option<&str>, ProofError> {
    let mut all = headers.get_all("dpop").iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(ProofError::Multiple);
    }
    first.to_str().map(Some).map_err(|_| ProofError::TooLarge)
}

fn window(state: &AppState) -> Window {
    let o = &state.settings.oidc;
    Window {
        now: state.now(),
        max_age: i64::try_from(o.dpop_max_age_secs).unwrap_or(60),
        max_future: i64::try_from(o.dpop_max_future_secs).unwrap_or(5),
    }
}

/// Reads and verifies the request's proof for the endpoint at `path`.
pub fn check(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    access_token: Option<&str>,
) -> Result<Option<Proof>, ProofError> {
    let Some(proof) = header_of(headers)? else {
        return Ok(None);
    };
    let url = format!("{}{path}", state.settings.issuer);
    let target = Target {
        method: method.as_str(),
        url: &url,
        access_token,
    };
    verify(proof, &target, &window(state)).map(Some)
}

/// Why [`spend`] refused.
#[derive(Debug)]
pub enum SpendError {
    /// A replay.
    Replayed,
    /// The store of proofs is full of live ones.
    Full,
    /// The database failed.
    Store(crate::store::StoreError),
}

/// Records a verified proof once (every instance on the database sees
/// it), until its `iat` leaves the window.
pub async fn spend(state: &AppState, proof: &Proof) -> Result<(), SpendError> {
    let o = &state.settings.oidc;
    let hash = crypto::sha256(&format!("{}\0{}", proof.jkt, proof.jti));
    let until = proof
        .iat
        .saturating_add(i64::try_from(o.dpop_max_age_secs).unwrap_or(60));
    match state
        .store
        .spend_proof(&hash, until, i64::from(o.max_dpop_proofs), state.now())
        .await
    {
        Ok(ProofSpend::Fresh) => Ok(()),
        Ok(ProofSpend::Replayed) => Err(SpendError::Replayed),
        Ok(ProofSpend::Full) => {
            tracing::warn!("DPoP proof refused: the bridge remembers its maximum of proofs");
            Err(SpendError::Full)
        }
        Err(e) => Err(SpendError::Store(e)),
    }
}

/// How long a client is asked to wait when the proof store is full.
const FULL_RETRY_SECS: u64 = 60;

fn token_error(e: ProofError) -> ApiError {
    ApiError::bad(Code::InvalidDpopProof, e.to_string())
}

/// The answer to a failed [`spend`]: at a resource endpoint (`resource`)
/// with the `WWW-Authenticate: DPoP` header.
pub fn spend_error(e: SpendError, resource: bool) -> ApiError {
    match e {
        SpendError::Replayed if resource => {
            ApiError::dpop(Code::InvalidDpopProof, ProofError::Replayed.to_string())
        }
        SpendError::Replayed => token_error(ProofError::Replayed),
        SpendError::Full => ApiError::bad(
            Code::TemporarilyUnavailable,
            "this bridge holds as many DPoP proofs as it remembers; try again later",
        )
        .with_status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
        .with_retry_after(FULL_RETRY_SECS),
        SpendError::Store(e) => ApiError::from(e),
    }
}

/// A token response's `token_type`: `DPoP` for an access token bound to a
/// key (RFC 9449 §5), `Bearer` otherwise.
pub fn token_type(binding: &Binding) -> &'static str {
    if binding.access.is_some() {
        "DPoP"
    } else {
        "Bearer"
    }
}

/// The proof of a token request, verified (not yet spent). A client
/// registered with `dpop_bound_access_tokens` must send one (RFC 9449
/// §5.2).
pub fn token_request(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
) -> Result<Option<Proof>, ApiError> {
    let proof = check(state, headers, &Method::POST, "/token", None).map_err(token_error)?;
    if proof.is_none() && client.meta.dpop_bound_access_tokens {
        return Err(ApiError::bad(
            Code::InvalidDpopProof,
            "this client is registered with dpop_bound_access_tokens: a DPoP proof is required",
        ));
    }
    Ok(proof)
}

/// Spends the proof of a code grant (once the code was found good) and
/// says what its tokens are bound to.
pub async fn bind(
    state: &AppState,
    client: &Client,
    proof: Option<&Proof>,
) -> Result<Binding, ApiError> {
    let Some(proof) = proof else {
        return Ok(Binding::default());
    };
    spend(state, proof)
        .await
        .map_err(|e| spend_error(e, false))?;
    Ok(Binding {
        access: Some(proof.jkt.clone()),
        refresh: client.is_public().then(|| proof.jkt.clone()),
    })
}

/// Checks a code request's proof against the key the code was bound to
/// at `/authorize` or `/par` (`dpop_jkt` or a proof at `/par`, RFC 9449
/// §10), before the code is spent: without the key, the code stays unused.
pub async fn check_code_key(
    state: &AppState,
    client: &Client,
    proof: Option<&Proof>,
    code_hash: &[u8],
) -> Result<(), ApiError> {
    let bound = state.store.code_key(code_hash, &client.id).await?;
    check_key(bound, proof, "this code", " (dpop_jkt)")
}

/// Checks a refresh request's proof against the key the refresh token is
/// bound to, before the token is spent: someone holding a stolen bound
/// token but not its key cannot burn it (its owner's next refresh would
/// look like a replay and end the grant). The proof is spent later, by
/// [`bind`], once the refresh was found good.
pub async fn check_refresh_key(
    state: &AppState,
    client: &Client,
    proof: Option<&Proof>,
    refresh_hash: &[u8],
) -> Result<(), ApiError> {
    let bound = state.store.token_jkt(refresh_hash, &client.id).await?;
    check_key(bound, proof, "this refresh token", "")
}

/// Whether `proof` is by the key `what` is `bound` to, if it is bound.
fn check_key(
    bound: Option<String>,
    proof: Option<&Proof>,
    what: &str,
    how: &str,
) -> Result<(), ApiError> {
    let Some(bound) = bound else {
        return Ok(());
    };
    match proof {
        None => Err(ApiError::bad(
            Code::InvalidDpopProof,
            format!("{what} is bound to a DPoP key{how}: a proof with that key is required"),
        )),
        Some(p) if p.jkt != bound => Err(ApiError::bad(
            Code::InvalidGrant,
            format!("{what} is bound to another DPoP key"),
        )),
        Some(_) => Ok(()),
    }
}

/// How a resource request presented its access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer`, or the form body (RFC 6750).
    Bearer,
    /// `Authorization: DPoP` (RFC 9449 §7.1).
    Dpop,
}

/// Checks how a token was presented at the resource endpoint `path`: a
/// token bound to a key (`bound`) only as `DPoP` with a fresh proof by
/// that key carrying its `ath`; an unbound one only as `Bearer`.
pub async fn check_resource(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    token: &str,
    scheme: Scheme,
    bound: Option<&str>,
) -> Result<(), ApiError> {
    let Some(bound) = bound else {
        if scheme == Scheme::Dpop {
            return Err(ApiError::dpop(
                Code::InvalidToken,
                "this access token is not bound to a DPoP key; present it as Bearer",
            ));
        }
        return Ok(());
    };
    if scheme != Scheme::Dpop {
        return Err(ApiError::dpop(
            Code::InvalidToken,
            "this access token is bound to a DPoP key: present it as DPoP with a proof",
        ));
    }
    let invalid = |e: ProofError| ApiError::dpop(Code::InvalidDpopProof, e.to_string());
    let proof = check(state, headers, method, path, Some(token))
        .map_err(invalid)?
        .ok_or_else(|| {
            ApiError::dpop(
                Code::InvalidDpopProof,
                "a DPoP proof is required with a DPoP-bound token",
            )
        })?;
    if proof.jkt != bound {
        return Err(ApiError::dpop(
            Code::InvalidDpopProof,
            "the DPoP proof is not signed by the key this token is bound to",
        ));
    }
    spend(state, &proof).await.map_err(|e| spend_error(e, true))
}

/// The access token of a resource request and how it came: from the
/// `Authorization` header (`Bearer` or `DPoP`), or, as `Bearer`, from the
/// form body of a POST (RFC 6750 §2.2). Never from the query.
pub fn presented(
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Scheme), ApiError> {
    let mut auths = headers.get_all(header::AUTHORIZATION).iter();
    let first = auths.next();
    if auths.next().is_some() {
        return Err(ApiError::bearer(
            Code::InvalidRequest,
            "more than one Authorization header",
        ));
    }
    let from_header = first.and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else if scheme.eq_ignore_ascii_case("dpop") {
            Scheme::Dpop
        } else {
            return None;
        };
        Some((token.trim().to_string(), scheme))
    });
    let from_body = if *method == Method::POST && !body.is_empty() {
        crate::oidc::token::form(headers, body)
            .ok()
            .and_then(|f| f.get("access_token").cloned())
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(ApiError::bearer(
            Code::InvalidRequest,
            "more than one access token",
        )),
        (Some(t), None) => Ok(t),
        (None, Some(t)) => Ok((t, Scheme::Bearer)),
        (None, None) => Err(ApiError::bearer(
            Code::InvalidToken,
            "an access token is required",
        )),
    }
}

#[cfg(test)]
mod tests;
