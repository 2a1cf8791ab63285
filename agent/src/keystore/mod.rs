//! The keystore: a SQLite file in the home directory holding the egos,
//! their sealed secrets, the policies and the bans.
//!
//! Secrets never touch the disk in the clear. Each is sealed
//! ([`seal::SymmetricKey::seal`]) under the **data key**, bound to its ego
//! and kind; the data key is stored wrapped by a key-encryption key from
//! an Argon2id passphrase or from the 0600 key file `agent.key`. Opening
//! the store needs no key; reading a secret needs the unwrapped data key,
//! which the daemon holds only while unlocked.
//!
//! A damaged file (truncated, overwritten, not SQLite) is reported as
//! [`KeystoreError::Damaged`] with what SQLite said; it never panics.

mod circles;
mod egos;
mod friends;
mod policy;
mod recovered;
pub mod seal;

use std::fmt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::home::Home;
use seal::{DATA_KEY_AAD, KdfParams, SymmetricKey};

pub use circles::{CircleRow, HeldShare};
pub use egos::{EgoRow, SecretKind};
pub use friends::{FriendRow, NewFriend};
pub use policy::{BanReason, BanRow, BanTarget, PolicyOrigin, PolicyRow};
pub use recovered::{Installed, Recovered};

/// `path` is not a usable keystore, for the reason `e`.
fn damaged_file(path: &std::path::Path, e: &dyn fmt::Display) -> KeystoreError {
    KeystoreError::Damaged {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/agent");

/// The keystore format written by this version.
const FORMAT: i64 = 1;
/// Salt length for Argon2id.
const SALT_LEN: usize = 16;
/// Longest passphrase accepted.
pub const MAX_PASSPHRASE_LEN: usize = 1024;

/// A passphrase. Zeroized on drop; `Debug` prints nothing of it.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase, refusing an empty or over-long one. A single
    /// trailing newline (as left by `echo` or an editor) is dropped.
    pub fn new(mut s: String) -> Result<Self, KeystoreError> {
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        let s = Zeroizing::new(s);
        if s.is_empty() {
            return Err(KeystoreError::BadPassphrase("it is empty"));
        }
        if s.len() > MAX_PASSPHRASE_LEN {
            return Err(KeystoreError::BadPassphrase("it is longer than 1024 bytes"));
        }
        Ok(Self(s))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The passphrase text (to send it to the daemon).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// How the data key is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// An Argon2id passphrase.
    Passphrase,
    /// The key file `agent.key`.
    KeyFile,
}

impl Protection {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protection::Passphrase => "passphrase",
            Protection::KeyFile => "keyfile",
        }
    }
}

/// Why a keystore operation failed.
#[derive(Debug, Error)]
pub enum KeystoreError {
    /// No keystore in this home.
    #[error("no keystore at {0}; run `cyrcles init` (or start the daemon once)")]
    NotInitialised(PathBuf),
    /// `init` on a home that has one.
    #[error("{0} already holds a keystore")]
    AlreadyInitialised(PathBuf),
    /// The file is not a readable keystore.
    #[error("the keystore {path} is damaged: {detail}; restore it from a backup")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// A sealed secret does not open although the data key is right.
    #[error("the {kind} secret of ego {ego} does not open: the keystore is damaged")]
    SecretDamaged {
        /// The ego.
        ego: String,
        /// Which secret.
        kind: &'static str,
    },
    /// The passphrase does not unlock the keystore.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The keystore is protected by a passphrase and none was given.
    #[error("the keystore is protected by a passphrase; give it with --passphrase-file")]
    PassphraseRequired,
    /// A passphrase that cannot be used.
    #[error("unusable passphrase: {0}")]
    BadPassphrase(&'static str),
    /// The key file is missing, unprotected or wrong.
    #[error("key file {path}: {problem}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A unique name or entry exists.
    #[error("{0} already exists")]
    Exists(String),
    /// The row asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Any other database error.
    #[error("keystore database error: {0}")]
    Database(#[source] sqlx::Error),
}

/// The keystore.
#[derive(Debug, Clone)]
pub struct Keystore {
    pool: SqlitePool,
    path: PathBuf,
}

impl Keystore {
    pub(crate) fn damaged(&self, e: impl fmt::Display) -> KeystoreError {
        damaged_file(&self.path, &e)
    }

    /// Maps a database error: SQLite's "corrupt" and "not a database"
    /// become [`KeystoreError::Damaged`].
    pub(crate) fn db(&self, e: sqlx::Error) -> KeystoreError {
        if let sqlx::Error::Database(d) = &e {
            // SQLITE_CORRUPT (11) and SQLITE_NOTADB (26), with extended codes.
            let primary = d
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .map(|c| c & 0xff);
            if matches!(primary, Some(11 | 26)) {
                return self.damaged(d.message());
            }
        }
        KeystoreError::Database(e)
    }

    fn options(path: &std::path::Path) -> Result<SqliteConnectOptions, sqlx::Error> {
        Ok(SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .foreign_keys(true)
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(5)))
    }

    async fn connect(home: &Home) -> Result<Self, KeystoreError> {
        let path = home.db_path();
        let damaged = |e: &dyn fmt::Display| damaged_file(&path, e);
        let opts = Self::options(&path)
            .map_err(|e| damaged(&e))?
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await
            .map_err(|e| damaged(&e))?;
        let store = Self {
            pool,
            path: path.clone(),
        };
        MIGRATIONS
            .run(&store.pool)
            .await
            .map_err(|e| store.damaged(e))?;
        Ok(store)
    }

    /// Checks, read-only, that the file is an intact SQLite database that
    /// holds a keystore, so that a damaged or foreign file is never
    /// written to.
    async fn inspect(home: &Home) -> Result<(), KeystoreError> {
        use sqlx::Connection;
        let path = home.db_path();
        let damaged = |e: &dyn fmt::Display| damaged_file(&path, e);
        let opts = Self::options(&path)
            .map_err(|e| damaged(&e))?
            .read_only(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| damaged(&e))?;
        let check: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| damaged(&e))?;
        if check != "ok" {
            return Err(damaged(&check));
        }
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'keystore'",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| damaged(&e))?;
        let _ = conn.close().await;
        if tables == 0 {
            return Err(damaged(&"it holds no keystore (empty or another database)"));
        }
        Ok(())
    }

    /// Opens the keystore of `home`.
    pub async fn open(home: &Home) -> Result<Self, KeystoreError> {
        if !home.is_initialised() {
            return Err(KeystoreError::NotInitialised(home.dir().to_path_buf()));
        }
        Self::inspect(home).await?;
        let store = Self::connect(home).await?;
        // A keystore without its key row is not usable.
        store.protection().await?;
        Ok(store)
    }

    /// Creates the keystore of `home` (which must exist and hold none),
    /// protected by `passphrase` or, without one, by a new key file.
    /// Returns it with its data key.
    pub async fn create(
        home: &Home,
        passphrase: Option<&Passphrase>,
        kdf: KdfParams,
        now: u64,
    ) -> Result<(Self, SymmetricKey), KeystoreError> {
        if home.is_initialised() {
            return Err(KeystoreError::AlreadyInitialised(home.dir().to_path_buf()));
        }
        if passphrase.is_none() && home.key_path().exists() {
            // A key file without its keystore: never overwrite (or remove)
            // what may be the only copy of a key.
            return Err(KeystoreError::KeyFile {
                path: home.key_path(),
                problem: "it exists but the keystore does not; move it away first".into(),
            });
        }
        let created = Self::create_files(home, passphrase, kdf, now).await;
        if created.is_err() {
            // Leave the home as it was: no half-made keystore.
            let _ = std::fs::remove_file(home.db_path());
            if passphrase.is_none() {
                let _ = std::fs::remove_file(home.key_path());
            }
        }
        created
    }

    async fn create_files(
        home: &Home,
        passphrase: Option<&Passphrase>,
        kdf: KdfParams,
        now: u64,
    ) -> Result<(Self, SymmetricKey), KeystoreError> {
        let data_key = SymmetricKey::generate();
        let mut salt = [0u8; SALT_LEN];
        let (protection, kek) = match passphrase {
            Some(p) => {
                OsRng.fill_bytes(&mut salt);
                let kek = seal::derive_from_passphrase(p.bytes(), &salt, kdf)
                    .map_err(|_| KeystoreError::BadPassphrase("the key derivation refused it"))?;
                (Protection::Passphrase, kek)
            }
            None => {
                let kek = SymmetricKey::generate();
                write_key_file(home, &kek)?;
                (Protection::KeyFile, kek)
            }
        };
        // An empty file is a new database to SQLite; made here with mode
        // 0600, which SQLite gives its journal files too.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(home.db_path())
            .map_err(|source| KeystoreError::Io {
                path: home.db_path(),
                source,
            })?;
        let store = Self::connect(home).await?;
        let wrapped = kek.seal(DATA_KEY_AAD, data_key.expose());
        let is_pass = protection == Protection::Passphrase;
        sqlx::query(
            "INSERT INTO keystore (id, format, protection, kdf_salt, kdf_memory_kib, \
             kdf_iterations, kdf_parallelism, wrapped_key, created_at) \
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(FORMAT)
        .bind(protection.as_str())
        .bind(is_pass.then(|| salt.to_vec()))
        .bind(is_pass.then_some(i64::from(kdf.memory_kib)))
        .bind(is_pass.then_some(i64::from(kdf.iterations)))
        .bind(is_pass.then_some(i64::from(kdf.parallelism)))
        .bind(wrapped)
        .bind(to_i64(now))
        .execute(&store.pool)
        .await
        .map_err(|e| store.db(e))?;
        Ok((store, data_key))
    }

    /// How the data key is protected.
    pub async fn protection(&self) -> Result<Protection, KeystoreError> {
        let p: Option<String> = sqlx::query_scalar("SELECT protection FROM keystore WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        match p.as_deref() {
            Some("passphrase") => Ok(Protection::Passphrase),
            Some("keyfile") => Ok(Protection::KeyFile),
            Some(other) => Err(self.damaged(format!("unknown protection {other:?}"))),
            None => Err(self.damaged("the key row is missing")),
        }
    }

    /// Unwraps the data key: with the passphrase if the keystore has one,
    /// else with the key file of `home`.
    pub async fn unlock(
        &self,
        home: &Home,
        passphrase: Option<&Passphrase>,
    ) -> Result<SymmetricKey, KeystoreError> {
        let row = sqlx::query(
            "SELECT protection, kdf_salt, kdf_memory_kib, kdf_iterations, kdf_parallelism, \
             wrapped_key FROM keystore WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.db(e))?
        .ok_or_else(|| self.damaged("the key row is missing"))?;
        let get = |name: &str| -> Result<Option<i64>, KeystoreError> {
            row.try_get(name).map_err(|e| self.damaged(e))
        };
        let protection: String = row.try_get("protection").map_err(|e| self.damaged(e))?;
        let wrapped: Vec<u8> = row.try_get("wrapped_key").map_err(|e| self.damaged(e))?;
        let kek = if protection == "passphrase" {
            let p = passphrase.ok_or(KeystoreError::PassphraseRequired)?;
            let salt: Option<Vec<u8>> = row.try_get("kdf_salt").map_err(|e| self.damaged(e))?;
            let param = |name: &str| -> Result<u32, KeystoreError> {
                get(name)?
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| self.damaged(format!("bad {name}")))
            };
            let params = KdfParams {
                memory_kib: param("kdf_memory_kib")?,
                iterations: param("kdf_iterations")?,
                parallelism: param("kdf_parallelism")?,
            };
            let salt = salt.ok_or_else(|| self.damaged("the salt is missing"))?;
            seal::derive_from_passphrase(p.bytes(), &salt, params)
                .map_err(|e| self.damaged(format!("key derivation parameters: {e}")))?
        } else {
            read_key_file(home)?
        };
        let raw = kek.open_32(DATA_KEY_AAD, &wrapped).map_err(|_| {
            if protection == "passphrase" {
                KeystoreError::WrongPassphrase
            } else {
                KeystoreError::KeyFile {
                    path: home.key_path(),
                    problem: "it does not open this keystore".into(),
                }
            }
        })?;
        Ok(SymmetricKey::from_bytes(&raw))
    }

    /// Closes the pool (waits for open connections).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Empties the write-ahead log into the database file. With
    /// `secure_delete` on, deleted rows are zeroed in the database pages;
    /// the checkpoint also drops the log's older copies of those pages.
    pub(crate) async fn checkpoint(&self) -> Result<(), KeystoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Writes a new key file with mode 0600, refusing to replace one.
fn write_key_file(home: &Home, key: &SymmetricKey) -> Result<(), KeystoreError> {
    use std::io::Write;
    let path = home.key_path();
    let io = |source| KeystoreError::Io {
        path: path.clone(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    f.write_all(key.expose()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Reads the key file, refusing one that others can read.
fn read_key_file(home: &Home) -> Result<SymmetricKey, KeystoreError> {
    let path = home.key_path();
    let problem = |p: &str| KeystoreError::KeyFile {
        path: path.clone(),
        problem: p.to_string(),
    };
    let meta = std::fs::metadata(&path).map_err(|e| problem(&e.to_string()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(problem(&format!(
            "its mode is {:o}; run `chmod 600 {}`",
            meta.mode() & 0o777,
            path.display()
        )));
    }
    let bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| problem(&e.to_string()))?);
    let raw: &[u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| problem(&format!("{} bytes instead of 32", bytes.len())))?;
    Ok(SymmetricKey::from_bytes(raw))
}

/// Seconds as SQLite integers (saturating; times are far below 2^63).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// SQLite integers back to seconds (negative values are damage; read as 0).
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
