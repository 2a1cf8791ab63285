//! Login floods against one ego: a hostile node, or strangers at the
//! person's own bridge, send challenges for the ego as fast as the
//! agent's node lets them. Their requests spend their own source's
//! allowance and push out only their own waiting requests; the person's
//! login through the bridge is still shown, approved with the code, and
//! the person's later logins are not `rate_limited`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cyrcles_core::EgoId;
use cyrcles_core::login::{DenyReason, LoginChallenge, LoginResponse, verify_approval};
use cyrcles_core::record::VerifiedEgo;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::common::{BIN, Bridge};
use cyrcles_testkit::{Agent, bounded, wait_for, wait_until};

/// The person's browser.
const PERSON_IP: &str = "203.0.113.7";

async fn setup() -> (Bridge, Agent, EgoId, VerifiedEgo) {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let agent = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let id = agent.create("main").await;
    let record = bridge.resolve(id).await;
    (bridge, agent, id, record)
}

/// A flood of challenges running in the background.
struct Flood {
    answered: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Flood {
    /// Sends `total` challenges made by `make` from `from`, at most
    /// `parallel` at a time.
    fn start(
        from: &Bridge,
        record: &VerifiedEgo,
        total: usize,
        parallel: usize,
        make: impl Fn(usize) -> LoginChallenge + Send + 'static,
    ) -> Flood {
        let answered = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let (from, record) = (from.clone(), record.clone());
        let (a, r) = (answered.clone(), refused.clone());
        let task = tokio::spawn(async move {
            let gate = Arc::new(Semaphore::new(parallel));
            let mut sends = tokio::task::JoinSet::new();
            for i in 0..total {
                let permit = gate.clone().acquire_owned().await.unwrap();
                let (from, record, ch) = (from.clone(), record.clone(), make(i));
                let (a, r) = (a.clone(), r.clone());
                sends.spawn(async move {
                    let answer = from.login(&record, &ch).await;
                    a.fetch_add(1, Ordering::SeqCst);
                    if matches!(
                        answer,
                        Ok(LoginResponse::Denied(DenyReason::RateLimited)) | Err(_)
                    ) {
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                    assert!(
                        !matches!(answer, Ok(LoginResponse::Approved(_))),
                        "a flood request was approved"
                    );
                    drop(permit);
                });
            }
            while sends.join_next().await.is_some() {}
        });
        Flood {
            answered,
            refused,
            task,
        }
    }

    /// Waits until at least `n` of its requests were refused.
    async fn refused_at_least(&self, n: usize) {
        wait_until(60, "the flood to be refused", || async {
            self.refused.load(Ordering::SeqCst) >= n
        })
        .await;
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The waiting requests sent by `peer`.
fn from_peer(requests: &[Value], peer: &Bridge) -> Vec<Value> {
    let id = peer.node.peer_id().to_string();
    requests
        .iter()
        .filter(|r| r["bridge_peer"] == id.as_str())
        .cloned()
        .collect()
}

/// The person logs in through `bridge` at `client` and approves with the
/// code, while whatever else waits; asserts the approval verifies.
async fn person_logs_in(
    bridge: &Bridge,
    agent: &Agent,
    record: &VerifiedEgo,
    client: &str,
    code: u8,
) {
    let ch = bridge.challenge_from(record.ego_id(), client, code, PERSON_IP);
    let (b, r, c) = (bridge.clone(), record.clone(), ch.clone());
    let mut answer = tokio::spawn(async move { b.login(&r, &c).await });
    let peer = bridge.node.peer_id().to_string();
    let nonce_site = client.to_string();
    // The person's request shows up among the others.
    let shown = wait_for(30, "the person's request to be shown", || async {
        let v = agent.json(&["requests"]).await;
        let mine = v["requests"].as_array().unwrap().iter().find(|r| {
            r["bridge_peer"] == peer.as_str()
                && r["client_ip"] == PERSON_IP
                && r["client_id"] == nonce_site.as_str()
        });
        mine.map(|r| r["id"].as_u64().unwrap().to_string())
    });
    let rid = tokio::select! {
        early = &mut answer => {
            panic!("the person's login was answered without a prompt: {:?}", early.unwrap())
        }
        rid = shown => rid,
    };
    let out = agent
        .cli(&["approve", &rid, "--code", &format!("{code:02}")])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let resp = bounded(20, "the person's answer", answer)
        .await
        .unwrap()
        .unwrap();
    let LoginResponse::Approved(a) = resp else {
        panic!("expected an approval, got {resp:?}");
    };
    assert_eq!(verify_approval(&ch, &a, record, bridge.now()), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_node_flooding_an_ego_leaves_the_bridge_s_login_through() {
    let (bridge, agent, id, record) = setup().await;
    // A stranger's node knows the ego id (it is public) and floods its
    // node with challenges claiming the person's bridge and site, from
    // made-up browsers everywhere, as fast as the node lets one peer
    // send (120 a minute, 8 at a time).
    let evil = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let e = evil.clone();
    let flood = Flood::start(&evil, &record, 200, 16, move |i| {
        e.challenge_from(id, "shop", 1, &format!("198.51.{}.{}", i % 200, i % 7))
    });
    flood.refused_at_least(40).await;
    // The stranger holds at most its share of the waiting slots.
    let waiting = agent.json(&["requests"]).await;
    let theirs = from_peer(waiting["requests"].as_array().unwrap(), &evil);
    assert!(theirs.len() <= 4, "{waiting}");
    // The person's login, same site, through the real bridge: shown, and
    // approved with the code.
    person_logs_in(&bridge, &agent, &record, "shop", 42).await;
    // Meanwhile the flood was answered, never approved.
    assert!(flood.answered.load(Ordering::SeqCst) >= 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_at_the_person_s_bridge_do_not_block_the_person() {
    let (bridge, agent, id, record) = setup().await;
    // Strangers start logins for the ego at the person's own bridge from
    // their network: the same peer sends them, with their address.
    let b = bridge.clone();
    // Six at a time: the node takes eight at a time from one peer, and
    // the person's request must find room beside them.
    let flood = Flood::start(&bridge, &record, 60, 6, move |i| {
        b.challenge_from(id, "shop", 1, &format!("198.51.100.{}", i % 250))
    });
    flood.refused_at_least(20).await;
    let waiting = agent.json(&["requests"]).await;
    let theirs = from_peer(waiting["requests"].as_array().unwrap(), &bridge);
    assert!(theirs.len() <= 2, "{waiting}");
    // The person, from their own network, is shown and approved.
    person_logs_in(&bridge, &agent, &record, "shop", 17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_does_not_make_the_person_s_later_logins_rate_limited() {
    let (bridge, agent, id, record) = setup().await;
    // A hostile node claims the person's bridge and many of its sites,
    // enough to spend every quota of the person's many times over.
    let evil = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let e = evil.clone();
    let flood = Flood::start(&evil, &record, 100, 8, move |i| {
        e.challenge_from(id, &format!("site{}", i % 25), 1, &format!("192.0.2.{i}"))
    });
    flood.refused_at_least(50).await;
    // The person denies what the stranger left waiting.
    let waiting = agent.json(&["requests"]).await;
    for r in from_peer(waiting["requests"].as_array().unwrap(), &evil) {
        let _ = agent.cli(&["deny", &r["id"].to_string()]).await;
    }
    // The flood alone would have spent the person's bridge quota (10),
    // each claimed site's (5) and the total (20), had it counted there.
    // The person's logins through the bridge go on, each approved.
    for (i, site) in ["site0", "site1", "site2", "site0", "site3", "site4"]
        .iter()
        .enumerate()
    {
        person_logs_in(
            &bridge,
            &agent,
            &record,
            site,
            50 + u8::try_from(i).unwrap(),
        )
        .await;
    }
}
