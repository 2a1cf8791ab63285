//! What an address says about where a peer is: whether it is a public
//! address worth dialling, and the IP prefix it belongs to (for quotas).
//!
//! Addresses in ego records are chosen by whoever signed the record, and
//! anyone can make an ego. A node that dialled every address a record
//! names would connect, on a stranger's request, to its own loopback
//! interface and to the private networks it can reach: a port scan through
//! the node. [`is_public`] is the rule the node applies to every address it
//! takes from a record (unless configured to dial private ranges, as tests
//! and single-machine demos are).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// The network an address belongs to, cut to a prefix length: peers in one
/// prefix share quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    /// The address with every bit past the prefix cleared.
    pub network: IpAddr,
    /// The prefix length in bits.
    pub len: u8,
}

impl IpPrefix {
    /// The prefix of `ip`: IPv4 addresses cut to `v4_len` bits, IPv6 to
    /// `v6_len` (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn of(ip: IpAddr, v4_len: u8, v6_len: u8) -> Self {
        match canonical(ip) {
            IpAddr::V4(a) => {
                let len = v4_len.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                Self {
                    network: IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)),
                    len,
                }
            }
            IpAddr::V6(a) => {
                let len = v6_len.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                Self {
                    network: IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)),
                    len,
                }
            }
        }
    }
}

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The IP address a multiaddr starts with: for a relay circuit, the
/// relay's. `None` for addresses without one (`/memory`, DNS names).
pub fn first_ip(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(a) => Some(IpAddr::V4(a)),
        Protocol::Ip6(a) => Some(IpAddr::V6(a)),
        _ => None,
    }
}

/// Whether `ip` is a globally routable unicast address: not unspecified,
/// loopback, private (RFC 1918, RFC 4193), shared (RFC 6598), link-local,
/// multicast, broadcast, documentation, benchmarking or reserved.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let [b0, b1, b2, _] = a.octets();
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_documentation()
                || b0 == 0
                || (b0 == 100 && (64..128).contains(&b1))
                || (b0 == 192 && b1 == 0 && b2 == 0)
                || (b0 == 198 && (18..20).contains(&b1))
                || b0 >= 240)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            let first = s.first().copied().unwrap_or(0);
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && s.get(1) == Some(&0x0db8))
                || first == 0x0100
                || first == 0x0064)
        }
    }
}

/// Whether a node should dial `addr` when a record names it: its first
/// component is a public IP address (a relay circuit is judged by its
/// relay's address). Addresses without an IP (`/memory`, DNS names, which
/// this node cannot resolve) are not public.
pub fn is_public(addr: &Multiaddr) -> bool {
    first_ip(addr).is_some_and(is_public_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_loopback_and_link_local_ranges_are_not_public() {
        for s in [
            "/ip4/127.0.0.1/tcp/1",
            "/ip4/127.5.5.5/tcp/1",
            "/ip4/10.1.2.3/tcp/1",
            "/ip4/172.16.0.1/tcp/1",
            "/ip4/172.31.255.255/tcp/1",
            "/ip4/192.168.1.1/tcp/1",
            "/ip4/169.254.169.254/tcp/80",
            "/ip4/100.64.0.1/tcp/1",
            "/ip4/0.0.0.0/tcp/1",
            "/ip4/255.255.255.255/tcp/1",
            "/ip4/224.0.0.1/tcp/1",
            "/ip4/192.0.2.1/tcp/1",
            "/ip4/198.18.0.1/tcp/1",
            "/ip4/240.0.0.1/tcp/1",
            "/ip6/::1/tcp/1",
            "/ip6/::/tcp/1",
            "/ip6/fe80::1/tcp/1",
            "/ip6/fd00::1/tcp/1",
            "/ip6/fc00::1/tcp/1",
            "/ip6/ff02::1/tcp/1",
            "/ip6/2001:db8::1/tcp/1",
            "/ip6/::ffff:127.0.0.1/tcp/1",
            "/ip6/::ffff:10.0.0.1/tcp/1",
            "/dns4/localhost/tcp/1",
            "/memory/42",
        ] {
            assert!(!is_public(&ma(s)), "{s} counted as public");
        }
    }

    #[test]
    fn public_addresses_and_relays_at_public_addresses_are_public() {
        for s in [
            "/ip4/1.1.1.1/tcp/4001",
            "/ip4/172.32.0.1/tcp/1",
            "/ip4/100.128.0.1/tcp/1",
            "/ip6/2a01:4f8::1/tcp/4001",
            "/ip6/::ffff:8.8.8.8/tcp/1",
            "/ip4/8.8.8.8/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
        ] {
            assert!(is_public(&ma(s)), "{s} counted as private");
        }
        assert!(!is_public(&ma(
            "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
        )));
    }

    #[test]
    fn prefixes_cut_addresses_and_fold_mapped_ipv4() {
        let p = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            IpPrefix::of(p("203.0.113.77"), 24, 48).to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            IpPrefix::of(p("::ffff:203.0.113.77"), 24, 48),
            IpPrefix::of(p("203.0.113.1"), 24, 48)
        );
        assert_eq!(
            IpPrefix::of(p("2a01:4f8:1:2:3::9"), 24, 48).to_string(),
            "2a01:4f8:1::/48"
        );
        assert_eq!(IpPrefix::of(p("1.2.3.4"), 0, 0).to_string(), "0.0.0.0/0");
        assert_eq!(IpPrefix::of(p("1.2.3.4"), 40, 200).len, 32);
    }
}
