//! Invite codes and the SPAKE2 exchange: a right code makes friends on
//! both sides with the same fingerprint; a wrong code, a swapped party or
//! a replayed message fails closed.

use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::invite::{
    Acceptor, CodeError, InviteCode, InviteConfirm, InviteDone, InviteError, InviteHello,
    InviteRefused, InviteReply, Inviter, MAX_INVITE_MESSAGE_SIZE, Party, RefusedReason, rendezvous,
};
use cyrcles_core::{EgoId, SecretKey};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn party(seed: u8) -> Party {
    Party {
        ego_id: EgoId::from_bytes([seed; 32]),
        ego_pk: SecretKey::from_seed(&[seed; 32]).public(),
        peer_id: vec![seed; 38],
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

#[test]
fn codes_read_back_and_forgive_case_spaces_and_short_words() {
    let mut r = rng(1);
    for _ in 0..200 {
        let c = InviteCode::generate(&mut r);
        let text = c.to_string();
        assert_eq!(text.parse::<InviteCode>().unwrap(), c, "{text}");
        assert!((1..=9999).contains(&c.nameplate()));
        // Upper case and spaces.
        let loud = text.to_uppercase().replace('-', " ");
        assert_eq!(loud.parse::<InviteCode>().unwrap(), c);
        // The first four letters of each word.
        let parts: Vec<&str> = text.split('-').collect();
        let short: Vec<String> = parts.iter().map(|p| p.chars().take(4).collect()).collect();
        assert_eq!(short.join("-").parse::<InviteCode>().unwrap(), c);
    }
    // The Debug form does not show the secret words.
    let c: InviteCode = "4821-orbit-ladder".parse().unwrap();
    assert_eq!(format!("{c:?}"), "InviteCode(4821-..)");
}

#[test]
fn bad_codes_say_what_is_wrong() {
    assert_eq!("".parse::<InviteCode>(), Err(CodeError::Shape));
    assert_eq!("orbit-ladder".parse::<InviteCode>(), Err(CodeError::Shape));
    assert_eq!("12-orbit".parse::<InviteCode>(), Err(CodeError::Shape));
    assert_eq!(
        "x1-orbit-ladder".parse::<InviteCode>(),
        Err(CodeError::Shape)
    );
    assert_eq!(
        "12345-orbit-ladder".parse::<InviteCode>(),
        Err(CodeError::Shape)
    );
    assert_eq!(
        "0-orbit-ladder".parse::<InviteCode>(),
        Err(CodeError::Nameplate)
    );
    assert_eq!(
        "7-orbit-ladderx".parse::<InviteCode>(),
        Err(CodeError::Word("ladderx".into()))
    );
    // Three letters are not enough to name a word.
    assert_eq!(
        "7-orb-ladder".parse::<InviteCode>(),
        Err(CodeError::Word("orb".into()))
    );
}

#[test]
fn the_rendezvous_depends_on_the_nameplate_and_the_first_word() {
    let a: InviteCode = "77-orbit-ladder".parse().unwrap();
    let b: InviteCode = "77-orbit-zoo".parse().unwrap();
    let c: InviteCode = "78-orbit-ladder".parse().unwrap();
    let d: InviteCode = "77-abandon-ladder".parse().unwrap();
    // The second word stays out of it.
    assert_eq!(a.rendezvous(), b.rendezvous());
    assert_ne!(a.rendezvous(), c.rendezvous());
    assert_ne!(a.rendezvous(), d.rendezvous());
    // "orbit" is word 1247 of the list (from 0), "abandon" word 0.
    assert_eq!(a.rendezvous(), rendezvous(77, 1247));
    assert_eq!(d.rendezvous(), rendezvous(77, 0));
    // The key is Argon2id (m = 8 MiB, t = 2, p = 1) of the nameplate and
    // the word index, both big-endian, salted with the context
    // (docs/protocol.md section 13). The expected bytes come from another
    // implementation, argon2-cffi 25.1 (the reference C code):
    // hash_secret_raw(b"\x00\x4d\x04\xdf", b"cyrcles/v1/invite/rendezvous",
    //                 2, 8192, 1, 32, Type.ID, 19)
    assert_eq!(
        hex::encode(a.rendezvous()),
        "c4101da98888c0b574d341a5920b0f40b400b75950bd8ce0ff280b7a5abe1946"
    );
    assert_eq!(
        hex::encode(rendezvous(9999, 2047)),
        "8cef8f6e1cfb9a69a9a818a7baa4184f6ad8169569896a537fee170f97c00f5a"
    );
}

#[test]
fn a_hello_must_name_the_rendezvous_of_the_code() {
    let mut r = rng(11);
    let code: InviteCode = "4821-orbit-ladder".parse().unwrap();
    let inviter = Inviter::new(code.clone(), party(1));
    let (_, hello) = Acceptor::start(&code, party(2), &mut r).unwrap();
    assert!(inviter.expects(&hello));
    // Someone who knows the nameplate but not the first word.
    let guess: InviteCode = "4821-abandon-ladder".parse().unwrap();
    let (_, wrong) = Acceptor::start(&guess, party(2), &mut r).unwrap();
    assert!(!inviter.expects(&wrong));
    // Or who names the right nameplate with any key.
    let mut forged = hello.clone();
    forged.rendezvous = [7; 32];
    assert!(!inviter.expects(&forged));
    assert_eq!(
        inviter.on_hello(&forged, &mut r).unwrap_err(),
        InviteError::WrongInvite
    );
}

/// Runs a whole exchange; returns both sides' outcomes.
fn exchange(
    inviter_code: &str,
    acceptor_code: &str,
) -> (
    Result<cyrcles_core::invite::Friendship, InviteError>,
    Result<cyrcles_core::invite::Friendship, InviteError>,
) {
    let mut r = rng(7);
    let inviter = Inviter::new(inviter_code.parse().unwrap(), party(1));
    let (acceptor, hello) =
        Acceptor::start(&acceptor_code.parse().unwrap(), party(2), &mut r).unwrap();
    let (waiting, reply) = inviter.on_hello(&hello, &mut r).unwrap();
    match acceptor.on_reply(&reply) {
        Ok((a_side, confirm)) => (waiting.on_confirm(&confirm), Ok(a_side)),
        Err(e) => {
            // The acceptor stops; the inviter never gets a confirmation that
            // matches, whatever the acceptor sends.
            let forged = InviteConfirm {
                nameplate: hello.nameplate,
                confirm: [0; 32],
            };
            (waiting.on_confirm(&forged), Err(e))
        }
    }
}

#[test]
fn the_right_code_makes_friends_with_one_fingerprint() {
    let (i, a) = exchange("4821-orbit-ladder", "4821-orbit-ladder");
    let (i, a) = (i.unwrap(), a.unwrap());
    assert_eq!(i.friend, party(2));
    assert_eq!(a.friend, party(1));
    assert_eq!(i.fingerprint, a.fingerprint);
    assert_eq!(i.fingerprint.len(), 7, "{}", i.fingerprint);
}

#[test]
fn a_wrong_code_fails_on_both_sides() {
    let (i, a) = exchange("4821-orbit-ladder", "4821-orbit-lawn");
    assert_eq!(a, Err(InviteError::Mismatch));
    assert_eq!(i, Err(InviteError::Mismatch));
}

#[test]
fn a_hello_for_another_nameplate_or_from_oneself_is_refused() {
    let mut r = rng(3);
    let code: InviteCode = "10-orbit-ladder".parse().unwrap();
    let other: InviteCode = "11-orbit-ladder".parse().unwrap();
    let (_, hello) = Acceptor::start(&other, party(2), &mut r).unwrap();
    let e = Inviter::new(code.clone(), party(1))
        .on_hello(&hello, &mut r)
        .unwrap_err();
    assert_eq!(e, InviteError::WrongInvite);
    let (_, hello) = Acceptor::start(&code, party(1), &mut r).unwrap();
    let e = Inviter::new(code, party(1))
        .on_hello(&hello, &mut r)
        .unwrap_err();
    assert_eq!(e, InviteError::SelfInvite);
}

#[test]
fn a_party_swapped_in_the_middle_breaks_both_confirmations() {
    let mut r = rng(4);
    let code: InviteCode = "99-orbit-ladder".parse().unwrap();
    // Someone in the middle replaces the acceptor's ego with their own,
    // keeping the SPAKE2 message (they do not know the code).
    let (acceptor, hello) = Acceptor::start(&code, party(2), &mut r).unwrap();
    let mut tampered = hello.clone();
    tampered.acceptor = party(9);
    let (waiting, reply) = Inviter::new(code.clone(), party(1))
        .on_hello(&tampered, &mut r)
        .unwrap();
    assert_eq!(
        acceptor.on_reply(&reply).unwrap_err(),
        InviteError::Mismatch
    );
    let forged = InviteConfirm {
        nameplate: 99,
        confirm: [7; 32],
    };
    assert_eq!(
        waiting.on_confirm(&forged).unwrap_err(),
        InviteError::Mismatch
    );

    // The same for the inviter's party in the reply.
    let (acceptor, hello) = Acceptor::start(&code, party(2), &mut r).unwrap();
    let (_, mut reply) = Inviter::new(code, party(1))
        .on_hello(&hello, &mut r)
        .unwrap();
    reply.inviter.ego_pk = SecretKey::from_seed(&[9; 32]).public();
    assert_eq!(
        acceptor.on_reply(&reply).unwrap_err(),
        InviteError::Mismatch
    );
}

#[test]
fn a_replayed_confirmation_does_not_open_another_exchange() {
    let mut r = rng(5);
    let code: InviteCode = "5-orbit-ladder".parse().unwrap();
    let (acceptor, hello) = Acceptor::start(&code, party(2), &mut r).unwrap();
    let (waiting, reply) = Inviter::new(code.clone(), party(1))
        .on_hello(&hello, &mut r)
        .unwrap();
    let (_, confirm) = acceptor.on_reply(&reply).unwrap();
    waiting.on_confirm(&confirm).unwrap();
    // The same hello and confirmation against a fresh run with the same
    // code (as if the inviter had not burnt it): the inviter's new SPAKE2
    // message gives a new key, and the old confirmation does not match.
    let (waiting, _) = Inviter::new(code, party(1))
        .on_hello(&hello, &mut r)
        .unwrap();
    assert_eq!(
        waiting.on_confirm(&confirm).unwrap_err(),
        InviteError::Mismatch
    );
}

#[test]
fn a_reflected_pake_message_is_refused() {
    let mut r = rng(6);
    let code: InviteCode = "6-orbit-ladder".parse().unwrap();
    let (acceptor, hello) = Acceptor::start(&code, party(2), &mut r).unwrap();
    let (_, mut reply) = Inviter::new(code, party(1))
        .on_hello(&hello, &mut r)
        .unwrap();
    reply.pake = hello.pake;
    assert!(matches!(
        acceptor.on_reply(&reply),
        Err(InviteError::Pake(_))
    ));
}

#[test]
fn messages_round_trip_and_decoders_are_strict() {
    let mut r = rng(8);
    let code: InviteCode = "321-orbit-ladder".parse().unwrap();
    let (acceptor, hello) = Acceptor::start(&code, party(2), &mut r).unwrap();
    let (_, reply) = Inviter::new(code, party(1))
        .on_hello(&hello, &mut r)
        .unwrap();
    let (_, confirm) = acceptor.on_reply(&reply).unwrap();
    let max = MAX_INVITE_MESSAGE_SIZE;
    assert_eq!(
        InviteHello::from_cbor(&hello.to_cbor(), max).unwrap(),
        hello
    );
    assert_eq!(
        InviteReply::from_cbor(&reply.to_cbor(), max).unwrap(),
        reply
    );
    assert_eq!(
        InviteConfirm::from_cbor(&confirm.to_cbor(), max).unwrap(),
        confirm
    );
    assert_eq!(
        InviteDone::from_cbor(&InviteDone.to_cbor(), max).unwrap(),
        InviteDone
    );
    let refused = InviteRefused {
        reason: RefusedReason::WrongCode,
    };
    assert_eq!(
        InviteRefused::from_cbor(&refused.to_cbor(), max).unwrap(),
        refused
    );
    // Trailing bytes, truncation and an out-of-range nameplate are errors.
    let mut long = hello.to_cbor();
    long.push(0);
    assert!(InviteHello::from_cbor(&long, max).is_err());
    let bytes = hello.to_cbor();
    assert!(InviteHello::from_cbor(&bytes[..bytes.len() - 1], max).is_err());
    let mut far = hello.clone();
    far.nameplate = 10_000;
    assert!(InviteHello::from_cbor(&far.to_cbor(), max).is_err());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_invite_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let max = MAX_INVITE_MESSAGE_SIZE;
        let _ = InviteHello::from_cbor(&bytes, max);
        let _ = InviteReply::from_cbor(&bytes, max);
        let _ = InviteConfirm::from_cbor(&bytes, max);
        let _ = InviteDone::from_cbor(&bytes, max);
        let _ = InviteRefused::from_cbor(&bytes, max);
    }

    #[test]
    fn arbitrary_typed_codes_never_panic(s in "\\PC{0,40}") {
        let _ = s.parse::<InviteCode>();
    }
}
