//! Counters and latency histograms of a node, readable by the embedding
//! program (the bridge serves them at `/metrics` in Prometheus text form).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels1 = [(&'static str, &'static str); 1];

fn latency() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Why an inbound record was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Larger than the record cap.
    Oversized,
    /// The key is not a 32-byte DHT key.
    BadKey,
    /// Failed validation; the rule's error code.
    Invalid(&'static str),
    /// Older than what is stored or was seen.
    Stale,
    /// Conflicts with what is stored or was seen.
    Duplicity,
    /// The sender is over its PUT rate.
    RateLimited,
    /// The store is full.
    StoreFull,
    /// The sender (its peer id or its network) holds its share of the
    /// store already.
    Quota,
}

impl Rejection {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Oversized => "oversized",
            Rejection::BadKey => "bad_key",
            Rejection::Invalid(code) => code,
            Rejection::Stale => "stale",
            Rejection::Duplicity => "duplicity",
            Rejection::RateLimited => "rate_limited",
            Rejection::StoreFull => "store_full",
            Rejection::Quota => "quota",
        }
    }
}

/// A node's metrics. Cloning shares the same counters.
#[derive(Debug, Clone)]
pub struct Metrics {
    records_stored: Counter,
    records_rejected: Family<Labels1, Counter>,
    records_rejected_total: Counter,
    duplicity: Counter,
    gets: Family<Labels1, Counter>,
    get_seconds: Histogram,
    get_answers_rejected: Family<Labels1, Counter>,
    puts: Family<Labels1, Counter>,
    put_seconds: Histogram,
    requests: Family<[(&'static str, &'static str); 3], Counter>,
    request_seconds: Family<Labels1, Histogram, fn() -> Histogram>,
    connected_peers: Gauge,
    stored_records: Gauge,
    panics: Counter,
    dials_refused: Counter,
    evicted: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh, zeroed metrics.
    pub fn new() -> Self {
        Self {
            records_stored: Counter::default(),
            records_rejected: Family::default(),
            records_rejected_total: Counter::default(),
            duplicity: Counter::default(),
            gets: Family::default(),
            get_seconds: latency(),
            get_answers_rejected: Family::default(),
            puts: Family::default(),
            put_seconds: latency(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency),
            connected_peers: Gauge::default(),
            stored_records: Gauge::default(),
            panics: Counter::default(),
            dials_refused: Counter::default(),
            evicted: Counter::default(),
        }
    }

    /// Adds every metric to `registry` under the `cyrcles_p2p` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cyrcles_p2p");
        r.register(
            "records_stored",
            "Inbound DHT records validated and stored",
            self.records_stored.clone(),
        );
        r.register(
            "records_rejected",
            "Inbound DHT records refused, by reason",
            self.records_rejected.clone(),
        );
        r.register(
            "duplicity",
            "Records showing a compromised circle (divergent chains or certificates)",
            self.duplicity.clone(),
        );
        r.register("gets", "DHT lookups by outcome", self.gets.clone());
        r.register(
            "get_seconds",
            "DHT lookup latency",
            self.get_seconds.clone(),
        );
        r.register(
            "get_answers_rejected",
            "Records returned by peers during lookups and refused, by reason",
            self.get_answers_rejected.clone(),
        );
        r.register("puts", "DHT publications by outcome", self.puts.clone());
        r.register(
            "put_seconds",
            "DHT publication latency",
            self.put_seconds.clone(),
        );
        r.register(
            "requests",
            "Request-response exchanges by protocol, direction and outcome",
            self.requests.clone(),
        );
        r.register(
            "request_seconds",
            "Outbound request latency by protocol",
            self.request_seconds.clone(),
        );
        r.register(
            "connected_peers",
            "Peers with an open connection",
            self.connected_peers.clone(),
        );
        r.register(
            "stored_records",
            "Records held for the DHT",
            self.stored_records.clone(),
        );
        r.register(
            "event_loop_panics",
            "Panics caught while the event loop handled one event (the node went on)",
            self.panics.clone(),
        );
        r.register(
            "dials_refused",
            "Dials to loopback, private or link-local addresses refused",
            self.dials_refused.clone(),
        );
        r.register(
            "records_evicted",
            "Records of the heaviest sending network dropped to make room in a full store",
            self.evicted.clone(),
        );
    }

    /// All metrics in Prometheus text format.
    pub fn encode_text(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    pub(crate) fn stored(&self) {
        self.records_stored.inc();
    }

    pub(crate) fn rejected(&self, why: Rejection) {
        self.records_rejected
            .get_or_create(&[("reason", why.label())])
            .inc();
        self.records_rejected_total.inc();
        if why == Rejection::Duplicity {
            self.duplicity.inc();
        }
    }

    pub(crate) fn answer_rejected(&self, why: Rejection) {
        self.get_answers_rejected
            .get_or_create(&[("reason", why.label())])
            .inc();
        if why == Rejection::Duplicity {
            self.duplicity.inc();
        }
    }

    pub(crate) fn get_done(&self, outcome: &'static str, seconds: f64) {
        self.gets.get_or_create(&[("outcome", outcome)]).inc();
        self.get_seconds.observe(seconds);
    }

    pub(crate) fn put_done(&self, outcome: &'static str, seconds: f64) {
        self.puts.get_or_create(&[("outcome", outcome)]).inc();
        self.put_seconds.observe(seconds);
    }

    pub(crate) fn request(
        &self,
        protocol: &'static str,
        direction: &'static str,
        outcome: &'static str,
    ) {
        self.requests
            .get_or_create(&[
                ("protocol", protocol),
                ("direction", direction),
                ("outcome", outcome),
            ])
            .inc();
    }

    pub(crate) fn request_latency(&self, protocol: &'static str, seconds: f64) {
        self.request_seconds
            .get_or_create(&[("protocol", protocol)])
            .observe(seconds);
    }

    pub(crate) fn set_connected(&self, n: usize) {
        self.connected_peers
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn set_stored(&self, n: usize) {
        self.stored_records
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn panicked(&self) {
        self.panics.inc();
    }

    pub(crate) fn dial_refused(&self) {
        self.dials_refused.inc();
    }

    pub(crate) fn evicted(&self) {
        self.evicted.inc();
    }

    /// Panics the event loop caught and survived.
    pub fn panics(&self) -> u64 {
        self.panics.get()
    }

    /// Dials refused because the address was not public.
    pub fn dials_refused(&self) -> u64 {
        self.dials_refused.get()
    }

    /// Records evicted from a full store.
    pub fn records_evicted(&self) -> u64 {
        self.evicted.get()
    }

    /// Records stored so far.
    pub fn records_stored(&self) -> u64 {
        self.records_stored.get()
    }

    /// Inbound records refused for `reason` (a [`Rejection::label`]).
    pub fn records_rejected(&self, reason: &'static str) -> u64 {
        self.records_rejected
            .get(&[("reason", reason)])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Inbound records refused, whatever the reason.
    pub fn records_rejected_total(&self) -> u64 {
        self.records_rejected_total.get()
    }

    /// Records refused during lookups for `reason`.
    pub fn answers_rejected(&self, reason: &'static str) -> u64 {
        self.get_answers_rejected
            .get(&[("reason", reason)])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Duplicity reports.
    pub fn duplicity(&self) -> u64 {
        self.duplicity.get()
    }

    /// Lookups with `outcome` (`found`, `not_found`, `timeout`).
    pub fn gets(&self, outcome: &'static str) -> u64 {
        self.gets
            .get(&[("outcome", outcome)])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Exchanges on `protocol` in `direction` (`inbound`, `outbound`) with
    /// `outcome`.
    pub fn requests(
        &self,
        protocol: &'static str,
        direction: &'static str,
        outcome: &'static str,
    ) -> u64 {
        self.requests
            .get(&[
                ("protocol", protocol),
                ("direction", direction),
                ("outcome", outcome),
            ])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Peers currently connected.
    pub fn connected_peers(&self) -> i64 {
        self.connected_peers.get()
    }
}
