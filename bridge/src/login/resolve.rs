//! Resolving an ego: the database cache (shared by every instance, and the
//! bridge's anti-rollback memory), then the DHT.

use cyrcles_core::record::{
    BestSeen, Choice, Conflict, Rank, RollbackError, VerifiedEgo, select, verify_cached,
};
use cyrcles_core::{EgoId, UnixTime};
use cyrcles_p2p::GetError;

use crate::state::AppState;
use crate::store::{EgoRow, StoreError};

/// A cached record younger than this is used without asking the DHT.
const FRESH_SECS: i64 = 60;

/// Why an ego cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No valid record in the DHT or the cache.
    #[error(
        "no valid record of this ego was found: check the ego id (cyrcles ego list prints \
         yours), and that your agent is running and connected (cyrcles status)"
    )]
    NotFound,
    /// Two incompatible histories: the ego's circle is compromised.
    #[error("this ego's records conflict (its circle may be compromised)")]
    Duplicity,
    /// Only records older than one this bridge has seen were found (the
    /// newest one may have expired): taking them would roll the ego back,
    /// perhaps to a key its owner replaced.
    #[error(
        "only records older than the newest this bridge has seen were found; its owner's agent must publish a current one"
    )]
    Stale,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn unix(now: i64) -> UnixTime {
    UnixTime::from_secs(u64::try_from(now).unwrap_or(0))
}

fn verify(state: &AppState, bytes: &[u8], ego: &EgoId, now: i64) -> Option<VerifiedEgo> {
    let mut sigs = state.sigs.lock().unwrap_or_else(|e| e.into_inner());
    verify_cached(bytes, &ego.dht_key(), unix(now), &mut sigs).ok()
}

fn row(v: &VerifiedEgo, now: i64) -> EgoRow {
    let best = BestSeen::of(v);
    let i = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
    EgoRow {
        ego_id: v.ego_id().to_string(),
        record: v.bytes().to_vec(),
        chain_len: i(best.rank.chain_len),
        epoch: i(best.rank.epoch),
        cert_seq: i(best.rank.cert_seq),
        endpoints_seq: i(best.rank.endpoints_seq),
        chain_digest: best.chain_digest.to_vec(),
        cert_digest: best.cert_digest.to_vec(),
        fetched_at: now,
    }
}

/// The best record seen, as the cache row stores it.
fn best_seen(r: &EgoRow) -> Result<BestSeen, StoreError> {
    let u = |x: i64| u64::try_from(x).map_err(|_| StoreError::Corrupt("ego rank"));
    let digest = |d: &[u8]| <[u8; 32]>::try_from(d).map_err(|_| StoreError::Corrupt("ego digest"));
    Ok(BestSeen {
        rank: Rank {
            chain_len: u(r.chain_len)?,
            epoch: u(r.epoch)?,
            cert_seq: u(r.cert_seq)?,
            endpoints_seq: u(r.endpoints_seq)?,
        },
        chain_digest: digest(&r.chain_digest)?,
        cert_digest: digest(&r.cert_digest)?,
    })
}

/// The current record of `ego`. With `fresh`, the DHT is always asked
/// (after an agent reported a newer key than the cache holds).
///
/// The cache row's summary is the bridge's anti-rollback memory, and it
/// holds even when its record no longer verifies (its certificate
/// expired): a record from the DHT must be at least as good, or it is
/// refused ([`ResolveError::Stale`]).
pub async fn resolve(
    state: &AppState,
    ego: EgoId,
    fresh: bool,
) -> Result<VerifiedEgo, ResolveError> {
    let now = state.now();
    let cached_row = state.store.get_ego(&ego.to_string()).await?;
    let cached = cached_row
        .as_ref()
        .and_then(|r| verify(state, &r.record, &ego, now).map(|v| (v, r.fetched_at)));
    if !fresh
        && let Some((v, fetched_at)) = &cached
        && now - fetched_at < FRESH_SECS
    {
        return Ok(v.clone());
    }
    let found = match state.node.get(ego).await {
        Ok(f) => Some(f.ego),
        Err(GetError::NotFound { .. } | GetError::Timeout) => None,
        Err(GetError::Stopped(_)) => None,
    };
    let best = match (cached, found) {
        (None, None) => return Err(ResolveError::NotFound),
        (Some((c, _)), None) => c,
        (None, Some(f)) => {
            if let Some(seen) = cached_row.as_ref().map(best_seen).transpose()? {
                match seen.check(&f) {
                    Ok(_) => {}
                    Err(RollbackError::Stale { seen, offered }) => {
                        tracing::warn!(ego = %ego, ?seen, ?offered, "refused a record older than the best seen");
                        return Err(ResolveError::Stale);
                    }
                    Err(RollbackError::Duplicity(kind)) => {
                        tracing::warn!(ego = %ego, ?kind, "duplicity between the best seen and the DHT record");
                        return Err(ResolveError::Duplicity);
                    }
                }
            }
            f
        }
        (Some((c, _)), Some(f)) => match select(&c, &f) {
            Ok(Choice::TakeCandidate) => f,
            // The DHT offered less than the cache holds: keep the cache (the
            // anti-rollback rule), refreshed below.
            Ok(Choice::KeepCurrent) => c,
            Err(Conflict::Duplicity(ev)) => {
                tracing::warn!(ego = %ev.ego_id, kind = ?ev.kind, "duplicity between the cached and the DHT record");
                return Err(ResolveError::Duplicity);
            }
            Err(Conflict::DifferentEgos) => return Err(ResolveError::NotFound),
        },
    };
    state.store.put_ego(&row(&best, now)).await?;
    Ok(best)
}

/// A record of a higher authority epoch (a recovery) reached this
/// bridge's DHT node: if the cache holds an older epoch of the ego, the
/// record replaces it now, so that no login is sent to the recovered-from
/// device, and no answer of its key accepted, for the rest of the cache's
/// [`FRESH_SECS`] (docs/circle-authority.md, P5). An ego the cache does
/// not hold is left alone (it is looked up when used). Returns whether the
/// cache changed.
pub async fn learn(state: &AppState, ego: EgoId, bytes: &[u8]) -> Result<bool, ResolveError> {
    let now = state.now();
    let Some(offered) = verify(state, bytes, &ego, now) else {
        return Ok(false);
    };
    let Some(cached_row) = state.store.get_ego(&ego.to_string()).await? else {
        return Ok(false);
    };
    let cached_epoch = u64::try_from(cached_row.epoch).unwrap_or(u64::MAX);
    if offered.rank().epoch <= cached_epoch {
        return Ok(false);
    }
    if let Err(e) = best_seen(&cached_row)?.check(&offered) {
        tracing::warn!(%ego, ?e, "a recovered record the cache's memory refuses");
        return Ok(false);
    }
    state.store.put_ego(&row(&offered, now)).await?;
    tracing::info!(%ego, epoch = offered.rank().epoch, "a recovered record replaced the cached one");
    Ok(true)
}
