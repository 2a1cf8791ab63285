//! Invites (`core/src/invite.rs`, `/cyrcles/invite/1`): envelopes, every
//! message kind, and the SPAKE2 exchange with live state machines.
//!
//! First byte, modulo 4:
//! * 0: the rest is an envelope as an inviter or an acceptor receives it;
//!   its body is decoded by kind (canonically) and a hello, reply or
//!   confirmation is fed to a live inviter or acceptor, which must refuse
//!   what does not come from someone who knows the code.
//! * 1: a stranger's session against a live inviter: hello, then
//!   confirmation, as raw frames; the inviter never makes a friend.
//! * 2: an honest exchange with a man in the middle: the rest holds edits
//!   (xor masks) to the hello, the reply and the confirmation on the wire.
//!   If both sides end up friends, each has the other's real party and
//!   both show the same fingerprint; an edit that changes what a message
//!   says makes the exchange fail. Without edits it succeeds.
//! * 3: the rest is a typed invite code; what parses prints back to a
//!   code that parses to itself.

#![no_main]

use std::str::FromStr;

use arbitrary::{Arbitrary, Unstructured};
use cyrcles_core::EgoId;
use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::invite::{
    Acceptor, InviteCode, InviteConfirm, InviteDone, InviteError, InviteHello, InviteRefused,
    InviteReply, Inviter, MAX_INVITE_MESSAGE_SIZE, Party, kind,
};
use cyrcles_fuzz::{frames, key, mutate, rng};
use libfuzzer_sys::fuzz_target;

/// The p2p layer's cap on an invite request (body plus envelope head).
const MAX_ENVELOPE: usize = 4 * 1024 + 16;

fn code() -> InviteCode {
    InviteCode::generate(&mut rng(11))
}

fn party(seed: u8) -> Party {
    Party {
        ego_id: EgoId::from_bytes([seed; 32]),
        ego_pk: key(seed).public(),
        peer_id: vec![0, 36, 8, 1, 18, 32, seed],
    }
}

fn inviter_party() -> Party {
    party(21)
}

fn acceptor_party() -> Party {
    party(22)
}

fn open<T: Decode + Encode>(env: &Envelope) -> Option<T> {
    let t = env.open::<T>(MAX_INVITE_MESSAGE_SIZE).ok()?;
    assert_eq!(
        t.to_cbor(),
        env.body,
        "non-canonical invite message of kind {}",
        env.kind
    );
    Some(t)
}

fn envelope(bytes: &[u8]) -> Option<Envelope> {
    let env = Envelope::from_cbor(bytes, MAX_ENVELOPE).ok()?;
    assert_eq!(env.to_cbor(), bytes, "non-canonical envelope accepted");
    Some(env)
}

fuzz_target!(
    init: cyrcles_fuzz::write_seeds("invite", cyrcles_fuzz::seeds::invite_seeds),
    |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => one_message(rest),
        1 => stranger(rest),
        2 => {
            if let Ok(edits) = Edits::arbitrary_take_rest(Unstructured::new(rest)) {
                man_in_the_middle(&edits);
            }
        }
        _ => typed_code(rest),
    }
    }
);

fn one_message(bytes: &[u8]) {
    let Some(env) = envelope(bytes) else {
        return;
    };
    let mut r = rng(12);
    match env.kind {
        kind::HELLO => {
            if let Some(hello) = open::<InviteHello>(&env) {
                let inviter = Inviter::new(code(), inviter_party());
                if let Ok((waiting, reply)) = inviter.on_hello(&hello, &mut r) {
                    assert_eq!(hello.nameplate, code().nameplate());
                    assert_ne!(hello.acceptor.ego_id, inviter_party().ego_id);
                    assert_eq!(reply.inviter, inviter_party());
                    // Who sent the hello cannot confirm without the code's
                    // key; a confirmation made of the reply's own tag fails.
                    let confirm = InviteConfirm {
                        nameplate: hello.nameplate,
                        confirm: reply.confirm,
                    };
                    assert_eq!(waiting.on_confirm(&confirm), Err(InviteError::Mismatch));
                }
            }
        }
        kind::REPLY => {
            if let Some(reply) = open::<InviteReply>(&env) {
                let (acceptor, _) = Acceptor::start(&code(), acceptor_party(), &mut r)
                    .unwrap_or_else(|e| panic!("start: {e}"));
                let got = acceptor.on_reply(&reply);
                assert!(
                    got.is_err(),
                    "the acceptor took a reply nobody made with the code"
                );
            }
        }
        kind::CONFIRM => {
            let _ = open::<InviteConfirm>(&env);
        }
        kind::DONE => {
            let _ = open::<InviteDone>(&env);
        }
        kind::REFUSED => {
            let _ = open::<InviteRefused>(&env);
        }
        _ => {}
    }
}

/// A stranger who knows the nameplate (it is public) but not the words.
fn stranger(data: &[u8]) {
    let mut r = rng(13);
    let mut inviter = Some(Inviter::new(code(), inviter_party()));
    let mut waiting = None;
    for (flags, frame) in frames(data, 4) {
        let Some(env) = envelope(frame) else {
            continue;
        };
        match env.kind {
            kind::HELLO => {
                let Some(mut hello) = open::<InviteHello>(&env) else {
                    continue;
                };
                if flags & 1 != 0 {
                    hello.nameplate = code().nameplate();
                }
                // The code is burnt by the first hello, whatever follows.
                if let Some(inv) = inviter.take()
                    && let Ok((w, _reply)) = inv.on_hello(&hello, &mut r)
                {
                    waiting = Some(w);
                }
            }
            kind::CONFIRM => {
                let Some(mut confirm) = open::<InviteConfirm>(&env) else {
                    continue;
                };
                if flags & 1 != 0 {
                    confirm.nameplate = code().nameplate();
                }
                if let Some(w) = waiting.take() {
                    assert!(
                        w.on_confirm(&confirm).is_err(),
                        "a stranger became a friend"
                    );
                }
            }
            _ => {}
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Edits {
    hello: Vec<(u16, u8)>,
    reply: Vec<(u16, u8)>,
    confirm: Vec<(u16, u8)>,
    /// The acceptor typed a different code (a wrong word).
    wrong_code: bool,
}

/// Puts `bytes` on the wire with `edits`; what the other side decodes.
fn wire<T: Decode + Encode + PartialEq>(k: u16, msg: &T, edits: &[(u16, u8)]) -> Option<(T, bool)> {
    let mut bytes = Envelope::wrap(k, msg).to_cbor();
    mutate(&mut bytes, edits);
    let env = envelope(&bytes)?;
    if env.kind != k {
        return None;
    }
    let got = open::<T>(&env)?;
    let same = &got == msg;
    Some((got, same))
}

fn man_in_the_middle(e: &Edits) {
    let mut r = rng(14);
    let code = code();
    let typed = if e.wrong_code {
        // Same nameplate, another last word.
        let text = code.to_string();
        let (head, last) = text.rsplit_once('-').unwrap_or_else(|| panic!("{text}"));
        let word = if last == "abandon" {
            "ability"
        } else {
            "abandon"
        };
        InviteCode::from_str(&format!("{head}-{word}")).unwrap_or_else(|err| panic!("{err}"))
    } else {
        code.clone()
    };
    let inviter = Inviter::new(code, inviter_party());
    let (acceptor, hello) = Acceptor::start(&typed, acceptor_party(), &mut r)
        .unwrap_or_else(|err| panic!("start: {err}"));
    let Some((hello_in, hello_same)) = wire(kind::HELLO, &hello, &e.hello) else {
        return;
    };
    let Ok((waiting, reply)) = inviter.on_hello(&hello_in, &mut r) else {
        assert!(
            !hello_same || e.wrong_code,
            "the inviter refused an honest hello"
        );
        return;
    };
    let Some((reply_in, reply_same)) = wire(kind::REPLY, &reply, &e.reply) else {
        return;
    };
    let acc = acceptor.on_reply(&reply_in);
    let honest = hello_same && reply_same && !e.wrong_code;
    let Ok((acc_friend, confirm)) = acc else {
        assert!(!honest, "the acceptor refused an honest reply: {acc:?}");
        return;
    };
    // The acceptor accepted: nothing it relies on was changed.
    assert!(
        hello_same && reply_same && !e.wrong_code,
        "the acceptor took a tampered reply"
    );
    assert_eq!(acc_friend.friend, inviter_party());
    let Some((confirm_in, confirm_same)) = wire(kind::CONFIRM, &confirm, &e.confirm) else {
        return;
    };
    match waiting.on_confirm(&confirm_in) {
        Ok(inv_friend) => {
            assert!(confirm_same, "the inviter took a tampered confirmation");
            assert_eq!(inv_friend.friend, acceptor_party());
            assert_eq!(inv_friend.fingerprint, acc_friend.fingerprint);
        }
        Err(err) => assert!(
            !confirm_same,
            "the inviter refused an honest confirmation: {err}"
        ),
    }
}

fn typed_code(bytes: &[u8]) {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(c) = InviteCode::from_str(s) {
        let text = c.to_string();
        let again = InviteCode::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(again == c, "{text} parses to another code");
        assert_eq!(again.rendezvous(), c.rendezvous());
    }
}
