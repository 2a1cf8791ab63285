//! The ego record: types, encoding, validation, selection, anti-rollback
//! memory and the owner-side builders.

pub mod builder;
pub mod rollback;
pub mod select;
pub mod types;
pub mod verify;

pub use builder::{BuildError, NewEgo, create_ego};
pub use rollback::{BestSeen, Freshness, RollbackError, RollbackMemory};
pub use select::{Choice, Conflict, DuplicityKind, Evidence, select};
pub use types::{
    CertStatus, CircleLink, EgoCert, EgoRecord, Endpoints, Inception, MAX_ADDR_LEN,
    MAX_ADDRS_PER_PEER, MAX_CHAIN_LINKS, MAX_PEER_ID_LEN, MAX_PEERS, MAX_RECORD_SIZE, PeerEndpoint,
    Signed, SignedBody,
};
pub use verify::{Part, Rank, RecordError, SignatureCache, VerifiedEgo, verify, verify_cached};
