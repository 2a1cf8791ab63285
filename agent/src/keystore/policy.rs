//! Remembered sites (policies) and bans.

use cyrcles_core::EgoId;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Keystore, KeystoreError, to_i64, to_u64};

/// Where a remembered site came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyOrigin {
    /// A rule the person set with `policy allow` (and every row made
    /// before the origin was recorded: migration 0004).
    Policy,
    /// The person approved a login to the site with `approve --remember`.
    RememberedSite,
}

impl PolicyOrigin {
    fn as_str(self) -> &'static str {
        match self {
            PolicyOrigin::Policy => "policy",
            PolicyOrigin::RememberedSite => "remembered-site",
        }
    }
}

/// A remembered site of one ego.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    /// Row id (what `policy remove` takes).
    pub id: i64,
    /// The ego.
    pub ego_id: EgoId,
    /// The bridge's issuer URL.
    pub issuer: String,
    /// The site's client id at that bridge.
    pub client_id: String,
    /// Sign without asking.
    pub auto: bool,
    /// What made it, the last time it was set.
    pub origin: PolicyOrigin,
    /// When it was added.
    pub created_at: u64,
}

/// What a ban applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BanTarget {
    /// One site: a client at a bridge.
    Site {
        /// The bridge's issuer.
        issuer: String,
        /// The client id.
        client_id: String,
    },
    /// A whole bridge.
    Bridge {
        /// The bridge's issuer.
        issuer: String,
    },
    /// A local program, by path.
    Program {
        /// The executable's path.
        path: String,
    },
}

impl BanTarget {
    fn columns(&self) -> (&'static str, &str, &str, &str) {
        match self {
            BanTarget::Site { issuer, client_id } => ("site", issuer, client_id, ""),
            BanTarget::Bridge { issuer } => ("bridge", issuer, "", ""),
            BanTarget::Program { path } => ("program", "", "", path),
        }
    }
}

/// Why a ban was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BanReason {
    /// The person chose to ban.
    User,
    /// The person said a request was not theirs.
    NotMe,
}

impl BanReason {
    fn as_str(self) -> &'static str {
        match self {
            BanReason::User => "user",
            BanReason::NotMe => "not-me",
        }
    }
}

/// A ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRow {
    /// Row id (what `ban remove` takes).
    pub id: i64,
    /// The ego it applies to; none for program bans (the whole agent).
    pub ego_id: Option<EgoId>,
    /// What is banned.
    pub target: BanTarget,
    /// Why.
    pub reason: BanReason,
    /// For "not me": what the request said (JSON text).
    pub detail: Option<String>,
    /// When.
    pub created_at: u64,
}

impl Keystore {
    fn policy_row(&self, r: &SqliteRow) -> Result<PolicyRow, KeystoreError> {
        let ego: String = r.try_get("ego_id").map_err(|e| self.db(e))?;
        let origin: String = r.try_get("origin").map_err(|e| self.db(e))?;
        let origin = match origin.as_str() {
            "policy" => PolicyOrigin::Policy,
            "remembered-site" => PolicyOrigin::RememberedSite,
            other => return Err(self.damaged(format!("policy origin {other:?}"))),
        };
        Ok(PolicyRow {
            id: r.try_get("id").map_err(|e| self.db(e))?,
            ego_id: ego
                .parse()
                .map_err(|_| self.damaged(format!("policy ego id {ego:?}")))?,
            issuer: r.try_get("issuer").map_err(|e| self.db(e))?,
            client_id: r.try_get("client_id").map_err(|e| self.db(e))?,
            auto: r.try_get::<i64, _>("auto").map_err(|e| self.db(e))? != 0,
            origin,
            created_at: to_u64(r.try_get("created_at").map_err(|e| self.db(e))?),
        })
    }

    fn ban_row(&self, r: &SqliteRow) -> Result<BanRow, KeystoreError> {
        let get = |name: &str| -> Result<String, KeystoreError> {
            r.try_get(name).map_err(|e| self.db(e))
        };
        let ego = get("ego_id")?;
        let ego_id = if ego.is_empty() {
            None
        } else {
            Some(
                ego.parse()
                    .map_err(|_| self.damaged(format!("ban ego id {ego:?}")))?,
            )
        };
        let target = match get("kind")?.as_str() {
            "site" => BanTarget::Site {
                issuer: get("issuer")?,
                client_id: get("client_id")?,
            },
            "bridge" => BanTarget::Bridge {
                issuer: get("issuer")?,
            },
            "program" => BanTarget::Program {
                path: get("program")?,
            },
            other => return Err(self.damaged(format!("ban kind {other:?}"))),
        };
        let reason = match get("reason")?.as_str() {
            "not-me" => BanReason::NotMe,
            _ => BanReason::User,
        };
        Ok(BanRow {
            id: r.try_get("id").map_err(|e| self.db(e))?,
            ego_id,
            target,
            reason,
            detail: r.try_get("detail").map_err(|e| self.db(e))?,
            created_at: to_u64(r.try_get("created_at").map_err(|e| self.db(e))?),
        })
    }

    /// Adds or updates the policy for a site of an ego. An update takes
    /// the new `auto` and `origin`: the person's last word on the site.
    pub async fn upsert_policy(
        &self,
        ego: &EgoId,
        issuer: &str,
        client_id: &str,
        auto: bool,
        origin: PolicyOrigin,
        now: u64,
    ) -> Result<PolicyRow, KeystoreError> {
        let r = sqlx::query(
            "INSERT INTO policies (ego_id, issuer, client_id, auto, origin, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (ego_id, issuer, client_id) DO UPDATE SET auto = excluded.auto, \
             origin = excluded.origin \
             RETURNING *",
        )
        .bind(ego.to_string())
        .bind(issuer)
        .bind(client_id)
        .bind(i64::from(auto))
        .bind(origin.as_str())
        .bind(to_i64(now))
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        self.policy_row(&r)
    }

    /// Every policy.
    pub async fn policies(&self) -> Result<Vec<PolicyRow>, KeystoreError> {
        let rows = sqlx::query("SELECT * FROM policies ORDER BY id")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        rows.iter().map(|r| self.policy_row(r)).collect()
    }

    /// Removes a policy; returns it.
    pub async fn remove_policy(&self, id: i64) -> Result<PolicyRow, KeystoreError> {
        let r = sqlx::query("DELETE FROM policies WHERE id = $1 RETURNING *")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db(e))?
            .ok_or_else(|| KeystoreError::NotFound(format!("policy {id}")))?;
        self.policy_row(&r)
    }

    /// Adds a ban (or, if it exists, records the stronger reason).
    pub async fn add_ban(
        &self,
        ego: Option<&EgoId>,
        target: &BanTarget,
        reason: BanReason,
        detail: Option<&str>,
        now: u64,
    ) -> Result<BanRow, KeystoreError> {
        let (kind, issuer, client_id, program) = target.columns();
        let r = sqlx::query(
            "INSERT INTO bans (ego_id, kind, issuer, client_id, program, reason, detail, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (ego_id, kind, issuer, client_id, program) DO UPDATE SET \
             reason = CASE WHEN excluded.reason = 'not-me' THEN 'not-me' ELSE bans.reason END, \
             detail = COALESCE(excluded.detail, bans.detail) \
             RETURNING *",
        )
        .bind(ego.map(ToString::to_string).unwrap_or_default())
        .bind(kind)
        .bind(issuer)
        .bind(client_id)
        .bind(program)
        .bind(reason.as_str())
        .bind(detail)
        .bind(to_i64(now))
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        self.ban_row(&r)
    }

    /// Every ban.
    pub async fn bans(&self) -> Result<Vec<BanRow>, KeystoreError> {
        let rows = sqlx::query("SELECT * FROM bans ORDER BY id")
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        rows.iter().map(|r| self.ban_row(r)).collect()
    }

    /// Removes a ban; returns it.
    pub async fn remove_ban(&self, id: i64) -> Result<BanRow, KeystoreError> {
        let r = sqlx::query("DELETE FROM bans WHERE id = $1 RETURNING *")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db(e))?
            .ok_or_else(|| KeystoreError::NotFound(format!("ban {id}")))?;
        self.ban_row(&r)
    }
}
