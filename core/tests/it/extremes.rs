//! Validly signed inputs with extreme values: times 0 and near `u64::MAX`,
//! seqs `u64::MAX`. Nothing a peer can sign may panic the verifier or the
//! members' checks (the test profile checks integer overflow), a
//! certificate longer than the protocol maximum is always refused, and
//! every time in a record that verifies is within the documented horizon
//! of `now`.

use std::time::Instant;

use cyrcles_core::circle::{
    CeremonyRequest, CircleId, Purpose, RecoveryBody, Refusal, RequestBody, SessionId,
    SigningPolicy, authorize, authorize_recovery,
};
use cyrcles_core::record::builder::{DEFAULT_CERT_VALIDITY_SECS, sign_with_key};
use cyrcles_core::record::{
    CertStatus, Choice, CircleLink, EgoCert, EgoRecord, Endpoints, Inception, RecordError,
    RollbackMemory, select,
};
use cyrcles_core::time::{
    CLOCK_SKEW_SECS, MAX_CERT_VALIDITY_SECS, MAX_ENDPOINTS_VALIDITY_SECS, RECORD_HORIZON_SECS,
};
use cyrcles_core::{SecretKey, UnixTime, VerifiedEgo, verify};
use proptest::prelude::*;

use crate::ceremony::{member, shared};
use crate::common::{NOW, peer};

const MAX: u64 = u64::MAX;

/// Times an attacker would try, and ordinary ones.
fn time() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(MAX),
        Just(MAX - 1),
        Just(MAX - CLOCK_SKEW_SECS),
        Just(MAX - MAX_CERT_VALIDITY_SECS),
        Just(NOW.secs()),
        (NOW.secs() - 200_000)..(NOW.secs() + 200_000),
        (MAX - 20_000_000)..=MAX,
        0u64..20_000_000,
        any::<u64>(),
    ]
}

fn seq() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(MAX), Just(MAX - 1), any::<u64>()]
}

#[derive(Debug, Clone)]
struct Times {
    created_at: u64,
    links: Vec<u64>,
    not_before: u64,
    not_after: u64,
    revoked: bool,
    cert_seq: u64,
    endpoints: Option<(u64, u64, u64)>,
    now: u64,
}

/// A time near `now` (so that some records verify), or any time.
fn near(now: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => now.saturating_sub(100 * 86_400)..=now.saturating_add(8_000),
        1 => time(),
    ]
}

/// A validity span: around the protocol maxima, or anything.
fn span() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..=MAX_CERT_VALIDITY_SECS + 1_000,
        Just(MAX_CERT_VALIDITY_SECS),
        Just(MAX_CERT_VALIDITY_SECS + 1),
        Just(MAX_ENDPOINTS_VALIDITY_SECS),
        Just(MAX_ENDPOINTS_VALIDITY_SECS + 1),
        any::<u64>(),
    ]
}

fn times() -> impl Strategy<Value = Times> {
    time().prop_flat_map(|now| {
        (
            near(now),
            proptest::collection::vec(near(now), 0..=2),
            any::<bool>(),
            (near(now), span(), any::<bool>(), seq()),
            proptest::option::of((near(now), span(), seq())),
        )
            .prop_map(
                move |(
                    created_at,
                    mut links,
                    ordered,
                    (not_before, cert_span, revoked, cert_seq),
                    endpoints,
                )| {
                    if ordered {
                        // Mostly in chain order, so rule 4 lets them through.
                        links.sort_unstable();
                        for l in &mut links {
                            *l = (*l).max(created_at);
                        }
                    }
                    Times {
                        created_at,
                        links,
                        not_before,
                        not_after: not_before.saturating_add(cert_span),
                        revoked,
                        cert_seq,
                        endpoints: endpoints
                            .map(|(issued, span, seq)| (issued, issued.saturating_add(span), seq)),
                        now,
                    }
                },
            )
    })
}

/// A record with the given times, every part validly signed by the key
/// that must sign it (circle keys are plain Ed25519 keys here).
fn signed_record(t: &Times) -> EgoRecord {
    let root = SecretKey::from_seed(&[1; 32]);
    let circles: Vec<SecretKey> = (0..=t.links.len() as u8)
        .map(|i| SecretKey::from_seed(&[10 + i; 32]))
        .collect();
    let ego = SecretKey::from_seed(&[3; 32]);
    let inception = Inception {
        root_pk: root.public(),
        circle_pk: circles[0].public(),
        created_at: UnixTime::from_secs(t.created_at),
    };
    let ego_id = inception.ego_id();
    let chain = t
        .links
        .iter()
        .enumerate()
        .map(|(i, &at)| {
            let body = CircleLink {
                ego_id,
                index: i as u64 + 1,
                circle_pk: circles[i + 1].public(),
                issued_at: UnixTime::from_secs(at),
            };
            sign_with_key(if i == 0 { &root } else { &circles[i] }, body)
        })
        .collect();
    let cert = EgoCert {
        ego_id,
        seq: t.cert_seq,
        ego_pk: ego.public(),
        not_before: UnixTime::from_secs(t.not_before),
        not_after: UnixTime::from_secs(t.not_after),
        status: if t.revoked {
            CertStatus::Revoked
        } else {
            CertStatus::Active
        },
        circle_index: t.links.len() as u64,
        epoch: 0,
    };
    let endpoints = t.endpoints.map(|(issued, expires, seq)| {
        sign_with_key(
            &ego,
            Endpoints {
                ego_id,
                seq,
                peers: vec![peer(1)],
                issued_at: UnixTime::from_secs(issued),
                expires_at: UnixTime::from_secs(expires),
            },
        )
    });
    EgoRecord {
        inception: sign_with_key(&root, inception),
        chain,
        cert: sign_with_key(circles.last().unwrap(), cert),
        endpoints,
    }
}

/// Everything a node does with a verified record, at extreme times.
// The core reads no clock; this check needs a real `Instant` to add to.
#[allow(clippy::disallowed_methods)]
fn use_verified(v: &VerifiedEgo, now: UnixTime) {
    let r = v.record();
    let horizon = now.plus(RECORD_HORIZON_SECS);
    let mut all = vec![
        r.inception.body.created_at,
        r.cert.body.not_before,
        r.cert.body.not_after,
    ];
    all.extend(r.chain.iter().map(|l| l.body.issued_at));
    if let Some(e) = &r.endpoints {
        all.extend([e.body.issued_at, e.body.expires_at]);
    }
    for t in all {
        assert!(t <= horizon, "{t:?} beyond {horizon:?}");
    }
    let span = r.cert.body.not_after.since(r.cert.body.not_before);
    assert!((1..=MAX_CERT_VALIDITY_SECS).contains(&span));
    if let Some(e) = &r.endpoints {
        let span = e.body.expires_at.since(e.body.issued_at);
        assert!((1..=MAX_ENDPOINTS_VALIDITY_SECS).contains(&span));
    }
    // Turning the certificate's end into a timer never overflows.
    let left = v.cert_remaining(now);
    assert!(left.as_secs() <= RECORD_HORIZON_SECS + CLOCK_SKEW_SECS);
    assert!(Instant::now().checked_add(left).is_some());
    assert_eq!(v.key_usable_at(now), !v.is_revoked());
    let _ = v.live_endpoints(now);
    assert_eq!(select(v, v), Ok(Choice::KeepCurrent));
    let mut mem = RollbackMemory::new(2);
    mem.accept(v).unwrap();
    mem.accept(v).unwrap();
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn extreme_signed_records_never_panic_and_long_validity_is_refused(t in times()) {
        let record = signed_record(&t);
        let bytes = cyrcles_core::cbor::Encode::to_cbor(&record);
        let key = record.ego_id().dht_key();
        let now = UnixTime::from_secs(t.now);
        let result = verify(&bytes, &key, now);
        if t.not_after.saturating_sub(t.not_before) > MAX_CERT_VALIDITY_SECS {
            prop_assert!(result.is_err(), "a {}-second certificate verified", t.not_after.saturating_sub(t.not_before));
        }
        if let Some((issued, expires, _)) = t.endpoints
            && expires.saturating_sub(issued) > MAX_ENDPOINTS_VALIDITY_SECS
        {
            prop_assert!(result.is_err());
        }
        if let Ok(v) = result {
            use_verified(&v, now);
            // The same record, verified later or much later, still does not panic.
            for later in [now.plus(1), now.plus(RECORD_HORIZON_SECS), UnixTime::from_secs(MAX)] {
                if let Ok(v) = verify(&bytes, &key, later) {
                    use_verified(&v, later);
                }
            }
        }
    }

    #[test]
    fn records_around_the_end_of_time_verify_without_wrapping(back in 0u64..=MAX_CERT_VALIDITY_SECS, span in 1u64..=MAX_CERT_VALIDITY_SECS, ahead in 0u64..=CLOCK_SKEW_SECS) {
        // A certificate that ends at or just before u64::MAX, checked up to
        // the skew before it starts: valid, without any sum wrapping.
        let not_after = MAX - back;
        let not_before = not_after - span;
        let now = not_before - ahead;
        let t = Times {
            created_at: now.saturating_sub(10),
            links: vec![],
            not_before,
            not_after,
            revoked: false,
            cert_seq: MAX,
            endpoints: Some((now.saturating_sub(5), now.saturating_add(60), MAX)),
            now,
        };
        let record = signed_record(&t);
        let bytes = cyrcles_core::cbor::Encode::to_cbor(&record);
        let v = verify(&bytes, &record.ego_id().dht_key(), UnixTime::from_secs(now));
        let v = v.unwrap_or_else(|e| panic!("{t:?}: {e}"));
        use_verified(&v, UnixTime::from_secs(now));
    }
}

#[test]
fn the_extreme_strategy_reaches_records_that_verify() {
    // The property above checks what a verified record promises: it must
    // see some, at extreme times too.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut valid, mut extreme) = (0, 0);
    for _ in 0..400 {
        let t = times().new_tree(&mut runner).unwrap().current();
        let record = signed_record(&t);
        let bytes = cyrcles_core::cbor::Encode::to_cbor(&record);
        let now = UnixTime::from_secs(t.now);
        if verify(&bytes, &record.ego_id().dht_key(), now).is_ok() {
            valid += 1;
            if t.now < 20_000_000 || t.now > MAX - 20_000_000 {
                extreme += 1;
            }
        }
    }
    assert!(
        valid >= 30 && extreme >= 5,
        "{valid} valid, {extreme} at extreme times"
    );
}

#[test]
fn the_record_that_stopped_every_node_is_refused_at_any_time() {
    // Finding 1 of the security review: a throwaway ego whose validly
    // signed certificate ends near u64::MAX.
    for now in [0, NOW.secs(), MAX / 2, MAX - 1, MAX] {
        let t = Times {
            created_at: 0,
            links: vec![],
            not_before: now.saturating_sub(10),
            not_after: MAX - 1,
            revoked: false,
            cert_seq: 1,
            endpoints: None,
            now,
        };
        let record = signed_record(&t);
        let bytes = cyrcles_core::cbor::Encode::to_cbor(&record);
        let got = verify(&bytes, &record.ego_id().dht_key(), UnixTime::from_secs(now));
        if MAX - 1 - t.not_before > MAX_CERT_VALIDITY_SECS {
            assert!(
                matches!(got, Err(RecordError::ValidityTooLong(_))),
                "at {now}: {got:?}"
            );
        } else {
            // Only at the very end of time is such a certificate short.
            use_verified(&got.unwrap(), UnixTime::from_secs(now));
        }
    }
}

const CIRCLE: CircleId = CircleId([0xc1; 16]);
const SESSION: SessionId = SessionId([0x5e; 16]);

#[test]
fn members_refuse_extreme_requests_without_panicking() {
    let mut s = shared(960);
    // The circle (held whole by the owner in this test) certifies seq
    // u64::MAX: the next certificate cannot exist.
    let mut body = s.owner.record.cert.body.clone();
    body.seq = MAX;
    s.owner.record.cert = s.owner.sign_current(body);
    let record = s.owner.verify_at(NOW);
    let share = &s.shares[&member(1)];
    let policy = SigningPolicy::default();
    let new_key = SecretKey::from_seed(&[0x44; 32]);
    let next = |seq: u64, nb: u64, na: u64, status| EgoCert {
        ego_id: record.ego_id(),
        seq,
        ego_pk: new_key.public(),
        not_before: UnixTime::from_secs(nb),
        not_after: UnixTime::from_secs(na),
        status,
        circle_index: 1,
        epoch: 0,
    };
    let ask = |purpose: Purpose, issued_at: u64| {
        RequestBody {
            ego_id: record.ego_id(),
            circle_id: CIRCLE,
            generation: 1,
            session: SESSION,
            purpose,
            issued_at: UnixTime::from_secs(issued_at),
        }
        .sign(&s.owner.ego)
    };
    let check = |req: &CeremonyRequest, last: Option<u64>| {
        authorize(
            req,
            &record,
            share,
            last.map(UnixTime::from_secs),
            NOW,
            &policy,
        )
    };
    let n = NOW.secs();
    let ok_cert = next(0, n, n + DEFAULT_CERT_VALIDITY_SECS, CertStatus::Active);
    for (req, last, want) in [
        // seq + 1 does not exist.
        (
            ask(Purpose::Certify(ok_cert.clone()), n),
            None,
            Refusal::NotNext,
        ),
        // Requests and bodies from the end of time.
        (
            ask(Purpose::Certify(ok_cert.clone()), MAX),
            None,
            Refusal::Stale,
        ),
        (
            ask(Purpose::Certify(ok_cert.clone()), 0),
            None,
            Refusal::Stale,
        ),
        (
            ask(
                Purpose::Link(CircleLink {
                    ego_id: record.ego_id(),
                    index: 2,
                    circle_pk: new_key.public(),
                    issued_at: UnixTime::from_secs(MAX),
                }),
                n,
            ),
            None,
            Refusal::BadValidity,
        ),
        (
            ask(
                Purpose::Link(CircleLink {
                    ego_id: record.ego_id(),
                    index: 2,
                    circle_pk: new_key.public(),
                    issued_at: UnixTime::from_secs(n),
                }),
                n,
            ),
            Some(MAX),
            Refusal::TooSoon,
        ),
    ] {
        assert_eq!(check(&req, last), Err(want));
    }

    // Under an ordinary certificate, certificates from the end of time and
    // revocations longer than the protocol allows.
    let s = shared(961);
    let record = s.owner.verify_at(NOW);
    let share = &s.shares[&member(1)];
    let ask = |purpose: Purpose| {
        RequestBody {
            ego_id: record.ego_id(),
            circle_id: CIRCLE,
            generation: 1,
            session: SESSION,
            purpose,
            issued_at: NOW,
        }
        .sign(&s.owner.ego)
    };
    let seq = record.cert().seq + 1;
    for cert in [
        next(seq, MAX, MAX, CertStatus::Active),
        next(seq, MAX - 10, MAX, CertStatus::Active),
        next(seq, n, MAX, CertStatus::Active),
        next(seq, n, MAX, CertStatus::Revoked),
        next(seq, n, n + MAX_CERT_VALIDITY_SECS + 1, CertStatus::Revoked),
    ] {
        let mut cert = cert;
        cert.ego_id = record.ego_id();
        if cert.status == CertStatus::Revoked {
            cert.ego_pk = record.ego_key();
        }
        let req = ask(Purpose::Certify(cert.clone()));
        assert_eq!(
            authorize(&req, &record, share, None, NOW, &policy),
            Err(Refusal::BadValidity),
            "{cert:?}"
        );
    }
    // A policy above the protocol maximum does not let a member sign a
    // certificate no verifier accepts.
    let lax = SigningPolicy {
        max_cert_validity: 10 * MAX_CERT_VALIDITY_SECS,
        ..policy
    };
    let mut long = next(seq, n, n + MAX_CERT_VALIDITY_SECS + 1, CertStatus::Active);
    long.ego_id = record.ego_id();
    assert_eq!(
        authorize(
            &ask(Purpose::Certify(long)),
            &record,
            share,
            None,
            NOW,
            &lax
        ),
        Err(Refusal::BadValidity)
    );
}

#[test]
fn recovery_requests_with_extreme_values_are_refused_without_panicking() {
    let mut s = shared(962);
    let new_key = SecretKey::from_seed(&[0x45; 32]);
    let policy = SigningPolicy::default();
    let n = NOW.secs();
    let request = |record: &VerifiedEgo, epoch: u64, seq: u64, nb: u64, na: u64, issued_at: u64| {
        RecoveryBody {
            ego_id: record.ego_id(),
            peer_id: b"\x00\x24new-device".to_vec(),
            cert: EgoCert {
                ego_id: record.ego_id(),
                seq,
                ego_pk: new_key.public(),
                not_before: UnixTime::from_secs(nb),
                not_after: UnixTime::from_secs(na),
                status: CertStatus::Active,
                circle_index: 1,
                epoch,
            },
            issued_at: UnixTime::from_secs(issued_at),
            session: SESSION,
        }
        .sign(&new_key)
    };
    let record = s.owner.verify_at(NOW);
    let share = s.shares[&member(2)].clone();
    let seq = record.cert().seq + 1;
    let epoch = record.cert().epoch + 1;
    let end = n + DEFAULT_CERT_VALIDITY_SECS;
    for (req, want) in [
        (request(&record, epoch, seq, n, end, MAX), Refusal::Stale),
        (request(&record, epoch, seq, n, end, 0), Refusal::Stale),
        (
            request(&record, epoch, seq, MAX, MAX, n),
            Refusal::BadValidity,
        ),
        (
            request(&record, epoch, seq, n, MAX, n),
            Refusal::BadValidity,
        ),
        (request(&record, MAX, seq, n, end, n), Refusal::NotNext),
        (
            request(&record, epoch - 1, seq, n, end, n),
            Refusal::NotNext,
        ),
        (request(&record, epoch, 0, n, end, n), Refusal::NotNext),
    ] {
        assert_eq!(
            authorize_recovery(&req, &record, &share, NOW, &policy),
            Err(want)
        );
    }
    // The epoch orders a recovery, not the seq: a seq of u64::MAX, below
    // the record's or equal to it is no reason to refuse.
    for seq in [MAX, 1, seq - 1] {
        assert!(
            authorize_recovery(
                &request(&record, epoch, seq, n, end, n),
                &record,
                &share,
                NOW,
                &policy
            )
            .is_ok(),
            "seq {seq}"
        );
    }
    // A record whose certificate epoch is u64::MAX has no next epoch.
    let mut body = s.owner.record.cert.body.clone();
    body.epoch = MAX;
    s.owner.record.cert = s.owner.sign_current(body);
    let record = s.owner.verify_at(NOW);
    for epoch in [MAX, 0] {
        let req = request(&record, epoch, seq, n, end, n);
        assert_eq!(
            authorize_recovery(&req, &record, &share, NOW, &policy),
            Err(Refusal::NotNext)
        );
    }
}
