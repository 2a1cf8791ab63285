//! Background work: signing-key rotation and reload, purging expired rows,
//! checking live sessions' egos in the DHT (ending sessions whose ego was
//! revoked or whose key was replaced), and checkpointing SQLite's
//! write-ahead log.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt as _;

use tokio::task::JoinHandle;

use crate::limits::LimitStore;
use crate::login::resolve;
use crate::oidc::logout;
use crate::state::AppState;

/// Starts every background task; they stop when the returned handles are
/// aborted.
pub fn spawn(state: &AppState) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(keys(state.clone())),
        tokio::spawn(purge(state.clone())),
        tokio::spawn(sessions(state.clone())),
        tokio::spawn(checkpoints(state.clone())),
    ]
}

/// How often SQLite's write-ahead log is checkpointed and truncated.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

async fn checkpoints(state: AppState) {
    if state.store.kind() != crate::config::DbKind::Sqlite {
        return;
    }
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = checkpoint_once(&state).await {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

/// One checkpoint of SQLite's write-ahead log, truncating it (see
/// `Store::checkpoint`). Returns whether it completed; when readers or
/// another checkpoint kept it from finishing, the next one tries again.
pub async fn checkpoint_once(state: &AppState) -> Result<bool, crate::store::StoreError> {
    match state
        .store
        .checkpoint(crate::store::Checkpoint::Truncate)
        .await?
    {
        Some((0, _, _)) | None => Ok(true),
        Some((_, log, done)) => {
            tracing::debug!(log, done, "checkpoint could not finish; next time");
            Ok(false)
        }
    }
}

/// How long a retired signing key stays published: the longest lifetime
/// of anything it signed, plus a margin.
pub fn publish_for(state: &AppState) -> i64 {
    let o = &state.settings.oidc;
    i64::try_from(o.id_token_ttl_secs.max(120)).unwrap_or(3_600) + 3_600
}

async fn keys(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let now = state.now();
        let max_age = i64::try_from(state.settings.oidc.key_rotation_days.saturating_mul(86_400))
            .unwrap_or(0);
        match state
            .keys
            .rotate_if_due(now, max_age, publish_for(&state))
            .await
        {
            Ok(true) => tracing::info!("signing keys rotated on schedule"),
            Ok(false) => {
                if let Err(e) = state.keys.reload(now).await {
                    tracing::warn!(error = %e, "cannot reload signing keys");
                }
            }
            Err(e) => tracing::error!(error = %e, "scheduled key rotation failed"),
        }
    }
}

/// How often expired rows and limits are purged (interactions go at their
/// expiry, so at most this late).
const PURGE_EVERY: Duration = Duration::from_secs(60);

async fn purge(state: AppState) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        match purge_once(&state).await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired rows"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
    }
}

/// One purge pass: dynamic clients never used past their time, expired
/// rows (consents of removed clients with them), the ego cache beyond its
/// bound, then the limits' old windows and tags.
/// Returns how many rows and entries went.
pub async fn purge_once(state: &AppState) -> Result<u64, crate::store::StoreError> {
    let now = state.now();
    let ttl = i64::try_from(state.settings.oidc.unused_client_ttl_secs).unwrap_or(i64::MAX);
    let clients = state
        .store
        .purge_unused_clients(now.saturating_sub(ttl))
        .await?;
    if clients > 0 {
        tracing::info!(clients, "dynamic clients never used were removed");
    }
    let rows = state.store.purge_expired(now).await?;
    let egos = state
        .store
        .purge_egos(now, i64::from(state.settings.login.max_cached_egos))
        .await?;
    let limits = state.limits.purge_limits(now).await?;
    Ok(clients + rows + egos + limits)
}

async fn sessions(state: AppState) {
    let every = Duration::from_secs(state.settings.oidc.session_check_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = check_sessions(&state).await {
            tracing::warn!(error = %e, "session check failed");
        }
    }
}

/// Looks up the egos of live sessions; ends the sessions of revoked egos,
/// and (if configured) those whose ego key has been replaced. Returns how
/// many sessions were ended.
///
/// Bounds, so that egos whose records time out (a stranger's throwaway
/// egos, unreachable peers) cannot delay the detection of a revoked one:
/// at most `oidc.session_check_max_egos` egos per pass, those checked
/// longest ago first; `oidc.session_check_concurrency` lookups at once;
/// each given up after `oidc.session_check_lookup_timeout_secs` (its
/// sessions are kept). A revoked ego's sessions end as soon as its own
/// lookup returns.
pub async fn check_sessions(state: &AppState) -> Result<usize, crate::store::StoreError> {
    let now = state.now();
    let mut by_ego: HashMap<String, Vec<crate::store::SessionRow>> = HashMap::new();
    for s in state.store.live_sessions(now).await? {
        by_ego.entry(s.ego_id.clone()).or_default().push(s);
    }
    let o = &state.settings.oidc;
    let due = state.session_checks.due(
        by_ego.keys().cloned().collect(),
        usize::try_from(o.session_check_max_egos).unwrap_or(usize::MAX),
    );
    let timeout = Duration::from_secs(o.session_check_lookup_timeout_secs);
    let concurrency = usize::try_from(o.session_check_concurrency)
        .unwrap_or(1)
        .max(1);
    let passes = futures::stream::iter(due.into_iter().filter_map(|ego| {
        let sessions = by_ego.remove(&ego)?;
        Some(check_ego(state, ego, sessions, timeout, now))
    }))
    .buffer_unordered(concurrency);
    futures::pin_mut!(passes);
    let mut ended = 0;
    while let Some(r) = passes.next().await {
        ended += r?;
    }
    Ok(ended)
}

/// Looks one ego up (within `timeout`) and ends the sessions its record
/// no longer allows.
async fn check_ego(
    state: &AppState,
    ego: String,
    sessions: Vec<crate::store::SessionRow>,
    timeout: Duration,
    now: i64,
) -> Result<usize, crate::store::StoreError> {
    // Tried, whatever comes of it: every ego takes its turn, so egos that
    // never answer cannot keep the others out of a bounded pass.
    state.session_checks.checked(&ego, now);
    let Some(id) = crate::login::challenge::parse_ego(&ego) else {
        return Ok(0);
    };
    let record = match tokio::time::timeout(timeout, resolve::resolve(state, id, true)).await {
        Ok(Ok(r)) => r,
        // Not found or no answer in time is not proof of anything: keep
        // the sessions.
        Ok(Err(_)) | Err(_) => return Ok(0),
    };
    let mut ended = 0;
    for s in sessions {
        let key_changed = record.ego_key().as_bytes().as_slice() != s.ego_pk.as_slice();
        let why = if record.is_revoked() {
            "ego revoked"
        } else if key_changed && state.settings.oidc.end_sessions_on_key_change {
            "ego key replaced"
        } else {
            continue;
        };
        logout::end_session(state, &s.sid, why).await?;
        ended += 1;
    }
    Ok(ended)
}

/// When each ego of a live session was last checked (in memory: one entry
/// per ego with a live session, pruned at every pass).
#[derive(Debug, Default)]
pub struct SessionChecks {
    checked: std::sync::Mutex<HashMap<String, i64>>,
}

impl SessionChecks {
    /// Of `egos`, the `max` checked longest ago (never checked first);
    /// forgets egos that have no live session any more.
    pub fn due(&self, egos: Vec<String>, max: usize) -> Vec<String> {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        let live: std::collections::HashSet<&String> = egos.iter().collect();
        checked.retain(|e, _| live.contains(e));
        let mut order: Vec<(i64, String)> = egos
            .into_iter()
            .map(|e| (checked.get(&e).copied().unwrap_or(i64::MIN), e))
            .collect();
        order.sort_unstable();
        order.truncate(max);
        order.into_iter().map(|(_, e)| e).collect()
    }

    /// Notes that `ego` was checked at `now`.
    pub fn checked(&self, ego: &str, now: i64) {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ego.to_string(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_egos_checked_longest_ago_come_first_and_gone_ones_are_forgotten() {
        let c = SessionChecks::default();
        let egos = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        c.checked("a", 10);
        c.checked("b", 5);
        c.checked("gone", 1);
        assert_eq!(c.due(egos(&["a", "b", "new"]), 2), egos(&["new", "b"]));
        assert_eq!(c.checked.lock().unwrap().len(), 2, "gone is forgotten");
        c.checked("new", 20);
        assert_eq!(c.due(egos(&["a", "b", "new"]), 3), egos(&["b", "a", "new"]));
    }
}
