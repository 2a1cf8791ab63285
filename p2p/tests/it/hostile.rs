//! A hostile peer, built from plain libp2p parts and none of the node's
//! checks: it serves whatever record it is told to for a key, ignores what
//! others put to it, puts arbitrary values to any peer, and sends raw bytes
//! on the request-response protocols with no size cap.
//!
//! Shared by the integration tests and the `dht-bench` example.
#![allow(dead_code)]

use std::time::Duration;

use cyrcles_p2p::codec::BytesCodec;
use cyrcles_p2p::protocols;
use futures::StreamExt;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Transport, identify, identity::Keypair, kad, noise,
    request_response, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};

#[derive(NetworkBehaviour)]
struct Evil {
    kad: kad::Behaviour<MemoryStore>,
    identify: identify::Behaviour,
    login: request_response::Behaviour<BytesCodec>,
    circle: request_response::Behaviour<BytesCodec>,
}

enum Cmd {
    Serve {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    PutTo {
        peers: Vec<PeerId>,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Request {
        circle: bool,
        peer: PeerId,
        addr: Multiaddr,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    Bootstrap,
    Provide {
        key: Vec<u8>,
    },
    KnowPeers {
        n: usize,
        reply: oneshot::Sender<()>,
    },
}

/// An outbound raw request: on the circle protocol or not, its id, where
/// the answer goes.
type Pending = (
    bool,
    request_response::OutboundRequestId,
    oneshot::Sender<Result<Vec<u8>, String>>,
);

/// A running hostile peer.
#[derive(Clone)]
pub struct Hostile {
    pub peer_id: PeerId,
    pub addr: Multiaddr,
    tx: mpsc::Sender<Cmd>,
}

fn raw_rr(protocol: StreamProtocol) -> request_response::Behaviour<BytesCodec> {
    request_response::Behaviour::with_codec(
        BytesCodec {
            max_request: 1 << 24,
            max_response: 1 << 24,
        },
        [(protocol, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(20))
            .with_max_concurrent_streams(10_000),
    )
}

impl Hostile {
    /// Starts a hostile peer on loopback that joins through `bootstrap`.
    pub async fn spawn(seed: u64, bootstrap: &Multiaddr) -> Hostile {
        Self::start(seed, bootstrap, "127.0.0.1", true).await
    }

    /// Starts a hostile peer listening on the loopback address `ip` (any
    /// of 127.0.0.0/8) that knows `bootstrap` but does not dial it: the
    /// victim dials it, so that the victim sees the connection at `ip` and
    /// counts it as a host of another network (a dial from this peer would
    /// leave from 127.0.0.1).
    pub async fn spawn_at(seed: u64, bootstrap: &Multiaddr, ip: &str) -> Hostile {
        Self::start(seed, bootstrap, ip, false).await
    }

    async fn start(seed: u64, bootstrap: &Multiaddr, ip: &str, dial: bool) -> Hostile {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8] = 0xe7;
        let keypair = Keypair::ed25519_from_bytes(bytes).unwrap();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_other_transport(|key| {
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    libp2p::core::transport::MemoryTransport::default()
                        .upgrade(libp2p::core::upgrade::Version::V1)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default()),
                )
            })
            .unwrap()
            .with_behaviour(|key| {
                let id = key.public().to_peer_id();
                let mut cfg = kad::Config::new(protocols::KAD);
                cfg.set_record_filtering(kad::StoreInserts::FilterBoth)
                    .set_periodic_bootstrap_interval(None)
                    .set_max_packet_size(1 << 20)
                    .set_publication_interval(None)
                    .set_replication_interval(None);
                let store = MemoryStore::with_config(
                    id,
                    MemoryStoreConfig {
                        max_value_bytes: 1 << 20,
                        ..Default::default()
                    },
                );
                let mut kad = kad::Behaviour::with_config(id, store, cfg);
                kad.set_mode(Some(kad::Mode::Server));
                Evil {
                    kad,
                    identify: identify::Behaviour::new(identify::Config::new(
                        protocols::IDENTIFY_VERSION.into(),
                        key.public(),
                    )),
                    login: raw_rr(protocols::LOGIN),
                    circle: raw_rr(protocols::CIRCLE),
                }
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        // Listen on the same kind of transport as the network it joins.
        let in_memory = bootstrap
            .iter()
            .any(|p| matches!(p, libp2p::multiaddr::Protocol::Memory(_)));
        let listen = if in_memory {
            "/memory/0".to_string()
        } else {
            format!("/ip4/{ip}/tcp/0")
        };
        swarm.listen_on(listen.parse().unwrap()).unwrap();
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        };
        // Without `dial`, the peer learns the victim only from the
        // victim's own connection (identify), so it never dials it.
        if dial {
            if let Some(libp2p::multiaddr::Protocol::P2p(boot)) = bootstrap.iter().last() {
                swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&boot, bootstrap.clone());
            }
            swarm.dial(bootstrap.clone()).unwrap();
            let _ = swarm.behaviour_mut().kad.bootstrap();
        }
        let peer_id = *swarm.local_peer_id();
        let (tx, mut rx) = mpsc::channel::<Cmd>(1024);
        tokio::spawn(async move {
            let mut pending: Vec<Pending> = Vec::new();
            let mut waiting: Vec<(usize, oneshot::Sender<()>)> = Vec::new();
            loop {
                let known: usize = swarm
                    .behaviour_mut()
                    .kad
                    .kbuckets()
                    .map(|b| b.num_entries())
                    .sum();
                let (ready, still): (Vec<_>, Vec<_>) =
                    waiting.drain(..).partition(|(n, _)| known >= *n);
                waiting = still;
                for (_, reply) in ready {
                    let _ = reply.send(());
                }
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        None => break,
                        Some(Cmd::Serve { key, value }) => {
                            let _ = swarm.behaviour_mut().kad.store_mut()
                                .put(kad::Record::new(key, value));
                        }
                        Some(Cmd::PutTo { peers, key, value }) => {
                            swarm.behaviour_mut().kad.put_record_to(
                                kad::Record::new(key, value), peers.into_iter(), kad::Quorum::One);
                        }
                        Some(Cmd::Request { circle, peer, addr, payload, reply }) => {
                            let b = swarm.behaviour_mut();
                            let rr = if circle { &mut b.circle } else { &mut b.login };
                            let id = rr.send_request_with_addresses(&peer, payload, vec![addr]);
                            pending.push((circle, id, reply));
                        }
                        Some(Cmd::Bootstrap) => { let _ = swarm.behaviour_mut().kad.bootstrap(); }
                        Some(Cmd::KnowPeers { n, reply }) => waiting.push((n, reply)),
                        Some(Cmd::Provide { key }) => {
                            let _ = swarm.behaviour_mut().kad.start_providing(kad::RecordKey::new(&key));
                        }
                    },
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::Behaviour(EvilEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                            for a in info.listen_addrs {
                                swarm.behaviour_mut().kad.add_address(&peer_id, a);
                            }
                        }
                        SwarmEvent::Behaviour(EvilEvent::Login(e)) => answer(&mut pending, false, e),
                        SwarmEvent::Behaviour(EvilEvent::Circle(e)) => answer(&mut pending, true, e),
                        _ => {}
                    },
                }
            }
        });
        Hostile {
            peer_id,
            addr: addr.with(libp2p::multiaddr::Protocol::P2p(peer_id)),
            tx,
        }
    }

    /// Serve `value` to anyone who looks up `key`.
    pub async fn serve(&self, key: &[u8], value: Vec<u8>) {
        let _ = self
            .tx
            .send(Cmd::Serve {
                key: key.to_vec(),
                value,
            })
            .await;
    }

    /// Put `value` under `key` to `peers`, as a Kademlia PUT.
    pub async fn put_to(&self, peers: Vec<PeerId>, key: &[u8], value: Vec<u8>) {
        let _ = self
            .tx
            .send(Cmd::PutTo {
                peers,
                key: key.to_vec(),
                value,
            })
            .await;
    }

    /// Announces itself under `key` (an `ADD_PROVIDER` to the closest
    /// peers).
    pub async fn provide(&self, key: &[u8]) {
        let _ = self.tx.send(Cmd::Provide { key: key.to_vec() }).await;
    }

    /// Waits until the peer's routing table holds `n` peers.
    pub async fn knows(&self, n: usize) {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::KnowPeers { n, reply }).await;
        let _ = rx.await;
    }

    pub async fn bootstrap(&self) {
        let _ = self.tx.send(Cmd::Bootstrap).await;
    }

    /// Sends raw bytes on `/cyrcles/login/1` (or `/cyrcles/circle/1`).
    pub async fn request(
        &self,
        circle: bool,
        peer: PeerId,
        addr: Multiaddr,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let (reply, rx) = oneshot::channel();
        let _ = self
            .tx
            .send(Cmd::Request {
                circle,
                peer,
                addr,
                payload,
                reply,
            })
            .await;
        rx.await
            .unwrap_or_else(|_| Err("hostile peer stopped".into()))
    }
}

fn answer(
    pending: &mut Vec<Pending>,
    circle: bool,
    event: request_response::Event<Vec<u8>, Vec<u8>>,
) {
    let (id, result) = match event {
        request_response::Event::Message {
            message:
                request_response::Message::Response {
                    request_id,
                    response,
                },
            ..
        } => (request_id, Ok(response)),
        request_response::Event::OutboundFailure {
            request_id, error, ..
        } => (request_id, Err(error.to_string())),
        _ => return,
    };
    if let Some(i) = pending
        .iter()
        .position(|(c, r, _)| *c == circle && *r == id)
    {
        let (_, _, reply) = pending.swap_remove(i);
        let _ = reply.send(result);
    }
}
