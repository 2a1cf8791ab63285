//! The bridge under siege: `cyrcles-bridge serve` in a child process (this
//! example re-executed with [`MARKER`] set), so that the RSS measured is the
//! bridge's alone. It runs on its production defaults except what one
//! machine needs: its own data directory, HTTP and p2p on loopback port 0
//! (the addresses bound are read from what it prints), and, with
//! `--db postgres`, a fresh PostgreSQL database.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use cyrcles_p2p::multiaddr::Protocol;
use cyrcles_p2p::{Multiaddr, PeerId};
use cyrcles_testkit::{Poll, Printed};
use tokio::process::{Child, ChildStdin, Command};

/// Set in the child's environment: run the bridge instead of the siege.
pub const MARKER: &str = "CYRCLES_SIEGE_BRIDGE";

/// The child's `main`: exactly what the `cyrcles-bridge` binary does, plus
/// a thread that ends the process when the parent goes away (the parent
/// holds the child's stdin open and never writes to it).
pub fn child_main() -> ExitCode {
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        loop {
            match std::io::stdin().read(&mut buf) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
        }
    });
    cyrcles_bridge::cli::main()
}

/// Which database the bridge uses.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite,
    /// The URL of a database created for this run.
    Postgres(String),
}

pub struct Bridge {
    child: Child,
    stdin: Option<ChildStdin>,
    pub pid: u32,
    pub issuer: String,
    /// The p2p listen address, ending in `/p2p/<id>`.
    pub p2p_addr: Multiaddr,
    /// The same without the peer id.
    pub p2p_tcp: Multiaddr,
    pub p2p_socket: SocketAddr,
    pub peer_id: PeerId,
    pub dir: PathBuf,
    pub db: Db,
    pg: Option<sqlx::PgPool>,
    http: reqwest::Client,
}

impl Bridge {
    pub async fn start(db: Db) -> Bridge {
        let dir = std::env::temp_dir().join(format!(
            "cyrcles-siege-{}",
            cyrcles_bridge::random::id().to_lowercase()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // Port 0 everywhere: the bridge takes the ports it bound (a local
        // issuer on port 0 takes the HTTP port) and prints them.
        let mut env: Vec<(String, String)> = vec![
            ("CYRCLES_BRIDGE_ISSUER".into(), "http://127.0.0.1:0".into()),
            ("CYRCLES_BRIDGE_DATA_DIR".into(), dir.display().to_string()),
            ("CYRCLES_BRIDGE_HTTP_LISTEN".into(), "127.0.0.1:0".into()),
            (
                "CYRCLES_BRIDGE_P2P_LISTEN".into(),
                "/ip4/127.0.0.1/tcp/0".into(),
            ),
        ];
        if let Db::Postgres(url) = &db {
            env.push(("CYRCLES_BRIDGE_DATABASE_URL".into(), url.clone()));
        }
        let log_path = dir.join("bridge.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        // Nothing of the caller's bridge configuration leaks in.
        for (k, _) in std::env::vars() {
            if k.starts_with("CYRCLES_BRIDGE_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .env(MARKER, "1")
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start the bridge process");
        let stdin = child.stdin.take();
        let pid = child.id().expect("the bridge process runs");
        let printed = Printed::watch(
            child.stderr.take().expect("the bridge's standard error"),
            log_path,
            &[SERVING, LISTENING, DHT],
        );
        let serving = printed.after(SERVING, "the bridge's issuer").await;
        let issuer = serving
            .split_once(" serving ")
            .unwrap_or_else(|| panic!("no issuer in {serving:?}"))
            .1
            .to_string();
        printed.after(LISTENING, "the bridge's HTTP address").await;
        let p2p_addr: Multiaddr = printed
            .after(DHT, "the bridge's DHT address")
            .await
            .parse()
            .expect("a multiaddr");
        let (p2p_tcp, p2p_socket, peer_id) = split_p2p(&p2p_addr);
        let pg = match &db {
            Db::Postgres(url) => Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .expect("connect to the run's database"),
            ),
            Db::Sqlite => None,
        };
        let mut b = Bridge {
            child,
            stdin,
            pid,
            issuer,
            p2p_addr,
            p2p_tcp,
            p2p_socket,
            peer_id,
            dir,
            db,
            pg,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        b.wait_healthy().await;
        b
    }

    async fn wait_healthy(&mut self) {
        let child = std::sync::Mutex::new(&mut self.child);
        let this = &self.http;
        let url = format!("{}/healthz", self.issuer);
        let log = self.dir.join("bridge.log");
        Poll::new(120, "the bridge to become healthy")
            .every(Duration::from_millis(200))
            .ok(|| async {
                let exited = child.lock().unwrap().try_wait().ok().flatten();
                if let Some(status) = exited {
                    panic!(
                        "the bridge exited ({status}) before serving:\n{}",
                        tail_of(&log, 40)
                    );
                }
                match this.get(&url).send().await {
                    Ok(r) if r.status() == 200 => Ok(()),
                    Ok(r) => Err(format!("/healthz answered {}", r.status())),
                    Err(e) => Err(format!("/healthz: {e}")),
                }
            })
            .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The last lines of the bridge's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of(&self.dir.join("bridge.log"), lines)
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The bridge process's resident set (VmRSS), bytes.
    pub fn rss(&self) -> Option<u64> {
        rss_of(self.pid)
    }

    /// The database's size: each SQLite file (database, `-wal`, `-shm`),
    /// or the PostgreSQL database.
    pub async fn db_files(&self) -> Vec<(String, u64)> {
        match &self.db {
            Db::Sqlite => ["bridge.db", "bridge.db-wal", "bridge.db-shm"]
                .iter()
                .map(|f| {
                    let size = std::fs::metadata(self.dir.join(f))
                        .map(|m| m.len())
                        .unwrap_or(0);
                    (f.to_string(), size)
                })
                .collect(),
            Db::Postgres(_) => {
                let size: Option<i64> = match self.pg.as_ref() {
                    Some(pool) => sqlx::query_scalar("SELECT pg_database_size(current_database())")
                        .fetch_one(pool)
                        .await
                        .ok(),
                    None => None,
                };
                vec![(
                    "pg_database_size".into(),
                    size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                )]
            }
        }
    }

    /// `/healthz`: status code and body.
    pub async fn health(&self) -> String {
        match self.http.get(self.url("/healthz")).send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                format!("{s} {}", r.text().await.unwrap_or_default())
            }
            Err(e) => format!("no answer ({e})"),
        }
    }

    /// `/metrics`, parsed.
    pub async fn metrics(&self) -> Metrics {
        match self.http.get(self.url("/metrics")).send().await {
            Ok(r) => Metrics::parse(&r.text().await.unwrap_or_default()),
            Err(_) => Metrics::default(),
        }
    }

    /// Stops the bridge; drops the PostgreSQL database and the data
    /// directory (the log is printed first if asked).
    pub async fn finish(mut self, keep: bool) {
        self.stdin.take();
        let _ = self.child.kill().await;
        if let Some(pool) = self.pg.take() {
            pool.close().await;
        }
        if keep {
            println!("data directory kept: {}", self.dir.display());
            return;
        }
        if let Db::Postgres(url) = &self.db
            && let Ok(base) = std::env::var("CYRCLES_TEST_POSTGRES_URL")
        {
            use sqlx::Connection;
            let name = url::Url::parse(url)
                .map(|u| u.path().trim_start_matches('/').to_string())
                .unwrap_or_default();
            if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut c)
                    .await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// What `cyrcles-bridge serve` prints first: its version and issuer, the
/// HTTP address bound, and its DHT address.
const SERVING: &str = "cyrcles-bridge ";
const LISTENING: &str = "listening on ";
const DHT: &str = "DHT bootstrap address for agents:";

/// A DHT address `/ip4/IP/tcp/PORT/p2p/ID`: without its peer id, as a
/// socket address, and the peer id.
fn split_p2p(addr: &Multiaddr) -> (Multiaddr, SocketAddr, PeerId) {
    let mut tcp = Multiaddr::empty();
    let (mut ip, mut port, mut peer) = (None, None, None);
    for p in addr.iter() {
        match p {
            Protocol::P2p(id) => peer = Some(id),
            other => {
                match other {
                    Protocol::Ip4(a) => ip = Some(IpAddr::V4(a)),
                    Protocol::Ip6(a) => ip = Some(IpAddr::V6(a)),
                    Protocol::Tcp(p) => port = Some(p),
                    _ => {}
                }
                tcp.push(other);
            }
        }
    }
    match (ip, port, peer) {
        (Some(ip), Some(port), Some(peer)) => (tcp, SocketAddr::new(ip, port), peer),
        _ => panic!("not an /ip/tcp/p2p address: {addr}"),
    }
}

/// The last `lines` lines of the file at `path`.
fn tail_of(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Samples the bridge's RSS once a second.
pub struct Sampler {
    samples: std::sync::Arc<std::sync::Mutex<Vec<(Instant, u64)>>>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = samples.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                match rss_of(pid) {
                    Some(r) => s.lock().unwrap().push((Instant::now(), r)),
                    None => return,
                }
            }
        });
        Sampler { samples }
    }

    /// The highest sample taken between `from` and `to`.
    pub fn peak(&self, from: Instant, to: Instant) -> u64 {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(0)
    }
}

/// `/metrics` as series → value, with each family's type. Histograms are
/// left out (their buckets say little here).
#[derive(Default, Clone)]
pub struct Metrics {
    types: HashMap<String, String>,
    series: BTreeMap<String, f64>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut m = Metrics::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (it.next(), it.next()) {
                    m.types.insert(name.to_string(), kind.to_string());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            if Self::family(series).ends_with("_created") || m.kind(series) == "histogram" {
                continue;
            }
            m.series.insert(series.to_string(), v);
        }
        m
    }

    fn family(series: &str) -> &str {
        series.split('{').next().unwrap_or(series)
    }

    fn kind(&self, series: &str) -> &str {
        let f = Self::family(series);
        for cand in [
            f,
            f.trim_end_matches("_total"),
            f.trim_end_matches("_bucket"),
            f.trim_end_matches("_sum"),
            f.trim_end_matches("_count"),
        ] {
            if let Some(k) = self.types.get(cand) {
                return k;
            }
        }
        "unknown"
    }

    /// The series whose value changed from `before` to `self`: counters as
    /// `+delta`, others as `before → after`.
    pub fn changes(&self, before: &Metrics) -> Vec<String> {
        let mut out = Vec::new();
        for (s, v) in &self.series {
            let old = before.series.get(s).copied().unwrap_or(0.0);
            if (v - old).abs() < f64::EPSILON {
                continue;
            }
            if self.kind(s) == "counter" {
                out.push(format!("{s} +{}", fmt_num(v - old)));
            } else {
                out.push(format!("{s} {} → {}", fmt_num(old), fmt_num(*v)));
            }
        }
        out
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}
