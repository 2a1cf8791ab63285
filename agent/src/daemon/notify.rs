//! Desktop notifications, where a desktop session and `notify-send` are
//! available. Best effort: a missing notifier is not an error, and the
//! daemon never waits for one.
//!
//! Outsiders cause notifications (a login prompt, a friend's recovery
//! request, a refused signing request), so they are budgeted: at most
//! [`PER_MINUTE`] desktop notifications a minute, in bursts of as many,
//! and as many `watch` notices. Beyond, they are held back and counted,
//! and the next one that goes out says how many were; what waits for the
//! person is always listed by `cyrcles requests` and `cyrcles watch`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tracing::debug;

/// Desktop notifications (and, apart, `watch` notices) per minute.
pub(crate) const PER_MINUTE: u32 = 10;

/// A token bucket that counts what it held back.
#[derive(Debug)]
pub(crate) struct Budget {
    per_minute: f64,
    tokens: f64,
    last: Option<Instant>,
    held: u64,
}

impl Budget {
    pub(crate) const fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute as f64,
            tokens: per_minute as f64,
            last: None,
            held: 0,
        }
    }

    /// Takes one: how many were held back since the last one that went
    /// out, or `None` if this one is held back.
    pub(crate) fn take(&mut self, now: Instant) -> Option<u64> {
        let elapsed = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.tokens = (self.tokens + elapsed * self.per_minute / 60.0).min(self.per_minute);
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.held))
        } else {
            self.held = self.held.saturating_add(1);
            None
        }
    }
}

static DESKTOP: Mutex<Budget> = Mutex::new(Budget::new(PER_MINUTE));
static NOTICES: Mutex<Budget> = Mutex::new(Budget::new(PER_MINUTE));

fn take(budget: &Mutex<Budget>, now: Instant) -> Option<u64> {
    budget
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(now)
}

/// The text of a `watch` notice, if one may go out `now` (the daemon
/// clock's instant).
pub(crate) fn notice_text(message: String, now: Instant) -> Option<String> {
    match take(&NOTICES, now) {
        Some(0) => Some(message),
        Some(held) => Some(format!("{message} ({held} similar notices were held back)")),
        None => None,
    }
}

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

/// Shows a notification (title and body) if possible; `now` is the
/// daemon clock's instant.
pub(crate) fn send(now: Instant, title: &str, body: &str) {
    let Some(program) = notifier() else {
        return;
    };
    let body = match take(&DESKTOP, now) {
        Some(0) => body.to_string(),
        Some(held) => format!(
            "{body}\n({held} more notifications were held back: `cyrcles requests` lists what waits)"
        ),
        None => {
            debug!("a desktop notification was held back (over the budget)");
            return;
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_held_back_and_counted() {
        let mut b = Budget::new(10);
        let now = cyrcles_p2p::Clock::system().instant();
        for _ in 0..10 {
            assert_eq!(b.take(now), Some(0));
        }
        for _ in 0..25 {
            assert_eq!(b.take(now), None);
        }
        // Six seconds give one back, which says how many were held.
        assert_eq!(b.take(now + Duration::from_secs(6)), Some(25));
        assert_eq!(b.take(now + Duration::from_secs(6)), None);
        assert_eq!(b.take(now + Duration::from_secs(120)), Some(1));
    }
}
