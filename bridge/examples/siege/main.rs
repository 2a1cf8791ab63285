//! Siege: attackers flood each public surface of a bridge, one after the
//! other, while legitimate people log in through the same bridge once a
//! second; the bridge's memory, its database and the people's logins are
//! measured against the goals of issue 12.
//!
//! ```text
//! cargo run --release -p cyrcles-bridge --example siege -- [--db sqlite|postgres] [--seconds 60] [--only NAME] [--pause 5] [--keep]
//! ```
//!
//! The bridge runs as its own process (`cyrcles-bridge serve`, on its
//! production defaults but for loopback ports and its own data directory;
//! `--db postgres` uses `CYRCLES_TEST_POSTGRES_URL` with a fresh database),
//! so that its RSS is its own. This process holds the agents (real
//! `cyrcles-p2p` nodes), the people's browsers and the attackers; all of
//! 127.0.0.0/8 is loopback on Linux, so every attacker address is its own
//! /24 and the people are at 127.0.`k`.1.
//!
//! The legitimate traffic is twelve people, each with their own agent,
//! ego and address, one login per second in all (each person every 12 s):
//! one person logging in every second would be refused by the bridge's
//! default per-ego (6/min) and per-address (20/min) start limits with no
//! attacker at all. A person approves, in their agent, only the challenge
//! whose match code their own browser shows.
//!
//! Phases (each `--seconds`; before each, the challenges the last attacker
//! sent to the people expire, then a `--pause`): `baseline` (no attack),
//! `authorize`, `status`, `register`, `login-victim`, `resend`,
//! `prompt-none`, `refresh`, `dht`, `connections`. Each prints what the
//! attacker sent and got back, the bridge's RSS (before, after, peak), the
//! database's size, the people's success rate and p50/p99, `/healthz`, and
//! the `/metrics` series that changed; a table at the end sets each number
//! against its goal.
#![allow(
    unreachable_pub,
    missing_debug_implementations,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::arithmetic_side_effects,
    // A load generator measures real time.
    clippy::disallowed_methods
)]

#[path = "../../tests/it/common.rs"]
mod common;

mod agents;
mod bridge;
mod flow;
mod http;
mod p2p;
mod tally;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agents::{Agent, Policy};
use bridge::{Bridge, Db, Metrics, Sampler};
use cyrcles_p2p::{Multiaddr, PeerId};
use flow::{Site, Target};
use futures::future::join_all;
use serde_json::{Value, json};
use tally::Tally;
use tokio::sync::Semaphore;

/// The legitimate people.
const PEOPLE: usize = 12;
/// The attacker's silent egos (the resend attack's targets).
const SILENT_EGOS: usize = 64;

const MIB: f64 = 1024.0 * 1024.0;
const GOAL_RSS_MIB: f64 = 50.0;
const GOAL_DB_MIB: f64 = 50.0;
const GOAL_SUCCESS: f64 = 0.99;
const GOAL_P99: Duration = Duration::from_secs(1);

const PHASES: [(&str, &str); 10] = [
    ("baseline", "no attack"),
    (
        "authorize",
        "GET /authorize, state/nonce/login_hint/acr_values/claims at 4096 characters each, 32 at a time from 512 addresses",
    ),
    (
        "status",
        "GET /interaction/{id}/challenge/{random 4096 characters}/status, one interaction cookie per address, 64 addresses",
    ),
    (
        "register",
        "POST /register with ~60 KB of metadata, 32 at a time from 256 addresses",
    ),
    (
        "login-victim",
        "logins started for the people's own egos from 256 other addresses (proof of work solved on one core)",
    ),
    (
        "resend",
        "POST /interaction/{id}/resend, 64 addresses, each with a login for a silent ego of the attacker",
    ),
    (
        "prompt-none",
        "the attacker's own ego logged in once, then GET /authorize?prompt=none with its session, 16 at a time",
    ),
    (
        "refresh",
        "the attacker's own site: refresh-token grants in 8 chains as fast as answered",
    ),
    (
        "dht",
        "200 hostile identities (one /24 each) PUT valid throwaway records at 120/min each, plus two records valid until the end of time; lookups of them through the login page",
    ),
    (
        "connections",
        "2048 half-open TCP connections to the p2p port from 64 addresses, and new libp2p identities connecting and leaving (16 at a time, 256 addresses)",
    ),
];

struct Args {
    db: String,
    seconds: u64,
    pause: u64,
    only: Option<String>,
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        db: "sqlite".into(),
        seconds: 60,
        pause: 5,
        only: None,
        keep: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--db" => a.db = val,
            "--seconds" => a.seconds = val.parse().expect("--seconds N"),
            "--pause" => a.pause = val.parse().expect("--pause N"),
            "--only" => a.only = Some(val),
            "--keep" => {
                a.keep = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    if let Some(o) = &a.only {
        assert!(
            PHASES.iter().any(|(n, _)| n == o),
            "--only takes one of: {}",
            PHASES.map(|(n, _)| n).join(", ")
        );
    }
    a
}

/// Where the hostile peers find the bridge's node.
pub struct P2pTarget {
    pub peer_id: PeerId,
    /// With `/p2p/<id>`.
    pub addr: Multiaddr,
    pub tcp: Multiaddr,
    pub socket: SocketAddr,
}

pub struct Person {
    pub agent: Arc<Agent>,
    pub ego: String,
    pub ip: IpAddr,
}

/// What every attack and login can reach.
pub struct World {
    pub t: Target,
    pub p2p: P2pTarget,
    /// The site the people log in to.
    pub site: Site,
    /// The attacker's own site.
    pub evil: Site,
    pub people: Vec<Person>,
    /// The attacker's node: `egos[0]` approves everything, the others
    /// never answer.
    pub mallory: Arc<Agent>,
    /// The attackers solve one proof of work at a time.
    pub gate: Arc<Semaphore>,
}

fn main() -> ExitCode {
    if std::env::var_os(bridge::MARKER).is_some() {
        return bridge::child_main();
    }
    let a = args();
    // reqwest is built without a default TLS provider here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(a))
}

async fn register_site(t: &Target, name: &str) -> Site {
    let r = reqwest::Client::new()
        .post(t.url("/register"))
        .json(&json!({
            "redirect_uris": [common::REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": name,
        }))
        .send()
        .await
        .expect("register a site");
    assert_eq!(r.status(), 201, "site registration refused");
    let v: Value = r.json().await.unwrap();
    Site {
        id: v["client_id"].as_str().unwrap().to_string(),
        secret: v["client_secret"].as_str().unwrap().to_string(),
    }
}

/// One login a second, person after person, until `deadline`.
async fn legit(w: Arc<World>, deadline: Instant) -> Vec<Result<Duration, String>> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut tasks = Vec::new();
    let mut n = 0;
    loop {
        tick.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let p = &w.people[n % w.people.len()];
            let c = flow::browser(p.ip);
            flow::login(&w.t, &c, p.ip, &w.site, &p.ego, Some(&p.agent))
                .await
                .map(|(d, _)| d)
        }));
        n += 1;
    }
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|_| Err("login task panicked".into())))
        .collect()
}

/// Challenges an attacker sent to the people stay pending at the bridge
/// until they expire (the people never answer them), and with them the
/// per-ego limits they used: the next phase starts once they have expired,
/// so that each phase measures its own attack.
async fn settle(w: &World) {
    let began = Instant::now();
    let held = || w.people.iter().map(|p| p.agent.unanswered()).sum::<usize>();
    if held() == 0 {
        return;
    }
    while held() > 0 && began.elapsed() < Duration::from_secs(150) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "(waited {:.0} s for the challenges sent to the people to expire)",
        began.elapsed().as_secs_f64()
    );
}

async fn attack(name: &str, w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    match name {
        "baseline" => tokio::time::sleep_until(deadline.into()).await,
        "authorize" => http::authorize(w, deadline, tally).await,
        "status" => http::status(w, deadline, tally).await,
        "register" => http::register(w, deadline, tally).await,
        "login-victim" => http::login_victim(w, deadline, tally).await,
        "resend" => http::resend(w, deadline, tally).await,
        "prompt-none" => http::prompt_none(w, deadline, tally).await,
        "refresh" => http::refresh(w, deadline, tally).await,
        "dht" => p2p::dht(w, deadline, tally).await,
        "connections" => p2p::connections(w, deadline, tally).await,
        other => unreachable!("phase {other}"),
    }
}

struct Snapshot {
    rss: u64,
    db: Vec<(String, u64)>,
    metrics: Metrics,
}

impl Snapshot {
    async fn take(b: &Bridge) -> Snapshot {
        Snapshot {
            rss: b.rss().unwrap_or(0),
            db: b.db_files().await,
            metrics: b.metrics().await,
        }
    }

    fn db_total(&self) -> u64 {
        self.db.iter().map(|(_, s)| s).sum()
    }
}

struct Outcome {
    name: &'static str,
    before: Snapshot,
    after: Snapshot,
    peak: u64,
    secs: f64,
    logins: Vec<Result<Duration, String>>,
    tally: Arc<Tally>,
    health: String,
}

fn mib(b: u64) -> f64 {
    b as f64 / MIB
}

fn pct(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((sorted.len() as f64 - 1.0) * p).round() as usize])
}

impl Outcome {
    fn rss_growth(&self) -> f64 {
        (self.after.rss as f64 - self.before.rss as f64) / MIB
    }
    fn db_growth(&self) -> f64 {
        (self.after.db_total() as f64 - self.before.db_total() as f64) / MIB
    }
    fn latencies(&self) -> Vec<Duration> {
        let mut l: Vec<Duration> = self.logins.iter().filter_map(|r| r.clone().ok()).collect();
        l.sort();
        l
    }
    fn success(&self) -> f64 {
        let ok = self.logins.iter().filter(|r| r.is_ok()).count();
        ok as f64 / self.logins.len().max(1) as f64
    }

    fn print(&self) {
        let lat = self.latencies();
        let ms = |d: Option<Duration>| {
            d.map_or("-".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
        };
        if self.name != "baseline" {
            for l in self.tally.lines(self.secs) {
                println!("  attacker: {l}");
            }
        }
        let mut failures: std::collections::BTreeMap<&str, usize> = Default::default();
        for e in self.logins.iter().filter_map(|r| r.as_ref().err()) {
            *failures.entry(e.as_str()).or_default() += 1;
        }
        println!(
            "  people: {} logins, {} ok ({:.1} %), p50 {}, p99 {}{}",
            self.logins.len(),
            lat.len(),
            self.success() * 100.0,
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99)),
            if failures.is_empty() {
                String::new()
            } else {
                format!(
                    "; failed: {}",
                    failures
                        .iter()
                        .map(|(k, n)| format!("{k} ×{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        println!(
            "  bridge RSS: {:.1} → {:.1} MiB (peak {:.1}), {:+.1} MiB",
            mib(self.before.rss),
            mib(self.after.rss),
            mib(self.peak.max(self.after.rss)),
            self.rss_growth()
        );
        println!(
            "  database: {}; {:+.1} MiB",
            self.before
                .db
                .iter()
                .zip(&self.after.db)
                .map(|((n, a), (_, b))| format!("{n} {:.1} → {:.1} MiB", mib(*a), mib(*b)))
                .collect::<Vec<_>>()
                .join(", "),
            self.db_growth()
        );
        println!("  /healthz after: {}", self.health);
        let changes = self.after.metrics.changes(&self.before.metrics);
        if !changes.is_empty() {
            println!("  /metrics changes:");
            for c in changes {
                println!("    {c}");
            }
        }
    }
}

fn goal(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn table(results: &[Outcome]) {
    println!();
    println!(
        "| attack | attacker sent | bridge RSS before → after (peak) | RSS growth (≤ 50 MiB) | database growth (≤ 50 MiB) | legitimate success (≥ 99 %) | legitimate p99 (≤ 1 s) | /healthz after |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in results {
        let lat = r.latencies();
        let p99 = pct(&lat, 0.99);
        let sent = if r.name == "baseline" {
            "-".to_string()
        } else {
            format!("{:.0}/s", r.tally.rate(r.secs))
        };
        let health = r
            .health
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_string();
        let p2p_ok = if r.health.contains("\"p2p\":true") {
            ""
        } else {
            ", p2p down"
        };
        println!(
            "| {} | {sent} | {:.0} → {:.0} MiB ({:.0}) | {:+.1} MiB {} | {:+.1} MiB {} | {:.1} % ({}/{}) {} | {} {} | {health}{p2p_ok} |",
            r.name,
            mib(r.before.rss),
            mib(r.after.rss),
            mib(r.peak.max(r.after.rss)),
            r.rss_growth(),
            goal(r.rss_growth() <= GOAL_RSS_MIB),
            r.db_growth(),
            goal(r.db_growth() <= GOAL_DB_MIB),
            r.success() * 100.0,
            lat.len(),
            r.logins.len(),
            goal(r.success() >= GOAL_SUCCESS && !r.logins.is_empty()),
            p99.map_or("-".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1e3)),
            goal(p99.is_some_and(|d| d <= GOAL_P99)),
        );
    }
    println!();
    println!("What the attackers got back (share of their requests by step and status):");
    for r in results.iter().filter(|r| r.name != "baseline") {
        println!("- {}: {}", r.name, r.tally.shares());
    }
}

async fn run(a: Args) -> ExitCode {
    let db = match a.db.as_str() {
        "sqlite" => Db::Sqlite,
        "postgres" => Db::Postgres(
            common::postgres_db()
                .await
                .expect("--db postgres needs CYRCLES_TEST_POSTGRES_URL"),
        ),
        other => panic!("--db sqlite|postgres, not {other}"),
    };
    let mut bridge = Bridge::start(db).await;
    let t = Target {
        issuer: bridge.issuer.clone(),
    };
    println!(
        "bridge: pid {}, {}, p2p {}, database {}, data {}",
        bridge.pid,
        bridge.issuer,
        bridge.p2p_addr,
        a.db,
        bridge.dir.display()
    );
    let site = register_site(&t, "Siege Site").await;
    let evil = register_site(&t, "Attacker Site").await;
    let mut people = Vec::new();
    for k in 0..PEOPLE {
        let agent = Agent::start(&bridge.p2p_addr, &[Policy::Person], false).await;
        people.push(Person {
            ego: agent.egos[0].clone(),
            agent,
            ip: IpAddr::V4(Ipv4Addr::new(127, 0, u8::try_from(k).unwrap(), 1)),
        });
    }
    let mut policies = vec![Policy::Auto];
    policies.extend([Policy::Silent; SILENT_EGOS]);
    let mallory = Agent::start(&bridge.p2p_addr, &policies, true).await;
    let world = Arc::new(World {
        t,
        p2p: P2pTarget {
            peer_id: bridge.peer_id,
            addr: bridge.p2p_addr.clone(),
            tcp: bridge.p2p_tcp.clone(),
            socket: bridge.p2p_socket,
        },
        site,
        evil,
        people,
        mallory,
        gate: Arc::new(Semaphore::new(1)),
    });
    // Each person logs in once first (and consents to the site).
    for (k, p) in world.people.iter().enumerate() {
        let c = flow::browser(p.ip);
        if let Err(e) = flow::login(&world.t, &c, p.ip, &world.site, &p.ego, Some(&p.agent)).await {
            println!(
                "person {k}'s first login failed ({e}); the siege cannot run. Bridge log:\n{}",
                bridge.log_tail(30)
            );
            bridge.finish(a.keep).await;
            return ExitCode::FAILURE;
        }
    }
    println!(
        "{PEOPLE} people logged in once each; {} s per phase, {} s pause before each\n",
        a.seconds, a.pause
    );
    let sampler = Sampler::start(bridge.pid);
    let mut results = Vec::new();
    for (name, what) in PHASES {
        if a.only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        settle(&world).await;
        tokio::time::sleep(Duration::from_secs(a.pause)).await;
        let before = Snapshot::take(&bridge).await;
        println!("== {name}: {what}");
        let began = Instant::now();
        let deadline = began + Duration::from_secs(a.seconds);
        let tally = Arc::new(Tally::default());
        let people = tokio::spawn(legit(world.clone(), deadline));
        attack(name, world.clone(), deadline, tally.clone()).await;
        let attack_secs = began.elapsed().as_secs_f64();
        let logins = people.await.unwrap();
        let ended = Instant::now();
        let after = Snapshot::take(&bridge).await;
        let health = if bridge.alive() {
            bridge.health().await
        } else {
            "the bridge process has exited".to_string()
        };
        let r = Outcome {
            name,
            before,
            after,
            peak: sampler.peak(began, ended),
            secs: attack_secs,
            logins,
            tally,
            health,
        };
        r.print();
        println!();
        results.push(r);
        if !bridge.alive() {
            println!("the bridge exited; its log:\n{}", bridge.log_tail(40));
            break;
        }
    }
    table(&results);
    bridge.finish(a.keep).await;
    ExitCode::SUCCESS
}
