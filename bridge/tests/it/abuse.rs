//! Bad input of every kind gets the spec's error, never a 500, and leaks
//! nothing; a forged or replayed agent answer, a stale record, floods and
//! cross-site form posts are refused.

use cyrcles_bridge::store::ChallengeStatus;
use serde_json::{Value, json};

use crate::common::{
    Answer, BridgeOptions, REDIRECT, Rp, TestAgent, TestBridge, browse, browser, input, location,
    open_page, query, start_login,
};
use cyrcles_testkit::wait_for;

/// Asserts a response is a client error with nothing internal in it.
async fn clean_error(res: reqwest::Response, status: u16) -> String {
    assert_eq!(res.status().as_u16(), status);
    let body = res.text().await.unwrap();
    for leak in ["panicked", "sqlx", "backtrace", "src/", "Error {"] {
        assert!(!body.contains(leak), "response leaks {leak}: {body}");
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_duplicated_parameters() {
    let bridge = TestBridge::start().await;
    let (id, secret) = bridge.confidential().await;
    let b = browser();
    let base = bridge.url("/authorize");
    // Duplicated client_id: a page, never a redirect.
    let r = b
        .get(format!(
            "{base}?client_id={id}&client_id={id}&redirect_uri={REDIRECT}"
        ))
        .send()
        .await
        .unwrap();
    clean_error(r, 400).await;
    // Unknown client.
    let r = b
        .get(format!("{base}?client_id=nobody&redirect_uri={REDIRECT}"))
        .send()
        .await
        .unwrap();
    clean_error(r, 400).await;
    // Duplicated scope once the client is trusted: redirected invalid_request.
    let r = b
        .get(format!("{base}?client_id={id}&redirect_uri={REDIRECT}&response_type=code&scope=openid&scope=openid"))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&r))["error"], "invalid_request");
    // PKCE plain is refused; an unknown response_type too.
    let r = b
        .get(format!(
            "{base}?client_id={id}&redirect_uri={REDIRECT}&response_type=code&scope=openid&code_challenge=abc&code_challenge_method=plain"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&r))["error"], "invalid_request");
    let r = b
        .get(format!(
            "{base}?client_id={id}&redirect_uri={REDIRECT}&response_type=token&scope=openid"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&r))["error"], "unsupported_response_type");
    // Without openid.
    let r = b
        .get(format!(
            "{base}?client_id={id}&redirect_uri={REDIRECT}&response_type=code&scope=email"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&r))["error"], "invalid_scope");
    // An oversized parameter, and an oversized body.
    let long = "x".repeat(5_000);
    let r = b
        .get(format!(
            "{base}?client_id={id}&redirect_uri={REDIRECT}&state={long}"
        ))
        .send()
        .await
        .unwrap();
    clean_error(r, 400).await;
    // The bridge answers 413 as soon as it sees the length and closes the
    // connection; the client may see the status or a broken pipe.
    match b
        .post(bridge.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 200 * 1024])
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    let b = browser();

    // The token endpoint.
    let token = bridge.url("/token");
    let r = b
        .post(&token)
        .basic_auth(&id, Some("wrong"))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = b
        .post(&token)
        .basic_auth("nobody", Some("x"))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = b
        .post(&token)
        .basic_auth(&id, Some(&secret))
        .form(&[("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = b
        .post(&token)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let r = b
        .post(&token)
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("grant_type", "authorization_code"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = b
        .post(&token)
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "x"}))
        .send()
        .await
        .unwrap();
    clean_error(r, 400).await;
    let r = b
        .post(&token)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "authorization_code"), ("code", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // Registration.
    let reg = bridge.url("/register");
    let r = b
        .post(&reg)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );
    let r = b
        .post(&reg)
        .json(&json!({"redirect_uris": ["http://evil.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_redirect_uri"
    );
    let r = b.post(&reg).json(&json!({"redirect_uris": ["https://ok.example/cb"], "token_endpoint_auth_method": "private_key_jwt"})).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );
    // Registration management with a wrong token.
    let r = b
        .get(bridge.url(&format!("/register/{id}")))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Introspection and revocation need client authentication.
    let r = b
        .post(bridge.url("/introspect"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = b
        .post(bridge.url("/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", "unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "RFC 7009: unknown tokens are not an error");
    // Unknown pages and ids.
    let r = b
        .get(bridge.url("/interaction/not-an-id"))
        .send()
        .await
        .unwrap();
    clean_error(r, 404).await;
    let r = b.get(bridge.url("/nothing-here")).send().await.unwrap();
    clean_error(r, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_codes_and_mismatched_redirects_are_refused() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 41).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let b = browser();
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let code = browse(&bridge, &b, &url, &agent.ego_text()).await.code();
    // A mismatched redirect_uri.
    let r = b
        .post(bridge.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", verifier.secret().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // Codes live 60 s.
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let code = browse(&bridge, &b, &url, &agent.ego_text()).await.code();
    bridge.clock.advance(61);
    let r = rp.exchange(code, verifier).await;
    assert!(format!("{r:?}").contains("invalid_grant"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_or_a_denial_gives_a_clear_page_and_no_code() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 42).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    agent.set_answer(Answer::WrongKey);
    match browse(&bridge, &browser(), &url, &agent.ego_text()).await {
        crate::common::Outcome::Page(200, html) => {
            assert!(html.contains("could not be verified"), "{html}");
            assert!(html.contains("Try again"));
        }
        other => panic!("a forged signature got {other:?}"),
    }
    agent.set_answer(Answer::Deny);
    match browse(&bridge, &browser(), &url, &agent.ego_text()).await {
        crate::common::Outcome::Page(200, html) => assert!(html.contains("Login denied"), "{html}"),
        other => panic!("a denial got {other:?}"),
    }
    assert!(bridge.state.metrics.logins("failed") >= 1);
    assert!(bridge.state.metrics.logins("denied") >= 1);
    // An agent that cannot be reached.
    agent.node.shutdown().await;
    match browse(&bridge, &browser(), &url, &agent.ego_text()).await {
        crate::common::Outcome::Page(200, html) => {
            assert!(html.contains("could not be reached"), "{html}")
        }
        other => panic!("an unreachable agent got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_challenge_is_used_once() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 43).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let b = browser();
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let (_, res, _) = start_login(&bridge, &b, &url, &agent.ego_text()).await;
    let wait = location(&res);
    let cid = wait.rsplit('/').next().unwrap().to_string();
    let c = wait_for(30, "the challenge to be answered", || async {
        let c = bridge
            .state
            .store
            .get_challenge(&cid)
            .await
            .unwrap()
            .unwrap();
        (c.status != ChallengeStatus::Pending).then_some(c)
    })
    .await;
    assert_eq!(c.status, ChallengeStatus::Approved);
    let first = b
        .get(bridge.url(&format!("{wait}/continue")))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 303);
    let second = b
        .get(bridge.url(&format!("{wait}/continue")))
        .send()
        .await
        .unwrap();
    let html = second.text().await.unwrap();
    assert!(html.contains("no longer valid"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_accepted_after_the_bridge_looks_again() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 44).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    // The bridge caches seq 1.
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    browse(&bridge, &browser(), &url, &agent.ego_text())
        .await
        .code();
    // The agent rotates to seq 2 and publishes; the bridge's cache is still
    // fresh, so it first sends the challenge with the stale record, sees the
    // newer key in the answer, looks again, and accepts.
    agent.rotate(bridge.clock.now()).await;
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    browse(&bridge, &browser(), &url, &agent.ego_text())
        .await
        .code();
    let cached = bridge
        .state
        .store
        .get_ego(&agent.ego_text())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached.cert_seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_challenges_per_ego_are_capped() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 45).await;
    agent.set_answer(Answer::Silent);
    let (id, _) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, None).await;
    for i in 0..4 {
        let b = browser();
        let (url, _, _, _) = rp.auth_url(&[], &[]);
        let (ix, page) = open_page(&bridge, &b, &url).await;
        let csrf = input(&page, "csrf").unwrap();
        let r = b
            .post(bridge.url(&format!("{ix}/ego")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("ego_id", agent.ego_text().as_str()),
            ])
            .send()
            .await
            .unwrap();
        if i < 3 {
            assert_eq!(r.status(), 303, "challenge {i}");
        } else {
            let html = clean_error(r, 400).await;
            assert!(html.contains("already waiting"), "{html}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_starts_are_rate_limited_per_ip() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: vec![(
            "CYRCLES_BRIDGE_LOGIN_STARTS_PER_IP_PER_MINUTE".into(),
            "2".into(),
        )],
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 46).await;
    let (id, _) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, None).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let b = browser();
        let (url, _, _, _) = rp.auth_url(&[], &[]);
        let (ix, page) = open_page(&bridge, &b, &url).await;
        let csrf = input(&page, "csrf").unwrap();
        let r = b
            .post(bridge.url(&format!("{ix}/ego")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("ego_id", agent.ego_text().as_str()),
            ])
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![303, 303, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proof_of_work_gate_switches_on_and_verifies() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: vec![
            (
                "CYRCLES_BRIDGE_LOGIN_POW_THRESHOLD_PER_MINUTE".into(),
                "0".into(),
            ),
            ("CYRCLES_BRIDGE_LOGIN_POW_DIFFICULTY".into(), "8".into()),
        ],
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 47).await;
    let (id, _) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, None).await;
    let b = browser();
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let (ix, page) = open_page(&bridge, &b, &url).await;
    assert!(page.contains("data-pow-token"), "the gate is on under load");
    let csrf = input(&page, "csrf").unwrap();
    let token = input(&page, "pow_token").unwrap();
    // Without a solution: the form comes back with an explanation.
    let r = b
        .post(bridge.url(&format!("{ix}/ego")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("ego_id", agent.ego_text().as_str()),
            ("pow_token", token.as_str()),
            ("pow_solution", "0"),
        ])
        .send()
        .await
        .unwrap();
    let html = clean_error(r, 400).await;
    assert!(html.contains("puzzle"));
    // With a solution: accepted.
    let token = input(&html, "pow_token").unwrap();
    let solution = cyrcles_bridge::pow::solve(&token, 8).unwrap();
    let r = b
        .post(bridge.url(&format!("{ix}/ego")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("ego_id", agent.ego_text().as_str()),
            ("pow_token", token.as_str()),
            ("pow_solution", solution.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_their_csrf_token_and_the_browser_that_opened_them() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 48).await;
    let (id, _) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, None).await;
    let b = browser();
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let (ix, page) = open_page(&bridge, &b, &url).await;
    let csrf = input(&page, "csrf").unwrap();
    let r = b
        .post(bridge.url(&format!("{ix}/ego")))
        .form(&[("csrf", "forged"), ("ego_id", agent.ego_text().as_str())])
        .send()
        .await
        .unwrap();
    clean_error(r, 403).await;
    // Another browser (no binding cookie), even with the right token.
    let other = browser();
    let r = other
        .post(bridge.url(&format!("{ix}/ego")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("ego_id", agent.ego_text().as_str()),
        ])
        .send()
        .await
        .unwrap();
    clean_error(r, 403).await;
    // A typo in the ego id is explained, not a crash.
    let r = b
        .post(bridge.url(&format!("{ix}/ego")))
        .form(&[("csrf", csrf.as_str()), ("ego_id", "not-an-ego")])
        .send()
        .await
        .unwrap();
    assert!(clean_error(r, 400).await.contains("not an ego id"));
    // An unknown ego.
    let unknown = cyrcles_core::EgoId::from_bytes([7; 32]).to_string();
    let r = b
        .post(bridge.url(&format!("{ix}/ego")))
        .form(&[("csrf", csrf.as_str()), ("ego_id", unknown.as_str())])
        .send()
        .await
        .unwrap();
    let page = clean_error(r, 400).await;
    assert!(page.contains("no valid record"), "{page}");
    // With the next step: the commands that tell what is wrong.
    assert!(
        page.contains("cyrcles ego list") && page.contains("cyrcles status"),
        "{page}"
    );
    // The typo's hint names a command that works without arguments.
    let r = b
        .post(bridge.url(&format!("{ix}/ego")))
        .form(&[("csrf", csrf.as_str()), ("ego_id", "not-an-ego")])
        .send()
        .await
        .unwrap();
    let page = clean_error(r, 400).await;
    assert!(
        page.contains("cyrcles ego list prints yours") && !page.contains('`'),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_health_and_metrics() {
    let bridge = TestBridge::start().await;
    let b = browser();
    let r = b.get(bridge.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let m = b
        .get(bridge.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("cyrcles_bridge_http_requests_total"), "{m}");
    assert!(m.contains("cyrcles_p2p_connected_peers"));
}
