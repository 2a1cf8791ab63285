//! Login approval: the match code, deny, "not me", quotas, auto-approve,
//! how each answer says it was approved, and challenges that ask the
//! person to confirm.

use cyrcles_core::EgoId;
use cyrcles_core::login::{
    Approval, ApprovedBy, ChallengeParams, DenyReason, LoginChallenge, LoginError, LoginResponse,
    verify_approval,
};
use cyrcles_core::record::VerifiedEgo;

use crate::common::{BIN, Bridge, ISSUER};
use cyrcles_testkit::{Agent, bounded, wait_for, wait_until};

async fn setup() -> (Bridge, Agent, EgoId, VerifiedEgo) {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let agent = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let id = agent.create("gaming").await;
    let record = bridge.resolve(id).await;
    (bridge, agent, id, record)
}

/// The approval in an answer; fails the test on a denial.
fn approval(r: LoginResponse) -> Approval {
    match r {
        LoginResponse::Approved(a) => a,
        LoginResponse::Denied(d) => panic!("expected an approval, got a denial: {d:?}"),
    }
}

/// `ch` with `confirm`: the site asks the person to confirm.
fn confirming(ch: &LoginChallenge) -> LoginChallenge {
    LoginChallenge::new(ChallengeParams {
        confirm: true,
        ..ch.params().clone()
    })
    .unwrap()
}

/// Sends a challenge in the background; the handle yields the answer.
fn send(
    bridge: &Bridge,
    record: &VerifiedEgo,
    ch: &cyrcles_core::login::LoginChallenge,
) -> tokio::task::JoinHandle<LoginResponse> {
    let (b, r, c) = (bridge.clone(), record.clone(), ch.clone());
    tokio::spawn(async move { b.login(&r, &c).await.unwrap() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_code_signs_and_a_wrong_one_is_refused_and_counted() {
    let (bridge, agent, id, record) = setup().await;
    let ch = bridge.challenge(id, "shop", 42);
    let answer = send(&bridge, &record, &ch);
    let pending = agent.wait_requests(1).await;
    let r = &pending[0];
    // What the person is shown.
    assert_eq!(r["kind"], "login");
    assert_eq!(r["ego"], "gaming");
    assert_eq!(r["site"], "The shop site");
    assert_eq!(r["bridge"], ISSUER);
    assert_eq!(r["origin"], "https://shop.example");
    assert_eq!(r["client_ip"], "203.0.113.7");
    assert_eq!(r["known_site"], false);
    assert_eq!(r["confirm"], false);
    let rid = r["id"].as_u64().unwrap().to_string();
    // A wrong code: refused (exit 5), counted, the request still waits.
    let out = agent.cli(&["approve", &rid, "--code", "41"]).await;
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("wrong code"), "{}", out.stderr);
    let still = agent.json(&["requests"]).await;
    assert_eq!(still["requests"][0]["wrong_codes"], 1);
    assert!(!answer.is_finished());
    // The right code: the bridge gets a signature that verifies against
    // the ego's record.
    let out = agent.cli(&["approve", &rid, "--code", "42"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let resp = bounded(10, "the answer", answer).await.unwrap();
    let LoginResponse::Approved(a) = resp else {
        panic!("expected an approval, got {resp:?}");
    };
    assert_eq!(verify_approval(&ch, &a, &record, bridge.now()), Ok(()));
    assert_eq!(a.approved_by, Some(ApprovedBy::Person));
    assert!(
        agent.json(&["requests"]).await["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Approving it again: it is gone.
    assert_eq!(agent.cli(&["approve", &rid, "--code", "42"]).await.code, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_wrong_codes_deny_the_request() {
    let (bridge, agent, id, record) = setup().await;
    let answer = send(&bridge, &record, &bridge.challenge(id, "shop", 7));
    let rid = agent.wait_requests(1).await[0]["id"].to_string();
    for (code, left) in [("10", "2 tries left"), ("11", "1 try left")] {
        let out = agent.cli(&["approve", &rid, "--code", code]).await;
        assert_eq!(out.code, 5);
        assert!(out.stderr.contains(left), "{}", out.stderr);
    }
    let out = agent.cli(&["approve", &rid, "--code", "12"]).await;
    assert_eq!(out.code, 5);
    assert!(out.stderr.contains("denied"), "{}", out.stderr);
    let resp = bounded(10, "the answer", answer).await.unwrap();
    assert_eq!(resp, LoginResponse::Denied(DenyReason::User));
    // Even the right code cannot approve it now.
    assert_eq!(agent.cli(&["approve", &rid, "--code", "07"]).await.code, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_and_not_me() {
    let (bridge, agent, id, record) = setup().await;
    // A plain deny.
    let answer = send(&bridge, &record, &bridge.challenge(id, "shop", 1));
    let rid = agent.wait_requests(1).await[0]["id"].to_string();
    assert_eq!(
        agent.json(&["deny", &rid]).await["bans"],
        serde_json::json!([])
    );
    assert_eq!(
        bounded(10, "the answer", answer).await.unwrap(),
        LoginResponse::Denied(DenyReason::User)
    );
    // The site may ask again.
    let answer = send(&bridge, &record, &bridge.challenge(id, "shop", 2));
    let rid = agent.wait_requests(1).await[0]["id"].to_string();
    // "Not me": denied, the site banned for this ego, and recorded.
    let v = agent.json(&["deny", &rid, "--not-me"]).await;
    assert_eq!(v["bans"][0]["reason"], "not-me");
    assert_eq!(
        bounded(10, "the answer", answer).await.unwrap(),
        LoginResponse::Denied(DenyReason::User)
    );
    let bans = agent.json(&["ban", "list"]).await;
    let ban = &bans["bans"][0];
    assert_eq!(ban["target"]["kind"], "site");
    assert_eq!(ban["target"]["client_id"], "shop");
    assert_eq!(ban["ego"], "gaming");
    assert_eq!(ban["detail"]["client_ip"], "203.0.113.7");
    assert_eq!(ban["detail"]["site"], "The shop site");
    // The next request from that site is refused at once, without a prompt.
    let r = bridge
        .login(&record, &bridge.challenge(id, "shop", 3))
        .await
        .unwrap();
    assert_eq!(r, LoginResponse::Denied(DenyReason::Banned));
    assert!(
        agent.json(&["requests"]).await["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Another site still prompts.
    let _other = send(&bridge, &record, &bridge.challenge(id, "forum", 4));
    assert_eq!(agent.wait_requests(1).await[0]["client_id"], "forum");
    // The ban can be lifted.
    let ban_id = ban["id"].to_string();
    agent.json(&["ban", "remove", &ban_id]).await;
    let _again = send(&bridge, &record, &bridge.challenge(id, "shop", 5));
    agent.wait_requests(2).await;
    // Banning the bridge refuses all its sites.
    let rid = agent.json(&["requests"]).await["requests"][0]["id"].to_string();
    agent.json(&["deny", &rid, "--ban-bridge"]).await;
    let r = bridge
        .login(&record, &bridge.challenge(id, "elsewhere", 6))
        .await
        .unwrap();
    assert_eq!(r, LoginResponse::Denied(DenyReason::Banned));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_quota_answers_denied_rate() {
    let (bridge, agent, id, record) = setup().await;
    // Five approved logins per site per ten minutes by default.
    for code in 0..5u8 {
        let answer = send(&bridge, &record, &bridge.challenge(id, "spammy", code));
        let rid = agent.wait_requests(1).await[0]["id"].to_string();
        agent
            .json(&["approve", &rid, "--code", &format!("{code:02}")])
            .await;
        assert!(matches!(
            bounded(10, "the answer", answer).await.unwrap(),
            LoginResponse::Approved(_)
        ));
    }
    let r = bridge
        .login(&record, &bridge.challenge(id, "spammy", 9))
        .await
        .unwrap();
    assert_eq!(r, LoginResponse::Denied(DenyReason::RateLimited));
    assert!(
        agent.json(&["requests"]).await["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Another site is not affected.
    let _other = send(&bridge, &record, &bridge.challenge(id, "calm", 1));
    agent.wait_requests(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_is_bounded_in_requests_and_in_waiting_slots() {
    let (bridge, agent, id, record) = setup().await;
    // One browser network at one bridge: two requests wait at most; a
    // third pushes out the oldest, which is answered as over quota.
    let first = send(&bridge, &record, &bridge.challenge(id, "shop", 1));
    agent.wait_requests(1).await;
    let second = send(&bridge, &record, &bridge.challenge(id, "shop", 2));
    agent.wait_requests(2).await;
    let mut all = vec![
        second,
        send(&bridge, &record, &bridge.challenge(id, "shop", 3)),
    ];
    assert_eq!(
        bounded(10, "the oldest to make room", first).await.unwrap(),
        LoginResponse::Denied(DenyReason::RateLimited)
    );
    let waiting = agent.wait_requests(2).await;
    assert_eq!(waiting.len(), 2);
    // Ten requests per source per ten minutes by default, prompted or not:
    // seven more, one at a time, each pushing out an older one.
    for code in 4..=10 {
        all.push(send(&bridge, &record, &bridge.challenge(id, "shop", code)));
        wait_until(20, "an older request to make room", || async {
            all.iter().filter(|h| h.is_finished()).count() >= all.len() - 2
        })
        .await;
    }
    let r = bridge
        .login(&record, &bridge.challenge(id, "shop", 11))
        .await
        .unwrap();
    assert_eq!(r, LoginResponse::Denied(DenyReason::RateLimited));
    // Another browser network at the same bridge has its own allowance.
    let _other = send(
        &bridge,
        &record,
        &bridge.challenge_from(id, "shop", 12, "198.51.100.20"),
    );
    agent
        .wait_request("the other network's request", |r| {
            r["client_ip"] == "198.51.100.20"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_approve_policy_signs_without_a_prompt() {
    let (bridge, agent, id, record) = setup().await;
    let v = agent
        .json(&[
            "policy", "allow", "--ego", "gaming", "--bridge", ISSUER, "--client", "shop", "--auto",
        ])
        .await;
    assert_eq!(v["auto"], true);
    let ch = bridge.challenge(id, "shop", 33);
    let r = bounded(10, "an auto-approved login", bridge.login(&record, &ch))
        .await
        .unwrap();
    let LoginResponse::Approved(a) = r else {
        panic!("expected an approval, got {r:?}");
    };
    assert_eq!(verify_approval(&ch, &a, &record, bridge.now()), Ok(()));
    // The daemon timed that answer and reports it.
    let status = agent.json(&["status"]).await;
    assert_eq!(status["auto_approvals"]["samples"], 1, "{status}");
    // A site remembered without --auto still prompts, and is marked known.
    agent
        .json(&[
            "policy", "allow", "--ego", "gaming", "--bridge", ISSUER, "--client", "forum",
        ])
        .await;
    let answer = send(&bridge, &record, &bridge.challenge(id, "forum", 8));
    let pending = agent.wait_requests(1).await;
    assert_eq!(pending[0]["known_site"], true);
    // Approving with --remember --auto turns the policy to auto.
    let rid = pending[0]["id"].to_string();
    let v = agent
        .json(&["approve", &rid, "--code", "08", "--remember", "--auto"])
        .await;
    assert_eq!(v["policy"]["auto"], true);
    assert!(matches!(
        bounded(10, "the answer", answer).await.unwrap(),
        LoginResponse::Approved(_)
    ));
    let policies = agent.json(&["policy", "list"]).await;
    assert_eq!(policies["policies"].as_array().unwrap().len(), 2);
    // Removing the policy brings the prompt back.
    let pid = policies["policies"][0]["id"].to_string();
    agent.json(&["policy", "remove", &pid]).await;
    let _prompt = send(&bridge, &record, &bridge.challenge(id, "shop", 9));
    assert_eq!(agent.wait_requests(1).await[0]["client_id"], "shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_challenges_are_refused_without_a_prompt() {
    let (bridge, agent, id, record) = setup().await;
    // For another ego.
    let other: EgoId = EgoId::from_bytes([7; 32]);
    let r = bridge
        .login(&record, &bridge.challenge(other, "shop", 1))
        .await
        .unwrap();
    assert_eq!(r, LoginResponse::Denied(DenyReason::UnknownEgo));
    // Issued in the past beyond the skew: not live.
    let now = bridge.now();
    let stale = cyrcles_core::login::LoginChallenge::new(cyrcles_core::login::ChallengeParams {
        issued_at: now.minus(3600),
        expires_at: now.minus(3500),
        ..bridge.challenge(id, "shop", 1).params().clone()
    })
    .unwrap();
    let r = bridge.login(&record, &stale).await.unwrap();
    assert_eq!(r, LoginResponse::Denied(DenyReason::Invalid));
    assert!(
        agent.json(&["requests"]).await["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prompts_for_the_code_and_approves() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (bridge, agent, id, record) = setup().await;
    let mut watch = agent
        .command(["watch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = watch.stdin.take().unwrap();
    let mut out = BufReader::new(watch.stdout.take().unwrap()).lines();
    let ch = bridge.challenge(id, "shop", 64);
    let answer = send(&bridge, &record, &ch);
    // The request is shown with its site, bridge and browser address.
    let shown = bounded(10, "the prompt", async {
        let mut text = String::new();
        while let Ok(Some(line)) = out.next_line().await {
            text.push_str(&line);
            text.push('\n');
            if text.contains("203.0.113.7") {
                return text;
            }
        }
        text
    })
    .await;
    assert!(
        shown.contains("The shop site") && shown.contains(ISSUER),
        "{shown}"
    );
    // A wrong code is refused and asked again; the right one approves.
    stdin.write_all(b"13\n").await.unwrap();
    bounded(10, "the refusal", async {
        while let Ok(Some(line)) = out.next_line().await {
            if line.contains("wrong code") {
                return;
            }
        }
        panic!("watch ended without refusing the code");
    })
    .await;
    stdin.write_all(b"64\n").await.unwrap();
    let resp = bounded(10, "the answer", answer).await.unwrap();
    let LoginResponse::Approved(a) = resp else {
        panic!("expected an approval, got {resp:?}");
    };
    assert_eq!(verify_approval(&ch, &a, &record, bridge.now()), Ok(()));
    // "n" on the next request: not me.
    let answer = send(&bridge, &record, &bridge.challenge(id, "shop", 65));
    agent.wait_requests(1).await;
    bounded(10, "the second prompt", async {
        while let Ok(Some(line)) = out.next_line().await {
            if line.contains("203.0.113.7") {
                return;
            }
        }
    })
    .await;
    stdin.write_all(b"n\n").await.unwrap();
    assert_eq!(
        bounded(10, "the answer", answer).await.unwrap(),
        LoginResponse::Denied(DenyReason::User)
    );
    let bans = agent.json(&["ban", "list"]).await;
    assert_eq!(bans["bans"][0]["reason"], "not-me");
    // End of input ends the watch.
    drop(stdin);
    let status = bounded(10, "watch to end", watch.wait()).await.unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_notification_announces_each_request() {
    use std::os::unix::fs::PermissionsExt;
    let dir = cyrcles_testkit::TempDir::new("cyt");
    let calls = dir.path().join("calls");
    let fake = dir.path().join("notify-send");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s|' \"$@\" >> {}\necho >> {}\n",
            calls.display(),
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let agent = Agent::builder(BIN)
        .bootstrap(&bridge.addr)
        .env("PATH", path)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .start()
        .await;
    let id = agent.create("gaming").await;
    let record = bridge.resolve(id).await;
    let _answer = send(&bridge, &record, &bridge.challenge(id, "shop", 5));
    let rid = agent.wait_requests(1).await[0]["id"].to_string();
    let text = wait_for(10, "the notification", || async {
        std::fs::read_to_string(&calls)
            .ok()
            .filter(|t| !t.is_empty())
    })
    .await;
    assert!(text.contains("sign in as gaming"), "{text}");
    assert!(text.contains("The shop site"), "{text}");
    assert!(
        text.contains(&format!("cyrcles approve {rid} --code NN")),
        "{text}"
    );
    // The code itself is never in the notification: the person reads it on
    // the login page.
    assert!(!text.contains("--code 05"));
    assert!(!text.contains("confirm"), "{text}");
    // A site that asks the person to confirm says so.
    let _confirm = send(
        &bridge,
        &record,
        &confirming(&bridge.challenge(id, "bank", 6)),
    );
    let text = wait_for(10, "the second notification", || async {
        // Each call's arguments end with its "echo"; a body holds newlines
        // of its own.
        std::fs::read_to_string(&calls)
            .ok()
            .filter(|t| t.matches("sign in as gaming").count() >= 2 && t.ends_with("|\n"))
    })
    .await;
    let at = text.rfind("sign in as gaming").unwrap();
    let second = &text[at..];
    assert!(second.contains("The bank site"), "{second}");
    assert!(
        second.contains("The site asks you to confirm this login yourself."),
        "{second}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_from_before_origins_were_recorded_answers_policy() {
    use sqlx::Connection;
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let mut agent = Agent::builder(BIN).bootstrap(&bridge.addr).start().await;
    let id = agent.create("gaming").await;
    let record = bridge.resolve(id).await;
    // A remembered site, made by the person's approval.
    let answer = send(&bridge, &record, &bridge.challenge(id, "shop", 40));
    let rid = agent.wait_requests(1).await[0]["id"].to_string();
    agent
        .json(&["approve", &rid, "--code", "40", "--remember", "--auto"])
        .await;
    bounded(10, "the first answer", answer).await.unwrap();
    agent.stop().await;
    // Make the database what an agent before migration 0004 left: no
    // origin column, and that migration not applied.
    {
        let url = format!("sqlite://{}", agent.home.join("agent.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("ALTER TABLE policies DROP COLUMN origin")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 4")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let old_addrs = record.live_endpoints(bridge.now()).unwrap().peers[0]
        .addrs
        .clone();
    agent.spawn(Some(&bridge.addr), &[]).await;
    // The upgrade cannot know the row came from an approval: it says
    // "policy", which claims nothing about the person.
    let list = agent.json(&["policy", "list"]).await;
    assert_eq!(list["policies"][0]["client"], "shop");
    assert_eq!(list["policies"][0]["origin"], "policy");
    assert_eq!(list["policies"][0]["auto"], true);
    let fresh = bridge
        .resolve_where(id, |r| {
            r.live_endpoints(bridge.now())
                .is_some_and(|e| e.peers[0].addrs != old_addrs)
        })
        .await;
    let ch = bridge.challenge(id, "shop", 41);
    let a = approval(
        bounded(10, "an automatic answer", bridge.login(&fresh, &ch))
            .await
            .unwrap(),
    );
    assert_eq!(a.approved_by, Some(ApprovedBy::Policy));
    assert_eq!(verify_approval(&ch, &a, &fresh, bridge.now()), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_answer_says_how_it_was_approved() {
    let (bridge, agent, id, record) = setup().await;
    let check = |ch: &LoginChallenge, r: LoginResponse, by: ApprovedBy| {
        let a = approval(r);
        assert_eq!(a.approved_by, Some(by), "{:?}", ch.params().client_id);
        // The bridge's check accepts it, and so knows how it was made.
        assert_eq!(verify_approval(ch, &a, &record, bridge.now()), Ok(()));
    };
    // A rule set with `policy allow --auto`: a policy.
    let v = agent
        .json(&[
            "policy", "allow", "--ego", "gaming", "--bridge", ISSUER, "--client", "shop", "--auto",
        ])
        .await;
    assert_eq!(v["origin"], "policy");
    let ch = bridge.challenge(id, "shop", 21);
    let r = bounded(10, "a policy's answer", bridge.login(&record, &ch))
        .await
        .unwrap();
    check(&ch, r, ApprovedBy::Policy);
    // The person types the code and asks to approve the site from now on:
    // this answer is the person's.
    let ch = bridge.challenge(id, "forum", 22);
    let answer = send(&bridge, &record, &ch);
    let rid = agent.wait_requests(1).await[0]["id"].to_string();
    let v = agent
        .json(&["approve", &rid, "--code", "22", "--remember", "--auto"])
        .await;
    assert_eq!(v["policy"]["origin"], "remembered-site");
    check(
        &ch,
        bounded(10, "the person's answer", answer).await.unwrap(),
        ApprovedBy::Person,
    );
    // The next login to that site: a remembered site.
    let ch = bridge.challenge(id, "forum", 23);
    let r = bounded(10, "a remembered site's answer", bridge.login(&record, &ch))
        .await
        .unwrap();
    check(&ch, r, ApprovedBy::RememberedSite);
    // `policy list` says which is which, in JSON and in text.
    let list = agent.json(&["policy", "list"]).await;
    let origins: Vec<_> = list["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["client"].clone(), p["origin"].clone()))
        .collect();
    assert_eq!(
        origins,
        vec![
            ("shop".into(), "policy".into()),
            ("forum".into(), "remembered-site".into())
        ]
    );
    let text = agent.cli(&["policy", "list"]).await;
    assert!(
        text.stdout
            .contains("client shop at https://bridge.test (a policy, approved without asking)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(
            "client forum at https://bridge.test (remembered when you approved a login, approved without asking)"
        ),
        "{}",
        text.stdout
    );
    // A rule set again with `policy allow` is a policy again.
    let v = agent
        .json(&[
            "policy", "allow", "--ego", "gaming", "--bridge", ISSUER, "--client", "forum", "--auto",
        ])
        .await;
    assert_eq!(v["origin"], "policy");
    let ch = bridge.challenge(id, "forum", 24);
    let r = bounded(10, "a policy's answer", bridge.login(&record, &ch))
        .await
        .unwrap();
    check(&ch, r, ApprovedBy::Policy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_asks_the_person_to_confirm_is_never_answered_by_a_policy() {
    let (bridge, agent, id, record) = setup().await;
    agent
        .json(&[
            "policy", "allow", "--ego", "gaming", "--bridge", ISSUER, "--client", "shop", "--auto",
        ])
        .await;
    // A remembered site too: the person approved a login to "forum" and
    // asked for the next ones to go through.
    let first = bridge.challenge(id, "forum", 30);
    let answer = send(&bridge, &record, &first);
    let rid = agent.wait_requests(1).await[0]["id"].to_string();
    agent
        .json(&["approve", &rid, "--code", "30", "--remember", "--auto"])
        .await;
    bounded(10, "the first answer", answer).await.unwrap();
    for (client, code) in [("shop", 31u8), ("forum", 32)] {
        // Without confirm, the site is approved without asking.
        let plain = bridge.challenge(id, client, code);
        let r = bounded(10, "an automatic answer", bridge.login(&record, &plain))
            .await
            .unwrap();
        assert_ne!(approval(r).approved_by, Some(ApprovedBy::Person));
        // With confirm, the request waits for the person: it is queued
        // (so the agent did not answer it by itself) and says why.
        let ch = confirming(&bridge.challenge(id, client, code));
        let answer = send(&bridge, &record, &ch);
        let pending = agent.wait_requests(1).await;
        assert_eq!(pending.len(), 1);
        let r = &pending[0];
        assert_eq!(r["client_id"], client);
        assert_eq!(r["known_site"], true);
        assert_eq!(r["confirm"], true);
        assert!(
            !answer.is_finished(),
            "{client}: answered without the person"
        );
        let text = agent.cli(&["requests"]).await;
        assert!(
            text.stdout
                .contains("the site asks you to confirm this login yourself"),
            "{}",
            text.stdout
        );
        // The agent answers a later plain login by itself, so it has
        // looked at its policies since; still nobody but the person may
        // answer the waiting one.
        let later = bridge.challenge(id, client, code + 10);
        let auto = bounded(
            10,
            "a later automatic answer",
            bridge.login(&record, &later),
        )
        .await
        .unwrap();
        assert_ne!(approval(auto).approved_by, Some(ApprovedBy::Person));
        assert!(
            !answer.is_finished(),
            "{client}: answered without the person"
        );
        // The person approves with the code: the answer says so, and the
        // bridge's check of a confirm challenge accepts it.
        let rid = r["id"].to_string();
        agent
            .json(&["approve", &rid, "--code", &code.to_string()])
            .await;
        let a = approval(bounded(10, "the person's answer", answer).await.unwrap());
        assert_eq!(a.approved_by, Some(ApprovedBy::Person));
        assert_eq!(verify_approval(&ch, &a, &record, bridge.now()), Ok(()));
        // The person's answer cannot be passed off as the answer to the
        // same challenge without confirm, nor shown as a policy's.
        assert!(matches!(
            verify_approval(&plain, &a, &record, bridge.now()),
            Err(LoginError::BadSignature(_))
        ));
        let relabelled = Approval {
            approved_by: Some(ApprovedBy::Policy),
            ..a
        };
        assert!(matches!(
            verify_approval(&ch, &relabelled, &record, bridge.now()),
            Err(LoginError::BadSignature(_))
        ));
    }
    // No automatic answer was timed for the confirm challenges: only the
    // two plain logins and the two later ones.
    let status = agent.json(&["status"]).await;
    assert_eq!(status["auto_approvals"]["samples"], 4, "{status}");
}
