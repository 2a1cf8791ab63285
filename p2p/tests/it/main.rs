//! Integration tests of cyrcles-p2p: real libp2p networks on loopback TCP,
//! in one test binary. Every test is bounded in time.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects
)]

mod abuse;
mod bounds;
mod common;
mod dht;
mod extreme;
mod hostile;
mod relay;
mod rendezvous;
