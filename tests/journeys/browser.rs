//! A real browser: headless Chromium driven over the W3C WebDriver
//! protocol (chromedriver), with a small client written here on reqwest.
//! It clicks "Login with Cyrcles" on the demo site, types the ego id,
//! reads the match code off the bridge's page, has it approved with the
//! `cyrcles` CLI and lands back on the site logged in; a second site in
//! the same browser asks the agent again; a denied login ends on the
//! bridge's error page. Every button of the bridge's pages is
//! clicked (ego page: continue and cancel; wait page: send again and
//! cancel; denied page: try again and cancel; consent: allow and deny;
//! logout: stay and confirm) and must land where
//! it should, with no error in the browser's console (a CSP violation is
//! one: Chromium applies `form-action` to the redirect after a form post).
//! Screenshots go to `target/e2e-screenshots/`.
//!
//! `.ci/run` installs the Debian packages `chromium` and
//! `chromium-driver` when they are missing; without them this journey
//! fails under CI (`CI` set) and otherwise says so and does nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::common::{Bridge, Site, journey_dir, start_agent};
use cyrcles_testkit::{Agent, Printed, require_tool, wait_for, wait_until};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session.
struct Browser {
    http: reqwest::Client,
    base: String,
    screenshots: PathBuf,
    _driver: Child,
    /// chromedriver's process group, which its Chromium processes join.
    group: Option<u32>,
}

impl Drop for Browser {
    /// Chromium outlives a killed chromedriver: end the whole group, so a
    /// failed test leaves no browser behind.
    fn drop(&mut self) {
        if let Some(g) = self.group {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{g}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Browser {
    async fn start(profile: &Path, screenshots: PathBuf) -> Browser {
        // Port 0: chromedriver takes a free port and says which.
        let mut driver = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        const STARTED: &str = "ChromeDriver was started successfully on port ";
        let printed = Printed::watch(
            driver.stdout.take().unwrap(),
            profile.with_extension("log"),
            &[STARTED],
        );
        let port = printed.after(STARTED, "chromedriver's port").await;
        let port = port.trim_end_matches('.');
        crate::common::init();
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        wait_until(30, "chromedriver to start", || async {
            let Ok(r) = http.get(format!("{root}/status")).send().await else {
                return false;
            };
            r.json::<Value>()
                .await
                .is_ok_and(|v| v["value"]["ready"] == true)
        })
        .await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1024,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let v: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {v}"));
        std::fs::create_dir_all(&screenshots).unwrap();
        let group = driver.id();
        Browser {
            http,
            base: format!("{root}/session/{session}"),
            screenshots,
            _driver: driver,
            group,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element matching `css`, waiting up to 30 s for it.
    async fn find(&self, css: &str) -> String {
        wait_for(30, &format!("the element {css}"), || async {
            let v = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            v[ELEMENT].as_str().map(str::to_string)
        })
        .await
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn screenshot(&self, name: &str) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        if let Some(b64) = v.as_str()
            && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(b64)
        {
            let _ = std::fs::write(self.screenshots.join(format!("{name}.png")), png);
        }
    }

    /// Waits until the page's source contains `needle`.
    async fn wait_for(&self, needle: &str) -> String {
        self.wait_at("", needle).await
    }

    /// The errors the console logged since the last call (chromedriver's
    /// log endpoint hands each entry out once). A missing favicon is not
    /// an error of the pages under test.
    async fn console_errors(&self) -> Vec<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await;
        v.as_array()
            .unwrap_or_else(|| panic!("no browser log: {v}"))
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .filter_map(|e| e["message"].as_str())
            .filter(|m| !m.contains("favicon.ico"))
            .map(str::to_string)
            .collect()
    }

    /// Asserts that the console logged no error since the last check.
    async fn assert_clean_console(&self, step: &str) {
        let errors = self.console_errors().await;
        assert!(
            errors.is_empty(),
            "console errors after {step}: {errors:#?}"
        );
    }

    /// Waits until the browser is on a page under `prefix` whose source
    /// contains `needle`.
    async fn wait_at(&self, prefix: &str, needle: &str) -> String {
        self.wait_until(
            &format!("a page at {prefix:?} with {needle:?}"),
            |url, html| html.contains(needle) && url.starts_with(prefix),
        )
        .await
        .1
    }

    /// Waits until `done(url, source)` holds for the page shown; returns
    /// both.
    async fn wait_until(&self, what: &str, done: impl Fn(&str, &str) -> bool) -> (String, String) {
        wait_for(60, what, || async {
            let html = self.source().await;
            let url = self.url().await;
            done(&url, &html).then_some((url, html))
        })
        .await
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
        // Drop ends chromedriver's process group.
    }
}

/// Where screenshots go: `target/e2e-screenshots/`.
fn screenshots_dir() -> PathBuf {
    // The test binary lives in target/<profile>/deps/.
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    target.join("e2e-screenshots")
}

/// Clicks through a login in the browser; the person answers in `agent`.
async fn browse_login(
    b: &Browser,
    site: &Site,
    agent: &Agent,
    ego: &str,
    approve: bool,
    name: &str,
) {
    b.go(&site.url).await;
    b.screenshot(&format!("{name}-1-site")).await;
    b.type_into("#ego", ego).await;
    b.click("#login").await;
    // The bridge's page: the ego id (filled from the login hint) and
    // Continue.
    b.find("#ego_id").await;
    b.type_into("#ego_id", ego).await;
    b.screenshot(&format!("{name}-2-bridge")).await;
    b.click("#continue").await;
    let code = b.text("#match-code").await;
    b.screenshot(&format!("{name}-3-code")).await;
    assert_eq!(code.len(), 2, "{code:?}");
    crate::common::answer(agent, &code, approve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_logs_in_and_sees_a_denied_login() {
    if !require_tool(
        &format!("{CHROMIUM} and {CHROMEDRIVER} (Debian: chromium chromium-driver)"),
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
    ) {
        return;
    }
    let dir = journey_dir("browser");
    let bridge = Bridge::start(dir.path(), &[]).await;
    let site = Site::start(dir.path(), &bridge.issuer).await;
    let alice = start_agent(dir.path(), "alice", &bridge.bootstrap).await;
    let ego: String = alice.create("main").await;
    let shots = screenshots_dir();

    let b = Browser::start(&dir.join("profile-1"), shots.clone()).await;
    browse_login(&b, &site, &alice, &ego, true, "approved").await;
    // The wait page continues by itself; a first login may ask for
    // consent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut consented = false;
    let landed = loop {
        let url = b.url().await;
        let html = b.source().await;
        if url.starts_with(&site.url) && html.contains("id=\"welcome\"") {
            break html;
        }
        if !consented && html.contains("id=\"allow\"") {
            b.screenshot("approved-4-consent").await;
            b.click("#allow").await;
            consented = true;
        }
        if tokio::time::Instant::now() > deadline {
            b.screenshot("approved-stuck").await;
            panic!("not back on the site within 60 s: at {url}: {html}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    b.screenshot("approved-5-site").await;
    b.assert_clean_console("an approved login").await;
    assert!(landed.contains("id=\"claims\""), "{landed}");
    assert_eq!(b.text("#claim-iss").await, bridge.issuer);
    // A second site in the same browser: the bridge session does not log
    // the browser in there by itself; the page names the session's ego
    // and the agent is asked about this site.
    let other_site = Site::start(dir.path(), &bridge.issuer).await;
    b.go(&other_site.url).await;
    b.type_into("#ego", &ego).await;
    b.click("#login").await;
    let page = b.wait_at(&bridge.issuer, "id=\"signed-in-as\"").await;
    assert!(page.contains(&format!("value=\"{ego}\"")), "{page}");
    b.screenshot("second-site-1-bridge").await;
    b.click("#continue").await;
    let code = b.text("#match-code").await;
    crate::common::answer(&alice, &code, true).await;
    b.wait_for("id=\"allow\"").await;
    b.click("#allow").await;
    b.wait_at(&other_site.url, "id=\"welcome\"").await;
    b.screenshot("second-site-2-site").await;
    b.assert_clean_console("a second site of the session").await;
    b.go(&site.url).await;
    // Log out: the site sends the browser to the bridge, which asks; the
    // confirmation leads back to the site (its origin is a form target of
    // that page, as Chromium requires for the redirect).
    // "Stay logged in" first: back on the site (which ended its own
    // session before sending the browser to the bridge); the bridge's
    // session lives on, so logging in again needs no agent.
    b.click("#logout").await;
    b.wait_for("logout_state").await;
    b.click("#stay").await;
    b.wait_at(&site.url, "id=\"login\"").await;
    b.assert_clean_console("staying logged in at the bridge")
        .await;
    b.type_into("#ego", &ego).await;
    b.click("#login").await;
    b.wait_at(&site.url, "id=\"welcome\"").await;
    b.click("#logout").await;
    b.wait_for("logout_state").await;
    b.screenshot("approved-6-logout").await;
    b.click("#logout").await;
    let home = b.wait_for("id=\"login\"").await;
    b.screenshot("approved-7-logged-out").await;
    assert!(!home.contains("id=\"welcome\""));
    assert!(b.url().await.starts_with(&site.url));
    b.assert_clean_console("logging out").await;
    b.quit().await;

    // Another browser. Cancel on the ego page: back on the site, which
    // hears access_denied.
    let b = Browser::start(&dir.join("profile-2"), shots).await;
    b.go(&site.url).await;
    b.type_into("#ego", &ego).await;
    b.click("#login").await;
    b.find("#ego_id").await;
    b.click("#cancel").await;
    b.wait_at(&site.url, "access_denied").await;
    b.screenshot("cancel-1-ego-page").await;
    b.assert_clean_console("cancel on the ego page").await;

    // Cancel on the wait page.
    b.go(&site.url).await;
    b.type_into("#ego", &ego).await;
    b.click("#login").await;
    b.type_into("#ego_id", &ego).await;
    b.click("#continue").await;
    b.find("#match-code").await;
    // "Send the request again": another challenge, on its own wait page.
    let first_wait = b.url().await;
    b.click("#resend").await;
    let (again, _) = b
        .wait_until("the resent request's page", |url, html| {
            url != first_wait && html.contains("id=\"match-code\"")
        })
        .await;
    assert!(again.starts_with(&bridge.issuer), "{again}");
    b.screenshot("cancel-2-resent").await;
    b.assert_clean_console("sending the request again").await;
    b.click("#cancel").await;
    b.wait_at(&site.url, "access_denied").await;
    b.screenshot("cancel-3-wait-page").await;
    b.assert_clean_console("cancel on the wait page").await;

    // The person denies: the bridge's error page, then cancel from there.
    browse_login(&b, &site, &alice, &ego, false, "denied").await;
    let html = b.wait_for("you denied it, or a wrong number").await;
    b.screenshot("denied-4-error").await;
    assert!(html.contains("class=\"error\""), "{html}");
    assert!(b.url().await.starts_with(&bridge.issuer));
    // "Try again": the ego page, the ego still filled in; denied again.
    b.click("#retry").await;
    let retry = b.wait_at(&bridge.issuer, "id=\"ego_id\"").await;
    assert!(retry.contains(&format!("value=\"{ego}\"")), "{retry}");
    b.screenshot("denied-5-retry").await;
    b.click("#continue").await;
    let code = b.text("#match-code").await;
    crate::common::answer(&alice, &code, false).await;
    b.wait_for("you denied it, or a wrong number").await;
    b.assert_clean_console("trying again after a denial").await;
    b.click("#cancel").await;
    b.wait_at(&site.url, "access_denied").await;
    b.screenshot("denied-6-cancelled").await;
    b.assert_clean_console("a denied login, cancelled").await;

    // A second ego, new to the site: the person approves in the agent,
    // then denies on the consent page; the site hears access_denied.
    let other: String = alice.create("other").await;
    browse_login(&b, &site, &alice, &other, true, "consent-deny").await;
    b.wait_for("id=\"deny\"").await;
    b.screenshot("consent-deny-4-consent").await;
    b.click("#deny").await;
    b.wait_at(&site.url, "access_denied").await;
    b.screenshot("consent-deny-5-site").await;
    b.assert_clean_console("consent denied").await;
    b.quit().await;
    bridge.stop().await;
}
