//! `cargo bench -p cyrcles-core`: record verification, a full 3-of-5 FROST
//! signing session, a whole DKG (3-of-5, 5-of-9), and encode/decode.
//! Numbers go in docs/performance.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::circle::dkg::{DkgConfirm, DkgParams, DkgParticipant, DkgRound1, DkgRound2};
use cyrcles_core::circle::{CircleId, Coordinator, MemberId, MemberShare, SessionId, commit, deal};
use cyrcles_core::record::builder::{self, sign_with_circle, sign_with_key};
use cyrcles_core::record::{
    EgoRecord, PeerEndpoint, RollbackMemory, SignatureCache, verify_cached,
};
use cyrcles_core::{CircleSecret, Context, SecretKey, UnixTime, verify};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const T0: UnixTime = UnixTime::from_secs(1_767_225_600);

/// An ego with a three-link chain and one endpoint, like a typical record
/// a year into an ego's life.
fn peer() -> PeerEndpoint {
    PeerEndpoint {
        peer_id: vec![7; 38],
        addrs: vec![vec![0x04, 127, 0, 0, 1, 0x06, 0x0f, 0xa1]],
    }
}

fn three_link_record(rng: &mut ChaCha20Rng) -> (EgoRecord, SecretKey) {
    let new = builder::create_ego(rng, T0, 30 * 86_400, vec![peer()], 86_400).unwrap();
    let mut record = new.record;
    let mut previous: Option<CircleSecret> = None;
    for i in 1..=3u64 {
        let next = CircleSecret::generate(rng);
        let body = record.next_link(next.public(), T0.plus(i));
        let link = match &previous {
            None => sign_with_key(&new.root, body),
            Some(c) => sign_with_circle(c, rng, body),
        };
        record.push_link(link).unwrap();
        record
            .certify_with(&next, rng, new.ego.public(), T0.plus(i), 30 * 86_400)
            .unwrap();
        previous = Some(next);
    }
    record
        .set_endpoints(&new.ego, vec![peer()], T0.plus(10), 86_400)
        .unwrap();
    (record, new.ego)
}

fn records(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (record, ego) = three_link_record(&mut rng);
    let bytes = record.to_cbor();
    let key = record.ego_id().dht_key();
    let now = T0.plus(60);
    assert!(verify(&bytes, &key, now).is_ok());

    c.bench_function("verify_record_3_links", |b| {
        b.iter(|| verify(black_box(&bytes), &key, now).unwrap())
    });
    c.bench_function("decode_record_3_links", |b| {
        b.iter(|| EgoRecord::decode_bytes(black_box(&bytes)).unwrap())
    });
    c.bench_function("encode_record_3_links", |b| {
        b.iter(|| black_box(&record).to_cbor())
    });
    // The common case for a DHT node or a bridge: a new version of a record
    // it already knows (fresh endpoints), checked with a warm signature
    // cache: only the endpoints signature is new.
    let mut cache = SignatureCache::new(1024);
    verify_cached(&bytes, &key, now, &mut cache).unwrap();
    let mut tick = 0u64;
    c.bench_function("verify_record_3_links_new_endpoints_warm_cache", |b| {
        b.iter_batched(
            || {
                tick += 1;
                let mut r = record.clone();
                r.set_endpoints(&ego, vec![peer()], T0.plus(10 + tick % 30), 86_400)
                    .unwrap();
                if let Some(ep) = r.endpoints.as_mut() {
                    ep.body.seq = tick;
                }
                // Re-sign after setting the seq.
                let body = r.endpoints.take().unwrap().body;
                r.endpoints = Some(sign_with_key(&ego, body));
                r.to_cbor()
            },
            |bytes| verify_cached(black_box(&bytes), &key, now, &mut cache).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    let verified = verify(&bytes, &key, now).unwrap();
    c.bench_function("rollback_check", |b| {
        let mut mem = RollbackMemory::new(1024);
        mem.accept(&verified).unwrap();
        b.iter(|| mem.check(black_box(&verified)).unwrap())
    });
}

fn frost(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let key = CircleSecret::generate(&mut rng);
    let ego = three_link_record(&mut rng).0.ego_id();
    let dealing = deal(&key, ego, CircleId([1; 16]), 1, 3, 5, &mut rng).unwrap();
    let shares: Vec<MemberShare> = dealing
        .shares
        .into_iter()
        .map(|d| MemberShare::accept(d).unwrap())
        .collect();
    let public = dealing.public;
    let message = Context::EgoCert.signing_bytes(&[0xa7; 120]);

    c.bench_function("frost_deal_3_of_5", |b| {
        b.iter(|| deal(&key, ego, CircleId([1; 16]), 1, 3, 5, &mut rng).unwrap())
    });
    c.bench_function("frost_session_3_of_5", |b| {
        b.iter(|| {
            let session = SessionId([2; 16]);
            let mut coord = Coordinator::new(public.clone(), session, message.clone()).unwrap();
            let mut nonces = BTreeMap::new();
            for s in &shares[..3] {
                let (n, r1) = commit(s, session, &mut rng);
                coord.add_commitments(r1).unwrap();
                nonces.insert(s.member(), n);
            }
            let request = coord.request().unwrap();
            for s in &shares[..3] {
                let n = nonces.remove(&s.member()).unwrap();
                coord.add_share(n.sign(s, &request).unwrap()).unwrap();
            }
            coord.aggregate().unwrap()
        })
    });
    let share_bytes = shares[0].to_secret_cbor();
    c.bench_function("share_decode_and_check", |b| {
        b.iter(|| MemberShare::from_secret_cbor(black_box(&share_bytes)).unwrap())
    });
    let (_, r1) = commit(&shares[0], SessionId([3; 16]), &mut rng);
    let r1_bytes = r1.to_cbor();
    c.bench_function("round1_decode", |b| {
        b.iter(|| cyrcles_core::circle::Round1::from_cbor(black_box(&r1_bytes), 1024).unwrap())
    });
}

/// A whole DKG among `n` participants in one process: every participant's
/// CPU work (part 1, signing and checking every message, sealing and
/// opening the round-2 shares, part 3, the transcript digest and the
/// confirmations), each message encoded and decoded once per receiver.
fn run_dkg(params: &DkgParams, keys: &[SecretKey], rng: &mut ChaCha20Rng) -> Vec<MemberShare> {
    let n = keys.len();
    let mut ps = Vec::with_capacity(n);
    let mut r1 = Vec::with_capacity(n);
    for (i, key) in keys.iter().enumerate() {
        let me = MemberId::new(u16::try_from(i + 1).unwrap()).unwrap();
        let (p, msg) = DkgParticipant::start(params.clone(), me, key, rng).unwrap();
        ps.push(p);
        r1.push(msg.to_cbor());
    }
    for (i, p) in ps.iter_mut().enumerate() {
        for (j, msg) in r1.iter().enumerate() {
            if i != j {
                p.add_round1(DkgRound1::decode_bytes(msg).unwrap()).unwrap();
            }
        }
    }
    let r2: Vec<Vec<u8>> = ps
        .iter_mut()
        .zip(keys)
        .map(|(p, k)| p.round2(k, rng).unwrap().to_cbor())
        .collect();
    for (i, p) in ps.iter_mut().enumerate() {
        for (j, msg) in r2.iter().enumerate() {
            if i != j {
                p.add_round2(DkgRound2::decode_bytes(msg).unwrap()).unwrap();
            }
        }
    }
    let confirms: Vec<Vec<u8>> = ps
        .iter_mut()
        .zip(keys)
        .map(|(p, k)| p.confirm(k).unwrap().to_cbor())
        .collect();
    for (i, p) in ps.iter_mut().enumerate() {
        for (j, msg) in confirms.iter().enumerate() {
            if i != j {
                p.add_confirm(DkgConfirm::decode_bytes(msg).unwrap())
                    .unwrap();
            }
        }
    }
    ps.iter().map(|p| p.finish().unwrap().0).collect()
}

fn dkg(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for (t, n) in [(3u16, 5u16), (5, 9)] {
        let keys: Vec<SecretKey> = (0..n).map(|_| SecretKey::generate(&mut rng)).collect();
        let params = DkgParams {
            ego_id: cyrcles_core::EgoId::from_bytes([9; 32]),
            circle_id: CircleId([1; 16]),
            generation: 2,
            session: SessionId([4; 16]),
            threshold: t,
            participants: keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    (
                        MemberId::new(u16::try_from(i + 1).unwrap()).unwrap(),
                        k.public(),
                    )
                })
                .collect(),
        };
        assert_eq!(run_dkg(&params, &keys, &mut rng).len(), usize::from(n));
        c.bench_function(&format!("dkg_{t}_of_{n}"), |b| {
            b.iter(|| run_dkg(black_box(&params), &keys, &mut rng))
        });
    }
}

criterion_group!(benches, records, frost, dkg);
criterion_main!(benches);
