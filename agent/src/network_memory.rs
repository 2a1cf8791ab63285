//! The network an agent joined, remembered in `HOME/bootstrap` (issue 16:
//! "an agent that keeps its network"). `cyrcles daemon --bootstrap ADDR`
//! saves the addresses once they are valid; a later `cyrcles daemon`
//! without `--bootstrap` and without `network.bootstrap` in `config.toml`
//! joins through them, so the advice "start it with `cyrcles daemon`"
//! works after a stop or a reboot.
//!
//! The file is one multiaddr per line, written by the agent (mode 0600,
//! replaced atomically). What it holds is checked like `network.bootstrap`
//! when the daemon starts; a file that is not a short list of lines is
//! refused with a message that says how to fix it, never half-used.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use thiserror::Error;

use crate::home::Home;

/// Addresses remembered at most.
pub const MAX_REMEMBERED: usize = 32;
/// Longest file read.
const MAX_FILE_LEN: u64 = 32 * 1024;

/// Why the remembered network cannot be used or saved.
#[derive(Debug, Error)]
pub enum NetworkMemoryError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Not a list of addresses this agent wrote.
    #[error(
        "{path} is not a list of bootstrap addresses ({why}); delete it and start the agent once \
         with `cyrcles daemon --bootstrap ADDR`"
    )]
    Damaged { path: PathBuf, why: String },
}

fn path(home: &Home) -> PathBuf {
    home.dir().join("bootstrap")
}

/// The remembered addresses; empty when nothing was remembered.
pub fn remembered(home: &Home) -> Result<Vec<String>, NetworkMemoryError> {
    let path = path(home);
    let io = |source| NetworkMemoryError::Io {
        path: path.clone(),
        source,
    };
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let damaged = |why: String| NetworkMemoryError::Damaged {
        path: path.clone(),
        why,
    };
    if len > MAX_FILE_LEN {
        return Err(damaged(format!("{len} bytes")));
    }
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => damaged("not UTF-8".into()),
        _ => io(e),
    })?;
    let addrs: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if addrs.len() > MAX_REMEMBERED {
        return Err(damaged(format!("{} lines", addrs.len())));
    }
    Ok(addrs)
}

/// Saves `addrs` (already checked by the caller) in place of what was
/// remembered.
pub fn remember(home: &Home, addrs: &[String]) -> Result<(), NetworkMemoryError> {
    let path = path(home);
    let tmp = home.dir().join("bootstrap.tmp");
    let io = |source| NetworkMemoryError::Io {
        path: path.clone(),
        source,
    };
    let mut text = String::new();
    for a in addrs.iter().take(MAX_REMEMBERED) {
        text.push_str(a.trim());
        text.push('\n');
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (cyrcles_testkit::TempDir, Home) {
        let dir = cyrcles_testkit::TempDir::new("cynet");
        let home = Home::at(dir.path().join("h"));
        home.ensure().unwrap();
        (dir, home)
    }

    #[test]
    fn addresses_are_remembered_replaced_and_read_back() {
        let (_dir, home) = home();
        assert!(remembered(&home).unwrap().is_empty());
        let one = vec!["/ip4/127.0.0.1/tcp/1/p2p/a".to_string()];
        remember(&home, &one).unwrap();
        assert_eq!(remembered(&home).unwrap(), one);
        let two = vec![
            "/dns4/b.example/tcp/2/p2p/b".to_string(),
            " /ip6/::1/tcp/3/p2p/c ".into(),
        ];
        remember(&home, &two).unwrap();
        assert_eq!(
            remembered(&home).unwrap(),
            ["/dns4/b.example/tcp/2/p2p/b", "/ip6/::1/tcp/3/p2p/c"]
        );
        let mode = fs::metadata(path(&home)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// Someone (or a disk error) left junk in the file: the daemon says
    /// what is wrong and how to fix it, and uses none of it.
    #[test]
    fn a_damaged_file_is_refused_with_the_fix() {
        let (_dir, home) = home();
        fs::write(path(&home), vec![0xff, 0xfe, 0x00]).unwrap();
        let e = remembered(&home).unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && e.contains("--bootstrap"), "{e}");
        fs::write(path(&home), "/a\n".repeat(MAX_REMEMBERED + 1)).unwrap();
        let e = remembered(&home).unwrap_err().to_string();
        assert!(e.contains("33 lines"), "{e}");
        fs::write(path(&home), vec![b'a'; 40 * 1024]).unwrap();
        assert!(remembered(&home).is_err());
    }
}
