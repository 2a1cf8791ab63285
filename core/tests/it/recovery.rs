//! Recovery after a lost device, in one process: the new key's request,
//! each approved member's check of it against the ego's record, the FROST
//! session, and the certificate that makes the new key current. Each
//! refusal rule has a request that breaks only it.

use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::circle::messages::MAX_CIRCLE_MESSAGE_SIZE;
use cyrcles_core::circle::{
    Coordinator, MAX_NOTICE_REQUEST_LEN, MemberId, RecoveryBody, RecoveryNotice, RecoveryNoticed,
    RecoveryPending, RecoveryRequest, Refusal, SessionId, SigningPolicy, authorize_recovery,
    commit,
};
use cyrcles_core::record::Signed;
use cyrcles_core::record::builder::DEFAULT_CERT_VALIDITY_SECS;
use cyrcles_core::record::types::CertStatus;
use cyrcles_core::{SecretKey, UnixTime};
use proptest::prelude::*;

// Alice's circle, generation 1, shared 3 of 5: the ceremony tests' one.
use crate::ceremony::{Shared as Circle, member, shared as circle};
use crate::common::NOW;

const SESSION: SessionId = SessionId([0x7a; 16]);
const PEER: &[u8] = b"\x00\x24the-new-device-peer-id-bytes-000000";

fn body(c: &Circle, new_key: &SecretKey, now: UnixTime) -> RecoveryBody {
    RecoveryBody {
        ego_id: c.owner.record.ego_id(),
        peer_id: PEER.to_vec(),
        cert: c
            .owner
            .record
            .recovery_cert(new_key.public(), now, DEFAULT_CERT_VALIDITY_SECS),
        issued_at: now,
        session: SESSION,
    }
}

fn check(c: &Circle, req: &RecoveryRequest, now: UnixTime) -> Result<Vec<u8>, Refusal> {
    authorize_recovery(
        req,
        &c.owner.verify_at(now),
        &c.shares[&member(2)],
        now,
        &SigningPolicy::default(),
    )
}

#[test]
fn approved_friends_certify_the_new_key_and_the_old_one_is_replaced() {
    let mut c = circle(950);
    let before = c.owner.verify_at(NOW);
    let new_key = SecretKey::generate(&mut c.owner.rng);
    let request = body(&c, &new_key, NOW).sign(&new_key);
    let received = RecoveryRequest::from_cbor(&request.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
    assert_eq!(received, request);
    received.check_possession().unwrap();
    // Both people read the same six digits.
    assert_eq!(received.fingerprint(), request.fingerprint());
    assert_eq!(received.fingerprint().len(), 7);

    // A member tells the new device who it is and the circle's public data.
    let pending = RecoveryPending {
        member: c.shares[&member(4)].member(),
        circle_id: c.shares[&member(4)].circle_id(),
        public: c.shares[&member(4)].public().clone(),
        wait_secs: 0,
    };
    let pending = RecoveryPending::from_cbor(&pending.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
    assert_eq!(pending.public.group_key(), before.circle_key());
    // Once its human approved, the member says how long it still waits;
    // a zero wait is written by leaving key 4 out.
    let waiting = RecoveryPending {
        wait_secs: 3_600,
        ..pending.clone()
    };
    let bytes = waiting.to_cbor();
    assert_eq!(
        RecoveryPending::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE).unwrap(),
        waiting
    );
    // Key 4, then 3 600 as 0x19 0x0e 0x10.
    assert_eq!(bytes.len(), pending.to_cbor().len() + 4);
    let mut explicit_zero = bytes.clone();
    explicit_zero.truncate(bytes.len() - 3);
    explicit_zero.push(0x00);
    assert_eq!(&explicit_zero[explicit_zero.len() - 2..], &[0x04, 0x00]);
    assert!(RecoveryPending::from_cbor(&explicit_zero, MAX_CIRCLE_MESSAGE_SIZE).is_err());

    // Three approved members sign; the new device coordinates.
    let policy = SigningPolicy::default();
    let message =
        authorize_recovery(&received, &before, &c.shares[&member(2)], NOW, &policy).unwrap();
    let mut coord = Coordinator::new(pending.public, SESSION, message.clone()).unwrap();
    let mut nonces = Vec::new();
    for n in [2, 4, 5] {
        let share = &c.shares[&member(n)];
        assert_eq!(
            authorize_recovery(&received, &before, share, NOW, &policy).unwrap(),
            message
        );
        let (nonce, r1) = commit(share, SESSION, &mut c.owner.rng);
        coord.add_commitments(r1).unwrap();
        nonces.push((n, nonce));
    }
    let signing = coord.request().unwrap();
    for (n, nonce) in nonces {
        coord
            .add_share(nonce.sign(&c.shares[&member(n)], &signing).unwrap())
            .unwrap();
    }
    let sig = coord.aggregate().unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(before.circle_key().as_bytes()).unwrap();
    vk.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&sig.0))
        .unwrap();
    c.owner
        .record
        .set_cert(Signed {
            body: received.body.cert.clone(),
            sig,
        })
        .unwrap();
    let after = c.owner.verify_at(NOW);
    assert_eq!(after.ego_key(), new_key.public());
    assert_ne!(after.ego_key(), before.ego_key());
    assert_eq!(after.cert().seq, before.cert().seq + 1);
    assert_eq!(after.cert().epoch, before.cert().epoch + 1);
}

#[test]
fn each_rule_refuses_the_recovery_that_breaks_it() {
    let mut c = circle(952);
    let new_key = SecretKey::generate(&mut c.owner.rng);
    let other = SecretKey::generate(&mut c.owner.rng);
    let refuse = |c: &Circle, b: RecoveryBody, key: &SecretKey| check(c, &b.sign(key), NOW);

    // Signed by a key other than the one asked to be certified.
    assert_eq!(
        refuse(&c, body(&c, &new_key, NOW), &other),
        Err(Refusal::BadSignature)
    );
    // A certificate for another ego.
    let mut b = body(&c, &new_key, NOW);
    b.cert.ego_id = crate::common::Owner::new(7).record.ego_id();
    assert_eq!(refuse(&c, b, &new_key), Err(Refusal::WrongEgo));
    // Stale.
    let mut b = body(&c, &new_key, NOW);
    b.issued_at = NOW.minus(3600);
    assert_eq!(refuse(&c, b, &new_key), Err(Refusal::Stale));
    // Not the next epoch (a rotation's, or one too far), a seq of 0; the
    // same key; a revocation in disguise.
    for epoch in [0, 2] {
        let mut b = body(&c, &new_key, NOW);
        b.cert.epoch = epoch;
        assert_eq!(
            refuse(&c, b, &new_key),
            Err(Refusal::NotNext),
            "epoch {epoch}"
        );
    }
    let mut b = body(&c, &new_key, NOW);
    b.cert.seq = 0;
    assert_eq!(refuse(&c, b, &new_key), Err(Refusal::NotNext));
    let current = c.owner.ego.public();
    let mut b = body(&c, &new_key, NOW);
    b.cert.ego_pk = current;
    assert_eq!(refuse(&c, b, &c.owner.ego), Err(Refusal::NotNext));
    let mut b = body(&c, &new_key, NOW);
    b.cert.status = CertStatus::Revoked;
    assert_eq!(refuse(&c, b, &new_key), Err(Refusal::NotNext));
    // Longer than the policy allows, or not starting now.
    let mut b = body(&c, &new_key, NOW);
    b.cert.not_after = b
        .cert
        .not_before
        .plus(SigningPolicy::default().max_cert_validity + 1);
    assert_eq!(refuse(&c, b, &new_key), Err(Refusal::BadValidity));
    let mut b = body(&c, &new_key, NOW);
    b.cert.not_before = NOW.minus(86_400);
    assert_eq!(refuse(&c, b, &new_key), Err(Refusal::BadValidity));
    // A share of another circle.
    let stranger = circle(953);
    let req = body(&c, &new_key, NOW).sign(&new_key);
    assert_eq!(
        authorize_recovery(
            &req,
            &c.owner.verify_at(NOW),
            &stranger.shares[&member(1)],
            NOW,
            &SigningPolicy::default()
        ),
        Err(Refusal::WrongEgo)
    );
    // A revoked ego is not recovered.
    let revocation = c.owner.record.revocation(NOW, DEFAULT_CERT_VALIDITY_SECS);
    let signed = c.owner.sign_current(revocation);
    c.owner.record.set_cert(signed).unwrap();
    let b = body(&c, &new_key, NOW);
    assert_eq!(refuse(&c, b, &new_key), Err(Refusal::CertNotValid));
}

/// Circle-signed beats device-signed (docs/circle-authority.md, P3): a
/// thief holding the lost ego key rotates it through the friends while
/// they wait for their humans. The recovery asked for before those
/// rotations still passes every member's check, and the record it makes
/// wins over the thief's at every verifier, whatever the seqs: in the
/// selection rule and in the anti-rollback memory of a verifier that saw
/// the thief's record first.
#[test]
fn a_recovery_wins_over_rotations_made_while_it_waited() {
    use cyrcles_core::record::{BestSeen, Choice, RollbackError, select};
    let mut c = circle(956);
    let new_key = SecretKey::generate(&mut c.owner.rng);
    let request = body(&c, &new_key, NOW).sign(&new_key);
    let asked = request.body.cert.clone();

    // The thief's rotations, automatic at each member: seq + 1, seq + 2.
    let mut thief = c.owner.record.clone();
    for _ in 0..2 {
        let key = SecretKey::generate(&mut c.owner.rng);
        let cert = thief.next_cert(key.public(), NOW, DEFAULT_CERT_VALIDITY_SECS);
        thief.set_cert(c.owner.sign_current(cert)).unwrap();
    }
    assert_eq!(thief.cert.body.seq, asked.seq + 1);
    let thief_bytes = thief.to_cbor();
    let dht_key = thief.ego_id().dht_key();
    let thief_seen = cyrcles_core::record::verify(&thief_bytes, &dht_key, NOW).unwrap();

    // Each member checks the request against the record it now sees.
    let message = authorize_recovery(
        &request,
        &thief_seen,
        &c.shares[&member(2)],
        NOW,
        &SigningPolicy::default(),
    )
    .unwrap();
    let sig = c.owner.sign_current(asked.clone()).sig;
    assert!(message.ends_with(&asked.to_cbor()));
    let mut recovered = thief.clone();
    recovered.set_cert(Signed { body: asked, sig }).unwrap();
    let recovered = cyrcles_core::record::verify(&recovered.to_cbor(), &dht_key, NOW).unwrap();
    assert!(recovered.cert().seq < thief_seen.cert().seq);

    assert_eq!(
        select(&thief_seen, &recovered).unwrap(),
        Choice::TakeCandidate
    );
    assert_eq!(
        select(&recovered, &thief_seen).unwrap(),
        Choice::KeepCurrent
    );
    let memory = BestSeen::of(&thief_seen);
    memory.check(&recovered).unwrap();
    let memory = BestSeen::of(&recovered);
    assert!(matches!(
        memory.check(&thief_seen),
        Err(RollbackError::Stale { .. })
    ));
    // And the thief can no longer rotate: the next rotation of its record
    // keeps the old epoch, which the recovered record's holder refuses.
    let mut again = recovered.record().clone();
    let key = SecretKey::generate(&mut c.owner.rng);
    let mut stale = thief.next_cert(key.public(), NOW, DEFAULT_CERT_VALIDITY_SECS);
    stale.seq = u64::MAX;
    assert!(again.set_cert(c.owner.sign_current(stale)).is_err());
}

/// Fuzz finding F1 (docs/security.md): a stranger's certificate that
/// starts at the end of time overflowed `not_before + CLOCK_SKEW_SECS`.
#[test]
fn a_certificate_starting_at_the_end_of_time_is_refused() {
    let mut c = circle(955);
    let new_key = SecretKey::generate(&mut c.owner.rng);
    let mut b = body(&c, &new_key, NOW);
    b.cert.not_before = UnixTime::from_secs(u64::MAX);
    b.cert.not_after = UnixTime::from_secs(u64::MAX);
    assert_eq!(check(&c, &b.sign(&new_key), NOW), Err(Refusal::BadValidity));
}

#[test]
fn recovery_messages_decode_strictly() {
    let mut c = circle(954);
    let new_key = SecretKey::generate(&mut c.owner.rng);
    let mut bytes = body(&c, &new_key, NOW).sign(&new_key).to_cbor();
    bytes.push(0);
    assert!(RecoveryRequest::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE).is_err());
    bytes.pop();
    bytes.pop();
    assert!(RecoveryRequest::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE).is_err());
    // A pending answer naming a member the circle does not have.
    let pending = RecoveryPending {
        member: MemberId::new(9).unwrap(),
        circle_id: c.shares[&member(1)].circle_id(),
        public: c.shares[&member(1)].public().clone(),
        wait_secs: 0,
    };
    assert!(RecoveryPending::from_cbor(&pending.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).is_err());
}

#[test]
fn a_recovery_notice_carries_the_request_byte_for_byte_and_decodes_strictly() {
    let mut c = circle(956);
    let new_key = SecretKey::generate(&mut c.owner.rng);
    let request = body(&c, &new_key, NOW).sign(&new_key);
    let inner = request.to_cbor();
    let notice = RecoveryNotice {
        request: request.clone(),
    };
    let bytes = notice.to_cbor();
    // {0: 1, 1: bstr}: the request's own bytes, unchanged, at the end.
    assert_eq!(&bytes[..3], &[0xa2, 0x00, 0x01]);
    assert!(bytes.ends_with(&inner));
    let got = RecoveryNotice::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE).unwrap();
    assert_eq!(got, notice);
    assert_eq!(got.request.to_cbor(), inner);
    got.request.check_possession().unwrap();

    // Trailing bytes, a truncation, another version, a third field.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(RecoveryNotice::from_cbor(&longer, MAX_CIRCLE_MESSAGE_SIZE).is_err());
    assert!(RecoveryNotice::from_cbor(&bytes[..bytes.len() - 1], MAX_CIRCLE_MESSAGE_SIZE).is_err());
    let mut v2 = bytes.clone();
    v2[2] = 0x02;
    assert!(RecoveryNotice::from_cbor(&v2, MAX_CIRCLE_MESSAGE_SIZE).is_err());
    let mut three = bytes.clone();
    three[0] = 0xa3;
    three.extend_from_slice(&[0x02, 0x00]);
    assert!(RecoveryNotice::from_cbor(&three, MAX_CIRCLE_MESSAGE_SIZE).is_err());
    // An inner request with trailing bytes is not the request as received.
    let mut padded = inner.clone();
    padded.push(0);
    let mut e = cyrcles_core::cbor::Encoder::new();
    e.map(2);
    e.key(0);
    e.uint(1);
    e.key(1);
    e.bytes(&padded);
    assert!(RecoveryNotice::from_cbor(&e.into_bytes(), MAX_CIRCLE_MESSAGE_SIZE).is_err());
    // An empty or an oversized inner request.
    for inner in [Vec::new(), vec![0u8; MAX_NOTICE_REQUEST_LEN + 1]] {
        let mut e = cyrcles_core::cbor::Encoder::new();
        e.map(2);
        e.key(0);
        e.uint(1);
        e.key(1);
        e.bytes(&inner);
        assert!(RecoveryNotice::from_cbor(&e.into_bytes(), MAX_CIRCLE_MESSAGE_SIZE).is_err());
    }

    // The answer is {0: 1}, nothing else.
    assert_eq!(RecoveryNoticed.to_cbor(), vec![0xa1, 0x00, 0x01]);
    RecoveryNoticed::from_cbor(&[0xa1, 0x00, 0x01], 16).unwrap();
    assert!(RecoveryNoticed::from_cbor(&[0xa1, 0x00, 0x02], 16).is_err());
    assert!(RecoveryNoticed::from_cbor(&[0xa2, 0x00, 0x01, 0x01, 0x00], 16).is_err());
    assert!(RecoveryNoticed::from_cbor(&[0xa1, 0x00, 0x01, 0x00], 16).is_err());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_recovery_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = RecoveryRequest::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE);
        let _ = RecoveryPending::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE);
        let _ = RecoveryNotice::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE);
        let _ = RecoveryNoticed::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE);
    }
}

/// The device holding the current key objects to a recovery: a member
/// accepts it only signed by the key the record certifies, for this ego,
/// fresh, while the ego lives; it decodes strictly.
#[test]
fn an_objection_is_accepted_only_from_the_current_key_and_decodes_strictly() {
    use cyrcles_core::circle::{Noted, Objection, ObjectionBody, ObjectionNoted};
    let mut c = circle(930);
    let new_key = SecretKey::generate(&mut c.owner.rng);
    let record = c.owner.verify_at(NOW);
    let body = |issued_at: UnixTime| ObjectionBody {
        ego_id: record.ego_id(),
        new_key: new_key.public(),
        issued_at,
    };
    let good = body(NOW).sign(&c.owner.ego);
    assert_eq!(good.verify(&record, NOW), Ok(()));
    let wire = good.to_cbor();
    assert_eq!(
        Objection::from_cbor(&wire, MAX_CIRCLE_MESSAGE_SIZE).unwrap(),
        good
    );
    // The recovering device's own key, or anyone else's, is not the
    // current key: a new device cannot object to its rivals.
    assert_eq!(
        body(NOW).sign(&new_key).verify(&record, NOW),
        Err(Refusal::BadSignature)
    );
    // Another ego's objection, an old one, one from the future.
    let mut other = body(NOW);
    other.ego_id = crate::common::Owner::new(931).record.ego_id();
    assert_eq!(
        other.sign(&c.owner.ego).verify(&record, NOW),
        Err(Refusal::WrongEgo)
    );
    for at in [NOW.minus(3600), NOW.plus(3600)] {
        assert_eq!(
            body(at).sign(&c.owner.ego).verify(&record, NOW),
            Err(Refusal::Stale)
        );
    }
    // A signature over another new key does not carry over.
    let mut moved = good.clone();
    moved.body.new_key = SecretKey::generate(&mut c.owner.rng).public();
    assert_eq!(moved.verify(&record, NOW), Err(Refusal::BadSignature));
    // A revoked ego objects to nothing.
    let revocation = c.owner.record.revocation(NOW, DEFAULT_CERT_VALIDITY_SECS);
    let signed = c.owner.sign_current(revocation);
    c.owner.record.set_cert(signed).unwrap();
    let revoked = c.owner.verify_at(NOW);
    assert_eq!(good.verify(&revoked, NOW), Err(Refusal::CertNotValid));
    // Strict decoding.
    let mut bytes = wire.clone();
    bytes.push(0);
    assert!(Objection::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE).is_err());
    for cut in 0..wire.len() {
        assert!(Objection::from_cbor(&wire[..cut], MAX_CIRCLE_MESSAGE_SIZE).is_err());
    }
    for noted in [Noted::Unknown, Noted::Shown, Noted::Paused, Noted::Dropped] {
        let n = ObjectionNoted { noted };
        assert_eq!(
            ObjectionNoted::from_cbor(&n.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap(),
            n
        );
    }
    // {0: 1, 1: 4}: no such answer.
    assert!(ObjectionNoted::from_cbor(&[0xa2, 0, 1, 1, 4], MAX_CIRCLE_MESSAGE_SIZE).is_err());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_objection_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = cyrcles_core::circle::Objection::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE);
        let _ = cyrcles_core::circle::ObjectionNoted::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE);
    }
}
