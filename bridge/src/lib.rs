//! The Cyrcles bridge: a standard OpenID Connect provider whose login is
//! "Login with Cyrcles". It resolves the person's ego in the DHT, sends a
//! login challenge to their agent over libp2p, checks the signed answer and
//! issues ordinary OIDC tokens.
//!
//! # Layout
//!
//! * [`app`]: building and running the bridge (storage, keys, p2p node,
//!   router, background tasks); [`cli`]: the `cyrcles-bridge` commands.
//! * [`config`]: TOML + environment configuration, validated into
//!   `Settings`; its secrets (master key, database URL) never print.
//! * [`oidc`]: the OIDC/OAuth endpoints: discovery and JWKS, authorize,
//!   pushed authorization requests, token (with DPoP proofs), userinfo,
//!   introspection, revocation, registration, logout.
//! * [`login`]: the Cyrcles login pages, ego resolution and challenges.
//! * [`store`]: SQLite/PostgreSQL storage through one portable query set.
//! * [`keys`] and [`jose`]: ID-token signing keys (RS256, ES256, EdDSA),
//!   JWS, and sealing with the master key; [`secrets`]: key files and
//!   `Secret`, the redacting, zeroizing type for secrets.
//! * [`pow`]: the proof-of-work gate of the login form under load, and
//!   [`load`]: the meter that switches it on.
//! * [`limits`]: rate limits per client address prefix, ego or session,
//!   and the spent proof-of-work tokens (in memory on SQLite, shared in the
//!   database on PostgreSQL). Every resource an outsider can grow is
//!   bounded; `docs/threat-model.md` lists each bound and its test.
//! * [`error`], [`web`], [`templates`], [`metrics`], [`tls`], [`tasks`],
//!   [`state`]: the HTTP edge and shared state.
//! * [`random`]: the tokens, ids and references the bridge hands out, and
//!   their shapes; [`crypto`]: SHA-256 of stored secrets and the one
//!   constant-time comparison; [`base64url`]: the one (strict) base64url;
//!   [`json`]: reading and setting members of JSON objects.

pub mod app;
pub mod base64url;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod jose;
pub mod json;
pub mod keys;
pub mod limits;
pub mod load;
pub mod login;
pub mod metrics;
pub mod oidc;
pub mod pow;
pub mod random;
pub mod secrets;
pub mod state;
pub mod stdout;
pub mod store;
pub mod tasks;
pub mod templates;
pub mod tls;
pub mod web;
