//! The demo website: an ordinary OpenID Connect relying party on the
//! `openidconnect` crate, with nothing Cyrcles-specific in it. It offers
//! "Login with Cyrcles" (authorization code flow with PKCE S256, a nonce
//! and a state bound to the browser), shows the verified ID token's
//! claims, logs out through the bridge (RP-initiated logout) and takes
//! back-channel logout tokens.
//!
//! Routes: `/` (home), `/login[?ego=ID]`, `/callback`, `POST /logout`,
//! `POST /backchannel-logout`, `/healthz`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use cyrcles_bridge::state::Clock;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdToken, IssuerUrl, JsonWebTokenType, LogoutRequest, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, Scope, TokenResponse,
};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use url::Url;

/// The back-channel logout event (OpenID Connect Back-Channel Logout 1.0).
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The browser cookie that ties a browser to its flow and session.
const COOKIE_NAME: &str = "cyrcles_demo";
/// How long a started login may take.
const FLOW_TTL: Duration = Duration::from_secs(600);
/// Logins in flight, and sessions, kept at most.
const MAX_ENTRIES: usize = 10_000;

/// Claims beyond the standard ones that the demo reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DemoClaims {
    /// The bridge's session id (for back-channel logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Logout token events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<serde_json::Value>,
}

impl AdditionalClaims for DemoClaims {}

type DemoIdToken = IdToken<
    DemoClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How the site reaches its bridge.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// The bridge's issuer URL.
    pub issuer: String,
    /// The site's public base URL (its redirect URI is `<url>/callback`).
    pub public_url: Url,
    /// Registered client credentials; `None`: register dynamically.
    pub client: Option<ClientCredentials>,
}

/// A client id and secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClientCredentials {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

struct Flow {
    csrf: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    started: Instant,
}

struct Session {
    claims: serde_json::Value,
    id_token: DemoIdToken,
    sid: Option<String>,
    sub: String,
}

#[derive(Default)]
struct Browsers {
    flows: HashMap<String, Flow>,
    sessions: HashMap<String, Session>,
    /// A message for the browser's next page (e.g. ended by the bridge).
    notes: HashMap<String, String>,
}

/// The running site's state.
pub struct Site {
    client: Client,
    http: reqwest::Client,
    end_session: Option<openidconnect::EndSessionUrl>,
    public_url: Url,
    browsers: Mutex<Browsers>,
    credentials: ClientCredentials,
    /// Times the logins in progress.
    clock: Clock,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("public_url", &self.public_url.as_str())
            .field("client_id", &self.credentials.client_id)
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Browsers>) -> MutexGuard<'_, Browsers> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn random_id() -> String {
    let mut b = [0u8; 18];
    OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Gives a URL written with port 0 the port `listener` bound: tests and
/// throwaway runs listen on port 0 and learn the port afterwards.
pub fn take_bound_port(url: &mut Url, listener: &tokio::net::TcpListener) {
    if url.port() == Some(0)
        && let Ok(a) = listener.local_addr()
    {
        let _ = url.set_port(Some(a.port()));
    }
}

fn join(base: &Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

/// An HTTP client for the OIDC library (which must not follow redirects).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .context("cannot build the HTTP client")
}

/// Registers the site at the bridge (RFC 7591): a confidential client
/// with its callback, its post-logout page and its back-channel endpoint.
/// A bridge that refuses the back-channel endpoint (a public bridge
/// refuses loopback and private targets) gets the registration without
/// it: logging out at the bridge then does not reach this site.
pub async fn register(
    http: &reqwest::Client,
    registration_endpoint: &str,
    public_url: &Url,
) -> anyhow::Result<ClientCredentials> {
    match register_once(http, registration_endpoint, public_url, true).await {
        Err(e) if e.to_string().contains("backchannel_logout_uri") => {
            warn!(
                "the bridge refuses this site's back-channel logout endpoint ({e}); registering without it"
            );
            register_once(http, registration_endpoint, public_url, false).await
        }
        other => other,
    }
}

async fn register_once(
    http: &reqwest::Client,
    registration_endpoint: &str,
    public_url: &Url,
    backchannel: bool,
) -> anyhow::Result<ClientCredentials> {
    let mut body = serde_json::json!({
        "client_name": "Cyrcles demo site",
        "redirect_uris": [join(public_url, "/callback")],
        "post_logout_redirect_uris": [join(public_url, "/")],
        "backchannel_logout_uri": join(public_url, "/backchannel-logout"),
        "backchannel_logout_session_required": true,
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    });
    if !backchannel && let Some(m) = body.as_object_mut() {
        m.remove("backchannel_logout_uri");
        m.remove("backchannel_logout_session_required");
    }
    let res = http
        .post(registration_endpoint)
        .json(&body)
        .send()
        .await
        .context("cannot reach the registration endpoint")?;
    let status = res.status();
    let answer: serde_json::Value = res
        .json()
        .await
        .context("the registration answer is not JSON")?;
    if !status.is_success() {
        return Err(anyhow!("registration refused ({status}): {answer}"));
    }
    let field = |k: &str| {
        answer
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the registration answer has no {k}"))
    };
    Ok(ClientCredentials {
        client_id: field("client_id")?,
        client_secret: field("client_secret")?,
    })
}

impl Site {
    /// Discovers the bridge, registers if needed, and builds the client.
    pub async fn connect(config: SiteConfig) -> anyhow::Result<Arc<Site>> {
        let http = http_client()?;
        let issuer = IssuerUrl::new(config.issuer.clone()).context("the issuer is not a URL")?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http)
            .await
            .map_err(|e| anyhow!("cannot read the bridge's discovery document: {e}"))?;
        let credentials = match config.client {
            Some(c) => c,
            None => {
                let endpoint = metadata
                    .registration_endpoint()
                    .ok_or_else(|| anyhow!("the bridge offers no dynamic registration; give --client-id and --client-secret"))?
                    .to_string();
                register(&http, &endpoint, &config.public_url).await?
            }
        };
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let redirect = RedirectUrl::new(join(&config.public_url, "/callback"))
            .context("the public URL does not make a redirect URI")?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(credentials.client_id.clone()),
            Some(ClientSecret::new(credentials.client_secret.clone())),
        )
        .set_redirect_uri(redirect);
        info!(client_id = %credentials.client_id, "demo site connected to its bridge");
        Ok(Arc::new(Site {
            client,
            http,
            end_session,
            public_url: config.public_url,
            browsers: Mutex::new(Browsers::default()),
            credentials,
            clock: Clock::system(),
        }))
    }

    /// The client credentials in use.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// The routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/login", get(login))
            .route("/callback", get(callback))
            .route("/logout", post(logout))
            .route("/backchannel-logout", post(backchannel))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(self.clone())
    }
}

// ------------------------------------------------------------------ pages

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Cyrcles demo</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#1d2330}}\
         h1{{font-size:1.5rem}} table{{border-collapse:collapse;width:100%}}\
         td,th{{text-align:left;border-bottom:1px solid #dde;padding:.35rem .5rem;vertical-align:top;word-break:break-all}}\
         .button{{display:inline-block;background:#2d5bd7;color:#fff;border:0;border-radius:.4rem;padding:.6rem 1rem;font-size:1rem;text-decoration:none;cursor:pointer}}\
         .note{{background:#f3f5fb;border-left:4px solid #2d5bd7;padding:.5rem .8rem}}\
         .error{{background:#fbf0f0;border-left:4px solid #c33;padding:.5rem .8rem}}\
         input{{font-size:1rem;padding:.45rem;width:100%;box-sizing:border-box;margin:.3rem 0 .8rem}}\
         </style></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title),
    )
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let mut res = (status, Html(page(title, body))).into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn redirect(to: &str, cookie: Option<&str>) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    if let Some(c) = cookie
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE_NAME}={c}; Path=/; HttpOnly; SameSite=Lax"
        ))
    {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

/// The browser's id from its cookie.
fn browser_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

async fn home(State(site): State<Arc<Site>>, headers: HeaderMap) -> Response {
    let id = browser_id(&headers);
    let mut b = lock(&site.browsers);
    let note = id.as_ref().and_then(|i| b.notes.remove(i));
    let note = note
        .map(|n| format!("<p class=\"note\" id=\"note\">{}</p>", escape(&n)))
        .unwrap_or_default();
    if let Some(s) = id.as_ref().and_then(|i| b.sessions.get(i)) {
        let mut rows = String::new();
        if let Some(map) = s.claims.as_object() {
            for (k, v) in map {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                rows.push_str(&format!(
                    "<tr><th>{}</th><td id=\"claim-{}\">{}</td></tr>",
                    escape(k),
                    escape(k),
                    escape(&v)
                ));
            }
        }
        let body = format!(
            "{note}<p id=\"welcome\">You are logged in with Cyrcles. The bridge vouched for \
             you with this ID token, which this site verified (signature, issuer, audience, \
             nonce, expiry):</p><table id=\"claims\">{rows}</table>\
             <form method=\"post\" action=\"/logout\"><p>\
             <button class=\"button\" id=\"logout\" type=\"submit\">Log out</button></p></form>"
        );
        return html(StatusCode::OK, "Welcome", &body);
    }
    let body = format!(
        "{note}<p>This is a website that knows nothing about you: no password, no account. \
         Log in with an ego of yours; the Cyrcles bridge asks your agent, you approve with \
         the code it shows.</p>\
         <form method=\"get\" action=\"/login\"><label for=\"ego\">Your ego id \
         (optional: the bridge asks otherwise)</label>\
         <input id=\"ego\" name=\"ego\" autocomplete=\"off\" spellcheck=\"false\">\
         <button class=\"button\" id=\"login\" type=\"submit\">Login with Cyrcles</button></form>"
    );
    html(StatusCode::OK, "Cyrcles demo site", &body)
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    ego: Option<String>,
}

async fn login(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let id = browser_id(&headers).unwrap_or_else(random_id);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = site
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge);
    let ego = q.ego.as_deref().map(str::trim).unwrap_or_default();
    if !ego.is_empty() && ego.len() <= 128 {
        req = req.add_extra_param("login_hint", ego.to_string());
    }
    let (url, csrf, nonce) = req.url();
    {
        let mut b = lock(&site.browsers);
        b.flows
            .retain(|_, f| site.clock.since(f.started) < FLOW_TTL);
        if b.flows.len() >= MAX_ENTRIES {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "<p class=\"error\">Too many logins in progress; try again in a minute.</p>",
            );
        }
        b.flows.insert(
            id.clone(),
            Flow {
                csrf,
                nonce,
                verifier,
                started: site.clock.instant(),
            },
        );
    }
    redirect(url.as_str(), Some(&id))
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn failed(status: StatusCode, what: &str) -> Response {
    html(
        status,
        "Login failed",
        &format!(
            "<p class=\"error\" id=\"error\">{}</p><p><a class=\"button\" href=\"/\">Back</a></p>",
            escape(what)
        ),
    )
}

async fn callback(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(id) = browser_id(&headers) else {
        return failed(
            StatusCode::BAD_REQUEST,
            "This browser did not start a login here (no cookie).",
        );
    };
    let flow = lock(&site.browsers).flows.remove(&id);
    let Some(flow) = flow.filter(|f| site.clock.since(f.started) < FLOW_TTL) else {
        return failed(
            StatusCode::BAD_REQUEST,
            "No login in progress for this browser, or it took too long.",
        );
    };
    if q.state.as_deref() != Some(flow.csrf.secret().as_str()) {
        return failed(
            StatusCode::BAD_REQUEST,
            "The state does not match this login.",
        );
    }
    if let Some(error) = q.error {
        let why = q.error_description.unwrap_or_default();
        // A person who cancelled or refused is no fault of the browser's.
        let status = if error == "access_denied" {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        return failed(status, &format!("The bridge answered {error}: {why}"));
    }
    let Some(code) = q.code.filter(|c| !c.is_empty() && c.len() <= 512) else {
        return failed(StatusCode::BAD_REQUEST, "The bridge sent no code.");
    };
    match finish(&site, code, flow).await {
        Ok(session) => {
            info!(sub = %session.sub, "demo site: logged in");
            let mut b = lock(&site.browsers);
            if b.sessions.len() >= MAX_ENTRIES {
                return failed(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions.");
            }
            b.sessions.insert(id, session);
            redirect("/", None)
        }
        Err(e) => {
            warn!("demo site: a login did not verify: {e:#}");
            failed(
                StatusCode::BAD_GATEWAY,
                &format!("The login did not verify: {e}"),
            )
        }
    }
}

async fn finish(site: &Site, code: String, flow: Flow) -> anyhow::Result<Session> {
    let response = site
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| anyhow!("no token endpoint: {e}"))?
        .set_pkce_verifier(flow.verifier)
        .request_async(&site.http)
        .await
        .map_err(|e| anyhow!("the code exchange failed: {e}"))?;
    let raw = response
        .id_token()
        .ok_or_else(|| anyhow!("the bridge sent no ID token"))?
        .to_string();
    let token: DemoIdToken = raw
        .parse()
        .map_err(|e| anyhow!("the ID token does not parse: {e}"))?;
    let verifier = site.client.id_token_verifier();
    let claims = token
        .claims(&verifier, &flow.nonce)
        .map_err(|e| anyhow!("the ID token does not verify: {e}"))?;
    let json = serde_json::to_value(claims).context("the claims do not serialize")?;
    Ok(Session {
        sid: claims.additional_claims().sid.clone(),
        sub: claims.subject().to_string(),
        claims: json,
        id_token: token,
    })
}

async fn logout(State(site): State<Arc<Site>>, headers: HeaderMap) -> Response {
    let session = browser_id(&headers).and_then(|id| lock(&site.browsers).sessions.remove(&id));
    let (Some(session), Some(end)) = (session, site.end_session.clone()) else {
        return redirect("/", None);
    };
    let mut req = LogoutRequest::from(end).set_id_token_hint(&session.id_token);
    if let Ok(back) = PostLogoutRedirectUrl::new(join(&site.public_url, "/")) {
        req = req.set_post_logout_redirect_uri(back);
    }
    redirect(req.http_get_url().as_str(), None)
}

#[derive(Deserialize)]
struct BackchannelForm {
    logout_token: String,
}

fn bad_logout(why: &str) -> Response {
    warn!("demo site: a back-channel logout was refused: {why}");
    let body = serde_json::json!({"error": "invalid_request", "error_description": why});
    let mut res = (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn backchannel(State(site): State<Arc<Site>>, Form(form): Form<BackchannelForm>) -> Response {
    if form.logout_token.len() > 16 * 1024 {
        return bad_logout("the logout token is too long");
    }
    let Ok(token) = form.logout_token.parse::<DemoIdToken>() else {
        return bad_logout("the logout token does not parse");
    };
    let Ok(typ) = JsonWebTokenType::new("logout+jwt".into()).normalize() else {
        return bad_logout("internal: the logout token type");
    };
    let verifier = site
        .client
        .id_token_verifier()
        .set_allowed_jose_types([typ]);
    // A logout token carries no nonce.
    let no_nonce = |n: Option<&Nonce>| match n {
        None => Ok(()),
        Some(_) => Err("a logout token must not carry a nonce".to_string()),
    };
    let claims = match token.claims(&verifier, no_nonce) {
        Ok(c) => c,
        Err(e) => return bad_logout(&format!("the logout token does not verify: {e}")),
    };
    let extra = claims.additional_claims();
    if !extra.events.as_ref().is_some_and(|e| {
        e.get(BACKCHANNEL_EVENT)
            .is_some_and(serde_json::Value::is_object)
    }) {
        return bad_logout("the logout token has no back-channel logout event");
    }
    let sub = claims.subject().to_string();
    let sid = extra.sid.clone();
    let mut b = lock(&site.browsers);
    let ended: Vec<String> = b
        .sessions
        .iter()
        .filter(|(_, s)| match &sid {
            Some(sid) => s.sid.as_deref() == Some(sid.as_str()),
            None => s.sub == sub,
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in &ended {
        b.sessions.remove(id);
        b.notes.insert(
            id.clone(),
            "The bridge ended your session (back-channel logout).".into(),
        );
    }
    info!(sessions = ended.len(), "demo site: back-channel logout");
    let mut res = StatusCode::OK.into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
