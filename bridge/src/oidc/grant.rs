//! Completing an authorization: consent, the grant, the code, and the
//! response to the client (with `iss`, RFC 9207).

use axum::response::{IntoResponse, Response};

use crate::error::{Code, PageError};
use crate::limits::Rate;
use crate::oidc::acr::Approval;
use crate::oidc::client::Client;
use crate::oidc::params::{AuthRequest, ResponseMode};
use crate::state::AppState;
use crate::store::{CodeRow, NewGrant, SessionRow, StoreError};
use crate::{crypto, random, web};

/// The parameters of an error response (with `iss`, RFC 9207).
fn error_params<'a>(
    state: &'a AppState,
    client_state: Option<&'a str>,
    code: Code,
    description: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("error", code.as_str()),
        ("error_description", description),
        ("iss", state.settings.issuer.as_str()),
    ];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    params
}

/// Sends an OAuth error to the client's (validated) redirect URI.
pub fn error_to_client(
    state: &AppState,
    redirect_uri: &str,
    mode: ResponseMode,
    client_state: Option<&str>,
    code: Code,
    description: &str,
) -> Response {
    let params = error_params(state, client_state, code, description);
    web::to_client(redirect_uri, mode, &params)
}

/// Sends an error the bridge decided without the person (`prompt=none`,
/// a bound reached) to the client: at once to a client the operator
/// registered, by the person's click for a self-registered one, whose
/// redirect URI could be anyone's ([`web::to_client_by_hand`]).
pub fn automatic_error(
    state: &AppState,
    client: &Client,
    req: &AuthRequest,
    code: Code,
    description: &str,
) -> Response {
    if !client.is_dynamic() {
        return error_to_client(
            state,
            &req.redirect_uri,
            req.response_mode,
            req.state.as_deref(),
            code,
            description,
        );
    }
    let params = error_params(state, req.state.as_deref(), code, description);
    let notice = format!(
        "The site {} asked this bridge about your login, and the answer is: {description}.",
        client.name
    );
    web::to_client_by_hand(&req.redirect_uri, req.response_mode, &params, &notice)
}

/// Whether the ego has not yet consented to everything `req` asks (or the
/// request demands consent again).
pub async fn needs_consent(
    state: &AppState,
    req: &AuthRequest,
    ego_id: &str,
) -> Result<bool, StoreError> {
    if req.prompt.consent {
        return Ok(true);
    }
    let Some(granted) = state.store.consent(ego_id, &req.client_id).await? else {
        return Ok(true);
    };
    let granted: Vec<&str> = granted.split(' ').collect();
    Ok(!req.scopes.iter().all(|s| granted.contains(&s.as_str())))
}

/// Records consent to the request's scopes (added to any earlier ones).
pub async fn record_consent(
    state: &AppState,
    req: &AuthRequest,
    ego_id: &str,
) -> Result<(), StoreError> {
    let mut scopes: Vec<String> = state
        .store
        .consent(ego_id, &req.client_id)
        .await?
        .map(|s| s.split(' ').map(str::to_string).collect())
        .unwrap_or_default();
    for s in &req.scopes {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    state
        .store
        .put_consent(ego_id, &req.client_id, &scopes.join(" "), state.now())
        .await
}

/// Issues the code for `req` on behalf of `session`, under the agent's
/// `approval` of this site, and sends the browser back to the client.
/// `interaction`, if given, is marked finished first so that one
/// interaction yields at most one code.
pub async fn complete(
    state: &AppState,
    client: &Client,
    req: &AuthRequest,
    session: &SessionRow,
    approval: Approval,
    interaction: Option<&str>,
) -> Response {
    match issue(state, client, req, session, approval, interaction).await {
        Ok(Issued::Code(code)) => {
            let mut params = vec![
                ("code", code.as_str()),
                ("iss", state.settings.issuer.as_str()),
            ];
            if let Some(s) = &req.state {
                params.push(("state", s.as_str()));
            }
            state.metrics.login("code_issued");
            web::to_client(&req.redirect_uri, req.response_mode, &params)
        }
        Ok(Issued::TooMany) => automatic_error(
            state,
            client,
            req,
            Code::TemporarilyUnavailable,
            "too many authorizations in this session; try again in a minute",
        ),
        Ok(Issued::AlreadyDone) => PageError::bad_request(
            "Already done",
            "This login was already completed. Go back to the site and start again.",
        )
        .into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// What [`issue`] did.
enum Issued {
    /// A code.
    Code(String),
    /// The interaction had already yielded its code.
    AlreadyDone,
    /// The session completed its maximum of authorizations this minute.
    TooMany,
}

/// Issues a grant and its code.
///
/// Bounds (a throwaway ego looping `prompt=none` must not grow grants
/// without end): authorizations per session per minute, and live grants
/// per (session, client), the oldest beyond the bound revoked; grants go
/// with their last code or token (`Store::purge_expired`).
async fn issue(
    state: &AppState,
    client: &Client,
    req: &AuthRequest,
    session: &SessionRow,
    approval: Approval,
    interaction: Option<&str>,
) -> Result<Issued, StoreError> {
    let now = state.now();
    let o = &state.settings.oidc;
    let rate = Rate::per_minute(o.authorizations_per_session_per_minute);
    if state
        .rate(&format!("authz:{}", session.sid), rate)
        .await?
        .is_err()
    {
        if let Some(id) = interaction {
            state.store.finish_interaction(id, now).await?;
        }
        return Ok(Issued::TooMany);
    }
    if let Some(id) = interaction
        && !state.store.finish_interaction(id, now).await?
    {
        return Ok(Issued::AlreadyDone);
    }
    let grant_id = random::id();
    state
        .store
        .insert_grant(&NewGrant {
            grant_id: grant_id.clone(),
            client_id: client.id.clone(),
            ego_id: session.ego_id.clone(),
            sid: Some(session.sid.clone()),
            sub: state.subject(client, &session.ego_id),
            scope: req.scopes.join(" "),
            claims: req.claims.clone(),
            nonce: req.nonce.clone(),
            auth_time: approval.auth_time,
            acr: approval.approved_by.acr().to_string(),
            cert_seq: Some(approval.cert_seq),
            cert_epoch: Some(approval.cert_epoch),
            created_at: now,
            revoked_at: None,
        })
        .await?;
    let code = random::token();
    state
        .store
        .insert_code(&CodeRow {
            code_hash: crypto::sha256(&code),
            grant_id: grant_id.clone(),
            client_id: client.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            expires_at: now + i64::try_from(state.settings.oidc.code_ttl_secs).unwrap_or(60),
        })
        .await?;
    if let Some(jkt) = &req.dpop_jkt {
        // RFC 9449 §10: the code is redeemed only with a proof by this key.
        state
            .store
            .bind_code_key(&crypto::sha256(&code), jkt)
            .await?;
    }
    let revoked = state
        .store
        .revoke_excess_grants(
            &session.sid,
            &client.id,
            &grant_id,
            i64::from(o.max_grants_per_session_client),
            now,
        )
        .await?;
    if revoked > 0 {
        tracing::debug!(client = %client.id, revoked, "older grants of the session revoked");
    }
    state.store.mark_client_used(&client.id, now).await?;
    Ok(Issued::Code(code))
}
