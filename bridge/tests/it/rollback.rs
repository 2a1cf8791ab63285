//! The bridge's anti-rollback memory (lower finding of the 2026-12
//! review): the ego cache keeps the best record seen, and that summary
//! holds after the record itself stops verifying. Once an ego's newest
//! certificate has expired, an older certificate that is still valid (a
//! longer one, perhaps for a key the owner replaced) is refused, not taken.

use cyrcles_bridge::login::resolve::{ResolveError, resolve};
use cyrcles_core::cbor::Encode;
use cyrcles_p2p::{DhtMode, Keypair, Node, NodeConfig};

use crate::common::{BridgeOptions, TestAgent, TestBridge, TestClock};
use cyrcles_testkit::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_certificate_is_refused_after_the_newest_expires() {
    let clock = TestClock::new();
    let mut bridge = TestBridge::start_with(BridgeOptions {
        clock: clock.clone(),
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 121).await;
    let ego = agent.ego_id;
    // The bridge sees seq 1 (valid 30 days), then seq 2 (valid an hour).
    let first = resolve(&bridge.state, ego, true).await.unwrap();
    assert_eq!(first.cert().seq, 1);
    let old = agent.keys.lock().unwrap().record.to_cbor();
    agent.rotate_for(clock.now(), 3_600).await;
    assert_eq!(
        resolve(&bridge.state, ego, true).await.unwrap().cert().seq,
        2
    );

    // The bridge restarts (a new DHT node, with an empty memory of its
    // own), two hours pass, and someone puts the old record back.
    let dir = bridge.dir.clone();
    bridge.stop().await;
    let bridge = TestBridge::start_with(BridgeOptions {
        clock: clock.clone(),
        dir: Some(dir),
        ..Default::default()
    })
    .await;
    clock.advance(2 * 3_600);
    let mut c = NodeConfig::new(Keypair::ed25519_from_bytes([0x5e; 32]).unwrap());
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c.bootstrap = vec![bridge.p2p_addr.clone()];
    c.mode = DhtMode::Auto;
    c.clock = clock.clock();
    let (replayer, _events) = Node::spawn(c).await.unwrap();
    wait_until(90, "the old record is put back", || async {
        matches!(replayer.publish(old.clone()).await, Ok(p) if p.stored_at > 0)
    })
    .await;

    // Seq 1 verifies on its own, but the bridge has seen seq 2.
    match resolve(&bridge.state, ego, true).await {
        Err(ResolveError::Stale) => {}
        Ok(v) => panic!("rolled back to seq {}", v.cert().seq),
        Err(e) => panic!("{e}"),
    }
    let row = bridge
        .state
        .store
        .get_ego(&ego.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.cert_seq, 2, "the memory keeps the best seen");

    // The owner's agent publishes a current certificate: taken at once.
    agent.node.dial(bridge.p2p_addr.clone()).await.unwrap();
    agent.rotate(clock.now()).await;
    assert_eq!(
        resolve(&bridge.state, ego, true).await.unwrap().cert().seq,
        3
    );
    replayer.shutdown().await;
}

/// Anyone can type throwaway egos (free to make, with valid records) on a
/// login page, and each one the bridge resolves is cached. The cache keeps
/// at most `login.max_cached_egos`: past it, the egos fetched longest ago
/// that no live grant names are forgotten, so a logged-in person's ego
/// keeps its memory while the flood churns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ego_cache_is_bounded_and_keeps_the_egos_of_live_grants() {
    let clock = TestClock::new();
    let bridge = TestBridge::start_with(BridgeOptions {
        clock: clock.clone(),
        env: vec![("CYRCLES_BRIDGE_LOGIN_MAX_CACHED_EGOS".into(), "4".into())],
        ..Default::default()
    })
    .await;
    // A person logs in (a grant names the ego).
    let person = TestAgent::start(&bridge, 140).await;
    let (id, secret) = bridge.confidential().await;
    let rp = crate::common::Rp::discover(&bridge, &id, Some(&secret)).await;
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let end =
        crate::common::browse(&bridge, &crate::common::browser(), &url, &person.ego_text()).await;
    rp.exchange(end.code(), verifier).await.unwrap();
    clock.advance(60);

    // Then ten throwaway egos are looked up, each a little later.
    let mut throwaway = Vec::new();
    for seed in 141..151 {
        let agent = TestAgent::start(&bridge, seed).await;
        resolve(&bridge.state, agent.ego_id, true).await.unwrap();
        throwaway.push(agent.ego_id);
        clock.advance(1);
    }
    assert!(bridge.state.store.rows("egos").await.unwrap() >= 11);
    cyrcles_bridge::tasks::purge_once(&bridge.state)
        .await
        .unwrap();
    assert_eq!(bridge.state.store.rows("egos").await.unwrap(), 4);
    let cached = |ego: cyrcles_core::EgoId| {
        let store = bridge.state.store.clone();
        async move { store.get_ego(&ego.to_string()).await.unwrap().is_some() }
    };
    assert!(
        cached(person.ego_id).await,
        "the person's ego was forgotten"
    );
    // The newest throwaway egos stay, the oldest went.
    assert!(cached(throwaway[9]).await && cached(throwaway[7]).await);
    assert!(!cached(throwaway[0]).await);

    // Egos not fetched for longer than any record could stay valid go,
    // whatever the bound.
    clock.advance(91 * 86_400);
    cyrcles_bridge::tasks::purge_once(&bridge.state)
        .await
        .unwrap();
    assert_eq!(bridge.state.store.rows("egos").await.unwrap(), 0);
}

/// A recovery's record reaches the bridge's DHT node: the ego cache takes
/// it at once (docs/circle-authority.md, P5). Before, a bridge that had
/// looked the ego up within the last minute kept using the old record,
/// sending logins to the device the owner recovered from and accepting its
/// old key's answers for the rest of that minute. The clock does not move
/// here: only the recovery itself can refresh the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_record_replaces_the_cached_one_at_once() {
    let clock = TestClock::new();
    let bridge = TestBridge::start_with(BridgeOptions {
        clock: clock.clone(),
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 131).await;
    let ego = agent.ego_id;
    let before = resolve(&bridge.state, ego, false).await.unwrap();
    assert_eq!(before.cert().epoch, 0);
    // A rotation is not a recovery: the cache keeps its record until its
    // minute is up.
    agent.rotate(clock.now()).await;
    let cached = resolve(&bridge.state, ego, false).await.unwrap();
    assert_eq!(cached.cert().seq, before.cert().seq);
    agent.recover(clock.now()).await;
    wait_until(30, "the cache to hold the recovered record", || async {
        bridge
            .state
            .store
            .get_ego(&ego.to_string())
            .await
            .unwrap()
            .is_some_and(|r| r.epoch == 1)
    })
    .await;
    let after = resolve(&bridge.state, ego, false).await.unwrap();
    assert_eq!(after.cert().epoch, 1);
    assert_ne!(after.ego_key(), before.ego_key());
}
