//! Dynamic client registration (RFC 7591) and its management protocol
//! (RFC 7592): `POST /register`, `GET|PUT|DELETE /register/{client_id}`.
//! Operators can turn registration off (`oidc.dynamic_registration`).

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{ApiError, Code};
use crate::limits::{IpPrefix, Rate};
use crate::oidc::client::{AuthMethod, ClientMetadata, new_secret};
use crate::state::AppState;
use crate::store::{ClientRow, Store, StoreError};
use crate::{crypto, json, random};

/// A client created by [`create_client`], with its one-time secrets.
#[derive(Debug)]
pub struct Created {
    /// The stored row.
    pub row: ClientRow,
    /// The client secret (confidential clients), shown once.
    pub secret: Option<String>,
    /// The registration access token, shown once.
    pub registration_token: Option<String>,
}

/// Most bytes of registered metadata (as stored, JSON).
pub const MAX_METADATA_BYTES: usize = 4 * 1024;

/// Creates a client from validated metadata, registered by the operator
/// (no registration access token), or dynamically (with one).
pub async fn create_client(
    store: &Store,
    name: Option<String>,
    meta: ClientMetadata,
    with_registration_token: bool,
    now: i64,
) -> Result<Created, StoreError> {
    let created = new_client(name, meta, with_registration_token, now)?;
    store.insert_client(&created.row).await?;
    Ok(created)
}

/// A client row and its secrets, not yet stored.
fn new_client(
    name: Option<String>,
    meta: ClientMetadata,
    with_registration_token: bool,
    now: i64,
) -> Result<Created, StoreError> {
    let secret = (AuthMethod::parse(&meta.token_endpoint_auth_method) != Some(AuthMethod::None))
        .then(new_secret);
    let registration_token = with_registration_token.then(random::token);
    let name = name
        .or_else(|| meta.client_name.clone())
        .or_else(|| {
            meta.redirect_uris
                .first()
                .and_then(|r| url::Url::parse(r).ok())
                .and_then(|u| u.host_str().map(str::to_string))
        })
        .unwrap_or_else(|| "Unnamed site".into());
    let metadata =
        serde_json::to_string(&meta).map_err(|_| StoreError::Corrupt("client metadata"))?;
    let row = ClientRow {
        client_id: random::client_id(),
        secret_hash: secret.as_deref().map(crypto::sha256),
        name,
        metadata,
        registration_token_hash: registration_token.as_deref().map(crypto::sha256),
        created_at: now,
        updated_at: now,
        dynamic: with_registration_token,
        first_used_at: None,
    };
    Ok(Created {
        row,
        secret,
        registration_token,
    })
}

fn metadata_json(state: &AppState, row: &ClientRow) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_str(&row.metadata)
        .map_err(|_| ApiError::internal(&"stored metadata unreadable"))?;
    json::set(&mut v, "client_id", json!(row.client_id));
    json::set(&mut v, "client_name", json!(row.name));
    json::set(&mut v, "client_id_issued_at", json!(row.created_at));
    if row.secret_hash.is_some() {
        // Secrets are stored hashed; they never expire.
        json::set(&mut v, "client_secret_expires_at", json!(0));
    }
    json::set(
        &mut v,
        "registration_client_uri",
        json!(format!(
            "{}/register/{}",
            state.settings.issuer, row.client_id
        )),
    );
    Ok(v)
}

fn parse_meta(state: &AppState, body: &[u8]) -> Result<ClientMetadata, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad(
            Code::InvalidClientMetadata,
            "the body must be a JSON object",
        )
    })?;
    if !v.is_object() {
        return Err(ApiError::bad(
            Code::InvalidClientMetadata,
            "the body must be a JSON object",
        ));
    }
    let meta: ClientMetadata = serde_json::from_value(v).map_err(|e| {
        ApiError::bad(
            Code::InvalidClientMetadata,
            format!("invalid metadata: {e}"),
        )
    })?;
    let meta = meta
        .validate()
        .map_err(|e| ApiError::bad(e.code, e.description))?;
    // The bridge POSTs to this URI: a stranger may not aim it at the
    // bridge's own network.
    if let Some(uri) = &meta.backchannel_logout_uri {
        state.strangers.check(uri).map_err(|why| {
            ApiError::bad(
                Code::InvalidClientMetadata,
                format!("backchannel_logout_uri {why}"),
            )
        })?;
    }
    let size = serde_json::to_string(&meta)
        .map_err(|e| ApiError::internal(&e))?
        .len();
    if size > MAX_METADATA_BYTES {
        return Err(ApiError::bad(
            Code::InvalidClientMetadata,
            format!("the registration is too large ({size} bytes; at most {MAX_METADATA_BYTES})"),
        ));
    }
    Ok(meta)
}

fn disabled() -> Response {
    ApiError::bad(
        Code::InvalidRequest,
        "dynamic registration is disabled at this bridge",
    )
    .with_status(StatusCode::FORBIDDEN)
    .into_response()
}

/// `POST /register`
///
/// Bounds: registrations per client prefix per hour; the size of the
/// metadata ([`MAX_METADATA_BYTES`]); dynamic clients in all, where a new
/// one replaces the oldest never used, or is refused (503) when all were
/// used. Clients never used are purged after `oidc.unused_client_ttl_secs`.
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.settings.oidc.dynamic_registration {
        return disabled();
    }
    let result = async {
        let prefix = IpPrefix::of(crate::web::client_ip(
            &headers,
            peer,
            state.settings.forwarded_for_hops,
        ));
        let rate = Rate::per_hour(state.settings.oidc.registrations_per_ip_per_hour);
        if let Err(secs) = state.rate(&format!("reg:{prefix}"), rate).await? {
            return Err(ApiError::bad(
                Code::InvalidRequest,
                format!("too many registrations from this address; try again in {secs} s"),
            )
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(secs));
        }
        let json_ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_ct {
            return Err(ApiError::bad(
                Code::InvalidRequest,
                "the body must be application/json",
            ));
        }
        let meta = parse_meta(&state, &body)?;
        let now = state.now();
        let created = new_client(None, meta, true, now)?;
        let max = i64::from(state.settings.oidc.max_dynamic_clients);
        if !state
            .store
            .insert_dynamic_client_bounded(&created.row, max, now)
            .await?
        {
            tracing::warn!("registration refused: the bridge holds its maximum of dynamic clients");
            return Err(ApiError::bad(
                Code::TemporarilyUnavailable,
                "this bridge holds as many registered clients as it keeps; try again later",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_retry_after(3_600));
        }
        let mut v = metadata_json(&state, &created.row)?;
        if let Some(s) = &created.secret {
            json::set(&mut v, "client_secret", json!(s));
        }
        if let Some(t) = &created.registration_token {
            json::set(&mut v, "registration_access_token", json!(t));
        }
        tracing::info!(client_id = %created.row.client_id, "client registered");
        let mut res = crate::oidc::token::no_store_json(v);
        *res.status_mut() = StatusCode::CREATED;
        Ok::<_, ApiError>(res)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn authorized(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<ClientRow, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::bearer(
                Code::InvalidToken,
                "the registration access token is required",
            )
        })?;
    let row =
        state.store.get_client(client_id).await?.ok_or_else(|| {
            ApiError::bearer(Code::InvalidToken, "invalid registration access token")
        })?;
    match &row.registration_token_hash {
        Some(h) if crypto::ct_eq(h, &crypto::sha256(token.trim())) => Ok(row),
        _ => Err(ApiError::bearer(
            Code::InvalidToken,
            "invalid registration access token",
        )),
    }
}

/// `GET /register/{client_id}`
pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !state.settings.oidc.dynamic_registration {
        return disabled();
    }
    let result = async {
        let row = authorized(&state, &headers, &id).await?;
        Ok::<_, ApiError>(crate::oidc::token::no_store_json(metadata_json(
            &state, &row,
        )?))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `PUT /register/{client_id}`: replaces the metadata (RFC 7592 §2.2).
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.settings.oidc.dynamic_registration {
        return disabled();
    }
    let result = async {
        let mut row = authorized(&state, &headers, &id).await?;
        let v: Value = serde_json::from_slice(&body).map_err(|_| {
            ApiError::bad(
                Code::InvalidClientMetadata,
                "the body must be a JSON object",
            )
        })?;
        if v.get("client_id").and_then(Value::as_str) != Some(id.as_str()) {
            return Err(ApiError::bad(
                Code::InvalidRequest,
                "client_id must be present and match",
            ));
        }
        let meta = parse_meta(&state, &body)?;
        let was_public = row.secret_hash.is_none();
        let now_public =
            AuthMethod::parse(&meta.token_endpoint_auth_method) == Some(AuthMethod::None);
        if was_public != now_public {
            return Err(ApiError::bad(
                Code::InvalidClientMetadata,
                "a client cannot switch between public and confidential; register a new one",
            ));
        }
        if let Some(n) = &meta.client_name {
            row.name = n.clone();
        }
        row.metadata = serde_json::to_string(&meta).map_err(|e| ApiError::internal(&e))?;
        row.updated_at = state.now();
        state.store.update_client(&row).await?;
        state.forget_client(&id);
        Ok::<_, ApiError>(crate::oidc::token::no_store_json(metadata_json(
            &state, &row,
        )?))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /register/{client_id}`
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !state.settings.oidc.dynamic_registration {
        return disabled();
    }
    let result = async {
        authorized(&state, &headers, &id).await?;
        state.store.delete_client(&id, state.now()).await?;
        state.forget_client(&id);
        Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_client_ids_never_start_with_a_dash() {
        // One base64url id in 64 starts with `-`; among 2,000 the old
        // generator gave such an id all but certainly (1 - 2e-14).
        let meta: ClientMetadata =
            serde_json::from_value(json!({ "redirect_uris": ["https://a.example/cb"] })).unwrap();
        for _ in 0..2_000 {
            let c = new_client(None, meta.clone(), true, 0).unwrap();
            assert!(!c.row.client_id.starts_with('-'), "{}", c.row.client_id);
            assert!(random::is_id_shaped(&c.row.client_id));
        }
    }
}
