//! Attacks on the node's bounds. In each test an attacker hits one bound
//! (`docs/threat-model.md`, "Bounds on what outsiders can grow"), and the
//! node keeps serving the legitimate peer that comes after.
//!
//! Hostile peers stand for hosts in other networks by listening on other
//! loopback addresses (127.0.1.1 and so on): libp2p dials from its listen
//! address, so the victim sees their connections come from there.

use cyrcles_core::UnixTime;
use cyrcles_core::record::MAX_RECORD_SIZE;
use cyrcles_core::record::PeerEndpoint;
use cyrcles_p2p::NodeConfig;

use crate::common::{Owner, TestNode, config, now, spawn};
use crate::hostile::Hostile;
use cyrcles_testkit::{bounded, wait_until, within};

fn key_of(owner: &Owner) -> Vec<u8> {
    owner.ego_id().dht_key().as_bytes().to_vec()
}

async fn stored(node: &TestNode, owner: &Owner) -> bool {
    node.handle.stored(owner.ego_id()).await.unwrap().is_some()
}

/// A hostile peer at the loopback address `ip` that the victim dials (so
/// that the victim counts it in that address's network), once connected.
async fn hostile_at(victim: &TestNode, seed: u64, ip: &str) -> Hostile {
    let h = Hostile::spawn_at(seed, &victim.addr, ip).await;
    victim.handle.dial(h.addr.clone()).await.unwrap();
    h.knows(1).await;
    h
}

/// Waits until `victim`'s routing table holds `n` peers.
async fn knows(victim: &TestNode, n: usize) {
    wait_until(30, "the routing table to fill", || async {
        victim.handle.status().await.unwrap().routing_table >= n
    })
    .await;
}

/// The loopback TCP address `victim` listens at.
fn tcp_target(victim: &TestNode) -> std::net::SocketAddr {
    let port = victim
        .addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    ([127, 0, 0, 1], port).into()
}

/// A TCP connection from the loopback address `from` that never starts
/// the libp2p handshake (a slow-loris attacker's).
async fn half_open(from: [u8; 4], to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind((from, 0).into()).unwrap();
    s.connect(to).await.unwrap()
}

/// A node that bootstraps from `victim` at the loopback address `ip`.
async fn peer_at(
    seed: u64,
    ip: &str,
    victim: &TestNode,
    tweak: impl Fn(&mut NodeConfig),
) -> TestNode {
    let mut c = config(seed);
    c.listen = vec![format!("/ip4/{ip}/tcp/0").parse().unwrap()];
    c.bootstrap = vec![victim.addr.clone()];
    tweak(&mut c);
    spawn(c).await
}

/// Reproduced attack 1 of issue 12: one PUT of a validly signed record
/// whose certificate ends near `u64::MAX` used to panic the node's event
/// loop (`Instant + Duration` overflow), and so did looking such a record
/// up. The node refuses or stores it, never stops, and still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_valid_until_the_end_of_time_does_not_stop_the_node() {
    bounded(120, "overflow record", async {
        let victim = spawn(config(7_200)).await;
        let honest = peer_at(7_201, "127.0.0.1", &victim, |_| {}).await;
        let hostile = Hostile::spawn(7_202, &victim.addr).await;
        let t = now();
        let m = victim.handle.metrics().clone();

        // The PUT path.
        let mut evil = Owner::new(7_203, t);
        evil.recert(|c| c.not_after = UnixTime::from_secs(u64::MAX - 1));
        hostile
            .put_to(vec![victim.handle.peer_id()], &key_of(&evil), evil.bytes())
            .await;
        wait_until(60, "the PUT to be handled", || async {
            m.records_rejected_total() + m.records_stored() >= 1
        })
        .await;

        // The lookup path: the hostile serves such a record, the honest
        // node has nothing (so the victim corrects it with the record).
        let mut evil2 = Owner::new(7_204, t);
        evil2.recert(|c| c.not_after = UnixTime::from_secs(u64::MAX));
        hostile.serve(&key_of(&evil2), evil2.bytes()).await;
        knows(&victim, 2).await;
        let _ = victim.handle.get(evil2.ego_id()).await;

        let status = victim
            .handle
            .status()
            .await
            .expect("the node still answers");
        assert_eq!(
            status.panics, 0,
            "no panic at all, not even a contained one"
        );
        assert!(victim.handle.is_running());

        // A legitimate ego published by the honest node is still found.
        let owner = Owner::new(7_205, t);
        honest.handle.publish(owner.bytes()).await.unwrap();
        let found = victim.handle.get(owner.ego_id()).await.unwrap();
        assert_eq!(found.ego.ego_id(), owner.ego_id());
    })
    .await;
}

/// A panic while the event loop handles one event is contained: counted,
/// and the node goes on storing and serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_event_loop_is_contained_and_counted() {
    bounded(90, "panic containment", async {
        let victim = spawn(config(7_210)).await;
        let other = peer_at(7_211, "127.0.0.1", &victim, |_| {}).await;
        victim.handle.inject_panic().await.unwrap();
        victim.handle.inject_panic().await.unwrap();
        let status = victim.handle.status().await.expect("the node survived");
        assert_eq!(status.panics, 2);
        assert!(
            victim
                .handle
                .metrics()
                .encode_text()
                .contains("cyrcles_p2p_event_loop_panics_total 2")
        );
        let owner = Owner::new(7_212, now());
        victim.handle.publish(owner.bytes()).await.unwrap();
        wait_until(30, "the other node to find the record", || async {
            other.handle.get(owner.ego_id()).await.is_ok()
        })
        .await;
    })
    .await;
}

/// A record of exactly the protocol's size cap (`MAX_RECORD_SIZE` bytes)
/// verifies, so it must be stored and published too (libp2p's store
/// refuses values of `max_value_bytes` or more: an off-by-one hid it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_of_exactly_the_size_cap_is_stored_and_served() {
    bounded(90, "size cap", async {
        let a = spawn(config(7_220)).await;
        let b = peer_at(7_221, "127.0.0.1", &a, |_| {}).await;
        let owner = owner_of_size(7_222, MAX_RECORD_SIZE);
        assert_eq!(owner.bytes().len(), MAX_RECORD_SIZE);
        a.handle.publish(owner.bytes()).await.unwrap();
        wait_until(30, "the record to be stored at the other node", || async {
            stored(&b, &owner).await
        })
        .await;
        let found = b.handle.get(owner.ego_id()).await.unwrap();
        assert_eq!(found.ego.bytes().len(), MAX_RECORD_SIZE);
    })
    .await;
}

/// An owner whose record encodes to exactly `size` bytes: endpoints padded
/// with addresses of chosen lengths.
pub fn owner_of_size(seed: u64, size: usize) -> Owner {
    let t = now();
    let mut owner = Owner::new(seed, t);
    for full in 0..64usize {
        for last in 1..=256usize {
            let mut addrs: Vec<Vec<u8>> = vec![vec![0xab; 256]; full];
            addrs.push(vec![0xcd; last]);
            let peers: Vec<PeerEndpoint> = addrs
                .chunks(8)
                .enumerate()
                .map(|(i, chunk)| PeerEndpoint {
                    peer_id: vec![0, 36, 8, 1, 18, 32, u8::try_from(i).unwrap()],
                    addrs: chunk.to_vec(),
                })
                .collect();
            if peers.len() > 8 {
                break;
            }
            owner
                .keys
                .record
                .set_endpoints(&owner.keys.ego, peers, t, 3_600)
                .unwrap();
            let len = owner.bytes().len();
            if len == size {
                return owner;
            }
            if len > size {
                break;
            }
        }
    }
    panic!("no record of {size} bytes");
}

/// Throwaway egos are free to make. A flood from one network fills at
/// most its quota of the store; when the store is full, a record from
/// another network evicts the heaviest network's oldest, so a legitimate
/// ego is still stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_network_cannot_fill_the_store() {
    bounded(180, "store quotas", async {
        let mut c = config(7_230);
        c.limits.max_records = 40;
        c.limits.records_per_peer = 20;
        c.limits.records_per_prefix = 30;
        let victim = spawn(c).await;
        let m = victim.handle.metrics().clone();
        let victim_id = victim.handle.peer_id();
        let t = now();

        // Two hosts of 127.0.1.0/24, then one of 127.0.2.0/24, 20 records
        // each.
        let mut seed = 10_000;
        let mut sent = 0;
        for ip in ["127.0.1.1", "127.0.1.2", "127.0.2.1"] {
            let h = hostile_at(&victim, seed, ip).await;
            for _ in 0..20 {
                seed += 1;
                let o = Owner::new(seed, t);
                h.put_to(vec![victim_id], &key_of(&o), o.bytes()).await;
                sent += 1;
            }
            wait_until(60, "the flood to be handled", || async {
                m.records_stored() + m.records_rejected_total() >= sent
            })
            .await;
        }
        let status = victim.handle.status().await.unwrap();
        assert_eq!(status.stored_records, 40);
        assert_eq!(status.store_groups, 2, "{status:?}");
        // 127.0.1.0/24 holds at most its 30, the rest over quota.
        assert_eq!(m.records_rejected("quota"), 10);
        assert!(m.records_evicted() >= 1);

        // A legitimate ego from a third network is still stored.
        let honest = peer_at(7_231, "127.0.0.1", &victim, |_| {}).await;
        let owner = Owner::new(7_232, t);
        honest.handle.publish(owner.bytes()).await.unwrap();
        wait_until(30, "the legitimate record to be stored", || async {
            stored(&victim, &owner).await
        })
        .await;
        let status = victim.handle.status().await.unwrap();
        assert!(status.stored_records <= 41, "{status:?}");
    })
    .await;
}

/// A flood of valid throwaway records fills the part of the anti-rollback
/// memory that other peers' records use; what the node looked up for its
/// own program stays remembered, so an older record of that ego is still
/// refused afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_records_does_not_flush_the_memory_of_egos_looked_up() {
    bounded(150, "rollback memory", async {
        let mut c = config(7_240);
        c.limits.rollback_memory = 10;
        c.limits.rollback_memory_local = 10;
        let victim = spawn(c).await;
        let m = victim.handle.metrics().clone();
        let hostile = Hostile::spawn(7_241, &victim.addr).await;
        let t = now();
        let mut owner = Owner::new(7_242, t);
        let old = owner.bytes();
        owner.rotate(t);
        hostile.serve(&key_of(&owner), owner.bytes()).await;
        knows(&victim, 1).await;
        let found = victim.handle.get(owner.ego_id()).await.unwrap();
        assert_eq!(found.ego.rank().cert_seq, 2);

        for i in 0..30 {
            let o = Owner::new(20_000 + i, t);
            hostile
                .put_to(vec![victim.handle.peer_id()], &key_of(&o), o.bytes())
                .await;
        }
        wait_until(60, "the flood to be stored", || async {
            m.records_stored() >= 30
        })
        .await;

        // The hostile now serves the older record of the ego.
        hostile.serve(&key_of(&owner), old).await;
        // Refused as a rollback (the newer record may also still come back
        // from a copy the victim holds; the older one never does).
        let r = victim.handle.get(owner.ego_id()).await;
        assert!(
            matches!(r, Err(cyrcles_p2p::GetError::NotFound { rejected: 1 }))
                || matches!(&r, Ok(f) if f.ego.rank().cert_seq == 2),
            "the rolled-back record was taken: {:?}",
            r.map(|f| f.ego.rank())
        );
    })
    .await;
}

/// Rendezvous announcements (invites) kept for others: one network gets
/// its quota of them, others still announce, and kept announcements are
/// forgotten at their expiry (libp2p alone forgets them only when their
/// key is asked for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_are_capped_per_network_and_expire() {
    bounded(120, "announcements", async {
        let mut c = config(7_250);
        c.limits.providers_per_peer = 8;
        c.limits.providers_per_prefix = 12;
        c.timers.rendezvous_ttl = std::time::Duration::from_secs(3);
        c.timers.sweep_interval = std::time::Duration::from_millis(300);
        let victim = spawn(c).await;
        let m = victim.handle.metrics().clone();
        let h1 = hostile_at(&victim, 7_251, "127.0.1.1").await;
        let h2 = hostile_at(&victim, 7_252, "127.0.1.2").await;
        for i in 0..10u8 {
            h1.provide(&[i; 32]).await;
            h2.provide(&[100 + i; 32]).await;
        }
        wait_until(60, "the announcements to be handled", || async {
            let s = victim.handle.status().await.unwrap();
            s.kept_announcements == 12 && m.records_rejected("quota") >= 8
        })
        .await;

        // Another network still announces.
        let honest = peer_at(7_253, "127.0.0.1", &victim, |_| {}).await;
        honest.handle.provide([200; 32]).await.unwrap();
        let finder = peer_at(7_254, "127.0.0.1", &victim, |_| {}).await;
        let found = finder.handle.find_providers([200; 32]).await.unwrap();
        assert_eq!(found, vec![honest.handle.peer_id()]);

        // Everything expires.
        wait_until(60, "the announcements to expire", || async {
            victim.handle.status().await.unwrap().kept_announcements == 0
        })
        .await;
    })
    .await;
}

/// One host cannot take every inbound connection slot: connections from
/// one address (here half-open ones that never finish the handshake, as a
/// slow-loris attacker makes them) are capped, and a host elsewhere still
/// connects and is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_one_address_are_capped() {
    bounded(120, "connections per address", async {
        let mut c = config(7_260);
        c.limits.max_connections_per_ip = 3;
        let victim = spawn(c).await;
        let target = tcp_target(&victim);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(half_open([127, 0, 1, 1], target).await);
        }
        // The fourth is closed by the victim at once.
        let fourth = half_open([127, 0, 1, 1], target).await;
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                if fourth.readable().await.is_err() {
                    return true;
                }
                match fourth.try_read(&mut buf) {
                    Ok(0) => return true,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return true,
                    _ => {}
                }
            }
        })
        .await;
        assert_eq!(closed, Ok(true), "the fourth connection stayed open");
        // The first three were admitted: still open.
        for s in &held {
            match s.try_read(&mut buf) {
                Ok(0) => panic!("an admitted connection was closed"),
                Ok(_) => {}
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
            }
        }

        // A host elsewhere still connects and is served.
        let honest = peer_at(7_280, "127.0.0.1", &victim, |_| {}).await;
        let owner = Owner::new(7_281, now());
        honest.handle.publish(owner.bytes()).await.unwrap();
        wait_until(30, "the legitimate record to be stored", || async {
            stored(&victim, &owner).await
        })
        .await;
        drop(held);
    })
    .await;
}

/// Half-open connections from many addresses (slow loris from a small
/// botnet) take at most a few of the slots for connections being set up
/// per address, so a legitimate node still connects while they hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_from_many_addresses_leave_room_for_others() {
    bounded(120, "pending connections", async {
        let mut c = config(7_265);
        c.limits.max_pending_connections = 64;
        let victim = spawn(c).await;
        let target = tcp_target(&victim);
        // Twelve addresses, eight handshakes each that never finish.
        let mut held = Vec::new();
        for host in 0..12u8 {
            for _ in 0..8 {
                held.push(half_open([127, 0, 3, 10 + host], target).await);
            }
        }
        // A node elsewhere connects, publishes, and is stored.
        let honest = peer_at(7_266, "127.0.0.1", &victim, |_| {}).await;
        wait_until(30, "the legitimate connection", || async {
            honest.handle.status().await.unwrap().connected_peers == 1
        })
        .await;
        let owner = Owner::new(7_267, now());
        // A put that timed out on a loaded machine is tried again, as the
        // node's republishing would.
        wait_until(60, "the legitimate record to be stored", || async {
            if !stored(&victim, &owner).await {
                let _ = honest.handle.publish(owner.bytes()).await;
            }
            stored(&victim, &owner).await
        })
        .await;
        drop(held);
    })
    .await;
}

/// The connection limits forget a peer and an address once its last
/// connection closes: peers that come and go with fresh identities do not
/// grow them (libp2p's own `connection_limits` kept an entry per peer id
/// for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_forget_peers_that_left() {
    bounded(120, "connection bookkeeping", async {
        let victim = spawn(config(7_300)).await;
        // One after the other: all twelve dial from 127.0.0.1, and at most
        // four handshakes from one address are admitted at once. A hostile
        // peer dials once and never again; one whose dial was lost on a
        // loaded machine is replaced by another (a leak in the bookkeeping
        // would refuse every replacement too).
        let mut hostiles = Vec::new();
        let mut seed = 7_301;
        while hostiles.len() < 12 {
            assert!(seed < 7_301 + 36, "hostile peers keep failing to connect");
            let h = Hostile::spawn(seed, &victim.addr).await;
            seed += 1;
            let tracked = hostiles.len() + 1;
            let connected = within(10, || async {
                victim
                    .handle
                    .status()
                    .await
                    .unwrap()
                    .connection_peers_tracked
                    == tracked
            })
            .await;
            if connected {
                hostiles.push(h);
            }
        }
        drop(hostiles);
        wait_until(60, "the closed connections to be forgotten", || async {
            let s = victim.handle.status().await.unwrap();
            s.connection_peers_tracked == 0 && s.connection_ips_tracked == 0
        })
        .await;
    })
    .await;
}

/// A node does not dial loopback, private or link-local addresses (here,
/// an address a record or a caller names) unless configured to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_does_not_dial_private_addresses_unless_configured_to() {
    bounded(60, "dial hygiene", async {
        let target = spawn(config(7_290)).await;
        let mut c = config(7_291);
        c.dial_private_addrs = false;
        let careful = spawn(c).await;
        let owner = Owner::new(7_292, now());
        let challenge = crate::relay::challenge(&owner, 42);
        let r = careful
            .handle
            .login(
                target.handle.peer_id(),
                vec![target.addr.clone()],
                &challenge,
            )
            .await;
        assert!(
            matches!(r, Err(cyrcles_p2p::RequestError::Unreachable(_))),
            "{r:?}"
        );
        assert!(careful.handle.metrics().dials_refused() >= 1);
        assert_eq!(target.handle.status().await.unwrap().connected_peers, 0);

        // Its own bootstrap peer, an address its operator chose, is still
        // dialled at its exact address and port, and served.
        let mut c = config(7_294);
        c.dial_private_addrs = false;
        c.bootstrap = vec![target.addr.clone()];
        let local = spawn(c).await;
        wait_until(30, "the bootstrap connection", || async {
            local.handle.status().await.unwrap().connected_peers == 1
        })
        .await;
        let before = local.handle.metrics().dials_refused();
        // ... but another port of the same host, named by a record, is not.
        let crate::common::TestNode {
            handle: other_handle,
            events: other_events,
            addr: other_addr,
        } = spawn(config(7_295)).await;
        let _answers = crate::relay::answer_logins(
            other_events,
            cyrcles_core::SecretKey::from_seed(&owner.keys.ego.to_seed()),
        );
        struct Other {
            handle: cyrcles_p2p::NodeHandle,
            addr: libp2p::Multiaddr,
        }
        let other = Other {
            handle: other_handle,
            addr: other_addr,
        };
        let r = local
            .handle
            .login(other.handle.peer_id(), vec![other.addr.clone()], &challenge)
            .await;
        assert!(r.is_err(), "{r:?}");
        assert!(local.handle.metrics().dials_refused() > before);

        // Configured to, it dials private addresses.
        let mut c = config(7_293);
        c.dial_private_addrs = true;
        let lab = spawn(c).await;
        let r = lab
            .handle
            .login(other.handle.peer_id(), vec![other.addr.clone()], &challenge)
            .await;
        assert!(
            matches!(r, Ok(cyrcles_core::login::LoginResponse::Approved(_))),
            "{r:?}"
        );
        assert_eq!(lab.handle.metrics().dials_refused(), 0);
    })
    .await;
}

/// The relay's limits are explicit: one address gets its quota of
/// reservations, and an agent elsewhere still reserves a circuit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_reservations_are_capped_per_address() {
    bounded(120, "relay reservations", async {
        let mut c = config(7_310);
        c.relay_server = true;
        c.limits.relay.reservations_per_ip = 2;
        let relay = spawn(c).await;
        let circuit = relay
            .addr
            .clone()
            .with(libp2p::multiaddr::Protocol::P2pCircuit);
        let mut outcomes = Vec::new();
        let mut attackers = Vec::new();
        for i in 0..3 {
            // The relay dials the attacker, so it sees it at 127.0.1.1,
            // and the reservation comes over that connection.
            let mut c = config(7_311 + i);
            c.listen = vec!["/ip4/127.0.1.1/tcp/0".parse().unwrap()];
            c.mode = cyrcles_p2p::DhtMode::Auto;
            let a = spawn(c).await;
            relay.handle.dial(a.addr.clone()).await.unwrap();
            // Once the attacker's side knows the connection, its relay
            // client reserves over it instead of dialling the relay.
            wait_until(30, "the attacker to see the relay's connection", || async {
                a.handle.status().await.unwrap().connected_peers == 1
            })
            .await;
            outcomes.push(a.handle.listen_on(circuit.clone()).await.is_ok());
            attackers.push(a);
        }
        assert_eq!(outcomes, vec![true, true, false]);

        let mut c = config(7_320);
        c.listen.clear();
        c.mode = cyrcles_p2p::DhtMode::Auto;
        let agent = spawn_listenless(c).await;
        agent
            .listen_on(circuit)
            .await
            .expect("an agent at another address still gets a reservation");
    })
    .await;
}

async fn spawn_listenless(c: NodeConfig) -> cyrcles_p2p::NodeHandle {
    let (handle, events) = cyrcles_p2p::Node::spawn(c).await.unwrap();
    drop(events);
    handle
}
