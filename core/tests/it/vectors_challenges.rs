//! `challenges.json`: login challenges and responses as a decoder receives
//! them from the wire (docs/protocol.md, sections 8 and 10), generated
//! here and checked by reading the committed file as another
//! implementation would. `vectors_local.rs` and `vectors_approvals.rs`
//! hold the other message vectors and share the helpers below.

use cyrcles_core::cbor::{Encode, Encoder};
use cyrcles_core::login::{ApprovedBy, ChallengeParams, DenyReason, LoginChallenge, LoginResponse};
use cyrcles_core::{EgoId, SecretKey};
use serde_json::{Value, json};

use crate::common::NOW;
use crate::login::params;
use crate::vectors::hex_field;

/// Encodes challenge fields as a challenge, whether or not they meet the
/// limits (the builder refuses those that do not). Written out here from
/// the spec, apart from the code's encoder.
pub fn encode_challenge(p: &ChallengeParams) -> Vec<u8> {
    let mut e = Encoder::new();
    e.map(if p.confirm { 12 } else { 11 });
    e.key(0);
    e.uint(1);
    e.key(1);
    e.text(&p.issuer);
    e.key(2);
    e.text(&p.client_id);
    e.key(3);
    e.text(&p.client_name);
    e.key(4);
    e.text(&p.redirect_origin);
    e.key(5);
    e.bytes(p.ego_id.as_bytes());
    e.key(6);
    e.bytes(&p.nonce);
    e.key(7);
    e.uint(p.issued_at.secs());
    e.key(8);
    e.uint(p.expires_at.secs());
    e.key(9);
    e.uint(u64::from(p.match_code));
    e.key(10);
    match &p.client_ip {
        Some(ip) => e.text(ip),
        None => e.null(),
    }
    if p.confirm {
        e.key(11);
        e.bool(true);
    }
    e.into_bytes()
}

pub fn ego() -> EgoId {
    EgoId::from_bytes(*b"cyrcles challenge vector ego id.")
}

pub fn refused(code: &str, field: Option<&str>) -> Value {
    json!({ "valid": false, "error": code, "field": field })
}

/// Replaces the first occurrence of `from` in `bytes`.
pub fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

fn challenge_cases() -> Vec<(String, String, Vec<u8>, Value)> {
    let base = params(ego(), NOW);
    let mut out: Vec<(String, String, Vec<u8>, Value)> = Vec::new();
    let mut push = |name: &str, description: &str, p: ChallengeParams, expect: Value| {
        out.push((
            name.into(),
            description.into(),
            encode_challenge(&p),
            expect,
        ));
    };
    let ok = |p: &ChallengeParams| {
        let c = LoginChallenge::new(p.clone()).unwrap();
        assert_eq!(c.to_cbor(), encode_challenge(p));
        json!({
            "valid": true,
            "issuer": p.issuer,
            "client_id": p.client_id,
            "client_name": p.client_name,
            "redirect_origin": p.redirect_origin,
            "ego_id": p.ego_id.to_string(),
            "nonce": hex::encode(&p.nonce),
            "issued_at": p.issued_at.secs(),
            "expires_at": p.expires_at.secs(),
            "match_code": p.match_code,
            "client_ip": p.client_ip,
            "confirm": p.confirm,
        })
    };
    push(
        "valid_basic",
        "an ordinary challenge",
        base.clone(),
        ok(&base),
    );
    let max = ChallengeParams {
        issuer: format!("https://{}", "i".repeat(248)),
        client_id: "c".repeat(128),
        client_name: "é".repeat(64),
        redirect_origin: format!("https://{}", "o".repeat(248)),
        nonce: vec![0x6e; 64],
        expires_at: NOW.plus(120),
        match_code: 99,
        client_ip: Some("1".repeat(64)),
        ..base.clone()
    };
    push(
        "valid_every_field_at_its_maximum",
        "issuer and redirect origin of 256 bytes, client id of 128, client name of 128 bytes (64 × é), \
         nonce of 64 bytes, lifetime 120 s, match code 99, client ip of 64 bytes",
        max.clone(),
        ok(&max),
    );
    let min = ChallengeParams {
        issuer: "i".into(),
        client_id: "c".into(),
        client_name: "n".into(),
        redirect_origin: "o".into(),
        nonce: vec![0x6e; 16],
        expires_at: NOW.plus(1),
        match_code: 0,
        client_ip: None,
        ..base.clone()
    };
    push(
        "valid_every_field_at_its_minimum",
        "texts of one byte, nonce of 16 bytes, lifetime 1 s, match code 0, no client ip",
        min.clone(),
        ok(&min),
    );
    let confirm = ChallengeParams {
        confirm: true,
        ..base.clone()
    };
    push(
        "valid_confirm",
        "the site asks the person to confirm: key 11 is true, a map of 12 pairs",
        confirm.clone(),
        ok(&confirm),
    );
    let confirm_min = ChallengeParams {
        confirm: true,
        ..min.clone()
    };
    push(
        "valid_confirm_every_field_at_its_minimum",
        "as valid_every_field_at_its_minimum, with confirm",
        confirm_min.clone(),
        ok(&confirm_min),
    );
    let unicode = ChallengeParams {
        client_name: "Café 日本 👩\u{200D}💻".into(),
        client_ip: Some("2001:db8::1".into()),
        ..base.clone()
    };
    push(
        "valid_unicode_text",
        "a client name with accents, CJK and an emoji sequence joined by U+200D (allowed)",
        unicode.clone(),
        ok(&unicode),
    );

    // One past each limit.
    let limit = |f: &str| refused("limit", Some(f));
    for (name, description, p, field) in [
        (
            "lifetime_121_seconds",
            "expires_at = issued_at + 121",
            ChallengeParams {
                expires_at: NOW.plus(121),
                ..base.clone()
            },
            "expires_at",
        ),
        (
            "lifetime_zero",
            "expires_at = issued_at",
            ChallengeParams {
                expires_at: NOW,
                ..base.clone()
            },
            "expires_at",
        ),
        (
            "expires_before_issue",
            "expires_at = issued_at - 1",
            ChallengeParams {
                expires_at: NOW.minus(1),
                ..base.clone()
            },
            "expires_at",
        ),
        (
            "nonce_15_bytes",
            "a nonce of 15 bytes",
            ChallengeParams {
                nonce: vec![1; 15],
                ..base.clone()
            },
            "nonce",
        ),
        (
            "nonce_65_bytes",
            "a nonce of 65 bytes",
            ChallengeParams {
                nonce: vec![1; 65],
                ..base.clone()
            },
            "nonce",
        ),
        (
            "issuer_257_bytes",
            "an issuer of 257 bytes",
            ChallengeParams {
                issuer: "i".repeat(257),
                ..base.clone()
            },
            "issuer",
        ),
        (
            "client_id_129_bytes",
            "a client id of 129 bytes",
            ChallengeParams {
                client_id: "c".repeat(129),
                ..base.clone()
            },
            "client_id",
        ),
        (
            "client_name_129_bytes",
            "a client name of 129 bytes, 65 characters (64 × é and one a): limits count bytes",
            ChallengeParams {
                client_name: format!("{}a", "é".repeat(64)),
                ..base.clone()
            },
            "client_name",
        ),
        (
            "redirect_origin_257_bytes",
            "a redirect origin of 257 bytes",
            ChallengeParams {
                redirect_origin: "o".repeat(257),
                ..base.clone()
            },
            "redirect_origin",
        ),
        (
            "client_ip_65_bytes",
            "a client ip of 65 bytes",
            ChallengeParams {
                client_ip: Some("1".repeat(65)),
                ..base.clone()
            },
            "client_ip",
        ),
        (
            "empty_issuer",
            "an empty issuer",
            ChallengeParams {
                issuer: String::new(),
                ..base.clone()
            },
            "issuer",
        ),
        (
            "empty_client_id",
            "an empty client id",
            ChallengeParams {
                client_id: String::new(),
                ..base.clone()
            },
            "client_id",
        ),
        (
            "empty_client_name",
            "an empty client name",
            ChallengeParams {
                client_name: String::new(),
                ..base.clone()
            },
            "client_name",
        ),
        (
            "empty_redirect_origin",
            "an empty redirect origin",
            ChallengeParams {
                redirect_origin: String::new(),
                ..base.clone()
            },
            "redirect_origin",
        ),
        (
            "empty_client_ip",
            "an empty client ip (absent is null, not empty)",
            ChallengeParams {
                client_ip: Some(String::new()),
                ..base.clone()
            },
            "client_ip",
        ),
        (
            "match_code_100",
            "match code 100",
            ChallengeParams {
                match_code: 100,
                ..base.clone()
            },
            "match_code",
        ),
    ] {
        push(name, description, p, limit(field));
    }

    // The text rule, in every text field.
    let classes: [(char, &str); 18] = [
        ('\u{0}', "U+0000 NUL (Cc)"),
        ('\u{1b}', "U+001B ESC (Cc): a terminal escape"),
        ('\u{7f}', "U+007F DEL (Cc)"),
        ('\u{85}', "U+0085 NEL (Cc, C1)"),
        ('\u{2028}', "U+2028 LINE SEPARATOR (Zl)"),
        ('\u{2029}', "U+2029 PARAGRAPH SEPARATOR (Zp)"),
        ('\u{202A}', "U+202A LEFT-TO-RIGHT EMBEDDING (bidi)"),
        ('\u{202B}', "U+202B RIGHT-TO-LEFT EMBEDDING (bidi)"),
        ('\u{202C}', "U+202C POP DIRECTIONAL FORMATTING (bidi)"),
        ('\u{202D}', "U+202D LEFT-TO-RIGHT OVERRIDE (bidi)"),
        ('\u{202E}', "U+202E RIGHT-TO-LEFT OVERRIDE (bidi)"),
        ('\u{2066}', "U+2066 LEFT-TO-RIGHT ISOLATE (bidi)"),
        ('\u{2067}', "U+2067 RIGHT-TO-LEFT ISOLATE (bidi)"),
        ('\u{2068}', "U+2068 FIRST STRONG ISOLATE (bidi)"),
        ('\u{2069}', "U+2069 POP DIRECTIONAL ISOLATE (bidi)"),
        ('\u{200E}', "U+200E LEFT-TO-RIGHT MARK (bidi)"),
        ('\u{200F}', "U+200F RIGHT-TO-LEFT MARK (bidi)"),
        ('\u{061C}', "U+061C ARABIC LETTER MARK (bidi)"),
    ];
    for (c, what) in classes {
        let p = ChallengeParams {
            client_name: format!("Example{c}Shop"),
            ..base.clone()
        };
        push(
            &format!("text_client_name_u{:04x}", u32::from(c)),
            &format!("the client name holds {what}"),
            p,
            refused("text", Some("client_name")),
        );
    }
    for (field, c) in [
        ("issuer", '\n'),
        ("client_id", '\u{202E}'),
        ("redirect_origin", '\u{2066}'),
        ("client_ip", '\u{2028}'),
    ] {
        let mut p = base.clone();
        let v = format!("a{c}b");
        match field {
            "issuer" => p.issuer = v,
            "client_id" => p.client_id = v,
            "redirect_origin" => p.redirect_origin = v,
            _ => p.client_ip = Some(v),
        }
        push(
            &format!("text_{field}_u{:04x}", u32::from(c)),
            &format!("the {field} holds U+{:04X}", u32::from(c)),
            p,
            refused("text", Some(field)),
        );
    }

    // Encodings.
    let bytes = encode_challenge(&base);
    let enc =
        |n: &str, d: &str, b: Vec<u8>| (n.to_string(), d.to_string(), b, refused("encoding", None));
    out.push(enc(
        "encoding_invalid_utf8",
        "the client name's S replaced by 0xff, not UTF-8",
        replace(&bytes, b"Example Shop", b"Example \xffhop"),
    ));
    let mut trailing = bytes.clone();
    trailing.push(0);
    out.push(enc(
        "encoding_trailing_byte",
        "a valid challenge and one more byte",
        trailing,
    ));
    out.push(enc(
        "encoding_unknown_version",
        "version 2",
        replace(&bytes, &[0xab, 0x00, 0x01], &[0xab, 0x00, 0x02]),
    ));
    let without_ip = {
        let b = replace(&bytes, &[0xab], &[0xaa]);
        let ip = encode_text_item(base.client_ip.as_deref().unwrap());
        b[..b.len() - 1 - ip.len()].to_vec()
    };
    out.push(enc(
        "encoding_missing_key",
        "a map of 10 pairs without key 10 (client ip)",
        without_ip,
    ));
    let mut extra = replace(&bytes, &[0xab], &[0xac]);
    extra.extend_from_slice(&[0x0c, 0xf5]);
    out.push(enc(
        "encoding_extra_key",
        "a twelfth pair, key 12 (unknown), in place of key 11",
        extra,
    ));
    let with_confirm = |value: u8| {
        let mut b = replace(&bytes, &[0xab], &[0xac]);
        b.extend_from_slice(&[0x0b, value]);
        b
    };
    assert_eq!(
        with_confirm(0xf5),
        encode_challenge(&ChallengeParams {
            confirm: true,
            ..base.clone()
        })
    );
    out.push(enc(
        "encoding_confirm_false",
        "key 11 written as false: a challenge that asks no confirmation leaves key 11 out, so false \
         written out is not canonical",
        with_confirm(0xf4),
    ));
    out.push(enc(
        "encoding_confirm_integer",
        "key 11 written as the integer 1 instead of true",
        with_confirm(0x01),
    ));
    out.push(enc(
        "encoding_confirm_null",
        "key 11 written as null",
        with_confirm(0xf6),
    ));
    let confirm_bytes = with_confirm(0xf5);
    out.push(enc(
        "encoding_confirm_in_an_11_pair_map",
        "key 11 (true) after key 10 in a map that announces 11 pairs: one pair too many",
        replace(&confirm_bytes, &[0xac], &[0xab]),
    ));
    out.push(enc(
        "encoding_non_canonical_integer",
        "the match code 42 written as 0x19 0x00 0x2a",
        replace(&bytes, &[0x09, 0x18, 0x2a], &[0x09, 0x19, 0x00, 0x2a]),
    ));
    let ip = encode_text_item(base.client_ip.as_deref().unwrap());
    let mut ip_bytes = ip.clone();
    ip_bytes[0] -= 0x20; // major type 3 -> 2
    out.push(enc(
        "encoding_client_ip_as_bytes",
        "the client ip as a byte string instead of a text string",
        replace(&bytes, &ip, &ip_bytes),
    ));
    let mut id31 = vec![0x58, 0x1f];
    id31.extend_from_slice(&ego().as_bytes()[..31]);
    let mut id32 = vec![0x58, 0x20];
    id32.extend_from_slice(ego().as_bytes());
    out.push(enc(
        "encoding_ego_id_31_bytes",
        "an ego id of 31 bytes",
        replace(&bytes, &id32, &id31),
    ));
    out.push(enc(
        "encoding_indefinite_map",
        "the challenge map with an indefinite-length head",
        [&[0xbf][..], &bytes[1..], &[0xff]].concat(),
    ));
    let mut padded = bytes.clone();
    padded.resize(2049, 0);
    out.push((
        "too_large".into(),
        "a valid challenge padded to 2049 bytes: refused on size before parsing (challenges within the \
         field limits are far below 2048 bytes, so the size cap is only reached this way)"
            .into(),
        padded,
        refused("too_large", None),
    ));
    out
}

fn encode_text_item(s: &str) -> Vec<u8> {
    let mut e = Encoder::new();
    e.text(s);
    e.into_bytes()
}

/// An approval map from its parts; `seq` is the raw item of key 2, or
/// none to leave the key out; `by`, the raw item of key 4, or none for a
/// legacy approval.
fn encode_approved(pk: &[u8], seq: Option<&[u8]>, sig: &[u8], by: Option<&[u8]>) -> Vec<u8> {
    let mut e = Encoder::new();
    e.map(3 + usize::from(seq.is_some()) + usize::from(by.is_some()));
    e.key(0);
    e.uint(0);
    e.key(1);
    e.bytes(pk);
    if let Some(seq) = seq {
        e.key(2);
        e.raw(seq);
    }
    e.key(3);
    e.bytes(sig);
    if let Some(by) = by {
        e.key(4);
        e.raw(by);
    }
    e.into_bytes()
}

fn reason_name(r: DenyReason) -> &'static str {
    match r {
        DenyReason::User => "user",
        DenyReason::RateLimited => "rate_limited",
        DenyReason::Banned => "banned",
        DenyReason::UnknownEgo => "unknown_ego",
        DenyReason::Expired => "expired",
        DenyReason::Invalid => "invalid",
    }
}

const REASONS: [DenyReason; 6] = [
    DenyReason::User,
    DenyReason::RateLimited,
    DenyReason::Banned,
    DenyReason::UnknownEgo,
    DenyReason::Expired,
    DenyReason::Invalid,
];

fn response_cases() -> Vec<(String, String, Vec<u8>, Value)> {
    let key = SecretKey::from_seed(&[0x77; 32]);
    let ch = LoginChallenge::new(params(ego(), NOW)).unwrap();
    let approved = |seq: u64| ch.approve(&key, seq, ApprovedBy::Person);
    let expect_approved = |r: &LoginResponse| {
        let LoginResponse::Approved(a) = r else {
            unreachable!()
        };
        json!({
            "valid": true,
            "kind": "approved",
            "ego_pk": hex::encode(a.ego_pk.as_bytes()),
            "cert_seq": a.cert_seq,
            "approved_by": a.approved_by.map(ApprovedBy::as_str),
            "signature": hex::encode(a.sig.0),
        })
    };
    let mut out = Vec::new();
    for seq in [1, u64::MAX] {
        let r = approved(seq);
        out.push((
            format!("valid_approved_seq_{seq}"),
            format!("an approval by the person naming certificate seq {seq}"),
            r.to_cbor(),
            expect_approved(&r),
        ));
    }
    for by in ApprovedBy::ALL {
        let r = ch.approve(&key, 1, by);
        out.push((
            format!("valid_approved_by_{}", by.as_str()),
            format!(
                "an approval with key 4 = {} ({}), a map of 5 pairs",
                by.code(),
                by.as_str()
            ),
            r.to_cbor(),
            expect_approved(&r),
        ));
    }
    let legacy = LoginResponse::Approved(cyrcles_core::login::Approval {
        approved_by: None,
        sig: ch.sign(&key),
        ..match approved(1) {
            LoginResponse::Approved(a) => a,
            LoginResponse::Denied(_) => unreachable!(),
        }
    });
    out.push((
        "valid_approved_legacy".into(),
        "a legacy approval: 4 pairs, no key 4, the signature in the context cyrcles/v1/login (it does \
         not say how it was approved: approved_by is null)"
            .into(),
        legacy.to_cbor(),
        expect_approved(&legacy),
    ));
    for r in REASONS {
        let d = LoginResponse::Denied(r);
        out.push((
            format!("valid_denied_{}", reason_name(r)),
            format!("a denial with reason {}", reason_name(r)),
            d.to_cbor(),
            json!({ "valid": true, "kind": "denied", "reason": reason_name(r) }),
        ));
    }
    let ok = approved(1).to_cbor();
    let enc =
        |n: &str, d: &str, b: Vec<u8>| (n.to_string(), d.to_string(), b, refused("encoding", None));
    out.push(enc(
        "encoding_unknown_deny_reason",
        "a denial with reason 6",
        vec![0xa2, 0x00, 0x01, 0x01, 0x06],
    ));
    out.push(enc(
        "encoding_unknown_kind",
        "a response of kind 2",
        vec![0xa2, 0x00, 0x02, 0x01, 0x00],
    ));
    out.push(enc(
        "encoding_denied_extra_key",
        "a denial with a third pair",
        vec![0xa3, 0x00, 0x01, 0x01, 0x00, 0x02, 0x00],
    ));
    let pk = key.public().0;
    let sig = ch.sign_approval(&key, ApprovedBy::Person).0;
    let person: &[u8] = &[0x00];
    out.push(enc(
        "encoding_approved_key_31_bytes",
        "an approval whose ego key has 31 bytes",
        encode_approved(&pk[..31], Some(&[0x01]), &sig, Some(person)),
    ));
    out.push(enc(
        "encoding_approved_signature_63_bytes",
        "an approval whose signature has 63 bytes",
        encode_approved(&pk, Some(&[0x01]), &sig[..63], Some(person)),
    ));
    out.push(enc(
        "encoding_approved_without_seq",
        "an approval map of 4 pairs without the certificate seq (key 2)",
        encode_approved(&pk, None, &sig, Some(person)),
    ));
    out.push(enc(
        "encoding_approved_negative_seq",
        "an approval whose seq is the negative integer -1 (0x20, major type 1)",
        encode_approved(&pk, Some(&[0x20]), &sig, Some(person)),
    ));
    out.push(enc(
        "encoding_approved_by_unknown",
        "an approval whose method (key 4) is 3, not one of 0, 1, 2",
        encode_approved(&pk, Some(&[0x01]), &sig, Some(&[0x03])),
    ));
    out.push(enc(
        "encoding_approved_by_as_text",
        "an approval whose method is the text \"person\" instead of 0",
        encode_approved(&pk, Some(&[0x01]), &sig, Some(b"\x66person")),
    ));
    out.push(enc(
        "encoding_approved_by_non_canonical",
        "an approval whose method 1 is written as 0x18 0x01",
        encode_approved(&pk, Some(&[0x01]), &sig, Some(&[0x18, 0x01])),
    ));
    let mut sixth = encode_approved(&pk, Some(&[0x01]), &sig, Some(person));
    sixth[0] = 0xa6;
    sixth.extend_from_slice(&[0x05, 0x00]);
    out.push(enc(
        "encoding_approved_extra_key",
        "an approval with a sixth pair, key 5",
        sixth,
    ));
    assert_eq!(encode_approved(&pk, Some(&[0x01]), &sig, Some(person)), ok);
    let mut trailing = ok.clone();
    trailing.push(0xf6);
    out.push(enc(
        "encoding_trailing_byte",
        "an approval and one more byte",
        trailing,
    ));
    let mut padded = ok.clone();
    padded.resize(257, 0);
    out.push((
        "too_large".into(),
        "an approval padded to 257 bytes: refused on size before parsing".into(),
        padded,
        refused("too_large", None),
    ));
    out
}

pub fn challenges() -> Value {
    let cs: Vec<Value> = challenge_cases()
        .into_iter()
        .map(|(name, description, bytes, expect)| {
            json!({ "name": name, "description": description, "challenge": hex::encode(bytes), "expect": expect })
        })
        .collect();
    let rs: Vec<Value> = response_cases()
        .into_iter()
        .map(|(name, description, bytes, expect)| {
            json!({ "name": name, "description": description, "response": hex::encode(bytes), "expect": expect })
        })
        .collect();
    json!({
        "about": "Login challenges and responses as a decoder receives them (docs/protocol.md, sections 8 and 10). \
                  Decode `challenge` (or `response`); `expect` gives the decoded fields, or the refusal: `error` \
                  (too_large, encoding, limit, text) and, for limit and text, the `field` at fault. Each refused \
                  case breaks one rule only.",
        "challenges": cs,
        "responses": rs,
    })
}

fn check_challenge(c: &Value) {
    let name = c["name"].as_str().unwrap();
    let bytes = hex_field(c, "challenge");
    let expect = &c["expect"];
    match LoginChallenge::decode_bytes(&bytes) {
        Ok(ch) => {
            assert!(expect["valid"].as_bool().unwrap(), "{name} decoded");
            let p = ch.params();
            assert_eq!(expect["issuer"], p.issuer, "{name}");
            assert_eq!(expect["client_id"], p.client_id, "{name}");
            assert_eq!(expect["client_name"], p.client_name, "{name}");
            assert_eq!(expect["redirect_origin"], p.redirect_origin, "{name}");
            assert_eq!(expect["ego_id"], p.ego_id.to_string(), "{name}");
            assert_eq!(expect["nonce"], hex::encode(&p.nonce), "{name}");
            assert_eq!(expect["issued_at"], p.issued_at.secs(), "{name}");
            assert_eq!(expect["expires_at"], p.expires_at.secs(), "{name}");
            assert_eq!(expect["match_code"], p.match_code, "{name}");
            assert_eq!(expect["client_ip"], json!(p.client_ip), "{name}");
            assert_eq!(expect["confirm"], p.confirm, "{name}");
            assert_eq!(ch.to_cbor(), bytes, "{name} re-encodes");
        }
        Err(e) => {
            assert!(!expect["valid"].as_bool().unwrap(), "{name}: {e}");
            assert_eq!(expect["error"], e.code(), "{name}: {e}");
            assert_eq!(expect["field"], json!(e.field()), "{name}: {e}");
        }
    }
}

fn check_response(c: &Value) {
    let name = c["name"].as_str().unwrap();
    let expect = &c["expect"];
    match LoginResponse::decode_bytes(&hex_field(c, "response")) {
        Ok(LoginResponse::Approved(a)) => {
            assert_eq!(expect["kind"], "approved", "{name}");
            assert_eq!(expect["ego_pk"], hex::encode(a.ego_pk.as_bytes()), "{name}");
            assert_eq!(expect["cert_seq"], a.cert_seq, "{name}");
            assert_eq!(
                expect["approved_by"],
                json!(a.approved_by.map(ApprovedBy::as_str)),
                "{name}"
            );
            assert_eq!(expect["signature"], hex::encode(a.sig.0), "{name}");
        }
        Ok(LoginResponse::Denied(r)) => {
            assert_eq!(expect["kind"], "denied", "{name}");
            assert_eq!(expect["reason"], reason_name(r), "{name}");
        }
        Err(e) => {
            assert!(!expect["valid"].as_bool().unwrap(), "{name}: {e}");
            assert_eq!(expect["error"], e.code(), "{name}: {e}");
        }
    }
}

pub fn read(name: &str) -> Value {
    let text = std::fs::read_to_string(crate::vectors::dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn committed_challenge_and_response_vectors_decode_as_stated() {
    if crate::vectors::regenerating() {
        return;
    }
    let v = read("challenges.json");
    let cs = v["challenges"].as_array().unwrap();
    assert!(cs.len() >= 40);
    cs.iter().for_each(check_challenge);
    let rs = v["responses"].as_array().unwrap();
    assert!(rs.len() >= 15);
    rs.iter().for_each(check_response);
    // The file covers both values of confirm and every method, legacy
    // included.
    for confirm in [false, true] {
        assert!(
            cs.iter().any(|c| c["expect"]["confirm"] == confirm),
            "no challenge with confirm = {confirm}"
        );
    }
    for by in ["person", "remembered_site", "policy"] {
        assert!(
            rs.iter().any(|r| r["expect"]["approved_by"] == by),
            "no response approved by {by}"
        );
    }
    assert!(
        rs.iter()
            .any(|r| r["expect"]["kind"] == "approved" && r["expect"]["approved_by"].is_null()),
        "no legacy approval"
    );
}
