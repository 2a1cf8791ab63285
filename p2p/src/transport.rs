//! The TCP transport, refusing to dial addresses that are not public.
//!
//! One choke point for every outbound connection, whatever asked for it: a
//! request to an address a record names, a Kademlia lookup, a rendezvous
//! provider's address, a relay circuit (judged by its relay's address).
//! Unless the node is configured to dial private ranges, a dial to a
//! loopback, private or link-local address fails at once with
//! `MultiaddrNotSupported`, as for an address the node cannot speak.
//! Listening and inbound connections are unaffected.
//!
//! The addresses the node's own program chose are exempt, at their exact
//! IP address and port: the configured bootstrap peers, and the addresses
//! the program dials or reserves relay circuits at explicitly. A bridge on
//! the same machine (`/ip4/127.0.0.1/tcp/4001/p2p/…`) is therefore still
//! reached, while a record naming `127.0.0.1:22` is not.

use std::collections::HashSet;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use libp2p::Multiaddr;
use libp2p::core::transport::{DialOpts, ListenerId, Transport, TransportError, TransportEvent};
use libp2p::multiaddr::Protocol;

use crate::addrs::{first_ip, is_public};
use crate::metrics::Metrics;

/// Most exempt addresses kept (they come from the node's own
/// configuration and program, not from peers).
const MAX_EXEMPT: usize = 1_024;

/// The exact addresses (IP and TCP port) the node's program chose, which
/// are dialled even when private. Shared between the event loop and the
/// transport.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exempt(Arc<Mutex<HashSet<(IpAddr, u16)>>>);

impl Exempt {
    /// Exempts the IP address and TCP port `addr` starts with, if any.
    pub(crate) fn add(&self, addr: &Multiaddr) {
        if let Some(sock) = socket_of(addr) {
            let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if set.len() < MAX_EXEMPT {
                set.insert(sock);
            }
        }
    }

    fn contains(&self, addr: &Multiaddr) -> bool {
        socket_of(addr).is_some_and(|sock| {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&sock)
        })
    }
}

/// The IP address and TCP port an address starts with.
fn socket_of(addr: &Multiaddr) -> Option<(IpAddr, u16)> {
    let ip = first_ip(addr)?;
    match addr.iter().nth(1)? {
        Protocol::Tcp(port) => Some((ip, port)),
        _ => None,
    }
}

/// Wraps a transport; dials only public or exempt addresses unless
/// `allow_private`.
#[derive(Debug)]
pub(crate) struct PublicDials<T> {
    inner: T,
    allow_private: bool,
    exempt: Exempt,
    metrics: Metrics,
}

impl<T> PublicDials<T> {
    pub(crate) fn new(inner: T, allow_private: bool, exempt: Exempt, metrics: Metrics) -> Self {
        Self {
            inner,
            allow_private,
            exempt,
            metrics,
        }
    }
}

impl<T: Transport + Unpin> Transport for PublicDials<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        if !self.allow_private && !is_public(&addr) && !self.exempt.contains(&addr) {
            self.metrics.dial_refused();
            tracing::debug!(%addr, "not dialling a non-public address");
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.inner.dial(addr, opts)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}
