//! Integration tests of cyrcles-core: one binary, one module per concern.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects
)]

mod approved_by;
mod cases;
mod cases_keys;
mod cases_limits;
mod cbor;
mod ceremony;
mod common;
mod dkg;
mod ed25519;
mod extremes;
mod frost;
mod invite;
pub mod login;
mod properties;
mod recovery;
mod selection;
mod validation;
mod vectors;
mod vectors_approvals;
mod vectors_challenges;
mod vectors_circle;
mod vectors_local;
mod vectors_selection;
