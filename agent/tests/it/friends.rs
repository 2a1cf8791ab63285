//! Invites between two real agents over a loopback DHT: the right code
//! makes friends on both sides with the same digits; a wrong code fails
//! on both sides and burns the invite; a hello is one guess, and its
//! replay is refused.

use std::process::Stdio;

use cyrcles_core::envelope::Envelope;
use cyrcles_core::invite::{
    Acceptor, InviteCode, InviteRefused, MAX_INVITE_MESSAGE_SIZE, Party, RefusedReason, kind,
};
use cyrcles_core::{EgoId, SecretKey};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout};

use crate::common::{BIN, Bridge};
use cyrcles_testkit::{Agent, bounded, wait_for};

/// `cyrcles --json friend invite`, running; its first line is the code.
pub struct Invite {
    child: Child,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    code: String,
}

impl Invite {
    pub async fn open(agent: &Agent, ego: &str, name: &str) -> Invite {
        let mut child = agent
            .command(["--json", "friend", "invite", "--ego", ego, "--name", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = bounded(30, "the invite code", lines.next_line())
            .await
            .unwrap()
            .expect("the invite printed nothing");
        let v: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(v["reply"], "invite-open", "{v}");
        let code = v["code"].as_str().unwrap().to_string();
        Invite { child, lines, code }
    }

    /// The code read out.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Waits for the command to end: its exit code and last line.
    pub async fn end(mut self) -> (i32, Option<Value>) {
        let line = bounded(60, "the invite's outcome", self.lines.next_line())
            .await
            .unwrap();
        let status = bounded(10, "the invite command to exit", self.child.wait())
            .await
            .unwrap();
        (
            status.code().unwrap_or(-1),
            line.map(|l| serde_json::from_str(&l).unwrap()),
        )
    }
}

/// Makes `a`'s ego `a_ego` and `b`'s ego `b_ego` friends; `a` calls the
/// friend `b_name`, `b` calls it `a_name`.
pub async fn befriend(a: &Agent, a_ego: &str, b_name: &str, b: &Agent, b_ego: &str, a_name: &str) {
    let invite = Invite::open(a, a_ego, b_name).await;
    let out = bounded(
        60,
        "accepting an invite",
        b.cli(&[
            "--json",
            "friend",
            "accept",
            &invite.code,
            "--as",
            b_ego,
            "--name",
            a_name,
        ]),
    )
    .await;
    out.ok();
    let (code, last) = invite.end().await;
    assert_eq!(code, 0, "{last:?}");
}

pub async fn two_agents() -> (Bridge, Agent, Agent, EgoId, EgoId) {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let alice = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let bob = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let a = alice.create("main").await;
    let b = bob.create("main").await;
    // Each must find the other's record during the exchange.
    bridge.resolve(a).await;
    bridge.resolve(b).await;
    (bridge, alice, bob, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_become_friends_with_an_invite_code() {
    let (_bridge, alice, bob, a, b) = two_agents().await;
    let invite = Invite::open(&alice, "main", "bob").await;
    // The code reads NUMBER-WORD-WORD.
    let parsed: InviteCode = invite.code.parse().unwrap();
    assert_eq!(parsed.to_string(), invite.code);

    let accepted = bounded(
        60,
        "bob accepting",
        bob.cli(&[
            "--json",
            "friend",
            "accept",
            &invite.code,
            "--name",
            "alice",
        ]),
    )
    .await;
    let bob_side = accepted.ok();
    let (code, alice_side) = invite.end().await;
    assert_eq!(code, 0, "{alice_side:?}");
    let alice_side = alice_side.unwrap();
    assert_eq!(alice_side["reply"], "friend");

    // Each holds the other, and both saw the same digits.
    assert_eq!(bob_side["ego_id"], a.to_string());
    assert_eq!(bob_side["name"], "alice");
    assert_eq!(alice_side["ego_id"], b.to_string());
    assert_eq!(alice_side["name"], "bob");
    assert_eq!(alice_side["fingerprint"], bob_side["fingerprint"]);
    let digits = bob_side["fingerprint"].as_str().unwrap();
    assert_eq!(digits.len(), 7, "{digits}");

    // And keep them: `friend list`, also after a restart.
    let list = alice.json(&["friend", "list"]).await;
    assert_eq!(list["friends"][0]["ego_id"], b.to_string());
    let list = bob.json(&["friend", "list"]).await;
    assert_eq!(list["friends"][0]["ego_id"], a.to_string());
    assert_eq!(list["friends"][0]["ego"], "main");

    // The text form tells the person to compare the digits.
    let text = bob.cli(&["friend", "list"]).await;
    assert!(text.stdout.contains(digits), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_fails_on_both_sides_and_burns_the_invite() {
    let (_bridge, alice, bob, _a, _b) = two_agents().await;
    let invite = Invite::open(&alice, "main", "bob").await;
    let right = invite.code.clone();
    let nameplate = right.split('-').next().unwrap().to_string();
    let second = right.split('-').nth(2).unwrap();
    let other = if second == "zoo" { "abandon" } else { "zoo" };
    let wrong = format!("{nameplate}-{}-{other}", right.split('-').nth(1).unwrap());

    let out = bounded(
        60,
        "bob with a wrong code",
        bob.cli(&["friend", "accept", &wrong]),
    )
    .await;
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("did not match"), "{}", out.stderr);
    let (code, last) = invite.end().await;
    assert_eq!(code, 5, "{last:?}");

    // The invite is burnt: the right code no longer works.
    let out = bounded(
        60,
        "bob with the right code",
        bob.cli(&["friend", "accept", &right]),
    )
    .await;
    assert_eq!(out.code, 4, "{out:?}");
    // Nobody became a friend.
    assert_eq!(
        alice.json(&["friend", "list"]).await["friends"],
        Value::Array(vec![])
    );
    assert_eq!(
        bob.json(&["friend", "list"]).await["friends"],
        Value::Array(vec![])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_is_one_guess_and_its_replay_is_refused() {
    let (bridge, alice, bob, _a, _b) = two_agents().await;
    let invite = Invite::open(&alice, "main", "bob").await;
    let code: InviteCode = invite.code.parse().unwrap();
    // Mallory heard the number and even learned the first word, and
    // guesses the second; she has no ego record in the DHT.
    let first = invite.code.split('-').nth(1).unwrap();
    let mut guess: InviteCode = format!("{}-{first}-ability", code.nameplate())
        .parse()
        .unwrap();
    if guess == code {
        guess = format!("{}-{first}-zoo", code.nameplate()).parse().unwrap();
    }
    assert_eq!(guess.rendezvous(), code.rendezvous());
    let node = &bridge.node;
    let providers = find(node, code.rendezvous()).await;
    let party = Party {
        ego_id: stranger_ego(),
        ego_pk: SecretKey::from_seed(&[7; 32]).public(),
        peer_id: node.peer_id().to_bytes(),
    };
    let (_, hello) = Acceptor::start(&guess, party, &mut rand_core::OsRng).unwrap();
    let hello = Envelope::wrap(kind::HELLO, &hello);
    let first = node.invite(providers[0], Vec::new(), &hello).await.unwrap();
    assert_eq!(refused(first), RefusedReason::UnknownParty);
    // That cost the invite nothing. A real guess does: Bob's agent, with
    // a valid ego, types the wrong second word.
    let out = bounded(
        60,
        "bob with a wrong second word",
        bob.cli(&["friend", "accept", &guess.to_string()]),
    )
    .await;
    assert_eq!(out.code, 5, "{out:?}");
    let (exit, last) = invite.end().await;
    assert_eq!(exit, 5, "{last:?}");
    // The invite is spent: the same hello again finds no invite.
    let again = node.invite(providers[0], Vec::new(), &hello).await.unwrap();
    assert_eq!(refused(again), RefusedReason::NoInvite);
}

/// The reason of an `invite-refused` answer.
pub fn refused(e: Envelope) -> RefusedReason {
    assert_eq!(e.kind, kind::REFUSED, "not a refusal");
    e.open::<InviteRefused>(MAX_INVITE_MESSAGE_SIZE)
        .unwrap()
        .reason
}

/// The nodes announced under `key`, once there is one.
pub async fn find(node: &cyrcles_p2p::NodeHandle, key: [u8; 32]) -> Vec<cyrcles_p2p::PeerId> {
    wait_for(30, "the invite's node", || async {
        let p = node.find_providers(key).await.unwrap();
        (!p.is_empty()).then_some(p)
    })
    .await
}

/// An ego id nobody holds.
pub fn stranger_ego() -> EgoId {
    EgoId::from_bytes([7; 32])
}
