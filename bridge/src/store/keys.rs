//! ID-token signing keys, sealed with the master key.

use sqlx::any::AnyRow;

use super::{Store, StoreError, col, opt};

/// A signing key as stored.
#[derive(Clone)]
pub struct KeyRow {
    /// Key id (JWK thumbprint).
    pub kid: String,
    /// JWS algorithm.
    pub alg: String,
    /// PKCS#8 sealed with the master key (aad: the kid).
    pub sealed_key: Vec<u8>,
    /// The public JWK, JSON.
    pub public_jwk: String,
    /// Creation time.
    pub created_at: i64,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// Published in the JWKS until then (every token it signed has expired).
    pub publish_until: Option<i64>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

fn row(r: &AnyRow) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        kid: col(r, "kid")?,
        alg: col(r, "alg")?,
        sealed_key: col(r, "sealed_key")?,
        public_jwk: col(r, "public_jwk")?,
        created_at: col(r, "created_at")?,
        retired_at: opt(r, "retired_at")?,
        publish_until: opt(r, "publish_until")?,
    })
}

impl Store {
    /// Adds a key.
    pub async fn insert_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, sealed_key, public_jwk, created_at, retired_at, publish_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(k.sealed_key.clone())
        .bind(&k.public_jwk)
        .bind(k.created_at)
        .bind(k.retired_at)
        .bind(k.publish_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every key still published (active or retired but not yet past
    /// `publish_until`), newest first.
    pub async fn published_keys(&self, now: i64) -> Result<Vec<KeyRow>, StoreError> {
        sqlx::query(
            "SELECT kid, alg, sealed_key, public_jwk, created_at, retired_at, publish_until FROM signing_keys \
             WHERE publish_until IS NULL OR publish_until > $1 ORDER BY created_at DESC, kid",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(row)
        .collect()
    }

    /// Retires every active key of `alg` except `keep`: they stop signing
    /// now and stay published until `publish_until`.
    pub async fn retire_keys(
        &self,
        alg: &str,
        keep: &str,
        now: i64,
        publish_until: i64,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE signing_keys SET retired_at = $1, publish_until = $2 \
             WHERE alg = $3 AND kid <> $4 AND retired_at IS NULL",
        )
        .bind(now)
        .bind(publish_until)
        .bind(alg)
        .bind(keep)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Deletes keys no longer published.
    pub async fn delete_unpublished_keys(&self, now: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM signing_keys WHERE publish_until IS NOT NULL AND publish_until <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
