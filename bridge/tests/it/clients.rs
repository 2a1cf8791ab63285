//! Registered clients, grants and consents (finding 5 of the 2026-12
//! review): open registration is limited per address prefix, sized, and
//! capped with clients never used going first; a throwaway ego looping
//! `prompt=none` keeps a bounded number of grants; expired and revoked
//! grants, unused clients and the consents of removed clients are purged.

use std::net::IpAddr;
use std::time::Duration;

use cyrcles_bridge::tasks::purge_once;
use openidconnect::OAuth2TokenResponse;
use serde_json::{Value, json};

use crate::attacker::browser_from;
use crate::common::{
    BridgeOptions, REDIRECT, Rp, TestAgent, TestBridge, browse, browser, env, location, query,
};

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Registers a client from `from`: the status and the answer.
async fn register(bridge: &TestBridge, from: IpAddr, meta: &Value) -> (u16, Value) {
    let r = browser_from(from)
        .post(bridge.url("/register"))
        .json(meta)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn site() -> Value {
    json!({"redirect_uris": [REDIRECT], "client_name": "A site"})
}

/// Logs in once through client `id` (which makes it used).
async fn use_client(bridge: &TestBridge, agent: &TestAgent, v: &Value) {
    let id = v["client_id"].as_str().unwrap();
    let rp = Rp::discover(bridge, id, v["client_secret"].as_str()).await;
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    browse(bridge, &browser(), &url, &agent.ego_text())
        .await
        .code();
}

/// Whether client `id` is still known to the bridge.
async fn known(bridge: &TestBridge, id: &str) -> bool {
    bridge.state.store.get_client(id).await.unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_prefix_sized_and_capped() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: env(&[
            ("CYRCLES_BRIDGE_OIDC_REGISTRATIONS_PER_IP_PER_HOUR", "3"),
            ("CYRCLES_BRIDGE_OIDC_MAX_DYNAMIC_CLIENTS", "4"),
            ("CYRCLES_BRIDGE_OIDC_UNUSED_CLIENT_TTL_SECS", "3600"),
        ]),
        ..Default::default()
    })
    .await;
    let agent = TestAgent::start(&bridge, 101).await;
    let (operator_client, _) = bridge.confidential().await;

    // Three an hour from one address, then 429; another address is apart.
    let mut stranger = Vec::new();
    for i in 0..4 {
        // A second apart, so that "oldest" is well defined.
        bridge.clock.advance(1);
        let (status, v) = register(&bridge, ip(30), &site()).await;
        if i < 3 {
            assert_eq!(status, 201, "{v}");
            stranger.push(v["client_id"].as_str().unwrap().to_string());
        } else {
            assert_eq!(status, 429, "{v}");
        }
    }
    // A registration too large is refused whole.
    let long: Vec<String> = (0..20)
        .map(|i| format!("https://big.example/{i}/{}", "p".repeat(450)))
        .collect();
    let (status, v) = register(
        &bridge,
        ip(31),
        &json!({"redirect_uris": long, "subject_type": "public"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"], "invalid_client_metadata");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("too large")
    );

    // The stranger fills the cap from more addresses...
    bridge.clock.advance(1);
    let (status, v) = register(&bridge, ip(32), &site()).await;
    assert_eq!(status, 201);
    stranger.push(v["client_id"].as_str().unwrap().to_string());
    assert_eq!(bridge.state.store.dynamic_clients().await.unwrap(), 4);
    // ...and a real site registering from elsewhere takes the place of the
    // oldest client never used, and its visitors log in.
    bridge.clock.advance(1);
    let (status, real) = register(&bridge, ip(40), &site()).await;
    assert_eq!(status, 201, "{real}");
    assert_eq!(bridge.state.store.dynamic_clients().await.unwrap(), 4);
    assert!(
        !known(&bridge, &stranger[0]).await,
        "the oldest unused went"
    );
    use_client(&bridge, &agent, &real).await;

    // Used clients are kept; when every one has been used, registration
    // is refused rather than dropping one.
    for (i, id) in stranger[1..].iter().enumerate() {
        let row = bridge.state.store.get_client(id).await.unwrap().unwrap();
        assert!(row.first_used_at.is_none(), "{i}");
    }
    for from in [41, 42, 43] {
        bridge.clock.advance(1);
        let (status, v) = register(&bridge, ip(from), &site()).await;
        assert_eq!(status, 201);
        use_client(&bridge, &agent, &v).await;
    }
    let (status, v) = register(&bridge, ip(44), &site()).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"], "temporarily_unavailable");
    assert!(known(&bridge, real["client_id"].as_str().unwrap()).await);

    // Clients never used go after their time; used ones and the operator's
    // stay.
    let used = bridge
        .state
        .store
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.dynamic && c.first_used_at.is_some() && c.client_id != real["client_id"])
        .unwrap();
    // (Its owner deletes it, which makes room.)
    bridge
        .state
        .store
        .delete_client(&used.client_id, bridge.clock.now())
        .await
        .unwrap();
    let (status, unused) = register(&bridge, ip(45), &site()).await;
    assert_eq!(status, 201);
    bridge.clock.advance(3_601);
    purge_once(&bridge.state).await.unwrap();
    assert!(!known(&bridge, unused["client_id"].as_str().unwrap()).await);
    assert!(known(&bridge, real["client_id"].as_str().unwrap()).await);
    assert!(known(&bridge, &operator_client).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throwaway_ego_looping_prompt_none_keeps_few_grants() {
    let bridge = TestBridge::start_with(BridgeOptions {
        env: env(&[
            ("CYRCLES_BRIDGE_OIDC_MAX_GRANTS_PER_SESSION_CLIENT", "5"),
            (
                "CYRCLES_BRIDGE_OIDC_AUTHORIZATIONS_PER_SESSION_PER_MINUTE",
                "30",
            ),
        ]),
        ..Default::default()
    })
    .await;
    let throwaway = TestAgent::start(&bridge, 102).await;
    let person = TestAgent::start(&bridge, 103).await;
    let (id, secret) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    // The throwaway ego logs in once (consenting), then loops prompt=none.
    let b = browser();
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    browse(&bridge, &b, &url, &throwaway.ego_text())
        .await
        .code();
    let sid = bridge
        .state
        .store
        .live_sessions(bridge.clock.now())
        .await
        .unwrap()[0]
        .sid
        .clone();
    let mut codes = 0;
    let mut refused = 0;
    for _ in 0..60 {
        let (url, _, _, _) = rp.auth_url(&[], &[("prompt", "none")]);
        let q = query(&location(&b.get(&url).send().await.unwrap()));
        if q.contains_key("code") {
            codes += 1;
        } else {
            assert_eq!(q["error"], "temporarily_unavailable", "{q:?}");
            refused += 1;
        }
    }
    // The first login counts too: 29 more in the minute, then refused.
    assert_eq!((codes, refused), (29, 31));
    assert!(bridge.state.store.live_grants(&sid, &id).await.unwrap() <= 5);
    // Meanwhile a person logs in through the same client from elsewhere.
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let code = browse(&bridge, &browser(), &url, &person.ego_text())
        .await
        .code();
    rp.exchange(code, verifier).await.unwrap();
    // The rate comes back with the next minute; grants stay bounded.
    bridge.clock.advance(120);
    for _ in 0..20 {
        let (url, _, _, _) = rp.auth_url(&[], &[("prompt", "none")]);
        let q = query(&location(&b.get(&url).send().await.unwrap()));
        assert!(q.contains_key("code"), "{q:?}");
    }
    assert!(bridge.state.store.live_grants(&sid, &id).await.unwrap() <= 5);
    // Codes never redeemed go at their expiry, and their grants with them.
    let grants_before = bridge.state.store.rows("grants").await.unwrap();
    assert!(grants_before >= 50, "{grants_before}");
    bridge.clock.advance(601);
    purge_once(&bridge.state).await.unwrap();
    let grants_after = bridge.state.store.rows("grants").await.unwrap();
    assert!(grants_after <= 2, "{grants_after} grants left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_grants_and_consents_of_removed_clients_are_purged() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 104).await;
    let (status, v) = register(
        &bridge,
        ip(50),
        &json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"]}),
    )
    .await;
    assert_eq!(status, 201);
    let id = v["client_id"].as_str().unwrap().to_string();
    let secret = v["client_secret"].as_str().unwrap().to_string();
    let rp = Rp::discover(&bridge, &id, Some(&secret)).await;
    let (url, _, _, verifier) = rp.auth_url(&[], &[]);
    let code = browse(&bridge, &browser(), &url, &agent.ego_text())
        .await
        .code();
    let tokens = rp.exchange(code, verifier).await.unwrap();
    let refresh = tokens.refresh_token().unwrap().secret().clone();
    assert_eq!(rp.revoke(&bridge, &refresh, &id, &secret).await, 200);
    assert_eq!(bridge.state.store.rows("grants").await.unwrap(), 1);
    assert_eq!(bridge.state.store.rows("consents").await.unwrap(), 1);
    // A day later the revoked grant and its tokens are gone (reuse of a
    // revoked refresh token is refused anyway); the refresh token's own
    // 30 days do not keep them.
    // (Its used code is kept as long, for reuse detection.)
    bridge.clock.advance(24 * 3_600 + 120);
    purge_once(&bridge.state).await.unwrap();
    assert_eq!(bridge.state.store.rows("tokens").await.unwrap(), 0);
    assert_eq!(bridge.state.store.rows("grants").await.unwrap(), 0);
    // The client is removed: its consents go with it.
    bridge
        .state
        .store
        .put_consent(&agent.ego_text(), "a-client-that-is-gone", "openid", 1)
        .await
        .unwrap();
    assert_eq!(bridge.state.store.rows("consents").await.unwrap(), 2);
    let token = v["registration_access_token"].as_str().unwrap();
    let r = browser()
        .delete(bridge.url(&format!("/register/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    purge_once(&bridge.state).await.unwrap();
    assert_eq!(bridge.state.store.rows("consents").await.unwrap(), 0);
}

/// A client removed behind this instance's back (by another instance on
/// the same database) is served from the cache for at most its 5 s by the
/// bridge's clock, then read again: gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_client_is_read_again_once_its_cache_entry_is_stale() {
    let bridge = TestBridge::start().await;
    let (id, _) = bridge.confidential().await;
    assert!(bridge.state.client(&id).await.unwrap().is_some());
    assert!(
        bridge
            .state
            .store
            .delete_client(&id, bridge.clock.now())
            .await
            .unwrap()
    );
    bridge.clock.0.advance(Duration::from_millis(4_999));
    assert!(
        bridge.state.client(&id).await.unwrap().is_some(),
        "cached for 5 s"
    );
    bridge.clock.0.advance(Duration::from_millis(1));
    assert!(
        bridge.state.client(&id).await.unwrap().is_none(),
        "read again after 5 s"
    );
}
