//! The demo website end to end, in one process: the quickstart's bridge
//! and site, a real agent daemon, and a browser (an HTTP client with
//! cookies) that clicks through: the site's login, the bridge's pages,
//! the match code approved in the agent, the verified claims on the
//! site, RP-initiated logout; a denied login ends on the site's error
//! page; a forged back-channel logout token is refused.
#![allow(
    unreachable_pub,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::time::Duration;

use cyrcles_agent::config::AgentConfig;
use cyrcles_agent::control::client::Client;
use cyrcles_agent::control::proto::{Reply, Request};
use cyrcles_agent::daemon::{Daemon, DaemonOptions};
use cyrcles_agent::home::Home;
use cyrcles_bridge::config::Config;
use cyrcles_demo::quickstart::{Demo, DemoOptions};
use tokio::sync::oneshot;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "cyrcles-demo-{}-{}",
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
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn bounded<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {secs} s"))
}

struct Harness {
    site: String,
    issuer: String,
    agent: PathBuf,
    daemon: Option<Daemon>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = TempDir::new();
        let bridge_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = bridge_listener.local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let env = [
            ("CYRCLES_BRIDGE_ISSUER", issuer.clone()),
            ("CYRCLES_BRIDGE_HTTP_LISTEN", format!("127.0.0.1:{port}")),
            (
                "CYRCLES_BRIDGE_DATA_DIR",
                dir.0.join("bridge").display().to_string(),
            ),
            ("CYRCLES_BRIDGE_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0".into()),
        ]
        .map(|(k, v)| (k.to_string(), v));
        let settings = Config::load(None, env).unwrap().validate().unwrap();
        let site_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let site = format!(
            "http://127.0.0.1:{}",
            site_listener.local_addr().unwrap().port()
        );
        let demo = Demo::start(DemoOptions {
            settings,
            bridge_listener: Some(bridge_listener),
            site_listener,
            site_url: site.parse().unwrap(),
        })
        .await
        .unwrap();
        let steps = demo.next_steps();
        assert!(
            steps.contains("cyrcles daemon --bootstrap /ip4/127.0.0.1/"),
            "{steps}"
        );
        assert!(steps.contains(&site), "{steps}");
        let bootstrap = demo.bootstrap[0].clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(demo.serve(async {
            let _ = stopped.await;
        }));

        let mut c = AgentConfig::default();
        c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        c.network.bootstrap = vec![bootstrap];
        c.maintenance_interval_secs = 1;
        c.notify = false;
        let agent = dir.0.join("agent");
        let daemon = Daemon::start(DaemonOptions {
            home: Home::at(&agent),
            settings: c.validate().unwrap(),
            clock: cyrcles_p2p::system_clock(),
            passphrase: None,
        })
        .await
        .unwrap();
        Harness {
            site,
            issuer,
            agent,
            daemon: Some(daemon),
            stop: Some(stop),
            served: Some(served),
            _dir: dir,
        }
    }

    async fn call(&self, request: Request) -> Reply {
        Client::call(&Home::at(&self.agent), &request)
            .await
            .unwrap()
    }

    async fn ego(&self, name: &str) -> String {
        match self.call(Request::EgoCreate { name: name.into() }).await {
            Reply::Ego(e) => e.ego_id,
            other => panic!("{other:?}"),
        }
    }

    async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await;
        }
        let _ = self.stop.take().unwrap().send(());
        bounded(20, "the demo to stop", self.served.take().unwrap())
            .await
            .unwrap()
            .unwrap();
    }
}

fn browser() -> reqwest::Client {
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
fn input(html: &str, name: &str) -> Option<String> {
    let pat = format!("name=\"{name}\" value=\"");
    let start = html.find(&pat)? + pat.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// The text of the element with `id`.
fn by_id(html: &str, id: &str) -> Option<String> {
    let pat = format!("id=\"{id}\"");
    let at = html.find(&pat)?;
    let start = html[at..].find('>')? + at + 1;
    let end = html[start..].find('<')? + start;
    Some(html[start..end].trim().to_string())
}

/// How the person answers the agent's request.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Approve,
    Deny,
}

/// Where a login ends: a page of the site, or of the bridge (status,
/// HTML).
#[derive(Debug)]
enum Ended {
    Site(u16, String),
    Bridge(u16, String),
}

/// Clicks through a login from the site's `/login` as a person would,
/// answering in the agent; returns the page it ends on.
async fn log_in(h: &Harness, b: &reqwest::Client, ego: &str, answer: Answer) -> Ended {
    bounded(90, "a browser login", async {
        let res = b
            .get(format!("{}/login?ego={ego}", h.site))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let mut url = location(&res);
        assert!(url.starts_with(&h.issuer), "{url}");
        for _ in 0..20 {
            if url.starts_with(&h.site) {
                // Back on the site: the callback, then its page.
                let res = b.get(&url).send().await.unwrap();
                let s = res.status().as_u16();
                if s != 303 {
                    return Ended::Site(s, res.text().await.unwrap());
                }
                let res = b
                    .get(format!("{}{}", h.site, location(&res)))
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
                    format!("{}{next}", h.issuer)
                } else {
                    next
                };
                continue;
            }
            let html = res.text().await.unwrap();
            if status != 200 || html.contains("class=\"error\"") {
                return Ended::Bridge(status, html);
            }
            let path = url.replace(&h.issuer, "");
            if html.contains("name=\"ego_id\"") {
                let csrf = input(&html, "csrf").unwrap();
                let res = b
                    .post(format!("{}{path}/ego", h.issuer))
                    .form(&[("csrf", csrf.as_str()), ("ego_id", ego)])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
                url = format!("{}{}", h.issuer, location(&res));
            } else if let Some(code) = by_id(&html, "match-code") {
                // The person reads the code on the page and answers in
                // the agent.
                let id = loop {
                    if let Reply::Requests { requests } = h.call(Request::Requests).await
                        && let Some(r) = requests.first()
                    {
                        break r.id;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                let reply = match answer {
                    Answer::Approve => {
                        h.call(Request::Approve {
                            id,
                            code: code.parse().unwrap(),
                            remember: false,
                            auto: false,
                        })
                        .await
                    }
                    Answer::Deny => {
                        h.call(Request::Deny {
                            id,
                            ban_site: false,
                            ban_bridge: false,
                            not_me: false,
                        })
                        .await
                    }
                };
                assert!(!matches!(reply, Reply::Error(_)), "{reply:?}");
                loop {
                    let s: serde_json::Value = b
                        .get(format!("{url}/status?wait=20"))
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
                url = format!("{url}/continue");
            } else if html.contains("name=\"decision\" value=\"allow\"") {
                let csrf = input(&html, "csrf").unwrap();
                let res = b
                    .post(format!("{}{path}/consent", h.issuer))
                    .form(&[("csrf", csrf.as_str()), ("decision", "allow")])
                    .send()
                    .await
                    .unwrap();
                url = location(&res);
                if url.starts_with('/') {
                    url = format!("{}{url}", h.issuer);
                }
            } else {
                panic!("an unexpected page at {url}: {html}");
            }
        }
        panic!("too many steps")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_logs_in_to_the_demo_site_sees_the_claims_and_logs_out() {
    let h = Harness::start().await;
    let ego = h.ego("main").await;
    let b = browser();
    let home = b.get(&h.site).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Login with Cyrcles"), "{home}");

    let Ended::Site(status, page) = log_in(&h, &b, &ego, Answer::Approve).await else {
        panic!("the login did not end on the site");
    };
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"welcome\""), "{page}");
    // The site shows the verified claims: issued by the bridge, for it.
    assert_eq!(by_id(&page, "claim-iss").unwrap(), h.issuer);
    assert!(!by_id(&page, "claim-sub").unwrap().is_empty());
    assert!(page.contains("id=\"claim-aud\""), "{page}");

    // RP-initiated logout: the site sends the browser to the bridge, which
    // asks, logs out and sends it back to the site, logged out.
    let res = b.post(format!("{}/logout", h.site)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to_bridge = location(&res);
    assert!(
        to_bridge.starts_with(&format!("{}/logout", h.issuer)),
        "{to_bridge}"
    );
    assert!(to_bridge.contains("id_token_hint="), "{to_bridge}");
    let page = b.get(&to_bridge).send().await.unwrap();
    let back = if page.status() == 200 {
        let html = page.text().await.unwrap();
        let csrf = input(&html, "csrf").unwrap();
        let state = input(&html, "logout_state").unwrap_or_default();
        let res = b
            .post(format!("{}/logout", h.issuer))
            .form(&[
                ("csrf", csrf.as_str()),
                ("logout_state", state.as_str()),
                ("decision", "logout"),
            ])
            .send()
            .await
            .unwrap();
        location(&res)
    } else {
        location(&page)
    };
    assert!(back.starts_with(&h.site), "{back}");
    let home = b.get(&h.site).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("id=\"login\""), "{home}");
    assert!(!home.contains("id=\"welcome\""));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_login_logs_nobody_in_and_forged_requests_are_refused() {
    let h = Harness::start().await;
    let ego = h.ego("main").await;
    let b = browser();
    // The bridge says so, and offers to try again; the site got nothing.
    let ended = log_in(&h, &b, &ego, Answer::Deny).await;
    let Ended::Bridge(status, page) = ended else {
        panic!("a denied login reached the site: {ended:?}");
    };
    assert!(status == 200 || status == 403, "{status}: {page}");
    assert!(
        page.contains("You denied the login in your agent"),
        "{page}"
    );
    let home = b.get(&h.site).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("id=\"login\""), "{home}");

    // A callback nobody started, and a forged back-channel logout token:
    // clear errors, no 500.
    let stranger = browser();
    let res = stranger
        .get(format!("{}/callback?code=x&state=y", h.site))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let forged = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.";
    let res = stranger
        .post(format!("{}/backchannel-logout", h.site))
        .form(&[("logout_token", forged)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    h.stop().await;
}
