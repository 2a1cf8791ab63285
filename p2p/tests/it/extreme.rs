//! Validly signed records with extreme field values, put into a live node
//! and looked up through it: whatever the values, the node keeps answering
//! (issue 12: one record whose certificate ended near `u64::MAX` used to
//! stop every node that stored or looked it up).

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder::{sign_with_circle, sign_with_key};
use cyrcles_core::record::{CertStatus, EgoCert, EgoRecord, Endpoints, Inception, PeerEndpoint};
use cyrcles_core::{CircleSecret, SecretKey, UnixTime};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::common::{config, now, spawn};
use crate::hostile::Hostile;
use cyrcles_testkit::{bounded, wait_until};

/// A time: the edges of `u64`, the epoch, or close to now.
fn time(now: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u64::MAX / 2),
        (0u64..=7_200).prop_map(move |d| now + d),
        (0u64..=90 * 86_400).prop_map(move |d| now.saturating_sub(d)),
        (0u64..=400 * 86_400).prop_map(move |d| now + d),
        any::<u64>(),
    ]
}

fn seq() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()]
}

#[derive(Debug, Clone)]
struct Extreme {
    created_at: u64,
    seq: u64,
    not_before: u64,
    not_after: u64,
    revoked: bool,
    circle_index: u64,
    endpoints: Option<(u64, u64, u64, usize, usize, usize)>,
    seed: u64,
}

/// Any values at all: most such records are refused.
fn wild(now: u64) -> impl Strategy<Value = Extreme> {
    (
        time(now),
        seq(),
        time(now),
        time(now),
        any::<bool>(),
        prop_oneof![Just(0u64), Just(1), Just(u64::MAX)],
        proptest::option::of((
            seq(),
            time(now),
            time(now),
            0usize..=9,
            0usize..=9,
            1usize..=257,
        )),
        any::<u64>(),
    )
        .prop_map(
            |(created_at, seq, not_before, not_after, revoked, circle_index, endpoints, seed)| {
                Extreme {
                    created_at,
                    seq,
                    not_before,
                    not_after,
                    revoked,
                    circle_index,
                    endpoints,
                    seed,
                }
            },
        )
}

/// A certificate window that holds now, with extreme values everywhere a
/// valid record allows them: seqs at the edges of `u64`, the longest
/// validity (and beyond it), endpoints that never expire, the most peers
/// and addresses that fit.
fn near_valid(now: u64) -> impl Strategy<Value = Extreme> {
    let validity = prop_oneof![
        Just(1u64),
        Just(90 * 86_400),
        Just(90 * 86_400 + 1),
        Just(u64::MAX)
    ];
    (
        prop_oneof![
            Just(0u64),
            Just(1),
            (0u64..=7_200).prop_map(move |d| now + d)
        ],
        seq(),
        (0u64..=89 * 86_400).prop_map(move |d| now - d),
        validity,
        any::<bool>(),
        proptest::option::of((
            seq(),
            (0u64..=86_400).prop_map(move |d| now - d),
            prop_oneof![Just(1u64), Just(86_400), Just(u64::MAX)],
            0usize..=8,
            0usize..=8,
            prop_oneof![Just(1usize), Just(32), Just(256)],
        )),
        any::<u64>(),
    )
        .prop_map(
            |(created_at, seq, not_before, validity, revoked, endpoints, seed)| Extreme {
                created_at,
                seq,
                not_before,
                not_after: not_before.saturating_add(validity),
                revoked,
                circle_index: 0,
                endpoints: endpoints.map(|(seq, issued, life, peers, addrs, len)| {
                    (seq, issued, issued.saturating_add(life), peers, addrs, len)
                }),
                seed,
            },
        )
}

fn extreme(now: u64) -> impl Strategy<Value = Extreme> {
    prop_oneof![near_valid(now), wild(now)]
}

/// The record `x` describes, every part signed by the right key.
fn record(x: &Extreme) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(x.seed);
    let root = SecretKey::generate(&mut rng);
    let circle = CircleSecret::generate(&mut rng);
    let ego = SecretKey::generate(&mut rng);
    let inception = Inception {
        root_pk: root.public(),
        circle_pk: circle.public(),
        created_at: UnixTime::from_secs(x.created_at),
    };
    let ego_id = inception.ego_id();
    let cert = EgoCert {
        ego_id,
        seq: x.seq,
        ego_pk: ego.public(),
        not_before: UnixTime::from_secs(x.not_before),
        not_after: UnixTime::from_secs(x.not_after),
        status: if x.revoked {
            CertStatus::Revoked
        } else {
            CertStatus::Active
        },
        circle_index: x.circle_index,
        epoch: 0,
    };
    let endpoints = x
        .endpoints
        .map(|(seq, issued, expires, peers, addrs, len)| {
            let body = Endpoints {
                ego_id,
                seq,
                peers: (0..peers)
                    .map(|i| PeerEndpoint {
                        peer_id: vec![u8::try_from(i).unwrap(); 38],
                        addrs: vec![vec![0x04; len]; addrs],
                    })
                    .collect(),
                issued_at: UnixTime::from_secs(issued),
                expires_at: UnixTime::from_secs(expires),
            };
            sign_with_key(&ego, body)
        });
    EgoRecord {
        inception: sign_with_key(&root, inception),
        chain: Vec::new(),
        cert: sign_with_circle(&circle, &mut rng, cert),
        endpoints,
    }
    .to_cbor()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_records_put_and_looked_up_never_stop_a_node() {
    bounded(300, "extreme records", async {
        let victim = spawn(config(7_400)).await;
        let hostile = Hostile::spawn(7_401, &victim.addr).await;
        let m = victim.handle.metrics().clone();
        let t = now().secs();
        let mut runner = TestRunner::deterministic();
        let strategy = extreme(t);
        let cases: Vec<(Extreme, Vec<u8>)> = (0..96)
            .map(|_| {
                let x = strategy.new_tree(&mut runner).unwrap().current();
                let bytes = record(&x);
                (x, bytes)
            })
            .collect();
        let key = |bytes: &[u8]| -> Vec<u8> {
            let r = EgoRecord::decode_bytes(bytes);
            match r {
                Ok(r) => r.ego_id().dht_key().as_bytes().to_vec(),
                Err(_) => vec![0; 32],
            }
        };
        // Every record through the PUT path.
        for (_, bytes) in &cases {
            hostile
                .put_to(vec![victim.handle.peer_id()], &key(bytes), bytes.clone())
                .await;
        }
        let sent = cases.len() as u64;
        wait_until(120, "every PUT to be handled", || async {
            m.records_stored() + m.records_rejected_total() >= sent
        })
        .await;
        // And through the lookup path: the hostile serves each one.
        for (x, bytes) in &cases {
            hostile.serve(&key(bytes), bytes.clone()).await;
            if let Ok(r) = EgoRecord::decode_bytes(bytes) {
                let found = victim.handle.get(r.ego_id()).await;
                let status = victim.handle.status().await;
                assert!(status.is_ok(), "the node stopped after {x:?} ({found:?})");
            }
        }
        let status = victim.handle.status().await.unwrap();
        assert_eq!(status.panics, 0, "{status:?}");
        // The cases reach both outcomes: some verify and are stored, most
        // are refused.
        eprintln!(
            "{} stored, {} refused, lookups found {}",
            m.records_stored(),
            m.records_rejected_total(),
            m.gets("found")
        );
        assert!(m.records_stored() >= 1 && m.records_rejected_total() >= 1);
        assert!(victim.handle.is_running());
    })
    .await;
}
