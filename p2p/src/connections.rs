//! Connection limits: in all, per peer, pending, and per remote IP address.
//!
//! libp2p's `connection_limits` behaviour has no per-address limit, and it
//! keeps an (empty) entry for every peer id that ever connected, so a
//! stranger who connects with a fresh identity each time grows it without
//! end. This behaviour counts the same things and forgets a peer or an
//! address when its last connection closes. Inbound connections from one
//! IP address (IPv4 address, IPv6 /64) are capped so that one host cannot
//! take every connection slot; outbound connections are the node's own
//! choice and are counted only in the totals.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::swarm::behaviour::{ConnectionEstablished, DialFailure, ListenFailure};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

use crate::addrs::{IpPrefix, first_ip};

/// The limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Established connections in all.
    pub(crate) max_established: usize,
    /// Established connections per peer.
    pub(crate) max_per_peer: usize,
    /// Inbound connections being set up at once.
    pub(crate) max_pending_incoming: usize,
    /// Inbound connections (pending and established) per remote address.
    pub(crate) max_incoming_per_ip: usize,
    /// Inbound connections being set up per remote address (a handshake
    /// that never finishes holds a pending slot until it times out).
    pub(crate) max_pending_per_ip: usize,
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// All established connections.
    Total,
    /// Connections of one peer.
    PerPeer,
    /// Inbound connections being set up.
    PendingIncoming,
    /// Inbound connections from one address.
    PerIp,
    /// Inbound connections being set up from one address.
    PendingPerIp,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Exceeded::Total => "connection limit reached",
            Exceeded::PerPeer => "connection limit per peer reached",
            Exceeded::PendingIncoming => "too many inbound connections being set up",
            Exceeded::PerIp => "connection limit per address reached",
            Exceeded::PendingPerIp => "too many connections being set up from this address",
        })
    }
}

impl std::error::Error for Exceeded {}

/// The address key inbound connections are counted under: the IPv4
/// address, or the IPv6 /64 (one host's usual allocation).
fn address_key(addr: &Multiaddr) -> Option<IpPrefix> {
    first_ip(addr).map(|ip| IpPrefix::of(ip, 32, 64))
}

/// The behaviour.
pub(crate) struct Behaviour {
    limits: ConnectionLimits,
    pending_incoming: HashMap<ConnectionId, Option<IpPrefix>>,
    established: HashMap<ConnectionId, (PeerId, Option<IpPrefix>)>,
    per_peer: HashMap<PeerId, usize>,
    per_ip: HashMap<IpPrefix, usize>,
    pending_per_ip: HashMap<IpPrefix, usize>,
}

impl Behaviour {
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            pending_incoming: HashMap::new(),
            established: HashMap::new(),
            per_peer: HashMap::new(),
            per_ip: HashMap::new(),
            pending_per_ip: HashMap::new(),
        }
    }

    /// Peers and addresses tracked (for tests of the bound).
    pub(crate) fn tracked(&self) -> (usize, usize) {
        (
            self.per_peer.len(),
            self.per_ip.len().max(self.pending_per_ip.len()),
        )
    }

    /// Forgets a pending inbound connection (it was established, denied
    /// or failed).
    fn end_pending(&mut self, id: ConnectionId) -> Option<IpPrefix> {
        let ip = self.pending_incoming.remove(&id).flatten();
        if let Some(ip) = ip {
            decrement(&mut self.pending_per_ip, &ip);
        }
        ip
    }

    fn deny(e: Exceeded) -> ConnectionDenied {
        ConnectionDenied::new(e)
    }

    fn check_established(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if self.established.len() >= self.limits.max_established {
            return Err(Self::deny(Exceeded::Total));
        }
        if self.per_peer.get(peer).copied().unwrap_or(0) >= self.limits.max_per_peer {
            return Err(Self::deny(Exceeded::PerPeer));
        }
        Ok(())
    }

    fn add_ip(&mut self, ip: Option<IpPrefix>) {
        if let Some(ip) = ip {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        }
    }

    fn remove_ip(&mut self, ip: Option<IpPrefix>) {
        if let Some(ip) = ip {
            decrement(&mut self.per_ip, &ip);
        }
    }

    fn closed(&mut self, id: ConnectionId) {
        if let Some((peer, ip)) = self.established.remove(&id) {
            if let Some(n) = self.per_peer.get_mut(&peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_peer.remove(&peer);
                }
            }
            self.remove_ip(ip);
        }
    }

    fn established(&mut self, id: ConnectionId, peer: PeerId, ip: Option<IpPrefix>) {
        if self.established.insert(id, (peer, ip)).is_none() {
            *self.per_peer.entry(peer).or_insert(0) += 1;
            self.add_ip(ip);
        }
    }
}

fn decrement(map: &mut HashMap<IpPrefix, usize>, ip: &IpPrefix) {
    if let Some(n) = map.get_mut(ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(ip);
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        if self.pending_incoming.len() >= self.limits.max_pending_incoming {
            return Err(Self::deny(Exceeded::PendingIncoming));
        }
        let ip = address_key(remote);
        if let Some(ip) = ip {
            if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_incoming_per_ip {
                return Err(Self::deny(Exceeded::PerIp));
            }
            if self.pending_per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_pending_per_ip
            {
                return Err(Self::deny(Exceeded::PendingPerIp));
            }
            *self.pending_per_ip.entry(ip).or_insert(0) += 1;
        }
        // Counted from now on, so that a burst of handshakes from one host
        // is capped before any of them completes.
        self.add_ip(ip);
        self.pending_incoming.insert(connection_id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // Still counted as pending until the swarm reports the outcome.
        self.check_established(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_established(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => {
                let ip = match endpoint {
                    ConnectedPoint::Listener { .. } => {
                        // The pending entry already counts this address.
                        let ip = self.end_pending(connection_id);
                        self.remove_ip(ip);
                        ip
                    }
                    ConnectedPoint::Dialer { .. } => None,
                };
                self.established(connection_id, peer_id, ip);
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.closed(connection_id);
            }
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. })
                if self.pending_incoming.contains_key(&connection_id) =>
            {
                let ip = self.end_pending(connection_id);
                self.remove_ip(ip);
            }
            FromSwarm::DialFailure(DialFailure { .. }) => {}
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

impl fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("limits", &self.limits)
            .field("established", &self.established.len())
            .field("pending_incoming", &self.pending_incoming.len())
            .finish()
    }
}
