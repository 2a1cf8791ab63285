//! Test vectors in `core/tests/vectors/`, for other implementations to
//! check themselves against.
//!
//! `records.json` holds every case of `cases.rs` (and its siblings);
//! `login.json` a signed challenge and its responses; `ids.json` ego ids in
//! text form with their DHT keys and fingerprints; `challenges.json`,
//! `local.json` and `approvals.json` the message cases of
//! `vectors_challenges.rs`, `vectors_local.rs` and `vectors_approvals.rs`;
//! `selection.json` the selection and anti-rollback
//! tables of `vectors_selection.rs`. All are generated from seeded keys, so
//! they are reproducible byte for byte.
//!
//! Regenerate them with:
//!
//! ```text
//! CYRCLES_REGENERATE_VECTORS=1 cargo test -p cyrcles-core --test it vectors
//! ```
//!
//! Without that variable the tests below regenerate them in memory and fail
//! if the committed files differ, then check every committed case against
//! the code as a second implementation would.

use std::path::PathBuf;

use cyrcles_core::cbor::Encode;
use cyrcles_core::login::{Approval, ApprovedBy, DenyReason, LoginChallenge, LoginResponse};
use cyrcles_core::{DhtKey, EgoId, UnixTime, verify};
use serde_json::{Value, json};

use crate::cases;
use crate::common::{NOW, Owner};

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn records() -> Value {
    let mut out = Vec::new();
    for c in cases::all() {
        let expect = match c.error {
            None => {
                let v = verify(&c.record, &c.dht_key, c.now).unwrap();
                let rank = v.rank();
                json!({
                    "valid": true,
                    "ego_id": v.ego_id().to_string(),
                    "fingerprint": v.ego_id().fingerprint().to_string(),
                    "chain_len": rank.chain_len,
                    "epoch": rank.epoch,
                    "cert_seq": rank.cert_seq,
                    "endpoints_seq": rank.endpoints_seq,
                    "ego_pk": hex::encode(v.ego_key().as_bytes()),
                    "circle_pk": hex::encode(v.circle_key().as_bytes()),
                    "revoked": v.is_revoked(),
                    "endpoints_live": v.live_endpoints(c.now).is_some(),
                })
            }
            Some((rule, code)) => json!({ "valid": false, "rule": rule, "error": code }),
        };
        out.push(json!({
            "name": c.name,
            "description": c.description,
            "now": c.now.secs(),
            "dht_key": hex::encode(c.dht_key.as_bytes()),
            "record": hex::encode(&c.record),
            "expect": expect,
        }));
    }
    json!({
        "about": "Cyrcles ego records (docs/protocol.md, sections 5, 6 and 10). Verify `record` under `dht_key` at time `now` (Unix seconds); `expect` says whether it is valid and, if not, which rule fails and with which error code. Each refused record breaks one check only.",
        "cases": out,
    })
}

fn login() -> Value {
    let o = Owner::new(700);
    let ch = LoginChallenge::new(crate::login::params(o.record.ego_id(), NOW)).unwrap();
    let approved = ch.approve(&o.ego, o.record.cert.body.seq, ApprovedBy::Person);
    let LoginResponse::Approved(a) = approved else {
        unreachable!()
    };
    let legacy = Approval {
        approved_by: None,
        sig: ch.sign(&o.ego),
        ..a
    };
    json!({
        "about": "A login challenge, the record of the ego it names, the agent's approval by the person (an Ed25519 \
                  signature over \"cyrcles/v1/login-approval\" || 0x00 || [challenge, 0]), the same approval in the \
                  legacy form (over \"cyrcles/v1/login\" || 0x00 || challenge, which does not say how it was \
                  approved) and a denial.",
        "now": NOW.secs(),
        "record": hex::encode(o.bytes()),
        "dht_key": hex::encode(o.record.ego_id().dht_key().as_bytes()),
        "challenge": hex::encode(ch.to_cbor()),
        "approved_by": ApprovedBy::Person.as_str(),
        "signed_bytes": hex::encode(cyrcles_core::Context::LoginApproval.signing_bytes(&ch.approval_message(ApprovedBy::Person))),
        "ego_pk": hex::encode(a.ego_pk.as_bytes()),
        "signature": hex::encode(a.sig.0),
        "response_approved": hex::encode(approved.to_cbor()),
        "legacy_signed_bytes": hex::encode(cyrcles_core::Context::Login.signing_bytes(&ch.to_cbor())),
        "legacy_signature": hex::encode(legacy.sig.0),
        "response_approved_legacy": hex::encode(LoginResponse::Approved(legacy).to_cbor()),
        "response_denied_rate_limited": hex::encode(LoginResponse::Denied(DenyReason::RateLimited).to_cbor()),
    })
}

fn ids() -> Value {
    let mut out = Vec::new();
    for seed in [[0u8; 32], [0xff; 32], *b"cyrcles test vector ego id 00001"] {
        let id = EgoId::from_bytes(seed);
        out.push(json!({
            "ego_id_hex": hex::encode(seed),
            "ego_id_text": id.to_string(),
            "fingerprint": id.fingerprint().to_string(),
            "dht_key": hex::encode(id.dht_key().as_bytes()),
        }));
    }
    json!({
        "about": "Ego ids: text form (RFC 4648 base32, lower case, unpadded), fingerprint, and DHT key = SHA-256(\"cyrcles/ego/v1\" || id).",
        "ids": out,
    })
}

fn files() -> Vec<(&'static str, Value)> {
    vec![
        ("records.json", records()),
        ("login.json", login()),
        ("ids.json", ids()),
        ("challenges.json", crate::vectors_challenges::challenges()),
        ("local.json", crate::vectors_local::local()),
        ("approvals.json", crate::vectors_approvals::approvals()),
        ("selection.json", crate::vectors_selection::selection()),
        ("circle.json", crate::vectors_circle::circle()),
    ]
}

fn render(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

#[test]
fn committed_vectors_match_the_code() {
    let regenerate = regenerating();
    for (name, value) in files() {
        let path = dir().join(name);
        let fresh = render(&value);
        if regenerate {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == fresh,
            "{name} differs from what the code generates; if the change is intended, \
             regenerate with CYRCLES_REGENERATE_VECTORS=1 cargo test -p cyrcles-core --test it vectors"
        );
    }
}

/// While regenerating, the files are being rewritten: the checks of the
/// committed files run on the next plain run.
pub fn regenerating() -> bool {
    std::env::var_os("CYRCLES_REGENERATE_VECTORS").is_some()
}

pub fn key(v: &Value) -> DhtKey {
    let b: [u8; 32] = hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    DhtKey::from_bytes(b)
}

/// The bytes of a hex field.
pub fn hex_field(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().unwrap()).unwrap()
}

/// Reads the committed files as another implementation would, and checks
/// each expectation against this one.
#[test]
fn committed_record_vectors_verify_as_stated() {
    if regenerating() {
        return;
    }
    let text = std::fs::read_to_string(dir().join("records.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 90);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let record = hex::decode(c["record"].as_str().unwrap()).unwrap();
        let now = UnixTime::from_secs(c["now"].as_u64().unwrap());
        let result = verify(&record, &key(&c["dht_key"]), now);
        let expect = &c["expect"];
        if expect["valid"].as_bool().unwrap() {
            let v = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let rank = v.rank();
            let got = json!({
                "valid": true,
                "ego_id": v.ego_id().to_string(),
                "fingerprint": v.ego_id().fingerprint().to_string(),
                "chain_len": rank.chain_len,
                "epoch": rank.epoch,
                "cert_seq": rank.cert_seq,
                "endpoints_seq": rank.endpoints_seq,
                "ego_pk": hex::encode(v.ego_key().as_bytes()),
                "circle_pk": hex::encode(v.circle_key().as_bytes()),
                "revoked": v.is_revoked(),
                "endpoints_live": v.live_endpoints(now).is_some(),
            });
            assert_eq!(&got, expect, "{name}");
        } else {
            let e = result.err().unwrap_or_else(|| panic!("{name} verified"));
            assert_eq!(
                u64::from(e.rule()),
                expect["rule"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(e.code(), expect["error"], "{name}");
        }
    }
}

#[test]
fn committed_login_and_id_vectors_check_out() {
    if regenerating() {
        return;
    }
    let text = std::fs::read_to_string(dir().join("login.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let h = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
    let now = UnixTime::from_secs(v["now"].as_u64().unwrap());
    let ego = verify(&h("record"), &key(&v["dht_key"]), now).unwrap();
    let ch = LoginChallenge::decode_bytes(&h("challenge")).unwrap();
    // The signed bytes, spelled out from the spec: context, 0x00, then the
    // array [challenge, 0] (0x82, the challenge, 0x00 for "person"); and
    // for the legacy form, context, 0x00, the challenge.
    let signed = [
        b"cyrcles/v1/login-approval\x00".as_slice(),
        &[0x82],
        &h("challenge"),
        &[0x00],
    ]
    .concat();
    assert_eq!(h("signed_bytes"), signed);
    let legacy_signed = [b"cyrcles/v1/login\x00".as_slice(), &h("challenge")].concat();
    assert_eq!(h("legacy_signed_bytes"), legacy_signed);
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&h("ego_pk").try_into().unwrap()).unwrap();
    for (bytes, sig) in [(&signed, "signature"), (&legacy_signed, "legacy_signature")] {
        let sig = ed25519_dalek::Signature::from_slice(&h(sig)).unwrap();
        vk.verify_strict(bytes, &sig).unwrap();
    }
    for (field, by, sig) in [
        ("response_approved", Some(ApprovedBy::Person), "signature"),
        ("response_approved_legacy", None, "legacy_signature"),
    ] {
        let LoginResponse::Approved(a) = LoginResponse::decode_bytes(&h(field)).unwrap() else {
            panic!("{field}: approved response expected")
        };
        assert_eq!(a.approved_by, by, "{field}");
        assert_eq!(
            a.approved_by.map(ApprovedBy::as_str),
            v["approved_by"].as_str().filter(|_| by.is_some())
        );
        assert_eq!(a.sig.0.to_vec(), h(sig), "{field}");
        cyrcles_core::login::verify_approval(&ch, &a, &ego, now).unwrap();
    }
    assert_eq!(
        LoginResponse::decode_bytes(&h("response_denied_rate_limited")).unwrap(),
        LoginResponse::Denied(DenyReason::RateLimited)
    );

    let text = std::fs::read_to_string(dir().join("ids.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    for id in v["ids"].as_array().unwrap() {
        let parsed: EgoId = id["ego_id_text"].as_str().unwrap().parse().unwrap();
        assert_eq!(hex::encode(parsed.as_bytes()), id["ego_id_hex"]);
        assert_eq!(hex::encode(parsed.dht_key().as_bytes()), id["dht_key"]);
        assert_eq!(parsed.fingerprint().to_string(), id["fingerprint"]);
    }
}
