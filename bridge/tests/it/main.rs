//! Integration tests of the bridge: the real HTTP server on a loopback
//! port, a real p2p network with a test agent peer holding a real ego key,
//! and a relying party built on the `openidconnect` crate. Storage tests
//! run on SQLite, and on PostgreSQL when `CYRCLES_TEST_POSTGRES_URL` is set.
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
mod attacker;
mod cli;
mod clients;
mod common;
mod conformance;
mod denial;
mod deploy;
mod flow;
mod interactions;
mod limits;
mod pages;
mod par_dpop;
mod pow;
mod prefixes;
mod provider;
mod rollback;
mod sessions;
mod shared;
mod storage;
mod wal;
mod watch;
