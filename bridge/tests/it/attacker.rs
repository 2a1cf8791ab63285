//! What the attack tests share: a client speaking from a chosen loopback
//! address, the bridge's gauges, and waiting for a condition.

use std::time::Duration;

use crate::common::{TestBridge, bounded};

/// The value of a metric on the bridge's `/metrics` (0 when absent).
pub async fn metric(bridge: &TestBridge, name: &str) -> i64 {
    let text = reqwest::get(bridge.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse::<f64>().unwrap() as i64)
        .unwrap_or(0)
}

/// Polls `check` until it holds, failing the test after `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    bounded(secs, what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// A browser whose connections come from `ip` (any 127.0.0.0/8 address
/// works on loopback): cookies, no automatic redirects.
pub fn browser_from(ip: std::net::IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip)
        .build()
        .unwrap()
}
