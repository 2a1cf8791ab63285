//! Property tests: every type round-trips; decoding is canonical (what
//! decodes re-encodes to the same bytes); no byte string and no mutation of
//! a valid record panics the decoders or the verifier, and no mutation of a
//! valid record verifies. Validly signed records with extreme times and
//! seqs are in `extremes.rs`.

use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::circle::messages::MAX_CIRCLE_MESSAGE_SIZE;
use cyrcles_core::circle::{
    DealtShare, RepairDelta, RepairRequest, RepairSigma, Round1, Round2, ShareAck, SigningRequest,
};
use cyrcles_core::login::{
    ChallengeParams, DenyReason, LoginChallenge, LoginResponse, MAX_RESPONSE_SIZE,
};
use cyrcles_core::record::{
    CertStatus, CircleLink, EgoCert, EgoRecord, Endpoints, Inception, PeerEndpoint, Signed,
};
use cyrcles_core::{EgoId, PublicKey, Signature, UnixTime, verify};
use proptest::prelude::*;

use crate::common::{NOW, three_links};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn time() -> impl Strategy<Value = UnixTime> {
    any::<u64>().prop_map(UnixTime::from_secs)
}

fn pk() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey)
}

fn sig() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

fn inception() -> impl Strategy<Value = Inception> {
    (pk(), pk(), time()).prop_map(|(root_pk, circle_pk, created_at)| Inception {
        root_pk,
        circle_pk,
        created_at,
    })
}

fn link() -> impl Strategy<Value = CircleLink> {
    (any::<[u8; 32]>(), any::<u64>(), pk(), time()).prop_map(|(id, index, circle_pk, issued_at)| {
        CircleLink {
            ego_id: EgoId::from_bytes(id),
            index,
            circle_pk,
            issued_at,
        }
    })
}

fn cert() -> impl Strategy<Value = EgoCert> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        pk(),
        time(),
        time(),
        any::<bool>(),
        any::<u64>(),
        prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()],
    )
        .prop_map(|(id, seq, ego_pk, nb, na, revoked, ci, epoch)| EgoCert {
            ego_id: EgoId::from_bytes(id),
            seq,
            ego_pk,
            not_before: nb,
            not_after: na,
            status: if revoked {
                CertStatus::Revoked
            } else {
                CertStatus::Active
            },
            circle_index: ci,
            epoch,
        })
}

fn peer() -> impl Strategy<Value = PeerEndpoint> {
    (
        proptest::collection::vec(any::<u8>(), 1..=64),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..=64), 0..=4),
    )
        .prop_map(|(peer_id, addrs)| PeerEndpoint { peer_id, addrs })
}

fn endpoints() -> impl Strategy<Value = Endpoints> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        proptest::collection::vec(peer(), 0..=3),
        time(),
        time(),
    )
        .prop_map(|(id, seq, peers, issued_at, expires_at)| Endpoints {
            ego_id: EgoId::from_bytes(id),
            seq,
            peers,
            issued_at,
            expires_at,
        })
}

fn record() -> impl Strategy<Value = EgoRecord> {
    (
        (inception(), sig()),
        proptest::collection::vec((link(), sig()), 0..=4),
        (cert(), sig()),
        proptest::option::of((endpoints(), sig())),
    )
        .prop_map(|((i, is), links, (c, cs), ep)| EgoRecord {
            inception: Signed { body: i, sig: is },
            chain: links
                .into_iter()
                .map(|(body, sig)| Signed { body, sig })
                .collect(),
            cert: Signed { body: c, sig: cs },
            endpoints: ep.map(|(body, sig)| Signed { body, sig }),
        })
}

fn printable(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9 :/._é-]{{1,{max}}}")).unwrap()
}

fn challenge() -> impl Strategy<Value = LoginChallenge> {
    (
        (printable(40), printable(40), printable(40), printable(40)),
        any::<[u8; 32]>(),
        proptest::collection::vec(any::<u8>(), 16..=64),
        // Times at both ends of u64 too (the last challenge ends at 2^64 - 1).
        prop_oneof![
            Just(0u64),
            0u64..u64::MAX / 2,
            (u64::MAX - 1_000)..=(u64::MAX - 120),
        ],
        1u64..=120,
        0u8..=99,
        proptest::option::of(printable(40)),
        any::<bool>(),
    )
        .prop_map(
            |((issuer, client_id, client_name, origin), id, nonce, at, ttl, code, ip, confirm)| {
                LoginChallenge::new(ChallengeParams {
                    issuer,
                    client_id,
                    client_name,
                    redirect_origin: origin,
                    ego_id: EgoId::from_bytes(id),
                    nonce,
                    issued_at: UnixTime::from_secs(at),
                    expires_at: UnixTime::from_secs(at + ttl),
                    match_code: code,
                    client_ip: ip,
                    confirm,
                })
                .unwrap()
            },
        )
}

fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T, cap: usize) {
    let bytes = value.to_cbor();
    let back = T::from_cbor(&bytes, cap).unwrap();
    assert_eq!(&back, value);
    assert_eq!(back.to_cbor(), bytes);
}

/// Every decoder on arbitrary input: an error or a value that re-encodes
/// to exactly the input.
fn decode_everything(bytes: &[u8]) {
    fn canonical<T: Encode + Decode>(bytes: &[u8], cap: usize) {
        if let Ok(v) = T::from_cbor(bytes, cap) {
            assert_eq!(v.to_cbor(), bytes, "accepted a non-canonical form");
        }
    }
    canonical::<EgoRecord>(bytes, 16 * 1024);
    canonical::<Inception>(bytes, 1024);
    canonical::<CircleLink>(bytes, 1024);
    canonical::<EgoCert>(bytes, 1024);
    canonical::<Endpoints>(bytes, 16 * 1024);
    canonical::<LoginResponse>(bytes, MAX_RESPONSE_SIZE);
    canonical::<ShareAck>(bytes, MAX_CIRCLE_MESSAGE_SIZE);
    canonical::<Round1>(bytes, MAX_CIRCLE_MESSAGE_SIZE);
    canonical::<Round2>(bytes, MAX_CIRCLE_MESSAGE_SIZE);
    canonical::<SigningRequest>(bytes, MAX_CIRCLE_MESSAGE_SIZE);
    canonical::<RepairRequest>(bytes, MAX_CIRCLE_MESSAGE_SIZE);
    canonical::<RepairDelta>(bytes, MAX_CIRCLE_MESSAGE_SIZE);
    canonical::<RepairSigma>(bytes, MAX_CIRCLE_MESSAGE_SIZE);
    if let Ok(d) = DealtShare::decode_bytes(bytes) {
        assert_eq!(&d.to_secret_cbor()[..], bytes);
    }
    if let Ok(c) = LoginChallenge::decode_bytes(bytes) {
        assert_eq!(c.to_cbor(), bytes);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn records_and_parts_round_trip(r in record()) {
        round_trip(&r.inception.body, 1024);
        for l in &r.chain {
            round_trip(&l.body, 1024);
        }
        round_trip(&r.cert.body, 1024);
        if let Some(e) = &r.endpoints {
            round_trip(&e.body, 16 * 1024);
        }
        round_trip(&r, 64 * 1024);
    }

    #[test]
    fn login_messages_round_trip(c in challenge(), seq in any::<u64>(), s in sig(), k in pk(), reason in 0usize..6, by in 0usize..4) {
        // Liveness at any clock never overflows.
        for now in [0, c.params().issued_at.secs(), c.params().expires_at.secs(), u64::MAX] {
            let _ = c.is_live_at(UnixTime::from_secs(now));
        }
        prop_assert!(c.is_live_at(c.params().issued_at));
        prop_assert_eq!(LoginChallenge::decode_bytes(&c.to_cbor()), Ok(c));
        // Every form of approval: legacy (no method) and each method.
        let approved_by = cyrcles_core::login::ApprovedBy::ALL.get(by).copied();
        round_trip(&LoginResponse::Approved(cyrcles_core::login::Approval { ego_pk: k, cert_seq: seq, approved_by, sig: s }), MAX_RESPONSE_SIZE);
        let reasons = [DenyReason::User, DenyReason::RateLimited, DenyReason::Banned,
            DenyReason::UnknownEgo, DenyReason::Expired, DenyReason::Invalid];
        round_trip(&LoginResponse::Denied(reasons[reason]), MAX_RESPONSE_SIZE);
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder_or_the_verifier(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
        let key = EgoId::from_bytes([0; 32]).dht_key();
        prop_assert!(verify(&bytes, &key, NOW).is_err());
    }

    #[test]
    fn structured_garbage_never_panics(prefix in prop_oneof![Just(0xa5u8), Just(0xa4), Just(0xa3), Just(0x82), Just(0xa9)],
                                       bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        // Start with a map or array head so decoding gets past the first byte.
        let mut input = vec![prefix, 0x00, 0x01];
        input.extend(bytes);
        decode_everything(&input);
    }
}

/// A valid record to mutate, built once per test.
fn valid_record() -> (Vec<u8>, cyrcles_core::DhtKey) {
    let o = three_links(600);
    (o.bytes(), o.record.ego_id().dht_key())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation(len: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..len, 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (0..len, any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (0..len).prop_map(Mutation::Truncate),
        (0..=len, any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (0..len).prop_map(Mutation::Remove),
    ]
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match *m {
        Mutation::Flip(i, x) => out[i] ^= x,
        Mutation::Set(i, v) => out[i] = v,
        Mutation::Truncate(n) => out.truncate(n),
        Mutation::Insert(i, v) => out.insert(i, v),
        Mutation::Remove(i) => {
            out.remove(i);
        }
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_mutation_of_a_valid_record_verifies_or_panics(ms in proptest::collection::vec(mutation(1200), 1..4)) {
        let (bytes, key) = valid_record();
        let mut mutated = bytes.clone();
        for m in &ms {
            if mutated.is_empty() { break; }
            let m = match *m {
                Mutation::Flip(i, x) => Mutation::Flip(i % mutated.len(), x),
                Mutation::Set(i, v) => Mutation::Set(i % mutated.len(), v),
                Mutation::Truncate(n) => Mutation::Truncate(n % mutated.len()),
                Mutation::Insert(i, v) => Mutation::Insert(i % (mutated.len() + 1), v),
                Mutation::Remove(i) => Mutation::Remove(i % mutated.len()),
            };
            mutated = apply(&mutated, &m);
        }
        decode_everything(&mutated);
        if mutated != bytes {
            prop_assert!(verify(&mutated, &key, NOW).is_err());
        }
    }
}

#[test]
fn every_single_byte_flip_of_a_valid_record_is_refused() {
    // Exhaustive over positions: flipping the low bit of any one byte.
    let (bytes, key) = valid_record();
    assert!(verify(&bytes, &key, NOW).is_ok());
    for i in 0..bytes.len() {
        let mut m = bytes.clone();
        m[i] ^= 1;
        assert!(verify(&m, &key, NOW).is_err(), "flip at {i} verified");
    }
}

/// Circle messages carry curve points and scalars, so they are generated
/// from real ceremonies run with a random seed.
fn circle_messages(seed: u64, t: u16, n: u16) {
    use cyrcles_core::CircleSecret;
    use cyrcles_core::circle::{
        CircleId, Coordinator, MemberId, MemberShare, RepairHelper, SessionId, commit, deal,
    };
    let mut rng = crate::common::rng(seed);
    let key = CircleSecret::generate(&mut rng);
    let ego = EgoId::from_bytes([seed as u8; 32]);
    let dealing = deal(&key, ego, CircleId([seed as u8; 16]), seed, t, n, &mut rng).unwrap();
    let shares: Vec<MemberShare> = dealing
        .shares
        .iter()
        .map(|d| {
            let bytes = d.to_secret_cbor();
            assert_eq!(
                DealtShare::decode_bytes(&bytes).unwrap().to_secret_cbor(),
                bytes
            );
            MemberShare::accept(d.clone()).unwrap()
        })
        .collect();
    for s in &shares {
        round_trip(&s.ack(), MAX_CIRCLE_MESSAGE_SIZE);
    }
    let session = SessionId([(seed >> 8) as u8; 16]);
    let mut coord = Coordinator::new(dealing.public.clone(), session, vec![1, 2, 3]).unwrap();
    let mut nonces = Vec::new();
    for s in &shares[..usize::from(t)] {
        let (nn, r1) = commit(s, session, &mut rng);
        round_trip(&r1, MAX_CIRCLE_MESSAGE_SIZE);
        coord.add_commitments(r1).unwrap();
        nonces.push((s, nn));
    }
    let req = coord.request().unwrap();
    round_trip(&req, MAX_CIRCLE_MESSAGE_SIZE);
    for (s, nn) in nonces {
        round_trip(&nn.sign(s, &req).unwrap(), MAX_CIRCLE_MESSAGE_SIZE);
    }
    let target = MemberId::new(n).unwrap();
    let rr = RepairRequest {
        session,
        circle_id: CircleId([seed as u8; 16]),
        generation: seed,
        target,
        helpers: (1..=t).filter_map(MemberId::new).collect(),
    };
    round_trip(&rr, MAX_CIRCLE_MESSAGE_SIZE);
    let mut helper = RepairHelper::new(shares[0].clone(), rr.clone()).unwrap();
    for d in helper.deltas(&mut rng).unwrap() {
        let bytes = d.to_cbor();
        assert_eq!(
            RepairDelta::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE)
                .unwrap()
                .to_cbor(),
            bytes
        );
        if d.to == shares[0].member() {
            helper.add_delta(d).unwrap();
        }
    }
    // Sigma needs every helper's delta; build the others' too.
    for s in &shares[1..usize::from(t)] {
        let h = RepairHelper::new(s.clone(), rr.clone()).unwrap();
        for d in h.deltas(&mut rng).unwrap() {
            if d.to == shares[0].member() {
                helper.add_delta(d).unwrap();
            }
        }
    }
    let sigma = helper.sigma().unwrap();
    let bytes = sigma.to_cbor();
    assert_eq!(
        RepairSigma::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE)
            .unwrap()
            .to_cbor(),
        bytes
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn circle_messages_round_trip(seed in any::<u64>(), t in 2u16..=4, extra in 0u16..=3) {
        circle_messages(seed, t, t + extra.max(1));
    }
}
