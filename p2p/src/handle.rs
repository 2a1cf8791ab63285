//! The cloneable handle through which the agent and the bridge drive a
//! node: typed commands, each with a oneshot reply.

use std::fmt;
use std::sync::Arc;

use cyrcles_core::EgoId;
use cyrcles_core::envelope::Envelope;
use cyrcles_core::login::{LoginChallenge, LoginResponse};
use cyrcles_core::record::{DuplicityKind, RecordError, RollbackError, VerifiedEgo};
use libp2p::{Multiaddr, PeerId};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// The node has stopped (shut down, or its task ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the p2p node has stopped")]
pub struct Stopped;

/// Why a lookup found nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GetError {
    /// No peer returned a valid record that passes the anti-rollback rule.
    #[error("no valid record found ({rejected} answers refused)")]
    NotFound {
        /// Answers that were invalid, stale or in conflict.
        rejected: usize,
    },
    /// The lookup timed out before any valid record arrived.
    #[error("the lookup timed out")]
    Timeout,
    /// The node stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// A record found in the DHT.
#[derive(Debug, Clone)]
pub struct Found {
    /// The best valid record among all answers.
    pub ego: VerifiedEgo,
    /// Valid answers equal to the best (the local copy included).
    pub agreeing: usize,
    /// Answers refused: invalid, stale or conflicting.
    pub rejected: usize,
    /// Peers sent the best record because they answered with an older one,
    /// with none, or with garbage.
    pub corrected: usize,
    /// Set if two valid, incompatible records were seen.
    pub duplicity: Option<DuplicityKind>,
}

/// Why a record could not be published.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublishError {
    /// The record does not verify.
    #[error("invalid record: {0}")]
    Invalid(#[from] RecordError),
    /// The node has seen a better record of this ego.
    #[error("refused by the anti-rollback rule: {0}")]
    Rollback(#[from] RollbackError),
    /// The record store is full.
    #[error("the local record store is full")]
    StoreFull,
    /// The node stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// The outcome of a publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Peers that acknowledged storing the record. The record is kept
    /// locally and republished even when this is 0.
    pub stored_at: usize,
}

/// What lies beneath a [`RequestError`]: the node's account of it and,
/// when libp2p gave one, the error itself (kept as the source). Two causes
/// are equal when they read the same.
#[derive(Debug, Clone)]
pub struct Cause {
    text: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Cause {
    /// A cause with no error beneath it.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            source: None,
        }
    }

    /// A cause told as `text`, with `source` beneath it.
    pub fn caused_by(
        text: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            text: text.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// A cause told as `source` tells itself.
    pub fn from_error(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::caused_by(source.to_string(), source)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Cause {}

/// Why a request to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The peer could not be reached.
    #[error("could not reach the peer: {0}")]
    Unreachable(#[source] Cause),
    /// The peer did not answer in time.
    #[error("the peer did not answer in time")]
    Timeout,
    /// The peer does not speak the protocol.
    #[error("the peer does not support the protocol")]
    Unsupported,
    /// The exchange failed (stream reset, refused, or too large).
    #[error("the exchange failed: {0}")]
    Failed(#[source] Cause),
    /// The answer was not a valid message.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The node stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// A snapshot of the node's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Peers with an open connection.
    pub connected_peers: usize,
    /// Entries in the Kademlia routing table.
    pub routing_table: usize,
    /// Records stored (for others and own).
    pub stored_records: usize,
    /// Current listen addresses, relay circuits included.
    pub listen_addrs: Vec<Multiaddr>,
    /// Panics the event loop caught while handling an event (it went on).
    pub panics: u64,
    /// Rendezvous announcements kept for other peers.
    pub kept_announcements: usize,
    /// Egos in the anti-rollback memory (both parts).
    pub rollback_entries: usize,
    /// Sending networks (or peers without an IP) holding records here.
    pub store_groups: usize,
    /// Peers and addresses the connection limits track (each with an open
    /// or opening connection).
    pub connection_peers_tracked: usize,
    /// See `connection_peers_tracked`.
    pub connection_ips_tracked: usize,
}

/// Which request-response protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `/cyrcles/login/1`.
    Login,
    /// `/cyrcles/circle/1`.
    Circle,
    /// `/cyrcles/invite/1`.
    Invite,
}

impl Protocol {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Login => "login",
            Protocol::Circle => "circle",
            Protocol::Invite => "invite",
        }
    }
}

pub(crate) type Reply<T> = oneshot::Sender<T>;

pub(crate) enum Command {
    Get {
        ego: EgoId,
        reply: Reply<Result<Found, GetError>>,
    },
    Publish {
        record: Vec<u8>,
        reply: Reply<Result<Published, PublishError>>,
    },
    Republish {
        reply: Reply<usize>,
    },
    Dial {
        addr: Multiaddr,
        reply: Reply<Result<(), RequestError>>,
    },
    AddPeer {
        peer: PeerId,
        addr: Multiaddr,
    },
    Bootstrap,
    ListenOn {
        addr: Multiaddr,
        reply: Reply<Result<Multiaddr, RequestError>>,
    },
    Request {
        protocol: Protocol,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        payload: Vec<u8>,
        reply: Reply<Result<Vec<u8>, RequestError>>,
    },
    Status {
        reply: Reply<Status>,
    },
    Stored {
        ego: EgoId,
        reply: Reply<Option<Vec<u8>>>,
    },
    Provide {
        key: [u8; 32],
        reply: Reply<Result<usize, RequestError>>,
    },
    StopProviding {
        key: [u8; 32],
    },
    FindProviders {
        key: [u8; 32],
        reply: Reply<Vec<PeerId>>,
    },
    Shutdown {
        reply: Reply<()>,
    },
    InjectPanic,
}

/// Drives a running node. Cheap to clone; the node stops when every handle
/// is dropped or [`NodeHandle::shutdown`] is called.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) peer_id: PeerId,
    pub(crate) metrics: Metrics,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Command::Get { .. } => "Get",
            Command::Publish { .. } => "Publish",
            Command::Republish { .. } => "Republish",
            Command::Dial { .. } => "Dial",
            Command::AddPeer { .. } => "AddPeer",
            Command::Bootstrap => "Bootstrap",
            Command::ListenOn { .. } => "ListenOn",
            Command::Request { .. } => "Request",
            Command::Status { .. } => "Status",
            Command::Stored { .. } => "Stored",
            Command::Provide { .. } => "Provide",
            Command::StopProviding { .. } => "StopProviding",
            Command::FindProviders { .. } => "FindProviders",
            Command::Shutdown { .. } => "Shutdown",
            Command::InjectPanic => "InjectPanic",
        };
        f.write_str(name)
    }
}

impl NodeHandle {
    /// The node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Looks up an ego's record: asks the closest peers, verifies every
    /// answer, returns the best valid one and sends it to the peers that
    /// answered with less.
    pub async fn get(&self, ego: EgoId) -> Result<Found, GetError> {
        self.call(|reply| Command::Get { ego, reply }).await?
    }

    /// Verifies and publishes a record (stored locally, put to the closest
    /// peers, republished until its certificate expires or a newer one
    /// replaces it).
    pub async fn publish(&self, record: Vec<u8>) -> Result<Published, PublishError> {
        self.call(|reply| Command::Publish { record, reply })
            .await?
    }

    /// Puts every record this node published again, now. Returns how many.
    pub async fn republish(&self) -> Result<usize, Stopped> {
        self.call(|reply| Command::Republish { reply }).await
    }

    /// Dials an address (it should end in `/p2p/<peer id>`).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), RequestError> {
        self.call(|reply| Command::Dial { addr, reply }).await?
    }

    /// Adds a known address of a peer to the routing table.
    pub async fn add_peer(&self, peer: PeerId, addr: Multiaddr) -> Result<(), Stopped> {
        self.tx
            .send(Command::AddPeer { peer, addr })
            .await
            .map_err(|_| Stopped)
    }

    /// Starts a Kademlia bootstrap (a lookup of the node's own id).
    pub async fn bootstrap(&self) -> Result<(), Stopped> {
        self.tx.send(Command::Bootstrap).await.map_err(|_| Stopped)
    }

    /// Listens on an address; for a relay circuit
    /// (`<relay addr>/p2p/<relay id>/p2p-circuit`) this reserves a slot at
    /// the relay. Returns the address once it is active.
    pub async fn listen_on(&self, addr: Multiaddr) -> Result<Multiaddr, RequestError> {
        self.call(|reply| Command::ListenOn { addr, reply }).await?
    }

    /// The record this node holds for `ego` in its DHT store, if any.
    pub async fn stored(&self, ego: EgoId) -> Result<Option<Vec<u8>>, Stopped> {
        self.call(|reply| Command::Stored { ego, reply }).await
    }

    /// Announces this node under a rendezvous `key` (provider records on
    /// the closest peers, kept for the rendezvous lifetime). Returns on how
    /// many peers the announcement was stored.
    pub async fn provide(&self, key: [u8; 32]) -> Result<usize, RequestError> {
        self.call(|reply| Command::Provide { key, reply }).await?
    }

    /// Stops announcing this node under `key` (records already on other
    /// peers expire on their own).
    pub async fn stop_providing(&self, key: [u8; 32]) -> Result<(), Stopped> {
        self.tx
            .send(Command::StopProviding { key })
            .await
            .map_err(|_| Stopped)
    }

    /// The peers announced under `key`. Each is dialled as it is found, so
    /// a request to it right after finds it connected.
    pub async fn find_providers(&self, key: [u8; 32]) -> Result<Vec<PeerId>, Stopped> {
        self.call(|reply| Command::FindProviders { key, reply })
            .await
    }

    /// The current state of the node.
    pub async fn status(&self) -> Result<Status, Stopped> {
        self.call(|reply| Command::Status { reply }).await
    }

    async fn request(
        &self,
        protocol: Protocol,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RequestError> {
        self.call(|reply| Command::Request {
            protocol,
            peer,
            addrs,
            payload,
            reply,
        })
        .await?
    }

    /// Sends a login challenge to an agent peer (bridge side).
    pub async fn login(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        challenge: &LoginChallenge,
    ) -> Result<LoginResponse, RequestError> {
        use cyrcles_core::cbor::Encode;
        let bytes = self
            .request(Protocol::Login, peer, addrs, challenge.to_cbor())
            .await?;
        LoginResponse::decode_bytes(&bytes).map_err(|e| RequestError::Malformed(e.to_string()))
    }

    /// Sends a circle message and waits for the answer.
    pub async fn circle(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        message: &Envelope,
    ) -> Result<Envelope, RequestError> {
        self.envelope(Protocol::Circle, peer, addrs, message).await
    }

    /// Sends an invite message and waits for the answer.
    pub async fn invite(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        message: &Envelope,
    ) -> Result<Envelope, RequestError> {
        self.envelope(Protocol::Invite, peer, addrs, message).await
    }

    async fn envelope(
        &self,
        protocol: Protocol,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        message: &Envelope,
    ) -> Result<Envelope, RequestError> {
        use cyrcles_core::cbor::{Decode, Encode};
        let bytes = self
            .request(protocol, peer, addrs, message.to_cbor())
            .await?;
        Envelope::from_cbor(&bytes, crate::protocols::max_response(protocol))
            .map_err(|e| RequestError::Malformed(e.to_string()))
    }

    /// Whether the node's event loop still runs (it stops after
    /// [`NodeHandle::shutdown`], or if its task ended for any other
    /// reason). A cheap check, without a round trip to the loop.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Makes the event loop panic while it handles this command. For tests
    /// and health checks of the embedding program: the loop catches the
    /// panic, counts it ([`Status::panics`]) and goes on. Nothing on the
    /// network can send this.
    #[doc(hidden)]
    pub async fn inject_panic(&self) -> Result<(), Stopped> {
        self.tx
            .send(Command::InjectPanic)
            .await
            .map_err(|_| Stopped)
    }

    /// Stops the node and waits until it has.
    pub async fn shutdown(&self) {
        let _ = self.call(|reply| Command::Shutdown { reply }).await;
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_request_error_reads_as_before_and_keeps_what_libp2p_said() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by host");
        let e = RequestError::Unreachable(Cause::from_error(io));
        assert_eq!(e.to_string(), "could not reach the peer: refused by host");
        let cause = e.source().expect("the cause");
        let beneath = cause.source().expect("libp2p's error");
        assert!(beneath.downcast_ref::<std::io::Error>().is_some());

        let e = RequestError::Failed(Cause::new("request too large"));
        assert_eq!(e.to_string(), "the exchange failed: request too large");
        assert!(e.source().and_then(|c| c.source()).is_none());

        // Equal when they read the same, whatever lies beneath.
        assert_eq!(
            Cause::caused_by("dial failed", std::io::Error::other("x")),
            Cause::new("dial failed")
        );
    }
}
