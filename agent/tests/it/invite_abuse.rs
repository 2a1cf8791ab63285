//! Strangers against invites: one polls the rendezvous keys it can
//! compute and sends junk hellos to every node it finds and to the
//! inviter's own node; squatters announce themselves under the invite's
//! very key and answer the acceptor with refusals, junk and silence. The
//! real invite still completes on both sides, with the same digits.

use cyrcles_core::envelope::Envelope;
use cyrcles_core::invite::{
    Acceptor, InviteCode, InviteHello, InviteRefused, InviteReply, PAKE_MESSAGE_LEN, Party,
    RefusedReason, kind, rendezvous,
};
use cyrcles_core::record::VerifiedEgo;
use cyrcles_core::{EgoId, SecretKey};
use cyrcles_p2p::{NodeEvent, NodeHandle, PeerId};
use futures::StreamExt;

use crate::common::Bridge;
use crate::friends::{Invite, refused, stranger_ego, two_agents};
use cyrcles_testkit::{bounded, wait_for, wait_until};

/// First words a stranger guesses.
const GUESSES: [&str; 12] = [
    "abandon", "ability", "able", "about", "above", "absent", "absorb", "abstract", "absurd",
    "abuse", "access", "accident",
];

/// The words a stranger may know: the number was overheard.
fn nameplate_of(code: &str) -> u16 {
    code.split('-').next().unwrap().parse().unwrap()
}

/// Keys the stranger computes: nameplates with a guessed first word, and
/// the overheard nameplate with the guessed first words but the right one
/// (which it cannot know; that guess is a real one). The key is slow to
/// derive on purpose (Argon2id, protocol section 13): trying all 9999 × 2048
/// takes days of one core, so the stranger's sample here is small.
fn stranger_keys(nameplate: u16, first: &str) -> Vec<[u8; 32]> {
    let mut keys: Vec<[u8; 32]> = (1..=48u16)
        .map(|i| i * 200)
        .filter(|n| *n != nameplate || first != "abandon")
        .map(|n| rendezvous(n, 0))
        .collect();
    keys.extend(GUESSES.iter().filter(|w| **w != first).map(|w| {
        format!("{nameplate}-{w}-zoo")
            .parse::<InviteCode>()
            .unwrap()
            .rendezvous()
    }));
    keys
}

/// Junk hellos from `from` to `peer`: garbage, a made-up key, a party
/// without a record, another node's party. Each is refused without a
/// reply; returns the refusals.
async fn junk_hellos(from: &NodeHandle, peer: PeerId, nameplate: u16, key: [u8; 32]) -> usize {
    let stranger = Party {
        ego_id: stranger_ego(),
        ego_pk: SecretKey::from_seed(&[7; 32]).public(),
        peer_id: from.peer_id().to_bytes(),
    };
    let hello = |nameplate: u16, rendezvous: [u8; 32], acceptor: Party| InviteHello {
        nameplate,
        pake: [9; PAKE_MESSAGE_LEN],
        acceptor,
        rendezvous,
    };
    let mut someone_else = stranger.clone();
    someone_else.peer_id = PeerId::random().to_bytes();
    let messages = vec![
        Envelope {
            kind: kind::HELLO,
            body: vec![0xa7; 40],
        },
        Envelope::wrap(kind::HELLO, &hello(nameplate, [3; 32], stranger.clone())),
        Envelope::wrap(kind::HELLO, &hello(nameplate, key, stranger.clone())),
        Envelope::wrap(kind::HELLO, &hello(nameplate, key, someone_else)),
        Envelope::wrap(
            kind::CONFIRM,
            &cyrcles_core::invite::InviteConfirm {
                nameplate,
                confirm: [0; 32],
            },
        ),
    ];
    let mut refusals = 0;
    for m in messages {
        if let Ok(answer) = from.invite(peer, Vec::new(), &m).await {
            assert_ne!(answer.kind, kind::REPLY, "a junk hello got a reply");
            refusals += 1;
        }
    }
    refusals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_invite_completes_while_a_stranger_polls_and_sends_junk_hellos() {
    let (bridge, alice, bob, a, b) = two_agents().await;
    let invite = Invite::open(&alice, "main", "bob").await;
    let nameplate = nameplate_of(invite.code());
    let (stranger, mut events) =
        Bridge::start_with_events(cyrcles_p2p::Clock::system(), Some(&bridge.addr)).await;
    tokio::spawn(async move { while events.recv().await.is_some() {} });

    // It polls every key it can compute, and sends junk to every node it
    // finds there.
    let first_word = invite.code().split('-').nth(1).unwrap().to_string();
    let keys = stranger_keys(nameplate, &first_word);
    let node = stranger.node.clone();
    let found: Vec<(PeerId, [u8; 32])> = futures::stream::iter(keys)
        .map(|key| {
            let node = node.clone();
            async move {
                let peers = node.find_providers(key).await.unwrap_or_default();
                peers.into_iter().map(move |p| (p, key)).collect::<Vec<_>>()
            }
        })
        .buffer_unordered(32)
        .concat()
        .await;
    for (peer, key) in &found {
        junk_hellos(&stranger.node, *peer, nameplate, *key).await;
    }
    // Without the first word, none of those keys is the invite's.
    assert!(found.is_empty(), "{found:?}");
    // And straight to the inviter's node, which her ego's record names,
    // with the right number and the keys it can compute, far past its
    // hello rate.
    let record: VerifiedEgo = bridge.resolve(a).await;
    let (alice_node, addrs) = bridge.target(&record);
    stranger
        .node
        .dial(
            addrs[0]
                .clone()
                .with(cyrcles_p2p::multiaddr::Protocol::P2p(alice_node)),
        )
        .await
        .ok();
    let mut reasons = Vec::new();
    let first = invite.code().split('-').nth(1).unwrap().to_string();
    for w in GUESSES.iter().filter(|w| **w != first) {
        let guess: InviteCode = format!("{nameplate}-{w}-zoo").parse().unwrap();
        junk_hellos(&stranger.node, alice_node, nameplate, guess.rendezvous()).await;
        let stranger_party = Party {
            ego_id: stranger_ego(),
            ego_pk: SecretKey::from_seed(&[7; 32]).public(),
            peer_id: stranger.node.peer_id().to_bytes(),
        };
        let (_, hello) = Acceptor::start(&guess, stranger_party, &mut rand_core::OsRng).unwrap();
        if let Ok(answer) = stranger
            .node
            .invite(alice_node, Vec::new(), &Envelope::wrap(kind::HELLO, &hello))
            .await
        {
            reasons.push(refused(answer));
        }
    }
    assert!(reasons.contains(&RefusedReason::RateLimited), "{reasons:?}");
    assert!(!reasons.is_empty());

    // The friend's agent, with the real code, still makes friends.
    let accepted = bounded(
        90,
        "bob accepting",
        bob.cli(&[
            "--json",
            "friend",
            "accept",
            invite.code(),
            "--name",
            "alice",
        ]),
    )
    .await;
    let bob_side = accepted.ok();
    let (exit, alice_side) = invite.end().await;
    assert_eq!(exit, 0, "{alice_side:?}");
    let alice_side = alice_side.unwrap();
    assert_eq!(bob_side["ego_id"], a.to_string());
    assert_eq!(alice_side["ego_id"], b.to_string());
    assert_eq!(alice_side["fingerprint"], bob_side["fingerprint"]);
}

/// How a squatter answers the acceptor.
#[derive(Clone, Copy, Debug)]
enum Squat {
    /// `invite-refused` (invalid).
    Refuse,
    /// A reply with junk: a made-up party and confirmation.
    JunkReply,
    /// A reply naming itself, with an ego that has no record.
    OwnNodeNoEgo,
    /// An answer out of turn.
    OutOfTurn,
    /// No answer (the stream is reset).
    Silence,
}

/// A squatter under `keys`: it answers every invite message as `how`
/// and reports the hellos it gets.
async fn squatter(
    bridge: &Bridge,
    keys: &[[u8; 32]],
    how: Squat,
) -> (Bridge, tokio::sync::mpsc::Receiver<InviteHello>) {
    let (node, mut events) =
        Bridge::start_with_events(cyrcles_p2p::Clock::system(), Some(&bridge.addr)).await;
    // Bounded: the test fails past one hello, so 16 is plenty to see it.
    let (seen, heard) = tokio::sync::mpsc::channel(16);
    let me = node.node.peer_id();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let NodeEvent::Invite {
                message, responder, ..
            } = event
            else {
                continue;
            };
            if let Ok(h) = message.open::<InviteHello>(1024) {
                let _ = seen.try_send(h);
            }
            let party = Party {
                ego_id: EgoId::from_bytes([0x5a; 32]),
                ego_pk: SecretKey::from_seed(&[0x5a; 32]).public(),
                peer_id: me.to_bytes(),
            };
            let reply = |party: Party| InviteReply {
                pake: [1; PAKE_MESSAGE_LEN],
                inviter: party,
                confirm: [2; 32],
            };
            match how {
                Squat::Refuse => responder.respond(Envelope::wrap(
                    kind::REFUSED,
                    &InviteRefused {
                        reason: RefusedReason::Invalid,
                    },
                )),
                Squat::JunkReply => {
                    let mut p = party;
                    p.peer_id = PeerId::random().to_bytes();
                    responder.respond(Envelope::wrap(kind::REPLY, &reply(p)));
                }
                Squat::OwnNodeNoEgo => {
                    responder.respond(Envelope::wrap(kind::REPLY, &reply(party)));
                }
                Squat::OutOfTurn => responder.respond(Envelope::wrap(
                    kind::DONE,
                    &cyrcles_core::invite::InviteDone,
                )),
                Squat::Silence => drop(responder),
            }
        }
    });
    for key in keys {
        wait_until(60, "the squatter's announcement", || async {
            matches!(node.node.provide(*key).await, Ok(n) if n > 0)
        })
        .await;
    }
    (node, heard)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_invite_completes_while_squatters_hold_its_rendezvous() {
    let (bridge, alice, bob, a, b) = two_agents().await;
    let invite = Invite::open(&alice, "main", "bob").await;
    let code: InviteCode = invite.code().parse().unwrap();
    let nameplate = nameplate_of(invite.code());
    // Squatters announce under every key they can compute for the number
    // and, worst case, under the invite's own key (as a node that stores
    // the announcement could work out).
    let mut keys: Vec<[u8; 32]> = (0..4u16).map(|w| rendezvous(nameplate, w)).collect();
    keys.push(code.rendezvous());
    let mut squatters = Vec::new();
    for how in [
        Squat::Refuse,
        Squat::JunkReply,
        Squat::OwnNodeNoEgo,
        Squat::OutOfTurn,
        Squat::Silence,
    ] {
        squatters.push((how, squatter(&bridge, &keys, how).await));
    }
    let announced = wait_for(30, "every squatter under the key", || async {
        let p = bridge.node.find_providers(code.rendezvous()).await.unwrap();
        (p.len() > squatters.len()).then_some(p)
    })
    .await;
    assert!(announced.len() >= 6, "{announced:?}");

    let accepted = bounded(
        120,
        "bob accepting",
        bob.cli(&[
            "--json",
            "friend",
            "accept",
            invite.code(),
            "--name",
            "alice",
        ]),
    )
    .await;
    let bob_side = accepted.ok();
    let (exit, alice_side) = invite.end().await;
    assert_eq!(exit, 0, "{alice_side:?}");
    let alice_side = alice_side.unwrap();
    assert_eq!(bob_side["ego_id"], a.to_string());
    assert_eq!(alice_side["ego_id"], b.to_string());
    assert_eq!(alice_side["fingerprint"], bob_side["fingerprint"]);
    // A squatter Bob tried saw his hello, and no more than one.
    for (how, (_, heard)) in &mut squatters {
        let mut n = 0;
        while heard.try_recv().is_ok() {
            n += 1;
        }
        assert!(n <= 1, "{how:?} got {n} hellos");
    }
}
