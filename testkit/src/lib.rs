//! What the Cyrcles test suites and examples share. A dev-dependency only:
//! nothing here is part of a program.
//!
//! Every wait is bounded, and a wait that runs out panics naming what it
//! waited for, so a failing test says what did not happen instead of
//! hanging.
//!
//! # Layout
//!
//! * [`bounded`]: a future that must finish within a time;
//! * [`wait`]: polling a condition until it holds ([`wait_until`],
//!   [`wait_for`], [`wait_ok`], and a blocking [`wait_until_sync`]);
//! * [`temp`]: [`TempDir`], a directory removed on drop;
//! * [`agent`]: [`Agent`], the `cyrcles` daemon as a process, and its CLI;
//! * [`printed`]: [`Printed`], what a program says on its output (the
//!   address it bound on port 0);
//! * [`tool`]: tests whose tool is missing, skipped locally and failed
//!   under CI.

// Panicking is how a test helper reports a failure.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod bounded;
pub mod printed;
pub mod temp;
pub mod tool;
pub mod wait;

pub use agent::{Agent, AgentBuilder, Output, fingerprint_in};
pub use bounded::bounded;
pub use printed::Printed;
pub use temp::TempDir;
pub use tool::{require_env, require_tool};
pub use wait::{Poll, wait_for, wait_ok, wait_until, wait_until_sync, within};
