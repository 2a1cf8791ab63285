//! The agent's home directory: where it is, what it holds, and the
//! permission checks on it.
//!
//! ```text
//! HOME/                 mode 0700
//!   config.toml         optional settings (see config.rs)
//!   bootstrap           the network joined last, one address per line
//!                       (see network_memory.rs)
//!   agent.db            the keystore (SQLite; secrets sealed)
//!   agent.key           the key file, mode 0600, when no passphrase is used
//!   agent.sock          the control socket, mode 0600, while the daemon runs
//! ```

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The environment variable naming the home directory.
pub const HOME_ENV: &str = "CYRCLES_HOME";
/// Longest socket path the kernel accepts (`sun_path` is 108 bytes with the
/// terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A problem with the home directory.
#[derive(Debug, Error)]
pub enum HomeError {
    /// No `--home`, no `CYRCLES_HOME`, and neither `XDG_DATA_HOME` nor
    /// `HOME` is set.
    #[error("no home directory: pass --home DIR or set CYRCLES_HOME")]
    Unknown,
    /// The directory is writable by other users, so others could replace
    /// the socket or the keystore.
    #[error(
        "{0} is writable by other users; run `chmod 700 {0}` (the agent refuses to keep keys there)"
    )]
    Unsafe(PathBuf),
    /// The socket path is longer than Unix sockets allow.
    #[error("the socket path {0} is too long for a Unix socket; choose a shorter home directory")]
    SocketPathTooLong(PathBuf),
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Paths inside a home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// The home at `dir` (not checked or created).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Resolves the home: `explicit` (from `--home`), else `CYRCLES_HOME`,
    /// else `$XDG_DATA_HOME/cyrcles`, else `$HOME/.local/share/cyrcles`.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Self, HomeError> {
        if let Some(dir) = explicit {
            return Ok(Self::at(dir));
        }
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = var(HOME_ENV) {
            return Ok(Self::at(dir));
        }
        if let Some(xdg) = var("XDG_DATA_HOME") {
            return Ok(Self::at(PathBuf::from(xdg).join("cyrcles")));
        }
        if let Some(home) = var("HOME") {
            return Ok(Self::at(PathBuf::from(home).join(".local/share/cyrcles")));
        }
        Err(HomeError::Unknown)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The keystore database.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("agent.db")
    }

    /// The key file (no-passphrase mode).
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("agent.key")
    }

    /// The optional configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The control socket.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    /// Whether the keystore exists.
    pub fn is_initialised(&self) -> bool {
        self.db_path().exists()
    }

    /// Creates the directory (and its parents) with mode 0700 if missing;
    /// refuses one that other users can write to.
    pub fn ensure(&self) -> Result<(), HomeError> {
        if !self.dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|source| self.io(source))?;
            // The mode given to DirBuilder is filtered by the umask.
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .map_err(|source| self.io(source))?;
        }
        self.check()
    }

    /// Checks that the directory exists and only its owner can write it.
    pub fn check(&self) -> Result<(), HomeError> {
        let meta = fs::metadata(&self.dir).map_err(|source| self.io(source))?;
        if meta.mode() & 0o022 != 0 {
            return Err(HomeError::Unsafe(self.dir.clone()));
        }
        let socket = self.socket_path();
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(HomeError::SocketPathTooLong(socket));
        }
        Ok(())
    }

    fn io(&self, source: io::Error) -> HomeError {
        HomeError::Io {
            path: self.dir.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_home_wins() {
        let h = Home::resolve(Some(PathBuf::from("/tmp/x"))).unwrap();
        assert_eq!(h.socket_path(), PathBuf::from("/tmp/x/agent.sock"));
        assert_eq!(h.db_path(), PathBuf::from("/tmp/x/agent.db"));
    }

    #[test]
    fn too_long_socket_paths_are_refused() {
        let base = std::env::temp_dir().join(format!("cyrcles-home-{}", std::process::id()));
        let long = base.join("d".repeat(100));
        let h = Home::at(&long);
        let err = h.ensure().unwrap_err();
        assert!(matches!(err, HomeError::SocketPathTooLong(_)), "{err}");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn group_writable_homes_are_refused() {
        let dir = std::env::temp_dir().join(format!("cyrcles-unsafe-{}", std::process::id()));
        let h = Home::at(&dir);
        h.ensure().unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
        assert!(matches!(h.check(), Err(HomeError::Unsafe(_))));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).unwrap();
        assert!(h.check().is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }
}
