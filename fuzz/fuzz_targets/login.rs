//! The login protocol (`core/src/login.rs`): challenge and response
//! decoding, and the bridge's `verify_approval` on decoded inputs.
//!
//! First byte, modulo 4:
//! * 0: the rest is a challenge as an agent receives it. Canonical
//!   decoding; a decoded challenge passes its own field checks; signed by
//!   the fixture ego's key (with the challenge's ego id replaced by the
//!   fixture's), `verify_approval` accepts exactly inside the challenge's
//!   window, and refuses a changed signature, another challenge, a
//!   signature made in the local-request context, a signature made for
//!   another way of approving or for the legacy form; a challenge with
//!   `confirm` is refused unless the person approved.
//! * 1: the rest is a response as a bridge receives it. Canonical
//!   decoding; an approval the fixture ego never made is refused.
//! * 2: the rest describes challenge fields; whatever `LoginChallenge::new`
//!   accepts encodes within the cap and decodes back to itself.
//! * 3: the rest is an ego id typed by a person; what parses prints back
//!   to the same id, and is the only text of that id up to case.

#![no_main]

use std::str::FromStr;

use arbitrary::{Arbitrary, Unstructured};
use cyrcles_core::cbor::Encode;
use cyrcles_core::login::{
    Approval, ApprovedBy, ChallengeParams, LoginChallenge, LoginError, LoginResponse,
    MAX_CHALLENGE_SIZE, MAX_RESPONSE_SIZE, verify_approval,
};
use cyrcles_core::{Context, EgoId, UnixTime};
use cyrcles_fuzz::{NOW, ego};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => challenge_bytes(rest),
        1 => response_bytes(rest),
        2 => {
            if let Ok(f) = Fields::arbitrary_take_rest(Unstructured::new(rest)) {
                fields(f);
            }
        }
        _ => ego_text(rest),
    }
});

fn approval_of(r: LoginResponse) -> Approval {
    match r {
        LoginResponse::Approved(a) => a,
        LoginResponse::Denied(d) => panic!("approve() gave a denial: {d:?}"),
    }
}

fn challenge_bytes(bytes: &[u8]) {
    let Ok(c) = LoginChallenge::decode_bytes(bytes) else {
        return;
    };
    assert!(bytes.len() <= MAX_CHALLENGE_SIZE);
    assert_eq!(c.to_cbor(), bytes, "non-canonical challenge accepted");
    assert_eq!(LoginChallenge::new(c.params().clone()).as_ref(), Ok(&c));

    let e = ego();
    let mine = ChallengeParams {
        ego_id: e.verified.ego_id(),
        ..c.params().clone()
    };
    let mine = LoginChallenge::new(mine).unwrap_or_else(|err| panic!("same fields refused: {err}"));
    let approval = approval_of(mine.approve(&e.new.ego, 1, ApprovedBy::Person));
    let p = mine.params();
    let cert = e.verified.cert();
    for now in [
        p.issued_at.minus(1),
        p.issued_at,
        UnixTime::from_secs(p.issued_at.secs() / 2 + p.expires_at.secs() / 2),
        p.expires_at,
        p.expires_at.plus(1),
        cert.not_before,
        cert.not_after,
    ] {
        let got = verify_approval(&mine, &approval, &e.verified, now);
        let should = p.issued_at <= now && now <= p.expires_at && e.verified.key_usable_at(now);
        assert_eq!(got.is_ok(), should, "verify_approval at {now}: {got:?}");
        if should {
            check_refusals(&mine, &approval, now);
            // Without the person: refused exactly when the site asked for
            // the person.
            let policy = approval_of(mine.approve(&e.new.ego, 1, ApprovedBy::Policy));
            let got = verify_approval(&mine, &policy, &e.verified, now);
            if p.confirm {
                assert_eq!(got, Err(LoginError::NotConfirmed));
            } else {
                assert_eq!(got, Ok(()));
            }
        }
    }
    // The challenge as received names its own ego: the fixture's approval
    // of it is valid only if that ego is the fixture's.
    let theirs = approval_of(c.approve(&e.new.ego, 1, ApprovedBy::Person));
    let got = verify_approval(&c, &theirs, &e.verified, p.issued_at);
    if c.params().ego_id != e.verified.ego_id() {
        assert_eq!(got, Err(LoginError::WrongEgo));
    }
}

/// At a time the genuine approval is valid, altered ones are not.
fn check_refusals(c: &LoginChallenge, a: &Approval, now: UnixTime) {
    let e = ego();
    for bit in [0, 7, 255, 511] {
        let mut bad = *a;
        bad.sig.0[bit / 8] ^= 1 << (bit % 8);
        assert!(
            verify_approval(c, &bad, &e.verified, now).is_err(),
            "flipped bit {bit} accepted"
        );
    }
    // The same bytes signed for a local program are no login.
    let local = Approval {
        sig: e.new.ego.sign(Context::Local, &c.to_cbor()),
        ..*a
    };
    assert!(verify_approval(c, &local, &e.verified, now).is_err());
    // A signature for one way of approving is not one for another, nor a
    // legacy signature.
    for by in [ApprovedBy::RememberedSite, ApprovedBy::Policy] {
        let relabelled = Approval {
            approved_by: Some(by),
            ..*a
        };
        assert!(verify_approval(c, &relabelled, &e.verified, now).is_err());
    }
    let as_legacy = Approval {
        approved_by: None,
        ..*a
    };
    assert!(verify_approval(c, &as_legacy, &e.verified, now).is_err());
    // Another challenge (one nonce byte changed) is not approved by it.
    let mut p = c.params().clone();
    if let Some(b) = p.nonce.first_mut() {
        *b ^= 1;
    }
    if let Ok(other) = LoginChallenge::new(p) {
        assert!(verify_approval(&other, a, &e.verified, now).is_err());
    }
}

/// A challenge of the fixture ego, as a bridge would send it at `NOW`.
fn fixture_challenge() -> LoginChallenge {
    let e = ego();
    LoginChallenge::new(ChallengeParams {
        issuer: "https://bridge.example".into(),
        client_id: "site".into(),
        client_name: "A site".into(),
        redirect_origin: "https://site.example".into(),
        ego_id: e.verified.ego_id(),
        nonce: vec![7; 16],
        issued_at: UnixTime::from_secs(NOW),
        expires_at: UnixTime::from_secs(NOW + 60),
        match_code: 42,
        client_ip: None,
        confirm: false,
    })
    .unwrap_or_else(|err| panic!("fixture challenge: {err}"))
}

fn response_bytes(bytes: &[u8]) {
    let Ok(r) = LoginResponse::decode_bytes(bytes) else {
        return;
    };
    assert!(bytes.len() <= MAX_RESPONSE_SIZE);
    assert_eq!(r.to_cbor(), bytes, "non-canonical response accepted");
    if let LoginResponse::Approved(a) = r {
        let e = ego();
        let c = fixture_challenge();
        // Ed25519 signatures are deterministic: the only valid one for
        // each form is the one the ego key makes.
        let genuine = match a.approved_by {
            Some(by) => c.sign_approval(&e.new.ego, by),
            None => c.sign(&e.new.ego),
        };
        let now = UnixTime::from_secs(NOW + 1);
        if verify_approval(&c, &a, &e.verified, now).is_ok() {
            assert_eq!(a.sig, genuine, "a forged approval verified");
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Fields {
    issuer: String,
    client_id: String,
    client_name: String,
    redirect_origin: String,
    ego_id: [u8; 32],
    nonce: Vec<u8>,
    issued_at: u64,
    ttl: u64,
    match_code: u8,
    client_ip: Option<String>,
    confirm: bool,
}

fn fields(f: Fields) {
    let p = ChallengeParams {
        issuer: f.issuer,
        client_id: f.client_id,
        client_name: f.client_name,
        redirect_origin: f.redirect_origin,
        ego_id: EgoId::from_bytes(f.ego_id),
        nonce: f.nonce,
        issued_at: UnixTime::from_secs(f.issued_at),
        expires_at: UnixTime::from_secs(f.issued_at.wrapping_add(f.ttl)),
        match_code: f.match_code,
        client_ip: f.client_ip,
        confirm: f.confirm,
    };
    let Ok(c) = LoginChallenge::new(p) else {
        return;
    };
    let bytes = c.to_cbor();
    assert!(
        bytes.len() <= MAX_CHALLENGE_SIZE,
        "a valid challenge is over the cap"
    );
    assert_eq!(LoginChallenge::decode_bytes(&bytes).as_ref(), Ok(&c));
}

fn ego_text(bytes: &[u8]) {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(id) = EgoId::from_str(s) {
        let text = id.to_string();
        // One text per id, up to case.
        assert_eq!(s.to_ascii_lowercase(), text);
        assert_eq!(EgoId::from_str(&text).ok(), Some(id));
        assert_eq!(EgoId::from_str(&text.to_ascii_uppercase()).ok(), Some(id));
    }
}
