//! Login approval: the policy applied to each request, the requests that
//! wait for the person, and their answers.
//!
//! A login challenge from a bridge goes through, in order: the ego check
//! (is it this node's ego, is the challenge live, is the ego active), the
//! bans (site, bridge) and the quotas (`quota.rs`: what its source may
//! spend, what the person granted), then an auto-approve policy signs at
//! once, unless the challenge asks the person to confirm (`confirm`);
//! anything else waits for the person (`pending.rs`: bounded per source, a
//! new source always gets in), who must type the match code shown on the
//! login page. A wrong code is refused and counted; after
//! `wrong_code_limit` of them the request is denied.
//!
//! Every approval says how it was made, signed with the challenge
//! (`ApprovedBy`): `person` when the person typed the code, else the
//! origin of the policy that signed, `remembered-site` (`approve
//! --remember --auto`) or `policy` (`policy allow --auto`).
//!
//! Local programs ask through the socket (`sign`); the same bans (by
//! program path), quotas and pending bounds apply (the program is the
//! source), and the person approves with the code the program was given.
//!
//! All policy state is per ego, so that one ego's bans or quotas never
//! show through another's answers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cyrcles_core::EgoId;
use cyrcles_core::login::{ApprovedBy, DenyReason, LoginChallenge, LoginResponse};
use cyrcles_p2p::{PeerId, Responder};
use tokio::sync::oneshot;
use tracing::{info, warn};

mod local;
mod rules;

pub(crate) use local::queue_local;
use local::sign_local;
pub(crate) use rules::{allow, ban};

use super::egos::EgoState;
use super::error::{BadInput, Locked, NotFound, Refused, WrongCode};
use super::pending::{Pending, PendingKind, PendingQueue};
use super::quota::{Exceeded, QuotaBook};
use super::source::Source;
use super::{Error, Result, Shared, lock, notify, read};
use crate::config::Quotas;
use crate::control::proto::{BanInfo, PolicyInfo, Reply, RequestInfo, WatchEvent};
use crate::keystore::{BanReason, BanRow, BanTarget, PolicyOrigin, PolicyRow};
use crate::text::untrusted;

/// Longest wait for the person on a login (the bridge gives up at 130 s).
const MAX_LOGIN_WAIT: Duration = Duration::from_secs(125);
/// How long a local program's request waits for the person.
pub(crate) const LOCAL_WAIT_SECS: u64 = 120;
/// Nonce the agent picks for a local request given none.
const LOCAL_NONCE_LEN: usize = 32;

/// Pending requests, quotas, and the cached policies and bans.
#[derive(Debug)]
pub(crate) struct Approvals {
    quotas: Quotas,
    pending: PendingQueue,
    books: HashMap<EgoId, QuotaBook>,
    policies: Vec<PolicyRow>,
    bans: Vec<BanRow>,
    names: HashMap<EgoId, String>,
    revoked: HashSet<EgoId>,
}

impl Approvals {
    pub(crate) fn new(quotas: Quotas) -> Self {
        Self {
            pending: PendingQueue::new(&quotas),
            quotas,
            books: HashMap::new(),
            policies: Vec::new(),
            bans: Vec::new(),
            names: HashMap::new(),
            revoked: HashSet::new(),
        }
    }

    /// Learns an ego's name and state.
    pub(crate) fn track_ego(&mut self, state: &EgoState) {
        self.names.insert(state.ego_id(), state.row.name.clone());
        if state.is_revoked() {
            self.revoked.insert(state.ego_id());
        }
    }

    pub(crate) fn name(&self, ego: &EgoId) -> String {
        self.names
            .get(ego)
            .cloned()
            .unwrap_or_else(|| ego.to_string())
    }

    fn banned_site(&self, ego: &EgoId, issuer: &str, client_id: &str) -> bool {
        self.bans.iter().any(|b| {
            b.ego_id.as_ref() == Some(ego)
                && match &b.target {
                    BanTarget::Site {
                        issuer: i,
                        client_id: c,
                    } => i == issuer && c == client_id,
                    BanTarget::Bridge { issuer: i } => i == issuer,
                    BanTarget::Program { .. } => false,
                }
        })
    }

    fn banned_program(&self, program: &str) -> bool {
        self.bans
            .iter()
            .any(|b| matches!(&b.target, BanTarget::Program { path } if path == program))
    }

    fn policy(&self, ego: &EgoId, issuer: &str, client_id: &str) -> Option<&PolicyRow> {
        self.policies
            .iter()
            .find(|p| &p.ego_id == ego && p.issuer == issuer && p.client_id == client_id)
    }

    fn book(&mut self, ego: EgoId) -> &mut QuotaBook {
        self.books.entry(ego).or_insert_with(QuotaBook::new)
    }

    /// Counts an approval by the person against the ego's quotas.
    fn approved(&mut self, p: &Pending, now: u64) {
        let quotas = self.quotas.clone();
        let book = self.book(p.ego_id);
        match &p.kind {
            PendingKind::Login { challenge, .. } => {
                let c = challenge.params();
                book.approved_login(&c.issuer, &c.client_id, now, &quotas);
            }
            PendingKind::Local { .. } => book.approved_local(now, &quotas),
        }
    }

    /// Queues a request; the request it pushed out, if any, is answered
    /// as over quota. Returns the new request's id and the one pushed out.
    fn insert(&mut self, pending: Pending) -> (u64, Option<u64>) {
        let (id, evicted) = self.pending.insert(pending);
        let evicted = evicted.map(|(old, p)| {
            info!(id = old, ego = %p.ego_id, "a waiting request made room for a newer one");
            answer_denied(p.kind, DenyReason::RateLimited);
            old
        });
        (id, evicted)
    }

    pub(crate) fn request_info(&self, id: u64, p: &Pending) -> RequestInfo {
        let mut info = RequestInfo {
            id,
            kind: String::new(),
            ego: self.name(&p.ego_id),
            ego_id: p.ego_id.to_string(),
            site: String::new(),
            client_id: None,
            origin: None,
            bridge: None,
            bridge_peer: None,
            client_ip: None,
            program: None,
            program_pid: None,
            known_site: false,
            confirm: false,
            received_at: p.received_at,
            expires_at: p.expires_at,
            wrong_codes: p.wrong_codes,
        };
        match &p.kind {
            PendingKind::Login {
                challenge, peer, ..
            } => {
                let c = challenge.params();
                info.kind = "login".into();
                info.site = c.client_name.clone();
                info.client_id = Some(c.client_id.clone());
                info.origin = Some(c.redirect_origin.clone());
                info.bridge = Some(c.issuer.clone());
                info.bridge_peer = Some(peer.to_string());
                info.client_ip = c.client_ip.clone();
                info.known_site = self.policy(&p.ego_id, &c.issuer, &c.client_id).is_some();
                info.confirm = c.confirm;
            }
            PendingKind::Local {
                program,
                pid,
                reason,
                ..
            } => {
                info.kind = "local".into();
                info.site = reason.clone();
                info.program = Some(program.clone());
                info.program_pid = *pid;
            }
        }
        info
    }

    /// Every waiting request, oldest first.
    pub(crate) fn requests(&self) -> Vec<RequestInfo> {
        self.pending
            .iter()
            .map(|(id, p)| self.request_info(id, p))
            .collect()
    }

    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn policy_info(&self, p: &PolicyRow) -> PolicyInfo {
        PolicyInfo {
            id: p.id,
            ego: self.name(&p.ego_id),
            bridge: p.issuer.clone(),
            client: p.client_id.clone(),
            auto: p.auto,
            origin: p.origin,
            created_at: p.created_at,
        }
    }

    pub(crate) fn ban_info(&self, b: &BanRow) -> BanInfo {
        BanInfo {
            id: b.id,
            ego: b.ego_id.as_ref().map(|e| self.name(e)),
            target: b.target.clone(),
            reason: b.reason,
            detail: b
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            created_at: b.created_at,
        }
    }

    pub(crate) fn policies(&self) -> Vec<PolicyInfo> {
        self.policies.iter().map(|p| self.policy_info(p)).collect()
    }

    pub(crate) fn bans(&self) -> Vec<BanInfo> {
        self.bans.iter().map(|b| self.ban_info(b)).collect()
    }
}

fn over_quota(e: Exceeded) -> Refused {
    Refused::Quota {
        which: e.which,
        retry_after: e.retry_after,
    }
}

/// Reloads the cached policies and bans from the keystore.
pub(crate) async fn load_policies(shared: &Shared) -> Result<(), crate::keystore::KeystoreError> {
    let policies = shared.keystore.policies().await?;
    let bans = shared.keystore.bans().await?;
    let mut a = lock(&shared.approvals);
    a.policies = policies;
    a.bans = bans;
    Ok(())
}

/// A login challenge arrived at `ego`'s node from `peer`.
pub(crate) fn on_login(
    shared: &Arc<Shared>,
    ego: EgoId,
    peer: PeerId,
    challenge: LoginChallenge,
    responder: Responder<LoginResponse>,
) {
    let received = shared.clock.instant();
    let now = shared.now();
    let p = challenge.params();
    let refuse = |reason: DenyReason, why: &str| {
        info!(%ego, issuer = %untrusted(&p.issuer), client = %untrusted(&p.client_id), "login refused: {why}");
        LoginResponse::Denied(reason)
    };
    if p.ego_id != ego {
        return responder.respond(refuse(DenyReason::UnknownEgo, "for another ego"));
    }
    if !challenge.is_live_at(now) {
        return responder.respond(refuse(DenyReason::Invalid, "not live by this clock"));
    }
    let signer = read(&shared.signers).get(&ego).cloned();
    let mut a = lock(&shared.approvals);
    if a.revoked.contains(&ego) {
        return responder.respond(refuse(DenyReason::UnknownEgo, "the ego is revoked"));
    }
    if a.banned_site(&ego, &p.issuer, &p.client_id) {
        return responder.respond(refuse(DenyReason::Banned, "banned"));
    }
    let source = Source::login(peer, p.client_ip.as_deref());
    let quotas = a.quotas.clone();
    if let Err(e) = a
        .book(ego)
        .admit_login(&source, &p.issuer, &p.client_id, now.secs(), &quotas)
    {
        return responder.respond(refuse(DenyReason::RateLimited, &over_quota(e).to_string()));
    }
    // An auto-approve policy signs, saying which kind it is; never when
    // the site asks the person to confirm: that request waits for the
    // person like any other.
    let auto = a
        .policy(&ego, &p.issuer, &p.client_id)
        .filter(|pol| pol.auto)
        .map(|pol| approved_by(pol.origin));
    if let (Some(by), Some(signer)) = (auto, &signer) {
        if p.confirm {
            info!(%ego, issuer = %untrusted(&p.issuer), client = %untrusted(&p.client_id), "the site asks the person to confirm: the auto-approve policy does not answer");
        } else {
            a.book(ego)
                .approved_login(&p.issuer, &p.client_id, now.secs(), &quotas);
            drop(a);
            responder.respond(challenge.approve(&signer.key, signer.cert_seq, by));
            lock(&shared.auto_times).record(shared.clock.since(received));
            info!(%ego, issuer = %untrusted(&p.issuer), client = %untrusted(&p.client_id), approved_by = by.as_str(), "login approved without asking");
            return;
        }
    }
    let (tx, rx) = oneshot::channel();
    let expires_at = p.expires_at.secs();
    let wait =
        Duration::from_secs(expires_at.saturating_sub(now.secs()).max(1)).min(MAX_LOGIN_WAIT);
    let id = queue_for_person(
        shared,
        a,
        Pending {
            ego_id: ego,
            source,
            code: p.match_code,
            wrong_codes: 0,
            received_at: now.secs(),
            expires_at,
            kind: PendingKind::Login {
                challenge: challenge.clone(),
                peer,
                answer: tx,
            },
        },
    );
    let shared = shared.clone();
    tokio::spawn(async move {
        let response = match tokio::time::timeout(wait, rx).await {
            Ok(Ok(r)) => r,
            _ => {
                withdraw(&shared, id, "expired");
                LoginResponse::Denied(DenyReason::Expired)
            }
        };
        responder.respond(response);
    });
}

/// How an automatic approval by a policy of `origin` says it was made.
fn approved_by(origin: PolicyOrigin) -> ApprovedBy {
    match origin {
        PolicyOrigin::Policy => ApprovedBy::Policy,
        PolicyOrigin::RememberedSite => ApprovedBy::RememberedSite,
    }
}

/// Queues `pending` for the person (the request it pushed out, if any,
/// is resolved as evicted) and tells watchers and the desktop; returns
/// its id. Takes the approvals guard so the queue and the announcement
/// see the same request, and releases it before announcing.
fn queue_for_person(
    shared: &Shared,
    mut a: std::sync::MutexGuard<'_, Approvals>,
    pending: Pending,
) -> u64 {
    let ego = pending.ego_id;
    let (id, evicted) = a.insert(pending);
    let info = a.pending.get(id).map(|p| a.request_info(id, p));
    let name = a.name(&ego);
    drop(a);
    if let Some(old) = evicted {
        resolved(shared, old, "evicted");
    }
    if let Some(request) = info {
        announce(shared, &name, request);
    }
    id
}

/// Tells watchers and the desktop about a new request.
fn announce(shared: &Shared, ego_name: &str, request: RequestInfo) {
    info!(
        id = request.id,
        ego = ego_name,
        kind = %request.kind,
        site = %untrusted(&request.site),
        "request waits for the person"
    );
    if shared.settings.notify {
        // What the sender named is shown escaped (`text.rs`).
        let what = match &request.bridge {
            Some(bridge) => format!(
                "{} (through {})",
                untrusted(&request.site),
                untrusted(bridge)
            ),
            None => format!(
                "{} asks: {}",
                untrusted(request.program.as_deref().unwrap_or("a program")),
                untrusted(&request.site)
            ),
        };
        let confirm = if request.confirm {
            "\nThe site asks you to confirm this login yourself."
        } else {
            ""
        };
        notify::send(
            shared.clock.instant(),
            &format!("Cyrcles: sign in as {ego_name}?"),
            &format!(
                "{what}{confirm}\nApprove with: cyrcles approve {} --code NN",
                request.id
            ),
        );
    }
    shared.emit(WatchEvent::Pending {
        request: Box::new(request),
    });
}

fn resolved(shared: &Shared, id: u64, outcome: &str) {
    shared.emit(WatchEvent::Resolved {
        id,
        outcome: outcome.to_string(),
    });
}

/// Removes a request that nobody answered (expired, or its program hung
/// up); `false` if it was already answered.
pub(crate) fn withdraw(shared: &Shared, id: u64, outcome: &str) -> bool {
    let removed = lock(&shared.approvals).pending.remove(id).is_some();
    if removed {
        resolved(shared, id, outcome);
    }
    removed
}

/// Answers every waiting request "expired" (the daemon stops).
pub(crate) fn withdraw_all(shared: &Shared) {
    let pending = lock(&shared.approvals).pending.take_all();
    for (_, p) in pending {
        answer_denied(p.kind, DenyReason::Expired);
    }
}

fn answer_denied(kind: PendingKind, reason: DenyReason) {
    match kind {
        PendingKind::Login { answer, .. } => {
            let _ = answer.send(LoginResponse::Denied(reason));
        }
        PendingKind::Local { answer, .. } => {
            let _ = answer.send(Err(match reason {
                DenyReason::User => Refused::ByPerson.into(),
                _ => Refused::Withdrawn.into(),
            }));
        }
    }
}

/// An ego was revoked: its waiting requests are refused.
pub(crate) fn ego_revoked(shared: &Shared, ego: EgoId) {
    let taken = {
        let mut a = lock(&shared.approvals);
        a.revoked.insert(ego);
        a.pending.take_ego(&ego)
    };
    for (id, p) in taken {
        answer_denied(p.kind, DenyReason::UnknownEgo);
        resolved(shared, id, "withdrawn");
    }
}

fn no_request(id: u64) -> Error {
    NotFound::Request(id).into()
}

/// `approve ID --code NN`.
pub(crate) async fn approve(
    shared: &Shared,
    id: u64,
    code: u8,
    remember: bool,
    auto: bool,
) -> Result<Reply> {
    let now = shared.now();
    let (pending, signer) = {
        let mut a = lock(&shared.approvals);
        let limit = a.quotas.wrong_code_limit;
        let p = a.pending.get_mut(id).ok_or_else(|| no_request(id))?;
        if p.code != code {
            p.wrong_codes += 1;
            let wrong = p.wrong_codes;
            let ego = p.ego_id;
            warn!(id, %ego, wrong, "wrong match code typed");
            if wrong >= limit {
                if let Some(p) = a.pending.remove(id) {
                    answer_denied(p.kind, DenyReason::User);
                }
                drop(a);
                shared.emit(WatchEvent::Resolved {
                    id,
                    outcome: "denied".into(),
                });
                return Err(WrongCode::Denied { code, wrong }.into());
            }
            return Err(WrongCode::Retry {
                code,
                left: limit - wrong,
            }
            .into());
        }
        let signer = read(&shared.signers)
            .get(&p.ego_id)
            .cloned()
            .ok_or(Locked::Approval)?;
        let pending = a.pending.remove(id).ok_or_else(|| no_request(id))?;
        a.approved(&pending, now.secs());
        (pending, signer)
    };
    let ego = pending.ego_id;
    let mut remembered = None;
    match pending.kind {
        PendingKind::Login {
            challenge, answer, ..
        } => {
            // The person typed the code shown on the login page.
            let _ =
                answer.send(challenge.approve(&signer.key, signer.cert_seq, ApprovedBy::Person));
            let c = challenge.params();
            info!(id, %ego, issuer = %untrusted(&c.issuer), client = %untrusted(&c.client_id), "login approved");
            if remember {
                let row = shared
                    .keystore
                    .upsert_policy(
                        &ego,
                        &c.issuer,
                        &c.client_id,
                        auto,
                        PolicyOrigin::RememberedSite,
                        now.secs(),
                    )
                    .await?;
                load_policies(shared).await?;
                remembered = Some(lock(&shared.approvals).policy_info(&row));
            }
        }
        PendingKind::Local {
            program,
            reason,
            nonce,
            answer,
            ..
        } => {
            let signed = sign_local(ego, &signer, program, reason, nonce, now);
            info!(id, %ego, "local request approved");
            let _ = answer.send(signed);
        }
    }
    shared.emit(WatchEvent::Resolved {
        id,
        outcome: "approved".into(),
    });
    Ok(Reply::Approved {
        id,
        policy: remembered,
    })
}

/// `deny ID [--ban-site] [--ban-bridge] [--not-me]`.
pub(crate) async fn deny(
    shared: &Shared,
    id: u64,
    ban_site: bool,
    ban_bridge: bool,
    not_me: bool,
) -> Result<Reply> {
    let now = shared.now().secs();
    let pending = {
        let mut a = lock(&shared.approvals);
        if ban_bridge
            && a.pending
                .get(id)
                .is_some_and(|p| matches!(p.kind, PendingKind::Local { .. }))
        {
            return Err(BadInput::LocalBridge.into());
        }
        a.pending.remove(id).ok_or_else(|| no_request(id))?
    };
    let ego = pending.ego_id;
    let reason = if not_me {
        BanReason::NotMe
    } else {
        BanReason::User
    };
    let mut targets: Vec<(Option<EgoId>, BanTarget)> = Vec::new();
    let mut detail = None;
    match &pending.kind {
        PendingKind::Login {
            challenge, peer, ..
        } => {
            let c = challenge.params();
            if ban_site || not_me {
                targets.push((
                    Some(ego),
                    BanTarget::Site {
                        issuer: c.issuer.clone(),
                        client_id: c.client_id.clone(),
                    },
                ));
            }
            if ban_bridge {
                targets.push((
                    Some(ego),
                    BanTarget::Bridge {
                        issuer: c.issuer.clone(),
                    },
                ));
            }
            if not_me {
                detail = Some(
                    serde_json::json!({
                        "site": c.client_name,
                        "client_id": c.client_id,
                        "origin": c.redirect_origin,
                        "bridge": c.issuer,
                        "bridge_peer": peer.to_string(),
                        "client_ip": c.client_ip,
                        "received_at": pending.received_at,
                    })
                    .to_string(),
                );
                warn!(
                    id, %ego, issuer = %untrusted(&c.issuer), client = %untrusted(&c.client_id),
                    ip = ?c.client_ip.as_deref().map(untrusted), "login reported as not made by the person"
                );
            }
        }
        PendingKind::Local { program, pid, .. } => {
            if ban_site || not_me {
                targets.push((
                    None,
                    BanTarget::Program {
                        path: program.clone(),
                    },
                ));
            }
            if not_me {
                detail = Some(
                    serde_json::json!({
                        "program": program,
                        "pid": pid,
                        "received_at": pending.received_at,
                    })
                    .to_string(),
                );
                warn!(id, %ego, program = %untrusted(program), "local request reported as not made by the person");
            }
        }
    }
    // The bans are in force before the site hears the answer, so that a
    // retry right after the refusal is already refused.
    let banned = async {
        let mut bans = Vec::new();
        for (ego, target) in targets {
            let row = shared
                .keystore
                .add_ban(ego.as_ref(), &target, reason, detail.as_deref(), now)
                .await?;
            bans.push(row);
        }
        load_policies(shared).await?;
        Ok::<_, Error>(bans)
    }
    .await;
    answer_denied(pending.kind, DenyReason::User);
    shared.emit(WatchEvent::Resolved {
        id,
        outcome: "denied".into(),
    });
    info!(id, %ego, "request denied");
    let bans = banned?;
    let a = lock(&shared.approvals);
    Ok(Reply::Denied {
        id,
        bans: bans.iter().map(|b| a.ban_info(b)).collect(),
    })
}
