//! Whether an ego's node answers: `status` and `ego show` say so, so
//! that a node whose event loop stopped (or hangs) is seen, not silently
//! left out.

use std::time::Duration;

use cyrcles_p2p::{NodeHandle, Status};

/// How long a node has to answer a status question.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// How a node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// It answered.
    Running,
    /// Its event loop has ended: no login, invite or circle message
    /// reaches the ego until the daemon restarts.
    Stopped,
    /// It did not answer in time.
    NotAnswering,
}

impl Health {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Health::Running => "running",
            Health::Stopped => "stopped",
            Health::NotAnswering => "not-answering",
        }
    }
}

/// Asks the node for its status.
pub(crate) async fn check(node: &NodeHandle) -> (Health, Option<Status>) {
    if !node.is_running() {
        return (Health::Stopped, None);
    }
    match tokio::time::timeout(ANSWER_WITHIN, node.status()).await {
        Ok(Ok(s)) => (Health::Running, Some(s)),
        Ok(Err(_)) => (Health::Stopped, None),
        Err(_) => (Health::NotAnswering, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_node_that_stopped_is_reported_stopped() {
        let mut c = cyrcles_p2p::NodeConfig::new(cyrcles_p2p::Keypair::generate_ed25519());
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        let (node, _events) = cyrcles_p2p::Node::spawn(c).await.unwrap();
        let (health, status) = check(&node).await;
        assert_eq!(health, Health::Running);
        assert!(status.is_some());
        node.shutdown().await;
        assert_eq!(check(&node).await, (Health::Stopped, None));
    }
}
