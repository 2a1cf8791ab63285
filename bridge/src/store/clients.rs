//! OAuth clients.

use sqlx::any::AnyRow;

use super::{Store, StoreError, col, opt};

/// A client as stored. `metadata` is the JSON of its registered metadata
/// (parsed by `oidc::client`).
#[derive(Clone)]
pub struct ClientRow {
    /// The client id.
    pub client_id: String,
    /// SHA-256 of the secret; `None` for public clients.
    pub secret_hash: Option<Vec<u8>>,
    /// Display name.
    pub name: String,
    /// Registered metadata, JSON.
    pub metadata: String,
    /// SHA-256 of the registration access token (RFC 7592), if any.
    pub registration_token_hash: Option<Vec<u8>>,
    /// Creation time.
    pub created_at: i64,
    /// Last update.
    pub updated_at: i64,
    /// Registered through `/register` (dynamic registration), not by the
    /// operator.
    pub dynamic: bool,
    /// When it first completed an authorization.
    pub first_used_at: Option<i64>,
}

impl std::fmt::Debug for ClientRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRow")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("confidential", &self.secret_hash.is_some())
            .finish_non_exhaustive()
    }
}

fn row(r: &AnyRow) -> Result<ClientRow, StoreError> {
    Ok(ClientRow {
        client_id: col(r, "client_id")?,
        secret_hash: opt(r, "secret_hash")?,
        name: col(r, "name")?,
        metadata: col(r, "metadata")?,
        registration_token_hash: opt(r, "registration_token_hash")?,
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
        dynamic: col::<i64>(r, "dynamic")? != 0,
        first_used_at: opt(r, "first_used_at")?,
    })
}

const COLUMNS: &str = "client_id, secret_hash, name, metadata, registration_token_hash, created_at, updated_at, dynamic, first_used_at";

impl Store {
    /// Adds a client.
    pub async fn insert_client(&self, c: &ClientRow) -> Result<(), StoreError> {
        insert_client_query(c).execute(&self.pool).await?;
        Ok(())
    }

    /// Adds a dynamically registered client while fewer than `max` are
    /// stored. At the bound the oldest one that never completed an
    /// authorization is removed to make room; when every one has been used,
    /// nothing is stored and this returns false.
    pub async fn insert_dynamic_client_bounded(
        &self,
        c: &ClientRow,
        max: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        for _ in 0..3 {
            let n = sqlx::query(
                "INSERT INTO clients (client_id, secret_hash, name, metadata, registration_token_hash, created_at, updated_at, dynamic, first_used_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, 1, NULL \
                 WHERE (SELECT COUNT(*) FROM clients WHERE dynamic = 1) < $8",
            )
            .bind(&c.client_id)
            .bind(c.secret_hash.clone())
            .bind(&c.name)
            .bind(&c.metadata)
            .bind(c.registration_token_hash.clone())
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(max)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n == 1 {
                return Ok(true);
            }
            let Some(r) = sqlx::query(
                "SELECT client_id FROM clients WHERE dynamic = 1 AND first_used_at IS NULL \
                 ORDER BY created_at, client_id LIMIT 1",
            )
            .fetch_optional(&self.pool)
            .await?
            else {
                return Ok(false);
            };
            let victim: String = col(&r, "client_id")?;
            // The place freed is this one's: removal and insert are one
            // transaction, so a concurrent registration cannot take it.
            let mut tx = self.pool.begin().await?;
            if delete_client_in(&mut tx, &victim, now).await? {
                insert_client_query(c).execute(&mut *tx).await?;
                tx.commit().await?;
                tracing::info!(client_id = %victim, "unused dynamic client removed to make room");
                return Ok(true);
            }
            tx.rollback().await?;
        }
        Ok(false)
    }

    /// Notes that a client completed an authorization (the first time
    /// only: later calls change nothing).
    pub async fn mark_client_used(&self, client_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE clients SET first_used_at = $1 WHERE client_id = $2 AND first_used_at IS NULL",
        )
        .bind(now)
        .bind(client_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Dynamically registered clients.
    pub async fn dynamic_clients(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM clients WHERE dynamic = 1")
            .fetch_one(&self.pool)
            .await?;
        col(&r, "n")
    }

    /// Removes the dynamically registered clients that registered before
    /// `registered_before` and never completed an authorization. Returns
    /// how many.
    pub async fn purge_unused_clients(&self, registered_before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM clients WHERE dynamic = 1 AND first_used_at IS NULL AND created_at < $1",
        )
        .bind(registered_before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Replaces a client's name, metadata and secret (RFC 7592 update).
    pub async fn update_client(&self, c: &ClientRow) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE clients SET secret_hash = $1, name = $2, metadata = $3, updated_at = $4 WHERE client_id = $5",
        )
        .bind(c.secret_hash.clone())
        .bind(&c.name)
        .bind(&c.metadata)
        .bind(c.updated_at)
        .bind(&c.client_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// A client by id.
    pub async fn get_client(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
        let q = format!("SELECT {COLUMNS} FROM clients WHERE client_id = $1");
        sqlx::query(&q)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(row)
            .transpose()
    }

    /// Every client, oldest first.
    pub async fn list_clients(&self) -> Result<Vec<ClientRow>, StoreError> {
        let q = format!("SELECT {COLUMNS} FROM clients ORDER BY created_at, client_id");
        sqlx::query(&q)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(row)
            .collect()
    }

    /// Removes a client and revokes everything issued to it.
    pub async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let removed = delete_client_in(&mut tx, client_id, now).await?;
        tx.commit().await?;
        Ok(removed)
    }
}

fn insert_client_query(
    c: &ClientRow,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(
        "INSERT INTO clients (client_id, secret_hash, name, metadata, registration_token_hash, created_at, updated_at, dynamic, first_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&c.client_id)
    .bind(c.secret_hash.clone())
    .bind(&c.name)
    .bind(&c.metadata)
    .bind(c.registration_token_hash.clone())
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(i64::from(c.dynamic))
    .bind(c.first_used_at)
}

/// Removes a client, revokes what was issued to it and drops its
/// consents, in the caller's transaction.
async fn delete_client_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query("DELETE FROM clients WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    sqlx::query("UPDATE grants SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM consents WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    Ok(n == 1)
}
