//! What a client asks: [`Request`], and the [`SecretText`] it may carry.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::KitFriend;
use crate::keystore::BanTarget;

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
    /// Friends' circle changes and revocations waiting for the person.
    CircleRequests,
    /// Approves a friend's circle change or revocation (after checking
    /// with them).
    CircleApprove {
        /// The request.
        id: u64,
    },
    /// Denies a friend's circle change or revocation.
    CircleDeny {
        /// The request.
        id: u64,
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
    /// Objects, to the ego's friends, to the recoveries of it this device
    /// was told of.
    RecoveryObject {
        /// The ego.
        ego: String,
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
            Request::CircleRequests => "circle-requests",
            Request::CircleApprove { .. } => "circle-approve",
            Request::CircleDeny { .. } => "circle-deny",
            Request::Shares => "shares",
            Request::Recover { .. } => "recover",
            Request::RecoveryList => "recovery-list",
            Request::RecoveryApprove { .. } => "recovery-approve",
            Request::RecoveryDeny { .. } => "recovery-deny",
            Request::RecoveryObject { .. } => "recovery-object",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
