//! Ending sessions: RP-initiated logout (`GET|POST /logout`, OpenID
//! Connect RP-Initiated Logout 1.0) with a confirmation page, and
//! back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0) to
//! every client that logged in through the session.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::PageError;
use crate::login::cookies;
use crate::oidc::client::Client;
use crate::oidc::params::ResponseMode;
use crate::state::AppState;
use crate::store::{GrantRow, StoreError};
use crate::templates::{LoggedOutPage, LogoutPage, RenderHtml};
use crate::{base64url, crypto, json, random, web};

/// The event of a logout token.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a confirmation page can be answered.
const CONFIRM_TTL_SECS: i64 = 600;

/// A validated logout request, carried through the confirmation page.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// Where to send the browser afterwards.
    r: Option<String>,
    /// The RP's state.
    s: Option<String>,
    /// Until when the page can be answered.
    e: i64,
    /// The nonce of the browser the page was shown to (its
    /// [`cookies::LOGOUT`] cookie).
    n: String,
}

/// `GET|POST /logout`
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    ConnectInfo(_peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let raw = if method == Method::POST {
        body.to_vec()
    } else {
        q.unwrap_or_default().into_bytes()
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&raw).into_owned().collect();
    let (p, dups) = match crate::oidc::params::collect(pairs) {
        Ok(x) => x,
        Err(e) => return PageError::bad_request("Invalid logout request", e.0).into_response(),
    };
    if !dups.is_empty() {
        return PageError::bad_request("Invalid logout request", "A parameter appears twice.")
            .into_response();
    }
    // Only the page's own form answers it: a link (a GET) carrying a
    // decision is shown the question again, so a cross-site link can
    // neither end the session nor bounce the browser to a site.
    let result = if method == Method::POST && p.contains_key("decision") {
        confirm(&state, &headers, &p).await
    } else {
        ask(&state, &p).await
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn ask(
    state: &AppState,
    p: &std::collections::HashMap<String, String>,
) -> Result<Response, PageError> {
    let now = state.now();
    let bad = |m: &str| PageError::bad_request("Invalid logout request", m);
    let mut client: Option<Client> = None;
    if let Some(hint) = p.get("id_token_hint") {
        let claims = state
            .keys
            .verify_own(hint, now)
            .await
            .map_err(|_| bad("The id_token_hint was not issued by this bridge."))?;
        let aud = match json::get(&claims, "aud") {
            serde_json::Value::String(a) => Some(a.clone()),
            serde_json::Value::Array(a) => a.first().and_then(|x| x.as_str()).map(str::to_string),
            _ => None,
        };
        if let Some(aud) = aud {
            client = state.client(&aud).await?;
        }
    }
    if let Some(id) = p.get("client_id") {
        match &client {
            Some(c) if &c.id != id => {
                return Err(bad("client_id does not match the id_token_hint."));
            }
            Some(_) => {}
            None => client = state.client(id).await?,
        }
    }
    let redirect = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(r) => match &client {
            Some(c) if c.meta.post_logout_redirect_uris.iter().any(|x| x == r) => Some(r.clone()),
            Some(_) => {
                return Err(bad(
                    "The post_logout_redirect_uri is not registered for this site.",
                ));
            }
            None => {
                return Err(bad(
                    "A post_logout_redirect_uri needs an id_token_hint or a client_id.",
                ));
            }
        },
    };
    let pending = Pending {
        r: redirect,
        s: p.get("state").cloned(),
        e: now.saturating_add(CONFIRM_TTL_SECS),
        n: random::id(),
    };
    let logout_state =
        base64url::encode(&serde_json::to_vec(&pending).map_err(|e| PageError::internal(&e))?);
    let csrf = state.csrf_token("logout", &logout_state);
    let mut res = LogoutPage {
        client_name: client.map(|c| c.name),
        csrf,
        logout_state,
    }
    .render_html()
    .into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::bind_logout(state, &pending.n, CONFIRM_TTL_SECS),
    );
    if let Some(r) = &pending.r {
        crate::web::allow_form_target(&mut res, r);
    }
    Ok(res)
}

async fn confirm(
    state: &AppState,
    headers: &HeaderMap,
    p: &std::collections::HashMap<String, String>,
) -> Result<Response, PageError> {
    let bad = || {
        PageError::bad_request(
            "Invalid logout request",
            "This form has expired. Start again from the site.",
        )
    };
    let logout_state = p.get("logout_state").ok_or_else(bad)?;
    let csrf = p.get("csrf").ok_or_else(bad)?;
    if !state.check_csrf("logout", logout_state, csrf) {
        return Err(bad());
    }
    let raw = base64url::decode(logout_state).map_err(|_| bad())?;
    let pending: Pending = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let now = state.now();
    // The answer must come from the browser the page was shown to (a form
    // fetched by someone else and posted from another site carries no
    // SameSite=Lax cookie), and in time.
    let bound = web::cookie(headers, cookies::LOGOUT)
        .is_some_and(|n| crypto::ct_eq(n.as_bytes(), pending.n.as_bytes()));
    if !bound || now >= pending.e {
        return Err(bad());
    }
    let mut res = if p.get("decision").map(String::as_str) == Some("logout") {
        if let Some(s) = cookies::session(state, headers, now).await? {
            end_session(state, &s.sid, "logout").await?;
        }
        let mut res = match &pending.r {
            Some(r) => {
                let mut params = Vec::new();
                if let Some(s) = &pending.s {
                    params.push(("state", s.as_str()));
                }
                web::to_client(r, ResponseMode::Query, &params)
            }
            None => LoggedOutPage.render_html().into_response(),
        };
        res.headers_mut()
            .append(header::SET_COOKIE, cookies::clear_session(state));
        res
    } else {
        match &pending.r {
            Some(r) => web::to_client(r, ResponseMode::Query, &[]),
            None => LoggedOutPage.render_html().into_response(),
        }
    };
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res.headers_mut()
        .append(header::SET_COOKIE, cookies::bind_logout(state, "", 0));
    Ok(res)
}

/// Ends a session: marks it ended, revokes what was issued through it,
/// and sends a logout token to every client with a back-channel logout URI.
pub async fn end_session(state: &AppState, sid: &str, why: &str) -> Result<(), StoreError> {
    let now = state.now();
    if !state.store.end_session(sid, now).await? {
        return Ok(());
    }
    tracing::info!(sid, why, "session ended");
    let grants = state.store.grants_of_session(sid).await?;
    for g in &grants {
        state.store.revoke_grant(&g.grant_id, now).await?;
    }
    notify(state, grants).await
}

/// Sends a logout token about each grant's session to its client, once
/// per client, if it has a back-channel logout URI (the grants are already
/// revoked).
pub async fn notify(state: &AppState, grants: Vec<GrantRow>) -> Result<(), StoreError> {
    let mut notified = std::collections::HashSet::new();
    for g in grants {
        if !notified.insert(g.client_id.clone()) {
            continue;
        }
        let Some(client) = state.client(&g.client_id).await? else {
            continue;
        };
        let Some(uri) = client.meta.backchannel_logout_uri.clone() else {
            continue;
        };
        let token = match logout_token(state, &client, &g) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot sign a logout token");
                continue;
            }
        };
        // A stranger's target is checked again now (its host may be an
        // address registered before this rule) and its name resolved to
        // public addresses only.
        let http = if client.is_dynamic() {
            if let Err(why) = state.strangers.check(&uri) {
                tracing::warn!(client = %client.id, why, "back-channel logout target refused");
                state.metrics.login("backchannel_refused");
                continue;
            }
            state.strangers.client().clone()
        } else {
            state.http.clone()
        };
        let metrics = state.metrics.clone();
        tokio::spawn(async move {
            // One retry after a short pause; the RP's endpoint must answer
            // 200 (Back-Channel Logout §2.8).
            for attempt in 0..2 {
                match http
                    .post(&uri)
                    .form(&[("logout_token", token.as_str())])
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        metrics.login("backchannel_sent");
                        return;
                    }
                    Ok(r) => {
                        tracing::warn!(%uri, status = %r.status(), "back-channel logout refused")
                    }
                    Err(e) => tracing::warn!(%uri, error = %e, "back-channel logout failed"),
                }
                if attempt == 0 {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
            metrics.login("backchannel_failed");
        });
    }
    Ok(())
}

/// A logout token for `client` about the session of `grant`.
pub fn logout_token(state: &AppState, client: &Client, grant: &GrantRow) -> Result<String, String> {
    let now = state.now();
    let key = state
        .keys
        .signer(client.alg, now)
        .ok_or_else(|| format!("no active {} key", client.alg.as_str()))?;
    let mut claims = json!({
        "iss": state.settings.issuer,
        "aud": client.id,
        "iat": now,
        "exp": now + 120,
        "jti": random::id(),
        "sub": grant.sub,
        "events": { BACKCHANNEL_EVENT: {} },
    });
    if let Some(sid) = &grant.sid {
        json::set(&mut claims, "sid", json!(state.client_sid(sid, &client.id)));
    }
    key.sign_jwt(&claims, Some("logout+jwt"))
        .map_err(|e| e.to_string())
}
