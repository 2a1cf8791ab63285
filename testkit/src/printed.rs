//! What a program prints, read while it runs.
//!
//! Programs under test bind port 0 and print the address they got
//! (`cyrcles-bridge serve`: `listening on 127.0.0.1:40123`); a test reads
//! that line instead of guessing a free port, which another process could
//! take between the guess and the bind. [`Printed`] copies a program's
//! output into a log file, line by line, and keeps the first line that
//! starts with each prefix it was told to look for (only those: a long
//! run's output is not held in memory).

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use crate::bounded;

/// How long a program has to print a line asked for.
pub const PRINT_SECS: u64 = 60;

/// The lines looked for, as far as the output went.
#[derive(Debug, Clone)]
struct Seen {
    /// For each prefix, the rest of the first line that started with it.
    found: Vec<Option<String>>,
    /// The output ended (the program exited or closed it).
    ended: bool,
}

/// A program's output, copied to a log file by a task of its own.
#[derive(Debug)]
pub struct Printed {
    prefixes: Vec<&'static str>,
    seen: watch::Receiver<Seen>,
    log: PathBuf,
}

impl Printed {
    /// Starts copying `out` (a child's piped stdout or stderr) to `log`,
    /// appended to, keeping the first line starting with each of
    /// `prefixes`. Needs a Tokio runtime.
    pub fn watch(
        out: impl AsyncRead + Unpin + Send + 'static,
        log: impl Into<PathBuf>,
        prefixes: &[&'static str],
    ) -> Printed {
        let log = log.into();
        let (tx, seen) = watch::channel(Seen {
            found: vec![None; prefixes.len()],
            ended: false,
        });
        let wanted = prefixes.to_vec();
        let path = log.clone();
        tokio::spawn(async move {
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await
                .ok();
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(f) = file.as_mut() {
                    let _ = f.write_all(format!("{line}\n").as_bytes()).await;
                }
                tx.send_if_modified(|seen| {
                    let mut changed = false;
                    for (prefix, found) in wanted.iter().zip(seen.found.iter_mut()) {
                        if found.is_none()
                            && let Some(rest) = line.strip_prefix(prefix)
                        {
                            *found = Some(rest.trim().to_string());
                            changed = true;
                        }
                    }
                    changed
                });
            }
            if let Some(f) = file.as_mut() {
                let _ = f.flush().await;
            }
            tx.send_modify(|seen| seen.ended = true);
        });
        Printed {
            prefixes: prefixes.to_vec(),
            seen,
            log,
        }
    }

    /// The rest of the first line that starts with `prefix` (one of those
    /// given to [`watch`](Printed::watch)), trimmed, waiting up to
    /// [`PRINT_SECS`] for it; panics naming `what`, with the log, if the
    /// output ends first.
    pub async fn after(&self, prefix: &str, what: &str) -> String {
        let i = self
            .prefixes
            .iter()
            .position(|p| *p == prefix)
            .unwrap_or_else(|| panic!("{prefix:?} is not among the prefixes watched"));
        let mut seen = self.seen.clone();
        let found = bounded(
            PRINT_SECS,
            what,
            seen.wait_for(|s| s.found.get(i).is_some_and(Option::is_some) || s.ended),
        )
        .await
        .ok()
        .and_then(|s| s.found.get(i).cloned().flatten());
        found.unwrap_or_else(|| panic!("stopped before {what}: {}", self.log_text()))
    }

    /// Waits until the output has ended (the program exited), up to `secs`;
    /// everything it printed is then in the log.
    pub async fn ended(&self, secs: u64) {
        let mut seen = self.seen.clone();
        let _ = bounded(
            secs,
            "the end of the program's output",
            seen.wait_for(|s| s.ended),
        )
        .await;
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// What the log holds so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
