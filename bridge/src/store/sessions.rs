//! What a finished login leaves at the bridge: browser sessions (single
//! sign-on, logout, revocation) and the scopes each ego consented to for a
//! client.

use sqlx::any::AnyRow;

use super::{Store, StoreError, col, opt};

/// A browser session at the bridge.
#[derive(Clone)]
pub struct SessionRow {
    /// Public session id (the ID token's `sid`).
    pub sid: String,
    /// SHA-256 of the cookie value.
    pub cookie_hash: Vec<u8>,
    /// The ego logged in.
    pub ego_id: String,
    /// The ego key that signed the login.
    pub ego_pk: Vec<u8>,
    /// Its certificate seq.
    pub cert_seq: i64,
    /// That certificate's authority epoch.
    pub cert_epoch: i64,
    /// When the agent last approved a login in this session.
    pub auth_time: i64,
    /// Expiry.
    pub expires_at: i64,
    /// When it ended (logout, revocation).
    pub ended_at: Option<i64>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("sid", &self.sid)
            .field("ego_id", &self.ego_id)
            .field("auth_time", &self.auth_time)
            .finish_non_exhaustive()
    }
}

fn session(r: &AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        sid: col(r, "sid")?,
        cookie_hash: col(r, "cookie_hash")?,
        ego_id: col(r, "ego_id")?,
        ego_pk: col(r, "ego_pk")?,
        cert_seq: col(r, "cert_seq")?,
        cert_epoch: col(r, "cert_epoch")?,
        auth_time: col(r, "auth_time")?,
        expires_at: col(r, "expires_at")?,
        ended_at: opt(r, "ended_at")?,
    })
}

const SESSION_COLUMNS: &str =
    "sid, cookie_hash, ego_id, ego_pk, cert_seq, cert_epoch, auth_time, expires_at, ended_at";

impl Store {
    /// Adds a session.
    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (sid, cookie_hash, ego_id, ego_pk, cert_seq, cert_epoch, auth_time, expires_at, ended_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&s.sid)
        .bind(s.cookie_hash.clone())
        .bind(&s.ego_id)
        .bind(s.ego_pk.clone())
        .bind(s.cert_seq)
        .bind(s.cert_epoch)
        .bind(s.auth_time)
        .bind(s.expires_at)
        .bind(s.ended_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a new approval by the agent in a live session of the same
    /// ego (single sign-on to another site): the session keeps its id and
    /// expiry, takes a new cookie, the key and certificate that approved,
    /// and the approval's time. False if the session has ended.
    pub async fn renew_session(&self, s: &SessionRow) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE sessions SET cookie_hash = $1, ego_pk = $2, cert_seq = $3, cert_epoch = $4, auth_time = $5 \
             WHERE sid = $6 AND ego_id = $7 AND ended_at IS NULL",
        )
        .bind(s.cookie_hash.clone())
        .bind(s.ego_pk.clone())
        .bind(s.cert_seq)
        .bind(s.cert_epoch)
        .bind(s.auth_time)
        .bind(&s.sid)
        .bind(&s.ego_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// The live session whose cookie hashes to `cookie_hash`.
    pub async fn session_by_cookie(
        &self,
        cookie_hash: &[u8],
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        let q = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE cookie_hash = $1 AND expires_at > $2 AND ended_at IS NULL"
        );
        sqlx::query(&q)
            .bind(cookie_hash.to_vec())
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(session)
            .transpose()
    }

    /// A session by its public id, live or not.
    pub async fn session_by_sid(&self, sid: &str) -> Result<Option<SessionRow>, StoreError> {
        let q = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE sid = $1");
        sqlx::query(&q)
            .bind(sid)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(session)
            .transpose()
    }

    /// Every live session.
    pub async fn live_sessions(&self, now: i64) -> Result<Vec<SessionRow>, StoreError> {
        let q = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE expires_at > $1 AND ended_at IS NULL ORDER BY auth_time"
        );
        sqlx::query(&q)
            .bind(now)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(session)
            .collect()
    }

    /// Ends a session; returns false if it had already ended.
    pub async fn end_session(&self, sid: &str, now: i64) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("UPDATE sessions SET ended_at = $1 WHERE sid = $2 AND ended_at IS NULL")
                .bind(now)
                .bind(sid)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// The scopes an ego consented to for a client.
    pub async fn consent(
        &self,
        ego_id: &str,
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT scope FROM consents WHERE ego_id = $1 AND client_id = $2")
            .bind(ego_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| col::<String>(&r, "scope"))
            .transpose()
    }

    /// Records (or widens) a consent.
    pub async fn put_consent(
        &self,
        ego_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (ego_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (ego_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(ego_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
