//! Who sent a request, as far as the agent can tell: the key by which
//! quotas and the pending queue tell an attacker's requests from the
//! person's own.
//!
//! A login challenge names a bridge, a site and the browser's address,
//! but those are claims of the sender. The sender's peer id is not: the
//! libp2p connection authenticates it. So a login's source is its sending
//! peer, and within it the client address prefix the challenge reports
//! (IPv4 /24, IPv6 /64; an absent or unreadable address is one prefix of
//! its own). Through a real bridge the prefix is the bridge's view of the
//! browser, so someone who starts logins for the person's ego from
//! another network lands in another source than the person; a hostile
//! node may claim any prefix, but only under its own peer id.
//!
//! A local program's source is its executable's path.

use std::net::IpAddr;

use cyrcles_p2p::PeerId;

/// Who sent a request (the outer key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Sender {
    /// The node that sent a login challenge.
    Peer(PeerId),
    /// The local program that asked through the socket.
    Program(String),
}

/// The network a browser was in, as the bridge reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Prefix {
    /// The first 24 bits of an IPv4 address (IPv4-mapped IPv6 included).
    V4([u8; 3]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
    /// No address, or not one the agent reads.
    Unknown,
}

/// Where a request came from: the sender, and the browser's network
/// within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Source {
    pub(crate) sender: Sender,
    pub(crate) prefix: Prefix,
}

impl Source {
    /// A login challenge from `peer` reporting `client_ip`.
    pub(crate) fn login(peer: PeerId, client_ip: Option<&str>) -> Self {
        Self {
            sender: Sender::Peer(peer),
            prefix: prefix(client_ip),
        }
    }

    /// A local program's request.
    pub(crate) fn program(path: &str) -> Self {
        Self {
            sender: Sender::Program(path.to_string()),
            prefix: Prefix::Unknown,
        }
    }
}

/// The prefix of a reported client address.
pub(crate) fn prefix(client_ip: Option<&str>) -> Prefix {
    let Some(ip) = client_ip.and_then(|s| s.trim().parse::<IpAddr>().ok()) else {
        return Prefix::Unknown;
    };
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    match (v4, ip) {
        (Some(v4), _) => {
            let [a, b, c, _] = v4.octets();
            Prefix::V4([a, b, c])
        }
        (None, IpAddr::V6(v6)) => {
            let [a, b, c, d, e, f, g, h, ..] = v6.octets();
            Prefix::V6([a, b, c, d, e, f, g, h])
        }
        (None, IpAddr::V4(_)) => Prefix::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_group_a_network() {
        assert_eq!(prefix(Some("203.0.113.7")), prefix(Some("203.0.113.250")));
        assert_ne!(prefix(Some("203.0.113.7")), prefix(Some("203.0.114.7")));
        assert_eq!(
            prefix(Some("::ffff:203.0.113.9")),
            prefix(Some("203.0.113.7"))
        );
        assert_eq!(
            prefix(Some("2001:db8:1:2::1")),
            prefix(Some("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            prefix(Some("2001:db8:1:2::1")),
            prefix(Some("2001:db8:1:3::1"))
        );
        assert_eq!(prefix(None), Prefix::Unknown);
        assert_eq!(prefix(Some("not an address")), Prefix::Unknown);
        assert_eq!(prefix(Some("")), Prefix::Unknown);
    }
}
