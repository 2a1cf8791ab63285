//! Automatic rotation through friends, in one process: the owner's signed
//! request, each member's check of it, the FROST session, and the new
//! certificate in a record that verifies. Every refusal rule has a
//! request that breaks only it.

use std::collections::BTreeMap;

use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::circle::messages::MAX_CIRCLE_MESSAGE_SIZE;
use cyrcles_core::circle::request::MAX_BODY_LEN;
use cyrcles_core::circle::{
    Authorized, CeremonyRequest, Change, CircleId, Coordinator, MemberId, MemberShare, Purpose,
    Refusal, RequestBody, SessionId, SigningPolicy, authorize, commit, deal,
};
use cyrcles_core::record::Signed;
use cyrcles_core::record::builder::DEFAULT_CERT_VALIDITY_SECS;
use cyrcles_core::{SecretKey, UnixTime, VerifiedEgo};
use proptest::prelude::*;

use crate::common::{NOW, Owner, T0};

const CIRCLE: CircleId = CircleId([0xc1; 16]);
const SESSION: SessionId = SessionId([0x5e; 16]);

/// An owner whose current circle (generation 1, link 1) is shared 3-of-5.
pub(crate) struct Shared {
    pub(crate) owner: Owner,
    pub(crate) shares: BTreeMap<MemberId, MemberShare>,
}

pub(crate) fn shared(seed: u64) -> Shared {
    let mut owner = Owner::new(seed);
    owner.add_link(T0.plus(10));
    let mut rng = crate::common::rng(seed + 1);
    let dealing = deal(
        owner.circle(),
        owner.record.ego_id(),
        CIRCLE,
        1,
        3,
        5,
        &mut rng,
    )
    .unwrap();
    let shares = dealing
        .shares
        .into_iter()
        .map(|d| {
            let s = MemberShare::accept(d).unwrap();
            (s.member(), s)
        })
        .collect();
    Shared { owner, shares }
}

fn record(s: &Shared) -> VerifiedEgo {
    s.owner.verify_at(NOW)
}

fn body(s: &Shared, purpose: Purpose) -> RequestBody {
    RequestBody {
        ego_id: s.owner.record.ego_id(),
        circle_id: CIRCLE,
        generation: 1,
        session: SESSION,
        purpose,
        issued_at: NOW,
    }
}

fn certify(s: &Shared, new_key: &SecretKey) -> Purpose {
    Purpose::Certify(
        s.owner
            .record
            .next_cert(new_key.public(), NOW, DEFAULT_CERT_VALIDITY_SECS),
    )
}

pub(crate) fn member(n: u16) -> MemberId {
    MemberId::new(n).unwrap()
}

fn check(s: &Shared, req: &CeremonyRequest, last: Option<UnixTime>) -> Result<Authorized, Refusal> {
    authorize(
        req,
        &record(s),
        &s.shares[&member(1)],
        last,
        NOW,
        &SigningPolicy::default(),
    )
}

#[test]
fn friends_certify_a_new_ego_key_and_the_record_verifies() {
    let mut s = shared(900);
    let new_key = SecretKey::generate(&mut s.owner.rng);
    let request = body(&s, certify(&s, &new_key)).sign(&s.owner.ego);
    // The request crosses the wire.
    let wire = request.to_cbor();
    let received = CeremonyRequest::from_cbor(&wire, MAX_CIRCLE_MESSAGE_SIZE).unwrap();
    assert_eq!(received, request);

    // Members 1, 3 and 5 each check it against the record they fetched and
    // agree on the bytes to sign.
    let rec = record(&s);
    let policy = SigningPolicy::default();
    let answers: Vec<Vec<u8>> = [1, 3, 5]
        .iter()
        .map(|&n| authorize(&received, &rec, &s.shares[&member(n)], None, NOW, &policy).unwrap())
        .map(|a| {
            // A rotation needs no human.
            assert_eq!(a.change, None);
            a.message
        })
        .collect();
    assert!(answers.iter().all(|a| *a == answers[0]));
    let message = answers[0].clone();

    let public = s.shares[&member(1)].public().clone();
    let mut coord = Coordinator::new(public, SESSION, message.clone()).unwrap();
    let mut nonces = Vec::new();
    for n in [1, 3, 5] {
        let (nonce, r1) = commit(&s.shares[&member(n)], SESSION, &mut s.owner.rng);
        coord.add_commitments(r1).unwrap();
        nonces.push((member(n), nonce));
    }
    let signing = coord.request().unwrap();
    for (m, nonce) in nonces {
        coord
            .add_share(nonce.sign(&s.shares[&m], &signing).unwrap())
            .unwrap();
    }
    let sig = coord.aggregate().unwrap();
    let Purpose::Certify(cert) = received.body.purpose else {
        unreachable!()
    };
    s.owner.record.set_cert(Signed { body: cert, sig }).unwrap();
    let after = s.owner.verify_at(NOW);
    assert_eq!(after.ego_key(), new_key.public());
    assert_eq!(after.cert().seq, rec.cert().seq + 1);
    // A plain Ed25519 signature by the circle key.
    let vk = ed25519_dalek::VerifyingKey::from_bytes(rec.circle_key().as_bytes()).unwrap();
    vk.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&sig.0))
        .unwrap();
}

#[test]
fn each_rule_refuses_the_request_that_breaks_it() {
    let mut s = shared(901);
    let new_key = SecretKey::generate(&mut s.owner.rng);
    let good = body(&s, certify(&s, &new_key));
    let ego = SecretKey::from_seed(&s.owner.ego.to_seed());
    assert!(check(&s, &good.clone().sign(&ego), None).is_ok());

    // Signed by a key that is not the current ego key.
    let stranger = SecretKey::generate(&mut s.owner.rng);
    assert_eq!(
        check(&s, &good.clone().sign(&stranger), None),
        Err(Refusal::BadSignature)
    );
    // A signature over other fields.
    let mut forged = good.clone().sign(&ego);
    forged.body.session = SessionId([1; 16]);
    assert_eq!(check(&s, &forged, None), Err(Refusal::BadSignature));

    // Another ego.
    let mut b = good.clone();
    b.ego_id = Owner::new(77).record.ego_id();
    assert_eq!(check(&s, &b.sign(&ego), None), Err(Refusal::WrongEgo));

    // Another circle, or an old generation.
    let mut b = good.clone();
    b.circle_id = CircleId([2; 16]);
    assert_eq!(check(&s, &b.sign(&ego), None), Err(Refusal::WrongCircle));
    let mut b = good.clone();
    b.generation = 0;
    assert_eq!(check(&s, &b.sign(&ego), None), Err(Refusal::WrongCircle));

    // Stale and future requests.
    let mut b = good.clone();
    b.issued_at = NOW.minus(3600);
    assert_eq!(check(&s, &b.sign(&ego), None), Err(Refusal::Stale));
    let mut b = good.clone();
    b.issued_at = NOW.plus(3600);
    assert_eq!(check(&s, &b.sign(&ego), None), Err(Refusal::Stale));

    // Not the next certificate: a skipped seq, the same key, revoked.
    let next = s
        .owner
        .record
        .next_cert(new_key.public(), NOW, DEFAULT_CERT_VALIDITY_SECS);
    for broken in [
        {
            let mut c = next.clone();
            c.seq += 1;
            c
        },
        {
            let mut c = next.clone();
            c.ego_pk = s.owner.ego.public();
            c
        },
    ] {
        let mut b = good.clone();
        b.purpose = Purpose::Certify(broken);
        assert_eq!(check(&s, &b.sign(&ego), None), Err(Refusal::NotNext));
    }
    // A revocation keeps the key, is not held back by the rate policy,
    // must outlast the certificate it ends, and waits for the member's
    // human: the ego key alone does not end the ego.
    let revocation = s.owner.record.revocation(NOW, DEFAULT_CERT_VALIDITY_SECS);
    let mut b = good.clone();
    b.purpose = Purpose::Certify(revocation.clone());
    let ok = check(&s, &b.clone().sign(&ego), Some(NOW.minus(1))).unwrap();
    assert_eq!(ok.change, Some(Change::Revocation(s.owner.ego.public())));
    let mut short = revocation;
    short.not_after = short.not_before.plus(60);
    b.purpose = Purpose::Certify(short);
    assert_eq!(check(&s, &b.sign(&ego), None), Err(Refusal::BadValidity));
    // A validity beyond the policy, or one that starts far from now.
    for broken in [
        {
            let mut c = next.clone();
            c.not_after = c.not_before.plus(365 * 86_400);
            c
        },
        {
            let mut c = next.clone();
            c.not_before = NOW.plus(86_400);
            c.not_after = c.not_before.plus(86_400);
            c
        },
    ] {
        let mut b = good.clone();
        b.purpose = Purpose::Certify(broken);
        assert_eq!(check(&s, &b.sign(&ego), None), Err(Refusal::BadValidity));
    }

    // Signed for this ego ten minutes ago.
    assert_eq!(
        check(&s, &good.clone().sign(&ego), Some(NOW.minus(600))),
        Err(Refusal::TooSoon)
    );
    assert!(check(&s, &good.clone().sign(&ego), Some(NOW.minus(7200))).is_ok());

    // A revoked ego: nothing more is signed for it.
    let revocation = s.owner.record.revocation(NOW, DEFAULT_CERT_VALIDITY_SECS);
    let signed = s.owner.sign_current(revocation);
    s.owner.record.set_cert(signed).unwrap();
    let new_key = SecretKey::generate(&mut s.owner.rng);
    let after = body(&s, certify(&s, &new_key));
    assert_eq!(
        check(&s, &after.sign(&ego), None),
        Err(Refusal::CertNotValid)
    );
}

/// Whoever copied the owner's device holds the ego key: a link signed by
/// it passes the rules but is never signed on its word alone. The member's
/// human must approve that very circle key (docs/circle-authority.md, P2);
/// the fingerprint the owner reads them names it, so a thief's link to its
/// own circle key shows other digits than the owner's.
#[test]
fn a_next_link_waits_for_the_members_human_and_a_wrong_index_is_refused() {
    let mut s = shared(902);
    let ego = SecretKey::from_seed(&s.owner.ego.to_seed());
    let next_circle = cyrcles_core::CircleSecret::generate(&mut s.owner.rng);
    let link = s.owner.record.next_link(next_circle.public(), NOW);
    let req = body(&s, Purpose::Link(link.clone())).sign(&ego);
    let ok = check(&s, &req, None).unwrap();
    let change = Change::Link(next_circle.public());
    assert_eq!(ok.change, Some(change));
    assert_eq!(ok.message, Purpose::Link(link.clone()).signing_bytes());
    let thiefs = cyrcles_core::CircleSecret::generate(&mut s.owner.rng);
    let theirs = Change::Link(thiefs.public());
    let ego_id = s.owner.record.ego_id();
    assert_ne!(change.fingerprint(&ego_id), theirs.fingerprint(&ego_id));
    // The same change, asked again with another time and session, keeps
    // its digits: the human's approval holds across the owner's retries.
    let again = s.owner.record.next_link(next_circle.public(), NOW.plus(30));
    let mut retry = body(&s, Purpose::Link(again));
    retry.session = SessionId([0x77; 16]);
    let retried = check(&s, &retry.sign(&ego), None).unwrap();
    assert_eq!(
        retried.change.map(|c| c.fingerprint(&ego_id)),
        Some(change.fingerprint(&ego_id))
    );
    let mut wrong = link.clone();
    wrong.index += 1;
    let req = body(&s, Purpose::Link(wrong)).sign(&ego);
    assert_eq!(check(&s, &req, None), Err(Refusal::NotNext));
    // Re-introducing the current circle key is no step.
    let mut same = link;
    same.circle_pk = record(&s).circle_key();
    let req = body(&s, Purpose::Link(same)).sign(&ego);
    assert_eq!(check(&s, &req, None), Err(Refusal::NotNext));
}

/// Fuzz finding F1 (docs/security.md): a next certificate that starts at
/// the end of time overflowed `not_before + CLOCK_SKEW_SECS`.
#[test]
fn a_certificate_starting_at_the_end_of_time_is_refused() {
    let mut s = shared(905);
    let new_key = SecretKey::generate(&mut s.owner.rng);
    let Purpose::Certify(mut next) = certify(&s, &new_key) else {
        unreachable!("certify() asks for a certificate")
    };
    next.not_before = UnixTime::from_secs(u64::MAX);
    next.not_after = UnixTime::from_secs(u64::MAX);
    let req = body(&s, Purpose::Certify(next)).sign(&s.owner.ego);
    assert_eq!(check(&s, &req, None), Err(Refusal::BadValidity));
}

#[test]
fn requests_decode_strictly() {
    let mut s = shared(903);
    let new_key = SecretKey::generate(&mut s.owner.rng);
    let req = body(&s, certify(&s, &new_key)).sign(&s.owner.ego);
    let mut bytes = req.to_cbor();
    bytes.push(0);
    assert!(CeremonyRequest::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE).is_err());
    bytes.pop();
    bytes.pop();
    assert!(CeremonyRequest::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE).is_err());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_request_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = CeremonyRequest::from_cbor(&bytes, MAX_CIRCLE_MESSAGE_SIZE);
    }
}

#[test]
fn an_old_circles_shares_sign_nothing_the_current_record_accepts() {
    // Members 1..5 held shares of circle 1; the owner then moved to a new
    // circle (as after removing a member), signed by the old one.
    let mut s = shared(910);
    let old_shares = s.shares.clone();
    s.owner.add_link(T0.plus(20));
    let new_key = SecretKey::generate(&mut s.owner.rng);
    let cert = s
        .owner
        .record
        .next_cert(new_key.public(), NOW, DEFAULT_CERT_VALIDITY_SECS);
    // A member refuses a request with an old share.
    let request = body(&s, Purpose::Certify(cert.clone())).sign(&s.owner.ego);
    assert_eq!(
        authorize(
            &request,
            &record(&s),
            &old_shares[&member(2)],
            None,
            NOW,
            &SigningPolicy::default()
        ),
        Err(Refusal::WrongCircle)
    );
    // Even if three old members sign together, the record refuses it.
    let message = Purpose::Certify(cert.clone()).signing_bytes();
    let public = old_shares[&member(1)].public().clone();
    let mut coord = Coordinator::new(public, SESSION, message).unwrap();
    let mut nonces = Vec::new();
    for n in [1, 2, 3] {
        let (nonce, r1) = commit(&old_shares[&member(n)], SESSION, &mut s.owner.rng);
        coord.add_commitments(r1).unwrap();
        nonces.push((member(n), nonce));
    }
    let signing = coord.request().unwrap();
    for (m, nonce) in nonces {
        coord
            .add_share(nonce.sign(&old_shares[&m], &signing).unwrap())
            .unwrap();
    }
    let sig = coord.aggregate().unwrap();
    assert!(s.owner.record.set_cert(Signed { body: cert, sig }).is_err());
}

const NEW_CIRCLE: CircleId = CircleId([0xc2; 16]);

/// A new circle (generation 2, shared 2-of-3) whose link the old circle
/// signed, and the `enter` request asking its members for the first
/// certificate under it.
struct Entering {
    s: Shared,
    new_shares: BTreeMap<MemberId, MemberShare>,
    link: Signed<cyrcles_core::record::CircleLink>,
    cert: cyrcles_core::record::EgoCert,
}

fn entering(seed: u64) -> Entering {
    let mut s = shared(seed);
    let next = cyrcles_core::CircleSecret::generate(&mut s.owner.rng);
    let ego_id = s.owner.record.ego_id();
    let dealing = deal(&next, ego_id, NEW_CIRCLE, 2, 2, 3, &mut s.owner.rng).unwrap();
    let new_shares = dealing
        .shares
        .into_iter()
        .map(|d| {
            let sh = MemberShare::accept(d).unwrap();
            (sh.member(), sh)
        })
        .collect();
    let body = s.owner.record.next_link(next.public(), NOW);
    let link = s.owner.sign_current(body);
    let mut linked = s.owner.record.clone();
    linked.push_link(link.clone()).unwrap();
    let cert = linked.next_cert(s.owner.ego.public(), NOW, DEFAULT_CERT_VALIDITY_SECS);
    Entering {
        s,
        new_shares,
        link,
        cert,
    }
}

impl Entering {
    fn request(
        &self,
        link: &Signed<cyrcles_core::record::CircleLink>,
        cert: &cyrcles_core::record::EgoCert,
    ) -> RequestBody {
        RequestBody {
            circle_id: NEW_CIRCLE,
            generation: 2,
            ..body(
                &self.s,
                Purpose::Enter {
                    link: link.clone(),
                    cert: cert.clone(),
                },
            )
        }
    }

    fn check(&self, b: RequestBody, share: &MemberShare) -> Result<Authorized, Refusal> {
        let ego = SecretKey::from_seed(&self.s.owner.ego.to_seed());
        authorize(
            &b.sign(&ego),
            &record(&self.s),
            share,
            None,
            NOW,
            &SigningPolicy::default(),
        )
    }
}

/// The members of a circle made by DKG certify the ego key under it,
/// automatically, once the link the humans approved is signed; each rule
/// of `enter` refuses a request that breaks only it.
#[test]
fn a_new_circle_s_members_certify_under_the_signed_link_and_each_rule_refuses() {
    let mut e = entering(930);
    let share = e.new_shares[&member(1)].clone();
    let good = e.request(&e.link, &e.cert);
    // It crosses the wire, fits the body cap, and needs no human.
    let ego = SecretKey::from_seed(&e.s.owner.ego.to_seed());
    let wire = good.clone().sign(&ego).to_cbor();
    let back = CeremonyRequest::from_cbor(&wire, MAX_CIRCLE_MESSAGE_SIZE).unwrap();
    assert_eq!(back.body, good);
    // The body (a signed link and a certificate) fits the body's cap with
    // room to spare: the whole request does.
    assert!(wire.len() <= MAX_BODY_LEN, "{}", wire.len());
    let ok = e.check(good.clone(), &share).unwrap();
    assert_eq!(ok.change, None);
    assert_eq!(ok.message, Purpose::Certify(e.cert.clone()).signing_bytes());

    // A share of the old circle does not sign for the new one.
    let old = e.s.shares[&member(1)].clone();
    assert_eq!(e.check(good.clone(), &old), Err(Refusal::WrongCircle));
    // A link to another key than the share's.
    let thiefs = cyrcles_core::CircleSecret::generate(&mut e.s.owner.rng);
    let body = e.s.owner.record.next_link(thiefs.public(), NOW);
    let other = e.s.owner.sign_current(body);
    assert_eq!(
        e.check(e.request(&other, &e.cert), &share),
        Err(Refusal::WrongCircle)
    );
    // A link the current circle did not sign (signed by the new key
    // itself, as whoever made it alone could).
    let mut forged = e.link.clone();
    forged.sig = cyrcles_core::record::builder::sign_with_key(
        &SecretKey::generate(&mut e.s.owner.rng),
        forged.body.clone(),
    )
    .sig;
    assert_eq!(
        e.check(e.request(&forged, &e.cert), &share),
        Err(Refusal::LinkNotSigned)
    );
    // Not the next certificate under that link.
    let mut broken = Vec::new();
    let mut c = e.cert.clone();
    c.seq += 1;
    broken.push(c);
    let mut c = e.cert.clone();
    c.ego_pk = SecretKey::generate(&mut e.s.owner.rng).public();
    broken.push(c);
    let mut c = e.cert.clone();
    c.circle_index = 1;
    broken.push(c);
    let mut c = e.cert.clone();
    c.epoch += 1;
    broken.push(c);
    for c in broken {
        assert_eq!(
            e.check(e.request(&e.link, &c), &share),
            Err(Refusal::NotNext),
            "{c:?}"
        );
    }
    // Longer than the policy allows, or not starting now.
    let mut c = e.cert.clone();
    c.not_after = c
        .not_before
        .plus(SigningPolicy::default().max_cert_validity + 1);
    assert_eq!(
        e.check(e.request(&e.link, &c), &share),
        Err(Refusal::BadValidity)
    );
    let mut c = e.cert.clone();
    c.not_before = NOW.plus(3600);
    c.not_after = c.not_before.plus(60);
    assert_eq!(
        e.check(e.request(&e.link, &c), &share),
        Err(Refusal::BadValidity)
    );
    // Not signed by the current ego key.
    let stranger = SecretKey::generate(&mut e.s.owner.rng);
    let req = good.sign(&stranger);
    assert_eq!(
        authorize(
            &req,
            &record(&e.s),
            &share,
            None,
            NOW,
            &SigningPolicy::default()
        ),
        Err(Refusal::BadSignature)
    );
}
