//! Seed inputs made from the fixtures: one valid message of every kind, in
//! the input format of its target (see `crate::write_seeds`).

use cyrcles_core::cbor::Encode;
use cyrcles_core::circle::messages::kind as ck;
use cyrcles_core::circle::seal::seal;
use cyrcles_core::circle::{
    CeremonyRequest, CircleRefused, Coordinator, Purpose, RecoveryBody, RecoveryPending,
    RepairKeys, RepairSealed, RequestBody, commit, repair_aad,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::invite::{
    Acceptor, InviteCode, InviteDone, InviteRefused, Inviter, Party, RefusedReason, kind as ik,
};
use cyrcles_core::local::{LocalParams, LocalRequest};
use cyrcles_core::{Context, EgoId, UnixTime};

use crate::{MONTH, NOW, SESSION, circle, ego, frame, key, m, repair, rng, seal_key, share};

fn wrap<T: Encode>(k: u16, msg: &T) -> Vec<u8> {
    Envelope::wrap(k, msg).to_cbor()
}

/// The ceremony request the owner sends for its next certificate.
pub fn ceremony_request() -> CeremonyRequest {
    let e = ego();
    let next = e
        .new
        .record
        .next_cert(key(30).public(), UnixTime::from_secs(NOW), MONTH);
    RequestBody {
        ego_id: e.verified.ego_id(),
        circle_id: circle().circle_id,
        generation: 0,
        session: SESSION,
        purpose: Purpose::Certify(next),
        issued_at: UnixTime::from_secs(NOW),
    }
    .sign(&e.new.ego)
}

/// Circle: one frame per message kind (flags 0: an envelope), then the
/// same with bit 1 (adopted by the live session).
pub fn circle_seeds() -> Vec<Vec<u8>> {
    let e = ego();
    let c = circle();
    let mut r = rng(40);
    let (n1, r1a) = commit(share(1), SESSION, &mut r);
    let (_n2, r1b) = commit(share(2), SESSION, &mut r);
    let mut coord = Coordinator::new(
        c.dealing.public.clone(),
        SESSION,
        Context::EgoCert.signing_bytes(b"seed"),
    )
    .unwrap_or_else(|err| panic!("{err}"));
    let _ = coord.add_commitments(r1a.clone());
    let _ = coord.add_commitments(r1b);
    let req = coord.request().unwrap_or_else(|err| panic!("{err}"));
    let r2 = n1
        .sign(share(1), &req)
        .unwrap_or_else(|err| panic!("{err}"));
    let rep = repair();
    let new_key = key(9);
    let recovery = RecoveryBody {
        ego_id: e.verified.ego_id(),
        peer_id: vec![0, 36, 8, 1, 18, 32, 9],
        cert: e
            .new
            .record
            .next_cert(new_key.public(), UnixTime::from_secs(NOW), MONTH),
        issued_at: UnixTime::from_secs(NOW),
        session: SESSION,
    }
    .sign(&new_key);
    let aad = repair_aad(b"delta", SESSION, m(2), m(1));
    let sealed = seal(&seal_key().public(), &aad, &rep.delta_1_1.to_cbor(), &mut r)
        .unwrap_or_else(|err| panic!("{err}"));
    let messages = vec![
        Envelope {
            kind: ck::DEALT_SHARE,
            body: c.dealing.shares[0].to_secret_cbor().to_vec(),
        }
        .to_cbor(),
        wrap(ck::SHARE_ACK, &share(2).ack()),
        wrap(ck::ROUND1, &r1a),
        wrap(ck::SIGNING_REQUEST, &req),
        wrap(ck::ROUND2, &r2),
        wrap(ck::REPAIR_REQUEST, &rep.request),
        wrap(ck::REPAIR_DELTA, &rep.delta_1_1),
        wrap(ck::REPAIR_SIGMA, &rep.sigma[1]),
        wrap(ck::CEREMONY_REQUEST, &ceremony_request()),
        wrap(ck::REFUSED, &CircleRefused { code: 23 }),
        wrap(ck::RECOVERY_REQUEST, &recovery),
        wrap(
            ck::RECOVERY_PENDING,
            &RecoveryPending {
                member: m(1),
                circle_id: c.circle_id,
                public: c.dealing.public.clone(),
                wait_secs: 0,
            },
        ),
        wrap(
            ck::REPAIR_KEYS,
            &RepairKeys {
                session: SESSION,
                keys: vec![(m(1), seal_key().public())],
            },
        ),
        wrap(
            ck::REPAIR_SEALED,
            &RepairSealed {
                session: SESSION,
                member: m(1),
                items: vec![(m(2), sealed)],
            },
        ),
    ];
    let mut out: Vec<Vec<u8>> = messages.iter().map(|b| frame(0, b)).collect();
    out.extend(messages.iter().map(|b| frame(2, b)));
    // Field values (bit 3): a ceremony request and a recovery request.
    out.push(frame(8, &[0; 48]));
    out.push(frame(8, &[1; 48]));
    out
}

fn party(seed: u8) -> Party {
    Party {
        ego_id: EgoId::from_bytes([seed; 32]),
        ego_pk: key(seed).public(),
        peer_id: vec![0, 36, 8, 1, 18, 32, seed],
    }
}

/// Invite: every message kind as one envelope (mode 0), a stranger's
/// hello and confirmation (mode 1), and a typed code (mode 3).
pub fn invite_seeds() -> Vec<Vec<u8>> {
    let mut r = rng(41);
    let code = InviteCode::generate(&mut rng(11));
    let (acceptor, hello) =
        Acceptor::start(&code, party(22), &mut r).unwrap_or_else(|err| panic!("{err}"));
    let (_waiting, reply) = Inviter::new(code.clone(), party(21))
        .on_hello(&hello, &mut r)
        .unwrap_or_else(|err| panic!("{err}"));
    let (_friend, confirm) = acceptor
        .on_reply(&reply)
        .unwrap_or_else(|err| panic!("{err}"));
    let messages = [
        wrap(ik::HELLO, &hello),
        wrap(ik::REPLY, &reply),
        wrap(ik::CONFIRM, &confirm),
        wrap(ik::DONE, &InviteDone),
        wrap(
            ik::REFUSED,
            &InviteRefused {
                reason: RefusedReason::WrongCode,
            },
        ),
    ];
    let mut out: Vec<Vec<u8>> = messages.iter().map(|b| [&[0u8][..], b].concat()).collect();
    let mut stranger = vec![1u8];
    stranger.extend(frame(1, &messages[0]));
    stranger.extend(frame(1, &messages[2]));
    out.push(stranger);
    out.push([&[3u8][..], code.to_string().as_bytes()].concat());
    out
}

/// Local: one signing request.
pub fn local_seeds() -> Vec<Vec<u8>> {
    let req = LocalRequest::new(LocalParams {
        ego_id: ego().verified.ego_id(),
        program: "/usr/bin/ssh".into(),
        reason: "log in to a server".into(),
        nonce: vec![1; 16],
        issued_at: UnixTime::from_secs(NOW),
    })
    .unwrap_or_else(|err| panic!("{err}"));
    vec![req.to_cbor()]
}

fn json_frame(json: &str) -> Vec<u8> {
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    [&len.to_be_bytes()[..], json.as_bytes()].concat()
}

/// Control: request frames (mode 0) and reply frames (mode 1).
pub fn control_seeds() -> Vec<Vec<u8>> {
    let requests = [
        r#"{"command":"status"}"#,
        r#"{"command":"approve","id":3,"code":42,"remember":true}"#,
        r#"{"command":"sign","ego":"me","reason":"ssh","nonce":"00112233445566778899aabbccddeeff"}"#,
        r#"{"command":"recover","name":"me","ego_id":"x","friends":[]}"#,
        r#"{"command":"ban-add","ego":null,"target":{"kind":"bridge","issuer":"https://b"}}"#,
    ];
    let mut out: Vec<Vec<u8>> = requests
        .iter()
        .map(|j| [&[0u8][..], &json_frame(j)].concat())
        .collect();
    let mut two = vec![0u8];
    two.extend(json_frame(requests[0]));
    two.extend(json_frame(requests[1]));
    out.push(two);
    let replies = [
        r#"{"reply":"done","message":"ok"}"#,
        r#"{"reply":"sign-pending","id":1,"code":7}"#,
        r#"{"reply":"error","code":"not-found","message":"no such ego"}"#,
    ];
    out.extend(
        replies
            .iter()
            .map(|j| [&[1u8][..], &json_frame(j)].concat()),
    );
    out
}
