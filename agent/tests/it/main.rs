//! The agent's integration tests: the real `cyrcles` binary (daemon and
//! CLI) in temporary homes, and a bridge-like libp2p peer on loopback that
//! resolves egos and sends login challenges.
#![allow(
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects
)]

mod architecture;
mod circles;
mod common;
mod daemon;
mod dkg_abuse;
mod friends;
mod invite_abuse;
mod local;
mod login;
mod login_flood;
mod persistence;
mod queues;
mod recovery;
mod recovery_abuse;
mod security;
mod thief;
