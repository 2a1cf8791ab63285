#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use super::*;

const URL: &str = "https://bridge.example/token";
const NOW: i64 = 1_800_000_000;

fn window() -> Window {
    Window {
        now: NOW,
        max_age: 60,
        max_future: 5,
    }
}

fn target() -> Target<'static> {
    Target {
        method: "POST",
        url: URL,
        access_token: None,
    }
}

fn ed25519() -> Ed25519KeyPair {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
}

fn jwk_of(kp: &Ed25519KeyPair) -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "x": base64url::encode(kp.public_key().as_ref()) })
}

fn sign(kp: &Ed25519KeyPair, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        base64url::encode(header.to_string().as_bytes()),
        base64url::encode(claims.to_string().as_bytes())
    );
    let sig = kp.sign(input.as_bytes());
    format!("{input}.{}", base64url::encode(sig.as_ref()))
}

fn claims() -> Value {
    json!({ "jti": "j1", "htm": "POST", "htu": URL, "iat": NOW })
}

fn header(kp: &Ed25519KeyPair) -> Value {
    json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk_of(kp) })
}

#[test]
fn a_good_proof_names_its_keys_rfc7638_thumbprint() {
    let kp = ed25519();
    let p = verify(&sign(&kp, &header(&kp), &claims()), &target(), &window()).unwrap();
    let x = base64url::encode(kp.public_key().as_ref());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    assert_eq!(p.jkt(), base64url::encode(&crypto::sha256(&canonical)));
    // A query or fragment on htu is ignored (RFC 9449 §4.3).
    let mut c = claims();
    c["htu"] = json!(format!("{URL}?a=1#f"));
    assert!(verify(&sign(&kp, &header(&kp), &c), &target(), &window()).is_ok());
}

#[test]
fn es256_proofs_verify() {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
    let point = kp.public_key().as_ref();
    let h = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": {
        "kty": "EC", "crv": "P-256",
        "x": base64url::encode(&point[1..33]), "y": base64url::encode(&point[33..]) } });
    let input = format!(
        "{}.{}",
        base64url::encode(h.to_string().as_bytes()),
        base64url::encode(claims().to_string().as_bytes())
    );
    let sig = kp.sign(&rng, input.as_bytes()).unwrap();
    let proof = format!("{input}.{}", base64url::encode(sig.as_ref()));
    assert!(verify(&proof, &target(), &window()).is_ok());
    // The same key declared as Ed25519: refused.
    let mut wrong = h.clone();
    wrong["alg"] = json!("EdDSA");
    let input = format!(
        "{}.{}",
        base64url::encode(wrong.to_string().as_bytes()),
        base64url::encode(claims().to_string().as_bytes())
    );
    let sig = kp.sign(&rng, input.as_bytes()).unwrap();
    let proof = format!("{input}.{}", base64url::encode(sig.as_ref()));
    assert_eq!(
        verify(&proof, &target(), &window()).unwrap_err(),
        ProofError::Jwk
    );
}

#[test]
fn every_rule_refuses_its_own_violation() {
    let kp = ed25519();
    let other = ed25519();
    let h = header(&kp);
    let with = |k: &str, v: Value| {
        let mut c = claims();
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v;
        }
        sign(&kp, &h, &c)
    };
    let head = |k: &str, v: Value| {
        let mut x = h.clone();
        x[k] = v;
        sign(&kp, &x, &claims())
    };
    let mut private = jwk_of(&kp);
    private["d"] = json!(base64url::encode(&[7; 32]));
    let good = sign(&kp, &h, &claims());
    let (input, _) = good.rsplit_once('.').unwrap();
    let by_other = format!(
        "{input}.{}",
        base64url::encode(other.sign(input.as_bytes()).as_ref())
    );
    let cases: Vec<(String, ProofError)> = vec![
        (with("htm", json!("GET")), ProofError::Htm),
        (
            with("htu", json!("https://bridge.example/userinfo")),
            ProofError::Htu,
        ),
        (
            with("htu", json!("https://evil.example/token")),
            ProofError::Htu,
        ),
        (with("iat", json!(NOW - 61)), ProofError::Iat),
        (with("iat", json!(NOW + 6)), ProofError::Iat),
        (
            with("iat", json!(1.5)),
            ProofError::Malformed("the claims are not valid"),
        ),
        (with("jti", json!("")), ProofError::Jti),
        (with("jti", json!("j".repeat(MAX_JTI + 1))), ProofError::Jti),
        (with("jti", Value::Null), ProofError::Missing("jti")),
        (with("iat", Value::Null), ProofError::Missing("iat")),
        (head("typ", json!("JWT")), ProofError::Typ),
        (head("alg", json!("none")), ProofError::Alg),
        (head("alg", json!("HS256")), ProofError::Alg),
        (head("alg", json!("RS256")), ProofError::Alg),
        (head("crit", json!(["exp"])), ProofError::Crit),
        (head("jwk", private), ProofError::PrivateKey),
        (
            head("jwk", json!({ "kty": "oct", "k": "AAAA" })),
            ProofError::PrivateKey,
        ),
        (
            head(
                "jwk",
                json!({ "kty": "OKP", "crv": "Ed25519", "x": "AAAA" }),
            ),
            ProofError::Jwk,
        ),
        (by_other, ProofError::Signature),
        (
            format!("{input}."),
            ProofError::Malformed("expected three base64url segments"),
        ),
        ("x".repeat(MAX_PROOF_LEN + 1), ProofError::TooLarge),
    ];
    for (proof, want) in cases {
        assert_eq!(
            verify(&proof, &target(), &window()).err(),
            Some(want),
            "{want:?}"
        );
    }
    // ath, at a resource endpoint.
    let at = Target {
        access_token: Some("tok"),
        ..target()
    };
    assert_eq!(verify(&good, &at, &window()).err(), Some(ProofError::Ath));
    let ok = with("ath", json!(ath("tok")));
    assert!(verify(&ok, &at, &window()).is_ok());
    let wrong = with("ath", json!(ath("other")));
    assert_eq!(verify(&wrong, &at, &window()).err(), Some(ProofError::Ath));
}
