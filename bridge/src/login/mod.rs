//! The Cyrcles login: the pages between `/authorize` and the redirect back
//! to the client.
//!
//! ```text
//! GET  /interaction/{id}                                ego form (or consent, once logged in)
//! POST /interaction/{id}/ego                            resolve the ego, send the challenge
//! GET  /interaction/{id}/challenge/{cid}                the match code; waits (polling)
//! GET  /interaction/{id}/challenge/{cid}/status         JSON for the poller
//! GET  /interaction/{id}/challenge/{cid}/continue       session, consent or code
//! POST /interaction/{id}/consent | cancel | resend
//! ```
//!
//! Every interaction is bound to the browser that opened it (a cookie
//! holding its CSRF token) and every form carries that token.

pub mod challenge;
pub mod cookies;
pub mod resolve;
pub mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{Code, PageError};
use crate::limits::{IpPrefix, Rate};
use crate::oidc::acr::{Approval, Approved};
use crate::oidc::client::Client;
use crate::oidc::grant;
use crate::oidc::params::{self, AuthRequest};
use crate::state::AppState;
use crate::store::{ChallengeRow, ChallengeStatus, InteractionRow, SessionRow};
use crate::templates::{ConsentPage, LoginPage, RenderHtml, WaitPage};
use crate::{crypto, random, web};

fn gone() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "This login has expired",
        "Go back to the site and start the login again.",
    )
}

struct Ix {
    row: InteractionRow,
    req: AuthRequest,
    client: Client,
}

async fn load(state: &AppState, id: &str, headers: &HeaderMap) -> Result<Ix, PageError> {
    if !random::is_id_shaped(id) {
        return Err(gone());
    }
    let row = state
        .store
        .get_interaction(id, state.now())
        .await?
        .ok_or_else(gone)?;
    if !cookies::is_bound(headers, &row.csrf) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Wrong browser",
            "This login was started in another browser or its cookie is missing. Start again from the site.",
        ));
    }
    let req: AuthRequest = serde_json::from_str(&row.request)
        .map_err(|_| PageError::internal(&"stored authorization request unreadable"))?;
    let client = state.client(&row.client_id).await?.ok_or_else(gone)?;
    Ok(Ix { row, req, client })
}

fn form(body: &[u8]) -> Result<HashMap<String, String>, PageError> {
    let pairs = url::form_urlencoded::parse(body).into_owned().collect();
    let (map, dups) =
        params::collect(pairs).map_err(|p| PageError::bad_request("Invalid form", p.0))?;
    if !dups.is_empty() {
        return Err(PageError::bad_request(
            "Invalid form",
            "A field appears twice.",
        ));
    }
    Ok(map)
}

fn check_csrf(ix: &Ix, f: &HashMap<String, String>) -> Result<(), PageError> {
    match f.get("csrf") {
        Some(t) if crypto::ct_eq(t.as_bytes(), ix.row.csrf.as_bytes()) => Ok(()),
        _ => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form is no longer valid. Reload the page and try again.",
        )),
    }
}

/// Loads the interaction of a form post and checks its CSRF token.
async fn load_posted(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Ix, HashMap<String, String>), PageError> {
    let ix = load(state, id, headers).await?;
    let f = form(body)?;
    check_csrf(&ix, &f)?;
    Ok((ix, f))
}

/// Ends the interaction and sends `access_denied` back to the client.
async fn deny_to_client(state: &AppState, ix: &Ix, why: &str) -> Result<Response, PageError> {
    state
        .store
        .finish_interaction(&ix.row.id, state.now())
        .await?;
    Ok(grant::error_to_client(
        state,
        &ix.req.redirect_uri,
        ix.req.response_mode,
        ix.req.state.as_deref(),
        Code::AccessDenied,
        why,
    ))
}

async fn login_page(
    state: &AppState,
    ix: &Ix,
    headers: &HeaderMap,
    ego: Option<&str>,
    error: Option<String>,
) -> Response {
    let now = state.now();
    let pow = match state.pow_challenge(now).await {
        Ok(p) => p,
        Err(e) => return PageError::from(e).into_response(),
    };
    // A site new to a live session: the session's ego, whose agent is
    // asked about this site (the page says so).
    let session_ego = ix
        .row
        .ego_id
        .clone()
        .filter(|_| ix.row.session_sid.is_none());
    let signed_in_as = session_ego
        .as_deref()
        .and_then(challenge::parse_ego)
        .map(|e| e.fingerprint().to_string());
    let prefill = ego
        .map(str::to_string)
        .or(session_ego)
        .or_else(|| ix.req.login_hint.clone())
        .or_else(|| web::cookie(headers, cookies::REMEMBER))
        .unwrap_or_default();
    let page = LoginPage {
        client_name: ix.client.name.clone(),
        client_origin: crate::oidc::client::origin_of(&ix.req.redirect_uri),
        interaction_id: ix.row.id.clone(),
        csrf: ix.row.csrf.clone(),
        remember: web::cookie(headers, cookies::REMEMBER).is_some(),
        ego_id: prefill,
        signed_in_as,
        person_required: ix.req.person_required,
        status_is_error: error.is_some(),
        error,
        pow_difficulty: pow.as_ref().map(|p| p.difficulty).unwrap_or(0),
        pow_token: pow.map(|p| p.token),
    };
    let status = if page.status_is_error {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    // Its forms' answers may redirect to the site (cancel; the ego form
    // when the agent approves at once by policy).
    let mut res = (status, page.render_html()).into_response();
    crate::web::allow_form_target(&mut res, &ix.req.redirect_uri);
    res
}

fn consent_page(ix: &Ix) -> Response {
    let mut res = ConsentPage {
        client_name: ix.client.name.clone(),
        client_origin: crate::oidc::client::origin_of(&ix.req.redirect_uri),
        scopes: ix
            .req
            .scopes
            .iter()
            .filter(|s| *s != "openid")
            .map(|s| describe_scope(s))
            .collect(),
        pairwise: ix.client.pairwise,
        shared_sector: ix.client.shared_sector().map(str::to_string),
        interaction_id: ix.row.id.clone(),
        csrf: ix.row.csrf.clone(),
    }
    .render_html()
    .into_response();
    crate::web::allow_form_target(&mut res, &ix.req.redirect_uri);
    res
}

fn describe_scope(s: &str) -> String {
    match s {
        "profile" => "your profile (Cyrcles shares none)".into(),
        "email" => "your email address (Cyrcles shares none)".into(),
        "address" => "your postal address (Cyrcles shares none)".into(),
        "phone" => "your phone number (Cyrcles shares none)".into(),
        "offline_access" => "to keep access while you are away (refresh tokens)".into(),
        other => format!("the scope \u{201c}{other}\u{201d}"),
    }
}

/// The error pages' "cancel and go back" form of an interaction.
fn cancel_form(ix: &Ix) -> crate::error::Cancel {
    crate::error::Cancel {
        interaction_id: ix.row.id.clone(),
        csrf: ix.row.csrf.clone(),
        client_name: ix.client.name.clone(),
        redirect_uri: ix.req.redirect_uri.clone(),
    }
}

/// `GET /interaction/{id}`, with `?ego=` to fill the ego field in again
/// ("try again" after a failed login).
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let ix = match load(&state, &id, &headers).await {
        Ok(ix) => ix,
        Err(e) => return e.into_response(),
    };
    if ix.row.session_sid.is_some() {
        return consent_page(&ix);
    }
    let ego = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "ego")
        .map(|(_, v)| v.into_owned())
        .filter(|e| e.parse::<cyrcles_core::EgoId>().is_ok());
    login_page(&state, &ix, &headers, ego.as_deref(), None).await
}

async fn live_session(state: &AppState, ix: &Ix) -> Result<SessionRow, PageError> {
    let sid = ix.row.session_sid.as_deref().ok_or_else(gone)?;
    match state.store.session_by_sid(sid).await? {
        Some(s) if s.ended_at.is_none() && s.expires_at > state.now() => Ok(s),
        _ => Err(gone()),
    }
}

/// `POST /interaction/{id}/ego`
pub async fn ego(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match ego_inner(&state, &id, peer, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn ego_inner(
    state: &AppState,
    id: &str,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Response> {
    let ix = load(state, id, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let f = form(body).map_err(IntoResponse::into_response)?;
    check_csrf(&ix, &f).map_err(IntoResponse::into_response)?;
    let ip = web::client_ip(headers, peer, state.settings.forwarded_for_hops);
    let prefix = IpPrefix::of(ip);
    limit(state, &start_key(prefix), start_rate(state))
        .await
        .map_err(IntoResponse::into_response)?;
    let now = state.now();
    let typed = f.get("ego_id").map(String::as_str).unwrap_or("");
    if !pass_gate(state, &f, now)
        .await
        .map_err(IntoResponse::into_response)?
    {
        return Err(login_page(state, &ix, headers, Some(typed), Some(PUZZLE.into())).await);
    }
    let Some(ego) = challenge::parse_ego(typed) else {
        return Err(login_page(
            state,
            &ix,
            headers,
            Some(typed),
            Some("That is not an ego id. An ego id has 52 letters and digits; the command cyrcles ego list prints yours.".into()),
        ).await);
    };
    let ego_text = ego.to_string();
    limit(state, &ego_key(&ego_text, prefix), ego_rate(state))
        .await
        .map_err(IntoResponse::into_response)?;
    let record = match resolve::resolve(state, ego, false).await {
        Ok(r) => r,
        Err(resolve::ResolveError::Store(e)) => return Err(PageError::from(e).into_response()),
        Err(e) => {
            return Err(
                login_page(state, &ix, headers, Some(&ego_text), Some(format!("{e}."))).await,
            );
        }
    };
    if record.is_revoked() {
        return Err(login_page(
            state,
            &ix,
            headers,
            Some(&ego_text),
            Some("This ego has been revoked by its owner's circle.".into()),
        )
        .await);
    }
    if challenge::endpoint_peers(&record, now).is_empty() {
        return Err(login_page(
            state,
            &ix,
            headers,
            Some(&ego_text),
            Some("This ego's agent is not online right now. Start it (`cyrcles daemon`) and try again.".into()),
        ).await);
    }
    let cid = match challenge::start(state, &ix.row.id, &ix.client, &ix.req, record, ip)
        .await
        .map_err(|e| PageError::from(e).into_response())?
    {
        Ok(cid) => cid,
        Err(refusal) => {
            return Err(login_page(
                state,
                &ix,
                headers,
                Some(&ego_text),
                Some(refusal.text().into()),
            )
            .await);
        }
    };
    let mut res = web::see_other(&format!("/interaction/{}/challenge/{cid}", ix.row.id));
    let remember = f.contains_key("remember").then_some(ego_text.as_str());
    res.headers_mut()
        .append(header::SET_COOKIE, cookies::remember(state, remember));
    Ok(res)
}

/// What a page says when a login start came without a valid solution.
const PUZZLE: &str =
    "This bridge is busy: your browser must solve a small puzzle first. Press Continue again.";

/// The proof-of-work gate of a login start (the ego form and "send
/// again"): counts the start in the load meter and, while the gate is on,
/// checks and spends the form's solution. `Ok(false)`: no valid one.
async fn pass_gate(
    state: &AppState,
    f: &HashMap<String, String>,
    now: i64,
) -> Result<bool, PageError> {
    let required = state.pow_required(now);
    state.load.record(u64::try_from(now).unwrap_or(0));
    if !required {
        return Ok(true);
    }
    Ok(match (f.get("pow_token"), f.get("pow_solution")) {
        (Some(t), Some(s)) => state.pow_verify(t, s, now).await?.is_ok(),
        _ => false,
    })
}

/// Counts a login start against `rate` for `key`: a 429 page past it.
async fn limit(state: &AppState, key: &str, rate: Rate) -> Result<(), PageError> {
    match state.rate(key, rate).await? {
        Ok(()) => Ok(()),
        Err(secs) => Err(PageError::rate_limited(secs)),
    }
}

/// The key of login starts from a client prefix.
fn start_key(prefix: IpPrefix) -> String {
    format!("start:{prefix}")
}

fn start_rate(state: &AppState) -> Rate {
    Rate::per_minute(state.settings.login.starts_per_ip_per_minute)
}

/// The key of login starts for an ego from a client prefix: a stranger's
/// attempts elsewhere do not use up the person's.
fn ego_key(ego: &str, prefix: IpPrefix) -> String {
    format!("ego:{ego}:{prefix}")
}

fn ego_rate(state: &AppState) -> Rate {
    Rate::per_minute(state.settings.login.starts_per_ego_per_ip_per_minute)
}

async fn load_challenge(state: &AppState, ix: &Ix, cid: &str) -> Result<ChallengeRow, PageError> {
    if !random::is_id_shaped(cid) {
        return Err(gone());
    }
    match state.store.get_challenge(cid).await? {
        Some(c) if c.interaction_id == ix.row.id => Ok(c),
        _ => Err(gone()),
    }
}

/// The page that shows the match code and waits; its "send again" form
/// carries a puzzle while the gate is on.
async fn wait_page(state: &AppState, ix: &Ix, ch: &ChallengeRow, error: Option<&str>) -> Response {
    let now = state.now();
    let pow = match state.pow_challenge(now).await {
        Ok(p) => p,
        Err(e) => return PageError::from(e).into_response(),
    };
    let fingerprint = ch
        .ego_id
        .parse::<cyrcles_core::EgoId>()
        .map(|e| e.fingerprint().to_string())
        .unwrap_or_default();
    let page = WaitPage {
        client_name: ix.client.name.clone(),
        fingerprint,
        match_code: format!("{:02}", ch.match_code),
        interaction_id: ix.row.id.clone(),
        challenge_id: ch.id.clone(),
        csrf: ix.row.csrf.clone(),
        seconds_left: (ch.expires_at - now).max(0),
        error: error.map(str::to_string),
        pow_difficulty: pow.as_ref().map(|p| p.difficulty).unwrap_or(0),
        pow_token: pow.map(|p| p.token),
    };
    let status = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    // Its cancel form's answer redirects to the site.
    let mut res = (status, page.render_html()).into_response();
    crate::web::allow_form_target(&mut res, &ix.req.redirect_uri);
    res
}

/// `GET /interaction/{id}/challenge/{cid}`
pub async fn wait(
    State(state): State<AppState>,
    Path((id, cid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let ix = load(&state, &id, &headers).await?;
        let ch = load_challenge(&state, &ix, &cid).await?;
        let now = state.now();
        if ch.status != ChallengeStatus::Pending || now > ch.expires_at {
            return Ok(web::see_other(&format!(
                "/interaction/{id}/challenge/{cid}/continue"
            )));
        }
        Ok::<_, PageError>(wait_page(&state, &ix, &ch, None).await)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Longest a status request waits for a change.
const MAX_WAIT_SECS: u64 = 25;
/// How often a waiting status request reads the database (for outcomes
/// recorded by another instance).
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// `GET /interaction/{id}/challenge/{cid}/status[?wait=SECONDS]`: the
/// challenge's status as JSON; with `wait`, held open (long polling) until
/// it leaves `pending` or the time runs out.
pub async fn status(
    State(state): State<AppState>,
    Path((id, cid)): Path<(String, String)>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    let wait = q
        .as_deref()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "wait"))
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0)
        .min(MAX_WAIT_SECS);
    let result = async {
        let ix = load(&state, &id, &headers).await?;
        // The challenge is checked (shape, existence, interaction) before
        // anything is kept for it.
        let mut ch = load_challenge(&state, &ix, &cid).await?;
        let settled = |ch: &ChallengeRow| {
            ch.status != ChallengeStatus::Pending || state.now() > ch.expires_at
        };
        if wait > 0 && !settled(&ch) {
            let deadline: tokio::time::Instant =
                cyrcles_p2p::deadline::after_secs(tokio::time::Instant::now().into_std(), wait)
                    .into();
            // `None` past the watch's bounds: answer at once. Dropped on
            // every way out, which releases the place.
            if let Some(waiter) = state.watch.subscribe(&ch.id) {
                loop {
                    // Armed before the read, so an outcome recorded in
                    // between still wakes this request.
                    let notified = waiter.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    ch = load_challenge(&state, &ix, &cid).await?;
                    let now_instant = tokio::time::Instant::now();
                    if settled(&ch) || now_instant >= deadline {
                        break;
                    }
                    let until =
                        deadline.min(now_instant.checked_add(WAIT_POLL).unwrap_or(deadline));
                    let _ = tokio::time::timeout_at(until, notified).await;
                }
            }
        }
        let now = state.now();
        let status = match ch.status {
            ChallengeStatus::Pending if now > ch.expires_at => "expired",
            s => s.as_str(),
        };
        let mut res = axum::Json(json!({
            "status": status,
            "seconds_left": (ch.expires_at - now).max(0),
        }))
        .into_response();
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        Ok::<_, PageError>(res)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /interaction/{id}/challenge/{cid}/continue`
pub async fn proceed(
    State(state): State<AppState>,
    Path((id, cid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let ix = load(&state, &id, &headers).await?;
        let ch = load_challenge(&state, &ix, &cid).await?;
        let now = state.now();
        // "Try again" keeps the ego typed; "cancel" tells the site.
        let retry = format!("/interaction/{id}?ego={}", ch.ego_id);
        let failed = |title: &str, msg: &str| {
            PageError::new(StatusCode::OK, title, msg)
                .retry(retry.clone())
                .cancellable(cancel_form(&ix))
        };
        match ch.status {
            ChallengeStatus::Pending if now <= ch.expires_at => {
                return Ok(web::see_other(&format!(
                    "/interaction/{id}/challenge/{cid}"
                )));
            }
            ChallengeStatus::Pending | ChallengeStatus::Expired => {
                return Err(failed(
                    "The request expired",
                    "Nobody approved the login in time.",
                ));
            }
            ChallengeStatus::Denied => {
                return Err(failed(
                    "Login denied",
                    ch.detail
                        .as_deref()
                        .unwrap_or("Your agent refused the login."),
                ));
            }
            ChallengeStatus::Unreachable => {
                return Err(failed(
                    "Your agent could not be reached",
                    "Is your Cyrcles agent running and online? Start it and try again.",
                ));
            }
            ChallengeStatus::Failed => {
                return Err(failed(
                    "The login could not be verified",
                    ch.detail
                        .as_deref()
                        .unwrap_or("The answer did not check out."),
                ));
            }
            ChallengeStatus::Cancelled | ChallengeStatus::Used => {
                return Err(failed(
                    "This request is no longer valid",
                    "Start the login again.",
                ));
            }
            ChallengeStatus::Approved => {}
        }
        // Single use: of two concurrent continues, one wins.
        if !state
            .store
            .transition_challenge(
                &cid,
                ChallengeStatus::Approved,
                ChallengeStatus::Used,
                None,
                ch.ego_pk.as_deref(),
                ch.cert_seq.zip(ch.cert_epoch.or(Some(0))),
                now,
            )
            .await?
        {
            return Err(failed(
                "This request is no longer valid",
                "Start the login again.",
            ));
        }
        let approval = Approval {
            auth_time: now,
            approved_by: Approved::parse(ch.detail.as_deref().unwrap_or("")),
            cert_seq: ch.cert_seq.unwrap_or(0),
            cert_epoch: ch.cert_epoch.unwrap_or(0),
        };
        let token = random::token();
        let mut session = SessionRow {
            sid: random::id(),
            cookie_hash: crypto::sha256(&token),
            ego_id: ch.ego_id.clone(),
            ego_pk: ch.ego_pk.clone().unwrap_or_default(),
            cert_seq: approval.cert_seq,
            cert_epoch: approval.cert_epoch,
            auth_time: now,
            expires_at: now + i64::try_from(state.settings.oidc.session_ttl_secs).unwrap_or(86_400),
            ended_at: None,
        };
        // The same ego approved another site of its session: the session
        // goes on (its id, so the other sites' grants and logout stay
        // joined; its expiry) with this approval. Another ego replaces it.
        let renewed = match cookies::session(&state, &headers, now).await? {
            Some(old) if old.ego_id == session.ego_id => {
                session.sid = old.sid;
                session.expires_at = old.expires_at;
                state.store.renew_session(&session).await?
            }
            Some(old) => {
                state.store.end_session(&old.sid, now).await?;
                false
            }
            None => false,
        };
        if !renewed {
            state.store.insert_session(&session).await?;
        }
        let mut res = if grant::needs_consent(&state, &ix.req, &session.ego_id).await? {
            // The consent page continues this interaction with the session.
            let recorded = serde_json::to_string(&approval)
                .map_err(|_| PageError::internal(&"cannot serialize the approval"))?;
            state
                .store
                .set_interaction_session(&id, &session.ego_id, &session.sid, &recorded)
                .await?;
            if ix.req.prompt.none {
                grant::automatic_error(
                    &state,
                    &ix.client,
                    &ix.req,
                    Code::ConsentRequired,
                    "consent required",
                )
            } else {
                web::see_other(&format!("/interaction/{id}"))
            }
        } else {
            grant::complete(&state, &ix.client, &ix.req, &session, approval, Some(&id)).await
        };
        res.headers_mut()
            .append(header::SET_COOKIE, cookies::set_session(&state, &token));
        Ok(res)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /interaction/{id}/consent`
pub async fn consent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (ix, f) = load_posted(&state, &id, &headers, &body).await?;
        let session = live_session(&state, &ix).await?;
        // The approval the interaction's login ended with (recorded with
        // its session): what the grant claims.
        let approval: Approval = ix
            .row
            .approval
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
            .ok_or_else(gone)?;
        match f.get("decision").map(String::as_str) {
            Some("allow") => {
                grant::record_consent(&state, &ix.req, &session.ego_id).await?;
                Ok(
                    grant::complete(&state, &ix.client, &ix.req, &session, approval, Some(&id))
                        .await,
                )
            }
            _ => {
                state.metrics.login("consent_denied");
                deny_to_client(&state, &ix, "the person did not consent").await
            }
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /interaction/{id}/cancel`
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (ix, _) = load_posted(&state, &id, &headers, &body).await?;
        deny_to_client(&state, &ix, "the person cancelled the login").await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /interaction/{id}/resend`: cancels the pending challenge and
/// sends a new one to the same ego.
pub async fn resend(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (ix, f) = load_posted(&state, &id, &headers, &body).await?;
        let cid = f.get("challenge_id").cloned().unwrap_or_default();
        let old = load_challenge(&state, &ix, &cid).await?;
        let ip = web::client_ip(&headers, peer, state.settings.forwarded_for_hops);
        let prefix = IpPrefix::of(ip);
        // The same limits and gate as the ego form: a solved start buys no
        // free resends.
        limit(&state, &start_key(prefix), start_rate(&state)).await?;
        let now = state.now();
        if !pass_gate(&state, &f, now).await? {
            return Ok(wait_page(&state, &ix, &old, Some(PUZZLE)).await);
        }
        limit(&state, &ego_key(&old.ego_id, prefix), ego_rate(&state)).await?;
        if state
            .store
            .transition_challenge(
                &cid,
                ChallengeStatus::Pending,
                ChallengeStatus::Cancelled,
                None,
                None,
                None,
                now,
            )
            .await?
        {
            state.watch.notify(&cid);
        }
        let ego = challenge::parse_ego(&old.ego_id).ok_or_else(gone)?;
        let record = resolve::resolve(&state, ego, false).await.map_err(|e| {
            PageError::new(StatusCode::OK, "Cannot resend", format!("{e}."))
                .retry(format!("/interaction/{id}"))
        })?;
        let new = challenge::start(&state, &id, &ix.client, &ix.req, record, ip)
            .await?
            .map_err(|refusal| {
                PageError::new(StatusCode::OK, "Too many requests waiting", refusal.text())
                    .retry(format!("/interaction/{id}"))
            })?;
        Ok::<_, PageError>(web::see_other(&format!(
            "/interaction/{id}/challenge/{new}"
        )))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
