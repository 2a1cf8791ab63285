//! DPoP proofs already accepted (RFC 9449 §11.1), shared by every
//! instance on one database: a proof is accepted once while its `iat` is
//! in the acceptance window, and remembered that long.

use super::{Store, StoreError, col};

/// What [`Store::spend_proof`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofSpend {
    /// First use: recorded.
    Fresh,
    /// Seen before: a replay.
    Replayed,
    /// The store holds its maximum of live proofs: refused (never
    /// evicted, which would let a replay through).
    Full,
}

impl Store {
    /// Records a proof (`proof_hash`: SHA-256 of its key thumbprint and
    /// `jti`) until `expires_at`, unless it was recorded before or `max`
    /// live proofs are stored.
    pub async fn spend_proof(
        &self,
        proof_hash: &[u8],
        expires_at: i64,
        max: i64,
        now: i64,
    ) -> Result<ProofSpend, StoreError> {
        for attempt in 0..2 {
            let n = sqlx::query(
                "INSERT INTO dpop_proofs (proof_hash, expires_at) \
                 SELECT $1, $2 WHERE (SELECT COUNT(*) FROM dpop_proofs) < $3 \
                 ON CONFLICT (proof_hash) DO NOTHING",
            )
            .bind(proof_hash.to_vec())
            .bind(expires_at)
            .bind(max)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n == 1 {
                return Ok(ProofSpend::Fresh);
            }
            let seen = sqlx::query("SELECT COUNT(*) AS n FROM dpop_proofs WHERE proof_hash = $1")
                .bind(proof_hash.to_vec())
                .fetch_one(&self.pool)
                .await?;
            if col::<i64>(&seen, "n")? > 0 {
                return Ok(ProofSpend::Replayed);
            }
            if attempt == 0 {
                // Full by the count: drop the proofs out of their window
                // (the maintenance task does too) and try once more.
                sqlx::query("DELETE FROM dpop_proofs WHERE expires_at < $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(ProofSpend::Full)
    }
}
