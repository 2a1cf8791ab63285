//! `circle.json`: the rules of the circle's authority against a stolen
//! device (docs/protocol.md, sections 9.1 and 9.2) that another
//! implementation must reproduce: the six digits of a change (rule 9),
//! and a member's check of an objection.

use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::circle::messages::MAX_CIRCLE_MESSAGE_SIZE;
use cyrcles_core::circle::{Change, Objection, ObjectionBody, Refusal};
use cyrcles_core::record::builder::DEFAULT_CERT_VALIDITY_SECS;
use cyrcles_core::{EgoId, PublicKey, SecretKey, UnixTime, verify};
use serde_json::{Value, json};

use crate::common::{NOW, Owner};
use crate::vectors::{hex_field, key};
use crate::vectors_challenges::read;

fn refusal_name(r: Refusal) -> &'static str {
    match r {
        Refusal::WrongEgo => "wrong_ego",
        Refusal::WrongCircle => "wrong_circle",
        Refusal::CertNotValid => "cert_not_valid",
        Refusal::BadSignature => "bad_signature",
        Refusal::Stale => "stale",
        Refusal::NotNext => "not_next",
        Refusal::BadValidity => "bad_validity",
        Refusal::TooSoon => "too_soon",
        Refusal::LinkNotSigned => "link_not_signed",
    }
}

fn fingerprints() -> Vec<Value> {
    let mut out = Vec::new();
    for (seed, kind) in [(1u8, 1u8), (2, 1), (3, 2), (4, 2), (5, 1)] {
        let ego = EgoId::from_bytes([seed.wrapping_mul(37); 32]);
        let subject = SecretKey::from_seed(&[seed; 32]).public();
        let change = if kind == 1 {
            Change::Link(subject)
        } else {
            Change::Revocation(subject)
        };
        out.push(json!({
            "ego_id": hex::encode(ego.as_bytes()),
            "kind": kind,
            "subject": hex::encode(subject.as_bytes()),
            "fingerprint": change.fingerprint(&ego),
        }));
    }
    out
}

fn objections() -> Vec<Value> {
    let mut o = Owner::new(940);
    let live = o.bytes();
    let dht_key = o.record.ego_id().dht_key();
    let new_key = SecretKey::from_seed(&[0x4e; 32]).public();
    let body = |ego_id: EgoId, new_key: PublicKey, at: UnixTime| ObjectionBody {
        ego_id,
        new_key,
        issued_at: at,
    };
    let ego_id = o.record.ego_id();
    let stranger = SecretKey::from_seed(&[0x51; 32]);
    let mut cases: Vec<(&str, &str, Vec<u8>, Objection)> = vec![
        (
            "valid",
            "signed by the certified ego key, fresh",
            live.clone(),
            body(ego_id, new_key, NOW).sign(&o.ego),
        ),
        (
            "valid_at_the_skew",
            "issued 300 s before the member's time",
            live.clone(),
            body(ego_id, new_key, NOW.minus(300)).sign(&o.ego),
        ),
        (
            "stale",
            "issued 301 s before the member's time",
            live.clone(),
            body(ego_id, new_key, NOW.minus(301)).sign(&o.ego),
        ),
        (
            "future",
            "issued 301 s after the member's time",
            live.clone(),
            body(ego_id, new_key, NOW.plus(301)).sign(&o.ego),
        ),
        (
            "new_key_signs",
            "signed by the recovering device's new key, not the current one",
            live.clone(),
            body(ego_id, new_key, NOW).sign(&SecretKey::from_seed(&[0x4e; 32])),
        ),
        (
            "stranger_signs",
            "signed by a key the record does not certify",
            live.clone(),
            body(ego_id, new_key, NOW).sign(&stranger),
        ),
        (
            "other_ego",
            "names another ego than the record's",
            live.clone(),
            body(EgoId::from_bytes([9; 32]), new_key, NOW).sign(&o.ego),
        ),
    ];
    // A signature over another new key does not carry over.
    let mut moved = body(ego_id, new_key, NOW).sign(&o.ego);
    moved.body.new_key = stranger.public();
    cases.push((
        "moved_to_another_key",
        "the signature covers another new key",
        live,
        moved,
    ));
    // The ego was revoked: nothing is objected to any more.
    let good = body(ego_id, new_key, NOW).sign(&o.ego);
    let revocation = o.record.revocation(NOW, DEFAULT_CERT_VALIDITY_SECS);
    let signed = o.sign_current(revocation);
    o.record.set_cert(signed).unwrap();
    cases.push((
        "revoked",
        "the record's certificate is a revocation",
        o.bytes(),
        good,
    ));
    cases
        .into_iter()
        .map(|(name, description, record, objection)| {
            let verified = verify(&record, &dht_key, NOW).unwrap();
            let expect = match objection.verify(&verified, NOW) {
                Ok(()) => json!({ "valid": true }),
                Err(r) => json!({ "valid": false, "error": refusal_name(r), "code": r.code() }),
            };
            json!({
                "name": name,
                "description": description,
                "now": NOW.secs(),
                "dht_key": hex::encode(dht_key.as_bytes()),
                "record": hex::encode(&record),
                "objection": hex::encode(objection.to_cbor()),
                "expect": expect,
            })
        })
        .collect()
}

pub fn circle() -> Value {
    json!({
        "about": "The circle's authority against a stolen device (docs/protocol.md, sections 9.1 and 9.2). `change_fingerprints`: the six digits of a change, from the ego id, the kind (1 link, 2 revocation) and the subject key (rule 9 of section 9.1). `objections`: a member verifies `record` under `dht_key` at `now` (it is valid), then checks `objection` against it (section 9.2); `expect` gives the verdict and, if refused, the refusal.",
        "change_fingerprints": fingerprints(),
        "objections": objections(),
    })
}

/// Reads the committed file as another implementation would.
#[test]
fn committed_circle_vectors_check_out() {
    if crate::vectors::regenerating() {
        return;
    }
    let v = read("circle.json");
    let fps = v["change_fingerprints"].as_array().unwrap();
    assert!(fps.len() >= 5);
    for f in fps {
        let ego = EgoId::from_bytes(hex_field(f, "ego_id").try_into().unwrap());
        let subject = PublicKey(hex_field(f, "subject").try_into().unwrap());
        let change = match f["kind"].as_u64().unwrap() {
            1 => Change::Link(subject),
            2 => Change::Revocation(subject),
            k => panic!("kind {k}"),
        };
        assert_eq!(change.fingerprint(&ego), f["fingerprint"].as_str().unwrap());
    }
    let obs = v["objections"].as_array().unwrap();
    assert!(obs.len() >= 9);
    assert!(obs.iter().any(|c| c["expect"]["valid"] == true));
    for c in obs {
        let name = c["name"].as_str().unwrap();
        let now = UnixTime::from_secs(c["now"].as_u64().unwrap());
        let record = verify(&hex_field(c, "record"), &key(&c["dht_key"]), now).unwrap();
        let objection =
            Objection::from_cbor(&hex_field(c, "objection"), MAX_CIRCLE_MESSAGE_SIZE).unwrap();
        match objection.verify(&record, now) {
            Ok(()) => assert_eq!(c["expect"]["valid"], true, "{name}"),
            Err(r) => {
                assert_eq!(c["expect"]["error"], refusal_name(r), "{name}");
                assert_eq!(c["expect"]["code"], r.code(), "{name}");
            }
        }
    }
}
