//! The login challenge, the agent's approval and the bridge's check.

use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::login::{
    Approval, ApprovedBy, ChallengeError, ChallengeParams, DenyReason, LoginChallenge, LoginError,
    LoginResponse, MAX_CHALLENGE_SIZE, verify_approval,
};
use cyrcles_core::{Context, EgoId, SecretKey, UnixTime};

use crate::common::{NOW, Owner, T0};

pub fn params(ego_id: EgoId, issued_at: UnixTime) -> ChallengeParams {
    ChallengeParams {
        issuer: "https://bridge.example".into(),
        client_id: "client-42".into(),
        client_name: "Example Shop".into(),
        redirect_origin: "https://shop.example".into(),
        ego_id,
        nonce: vec![0xab; 16],
        issued_at,
        expires_at: issued_at.plus(120),
        match_code: 42,
        client_ip: Some("203.0.113.9".into()),
        confirm: false,
    }
}

#[test]
fn challenge_limits_are_enforced_on_build_and_on_decode() {
    let id = EgoId::from_bytes([1; 32]);
    let ok = params(id, NOW);
    assert!(LoginChallenge::new(ok.clone()).is_ok());
    let bad: Vec<(ChallengeParams, &str)> = vec![
        (
            ChallengeParams {
                nonce: vec![0; 15],
                ..ok.clone()
            },
            "nonce",
        ),
        (
            ChallengeParams {
                expires_at: NOW.plus(121),
                ..ok.clone()
            },
            "expires_at",
        ),
        (
            ChallengeParams {
                expires_at: NOW,
                ..ok.clone()
            },
            "expires_at",
        ),
        (
            ChallengeParams {
                match_code: 100,
                ..ok.clone()
            },
            "match_code",
        ),
        (
            ChallengeParams {
                client_name: "a\u{1b}[2Jb".into(),
                ..ok.clone()
            },
            "client_name",
        ),
        (
            ChallengeParams {
                client_name: String::new(),
                ..ok.clone()
            },
            "client_name",
        ),
        (
            ChallengeParams {
                issuer: "x".repeat(257),
                ..ok.clone()
            },
            "issuer",
        ),
        (
            ChallengeParams {
                client_ip: Some("\n".into()),
                ..ok.clone()
            },
            "client_ip",
        ),
    ];
    for (p, field) in bad {
        // A forbidden character is a text refusal; the rest break limits.
        let holds_control =
            p.client_name.contains('\u{1b}') || p.client_ip.as_deref() == Some("\n");
        let want = if holds_control {
            ChallengeError::Text(field)
        } else {
            ChallengeError::Field(field)
        };
        assert_eq!(LoginChallenge::new(p), Err(want), "{field}");
    }
    // The same limits hold for bytes from the network: encode a valid
    // challenge, then patch the match code (key 9) to 100.
    let bytes = LoginChallenge::new(ok).unwrap().to_cbor();
    let code_at = bytes
        .windows(3)
        .rposition(|w| w[0] == 0x09 && w[1] == 0x18 && w[2] == 42)
        .expect("match code field");
    let mut patched = bytes.clone();
    patched[code_at + 2] = 100;
    assert!(matches!(
        LoginChallenge::decode_bytes(&patched),
        Err(ChallengeError::Encoding(_))
    ));
    assert!(matches!(
        LoginChallenge::decode_bytes(&vec![0u8; MAX_CHALLENGE_SIZE + 1]),
        Err(ChallengeError::Encoding(_))
    ));
}

#[test]
fn challenge_and_responses_round_trip() {
    let o = Owner::new(400);
    let ch = LoginChallenge::new(params(o.record.ego_id(), NOW)).unwrap();
    assert_eq!(LoginChallenge::decode_bytes(&ch.to_cbor()), Ok(ch.clone()));
    let no_ip = LoginChallenge::new(ChallengeParams {
        client_ip: None,
        ..params(o.record.ego_id(), NOW)
    })
    .unwrap();
    assert_eq!(LoginChallenge::decode_bytes(&no_ip.to_cbor()), Ok(no_ip));
    let approved = ch.approve(&o.ego, 1, ApprovedBy::Person);
    assert_eq!(
        LoginResponse::decode_bytes(&approved.to_cbor()),
        Ok(approved)
    );
    for r in [
        DenyReason::User,
        DenyReason::RateLimited,
        DenyReason::Banned,
        DenyReason::UnknownEgo,
        DenyReason::Expired,
        DenyReason::Invalid,
    ] {
        let d = LoginResponse::Denied(r);
        assert_eq!(LoginResponse::from_cbor(&d.to_cbor(), 256), Ok(d));
    }
    // An unknown deny reason is refused, not guessed.
    assert!(LoginResponse::decode_bytes(&[0xa2, 0x00, 0x01, 0x01, 0x09]).is_err());
}

#[test]
fn a_signed_challenge_verifies_and_every_tampering_is_caught() {
    let mut o = Owner::new(401);
    let v = o.verify_at(NOW);
    let ch = LoginChallenge::new(params(v.ego_id(), NOW)).unwrap();
    let LoginResponse::Approved(a) = ch.approve(&o.ego, 1, ApprovedBy::Person) else {
        unreachable!()
    };
    assert_eq!(verify_approval(&ch, &a, &v, NOW.plus(5)), Ok(()));
    // The signature is a plain Ed25519 signature in the login-approval
    // context over the array [challenge, approved_by]: 0x82, the
    // challenge, then 0x00 for "person".
    let vk = ed25519_dalek::VerifyingKey::from_bytes(o.ego.public().as_bytes()).unwrap();
    let message = [&[0x82][..], &ch.to_cbor(), &[0x00]].concat();
    assert_eq!(ch.approval_message(ApprovedBy::Person), message);
    vk.verify_strict(
        &[b"cyrcles/v1/login-approval\x00".as_slice(), &message].concat(),
        &ed25519_dalek::Signature::from_bytes(&a.sig.0),
    )
    .unwrap();

    // Expired by the bridge's clock.
    assert_eq!(
        verify_approval(&ch, &a, &v, NOW.plus(121)),
        Err(LoginError::Expired)
    );
    // A forged signature.
    let forged = Approval {
        sig: ch.sign_approval(&SecretKey::from_seed(&[3; 32]), ApprovedBy::Person),
        ..a
    };
    assert!(matches!(
        verify_approval(&ch, &forged, &v, NOW),
        Err(LoginError::BadSignature(_))
    ));
    // A signature over another challenge (another match code).
    let other = LoginChallenge::new(ChallengeParams {
        match_code: 7,
        ..params(v.ego_id(), NOW)
    })
    .unwrap();
    assert!(matches!(
        verify_approval(&other, &a, &v, NOW),
        Err(LoginError::BadSignature(_))
    ));
    // A challenge for another ego.
    let elsewhere = LoginChallenge::new(params(EgoId::from_bytes([5; 32]), NOW)).unwrap();
    assert_eq!(
        verify_approval(&elsewhere, &a, &v, NOW),
        Err(LoginError::WrongEgo)
    );
    // The agent signed with a newer key than the bridge's record certifies.
    let old_record = v;
    o.rotate(T0.plus(10));
    let LoginResponse::Approved(newer) = ch.approve(&o.ego, 2, ApprovedBy::Person) else {
        unreachable!()
    };
    assert_eq!(
        verify_approval(&ch, &newer, &old_record, NOW),
        Err(LoginError::KeyMismatch {
            approval_seq: 2,
            record_seq: 1
        })
    );
    let current = o.verify_at(NOW);
    assert_eq!(verify_approval(&ch, &newer, &current, NOW), Ok(()));
    // The old key no longer passes against the current record.
    assert!(matches!(
        verify_approval(&ch, &a, &current, NOW),
        Err(LoginError::KeyMismatch { .. })
    ));
}

#[test]
fn a_revoked_ego_cannot_log_in() {
    let mut o = Owner::new(402);
    let ch = LoginChallenge::new(params(o.record.ego_id(), NOW)).unwrap();
    let LoginResponse::Approved(a) = ch.approve(&o.ego, 1, ApprovedBy::Person) else {
        unreachable!()
    };
    let circle = o.circles.pop().unwrap();
    o.record
        .revoke_with(&circle, &mut o.rng, T0.plus(5), 60)
        .unwrap();
    let v = o.verify_at(NOW);
    assert_eq!(verify_approval(&ch, &a, &v, NOW), Err(LoginError::Revoked));
}

fn local_params(ego_id: EgoId) -> cyrcles_core::local::LocalParams {
    cyrcles_core::local::LocalParams {
        ego_id,
        program: "/usr/bin/example-tool".into(),
        reason: "unlock the notes vault".into(),
        nonce: vec![0x5a; 16],
        issued_at: NOW,
    }
}

#[test]
fn local_signatures_round_trip_and_are_not_logins() {
    use cyrcles_core::local::{LocalError, LocalRequest};
    let key = SecretKey::from_seed(&[9; 32]);
    let req = LocalRequest::new(local_params(EgoId::from_bytes([4; 32]))).unwrap();
    let bytes = req.to_cbor();
    assert_eq!(LocalRequest::decode_bytes(&bytes).unwrap(), req);
    let sig = req.sign(&key);
    assert_eq!(req.verify(&key.public(), &sig), Ok(()));
    // Another key, or another request, does not verify.
    assert!(
        req.verify(&SecretKey::from_seed(&[8; 32]).public(), &sig)
            .is_err()
    );
    let other = LocalRequest::new(cyrcles_core::local::LocalParams {
        reason: "something else".into(),
        ..local_params(EgoId::from_bytes([4; 32]))
    })
    .unwrap();
    assert!(other.verify(&key.public(), &sig).is_err());
    // The same bytes signed in the login context are not a local signature,
    // and a local signature is not a login signature.
    let as_login = key.sign(Context::Login, &bytes);
    assert!(req.verify(&key.public(), &as_login).is_err());
    assert!(key.public().verify(Context::Login, &bytes, &sig).is_err());
    // Limits, on build and on decode.
    for (p, what) in [
        (
            cyrcles_core::local::LocalParams {
                nonce: vec![0; 15],
                ..local_params(EgoId::from_bytes([4; 32]))
            },
            "nonce",
        ),
        (
            cyrcles_core::local::LocalParams {
                reason: "r".repeat(201),
                ..local_params(EgoId::from_bytes([4; 32]))
            },
            "reason",
        ),
        (
            cyrcles_core::local::LocalParams {
                program: "/bin/a\nb".into(),
                ..local_params(EgoId::from_bytes([4; 32]))
            },
            "program",
        ),
    ] {
        let want = if what == "program" {
            LocalError::Text(what)
        } else {
            LocalError::Field(what)
        };
        assert_eq!(LocalRequest::new(p), Err(want));
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        LocalRequest::decode_bytes(&trailing),
        Err(LocalError::Encoding(_))
    ));
}
