//! Integration tests of cyrcles-core: one binary, one module per concern.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cases;
mod cbor;
mod common;
mod frost;
pub mod login;
mod properties;
mod selection;
mod validation;
mod vectors;
