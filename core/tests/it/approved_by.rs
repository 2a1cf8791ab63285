//! How a login was approved: the `confirm` flag of a challenge, the
//! `approved_by` of an approval, the signature that binds the two, and the
//! bridge's refusal of an approval the person did not make when the site
//! asked for one (docs/protocol.md, section 8).

use cyrcles_core::cbor::{DecodeError, Encode};
use cyrcles_core::login::{
    Approval, ApprovedBy, ChallengeError, ChallengeParams, LoginChallenge, LoginError,
    LoginResponse, MAX_RESPONSE_SIZE, verify_approval,
};
use cyrcles_core::{Context, SecretKey};

use crate::common::{NOW, Owner};
use crate::login::params;

fn approval_of(r: LoginResponse) -> Approval {
    match r {
        LoginResponse::Approved(a) => a,
        LoginResponse::Denied(d) => panic!("expected an approval, got {d:?}"),
    }
}

fn confirming(o: &Owner) -> LoginChallenge {
    LoginChallenge::new(ChallengeParams {
        confirm: true,
        ..params(o.record.ego_id(), NOW)
    })
    .unwrap()
}

#[test]
fn confirm_is_encoded_only_when_true_and_false_written_out_is_refused() {
    let o = Owner::new(410);
    let plain = LoginChallenge::new(params(o.record.ego_id(), NOW)).unwrap();
    let bytes = plain.to_cbor();
    // Without confirm: the 11-pair map of before, byte for byte.
    assert_eq!(
        bytes,
        crate::vectors_challenges::encode_challenge(plain.params())
    );
    assert_eq!(bytes[0], 0xab);
    // With confirm: a 12-pair map ending in key 11, true.
    let ch = confirming(&o);
    let with = ch.to_cbor();
    assert_eq!(with[0], 0xac);
    assert_eq!(&with[with.len() - 2..], &[0x0b, 0xf5]);
    assert_eq!(&with[1..with.len() - 2], &bytes[1..]);
    let back = LoginChallenge::decode_bytes(&with).unwrap();
    assert!(back.params().confirm);
    assert_eq!(back, ch);
    // The only encoding of "no confirmation asked" is the absent key.
    let mut explicit_false = with.clone();
    *explicit_false.last_mut().unwrap() = 0xf4;
    assert_eq!(
        LoginChallenge::decode_bytes(&explicit_false),
        Err(ChallengeError::Encoding(DecodeError::ExplicitDefault {
            what: "confirm"
        }))
    );
    // Neither 1 nor null stands for true.
    for not_bool in [0x01, 0xf6] {
        let mut b = with.clone();
        *b.last_mut().unwrap() = not_bool;
        assert!(
            matches!(
                LoginChallenge::decode_bytes(&b),
                Err(ChallengeError::Encoding(_))
            ),
            "{not_bool:#x}"
        );
    }
    // Twelve pairs announced, but the twelfth key is not 11.
    let mut key_12 = with.clone();
    let at = key_12.len() - 2;
    key_12[at] = 0x0c;
    assert!(matches!(
        LoginChallenge::decode_bytes(&key_12),
        Err(ChallengeError::Encoding(DecodeError::UnexpectedKey {
            expected: 11,
            found: 12
        }))
    ));
    // An 11-pair map holding key 11 in place of key 10 is refused too.
    let mut eleven = with[..with.len() - 2].to_vec();
    eleven[0] = 0xab;
    let ip = plain.params().client_ip.as_deref().unwrap();
    let ip_item_len = 1 + ip.len();
    eleven.truncate(eleven.len() - 1 - ip_item_len);
    eleven.extend_from_slice(&[0x0b, 0xf5]);
    assert!(LoginChallenge::decode_bytes(&eleven).is_err());
}

#[test]
fn each_method_round_trips_and_unknown_ones_are_refused() {
    let o = Owner::new(411);
    let ch = LoginChallenge::new(params(o.record.ego_id(), NOW)).unwrap();
    for by in ApprovedBy::ALL {
        let r = ch.approve(&o.ego, 7, by);
        let bytes = r.to_cbor();
        // Five pairs, key 4 last with the method's code.
        assert_eq!(bytes[0], 0xa5, "{by:?}");
        assert_eq!(
            &bytes[bytes.len() - 2..],
            &[0x04, u8::try_from(by.code()).unwrap()]
        );
        assert!(bytes.len() <= MAX_RESPONSE_SIZE);
        assert_eq!(LoginResponse::decode_bytes(&bytes), Ok(r));
        assert_eq!(approval_of(r).approved_by, Some(by));
        assert_eq!(ApprovedBy::from_code(by.code()), Ok(by));
    }
    assert_eq!(
        ApprovedBy::ALL.map(ApprovedBy::as_str),
        ["person", "remembered_site", "policy"]
    );
    assert_eq!(ApprovedBy::ALL.map(ApprovedBy::code), [0, 1, 2]);
    // The legacy form: four pairs, no method.
    let legacy = LoginResponse::Approved(Approval {
        approved_by: None,
        sig: ch.sign(&o.ego),
        ..approval_of(ch.approve(&o.ego, 7, ApprovedBy::Person))
    });
    let bytes = legacy.to_cbor();
    assert_eq!(bytes[0], 0xa4);
    assert_eq!(LoginResponse::decode_bytes(&bytes), Ok(legacy));
    // Method 3 is not guessed at.
    let mut unknown = ch.approve(&o.ego, 7, ApprovedBy::Policy).to_cbor();
    *unknown.last_mut().unwrap() = 0x03;
    assert_eq!(
        LoginResponse::decode_bytes(&unknown),
        Err(DecodeError::UnknownValue {
            what: "approved by",
            value: 3
        })
    );
    // Nor a sixth pair, nor the method as text.
    let mut six = ch.approve(&o.ego, 7, ApprovedBy::Person).to_cbor();
    six[0] = 0xa6;
    six.extend_from_slice(&[0x05, 0x00]);
    assert!(LoginResponse::decode_bytes(&six).is_err());
    let mut text = ch.approve(&o.ego, 7, ApprovedBy::Person).to_cbor();
    *text.last_mut().unwrap() = 0x60;
    assert!(LoginResponse::decode_bytes(&text).is_err());
}

#[test]
fn a_signature_made_for_one_method_or_form_is_bad_for_every_other() {
    let o = Owner::new(412);
    let v = o.verify_at(NOW);
    let ch = LoginChallenge::new(params(v.ego_id(), NOW)).unwrap();
    for signed in ApprovedBy::ALL {
        let a = approval_of(ch.approve(&o.ego, 1, signed));
        assert_eq!(verify_approval(&ch, &a, &v, NOW), Ok(()), "{signed:?}");
        for shown in ApprovedBy::ALL {
            if shown == signed {
                continue;
            }
            // Above all: a policy's signature shown as the person's.
            let swapped = Approval {
                approved_by: Some(shown),
                ..a
            };
            assert!(
                matches!(
                    verify_approval(&ch, &swapped, &v, NOW),
                    Err(LoginError::BadSignature(_))
                ),
                "signed {signed:?}, shown as {shown:?}"
            );
        }
        // Shown as a legacy approval.
        let as_legacy = Approval {
            approved_by: None,
            ..a
        };
        assert!(matches!(
            verify_approval(&ch, &as_legacy, &v, NOW),
            Err(LoginError::BadSignature(_))
        ));
    }
    // A legacy signature verifies as legacy, and in no new form.
    let legacy = Approval {
        approved_by: None,
        sig: ch.sign(&o.ego),
        ..approval_of(ch.approve(&o.ego, 1, ApprovedBy::Person))
    };
    assert_eq!(verify_approval(&ch, &legacy, &v, NOW), Ok(()));
    for by in ApprovedBy::ALL {
        let claimed = Approval {
            approved_by: Some(by),
            ..legacy
        };
        assert!(matches!(
            verify_approval(&ch, &claimed, &v, NOW),
            Err(LoginError::BadSignature(_))
        ));
    }
    // The new context over the challenge alone (not the array) is bad.
    let bare = Approval {
        sig: o.ego.sign(Context::LoginApproval, &ch.to_cbor()),
        ..approval_of(ch.approve(&o.ego, 1, ApprovedBy::Person))
    };
    assert!(matches!(
        verify_approval(&ch, &bare, &v, NOW),
        Err(LoginError::BadSignature(_))
    ));
    // The legacy context over the array is bad too.
    let mixed = Approval {
        sig: o
            .ego
            .sign(Context::Login, &ch.approval_message(ApprovedBy::Person)),
        ..bare
    };
    assert!(matches!(
        verify_approval(&ch, &mixed, &v, NOW),
        Err(LoginError::BadSignature(_))
    ));
}

#[test]
fn a_confirm_challenge_is_accepted_only_from_the_person() {
    let o = Owner::new(413);
    let v = o.verify_at(NOW);
    let ch = confirming(&o);
    let by = |b| approval_of(ch.approve(&o.ego, 1, b));
    assert_eq!(
        verify_approval(&ch, &by(ApprovedBy::Person), &v, NOW),
        Ok(())
    );
    for auto in [ApprovedBy::RememberedSite, ApprovedBy::Policy] {
        assert_eq!(
            verify_approval(&ch, &by(auto), &v, NOW),
            Err(LoginError::NotConfirmed),
            "{auto:?}"
        );
        assert_eq!(LoginError::NotConfirmed.code(), "not_confirmed");
        assert!(!LoginError::NotConfirmed.record_is_stale());
    }
    // A legacy approval does not say the person confirmed.
    let legacy = Approval {
        approved_by: None,
        sig: ch.sign(&o.ego),
        ..by(ApprovedBy::Person)
    };
    assert_eq!(
        verify_approval(&ch, &legacy, &v, NOW),
        Err(LoginError::NotConfirmed)
    );
    // The same methods on a challenge without confirm are accepted.
    let plain = LoginChallenge::new(params(v.ego_id(), NOW)).unwrap();
    for b in ApprovedBy::ALL {
        let a = approval_of(plain.approve(&o.ego, 1, b));
        assert_eq!(verify_approval(&plain, &a, &v, NOW), Ok(()));
        // An answer to the challenge with confirm stripped (say, by a
        // relay in the middle) does not answer the one the bridge sent.
        assert!(matches!(
            verify_approval(&ch, &a, &v, NOW),
            Err(LoginError::BadSignature(_))
        ));
    }
    // Only an authentic answer is "not confirmed": a forged policy answer
    // is a bad signature, and an expired one is expired.
    let forged = Approval {
        sig: ch.sign_approval(&SecretKey::from_seed(&[4; 32]), ApprovedBy::Policy),
        ..by(ApprovedBy::Policy)
    };
    assert!(matches!(
        verify_approval(&ch, &forged, &v, NOW),
        Err(LoginError::BadSignature(_))
    ));
    assert_eq!(
        verify_approval(&ch, &by(ApprovedBy::Policy), &v, NOW.plus(121)),
        Err(LoginError::Expired)
    );
}

#[test]
fn the_largest_messages_stay_as_documented_and_under_their_caps() {
    use cyrcles_core::UnixTime;
    use cyrcles_core::login::MAX_CHALLENGE_SIZE;
    // Every field at its longest, times of nine bytes, confirm.
    let at = UnixTime::from_secs(u64::MAX - 120);
    let ch = LoginChallenge::new(ChallengeParams {
        issuer: "i".repeat(256),
        client_id: "c".repeat(128),
        client_name: "n".repeat(128),
        redirect_origin: "o".repeat(256),
        nonce: vec![0; 64],
        issued_at: at,
        expires_at: at.plus(120),
        match_code: 99,
        client_ip: Some("1".repeat(64)),
        confirm: true,
        ..params(cyrcles_core::EgoId::from_bytes([1; 32]), NOW)
    })
    .unwrap();
    // docs/protocol.md, section 10.
    assert_eq!(ch.to_cbor().len(), 979);
    assert!(ch.to_cbor().len() < MAX_CHALLENGE_SIZE);
    let key = SecretKey::from_seed(&[1; 32]);
    let a = ch.approve(&key, u64::MAX, ApprovedBy::Policy).to_cbor();
    assert_eq!(a.len(), 117);
    assert!(a.len() < MAX_RESPONSE_SIZE);
}
