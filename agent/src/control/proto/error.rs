//! Error replies: a stable [`ErrorCode`], which the CLI turns into its exit
//! code, and a message for the person.

use std::fmt;

use serde::{Deserialize, Serialize};

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
