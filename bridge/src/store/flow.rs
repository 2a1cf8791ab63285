//! The login flow: pending authorization requests (interactions) and login
//! challenges. What a finished login leaves (sessions, consents) is in
//! [`super::sessions`].

use sqlx::any::AnyRow;

use super::{Store, StoreError, col, opt};

/// An authorization request waiting for the person to log in and consent.
#[derive(Debug, Clone)]
pub struct InteractionRow {
    /// Random id, in the interaction's URLs.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The validated authorization request, JSON.
    pub request: String,
    /// CSRF token of the interaction's forms.
    pub csrf: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// The ego once chosen.
    pub ego_id: Option<String>,
    /// The session once logged in.
    pub session_sid: Option<String>,
    /// Set when a code or an error was sent back.
    pub finished_at: Option<i64>,
    /// The client address prefix that opened it (what the bounds count).
    pub client_prefix: String,
    /// The agent's approval its login ended with, JSON
    /// ([`crate::oidc::acr::Approval`]); set with the session.
    pub approval: Option<String>,
}

/// The bounds on unfinished interactions.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Per client address prefix.
    pub per_prefix: i64,
    /// In all.
    pub total: i64,
}

/// What [`Store::insert_interaction_bounded`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Stored, within the bounds.
    Admitted,
    /// Stored in place of an older one (of its own prefix, or of the prefix
    /// holding the most).
    Replaced,
    /// Not stored: the bridge holds its maximum and this prefix holds the
    /// most.
    Refused,
}

/// The columns of an interaction row, as `$1`..`$11`.
const INTERACTION_COLUMNS: &str = "interactions (id, client_id, request, csrf, created_at, expires_at, ego_id, session_sid, finished_at, client_prefix, approval)";

/// Binds the eleven columns of `i` (in [`INTERACTION_COLUMNS`] order) to `q`.
fn bind_interaction<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    i: &'q InteractionRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(&i.id)
        .bind(&i.client_id)
        .bind(&i.request)
        .bind(&i.csrf)
        .bind(i.created_at)
        .bind(i.expires_at)
        .bind(i.ego_id.clone())
        .bind(i.session_sid.clone())
        .bind(i.finished_at)
        .bind(&i.client_prefix)
        .bind(i.approval.clone())
}

fn insert_interaction_query(
    i: &InteractionRow,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO {INTERACTION_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )
    });
    bind_interaction(sqlx::query(&SQL), i)
}

fn interaction(r: &AnyRow) -> Result<InteractionRow, StoreError> {
    Ok(InteractionRow {
        id: col(r, "id")?,
        client_id: col(r, "client_id")?,
        request: col(r, "request")?,
        csrf: col(r, "csrf")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
        ego_id: opt(r, "ego_id")?,
        session_sid: opt(r, "session_sid")?,
        finished_at: opt(r, "finished_at")?,
        client_prefix: col(r, "client_prefix")?,
        approval: opt(r, "approval")?,
    })
}

/// Where a login challenge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    /// Sent; waiting for the agent.
    Pending,
    /// The agent signed and the signature checked out.
    Approved,
    /// The agent refused.
    Denied,
    /// Nobody answered in time.
    Expired,
    /// The agent could not be reached.
    Unreachable,
    /// The answer did not check out.
    Failed,
    /// The person cancelled.
    Cancelled,
    /// A login was completed with it (single use).
    Used,
}

impl ChallengeStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeStatus::Pending => "pending",
            ChallengeStatus::Approved => "approved",
            ChallengeStatus::Denied => "denied",
            ChallengeStatus::Expired => "expired",
            ChallengeStatus::Unreachable => "unreachable",
            ChallengeStatus::Failed => "failed",
            ChallengeStatus::Cancelled => "cancelled",
            ChallengeStatus::Used => "used",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => ChallengeStatus::Pending,
            "approved" => ChallengeStatus::Approved,
            "denied" => ChallengeStatus::Denied,
            "expired" => ChallengeStatus::Expired,
            "unreachable" => ChallengeStatus::Unreachable,
            "failed" => ChallengeStatus::Failed,
            "cancelled" => ChallengeStatus::Cancelled,
            "used" => ChallengeStatus::Used,
            _ => return Err(StoreError::Corrupt("challenge status")),
        })
    }
}

/// A login challenge.
#[derive(Debug, Clone)]
pub struct ChallengeRow {
    /// Random id.
    pub id: String,
    /// Its interaction.
    pub interaction_id: String,
    /// The ego asked.
    pub ego_id: String,
    /// The encoded challenge as sent.
    pub challenge: Vec<u8>,
    /// The two-digit code shown.
    pub match_code: i64,
    /// Issued.
    pub issued_at: i64,
    /// Expires.
    pub expires_at: i64,
    /// Status.
    pub status: ChallengeStatus,
    /// Why it failed, for the page (no secrets); for an approved one, how
    /// the agent approved ([`crate::oidc::acr::Approved::as_str`]).
    pub detail: Option<String>,
    /// The key that signed, once approved.
    pub ego_pk: Option<Vec<u8>>,
    /// Its certificate seq.
    pub cert_seq: Option<i64>,
    /// That certificate's authority epoch.
    pub cert_epoch: Option<i64>,
    /// The client address prefix of the browser that asked.
    pub client_prefix: String,
}

/// The bounds on pending challenges of one ego.
#[derive(Debug, Clone, Copy)]
pub struct PendingCaps {
    /// From one client address prefix.
    pub per_prefix: i64,
    /// In all.
    pub total: i64,
}

/// What [`Store::insert_challenge_fair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeAdmission {
    /// Stored.
    Admitted,
    /// Stored, after cancelling this pending challenge of the prefix that
    /// held the most.
    Replaced {
        /// The cancelled challenge.
        cancelled: String,
    },
    /// Not stored: this prefix already has its maximum pending.
    PrefixFull,
    /// Not stored: the ego has its maximum pending and this prefix holds
    /// the most.
    EgoFull,
}

fn insert_challenge_query(
    c: &ChallengeRow,
    now: i64,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(
        "INSERT INTO challenges (id, interaction_id, ego_id, challenge, match_code, issued_at, expires_at, status, detail, ego_pk, cert_seq, cert_epoch, updated_at, client_prefix) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&c.id)
    .bind(&c.interaction_id)
    .bind(&c.ego_id)
    .bind(c.challenge.clone())
    .bind(c.match_code)
    .bind(c.issued_at)
    .bind(c.expires_at)
    .bind(c.status.as_str())
    .bind(c.detail.clone())
    .bind(c.ego_pk.clone())
    .bind(c.cert_seq)
    .bind(c.cert_epoch)
    .bind(now)
    .bind(&c.client_prefix)
}

fn challenge(r: &AnyRow) -> Result<ChallengeRow, StoreError> {
    let status: String = col(r, "status")?;
    Ok(ChallengeRow {
        id: col(r, "id")?,
        interaction_id: col(r, "interaction_id")?,
        ego_id: col(r, "ego_id")?,
        challenge: col(r, "challenge")?,
        match_code: col(r, "match_code")?,
        issued_at: col(r, "issued_at")?,
        expires_at: col(r, "expires_at")?,
        status: ChallengeStatus::parse(&status)?,
        detail: opt(r, "detail")?,
        ego_pk: opt(r, "ego_pk")?,
        cert_seq: opt(r, "cert_seq")?,
        cert_epoch: opt(r, "cert_epoch")?,
        client_prefix: col(r, "client_prefix")?,
    })
}

const CHALLENGE_COLUMNS: &str = "id, interaction_id, ego_id, challenge, match_code, issued_at, expires_at, status, detail, ego_pk, cert_seq, cert_epoch, client_prefix";

impl Store {
    /// Adds an interaction.
    pub async fn insert_interaction(&self, i: &InteractionRow) -> Result<(), StoreError> {
        insert_interaction_query(i).execute(&self.pool).await?;
        Ok(())
    }

    /// Adds an interaction within `caps` of unfinished, unexpired ones:
    ///
    /// 1. under both caps, it is stored;
    /// 2. when its prefix holds `caps.per_prefix`, that prefix's oldest
    ///    makes room;
    /// 3. when the bridge holds `caps.total`, the oldest interaction of the
    ///    prefix holding the most (the oldest first among equals) makes
    ///    room, if that prefix holds more than this one's; otherwise this
    ///    one is refused.
    ///
    /// So a flood from a few prefixes only ever replaces its own, and a
    /// person arriving from elsewhere gets in. Under the caps, the check and
    /// the insert are one statement; a place freed by rule 2 or 3 goes to
    /// the one that freed it. Concurrent inserts on several connections may
    /// overshoot `total` by the number racing at the bound.
    pub async fn insert_interaction_bounded(
        &self,
        i: &InteractionRow,
        caps: Caps,
        now: i64,
    ) -> Result<Admission, StoreError> {
        let mut outcome = Admission::Admitted;
        // Each round either stores the row or frees one place; two rounds
        // cover both caps, the third only a race.
        for _ in 0..3 {
            static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                format!(
                    "INSERT INTO {INTERACTION_COLUMNS} \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
                     WHERE (SELECT COUNT(*) FROM interactions WHERE client_prefix = $12 AND finished_at IS NULL AND expires_at > $13) < $14 \
                     AND (SELECT COUNT(*) FROM interactions WHERE finished_at IS NULL AND expires_at > $15) < $16"
                )
            });
            let stored = bind_interaction(sqlx::query(&SQL), i)
                .bind(&i.client_prefix)
                .bind(now)
                .bind(caps.per_prefix)
                .bind(now)
                .bind(caps.total)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1;
            if stored {
                return Ok(outcome);
            }
            outcome = Admission::Replaced;
            let own = self.live_interactions_of(&i.client_prefix, now).await?;
            let victim = if own >= caps.per_prefix {
                i.client_prefix.clone()
            } else {
                match self.heaviest_interaction_prefix(now).await? {
                    Some((p, n)) if n > own => p,
                    _ => return Ok(Admission::Refused),
                }
            };
            // The place freed is this one's: the delete and the insert are
            // one transaction, so a concurrent start cannot take it between.
            let mut tx = self.pool.begin().await?;
            let freed = sqlx::query(
                "DELETE FROM interactions WHERE id = (SELECT id FROM interactions \
                 WHERE client_prefix = $1 AND finished_at IS NULL AND expires_at > $2 \
                 ORDER BY created_at, id LIMIT 1)",
            )
            .bind(&victim)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if freed == 1 {
                insert_interaction_query(i).execute(&mut *tx).await?;
                tx.commit().await?;
                return Ok(outcome);
            }
            tx.rollback().await?;
        }
        Ok(Admission::Refused)
    }

    async fn live_interactions_of(&self, prefix: &str, now: i64) -> Result<i64, StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM interactions WHERE client_prefix = $1 AND finished_at IS NULL AND expires_at > $2",
        )
        .bind(prefix)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        col(&r, "n")
    }

    /// The prefix holding the most unfinished interactions (the one with
    /// the oldest among equals), and how many.
    async fn heaviest_interaction_prefix(
        &self,
        now: i64,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT client_prefix, COUNT(*) AS n, MIN(created_at) AS oldest FROM interactions \
             WHERE finished_at IS NULL AND expires_at > $1 \
             GROUP BY client_prefix ORDER BY n DESC, oldest ASC LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some((col(&r, "client_prefix")?, col(&r, "n")?)))
    }

    /// Unfinished, unexpired interactions and the bytes of their stored
    /// requests.
    pub async fn interaction_load(&self, now: i64) -> Result<(i64, i64), StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(request)), 0) AS bytes FROM interactions \
             WHERE finished_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok((col(&r, "n")?, col(&r, "bytes")?))
    }

    /// An unexpired, unfinished interaction.
    pub async fn get_interaction(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<InteractionRow>, StoreError> {
        sqlx::query(
            "SELECT id, client_id, request, csrf, created_at, expires_at, ego_id, session_sid, finished_at, client_prefix, approval \
             FROM interactions WHERE id = $1 AND expires_at > $2 AND finished_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(interaction)
        .transpose()
    }

    /// Records the session an interaction logged in with, and the agent's
    /// approval (JSON) that logged it in.
    pub async fn set_interaction_session(
        &self,
        id: &str,
        ego_id: &str,
        sid: &str,
        approval: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE interactions SET ego_id = $1, session_sid = $2, approval = $3 WHERE id = $4",
        )
        .bind(ego_id)
        .bind(sid)
        .bind(approval)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks an interaction finished; returns false if it already was (so a
    /// code is issued at most once per interaction).
    pub async fn finish_interaction(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE interactions SET finished_at = $1 WHERE id = $2 AND finished_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Pending, unexpired challenges of an ego.
    pub async fn pending_challenges(&self, ego_id: &str, now: i64) -> Result<i64, StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM challenges WHERE ego_id = $1 AND status = 'pending' AND expires_at > $2",
        )
        .bind(ego_id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        col(&r, "n")
    }

    /// Adds a pending challenge within `caps` (pending, unexpired
    /// challenges of its ego):
    ///
    /// 1. under both caps, it is stored;
    /// 2. when its prefix has `caps.per_prefix` pending for the ego, it is
    ///    refused ([`ChallengeAdmission::PrefixFull`]);
    /// 3. when the ego has `caps.total` pending, the oldest pending one of
    ///    the prefix holding the most (the oldest first among equals) is
    ///    cancelled to make room, if that prefix holds more than this one;
    ///    otherwise it is refused ([`ChallengeAdmission::EgoFull`]).
    ///
    /// So a stranger asking for someone's ego from elsewhere only ever
    /// takes their own places, and cannot keep the person out.
    pub async fn insert_challenge_fair(
        &self,
        c: &ChallengeRow,
        now: i64,
        caps: PendingCaps,
    ) -> Result<ChallengeAdmission, StoreError> {
        for _ in 0..3 {
            let n = sqlx::query(
                "INSERT INTO challenges (id, interaction_id, ego_id, challenge, match_code, issued_at, expires_at, status, detail, ego_pk, cert_seq, cert_epoch, updated_at, client_prefix) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, 'pending', NULL, NULL, NULL, NULL, $8, $9 \
                 WHERE (SELECT COUNT(*) FROM challenges WHERE ego_id = $10 AND client_prefix = $11 AND status = 'pending' AND expires_at > $12) < $13 \
                 AND (SELECT COUNT(*) FROM challenges WHERE ego_id = $14 AND status = 'pending' AND expires_at > $15) < $16",
            )
            .bind(&c.id)
            .bind(&c.interaction_id)
            .bind(&c.ego_id)
            .bind(c.challenge.clone())
            .bind(c.match_code)
            .bind(c.issued_at)
            .bind(c.expires_at)
            .bind(now)
            .bind(&c.client_prefix)
            .bind(&c.ego_id)
            .bind(&c.client_prefix)
            .bind(now)
            .bind(caps.per_prefix)
            .bind(&c.ego_id)
            .bind(now)
            .bind(caps.total)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n == 1 {
                return Ok(ChallengeAdmission::Admitted);
            }
            let own = self
                .pending_challenges_of(&c.ego_id, &c.client_prefix, now)
                .await?;
            if own >= caps.per_prefix {
                return Ok(ChallengeAdmission::PrefixFull);
            }
            let Some(r) = sqlx::query(
                "SELECT client_prefix, COUNT(*) AS n, MIN(issued_at) AS oldest FROM challenges \
                 WHERE ego_id = $1 AND status = 'pending' AND expires_at > $2 \
                 GROUP BY client_prefix ORDER BY n DESC, oldest ASC LIMIT 1",
            )
            .bind(&c.ego_id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            else {
                // Nothing pending any more: try again.
                continue;
            };
            let heaviest: String = col(&r, "client_prefix")?;
            let n: i64 = col(&r, "n")?;
            if n <= own {
                return Ok(ChallengeAdmission::EgoFull);
            }
            let Some(r) = sqlx::query(
                "SELECT id FROM challenges WHERE ego_id = $1 AND client_prefix = $2 AND status = 'pending' AND expires_at > $3 \
                 ORDER BY issued_at, id LIMIT 1",
            )
            .bind(&c.ego_id)
            .bind(&heaviest)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            else {
                continue;
            };
            let victim: String = col(&r, "id")?;
            // The place freed is this one's: cancelling and inserting are
            // one transaction, so a concurrent start cannot take it between.
            let mut tx = self.pool.begin().await?;
            let cancelled = sqlx::query(
                "UPDATE challenges SET status = 'cancelled', detail = $1, updated_at = $2 \
                 WHERE id = $3 AND status = 'pending'",
            )
            .bind("Another login request for this ego took its place.")
            .bind(now)
            .bind(&victim)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if cancelled == 1 {
                insert_challenge_query(c, now).execute(&mut *tx).await?;
                tx.commit().await?;
                return Ok(ChallengeAdmission::Replaced { cancelled: victim });
            }
            tx.rollback().await?;
        }
        Ok(ChallengeAdmission::EgoFull)
    }

    /// Pending, unexpired challenges of an ego from one prefix.
    pub async fn pending_challenges_of(
        &self,
        ego_id: &str,
        prefix: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM challenges WHERE ego_id = $1 AND client_prefix = $2 AND status = 'pending' AND expires_at > $3",
        )
        .bind(ego_id)
        .bind(prefix)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        col(&r, "n")
    }

    /// Adds a challenge.
    pub async fn insert_challenge(&self, c: &ChallengeRow, now: i64) -> Result<(), StoreError> {
        insert_challenge_query(c, now).execute(&self.pool).await?;
        Ok(())
    }

    /// A challenge by id.
    pub async fn get_challenge(&self, id: &str) -> Result<Option<ChallengeRow>, StoreError> {
        let q = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1");
        sqlx::query(&q)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(challenge)
            .transpose()
    }

    /// Moves a challenge from `from` to `to`, atomically: returns false if
    /// it was not in `from` (answered twice, cancelled meanwhile...).
    #[allow(clippy::too_many_arguments)]
    pub async fn transition_challenge(
        &self,
        id: &str,
        from: ChallengeStatus,
        to: ChallengeStatus,
        detail: Option<&str>,
        ego_pk: Option<&[u8]>,
        cert: Option<(i64, i64)>,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE challenges SET status = $1, detail = $2, ego_pk = $3, cert_seq = $4, cert_epoch = $5, updated_at = $6 \
             WHERE id = $7 AND status = $8",
        )
        .bind(to.as_str())
        .bind(detail.map(str::to_string))
        .bind(ego_pk.map(<[u8]>::to_vec))
        .bind(cert.map(|(seq, _)| seq))
        .bind(cert.map(|(_, epoch)| epoch))
        .bind(now)
        .bind(id)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }
}
