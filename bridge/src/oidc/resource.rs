//! `GET|POST /userinfo` (OIDC Core §5.3), `POST /introspect` (RFC 7662)
//! and `POST /revoke` (RFC 7009).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{ApiError, Code};
use crate::oidc::dpop;
use crate::oidc::token::{authenticate, form, no_store_json};
use crate::state::AppState;
use crate::store::TokenKind;
use crate::{crypto, json};

/// `GET|POST /userinfo`
pub async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (token, scheme) = dpop::presented(&method, &headers, &body)?;
        let active = state
            .store
            .active_token(&crypto::sha256(&token), state.now())
            .await?
            .filter(|t| t.kind == TokenKind::Access)
            .ok_or_else(|| {
                ApiError::bearer(Code::InvalidToken, "the access token is invalid or expired")
            })?;
        dpop::check_resource(
            &state,
            &headers,
            &method,
            "/userinfo",
            &token,
            scheme,
            active.jkt.as_deref(),
        )
        .await?;
        if !active.scope.split(' ').any(|s| s == "openid") {
            return Err(ApiError::bearer(
                Code::InsufficientScope,
                "the openid scope is required",
            ));
        }
        // Cyrcles holds no personal data: the subject is the only claim.
        Ok::<_, ApiError>(no_store_json(json!({ "sub": active.grant.sub })))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /introspect`
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let f = form(&headers, &body)?;
        let client = authenticate(&state, &headers, &f).await?;
        if client.is_public() {
            return Err(ApiError::invalid_client(false));
        }
        let token = f
            .get("token")
            .ok_or_else(|| ApiError::bad(Code::InvalidRequest, "token is required"))?;
        // RFC 7662 §4: a client learns about its own tokens only, unless the
        // operator named it a resource server; to anyone else a live token
        // looks like an unknown one.
        let may_see = |owner: &str| {
            owner == client.id || state.settings.oidc.resource_servers.contains(&client.id)
        };
        let Some(active) = state
            .store
            .active_token(&crypto::sha256(token), state.now())
            .await?
            .filter(|a| may_see(&a.client_id))
        else {
            return Ok(no_store_json(json!({ "active": false })));
        };
        let kind = match active.kind {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        };
        let token_type = match (active.kind, &active.jkt) {
            (TokenKind::Access, Some(_)) => "DPoP",
            (TokenKind::Access, None) => "Bearer",
            (TokenKind::Refresh, _) => "refresh_token",
        };
        let mut out = json!({
            "active": true,
            "scope": active.scope,
            "client_id": active.client_id,
            "token_type": token_type,
            "token_kind": kind,
            "exp": active.expires_at,
            "iat": active.created_at,
            "sub": active.grant.sub,
            "aud": active.client_id,
            "iss": state.settings.issuer,
            "auth_time": active.grant.auth_time,
        });
        // RFC 9449 §6.2: the key a bound token is confirmed by.
        if let Some(jkt) = &active.jkt {
            json::set(&mut out, "cnf", json!({ "jkt": jkt }));
        }
        Ok::<_, ApiError>(no_store_json(out))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /revoke`
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let f = form(&headers, &body)?;
        let client = authenticate(&state, &headers, &f).await?;
        let token = f
            .get("token")
            .ok_or_else(|| ApiError::bad(Code::InvalidRequest, "token is required"))?;
        match f.get("token_type_hint").map(String::as_str) {
            None | Some("access_token") | Some("refresh_token") => {}
            Some(_) => {
                return Err(ApiError::bad(
                    Code::UnsupportedTokenType,
                    "unknown token_type_hint",
                ));
            }
        }
        // RFC 7009 §2.2: the answer is the same whether or not the token
        // existed.
        state
            .store
            .revoke_token(&crypto::sha256(token), &client.id, state.now())
            .await?;
        Ok::<_, ApiError>(no_store_json(json!({})))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
