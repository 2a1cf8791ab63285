//! Friends made through invites.

use cyrcles_core::{EgoId, PublicKey};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use super::{Keystore, KeystoreError, to_i64, to_u64};

/// A friend of one of the person's egos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRow {
    /// Row id.
    pub id: i64,
    /// The person's ego this friendship belongs to.
    pub ego_id: EgoId,
    /// The person's name for the friend.
    pub petname: String,
    /// The friend's ego.
    pub friend_ego_id: EgoId,
    /// The friend's ego key when the invite ran.
    pub friend_ego_key: PublicKey,
    /// The friend's node (libp2p peer id bytes).
    pub friend_peer_id: Vec<u8>,
    /// The six digits both people were shown.
    pub fingerprint: String,
    /// When.
    pub created_at: u64,
}

/// A new friendship, before it has a row id.
#[derive(Debug, Clone)]
pub struct NewFriend<'a> {
    /// The person's ego.
    pub ego_id: &'a EgoId,
    /// The person's name for the friend.
    pub petname: &'a str,
    /// The friend's ego.
    pub friend_ego_id: &'a EgoId,
    /// The friend's ego key.
    pub friend_ego_key: &'a PublicKey,
    /// The friend's node.
    pub friend_peer_id: &'a [u8],
    /// The six digits.
    pub fingerprint: &'a str,
    /// When.
    pub now: u64,
}

impl Keystore {
    fn friend_row(&self, r: &SqliteRow) -> Result<FriendRow, KeystoreError> {
        let text = |name: &str| -> Result<String, KeystoreError> {
            r.try_get(name).map_err(|e| self.db(e))
        };
        let ego = |name: &str| -> Result<EgoId, KeystoreError> {
            text(name)?
                .parse()
                .map_err(|_| self.damaged(format!("friends.{name} is not an ego id")))
        };
        let key: Vec<u8> = r.try_get("friend_ego_key").map_err(|e| self.db(e))?;
        let friend_ego_key = <[u8; 32]>::try_from(key.as_slice())
            .map(PublicKey)
            .map_err(|_| self.damaged("friends.friend_ego_key is not a public key"))?;
        Ok(FriendRow {
            id: r.try_get("id").map_err(|e| self.db(e))?,
            ego_id: ego("ego_id")?,
            petname: text("petname")?,
            friend_ego_id: ego("friend_ego_id")?,
            friend_ego_key,
            friend_peer_id: r.try_get("friend_peer_id").map_err(|e| self.db(e))?,
            fingerprint: text("fingerprint")?,
            created_at: to_u64(r.try_get("created_at").map_err(|e| self.db(e))?),
        })
    }

    /// Stores a friendship. The same friend of the same ego again updates
    /// the key, node and fingerprint (a new invite supersedes the old one);
    /// a petname already used for another friend of this ego is refused.
    pub async fn add_friend(&self, f: NewFriend<'_>) -> Result<FriendRow, KeystoreError> {
        let mut conn = self.pool().acquire().await.map_err(|e| self.db(e))?;
        self.add_friend_in(&mut conn, f).await
    }

    /// [`Keystore::add_friend`]'s writes, on the caller's connection (or
    /// inside its transaction).
    pub(super) async fn add_friend_in(
        &self,
        conn: &mut SqliteConnection,
        f: NewFriend<'_>,
    ) -> Result<FriendRow, KeystoreError> {
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT friend_ego_id FROM friends WHERE ego_id = $1 AND petname = $2",
        )
        .bind(f.ego_id.to_string())
        .bind(f.petname)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| self.db(e))?;
        if taken.is_some_and(|t| t != f.friend_ego_id.to_string()) {
            return Err(KeystoreError::Exists(format!(
                "a friend named {:?}",
                f.petname
            )));
        }
        let r = sqlx::query(
            "INSERT INTO friends (ego_id, petname, friend_ego_id, friend_ego_key, \
             friend_peer_id, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (ego_id, friend_ego_id) DO UPDATE SET petname = excluded.petname, \
             friend_ego_key = excluded.friend_ego_key, friend_peer_id = excluded.friend_peer_id, \
             fingerprint = excluded.fingerprint \
             RETURNING *",
        )
        .bind(f.ego_id.to_string())
        .bind(f.petname)
        .bind(f.friend_ego_id.to_string())
        .bind(f.friend_ego_key.as_bytes().to_vec())
        .bind(f.friend_peer_id)
        .bind(f.fingerprint)
        .bind(to_i64(f.now))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| self.db(e))?;
        self.friend_row(&r)
    }

    /// The friendship of `ego` with the ego `friend`, if any.
    pub async fn friend(
        &self,
        ego: &EgoId,
        friend: &EgoId,
    ) -> Result<Option<FriendRow>, KeystoreError> {
        let row = sqlx::query("SELECT * FROM friends WHERE ego_id = $1 AND friend_ego_id = $2")
            .bind(ego.to_string())
            .bind(friend.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        row.map(|r| self.friend_row(&r)).transpose()
    }

    /// Records a friend's new node (after their ego was recovered on a
    /// new device and this person approved it).
    pub async fn set_friend_peer(&self, id: i64, peer_id: &[u8]) -> Result<(), KeystoreError> {
        sqlx::query("UPDATE friends SET friend_peer_id = $1 WHERE id = $2")
            .bind(peer_id)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Every friend of every ego.
    pub async fn friends(&self) -> Result<Vec<FriendRow>, KeystoreError> {
        let rows = sqlx::query("SELECT * FROM friends ORDER BY ego_id, petname")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        rows.iter().map(|r| self.friend_row(r)).collect()
    }
}
