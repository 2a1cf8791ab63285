//! Circles: the owner's plan and shared circle, and the shares this agent
//! holds for friends.

use cyrcles_core::EgoId;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;
use zeroize::Zeroizing;

use super::seal::SymmetricKey;
use super::{Keystore, KeystoreError, to_i64, to_u64};

/// What a held share's seal is bound to.
fn share_aad(owner: &EgoId, generation: u64) -> Vec<u8> {
    format!("cyrcles-agent/v1/share\0{owner}\0{generation}").into_bytes()
}

/// An ego's shared circle (owner side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleRow {
    /// The circle id (never published).
    pub circle_id: [u8; 16],
    /// The chain index of the link that introduced the circle key.
    pub generation: u64,
    /// Signers needed.
    pub threshold: u16,
    /// The encoded public side (`CirclePublic::to_cbor`).
    pub public: Vec<u8>,
    /// FROST member id → friend row id.
    pub members: Vec<(u16, i64)>,
    /// When it was shared.
    pub created_at: u64,
}

/// A share this agent holds for a friend's ego (member side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldShare {
    /// The friend's ego.
    pub owner_ego_id: EgoId,
    /// Its circle's generation.
    pub generation: u64,
    /// This agent's ego that is the friend.
    pub my_ego_id: EgoId,
    /// The friend row.
    pub friend_id: i64,
    /// When this agent last signed with it.
    pub last_signed_at: Option<u64>,
    /// When it arrived.
    pub created_at: u64,
}

impl Keystore {
    /// The friends planned for an ego's circle, and the threshold asked.
    pub async fn plan(&self, ego: &EgoId) -> Result<(Vec<i64>, Option<u16>), KeystoreError> {
        let friends: Vec<i64> = sqlx::query_scalar(
            "SELECT friend_id FROM circle_plan WHERE ego_id = $1 ORDER BY friend_id",
        )
        .bind(ego.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        let t: Option<i64> = sqlx::query_scalar("SELECT threshold FROM egos WHERE ego_id = $1")
            .bind(ego.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db(e))?
            .flatten();
        Ok((friends, t.and_then(|t| u16::try_from(t).ok())))
    }

    /// Adds (`true`) or removes a friend from an ego's planned circle.
    pub async fn set_planned(
        &self,
        ego: &EgoId,
        friend_id: i64,
        member: bool,
    ) -> Result<(), KeystoreError> {
        let q = if member {
            "INSERT OR IGNORE INTO circle_plan (ego_id, friend_id) VALUES ($1, $2)"
        } else {
            "DELETE FROM circle_plan WHERE ego_id = $1 AND friend_id = $2"
        };
        sqlx::query(q)
            .bind(ego.to_string())
            .bind(friend_id)
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Sets the threshold asked for an ego's circle (`None`: the default).
    pub async fn set_threshold(&self, ego: &EgoId, t: Option<u16>) -> Result<(), KeystoreError> {
        sqlx::query("UPDATE egos SET threshold = $1 WHERE ego_id = $2")
            .bind(t.map(i64::from))
            .bind(ego.to_string())
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// An ego's shared circle, if any.
    pub async fn circle(&self, ego: &EgoId) -> Result<Option<CircleRow>, KeystoreError> {
        let Some(r) = sqlx::query("SELECT * FROM circles WHERE ego_id = $1")
            .bind(ego.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db(e))?
        else {
            return Ok(None);
        };
        let id: Vec<u8> = r.try_get("circle_id").map_err(|e| self.db(e))?;
        let members: String = r.try_get("members").map_err(|e| self.db(e))?;
        Ok(Some(CircleRow {
            circle_id: <[u8; 16]>::try_from(id.as_slice())
                .map_err(|_| self.damaged("circles.circle_id is not 16 bytes"))?,
            generation: to_u64(r.try_get("generation").map_err(|e| self.db(e))?),
            threshold: u16::try_from(r.try_get::<i64, _>("threshold").map_err(|e| self.db(e))?)
                .map_err(|_| self.damaged("circles.threshold out of range"))?,
            public: r.try_get("public").map_err(|e| self.db(e))?,
            members: serde_json::from_str(&members)
                .map_err(|_| self.damaged("circles.members is not a member list"))?,
            created_at: to_u64(r.try_get("created_at").map_err(|e| self.db(e))?),
        }))
    }

    /// Commits a new circle: the new record, the circle row, and (first
    /// sharing) the deletion of the root and whole circle keys, in one
    /// transaction; then the write-ahead log is checkpointed so the
    /// deleted secrets leave no copy.
    pub async fn commit_circle(
        &self,
        ego: &EgoId,
        record: &[u8],
        row: &CircleRow,
    ) -> Result<(), KeystoreError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.db(e))?;
        self.write_circle_in(&mut tx, ego, record, row).await?;
        sqlx::query("DELETE FROM secrets WHERE ego_id = $1 AND kind IN ('root', 'circle')")
            .bind(ego.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        tx.commit().await.map_err(|e| self.db(e))?;
        self.checkpoint().await
    }

    /// The record and circle row of [`Keystore::commit_circle`], inside the
    /// caller's transaction.
    pub(super) async fn write_circle_in(
        &self,
        conn: &mut SqliteConnection,
        ego: &EgoId,
        record: &[u8],
        row: &CircleRow,
    ) -> Result<(), KeystoreError> {
        let members = serde_json::to_string(&row.members)
            .map_err(|e| self.damaged(format!("cannot encode members: {e}")))?;
        sqlx::query("UPDATE egos SET record = $1 WHERE ego_id = $2")
            .bind(record)
            .bind(ego.to_string())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.db(e))?;
        sqlx::query(
            "INSERT INTO circles (ego_id, circle_id, generation, threshold, public, members, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ego_id) DO UPDATE SET \
             circle_id = excluded.circle_id, generation = excluded.generation, \
             threshold = excluded.threshold, public = excluded.public, \
             members = excluded.members, created_at = excluded.created_at",
        )
        .bind(ego.to_string())
        .bind(row.circle_id.to_vec())
        .bind(to_i64(row.generation))
        .bind(i64::from(row.threshold))
        .bind(&row.public)
        .bind(members)
        .bind(to_i64(row.created_at))
        .execute(&mut *conn)
        .await
        .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Stores a share of a friend's circle, sealed.
    pub async fn store_share(
        &self,
        key: &SymmetricKey,
        held: &HeldShare,
        secret: &[u8],
    ) -> Result<(), KeystoreError> {
        sqlx::query(
            "INSERT INTO held_shares (owner_ego_id, generation, my_ego_id, friend_id, sealed, \
             last_signed_at, created_at) VALUES ($1, $2, $3, $4, $5, NULL, $6) \
             ON CONFLICT (owner_ego_id, generation) DO UPDATE SET sealed = excluded.sealed, \
             my_ego_id = excluded.my_ego_id, friend_id = excluded.friend_id, \
             created_at = excluded.created_at",
        )
        .bind(held.owner_ego_id.to_string())
        .bind(to_i64(held.generation))
        .bind(held.my_ego_id.to_string())
        .bind(held.friend_id)
        .bind(key.seal(&share_aad(&held.owner_ego_id, held.generation), secret))
        .bind(to_i64(held.created_at))
        .execute(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(())
    }

    fn held_row(&self, r: &sqlx::sqlite::SqliteRow) -> Result<HeldShare, KeystoreError> {
        let ego = |name: &str| -> Result<EgoId, KeystoreError> {
            r.try_get::<String, _>(name)
                .map_err(|e| self.db(e))?
                .parse()
                .map_err(|_| self.damaged(format!("held_shares.{name} is not an ego id")))
        };
        Ok(HeldShare {
            owner_ego_id: ego("owner_ego_id")?,
            generation: to_u64(r.try_get("generation").map_err(|e| self.db(e))?),
            my_ego_id: ego("my_ego_id")?,
            friend_id: r.try_get("friend_id").map_err(|e| self.db(e))?,
            last_signed_at: r
                .try_get::<Option<i64>, _>("last_signed_at")
                .map_err(|e| self.db(e))?
                .map(to_u64),
            created_at: to_u64(r.try_get("created_at").map_err(|e| self.db(e))?),
        })
    }

    /// A held share and its opened secret.
    pub async fn held_share(
        &self,
        key: &SymmetricKey,
        owner: &EgoId,
        generation: u64,
    ) -> Result<Option<(HeldShare, Zeroizing<Vec<u8>>)>, KeystoreError> {
        let Some(r) =
            sqlx::query("SELECT * FROM held_shares WHERE owner_ego_id = $1 AND generation = $2")
                .bind(owner.to_string())
                .bind(to_i64(generation))
                .fetch_optional(self.pool())
                .await
                .map_err(|e| self.db(e))?
        else {
            return Ok(None);
        };
        let held = self.held_row(&r)?;
        let sealed: Vec<u8> = r.try_get("sealed").map_err(|e| self.db(e))?;
        let secret = key
            .open(&share_aad(owner, generation), &sealed)
            .map_err(|_| KeystoreError::SecretDamaged {
                ego: owner.to_string(),
                kind: "share",
            })?;
        Ok(Some((held, secret)))
    }

    /// Every held share (no secret).
    pub async fn held_shares(&self) -> Result<Vec<HeldShare>, KeystoreError> {
        let rows = sqlx::query("SELECT * FROM held_shares ORDER BY owner_ego_id, generation")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        rows.iter().map(|r| self.held_row(r)).collect()
    }

    /// Records a signature made with a held share (the rate policy).
    pub async fn set_share_used(
        &self,
        owner: &EgoId,
        generation: u64,
        at: u64,
    ) -> Result<(), KeystoreError> {
        sqlx::query(
            "UPDATE held_shares SET last_signed_at = $1 WHERE owner_ego_id = $2 AND generation = $3",
        )
        .bind(to_i64(at))
        .bind(owner.to_string())
        .bind(to_i64(generation))
        .execute(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Deletes a friend's shares older than `generation` (its circle moved
    /// on); returns how many.
    pub async fn drop_old_shares(
        &self,
        owner: &EgoId,
        generation: u64,
    ) -> Result<u64, KeystoreError> {
        let n = sqlx::query("DELETE FROM held_shares WHERE owner_ego_id = $1 AND generation < $2")
            .bind(owner.to_string())
            .bind(to_i64(generation))
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?
            .rows_affected();
        Ok(n)
    }
}
