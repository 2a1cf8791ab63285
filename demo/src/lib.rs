//! The Cyrcles demo: a website with "Login with Cyrcles" ([`site`]), and
//! the quickstart that runs it together with a bridge on the bridge's
//! embedded defaults ([`quickstart`]).
//!
//! `cargo run --release -p cyrcles-demo` starts both and prints the few
//! `cyrcles` commands that log a newcomer in. `cyrcles-demo site --issuer
//! URL` runs only the website against an existing bridge (as
//! `docker-compose.yml` does).

pub mod cli;
pub mod quickstart;
pub mod site;
