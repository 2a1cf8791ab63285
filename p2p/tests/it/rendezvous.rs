//! Invite rendezvous through provider records: an agent-like node
//! announces itself under a key; another agent-like node finds it and
//! reaches it over `/cyrcles/invite/1`.

use std::time::Duration;

use cyrcles_core::envelope::Envelope;
use cyrcles_p2p::{DhtMode, NodeEvent};

use crate::common::{config, network, spawn};
use cyrcles_testkit::{Poll, bounded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_node_is_found_and_reached_by_its_key() {
    bounded(90, "the rendezvous test", async {
        let servers = network(6, 6_000, |_| {}).await;
        let boot = servers[0].addr.clone();
        let agent = |seed| {
            let mut c = config(seed);
            c.mode = DhtMode::Auto;
            c.bootstrap = vec![boot.clone()];
            c
        };
        let mut inviter = spawn(agent(6_100)).await;
        let acceptor = spawn(agent(6_101)).await;
        let key = [0x5a; 32];
        // The announcement reaches some peer (retry while routing settles).
        Poll::new(20, "a peer to store the announcement")
            .every(Duration::from_millis(200))
            .until(|| async { inviter.handle.provide(key).await.unwrap_or(0) > 0 })
            .await;

        // Another key finds nobody.
        let none = acceptor.handle.find_providers([0x11; 32]).await.unwrap();
        assert!(none.is_empty(), "{none:?}");

        // The acceptor's routing table fills as it joins; it asks again
        // until the lookup reaches the peers holding the announcement.
        let found = Poll::new(20, "the lookup to reach the announcement")
            .every(Duration::from_millis(200))
            .value(|| async {
                let found = acceptor.handle.find_providers(key).await.unwrap();
                (!found.is_empty()).then_some(found)
            })
            .await;
        assert_eq!(found, vec![inviter.handle.peer_id()]);

        // The inviter answers an invite message from the acceptor, which
        // knows only its peer id.
        let answer = tokio::spawn(async move {
            while let Some(e) = inviter.events.recv().await {
                if let NodeEvent::Invite {
                    message, responder, ..
                } = e
                {
                    responder.respond(Envelope {
                        kind: message.kind + 1,
                        body: message.body,
                    });
                    return inviter;
                }
            }
            panic!("the inviter's events ended");
        });
        let reply = acceptor
            .handle
            .invite(
                found[0],
                Vec::new(),
                &Envelope {
                    kind: 1,
                    body: vec![1, 2, 3],
                },
            )
            .await
            .unwrap();
        assert_eq!((reply.kind, reply.body), (2, vec![1, 2, 3]));
        let inviter = answer.await.unwrap();

        inviter.handle.stop_providing(key).await.unwrap();
        inviter.handle.shutdown().await;
        acceptor.handle.shutdown().await;
        for s in &servers {
            s.handle.shutdown().await;
        }
    })
    .await;
}
