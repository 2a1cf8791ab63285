//! The ID-token signing keys: one active key per algorithm, stored sealed
//! with the master key, rotated on a schedule or on demand. A new key is
//! staged: published in the JWKS for [`STAGE_SECS`] (twice the JWKS cache
//! lifetime) before it signs, so that a relying party with a cached JWKS
//! never meets a `kid` it cannot find; the key it replaces signs until then
//! and is retired once the new one signs. A retired key stays in the JWKS
//! until every token it signed has expired.
//!
//! Every instance of a deployment reads the same table; each reloads it
//! periodically, and when it meets a `kid` it does not know.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::jose::{self, Alg, JoseError, MasterKey, SigningKey};
use crate::store::{KeyRow, Store, StoreError};

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be generated, sealed or opened (a wrong master key
    /// shows up here).
    #[error("signing key: {0}")]
    Jose(#[from] JoseError),
    /// A stored public JWK is not JSON.
    #[error("stored key {0} is unreadable")]
    Corrupt(String),
}

/// How long a new key is published before it signs: twice the JWKS's
/// `Cache-Control: max-age`.
pub const STAGE_SECS: i64 = 2 * crate::oidc::discovery::JWKS_MAX_AGE_SECS;

#[derive(Default)]
struct Loaded {
    /// Per algorithm, the unretired keys, newest first, with their
    /// creation times.
    unretired: HashMap<Alg, Vec<(i64, Arc<SigningKey>)>>,
    by_kid: HashMap<String, Arc<SigningKey>>,
    jwks: Arc<String>,
}

impl Loaded {
    /// The key that signs with `alg` at `now`: the newest unretired key
    /// staged long enough, or, when none is (the first keys of a new
    /// bridge, which nobody can have cached yet), the oldest unretired.
    fn signer(&self, alg: Alg, now: i64) -> Option<&Arc<SigningKey>> {
        let keys = self.unretired.get(&alg)?;
        keys.iter()
            .find(|(created, _)| now >= created.saturating_add(STAGE_SECS))
            .or_else(|| keys.last())
            .map(|(_, k)| k)
    }
}

/// The signing keys, shared by the request handlers.
pub struct KeyRing {
    store: Store,
    master: Arc<MasterKey>,
    loaded: RwLock<Loaded>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").finish_non_exhaustive()
    }
}

async fn generate(alg: Alg) -> Result<SigningKey, KeyError> {
    // RSA key generation takes a while: keep it off the async workers.
    tokio::task::spawn_blocking(move || SigningKey::generate(alg))
        .await
        .map_err(|_| KeyError::Jose(JoseError::KeyGeneration))?
        .map_err(KeyError::from)
}

impl KeyRing {
    /// Loads the published keys, generating an active key for any
    /// algorithm that has none.
    pub async fn load(store: Store, master: Arc<MasterKey>, now: i64) -> Result<KeyRing, KeyError> {
        let ring = KeyRing {
            store,
            master,
            loaded: RwLock::new(Loaded::default()),
        };
        ring.reload(now).await?;
        let missing: Vec<Alg> = {
            let l = ring.read();
            Alg::ALL
                .iter()
                .copied()
                .filter(|a| !l.unretired.contains_key(a))
                .collect()
        };
        if !missing.is_empty() {
            for alg in missing {
                ring.add(generate(alg).await?, now).await?;
            }
            ring.reload(now).await?;
        }
        Ok(ring)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        // A poisoned lock only means a panic elsewhere while writing a
        // whole `Loaded`; the value itself is consistent.
        self.loaded.read().unwrap_or_else(|e| e.into_inner())
    }

    async fn add(&self, key: SigningKey, now: i64) -> Result<(), KeyError> {
        let sealed = self.master.seal(key.kid().as_bytes(), key.pkcs8())?;
        self.store
            .insert_key(&KeyRow {
                kid: key.kid().to_string(),
                alg: key.alg().as_str().to_string(),
                sealed_key: sealed,
                public_jwk: key.public_jwk().to_string(),
                created_at: now,
                retired_at: None,
                publish_until: None,
            })
            .await?;
        Ok(())
    }

    /// Reads the table again.
    pub async fn reload(&self, now: i64) -> Result<(), KeyError> {
        let rows = self.store.published_keys(now).await?;
        let mut fresh = Loaded::default();
        let mut public = Vec::new();
        for row in rows {
            let Some(alg) = Alg::parse(&row.alg) else {
                return Err(KeyError::Corrupt(row.kid));
            };
            let pkcs8 = self.master.open(row.kid.as_bytes(), &row.sealed_key)?;
            let key = Arc::new(SigningKey::from_pkcs8(alg, &pkcs8)?);
            let jwk: Value = serde_json::from_str(&row.public_jwk)
                .map_err(|_| KeyError::Corrupt(row.kid.clone()))?;
            public.push(jwk);
            // Rows come newest first.
            if row.retired_at.is_none() {
                fresh
                    .unretired
                    .entry(alg)
                    .or_default()
                    .push((row.created_at, key.clone()));
            }
            fresh.by_kid.insert(row.kid, key);
        }
        fresh.jwks = Arc::new(jose::jwks(&public).to_string());
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The key that signs with `alg` at `now`.
    pub fn signer(&self, alg: Alg, now: i64) -> Option<Arc<SigningKey>> {
        self.read().signer(alg, now).cloned()
    }

    /// A published key by id.
    pub fn by_kid(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.read().by_kid.get(kid).cloned()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Arc<String> {
        self.read().jwks.clone()
    }

    /// Verifies a JWT this bridge signed (any published key), returning its
    /// claims. Reloads once if the key is unknown (another instance may have
    /// rotated).
    pub async fn verify_own(&self, jwt: &str, now: i64) -> Result<Value, JoseError> {
        let kid = jose::peek_kid(jwt)?;
        let key = match self.by_kid(&kid) {
            Some(k) => k,
            None => {
                let _ = self.reload(now).await;
                self.by_kid(&kid).ok_or(JoseError::UnknownKey)?
            }
        };
        key.verify_jwt(jwt)
    }

    /// Generates a new key for every algorithm. Staged (`at_once` false),
    /// it is published now and signs after [`STAGE_SECS`], when
    /// [`KeyRing::settle`] retires the keys it replaces; `at_once` (a key
    /// that must stop signing now, e.g. one that leaked) it signs now and
    /// the old ones are retired at once. Retired keys stay published for
    /// `publish_for` seconds. Returns the new key ids.
    pub async fn rotate(
        &self,
        now: i64,
        publish_for: i64,
        at_once: bool,
    ) -> Result<Vec<String>, KeyError> {
        let mut kids = Vec::new();
        for alg in Alg::ALL {
            let key = generate(alg).await?;
            let kid = key.kid().to_string();
            // A key made at once is dated back so that it signs now; a
            // staged one is dated after every key of its algorithm, so that
            // the order of keys made within one second is still theirs.
            let newest = self
                .read()
                .unretired
                .get(&alg)
                .and_then(|v| v.first())
                .map(|(created, _)| *created);
            let created = if at_once {
                now.saturating_sub(STAGE_SECS)
            } else {
                newest.map_or(now, |n| now.max(n.saturating_add(1)))
            };
            self.add(key, created).await?;
            if at_once {
                self.store
                    .retire_keys(alg.as_str(), &kid, now, now.saturating_add(publish_for))
                    .await?;
            }
            kids.push(kid);
        }
        self.store.delete_unpublished_keys(now).await?;
        self.reload(now).await?;
        Ok(kids)
    }

    /// Retires, for each algorithm, the keys a staged key replaced once it
    /// signs (they stay published for `publish_for` seconds). Returns how
    /// many were retired.
    pub async fn settle(&self, now: i64, publish_for: i64) -> Result<u64, KeyError> {
        // The algorithms whose newest key signs while older ones are
        // unretired.
        let replacing: Vec<(Alg, String)> = {
            let l = self.read();
            l.unretired
                .iter()
                .filter_map(|(&alg, keys)| match keys.as_slice() {
                    [(created, newest), _, ..] if now >= created.saturating_add(STAGE_SECS) => {
                        Some((alg, newest.kid().to_string()))
                    }
                    _ => None,
                })
                .collect()
        };
        let mut retired = 0;
        for (alg, kid) in replacing {
            retired += self
                .store
                .retire_keys(alg.as_str(), &kid, now, now.saturating_add(publish_for))
                .await?;
        }
        if retired > 0 {
            self.reload(now).await?;
        }
        Ok(retired)
    }

    /// Rotates if the active keys are older than `max_age` seconds.
    pub async fn rotate_if_due(
        &self,
        now: i64,
        max_age: i64,
        publish_for: i64,
    ) -> Result<bool, KeyError> {
        if max_age <= 0 {
            return Ok(false);
        }
        let newest_active = self
            .store
            .published_keys(now)
            .await?
            .into_iter()
            .filter(|k| k.retired_at.is_none())
            .map(|k| k.created_at)
            .max();
        let rotated = match newest_active {
            Some(created) if now.saturating_sub(created) >= max_age => {
                self.rotate(now, publish_for, false).await?;
                true
            }
            _ => false,
        };
        self.settle(now, publish_for).await?;
        Ok(rotated)
    }
}
