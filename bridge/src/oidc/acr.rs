//! What the tokens say about how a login was approved: `acr`, `amr` and
//! `auth_time` follow the agent's signed answer (docs/protocol.md,
//! section 8), never what the bridge hoped for.
//!
//! Two classes (`docs/integrating.md`):
//!
//! * [`PERSON`]: the person confirmed this login in their agent, by
//!   entering the match code the page showed;
//! * [`AGENT`]: the agent approved on its own under a rule the person set
//!   (a remembered site, a policy), or its answer did not say how.
//!
//! A client that needs the first asks for it with `acr_values`, or with
//! `prompt=login` or `max_age`: the challenge then tells the agent that the
//! person must confirm, and an answer that is not the person's is refused.

use serde::{Deserialize, Serialize};

use crate::oidc::params::AuthRequest;
use crate::store::{GrantRow, SessionRow};

/// The person confirmed the login in their agent.
pub const PERSON: &str = "urn:cyrcles:acr:person";
/// The agent approved under a standing rule of the person's.
pub const AGENT: &str = "urn:cyrcles:acr:agent";
/// The classes, strongest first, as discovery lists them.
pub const SUPPORTED: [&str; 2] = [PERSON, AGENT];

/// How the agent approved a login, as its signed answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approved {
    /// The person entered the match code.
    Person,
    /// The person had asked the agent to approve this site on its own.
    RememberedSite,
    /// A rule set in the agent (`cyrcles policy allow`).
    Policy,
    /// The answer does not say (an agent older than this rule).
    Unknown,
}

impl Approved {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Approved::Person => "person",
            Approved::RememberedSite => "remembered_site",
            Approved::Policy => "policy",
            Approved::Unknown => "unknown",
        }
    }

    /// Reads a stored name; anything else is [`Approved::Unknown`], the
    /// weakest claim.
    pub fn parse(s: &str) -> Self {
        match s {
            "person" => Approved::Person,
            "remembered_site" => Approved::RememberedSite,
            "policy" => Approved::Policy,
            _ => Approved::Unknown,
        }
    }

    /// The `acr` it supports.
    pub fn acr(self) -> &'static str {
        match self {
            Approved::Person => PERSON,
            Approved::RememberedSite | Approved::Policy | Approved::Unknown => AGENT,
        }
    }
}

impl From<Option<cyrcles_core::login::ApprovedBy>> for Approved {
    fn from(by: Option<cyrcles_core::login::ApprovedBy>) -> Self {
        use cyrcles_core::login::ApprovedBy;
        match by {
            Some(ApprovedBy::Person) => Approved::Person,
            Some(ApprovedBy::RememberedSite) => Approved::RememberedSite,
            Some(ApprovedBy::Policy) => Approved::Policy,
            None => Approved::Unknown,
        }
    }
}

/// The `amr` values (RFC 8176) of an `acr`: a key held in software, and,
/// when the person confirmed, a test of their presence.
pub fn amr(acr: &str) -> &'static [&'static str] {
    if acr == PERSON {
        &["swk", "user"]
    } else {
        &["swk"]
    }
}

/// One approval by the agent, as a grant records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// When the agent approved.
    pub auth_time: i64,
    /// How.
    pub approved_by: Approved,
    /// The certificate seq of the key that signed.
    pub cert_seq: i64,
    /// That certificate's authority epoch (0 in approvals stored before
    /// it was recorded).
    #[serde(default)]
    pub cert_epoch: i64,
}

impl Approval {
    /// The approval behind an earlier grant of `session` (the site's
    /// latest in it): what single sign-on to that site repeats. A grant
    /// made before grants recorded their certificate takes the session's.
    pub fn of_grant(g: &GrantRow, session: &SessionRow) -> Self {
        Approval {
            auth_time: g.auth_time,
            approved_by: if g.acr == PERSON {
                Approved::Person
            } else {
                Approved::Unknown
            },
            cert_seq: g.cert_seq.unwrap_or(session.cert_seq),
            cert_epoch: g.cert_epoch.unwrap_or(session.cert_epoch),
        }
    }

    /// Whether it satisfies `req`: the person confirmed if the request
    /// asks for it, recently enough for its `max_age`.
    pub fn satisfies(&self, req: &AuthRequest, now: i64) -> bool {
        if req.person_required && self.approved_by != Approved::Person {
            return false;
        }
        match req.max_age {
            Some(max) => {
                now.saturating_sub(self.auth_time) <= i64::try_from(max).unwrap_or(i64::MAX)
            }
            None => true,
        }
    }
}

/// Whether `req` requires that the person confirm the login: it asks for
/// [`PERSON`] in `acr_values`, or it sends `prompt=login` or `max_age`
/// (both ask for an active authentication, OIDC Core §3.1.2.1).
pub fn wants_person(req: &AuthRequest) -> bool {
    req.prompt.login
        || req.max_age.is_some()
        || req
            .acr_values
            .as_deref()
            .is_some_and(|v| v.split(' ').any(|a| a == PERSON))
}
