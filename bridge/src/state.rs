//! What every request handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cyrcles_core::UnixTime;
use cyrcles_core::record::SignatureCache;
use cyrcles_p2p::NodeHandle;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::jose::MasterKey;
use crate::keys::KeyRing;
use crate::limits::{LimitStore, Limits, Rate};
use crate::load::LoadMeter;
use crate::metrics::HttpMetrics;
use crate::oidc::client::Client;
use crate::pow::{PowChallenge, PowError, PowGate};
use crate::store::{Store, StoreError};

/// The bridge's clock is its node's (one type: wall and monotonic time).
pub use cyrcles_p2p::Clock;

/// A time in Unix seconds as the bridge's store, tokens and limits hold
/// it (`i64`; the far future saturates).
pub fn unix_secs(t: UnixTime) -> i64 {
    i64::try_from(t.secs()).unwrap_or(i64::MAX)
}

/// Rate keys a bridge on SQLite keeps in memory (each a few hundred bytes).
const MAX_RATE_KEYS: usize = 50_000;

/// How long a client stays cached (so that an update or removal made by
/// another instance is seen within this time).
const CLIENT_CACHE_TTL: Duration = Duration::from_secs(5);

/// The shared state.
#[allow(missing_debug_implementations)]
pub struct Inner {
    /// Validated configuration.
    pub settings: Settings,
    /// The database.
    pub store: Store,
    /// Signing keys.
    pub keys: KeyRing,
    /// The master key.
    pub master: Arc<MasterKey>,
    /// The p2p node.
    pub node: NodeHandle,
    /// HTTP client for back-channel logout to clients the operator
    /// registered.
    pub http: reqwest::Client,
    /// Back-channel logout targets of dynamically registered clients: the
    /// rule and the client.
    pub strangers: crate::oidc::outbound::StrangerTargets,
    /// The clock (wall time for the protocol, monotonic time for the
    /// client cache and the shared limits' epoch cache).
    pub clock: Clock,
    /// Key of pairwise subject identifiers.
    pub pairwise_key: Zeroizing<[u8; 32]>,
    /// Key of the session ids each client sees.
    pub sid_key: Zeroizing<[u8; 32]>,
    /// Key of signed CSRF tokens that are not tied to a stored row.
    pub csrf_key: Zeroizing<[u8; 32]>,
    /// Rate limits and spent proof-of-work tokens: in memory on SQLite,
    /// in the database (shared by every instance) on PostgreSQL.
    pub limits: Limits,
    /// Login starts per minute, to switch the proof-of-work gate on.
    pub load: LoadMeter,
    /// The proof-of-work gate.
    pub pow: PowGate,
    /// HTTP metrics.
    pub metrics: HttpMetrics,
    /// Signatures already verified (ego records).
    pub sigs: Mutex<SignatureCache>,
    /// The discovery document.
    pub discovery: String,
    /// Browsers waiting on challenges.
    pub watch: crate::login::watch::Watch,
    /// When the egos of live sessions were last checked.
    pub session_checks: crate::tasks::SessionChecks,
    clients: Mutex<HashMap<String, (Client, Instant)>>,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

/// The parts `AppState::new` needs.
#[allow(missing_debug_implementations)]
pub struct Parts {
    /// Settings.
    pub settings: Settings,
    /// Store.
    pub store: Store,
    /// Keys.
    pub keys: KeyRing,
    /// Master key.
    pub master: Arc<MasterKey>,
    /// Node.
    pub node: NodeHandle,
    /// Clock.
    pub clock: Clock,
    /// Discovery document.
    pub discovery: String,
}

impl AppState {
    /// Assembles the state.
    pub fn new(p: Parts) -> Result<Self, reqwest::Error> {
        let login = &p.settings.login;
        let pow = PowGate::new(
            *p.master.derive("pow"),
            login.pow_difficulty,
            crate::pow::DEFAULT_MAX_AGE_SECS,
            u64::from(login.pow_max_spent),
        );
        // reqwest is built without a default TLS crypto provider; use ring,
        // which the rest of the bridge uses (a no-op if one is installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let strangers = crate::oidc::outbound::StrangerTargets::new(
            p.settings.oidc.private_backchannel_targets,
            &http,
        )?;
        Ok(AppState(Arc::new(Inner {
            limits: match p.store.kind() {
                crate::config::DbKind::Sqlite => Limits::memory(MAX_RATE_KEYS),
                crate::config::DbKind::Postgres => Limits::shared(p.store.clone(), p.clock.clone()),
            },
            load: LoadMeter::new(60, login.pow_threshold_per_minute),
            pow,
            pairwise_key: p.master.derive("pairwise-subject"),
            sid_key: p.master.derive("client-session-id"),
            csrf_key: p.master.derive("csrf"),
            metrics: HttpMetrics::new(),
            sigs: Mutex::new(SignatureCache::new(10_000)),
            http,
            strangers,
            settings: p.settings,
            store: p.store,
            keys: p.keys,
            master: p.master,
            node: p.node,
            clock: p.clock,
            discovery: p.discovery,
            watch: crate::login::watch::Watch::default(),
            session_checks: crate::tasks::SessionChecks::default(),
            clients: Mutex::new(HashMap::new()),
        })))
    }

    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        unix_secs(self.clock.now())
    }

    /// Counts one event for `key` against `rate`: `Ok(Ok(()))`, or
    /// `Ok(Err(seconds to wait))`.
    pub async fn rate(&self, key: &str, rate: Rate) -> Result<Result<(), u64>, StoreError> {
        self.limits.hit(key, rate, self.now()).await
    }

    /// Whether login starts must carry a proof of work now: always when
    /// the threshold is 0, otherwise when the last minute's starts exceed it.
    pub fn pow_required(&self, now: i64) -> bool {
        self.settings.login.pow_threshold_per_minute == 0
            || self.load.is_hot(u64::try_from(now).unwrap_or(0))
    }

    /// A proof-of-work challenge for a login form, when the gate is on.
    pub async fn pow_challenge(&self, now: i64) -> Result<Option<PowChallenge>, StoreError> {
        if !self.pow_required(now) {
            return Ok(None);
        }
        let epoch = self.limits.pow_epoch().await?;
        Ok(Some(
            self.pow.challenge(u64::try_from(now).unwrap_or(0), epoch),
        ))
    }

    /// Checks a solution of the gate's puzzle and spends its token (in the
    /// store every instance shares, on PostgreSQL).
    pub async fn pow_verify(
        &self,
        token: &str,
        solution: &str,
        now: i64,
    ) -> Result<Result<(), PowError>, StoreError> {
        self.pow
            .verify(
                &self.limits,
                token,
                solution,
                u64::try_from(now).unwrap_or(0),
            )
            .await
    }

    /// A client by id, from a short-lived cache.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        if client_id.len() > 256 {
            return Ok(None);
        }
        {
            let cache = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((c, at)) = cache.get(client_id)
                && self.clock.since(*at) < CLIENT_CACHE_TTL
            {
                return Ok(Some(c.clone()));
            }
        }
        let Some(row) = self.store.get_client(client_id).await? else {
            return Ok(None);
        };
        let client = Client::from_row(row)?;
        let mut cache = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(
            client_id.to_string(),
            (client.clone(), self.clock.instant()),
        );
        Ok(Some(client))
    }

    /// Drops a client from the cache (after an update or removal here).
    pub fn forget_client(&self, client_id: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(client_id);
    }

    /// The session id `client_id` sees for the bridge session `sid` (in ID
    /// and logout tokens): one per client, so that two sites cannot link
    /// their users by comparing `sid`s. base64url(HMAC-SHA256(sid key, sid
    /// ‖ 0x00 ‖ client id)), truncated to 128 bits.
    pub fn client_sid(&self, sid: &str, client_id: &str) -> String {
        let tag = keyed_tag(&self.sid_key, sid, client_id);
        crate::base64url::encode(tag.as_ref().get(..16).unwrap_or_default())
    }

    /// The subject identifier `client` sees for `ego_id`: the ego id itself
    /// for public-subject clients, otherwise
    /// base64url(HMAC-SHA256(pairwise key, sector ‖ 0x00 ‖ ego id)).
    pub fn subject(&self, client: &Client, ego_id: &str) -> String {
        if !client.pairwise {
            return ego_id.to_string();
        }
        crate::base64url::encode(keyed_tag(&self.pairwise_key, &client.sector, ego_id).as_ref())
    }

    /// A CSRF token for `purpose` and `value`, verifiable without storage.
    pub fn csrf_token(&self, purpose: &str, value: &str) -> String {
        crate::base64url::encode(keyed_tag(&self.csrf_key, purpose, value).as_ref())
    }

    /// Checks a token made by [`AppState::csrf_token`].
    pub fn check_csrf(&self, purpose: &str, value: &str, token: &str) -> bool {
        crate::crypto::ct_eq(self.csrf_token(purpose, value).as_bytes(), token.as_bytes())
    }
}

/// HMAC-SHA256(`key`, `a` ‖ 0x00 ‖ `b`): the derivation of subjects, client
/// session ids and stateless CSRF tokens.
fn keyed_tag(key: &[u8; 32], a: &str, b: &str) -> ring::hmac::Tag {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(a.as_bytes());
    ctx.update(&[0]);
    ctx.update(b.as_bytes());
    ctx.sign()
}
