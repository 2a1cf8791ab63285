//! Grants (one per completed authorization), authorization codes and
//! tokens. Codes and tokens are stored as SHA-256 hashes.

use sqlx::any::AnyRow;

use super::{Store, StoreError, col, opt};

/// What a person granted a client in one authorization.
#[derive(Debug, Clone)]
pub struct GrantRow {
    /// Random id.
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// The ego.
    pub ego_id: String,
    /// The browser session it came from.
    pub sid: Option<String>,
    /// The subject identifier the client sees.
    pub sub: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The `claims` request parameter, JSON, if any.
    pub claims: Option<String>,
    /// The authorization request's nonce.
    pub nonce: Option<String>,
    /// When the person authenticated.
    pub auth_time: i64,
    /// The authentication context class.
    pub acr: String,
    /// The certificate seq of the ego key that approved the login (none
    /// for grants made before it was recorded).
    pub cert_seq: Option<i64>,
    /// That certificate's authority epoch (none for grants made before it
    /// was recorded): a recovery raises the ego's, and ends the grant.
    pub cert_epoch: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// When revoked.
    pub revoked_at: Option<i64>,
}

/// A new grant (the row without its revocation).
pub type NewGrant = GrantRow;

fn grant(r: &AnyRow) -> Result<GrantRow, StoreError> {
    Ok(GrantRow {
        grant_id: col(r, "grant_id")?,
        client_id: col(r, "client_id")?,
        ego_id: col(r, "ego_id")?,
        sid: opt(r, "sid")?,
        sub: col(r, "sub")?,
        scope: col(r, "scope")?,
        claims: opt(r, "claims")?,
        nonce: opt(r, "nonce")?,
        auth_time: col(r, "auth_time")?,
        acr: col(r, "acr")?,
        cert_seq: opt(r, "cert_seq")?,
        cert_epoch: opt(r, "cert_epoch")?,
        created_at: col(r, "created_at")?,
        revoked_at: opt(r, "revoked_at")?,
    })
}

const GRANT_COLUMNS: &str = "grant_id, client_id, ego_id, sid, sub, scope, claims, nonce, auth_time, acr, cert_seq, cert_epoch, created_at, revoked_at";

/// An authorization code.
#[derive(Clone)]
pub struct CodeRow {
    /// SHA-256 of the code.
    pub code_hash: Vec<u8>,
    /// Its grant.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI of the request (must match at the token endpoint).
    pub redirect_uri: String,
    /// The PKCE S256 challenge, if any.
    pub code_challenge: Option<String>,
    /// Expiry.
    pub expires_at: i64,
}

impl std::fmt::Debug for CodeRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRow")
            .field("grant_id", &self.grant_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What redeeming a code found.
#[derive(Debug)]
pub enum UseCodeOutcome {
    /// First use, in time: the code and its grant.
    Fresh(Box<(CodeRow, GrantRow)>),
    /// Used before: the caller revokes what the grant issued.
    Reused {
        /// The grant to revoke.
        grant_id: String,
    },
    /// Past its lifetime.
    Expired,
    /// No such code.
    Unknown,
}

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A bearer access token.
    Access,
    /// A refresh token.
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "access" => Ok(TokenKind::Access),
            "refresh" => Ok(TokenKind::Refresh),
            _ => Err(StoreError::Corrupt("token kind")),
        }
    }
}

/// A live token with its grant.
#[derive(Debug, Clone)]
pub struct ActiveToken {
    /// Access or refresh.
    pub kind: TokenKind,
    /// The client it was issued to.
    pub client_id: String,
    /// Its scopes.
    pub scope: String,
    /// Issued.
    pub created_at: i64,
    /// Expires.
    pub expires_at: i64,
    /// The thumbprint of the DPoP key it is bound to (RFC 9449), if any.
    pub jkt: Option<String>,
    /// Its grant.
    pub grant: GrantRow,
}

/// The DPoP keys (RFC 7638 thumbprints) the tokens of one token response
/// are bound to (RFC 9449); `None`: a bearer token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    /// The access token's key.
    pub access: Option<String>,
    /// The refresh token's key.
    pub refresh: Option<String>,
}

/// What rotating a refresh token found.
#[derive(Debug)]
pub enum RotateOutcome {
    /// Rotated: the old token is spent; here is what it carried.
    Rotated(Box<ActiveToken>),
    /// Already rotated: a replay. The caller revokes the grant.
    Reused {
        /// The grant to revoke.
        grant_id: String,
    },
    /// Unknown, expired, revoked, or not a refresh token.
    Invalid,
}

impl Store {
    /// Adds a grant.
    pub async fn insert_grant(&self, g: &NewGrant) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO grants (grant_id, client_id, ego_id, sid, sub, scope, claims, nonce, auth_time, acr, cert_seq, cert_epoch, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&g.grant_id)
        .bind(&g.client_id)
        .bind(&g.ego_id)
        .bind(g.sid.clone())
        .bind(&g.sub)
        .bind(&g.scope)
        .bind(g.claims.clone())
        .bind(g.nonce.clone())
        .bind(g.auth_time)
        .bind(&g.acr)
        .bind(g.cert_seq)
        .bind(g.cert_epoch)
        .bind(g.created_at)
        .bind(g.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A grant by id.
    pub async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRow>, StoreError> {
        let q = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE grant_id = $1");
        sqlx::query(&q)
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(grant)
            .transpose()
    }

    /// Unrevoked grants made in a browser session.
    pub async fn grants_of_session(&self, sid: &str) -> Result<Vec<GrantRow>, StoreError> {
        let q = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE sid = $1 AND revoked_at IS NULL");
        sqlx::query(&q)
            .bind(sid)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(grant)
            .collect()
    }

    /// Revokes the grants of session `sid` for `client_id` beyond the
    /// newest `keep` (counting `newest`, the one just made, which is never
    /// revoked). Returns how many were revoked.
    pub async fn revoke_excess_grants(
        &self,
        sid: &str,
        client_id: &str,
        newest: &str,
        keep: i64,
        now: i64,
    ) -> Result<usize, StoreError> {
        let older = sqlx::query(
            "SELECT grant_id FROM grants WHERE sid = $1 AND client_id = $2 AND grant_id <> $3 AND revoked_at IS NULL \
             ORDER BY created_at DESC, grant_id DESC LIMIT 100 OFFSET $4",
        )
        .bind(sid)
        .bind(client_id)
        .bind(newest)
        .bind((keep - 1).max(0))
        .fetch_all(&self.pool)
        .await?;
        for r in &older {
            self.revoke_grant(&col::<String>(r, "grant_id")?, now)
                .await?;
        }
        Ok(older.len())
    }

    /// The newest unrevoked grant of session `sid` for `client_id`: the
    /// agent's latest approval of that site in that session.
    pub async fn latest_grant(
        &self,
        sid: &str,
        client_id: &str,
    ) -> Result<Option<GrantRow>, StoreError> {
        let q = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE sid = $1 AND client_id = $2 AND revoked_at IS NULL \
             ORDER BY created_at DESC, grant_id LIMIT 1"
        );
        sqlx::query(&q)
            .bind(sid)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(grant)
            .transpose()
    }

    /// Unrevoked grants of session `sid` for `client_id`.
    pub async fn live_grants(&self, sid: &str, client_id: &str) -> Result<i64, StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM grants WHERE sid = $1 AND client_id = $2 AND revoked_at IS NULL",
        )
        .bind(sid)
        .bind(client_id)
        .fetch_one(&self.pool)
        .await?;
        col(&r, "n")
    }

    /// Revokes a grant and every token issued under it.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(grant_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(grant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Binds a code to the DPoP key (RFC 7638 thumbprint) it can only be
    /// redeemed with (RFC 9449 §10).
    pub async fn bind_code_key(&self, code_hash: &[u8], jkt: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE codes SET dpop_jkt = $1 WHERE code_hash = $2")
            .bind(jkt)
            .bind(code_hash.to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The DPoP key a code of `client_id` is bound to, if any.
    pub async fn code_key(
        &self,
        code_hash: &[u8],
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let r = sqlx::query("SELECT dpop_jkt FROM codes WHERE code_hash = $1 AND client_id = $2")
            .bind(code_hash.to_vec())
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| opt::<String>(&r, "dpop_jkt"))
            .transpose()?
            .flatten())
    }

    /// Adds a code.
    pub async fn insert_code(&self, c: &CodeRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(c.code_hash.clone())
        .bind(&c.grant_id)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(c.code_challenge.clone())
        .bind(c.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Redeems a code for `client_id`: marks it used, atomically, and
    /// returns it with its grant; a second redemption by the same client
    /// is reported as reuse. Another client's try leaves the code as it
    /// was: it is reported as unknown, and is no replay.
    pub async fn use_code(
        &self,
        code_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> Result<UseCodeOutcome, StoreError> {
        // The conditional update is the atomic step: of two concurrent
        // redemptions exactly one gets the row back.
        let won = sqlx::query(
            "UPDATE codes SET used_at = $1 WHERE code_hash = $2 AND client_id = $3 \
             AND used_at IS NULL AND expires_at > $4 \
             RETURNING grant_id, client_id, redirect_uri, code_challenge, expires_at",
        )
        .bind(now)
        .bind(code_hash.to_vec())
        .bind(client_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = won {
            let code = CodeRow {
                code_hash: code_hash.to_vec(),
                grant_id: col(&r, "grant_id")?,
                client_id: col(&r, "client_id")?,
                redirect_uri: col(&r, "redirect_uri")?,
                code_challenge: opt(&r, "code_challenge")?,
                expires_at: col(&r, "expires_at")?,
            };
            return match self.get_grant(&code.grant_id).await? {
                Some(g) if g.revoked_at.is_none() => Ok(UseCodeOutcome::Fresh(Box::new((code, g)))),
                _ => Ok(UseCodeOutcome::Unknown),
            };
        }
        // Why not: used before, expired, or unknown.
        let Some(r) = sqlx::query(
            "SELECT grant_id, expires_at, used_at FROM codes WHERE code_hash = $1 AND client_id = $2",
        )
        .bind(code_hash.to_vec())
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(UseCodeOutcome::Unknown);
        };
        let used_at: Option<i64> = opt(&r, "used_at")?;
        if used_at.is_some() {
            return Ok(UseCodeOutcome::Reused {
                grant_id: col(&r, "grant_id")?,
            });
        }
        Ok(UseCodeOutcome::Expired)
    }

    /// Adds an access token and, optionally, a refresh token of one grant,
    /// in one statement.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_token_pair(
        &self,
        access_hash: &[u8],
        access_expires_at: i64,
        refresh: Option<(&[u8], i64)>,
        grant_id: &str,
        client_id: &str,
        scope: &str,
        created_at: i64,
    ) -> Result<(), StoreError> {
        self.insert_bound_token_pair(
            access_hash,
            access_expires_at,
            refresh,
            grant_id,
            client_id,
            scope,
            created_at,
            &Binding::default(),
        )
        .await
    }

    /// [`Store::insert_token_pair`], the tokens bound to DPoP keys.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_bound_token_pair(
        &self,
        access_hash: &[u8],
        access_expires_at: i64,
        refresh: Option<(&[u8], i64)>,
        grant_id: &str,
        client_id: &str,
        scope: &str,
        created_at: i64,
        binding: &Binding,
    ) -> Result<(), StoreError> {
        let Some((refresh_hash, refresh_expires_at)) = refresh else {
            sqlx::query(
                "INSERT INTO tokens (token_hash, kind, grant_id, client_id, scope, created_at, expires_at, revoked_at, rotated_at, jkt) \
                 VALUES ($1, 'access', $2, $3, $4, $5, $6, NULL, NULL, $7)",
            )
            .bind(access_hash.to_vec())
            .bind(grant_id)
            .bind(client_id)
            .bind(scope)
            .bind(created_at)
            .bind(access_expires_at)
            .bind(binding.access.clone())
            .execute(&self.pool)
            .await?;
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO tokens (token_hash, kind, grant_id, client_id, scope, created_at, expires_at, revoked_at, rotated_at, jkt) \
             VALUES ($1, 'access', $2, $3, $4, $5, $6, NULL, NULL, $7), ($8, 'refresh', $9, $10, $11, $12, $13, NULL, NULL, $14)",
        )
        .bind(access_hash.to_vec())
        .bind(grant_id)
        .bind(client_id)
        .bind(scope)
        .bind(created_at)
        .bind(access_expires_at)
        .bind(binding.access.clone())
        .bind(refresh_hash.to_vec())
        .bind(grant_id)
        .bind(client_id)
        .bind(scope)
        .bind(created_at)
        .bind(refresh_expires_at)
        .bind(binding.refresh.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds a token.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_token(
        &self,
        token_hash: &[u8],
        kind: TokenKind,
        grant_id: &str,
        client_id: &str,
        scope: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (token_hash, kind, grant_id, client_id, scope, created_at, expires_at, revoked_at, rotated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)",
        )
        .bind(token_hash.to_vec())
        .bind(kind.as_str())
        .bind(grant_id)
        .bind(client_id)
        .bind(scope)
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A token that is unexpired, unrevoked, unrotated, under an unrevoked
    /// grant.
    pub async fn active_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<ActiveToken>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT t.kind, t.client_id AS t_client, t.scope AS t_scope, t.created_at AS t_created, t.expires_at AS t_expires, t.jkt AS t_jkt, \
             g.grant_id, g.client_id, g.ego_id, g.sid, g.sub, g.scope, g.claims, g.nonce, g.auth_time, g.acr, g.cert_seq, g.cert_epoch, g.created_at, g.revoked_at \
             FROM tokens t JOIN grants g ON g.grant_id = t.grant_id \
             WHERE t.token_hash = $1 AND t.expires_at > $2 AND t.revoked_at IS NULL AND t.rotated_at IS NULL AND g.revoked_at IS NULL",
        )
        .bind(token_hash.to_vec())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let kind: String = col(&r, "kind")?;
        Ok(Some(ActiveToken {
            kind: TokenKind::parse(&kind)?,
            client_id: col(&r, "t_client")?,
            scope: col(&r, "t_scope")?,
            created_at: col(&r, "t_created")?,
            expires_at: col(&r, "t_expires")?,
            jkt: opt(&r, "t_jkt")?,
            grant: grant(&r)?,
        }))
    }

    /// The DPoP key thumbprint a token of `client_id` is bound to (`None`:
    /// unknown, another client's, or a bearer token).
    pub async fn token_jkt(
        &self,
        token_hash: &[u8],
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let r = sqlx::query("SELECT jkt FROM tokens WHERE token_hash = $1 AND client_id = $2")
            .bind(token_hash.to_vec())
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| opt::<String>(&r, "jkt")).transpose()?.flatten())
    }

    /// Spends a refresh token (rotation). A second use of a rotated token is
    /// reported as reuse.
    pub async fn rotate_refresh(
        &self,
        token_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> Result<RotateOutcome, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT kind, grant_id, client_id, expires_at, revoked_at, rotated_at FROM tokens WHERE token_hash = $1",
        )
        .bind(token_hash.to_vec())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(RotateOutcome::Invalid);
        };
        let kind: String = col(&r, "kind")?;
        let grant_id: String = col(&r, "grant_id")?;
        let owner: String = col(&r, "client_id")?;
        let rotated: Option<i64> = opt(&r, "rotated_at")?;
        let revoked: Option<i64> = opt(&r, "revoked_at")?;
        let expires: i64 = col(&r, "expires_at")?;
        if TokenKind::parse(&kind)? != TokenKind::Refresh || owner != client_id {
            return Ok(RotateOutcome::Invalid);
        }
        if rotated.is_some() {
            return Ok(RotateOutcome::Reused { grant_id });
        }
        if revoked.is_some() || expires <= now {
            return Ok(RotateOutcome::Invalid);
        }
        let active = self.active_token(token_hash, now).await?;
        let won = sqlx::query("UPDATE tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL")
            .bind(now)
            .bind(token_hash.to_vec())
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1;
        match (won, active) {
            (true, Some(a)) => Ok(RotateOutcome::Rotated(Box::new(a))),
            (false, _) => Ok(RotateOutcome::Reused { grant_id }),
            (true, None) => Ok(RotateOutcome::Invalid),
        }
    }

    /// Revokes a token of `client_id` (RFC 7009). Revoking a refresh token
    /// revokes its whole grant. Returns whether a token was found.
    pub async fn revoke_token(
        &self,
        token_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT kind, grant_id FROM tokens WHERE token_hash = $1 AND client_id = $2",
        )
        .bind(token_hash.to_vec())
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(false);
        };
        let kind: String = col(&r, "kind")?;
        let grant_id: String = col(&r, "grant_id")?;
        if TokenKind::parse(&kind)? == TokenKind::Refresh {
            self.revoke_grant(&grant_id, now).await?;
        } else {
            sqlx::query(
                "UPDATE tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(token_hash.to_vec())
            .execute(&self.pool)
            .await?;
        }
        Ok(true)
    }
}
