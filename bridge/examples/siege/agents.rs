//! Agent nodes: real `cyrcles-p2p` nodes holding real ego keys, connected
//! to the bridge (which does not dial loopback addresses taken from
//! records: it answers over the connection the agent opened).
//!
//! Each ego has a policy. A *person* approves only the challenge whose
//! match code they read in their own browser (and whose reported client
//! address is theirs); every other challenge for their ego is shown and
//! ignored, so it stays pending at the bridge until it expires, as with a
//! real person who did not start that login. The attacker's own egos
//! either approve everything at once (*auto*) or never answer (*silent*).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cyrcles_core::UnixTime;
use cyrcles_core::cbor::Encode;
use cyrcles_core::login::{ApprovedBy, LoginChallenge, LoginResponse};
use cyrcles_core::record::{PeerEndpoint, builder};
use cyrcles_p2p::{
    DhtMode, Keypair, Multiaddr, Node, NodeConfig, NodeEvent, NodeHandle, Responder,
};
use cyrcles_testkit::Poll;

/// How an ego's holder answers login challenges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Person,
    Auto,
    Silent,
}

struct Ego {
    key: cyrcles_core::SecretKey,
    seq: u64,
    policy: Policy,
}

/// A challenge shown and not (yet) answered.
struct Held {
    since: Instant,
    challenge: LoginChallenge,
    responder: Responder<LoginResponse>,
}

/// A match code the person typed before the challenge arrived.
struct Typed {
    since: Instant,
    ego: String,
    code: Option<u8>,
    ip: String,
}

#[derive(Default)]
struct Desk {
    held: Vec<Held>,
    typed: Vec<Typed>,
}

/// Longer than any challenge lives (120 s) plus the node's request timeout.
const ANSWER_WINDOW: Duration = Duration::from_secs(130);

impl Desk {
    fn purge(&mut self) {
        self.held.retain(|h| h.since.elapsed() < ANSWER_WINDOW);
        self.typed.retain(|t| t.since.elapsed() < ANSWER_WINDOW);
    }
}

pub struct Agent {
    pub node: NodeHandle,
    /// The egos' ids, in the order of the policies given.
    pub egos: Vec<String>,
    keys: HashMap<String, Ego>,
    desk: Mutex<Desk>,
}

pub fn unix_now() -> u64 {
    cyrcles_p2p::Clock::system().now().secs()
}

fn matches(ch: &LoginChallenge, code: Option<u8>, ip: &str) -> bool {
    let p = ch.params();
    code.is_none_or(|c| c == p.match_code) && p.client_ip.as_deref().is_none_or(|i| i == ip)
}

impl Agent {
    /// Starts a node that joins through the bridge and publishes one new
    /// ego per policy, each naming this node as its endpoint. A person's
    /// node keeps cyrcles-p2p's default limits; the attacker's own node
    /// (`unlimited`) takes every challenge the bridge sends it.
    pub async fn start(bridge: &Multiaddr, policies: &[Policy], unlimited: bool) -> Arc<Agent> {
        let mut c = NodeConfig::new(
            Keypair::ed25519_from_bytes(cyrcles_bridge::random::random_bytes::<32>()).unwrap(),
        );
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        c.bootstrap = vec![bridge.clone()];
        c.mode = DhtMode::Auto;
        // The agent's own side: its bridge is on this machine.
        c.dial_private_addrs = true;
        if unlimited {
            c.limits.requests_per_peer_per_minute = u32::MAX;
            c.limits.inflight_per_peer = 1_000_000;
        }
        let (node, events) = Node::spawn(c).await.expect("start an agent node");
        let status = node.status().await.unwrap();
        let peer = PeerEndpoint {
            peer_id: node.peer_id().to_bytes(),
            addrs: status.listen_addrs.iter().map(|a| a.to_vec()).collect(),
        };
        let now = UnixTime::from_secs(unix_now());
        let mut keys = HashMap::new();
        let mut egos = Vec::new();
        let mut records = Vec::new();
        for p in policies {
            let new = builder::create_ego(
                &mut rand_core::OsRng,
                now,
                builder::DEFAULT_CERT_VALIDITY_SECS,
                vec![peer.clone()],
                builder::DEFAULT_ENDPOINTS_VALIDITY_SECS,
            )
            .unwrap();
            let id = new.record.ego_id().to_string();
            records.push(new.record.to_cbor());
            keys.insert(
                id.clone(),
                Ego {
                    key: new.ego,
                    seq: new.record.cert.body.seq,
                    policy: *p,
                },
            );
            egos.push(id);
        }
        let agent = Arc::new(Agent {
            node,
            egos,
            keys,
            desk: Mutex::new(Desk::default()),
        });
        for r in records {
            publish(&agent.node, r).await;
        }
        let a = agent.clone();
        tokio::spawn(async move {
            let mut events = events;
            while let Some(e) = events.recv().await {
                if let NodeEvent::Login {
                    challenge,
                    responder,
                    ..
                } = e
                {
                    a.on_challenge(challenge, responder);
                }
            }
        });
        // A real agent keeps a relay reservation at its bridge, which keeps
        // the connection open; this one talks to the bridge now and then
        // (a Kademlia bootstrap), which also redials it if it was closed.
        let n = agent.node.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                if n.bootstrap().await.is_err() {
                    return;
                }
            }
        });
        agent
    }

    fn approve(&self, ch: &LoginChallenge, responder: Responder<LoginResponse>, by: ApprovedBy) {
        if let Some(k) = self.keys.get(&ch.params().ego_id.to_string()) {
            responder.respond(ch.approve(&k.key, k.seq, by));
        }
    }

    fn on_challenge(&self, challenge: LoginChallenge, responder: Responder<LoginResponse>) {
        let ego = challenge.params().ego_id.to_string();
        let Some(k) = self.keys.get(&ego) else {
            return;
        };
        let mut desk = self.desk.lock().unwrap();
        desk.purge();
        match k.policy {
            Policy::Auto => {
                drop(desk);
                self.approve(&challenge, responder, ApprovedBy::Policy);
            }
            Policy::Silent => desk.held.push(Held {
                since: Instant::now(),
                challenge,
                responder,
            }),
            Policy::Person => {
                let typed = desk
                    .typed
                    .iter()
                    .position(|t| t.ego == ego && matches(&challenge, t.code, &t.ip));
                match typed {
                    Some(i) => {
                        desk.typed.remove(i);
                        drop(desk);
                        self.approve(&challenge, responder, ApprovedBy::Person);
                    }
                    None => desk.held.push(Held {
                        since: Instant::now(),
                        challenge,
                        responder,
                    }),
                }
            }
        }
    }

    /// The person types the match code their browser shows (`None`: the
    /// page showed none the siege could read; then any challenge from
    /// their address).
    pub fn type_code(&self, ego: &str, code: Option<u8>, ip: &str) {
        if self
            .keys
            .get(ego)
            .is_none_or(|k| k.policy != Policy::Person)
        {
            return;
        }
        let mut desk = self.desk.lock().unwrap();
        desk.purge();
        let held = desk.held.iter().position(|h| {
            h.challenge.params().ego_id.to_string() == ego && matches(&h.challenge, code, ip)
        });
        match held {
            Some(i) => {
                let h = desk.held.remove(i);
                drop(desk);
                self.approve(&h.challenge, h.responder, ApprovedBy::Person);
            }
            None => desk.typed.push(Typed {
                since: Instant::now(),
                ego: ego.to_string(),
                code,
                ip: ip.to_string(),
            }),
        }
    }

    /// Challenges shown and left unanswered right now.
    pub fn unanswered(&self) -> usize {
        let mut desk = self.desk.lock().unwrap();
        desk.purge();
        desk.held.len()
    }
}

/// Publishes a record until the bridge (the only DHT server) stores it.
async fn publish(node: &NodeHandle, record: Vec<u8>) {
    Poll::new(60, "the bridge to store an agent's ego record")
        .every(Duration::from_millis(200))
        .until(|| async { matches!(node.publish(record.clone()).await, Ok(p) if p.stored_at > 0) })
        .await
}
