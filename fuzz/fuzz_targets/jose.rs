//! JOSE at the bridge (`bridge/src/jose.rs`): compact JWS parsing, header
//! parsing, and verification with the bridge's own keys, as for an
//! `id_token_hint` at `/authorize` and `/logout` (`KeyRing::verify_own`:
//! `peek_kid`, the key of that id, `verify_jwt`).
//!
//! Inputs: any text; a token assembled from arbitrary header, payload and
//! signature bytes; or claims the bridge signs, then edits on the wire.
//! Properties: nothing the bridge did not sign verifies under any of its
//! keys (so no `alg` or `kid` trick, no `none`); `peek_kid` returns the
//! `kid` member of a header that is a JSON object without duplicates; what
//! the bridge signs verifies back to the same claims under that key only,
//! and any edit to it is refused.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cyrcles_bridge::jose::{Alg, MAX_JWT_LEN, SigningKey, peek_kid};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// One key per algorithm: fixed test keys (`fuzz/keys/`, made with
/// `openssl genpkey`), so that inputs replay the same way and no process
/// spends its time generating RSA keys.
fn keys() -> &'static [SigningKey] {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            (Alg::RS256, &include_bytes!("../keys/rs256.pk8")[..]),
            (Alg::ES256, &include_bytes!("../keys/es256.pk8")[..]),
            (Alg::EdDSA, &include_bytes!("../keys/eddsa.pk8")[..]),
        ]
        .iter()
        .map(|(a, der)| SigningKey::from_pkcs8(*a, der).unwrap_or_else(|e| panic!("{a:?}: {e}")))
        .collect()
    })
}

/// The members `peek_kid` must have found.
#[derive(Deserialize)]
struct Named {
    #[allow(dead_code)]
    alg: String,
    kid: String,
}

/// `KeyRing::verify_own` without the store: pick the key by `kid`.
fn verify_own(jwt: &str) -> Option<Value> {
    let kid = peek_kid(jwt).ok()?;
    let key = keys().iter().find(|k| k.kid() == kid)?;
    key.verify_jwt(jwt).ok()
}

#[derive(Arbitrary, Debug)]
enum Input {
    Text(String),
    Parts {
        header: Vec<u8>,
        payload: Vec<u8>,
        sig: Vec<u8>,
        /// Put the `alg` and `kid` of key `key % 3` in front of the header.
        steal: Option<u8>,
    },
    Signed {
        claims: Vec<u8>,
        typ: Option<String>,
        key: u8,
        edits: Vec<(u16, u8)>,
    },
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    match input {
        Input::Text(jwt) => forged(&jwt),
        Input::Parts {
            header,
            payload,
            sig,
            steal,
        } => {
            let header = match steal {
                Some(i) => {
                    let k = &keys()[usize::from(i) % 3];
                    let mut h = format!(r#"{{"alg":"{}","kid":"{}""#, k.alg().as_str(), k.kid())
                        .into_bytes();
                    // The rest of an object, or anything at all.
                    h.extend_from_slice(&header);
                    h
                }
                None => header,
            };
            let jwt = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(&header),
                URL_SAFE_NO_PAD.encode(&payload),
                URL_SAFE_NO_PAD.encode(&sig)
            );
            forged(&jwt);
        }
        Input::Signed {
            claims,
            typ,
            key,
            edits,
        } => signed(&claims, typ.as_deref(), key, &edits),
    }
});

/// A token the bridge never signed.
fn forged(jwt: &str) {
    for k in keys() {
        assert!(
            k.verify_jwt(jwt).is_err(),
            "a forged token verified under {:?}",
            k.alg()
        );
    }
    assert!(verify_own(jwt).is_none());
    check_peek(jwt);
}

/// `peek_kid` succeeds only on a header that is a JSON object with a
/// string `alg` and a string `kid`, which it returns.
fn check_peek(jwt: &str) {
    let Ok(kid) = peek_kid(jwt) else {
        return;
    };
    assert!(jwt.len() <= MAX_JWT_LEN);
    assert_eq!(jwt.split('.').count(), 3);
    let first = jwt.split('.').next().unwrap_or_default();
    let header = URL_SAFE_NO_PAD
        .decode(first)
        .unwrap_or_else(|e| panic!("peek_kid read a header that is not base64url: {e}"));
    // An object (the keys are read, the values skipped as the bridge skips
    // the members it does not name: finding N1 in docs/security.md)...
    serde_json::from_slice::<BTreeMap<String, IgnoredAny>>(&header)
        .unwrap_or_else(|e| panic!("peek_kid read a header that is not a JSON object: {e}"));
    // ... whose `alg` is a string and whose `kid` is the one returned.
    let named: Named = serde_json::from_slice(&header)
        .unwrap_or_else(|e| panic!("peek_kid read a header without alg and kid: {e}"));
    assert_eq!(named.kid, kid);
}

fn signed(claims: &[u8], typ: Option<&str>, key: u8, edits: &[(u16, u8)]) {
    let claims = match serde_json::from_slice::<Value>(claims) {
        Ok(v @ Value::Object(_)) => v,
        Ok(v) => serde_json::json!({ "v": v }),
        Err(_) => serde_json::json!({ "t": String::from_utf8_lossy(claims) }),
    };
    let k = &keys()[usize::from(key) % 3];
    let jwt = k
        .sign_jwt(&claims, typ)
        .unwrap_or_else(|e| panic!("sign_jwt: {e}"));
    if jwt.len() > MAX_JWT_LEN {
        assert!(k.verify_jwt(&jwt).is_err(), "a token over the cap verified");
        return;
    }
    // What verifies is the payload as signed: the claims read back from
    // their own JSON (serde_json's float parsing is not exact without its
    // `float_roundtrip` feature, so a float may not come back bit for
    // bit: N2 in docs/security.md, not a bridge bug).
    let payload = serde_json::to_vec(&claims).unwrap_or_else(|e| panic!("{e}"));
    let signed: Value = serde_json::from_slice(&payload).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        k.verify_jwt(&jwt).ok().as_ref(),
        Some(&signed),
        "claims do not survive signing"
    );
    assert_eq!(verify_own(&jwt).as_ref(), Some(&signed));
    assert_eq!(peek_kid(&jwt).ok().as_deref(), Some(k.kid()));
    check_peek(&jwt);
    for other in keys().iter().filter(|o| o.kid() != k.kid()) {
        assert!(
            other.verify_jwt(&jwt).is_err(),
            "verified under another key"
        );
    }
    let mut bytes = jwt.clone().into_bytes();
    cyrcles_fuzz::mutate(&mut bytes, edits);
    let Ok(edited) = String::from_utf8(bytes) else {
        return;
    };
    if edited != jwt {
        for o in keys() {
            assert!(
                o.verify_jwt(&edited).is_err(),
                "an edited token verified: {edited}"
            );
        }
        check_peek(&edited);
    }
}
