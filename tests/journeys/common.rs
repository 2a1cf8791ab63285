//! The programs as processes: bridges, demo sites and agents on ports and
//! homes picked at runtime; a browser (an HTTP client with cookies) that
//! clicks through a login as a person would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

pub const AGENT: &str = env!("CARGO_BIN_EXE_e2e-cyrcles");
pub const BRIDGE: &str = env!("CARGO_BIN_EXE_e2e-cyrcles-bridge");
pub const DEMO: &str = env!("CARGO_BIN_EXE_e2e-cyrcles-demo");

/// Agents of the journeys: maintenance every second, friends sign without
/// the hourly limit, a recovery asks every second.
pub const AGENT_CONFIG: &str = "maintenance_interval_secs = 1\nnotify = false\n\
                                [circles]\nsign_interval_secs = 0\nrecovery_poll_secs = 1\n";

pub async fn bounded<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {secs} s"))
}

/// A directory removed on drop (kept when the test fails, for its logs).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "cyrcles-e2e-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Copies a process's output to a log file; for each prefix wanted, sends
/// the rest of the first line that starts with it.
pub fn tail(
    out: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    log: PathBuf,
    wanted: Vec<(&'static str, oneshot::Sender<String>)>,
) {
    tokio::spawn(async move {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .await
            .unwrap();
        let mut lines = BufReader::new(out).lines();
        let mut wanted: Vec<_> = wanted.into_iter().map(Some).collect();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
            for w in &mut wanted {
                if let Some((prefix, _)) = w
                    && let Some(rest) = line.strip_prefix(*prefix)
                {
                    let (_, tx) = w.take().unwrap();
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        }
    });
}

/// What a program printed after `prefix` (see [`tail`]), within 60 s; the
/// program's log if it stopped first.
async fn printed(rx: oneshot::Receiver<String>, what: &str, log: &Path) -> String {
    bounded(60, what, rx).await.unwrap_or_else(|_| {
        panic!(
            "stopped before {what}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })
}

/// A `cyrcles-bridge serve` process.
pub struct Bridge {
    /// Its issuer (its own URL unless `env` named another).
    pub issuer: String,
    /// Where it serves HTTP.
    pub http: String,
    pub bootstrap: String,
    child: Child,
}

impl Bridge {
    /// Starts a bridge on a port of its choosing (its issuer on that port
    /// unless `env` names another) with `env` on top of its defaults
    /// (SQLite in `dir` unless `env` names a database).
    pub async fn start(dir: &Path, env: &[(&str, String)]) -> Bridge {
        let log = dir.join("bridge.log");
        let mut cmd = Command::new(BRIDGE);
        cmd.arg("serve")
            // Port 0: the bridge takes the port it bound.
            .env("CYRCLES_BRIDGE_ISSUER", "http://127.0.0.1:0")
            .env("CYRCLES_BRIDGE_HTTP_LISTEN", "127.0.0.1:0")
            .env("CYRCLES_BRIDGE_DATA_DIR", dir.join("bridge-data"))
            .env("CYRCLES_BRIDGE_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0")
            .env("CYRCLES_BRIDGE_P2P_DIAL_PRIVATE_ADDRS", "true")
            .env("CYRCLES_BRIDGE_OIDC_PRIVATE_BACKCHANNEL_TARGETS", "true")
            .env("CYRCLES_BRIDGE_OIDC_SESSION_CHECK_INTERVAL_SECS", "1")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let (issuer_tx, issuer_rx) = oneshot::channel();
        let (listen_tx, listen_rx) = oneshot::channel();
        let (tx, rx) = oneshot::channel();
        tail(
            child.stderr.take().unwrap(),
            log.clone(),
            vec![
                ("cyrcles-bridge ", issuer_tx),
                ("listening on ", listen_tx),
                ("DHT bootstrap address for agents:", tx),
            ],
        );
        let serving = printed(issuer_rx, "the bridge's issuer", &log).await;
        let issuer = serving
            .split_once(" serving ")
            .unwrap_or_else(|| panic!("no issuer in {serving:?}"))
            .1
            .to_string();
        let http = format!(
            "http://{}",
            printed(listen_rx, "the bridge's address", &log).await
        );
        let bootstrap = printed(rx, "the bridge's DHT address", &log).await;
        let b = Bridge {
            issuer,
            http,
            bootstrap,
            child,
        };
        wait_http(&format!("{}/healthz", b.http)).await;
        b
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn wait_http(url: &str) {
    init();
    let http = reqwest::Client::new();
    bounded(60, "a server to answer", async {
        loop {
            if let Ok(r) = http.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// A `cyrcles-demo site` process registered at a bridge.
pub struct Site {
    pub url: String,
    _child: Child,
}

impl Site {
    /// The quickstart, `cyrcles-demo` with no subcommand: a bridge on its
    /// defaults (ports and data directory moved under `dir`) and the site.
    /// Returns the site, the bridge's issuer and the bootstrap address the
    /// quickstart printed for the agent.
    pub async fn quickstart(dir: &Path) -> (Site, String, String) {
        // Port 0 everywhere: the bridge and the site take the ports they
        // bound, and the next steps name them.
        let mut child = Command::new(DEMO)
            .args(["--site-listen", "127.0.0.1:0"])
            .args(["--site-url", "http://127.0.0.1:0"])
            .current_dir(dir)
            .env("CYRCLES_BRIDGE_ISSUER", "http://127.0.0.1:0")
            .env("CYRCLES_BRIDGE_HTTP_LISTEN", "127.0.0.1:0")
            .env("CYRCLES_BRIDGE_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0")
            .env("CYRCLES_BRIDGE_P2P_DIAL_PRIVATE_ADDRS", "true")
            .env("CYRCLES_BRIDGE_OIDC_PRIVATE_BACKCHANNEL_TARGETS", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = dir.join("quickstart.log");
        let (site_tx, site_rx) = oneshot::channel();
        let (issuer_tx, issuer_rx) = oneshot::channel();
        let (tx, rx) = oneshot::channel();
        tail(
            child.stderr.take().unwrap(),
            log.clone(),
            vec![
                ("  demo website", site_tx),
                ("  bridge (OIDC)", issuer_tx),
                ("  cyrcles daemon --bootstrap", tx),
            ],
        );
        let url = printed(site_rx, "the quickstart's site", &log).await;
        let issuer = printed(issuer_rx, "the quickstart's bridge", &log).await;
        let bootstrap = printed(rx, "the quickstart's next steps", &log).await;
        let bootstrap = bootstrap.trim_end_matches('&').trim().to_string();
        wait_http(&format!("{url}/healthz")).await;
        (Site { url, _child: child }, issuer, bootstrap)
    }

    pub async fn start(dir: &Path, issuer: &str) -> Site {
        let log = dir.join("site.log");
        // Port 0: the site takes the port it bound and says its URL.
        let mut child = Command::new(DEMO)
            .args(["site", "--issuer", issuer, "--listen", "127.0.0.1:0"])
            .args(["--public-url", "http://127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (tx, rx) = oneshot::channel();
        tail(
            child.stderr.take().unwrap(),
            log.clone(),
            vec![("Cyrcles demo website on", tx)],
        );
        let url = printed(rx, "the site's URL", &log).await;
        let url = url.trim_end_matches('/').to_string();
        wait_http(&format!("{url}/healthz")).await;
        Site { url, _child: child }
    }

    /// The home page as `browser` sees it.
    pub async fn home(&self, browser: &reqwest::Client) -> String {
        browser
            .get(&self.url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The output of a CLI run.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "exit {}: {}", self.code, self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// A `cyrcles daemon` process and its home.
pub struct Agent {
    pub home: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// Starts a daemon on a new home under `dir`, bootstrapping from
    /// `bootstrap`.
    pub async fn start(dir: &Path, name: &str, bootstrap: &str) -> Agent {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        std::fs::write(home.join("config.toml"), AGENT_CONFIG).unwrap();
        let mut a = Agent {
            home,
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        a.spawn(bootstrap).await;
        a
    }

    /// An agent on an existing home, not started.
    pub fn on_home(home: PathBuf, log: PathBuf) -> Agent {
        Agent {
            home,
            log,
            child: None,
        }
    }

    /// Starts the daemon on this (existing) home.
    pub async fn spawn(&mut self, bootstrap: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(AGENT)
            .arg("--home")
            .arg(&self.home)
            .args([
                "daemon",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--dial-private-addrs",
                "--bootstrap",
                bootstrap,
            ])
            .env_remove("CYRCLES_HOME")
            .env("CYRCLES_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        bounded(30, "the agent to start", async {
            while self.cli(&["status"]).await.code != 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
    }

    pub async fn cli(&self, args: &[&str]) -> Output {
        let out = Command::new(AGENT)
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env_remove("CYRCLES_HOME")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `cyrcles --json ARGS`, which must succeed.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.cli(&all).await.json()
    }

    /// `cyrcles --json ARGS` until it succeeds (within 90 s).
    pub async fn until_ok(&self, args: &[&str], what: &str) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let out = self.cli(&all).await;
            if out.code == 0 {
                return out.json();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: no success in 90 s; last: {out:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Creates an ego; returns its id.
    pub async fn ego(&self, name: &str) -> String {
        self.json(&["ego", "create", name]).await["ego_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Stops the daemon.
    pub async fn stop(&mut self) {
        let _ = self.cli(&["stop"]).await;
        if let Some(mut c) = self.child.take() {
            let _ = bounded(20, "the agent to stop", c.wait()).await;
        }
    }
}

/// Makes `a`'s ego `main` and `b`'s ego `main` friends through an invite
/// code; `a` calls the friend `b_name`, `b` calls it `a_name`.
pub async fn befriend(a: &Agent, b_name: &str, b: &Agent, a_name: &str) {
    let mut invite = Command::new(AGENT)
        .arg("--home")
        .arg(&a.home)
        .args([
            "--json", "friend", "invite", "--ego", "main", "--name", b_name,
        ])
        .env_remove("CYRCLES_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(invite.stdout.take().unwrap()).lines();
    let open: Value = serde_json::from_str(
        &bounded(30, "the invite code", lines.next_line())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let code = open["code"].as_str().unwrap().to_string();
    b.until_ok(
        &["friend", "accept", &code, "--as", "main", "--name", a_name],
        "accepting the invite",
    )
    .await;
    let status = bounded(30, "the invite to close", invite.wait())
        .await
        .unwrap();
    assert!(status.success());
}

/// reqwest's rustls needs a process-wide crypto provider.
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A browser: cookies, no automatic redirects.
pub fn browser() -> reqwest::Client {
    init();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {}", res.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The value of `<input … name="NAME" value="…">`.
pub fn input(html: &str, name: &str) -> Option<String> {
    let pat = format!("name=\"{name}\" value=\"");
    let start = html.find(&pat)? + pat.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// The text of the element with `id`.
pub fn by_id(html: &str, id: &str) -> Option<String> {
    let pat = format!("id=\"{id}\"");
    let at = html.find(&pat)?;
    let start = html[at..].find('>')? + at + 1;
    let end = html[start..].find('<')? + start;
    Some(html[start..end].trim().to_string())
}

/// Where a login ends.
#[derive(Debug)]
pub enum Ended {
    /// A page of the site (status, HTML).
    Site(u16, String),
    /// A page of the bridge (status, HTML).
    Bridge(u16, String),
}

impl Ended {
    /// The site's page after a successful login.
    pub fn welcome(self) -> String {
        match self {
            Ended::Site(200, html) if html.contains("id=\"welcome\"") => html,
            other => panic!("the login did not succeed: {other:?}"),
        }
    }
}

/// How a login is driven.
pub struct Login<'a> {
    pub site: &'a Site,
    /// Where the browser is sent for each bridge page: the bridge the
    /// site redirects to, or (after the ego form) another instance.
    pub bridge: &'a str,
    /// Polls the wait page and continues on this bridge instance.
    pub poll: &'a str,
    /// The agent that answers, and whether it approves.
    pub agent: &'a Agent,
    pub approve: bool,
}

impl<'a> Login<'a> {
    /// A login at one bridge instance that `agent`'s person approves.
    pub fn approved(site: &'a Site, issuer: &'a str, agent: &'a Agent) -> Self {
        Login {
            site,
            bridge: issuer,
            poll: issuer,
            agent,
            approve: true,
        }
    }
}

/// Clicks through a login as a person would: the site's button with the
/// ego id, the bridge's pages, the match code read off the page and typed
/// into `cyrcles approve` (or the request denied).
pub async fn log_in(b: &reqwest::Client, l: &Login<'_>, ego: &str) -> Ended {
    bounded(120, "a browser login", async {
        let res = b
            .get(format!("{}/login?ego={ego}", l.site.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let mut url = location(&res);
        for _ in 0..20 {
            if url.starts_with(&l.site.url) {
                let res = b.get(&url).send().await.unwrap();
                let s = res.status().as_u16();
                if s != 303 {
                    return Ended::Site(s, res.text().await.unwrap());
                }
                let res = b
                    .get(format!("{}{}", l.site.url, location(&res)))
                    .send()
                    .await
                    .unwrap();
                return Ended::Site(res.status().as_u16(), res.text().await.unwrap());
            }
            let res = b.get(&url).send().await.unwrap();
            let status = res.status().as_u16();
            if status == 303 || status == 302 {
                let next = location(&res);
                url = if next.starts_with('/') {
                    format!("{}{next}", l.bridge)
                } else {
                    next
                };
                continue;
            }
            let html = res.text().await.unwrap();
            if status != 200 || html.contains("class=\"error\"") {
                return Ended::Bridge(status, html);
            }
            let path = url.split_once("/interaction").map(|(_, p)| p).unwrap_or("");
            if html.contains("name=\"ego_id\"") {
                let csrf = input(&html, "csrf").unwrap();
                let res = b
                    .post(format!("{}/interaction{path}/ego", l.bridge))
                    .form(&[("csrf", csrf.as_str()), ("ego_id", ego)])
                    .send()
                    .await
                    .unwrap();
                if res.status() != 303 {
                    return Ended::Bridge(res.status().as_u16(), res.text().await.unwrap());
                }
                url = format!("{}{}", l.bridge, location(&res));
            } else if let Some(code) = by_id(&html, "match-code") {
                let wait = format!("{}/interaction{path}", l.poll);
                answer(l.agent, &code, l.approve).await;
                loop {
                    let s: Value = b
                        .get(format!("{wait}/status?wait=20"))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    if s["status"] != "pending" {
                        break;
                    }
                }
                url = format!("{wait}/continue");
            } else if html.contains("name=\"decision\" value=\"allow\"") {
                let csrf = input(&html, "csrf").unwrap();
                let res = b
                    .post(format!("{}/interaction{path}/consent", l.bridge))
                    .form(&[("csrf", csrf.as_str()), ("decision", "allow")])
                    .send()
                    .await
                    .unwrap();
                url = location(&res);
                if url.starts_with('/') {
                    url = format!("{}{url}", l.bridge);
                }
            } else {
                panic!("an unexpected page at {url}: {html}");
            }
        }
        panic!("too many steps")
    })
    .await
}

/// The person answers the waiting request in their agent.
pub async fn answer(agent: &Agent, code: &str, approve: bool) {
    let id = bounded(30, "the request to reach the agent", async {
        loop {
            // The newest: a login cancelled at the bridge leaves its prompt
            // at the agent until it expires.
            let v = agent.json(&["requests"]).await;
            let newest = v["requests"]
                .as_array()
                .and_then(|r| r.iter().filter_map(|q| q["id"].as_u64()).max());
            if let Some(id) = newest {
                return id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let out = if approve {
        agent.cli(&["approve", &id, "--code", code]).await
    } else {
        agent.cli(&["deny", &id]).await
    };
    assert_eq!(out.code, 0, "{out:?}");
}
