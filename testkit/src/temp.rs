//! Temporary directories.
//!
//! Each [`TempDir`] is new: its name holds the process id and a counter,
//! so tests running at once never share one. Names are short, as a Unix
//! socket path inside one (an agent home's `agent.sock`) is limited to
//! about 100 bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A new, empty directory under the system's temporary directory, removed
/// on drop (or kept for its logs when the thread is panicking, if
/// [`keep_on_failure`](TempDir::keep_on_failure) was asked).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep_on_failure: bool,
}

impl TempDir {
    /// A directory named `TAG-PID-N`; anything left there under that name
    /// by an earlier process is removed first.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir {
            path,
            keep_on_failure: false,
        }
    }

    /// Keeps the directory when it is dropped during a panic (a failing
    /// test), so that the logs in it can be read.
    pub fn keep_on_failure(mut self) -> TempDir {
        self.keep_on_failure = true;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(p)`.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep_on_failure && std::thread::panicking() {
            eprintln!("kept for its logs: {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
