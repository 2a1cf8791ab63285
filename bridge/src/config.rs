//! Configuration: a TOML file (unknown keys refused) whose every key can be
//! overridden by an environment variable `CYRCLES_BRIDGE_<SECTION>_<KEY>`
//! (top-level keys: `CYRCLES_BRIDGE_<KEY>`), validated into [`Settings`].
//!
//! With no file and no variables the defaults run a complete bridge on a
//! laptop: issuer `http://localhost:8080`, a SQLite file and a master key in
//! `./cyrcles-bridge-data`, and a new DHT on TCP 4001.
//! `deploy/bridge.example.toml` lists every key with its default and its
//! variable.
//!
//! Secrets (`master_key`, `database_url`) are held as
//! [`Secret`](crate::secrets::Secret) and [`DatabaseUrl`]: `Debug`, logs
//! and `config show` (the serialized [`Config`]) never print them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use url::Url;

use crate::secrets::Secret;

mod database_url;
mod layers;

pub use database_url::DatabaseUrl;
use layers::{env_name, layer, wipe};

/// Prefix of every configuration variable.
pub const ENV_PREFIX: &str = "CYRCLES_BRIDGE_";
/// Variables with the prefix that are not configuration keys.
const ENV_NOT_KEYS: [&str; 2] = ["CYRCLES_BRIDGE_CONFIG", "CYRCLES_BRIDGE_LOG"];

/// The configuration file's contents, with defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The OIDC issuer: the bridge's public base URL. A local one on port
    /// 0 takes the port the HTTP listener binds
    /// ([`Settings::take_bound_port`]).
    pub issuer: String,
    /// Where the bridge keeps its files (SQLite database, keys).
    pub data_dir: String,
    /// `sqlite://…` or `postgres://…`; empty: `sqlite://<data_dir>/bridge.db`.
    /// Shown with its password redacted.
    pub database_url: DatabaseUrl,
    /// File holding the 32-byte master key; empty: `<data_dir>/master.key`.
    /// `CYRCLES_BRIDGE_MASTER_KEY` (base64) takes precedence over the file.
    pub master_key_file: String,
    /// The master key itself, base64 (prefer the file or the variable).
    pub master_key: Secret<String>,
    /// HTTP serving.
    pub http: HttpConfig,
    /// The peer-to-peer node.
    pub p2p: P2pConfig,
    /// OpenID Connect behaviour.
    pub oidc: OidcConfig,
    /// The Cyrcles login.
    pub login: LoginConfig,
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// PEM certificate chain; with `tls_key`, the bridge serves HTTPS itself.
    pub tls_cert: String,
    /// PEM private key.
    pub tls_key: String,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy
    /// that sets it).
    pub trust_forwarded_for: bool,
    /// With `trust_forwarded_for`: how many proxies append to
    /// `X-Forwarded-For` in front of the bridge; the client's address is the
    /// entry this many from the end.
    pub forwarded_for_hops: u32,
    /// Largest request body, in bytes.
    pub body_limit_bytes: u64,
    /// Requests taking longer are answered 408.
    pub request_timeout_secs: u64,
}

/// `[p2p]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// Peers to join the DHT through (`/ip4/…/tcp/…/p2p/<id>`); empty: this
    /// bridge starts a new network.
    pub bootstrap: Vec<String>,
    /// Public addresses of this bridge, announced to peers.
    pub external_addrs: Vec<String>,
    /// File holding the node's identity key; empty: `<data_dir>/p2p.key`.
    pub key_file: String,
    /// Serve as a circuit relay for agents behind NAT.
    pub relay: bool,
    /// Dial loopback, private and link-local addresses named by ego
    /// records (off: a record is anyone's to write, and its addresses would
    /// point the bridge at its own host and networks). Turn on only when
    /// the bridge and its agents share one machine or a private network.
    pub dial_private_addrs: bool,
}

/// `[oidc]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// Allow dynamic client registration (RFC 7591) at `/register`.
    pub dynamic_registration: bool,
    /// Require PKCE from confidential clients too (always required from
    /// public clients).
    pub require_pkce_for_confidential: bool,
    /// Authorization code lifetime.
    pub code_ttl_secs: u64,
    /// Access token lifetime.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime.
    pub refresh_token_ttl_secs: u64,
    /// ID token lifetime.
    pub id_token_ttl_secs: u64,
    /// Browser session lifetime at the bridge.
    pub session_ttl_secs: u64,
    /// Signing keys are rotated after this many days (0: never).
    pub key_rotation_days: u64,
    /// End sessions (with back-channel logout) when the ego's key they were
    /// opened with is replaced, not only when the ego is revoked.
    pub end_sessions_on_key_change: bool,
    /// How often active sessions' egos are checked in the DHT.
    pub session_check_interval_secs: u64,
    /// Dynamic registrations allowed per client IP prefix (IPv4 address,
    /// IPv6 /64) per hour.
    pub registrations_per_ip_per_hour: u32,
    /// Most dynamically registered clients; at the bound a registration
    /// replaces the oldest one never used, or is refused if all were used.
    pub max_dynamic_clients: u32,
    /// Dynamically registered clients that never completed an
    /// authorization are deleted this long after registering.
    pub unused_client_ttl_secs: u64,
    /// Authorizations a browser session may complete per minute (single
    /// sign-on and `prompt=none` included).
    pub authorizations_per_session_per_minute: u32,
    /// Live grants kept per browser session and client; a new one revokes
    /// the oldest beyond this.
    pub max_grants_per_session_client: u32,
    /// DHT lookups a session check runs at once.
    pub session_check_concurrency: u32,
    /// A session check's lookup of one ego gives up after this many
    /// seconds (the sessions are kept; the next pass tries again).
    pub session_check_lookup_timeout_secs: u64,
    /// Egos looked up per session check, those checked longest ago first
    /// (the others wait for the next pass).
    pub session_check_max_egos: u32,
    /// Client ids of resource servers (APIs) that may introspect every
    /// client's tokens; any other client introspects only its own.
    pub resource_servers: Vec<String>,
    /// A grant's refresh tokens stop working this long after the person
    /// logged in, however often they were used (a refresh token's own
    /// lifetime is counted from its rotation; 0: no cap).
    pub max_grant_lifetime_secs: u64,
    /// A grant's refresh tokens stop working (with a back-channel logout)
    /// once the ego's certificate is more than this many newer than the one
    /// whose key approved the login. Records do not yet say whether a new
    /// key came from a rotation or from a recovery after a lost or stolen
    /// device, so the default, 0, ends them at the first key change.
    pub max_certificates_behind: u64,
    /// Let dynamically registered clients name loopback and private
    /// back-channel logout targets (a bridge and its sites on one machine
    /// or a private network, as in the demo). Off: public addresses only.
    pub private_backchannel_targets: bool,
    /// Refuse front-channel authorization requests that do not come
    /// through `/par` (RFC 9126 §5), for every client.
    pub require_pushed_authorization_requests: bool,
    /// How long a pushed request's `request_uri` can be used (once).
    pub pushed_request_ttl_secs: u64,
    /// Live pushed requests kept per client; a push beyond is refused.
    pub max_pushed_requests_per_client: u32,
    /// Live pushed requests kept in all; a push beyond is refused.
    pub max_pushed_requests: u32,
    /// Pushes allowed per client IP prefix per minute.
    pub pushes_per_ip_per_minute: u32,
    /// A DPoP proof is accepted this long after its `iat` (RFC 9449 §11.1).
    pub dpop_max_age_secs: u64,
    /// A DPoP proof whose `iat` is this far ahead of the bridge's clock is
    /// still accepted (clock skew).
    pub dpop_max_future_secs: u64,
    /// DPoP proofs remembered against replay (each for its window); a
    /// proof that finds the set full of live ones is refused.
    pub max_dpop_proofs: u32,
}

/// `[login]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// How long a login challenge can be answered (at most 120).
    pub challenge_ttl_secs: u64,
    /// Pending challenges allowed per ego from one client IP prefix
    /// (IPv4 address, IPv6 /64).
    pub max_pending_per_ego_per_ip: u32,
    /// Pending challenges allowed per ego in all; at the bound a new
    /// prefix's challenge cancels the oldest of the prefix holding the most.
    pub max_pending_per_ego: u32,
    /// Login starts allowed per client IP prefix per minute.
    pub starts_per_ip_per_minute: u32,
    /// Login starts allowed per ego from one client IP prefix per minute.
    pub starts_per_ego_per_ip_per_minute: u32,
    /// Authorization requests that may open an interaction (the login
    /// pages), per client IP prefix per minute.
    pub interactions_per_ip_per_minute: u32,
    /// Unfinished interactions kept per client IP prefix; a new one
    /// replaces that prefix's oldest.
    pub max_interactions_per_ip: u32,
    /// Unfinished interactions kept in all; at the bound a new one replaces
    /// the oldest of the prefix holding the most, or is refused when its
    /// own prefix holds the most.
    pub max_interactions: u32,
    /// Spent proof-of-work tokens remembered; when a spend finds them full,
    /// every outstanding token is retired and the set starts empty.
    pub pow_max_spent: u32,
    /// Egos kept in the record cache (the bridge's anti-rollback memory);
    /// past this, those without a live grant that were fetched longest
    /// ago are forgotten.
    pub max_cached_egos: u32,
    /// Login starts per minute (all clients) above which the proof-of-work
    /// gate switches on; 0: always on.
    pub pow_threshold_per_minute: u64,
    /// Leading zero bits the proof of work needs.
    pub pow_difficulty: u8,
    /// Days the "remember this ego" cookie lasts.
    pub remember_days: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8080".into(),
            data_dir: "./cyrcles-bridge-data".into(),
            database_url: DatabaseUrl::default(),
            master_key_file: String::new(),
            master_key: Secret::default(),
            http: HttpConfig::default(),
            p2p: P2pConfig::default(),
            oidc: OidcConfig::default(),
            login: LoginConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            trust_forwarded_for: false,
            forwarded_for_hops: 1,
            body_limit_bytes: 64 * 1024,
            request_timeout_secs: 30,
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/0.0.0.0/tcp/4001".into()],
            bootstrap: Vec::new(),
            external_addrs: Vec::new(),
            key_file: String::new(),
            relay: true,
            dial_private_addrs: false,
        }
    }
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            dynamic_registration: true,
            require_pkce_for_confidential: true,
            code_ttl_secs: 60,
            access_token_ttl_secs: 3_600,
            refresh_token_ttl_secs: 30 * 24 * 3_600,
            id_token_ttl_secs: 3_600,
            session_ttl_secs: 24 * 3_600,
            key_rotation_days: 90,
            end_sessions_on_key_change: true,
            session_check_interval_secs: 300,
            registrations_per_ip_per_hour: 20,
            max_dynamic_clients: 5_000,
            unused_client_ttl_secs: 7 * 24 * 3_600,
            authorizations_per_session_per_minute: 60,
            max_grants_per_session_client: 10,
            session_check_concurrency: 16,
            session_check_lookup_timeout_secs: 30,
            session_check_max_egos: 1_000,
            resource_servers: Vec::new(),
            private_backchannel_targets: false,
            max_grant_lifetime_secs: 90 * 24 * 3_600,
            max_certificates_behind: 0,
            require_pushed_authorization_requests: false,
            pushed_request_ttl_secs: 60,
            max_pushed_requests_per_client: 100,
            max_pushed_requests: 10_000,
            pushes_per_ip_per_minute: 120,
            dpop_max_age_secs: 60,
            dpop_max_future_secs: 5,
            max_dpop_proofs: 100_000,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            challenge_ttl_secs: 120,
            max_pending_per_ego_per_ip: 3,
            max_pending_per_ego: 12,
            starts_per_ip_per_minute: 20,
            starts_per_ego_per_ip_per_minute: 6,
            interactions_per_ip_per_minute: 60,
            max_interactions_per_ip: 200,
            max_interactions: 5_000,
            pow_max_spent: 100_000,
            max_cached_egos: 100_000,
            pow_threshold_per_minute: 600,
            pow_difficulty: crate::pow::DEFAULT_DIFFICULTY,
            remember_days: 30,
        }
    }
}

/// Why the configuration is not usable.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A `CYRCLES_BRIDGE_*` variable names no key or has a bad value.
    #[error("invalid environment variable {name}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Why.
        reason: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid setting {key}: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl Config {
    /// Loads the defaults, then `path` if given, then the environment.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut value = serde_json::to_value(Config::default())
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        // The secrets pass through the file's text, the variables and
        // `value` before they are wrapped: those copies are wiped too, on
        // success and on error (best effort: the process environment keeps
        // its own).
        let loaded = layer(&mut value, path, env).and_then(|()| {
            Config::deserialize(&value).map_err(|e| ConfigError::Parse(e.to_string()))
        });
        wipe(&mut value);
        loaded
    }

    /// The configuration as `cyrcles-bridge config show` prints it: pretty
    /// JSON, `master_key` as `[redacted]` when set, `database_url` with its
    /// password redacted (their `Serialize`).
    pub fn show(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// Every key with its environment variable, for documentation and
    /// `--help`.
    pub fn keys() -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Ok(Value::Object(map)) = serde_json::to_value(Config::default()) {
            for (k, v) in map {
                match v {
                    Value::Object(inner) => {
                        for ik in inner.keys() {
                            out.push((format!("{k}.{ik}"), env_name(Some(&k), ik)));
                        }
                    }
                    _ => out.push((k.clone(), env_name(None, &k))),
                }
            }
        }
        out
    }
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server, shared by several instances.
    Postgres,
}

/// A validated configuration.
#[derive(Clone)]
pub struct Settings {
    /// The issuer, without a trailing slash.
    pub issuer: String,
    /// Parsed issuer URL.
    pub issuer_url: Url,
    /// Whether cookies get the `Secure` attribute (issuer is https).
    pub secure_cookies: bool,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: DatabaseUrl,
    /// Database kind.
    pub db_kind: DbKind,
    /// Master key file.
    pub master_key_file: PathBuf,
    /// Master key given inline (base64), if any.
    pub master_key_inline: Option<Secret<String>>,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// TLS certificate and key files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Honour `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// The `X-Forwarded-For` entry, counted from the end, that names the
    /// client: 0 when the header is not trusted.
    pub forwarded_for_hops: usize,
    /// Body limit.
    pub body_limit: usize,
    /// Request timeout.
    pub request_timeout: Duration,
    /// The p2p section.
    pub p2p: P2pConfig,
    /// p2p key file.
    pub p2p_key_file: PathBuf,
    /// The oidc section.
    pub oidc: OidcConfig,
    /// The login section.
    pub login: LoginConfig,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("issuer", &self.issuer)
            .field("data_dir", &self.data_dir)
            .field("database", &self.db_kind)
            .field("database_url", &self.database_url)
            .field("listen", &self.listen)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Gives a local issuer written with port 0 (`http://127.0.0.1:0`) the
    /// port the HTTP listener bound: tests and throwaway runs listen on
    /// port 0 and learn the port afterwards. Other issuers are kept.
    pub fn take_bound_port(&mut self, port: u16) {
        if self.issuer_url.port() != Some(0) || !is_local_host(&self.issuer_url) {
            return;
        }
        let mut url = self.issuer_url.clone();
        if url.set_port(Some(port)).is_ok() {
            self.issuer = url.as_str().trim_end_matches('/').to_string();
            self.issuer_url = url;
        }
    }
}

fn is_local_host(url: &Url) -> bool {
    matches!(
        url.host_str(),
        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
    )
}

impl Config {
    /// Checks every value and fills the derived defaults.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let issuer = self.issuer.trim_end_matches('/').to_string();
        let issuer_url =
            Url::parse(&issuer).map_err(|e| invalid("issuer", format!("not a URL: {e}")))?;
        match issuer_url.scheme() {
            "https" => {}
            "http" if is_local_host(&issuer_url) => {}
            "http" => {
                return Err(invalid(
                    "issuer",
                    "must be https unless the host is localhost",
                ));
            }
            _ => return Err(invalid("issuer", "must be an http(s) URL")),
        }
        if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
            return Err(invalid("issuer", "must not have a query or fragment"));
        }
        let data_dir = PathBuf::from(&self.data_dir);
        let database_url = if self.database_url.is_empty() {
            DatabaseUrl::new(format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("bridge.db").display()
            ))
        } else {
            self.database_url
        };
        let url = database_url.expose();
        let db_kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DbKind::Postgres
        } else {
            return Err(invalid(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        };
        let master_key_file = if self.master_key_file.is_empty() {
            data_dir.join("master.key")
        } else {
            PathBuf::from(&self.master_key_file)
        };
        let listen: SocketAddr = self
            .http
            .listen
            .parse()
            .map_err(|e| invalid("http.listen", format!("{e}")))?;
        let tls = match (self.http.tls_cert.is_empty(), self.http.tls_key.is_empty()) {
            (true, true) => None,
            (false, false) => Some((
                PathBuf::from(&self.http.tls_cert),
                PathBuf::from(&self.http.tls_key),
            )),
            _ => return Err(invalid("http.tls_cert", "tls_cert and tls_key go together")),
        };
        let body_limit = usize::try_from(self.http.body_limit_bytes)
            .ok()
            .filter(|b| (1024..=16 * 1024 * 1024).contains(b))
            .ok_or_else(|| invalid("http.body_limit_bytes", "must be between 1 KiB and 16 MiB"))?;
        if !(1..=8).contains(&self.http.forwarded_for_hops) {
            return Err(invalid(
                "http.forwarded_for_hops",
                "must be between 1 and 8",
            ));
        }
        if self.http.request_timeout_secs == 0 {
            return Err(invalid("http.request_timeout_secs", "must be at least 1"));
        }
        for a in self
            .p2p
            .listen
            .iter()
            .chain(&self.p2p.bootstrap)
            .chain(&self.p2p.external_addrs)
        {
            a.parse::<cyrcles_p2p::Multiaddr>()
                .map_err(|e| invalid("p2p", format!("{a}: {e}")))?;
        }
        let p2p_key_file = if self.p2p.key_file.is_empty() {
            data_dir.join("p2p.key")
        } else {
            PathBuf::from(&self.p2p.key_file)
        };
        let o = &self.oidc;
        if !(1..=600).contains(&o.code_ttl_secs) {
            return Err(invalid("oidc.code_ttl_secs", "must be between 1 and 600"));
        }
        for (key, v) in [
            ("oidc.access_token_ttl_secs", o.access_token_ttl_secs),
            ("oidc.refresh_token_ttl_secs", o.refresh_token_ttl_secs),
            ("oidc.id_token_ttl_secs", o.id_token_ttl_secs),
            ("oidc.session_ttl_secs", o.session_ttl_secs),
            (
                "oidc.session_check_interval_secs",
                o.session_check_interval_secs,
            ),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        let l = &self.login;
        if !(10..=cyrcles_core::login::MAX_CHALLENGE_TTL_SECS).contains(&l.challenge_ttl_secs) {
            return Err(invalid(
                "login.challenge_ttl_secs",
                "must be between 10 and 120",
            ));
        }
        for (key, v) in [
            (
                "login.max_pending_per_ego_per_ip",
                l.max_pending_per_ego_per_ip,
            ),
            ("login.max_pending_per_ego", l.max_pending_per_ego),
            ("login.starts_per_ip_per_minute", l.starts_per_ip_per_minute),
            (
                "login.starts_per_ego_per_ip_per_minute",
                l.starts_per_ego_per_ip_per_minute,
            ),
            (
                "login.interactions_per_ip_per_minute",
                l.interactions_per_ip_per_minute,
            ),
            ("login.max_interactions_per_ip", l.max_interactions_per_ip),
            ("login.max_interactions", l.max_interactions),
            ("login.pow_max_spent", l.pow_max_spent),
            ("login.max_cached_egos", l.max_cached_egos),
            (
                "oidc.registrations_per_ip_per_hour",
                o.registrations_per_ip_per_hour,
            ),
            ("oidc.max_dynamic_clients", o.max_dynamic_clients),
            (
                "oidc.authorizations_per_session_per_minute",
                o.authorizations_per_session_per_minute,
            ),
            (
                "oidc.max_grants_per_session_client",
                o.max_grants_per_session_client,
            ),
            (
                "oidc.session_check_concurrency",
                o.session_check_concurrency,
            ),
            ("oidc.session_check_max_egos", o.session_check_max_egos),
            (
                "oidc.max_pushed_requests_per_client",
                o.max_pushed_requests_per_client,
            ),
            ("oidc.max_pushed_requests", o.max_pushed_requests),
            ("oidc.pushes_per_ip_per_minute", o.pushes_per_ip_per_minute),
            ("oidc.max_dpop_proofs", o.max_dpop_proofs),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if l.max_pending_per_ego < l.max_pending_per_ego_per_ip {
            return Err(invalid(
                "login.max_pending_per_ego",
                "must be at least login.max_pending_per_ego_per_ip",
            ));
        }
        if l.max_interactions < l.max_interactions_per_ip {
            return Err(invalid(
                "login.max_interactions",
                "must be at least login.max_interactions_per_ip",
            ));
        }
        if !(1..=3_600).contains(&o.session_check_lookup_timeout_secs) {
            return Err(invalid(
                "oidc.session_check_lookup_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        if o.max_pushed_requests < o.max_pushed_requests_per_client {
            return Err(invalid(
                "oidc.max_pushed_requests",
                "must be at least oidc.max_pushed_requests_per_client",
            ));
        }
        if !(1..=600).contains(&o.pushed_request_ttl_secs) {
            return Err(invalid(
                "oidc.pushed_request_ttl_secs",
                "must be between 1 and 600",
            ));
        }
        if !(1..=600).contains(&o.dpop_max_age_secs) {
            return Err(invalid(
                "oidc.dpop_max_age_secs",
                "must be between 1 and 600",
            ));
        }
        if o.dpop_max_future_secs > 60 {
            return Err(invalid("oidc.dpop_max_future_secs", "at most 60"));
        }
        if o.unused_client_ttl_secs == 0 {
            return Err(invalid("oidc.unused_client_ttl_secs", "must be at least 1"));
        }
        if l.pow_difficulty > 28 {
            return Err(invalid("login.pow_difficulty", "at most 28 bits"));
        }
        let master_key_inline = (!self.master_key.expose().is_empty()).then_some(self.master_key);
        Ok(Settings {
            secure_cookies: issuer_url.scheme() == "https",
            issuer,
            issuer_url,
            data_dir,
            database_url,
            db_kind,
            master_key_file,
            master_key_inline,
            listen,
            tls,
            trust_forwarded_for: self.http.trust_forwarded_for,
            forwarded_for_hops: if self.http.trust_forwarded_for {
                usize::try_from(self.http.forwarded_for_hops).unwrap_or(1)
            } else {
                0
            },
            body_limit,
            request_timeout: Duration::from_secs(self.http.request_timeout_secs),
            p2p: self.p2p,
            p2p_key_file,
            oidc: self.oidc,
            login: self.login,
        })
    }
}

#[cfg(test)]
mod tests;
