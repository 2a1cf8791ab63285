//! Limits that hold across instances (issue 12): two bridges behind one
//! issuer on one PostgreSQL database share the spent proof-of-work tokens
//! and the per-address windows, so a solution spent at one is refused at
//! the other, and an address that used up its starts at one waits at the
//! other too.

use std::net::IpAddr;

use serde_json::json;

use crate::attacker::browser_from;
use crate::common::{
    BridgeOptions, Db, REDIRECT, Rp, TestBridge, TestClock, input, location, postgres_db,
};

/// Two instances of one bridge on a fresh PostgreSQL database, and the
/// base URL of the second (it serves the first one's issuer).
async fn two_instances(extra: &[(&str, &str)]) -> Option<(TestBridge, TestBridge, String)> {
    let Some(url) = postgres_db().await else {
        eprintln!("CYRCLES_TEST_POSTGRES_URL is not set: skipped");
        return None;
    };
    let master = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(cyrcles_bridge::random::random_bytes::<32>())
    };
    let mut env: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("CYRCLES_BRIDGE_MASTER_KEY".into(), master));
    let clock = TestClock::new();
    let a = TestBridge::start_with(BridgeOptions {
        db: Db::Postgres(url.clone()),
        clock: clock.clone(),
        env: env.clone(),
        ..Default::default()
    })
    .await;
    env.push(("CYRCLES_BRIDGE_ISSUER".into(), a.issuer.clone()));
    env.push((
        "CYRCLES_BRIDGE_P2P_BOOTSTRAP".into(),
        a.p2p_addr.to_string(),
    ));
    let b = TestBridge::start_with(BridgeOptions {
        db: Db::Postgres(url),
        clock,
        env,
        ..Default::default()
    })
    .await;
    let b_base = format!("http://127.0.0.1:{}", b.state.settings.listen.port());
    assert!(a.state.limits.is_shared() && b.state.limits.is_shared());
    Some((a, b, b_base))
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Opens an interaction at `base`: its path and its login page.
async fn open(rp: &Rp, b: &reqwest::Client, base: &str) -> (String, String) {
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    // The authorization URL names the issuer (instance A); send it to
    // `base` as a load balancer would.
    let url = url::Url::parse(&url).unwrap();
    let url = format!("{base}{}?{}", url.path(), url.query().unwrap());
    let ix = location(&b.get(url).send().await.unwrap());
    let page = b
        .get(format!("{base}{ix}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (ix, page)
}

/// Submits the ego form of `ix` at `base` with a token and its solution.
async fn start(
    b: &reqwest::Client,
    base: &str,
    ix: &str,
    page: &str,
    pow: Option<(&str, &str)>,
) -> reqwest::Response {
    let csrf = input(page, "csrf").unwrap();
    let nobody = cyrcles_core::EgoId::from_bytes([5; 32]).to_string();
    let mut form = vec![("csrf", csrf.as_str()), ("ego_id", nobody.as_str())];
    if let Some((t, s)) = pow {
        form.push(("pow_token", t));
        form.push(("pow_solution", s));
    }
    b.post(format!("{base}{ix}/ego"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_solved_token_spent_on_one_instance_is_refused_on_the_other() {
    let Some((a, _b, b_base)) = two_instances(&[
        ("CYRCLES_BRIDGE_LOGIN_POW_THRESHOLD_PER_MINUTE", "0"),
        ("CYRCLES_BRIDGE_LOGIN_POW_DIFFICULTY", "4"),
    ])
    .await
    else {
        return;
    };
    let (id, secret) = a.confidential().await;
    let rp = Rp::discover(&a, &id, Some(&secret)).await;
    let browser = browser_from(ip(70));
    // A token from A's page passes at B (one gate behind one issuer)...
    let (_, page_a) = open(&rp, &browser, &a.issuer).await;
    let (ix_b, page_b) = open(&rp, &browser, &b_base).await;
    let token = input(&page_a, "pow_token").unwrap();
    let solution = cyrcles_bridge::pow::solve(&token, 4).unwrap();
    let html = start(&browser, &b_base, &ix_b, &page_b, Some((&token, &solution)))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("no valid record"), "A's token at B: {html}");
    // ...and once spent at A, it is refused at B.
    let (ix, page) = open(&rp, &browser, &a.issuer).await;
    let token = input(&page, "pow_token").unwrap();
    let solution = cyrcles_bridge::pow::solve(&token, 4).unwrap();
    let html = start(&browser, &a.issuer, &ix, &page, Some((&token, &solution)))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("no valid record"), "spent at A: {html}");
    // The same solution at B.
    let (ix, page) = open(&rp, &browser, &b_base).await;
    let html = start(&browser, &b_base, &ix, &page, Some((&token, &solution)))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("puzzle"), "replayed at B: {html}");
    // B's own puzzle, solved, passes there.
    let fresh = input(&page, "pow_token").unwrap();
    let solution = cyrcles_bridge::pow::solve(&fresh, 4).unwrap();
    let html = start(&browser, &b_base, &ix, &page, Some((&fresh, &solution)))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("no valid record"), "fresh at B: {html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_limits_reached_on_one_instance_hold_on_the_other() {
    let Some((a, _b, b_base)) = two_instances(&[
        ("CYRCLES_BRIDGE_LOGIN_STARTS_PER_IP_PER_MINUTE", "2"),
        ("CYRCLES_BRIDGE_LOGIN_INTERACTIONS_PER_IP_PER_MINUTE", "3"),
        ("CYRCLES_BRIDGE_OIDC_REGISTRATIONS_PER_IP_PER_HOUR", "1"),
    ])
    .await
    else {
        return;
    };
    let (id, secret) = a.confidential().await;
    let rp = Rp::discover(&a, &id, Some(&secret)).await;
    let browser = browser_from(ip(71));
    // Login starts: two at A, the third at B waits.
    let (ix, page) = open(&rp, &browser, &a.issuer).await;
    for _ in 0..2 {
        assert_eq!(
            start(&browser, &a.issuer, &ix, &page, None).await.status(),
            400
        );
    }
    let (ix_b, page_b) = open(&rp, &browser, &b_base).await;
    assert_eq!(
        start(&browser, &b_base, &ix_b, &page_b, None)
            .await
            .status(),
        429
    );
    // Interaction starts: two were opened above; the third at A is the
    // last, and B refuses the fourth.
    open(&rp, &browser, &a.issuer).await;
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let url = url::Url::parse(&url).unwrap();
    let r = browser
        .get(format!("{b_base}{}?{}", url.path(), url.query().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Another address is not affected at either.
    let other = browser_from(ip(72));
    let (ix, page) = open(&rp, &other, &b_base).await;
    assert_eq!(start(&other, &b_base, &ix, &page, None).await.status(), 400);
    // Registrations: one an hour, wherever it lands.
    let register = |base: String, b: reqwest::Client| async move {
        b.post(format!("{base}/register"))
            .json(&json!({"redirect_uris": [REDIRECT]}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(register(a.issuer.clone(), browser.clone()).await, 201);
    assert_eq!(register(b_base.clone(), browser.clone()).await, 429);
}
