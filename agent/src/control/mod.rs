//! The local control socket: its messages ([`proto`]: requests, replies,
//! error codes and framing), the caller checks ([`peer`]) and the client
//! ([`client`]). The daemon's side is `daemon/server.rs`.

pub mod client;
pub mod peer;
pub mod proto;
