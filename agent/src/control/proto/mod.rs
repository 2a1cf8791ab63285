//! The control socket's messages.
//!
//! A connection carries one request from the client and one or more replies
//! from the daemon. Each message is a frame: a 4-byte big-endian length,
//! then that many bytes of JSON. Requests are at most 64 KiB, replies at
//! most 1 MiB. Most requests get exactly one reply; `sign` gets
//! `sign-pending` then `signed` or an error; `watch` gets a stream of
//! `event`s until the client hangs up. Errors are `error` replies with a
//! stable [`ErrorCode`].
//!
//! # Layout
//!
//! * `request`: what a client asks ([`Request`], [`SecretText`]).
//! * `reply`: what the daemon answers ([`Reply`]) and the views it carries.
//! * `error`: error replies, their stable codes and the CLI's exit codes.
//! * `framing`: length-prefixed JSON frames and their size caps.

mod error;
mod framing;
mod reply;
mod request;

pub use error::{ErrorCode, ErrorReply};
pub use framing::{FrameError, MAX_REPLY, MAX_REQUEST, read_frame, write_frame};
pub use reply::{
    BanInfo, CircleInfo, CircleMember, EgoInfo, EndpointsInfo, FriendInfo, IncomingChange,
    IncomingRecovery, KitFriend, LatencySummary, LocalSignature, NodeInfo, OutgoingRecovery,
    PeerInfo, PolicyInfo, RecoveryAnswer, RecoveryKit, Reply, RequestInfo, ShareInfo, StatusInfo,
    WatchEvent,
};
pub use request::{Request, SecretText};
