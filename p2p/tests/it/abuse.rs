//! Hostile input: oversized and malformed requests, floods of requests and
//! of PUTs from one peer. The node stays up, refuses, counts, and keeps
//! serving others.

use cyrcles_core::cbor::Encode;
use cyrcles_core::login::{DenyReason, LoginResponse};
use cyrcles_p2p::Protocol;
use futures::future::join_all;

use crate::common::{Owner, config, network, now, spawn};
use crate::hostile::Hostile;
use crate::relay::{answer_logins, challenge};
use cyrcles_testkit::{bounded, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_others_still_served() {
    bounded(90, "bad request test", async {
        let mut c = config(7_000);
        c.limits.requests_per_peer_per_minute = 50;
        let agent = spawn(c).await;
        let owner = Owner::new(7, now());
        let ego = cyrcles_core::SecretKey::from_seed(&owner.keys.ego.to_seed());
        let server = answer_logins(agent.events, ego);
        let mut c = config(7_001);
        c.bootstrap = vec![agent.addr.clone()];
        let bridge = spawn(c).await;
        let h = Hostile::spawn(7_100, &agent.addr).await;
        let (peer, addr) = (agent.handle.peer_id(), agent.addr.clone());

        // Oversized: 100 KiB on a protocol capped at 2 KiB.
        let r = h
            .request(false, peer, addr.clone(), vec![0xa0; 100 * 1024])
            .await;
        assert!(r.is_err(), "an oversized request got an answer: {r:?}");
        // Malformed login: a denial saying so.
        let r = h
            .request(false, peer, addr.clone(), vec![0xff, 0x00, 0x13])
            .await
            .unwrap();
        assert_eq!(
            LoginResponse::decode_bytes(&r).unwrap(),
            LoginResponse::Denied(DenyReason::Invalid)
        );
        // Malformed circle envelope: the stream is reset.
        assert!(
            h.request(true, peer, addr.clone(), vec![1, 2, 3])
                .await
                .is_err()
        );
        let m = agent.handle.metrics();
        assert!(m.requests("login", "inbound", "malformed") >= 1);
        assert!(m.requests("circle", "inbound", "malformed") >= 1);

        // A flood of 200 valid challenges from the hostile peer.
        let ch = challenge(&owner, 42).to_cbor();
        let flood =
            join_all((0..200).map(|_| h.request(false, peer, addr.clone(), ch.clone()))).await;
        let limited = flood
            .iter()
            .filter(|r| {
                r.as_ref()
                    .ok()
                    .and_then(|b| LoginResponse::decode_bytes(b).ok())
                    == Some(LoginResponse::Denied(DenyReason::RateLimited))
            })
            .count();
        assert!(
            limited >= 100,
            "only {limited} of 200 flooded requests were limited"
        );
        assert!(m.requests("login", "inbound", "rate_limited") >= 100);

        // Another peer is still served at once.
        let r = bridge
            .handle
            .login(peer, vec![addr.clone()], &challenge(&owner, 42))
            .await
            .unwrap();
        assert!(matches!(r, LoginResponse::Approved(_)));
        assert_eq!(Protocol::Login.label(), "login");
        agent.handle.shutdown().await;
        let answered = server.await.unwrap();
        assert!(
            answered <= 52,
            "the rate limit let {answered} requests through"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_puts_is_refused_and_lookups_still_work() {
    bounded(90, "PUT flood test", async {
        let nodes = network(3, 8_000, |c| c.limits.puts_per_peer_per_minute = 30).await;
        let owner = Owner::new(8, now());
        nodes[0].handle.publish(owner.bytes()).await.unwrap();
        let h = Hostile::spawn(8_100, &nodes[1].addr).await;
        let target = vec![nodes[1].handle.peer_id()];
        for i in 0..300u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            h.put_to(target.clone(), &key, vec![0x42; 64]).await;
        }
        let m = nodes[1].handle.metrics();
        wait_until(20, "flood processed", || async {
            m.records_rejected("rate_limited") + m.records_rejected("encoding") >= 300
        })
        .await;
        assert!(m.records_rejected("rate_limited") >= 200);
        assert!(m.records_rejected("encoding") >= 1);
        assert!(nodes[1].handle.status().await.unwrap().stored_records <= 1);
        // The node still answers lookups.
        let found = nodes[2].handle.get(owner.ego_id()).await.unwrap();
        assert_eq!(found.ego.bytes(), owner.bytes().as_slice());
        let text = m.encode_text();
        assert!(text.contains("cyrcles_p2p_records_rejected_total{reason=\"rate_limited\"}"));
    })
    .await;
}
