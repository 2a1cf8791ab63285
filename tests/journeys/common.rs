//! The programs as processes: bridges, demo sites and agents on ports and
//! homes picked at runtime; a browser (an HTTP client with cookies) that
//! clicks through a login as a person would.

use std::path::Path;
use std::process::Stdio;

use cyrcles_testkit::{Agent, Printed, TempDir, bounded, wait_for, wait_until};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const AGENT: &str = env!("CARGO_BIN_EXE_e2e-cyrcles");
pub const BRIDGE: &str = env!("CARGO_BIN_EXE_e2e-cyrcles-bridge");
pub const DEMO: &str = env!("CARGO_BIN_EXE_e2e-cyrcles-demo");

/// Agents of the journeys: maintenance every second, friends sign without
/// the hourly limit, a recovery asks every second.
pub const AGENT_CONFIG: &str = "maintenance_interval_secs = 1\nnotify = false\n\
                                [circles]\nsign_interval_secs = 0\nrecovery_poll_secs = 1\n\
                                recovery_delay_secs = 0\n";

/// A directory for one journey's programs, kept if the journey fails
/// (for its logs).
pub fn journey_dir(name: &str) -> TempDir {
    TempDir::new(&format!("cyrcles-e2e-{name}")).keep_on_failure()
}

/// Starts an agent on a new home `DIR/NAME` (log `DIR/NAME.log`) with
/// [`AGENT_CONFIG`], bootstrapping from `bootstrap`.
pub async fn start_agent(dir: &Path, name: &str, bootstrap: &str) -> Agent {
    Agent::builder(AGENT)
        .in_dir(dir, name)
        .config(AGENT_CONFIG)
        .bootstrap(bootstrap)
        .start()
        .await
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
        let printed = Printed::watch(
            child.stderr.take().unwrap(),
            log,
            &[
                "cyrcles-bridge ",
                "listening on ",
                "DHT bootstrap address for agents:",
            ],
        );
        let serving = printed
            .after("cyrcles-bridge ", "the bridge's issuer")
            .await;
        let issuer = serving
            .split_once(" serving ")
            .unwrap_or_else(|| panic!("no issuer in {serving:?}"))
            .1
            .to_string();
        let http = format!(
            "http://{}",
            printed.after("listening on ", "the bridge's address").await
        );
        let bootstrap = printed
            .after(
                "DHT bootstrap address for agents:",
                "the bridge's DHT address",
            )
            .await;
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
    wait_until(60, "a server to answer", || async {
        http.get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
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
        let printed = Printed::watch(
            child.stderr.take().unwrap(),
            dir.join("quickstart.log"),
            &[
                "  demo website",
                "  bridge (OIDC)",
                "  cyrcles daemon --bootstrap",
            ],
        );
        let url = printed
            .after("  demo website", "the quickstart's site")
            .await;
        let issuer = printed
            .after("  bridge (OIDC)", "the quickstart's bridge")
            .await;
        let bootstrap = printed
            .after(
                "  cyrcles daemon --bootstrap",
                "the quickstart's next steps",
            )
            .await;
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
        let printed = Printed::watch(
            child.stderr.take().unwrap(),
            log,
            &["Cyrcles demo website on"],
        );
        let url = printed
            .after("Cyrcles demo website on", "the site's URL")
            .await;
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

/// Makes `a`'s ego `main` and `b`'s ego `main` friends through an invite
/// code; `a` calls the friend `b_name`, `b` calls it `a_name`.
pub async fn befriend(a: &Agent, b_name: &str, b: &Agent, a_name: &str) {
    let mut invite = a
        .command([
            "--json", "friend", "invite", "--ego", "main", "--name", b_name,
        ])
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
        90,
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
    let id = wait_for(30, "the request to reach the agent", || async {
        // The newest: a login cancelled at the bridge leaves its prompt at
        // the agent until it expires.
        let v = agent.json(&["requests"]).await;
        let newest = v["requests"]
            .as_array()
            .and_then(|r| r.iter().filter_map(|q| q["id"].as_u64()).max());
        newest.map(|id| id.to_string())
    })
    .await;
    let out = if approve {
        agent.cli(&["approve", &id, "--code", code]).await
    } else {
        agent.cli(&["deny", &id]).await
    };
    assert_eq!(out.code, 0, "{out:?}");
}
