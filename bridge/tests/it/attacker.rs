//! What the attack tests share: a client speaking from a chosen loopback
//! address and the bridge's gauges.

use crate::common::TestBridge;

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
