//! Desktop notifications, where a desktop session and `notify-send` are
//! available. Best effort: a missing notifier is not an error, and the
//! daemon never waits for one.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use tracing::debug;

/// Finds `notify-send` on the `PATH`, if a desktop session is there to
/// show it.
fn notifier() -> Option<PathBuf> {
    let has_session = ["DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY", "DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if !has_session {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("notify-send"))
        .find(|p| p.is_file())
}

/// Shows a notification (title and body) if possible.
pub(crate) fn send(title: &str, body: &str) {
    let Some(program) = notifier() else {
        return;
    };
    let spawned = Command::new(program)
        .arg("--app-name=Cyrcles")
        .arg(title)
        .arg(body)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        // Reaped off the async threads so it leaves no zombie.
        Ok(mut child) => {
            tokio::task::spawn_blocking(move || child.wait());
        }
        Err(e) => debug!("notify-send failed: {e}"),
    }
}
