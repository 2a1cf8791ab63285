//! Targeted login denial (finding 6 of the 2026-12 review): anyone who
//! knows an ego id keeps starting logins for it from their own address.
//! The pending caps and start limits are per (ego, client prefix), and the
//! per-ego total makes room for a new prefix, so the person still logs in
//! from theirs.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::attacker::browser_from;
use crate::common::{
    Answer, BridgeOptions, Rp, TestAgent, TestBridge, browse, env, input, location, open_page,
    start_login,
};
use cyrcles_testkit::wait_until;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// One login start for `ego` from `from`: the status of the ego form.
async fn start(bridge: &TestBridge, rp: &Rp, from: IpAddr, ego: &str) -> u16 {
    let b = browser_from(from);
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let (ix, page) = open_page(bridge, &b, &url).await;
    let csrf = input(&page, "csrf").unwrap();
    b.post(bridge.url(&format!("{ix}/ego")))
        .form(&[("csrf", csrf.as_str()), ("ego_id", ego)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A stranger's loop of login starts for `ego` from `addrs`, until told
/// to stop; counts the starts that sent a challenge.
fn stranger(
    bridge: &Arc<TestBridge>,
    rp: &Arc<Rp>,
    addrs: Vec<IpAddr>,
    ego: String,
    stop: Arc<AtomicBool>,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    let sent = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let (bridge, rp, sent) = (bridge.clone(), rp.clone(), sent.clone());
        async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let from = addrs[i % addrs.len()];
                i += 1;
                if start(&bridge, &rp, from, &ego).await == 303 {
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
    (task, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_starting_logins_for_an_ego_does_not_keep_its_owner_out() {
    // The defaults of the per-ego limits, and the default per-address rate.
    let bridge = Arc::new(
        TestBridge::start_with(BridgeOptions {
            env: env(&[
                ("CYRCLES_BRIDGE_LOGIN_STARTS_PER_IP_PER_MINUTE", "20"),
                ("CYRCLES_BRIDGE_LOGIN_STARTS_PER_EGO_PER_IP_PER_MINUTE", "6"),
                ("CYRCLES_BRIDGE_LOGIN_MAX_PENDING_PER_EGO_PER_IP", "3"),
                ("CYRCLES_BRIDGE_LOGIN_MAX_PENDING_PER_EGO", "12"),
            ]),
            ..Default::default()
        })
        .await,
    );
    let agent = TestAgent::start(&bridge, 81).await;
    let owner = ip(2);
    // The owner types the code of their own login only.
    agent.set_answer(Answer::ApproveOnlyFrom(owner));
    let (id, secret) = bridge.confidential().await;
    let rp = Arc::new(Rp::discover(&bridge, &id, Some(&secret)).await);

    // The stranger fills what their addresses may hold first...
    for from in [ip(3), ip(4)] {
        let mut statuses = Vec::new();
        for _ in 0..8 {
            statuses.push(start(&bridge, &rp, from, &agent.ego_text()).await);
        }
        assert_eq!(&statuses[..3], &[303, 303, 303], "{statuses:?}");
        assert!(
            statuses[3..].iter().all(|s| [400, 429].contains(s)),
            "{statuses:?}"
        );
    }
    // ...and keeps going while the owner logs in, twice.
    let stop = Arc::new(AtomicBool::new(false));
    let (task, _) = stranger(
        &bridge,
        &rp,
        vec![ip(3), ip(4)],
        agent.ego_text(),
        stop.clone(),
    );
    for _ in 0..2 {
        let (url, _, _, _) = rp.auth_url(&[], &[]);
        browse(&bridge, &browser_from(owner), &url, &agent.ego_text())
            .await
            .code();
    }
    stop.store(true, Ordering::SeqCst);
    task.await.unwrap();
    assert!(
        bridge.state.metrics.logins("approved") >= 2,
        "the owner's logins were approved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_per_ego_total_a_new_address_takes_the_place_of_the_heaviest() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: env(&[
            ("CYRCLES_BRIDGE_LOGIN_MAX_PENDING_PER_EGO_PER_IP", "3"),
            ("CYRCLES_BRIDGE_LOGIN_MAX_PENDING_PER_EGO", "3"),
        ]),
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 82).await;
    agent.set_answer(Answer::Hold);
    let ego = agent.ego_text();
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let pending = |prefix: &'static str| {
        let (bridge, ego) = (&bridge, &ego);
        async move {
            bridge
                .state
                .store
                .pending_challenges_of(ego, prefix, bridge.clock.now())
                .await
                .unwrap()
        }
    };
    // The stranger holds every place the ego has.
    for _ in 0..3 {
        assert_eq!(start(&bridge, &rp, ip(6), &ego).await, 303);
    }
    assert_eq!(pending("127.0.0.6").await, 3);
    // The owner's start cancels the stranger's oldest...
    let owner = browser_from(ip(5));
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let (_, res, _) = start_login(&bridge, &owner, &url, &ego).await;
    assert_eq!(res.status(), 303);
    let wait = bridge.url(&location(&res));
    assert_eq!(
        (pending("127.0.0.5").await, pending("127.0.0.6").await),
        (1, 2)
    );
    assert!(bridge.state.metrics.logins("replaced") >= 1);
    // ...and the stranger cannot take it back: its address holds the most.
    for _ in 0..3 {
        assert_eq!(start(&bridge, &rp, ip(6), &ego).await, 400);
    }
    assert_eq!(
        (pending("127.0.0.5").await, pending("127.0.0.6").await),
        (1, 2)
    );
    // The owner approves and logs in.
    wait_until(30, "the agent holds the owner's challenge", || async {
        agent.held_count() >= 4
    })
    .await;
    agent.answer_held(true);
    let s: serde_json::Value = owner
        .get(format!("{wait}/status?wait=20"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "approved", "{s}");
    browse(&bridge, &owner, &format!("{wait}/continue"), &ego)
        .await
        .code();
}
