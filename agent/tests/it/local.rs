//! Local programs asking the agent for a signature through the socket.

use std::process::Stdio;

use cyrcles_core::PublicKey;
use cyrcles_core::Signature;
use cyrcles_core::local::LocalRequest;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::BIN;
use cyrcles_testkit::{Agent, bounded, wait_until};

/// Starts `cyrcles sign` as a child of this test process; returns it with
/// the request id and code it printed.
async fn start_sign(agent: &Agent, nonce: Option<&str>) -> (tokio::process::Child, String, String) {
    let mut cmd = agent.command([
        "--json",
        "sign",
        "--ego",
        "gaming",
        "--reason",
        "unlock the notes vault",
    ]);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(n) = nonce {
        cmd.args(["--nonce", n]);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = bounded(10, "the sign prompt", lines.next_line())
        .await
        .unwrap()
        .unwrap();
    // "Waiting for approval: run `cyrcles approve ID --code NN` …"
    let words: Vec<&str> = line.split(['`', ' ']).collect();
    let at = words.iter().position(|w| *w == "approve").unwrap();
    let id = words[at + 1].to_string();
    let code = words[at + 3].to_string();
    (child, id, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_program_gets_a_signature_the_person_approved() {
    let agent = Agent::builder(BIN).start().await;
    agent.create::<cyrcles_core::EgoId>("gaming").await;
    let nonce = "00112233445566778899aabbccddeeff";
    let (child, id, code) = start_sign(&agent, Some(nonce)).await;
    // The person sees which program asks, and why.
    let pending = agent.wait_requests(1).await;
    let me = std::env::current_exe().unwrap().display().to_string();
    assert_eq!(pending[0]["kind"], "local");
    assert_eq!(pending[0]["program"], me);
    assert_eq!(pending[0]["site"], "unlock the notes vault");
    assert_eq!(pending[0]["id"].to_string(), id);
    // A wrong code is refused like for logins.
    let wrong = if code == "00" { "01" } else { "00" };
    assert_eq!(agent.cli(&["approve", &id, "--code", wrong]).await.code, 5);
    agent.json(&["approve", &id, "--code", &code]).await;
    let out = bounded(10, "the signature", child.wait_with_output())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The signature verifies over the message, in the local context, by
    // the ego's certified key; the message names program, reason, nonce.
    let ego = agent.json(&["ego", "show", "gaming"]).await;
    assert_eq!(v["ego_key"], ego["ego_key"]);
    let message = hex::decode(v["message"].as_str().unwrap()).unwrap();
    let req = LocalRequest::decode_bytes(&message).unwrap();
    let pk = PublicKey(
        hex::decode(v["ego_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let sig = Signature(
        hex::decode(v["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert_eq!(req.verify(&pk, &sig), Ok(()));
    assert_eq!(req.params().program, me);
    assert_eq!(req.params().reason, "unlock the notes vault");
    assert_eq!(hex::encode(&req.params().nonce), nonce);
    assert_eq!(
        req.params().ego_id.to_string(),
        ego["ego_id"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_can_be_denied_and_banned() {
    let agent = Agent::builder(BIN).start().await;
    agent.create::<cyrcles_core::EgoId>("gaming").await;
    let (child, id, _) = start_sign(&agent, None).await;
    let v = agent.json(&["deny", &id, "--ban-site"]).await;
    let me = std::env::current_exe().unwrap().display().to_string();
    assert_eq!(v["bans"][0]["target"]["kind"], "program");
    assert_eq!(v["bans"][0]["target"]["path"], me);
    assert!(v["bans"][0]["ego"].is_null());
    let out = bounded(10, "the refusal", child.wait_with_output())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    // The banned program is refused at once.
    let out = agent
        .cli(&["sign", "--ego", "gaming", "--reason", "again"])
        .await;
    assert_eq!(out.code, 9, "{out:?}");
    assert!(out.stderr.contains("banned"), "{}", out.stderr);
    assert!(
        agent.json(&["requests"]).await["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A program that leaves withdraws its request.
    let ban = agent.json(&["ban", "list"]).await["bans"][0]["id"].to_string();
    agent.json(&["ban", "remove", &ban]).await;
    let (mut child, _, _) = start_sign(&agent, None).await;
    agent.wait_requests(1).await;
    child.kill().await.unwrap();
    wait_until(10, "the withdrawal", || async {
        agent.json(&["requests"]).await["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    })
    .await;
    // Bad input: a nonce that is not hex, or too short.
    assert_eq!(
        agent
            .cli(&["sign", "--ego", "gaming", "--reason", "x", "--nonce", "zz"])
            .await
            .code,
        2
    );
    assert_eq!(
        agent
            .cli(&["sign", "--ego", "gaming", "--reason", "x", "--nonce", "00"])
            .await
            .code,
        2
    );
    assert_eq!(
        agent
            .cli(&["sign", "--ego", "nope", "--reason", "x"])
            .await
            .code,
        4
    );
}
