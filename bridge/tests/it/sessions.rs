//! Session checks (lower finding of the 2026-12 review): many live
//! sessions of egos whose lookups hang (records nobody can serve, peers in
//! the routing table that accept connections and never answer) must not
//! delay the detection of a revoked ego: the check looks egos up
//! concurrently, each within a timeout, and a revoked ego's sessions end
//! in the same pass.

use std::time::Duration;

use cyrcles_bridge::store::SessionRow;

use crate::common::{BridgeOptions, Rp, TestAgent, TestBridge, browse, browser};
use cyrcles_testkit::bounded;

/// A TCP listener that accepts connections and never says a word: a peer
/// at its address makes every lookup that asks it wait (about 10 s).
async fn black_hole() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_ego_is_caught_in_one_pass_despite_many_unreachable_ones() {
    // Lookups that wait on silent peers end after the DHT's 10 s; on a
    // loaded machine later. One lookup after another would take 300 s.
    let bridge = TestBridge::start_with(BridgeOptions {
        env: vec![(
            "CYRCLES_BRIDGE_OIDC_SESSION_CHECK_LOOKUP_TIMEOUT_SECS".into(),
            "60".into(),
        )],
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 111).await;
    let (id, _) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, None).await;
    // The person logs in, then the ego is revoked.
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    browse(&bridge, &browser(), &url, &agent.ego_text())
        .await
        .code();
    let now = bridge.clock.now();
    let person = bridge.state.store.live_sessions(now).await.unwrap()[0]
        .sid
        .clone();
    agent.revoke(now).await;
    // Meanwhile a stranger holds sessions of 30 egos that no lookup finds,
    // and the DHT has peers that never answer.
    let port = black_hole().await;
    for _ in 0..8 {
        let addr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        bridge
            .state
            .node
            .add_peer(cyrcles_p2p::PeerId::random(), addr)
            .await
            .unwrap();
    }
    for i in 0..30u8 {
        bridge
            .state
            .store
            .insert_session(&SessionRow {
                sid: format!("stranger-{i}"),
                cookie_hash: vec![i; 32],
                ego_id: cyrcles_core::EgoId::from_bytes([i; 32]).to_string(),
                ego_pk: vec![0; 32],
                cert_seq: 1,
                cert_epoch: 0,
                auth_time: now,
                expires_at: now + 3_600,
                ended_at: None,
            })
            .await
            .unwrap();
    }
    // One pass ends the revoked ego's session, in well under the 300 s
    // that one lookup after another would take.
    let started = cyrcles_p2p::Clock::system().instant();
    let ended = bounded(
        120,
        "one session check",
        cyrcles_bridge::tasks::check_sessions(&bridge.state),
    )
    .await
    .unwrap();
    assert_eq!(ended, 1);
    let s = bridge
        .state
        .store
        .session_by_sid(&person)
        .await
        .unwrap()
        .unwrap();
    assert!(s.ended_at.is_some(), "the revoked ego's session ended");
    assert!(started.elapsed() < Duration::from_secs(120));
    // The stranger's sessions are kept (not found is no proof).
    assert_eq!(
        bridge
            .state
            .store
            .live_sessions(bridge.clock.now())
            .await
            .unwrap()
            .len(),
        30
    );
}
