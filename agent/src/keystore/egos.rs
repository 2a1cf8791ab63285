//! Egos and their sealed secrets.

use cyrcles_core::EgoId;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use zeroize::Zeroizing;

use super::seal::SymmetricKey;
use super::{Keystore, KeystoreError, to_i64, to_u64};

/// Which secret of an ego.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// The root key (signs the inception and the first circle link).
    Root,
    /// The whole circle key, while no friend holds a share.
    Circle,
    /// The ego key.
    Ego,
    /// The device key: the libp2p identity of the ego's node.
    Device,
}

impl SecretKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Root => "root",
            SecretKind::Circle => "circle",
            SecretKind::Ego => "ego",
            SecretKind::Device => "device",
        }
    }

    /// Every kind.
    pub const ALL: [SecretKind; 4] = [
        SecretKind::Root,
        SecretKind::Circle,
        SecretKind::Ego,
        SecretKind::Device,
    ];
}

/// What the seal of a secret is bound to: its ego and its kind.
fn aad(ego: &EgoId, kind: SecretKind) -> Vec<u8> {
    format!("cyrcles-agent/v1/secret\0{ego}\0{}", kind.as_str()).into_bytes()
}

/// An ego as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgoRow {
    /// The ego id.
    pub ego_id: EgoId,
    /// The person's name for it (local only, never published).
    pub name: String,
    /// The current record, canonical CBOR.
    pub record: Vec<u8>,
    /// The circle id (random, never published).
    pub circle_id: [u8; 16],
    /// Creation time.
    pub created_at: u64,
    /// Revocation time.
    pub revoked_at: Option<u64>,
    /// Last successful publication.
    pub last_published_at: Option<u64>,
    /// The last publication or rotation error, cleared on success.
    pub last_error: Option<String>,
}

impl EgoRow {
    /// A new ego's row: never revoked, published or failed yet.
    pub fn new(
        ego_id: EgoId,
        name: impl Into<String>,
        record: Vec<u8>,
        circle_id: [u8; 16],
        created_at: u64,
    ) -> Self {
        Self {
            ego_id,
            name: name.into(),
            record,
            circle_id,
            created_at,
            revoked_at: None,
            last_published_at: None,
            last_error: None,
        }
    }
}

impl Keystore {
    fn ego_row(&self, r: &SqliteRow) -> Result<EgoRow, KeystoreError> {
        let text: String = r.try_get("ego_id").map_err(|e| self.db(e))?;
        let ego_id = text
            .parse::<EgoId>()
            .map_err(|e| self.damaged(format!("stored ego id {text:?}: {e}")))?;
        let circle: Vec<u8> = r.try_get("circle_id").map_err(|e| self.db(e))?;
        let circle_id: [u8; 16] = circle
            .as_slice()
            .try_into()
            .map_err(|_| self.damaged(format!("circle id of ego {text}")))?;
        let opt = |name: &str| -> Result<Option<u64>, KeystoreError> {
            Ok(r.try_get::<Option<i64>, _>(name)
                .map_err(|e| self.db(e))?
                .map(to_u64))
        };
        Ok(EgoRow {
            ego_id,
            name: r.try_get("name").map_err(|e| self.db(e))?,
            record: r.try_get("record").map_err(|e| self.db(e))?,
            circle_id,
            created_at: to_u64(r.try_get("created_at").map_err(|e| self.db(e))?),
            revoked_at: opt("revoked_at")?,
            last_published_at: opt("last_published_at")?,
            last_error: r.try_get("last_error").map_err(|e| self.db(e))?,
        })
    }

    /// Stores a new ego with its secrets, in one transaction.
    pub async fn insert_ego(
        &self,
        key: &SymmetricKey,
        row: &EgoRow,
        secrets: &[(SecretKind, &[u8])],
    ) -> Result<(), KeystoreError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.db(e))?;
        self.insert_ego_in(&mut tx, key, row, secrets).await?;
        tx.commit().await.map_err(|e| self.db(e))
    }

    /// [`Keystore::insert_ego`]'s writes, inside the caller's transaction.
    pub(super) async fn insert_ego_in(
        &self,
        conn: &mut SqliteConnection,
        key: &SymmetricKey,
        row: &EgoRow,
        secrets: &[(SecretKind, &[u8])],
    ) -> Result<(), KeystoreError> {
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM egos WHERE name = $1")
            .bind(&row.name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| self.db(e))?;
        if taken.is_some() {
            return Err(KeystoreError::Exists(format!(
                "an ego named {:?}",
                row.name
            )));
        }
        sqlx::query(
            "INSERT INTO egos (ego_id, name, record, circle_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(row.ego_id.to_string())
        .bind(&row.name)
        .bind(&row.record)
        .bind(row.circle_id.to_vec())
        .bind(to_i64(row.created_at))
        .execute(&mut *conn)
        .await
        .map_err(|e| self.db(e))?;
        for (kind, secret) in secrets {
            sqlx::query("INSERT INTO secrets (ego_id, kind, sealed) VALUES ($1, $2, $3)")
                .bind(row.ego_id.to_string())
                .bind(kind.as_str())
                .bind(key.seal(&aad(&row.ego_id, *kind), secret))
                .execute(&mut *conn)
                .await
                .map_err(|e| self.db(e))?;
        }
        Ok(())
    }

    /// Every ego, by name.
    pub async fn egos(&self) -> Result<Vec<EgoRow>, KeystoreError> {
        let rows = sqlx::query("SELECT * FROM egos ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        rows.iter().map(|r| self.ego_row(r)).collect()
    }

    /// Opens one secret of an ego.
    pub async fn secret(
        &self,
        key: &SymmetricKey,
        ego: &EgoId,
        kind: SecretKind,
    ) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed FROM secrets WHERE ego_id = $1 AND kind = $2")
                .bind(ego.to_string())
                .bind(kind.as_str())
                .fetch_optional(self.pool())
                .await
                .map_err(|e| self.db(e))?;
        let sealed = sealed.ok_or_else(|| {
            KeystoreError::NotFound(format!("the {} secret of ego {ego}", kind.as_str()))
        })?;
        key.open_32(&aad(ego, kind), &sealed)
            .map_err(|_| KeystoreError::SecretDamaged {
                ego: ego.to_string(),
                kind: kind.as_str(),
            })
    }

    /// Which secrets an ego has.
    pub async fn secret_kinds(&self, ego: &EgoId) -> Result<Vec<SecretKind>, KeystoreError> {
        let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM secrets WHERE ego_id = $1")
            .bind(ego.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        Ok(SecretKind::ALL
            .into_iter()
            .filter(|k| kinds.iter().any(|s| s == k.as_str()))
            .collect())
    }

    /// Saves a new record; with `new_ego_key`, replaces the ego key in the
    /// same transaction (a rotation).
    pub async fn save_record(
        &self,
        ego: &EgoId,
        record: &[u8],
        new_ego_key: Option<(&SymmetricKey, &[u8])>,
    ) -> Result<(), KeystoreError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.db(e))?;
        let n = sqlx::query("UPDATE egos SET record = $1 WHERE ego_id = $2")
            .bind(record)
            .bind(ego.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?
            .rows_affected();
        if n == 0 {
            return Err(KeystoreError::NotFound(format!("ego {ego}")));
        }
        if let Some((key, secret)) = new_ego_key {
            sqlx::query(
                "INSERT INTO secrets (ego_id, kind, sealed) VALUES ($1, 'ego', $2) \
                 ON CONFLICT (ego_id, kind) DO UPDATE SET sealed = excluded.sealed",
            )
            .bind(ego.to_string())
            .bind(key.seal(&aad(ego, SecretKind::Ego), secret))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))
    }

    /// Saves the revoked record and deletes every secret but the device key
    /// (the ego's node keeps serving the revocation).
    pub async fn save_revocation(
        &self,
        ego: &EgoId,
        record: &[u8],
        at: u64,
    ) -> Result<(), KeystoreError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.db(e))?;
        sqlx::query("UPDATE egos SET record = $1, revoked_at = $2 WHERE ego_id = $3")
            .bind(record)
            .bind(to_i64(at))
            .bind(ego.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        sqlx::query("DELETE FROM secrets WHERE ego_id = $1 AND kind <> 'device'")
            .bind(ego.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        tx.commit().await.map_err(|e| self.db(e))?;
        self.checkpoint().await
    }

    /// Records the outcome of a publication or rotation.
    pub async fn set_status(
        &self,
        ego: &EgoId,
        published_at: Option<u64>,
        error: Option<&str>,
    ) -> Result<(), KeystoreError> {
        sqlx::query(
            "UPDATE egos SET last_published_at = COALESCE($1, last_published_at), \
             last_error = $2 WHERE ego_id = $3",
        )
        .bind(published_at.map(to_i64))
        .bind(error)
        .bind(ego.to_string())
        .execute(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(())
    }
}
