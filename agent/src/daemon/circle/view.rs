//! What the person sees of a circle: `circle show` and the friends a
//! recovery kit names.

use cyrcles_core::EgoId;

use super::default_threshold;
use crate::control::proto::{CircleInfo, CircleMember, KitFriend};
use crate::daemon::egos::ego_by_name;
use crate::daemon::info::peer_text;
use crate::daemon::peers::friends_of;
use crate::daemon::{Result, Shared};

/// `circle show`.
pub(crate) async fn show(shared: &Shared, name: &str) -> Result<CircleInfo> {
    let ego = ego_by_name(shared, name)?;
    describe(shared, ego, name, None).await
}

pub(crate) async fn describe(
    shared: &Shared,
    ego: EgoId,
    name: &str,
    note: Option<String>,
) -> Result<CircleInfo> {
    let friends = friends_of(shared, &ego).await?;
    let (plan, asked) = shared.keystore.plan(&ego).await?;
    let circle = shared.keystore.circle(&ego).await?;
    let member = |id: &i64, m: Option<u16>| CircleMember {
        name: friends
            .get(id)
            .map_or_else(|| format!("friend #{id}"), |f| f.petname.clone()),
        ego_id: friends
            .get(id)
            .map(|f| f.friend_ego_id.to_string())
            .unwrap_or_default(),
        member: m,
    };
    let members = circle
        .as_ref()
        .map(|c| {
            c.members
                .iter()
                .map(|(m, id)| member(id, Some(*m)))
                .collect()
        })
        .unwrap_or_default();
    let planned: Vec<CircleMember> = plan.iter().map(|id| member(id, None)).collect();
    let threshold = asked.unwrap_or_else(|| default_threshold(plan.len()));
    let mut warnings = Vec::new();
    if let Some(fingerprint) = super::changes::pending_fingerprint(shared, &ego) {
        warnings.push(format!(
            "a change of this circle waits for your friends' approval (fingerprint \
             {fingerprint}); run the same command again once they approved"
        ));
    }
    if !plan.is_empty() && plan.len() < 3 {
        warnings.push(format!(
            "with {}, losing one may leave too few to sign; 3 or more are safer",
            crate::text::count(plan.len() as u64, "friend", "friends")
        ));
    }
    if usize::from(threshold) == plan.len() && plan.len() >= 2 {
        warnings.push(
            "a strict circle: every friend must answer for each rotation and for recovery".into(),
        );
    }
    let state = match &circle {
        Some(c) => format!(
            "shared {} of {} with friends (generation {})",
            c.threshold,
            c.members.len(),
            c.generation
        ),
        None if plan.len() < 2 => {
            "held whole by this agent: a circle is shared once it has at least 2 friends".into()
        }
        None => "held whole by this agent; sharing did not complete".into(),
    };
    Ok(CircleInfo {
        ego: name.to_string(),
        state,
        threshold: circle.as_ref().map_or(threshold, |c| c.threshold),
        members,
        planned,
        planned_threshold: threshold,
        generation: circle.as_ref().map(|c| c.generation),
        shared_at: circle.as_ref().map(|c| c.created_at),
        warnings,
        note,
    })
}

/// The members of an ego's shared circle, for its recovery kit.
pub(crate) async fn kit_friends(shared: &Shared, ego: &EgoId) -> Result<Vec<KitFriend>> {
    let Some(circle) = shared.keystore.circle(ego).await? else {
        return Ok(Vec::new());
    };
    let friends = friends_of(shared, ego).await?;
    Ok(circle
        .members
        .iter()
        .filter_map(|(_, id)| friends.get(id))
        .map(|f| KitFriend {
            name: f.petname.clone(),
            ego_id: f.friend_ego_id.to_string(),
            peer_id: peer_text(&f.friend_peer_id),
        })
        .collect())
}
