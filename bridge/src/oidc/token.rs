//! `POST /token` (RFC 6749 §4.1.3 and §6, RFC 7636, OIDC Core §3.1.3):
//! the `authorization_code` and `refresh_token` grants.
//!
//! Codes are single-use: a second redemption revokes everything the first
//! one issued. Refresh tokens rotate: a rotated token used again revokes
//! the grant.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{ApiError, Code};
use crate::jose;
use crate::oidc::client::{Client, Presented};
use crate::oidc::dpop::{self, Proof};
use crate::oidc::params::pkce_matches;
use crate::state::AppState;
use crate::store::{Binding, GrantRow, RotateOutcome, UseCodeOutcome};
use crate::{crypto, json, random};

/// Parses a form body, refusing repeated parameters (RFC 6749 §3.2).
pub fn form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ApiError::bad(
            Code::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body).into_owned() {
        if v.len() > 8192 {
            return Err(ApiError::bad(
                Code::InvalidRequest,
                format!("{k} is too long"),
            ));
        }
        if map.insert(k.clone(), v).is_some() {
            return Err(ApiError::bad(
                Code::InvalidRequest,
                format!("{k} appears more than once"),
            ));
        }
        if map.len() > 32 {
            return Err(ApiError::bad(Code::InvalidRequest, "too many parameters"));
        }
    }
    Ok(map)
}

/// Authenticates the client of a token, introspection or revocation
/// request.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Result<Client, ApiError> {
    let presented = Presented::read(
        headers,
        f.get("client_id").map(String::as_str),
        f.get("client_secret").map(String::as_str),
    )?;
    let used_basic = presented.basic.is_some();
    let id = presented
        .client_id()
        .ok_or_else(|| ApiError::invalid_client(used_basic))?;
    let client = state
        .client(id)
        .await?
        .ok_or_else(|| ApiError::invalid_client(used_basic))?;
    presented.authenticate(&client)?;
    Ok(client)
}

/// `POST /token`
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match token_inner(&state, &headers, &body).await {
        Ok(v) => no_store_json(v),
        Err(e) => e.into_response(),
    }
}

/// A JSON response with `Cache-Control: no-store` (RFC 6749 §5.1).
pub fn no_store_json(v: Value) -> Response {
    let mut res = axum::Json(v).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

async fn token_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, ApiError> {
    let f = form(headers, body)?;
    let client = authenticate(state, headers, &f).await?;
    let proof = dpop::token_request(state, headers, &client)?;
    let proof = proof.as_ref();
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => code_grant(state, &client, &f, proof).await,
        Some("refresh_token") => refresh_grant(state, &client, &f, proof).await,
        Some(_) => Err(ApiError::bad(
            Code::UnsupportedGrantType,
            "grant_type must be authorization_code or refresh_token",
        )),
        None => Err(ApiError::bad(
            Code::InvalidRequest,
            "grant_type is required",
        )),
    }
}

fn invalid_grant(d: &str) -> ApiError {
    ApiError::bad(Code::InvalidGrant, d)
}

async fn code_grant(
    state: &AppState,
    client: &Client,
    f: &HashMap<String, String>,
    proof: Option<&Proof>,
) -> Result<Value, ApiError> {
    let code = f
        .get("code")
        .ok_or_else(|| ApiError::bad(Code::InvalidRequest, "code is required"))?;
    let now = state.now();
    dpop::check_code_key(state, client, proof, &crypto::sha256(code)).await?;
    // A code sent by another client than its own is unknown to that client,
    // and stays unused for its own.
    let (row, grant) = match state
        .store
        .use_code(&crypto::sha256(code), &client.id, now)
        .await?
    {
        UseCodeOutcome::Fresh(fresh) => *fresh,
        UseCodeOutcome::Reused { grant_id } => {
            // RFC 6749 §4.1.2: revoke what the first redemption issued.
            state.store.revoke_grant(&grant_id, now).await?;
            tracing::warn!(client = %client.id, "authorization code reused; its grant was revoked");
            return Err(invalid_grant("the code was already used"));
        }
        UseCodeOutcome::Expired => return Err(invalid_grant("the code has expired")),
        UseCodeOutcome::Unknown => return Err(invalid_grant("unknown code")),
    };
    match f.get("redirect_uri") {
        Some(r) if *r == row.redirect_uri => {}
        _ => {
            return Err(invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
    }
    match (&row.code_challenge, f.get("code_verifier")) {
        (Some(c), Some(v)) if pkce_matches(c, v) => {}
        (Some(_), _) => return Err(invalid_grant("code_verifier does not match")),
        (None, Some(_)) => return Err(invalid_grant("no code_challenge was sent for this code")),
        (None, None) => {}
    }
    let binding = dpop::bind(state, client, proof).await?;
    issue(state, client, &grant, &grant.scope, true, &binding).await
}

async fn refresh_grant(
    state: &AppState,
    client: &Client,
    f: &HashMap<String, String>,
    proof: Option<&Proof>,
) -> Result<Value, ApiError> {
    if !client.may_refresh() {
        return Err(ApiError::bad(
            Code::UnauthorizedClient,
            "this client may not use refresh tokens",
        ));
    }
    let token = f
        .get("refresh_token")
        .ok_or_else(|| ApiError::bad(Code::InvalidRequest, "refresh_token is required"))?;
    let now = state.now();
    dpop::check_refresh_key(state, client, proof, &crypto::sha256(token)).await?;
    let active = match state
        .store
        .rotate_refresh(&crypto::sha256(token), &client.id, now)
        .await?
    {
        RotateOutcome::Rotated(a) => a,
        RotateOutcome::Reused { grant_id } => {
            state.store.revoke_grant(&grant_id, now).await?;
            tracing::warn!(client = %client.id, "rotated refresh token reused; its grant was revoked");
            return Err(invalid_grant("the refresh token was already used"));
        }
        RotateOutcome::Invalid => return Err(invalid_grant("invalid refresh token")),
    };
    // However often it is refreshed, a grant ends a fixed time after the
    // login that made it: the person must come back through their agent.
    if let Some(end) = grant_end(state, &active.grant)
        && now >= end
    {
        state
            .store
            .revoke_grant(&active.grant.grant_id, now)
            .await?;
        tracing::info!(client = %client.id, "refresh refused: the grant reached its lifetime");
        return Err(invalid_grant(
            "the grant reached its maximum lifetime; the person must log in again",
        ));
    }
    // A refresh token outlives the browser session it came from, so the
    // session check does not reach it: the grants of a revoked ego, and of
    // a key replaced too often since the login, end here.
    if let Some(why) = outlived_key(state, &active.grant).await {
        state
            .store
            .revoke_grant(&active.grant.grant_id, now)
            .await?;
        tracing::info!(client = %client.id, why, "refresh refused");
        crate::oidc::logout::notify(state, vec![active.grant.clone()]).await?;
        return Err(invalid_grant(why));
    }
    let scope = match f.get("scope") {
        None => active.scope.clone(),
        Some(s) => {
            let granted: Vec<&str> = active.scope.split(' ').collect();
            if s.split(' ')
                .filter(|x| !x.is_empty())
                .any(|x| !granted.contains(&x))
            {
                return Err(ApiError::bad(
                    Code::InvalidScope,
                    "scope exceeds the original grant",
                ));
            }
            s.clone()
        }
    };
    let binding = dpop::bind(state, client, proof).await?;
    issue(state, client, &active.grant, &scope, false, &binding).await
}

/// Why the ego's current record no longer allows `grant`, if it does not:
/// the ego is revoked, or was recovered since the login (another epoch),
/// or its certificate is more than `oidc.max_certificates_behind` newer
/// than the one whose key approved the login. A record that cannot be
/// found proves nothing: the grant stays.
async fn outlived_key(state: &AppState, grant: &GrantRow) -> Option<&'static str> {
    let ego = crate::login::challenge::parse_ego(&grant.ego_id)?;
    let record = crate::login::resolve::resolve(state, ego, false)
        .await
        .ok()?;
    if record.is_revoked() {
        return Some("the ego has been revoked");
    }
    // A recovery (a new epoch) ends every grant made before it, however few
    // certificates it is ahead: the approving key may be a thief's.
    let recovered = "the ego was recovered since this login; the person must log in again";
    if let Some(epoch) = grant.cert_epoch
        && u64::try_from(epoch).ok()? != record.cert().epoch
    {
        return Some(recovered);
    }
    let approved = u64::try_from(grant.cert_seq?).ok()?;
    let current = record.cert().seq;
    // A grant from before epochs were recorded: a current seq below the
    // approving one is another history, a recovery's.
    if current < approved {
        return Some(recovered);
    }
    (current - approved > state.settings.oidc.max_certificates_behind)
        .then_some("the ego's key was replaced since this login; the person must log in again")
}

/// When `grant` ends (`oidc.max_grant_lifetime_secs` after it was made),
/// if it has an end.
fn grant_end(state: &AppState, grant: &GrantRow) -> Option<i64> {
    let max = state.settings.oidc.max_grant_lifetime_secs;
    (max > 0).then(|| {
        grant
            .created_at
            .saturating_add(i64::try_from(max).unwrap_or(i64::MAX))
    })
}

/// Issues an access token, a refresh token (if the client may refresh)
/// and an ID token.
async fn issue(
    state: &AppState,
    client: &Client,
    grant: &GrantRow,
    scope: &str,
    first: bool,
    binding: &Binding,
) -> Result<Value, ApiError> {
    let now = state.now();
    let o = &state.settings.oidc;
    let ttl = |s: u64| i64::try_from(s).unwrap_or(3_600);
    let access = random::token();
    let refresh = client.may_refresh().then(random::token);
    let refresh_hash = refresh.as_deref().map(crypto::sha256);
    state
        .store
        .insert_bound_token_pair(
            &crypto::sha256(&access),
            now + ttl(o.access_token_ttl_secs),
            refresh_hash.as_deref().map(|h| {
                // Never past the grant's own end.
                let expiry = now.saturating_add(ttl(o.refresh_token_ttl_secs));
                (
                    h,
                    grant_end(state, grant).map_or(expiry, |end| expiry.min(end)),
                )
            }),
            &grant.grant_id,
            &client.id,
            scope,
            now,
            binding,
        )
        .await?;
    let mut out = json!({
        "access_token": access,
        "token_type": dpop::token_type(binding),
        "expires_in": o.access_token_ttl_secs,
        "scope": scope,
    });
    if let Some(r) = refresh {
        json::set(&mut out, "refresh_token", json!(r));
    }
    if scope.split(' ').any(|s| s == "openid") {
        json::set(
            &mut out,
            "id_token",
            json!(id_token(state, client, grant, &access, first)?),
        );
    }
    Ok(out)
}

/// Signs an ID token (OIDC Core §2) with the client's algorithm. `first`:
/// issued from the code (carries the nonce).
pub fn id_token(
    state: &AppState,
    client: &Client,
    grant: &GrantRow,
    access_token: &str,
    first: bool,
) -> Result<String, ApiError> {
    let now = state.now();
    let key = state
        .keys
        .signer(client.alg, now)
        .ok_or_else(|| ApiError::internal(&format!("no active {} key", client.alg.as_str())))?;
    let mut claims = json!({
        "iss": state.settings.issuer,
        "sub": grant.sub,
        "aud": client.id,
        "iat": now,
        "exp": now + i64::try_from(state.settings.oidc.id_token_ttl_secs).unwrap_or(3_600),
        "auth_time": grant.auth_time,
        "acr": grant.acr,
        "amr": crate::oidc::acr::amr(&grant.acr),
        "at_hash": jose::token_hash(client.alg, access_token),
    });
    if let Some(sid) = &grant.sid {
        json::set(&mut claims, "sid", json!(state.client_sid(sid, &client.id)));
    }
    if first && let Some(n) = &grant.nonce {
        json::set(&mut claims, "nonce", json!(n));
    }
    key.sign_jwt(&claims, None)
        .map_err(|e| ApiError::internal(&e))
}
