//! Sending a login challenge to the ego's agent and checking its answer.
//!
//! The instance that sends the challenge writes the outcome to the
//! database, so that whichever instance the browser polls can see it.

use std::net::IpAddr;
use std::time::Duration;

use cyrcles_core::cbor::Encode;
use cyrcles_core::login::{
    ChallengeParams, DenyReason, LoginChallenge, LoginError, LoginResponse, verify_approval,
};
use cyrcles_core::record::VerifiedEgo;
use cyrcles_core::{EgoId, UnixTime};
use cyrcles_p2p::{Multiaddr, PeerId};

use crate::limits::IpPrefix;
use crate::oidc::acr::Approved;
use crate::oidc::client::Client;
use crate::oidc::params::AuthRequest;
use crate::random;
use crate::state::AppState;
use crate::store::{ChallengeAdmission, ChallengeRow, ChallengeStatus, PendingCaps, StoreError};

use super::resolve;

/// The reachable peers of a record's live endpoints.
pub fn endpoint_peers(ego: &VerifiedEgo, now: i64) -> Vec<(PeerId, Vec<Multiaddr>)> {
    let Some(ep) = ego.live_endpoints(UnixTime::from_secs(u64::try_from(now).unwrap_or(0))) else {
        return Vec::new();
    };
    ep.peers
        .iter()
        .filter_map(|p| {
            let peer = PeerId::from_bytes(&p.peer_id).ok()?;
            let addrs = p
                .addrs
                .iter()
                .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
                .collect();
            Some((peer, addrs))
        })
        .collect()
}

/// A random two-digit match code.
fn match_code() -> u8 {
    // Rejection sampling keeps the 100 values equally likely.
    loop {
        let b = random::random_bytes::<1>()[0];
        if b < 200 {
            return b % 100;
        }
    }
}

/// Why [`start`] sent nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This client prefix already has its maximum pending for the ego.
    PrefixFull,
    /// The ego has its maximum pending, and this prefix holds the most.
    EgoFull,
}

impl Refusal {
    /// What the page says.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::PrefixFull => {
                "Several login requests from your network are already waiting for this ego. Answer them in your agent or wait two minutes."
            }
            Refusal::EgoFull => {
                "Too many login requests are waiting for this ego right now. Answer them in your agent or wait two minutes."
            }
        }
    }
}

/// Creates a challenge for `ego` about the request `req`, stores it as
/// pending and sends it in the background. Returns the challenge id, or
/// why it was not sent (the pending caps per ego and client prefix, and per
/// ego, are full). When the request requires the person, the challenge
/// says so and only the person's approval is accepted.
pub async fn start(
    state: &AppState,
    interaction_id: &str,
    client: &Client,
    req: &AuthRequest,
    ego: VerifiedEgo,
    client_ip: IpAddr,
) -> Result<Result<String, Refusal>, StoreError> {
    let now = state.now();
    let ttl = i64::try_from(state.settings.login.challenge_ttl_secs).unwrap_or(120);
    let params = ChallengeParams {
        issuer: state.settings.issuer.clone(),
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        redirect_origin: crate::oidc::client::origin_of(&req.redirect_uri),
        ego_id: ego.ego_id(),
        nonce: random::random_bytes::<16>().to_vec(),
        issued_at: UnixTime::from_secs(u64::try_from(now).unwrap_or(0)),
        expires_at: UnixTime::from_secs(u64::try_from(now + ttl).unwrap_or(0)),
        match_code: match_code(),
        client_ip: Some(client_ip.to_string()),
        confirm: req.person_required,
    };
    let challenge = LoginChallenge::new(params)
        .map_err(|_| StoreError::Corrupt("login challenge parameters"))?;
    let id = random::id();
    let l = &state.settings.login;
    let admission = state
        .store
        .insert_challenge_fair(
            &ChallengeRow {
                id: id.clone(),
                interaction_id: interaction_id.to_string(),
                ego_id: ego.ego_id().to_string(),
                challenge: challenge.to_cbor(),
                match_code: i64::from(challenge.params().match_code),
                issued_at: now,
                expires_at: now + ttl,
                status: ChallengeStatus::Pending,
                detail: None,
                ego_pk: None,
                cert_seq: None,
                cert_epoch: None,
                client_prefix: IpPrefix::of(client_ip).to_string(),
            },
            now,
            PendingCaps {
                per_prefix: i64::from(l.max_pending_per_ego_per_ip),
                total: i64::from(l.max_pending_per_ego),
            },
        )
        .await?;
    match admission {
        ChallengeAdmission::Admitted => {}
        ChallengeAdmission::Replaced { cancelled } => {
            state.metrics.login("replaced");
            state.watch.notify(&cancelled);
        }
        ChallengeAdmission::PrefixFull => return Ok(Err(Refusal::PrefixFull)),
        ChallengeAdmission::EgoFull => return Ok(Err(Refusal::EgoFull)),
    }
    state.metrics.login("started");
    let task_state = state.clone();
    let task_id = id.clone();
    tokio::spawn(async move {
        let deadline = Duration::from_secs(u64::try_from(ttl).unwrap_or(120));
        let outcome = tokio::time::timeout(deadline, run(&task_state, &challenge, ego))
            .await
            .unwrap_or(Outcome::Expired);
        if let Err(e) = record(&task_state, &task_id, outcome).await {
            tracing::error!(error = %e, "cannot record a challenge outcome");
        }
    });
    Ok(Ok(id))
}

enum Outcome {
    Approved {
        ego_pk: Vec<u8>,
        /// The seq and epoch of the certificate of the key that signed.
        cert: (u64, u64),
        approved_by: Approved,
    },
    Denied(DenyReason),
    Failed(&'static str),
    Unreachable,
    Expired,
}

async fn record(state: &AppState, id: &str, o: Outcome) -> Result<(), StoreError> {
    let now = state.now();
    let (to, detail, pk, cert, metric) = match o {
        // An approved challenge's detail is how the agent approved.
        Outcome::Approved {
            ego_pk,
            cert: (seq, epoch),
            approved_by,
        } => {
            let i = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
            (
                ChallengeStatus::Approved,
                Some(approved_by.as_str()),
                Some(ego_pk),
                Some((i(seq), i(epoch))),
                "approved",
            )
        }
        Outcome::Denied(r) => (
            ChallengeStatus::Denied,
            Some(deny_text(r)),
            None,
            None,
            "denied",
        ),
        Outcome::Failed(why) => (ChallengeStatus::Failed, Some(why), None, None, "failed"),
        Outcome::Unreachable => (
            ChallengeStatus::Unreachable,
            None,
            None,
            None,
            "unreachable",
        ),
        Outcome::Expired => (ChallengeStatus::Expired, None, None, None, "expired"),
    };
    if state
        .store
        .transition_challenge(
            id,
            ChallengeStatus::Pending,
            to,
            detail,
            pk.as_deref(),
            cert,
            now,
        )
        .await?
    {
        state.metrics.login(metric);
    }
    state.watch.notify(id);
    Ok(())
}

/// What the page says about a denial.
pub fn deny_text(r: DenyReason) -> &'static str {
    match r {
        DenyReason::User => {
            "Your agent denied the login: you denied it, or a wrong number was typed three times."
        }
        DenyReason::RateLimited => {
            "Your agent refused: too many login requests. Wait a little and try again."
        }
        DenyReason::Banned => "Your agent refuses logins to this site or through this bridge.",
        DenyReason::UnknownEgo => "The agent that answered does not hold this ego.",
        DenyReason::Expired => "Nobody approved the login in time.",
        DenyReason::Invalid => "The agent could not read the request.",
    }
}

/// What the page says when the agent approved on its own a login the site
/// asked the person to confirm (only an agent that ignores the rule does).
const NOT_CONFIRMED: &str = "Your agent approved without asking you, but this site asks that you confirm the login yourself. Approve it in your agent with the number shown.";

async fn run(state: &AppState, challenge: &LoginChallenge, ego: VerifiedEgo) -> Outcome {
    let peers = endpoint_peers(&ego, state.now());
    if peers.is_empty() {
        return Outcome::Unreachable;
    }
    for (peer, addrs) in peers {
        let response = match state.node.login(peer, addrs, challenge).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "agent peer did not answer");
                continue;
            }
        };
        match response {
            LoginResponse::Denied(r) => return Outcome::Denied(r),
            LoginResponse::Approved(a) => {
                let now = UnixTime::from_secs(u64::try_from(state.now()).unwrap_or(0));
                return match verify_approval(challenge, &a, &ego, now) {
                    Ok(()) => Outcome::Approved {
                        ego_pk: a.ego_pk.as_bytes().to_vec(),
                        cert: (ego.cert().seq, ego.cert().epoch),
                        approved_by: a.approved_by.into(),
                    },
                    Err(LoginError::KeyMismatch {
                        approval_seq,
                        record_seq,
                    }) if approval_seq != record_seq => {
                        // The agent may hold a newer certificate than we do
                        // (a higher seq, or a recovery's): look again, then
                        // check against that.
                        match resolve::resolve(state, ego.ego_id(), true).await {
                            Ok(newer) => match verify_approval(challenge, &a, &newer, now) {
                                Ok(()) => Outcome::Approved {
                                    ego_pk: a.ego_pk.as_bytes().to_vec(),
                                    cert: (newer.cert().seq, newer.cert().epoch),
                                    approved_by: a.approved_by.into(),
                                },
                                Err(LoginError::NotConfirmed) => Outcome::Failed(NOT_CONFIRMED),
                                Err(_) => Outcome::Failed(
                                    "The answer was not signed by the ego's current key.",
                                ),
                            },
                            Err(_) => {
                                Outcome::Failed("The ego's current record could not be found.")
                            }
                        }
                    }
                    Err(LoginError::Expired) => Outcome::Expired,
                    Err(LoginError::NotConfirmed) => Outcome::Failed(NOT_CONFIRMED),
                    Err(_) => {
                        Outcome::Failed("The answer was not signed by the ego's current key.")
                    }
                };
            }
        }
    }
    Outcome::Unreachable
}

/// Parses an ego id typed by a person: trimmed, either case.
pub fn parse_ego(text: &str) -> Option<EgoId> {
    text.trim().to_ascii_lowercase().parse().ok()
}
