//! `GET|POST /authorize`: validates the request, then either completes it
//! at once (a live session that satisfies it) or opens an interaction (the
//! login and consent pages).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cyrcles_core::EgoId;

use crate::error::{Code, PageError};
use crate::limits::{IpPrefix, Rate};
use crate::login::cookies;
use crate::oidc::acr::Approval;
use crate::oidc::client::Client;
use crate::oidc::grant;
use crate::oidc::params::{self, AuthRequest};
use crate::state::AppState;
use crate::store::{Admission, Caps, InteractionRow, SessionRow};
use crate::{json, random};

/// How long an interaction (login and consent) may take.
pub const INTERACTION_TTL: i64 = 15 * 60;
/// Largest stored authorization request, bytes of JSON. The caps of
/// `params::validate` keep a request under it; this is the last guard.
pub const MAX_STORED_REQUEST: usize = 8 * 1024;

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// `GET /authorize`
pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let raw = q.unwrap_or_default();
    authorize(&state, &headers, peer, pairs(raw.as_bytes())).await
}

/// `POST /authorize` (form-encoded body, OIDC Core §3.1.2.1).
pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return PageError::bad_request(
            "Invalid request",
            "The authorization request must be form-encoded.",
        )
        .into_response();
    }
    authorize(&state, &headers, peer, pairs(&body)).await
}

fn problem(msg: impl Into<String>) -> Response {
    PageError::bad_request("This login request is not valid", msg).into_response()
}

async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    raw: Vec<(String, String)>,
) -> Response {
    let prefix = IpPrefix::of(crate::web::client_ip(
        headers,
        peer,
        state.settings.forwarded_for_hops,
    ));
    let (map, dups) = match params::collect(raw) {
        Ok(x) => x,
        Err(p) => return problem(p.0),
    };
    // A request_uri from /par stands for the whole request (RFC 9126 §4).
    let (map, dups) = match crate::oidc::par::front_channel(state, map, dups).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    if dups.iter().any(|d| d == "client_id" || d == "redirect_uri") {
        return problem("client_id and redirect_uri must appear once.");
    }
    let Some(client_id) = map.get("client_id") else {
        return problem("The request names no client (client_id is missing).");
    };
    let client = match state.client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return problem("The site that sent you here is not registered at this bridge.");
        }
        Err(e) => return PageError::from(e).into_response(),
    };
    let Some(redirect_uri) = map.get("redirect_uri") else {
        return problem("The request has no redirect_uri.");
    };
    if !client.has_redirect_uri(redirect_uri) {
        return problem("The redirect_uri is not one the site registered.");
    }
    let req = match params::validate(
        &map,
        &dups,
        &client,
        redirect_uri,
        state.settings.oidc.require_pkce_for_confidential,
    ) {
        Ok(r) => r,
        // A stranger registers any redirect URI: a bad request for a
        // dynamically registered client is shown here rather than sent
        // there, so that the bridge is no open redirector (RFC 9700
        // §4.11.2). Errors after a valid request (prompt=none, a denied
        // login) still go to the client.
        Err(p) if client.is_dynamic() => {
            return PageError::bad_request(
                "This login request is not valid",
                format!(
                    "The site at {} sent a request this bridge cannot answer: {}",
                    crate::oidc::client::origin_of(redirect_uri),
                    p.description
                ),
            )
            .into_response();
        }
        Err(p) => {
            return grant::error_to_client(
                state,
                &p.redirect_uri,
                p.mode,
                p.state.as_deref(),
                p.code,
                &p.description,
            );
        }
    };
    let now = state.now();
    let session = match cookies::session(state, headers, now).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let fail = |code: Code, d: &str| grant::automatic_error(state, &client, &req, code, d);

    // Decide whether the session, if any, can answer without the agent.
    // `other_ego`: the request names another ego than the session's.
    let mut other_ego = false;
    if let Some(hint) = &req.login_hint {
        // A hint that is not an ego id is only a suggestion: ignored.
        if let Ok(id) = hint.to_ascii_lowercase().parse::<EgoId>()
            && session.as_ref().is_some_and(|s| s.ego_id != id.to_string())
        {
            other_ego = true;
        }
    }
    if let Some(hint) = &req.id_token_hint {
        match id_token_hint_matches(state, hint, &client, session.as_ref(), now).await {
            HintCheck::Matches => {}
            HintCheck::OtherSubject => other_ego = true,
            HintCheck::Invalid => {
                return fail(
                    Code::InvalidRequest,
                    "id_token_hint is not a token this bridge issued",
                );
            }
        }
    }
    let session = session.filter(|_| !other_ego);
    let Some(s) = session.as_ref().filter(|_| !req.prompt.login) else {
        if req.prompt.none {
            return fail(Code::LoginRequired, "no session satisfies this request");
        }
        // prompt=login: the session's ego is asked again, with the person
        // confirming (`person_required`).
        let opening = session.as_ref().map_or(Opening::Login, Opening::LoginAs);
        return open_interaction(state, &client, &req, opening, prefix).await;
    };
    // A session answers only for a site its agent approved in it (the
    // site's latest grant there), as strongly and as recently as the
    // request asks. Any other site is a new challenge to the same agent:
    // its bans, quotas and "not me" apply to every site, not only to the
    // first one of the session.
    let earlier = match state.store.latest_grant(&s.sid, &client.id).await {
        Ok(g) => g.map(|g| Approval::of_grant(&g, s)),
        Err(e) => return PageError::from(e).into_response(),
    };
    let Some(approval) = earlier.filter(|a| a.satisfies(&req, now)) else {
        if req.prompt.none {
            return fail(
                Code::LoginRequired,
                "the person's agent has not approved this site in this session",
            );
        }
        return open_interaction(state, &client, &req, Opening::LoginAs(s), prefix).await;
    };
    if grant::needs_consent(state, &req, &s.ego_id)
        .await
        .unwrap_or(true)
    {
        if req.prompt.none {
            return fail(
                Code::ConsentRequired,
                "the person has not consented to this client",
            );
        }
        return open_interaction(state, &client, &req, Opening::Consent(s, approval), prefix).await;
    }
    grant::complete(state, &client, &req, s, approval, None).await
}

/// What an interaction opens on.
enum Opening<'a> {
    /// The ego form.
    Login,
    /// The ego form for a site that is new to a live session: filled in
    /// with the session's ego, whose agent is asked about this site.
    LoginAs(&'a SessionRow),
    /// The consent page of a session whose agent approved this site.
    Consent(&'a SessionRow, Approval),
}

enum HintCheck {
    Matches,
    OtherSubject,
    Invalid,
}

/// Checks an `id_token_hint`: signed by this bridge (expiry does not
/// matter), issued to this client, and naming the session's subject.
async fn id_token_hint_matches(
    state: &AppState,
    hint: &str,
    client: &Client,
    session: Option<&SessionRow>,
    now: i64,
) -> HintCheck {
    let Ok(claims) = state.keys.verify_own(hint, now).await else {
        return HintCheck::Invalid;
    };
    let aud_ok = match json::get(&claims, "aud") {
        serde_json::Value::String(a) => a == &client.id,
        serde_json::Value::Array(a) => a.iter().any(|x| x.as_str() == Some(&client.id)),
        _ => false,
    };
    if !aud_ok || json::get(&claims, "iss").as_str() != Some(state.settings.issuer.as_str()) {
        return HintCheck::Invalid;
    }
    match (session, json::get(&claims, "sub").as_str()) {
        (Some(s), Some(sub)) if state.subject(client, &s.ego_id) == sub => HintCheck::Matches,
        _ => HintCheck::OtherSubject,
    }
}

/// Stores the request and sends the browser to the interaction pages.
///
/// Bounds (see `docs/threat-model.md`): starts per client prefix per
/// minute; what is stored ([`AuthRequest::for_storage`], at most
/// [`MAX_STORED_REQUEST`] bytes); unfinished interactions per prefix and in
/// all, with the eviction rule of [`crate::store::Admission`].
async fn open_interaction(
    state: &AppState,
    client: &Client,
    req: &AuthRequest,
    opening: Opening<'_>,
    prefix: IpPrefix,
) -> Response {
    let l = &state.settings.login;
    match state
        .rate(
            &format!("ix:{prefix}"),
            Rate::per_minute(l.interactions_per_ip_per_minute),
        )
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(secs)) => return PageError::rate_limited(secs).into_response(),
        Err(e) => return PageError::from(e).into_response(),
    }
    let now = state.now();
    let Ok(request) = serde_json::to_string(&req.for_storage()) else {
        return PageError::internal(&"cannot serialize the request").into_response();
    };
    if request.len() > MAX_STORED_REQUEST {
        return grant::automatic_error(
            state,
            client,
            req,
            Code::InvalidRequest,
            "the authorization request is too large",
        );
    }
    // The consent page of a session continues with the approval behind
    // it; the other openings end in a login that records its own.
    let (session_sid, approval) = match &opening {
        Opening::Consent(s, approval) => match serde_json::to_string(approval) {
            Ok(a) => (Some(s.sid.clone()), Some(a)),
            Err(_) => {
                return PageError::internal(&"cannot serialize the approval").into_response();
            }
        },
        Opening::Login | Opening::LoginAs(_) => (None, None),
    };
    let row = InteractionRow {
        id: random::id(),
        client_id: req.client_id.clone(),
        request,
        csrf: random::token(),
        created_at: now,
        expires_at: now + INTERACTION_TTL,
        ego_id: match &opening {
            Opening::Login => None,
            Opening::LoginAs(s) | Opening::Consent(s, _) => Some(s.ego_id.clone()),
        },
        session_sid,
        finished_at: None,
        client_prefix: prefix.to_string(),
        approval,
    };
    let caps = Caps {
        per_prefix: i64::from(l.max_interactions_per_ip),
        total: i64::from(l.max_interactions),
    };
    match state
        .store
        .insert_interaction_bounded(&row, caps, now)
        .await
    {
        Ok(Admission::Admitted | Admission::Replaced) => {}
        Ok(Admission::Refused) => {
            tracing::debug!(%prefix, "interaction refused: the bridge holds its maximum");
            return PageError::busy(60).into_response();
        }
        Err(e) => return PageError::from(e).into_response(),
    }
    let mut res = crate::web::see_other(&format!("/interaction/{}", row.id));
    res.headers_mut().append(
        axum::http::header::SET_COOKIE,
        cookies::bind_interaction(state, &row.id, &row.csrf),
    );
    res
}

/// Answers anything else at `/authorize`.
pub async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, "GET or POST").into_response()
}
