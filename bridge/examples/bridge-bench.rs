//! Load generator for the bridge, run on this machine against a bridge it
//! starts in-process (loopback HTTP, a real p2p network with auto-approving
//! agent peers).
//!
//! ```text
//! cargo run --release -p cyrcles-bridge --example bridge-bench -- [--db sqlite|postgres] [--seconds 5] [--concurrency 32]
//! ```
//!
//! With `--db postgres` it uses `CYRCLES_TEST_POSTGRES_URL` (a fresh
//! database is created). It prints requests per second for discovery, JWKS,
//! introspection and code exchange (RS256 and EdDSA ID tokens), then full
//! logins per second (authorize → ego form → challenge over libp2p to an
//! auto-approving agent → code → token) with p50/p99, and the latency of
//! logins paced at half that rate.
#![allow(
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects,
    // A benchmark measures real time.
    clippy::disallowed_methods
)]

#[path = "../tests/it/common.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{BridgeOptions, Db, REDIRECT, TestAgent, TestBridge, browser, input, location};
use cyrcles_bridge::store::{CodeRow, NewGrant, TokenKind};
use cyrcles_bridge::{crypto, random};
use serde_json::{Value, json};

struct Args {
    db: String,
    seconds: u64,
    concurrency: usize,
    only: Option<String>,
}

impl Args {
    fn wants(&self, phase: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == phase)
    }
}

fn args() -> Args {
    let mut a = Args {
        db: "sqlite".into(),
        seconds: 5,
        concurrency: 32,
        only: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--db" => a.db = val,
            "--seconds" => a.seconds = val.parse().unwrap(),
            "--concurrency" => a.concurrency = val.parse().unwrap(),
            "--only" => a.only = Some(val),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// Runs `work` from `c` workers for `secs` seconds; returns successes per
/// second.
async fn throughput<F, Fut>(c: usize, secs: u64, work: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let work = Arc::new(work);
    let ok = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..c {
        let (work, ok, counter) = (work.clone(), ok.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if work(w, n).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    ok.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

/// One full login as a new browser; returns its latency.
async fn one_login(bridge: &TestBridge, id: &str, secret: &str, ego: &str) -> Option<Duration> {
    let t = Instant::now();
    let b = browser();
    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    let url = format!(
        "{}?client_id={id}&redirect_uri={REDIRECT}&response_type=code&scope=openid&state=s&nonce=n&code_challenge={}&code_challenge_method=S256",
        bridge.url("/authorize"),
        challenge.as_str()
    );
    let ix = location(&b.get(&url).send().await.ok()?);
    let page = b
        .get(bridge.url(&ix))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let csrf = input(&page, "csrf")?;
    let res = b
        .post(bridge.url(&format!("{ix}/ego")))
        .form(&[("csrf", csrf.as_str()), ("ego_id", ego)])
        .send()
        .await
        .ok()?;
    if res.status() != 303 {
        return None;
    }
    let wait = location(&res);
    loop {
        let s: Value = b
            .get(bridge.url(&format!("{wait}/status?wait=20")))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if s["status"] == "approved" {
            break;
        }
        if s["status"] != "pending" {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let res = b
        .get(bridge.url(&format!("{wait}/continue")))
        .send()
        .await
        .ok()?;
    let code = common::query(&location(&res)).get("code")?.clone();
    let res = b
        .post(bridge.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.secret().as_str()),
        ])
        .send()
        .await
        .ok()?;
    if res.status() != 200 {
        return None;
    }
    Some(t.elapsed())
}

#[tokio::main]
async fn main() {
    let a = args();
    let db = match a.db.as_str() {
        "sqlite" => Db::Sqlite,
        "postgres" => Db::Postgres(
            common::postgres_db()
                .await
                .expect("set CYRCLES_TEST_POSTGRES_URL"),
        ),
        other => panic!("--db sqlite|postgres, not {other}"),
    };
    let bridge = Arc::new(
        TestBridge::start_with(BridgeOptions {
            db,
            env: vec![
                // Measure the bridge, not its abuse limits.
                (
                    "CYRCLES_BRIDGE_LOGIN_POW_THRESHOLD_PER_MINUTE".into(),
                    "100000000".into(),
                ),
                (
                    "CYRCLES_BRIDGE_LOGIN_MAX_PENDING_PER_EGO".into(),
                    "1000".into(),
                ),
                (
                    "CYRCLES_BRIDGE_LOGIN_MAX_PENDING_PER_EGO_PER_IP".into(),
                    "1000".into(),
                ),
            ],
            ..Default::default()
        })
        .await,
    );
    let (rs_id, rs_secret) = bridge.confidential().await;
    let (ed_id, ed_secret) = bridge
        .client(json!({"redirect_uris": [REDIRECT], "id_token_signed_response_alg": "EdDSA"}))
        .await;
    let ed_secret = ed_secret.unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 2)
        .build()
        .unwrap();
    println!(
        "database: {}; concurrency {}; {} s per measurement",
        a.db, a.concurrency, a.seconds
    );

    for (name, path) in [
        ("discovery", "/.well-known/openid-configuration"),
        ("jwks", "/jwks"),
    ] {
        if !a.wants(name) {
            continue;
        }
        let (h, url) = (http.clone(), bridge.url(path));
        let rate = throughput(a.concurrency, a.seconds, move |_, _| {
            let (h, url) = (h.clone(), url.clone());
            async move { h.get(&url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        println!("{name:<28} {rate:>9.0} req/s");
    }

    // Introspection of 1000 live access tokens.
    let now = bridge.clock.now();
    let store = bridge.state.store.clone();
    let grant = |gid: &str, client: &str| NewGrant {
        grant_id: gid.into(),
        client_id: client.into(),
        ego_id: "bench".into(),
        sid: None,
        sub: "bench-sub".into(),
        scope: "openid".into(),
        claims: None,
        nonce: Some("n".into()),
        auth_time: now,
        acr: cyrcles_bridge::oidc::acr::PERSON.into(),
        cert_seq: Some(1),
        cert_epoch: Some(0),
        created_at: now,
        revoked_at: None,
    };
    store
        .insert_grant(&grant("bench-grant", &rs_id))
        .await
        .unwrap();
    let tokens: Arc<Vec<String>> = Arc::new((0..1000).map(|_| random::token()).collect());
    for t in tokens.iter() {
        store
            .insert_token(
                &crypto::sha256(t),
                TokenKind::Access,
                "bench-grant",
                &rs_id,
                "openid",
                now,
                now + 3_600,
            )
            .await
            .unwrap();
    }
    if a.wants("introspection") {
        let (h, url, id, secret, tokens) = (
            http.clone(),
            bridge.url("/introspect"),
            rs_id.clone(),
            rs_secret.clone(),
            tokens.clone(),
        );
        let rate = throughput(a.concurrency, a.seconds, move |_, n| {
            let (h, url, id, secret) = (h.clone(), url.clone(), id.clone(), secret.clone());
            let token = tokens[(n % 1000) as usize].clone();
            async move {
                let r = h
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await;
                match r {
                    Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["active"] == true),
                    Err(_) => false,
                }
            }
        })
        .await;
        println!("{:<28} {rate:>9.0} req/s", "introspection");
    }

    // Code exchange: codes made ahead, redeemed once each.
    for (label, id, secret) in [
        ("code exchange (RS256)", &rs_id, &rs_secret),
        ("code exchange (EdDSA)", &ed_id, &ed_secret),
    ] {
        if !a.wants("exchange") {
            continue;
        }
        let n_codes = 60_000;
        let gid = format!("grant-{label}");
        store.insert_grant(&grant(&gid, id)).await.unwrap();
        let codes: Arc<Vec<String>> = Arc::new((0..n_codes).map(|_| random::token()).collect());
        for c in codes.iter() {
            store
                .insert_code(&CodeRow {
                    code_hash: crypto::sha256(c),
                    grant_id: gid.clone(),
                    client_id: id.to_string(),
                    redirect_uri: REDIRECT.into(),
                    code_challenge: None,
                    expires_at: now + 3_600,
                })
                .await
                .unwrap();
        }
        let used = Arc::new(AtomicUsize::new(0));
        let (h, url, id, secret) = (
            http.clone(),
            bridge.url("/token"),
            id.to_string(),
            secret.to_string(),
        );
        let rate = throughput(a.concurrency, a.seconds, move |_, _| {
            let (h, url, id, secret, codes) = (
                h.clone(),
                url.clone(),
                id.clone(),
                secret.clone(),
                codes.clone(),
            );
            let i = used.fetch_add(1, Ordering::Relaxed);
            async move {
                let Some(code) = codes.get(i) else {
                    return false;
                };
                let r = h
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", code.as_str()),
                        ("redirect_uri", REDIRECT),
                    ])
                    .send()
                    .await;
                r.is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
        println!("{label:<28} {rate:>9.0} req/s");
    }

    // Full logins: one ego (agent peer) per worker, consent granted ahead.
    let workers = a.concurrency.min(16);
    let mut egos = Vec::new();
    let mut agents = Vec::new();
    for w in 0..workers {
        let agent = TestAgent::start(&bridge, 1_000 + w as u64).await;
        store
            .put_consent(&agent.ego_text(), &rs_id, "openid", now)
            .await
            .unwrap();
        egos.push(agent.ego_text());
        agents.push(agent);
    }
    let egos = Arc::new(egos);
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    if a.wants("login") {
        let (bridge2, id, secret, egos2, lat) = (
            bridge.clone(),
            rs_id.clone(),
            rs_secret.clone(),
            egos.clone(),
            latencies.clone(),
        );
        let rate = throughput(workers, a.seconds * 2, move |w, _| {
            let (bridge, id, secret, ego, lat) = (
                bridge2.clone(),
                id.clone(),
                secret.clone(),
                egos2[w].clone(),
                lat.clone(),
            );
            async move {
                match one_login(&bridge, &id, &secret, &ego).await {
                    Some(d) => {
                        lat.lock().unwrap().push(d);
                        true
                    }
                    None => false,
                }
            }
        })
        .await;
        let mut l = latencies.lock().unwrap().clone();
        l.sort();
        println!(
            "{:<28} {rate:>9.0} logins/s  (p50 {:.1} ms, p99 {:.1} ms, {workers} concurrent)",
            "full login",
            pct(&l, 0.5),
            pct(&l, 0.99)
        );

        // The same, paced at half that rate.
        let half = (rate / 2.0).max(1.0);
        let interval = Duration::from_secs_f64(workers as f64 / half);
        let paced = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(a.seconds * 2);
        for w in 0..workers {
            let (bridge, id, secret, ego, paced) = (
                bridge.clone(),
                rs_id.clone(),
                rs_secret.clone(),
                egos[w].clone(),
                paced.clone(),
            );
            tasks.push(tokio::spawn(async move {
                // Stagger the workers over one interval.
                tokio::time::sleep(interval.mul_f64(w as f64 / workers as f64)).await;
                let mut tick = tokio::time::interval(interval);
                while Instant::now() < deadline {
                    tick.tick().await;
                    if let Some(d) = one_login(&bridge, &id, &secret, &ego).await {
                        paced.lock().unwrap().push(d);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut l = paced.lock().unwrap().clone();
        l.sort();
        println!(
            "{:<28} {half:>9.0} logins/s offered: p50 {:.1} ms, p99 {:.1} ms ({} logins)",
            "full login at half rate",
            pct(&l, 0.5),
            pct(&l, 0.99),
            l.len()
        );
    }
    drop(agents);
}
