//! The Cyrcles agent: the daemon that holds a person's ego keys, keeps
//! their records published and answers login challenges under their
//! policy, and the `cyrcles` CLI that drives it over a local socket.
//!
//! # Layout
//!
//! * [`home`]: the home directory and its files.
//! * [`config`]: `config.toml` and its checked form.
//! * [`keystore`]: the SQLite keystore; secrets sealed under a data key
//!   wrapped by an Argon2id passphrase or a 0600 key file.
//! * [`control`]: the control socket's messages (requests, replies, error
//!   codes, framing), the caller check (`SO_PEERCRED`) and the client.
//! * [`daemon`]: the daemon: egos and their nodes, approval policy and
//!   quotas, the socket server, maintenance (rotation, endpoints).
//! * [`cli`]: the `cyrcles` command line: its arguments (`cli/args.rs`),
//!   running each command, its output and `watch`.
//!
//! `docs/agent.md` is the user's and integrator's guide.

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod home;
pub mod keystore;
pub mod network_memory;
pub mod text;
