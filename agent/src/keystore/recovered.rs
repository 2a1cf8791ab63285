//! Installing a recovered ego: the ego and its new keys, the kit's
//! friends, the circle they hold and its plan, in one transaction, so a
//! crash or a failed write leaves either the whole recovered ego or
//! nothing.

use super::seal::SymmetricKey;
use super::{CircleRow, EgoRow, Keystore, KeystoreError, NewFriend, SecretKind};

/// What a finished recovery stores.
#[derive(Debug)]
pub struct Recovered<'a> {
    /// The ego's row (its record certifies the new key).
    pub row: &'a EgoRow,
    /// The new ego key and device key.
    pub secrets: &'a [(SecretKind, &'a [u8])],
    /// The kit's friends that were reached, each with the FROST member id
    /// it told, if it did.
    pub friends: Vec<(NewFriend<'a>, Option<u16>)>,
    /// The circle the friends hold; its `members` are ignored and filled
    /// in from `friends` (member id → the new friend row).
    pub circle: Option<CircleRow>,
}

/// What [`Keystore::install_recovered`] stored.
#[derive(Debug)]
pub struct Installed {
    /// The circle as stored, with its members.
    pub circle: Option<CircleRow>,
    /// Friends left out (a petname already taken by another friend), and why.
    pub skipped: Vec<(String, KeystoreError)>,
}

impl Keystore {
    /// Stores a recovered ego, its friends, its circle, the circle's
    /// plan (its members) and threshold in one transaction. A friend
    /// whose petname is taken is left out (and named in
    /// [`Installed::skipped`]); any other failure stores nothing.
    pub async fn install_recovered(
        &self,
        key: &SymmetricKey,
        r: Recovered<'_>,
    ) -> Result<Installed, KeystoreError> {
        let ego = r.row.ego_id;
        let mut tx = self.pool().begin().await.map_err(|e| self.db(e))?;
        self.insert_ego_in(&mut tx, key, r.row, r.secrets).await?;
        let mut members = Vec::new();
        let mut skipped = Vec::new();
        for (friend, member) in r.friends {
            let petname = friend.petname.to_string();
            match self.add_friend_in(&mut tx, friend).await {
                Ok(row) => {
                    if let Some(m) = member {
                        members.push((m, row.id));
                    }
                }
                Err(e @ KeystoreError::Exists(_)) => skipped.push((petname, e)),
                Err(e) => return Err(e),
            }
        }
        let circle = r.circle.map(|c| CircleRow { members, ..c });
        if let Some(c) = &circle {
            self.write_circle_in(&mut tx, &ego, &r.row.record, c)
                .await?;
            for (_, friend) in &c.members {
                sqlx::query(
                    "INSERT OR IGNORE INTO circle_plan (ego_id, friend_id) VALUES ($1, $2)",
                )
                .bind(ego.to_string())
                .bind(*friend)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
            }
            sqlx::query("UPDATE egos SET threshold = $1 WHERE ego_id = $2")
                .bind(i64::from(c.threshold))
                .bind(ego.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(Installed { circle, skipped })
    }
}

#[cfg(test)]
mod tests {
    use cyrcles_core::{EgoId, SecretKey};
    use rand_core::OsRng;

    use super::*;
    use crate::home::Home;
    use crate::keystore::seal::KdfParams;

    async fn keystore(tag: &str) -> (Keystore, SymmetricKey, std::path::PathBuf) {
        // A random part makes the directory's name unique.
        let unique = rand_core::RngCore::next_u64(&mut OsRng);
        let dir = std::env::temp_dir().join(format!(
            "cyrcles-recovered-{tag}-{}-{unique}",
            std::process::id()
        ));
        let home = Home::at(&dir);
        home.ensure().expect("home");
        let (ks, key) = Keystore::create(&home, None, KdfParams::default(), 1_000)
            .await
            .expect("keystore");
        (ks, key, dir)
    }

    fn ego_id() -> EgoId {
        // Any 32 bytes will do as an id here; a fresh public key is unique.
        EgoId::from_bytes(*SecretKey::generate(&mut OsRng).public().as_bytes())
    }

    /// Installs a recovered ego with two friends, both members.
    async fn install(
        ks: &Keystore,
        key: &SymmetricKey,
        ego: EgoId,
    ) -> Result<Installed, KeystoreError> {
        let row = EgoRow::new(ego, "alice", vec![1, 2, 3], [7; 16], 1_000);
        let secrets: [(SecretKind, &[u8]); 2] =
            [(SecretKind::Ego, &[1; 32]), (SecretKind::Device, &[2; 32])];
        let (f1, f2) = (ego_id(), ego_id());
        let (k1, k2) = (
            SecretKey::generate(&mut OsRng).public(),
            SecretKey::generate(&mut OsRng).public(),
        );
        let friend = |petname, friend_ego_id, friend_ego_key| NewFriend {
            ego_id: &row.ego_id,
            petname,
            friend_ego_id,
            friend_ego_key,
            friend_peer_id: &[9, 9],
            fingerprint: "123456",
            now: 1_000,
        };
        let friends = vec![
            (friend("bob", &f1, &k1), Some(1)),
            (friend("carol", &f2, &k2), Some(2)),
        ];
        ks.install_recovered(
            key,
            Recovered {
                row: &row,
                secrets: &secrets,
                friends,
                circle: Some(CircleRow {
                    circle_id: [7; 16],
                    generation: 1,
                    threshold: 2,
                    public: vec![4, 5],
                    members: Vec::new(),
                    created_at: 1_000,
                }),
            },
        )
        .await
    }

    #[tokio::test]
    async fn a_recovered_ego_is_stored_whole() {
        let (ks, key, dir) = keystore("whole").await;
        let ego = ego_id();
        let installed = install(&ks, &key, ego).await.expect("installed");
        assert!(installed.skipped.is_empty());
        let circle = ks.circle(&ego).await.expect("circle").expect("a circle");
        assert_eq!(circle.members.len(), 2);
        let (plan, threshold) = ks.plan(&ego).await.expect("plan");
        assert_eq!(plan.len(), 2);
        assert_eq!(threshold, Some(2));
        assert_eq!(ks.friends().await.expect("friends").len(), 2);
        assert!(
            ks.egos()
                .await
                .expect("egos")
                .iter()
                .any(|e| e.ego_id == ego)
        );
        ks.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_failure_midway_stores_nothing() {
        let (ks, key, dir) = keystore("midway").await;
        // The last writes (the circle's plan) fail, after the ego, its
        // secrets, the friends and the circle were written.
        sqlx::query(
            "CREATE TRIGGER injected BEFORE INSERT ON circle_plan \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .execute(ks.pool())
        .await
        .expect("trigger");
        let ego = ego_id();
        let failed = install(&ks, &key, ego).await;
        assert!(
            matches!(failed, Err(KeystoreError::Database(_))),
            "{failed:?}"
        );
        assert!(ks.egos().await.expect("egos").is_empty());
        assert!(ks.friends().await.expect("friends").is_empty());
        assert_eq!(ks.circle(&ego).await.expect("circle"), None);
        assert!(ks.secret_kinds(&ego).await.expect("kinds").is_empty());
        ks.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
