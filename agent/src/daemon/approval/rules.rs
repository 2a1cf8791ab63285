//! The rules the person sets by command, outside any request: `policy
//! allow` (a site the agent approves on its own) and `ban add` (a site, a
//! bridge or a program it refuses).

use cyrcles_core::EgoId;

use super::load_policies;
use crate::control::proto::Reply;
use crate::daemon::error::BadInput;
use crate::daemon::{Result, Shared, lock};
use crate::keystore::{BanReason, BanTarget, PolicyOrigin};

/// `policy allow`.
pub(crate) async fn allow(
    shared: &Shared,
    ego: EgoId,
    bridge: &str,
    client: &str,
    auto: bool,
) -> Result<Reply> {
    let check = |s: &str, what: &'static str| {
        if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
            Err(BadInput::PolicyText(what))
        } else {
            Ok(())
        }
    };
    check(bridge, "the bridge issuer")?;
    check(client, "the client id")?;
    let row = shared
        .keystore
        .upsert_policy(
            &ego,
            bridge,
            client,
            auto,
            PolicyOrigin::Policy,
            shared.now().secs(),
        )
        .await?;
    load_policies(shared).await?;
    Ok(Reply::Policy(lock(&shared.approvals).policy_info(&row)))
}

/// `ban add`.
pub(crate) async fn ban(shared: &Shared, ego: Option<EgoId>, target: BanTarget) -> Result<Reply> {
    let bad = |e: BadInput| Err(e.into());
    let texts: Vec<&str> = match &target {
        BanTarget::Site { issuer, client_id } => vec![issuer, client_id],
        BanTarget::Bridge { issuer } => vec![issuer],
        BanTarget::Program { path } => vec![path],
    };
    if texts
        .iter()
        .any(|s| s.is_empty() || s.len() > 1024 || s.chars().any(char::is_control))
    {
        return bad(BadInput::BanText);
    }
    match (&target, &ego) {
        (BanTarget::Program { .. }, Some(_)) => {
            return bad(BadInput::ProgramBanEgo);
        }
        (BanTarget::Site { .. } | BanTarget::Bridge { .. }, None) => {
            return bad(BadInput::BanNeedsEgo);
        }
        _ => {}
    }
    let row = shared
        .keystore
        .add_ban(
            ego.as_ref(),
            &target,
            BanReason::User,
            None,
            shared.now().secs(),
        )
        .await?;
    load_policies(shared).await?;
    Ok(Reply::Ban(lock(&shared.approvals).ban_info(&row)))
}
