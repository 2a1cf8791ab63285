//! Circle ceremonies: dealing, 3-of-5 signing (verified with
//! ed25519-dalek), cheater detection, repair, message encodings.

use std::collections::BTreeMap;

use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::circle::messages::MAX_CIRCLE_MESSAGE_SIZE;
use cyrcles_core::circle::{
    CircleError, CircleId, Coordinator, DealtShare, MemberId, MemberShare, RepairDelta,
    RepairHelper, RepairRequest, RepairSigma, RepairTarget, Round1, Round2, SessionId, ShareAck,
    SigningRequest, commit, deal,
};
use cyrcles_core::record::Signed;
use cyrcles_core::record::builder::sign_with_circle;
use cyrcles_core::{CircleSecret, Context, verify};
use rand_chacha::ChaCha20Rng;

use crate::common::{NOW, Owner, T0, rng};

fn m(n: u16) -> MemberId {
    MemberId::new(n).unwrap()
}

struct Circle {
    shares: BTreeMap<MemberId, MemberShare>,
    public: cyrcles_core::circle::CirclePublic,
    key: CircleSecret,
}

fn circle(t: u16, n: u16, rng: &mut ChaCha20Rng) -> Circle {
    let key = CircleSecret::generate(rng);
    let dealing = deal(
        &key,
        Owner::new(1).record.ego_id(),
        CircleId([4; 16]),
        1,
        t,
        n,
        rng,
    )
    .unwrap();
    let mut shares = BTreeMap::new();
    for dealt in dealing.shares {
        // Each share crosses the wire and is checked by its member.
        let wire = dealt.to_secret_cbor();
        let received = DealtShare::decode_bytes(&wire).unwrap();
        let share = MemberShare::accept(received).unwrap();
        // The member's acknowledgement satisfies the dealer.
        let ack = ShareAck::from_cbor(&share.ack().to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
        dealing.public.check_ack(&ack).unwrap();
        shares.insert(share.member(), share);
    }
    Circle {
        shares,
        public: dealing.public,
        key,
    }
}

/// Runs a session with `signers`; `tamper` may replace a signer's share.
fn run_session(
    c: &Circle,
    signers: &[u16],
    message: &[u8],
    rng: &mut ChaCha20Rng,
    tamper: impl Fn(MemberId, Round2) -> Round2,
) -> Result<[u8; 64], CircleError> {
    let session = SessionId([9; 16]);
    let mut coord = Coordinator::new(c.public.clone(), session, message.to_vec())?;
    let mut nonces = Vec::new();
    for &s in signers {
        let (n, r1) = commit(&c.shares[&m(s)], session, rng);
        let r1 = Round1::from_cbor(&r1.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
        coord.add_commitments(r1)?;
        nonces.push((m(s), n));
    }
    let request = coord.request()?;
    let request = SigningRequest::from_cbor(&request.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
    for (member, n) in nonces {
        let r2 = n.sign(&c.shares[&member], &request)?;
        let r2 = Round2::from_cbor(&r2.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
        coord.add_share(tamper(member, r2))?;
    }
    coord.aggregate().map(|s| s.0)
}

#[test]
fn three_of_five_signature_verifies_with_ed25519_dalek() {
    let mut rng = rng(500);
    let c = circle(3, 5, &mut rng);
    assert_eq!(c.public.group_key(), c.key.public());
    let msg = Context::CircleLink.signing_bytes(b"a link body");
    for signers in [[1u16, 2, 3], [2, 4, 5], [1, 3, 5]] {
        let sig = run_session(&c, &signers, &msg, &mut rng, |_, r| r).unwrap();
        let vk = ed25519_dalek::VerifyingKey::from_bytes(c.key.public().as_bytes()).unwrap();
        vk.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .unwrap();
    }
    // All five may sign too.
    run_session(&c, &[1, 2, 3, 4, 5], &msg, &mut rng, |_, r| r).unwrap();
}

#[test]
fn below_threshold_cannot_sign() {
    let mut rng = rng(501);
    let c = circle(3, 5, &mut rng);
    let msg = b"message".to_vec();
    assert_eq!(
        run_session(&c, &[1, 2], &msg, &mut rng, |_, r| r),
        Err(CircleError::BelowThreshold { have: 2, need: 3 })
    );
}

#[test]
fn a_cheating_participant_is_detected_and_named() {
    let mut rng = rng(502);
    let c = circle(3, 5, &mut rng);
    let msg = b"certificate".to_vec();
    // Member 4 sends a share with one bit flipped: a valid scalar, the
    // wrong value.
    let result = run_session(&c, &[1, 4, 5], &msg, &mut rng, |member, mut r| {
        if member == m(4) {
            let bytes = r.share.serialize();
            let mut b = bytes.clone();
            b[0] ^= 1;
            r.share = frost_share(&b).unwrap_or(r.share);
        }
        r
    });
    assert_eq!(result, Err(CircleError::Cheaters(vec![m(4)])));
    // Two cheaters are both named.
    let result = run_session(&c, &[1, 2, 3, 5], &msg, &mut rng, |member, mut r| {
        if member == m(2) || member == m(5) {
            let mut b = r.share.serialize();
            b[1] ^= 2;
            r.share = frost_share(&b).unwrap_or(r.share);
        }
        r
    });
    assert_eq!(result, Err(CircleError::Cheaters(vec![m(2), m(5)])));
}

fn frost_share(bytes: &[u8]) -> Option<frost_ed25519::round2::SignatureShare> {
    frost_ed25519::round2::SignatureShare::deserialize(bytes).ok()
}

#[test]
fn coordinator_refuses_strangers_duplicates_and_wrong_sessions() {
    let mut rng = rng(503);
    let c = circle(2, 3, &mut rng);
    let other = circle(2, 4, &mut rng);
    let session = SessionId([1; 16]);
    let mut coord = Coordinator::new(c.public.clone(), session, b"m".to_vec()).unwrap();
    let (_, r1) = commit(&c.shares[&m(1)], session, &mut rng);
    coord.add_commitments(r1).unwrap();
    assert_eq!(coord.add_commitments(r1), Err(CircleError::Duplicate(m(1))));
    let (_, stranger) = commit(&other.shares[&m(4)], session, &mut rng);
    assert_eq!(
        coord.add_commitments(stranger),
        Err(CircleError::NotAMember(m(4)))
    );
    let (_, elsewhere) = commit(&c.shares[&m(2)], SessionId([2; 16]), &mut rng);
    assert_eq!(
        coord.add_commitments(elsewhere),
        Err(CircleError::WrongSession)
    );
    assert!(Coordinator::new(c.public.clone(), session, Vec::new()).is_err());
    assert!(Coordinator::new(c.public.clone(), session, vec![0; 4097]).is_err());
}

#[test]
fn a_participant_refuses_a_request_that_drops_or_changes_its_commitment() {
    let mut rng = rng(504);
    let c = circle(2, 3, &mut rng);
    let session = SessionId([3; 16]);
    let (n1, r1) = commit(&c.shares[&m(1)], session, &mut rng);
    let (_, r2) = commit(&c.shares[&m(2)], session, &mut rng);
    let (_, r3) = commit(&c.shares[&m(3)], session, &mut rng);
    // Member 1's commitment replaced by member 3's.
    let request = SigningRequest {
        session,
        message: b"x".to_vec(),
        commitments: BTreeMap::from([(m(1), r3.commitments), (m(2), r2.commitments)]),
    };
    assert!(n1.sign(&c.shares[&m(1)], &request).is_err());
    let (n1, _) = commit(&c.shares[&m(1)], session, &mut rng);
    let request = SigningRequest {
        session,
        message: b"x".to_vec(),
        commitments: BTreeMap::from([(m(2), r2.commitments), (m(3), r3.commitments)]),
    };
    assert!(n1.sign(&c.shares[&m(1)], &request).is_err());
    let _ = r1;
}

#[test]
fn a_frost_signed_link_and_certificate_verify_in_a_record() {
    let mut rng = rng(505);
    let mut owner = Owner::new(506);
    // First friend: a new circle key, split 3-of-5, link 1 signed by root.
    let c = circle(3, 5, &mut rng);
    let body = owner.record.next_link(c.key.public(), T0.plus(10));
    owner
        .record
        .push_link(cyrcles_core::record::builder::sign_with_key(
            &owner.root,
            body,
        ))
        .unwrap();
    // The certificate for the new circle is signed by the members.
    let cert = owner
        .record
        .next_cert(owner.ego.public(), T0.plus(10), 86_400);
    let msg = Context::EgoCert.signing_bytes(&cert.to_cbor());
    let sig = run_session(&c, &[1, 3, 4], &msg, &mut rng, |_, r| r).unwrap();
    owner
        .record
        .set_cert(Signed {
            body: cert,
            sig: cyrcles_core::Signature(sig),
        })
        .unwrap();
    // Link 2 (a re-share) signed by the old circle through FROST.
    let next = circle(3, 6, &mut rng);
    let link = owner.record.next_link(next.key.public(), T0.plus(20));
    let msg = Context::CircleLink.signing_bytes(&link.to_cbor());
    let sig = run_session(&c, &[2, 4, 5], &msg, &mut rng, |_, r| r).unwrap();
    owner
        .record
        .push_link(Signed {
            body: link,
            sig: cyrcles_core::Signature(sig),
        })
        .unwrap();
    let cert = owner
        .record
        .next_cert(owner.ego.public(), T0.plus(20), 86_400);
    let msg = Context::EgoCert.signing_bytes(&cert.to_cbor());
    let sig = run_session(&next, &[1, 2, 6], &msg, &mut rng, |_, r| r).unwrap();
    owner
        .record
        .set_cert(Signed {
            body: cert,
            sig: cyrcles_core::Signature(sig),
        })
        .unwrap();
    let v = verify(&owner.bytes(), &owner.record.ego_id().dht_key(), NOW).unwrap();
    assert_eq!(v.rank().chain_len, 2);
    assert_eq!(v.circle_key(), next.key.public());
    // A removed member's old share signs nothing that verifies under the
    // current circle key.
    let stale = run_session(&c, &[1, 2, 3], &msg, &mut rng, |_, r| r).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(v.circle_key().as_bytes()).unwrap();
    assert!(
        vk.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&stale))
            .is_err()
    );
    // And the owner's whole-key signing helper agrees with FROST on format.
    let _ = sign_with_circle(
        &next.key,
        &mut rng,
        owner.record.next_link(c.key.public(), NOW),
    );
}

#[test]
fn dealing_refuses_bad_parameters_and_members_refuse_bad_shares() {
    let mut rng = rng(507);
    let key = CircleSecret::generate(&mut rng);
    let id = Owner::new(2).record.ego_id();
    for (t, n) in [(1, 3), (4, 3), (2, 65), (0, 0)] {
        assert!(
            matches!(
                deal(&key, id, CircleId([0; 16]), 1, t, n, &mut rng),
                Err(CircleError::Parameters(_))
            ),
            "{t}-of-{n}"
        );
    }
    let dealing = deal(&key, id, CircleId([0; 16]), 1, 2, 3, &mut rng).unwrap();
    // A share whose scalar was changed no longer matches the commitment.
    let mut wire = dealing.shares[0].to_secret_cbor().to_vec();
    let share_at = wire
        .windows(3)
        .position(|w| w == [0x06, 0x58, 0x20])
        .unwrap()
        + 3;
    wire[share_at] ^= 1;
    let tampered = DealtShare::decode_bytes(&wire).unwrap();
    assert!(matches!(
        MemberShare::accept(tampered),
        Err(CircleError::InvalidShare)
    ));
    // An acknowledgement of another share is refused by the dealer.
    let s1 = MemberShare::accept(dealing.shares[0].clone()).unwrap();
    let mut ack = s1.ack();
    ack.verifying_share = MemberShare::accept(dealing.shares[1].clone())
        .unwrap()
        .ack()
        .verifying_share;
    assert_eq!(
        dealing.public.check_ack(&ack),
        Err(CircleError::BadAck(m(1)))
    );
}

#[test]
fn shares_do_not_show_secrets_in_debug_and_survive_storage() {
    let mut rng = rng(508);
    let c = circle(2, 3, &mut rng);
    let share = &c.shares[&m(2)];
    let stored = share.to_secret_cbor();
    let restored = MemberShare::from_secret_cbor(&stored).unwrap();
    assert_eq!(restored.ack(), share.ack());
    let dbg = format!("{share:?} {restored:?}");
    let secret_hex = hex::encode(&stored[stored.len() - 140..stored.len() - 100]);
    assert!(!dbg.contains(&secret_hex[..16]));
    assert!(!dbg.to_lowercase().contains("signing_share"));
}

fn repair(
    c: &Circle,
    target: u16,
    helpers: &[u16],
    rng: &mut ChaCha20Rng,
    corrupt: Option<u16>,
) -> Result<MemberShare, CircleError> {
    let req = RepairRequest {
        session: SessionId([5; 16]),
        circle_id: CircleId([4; 16]),
        generation: 1,
        target: m(target),
        helpers: helpers.iter().map(|&h| m(h)).collect(),
    };
    let req = RepairRequest::from_cbor(&req.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
    let mut hs: BTreeMap<MemberId, RepairHelper> = BTreeMap::new();
    for &h in helpers {
        hs.insert(
            m(h),
            RepairHelper::new(c.shares[&m(h)].clone(), req.clone())?,
        );
    }
    let mut deltas = Vec::new();
    for h in hs.values() {
        deltas.extend(h.deltas(rng)?);
    }
    for d in deltas {
        let d = RepairDelta::from_cbor(&d.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
        hs.get_mut(&d.to).unwrap().add_delta(d)?;
    }
    let sigmas: Vec<RepairSigma> = hs.values().map(|h| h.sigma()).collect::<Result<_, _>>()?;
    let mut target_side = RepairTarget::new(req);
    for (i, mut s) in sigmas.clone().into_iter().enumerate() {
        if corrupt == Some(s.from.get()) {
            // This helper sends another helper's sigma.
            s.sigma = sigmas[(i + 1) % sigmas.len()].sigma;
        }
        let s = RepairSigma::from_cbor(&s.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
        target_side.add_sigma(s)?;
    }
    target_side.finish()
}

#[test]
fn a_lost_share_is_repaired_and_signs_again() {
    let mut rng = rng(509);
    let mut c = circle(3, 5, &mut rng);
    let lost = c.shares.remove(&m(2)).unwrap();
    let repaired = repair(&c, 2, &[1, 3, 5], &mut rng, None).unwrap();
    assert_eq!(repaired.ack(), lost.ack());
    assert_eq!(repaired.to_secret_cbor(), lost.to_secret_cbor());
    c.shares.insert(m(2), repaired);
    let msg = b"after repair".to_vec();
    let sig = run_session(&c, &[2, 4, 5], &msg, &mut rng, |_, r| r).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(c.key.public().as_bytes()).unwrap();
    vk.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();
}

#[test]
fn repair_refuses_too_few_helpers_and_a_wrong_sigma() {
    let mut rng = rng(510);
    let c = circle(3, 5, &mut rng);
    assert!(matches!(
        repair(&c, 2, &[1, 3], &mut rng, None),
        Err(CircleError::BelowThreshold { have: 2, need: 3 })
    ));
    assert!(matches!(
        repair(&c, 2, &[1, 2, 3], &mut rng, None),
        Err(CircleError::Parameters(_))
    ));
    assert_eq!(
        repair(&c, 2, &[1, 3, 4], &mut rng, Some(3)).err(),
        Some(CircleError::InvalidShare)
    );
}

#[test]
fn sealed_repair_items_open_only_for_their_member_session_and_step() {
    use cyrcles_core::circle::repair_aad;
    use cyrcles_core::circle::seal::{SealKey, seal};
    let mut rng = rng(140);
    let to = SealKey::generate(&mut rng);
    let other = SealKey::generate(&mut rng);
    let aad = repair_aad(b"delta", SessionId([1; 16]), m(1), m(3));
    let sealed = seal(&to.public(), &aad, b"a delta", &mut rng).unwrap();
    assert_eq!(&to.open(&aad, &sealed).unwrap()[..], b"a delta");
    // Another key, session, step, sender or recipient: refused.
    assert_eq!(other.open(&aad, &sealed), Err(CircleError::Sealed));
    for wrong in [
        repair_aad(b"delta", SessionId([2; 16]), m(1), m(3)),
        repair_aad(b"sigma", SessionId([1; 16]), m(1), m(3)),
        repair_aad(b"delta", SessionId([1; 16]), m(2), m(3)),
        repair_aad(b"delta", SessionId([1; 16]), m(1), m(4)),
    ] {
        assert_eq!(to.open(&wrong, &sealed), Err(CircleError::Sealed));
    }
    // Altered bytes, or too short to hold a key.
    let mut bad = sealed.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(to.open(&aad, &bad), Err(CircleError::Sealed));
    assert_eq!(to.open(&aad, &sealed[..20]), Err(CircleError::Sealed));
    // A low-order recipient key is refused when sealing.
    assert_eq!(
        seal(&[0u8; 32], &aad, b"x", &mut rng),
        Err(CircleError::Sealed)
    );
    // The Debug form shows no secret.
    assert!(format!("{to:?}").starts_with("SealKey(public "));
}

#[test]
fn repair_bundles_decode_strictly() {
    use cyrcles_core::circle::{RepairKeys, RepairSealed};
    let keys = RepairKeys {
        session: SessionId([3; 16]),
        keys: vec![(m(1), [9; 32]), (m(4), [8; 32])],
    };
    let back = RepairKeys::from_cbor(&keys.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
    assert_eq!(back, keys);
    let unordered = RepairKeys {
        session: SessionId([3; 16]),
        keys: vec![(m(4), [9; 32]), (m(1), [8; 32])],
    };
    assert!(RepairKeys::from_cbor(&unordered.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).is_err());
    let sealed = RepairSealed {
        session: SessionId([3; 16]),
        member: m(2),
        items: vec![(m(1), vec![1; 80]), (m(3), vec![2; 80])],
    };
    let back = RepairSealed::from_cbor(&sealed.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
    assert!(back == sealed);
    let twice = RepairSealed {
        session: SessionId([3; 16]),
        member: m(2),
        items: vec![(m(1), vec![1; 80]), (m(1), vec![2; 80])],
    };
    assert!(RepairSealed::from_cbor(&twice.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).is_err());
    let empty_item = RepairSealed {
        session: SessionId([3; 16]),
        member: m(2),
        items: vec![(m(1), Vec::new())],
    };
    assert!(RepairSealed::from_cbor(&empty_item.to_cbor(), MAX_CIRCLE_MESSAGE_SIZE).is_err());
}
