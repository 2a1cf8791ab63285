//! `approvals.json`: a bridge's check of an approval (docs/protocol.md,
//! section 8), one case per refusal, including signatures that lenient
//! verifiers accept, signatures made for another way of approving or for
//! the other form, and challenges that ask the person to confirm.

use cyrcles_core::cbor::Encode;
use cyrcles_core::login::{
    Approval, ApprovedBy, ChallengeParams, LoginChallenge, LoginResponse, verify_approval,
};
use cyrcles_core::{Context, EgoId, SecretKey, Signature, UnixTime, verify};
use ed25519_dalek::Signer;
use serde_json::{Value, json};

use crate::common::{NOW, Owner, T0};
use crate::ed25519::{cofactored_accepts, mixed_order_r, s_plus_l, small_order_r, torsion};
use crate::login::params;
use crate::vectors::{hex_field, key};
use crate::vectors_challenges::read;

/// One bridge-side check: the record as the bridge verified it, the
/// challenge it sent, the response it got, and its time.
struct Approve {
    name: String,
    description: String,
    record: Vec<u8>,
    dht_key: cyrcles_core::DhtKey,
    verified_at: UnixTime,
    now: UnixTime,
    challenge: LoginChallenge,
    approval: Approval,
}

fn approval_cases() -> Vec<Approve> {
    let mut out = Vec::new();
    let mut o = Owner::new(720);
    let ch = LoginChallenge::new(params(o.record.ego_id(), NOW)).unwrap();
    // An approval by the person, in the current form.
    let signed_by = |key: &SecretKey, seq: u64, ch: &LoginChallenge, by: ApprovedBy| Approval {
        ego_pk: key.public(),
        cert_seq: seq,
        approved_by: Some(by),
        sig: ch.sign_approval(key, by),
    };
    let signed = |key: &SecretKey, seq: u64, ch: &LoginChallenge| {
        signed_by(key, seq, ch, ApprovedBy::Person)
    };
    // A legacy approval (four fields, the cyrcles/v1/login context).
    let legacy = |key: &SecretKey, seq: u64, ch: &LoginChallenge| Approval {
        ego_pk: key.public(),
        cert_seq: seq,
        approved_by: None,
        sig: ch.sign(key),
    };
    let good = signed(&o.ego, 1, &ch);
    let base =
        |name: &str, description: &str, o: &Owner, now, challenge: &LoginChallenge, approval| {
            Approve {
                name: name.into(),
                description: description.into(),
                record: o.bytes(),
                dht_key: o.record.ego_id().dht_key(),
                verified_at: NOW,
                now,
                challenge: challenge.clone(),
                approval,
            }
        };
    out.push(base(
        "accepted",
        "a fresh approval, checked 5 s after the challenge was issued",
        &o,
        NOW.plus(5),
        &ch,
        good,
    ));
    for by in [ApprovedBy::RememberedSite, ApprovedBy::Policy] {
        out.push(base(
            &format!("accepted_{}", by.as_str()),
            &format!(
                "approved by {} (approved_by {}): accepted; the bridge knows the person did not confirm",
                by.as_str(),
                by.code()
            ),
            &o,
            NOW.plus(5),
            &ch,
            signed_by(&o.ego, 1, &ch, by),
        ));
    }
    out.push(base(
        "accepted_legacy",
        "a legacy approval (4 pairs, signed in the context cyrcles/v1/login): accepted; it does not say how it was approved",
        &o,
        NOW.plus(5),
        &ch,
        legacy(&o.ego, 1, &ch),
    ));
    out.push(base(
        "accepted_at_issued_at",
        "checked at the challenge's issued_at",
        &o,
        NOW,
        &ch,
        good,
    ));
    out.push(base(
        "accepted_at_expires_at",
        "checked at the challenge's expires_at",
        &o,
        NOW.plus(120),
        &ch,
        good,
    ));
    out.push(base(
        "expired",
        "checked one second after expires_at (the bridge allows no skew)",
        &o,
        NOW.plus(121),
        &ch,
        good,
    ));
    out.push(base(
        "not_yet_issued",
        "checked one second before issued_at",
        &o,
        NOW.minus(1),
        &ch,
        good,
    ));
    let elsewhere = LoginChallenge::new(params(EgoId::from_bytes([5; 32]), NOW)).unwrap();
    out.push(base(
        "wrong_ego",
        "the challenge names another ego; the record's ego key signed it",
        &o,
        NOW,
        &elsewhere,
        signed(&o.ego, 1, &elsewhere),
    ));
    let other = SecretKey::from_seed(&[0x31; 32]);
    out.push(base(
        "key_mismatch_same_seq",
        "signed by another key, claiming the record's certificate seq: refused, the record is not stale",
        &o,
        NOW,
        &ch,
        signed(&other, 1, &ch),
    ));
    let forged = Approval {
        sig: ch.sign_approval(&other, ApprovedBy::Person),
        ..good
    };
    out.push(base(
        "bad_signature_by_another_key",
        "names the record's ego key but is signed by another key",
        &o,
        NOW,
        &ch,
        forged,
    ));
    let match_7 = LoginChallenge::new(ChallengeParams {
        match_code: 7,
        ..params(o.record.ego_id(), NOW)
    })
    .unwrap();
    out.push(base(
        "bad_signature_over_another_challenge",
        "the signature is over the same challenge with match code 7",
        &o,
        NOW,
        &ch,
        signed(&o.ego, 1, &match_7),
    ));
    // What an approval by the person signs: [challenge, 0].
    let body = ch.approval_message(ApprovedBy::Person);
    let with_sig = |sig: Signature| Approval { sig, ..good };
    out.push(base(
        "bad_signature_local_context",
        "the ego key signed the approval message ([challenge, 0]) in the context cyrcles/v1/local",
        &o,
        NOW,
        &ch,
        with_sig(o.ego.sign(Context::Local, &body)),
    ));
    let raw = ed25519_dalek::SigningKey::from_bytes(&o.ego.to_seed());
    out.push(base(
        "bad_signature_without_context_terminator",
        "the ego key signed \"cyrcles/v1/login-approval\" || [challenge, 0], without the 0x00",
        &o,
        NOW,
        &ch,
        with_sig(Signature(
            raw.sign(&[b"cyrcles/v1/login-approval".as_slice(), &body].concat())
                .to_bytes(),
        )),
    ));
    let challenge_bytes = ch.to_cbor();
    out.push(base(
        "bad_signature_legacy_without_context_terminator",
        "a legacy approval: the ego key signed \"cyrcles/v1/login\" || challenge, without the 0x00",
        &o,
        NOW,
        &ch,
        Approval {
            approved_by: None,
            sig: Signature(
                raw.sign(&[b"cyrcles/v1/login".as_slice(), &challenge_bytes].concat())
                    .to_bytes(),
            ),
            ..good
        },
    ));
    // A signature made for one way of approving, shown as another.
    for signed_as in ApprovedBy::ALL {
        for shown in ApprovedBy::ALL {
            if signed_as == shown {
                continue;
            }
            out.push(base(
                &format!(
                    "bad_signature_{}_shown_as_{}",
                    signed_as.as_str(),
                    shown.as_str()
                ),
                &format!(
                    "signed as approved by {} (approved_by {}), the response says {} ({})",
                    signed_as.as_str(),
                    signed_as.code(),
                    shown.as_str(),
                    shown.code()
                ),
                &o,
                NOW,
                &ch,
                Approval {
                    approved_by: Some(shown),
                    ..signed_by(&o.ego, 1, &ch, signed_as)
                },
            ));
        }
    }
    out.push(base(
        "bad_signature_legacy_signature_in_new_form",
        "a 5-pair approval saying person, carrying the legacy signature (cyrcles/v1/login over the challenge)",
        &o,
        NOW,
        &ch,
        Approval {
            approved_by: Some(ApprovedBy::Person),
            ..legacy(&o.ego, 1, &ch)
        },
    ));
    out.push(base(
        "bad_signature_new_signature_as_legacy",
        "a 4-pair (legacy) approval carrying the signature of an approval by the person",
        &o,
        NOW,
        &ch,
        Approval {
            approved_by: None,
            ..good
        },
    ));
    out.push(base(
        "bad_signature_approval_context_over_challenge",
        "the ego key signed the challenge alone (not [challenge, 0]) in the context cyrcles/v1/login-approval",
        &o,
        NOW,
        &ch,
        with_sig(o.ego.sign(Context::LoginApproval, &challenge_bytes)),
    ));
    out.push(base(
        "bad_signature_login_context_over_approval_message",
        "the ego key signed [challenge, 0] in the legacy context cyrcles/v1/login",
        &o,
        NOW,
        &ch,
        with_sig(o.ego.sign(Context::Login, &body)),
    ));
    // A challenge that asks the person to confirm.
    let confirm = LoginChallenge::new(ChallengeParams {
        confirm: true,
        ..params(o.record.ego_id(), NOW)
    })
    .unwrap();
    out.push(base(
        "accepted_confirm_by_person",
        "the challenge asks the person to confirm (key 11); the person did (approved_by 0)",
        &o,
        NOW.plus(5),
        &confirm,
        signed(&o.ego, 1, &confirm),
    ));
    for by in [ApprovedBy::RememberedSite, ApprovedBy::Policy] {
        out.push(base(
            &format!("not_confirmed_{}", by.as_str()),
            &format!(
                "the challenge asks the person to confirm; a valid approval says {} (approved_by {})",
                by.as_str(),
                by.code()
            ),
            &o,
            NOW.plus(5),
            &confirm,
            signed_by(&o.ego, 1, &confirm, by),
        ));
    }
    out.push(base(
        "not_confirmed_legacy",
        "the challenge asks the person to confirm; a valid legacy approval does not say the person did",
        &o,
        NOW.plus(5),
        &confirm,
        legacy(&o.ego, 1, &confirm),
    ));
    out.push(base(
        "bad_signature_confirm_stripped",
        "the bridge's challenge asks the person to confirm; the approval (by a policy) signs the same challenge without key 11",
        &o,
        NOW.plus(5),
        &confirm,
        signed_by(&o.ego, 1, &ch, ApprovedBy::Policy),
    ));
    out.push(base(
        "bad_signature_s_not_canonical",
        "the approval's signature with S + ℓ in place of S",
        &o,
        NOW,
        &ch,
        with_sig(s_plus_l(&good.sig)),
    ));
    let pk = o.ego.public().0;
    let small = small_order_r(&o.ego, &torsion()[3], Context::LoginApproval, &body);
    assert!(cofactored_accepts(
        &pk,
        Context::LoginApproval,
        &body,
        &small
    ));
    out.push(base(
        "bad_signature_small_order_r",
        "R is a point of order 8 and S = k·a: a cofactored verifier accepts it",
        &o,
        NOW,
        &ch,
        with_sig(small),
    ));
    let mixed = mixed_order_r(&o.ego, Context::LoginApproval, &body);
    assert!(cofactored_accepts(
        &pk,
        Context::LoginApproval,
        &body,
        &mixed
    ));
    out.push(base(
        "bad_signature_mixed_order_r",
        "R = [r]B + T with T of order 8: a cofactored verifier accepts it",
        &o,
        NOW,
        &ch,
        with_sig(mixed),
    ));
    let not_after = o.record.cert.body.not_after;
    let late = LoginChallenge::new(params(o.record.ego_id(), not_after.plus(301))).unwrap();
    out.push(base(
        "cert_not_valid",
        "the record verified earlier; the approval arrives 301 s after its certificate's not_after (the challenge is live)",
        &o,
        not_after.plus(305),
        &late,
        signed(&o.ego, 1, &late),
    ));

    // Rotation: the bridge's copy is older, then current.
    let old_record = o.bytes();
    let old_key = SecretKey::from_seed(&o.ego.to_seed());
    o.rotate(T0.plus(10));
    let newer = signed(&o.ego, 2, &ch);
    out.push(Approve {
        record: old_record,
        ..base(
            "key_mismatch_newer_certificate",
            "the agent signed with the key of certificate seq 2; the bridge holds the record of seq 1: it must look the record up again",
            &o,
            NOW,
            &ch,
            newer,
        )
    });
    out.push(base(
        "accepted_after_lookup",
        "the same approval against the current record (seq 2)",
        &o,
        NOW,
        &ch,
        newer,
    ));
    out.push(base(
        "key_mismatch_replaced_key",
        "signed by the key of certificate seq 1, checked against the record of seq 2: the old key no longer counts (the bridge looks once more: another seq may be a recovery's)",
        &o,
        NOW,
        &ch,
        signed(&old_key, 1, &ch),
    ));
    let circle = o.circles.pop().unwrap();
    o.record
        .revoke_with(&circle, &mut o.rng, T0.plus(20), 60)
        .unwrap();
    o.circles.push(circle);
    out.push(base(
        "revoked",
        "the record revokes the ego; the approval is signed by the key the revocation names",
        &o,
        NOW,
        &ch,
        newer,
    ));
    out
}

/// What a bridge may rely on after accepting: how the login was approved
/// (null for a legacy approval).
fn approved_by(a: &Approval) -> Value {
    json!(a.approved_by.map(ApprovedBy::as_str))
}

pub fn approvals() -> Value {
    let cases: Vec<Value> = approval_cases()
        .into_iter()
        .map(|c| {
            let ego = verify(&c.record, &c.dht_key, c.verified_at).unwrap();
            let expect = match verify_approval(&c.challenge, &c.approval, &ego, c.now) {
                Ok(()) => json!({ "accepted": true, "approved_by": approved_by(&c.approval) }),
                Err(e) => json!({ "accepted": false, "error": e.code(), "record_stale": e.record_is_stale() }),
            };
            json!({
                "name": c.name,
                "description": c.description,
                "record": hex::encode(&c.record),
                "dht_key": hex::encode(c.dht_key.as_bytes()),
                "record_verified_at": c.verified_at.secs(),
                "now": c.now.secs(),
                "challenge": hex::encode(c.challenge.to_cbor()),
                "response": hex::encode(LoginResponse::Approved(c.approval).to_cbor()),
                "expect": expect,
            })
        })
        .collect();
    json!({
        "about": "A bridge's check of an approval (docs/protocol.md, section 8): verify `record` under `dht_key` at \
                  `record_verified_at` (it is valid), decode `challenge` and `response`, and check the approval at \
                  the bridge's time `now`. `expect.accepted` with `approved_by` (person, remembered_site, policy, \
                  or null for a legacy approval), or the refusal `error` (wrong_ego, revoked, cert_not_valid, \
                  expired, key_mismatch, bad_signature, not_confirmed) and `record_stale`: whether the bridge must \
                  look the record up again before deciding.",
        "cases": cases,
    })
}

fn check_approval(c: &Value) {
    let name = c["name"].as_str().unwrap();
    let at = |k: &str| UnixTime::from_secs(c[k].as_u64().unwrap());
    let ego = verify(
        &hex_field(c, "record"),
        &key(&c["dht_key"]),
        at("record_verified_at"),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let ch = LoginChallenge::decode_bytes(&hex_field(c, "challenge")).unwrap();
    let LoginResponse::Approved(a) =
        LoginResponse::decode_bytes(&hex_field(c, "response")).unwrap()
    else {
        panic!("{name}: not an approval")
    };
    let expect = &c["expect"];
    match verify_approval(&ch, &a, &ego, at("now")) {
        Ok(()) => {
            assert!(expect["accepted"].as_bool().unwrap(), "{name} accepted");
            assert_eq!(expect["approved_by"], approved_by(&a), "{name}");
        }
        Err(e) => {
            assert!(!expect["accepted"].as_bool().unwrap(), "{name}: {e}");
            assert_eq!(expect["error"], e.code(), "{name}");
            assert_eq!(expect["record_stale"], e.record_is_stale(), "{name}");
        }
    }
}

#[test]
fn committed_approval_vectors_check_as_stated() {
    if crate::vectors::regenerating() {
        return;
    }
    let v = read("approvals.json");
    let cs = v["cases"].as_array().unwrap();
    assert!(cs.len() >= 30);
    // Each way of approving is accepted somewhere, and legacy too.
    for by in [
        json!("person"),
        json!("remembered_site"),
        json!("policy"),
        Value::Null,
    ] {
        assert!(
            cs.iter()
                .any(|c| c["expect"]["accepted"] == true && c["expect"]["approved_by"] == by),
            "no accepted approval by {by}"
        );
    }
    cs.iter().for_each(check_approval);
    // Every refusal of the bridge's check has a case.
    for code in [
        "wrong_ego",
        "revoked",
        "cert_not_valid",
        "expired",
        "key_mismatch",
        "bad_signature",
        "not_confirmed",
    ] {
        assert!(
            cs.iter().any(|c| c["expect"]["error"] == code),
            "no approval case for {code}"
        );
    }
}
