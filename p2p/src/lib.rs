//! The libp2p node embedded by the agent and the bridge (see issue 3; this
//! crate is a placeholder until then).
