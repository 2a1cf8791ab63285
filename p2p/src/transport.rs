//! The TCP transport, refusing to dial addresses that are not public.
//!
//! One choke point for every outbound connection, whatever asked for it: a
//! request to an address a record names, a Kademlia lookup, a rendezvous
//! provider's address, a relay circuit (judged by its relay's address).
//! Unless the node is configured to dial private ranges, a dial to a
//! loopback, private or link-local address fails at once with
//! `MultiaddrNotSupported`, as for an address the node cannot speak.
//! Listening and inbound connections are unaffected.

use std::pin::Pin;
use std::task::{Context, Poll};

use libp2p::Multiaddr;
use libp2p::core::transport::{DialOpts, ListenerId, Transport, TransportError, TransportEvent};

use crate::addrs::is_public;
use crate::metrics::Metrics;

/// Wraps a transport; dials only public addresses unless `allow_private`.
#[derive(Debug)]
pub(crate) struct PublicDials<T> {
    inner: T,
    allow_private: bool,
    metrics: Metrics,
}

impl<T> PublicDials<T> {
    pub(crate) fn new(inner: T, allow_private: bool, metrics: Metrics) -> Self {
        Self {
            inner,
            allow_private,
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
        if !self.allow_private && !is_public(&addr) {
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
