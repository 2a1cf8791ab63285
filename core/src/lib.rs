//! The Cyrcles protocol core.
//!
//! Everything here is pure: no I/O, no async, no clock reads (time is a
//! parameter) and no ambient randomness (generators are passed in). The
//! agent, the bridge and every DHT storage node call the same functions, so
//! they agree on what is valid.
//!
//! # Layout
//!
//! * [`cbor`]: the deterministic CBOR subset every message uses, with a
//!   strict decoder.
//! * [`id`]: `EgoId` (text form, fingerprint) and `DhtKey`.
//! * [`keys`]: public keys, signatures, signing contexts, secret-key
//!   wrappers.
//! * [`time`]: `UnixTime`, the clock-skew and maximum-validity constants,
//!   and capped conversions to `Duration`.
//! * [`text`]: the text rule (which characters protocol text may hold).
//! * [`record`]: the ego record: types, encoding, [`record::verify`] (the one
//!   validation function), the selection rule, the anti-rollback memory and
//!   the owner-side builders.
//! * [`login`]: the login challenge and response, and the bridge's check.
//! * [`local`]: what the agent signs for a program on the owner's machine.
//! * [`envelope`]: the kind-tagged envelope of the circle and invite
//!   protocols.
//! * [`invite`]: invite codes and the SPAKE2 exchange that makes two
//!   agents friends.
//! * [`circle`]: FROST ceremonies (dealing, signing, recovery, repair) as
//!   state machines, each with its wire messages; [`circle::messages`]
//!   holds what the messages share and re-exports them.
//!
//! The byte-exact specification is `docs/protocol.md`; test vectors are in
//! `core/tests/vectors/`.

pub mod cbor;
pub mod circle;
pub mod envelope;
pub mod id;
pub mod invite;
pub mod keys;
pub mod local;
pub mod login;
mod lru;
pub mod record;
pub mod text;
pub mod time;

pub use id::{DhtKey, EgoId, Fingerprint};
pub use keys::{CircleSecret, Context, PublicKey, SecretKey, Signature};
pub use record::{EgoRecord, RecordError, VerifiedEgo, verify};
pub use time::UnixTime;
