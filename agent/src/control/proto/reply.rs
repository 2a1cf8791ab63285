//! The control socket's messages.
//!
//! A connection carries one request from the client and one or more replies
//! from the daemon. Each message is a frame: a 4-byte big-endian length,
//! then that many bytes of JSON. Requests are at most 64 KiB, replies at
//! most 1 MiB. Most requests get exactly one reply; `sign` gets
//! `sign-pending` then `signed` or an error; `watch` gets a stream of
//! `event`s until the client hangs up. Errors are `error` replies with a
//! stable [`ErrorCode`].

use std::fmt;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::keystore::{BanReason, BanTarget, PolicyOrigin};

/// Largest request frame.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Largest reply frame.
pub const MAX_REPLY: usize = 1024 * 1024;

/// A secret string in a message (the passphrase of `unlock`): zeroized on
/// drop, never printed by `Debug`.
#[derive(Clone)]
pub struct SecretText(Zeroizing<String>);

impl Serialize for SecretText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl SecretText {
    /// Wraps a string.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(..)")
    }
}

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The daemon's state.
    Status,
    /// Unlocks a passphrase-protected keystore.
    Unlock {
        /// The passphrase.
        passphrase: SecretText,
    },
    /// Forgets the keys held in memory until the next unlock.
    Lock,
    /// Stops the daemon.
    Stop,
    /// Creates an ego.
    EgoCreate {
        /// Its local name.
        name: String,
    },
    /// Lists the egos.
    EgoList,
    /// Shows one ego.
    EgoShow {
        /// Its name.
        name: String,
    },
    /// Certifies a new ego key now.
    EgoRotate {
        /// The ego.
        name: String,
    },
    /// Revokes an ego for good.
    EgoRevoke {
        /// The ego.
        name: String,
    },
    /// The ego's recovery kit.
    RecoveryKit {
        /// The ego.
        name: String,
    },
    /// The requests waiting for the person.
    Requests,
    /// Approves a request with the match code the person read.
    Approve {
        /// The request.
        id: u64,
        /// The code.
        code: u8,
        /// Also remember the site for this ego.
        #[serde(default)]
        remember: bool,
        /// With `remember`: sign future requests of this site without
        /// asking.
        #[serde(default)]
        auto: bool,
    },
    /// Denies a request.
    Deny {
        /// The request.
        id: u64,
        /// Also ban the site (or, for a local request, the program).
        #[serde(default)]
        ban_site: bool,
        /// Also ban the bridge.
        #[serde(default)]
        ban_bridge: bool,
        /// "That was not me": deny, ban the site and record it.
        #[serde(default)]
        not_me: bool,
    },
    /// Remembers a site for an ego.
    PolicyAllow {
        /// The ego's name.
        ego: String,
        /// The bridge's issuer URL.
        bridge: String,
        /// The site's client id.
        client: String,
        /// Sign without asking.
        #[serde(default)]
        auto: bool,
    },
    /// Lists the remembered sites.
    PolicyList,
    /// Forgets a remembered site.
    PolicyRemove {
        /// Its id.
        id: i64,
    },
    /// Lists the bans.
    BanList,
    /// Adds a ban.
    BanAdd {
        /// The ego, for site and bridge bans.
        ego: Option<String>,
        /// What to ban.
        target: BanTarget,
    },
    /// Lifts a ban.
    BanRemove {
        /// Its id.
        id: i64,
    },
    /// A local program asks for a signature by an ego.
    Sign {
        /// The ego's name.
        ego: String,
        /// Why, in the program's words (shown to the person).
        reason: String,
        /// A nonce to include, hex (16 to 64 bytes); the agent picks one
        /// when absent.
        nonce: Option<String>,
    },
    /// Streams request events.
    Watch,
    /// Opens an invite for an ego and waits for the friend (streaming:
    /// `invite-open`, then `friend` or an error).
    FriendInvite {
        /// The ego the friend joins.
        ego: String,
        /// The person's name for the friend (defaults to the friend's
        /// fingerprint).
        name: Option<String>,
    },
    /// Accepts an invite code read out by a friend.
    FriendAccept {
        /// The code, such as `4821-orbit-ladder`.
        code: SecretText,
        /// The ego that accepts (needed when there are several).
        ego: Option<String>,
        /// The person's name for the friend.
        name: Option<String>,
    },
    /// Lists the friends.
    FriendList,
    /// Adds a friend to an ego's circle (shares it again when it can).
    CircleAdd {
        /// The ego.
        ego: String,
        /// The friend's petname (or ego id).
        friend: String,
    },
    /// Removes a friend from an ego's circle (shares it again).
    CircleRemove {
        /// The ego.
        ego: String,
        /// The friend's petname (or ego id).
        friend: String,
    },
    /// Rebuilds a member's lost share with a threshold of the others.
    CircleRepair {
        /// The ego.
        ego: String,
        /// The friend whose share is lost.
        friend: String,
    },
    /// Shows an ego's circle.
    CircleShow {
        /// The ego.
        ego: String,
    },
    /// Sets the threshold of an ego's circle.
    CirclePolicy {
        /// The ego.
        ego: String,
        /// Friends needed to sign.
        threshold: u16,
    },
    /// The shares this agent holds for friends.
    Shares,
    /// Starts recovering an ego on this device (DESIGN.md, flow 6).
    Recover {
        /// The local name for the recovered ego.
        name: String,
        /// The ego id.
        ego_id: String,
        /// The circle's members to ask (ego ids, with the node each used).
        friends: Vec<KitFriend>,
    },
    /// Recovery requests from friends, and this device's own recoveries.
    RecoveryList,
    /// Approves a friend's recovery request (after checking with them).
    RecoveryApprove {
        /// The request.
        id: u64,
    },
    /// Denies a friend's recovery request.
    RecoveryDeny {
        /// The request.
        id: u64,
    },
}

impl Request {
    /// The command name (for logs).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Unlock { .. } => "unlock",
            Request::Lock => "lock",
            Request::Stop => "stop",
            Request::EgoCreate { .. } => "ego-create",
            Request::EgoList => "ego-list",
            Request::EgoShow { .. } => "ego-show",
            Request::EgoRotate { .. } => "ego-rotate",
            Request::EgoRevoke { .. } => "ego-revoke",
            Request::RecoveryKit { .. } => "recovery-kit",
            Request::Requests => "requests",
            Request::Approve { .. } => "approve",
            Request::Deny { .. } => "deny",
            Request::PolicyAllow { .. } => "policy-allow",
            Request::PolicyList => "policy-list",
            Request::PolicyRemove { .. } => "policy-remove",
            Request::BanList => "ban-list",
            Request::BanAdd { .. } => "ban-add",
            Request::BanRemove { .. } => "ban-remove",
            Request::Sign { .. } => "sign",
            Request::Watch => "watch",
            Request::FriendInvite { .. } => "friend-invite",
            Request::FriendAccept { .. } => "friend-accept",
            Request::FriendList => "friend-list",
            Request::CircleAdd { .. } => "circle-add",
            Request::CircleRemove { .. } => "circle-remove",
            Request::CircleShow { .. } => "circle-show",
            Request::CircleRepair { .. } => "circle-repair",
            Request::CirclePolicy { .. } => "circle-policy",
            Request::Shares => "shares",
            Request::Recover { .. } => "recover",
            Request::RecoveryList => "recovery-list",
            Request::RecoveryApprove { .. } => "recovery-approve",
            Request::RecoveryDeny { .. } => "recovery-deny",
        }
    }
}

/// The daemon's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// The agent's version.
    pub version: String,
    /// The daemon's process id.
    pub pid: u32,
    /// The home directory.
    pub home: String,
    /// Whether the keys are locked.
    pub locked: bool,
    /// `passphrase` or `keyfile`.
    pub protection: String,
    /// When the daemon started (Unix seconds).
    pub started_at: u64,
    /// The daemon's clock.
    pub now: u64,
    /// Egos.
    pub egos: usize,
    /// Requests waiting for the person.
    pub pending: usize,
    /// Each ego's network node.
    pub nodes: Vec<NodeInfo>,
    /// Time to answer logins approved by policy (recent ones), if any.
    #[serde(default)]
    pub auto_approvals: Option<LatencySummary>,
}

/// Percentiles of recent handling times, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// How many samples the figures cover.
    pub samples: usize,
    /// Median.
    pub p50_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// Slowest.
    pub max_us: u32,
}

/// One ego's network node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The ego's name.
    pub ego: String,
    /// The node's peer id.
    pub peer_id: String,
    /// `running`, `stopped` (its event loop ended: the ego is unreachable
    /// until the daemon restarts) or `not-answering`.
    #[serde(default)]
    pub state: String,
    /// Connected peers (0 unless running).
    pub connected_peers: usize,
    /// Listen addresses.
    pub listen_addrs: Vec<String>,
    /// Panics the node's event loop caught and survived (each one is a
    /// bug reached by some input; the log says which).
    #[serde(default)]
    pub panics: u64,
}

/// One ego, as `ego show` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgoInfo {
    /// Local name.
    pub name: String,
    /// The ego id (text form).
    pub ego_id: String,
    /// The fingerprint people compare.
    pub fingerprint: String,
    /// `active`, `revoked` or `damaged`.
    pub state: String,
    /// What is wrong, when damaged.
    pub damage: Option<String>,
    /// Certificate seq.
    pub cert_seq: u64,
    /// Certificate validity start.
    pub cert_not_before: u64,
    /// Certificate expiry.
    pub cert_not_after: u64,
    /// The current ego key (hex).
    pub ego_key: String,
    /// Circle links in the chain.
    pub circle_links: usize,
    /// How the circle key is held.
    pub circle: String,
    /// The signed endpoints, if any.
    pub endpoints: Option<EndpointsInfo>,
    /// When the daemon will certify a new ego key.
    pub next_rotation: Option<u64>,
    /// Creation time.
    pub created_at: u64,
    /// Last successful publication.
    pub last_published_at: Option<u64>,
    /// Last publication or rotation error.
    pub last_error: Option<String>,
    /// Why the last rotation through friends failed, until one succeeds
    /// (`next_rotation` is then the next try).
    #[serde(default)]
    pub rotation_problem: Option<String>,
    /// The ego's node: `running`, `stopped` or `not-answering`; none
    /// while it is not started (locked).
    #[serde(default)]
    pub node: Option<String>,
}

/// Signed endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointsInfo {
    /// Their seq.
    pub seq: u64,
    /// When they were signed.
    pub issued_at: u64,
    /// When they expire.
    pub expires_at: u64,
    /// Peers and addresses.
    pub peers: Vec<PeerInfo>,
}

/// A peer and its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Peer id (text).
    pub peer_id: String,
    /// Multiaddrs (text).
    pub addrs: Vec<String>,
}

/// The non-secret recovery kit of an ego (DESIGN.md, flow 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryKit {
    /// Always `cyrcles-recovery-kit`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The ego id.
    pub ego_id: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// The circle id (hex).
    pub circle_id: String,
    /// The members of the ego's shared circle (empty while it is held
    /// whole): who to ask, and how to find their nodes (their egos'
    /// records in the DHT).
    pub friends: Vec<KitFriend>,
    /// When the kit was written.
    pub written_at: u64,
    /// What to do with it.
    pub note: String,
}

/// A circle member, as the recovery kit names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitFriend {
    /// The person's name for the friend.
    pub name: String,
    /// The friend's ego id (its record lists the friend's node).
    pub ego_id: String,
    /// The friend's node when the friendship was made.
    pub peer_id: String,
}

/// A request waiting for the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// Its id (what `approve` and `deny` take).
    pub id: u64,
    /// `login` (from a bridge) or `local` (from a program here).
    pub kind: String,
    /// The ego's name.
    pub ego: String,
    /// The ego id.
    pub ego_id: String,
    /// The site's name (login) or the program's reason (local).
    pub site: String,
    /// The client id (login).
    pub client_id: Option<String>,
    /// The site's origin (login).
    pub origin: Option<String>,
    /// The bridge's issuer (login).
    pub bridge: Option<String>,
    /// The bridge's peer id (login).
    pub bridge_peer: Option<String>,
    /// The browser's IP address, as the bridge reports it (login).
    pub client_ip: Option<String>,
    /// The program's path (local).
    pub program: Option<String>,
    /// The program's process id (local).
    pub program_pid: Option<u32>,
    /// Whether the site is remembered for this ego.
    pub known_site: bool,
    /// The site asks the person to confirm this very login (login): no
    /// remembered site or policy answers it, only the person with the
    /// code.
    pub confirm: bool,
    /// When it arrived.
    pub received_at: u64,
    /// When it expires.
    pub expires_at: u64,
    /// Wrong codes typed so far.
    pub wrong_codes: u32,
}

/// A remembered site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// Its id.
    pub id: i64,
    /// The ego's name.
    pub ego: String,
    /// The bridge's issuer.
    pub bridge: String,
    /// The client id.
    pub client: String,
    /// Signed without asking.
    pub auto: bool,
    /// What made it: `policy` (`policy allow`) or `remembered-site`
    /// (`approve --remember`). An automatic approval says which to the
    /// bridge.
    pub origin: PolicyOrigin,
    /// When added.
    pub created_at: u64,
}

/// A ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanInfo {
    /// Its id.
    pub id: i64,
    /// The ego's name (none for program bans).
    pub ego: Option<String>,
    /// What is banned.
    pub target: BanTarget,
    /// Why.
    pub reason: BanReason,
    /// For "not me": what the request said.
    pub detail: Option<serde_json::Value>,
    /// When.
    pub created_at: u64,
}

/// A signature for a local program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSignature {
    /// The ego id.
    pub ego_id: String,
    /// The ego key that signed (hex).
    pub ego_key: String,
    /// The seq of the certificate of that key.
    pub cert_seq: u64,
    /// The program, as the agent saw it.
    pub program: String,
    /// The reason given.
    pub reason: String,
    /// The nonce (hex).
    pub nonce: String,
    /// When signed.
    pub issued_at: u64,
    /// The signed message: the canonical `LocalRequest` (hex).
    pub message: String,
    /// The Ed25519 signature over `"cyrcles/v1/local" ‖ 0x00 ‖ message`
    /// (hex).
    pub signature: String,
}

/// Something happened to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum WatchEvent {
    /// A request waits for the person.
    Pending {
        /// The request.
        request: Box<RequestInfo>,
    },
    /// A request was answered, expired or withdrawn.
    Resolved {
        /// Its id.
        id: u64,
        /// `approved`, `denied`, `expired`, `withdrawn` or `auto-approved`.
        outcome: String,
    },
    /// Something the person should know that needs no answer (a friend's
    /// signing request the agent refused).
    Notice {
        /// What happened.
        message: String,
    },
}

/// Stable error kinds; the CLI turns each into its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// Something broke inside the daemon.
    Internal,
    /// The request is malformed or its values are invalid.
    BadRequest,
    /// The named ego, request, policy or ban does not exist.
    NotFound,
    /// The match code is wrong.
    WrongCode,
    /// The keystore is locked (or the passphrase is wrong).
    Locked,
    /// The keystore is damaged.
    Damaged,
    /// The thing exists already, or its state forbids the change.
    Conflict,
    /// Refused: another user, a ban, a quota, or the person said no.
    Refused,
    /// The request expired.
    Expired,
    /// The network did not answer.
    Network,
}

impl ErrorCode {
    /// The CLI's exit code for this error. 2 is usage, 3 is "the daemon
    /// is not running".
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorCode::Internal => 1,
            ErrorCode::BadRequest => 2,
            ErrorCode::NotFound => 4,
            ErrorCode::WrongCode => 5,
            ErrorCode::Locked => 6,
            ErrorCode::Damaged => 7,
            ErrorCode::Conflict => 8,
            ErrorCode::Refused => 9,
            ErrorCode::Expired => 10,
            ErrorCode::Network => 11,
        }
    }
}

/// An error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What kind.
    pub code: ErrorCode,
    /// For the person.
    pub message: String,
}

impl ErrorReply {
    /// An error reply.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorReply {}

/// What the daemon answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Reply {
    /// `status`.
    Status(StatusInfo),
    /// Done, with a sentence for the person.
    Done {
        /// What happened.
        message: String,
    },
    /// One ego.
    Ego(EgoInfo),
    /// Egos.
    Egos {
        /// The egos.
        egos: Vec<EgoInfo>,
    },
    /// A recovery kit.
    Kit(RecoveryKit),
    /// Waiting requests.
    Requests {
        /// The requests.
        requests: Vec<RequestInfo>,
    },
    /// A request was approved.
    Approved {
        /// Its id.
        id: u64,
        /// The policy remembered with it.
        policy: Option<PolicyInfo>,
    },
    /// A request was denied.
    Denied {
        /// Its id.
        id: u64,
        /// Bans made with it.
        bans: Vec<BanInfo>,
    },
    /// A policy.
    Policy(PolicyInfo),
    /// Policies.
    Policies {
        /// The policies.
        policies: Vec<PolicyInfo>,
    },
    /// A ban.
    Ban(BanInfo),
    /// Bans.
    Bans {
        /// The bans.
        bans: Vec<BanInfo>,
    },
    /// A local signing request waits for the person.
    SignPending {
        /// Its id.
        id: u64,
        /// The code the person must type into `cyrcles approve`.
        code: u8,
    },
    /// The local signature.
    Signed(LocalSignature),
    /// A watch event.
    Event(WatchEvent),
    /// An invite is open: read the code to the friend.
    InviteOpen {
        /// The code.
        code: String,
        /// The ego the friend joins.
        ego: String,
        /// When the code stops working (Unix seconds).
        expires_at: u64,
    },
    /// A friend.
    Friend(FriendInfo),
    /// Friends.
    Friends {
        /// The friends.
        friends: Vec<FriendInfo>,
    },
    /// An ego's circle.
    Circle(CircleInfo),
    /// The shares held for friends.
    Shares {
        /// The shares.
        shares: Vec<ShareInfo>,
    },
    /// Recoveries: friends' requests, and this device's own.
    Recoveries {
        /// Friends' requests waiting for (or decided by) the person.
        incoming: Vec<IncomingRecovery>,
        /// Egos this device is recovering.
        outgoing: Vec<OutgoingRecovery>,
    },
    /// An error.
    Error(ErrorReply),
}

/// An ego's circle of friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircleInfo {
    /// The ego.
    pub ego: String,
    /// In words: held whole, or shared t of n.
    pub state: String,
    /// Friends needed to sign (the shared circle's, else the planned one).
    pub threshold: u16,
    /// The members of the shared circle.
    pub members: Vec<CircleMember>,
    /// The friends chosen (the next sharing's members).
    pub planned: Vec<CircleMember>,
    /// The threshold asked for the next sharing.
    pub planned_threshold: u16,
    /// The shared circle's generation (its link index).
    pub generation: Option<u64>,
    /// When it was shared.
    pub shared_at: Option<u64>,
    /// Advice (few friends, strict circle).
    pub warnings: Vec<String>,
    /// What the last change did.
    pub note: Option<String>,
}

/// A circle member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircleMember {
    /// The friend's petname.
    pub name: String,
    /// The friend's ego id.
    pub ego_id: String,
    /// The FROST member id in the shared circle.
    pub member: Option<u16>,
}

/// A friend's request to recover their ego on a new device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingRecovery {
    /// Its id, for `recovery approve` and `recovery deny`.
    pub id: u64,
    /// The friend (petname).
    pub friend: String,
    /// The friend's ego id.
    pub friend_ego_id: String,
    /// Six digits to compare with the friend (by phone) before approving.
    pub fingerprint: String,
    /// The new device's node.
    pub peer_id: String,
    /// `pending`, `approved` or `denied`.
    pub state: String,
    /// When it arrived.
    pub received_at: u64,
}

/// An ego this device is recovering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingRecovery {
    /// The local name.
    pub name: String,
    /// The ego id.
    pub ego_id: String,
    /// Six digits the friends must read back before they approve.
    pub fingerprint: String,
    /// `asking`, `done` or `failed`.
    pub state: String,
    /// Approvals needed (once a friend told the circle's threshold).
    pub threshold: Option<u16>,
    /// Each friend's answer at the last attempt.
    pub friends: Vec<RecoveryAnswer>,
    /// What happened last, in words.
    pub note: String,
    /// When it started.
    pub started_at: u64,
}

/// One friend's answer to a recovery, as the recovering device saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryAnswer {
    /// The friend's name (from the kit).
    pub name: String,
    /// `waiting` (for their approval), `approved`, `denied`, `refused` or
    /// `unreachable`.
    pub answer: String,
}

/// A share this agent holds of a friend's circle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    /// The friend (petname).
    pub friend: String,
    /// The friend's ego id.
    pub friend_ego_id: String,
    /// This agent's ego that is the friend.
    pub my_ego: String,
    /// The circle's generation.
    pub generation: u64,
    /// When this agent last signed with it.
    pub last_signed_at: Option<u64>,
    /// When it arrived.
    pub received_at: u64,
}

/// A friend of one of the person's egos.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendInfo {
    /// Row id.
    pub id: i64,
    /// The person's ego.
    pub ego: String,
    /// The person's name for the friend.
    pub name: String,
    /// The friend's ego id.
    pub ego_id: String,
    /// The six digits both people saw when the invite ran.
    pub fingerprint: String,
    /// The friend's node.
    pub peer_id: String,
    /// When they became friends.
    pub created_at: u64,
}

/// A framing error.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed or the socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame over the size cap.
    #[error("message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let body = serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame of at most `max` bytes; `None` when the peer closed
/// cleanly before a frame began.
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    max: usize,
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let req = Request::Approve {
            id: 3,
            code: 42,
            remember: true,
            auto: false,
        };
        write_frame(&mut a, &req).await.unwrap();
        let got: Request = read_frame(&mut b, MAX_REQUEST).await.unwrap().unwrap();
        assert!(matches!(
            got,
            Request::Approve {
                id: 3,
                code: 42,
                ..
            }
        ));
        // A length over the cap is refused before reading the body.
        a.write_all(&(u32::try_from(MAX_REQUEST).unwrap() + 1).to_be_bytes())
            .await
            .unwrap();
        let e = read_frame::<_, Request>(&mut b, MAX_REQUEST)
            .await
            .unwrap_err();
        assert!(matches!(e, FrameError::TooLarge(_)));
    }

    #[test]
    fn unknown_commands_and_fields_are_malformed() {
        assert!(serde_json::from_str::<Request>(r#"{"command":"format-disk"}"#).is_err());
        assert!(
            serde_json::from_str::<Request>(r#"{"command":"ego-show","name":"a","x":1}"#).is_err()
        );
        assert!(serde_json::from_str::<Request>(r#"{"command":"ego-show"}"#).is_err());
        assert!(
            serde_json::from_str::<Request>(r#"{"command":"approve","id":1,"code":300}"#).is_err()
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let r = Request::Unlock {
            passphrase: SecretText::new("correct horse".into()),
        };
        assert!(!format!("{r:?}").contains("horse"));
    }
}
