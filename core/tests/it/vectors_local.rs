//! `local.json`: local signing requests (docs/protocol.md, section 8.1) as
//! a verifier decodes them, and one signature to check.

use cyrcles_core::cbor::{Encode, Encoder};
use cyrcles_core::local::{LocalParams, LocalRequest};
use cyrcles_core::{Context, PublicKey, SecretKey, Signature};
use serde_json::{Value, json};

use crate::common::NOW;
use crate::vectors::hex_field;
use crate::vectors_challenges::{ego, read, refused, replace};

fn encode_local(p: &LocalParams) -> Vec<u8> {
    let mut e = Encoder::new();
    e.map(6);
    e.key(0);
    e.uint(1);
    e.key(1);
    e.bytes(p.ego_id.as_bytes());
    e.key(2);
    e.text(&p.program);
    e.key(3);
    e.text(&p.reason);
    e.key(4);
    e.bytes(&p.nonce);
    e.key(5);
    e.uint(p.issued_at.secs());
    e.into_bytes()
}

pub fn local() -> Value {
    let base = LocalParams {
        ego_id: ego(),
        program: "/usr/bin/example-tool".into(),
        reason: "unlock the notes vault".into(),
        nonce: vec![0x5a; 16],
        issued_at: NOW,
    };
    let ok = |p: &LocalParams| {
        let r = LocalRequest::new(p.clone()).unwrap();
        assert_eq!(r.to_cbor(), encode_local(p));
        json!({
            "valid": true,
            "ego_id": p.ego_id.to_string(),
            "program": p.program,
            "reason": p.reason,
            "nonce": hex::encode(&p.nonce),
            "issued_at": p.issued_at.secs(),
        })
    };
    let max = LocalParams {
        program: format!("/{}", "p".repeat(1023)),
        reason: "r".repeat(200),
        nonce: vec![1; 64],
        ..base.clone()
    };
    let min = LocalParams {
        program: "p".into(),
        reason: "r".into(),
        nonce: vec![1; 16],
        ..base.clone()
    };
    let with = |program: &str, reason: &str| LocalParams {
        program: program.into(),
        reason: reason.into(),
        ..base.clone()
    };
    let limit = |f: &str| refused("limit", Some(f));
    let text = |f: &str| refused("text", Some(f));
    let mut cases: Vec<(&str, &str, Vec<u8>, Value)> = vec![
        (
            "valid_basic",
            "an ordinary request",
            encode_local(&base),
            ok(&base),
        ),
        (
            "valid_every_field_at_its_maximum",
            "program of 1024 bytes, reason of 200, nonce of 64",
            encode_local(&max),
            ok(&max),
        ),
        (
            "valid_every_field_at_its_minimum",
            "program and reason of one byte, nonce of 16",
            encode_local(&min),
            ok(&min),
        ),
        (
            "program_1025_bytes",
            "a program path of 1025 bytes",
            encode_local(&with(&"p".repeat(1025), "r")),
            limit("program"),
        ),
        (
            "reason_201_bytes",
            "a reason of 201 bytes",
            encode_local(&with("p", &"r".repeat(201))),
            limit("reason"),
        ),
        (
            "empty_program",
            "an empty program path",
            encode_local(&with("", "r")),
            limit("program"),
        ),
        (
            "empty_reason",
            "an empty reason",
            encode_local(&with("p", "")),
            limit("reason"),
        ),
        (
            "nonce_15_bytes",
            "a nonce of 15 bytes",
            encode_local(&LocalParams {
                nonce: vec![1; 15],
                ..base.clone()
            }),
            limit("nonce"),
        ),
        (
            "nonce_65_bytes",
            "a nonce of 65 bytes",
            encode_local(&LocalParams {
                nonce: vec![1; 65],
                ..base.clone()
            }),
            limit("nonce"),
        ),
        (
            "text_program_u202e",
            "a program path holding U+202E RIGHT-TO-LEFT OVERRIDE (a file named to read backwards)",
            encode_local(&with("/tmp/evil\u{202E}gnp.exe", "r")),
            text("program"),
        ),
        (
            "text_program_u001b",
            "a program path holding U+001B ESC",
            encode_local(&with("/tmp/a\u{1b}[2Jb", "r")),
            text("program"),
        ),
        (
            "text_reason_u2028",
            "a reason holding U+2028 LINE SEPARATOR",
            encode_local(&with("p", "sign\u{2028}Approved by your admin")),
            text("reason"),
        ),
        (
            "text_reason_u2029",
            "a reason holding U+2029 PARAGRAPH SEPARATOR",
            encode_local(&with("p", "a\u{2029}b")),
            text("reason"),
        ),
        (
            "text_reason_u2066",
            "a reason holding U+2066 LEFT-TO-RIGHT ISOLATE",
            encode_local(&with("p", "a\u{2066}b")),
            text("reason"),
        ),
        (
            "text_reason_u0085",
            "a reason holding U+0085 NEL",
            encode_local(&with("p", "a\u{85}b")),
            text("reason"),
        ),
    ];
    let bytes = encode_local(&base);
    let mut trailing = bytes.clone();
    trailing.push(0);
    cases.push((
        "encoding_trailing_byte",
        "a valid request and one more byte",
        trailing,
        refused("encoding", None),
    ));
    cases.push((
        "encoding_unknown_version",
        "version 2",
        replace(&bytes, &[0xa6, 0x00, 0x01], &[0xa6, 0x00, 0x02]),
        refused("encoding", None),
    ));
    let mut padded = bytes.clone();
    padded.resize(2049, 0);
    cases.push((
        "too_large",
        "a valid request padded to 2049 bytes",
        padded,
        refused("too_large", None),
    ));

    let key = SecretKey::from_seed(&[0x55; 32]);
    let req = LocalRequest::new(base.clone()).unwrap();
    let sig = req.sign(&key);
    json!({
        "about": "Local signing requests (docs/protocol.md, section 8.1), as a verifier decodes them. `expect` gives \
                  the decoded fields or the refusal (`error`: too_large, encoding, limit, text; `field`). \
                  `signature_example` is the valid_basic request signed by `ego_pk` in the context cyrcles/v1/local.",
        "requests": cases.into_iter().map(|(n, d, b, e)| json!({
            "name": n, "description": d, "request": hex::encode(b), "expect": e,
        })).collect::<Vec<_>>(),
        "signature_example": {
            "request": hex::encode(req.to_cbor()),
            "signed_bytes": hex::encode(Context::Local.signing_bytes(&req.to_cbor())),
            "ego_pk": hex::encode(key.public().as_bytes()),
            "signature": hex::encode(sig.0),
        },
    })
}

fn check_local(c: &Value) {
    let name = c["name"].as_str().unwrap();
    let expect = &c["expect"];
    match LocalRequest::decode_bytes(&hex_field(c, "request")) {
        Ok(r) => {
            let p = r.params();
            assert!(expect["valid"].as_bool().unwrap(), "{name}");
            assert_eq!(expect["ego_id"], p.ego_id.to_string(), "{name}");
            assert_eq!(expect["program"], p.program, "{name}");
            assert_eq!(expect["reason"], p.reason, "{name}");
            assert_eq!(expect["nonce"], hex::encode(&p.nonce), "{name}");
            assert_eq!(expect["issued_at"], p.issued_at.secs(), "{name}");
        }
        Err(e) => {
            assert!(!expect["valid"].as_bool().unwrap(), "{name}: {e}");
            assert_eq!(expect["error"], e.code(), "{name}: {e}");
            assert_eq!(expect["field"], json!(e.field()), "{name}: {e}");
        }
    }
}

#[test]
fn committed_local_vectors_decode_as_stated() {
    if crate::vectors::regenerating() {
        return;
    }
    let v = read("local.json");
    let rs = v["requests"].as_array().unwrap();
    assert!(rs.len() >= 15);
    rs.iter().for_each(check_local);
    let ex = &v["signature_example"];
    let req = LocalRequest::decode_bytes(&hex_field(ex, "request")).unwrap();
    let pk = PublicKey(hex_field(ex, "ego_pk").try_into().unwrap());
    let sig = Signature(hex_field(ex, "signature").try_into().unwrap());
    req.verify(&pk, &sig).unwrap();
    assert_eq!(
        Context::Local.signing_bytes(&req.to_cbor()),
        hex_field(ex, "signed_bytes")
    );
}
