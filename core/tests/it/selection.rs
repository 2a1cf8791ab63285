//! The selection rule, duplicity and the anti-rollback memory.

use cyrcles_core::record::builder::sign_with_circle;
use cyrcles_core::record::{
    BestSeen, Choice, Conflict, DuplicityKind, Freshness, RollbackError, RollbackMemory, select,
};

use crate::common::{NOW, Owner, T0, peer};

#[test]
fn longer_chain_then_cert_seq_then_endpoints_seq() {
    let mut o = Owner::new(200);
    let v1 = o.verify_at(NOW);
    o.record
        .set_endpoints(&o.ego, vec![peer(9)], T0.plus(1), 3_600)
        .unwrap();
    let v_ep = o.verify_at(NOW);
    assert_eq!(select(&v1, &v_ep), Ok(Choice::TakeCandidate));
    assert_eq!(select(&v_ep, &v1), Ok(Choice::KeepCurrent));
    o.rotate(T0.plus(2));
    let v_cert = o.verify_at(NOW);
    // The rotated record's endpoints seq restarts at 1, lower than v_ep's 2,
    // but its certificate seq is higher: it wins.
    assert!(v_cert.rank().endpoints_seq < v_ep.rank().endpoints_seq);
    assert_eq!(select(&v_ep, &v_cert), Ok(Choice::TakeCandidate));
    o.add_link(T0.plus(3));
    let v_link = o.verify_at(NOW);
    assert_eq!(select(&v_cert, &v_link), Ok(Choice::TakeCandidate));
    assert_eq!(select(&v_link, &v_cert), Ok(Choice::KeepCurrent));
    assert_eq!(select(&v_link, &v_link.clone()), Ok(Choice::KeepCurrent));
}

#[test]
fn diverging_chains_are_duplicity_with_both_records_as_evidence() {
    let mut a = Owner::new(201);
    a.add_link(T0.plus(1));
    // A second history of the same ego (same seed, so the same inception
    // and keys) with a different link 1.
    let mut b = Owner::new(201);
    b.rng = crate::common::rng(999);
    b.add_link(T0.plus(1));
    let (va, vb) = (a.verify_at(NOW), b.verify_at(NOW));
    assert_eq!(va.ego_id(), vb.ego_id());
    match select(&va, &vb) {
        Err(Conflict::Duplicity(ev)) => {
            assert_eq!(ev.kind, DuplicityKind::DivergentChains { at_link: 1 });
            assert_eq!(ev.first, va.bytes());
            assert_eq!(ev.second, vb.bytes());
        }
        other => panic!("expected duplicity, got {other:?}"),
    }
    // A longer chain that does not extend the one held is duplicity too.
    b.add_link(T0.plus(2));
    let vb2 = b.verify_at(NOW);
    assert!(matches!(select(&va, &vb2), Err(Conflict::Duplicity(_))));
}

#[test]
fn two_certificates_with_one_seq_are_duplicity() {
    let o = Owner::new(202);
    let va = o.verify_at(NOW);
    let mut other = Owner::new(202);
    let mut body = other.record.cert.body.clone();
    body.not_after = body.not_after.plus(1);
    other.record.cert = other.sign_current(body);
    let vb = other.verify_at(NOW);
    assert!(matches!(
        select(&va, &vb),
        Err(Conflict::Duplicity(ev)) if ev.kind == DuplicityKind::ConflictingCertificates { seq: 1 }
    ));
}

#[test]
fn the_same_body_with_another_frost_signature_is_not_duplicity() {
    let o = Owner::new(203);
    let va = o.verify_at(NOW);
    let mut again = Owner::new(203);
    let body = again.record.cert.body.clone();
    // Schnorr signatures by a scalar key use a random nonce: another rng
    // gives another valid signature over the same body.
    let mut rng = crate::common::rng(7);
    again.record.cert = sign_with_circle(again.circle(), &mut rng, body);
    assert_ne!(again.record.cert.sig, o.record.cert.sig);
    let vb = again.verify_at(NOW);
    assert_eq!(select(&va, &vb), Ok(Choice::KeepCurrent));
}

#[test]
fn different_egos_cannot_be_compared() {
    let (a, b) = (Owner::new(204), Owner::new(205));
    assert_eq!(
        select(&a.verify_at(NOW), &b.verify_at(NOW)),
        Err(Conflict::DifferentEgos)
    );
}

#[test]
fn rollback_memory_refuses_anything_older_than_the_best_seen() {
    let mut o = Owner::new(206);
    let v1 = o.verify_at(NOW);
    o.rotate(T0.plus(1));
    let v2 = o.verify_at(NOW);
    o.add_link(T0.plus(2));
    let v3 = o.verify_at(NOW);

    let mut mem = RollbackMemory::new(16);
    assert_eq!(mem.accept(&v1), Ok(Freshness::Newer));
    assert_eq!(mem.accept(&v1), Ok(Freshness::Same));
    assert_eq!(mem.accept(&v2), Ok(Freshness::Newer));
    assert!(matches!(mem.accept(&v1), Err(RollbackError::Stale { .. })));
    assert_eq!(mem.accept(&v3), Ok(Freshness::Newer));
    assert!(matches!(mem.check(&v2), Err(RollbackError::Stale { .. })));
    assert!(matches!(mem.check(&v1), Err(RollbackError::Stale { .. })));
    assert_eq!(mem.get(&v3.ego_id()), Some(&BestSeen::of(&v3)));
}

#[test]
fn rollback_memory_spots_a_fork_against_a_remembered_summary() {
    let mut a = Owner::new(207);
    a.add_link(T0.plus(1));
    let mut b = Owner::new(207);
    b.rng = crate::common::rng(12345);
    b.add_link(T0.plus(1));
    b.add_link(T0.plus(2));
    let mut mem = RollbackMemory::new(4);
    mem.accept(&a.verify_at(NOW)).unwrap();
    assert_eq!(
        mem.accept(&b.verify_at(NOW)),
        Err(RollbackError::Duplicity(DuplicityKind::DivergentChains {
            at_link: 1
        }))
    );
    // The first history is kept.
    assert_eq!(mem.get(&a.record.ego_id()).unwrap().rank.chain_len, 1);
}

#[test]
fn rollback_memory_is_bounded_and_forgets_the_least_recently_used() {
    let owners: Vec<Owner> = (300..305).map(Owner::new).collect();
    let mut mem = RollbackMemory::new(3);
    for o in &owners {
        mem.accept(&o.verify_at(NOW)).unwrap();
    }
    assert_eq!(mem.len(), 3);
    assert!(mem.get(&owners[0].record.ego_id()).is_none());
    assert!(mem.get(&owners[4].record.ego_id()).is_some());
    // Touching an entry keeps it.
    mem.accept(&owners[2].verify_at(NOW)).unwrap();
    mem.accept(&owners[0].verify_at(NOW)).unwrap();
    assert!(mem.get(&owners[2].record.ego_id()).is_some());
    assert!(mem.get(&owners[3].record.ego_id()).is_none());
}
