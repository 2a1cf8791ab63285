//! HTTP metrics and the `/metrics` endpoint (Prometheus text: HTTP and DHT
//! counters).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

type Labels = [(&'static str, String); 2];
type RouteHistograms = Family<[(&'static str, String); 1], Histogram, fn() -> Histogram>;

/// HTTP counters.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<Labels, Counter>,
    seconds: RouteHistograms,
    logins: Family<[(&'static str, &'static str); 1], Counter>,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpMetrics {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self {
            requests: Family::default(),
            seconds: Family::new_with_constructor(latency),
            logins: Family::default(),
        }
    }

    /// Counts a login outcome (`started`, `approved`, `denied`, …).
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Login outcomes counted so far.
    pub fn logins(&self, outcome: &'static str) -> u64 {
        self.logins
            .get(&[("outcome", outcome)])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("cyrcles_bridge");
        r.register(
            "http_requests",
            "HTTP requests by route and status",
            self.requests.clone(),
        );
        r.register(
            "http_request_seconds",
            "HTTP latency by route",
            self.seconds.clone(),
        );
        r.register("logins", "Cyrcles logins by outcome", self.logins.clone());
    }
}

/// Middleware: counts every request by matched route and status.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let start = state.clock.instant();
    let res = next.run(req).await;
    let m = &state.metrics;
    m.requests
        .get_or_create(&[
            ("route", route.clone()),
            ("status", res.status().as_u16().to_string()),
        ])
        .inc();
    m.seconds
        .get_or_create(&[("route", route)])
        .observe(state.clock.since(start).as_secs_f64());
    res
}

/// Gauges of what outsiders can grow, read at scrape time.
fn resources(state: &AppState, r: &mut Registry, wal_bytes: u64) {
    let r = r.sub_registry_with_prefix("cyrcles_bridge");
    let gauge = |v: usize| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    let (rate_keys, spent) = state.limits.memory_sizes();
    r.register(
        "limits_rate_keys",
        "Rate-limit keys held in memory (bridges on SQLite)",
        gauge(rate_keys),
    );
    r.register(
        "pow_spent_tokens",
        "Spent proof-of-work tokens held in memory (bridges on SQLite)",
        gauge(spent),
    );
    r.register(
        "sqlite_wal_bytes",
        "Size of the SQLite write-ahead log file",
        ConstGauge::new(i64::try_from(wal_bytes).unwrap_or(i64::MAX)),
    );
    r.register(
        "login_watch_challenges",
        "Challenges that browsers are waiting on at this instance (entries of the watch map)",
        gauge(state.watch.challenges()),
    );
    r.register(
        "login_watch_waiters",
        "Status requests held open at this instance, waiting on a challenge",
        gauge(state.watch.waiters()),
    );
}

/// `GET /metrics`
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut registry = Registry::default();
    state.metrics.register(&mut registry);
    let wal = state.store.wal_bytes().await.unwrap_or(0);
    resources(&state, &mut registry, wal);
    state.node.metrics().register(&mut registry);
    let mut body = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut body, &registry);
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}
