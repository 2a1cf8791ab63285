//! Local signing requests (`core/src/local.rs`): what the agent signs for
//! a program on the owner's machine.
//!
//! The input is an encoded request. Canonical decoding; a decoded request
//! passes its own field checks; the ego key's local signature over it
//! verifies, a changed one does not, and neither a login signature over
//! the same bytes nor a local signature read as a login approval is
//! accepted (the contexts keep the two apart).

#![no_main]

use cyrcles_core::Context;
use cyrcles_core::cbor::Encode;
use cyrcles_core::local::{LocalRequest, MAX_LOCAL_REQUEST_SIZE};
use cyrcles_core::login::LoginChallenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: cyrcles_fuzz::write_seeds("local", cyrcles_fuzz::seeds::local_seeds),
    |data: &[u8]| {
    let Ok(r) = LocalRequest::decode_bytes(data) else {
        return;
    };
    assert!(data.len() <= MAX_LOCAL_REQUEST_SIZE);
    assert_eq!(r.to_cbor(), data, "non-canonical local request accepted");
    assert_eq!(LocalRequest::new(r.params().clone()).as_ref(), Ok(&r));

    let key = cyrcles_fuzz::key(3);
    let pk = key.public();
    let sig = r.sign(&key);
    assert!(r.verify(&pk, &sig).is_ok());
    let mut bad = sig;
    bad.0[63] ^= 0x10;
    assert!(r.verify(&pk, &bad).is_err());
    assert!(r.verify(&cyrcles_fuzz::key(4).public(), &sig).is_err());
    let login_sig = key.sign(Context::Login, data);
    assert!(r.verify(&pk, &login_sig).is_err(), "a login signature passed as local");
    // Bytes that are both a local request and a login challenge cannot
    // exist (different map sizes), so a local signature never answers a
    // challenge.
    assert!(LoginChallenge::decode_bytes(data).is_err());
    }
);
