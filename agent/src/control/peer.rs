//! Who is on the other end of the control socket.
//!
//! The kernel tells the daemon the uid, gid and pid of the process that
//! connected (`SO_PEERCRED`, read when the connection is accepted); the
//! daemon serves only its own uid, like ssh-agent, and records the caller's
//! pid and executable (`/proc/PID/exe`) with each request.

use std::path::PathBuf;

use thiserror::Error;

/// What the kernel says about a connecting process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// The process's effective uid.
    pub uid: u32,
    /// Its pid, when the kernel reports one.
    pub pid: Option<i32>,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its uid.
    pub uid: u32,
    /// Its pid.
    pub pid: Option<u32>,
    /// Its executable, when readable.
    pub exe: Option<PathBuf>,
    /// The executable of its parent, when the caller is the `cyrcles` CLI
    /// itself (the program that ran `cyrcles sign`).
    pub parent_exe: Option<PathBuf>,
}

/// A connection from another user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("refused: the agent serves only uid {own}, not uid {peer}")]
pub struct ForeignUser {
    /// The daemon's uid.
    pub own: u32,
    /// The caller's uid.
    pub peer: u32,
}

/// Accepts only the daemon's own uid. Root gets no exception: an agent
/// holds one person's keys.
pub fn check(creds: Credentials, own_uid: u32) -> Result<(), ForeignUser> {
    if creds.uid == own_uid {
        Ok(())
    } else {
        Err(ForeignUser {
            own: own_uid,
            peer: creds.uid,
        })
    }
}

/// The daemon's effective uid.
pub fn own_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn exe_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

impl Caller {
    /// Describes the process behind `creds`. When it runs the same
    /// executable as the daemon (the `cyrcles` CLI), its parent is the
    /// program that really asks.
    pub fn identify(creds: Credentials) -> Self {
        let pid = creds.pid.and_then(|p| u32::try_from(p).ok());
        let exe = pid.and_then(exe_of);
        let own = std::env::current_exe().ok();
        let parent_exe = match (&exe, &own) {
            (Some(e), Some(o)) if e == o => pid.and_then(parent_of).and_then(exe_of),
            _ => None,
        };
        Self {
            uid: creds.uid,
            pid,
            exe,
            parent_exe,
        }
    }

    /// The program a local signing request is attributed to (and banned
    /// by): the parent when the caller is the CLI, else the caller.
    pub fn program(&self) -> String {
        self.parent_exe
            .as_ref()
            .or(self.exe.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(unknown program)".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_own_uid_is_served() {
        assert!(
            check(
                Credentials {
                    uid: 1000,
                    pid: Some(5)
                },
                1000
            )
            .is_ok()
        );
        let e = check(
            Credentials {
                uid: 0,
                pid: Some(5),
            },
            1000,
        )
        .unwrap_err();
        assert_eq!(e, ForeignUser { own: 1000, peer: 0 });
        assert!(
            check(
                Credentials {
                    uid: 65534,
                    pid: None
                },
                0
            )
            .is_err()
        );
    }

    #[test]
    fn the_caller_is_identified_from_proc() {
        let me = Caller::identify(Credentials {
            uid: own_uid(),
            pid: Some(i32::try_from(std::process::id()).unwrap()),
        });
        assert_eq!(me.exe, std::env::current_exe().ok());
        // The test binary is the "same executable", so the parent is named.
        assert!(me.parent_exe.is_some());
        assert_eq!(
            me.program(),
            me.parent_exe.as_ref().unwrap().display().to_string()
        );
    }
}
