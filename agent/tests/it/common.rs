//! The test harness: temporary homes, the real `cyrcles` binary as a
//! daemon process and as CLI commands, and a bridge-like libp2p peer that
//! resolves egos and sends login challenges.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cyrcles_core::login::{ChallengeParams, LoginChallenge, LoginResponse};
use cyrcles_core::record::VerifiedEgo;
use cyrcles_core::{EgoId, UnixTime};
use cyrcles_p2p::{
    Clock, DhtMode, Keypair, Multiaddr, Node, NodeConfig, NodeHandle, PeerId, RequestError,
};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_cyrcles");
pub const ISSUER: &str = "https://bridge.test";

/// Runs `f`, failing the test if it takes longer than `secs`.
pub async fn bounded<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {secs} s"))
}

/// A directory under /tmp (short, for the socket path), removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "cyt-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A clock tests move by hand (wall and monotonic time together).
pub use cyrcles_p2p::ManualClock;

/// What a CLI command printed and returned.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Asserts success and returns the JSON output.
    pub fn ok(&self) -> Value {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self.json()
    }
}

/// Runs `cyrcles --home HOME ARGS…`.
pub async fn cli(home: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("CYRCLES_HOME")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap()
        .into()
}

/// The `cyrcles daemon` process of a home.
#[derive(Debug)]
pub struct Agent {
    pub home: PathBuf,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<tokio::process::Child>,
    _dir: Option<TempDir>,
}

impl Agent {
    /// Starts a daemon on a new home, joined to `bootstrap`.
    pub async fn start(bootstrap: Option<&Multiaddr>) -> Agent {
        Self::start_with_env(bootstrap, Vec::new()).await
    }

    /// Starts a daemon with extra environment variables.
    pub async fn start_with_env(
        bootstrap: Option<&Multiaddr>,
        env: Vec<(String, String)>,
    ) -> Agent {
        let dir = TempDir::new();
        let mut a = Agent {
            home: dir.path().join("home"),
            log: dir.path().join("daemon.log"),
            env,
            child: None,
            _dir: Some(dir),
        };
        a.spawn(bootstrap, &[]).await;
        a
    }

    /// Starts a daemon on a new home holding `config` as its config.toml.
    pub async fn start_with_config(bootstrap: Option<&Multiaddr>, config: &str) -> Agent {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(home.join("config.toml"), config).unwrap();
        let mut a = Agent {
            home,
            log: dir.path().join("daemon.log"),
            env: Vec::new(),
            child: None,
            _dir: Some(dir),
        };
        a.spawn(bootstrap, &[]).await;
        a
    }

    /// An agent on an existing home, not started yet.
    pub fn on_home(home: PathBuf, log: PathBuf) -> Agent {
        Agent {
            home,
            log,
            env: Vec::new(),
            child: None,
            _dir: None,
        }
    }

    /// Starts the daemon process on this home with extra flags; waits
    /// until it answers.
    pub async fn spawn(&mut self, bootstrap: Option<&Multiaddr>, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("--home")
            .arg(&self.home)
            .arg("daemon")
            .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--dial-private-addrs"])
            .args(extra)
            .env_remove("CYRCLES_HOME")
            .env("CYRCLES_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(b) = bootstrap {
            cmd.arg("--bootstrap").arg(b.to_string());
        }
        self.child = Some(cmd.spawn().unwrap());
        let home = self.home.clone();
        bounded(20, "daemon start", async {
            loop {
                if cli(&home, &["status"]).await.code == 0 {
                    return;
                }
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!(
                        "the daemon exited ({status}): {}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }

    pub async fn cli(&self, args: &[&str]) -> Output {
        cli(&self.home, args).await
    }

    /// `cyrcles --json ARGS…`, asserting success.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        cli(&self.home, &all).await.ok()
    }

    /// Creates an ego; returns its id.
    pub async fn create(&self, name: &str) -> EgoId {
        let v = self.json(&["ego", "create", name]).await;
        v["ego_id"].as_str().unwrap().parse().unwrap()
    }

    /// Stops the daemon with `cyrcles stop` and waits for the process.
    pub async fn stop(&mut self) {
        let out = self.cli(&["stop"]).await;
        assert_eq!(out.code, 0, "{out:?}");
        let mut child = self.child.take().unwrap();
        let status = bounded(20, "daemon stop", child.wait()).await.unwrap();
        assert!(status.success(), "the daemon exited with {status}");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `requests` lists `n` requests; returns them.
    pub async fn wait_requests(&self, n: usize) -> Vec<Value> {
        bounded(20, "requests to arrive", async {
            loop {
                let v = self.json(&["requests"]).await;
                let list = v["requests"].as_array().unwrap().clone();
                if list.len() >= n {
                    return list;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }
}

/// A bridge's view of the network: a DHT server node that resolves egos
/// and sends login challenges, as `cyrcles-bridge` does.
#[derive(Clone)]
pub struct Bridge {
    pub node: NodeHandle,
    pub addr: Multiaddr,
    pub clock: Clock,
}

impl Bridge {
    pub async fn start(clock: Clock) -> Bridge {
        let (bridge, mut events) = Self::start_with_events(clock, None).await;
        // A bridge receives no requests here; drain its events.
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        bridge
    }

    /// A DHT server node on loopback, joined through `bootstrap`, whose
    /// events the caller handles (a stranger or a squatter in attack
    /// tests).
    pub async fn start_with_events(
        clock: Clock,
        bootstrap: Option<&Multiaddr>,
    ) -> (Bridge, tokio::sync::mpsc::Receiver<cyrcles_p2p::NodeEvent>) {
        let mut c = NodeConfig::new(Keypair::generate_ed25519());
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        c.bootstrap = bootstrap.into_iter().cloned().collect();
        c.dial_private_addrs = true;
        c.mode = DhtMode::Server;
        c.clock = clock.clone();
        let (node, events) = Node::spawn(c).await.unwrap();
        let listen = node.status().await.unwrap().listen_addrs[0].clone();
        let addr = listen.with(cyrcles_p2p::multiaddr::Protocol::P2p(node.peer_id()));
        (Bridge { node, addr, clock }, events)
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Resolves an ego until a record matching `pred` is found.
    pub async fn resolve_where(
        &self,
        ego: EgoId,
        pred: impl Fn(&VerifiedEgo) -> bool,
    ) -> VerifiedEgo {
        // Generous: on a loaded machine a new node may take a while to
        // join and publish.
        bounded(60, "resolving the ego", async {
            loop {
                if let Ok(found) = self.node.get(ego).await
                    && pred(&found.ego)
                {
                    return found.ego;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
    }

    pub async fn resolve(&self, ego: EgoId) -> VerifiedEgo {
        self.resolve_where(ego, |_| true).await
    }

    pub fn challenge(&self, ego: EgoId, client: &str, code: u8) -> LoginChallenge {
        self.challenge_from(ego, client, code, "203.0.113.7")
    }

    /// A challenge for `client` at [`ISSUER`] from a browser at `ip`.
    pub fn challenge_from(&self, ego: EgoId, client: &str, code: u8, ip: &str) -> LoginChallenge {
        let now = self.now();
        LoginChallenge::new(ChallengeParams {
            issuer: ISSUER.into(),
            client_id: client.into(),
            client_name: format!("The {client} site"),
            redirect_origin: format!("https://{client}.example"),
            ego_id: ego,
            nonce: rand_nonce(),
            issued_at: now,
            expires_at: now.plus(120),
            match_code: code,
            client_ip: Some(ip.into()),
            confirm: false,
        })
        .unwrap()
    }

    /// Sends a challenge to the ego's endpoints (from `record`).
    pub async fn login(
        &self,
        record: &VerifiedEgo,
        challenge: &LoginChallenge,
    ) -> Result<LoginResponse, RequestError> {
        let (id, addrs) = self.target(record);
        self.node.login(id, addrs, challenge).await
    }

    /// The first peer a record's endpoints publish, with its addresses.
    pub fn target(&self, record: &VerifiedEgo) -> (PeerId, Vec<Multiaddr>) {
        let ep = record
            .live_endpoints(self.now())
            .expect("the record has endpoints");
        let peer = &ep.peers[0];
        let id = PeerId::from_bytes(&peer.peer_id).unwrap();
        let addrs = peer
            .addrs
            .iter()
            .map(|a| Multiaddr::try_from(a.clone()).unwrap())
            .collect();
        (id, addrs)
    }
}

fn rand_nonce() -> Vec<u8> {
    use rand_core::{OsRng, RngCore};
    let mut n = vec![0u8; 16];
    OsRng.fill_bytes(&mut n);
    n
}
