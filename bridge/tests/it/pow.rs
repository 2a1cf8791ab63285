//! The proof-of-work gate (finding 16 of the 2026-12 review): "send again"
//! passes the same gate as the ego form and counts in the load meter, and
//! filling the spent set retires every outstanding token instead of
//! locking every user out.

use serde_json::Value;

use crate::common::{
    Answer, BridgeOptions, Rp, TestAgent, TestBridge, browse, browser, env, input, location,
    open_page,
};

/// Opens an interaction in `b`: its path, the login page.
async fn open(bridge: &TestBridge, rp: &Rp, b: &reqwest::Client) -> (String, String) {
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let (ix, page) = open_page(bridge, b, &url).await;
    (ix, page)
}

/// Posts a form of the interaction `ix` with the page's puzzle solved (or
/// not) and `fields`.
async fn post(
    bridge: &TestBridge,
    b: &reqwest::Client,
    action: &str,
    page: &str,
    solved: bool,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = input(page, "csrf").unwrap();
    let token = input(page, "pow_token").expect("the page carries a puzzle");
    let difficulty: u8 = page
        .split("data-pow-difficulty=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .parse()
        .unwrap();
    let solution = if solved {
        cyrcles_bridge::pow::solve(&token, difficulty).unwrap()
    } else {
        String::new()
    };
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", csrf.as_str()),
        ("pow_token", token.as_str()),
        ("pow_solution", solution.as_str()),
    ];
    form.extend_from_slice(fields);
    b.post(bridge.url(action)).form(&form).send().await.unwrap()
}

/// Waits for the challenge behind `wait` to be approved, then continues
/// to the code.
async fn finish(bridge: &TestBridge, b: &reqwest::Client, wait: &str, ego: &str) -> String {
    let s: Value = b
        .get(format!("{wait}/status?wait=20"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "approved", "{s}");
    browse(bridge, b, &format!("{wait}/continue"), ego)
        .await
        .code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_again_passes_the_gate_and_counts_as_a_start() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: env(&[
            ("CYRCLES_BRIDGE_LOGIN_POW_THRESHOLD_PER_MINUTE", "0"),
            ("CYRCLES_BRIDGE_LOGIN_POW_DIFFICULTY", "8"),
        ]),
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 91).await;
    agent.set_answer(Answer::Silent);
    let ego = agent.ego_text();
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let b = browser();
    let (ix, page) = open(&bridge, &rp, &b).await;
    let r = post(
        &bridge,
        &b,
        &format!("{ix}/ego"),
        &page,
        true,
        &[("ego_id", &ego)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let wait = location(&r);
    let cid = wait.rsplit('/').next().unwrap().to_string();
    let now = bridge.clock.now() as u64;
    assert_eq!(bridge.state.load.count(now), 1);

    // The wait page's "send again" form carries its own puzzle.
    let page = b
        .get(bridge.url(&wait))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-pow-token"), "{page}");
    // Without a solution: refused, and the pending challenge is kept.
    let resend = format!("{ix}/resend");
    let r = post(
        &bridge,
        &b,
        &resend,
        &page,
        false,
        &[("challenge_id", &cid)],
    )
    .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("puzzle"), "{html}");
    let old = bridge
        .state
        .store
        .get_challenge(&cid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, cyrcles_bridge::store::ChallengeStatus::Pending);
    // With one: a new challenge, and the old one cancelled.
    let r = post(&bridge, &b, &resend, &html, true, &[("challenge_id", &cid)]).await;
    assert_eq!(r.status(), 303);
    assert_ne!(location(&r), wait);
    let old = bridge
        .state
        .store
        .get_challenge(&cid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        old.status,
        cyrcles_bridge::store::ChallengeStatus::Cancelled
    );
    // Every attempt counted in the load meter.
    assert_eq!(bridge.state.load.count(now), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filling_the_spent_set_retires_every_token_and_locks_nobody_out() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: env(&[
            ("CYRCLES_BRIDGE_LOGIN_POW_THRESHOLD_PER_MINUTE", "0"),
            ("CYRCLES_BRIDGE_LOGIN_POW_DIFFICULTY", "4"),
            ("CYRCLES_BRIDGE_LOGIN_POW_MAX_SPENT", "20"),
        ]),
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 92).await;
    let ego = agent.ego_text();
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;

    // The attacker collects 40 puzzles and solves them all, then spends 21
    // (each with a login start for an ego that does not exist).
    let attacker = browser();
    let (ix, _) = open(&bridge, &rp, &attacker).await;
    let mut pages = Vec::new();
    for _ in 0..40 {
        let page = attacker
            .get(bridge.url(&ix))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        pages.push(page);
    }
    let nobody = cyrcles_core::EgoId::from_bytes([9; 32]).to_string();
    let action = format!("{ix}/ego");
    for page in &pages[..20] {
        let html = post(
            &bridge,
            &attacker,
            &action,
            page,
            true,
            &[("ego_id", &nobody)],
        )
        .await
        .text()
        .await
        .unwrap();
        assert!(
            html.contains("no valid record"),
            "the puzzle passed: {html}"
        );
    }
    // The 21st finds the set full (it is taken, and ends the epoch).
    post(
        &bridge,
        &attacker,
        &action,
        &pages[20],
        true,
        &[("ego_id", &nobody)],
    )
    .await;
    // The set filled and its epoch ended: the rest of the stock is void.
    for page in &pages[21..] {
        let html = post(
            &bridge,
            &attacker,
            &action,
            page,
            true,
            &[("ego_id", &nobody)],
        )
        .await
        .text()
        .await
        .unwrap();
        assert!(html.contains("puzzle"), "a retired token passed: {html}");
    }
    // A person gets a fresh puzzle and logs in.
    let person = browser();
    let (ix, page) = open(&bridge, &rp, &person).await;
    let r = post(
        &bridge,
        &person,
        &format!("{ix}/ego"),
        &page,
        true,
        &[("ego_id", &ego)],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let wait = bridge.url(&location(&r));
    finish(&bridge, &person, &wait, &ego).await;
}
