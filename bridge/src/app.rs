//! Building and running the bridge: storage, keys, the p2p node, the HTTP
//! router and the background tasks.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cyrcles_p2p::{Clock, DhtMode, Multiaddr, Node, NodeConfig, NodeEvent, NodeHandle};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::error::PageError;
use crate::keys::KeyRing;
use crate::oidc::{authorize, discovery, logout, par, register, resource, token};
use crate::state::{AppState, Parts, unix_secs};
use crate::store::Store;
use crate::templates::STATIC_FILES;
use crate::{login, metrics, secrets, tasks, tls, web};

/// How the bridge is built beyond its settings (tests inject a clock and
/// an already-bound listener, so that they know the port, and thus the
/// issuer, before the bridge starts).
pub struct Options {
    /// The clock.
    pub clock: Clock,
    /// Serve on this listener instead of binding `http.listen`.
    pub listener: Option<std::net::TcpListener>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Clock::system(),
            listener: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").finish_non_exhaustive()
    }
}

/// A built bridge, bound to its ports, not yet serving HTTP.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    tasks: Vec<JoinHandle<()>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    p2p_addrs: Vec<Multiaddr>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Opens the database and applies migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    // SQLite serializes writers, and each connection is a thread: a few
    // connections serve best. PostgreSQL gets a wider pool.
    let connections = match settings.db_kind {
        crate::config::DbKind::Sqlite => 4,
        crate::config::DbKind::Postgres => 16,
    };
    let store = Store::connect(
        settings.database_url.expose(),
        settings.db_kind,
        connections,
    )
    .await
    .context("cannot open the database")?;
    store.migrate().await.context("cannot apply migrations")?;
    Ok(store)
}

async fn start_node(
    settings: &Settings,
    clock: &Clock,
) -> anyhow::Result<(NodeHandle, mpsc::Receiver<NodeEvent>)> {
    let keypair = secrets::p2p_key(settings)?;
    let mut c = NodeConfig::new(keypair);
    let parse = |v: &[String]| -> anyhow::Result<Vec<Multiaddr>> {
        v.iter()
            .map(|a| {
                a.parse::<Multiaddr>()
                    .with_context(|| format!("bad multiaddr {a}"))
            })
            .collect()
    };
    c.listen = parse(&settings.p2p.listen)?;
    c.bootstrap = parse(&settings.p2p.bootstrap)?;
    c.external_addrs = parse(&settings.p2p.external_addrs)?;
    c.mode = DhtMode::Server;
    c.relay_server = settings.p2p.relay;
    c.dial_private_addrs = settings.p2p.dial_private_addrs;
    c.agent_version = format!("cyrcles-bridge/{}", env!("CARGO_PKG_VERSION"));
    c.clock = clock.clone();
    Node::spawn(c).await.context("cannot start the p2p node")
}

impl Application {
    /// Builds everything and binds the HTTP listener and the p2p node.
    pub async fn build(mut settings: Settings, options: Options) -> anyhow::Result<Application> {
        let store = open_store(&settings).await?;
        let master = Arc::new(secrets::master_key(&settings)?);
        let now = unix_secs(options.clock.now());
        let keys = KeyRing::load(store.clone(), master.clone(), now)
            .await
            .context("cannot load the signing keys (is this the right master key?)")?;
        let (node, events) = start_node(&settings, &options.clock).await?;
        let p2p_addrs: Vec<Multiaddr> = node
            .status()
            .await
            .map(|s| s.listen_addrs)
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.with(cyrcles_p2p::multiaddr::Protocol::P2p(node.peer_id())))
            .collect();
        let tls = match &settings.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let listener = match options.listener {
            Some(l) => {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)?
            }
            None => TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.listen))?,
        };
        // An issuer on port 0 names the port just bound.
        settings.take_bound_port(listener.local_addr().map(|a| a.port()).unwrap_or(0));
        let discovery = discovery::document(&settings).to_string();
        let state = AppState::new(Parts {
            settings,
            store,
            keys,
            master,
            node,
            clock: options.clock,
            discovery,
        })
        .context("cannot build the HTTP client")?;
        let mut tasks = tasks::spawn(&state);
        tasks.push(tokio::spawn(drain_events(state.clone(), events)));
        let router = router(state.clone());
        Ok(Application {
            listener,
            router,
            state,
            tasks,
            tls,
            p2p_addrs,
        })
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The shared state (for tests and the CLI).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The p2p node's addresses, each ending in `/p2p/<id>`.
    pub fn p2p_addrs(&self) -> &[Multiaddr] {
        &self.p2p_addrs
    }

    /// Serves until `shutdown` resolves, then stops the background tasks
    /// and the p2p node.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            state,
            tasks,
            tls,
            ..
        } = self;
        let served = match tls {
            Some(acceptor) => tls::serve(listener, acceptor, router, shutdown).await,
            None => axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
            .context("HTTP server failed"),
        };
        for t in tasks {
            t.abort();
        }
        state.node.shutdown().await;
        served
    }
}

/// Recovered records being learned at once (beyond, an event waits for
/// the cache's own refresh: `login::resolve::FRESH_SECS`).
const MAX_LEARNING: usize = 4;

/// The bridge serves no inbound protocol requests; it logs duplicity
/// reports, takes recovered records into its ego cache at once, and drops
/// the rest.
async fn drain_events(state: AppState, mut events: mpsc::Receiver<NodeEvent>) {
    let learning = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_LEARNING));
    while let Some(e) = events.recv().await {
        match e {
            NodeEvent::Duplicity { ego_id, kind, .. } => {
                tracing::warn!(ego = %ego_id, ?kind, "duplicity seen in the DHT: this ego's circle may be compromised");
            }
            NodeEvent::Recovered { ego_id, record } => {
                let Ok(permit) = learning.clone().try_acquire_owned() else {
                    tracing::debug!(ego = %ego_id, "too many recovered records at once: this one waits for the cache");
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = crate::login::resolve::learn(&state, ego_id, &record).await {
                        tracing::warn!(ego = %ego_id, error = %e, "cannot take a recovered record into the cache");
                    }
                    drop(permit);
                });
            }
            _ => {}
        }
    }
}

async fn security(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    web::security_headers(
        &mut res,
        state.settings.tls.is_some() || state.settings.secure_cookies,
    );
    res
}

async fn health(State(state): State<AppState>) -> Response {
    let db = state.store.ping().await.is_ok();
    // A node whose loop stopped answers at once with an error; one that is
    // stuck does not answer at all.
    let status = tokio::time::timeout(std::time::Duration::from_secs(2), state.node.status())
        .await
        .ok()
        .and_then(Result::ok);
    let p2p = status.is_some();
    let body = axum::Json(serde_json::json!({
        "status": if db && p2p { "ok" } else { "degraded" },
        "database": db,
        "p2p": p2p,
        "p2p_panics": status.map(|s| s.panics),
    }));
    let code = if db && p2p {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body).into_response()
}

async fn static_file(Path(name): Path<String>) -> Response {
    match STATIC_FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => {
            let mut res = (*body).into_response();
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            res
        }
        None => not_found().await,
    }
}

async fn not_found() -> Response {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing at this address.",
    )
    .into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    PageError::internal(&"a request handler panicked").into_response()
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit;
    let timeout = state.settings.request_timeout;
    // Browser apps (public clients) call these from other origins.
    let api = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/jwks", get(discovery::jwks))
        .route("/token", post(token::token))
        .route("/par", post(par::push))
        .route(
            "/userinfo",
            get(resource::userinfo).post(resource::userinfo),
        )
        .route("/revoke", post(resource::revoke))
        .route("/introspect", post(resource::introspect))
        .route("/register", post(register::register))
        .route(
            "/register/{client_id}",
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        )
        .layer(
            CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods(tower_http::cors::Any)
                .allow_headers(tower_http::cors::Any),
        );
    let pages = Router::new()
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/interaction/{id}", get(login::show))
        .route("/interaction/{id}/ego", post(login::ego))
        .route("/interaction/{id}/challenge/{cid}", get(login::wait))
        .route(
            "/interaction/{id}/challenge/{cid}/status",
            get(login::status),
        )
        .route(
            "/interaction/{id}/challenge/{cid}/continue",
            get(login::proceed),
        )
        .route("/interaction/{id}/consent", post(login::consent))
        .route("/interaction/{id}/cancel", post(login::cancel))
        .route("/interaction/{id}/resend", post(login::resend))
        .route("/logout", get(logout::logout).post(logout::logout))
        .route("/static/{file}", get(static_file));
    Router::new()
        .merge(api)
        .merge(pages)
        .route("/healthz", get(health))
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), security))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
