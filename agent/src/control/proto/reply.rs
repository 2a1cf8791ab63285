//! What the daemon answers: [`Reply`], and the views it carries (status,
//! egos, requests, policies, bans, friends, circles, shares, recoveries).

use serde::{Deserialize, Serialize};

use super::ErrorReply;
use crate::keystore::{BanReason, BanTarget, PolicyOrigin};

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
    /// Friends' circle changes and revocations for the person to decide.
    CircleRequests {
        /// Oldest first.
        requests: Vec<IncomingChange>,
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

/// A friend's device asks for a change of their circle or the end of their
/// ego: this person decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingChange {
    /// Its id, for `circle approve` and `circle deny`.
    pub id: u64,
    /// `circle-change` or `revocation`.
    pub what: String,
    /// The friend (petname).
    pub friend: String,
    /// The friend's ego id.
    pub friend_ego_id: String,
    /// Six digits to compare with the friend (by phone) before approving.
    pub fingerprint: String,
    /// `pending`, `approved` or `denied`.
    pub state: String,
    /// When it arrived.
    pub received_at: u64,
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
    /// `pending`, `approved`, `denied`, or `objected` (approved, then the
    /// device holding the current key objected: decide again).
    pub state: String,
    /// The device holding the friend's current key objected to it.
    #[serde(default)]
    pub objected: bool,
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
