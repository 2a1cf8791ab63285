//! Interactions (finding 5 of the 2026-12 review): every `GET /authorize`
//! without a session stores a request for the login pages. A stranger
//! floods it from several addresses with the largest parameters allowed;
//! the stored rows and bytes stay under the configured bounds, oversized
//! parameters get a clear OAuth error, rows go at their expiry, and a
//! person logging in from elsewhere during the flood gets in.

use std::net::IpAddr;

use futures::StreamExt;

use crate::attacker::browser_from;
use crate::common::{
    BridgeOptions, Rp, TestAgent, TestBridge, browse, browser, env, location, query,
};

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// An authorization URL with every optional parameter at its maximum.
fn heavy_url(rp: &Rp) -> String {
    let scopes: Vec<String> = (0..31).map(|i| format!("{i:0>30}")).collect();
    let claims = format!(
        "{{\"id_token\":{{\"pad\":\"{}\"}}}}",
        "c".repeat(1_024 - 24)
    );
    let (url, _, _, _) = rp.auth_url(
        &scopes.iter().map(String::as_str).collect::<Vec<_>>(),
        &[
            ("login_hint", &"h".repeat(128)),
            ("claims", &claims),
            ("acr_values", &"a".repeat(4_000)),
        ],
    );
    // The library's state and nonce are short: make them the largest.
    let mut u = url::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| match k.as_ref() {
            "state" => (k.into_owned(), "s".repeat(1_024)),
            "nonce" => (k.into_owned(), "n".repeat(512)),
            _ => (k.into_owned(), v.into_owned()),
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_authorization_requests_stays_bounded_and_the_victim_logs_in() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: env(&[
            ("CYRCLES_BRIDGE_LOGIN_MAX_INTERACTIONS", "40"),
            ("CYRCLES_BRIDGE_LOGIN_MAX_INTERACTIONS_PER_IP", "10"),
            (
                "CYRCLES_BRIDGE_LOGIN_INTERACTIONS_PER_IP_PER_MINUTE",
                "10000",
            ),
        ]),
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 71).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let heavy = heavy_url(&rp);
    let max_bytes = 40 * cyrcles_bridge::oidc::authorize::MAX_STORED_REQUEST as i64;

    // The flood: 8 addresses, 60 requests each, all of the largest kind.
    let flood = |round: usize| {
        let heavy = heavy.clone();
        futures::stream::iter(0..8 * 60u32)
            .map(move |i| {
                let b = browser_from(ip(10 + (i % 8) as u8));
                let url = heavy.clone();
                async move {
                    let r = b.get(url).send().await.unwrap();
                    assert!(
                        [303, 503].contains(&r.status().as_u16()),
                        "round {round}: {}",
                        r.status()
                    );
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
    };
    {
        let r = browser_from(ip(9)).get(&heavy).send().await.unwrap();
        let l = location(&r);
        assert!(l.starts_with("/interaction/"), "{}", &l[..l.len().min(300)]);
    }
    flood(0).await;
    let now = bridge.clock.now();
    let (rows, bytes) = bridge.state.store.interaction_load(now).await.unwrap();
    assert!(rows <= 40, "{rows} unfinished interactions kept");
    assert!(bytes <= max_bytes, "{bytes} bytes kept");
    // The heavy ones, without what only /authorize needed (the 4 000-byte
    // acr_values is not kept).
    assert!(rows >= 30, "{rows}");
    assert!(
        (3_000..4_500).contains(&(bytes / rows)),
        "{} bytes per row",
        bytes / rows
    );
    assert!(bridge.state.store.rows("interactions").await.unwrap() <= 40);

    // The person, from another address, logs in while the flood goes on.
    let victim = browser_from(ip(99));
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let ego = agent.ego_text();
    let (end, _) = tokio::join!(browse(&bridge, &victim, &url, &ego), flood(1));
    end.code();
    let (rows, bytes) = bridge
        .state
        .store
        .interaction_load(bridge.clock.now())
        .await
        .unwrap();
    assert!(
        rows <= 40 && bytes <= max_bytes,
        "{rows} rows, {bytes} bytes"
    );

    // Rows go at their expiry, not a day later.
    bridge
        .clock
        .advance(cyrcles_bridge::oidc::authorize::INTERACTION_TTL + 1);
    cyrcles_bridge::tasks::purge_once(&bridge.state)
        .await
        .unwrap();
    assert_eq!(bridge.state.store.rows("interactions").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_parameters_get_an_oauth_error_and_starts_are_limited_per_address() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: env(&[("CYRCLES_BRIDGE_LOGIN_INTERACTIONS_PER_IP_PER_MINUTE", "5")]),
        ..Default::default()
    })
    .await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let b = browser();
    for (k, v) in [
        ("state", "s".repeat(1_025)),
        ("nonce", "n".repeat(513)),
        ("claims", format!("{{\"x\":\"{}\"}}", "c".repeat(1_100))),
    ] {
        let (url, _, _, _) = rp.auth_url(&[], &[]);
        let mut u = url::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(name, _)| name != k)
            .map(|(a, b)| (a.into_owned(), b.into_owned()))
            .chain([(k.to_string(), v.clone())])
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        let r = b.get(u.as_str()).send().await.unwrap();
        assert_eq!(r.status(), 303, "{k}");
        let q = query(&location(&r));
        assert_eq!(q["error"], "invalid_request", "{k}: {q:?}");
        assert!(q["error_description"].contains("too long"), "{q:?}");
    }
    let many: Vec<String> = (0..33).map(|i| format!("s{i}")).collect();
    let (url, _, _, _) = rp.auth_url(&many.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let q = query(&location(&b.get(&url).send().await.unwrap()));
    assert_eq!(q["error"], "invalid_scope", "{q:?}");
    assert_eq!(bridge.state.store.rows("interactions").await.unwrap(), 0);

    // Five starts a minute from one address; the sixth waits; another
    // address is not affected.
    let a = browser_from(ip(20));
    for i in 0..6 {
        let (url, _, _, _) = rp.auth_url(&[], &[]);
        let r = a.get(&url).send().await.unwrap();
        if i < 5 {
            assert_eq!(r.status(), 303, "start {i}");
        } else {
            assert_eq!(r.status(), 429);
            assert!(r.headers().get("retry-after").is_some());
        }
    }
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let r = browser_from(ip(21)).get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    bridge.clock.advance(120);
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    assert_eq!(a.get(&url).send().await.unwrap().status(), 303);
}
