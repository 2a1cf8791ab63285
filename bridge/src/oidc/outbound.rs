//! Requests the bridge sends to addresses a stranger chose.
//!
//! A dynamically registered client names its back-channel logout URI, and
//! the bridge POSTs there when a session ends: without a rule, anyone could
//! make the bridge reach its own network (a cloud metadata service, an
//! admin port on loopback, a database behind the firewall). For such
//! clients the URI must be `https` on a name or a public address, and the
//! name must resolve to public addresses only, checked where the request
//! connects (a name that resolved to a public address at registration and
//! to a private one later, DNS rebinding, is refused then). Clients the
//! operator registered are trusted with any `https` or loopback `http` URI.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use cyrcles_p2p::addrs::is_public_ip;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a target is refused.
pub type Refusal = &'static str;

/// Checks a URI a stranger registered: `https`, and its host neither a
/// loopback name nor an address that is not globally routable.
pub fn check_registered(uri: &str) -> Result<(), Refusal> {
    let u = Url::parse(uri).map_err(|_| "not an absolute URI")?;
    if u.scheme() != "https" {
        return Err("must be https");
    }
    match u.host() {
        None => Err("must name a host"),
        Some(Host::Ipv4(a)) if !is_public_ip(IpAddr::V4(a)) => {
            Err("must not be a private, loopback or link-local address")
        }
        Some(Host::Ipv6(a)) if !is_public_ip(IpAddr::V6(a)) => {
            Err("must not be a private, loopback or link-local address")
        }
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                Err("must not be a loopback name")
            } else {
                Ok(())
            }
        }
        Some(_) => Ok(()),
    }
}

/// Resolves names through the system and keeps only public addresses; a
/// name with none fails to resolve.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public_ip(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client for stranger-chosen targets: names resolve to public
/// addresses only, no proxy, no redirects, a short timeout. A URI with an
/// address for its host does not go through the resolver: check it with
/// [`check_registered`] before sending.
fn public_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(PublicOnly))
        .build()
}

/// The rule for targets strangers chose, and the client that reaches them:
/// public `https` targets only, unless the operator allows private ones
/// (`oidc.private_backchannel_targets`: a bridge and its sites on one
/// private network), when they are reached like the operator's own.
#[derive(Debug)]
pub struct StrangerTargets {
    allow_private: bool,
    client: reqwest::Client,
}

impl StrangerTargets {
    /// The rule; `operator` is the client used for the operator's targets.
    pub fn new(allow_private: bool, operator: &reqwest::Client) -> Result<Self, reqwest::Error> {
        let client = if allow_private {
            operator.clone()
        } else {
            public_client()?
        };
        Ok(Self {
            allow_private,
            client,
        })
    }

    /// Checks a target, at registration and again before each request.
    pub fn check(&self, uri: &str) -> Result<(), Refusal> {
        if self.allow_private {
            Ok(())
        } else {
            check_registered(uri)
        }
    }

    /// The client to send with (after [`StrangerTargets::check`]).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_targets_must_be_public_https() {
        for ok in [
            "https://rp.example/bc",
            "https://rp.example:8443/bc",
            "https://93.184.216.34/bc",
            "https://[2606:2800:220:1::1]/bc",
        ] {
            assert_eq!(check_registered(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://rp.example/bc",
            "http://127.0.0.1:8080/bc",
            "https://127.0.0.1/bc",
            "https://10.1.2.3/bc",
            "https://192.168.0.1/bc",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/bc",
            "https://[::1]/bc",
            "https://[fd00::1]/bc",
            "https://[fe80::1]/bc",
            "https://[::ffff:127.0.0.1]/bc",
            "https://0.0.0.0/bc",
            "https://localhost/bc",
            "https://LOCALHOST./bc",
            "https://admin.localhost/bc",
            "https://2130706433/bc",
            "https://0x7f.1/bc",
            "not a uri",
        ] {
            assert!(check_registered(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_not_reached() {
        // `localhost` resolves to loopback on every system: the resolver
        // refuses it, so a request to a name never connects there.
        let r = PublicOnly
            .resolve("localhost".parse().unwrap())
            .await
            .map(|a| a.collect::<Vec<_>>());
        assert!(r.is_err(), "{r:?}");
    }
}
