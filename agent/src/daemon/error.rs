//! The daemon's error: what went wrong, in the daemon's terms. Each kind
//! is one [`ErrorCode`] (the keystore's errors keep the code of their own
//! kind); the text the person reads is the error's `Display`, and the
//! error beneath it, when there is one, is its `source`. Only the control
//! server turns an [`Error`] into the wire's `ErrorReply` (`server.rs`).
//!
//! Each kind is its own enum (what is missing, what is refused, …), so a
//! function that fails says what happened and the code is decided at the
//! edge, not where the error is made.

use std::error::Error as StdError;
use std::fmt;

use cyrcles_core::EgoId;
use cyrcles_core::cbor::DecodeError;
use cyrcles_core::circle::{CircleError, DkgError};
use cyrcles_core::id::ParseIdError;
use cyrcles_core::invite::{CodeError, InviteError};
use cyrcles_core::local::LocalError;
use cyrcles_core::record::builder::BuildError;
use cyrcles_p2p::{GetError, RequestError, SpawnError, Stopped};
use thiserror::Error;

use crate::control::peer::ForeignUser;
use crate::control::proto::{ErrorCode, ErrorReply, FrameError};
use crate::keystore::KeystoreError;

/// A daemon result.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a libp2p type the p2p crate does not name (a key or a
/// peer id that does not decode).
pub(crate) type Foreign = Box<dyn StdError + Send + Sync>;

/// Why a daemon operation failed.
#[derive(Debug, Error)]
pub(crate) enum Error {
    /// The keystore failed (its code follows its kind: locked, damaged,
    /// not found, …).
    #[error("{0}")]
    Keystore(#[from] KeystoreError),
    /// The network, a peer or the node did not do its part.
    #[error(transparent)]
    Network(#[from] Network),
    /// Someone said no: another user, a ban, a quota, the person, a friend.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// What was asked for does not exist.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// The request's values are not usable.
    #[error(transparent)]
    BadInput(#[from] BadInput),
    /// The state forbids the change, or it exists already.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// Stored data is damaged.
    #[error(transparent)]
    Damaged(#[from] Damaged),
    /// The keys are locked.
    #[error(transparent)]
    Locked(#[from] Locked),
    /// Nobody answered in time, or the request ended.
    #[error(transparent)]
    Expired(#[from] Expired),
    /// The person or the friend typed a wrong code.
    #[error(transparent)]
    WrongCode(#[from] WrongCode),
    /// A bug, or a step that cannot fail did.
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Error {
    /// The code the CLI turns into its exit code.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Error::Keystore(e) => keystore_code(e),
            Error::Network(_) => ErrorCode::Network,
            Error::Refused(_) => ErrorCode::Refused,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::BadInput(_) => ErrorCode::BadRequest,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Damaged(_) => ErrorCode::Damaged,
            Error::Locked(_) => ErrorCode::Locked,
            Error::Expired(_) => ErrorCode::Expired,
            Error::WrongCode(_) => ErrorCode::WrongCode,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// The reply the control server sends for an error (`server.rs`).
impl From<Error> for ErrorReply {
    fn from(e: Error) -> Self {
        ErrorReply::new(e.code(), e.to_string())
    }
}

/// The code of a keystore error.
pub(crate) fn keystore_code(e: &KeystoreError) -> ErrorCode {
    match e {
        KeystoreError::NotInitialised(_)
        | KeystoreError::Damaged { .. }
        | KeystoreError::SecretDamaged { .. }
        | KeystoreError::KeyFile { .. } => ErrorCode::Damaged,
        KeystoreError::AlreadyInitialised(_) | KeystoreError::Exists(_) => ErrorCode::Conflict,
        KeystoreError::WrongPassphrase | KeystoreError::PassphraseRequired => ErrorCode::Locked,
        KeystoreError::BadPassphrase(_) => ErrorCode::BadRequest,
        KeystoreError::NotFound(_) => ErrorCode::NotFound,
        KeystoreError::Io { .. } | KeystoreError::Database(_) => ErrorCode::Internal,
    }
}

/// An error with its sources, for logs: `error: source: …`, leaving out
/// a source whose text the line already ends with (most errors here
/// repeat their source's text in their own).
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut next = self.0.source();
        while let Some(e) = next {
            let text = e.to_string();
            if !line.ends_with(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            next = e.source();
        }
        f.write_str(&line)
    }
}

/// The network, a peer or the node did not do its part.
#[derive(Debug, Error)]
pub(crate) enum Network {
    /// The ego's node did not start.
    #[error("cannot start the network node: {0}")]
    NodeStart(#[source] SpawnError),
    /// The ego's node stopped under a request.
    #[error("the agent's node stopped: {0}")]
    NodeStopped(#[source] Stopped),
    /// No peer took the invite's announcement.
    #[error(
        "the invite could not be announced on the network ({0}); \
         is the agent connected to a bridge (--bootstrap)?"
    )]
    Unannounced(#[source] Unannounced),
    /// The inviter's node did not answer an invite message.
    #[error("the inviter's agent did not answer: {0}")]
    InviterSilent(#[source] RequestError),
    /// Fewer friends than the threshold committed to a signature.
    #[error(
        "{got} of the {needed} friends needed answered ({}); retrying later",
        .problems.join("; ")
    )]
    TooFewSigners {
        got: usize,
        needed: usize,
        problems: Vec<String>,
    },
    /// A chosen signer did not send its signature share.
    #[error("member {0} did not complete the signature; retrying later")]
    Unsigned(u16),
    /// The ego's record was not found (a recovery).
    #[error(
        "no valid record of ego {ego} was found in the DHT ({source}); a record whose \
         certificate expired cannot be recovered"
    )]
    NoRecord { ego: EgoId, source: Unanswered },
    /// Fewer friends than the threshold could help a repair.
    #[error(
        "{} can help, {needed} are needed; try again when more are online",
        crate::text::count(*online as u64, "friend", "friends")
    )]
    TooFewHelpers { online: usize, needed: usize },
    /// The friend whose share is repaired did not take part.
    #[error("{friend:?} did not take part ({}); the circle is unchanged", .problems.join("; "))]
    TargetAbsent {
        friend: String,
        problems: Vec<String>,
    },
    /// Helpers left a repair before it could run.
    #[error(
        "{answered} of the {needed} helpers needed answered ({}); try again later",
        .problems.join("; ")
    )]
    HelpersSilent {
        answered: usize,
        needed: usize,
        problems: Vec<String>,
    },
    /// A helper did not answer a step of a repair.
    #[error("{helper}: {source}; the repair stopped")]
    HelperSilent { helper: String, source: Unanswered },
    /// A planned friend did not do its part of a step of the new circle
    /// key's generation (every one must).
    #[error(
        "friend {friend:?} did not take part in generating the new circle key ({step}: \
         {source}); the circle is unchanged"
    )]
    DkgSilent {
        friend: String,
        step: &'static str,
        source: Unanswered,
    },
}

/// Why an invite was not announced.
#[derive(Debug, Error)]
pub(crate) enum Unannounced {
    /// The announcement went out, and no peer stored it.
    #[error("no peer stored it")]
    NoPeer,
    /// The announcement failed.
    #[error("{0}")]
    Failed(#[source] RequestError),
}

/// Why a peer or the DHT gave no usable answer.
#[derive(Debug, Error)]
pub(crate) enum Unanswered {
    /// The request failed.
    #[error("{0}")]
    Request(#[source] RequestError),
    /// The lookup found nothing valid.
    #[error("{0}")]
    Lookup(#[source] GetError),
    /// Nothing came back in time.
    #[error("no answer in time")]
    Timeout,
    /// The answer is not the message asked for.
    #[error("a bad answer")]
    BadAnswer,
    /// The peer refused, with this `refused::*` code.
    #[error("refused (code {0})")]
    Refused(u16),
}

/// Someone said no.
#[derive(Debug, Error)]
pub(crate) enum Refused {
    /// The caller is another user.
    #[error("{0}")]
    OtherUser(#[source] ForeignUser),
    /// The person denied the request.
    #[error("the person denied the request")]
    ByPerson,
    /// The request was withdrawn before the person answered.
    #[error("the request was withdrawn")]
    Withdrawn,
    /// The program is banned.
    #[error("{0} is banned from asking this agent")]
    Banned(String),
    /// A quota is spent.
    #[error("over the {which} quota; try again in {retry_after} s")]
    Quota {
        which: &'static str,
        retry_after: u64,
    },
    /// Too many invites are open.
    #[error("{0} invites are open already; let one finish or expire first")]
    TooManyInvites(usize),
    /// The invite exchange itself refused (not a wrong code).
    #[error("{0}")]
    Invite(#[source] InviteError),
    /// The inviter's agent could not check this side's ego.
    #[error("the inviter's agent could not find your ego's record; is your agent connected?")]
    UnknownParty,
    /// A change of the circle or the end of the ego waits for the old
    /// circle's members' humans (docs/circle-authority.md, P2).
    #[error(
        "your friends must approve this {change} first ({needed} more approval(s) needed; \
         {asked} {verb} asked). Call them and read them the fingerprint {fingerprint}; they \
         approve with `cyrcles circle requests` and `cyrcles circle approve`. Then run this \
         command again"
    )]
    AwaitingHumans {
        change: &'static str,
        fingerprint: String,
        asked: String,
        verb: &'static str,
        needed: usize,
    },
    /// The inviter's agent is over its rate.
    #[error("the inviter's agent is busy; try again")]
    InviterBusy,
    /// The inviter's agent refused the exchange.
    #[error("the inviter's agent refused the exchange")]
    ByInviter,
    /// The inviter's agent answered with the wrong step.
    #[error("the inviter's agent answered out of turn")]
    OutOfTurn,
    /// The inviter's reply does not decode.
    #[error("malformed reply: {0}")]
    MalformedReply(#[source] DecodeError),
    /// The inviter's reply names another node than the one that sent it.
    #[error("the inviter's agent named another node than its own")]
    OtherNode,
    /// The inviter's ego does not check out against the DHT.
    #[error("the inviter's ego does not check out: {0}")]
    InviterEgo(#[source] PartyCheck),
    /// A friend's answer in the new circle key's generation is not its
    /// own message of that step.
    #[error("friend {0:?} answered the key generation out of turn; the circle is unchanged")]
    DkgAnswer(String),
    /// The friends' round-1 messages make no circle.
    #[error("the friends' key generation makes no circle: {0}")]
    DkgPublic(#[source] DkgError),
    /// A friend refused its share of a new circle.
    #[error("friend {0:?} refused its share; the circle is unchanged")]
    ShareDeclined(String),
    /// A friend acknowledged another share than it was sent.
    #[error(
        "friend {0:?} acknowledged another share than the one it was sent; \
         the circle is unchanged"
    )]
    OtherShareAcked(String),
    /// A friend's acknowledgement does not check.
    #[error("friend {friend:?} acknowledged wrongly: {source}")]
    ShareAck { friend: String, source: CircleError },
    /// The certificate the friends signed does not fit the record.
    #[error("the friends' certificate does not fit: {0}")]
    FriendsCert(#[source] BuildError),
    /// The revocation the friends signed does not fit the record.
    #[error("the friends' revocation does not fit: {0}")]
    FriendsRevocation(#[source] BuildError),
    /// A member's signature share does not check.
    #[error("member {member}: {source}")]
    SignatureShare { member: u16, source: CircleError },
    /// The friends' signature shares do not make a signature.
    #[error("the friends' signature failed: {0}")]
    Aggregate(#[source] CircleError),
    /// The certificate the friends signed for a recovery does not fit.
    #[error("the certificate does not fit: {0}")]
    RecoveredCert(#[source] BuildError),
    /// A repair helper sent no sigma for the target.
    #[error("member {0} sent no sigma for the target")]
    NoSigma(u16),
    /// A repair helper's answer is not its own.
    #[error("{0}: a bad answer; the repair stopped")]
    HelperAnswer(String),
    /// The repaired friend could not rebuild its share.
    #[error("{friend:?} could not rebuild the share: {source}")]
    Rebuild { friend: String, source: Unanswered },
    /// The repaired friend's acknowledgement does not check.
    #[error("{friend:?} acknowledged wrongly: {source}")]
    RepairAck { friend: String, source: CircleError },
}

/// Why the other side's party of an invite does not check out.
#[derive(Debug, Error)]
pub(crate) enum PartyCheck {
    /// The lookup took too long.
    #[error("its record was not found in time")]
    Timeout,
    /// The lookup found no valid record.
    #[error("its record was not found: {0}")]
    NotFound(#[source] GetError),
    /// The ego is revoked.
    #[error("the ego is revoked")]
    Revoked,
    /// The party names another ego key than its record certifies.
    #[error("the ego key is not the one its record certifies")]
    WrongKey,
}

/// What was asked for does not exist.
#[derive(Debug, Error)]
pub(crate) enum NotFound {
    /// No ego has this name.
    #[error("no ego named {0:?}; `cyrcles ego list` shows them")]
    EgoNamed(String),
    /// No ego has this id (it went meanwhile).
    #[error("no ego {0}")]
    Ego(EgoId),
    /// The agent has no ego to befriend with.
    #[error("no ego yet: create one with `cyrcles ego create NAME`")]
    NoEgoYet,
    /// The ego has no such friend.
    #[error("ego {ego:?} has no friend {friend:?}; `cyrcles friend list` shows them")]
    Friend { ego: String, friend: String },
    /// The friend is not in the ego's circle.
    #[error("{friend:?} is not a member of {ego:?}'s circle")]
    CircleMember { ego: String, friend: String },
    /// No waiting request has this id.
    #[error(
        "no waiting request {0} (it may have expired or been answered); see `cyrcles requests`"
    )]
    Request(u64),
    /// No recovery request has this id.
    #[error("no recovery request {0}; `cyrcles recovery list` shows them")]
    Recovery(u64),
    /// This device was told of no recovery of the ego.
    #[error(
        "no recovery of {0} was reported to this device; `cyrcles watch` and the desktop \
         notification say when one is"
    )]
    RecoveryAlert(String),
    /// No friend's circle request has this id.
    #[error("no circle request {0}; `cyrcles circle requests` shows them")]
    CircleRequest(u64),
    /// The inviter says no invite has this code.
    #[error("no open invite has this code (expired, already used, or mistyped number)")]
    Invite,
    /// No node announces this invite number.
    #[error(
        "nobody is waiting with invite number {0} (expired, mistyped, or the \
         inviter's agent is offline)"
    )]
    Inviter(u16),
}

/// The request's values are not usable.
#[derive(Debug, Error)]
pub(crate) enum BadInput {
    /// The request does not decode.
    #[error("bad request: {0}")]
    Frame(#[source] FrameError),
    /// A name that is not a valid ego name (`max`: its longest length).
    #[error(
        "{name:?} is not a valid ego name: use 1 to {max} letters, digits, \
         '-', '_' or '.', starting with a letter or digit"
    )]
    EgoName { name: String, max: usize },
    /// Several egos, and none named.
    #[error("this agent has several egos: name the one that befriends with --as EGO")]
    WhichEgo,
    /// Not an invite code.
    #[error("{0}")]
    InviteCode(#[source] CodeError),
    /// A circle threshold below 2.
    #[error("the threshold must be at least 2: with 1, any single friend could certify a key")]
    Threshold,
    /// More friends than a circle can have.
    #[error("too many friends")]
    TooManyFriends,
    /// A policy's bridge or client that is empty, long or unprintable.
    #[error("{0} must be 1 to 256 printable characters")]
    PolicyText(&'static str),
    /// A ban target that is empty, long or unprintable.
    #[error("ban targets must be 1 to 1024 printable characters")]
    BanText,
    /// A program ban given an ego.
    #[error("program bans apply to the whole agent; give no ego")]
    ProgramBanEgo,
    /// A site or bridge ban given no ego.
    #[error("site and bridge bans belong to an ego; give --ego NAME")]
    BanNeedsEgo,
    /// `--ban-bridge` on a local request.
    #[error("a local request has no bridge; use --ban-site to ban the program")]
    LocalBridge,
    /// A local request that cannot be signed.
    #[error("{0}")]
    LocalRequest(#[source] LocalError),
    /// A local request's nonce that is not hex.
    #[error("the nonce must be hex")]
    Nonce,
    /// A recovery naming no friend.
    #[error("name at least one friend of the circle (the kit lists them)")]
    NoKitFriend,
    /// A kit friend's ego id that does not parse.
    #[error("friend {friend:?}: {text:?} is not an ego id: {source}")]
    KitEgoId {
        friend: String,
        text: String,
        source: ParseIdError,
    },
    /// A kit friend's peer id that does not parse.
    #[error("friend {friend:?}: {text:?} is not a peer id: {source}")]
    KitPeerId {
        friend: String,
        text: String,
        source: Foreign,
    },
    /// An ego id that does not parse.
    #[error("{text:?} is not an ego id: {source}")]
    EgoId { text: String, source: ParseIdError },
}

/// The state forbids the change, or it exists already.
#[derive(Debug, Error)]
pub(crate) enum Conflict {
    /// The ego is revoked.
    #[error("the ego is revoked")]
    Revoked,
    /// The named ego is revoked.
    #[error("ego {0:?} is revoked")]
    EgoRevoked(String),
    /// `ego revoke` of a revoked ego.
    #[error("ego {0:?} is already revoked")]
    AlreadyRevoked(String),
    /// An ego has the name, or one is being made with it.
    #[error("an ego named {0:?} already exists")]
    NameTaken(String),
    /// A recovery of an ego this agent holds.
    #[error("this agent already holds that ego: nothing to recover")]
    AlreadyHeld,
    /// A second recovery of one ego.
    #[error("that ego is already being recovered; `cyrcles recovery list` shows how far")]
    Recovering,
    /// A recovery of a revoked ego.
    #[error("the ego is revoked: it cannot be recovered")]
    RevokedRecovery,
    /// The ego changed while its friends signed.
    #[error("the ego changed during the ceremony; try again")]
    Changed,
    /// A ceremony through friends, and no friends hold the circle.
    #[error("the ego has no shared circle")]
    NoSharedCircle,
    /// `circle repair` of an ego whose circle is not shared.
    #[error("ego {0:?} has no shared circle to repair")]
    NothingToRepair(String),
    /// A change that needs the whole circle key, and friends hold it.
    #[error("this agent does not hold the whole circle key (friends hold shares)")]
    CircleShared,
    /// The circle has fewer other members than a repair needs, online or
    /// not: a strict circle cannot rebuild a lost share.
    #[error(
        "a repair needs {needed} of the other friends of the circle and it has {others}: a \
         circle where every friend must sign cannot rebuild a lost share"
    )]
    RepairImpossible { others: usize, needed: usize },
    /// A friend's request (recovery or circle) the person has decided
    /// already.
    #[error("{what} {id} is already {decision}")]
    Decided {
        what: &'static str,
        id: u64,
        decision: &'static str,
    },
}

/// Stored data is damaged.
#[derive(Debug, Error)]
pub(crate) enum Damaged {
    /// The ego cannot be used (`why`: what is wrong with it).
    #[error("ego {ego:?} is damaged: {why}")]
    Ego { ego: String, why: String },
    /// The stored ego key is not the one its record certifies.
    #[error("the stored ego key is not the certified one")]
    EgoKey,
    /// The device key does not make a libp2p identity.
    #[error("the device key is unusable: {0}")]
    DeviceKey(#[source] Foreign),
    /// The whole circle key does not decode (a reshare).
    #[error("the stored circle key is not valid")]
    CircleKey,
    /// The whole circle key of an ego does not decode (a rotation).
    #[error("the stored circle key of ego {0} is not a valid key")]
    CircleKeyOf(EgoId),
    /// Neither a circle key nor a shared circle.
    #[error("no circle key and no shared circle")]
    NoCircle,
    /// The stored shared circle does not decode.
    #[error("the stored circle is damaged: {0}")]
    Circle(#[source] DecodeError),
    /// A friend's stored peer id does not decode.
    #[error("friend {0:?} has no valid peer id")]
    FriendPeer(String),
}

/// The keys are locked.
#[derive(Debug, Error)]
pub(crate) enum Locked {
    /// The keystore's data key is not loaded.
    #[error("the keystore is locked; run `cyrcles unlock --passphrase-file FILE`")]
    Keystore,
    /// An invite needs the ego's key and node.
    #[error("the keys are locked; run `cyrcles unlock` first")]
    Invite,
    /// A ceremony needs the ego's key and node.
    #[error("the keys are locked; run `cyrcles unlock`")]
    Ceremony,
    /// The ego's node is not running.
    #[error("the ego's node is not running (locked?)")]
    Node,
    /// An approval needs the ego's key.
    #[error("the ego's key is locked; run `cyrcles unlock`, then approve again")]
    Approval,
}

/// Nobody answered in time, or the request ended.
#[derive(Debug, Error)]
pub(crate) enum Expired {
    /// The invite was closed (`why`: it expired, or its command left).
    #[error("{0}")]
    InviteClosed(&'static str),
    /// The invite's channel closed without an outcome.
    #[error("the invite was closed")]
    InviteGone,
    /// Nobody used the invite in time.
    #[error("nobody used the invite in time")]
    InviteUnused,
    /// An agent got the inviter's reply and never confirmed.
    #[error(
        "an agent answered the invite and did not finish it; if that was not your \
         friend, open a new invite"
    )]
    Unconfirmed,
    /// Nobody approved a local request in time.
    #[error("nobody approved the request in time")]
    Unapproved,
}

/// A wrong code.
#[derive(Debug, Error)]
pub(crate) enum WrongCode {
    /// The invite exchange did not match (this side found it).
    #[error(
        "the invite code did not match: a wrong code, or someone in the middle; \
         the invite is burnt, open a new one"
    )]
    Invite,
    /// The inviter's agent says the code did not match.
    #[error("the invite code did not match; ask your friend for a new invite")]
    Inviter,
    /// A wrong match code; `left` tries remain.
    #[error(
        "wrong code: {code:02} is not the number shown with the request ({} left)",
        crate::text::count(u64::from(*left), "try", "tries")
    )]
    Retry { code: u8, left: u32 },
    /// The last wrong match code: the request is denied.
    #[error(
        "wrong code: {code:02} is not the number shown; after {wrong} wrong codes the request is denied"
    )]
    Denied { code: u8, wrong: u32 },
}

/// A bug, or a step that should not fail.
#[derive(Debug, Error)]
pub(crate) enum Internal {
    /// A streaming request reached the single-reply path.
    #[error("streaming request in the single-reply path")]
    Streaming,
    /// A repair task ended without an answer.
    #[error("a repair task failed")]
    RepairTask,
    /// A key generation task ended without an answer.
    #[error("a key generation task failed")]
    DkgTask,
    /// The record builder refused an update.
    #[error("record update refused: {0}")]
    RecordUpdate(#[source] BuildError),
    /// Signed endpoints do not fit the record.
    #[error("{0}")]
    Endpoints(#[source] BuildError),
    /// The new circle link does not fit the record.
    #[error("the new link does not fit: {0}")]
    Link(#[source] BuildError),
    /// A FROST session could not be set up.
    #[error("{0}")]
    Frost(#[source] CircleError),
    /// The invite exchange could not start.
    #[error("{0}")]
    InviteStart(#[source] InviteError),
}

/// Why a record was not published (kept as the ego's last error).
#[derive(Debug, Error)]
pub(crate) enum Unpublished {
    /// The node took the record, and no peer stored it yet.
    #[error("no peer has stored the record yet (no network?); retrying")]
    NoPeer,
    /// The node refused the record.
    #[error("publication failed: {0}")]
    Failed(#[source] cyrcles_p2p::PublishError),
    /// The first publication took longer than `ego create` waits.
    #[error("publication is taking long; the daemon keeps trying")]
    TakingLong,
}

#[cfg(test)]
mod tests;
