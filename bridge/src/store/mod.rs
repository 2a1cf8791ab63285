//! Storage: one portable set of queries over sqlx's `Any` driver, run
//! against an embedded SQLite file by default or PostgreSQL when the
//! database URL says so (several bridge instances can then share it).
//!
//! Portability rules for every query in this module: placeholders are
//! `$1`, `$2`, … in ascending order of first use; values are text, 64-bit
//! integers (times as Unix seconds, flags as 0/1) and byte strings; upserts
//! use `INSERT … ON CONFLICT … DO …`, which both engines support. The
//! schemas live in `migrations/bridge/{sqlite,postgres}` and differ only in
//! type names.
//!
//! Secrets are never stored in the clear: tokens, codes, session cookies and
//! client secrets as SHA-256 hashes (they are 256-bit random values, so a
//! fast hash suffices), signing keys sealed with the master key.
//!
//! # Layout
//!
//! * `clients`: OAuth clients; `keys`: ID-token signing keys.
//! * `flow`: the login flow's pending authorization requests
//!   (interactions) and login challenges.
//! * `sessions`: browser sessions and consents.
//! * `grants`: grants, authorization codes and tokens; `pushed`: pushed
//!   authorization requests.
//! * `egos`: the ego cache (anti-rollback memory).
//! * `limits` and `proofs`: rate windows, spent proof-of-work tokens and
//!   accepted DPoP proofs, shared by every instance.

mod clients;
mod egos;
mod flow;
mod grants;
mod keys;
mod limits;
mod proofs;
mod pushed;
mod sessions;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use thiserror::Error;

use crate::config::DbKind;

pub use clients::ClientRow;
pub use egos::EgoRow;
pub use flow::{
    Admission, Caps, ChallengeAdmission, ChallengeRow, ChallengeStatus, InteractionRow, PendingCaps,
};
pub use grants::{
    ActiveToken, Binding, CodeRow, GrantRow, NewGrant, RotateOutcome, TokenKind, UseCodeOutcome,
};
pub use keys::KeyRow;
pub use proofs::ProofSpend;
pub use pushed::{PushAdmission, PushCaps, PushedRow};
pub use sessions::SessionRow;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/bridge/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../migrations/bridge/postgres");

/// A storage failure. The HTTP layer shows it as a 500 with a reference id
/// and logs the detail.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row holds something this code cannot read (corruption or a newer
    /// schema).
    #[error("unreadable stored value: {0}")]
    Corrupt(&'static str),
}

/// `journal_size_limit`: a log that restarts is truncated to 16 MiB.
const WAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit = 16777216";
/// `wal_autocheckpoint`, in pages (about 100 MiB): the fallback if the
/// maintenance task's checkpoints stop. At the default 1000 pages, every
/// connection's automatic checkpoints contend with each other and with the
/// task's, none can restart a log that readers keep using, and under
/// sustained writes the log grows without end (1.1 GiB in a minute was
/// measured).
const WAL_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 25000";

/// How hard [`Store::checkpoint`] tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// Copy what no reader needs; never wait.
    Passive,
    /// Copy everything, wait (the busy timeout) for readers to move on,
    /// and truncate the log to zero bytes.
    Truncate,
}

/// The bridge's database.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    kind: DbKind,
}

impl Store {
    /// Connects (creating the SQLite file if needed).
    pub async fn connect(
        url: &str,
        kind: DbKind,
        max_connections: u32,
    ) -> Result<Store, StoreError> {
        install_default_drivers();
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10));
        if kind == DbKind::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers proceed during writes; the busy timeout
                    // queues writers instead of failing them.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // The write-ahead log (see `Store::checkpoint`): trimmed
                    // to this size whenever it restarts, checkpointed by the
                    // maintenance task every second; the automatic
                    // checkpoint only as a fallback, far above that.
                    conn.execute(WAL_SIZE_LIMIT).await?;
                    conn.execute(WAL_AUTOCHECKPOINT).await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        Ok(Store { pool, kind })
    }

    /// Applies the migrations of this database's kind.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.kind {
            DbKind::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            DbKind::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Which engine.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Runs a checkpoint of SQLite's write-ahead log: `(busy, log frames,
    /// checkpointed frames)` as SQLite reports them (busy 1: it could not
    /// finish, try again). Nothing on PostgreSQL.
    ///
    /// Why the log needs it: SQLite restarts the log only when it has been
    /// copied back whole and no reader still reads from it. The pool's
    /// connections are always reading and writing under load, so the
    /// automatic (passive) checkpoints never reach that point, and the log
    /// file, never truncated, only grows. `TRUNCATE` takes the writer lock,
    /// copies everything, waits (the busy timeout) for the readers of the
    /// log to finish (new ones read the database file) and truncates the log
    /// to zero bytes.
    pub async fn checkpoint(
        &self,
        mode: Checkpoint,
    ) -> Result<Option<(i64, i64, i64)>, StoreError> {
        if self.kind != DbKind::Sqlite {
            return Ok(None);
        }
        let q = match mode {
            Checkpoint::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            Checkpoint::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        let r = sqlx::query(q).fetch_one(&self.pool).await?;
        Ok(Some((
            col(&r, "busy")?,
            col(&r, "log")?,
            col(&r, "checkpointed")?,
        )))
    }

    /// Bytes of SQLite's write-ahead log file (0 on PostgreSQL or for an
    /// in-memory database).
    pub async fn wal_bytes(&self) -> Result<u64, StoreError> {
        if self.kind != DbKind::Sqlite {
            return Ok(0);
        }
        let r = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_optional(&self.pool)
            .await?;
        let Some(file) = r.map(|r| col::<String>(&r, "file")).transpose()? else {
            return Ok(0);
        };
        if file.is_empty() {
            return Ok(0);
        }
        Ok(tokio::fs::metadata(format!("{file}-wal"))
            .await
            .map(|m| m.len())
            .unwrap_or(0))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Deletes what can no longer be used. Returns the number of rows
    /// removed.
    ///
    /// * interactions: at their expiry, or once finished;
    /// * challenges: an interaction's lifetime after their expiry (an
    ///   approved one can be continued until its interaction ends);
    /// * codes never redeemed: at their expiry; redeemed codes, tokens
    ///   and sessions: a day after they expired, were revoked or ended
    ///   (reuse detection needs that day);
    /// * grants: once no code or token of theirs is left;
    /// * consents: with their client;
    /// * pushed authorization requests and remembered DPoP proofs: at
    ///   their expiry.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        let horizon = now - HISTORY_SECS;
        let challenge_horizon = now - crate::oidc::authorize::INTERACTION_TTL;
        for (q, at) in [
            (
                "DELETE FROM interactions WHERE expires_at < $1 OR finished_at IS NOT NULL",
                now,
            ),
            (
                "DELETE FROM challenges WHERE expires_at < $1",
                challenge_horizon,
            ),
            (
                "DELETE FROM codes WHERE used_at IS NULL AND expires_at < $1",
                now,
            ),
            ("DELETE FROM codes WHERE expires_at < $1", horizon),
            (
                "DELETE FROM tokens WHERE expires_at < $1 OR revoked_at < $2",
                horizon,
            ),
            (
                "DELETE FROM sessions WHERE expires_at < $1 OR ended_at < $2",
                horizon,
            ),
            // A grant goes with the last code or token that could name it
            // (not before its code could have been inserted).
            (
                "DELETE FROM grants WHERE created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = grants.grant_id) \
                 AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.grant_id = grants.grant_id)",
                now - GRANT_GRACE_SECS,
            ),
            ("DELETE FROM pushed_requests WHERE expires_at <= $1", now),
            ("DELETE FROM dpop_proofs WHERE expires_at < $1", now),
            // Consents of clients that are gone.
            (
                "DELETE FROM consents \
                 WHERE NOT EXISTS (SELECT 1 FROM clients c WHERE c.client_id = consents.client_id)",
                0,
            ),
        ] {
            // Each placeholder gets the same time.
            let mut query = sqlx::query(q);
            for n in ["$1", "$2"] {
                if q.contains(n) {
                    query = query.bind(at);
                }
            }
            removed += query.execute(&self.pool).await?.rows_affected();
        }
        Ok(removed)
    }
}

/// The tables [`Store::row_counts`] reports.
const COUNTED_TABLES: [&str; 13] = [
    "interactions",
    "challenges",
    "sessions",
    "consents",
    "clients",
    "grants",
    "codes",
    "tokens",
    "egos",
    "rate_hits",
    "pow_spent",
    "pushed_requests",
    "dpop_proofs",
];

impl Store {
    /// The number of rows of each table an outsider can grow (for the
    /// metrics and the tests of the bounds).
    pub async fn row_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut out = Vec::with_capacity(COUNTED_TABLES.len());
        for t in COUNTED_TABLES {
            // The table names are the constants above, never input.
            let r = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {t}"))
                .fetch_one(&self.pool)
                .await?;
            out.push((t, col(&r, "n")?));
        }
        Ok(out)
    }

    /// The number of rows of `table` (one of those [`Store::row_counts`]
    /// reports; 0 for any other name).
    pub async fn rows(&self, table: &str) -> Result<i64, StoreError> {
        Ok(self
            .row_counts()
            .await?
            .into_iter()
            .find(|(t, _)| *t == table)
            .map(|(_, n)| n)
            .unwrap_or(0))
    }
}

/// A grant is not purged before this age even without codes or tokens
/// (its code is inserted just after it; codes live at most 600 s).
const GRANT_GRACE_SECS: i64 = 600;

/// How long used codes, expired or revoked tokens and ended sessions are
/// kept (reuse of a code or of a rotated refresh token is detected within
/// it).
pub const HISTORY_SECS: i64 = 24 * 3_600;

/// Reads an optional column.
pub(crate) fn opt<'r, T>(row: &'r sqlx::any::AnyRow, col: &str) -> Result<Option<T>, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get::<Option<T>, _>(col).map_err(StoreError::from)
}

/// Reads a required column.
pub(crate) fn col<'r, T>(row: &'r sqlx::any::AnyRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get::<T, _>(col).map_err(StoreError::from)
}
