//! An agent reachable only through a bridge's circuit relay.

use cyrcles_core::login::{ApprovedBy, ChallengeParams, DenyReason, LoginChallenge, LoginResponse};
use cyrcles_p2p::{DhtMode, NodeEvent};
use libp2p::multiaddr::Protocol;

use crate::common::{Owner, config, now, spawn};
use cyrcles_testkit::bounded;

pub fn challenge(owner: &Owner, code: u8) -> LoginChallenge {
    let t = now();
    LoginChallenge::new(ChallengeParams {
        issuer: "http://bridge.test".into(),
        client_id: "demo".into(),
        client_name: "Demo site".into(),
        redirect_origin: "http://site.test".into(),
        ego_id: owner.ego_id(),
        nonce: vec![7; 16],
        issued_at: t,
        expires_at: t.plus(120),
        match_code: code,
        client_ip: None,
        confirm: false,
    })
    .unwrap()
}

/// Answers every login with the owner's signature (match code 42) or a
/// denial.
pub fn answer_logins(
    mut events: tokio::sync::mpsc::Receiver<NodeEvent>,
    ego: cyrcles_core::SecretKey,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut answered = 0;
        while let Some(event) = events.recv().await {
            if let NodeEvent::Login {
                challenge,
                responder,
                ..
            } = event
            {
                answered += 1;
                if challenge.params().match_code == 42 {
                    responder.respond(challenge.approve(&ego, 1, ApprovedBy::Person));
                } else {
                    responder.respond(LoginResponse::Denied(DenyReason::User));
                }
            }
        }
        answered
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_behind_a_relay_is_reached_by_bridges() {
    bounded(60, "relay test", async {
        let mut c = config(6_000);
        c.relay_server = true;
        let bridge_a = spawn(c).await;
        let mut c = config(6_001);
        c.bootstrap = vec![bridge_a.addr.clone()];
        let bridge_b = spawn(c).await;

        // The agent has no listen address of its own.
        let mut c = config(6_002);
        c.listen.clear();
        c.mode = DhtMode::Auto;
        let agent = spawn_agent(c).await;
        let circuit = agent
            .handle
            .listen_on(bridge_a.addr.clone().with(Protocol::P2pCircuit))
            .await
            .unwrap();
        assert!(circuit.iter().any(|p| p == Protocol::P2pCircuit));
        let status = agent.handle.status().await.unwrap();
        assert!(
            status
                .listen_addrs
                .iter()
                .all(|a| a.iter().any(|p| p == Protocol::P2pCircuit)),
            "the agent listens only through the relay: {:?}",
            status.listen_addrs
        );

        let owner = Owner::new(6, now());
        let server = answer_logins(agent.events, owner.keys.ego.clone_for_test());
        let agent_id = agent.handle.peer_id();
        // The circuit address names the agent at its end.
        assert_eq!(circuit.iter().last(), Some(Protocol::P2p(agent_id)));
        let full_circuit = circuit.clone();

        // Bridge B reaches the agent through A's relay.
        let r = bridge_b
            .handle
            .login(agent_id, vec![full_circuit.clone()], &challenge(&owner, 42))
            .await
            .unwrap();
        let LoginResponse::Approved(a) = r else {
            panic!("expected an approval, got {r:?}")
        };
        assert_eq!(a.ego_pk, owner.keys.ego.public());

        // Bridge A, the relay itself, reaches it too.
        let r = bridge_a
            .handle
            .login(agent_id, vec![full_circuit], &challenge(&owner, 7))
            .await
            .unwrap();
        assert_eq!(r, LoginResponse::Denied(DenyReason::User));
        agent.handle.shutdown().await;
        assert_eq!(server.await.unwrap(), 2);
    })
    .await;
}

async fn spawn_agent(c: cyrcles_p2p::NodeConfig) -> AgentNode {
    let (handle, events) = cyrcles_p2p::Node::spawn(c).await.unwrap();
    AgentNode { handle, events }
}

struct AgentNode {
    handle: cyrcles_p2p::NodeHandle,
    events: tokio::sync::mpsc::Receiver<NodeEvent>,
}

trait CloneForTest {
    fn clone_for_test(&self) -> Self;
}

impl CloneForTest for cyrcles_core::SecretKey {
    fn clone_for_test(&self) -> Self {
        cyrcles_core::SecretKey::from_seed(&self.to_seed())
    }
}
