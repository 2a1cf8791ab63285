//! Per-address limits count an IPv6 client by its /64 (finding 16 of the
//! 2026-12 review: one subscriber holds a whole /64, so counting per /128
//! gave them 2^64 buckets), and an IPv4-mapped address as the IPv4 address:
//! interaction starts, login starts and registrations alike. The bridge
//! sits behind a proxy here (`http.trust_forwarded_for`), so the test can
//! speak from any address.

use serde_json::json;

use crate::common::{BridgeOptions, REDIRECT, Rp, TestBridge, browser, env, input, location};

async fn authorize(rp: &Rp, b: &reqwest::Client, from: &str) -> reqwest::Response {
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    b.get(url)
        .header("x-forwarded-for", from)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_count_an_ipv6_client_by_its_slash_64() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: env(&[
            ("CYRCLES_BRIDGE_HTTP_TRUST_FORWARDED_FOR", "true"),
            ("CYRCLES_BRIDGE_LOGIN_INTERACTIONS_PER_IP_PER_MINUTE", "3"),
            ("CYRCLES_BRIDGE_LOGIN_STARTS_PER_IP_PER_MINUTE", "2"),
            ("CYRCLES_BRIDGE_OIDC_REGISTRATIONS_PER_IP_PER_HOUR", "2"),
        ]),
        ..Default::default()
    })
    .await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let b = browser();

    // Interaction starts: three from one /64, whatever the host part.
    for (i, from) in [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
        "2001:db8:1:2:abcd::9",
    ]
    .iter()
    .enumerate()
    {
        let r = authorize(&rp, &b, from).await;
        let want = if i < 3 { 303 } else { 429 };
        assert_eq!(r.status(), want, "start {i} from {from}");
    }
    let r = authorize(&rp, &b, "2001:db8:1:3::1").await;
    assert_eq!(r.status(), 303, "the next /64 is another client");
    // An IPv4 client and its IPv4-mapped form are one.
    for from in ["198.51.100.7", "::ffff:198.51.100.7", "198.51.100.7"] {
        assert_eq!(authorize(&rp, &b, from).await.status(), 303);
    }
    assert_eq!(
        authorize(&rp, &b, "::ffff:198.51.100.7").await.status(),
        429
    );

    // Login starts (the ego form): two a minute per /64.
    let nobody = cyrcles_core::EgoId::from_bytes([3; 32]).to_string();
    for (i, host) in ["1", "2", "3"].iter().enumerate() {
        let b = browser();
        let from = format!("2001:db8:2:2::{host}");
        let ix = location(&authorize(&rp, &b, "2001:db8:9:9::1").await);
        let page = b
            .get(bridge.url(&ix))
            .header("x-forwarded-for", "2001:db8:9:9::1")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = input(&page, "csrf").unwrap();
        let r = b
            .post(bridge.url(&format!("{ix}/ego")))
            .header("x-forwarded-for", &from)
            .form(&[("csrf", csrf.as_str()), ("ego_id", nobody.as_str())])
            .send()
            .await
            .unwrap();
        // The first two get as far as looking the ego up.
        let want = if i < 2 { 400 } else { 429 };
        assert_eq!(r.status(), want, "start {i} from {from}");
    }

    // Registrations: two an hour per /64.
    for (i, from) in [
        "2001:db8:3:3::1",
        "2001:db8:3:3::2",
        "2001:db8:3:3::3",
        "2001:db8:3:4::1",
    ]
    .iter()
    .enumerate()
    {
        let r = b
            .post(bridge.url("/register"))
            .header("x-forwarded-for", *from)
            .json(&json!({"redirect_uris": [REDIRECT]}))
            .send()
            .await
            .unwrap();
        let want = if i == 2 { 429 } else { 201 };
        assert_eq!(r.status(), want, "registration {i} from {from}");
    }
}
