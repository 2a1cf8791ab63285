//! A bridge, an agent peer and a relying party, for tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cyrcles_bridge::app::{Application, Options};
use cyrcles_bridge::config::Config;
use cyrcles_bridge::oidc::client::ClientMetadata;
use cyrcles_bridge::oidc::register::create_client;
use cyrcles_bridge::state::AppState;
use cyrcles_core::cbor::Encode;
use cyrcles_core::login::{ApprovedBy, DenyReason, LoginResponse};
use cyrcles_core::record::PeerEndpoint;
use cyrcles_core::record::builder;
use cyrcles_core::{SecretKey, UnixTime};
use cyrcles_p2p::{Clock, DhtMode, Keypair, ManualClock, Node, NodeConfig, NodeEvent, NodeHandle};
use cyrcles_testkit::{bounded, require_env, wait_until};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// A clock tests can move: a [`ManualClock`] (wall and monotonic time
/// together) read in the bridge's `i64` seconds.
#[derive(Clone)]
pub struct TestClock(pub ManualClock);

impl TestClock {
    pub fn new() -> Self {
        Self(ManualClock::starting_now())
    }
    pub fn advance(&self, secs: i64) {
        self.0
            .advance(Duration::from_secs(u64::try_from(secs).unwrap()));
    }
    pub fn now(&self) -> i64 {
        cyrcles_bridge::state::unix_secs(self.0.now())
    }
    /// The clock to give a bridge or a node.
    pub fn clock(&self) -> Clock {
        self.0.clock()
    }
}

/// Which database a test bridge uses.
#[derive(Clone, Debug)]
pub enum Db {
    /// A SQLite file in the bridge's data directory.
    Sqlite,
    /// A PostgreSQL database created for the test.
    Postgres(String),
}

/// Creates a fresh PostgreSQL database for one test, if the variable is
/// set. Under CI (`CI` set) it must be: a run that skipped PostgreSQL is
/// not green.
pub async fn postgres_db() -> Option<String> {
    let base = require_env("CYRCLES_TEST_POSTGRES_URL")?;
    use sqlx::Connection;
    let name = format!(
        "cyrcles_test_{}",
        cyrcles_bridge::random::id()
            .to_lowercase()
            .replace('-', "_")
    );
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to CYRCLES_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

pub struct TestBridge {
    pub issuer: String,
    pub state: AppState,
    pub p2p_addr: cyrcles_p2p::Multiaddr,
    pub clock: TestClock,
    pub dir: std::path::PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub struct BridgeOptions {
    pub db: Db,
    pub clock: TestClock,
    pub dir: Option<std::path::PathBuf>,
    pub env: Vec<(String, String)>,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        Self {
            db: Db::Sqlite,
            clock: TestClock::new(),
            dir: None,
            env: Vec::new(),
        }
    }
}

impl TestBridge {
    pub async fn start() -> TestBridge {
        Self::start_with(BridgeOptions::default()).await
    }

    pub async fn start_with(o: BridgeOptions) -> TestBridge {
        let dir = o.dir.clone().unwrap_or_else(|| {
            let d = std::env::temp_dir().join(format!(
                "cyrcles-bridge-test-{}",
                cyrcles_bridge::random::id()
            ));
            std::fs::create_dir_all(&d).unwrap();
            d
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let mut env: Vec<(String, String)> = vec![
            ("CYRCLES_BRIDGE_ISSUER".into(), issuer.clone()),
            ("CYRCLES_BRIDGE_DATA_DIR".into(), dir.display().to_string()),
            (
                "CYRCLES_BRIDGE_P2P_LISTEN".into(),
                "/ip4/127.0.0.1/tcp/0".into(),
            ),
            // Agents in tests are on loopback.
            (
                "CYRCLES_BRIDGE_P2P_DIAL_PRIVATE_ADDRS".into(),
                "true".into(),
            ),
            (
                "CYRCLES_BRIDGE_HTTP_LISTEN".into(),
                format!("127.0.0.1:{port}"),
            ),
            // Tests run many logins from one address.
            (
                "CYRCLES_BRIDGE_LOGIN_STARTS_PER_IP_PER_MINUTE".into(),
                "10000".into(),
            ),
            (
                "CYRCLES_BRIDGE_LOGIN_STARTS_PER_EGO_PER_IP_PER_MINUTE".into(),
                "10000".into(),
            ),
            (
                "CYRCLES_BRIDGE_LOGIN_MAX_PENDING_PER_EGO_PER_IP".into(),
                "3".into(),
            ),
            (
                "CYRCLES_BRIDGE_LOGIN_INTERACTIONS_PER_IP_PER_MINUTE".into(),
                "10000".into(),
            ),
            (
                "CYRCLES_BRIDGE_LOGIN_MAX_INTERACTIONS_PER_IP".into(),
                "5000".into(),
            ),
            (
                "CYRCLES_BRIDGE_OIDC_REGISTRATIONS_PER_IP_PER_HOUR".into(),
                "10000".into(),
            ),
            (
                "CYRCLES_BRIDGE_OIDC_AUTHORIZATIONS_PER_SESSION_PER_MINUTE".into(),
                "10000".into(),
            ),
        ];
        if let Db::Postgres(url) = &o.db {
            env.push(("CYRCLES_BRIDGE_DATABASE_URL".into(), url.clone()));
        }
        env.extend(o.env.clone());
        let settings = Config::load(None, env).unwrap().validate().unwrap();
        let clock = o.clock.clone();
        let app = Application::build(
            settings,
            Options {
                clock: clock.clock(),
                listener: Some(listener),
            },
        )
        .await
        .unwrap();
        let state = app.state().clone();
        let p2p_addr = app.p2p_addrs()[0].clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestBridge {
            issuer,
            state,
            p2p_addr,
            clock,
            dir,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the bridge and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Registers a client directly in the store.
    pub async fn client(&self, meta: Value) -> (String, Option<String>) {
        let meta: ClientMetadata = serde_json::from_value(meta).unwrap();
        let meta = meta.validate().unwrap();
        let c = create_client(
            &self.state.store,
            Some("Test Site".into()),
            meta,
            false,
            self.clock.now(),
        )
        .await
        .unwrap();
        (c.row.client_id, c.secret)
    }

    /// A confidential client (client_secret_basic, RS256, refresh).
    pub async fn confidential(&self) -> (String, String) {
        let (id, s) = self
            .client(json!({
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "post_logout_redirect_uris": ["http://127.0.0.1:9/bye"],
            }))
            .await;
        (id, s.unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// How the test agent answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Approves as the person would, with the match code.
    Approve,
    /// Approves on its own, saying how, whatever the challenge asks (an
    /// agent that ignores `confirm`).
    ApproveAs(ApprovedBy),
    /// Approves in the form that does not say how (an older agent).
    Legacy,
    Deny,
    /// Signs with a key that is not the ego's.
    WrongKey,
    /// Never answers.
    Silent,
    /// Holds the challenge until the test answers it with
    /// [`TestAgent::answer_held`].
    Hold,
    /// Approves only challenges whose client address is this one (as a
    /// person who types the code of their own login only); leaves the
    /// others unanswered.
    ApproveOnlyFrom(std::net::IpAddr),
}

/// Challenges held by [`Answer::Hold`].
pub type Held = Arc<
    Mutex<
        Vec<(
            cyrcles_core::login::LoginChallenge,
            cyrcles_p2p::Responder<LoginResponse>,
        )>,
    >,
>;

/// An agent peer: holds an ego, publishes its record with its own address
/// as endpoint, and answers login challenges.
pub struct TestAgent {
    pub node: NodeHandle,
    pub ego_id: cyrcles_core::EgoId,
    pub keys: Arc<Mutex<builder::NewEgo>>,
    pub answer: Arc<Mutex<Answer>>,
    pub challenges: Arc<Mutex<Vec<cyrcles_core::login::LoginChallenge>>>,
    pub rng: Arc<Mutex<ChaCha20Rng>>,
    pub held: Held,
}

impl TestAgent {
    pub async fn start(bridge: &TestBridge, seed: u64) -> TestAgent {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[9] = 0xa9;
        let mut c = NodeConfig::new(Keypair::ed25519_from_bytes(bytes).unwrap());
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        c.bootstrap = vec![bridge.p2p_addr.clone()];
        c.mode = DhtMode::Auto;
        c.dial_private_addrs = true;
        // A real agent sees a bridge a few times a minute; the tests and the
        // load generator send it far more.
        c.limits.requests_per_peer_per_minute = 1_000_000;
        c.clock = bridge.clock.clock();
        let (node, events) = Node::spawn(c).await.unwrap();
        let status = node.status().await.unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let now = bridge.clock.0.now();
        let peer = PeerEndpoint {
            peer_id: node.peer_id().to_bytes(),
            addrs: status.listen_addrs.iter().map(|a| a.to_vec()).collect(),
        };
        let keys = builder::create_ego(
            &mut rng,
            now,
            builder::DEFAULT_CERT_VALIDITY_SECS,
            vec![peer],
            86_400,
        )
        .unwrap();
        let ego_id = keys.record.ego_id();
        let agent = TestAgent {
            node,
            ego_id,
            keys: Arc::new(Mutex::new(keys)),
            answer: Arc::new(Mutex::new(Answer::Approve)),
            challenges: Arc::new(Mutex::new(Vec::new())),
            rng: Arc::new(Mutex::new(rng)),
            held: Arc::new(Mutex::new(Vec::new())),
        };
        agent.publish().await;
        agent.serve(events);
        agent
    }

    pub fn ego_text(&self) -> String {
        self.ego_id.to_string()
    }

    pub fn set_answer(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }

    /// How many challenges [`Answer::Hold`] holds.
    pub fn held_count(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Approves (or denies) every held challenge.
    pub fn answer_held(&self, approve: bool) -> usize {
        let held: Vec<_> = self.held.lock().unwrap().drain(..).collect();
        let k = self.keys.lock().unwrap();
        let n = held.len();
        for (challenge, responder) in held {
            responder.respond(if approve {
                challenge.approve(&k.ego, k.record.cert.body.seq, ApprovedBy::Person)
            } else {
                LoginResponse::Denied(DenyReason::User)
            });
        }
        n
    }

    /// Publishes the current record (the bridge's node stores it).
    pub async fn publish(&self) {
        let bytes = self.keys.lock().unwrap().record.to_cbor();
        wait_until(90, "publish", || async {
            matches!(self.node.publish(bytes.clone()).await, Ok(p) if p.stored_at > 0)
        })
        .await;
    }

    /// A new ego key certified by the whole circle key, republished.
    pub async fn rotate(&self, now: i64) {
        self.rotate_for(now, builder::DEFAULT_CERT_VALIDITY_SECS)
            .await
    }

    /// The same, with a certificate valid `validity_secs`.
    pub async fn rotate_for(&self, now: i64, validity_secs: u64) {
        {
            let mut k = self.keys.lock().unwrap();
            let mut rng = self.rng.lock().unwrap();
            let new_key = SecretKey::generate(&mut *rng);
            let k = &mut *k;
            // The new certificate drops the endpoints the old key signed.
            let peers = k.record.endpoints.as_ref().map(|e| e.body.peers.clone());
            let circle = &k.circle;
            k.record
                .certify_with(
                    circle,
                    &mut *rng,
                    new_key.public(),
                    UnixTime::from_secs(now as u64),
                    validity_secs,
                )
                .unwrap();
            k.ego = new_key;
            if let Some(peers) = peers {
                k.record
                    .set_endpoints(&k.ego, peers, UnixTime::from_secs(now as u64), 86_400)
                    .unwrap();
            }
        }
        self.publish().await;
    }

    /// A recovery: a new ego key certified with the epoch raised by one (as
    /// a threshold of members sign it; here the whole circle key), with
    /// endpoints signed by it, republished.
    pub async fn recover(&self, now: i64) {
        {
            let mut k = self.keys.lock().unwrap();
            let mut rng = self.rng.lock().unwrap();
            let new_key = SecretKey::generate(&mut *rng);
            let k = &mut *k;
            let peers = k.record.endpoints.as_ref().map(|e| e.body.peers.clone());
            let at = UnixTime::from_secs(now as u64);
            let cert =
                k.record
                    .recovery_cert(new_key.public(), at, builder::DEFAULT_CERT_VALIDITY_SECS);
            let signed = builder::sign_with_circle(&k.circle, &mut *rng, cert);
            k.record.set_cert(signed).unwrap();
            k.ego = new_key;
            if let Some(peers) = peers {
                k.record.set_endpoints(&k.ego, peers, at, 86_400).unwrap();
            }
        }
        self.publish().await;
    }

    /// Revokes the ego (whole circle key) and republishes.
    pub async fn revoke(&self, now: i64) {
        {
            let mut k = self.keys.lock().unwrap();
            let mut rng = self.rng.lock().unwrap();
            let k = &mut *k;
            k.record
                .revoke_with(
                    &k.circle,
                    &mut *rng,
                    UnixTime::from_secs(now as u64),
                    86_400,
                )
                .unwrap();
        }
        self.publish().await;
    }

    fn serve(&self, mut events: tokio::sync::mpsc::Receiver<NodeEvent>) {
        let keys = self.keys.clone();
        let answer = self.answer.clone();
        let seen = self.challenges.clone();
        let held = self.held.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let NodeEvent::Login {
                    challenge,
                    responder,
                    ..
                } = e
                {
                    seen.lock().unwrap().push(challenge.clone());
                    let mut mode = *answer.lock().unwrap();
                    if let Answer::ApproveOnlyFrom(ip) = mode {
                        let from = challenge.params().client_ip.as_deref();
                        mode = if from == Some(ip.to_string().as_str()) {
                            Answer::Approve
                        } else {
                            Answer::Silent
                        };
                    }
                    if mode == Answer::Hold {
                        held.lock().unwrap().push((challenge, responder));
                        continue;
                    }
                    let response = {
                        let k = keys.lock().unwrap();
                        match mode {
                            Answer::Approve => Some(challenge.approve(
                                &k.ego,
                                k.record.cert.body.seq,
                                ApprovedBy::Person,
                            )),
                            Answer::ApproveAs(by) => {
                                Some(challenge.approve(&k.ego, k.record.cert.body.seq, by))
                            }
                            Answer::Legacy => {
                                Some(LoginResponse::Approved(cyrcles_core::login::Approval {
                                    ego_pk: k.ego.public(),
                                    cert_seq: k.record.cert.body.seq,
                                    approved_by: None,
                                    sig: challenge.sign(&k.ego),
                                }))
                            }
                            Answer::Deny => Some(LoginResponse::Denied(DenyReason::User)),
                            Answer::WrongKey => {
                                let other = SecretKey::from_seed(&[0x66; 32]);
                                let LoginResponse::Approved(mut a) = challenge.approve(
                                    &other,
                                    k.record.cert.body.seq,
                                    ApprovedBy::Person,
                                ) else {
                                    unreachable!()
                                };
                                a.ego_pk = k.ego.public();
                                Some(LoginResponse::Approved(a))
                            }
                            Answer::Silent | Answer::Hold | Answer::ApproveOnlyFrom(_) => None,
                        }
                    };
                    match response {
                        Some(r) => responder.respond(r),
                        // Hold the responder until the challenge expires.
                        None => {
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_secs(130)).await;
                                drop(responder);
                            });
                        }
                    }
                }
            }
        });
    }
}

/// A browser: cookies, no automatic redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An HTTP client for the RP library (no redirects, as it requires).
pub fn rp_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header on {}", res.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The value of `<input name="NAME" value="…">` in a page.
pub fn input(html: &str, name: &str) -> Option<String> {
    let pat = format!("name=\"{name}\" value=\"");
    let start = html.find(&pat)? + pat.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&amp;", "&")
            .replace("&#39;", "'")
            .replace("&quot;", "\""),
    )
}

/// Query parameters of a URL.
pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Opens an authorization URL in `b` and submits the ego form; returns
/// the interaction path, the wait page path and the form's CSRF token.
/// Environment variables for a bridge, from `(name, value)` pairs.
pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Follows an authorization URL to its login page: the interaction's
/// path and the page.
pub async fn open_page(bridge: &TestBridge, b: &reqwest::Client, url: &str) -> (String, String) {
    let ix = location(&b.get(url).send().await.unwrap());
    let page = b
        .get(bridge.url(&ix))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (ix, page)
}

/// `GET url` in browser `b`: the JSON body.
pub async fn get_json(b: &reqwest::Client, url: &str) -> Value {
    b.get(url).send().await.unwrap().json().await.unwrap()
}

pub async fn start_login(
    bridge: &TestBridge,
    b: &reqwest::Client,
    url: &str,
    ego: &str,
) -> (String, reqwest::Response, String) {
    let (ix, page) = open_page(bridge, b, url).await;
    let csrf = input(&page, "csrf").unwrap();
    let res = b
        .post(bridge.url(&format!("{ix}/ego")))
        .form(&[("csrf", csrf.as_str()), ("ego_id", ego)])
        .send()
        .await
        .unwrap();
    (ix, res, csrf)
}

/// Where a browser login ends.
#[derive(Debug)]
pub enum Outcome {
    /// Redirected to the client with these parameters.
    Redirect(HashMap<String, String>),
    /// A page (status, HTML).
    Page(u16, String),
}

impl Outcome {
    pub fn code(&self) -> String {
        match self {
            Outcome::Redirect(q) => q
                .get("code")
                .cloned()
                .unwrap_or_else(|| panic!("no code: {q:?}")),
            Outcome::Page(s, h) => panic!("expected a redirect, got a {s} page: {h}"),
        }
    }
    pub fn params(&self) -> &HashMap<String, String> {
        match self {
            Outcome::Redirect(q) => q,
            Outcome::Page(s, h) => panic!("expected a redirect, got a {s} page: {h}"),
        }
    }
}

/// Follows an authorization URL in `browser` as a person would: types the
/// ego id, waits for the agent, consents. Returns where it ends.
pub async fn browse(
    bridge: &TestBridge,
    browser: &reqwest::Client,
    auth_url: &str,
    ego: &str,
) -> Outcome {
    bounded(120, "browser login", async {
        let mut url = auth_url.to_string();
        for _ in 0..12 {
            let res = browser.get(&url).send().await.unwrap();
            let status = res.status().as_u16();
            if status == 303 || status == 302 {
                let next = location(&res);
                if next.starts_with("http://127.0.0.1:9/") {
                    return Outcome::Redirect(query(&next));
                }
                url = if next.starts_with('/') {
                    bridge.url(&next)
                } else {
                    next
                };
                continue;
            }
            let html = res.text().await.unwrap();
            if status != 200 {
                return Outcome::Page(status, html);
            }
            if html.contains("name=\"decision\" value=\"allow\"") {
                let csrf = input(&html, "csrf").unwrap();
                let action = url.replace(&bridge.issuer, "");
                let res = browser
                    .post(bridge.url(&format!("{action}/consent")))
                    .form(&[("csrf", csrf.as_str()), ("decision", "allow")])
                    .send()
                    .await
                    .unwrap();
                let next = location(&res);
                if next.starts_with("http://127.0.0.1:9/") {
                    return Outcome::Redirect(query(&next));
                }
                url = bridge.url(&next);
                continue;
            }
            if html.contains("name=\"ego_id\"") {
                let csrf = input(&html, "csrf").unwrap();
                let action = url.replace(&bridge.issuer, "");
                let res = browser
                    .post(bridge.url(&format!("{action}/ego")))
                    .form(&[("csrf", csrf.as_str()), ("ego_id", ego)])
                    .send()
                    .await
                    .unwrap();
                if res.status().as_u16() != 303 {
                    let s = res.status().as_u16();
                    return Outcome::Page(s, res.text().await.unwrap());
                }
                let wait = bridge.url(&location(&res));
                // Wait as the page's script does (long polling).
                wait_until(100, "the login to be answered", || async {
                    let s: Value = browser
                        .get(format!("{wait}/status?wait=20"))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    s["status"] != "pending"
                })
                .await;
                url = format!("{wait}/continue");
                continue;
            }
            return Outcome::Page(status, html);
        }
        panic!("too many steps")
    })
    .await
}

/// A relying party on the openidconnect crate.
pub struct Rp {
    pub client: openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    pub http: reqwest::Client,
    pub metadata: CoreProviderMetadata,
}

impl Rp {
    pub async fn discover(bridge: &TestBridge, id: &str, secret: Option<&str>) -> Rp {
        let http = rp_http();
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(bridge.issuer.clone()).unwrap(),
            &http,
        )
        .await
        .unwrap();
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(id.to_string()),
            secret.map(|s| ClientSecret::new(s.to_string())),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());
        Rp {
            client,
            http,
            metadata,
        }
    }

    /// Exchanges a code (with its PKCE verifier) at the token endpoint.
    pub async fn exchange(
        &self,
        code: String,
        verifier: PkceCodeVerifier,
    ) -> Result<openidconnect::core::CoreTokenResponse, String> {
        self.client
            .exchange_code(openidconnect::AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// Revokes a token at the revocation endpoint (RFC 7009), as the client.
    pub async fn revoke(
        &self,
        bridge: &TestBridge,
        token: &str,
        id: &str,
        secret: &str,
    ) -> reqwest::StatusCode {
        self.http
            .post(bridge.url("/revoke"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .status()
    }

    /// An authorization URL with PKCE and a nonce, and extra parameters.
    pub fn auth_url(
        &self,
        scopes: &[&str],
        extra: &[(&str, &str)],
    ) -> (String, CsrfToken, Nonce, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in scopes {
            req = req.add_scope(Scope::new(s.to_string()));
        }
        for (k, v) in extra {
            req = req.add_extra_param(*k, *v);
        }
        let (url, csrf, nonce) = req.url();
        (url.to_string(), csrf, nonce, verifier)
    }
}
