//! Pushed authorization requests (RFC 9126): `POST /par`, and the
//! `request_uri` that stands for a pushed request at `/authorize`.
//!
//! A client authenticates as at the token endpoint (a public client names
//! itself with `client_id`) and pushes the parameters of an authorization
//! request; they are validated exactly as `/authorize` validates them, and
//! stored under a `request_uri` of 256 random bits (only its hash is
//! stored), usable once by that client for `oidc.pushed_request_ttl_secs`.
//!
//! At `/authorize`, a `request_uri` replaces every other front-channel
//! parameter (RFC 9126 §4); `client_id` must name the client that pushed it.
//! An unknown, expired, used or foreign `request_uri` is shown as a page and
//! never redirected: nothing about the request is trusted then.
//!
//! Bounds: pushes per client IP prefix per minute, the size of a pushed
//! request ([`MAX_PUSHED_BYTES`]), live pushed requests per client and in
//! all. At a bound a push is refused; nothing stored is evicted, so that a
//! flood cannot cancel the pushes of a login under way.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{ApiError, Code, PageError};
use crate::limits::{IpPrefix, Rate};
use crate::oidc::token::{authenticate, form, no_store_json};
use crate::oidc::{dpop, params};
use crate::state::AppState;
use crate::store::{PushAdmission, PushCaps, PushedRow};
use crate::{crypto, random};

/// How every `request_uri` of this bridge begins (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Largest pushed request stored, bytes of JSON.
pub const MAX_PUSHED_BYTES: usize = 8 * 1024;

/// `POST /par`
pub async fn push(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match push_inner(&state, peer, &headers, &body).await {
        Ok(v) => {
            let mut res = no_store_json(v);
            *res.status_mut() = StatusCode::CREATED;
            res
        }
        Err(e) => e.into_response(),
    }
}

fn invalid(d: impl Into<String>) -> ApiError {
    ApiError::bad(Code::InvalidRequest, d)
}

async fn push_inner(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, ApiError> {
    let o = &state.settings.oidc;
    let prefix = IpPrefix::of(crate::web::client_ip(
        headers,
        peer,
        state.settings.forwarded_for_hops,
    ));
    if let Err(secs) = state
        .rate(
            &format!("par:{prefix}"),
            Rate::per_minute(o.pushes_per_ip_per_minute),
        )
        .await?
    {
        return Err(ApiError::bad(
            Code::TemporarilyUnavailable,
            format!("too many pushed requests from this address; try again in {secs} s"),
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after(secs));
    }
    let mut f = form(headers, body)?;
    let client = authenticate(state, headers, &f).await?;
    // The credentials are not part of the request, and never stored.
    f.remove("client_secret");
    if f.contains_key("request_uri") {
        return Err(invalid(
            "request_uri cannot be pushed: push the request's parameters instead",
        ));
    }
    f.insert("client_id".into(), client.id.clone());
    // A proof at /par binds the code to its key (RFC 9449 §10.1), as
    // dpop_jkt does; both must then name one key.
    let proof = dpop::check(state, headers, &Method::POST, "/par", None)
        .map_err(|e| ApiError::bad(Code::InvalidDpopProof, e.to_string()))?;
    if let Some(p) = &proof {
        match f.get("dpop_jkt") {
            Some(j) if j != p.jkt() => {
                return Err(ApiError::bad(
                    Code::InvalidDpopProof,
                    "dpop_jkt is not the thumbprint of the DPoP proof's key",
                ));
            }
            _ => {
                f.insert("dpop_jkt".into(), p.jkt().to_string());
            }
        }
    }
    // The caps of `/authorize`, then its validation.
    let (map, dups) = params::collect(f.into_iter().collect()).map_err(|p| invalid(p.0))?;
    let redirect_uri = map
        .get("redirect_uri")
        .ok_or_else(|| invalid("redirect_uri is required"))?;
    if !client.has_redirect_uri(redirect_uri) {
        return Err(invalid("the redirect_uri is not one the client registered"));
    }
    params::validate(
        &map,
        &dups,
        &client,
        redirect_uri,
        o.require_pkce_for_confidential,
    )
    .map_err(|p| ApiError::bad(p.code, p.description))?;
    if let Some(p) = &proof {
        dpop::spend(state, p)
            .await
            .map_err(|e| dpop::spend_error(e, false))?;
    }
    let request = serde_json::to_string(&map).map_err(|e| ApiError::internal(&e))?;
    if request.len() > MAX_PUSHED_BYTES {
        return Err(invalid(format!(
            "the request is too large (at most {MAX_PUSHED_BYTES} bytes)"
        )));
    }
    let now = state.now();
    let ttl = i64::try_from(o.pushed_request_ttl_secs).unwrap_or(60);
    let handle = random::token();
    let row = PushedRow {
        handle_hash: crypto::sha256(&handle),
        client_id: client.id.clone(),
        request,
        created_at: now,
        expires_at: now.saturating_add(ttl),
    };
    let caps = PushCaps {
        per_client: i64::from(o.max_pushed_requests_per_client),
        total: i64::from(o.max_pushed_requests),
    };
    let retry = u64::try_from(ttl).unwrap_or(60);
    match state.store.insert_pushed_bounded(&row, caps, now).await? {
        PushAdmission::Stored => {}
        PushAdmission::ClientFull => {
            tracing::debug!(client = %client.id, "push refused: the client holds its maximum");
            return Err(ApiError::bad(
                Code::TemporarilyUnavailable,
                format!(
                    "this client holds {} unused pushed requests, the most this bridge keeps; use or let one expire (within {retry} s)",
                    caps.per_client
                ),
            )
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(retry));
        }
        PushAdmission::Full => {
            tracing::warn!("push refused: the bridge holds its maximum of pushed requests");
            return Err(ApiError::bad(
                Code::TemporarilyUnavailable,
                "this bridge holds as many pushed requests as it keeps; try again shortly",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_retry_after(retry));
        }
    }
    Ok(json!({
        "request_uri": format!("{REQUEST_URI_PREFIX}{handle}"),
        "expires_in": ttl,
    }))
}

fn page(msg: impl Into<String>) -> Response {
    PageError::bad_request("This login request is not valid", msg).into_response()
}

/// The parameters `/authorize` works on: those of the pushed request a
/// `request_uri` of this bridge names (taken, so used once), or the front
/// channel's own where the bridge and the client accept those. Called on the collected
/// front-channel parameters before anything else looks at them.
pub async fn front_channel(
    state: &AppState,
    map: HashMap<String, String>,
    dups: Vec<String>,
) -> Result<(HashMap<String, String>, Vec<String>), Response> {
    // A request_uri that is not one of ours would name a request object
    // by reference, which is not supported: `params::validate` refuses it
    // (`request_uri_not_supported`) like any front-channel request.
    let Some(uri) = map
        .get("request_uri")
        .filter(|u| u.starts_with(REQUEST_URI_PREFIX))
    else {
        return direct(state, map, dups).await;
    };
    if dups.iter().any(|d| d == "request_uri" || d == "client_id") {
        return Err(page(
            "client_id and request_uri must appear once (invalid_request).",
        ));
    }
    let Some(client_id) = map.get("client_id") else {
        return Err(page(
            "A request_uri must come with the client_id of the site that pushed it (invalid_request).",
        ));
    };
    let expired = || {
        page(
            "This login request is unknown, expired or already used (invalid_request_uri). Go back to the site and start again.",
        )
    };
    let Some(handle) = uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .filter(|h| random::is_token_shaped(h))
    else {
        return Err(expired());
    };
    let stored = state
        .store
        .take_pushed(&crypto::sha256(handle), client_id, state.now())
        .await
        .map_err(|e| PageError::from(e).into_response())?;
    let Some(stored) = stored else {
        tracing::debug!(client = %client_id, "request_uri unknown, expired, used or another client's");
        return Err(expired());
    };
    let pushed: HashMap<String, String> = serde_json::from_str(&stored).map_err(|_| {
        PageError::internal(&"a stored pushed request is unreadable").into_response()
    })?;
    // The pushed request was validated whole; the front channel's other
    // parameters are ignored (RFC 9126 §4).
    Ok((pushed, Vec::new()))
}

/// A front-channel request without `request_uri`: refused where the
/// bridge (`oidc.require_pushed_authorization_requests`) or the client
/// (its `require_pushed_authorization_requests`) requires pushing.
async fn direct(
    state: &AppState,
    map: HashMap<String, String>,
    dups: Vec<String>,
) -> Result<(HashMap<String, String>, Vec<String>), Response> {
    let refuse = || {
        page(
            "This site must send its login requests through the bridge's pushed authorization request endpoint (invalid_request). Go back to the site and start again.",
        )
    };
    if state.settings.oidc.require_pushed_authorization_requests {
        return Err(refuse());
    }
    if let Some(id) = map.get("client_id")
        && let Ok(Some(client)) = state.client(id).await
        && client.meta.require_pushed_authorization_requests
    {
        return Err(refuse());
    }
    Ok((map, dups))
}
