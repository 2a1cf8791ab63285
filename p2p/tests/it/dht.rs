//! The validating DHT across real networks.

use std::time::Duration;

use cyrcles_core::{EgoId, verify};
use cyrcles_p2p::{GetError, NodeHandle};
use futures::future::join_all;

use crate::common::{Owner, TestNode, network, now, settle};
use crate::hostile::Hostile;
use cyrcles_testkit::{bounded, wait_until};

async fn get_all(nodes: &[&NodeHandle], ego: EgoId) -> Vec<Result<cyrcles_p2p::Found, GetError>> {
    join_all(nodes.iter().map(|n| n.get(ego))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nodes_find_a_record_published_by_one() {
    bounded(120, "thirty-node test", async {
        let nodes = network(30, 1_000, |_| {}).await;
        let owner = Owner::new(1, now());
        let published = nodes[0].handle.publish(owner.bytes()).await.unwrap();
        assert!(published.stored_at > 0, "stored at no peer");
        let others: Vec<&NodeHandle> = nodes[1..].iter().map(|n| &n.handle).collect();
        for (i, r) in get_all(&others, owner.ego_id())
            .await
            .into_iter()
            .enumerate()
        {
            let found = r.unwrap_or_else(|e| panic!("node {}: {e}", i + 1));
            assert_eq!(
                found.ego.bytes(),
                owner.bytes().as_slice(),
                "node {}",
                i + 1
            );
            assert_eq!(found.ego.ego_id(), owner.ego_id());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_of_hostile_nodes_cannot_poison_lookups() {
    bounded(180, "poisoning test", async {
        let honest = network(21, 2_000, |_| {}).await;
        let t = now();
        let mut owner = Owner::new(2, t);
        let v1 = owner.bytes();
        owner.rotate(t);
        owner.rotate(t);
        let v3 = owner.bytes();
        assert_eq!(owner.cert_seq(), 3);
        honest[0].handle.publish(v3.clone()).await.unwrap();

        let key = owner.ego_id().dht_key();
        let mut forged = v3.clone();
        let at = forged.len() - 70;
        forged[at] ^= 0x01;
        let boot = honest[1].addr.clone();
        let mut hostile = Vec::new();
        for i in 0..9u64 {
            let h = Hostile::spawn(2_100 + i, &boot).await;
            let value = match i % 3 {
                0 => v1.clone(),
                1 => forged.clone(),
                _ => vec![0xa5, 0x00, 0x01, 0xff, 0x13, 0x37],
            };
            h.serve(key.as_bytes(), value).await;
            hostile.push(h);
        }
        for h in &hostile {
            h.bootstrap().await;
        }
        // The hostile peers' bootstraps reached the honest nodes: one of
        // them routes to more peers than there are other honest ones.
        // (Not every hostile peer gets in: they all share one address.)
        let others = honest.len() - 1;
        wait_until(30, "an honest node to route to hostile peers", || async {
            for n in &honest {
                if n.handle.status().await.unwrap().routing_table > others {
                    return true;
                }
            }
            false
        })
        .await;
        settle(&honest, 20).await;
        // The hostile peers also push garbage, the stale record and junk
        // under random keys to every honest peer.
        let peers: Vec<_> = honest.iter().map(|n| n.handle.peer_id()).collect();
        for h in &hostile {
            h.put_to(peers.clone(), key.as_bytes(), vec![0xde, 0xad])
                .await;
            h.put_to(peers.clone(), key.as_bytes(), v1.clone()).await;
            h.put_to(peers.clone(), key.as_bytes(), forged.clone())
                .await;
            h.put_to(peers.clone(), b"not a dht key", v3.clone()).await;
        }
        // The PUTs have arrived once honest nodes have refused some.
        wait_until(60, "the hostile PUTs to arrive", || async {
            put_refusals(&honest) > 0
        })
        .await;

        let lookups: Vec<&NodeHandle> = honest[1..].iter().map(|n| &n.handle).collect();
        let mut refused = 0;
        for (i, r) in get_all(&lookups, owner.ego_id())
            .await
            .into_iter()
            .enumerate()
        {
            let found = r.unwrap_or_else(|e| panic!("honest node {}: {e}", i + 1));
            assert_eq!(
                found.ego.bytes(),
                v3.as_slice(),
                "honest node {} got an old record",
                i + 1
            );
            refused += found.rejected;
        }
        assert!(
            refused > 0,
            "no hostile answer was ever seen: the test proves nothing"
        );

        // No honest node holds anything invalid or stale, nor anything under
        // another key.
        for (i, n) in honest.iter().enumerate() {
            if let Some(bytes) = n.handle.stored(owner.ego_id()).await.unwrap() {
                let v = verify(&bytes, &key, now())
                    .unwrap_or_else(|e| panic!("node {i} stores an invalid record: {e}"));
                assert_eq!(v.rank().cert_seq, 3, "node {i} stores a stale record");
            }
            assert!(n.handle.status().await.unwrap().stored_records <= 1);
        }
        assert!(put_refusals(&honest) > 0, "no hostile PUT was refused");
    })
    .await;
}

/// The PUTs `nodes` refused as invalid, stale or under the wrong key.
fn put_refusals(nodes: &[TestNode]) -> u64 {
    nodes
        .iter()
        .map(|n| {
            let m = n.handle.metrics();
            m.records_rejected("encoding")
                + m.records_rejected("bad_signature")
                + m.records_rejected("stale")
                + m.records_rejected("bad_key")
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_survives_a_third_of_the_nodes_stopping() {
    bounded(180, "churn test", async {
        let nodes = network(30, 3_000, |_| {}).await;
        let owner = Owner::new(3, now());
        nodes[0].handle.publish(owner.bytes()).await.unwrap();
        // Stop ten nodes, those holding the record first.
        let mut holders = Vec::new();
        let mut others = Vec::new();
        for (i, n) in nodes.iter().enumerate().skip(1) {
            if n.handle.stored(owner.ego_id()).await.unwrap().is_some() {
                holders.push(i);
            } else {
                others.push(i);
            }
        }
        assert!(!holders.is_empty());
        let stopped: Vec<usize> = holders.into_iter().chain(others).take(10).collect();
        for &i in &stopped {
            nodes[i].handle.shutdown().await;
        }
        assert_eq!(nodes[0].handle.republish().await.unwrap(), 1);
        // Let the republication reach the new closest peers.
        wait_until(30, "republication", || async {
            let mut holders = 0;
            for (i, n) in nodes.iter().enumerate().skip(1) {
                if !stopped.contains(&i) && n.handle.stored(owner.ego_id()).await.unwrap().is_some()
                {
                    holders += 1;
                }
            }
            holders >= 5
        })
        .await;
        let alive: Vec<&NodeHandle> = nodes
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(i, _)| !stopped.contains(i))
            .map(|(_, n)| &n.handle)
            .collect();
        for r in get_all(&alive, owner.ego_id()).await {
            assert_eq!(r.unwrap().ego.bytes(), owner.bytes().as_slice());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_saw_seq_n_refuses_anything_older() {
    bounded(120, "rollback test", async {
        let mut nodes = network(3, 4_000, |_| {}).await;
        // Node 3 only looks up (a DHT client): nobody stores records on it,
        // so what it knows of the ego is what its anti-rollback memory keeps.
        let mut c = crate::common::config(4_003);
        c.mode = cyrcles_p2p::DhtMode::Auto;
        c.bootstrap = vec![nodes[0].addr.clone()];
        nodes.push(crate::common::spawn(c).await);
        let t = now();
        let mut owner = Owner::new(4, t);
        let v1 = owner.bytes();
        owner.rotate(t);
        let v2 = owner.bytes();
        let key = owner.ego_id().dht_key();
        nodes[0].handle.publish(v2.clone()).await.unwrap();
        // Node 3 learns seq 2 by a lookup.
        let found = nodes[3].handle.get(owner.ego_id()).await.unwrap();
        assert_eq!(found.ego.rank().cert_seq, 2);
        assert_eq!(nodes[3].handle.stored(owner.ego_id()).await.unwrap(), None);

        // A PUT of the older, valid record is refused by nodes holding v2.
        let h = Hostile::spawn(4_100, &nodes[1].addr).await;
        let holders: Vec<_> = nodes[..3].iter().map(|n| n.handle.peer_id()).collect();
        h.put_to(holders, key.as_bytes(), v1.clone()).await;
        wait_until(10, "stale PUT refused", || async {
            let stale: u64 = nodes[..3]
                .iter()
                .map(|n| n.handle.metrics().records_rejected("stale"))
                .sum();
            stale > 0
        })
        .await;
        for n in &nodes[..3] {
            if let Some(b) = n.handle.stored(owner.ego_id()).await.unwrap() {
                assert_eq!(b, v2, "a node replaced seq 2 by seq 1");
            }
        }

        // Every holder of v2 leaves; only the hostile peer, serving v1,
        // remains. Node 3 remembers seq 2 and refuses v1.
        h.serve(key.as_bytes(), v1.clone()).await;
        for n in &nodes[..3] {
            n.handle.shutdown().await;
        }
        nodes[3]
            .handle
            .add_peer(h.peer_id, h.addr.clone())
            .await
            .unwrap();
        match nodes[3].handle.get(owner.ego_id()).await {
            Err(GetError::NotFound { rejected }) => assert!(rejected >= 1),
            Ok(f) => panic!("accepted seq {} after seeing seq 2", f.ego.rank().cert_seq),
            Err(e) => panic!("unexpected error {e}"),
        }
        assert!(nodes[3].handle.metrics().answers_rejected("stale") >= 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_dropped_when_their_certificate_expires() {
    bounded(60, "expiry test", async {
        let clock = cyrcles_p2p::ManualClock::starting_now();
        let nodes = network(3, 5_000, |c| {
            c.clock = clock.clock();
            c.timers.sweep_interval = Duration::from_millis(100);
        })
        .await;
        let owner = Owner::new(5, now());
        nodes[0].handle.publish(owner.bytes()).await.unwrap();
        let found = nodes[2].handle.get(owner.ego_id()).await.unwrap();
        assert_eq!(found.ego.ego_id(), owner.ego_id());
        let held: usize = join_all(nodes.iter().map(|n| n.handle.status()))
            .await
            .into_iter()
            .map(|s| s.unwrap().stored_records)
            .sum();
        assert!(held >= 2);
        // 31 days later the 30-day certificate has expired.
        clock.advance(Duration::from_secs(31 * 24 * 3_600));
        wait_until(10, "sweep", || async {
            let held: usize = join_all(nodes.iter().map(|n| n.handle.status()))
                .await
                .into_iter()
                .map(|s| s.unwrap().stored_records)
                .sum();
            held == 0
        })
        .await;
        assert!(matches!(
            nodes[1].handle.get(owner.ego_id()).await,
            Err(GetError::NotFound { .. })
        ));
        assert_eq!(nodes[0].handle.republish().await.unwrap(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverging_chain_is_reported_as_duplicity_and_the_first_kept() {
    use cyrcles_core::CircleSecret;
    use cyrcles_core::cbor::Encode;
    use cyrcles_core::record::DuplicityKind;
    use cyrcles_core::record::builder::sign_with_key;
    use cyrcles_p2p::NodeEvent;

    bounded(60, "duplicity test", async {
        let mut nodes = network(3, 9_000, |_| {}).await;
        let t = now();
        let mut owner = Owner::new(9, t);
        // Two histories from one root key: link 1 to two different circles.
        let fork = |owner: &mut Owner| {
            let circle = CircleSecret::generate(&mut owner.rng);
            let mut record = owner.keys.record.clone();
            let body = record.next_link(circle.public(), t);
            record
                .push_link(sign_with_key(&owner.keys.root, body))
                .unwrap();
            record
                .certify_with(&circle, &mut owner.rng, owner.keys.ego.public(), t, 86_400)
                .unwrap();
            record.to_cbor()
        };
        let a = fork(&mut owner);
        let b = fork(&mut owner);
        assert_ne!(a, b);
        nodes[0].handle.publish(a.clone()).await.unwrap();

        let h = Hostile::spawn(9_100, &nodes[1].addr).await;
        let key = owner.ego_id().dht_key();
        h.serve(key.as_bytes(), b.clone()).await;
        let peers: Vec<_> = nodes.iter().map(|n| n.handle.peer_id()).collect();
        h.put_to(peers, key.as_bytes(), b.clone()).await;
        nodes[2]
            .handle
            .add_peer(h.peer_id, h.addr.clone())
            .await
            .unwrap();

        let found = nodes[2].handle.get(owner.ego_id()).await.unwrap();
        assert_eq!(found.ego.bytes(), a.as_slice(), "the first history is kept");
        assert_eq!(
            found.duplicity,
            Some(DuplicityKind::DivergentChains { at_link: 1 })
        );
        let reported = bounded(10, "duplicity event", async {
            loop {
                match nodes[2].events.recv().await {
                    Some(NodeEvent::Duplicity { second, kind, .. }) => break (second, kind),
                    Some(_) => {}
                    None => panic!("event channel closed"),
                }
            }
        })
        .await;
        assert_eq!(reported.0, b);
        assert_eq!(reported.1, DuplicityKind::DivergentChains { at_link: 1 });
        let duplicity: u64 = nodes.iter().map(|n| n.handle.metrics().duplicity()).sum();
        assert!(
            duplicity >= 2,
            "the PUTs of the other history were not reported"
        );
        for n in &nodes {
            if let Some(held) = n.handle.stored(owner.ego_id()).await.unwrap() {
                assert_eq!(held, a);
            }
        }
    })
    .await;
}
