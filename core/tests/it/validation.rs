//! Validation: each rule has a record that breaks only it; the builders
//! only produce records that verify; the builders refuse bad steps.

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder::{self, BuildError, sign_with_circle, sign_with_key};
use cyrcles_core::record::{CertStatus, Part, RecordError};
use cyrcles_core::time::{CLOCK_SKEW_SECS, MAX_FUTURE_SECS};
use cyrcles_core::{CircleSecret, SecretKey, verify};

use crate::cases;
use crate::common::{NOW, Owner, T0, peer, three_links};

#[test]
fn every_case_gives_its_expected_result() {
    for c in cases::all() {
        let got = verify(&c.record, &c.dht_key, c.now);
        match (c.error, got) {
            (None, Ok(_)) => {}
            (Some((rule, code)), Err(e)) => {
                assert_eq!((e.rule(), e.code()), (rule, code), "{}: {e}", c.name);
            }
            (want, got) => panic!("{}: wanted {want:?}, got {got:?}", c.name),
        }
    }
}

#[test]
fn every_rule_and_every_check_is_covered() {
    let cases = cases::all();
    for rule in 1..=5u8 {
        assert!(
            cases.iter().any(|c| c.error.map(|e| e.0) == Some(rule)),
            "no case for rule {rule}"
        );
    }
    for code in [
        "too_large",
        "encoding",
        "ego_id_mismatch",
        "dht_key_mismatch",
        "bad_signature",
        "chain_index",
        "chain_order",
        "cert_not_from_last_circle",
        "not_yet_valid",
        "cert_expired",
        "invalid_window",
        "validity_too_long",
    ] {
        assert!(
            cases.iter().any(|c| c.error.map(|e| e.1) == Some(code)),
            "no case for {code}"
        );
    }
}

#[test]
fn time_cases_break_only_the_time_rule() {
    // Moved to a time where their windows hold, the time cases verify: no
    // other rule was broken. Only windows malformed at every time (empty,
    // or longer than the protocol allows) have no such time.
    for c in cases::all()
        .into_iter()
        .filter(|c| c.error.map(|e| e.0) == Some(5))
    {
        let code = c.error.unwrap().1;
        match c.valid_at {
            Some(t) => {
                verify(&c.record, &c.dht_key, t).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            }
            None => assert!(
                ["invalid_window", "validity_too_long"].contains(&code),
                "{} has no time at which it verifies",
                c.name
            ),
        }
    }
}

#[test]
fn verified_ego_reports_what_the_record_says() {
    let o = three_links(100);
    let v = o.verify_at(NOW);
    assert_eq!(v.ego_id(), o.record.ego_id());
    assert_eq!(v.dht_key(), o.record.ego_id().dht_key());
    assert_eq!(v.bytes(), o.bytes().as_slice());
    assert_eq!(v.ego_key(), o.ego.public());
    assert_eq!(v.circle_key(), o.circle().public());
    assert_eq!(v.rank().chain_len, 3);
    assert_eq!(v.rank().cert_seq, 4);
    assert!(v.key_usable_at(NOW));
    assert!(!v.is_revoked());
    assert!(v.live_endpoints(NOW).is_some());
    // Endpoints expire after a day: the record stays valid but they are no
    // longer offered.
    let later = T0.plus(builder::DEFAULT_ENDPOINTS_VALIDITY_SECS + CLOCK_SKEW_SECS + 1);
    let v = o.verify_at(later);
    assert!(v.live_endpoints(later).is_none());
    assert!(v.endpoints().is_some());
}

#[test]
fn clock_skew_is_tolerated_at_both_ends_of_the_certificate() {
    let o = Owner::new(101);
    let key = o.record.ego_id().dht_key();
    let bytes = o.bytes();
    let not_after = o.record.cert.body.not_after;
    assert!(verify(&bytes, &key, T0.minus(CLOCK_SKEW_SECS)).is_ok());
    assert!(matches!(
        verify(&bytes, &key, T0.minus(CLOCK_SKEW_SECS + 1)),
        Err(RecordError::NotYetValid(Part::EgoCert))
    ));
    assert!(verify(&bytes, &key, not_after.plus(CLOCK_SKEW_SECS)).is_ok());
    assert!(matches!(
        verify(&bytes, &key, not_after.plus(CLOCK_SKEW_SECS + 1)),
        Err(RecordError::CertExpired(_))
    ));
}

#[test]
fn a_link_may_be_issued_up_to_two_hours_ahead() {
    let mut o = Owner::new(102);
    o.add_link(NOW.plus(MAX_FUTURE_SECS));
    // The certificate was issued then too; move its start back so that only
    // the link's time is in question.
    let body = {
        let mut b = o.record.cert.body.clone();
        b.not_before = T0;
        b
    };
    o.record.cert = o.sign_current(body);
    let key = o.record.ego_id().dht_key();
    assert!(verify(&o.bytes(), &key, NOW).is_ok());
    assert!(matches!(
        verify(&o.bytes(), &key, NOW.minus(1)),
        Err(RecordError::NotYetValid(Part::CircleLink(1)))
    ));
}

#[test]
fn builders_produce_records_that_verify_at_each_step() {
    let mut o = Owner::new(103);
    o.verify_at(T0);
    for i in 1..=4u64 {
        o.add_link(T0.plus(i * 10));
        let v = o.verify_at(NOW);
        assert_eq!(v.rank().chain_len, i);
    }
    o.rotate(T0.plus(100));
    assert_eq!(o.verify_at(NOW).ego_key(), o.ego.public());
    o.record
        .set_endpoints(&o.ego, vec![peer(3), peer(4)], T0.plus(200), 3_600)
        .unwrap();
    let v = o.verify_at(NOW);
    assert_eq!(v.endpoints().unwrap().peers.len(), 2);
    assert_eq!(v.endpoints().unwrap().seq, 2);
    // A dated seq follows the clock, so a copy restored from an older
    // backup still signs newer endpoints; within one second it counts on.
    let mut restored = o.record.clone();
    restored
        .set_endpoints_dated(&o.ego, vec![peer(5)], T0.plus(250), 3_600)
        .unwrap();
    assert_eq!(
        restored.endpoints.as_ref().unwrap().body.seq,
        T0.plus(250).secs()
    );
    restored
        .set_endpoints_dated(&o.ego, vec![peer(6)], T0.plus(250), 3_600)
        .unwrap();
    assert_eq!(
        restored.endpoints.as_ref().unwrap().body.seq,
        T0.plus(250).secs() + 1
    );
    let circle = o.circles.pop().unwrap();
    o.record
        .revoke_with(&circle, &mut o.rng, T0.plus(300), 60)
        .unwrap();
    let v = o.verify_at(NOW);
    assert!(v.is_revoked());
    assert!(!v.key_usable_at(NOW));
    assert!(v.endpoints().is_none());
    // The revocation lives at least as long as the certificate it replaced.
    assert!(v.cert().not_after >= T0.plus(100 + builder::DEFAULT_CERT_VALIDITY_SECS));
}

#[test]
fn builders_refuse_out_of_sequence_and_wrongly_signed_parts() {
    let mut o = three_links(104);
    // A link signed by the root key after link 1 exists.
    let body = o
        .record
        .next_link(CircleSecret::generate(&mut o.rng).public(), NOW);
    let bad = sign_with_key(&o.root, body.clone());
    assert!(matches!(
        o.record.push_link(bad),
        Err(BuildError::WrongSigner(_))
    ));
    // A link with the wrong index.
    let mut skipped = body;
    skipped.index += 1;
    let signed = o.sign_current(skipped);
    assert_eq!(
        o.record.push_link(signed),
        Err(BuildError::OutOfSequence("link index"))
    );
    // A certificate that does not raise the seq.
    let mut cert = o.record.next_cert(o.ego.public(), NOW, 60);
    cert.seq = o.record.cert.body.seq;
    let signed = o.sign_current(cert);
    assert_eq!(
        o.record.set_cert(signed),
        Err(BuildError::OutOfSequence("certificate seq"))
    );
    // A certificate signed by an older circle key.
    let cert = o.record.next_cert(o.ego.public(), NOW, 60);
    let signed = sign_with_circle(&o.circles[1], &mut o.rng, cert);
    assert!(matches!(
        o.record.set_cert(signed),
        Err(BuildError::WrongSigner(_))
    ));
    // Endpoints signed by a key that is not certified.
    let stranger = SecretKey::generate(&mut o.rng);
    assert_eq!(
        o.record.set_endpoints(&stranger, vec![peer(1)], NOW, 60),
        Err(BuildError::NotTheEgoKey)
    );
    // Too many peers.
    let many: Vec<_> = (0..9).map(peer).collect();
    assert_eq!(
        o.record.set_endpoints(&o.ego, many, NOW, 60),
        Err(BuildError::Limit("peers"))
    );
    // Nothing above changed the record: it still verifies as before.
    assert_eq!(o.verify_at(NOW).rank().cert_seq, 4);
    // A revoked ego cannot change.
    let circle = o.circles.pop().unwrap();
    o.record.revoke_with(&circle, &mut o.rng, NOW, 60).unwrap();
    assert_eq!(
        o.record
            .certify_with(&circle, &mut o.rng, o.ego.public(), NOW, 60),
        Err(BuildError::Revoked)
    );
    assert_eq!(o.record.cert.body.status, CertStatus::Revoked);
}

#[test]
fn endpoints_that_would_overflow_the_record_are_refused() {
    let mut o = Owner::new(105);
    let fat = cyrcles_core::record::PeerEndpoint {
        peer_id: vec![1; 64],
        addrs: vec![vec![2; 256]; 8],
    };
    let before = o.bytes();
    let err = o
        .record
        .set_endpoints(&o.ego, vec![fat; 8], NOW, 60)
        .unwrap_err();
    assert_eq!(err, BuildError::Limit("record size"));
    assert_eq!(o.bytes(), before, "the previous endpoints are kept");
}

#[test]
fn record_size_stays_well_under_the_cap_for_typical_egos() {
    let o = three_links(106);
    let len = o.record.to_cbor().len();
    assert!(len < 4 * 1024, "a 3-link record takes {len} bytes");
}

#[test]
fn the_signature_cache_never_changes_a_verdict() {
    use cyrcles_core::record::{SignatureCache, verify_cached};
    let mut cache = SignatureCache::new(64);
    // Warm the cache with every valid case, then run every case through
    // it: same verdicts as without.
    for c in cases::all().iter().filter(|c| c.error.is_none()) {
        verify_cached(&c.record, &c.dht_key, c.now, &mut cache).unwrap();
    }
    for c in cases::all() {
        let plain = verify(&c.record, &c.dht_key, c.now).map(|v| v.rank());
        let cached = verify_cached(&c.record, &c.dht_key, c.now, &mut cache).map(|v| v.rank());
        assert_eq!(plain, cached, "{}", c.name);
    }
    // A record whose endpoints changed reuses the cached chain and still
    // checks the new endpoints signature.
    let mut o = three_links(107);
    let key = o.record.ego_id().dht_key();
    verify_cached(&o.bytes(), &key, NOW, &mut cache).unwrap();
    o.record
        .set_endpoints(&o.ego, vec![peer(5)], T0.plus(500), 3_600)
        .unwrap();
    verify_cached(&o.bytes(), &key, NOW, &mut cache).unwrap();
    o.record.endpoints.as_mut().unwrap().sig.0[3] ^= 1;
    assert!(matches!(
        verify_cached(&o.bytes(), &key, NOW, &mut cache),
        Err(RecordError::BadSignature {
            part: Part::Endpoints,
            ..
        })
    ));
}
