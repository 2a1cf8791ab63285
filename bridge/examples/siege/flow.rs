//! The browser's side of a login, step by step, as the legitimate people
//! and the attackers both go through it: authorize with PKCE, the ego form
//! (solving the proof of work when the page asks for one), the wait page
//! and its long-polling status, continue (and consent), code exchange.
//! Each step fails with a short label: the step and the HTTP status.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::agents::Agent;
use crate::common::{REDIRECT, input, query};

/// A registered client (a site).
#[derive(Clone, Debug)]
pub struct Site {
    pub id: String,
    pub secret: String,
}

/// Everything a login needs to know about the bridge.
#[derive(Clone, Debug)]
pub struct Target {
    pub issuer: String,
}

impl Target {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// A browser at `ip`: cookies, no automatic redirects.
pub fn browser(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// An HTTP client at `ip` without cookies.
pub fn plain(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

pub fn loc(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Why a request got no HTTP answer.
pub fn transport(step: &str, e: &reqwest::Error) -> String {
    let why = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else {
        "transport error"
    };
    format!("{step}: {why}")
}

/// `<step> <status>` for an answer.
pub fn status_label(step: &str, r: &Result<reqwest::Response, reqwest::Error>) -> String {
    match r {
        Ok(r) => format!("{step} {}", r.status().as_u16()),
        Err(e) => transport(step, e),
    }
}

pub struct Pkce {
    pub challenge: String,
    pub verifier: String,
}

pub fn pkce() -> Pkce {
    let (c, v) = openidconnect::PkceCodeChallenge::new_random_sha256();
    Pkce {
        challenge: c.as_str().to_string(),
        verifier: v.secret().clone(),
    }
}

/// An authorization URL for `site` with PKCE, a state and a nonce, and
/// `extra` (`&k=v…`) appended.
pub fn auth_url(t: &Target, site: &str, challenge: &str, extra: &str) -> String {
    format!(
        "{}?client_id={site}&redirect_uri={}&response_type=code&scope=openid&state={}&nonce={}&code_challenge={challenge}&code_challenge_method=S256{extra}",
        t.url("/authorize"),
        enc(REDIRECT),
        cyrcles_bridge::random::token(),
        cyrcles_bridge::random::token(),
    )
}

/// `GET /authorize`: the interaction path it redirects to.
pub async fn open(c: &reqwest::Client, url: &str) -> Result<String, String> {
    let res = c
        .get(url)
        .send()
        .await
        .map_err(|e| transport("authorize", &e))?;
    let s = res.status().as_u16();
    match loc(&res) {
        Some(l) if s == 303 && l.starts_with("/interaction/") => Ok(l),
        Some(l) if s == 303 && l.starts_with(REDIRECT) => Err(format!(
            "authorize: error={}",
            query(&l).get("error").cloned().unwrap_or_default()
        )),
        _ => Err(format!("authorize {s}")),
    }
}

fn attr(html: &str, name: &str) -> Option<String> {
    let pat = format!("{name}=\"");
    let start = html.find(&pat)? + pat.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// The proof-of-work token and difficulty a page asks for, if any.
pub fn pow_of(html: &str) -> Option<(String, u8)> {
    let token = input(html, "pow_token").or_else(|| attr(html, "data-pow-token"))?;
    let bits = attr(html, "data-pow-difficulty")
        .and_then(|d| d.parse().ok())
        .unwrap_or(cyrcles_bridge::pow::DEFAULT_DIFFICULTY);
    Some((token, bits))
}

/// Solves a proof of work on the blocking pool; `gate` bounds how many
/// are solved at once (the attackers use one core at most for theirs).
pub async fn solve(token: String, bits: u8, gate: Option<&Semaphore>) -> Option<String> {
    let _permit = match gate {
        Some(g) => Some(g.acquire().await.ok()?),
        None => None,
    };
    tokio::task::spawn_blocking(move || cyrcles_bridge::pow::solve(&token, bits))
        .await
        .ok()
        .flatten()
}

/// A short reason from an error page, for the failure labels.
pub fn reason(html: &str) -> String {
    let text = html
        .find("id=\"login-error\">")
        .map(|i| &html[i + "id=\"login-error\">".len()..])
        .and_then(|r| r.split('<').next())
        .or_else(|| {
            html.find("<h1>")
                .map(|i| &html[i + 4..])
                .and_then(|r| r.split('<').next())
        })
        .unwrap_or("");
    let known = [
        ("puzzle", "proof of work"),
        ("already waiting", "pending cap"),
        ("not online", "agent offline"),
        ("could not be reached", "agent unreachable"),
        ("Too many", "rate limited"),
        ("expired", "expired"),
        ("revoked", "revoked"),
    ];
    for (needle, label) in known {
        if text.contains(needle) {
            return label.to_string();
        }
    }
    text.split_whitespace()
        .take(5)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A login started: the challenge is on its way to the ego's agent.
pub struct Started {
    pub ix: String,
    pub csrf: String,
    /// `/interaction/{id}/challenge/{cid}`.
    pub wait: String,
}

/// The login page, then `POST /interaction/{id}/ego` with `ego` (and the
/// proof of work when the page carries one; once more if the gate
/// switched on between the page and the post).
pub async fn start(
    t: &Target,
    c: &reqwest::Client,
    ix: &str,
    ego: &str,
    gate: Option<&Semaphore>,
) -> Result<Started, String> {
    let res = c
        .get(t.url(ix))
        .send()
        .await
        .map_err(|e| transport("login page", &e))?;
    if res.status() != 200 {
        return Err(format!("login page {}", res.status().as_u16()));
    }
    let mut page = res.text().await.map_err(|e| transport("login page", &e))?;
    let csrf = input(&page, "csrf").ok_or("login page without csrf")?;
    for attempt in 0..2 {
        let mut form = vec![
            ("csrf".to_string(), csrf.clone()),
            ("ego_id".to_string(), ego.to_string()),
        ];
        let pow = pow_of(&page);
        let had_pow = pow.is_some();
        if let Some((token, bits)) = pow {
            let s = solve(token.clone(), bits, gate)
                .await
                .ok_or("proof of work: no solution")?;
            form.push(("pow_token".into(), token));
            form.push(("pow_solution".into(), s));
        }
        let res = c
            .post(t.url(&format!("{ix}/ego")))
            .form(&form)
            .send()
            .await
            .map_err(|e| transport("ego", &e))?;
        let s = res.status().as_u16();
        if s == 303 {
            let wait = loc(&res).ok_or("ego 303 without Location")?;
            return Ok(Started {
                ix: ix.to_string(),
                csrf,
                wait,
            });
        }
        let body = res.text().await.unwrap_or_default();
        if s == 400 && attempt == 0 && !had_pow && pow_of(&body).is_some() {
            page = body;
            continue;
        }
        return Err(format!("ego {s} ({})", reason(&body)));
    }
    Err("ego: proof of work asked twice".into())
}

/// The match code on a wait page.
fn match_code(html: &str) -> Option<u8> {
    let i = html.find("id=\"match-code\"")?;
    let rest = &html[i..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    rest[start..end].trim().parse().ok()
}

/// The wait page (whose match code the person types into their agent),
/// then the status until the challenge is decided.
pub async fn wait(
    t: &Target,
    c: &reqwest::Client,
    wait: &str,
    person: Option<(&Agent, &str, &str)>,
) -> Result<(), String> {
    let res = c
        .get(t.url(wait))
        .send()
        .await
        .map_err(|e| transport("wait page", &e))?;
    match res.status().as_u16() {
        200 => {
            let page = res.text().await.unwrap_or_default();
            if let Some((agent, ego, ip)) = person {
                agent.type_code(ego, match_code(&page), ip);
            }
        }
        // Decided already.
        303 => return Ok(()),
        s => return Err(format!("wait page {s}")),
    }
    loop {
        let res = c
            .get(t.url(&format!("{wait}/status?wait=20")))
            .send()
            .await
            .map_err(|e| transport("status", &e))?;
        if res.status() != 200 {
            return Err(format!("status {}", res.status().as_u16()));
        }
        let v: Value = res.json().await.map_err(|e| transport("status json", &e))?;
        match v["status"].as_str() {
            Some("approved") => return Ok(()),
            Some("pending") => tokio::time::sleep(Duration::from_millis(20)).await,
            Some(other) => return Err(format!("challenge {other}")),
            None => return Err("status without a status".into()),
        }
    }
}

/// `continue`, the consent page if shown, and the code exchange: the token
/// response.
pub async fn finish(
    t: &Target,
    c: &reqwest::Client,
    site: &Site,
    wait: &str,
    verifier: &str,
) -> Result<Value, String> {
    let res = c
        .get(t.url(&format!("{wait}/continue")))
        .send()
        .await
        .map_err(|e| transport("continue", &e))?;
    let s = res.status().as_u16();
    let mut next = match loc(&res) {
        Some(l) if s == 303 => l,
        _ => {
            return Err(format!(
                "continue {s} ({})",
                reason(&res.text().await.unwrap_or_default())
            ));
        }
    };
    if next.starts_with("/interaction/") {
        let page = c
            .get(t.url(&next))
            .send()
            .await
            .map_err(|e| transport("consent page", &e))?
            .text()
            .await
            .unwrap_or_default();
        if !page.contains("name=\"decision\" value=\"allow\"") {
            return Err(format!("after continue: {}", reason(&page)));
        }
        let csrf = input(&page, "csrf").ok_or("consent page without csrf")?;
        let res = c
            .post(t.url(&format!("{next}/consent")))
            .form(&[("csrf", csrf.as_str()), ("decision", "allow")])
            .send()
            .await
            .map_err(|e| transport("consent", &e))?;
        next = match loc(&res) {
            Some(l) if res.status() == 303 => l,
            _ => return Err(format!("consent {}", res.status().as_u16())),
        };
    }
    if !next.starts_with(REDIRECT) {
        return Err("continue: unexpected redirect".into());
    }
    let q = query(&next);
    let Some(code) = q.get("code") else {
        return Err(format!(
            "redirect error={}",
            q.get("error").cloned().unwrap_or_default()
        ));
    };
    exchange(t, c, site, code, verifier).await
}

/// `POST /token` with an authorization code.
pub async fn exchange(
    t: &Target,
    c: &reqwest::Client,
    site: &Site,
    code: &str,
    verifier: &str,
) -> Result<Value, String> {
    let res = c
        .post(t.url("/token"))
        .basic_auth(&site.id, Some(&site.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .map_err(|e| transport("token", &e))?;
    if res.status() != 200 {
        return Err(format!("token {}", res.status().as_u16()));
    }
    res.json().await.map_err(|e| transport("token json", &e))
}

/// A full login in a new browser at `ip`; `agent` types the match code
/// when the ego is a person's. Returns its latency and token response.
pub async fn login(
    t: &Target,
    c: &reqwest::Client,
    ip: IpAddr,
    site: &Site,
    ego: &str,
    agent: Option<&Agent>,
) -> Result<(Duration, Value), String> {
    let began = Instant::now();
    let ip_text = ip.to_string();
    let steps = async {
        let p = pkce();
        let ix = open(c, &auth_url(t, &site.id, &p.challenge, "")).await?;
        let st = start(t, c, &ix, ego, None).await?;
        wait(t, c, &st.wait, agent.map(|a| (a, ego, ip_text.as_str()))).await?;
        finish(t, c, site, &st.wait, &p.verifier).await
    };
    match tokio::time::timeout(Duration::from_secs(60), steps).await {
        Ok(Ok(v)) => Ok((began.elapsed(), v)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no outcome within 60 s".into()),
    }
}
