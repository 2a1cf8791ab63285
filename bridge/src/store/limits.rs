//! The limits shared by every instance on one database: rate windows and
//! the spent proof-of-work tokens (see `crate::limits` for the contract).
//!
//! Each statement is atomic on its own; where a decision takes two (a
//! count, then an update guarded by what was counted), the guard makes
//! concurrent instances agree: only one of them ends an epoch.

use sqlx::Row;

use super::{Store, StoreError, col};
use crate::limits::{LimitStore, Rate, Spend};

/// An epoch as tokens carry it (the column holds it as a 64-bit integer).
fn epoch_u32(e: i64) -> u32 {
    u32::try_from(e.rem_euclid(1 << 32)).unwrap_or(0)
}

impl LimitStore for Store {
    async fn hit(&self, key: &str, rate: Rate, now: i64) -> Result<Result<(), u64>, StoreError> {
        let start = rate.window_start(now);
        let len = i64::from(rate.window_secs.max(1));
        let cur: i64 = sqlx::query(
            "INSERT INTO rate_hits (key, window_start, hits, expires_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_hits.hits + 1 \
             RETURNING hits",
        )
        .bind(key)
        .bind(start)
        .bind(start + 2 * len)
        .fetch_one(&self.pool)
        .await?
        .try_get("hits")?;
        let prev: i64 =
            sqlx::query("SELECT hits FROM rate_hits WHERE key = $1 AND window_start = $2")
                .bind(key)
                .bind(start - len)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| col::<i64>(&r, "hits"))
                .transpose()?
                .unwrap_or(0);
        Ok(rate.decide(prev, cur, now))
    }

    async fn pow_epoch(&self) -> Result<u32, StoreError> {
        let r = sqlx::query("SELECT epoch FROM pow_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(epoch_u32(col(&r, "epoch")?))
    }

    async fn spend(
        &self,
        epoch: u32,
        tag: &[u8; 16],
        expires_at: i64,
        max_spent: u64,
        now: i64,
    ) -> Result<Spend, StoreError> {
        let r = sqlx::query("SELECT epoch FROM pow_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let current: i64 = col(&r, "epoch")?;
        if epoch_u32(current) != epoch {
            return Ok(Spend::Retired {
                current: epoch_u32(current),
            });
        }
        let inserted = sqlx::query(
            "INSERT INTO pow_spent (epoch, tag, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(current)
        .bind(tag.to_vec())
        .bind(expires_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(Spend::Replayed);
        }
        let counted = sqlx::query(
            "UPDATE pow_state SET spent = spent + 1 WHERE id = 1 AND epoch = $1 RETURNING spent",
        )
        .bind(current)
        .fetch_optional(&self.pool)
        .await?;
        let Some(counted) = counted else {
            // Another instance ended the epoch meanwhile.
            return Ok(Spend::Retired {
                current: self.pow_epoch().await?,
            });
        };
        let spent: i64 = col(&counted, "spent")?;
        let max = i64::try_from(max_spent).unwrap_or(i64::MAX);
        if spent <= max {
            return Ok(Spend::Fresh);
        }
        // Full by the counter: drop the expired tags and count again.
        sqlx::query("DELETE FROM pow_spent WHERE epoch = $1 AND expires_at < $2")
            .bind(current)
            .bind(now)
            .execute(&self.pool)
            .await?;
        let live: i64 = col(
            &sqlx::query("SELECT COUNT(*) AS n FROM pow_spent WHERE epoch = $1")
                .bind(current)
                .fetch_one(&self.pool)
                .await?,
            "n",
        )?;
        if live <= max {
            sqlx::query("UPDATE pow_state SET spent = $1 WHERE id = 1 AND epoch = $2")
                .bind(live)
                .bind(current)
                .execute(&self.pool)
                .await?;
            return Ok(Spend::Fresh);
        }
        // Still full of live tokens: end the epoch (once, whoever gets
        // here first) and forget its tags.
        let next = (current + 1).rem_euclid(1 << 32);
        sqlx::query("UPDATE pow_state SET epoch = $1, spent = 0 WHERE id = 1 AND epoch = $2")
            .bind(next)
            .bind(current)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM pow_spent WHERE epoch <> $1")
            .bind(next)
            .execute(&self.pool)
            .await?;
        Ok(Spend::EpochEnded {
            current: self.pow_epoch().await?,
        })
    }

    async fn purge_limits(&self, now: i64) -> Result<u64, StoreError> {
        let mut removed = sqlx::query("DELETE FROM rate_hits WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let r = sqlx::query("SELECT epoch FROM pow_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let current: i64 = col(&r, "epoch")?;
        removed += sqlx::query("DELETE FROM pow_spent WHERE expires_at < $1 OR epoch <> $2")
            .bind(now)
            .bind(current)
            .execute(&self.pool)
            .await?
            .rows_affected();
        // Keep the counter near the truth (it only ever over-counts).
        sqlx::query(
            "UPDATE pow_state SET spent = (SELECT COUNT(*) FROM pow_spent WHERE epoch = $1) \
             WHERE id = 1 AND epoch = $2",
        )
        .bind(current)
        .bind(current)
        .execute(&self.pool)
        .await?;
        Ok(removed)
    }
}
