//! Pushed authorization requests (RFC 9126): stored until used once or
//! expired, bounded per client and in all. The `request_uri`'s random part
//! is stored only as its SHA-256.

use super::{Store, StoreError, col};

/// A pushed request, as stored.
#[derive(Clone)]
pub struct PushedRow {
    /// SHA-256 of the random part of the `request_uri`.
    pub handle_hash: Vec<u8>,
    /// The client that pushed it.
    pub client_id: String,
    /// The request's parameters, a JSON object of strings.
    pub request: String,
    /// Pushed.
    pub created_at: i64,
    /// Unusable from then on.
    pub expires_at: i64,
}

impl std::fmt::Debug for PushedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushedRow")
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What [`Store::insert_pushed_bounded`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushAdmission {
    /// Stored.
    Stored,
    /// The client holds its maximum of live pushed requests.
    ClientFull,
    /// The bridge holds its maximum in all.
    Full,
}

/// The bounds of [`Store::insert_pushed_bounded`].
#[derive(Debug, Clone, Copy)]
pub struct PushCaps {
    /// Live pushed requests per client.
    pub per_client: i64,
    /// Live pushed requests in all.
    pub total: i64,
}

impl Store {
    /// Stores a pushed request while its client holds fewer than
    /// `caps.per_client` and the bridge fewer than `caps.total`. Expired
    /// rows are dropped first, so that only live requests count. Nothing
    /// stored is ever evicted: at a bound the new request is refused.
    pub async fn insert_pushed_bounded(
        &self,
        row: &PushedRow,
        caps: PushCaps,
        now: i64,
    ) -> Result<PushAdmission, StoreError> {
        sqlx::query("DELETE FROM pushed_requests WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let n = sqlx::query(
            "INSERT INTO pushed_requests (handle_hash, client_id, request, created_at, expires_at) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT COUNT(*) FROM pushed_requests WHERE client_id = $6) < $7 \
             AND (SELECT COUNT(*) FROM pushed_requests) < $8",
        )
        .bind(row.handle_hash.clone())
        .bind(&row.client_id)
        .bind(&row.request)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(&row.client_id)
        .bind(caps.per_client)
        .bind(caps.total)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 1 {
            return Ok(PushAdmission::Stored);
        }
        let r = sqlx::query("SELECT COUNT(*) AS n FROM pushed_requests WHERE client_id = $1")
            .bind(&row.client_id)
            .fetch_one(&self.pool)
            .await?;
        if col::<i64>(&r, "n")? >= caps.per_client {
            Ok(PushAdmission::ClientFull)
        } else {
            Ok(PushAdmission::Full)
        }
    }

    /// Takes a pushed request of `client_id` (single use: it is deleted in
    /// the same statement), if it exists and has not expired. Another
    /// client's try leaves it as it was.
    pub async fn take_pushed(
        &self,
        handle_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let r = sqlx::query(
            "DELETE FROM pushed_requests WHERE handle_hash = $1 AND client_id = $2 AND expires_at > $3 \
             RETURNING request",
        )
        .bind(handle_hash.to_vec())
        .bind(client_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| col(&r, "request")).transpose()
    }
}
