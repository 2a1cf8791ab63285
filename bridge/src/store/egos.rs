//! The ego cache: the best record seen per ego (the anti-rollback memory
//! of the bridge, shared by every instance).

use super::{Store, StoreError, col};

/// A cached ego record with the summary the anti-rollback rule compares.
#[derive(Debug, Clone)]
pub struct EgoRow {
    /// The ego id, text form.
    pub ego_id: String,
    /// The record bytes.
    pub record: Vec<u8>,
    /// Chain length.
    pub chain_len: i64,
    /// Certificate authority epoch.
    pub epoch: i64,
    /// Certificate seq.
    pub cert_seq: i64,
    /// Endpoints seq.
    pub endpoints_seq: i64,
    /// Chain digest at `chain_len`.
    pub chain_digest: Vec<u8>,
    /// Certificate digest.
    pub cert_digest: Vec<u8>,
    /// When it was fetched from the DHT.
    pub fetched_at: i64,
}

impl Store {
    /// The cached record of an ego.
    pub async fn get_ego(&self, ego_id: &str) -> Result<Option<EgoRow>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT ego_id, record, chain_len, epoch, cert_seq, endpoints_seq, chain_digest, cert_digest, fetched_at \
             FROM egos WHERE ego_id = $1",
        )
        .bind(ego_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(EgoRow {
            ego_id: col(&r, "ego_id")?,
            record: col(&r, "record")?,
            chain_len: col(&r, "chain_len")?,
            epoch: col(&r, "epoch")?,
            cert_seq: col(&r, "cert_seq")?,
            endpoints_seq: col(&r, "endpoints_seq")?,
            chain_digest: col(&r, "chain_digest")?,
            cert_digest: col(&r, "cert_digest")?,
            fetched_at: col(&r, "fetched_at")?,
        }))
    }

    /// Stores `e` unless a record of higher or equal rank is already
    /// there (equal rank only refreshes `fetched_at`). The comparison is in
    /// the statement, so concurrent instances cannot roll the cache back.
    /// The caller has already checked `e` against the cached summary for
    /// duplicity.
    pub async fn put_ego(&self, e: &EgoRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO egos (ego_id, record, chain_len, epoch, cert_seq, endpoints_seq, chain_digest, cert_digest, fetched_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (ego_id) DO UPDATE SET record = excluded.record, chain_len = excluded.chain_len, \
             epoch = excluded.epoch, cert_seq = excluded.cert_seq, endpoints_seq = excluded.endpoints_seq, \
             chain_digest = excluded.chain_digest, cert_digest = excluded.cert_digest, fetched_at = excluded.fetched_at \
             WHERE egos.chain_len < excluded.chain_len \
             OR (egos.chain_len = excluded.chain_len AND egos.epoch < excluded.epoch) \
             OR (egos.chain_len = excluded.chain_len AND egos.epoch = excluded.epoch AND egos.cert_seq < excluded.cert_seq) \
             OR (egos.chain_len = excluded.chain_len AND egos.epoch = excluded.epoch AND egos.cert_seq = excluded.cert_seq \
             AND egos.endpoints_seq < excluded.endpoints_seq)",
        )
        .bind(&e.ego_id)
        .bind(e.record.clone())
        .bind(e.chain_len)
        .bind(e.epoch)
        .bind(e.cert_seq)
        .bind(e.endpoints_seq)
        .bind(e.chain_digest.clone())
        .bind(e.cert_digest.clone())
        .bind(e.fetched_at)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "UPDATE egos SET fetched_at = $1 WHERE ego_id = $2 AND chain_len = $3 AND epoch = $4 AND cert_seq = $5 \
             AND endpoints_seq = $6",
        )
        .bind(e.fetched_at)
        .bind(&e.ego_id)
        .bind(e.chain_len)
        .bind(e.epoch)
        .bind(e.cert_seq)
        .bind(e.endpoints_seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Bounds the ego cache: forgets egos not fetched since `now` minus
    /// the record horizon and the skew (every certificate a record fetched
    /// before then could have named has ended, so none can be rolled back
    /// to), then, past `cap` rows, those fetched longest ago that no live
    /// grant names. Returns how many rows went.
    pub async fn purge_egos(&self, now: i64, cap: i64) -> Result<u64, StoreError> {
        let horizon = cyrcles_core::time::RECORD_HORIZON_SECS
            .saturating_add(cyrcles_core::time::CLOCK_SKEW_SECS);
        let stale = now.saturating_sub(i64::try_from(horizon).unwrap_or(i64::MAX));
        let mut removed = sqlx::query("DELETE FROM egos WHERE fetched_at < $1")
            .bind(stale)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let r = sqlx::query("SELECT COUNT(*) AS n FROM egos")
            .fetch_one(&self.pool)
            .await?;
        let count: i64 = col(&r, "n")?;
        let excess = count.saturating_sub(cap.max(0));
        if excess > 0 {
            removed += sqlx::query(
                "DELETE FROM egos WHERE ego_id IN (\
                 SELECT e.ego_id FROM egos e WHERE NOT EXISTS (\
                 SELECT 1 FROM grants g WHERE g.ego_id = e.ego_id AND g.revoked_at IS NULL) \
                 ORDER BY e.fetched_at LIMIT $1)",
            )
            .bind(excess)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(removed)
    }
}
