//! The bridge's own secrets: [`Secret`], the type configuration secrets
//! are held in, and the keys on disk, the master key and the p2p identity
//! key. Each key is created on first start in a file only the bridge's user
//! can read (mode 0600), and read back afterwards.
//!
//! Invariant: a [`Secret`] is never printed. `Debug` and `Display` show
//! [`REDACTED`], serializing writes [`REDACTED`], and the value is zeroized
//! on drop; code reads it only through [`Secret::expose`].

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

use crate::config::Settings;
use crate::jose::MasterKey;

/// What is printed in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// A secret value (the master key, a database URL with its password): its
/// `Debug` and `Display` print [`REDACTED`], it is zeroized on drop, and it
/// is read only through [`Secret::expose`].
///
/// It deserializes as the bare value, so a TOML file or a
/// `CYRCLES_BRIDGE_*` variable sets it as before. `Secret<String>`
/// serializes as [`REDACTED`] (as `""` when empty, so that `config show`
/// tells a set key from an unset one): serializing a configuration never
/// writes a secret out, and reading that output back does not restore it.
#[derive(Clone, Default)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself: the one way to read it. Do not log what it
    /// returns.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> zeroize::ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

impl Serialize for Secret<String> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { REDACTED })
    }
}

fn read_key(path: &Path) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(file = %path.display(), "key file is readable by other users; run chmod 600 on it");
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    decode(text.trim())
        .with_context(|| format!("{} does not hold a base64 32-byte key", path.display()))
}

fn decode(text: &str) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    // Not the decoder's error: it quotes the offending character.
    let raw = Zeroizing::new(
        STANDARD
            .decode(text)
            .map_err(|_| anyhow::anyhow!("not base64"))?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    if raw.len() != 32 {
        bail!("expected 32 bytes, found {}", raw.len());
    }
    out.copy_from_slice(&raw);
    Ok(out)
}

fn write_new_key(path: &Path, key: &[u8; 32]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let text = Zeroizing::new(STANDARD.encode(key));
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

/// The master key: `CYRCLES_BRIDGE_MASTER_KEY` / `master_key` (base64), or
/// the key file, created on first start. Every instance of a deployment
/// must use the same key.
pub fn master_key(s: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(inline) = &s.master_key_inline {
        return Ok(MasterKey::from_bytes(
            *decode(inline.expose().trim()).context("master_key")?,
        ));
    }
    let path = &s.master_key_file;
    if path.exists() {
        return Ok(MasterKey::from_bytes(*read_key(path)?));
    }
    let key = MasterKey::generate()
        .map_err(|e| anyhow::anyhow!("cannot generate the master key: {e}"))?;
    write_new_key(path, &key.to_bytes())?;
    tracing::info!(file = %path.display(), "created a new master key; back it up");
    Ok(key)
}

/// The p2p identity (an Ed25519 key), kept across restarts so the
/// bridge's multiaddr stays the same.
pub fn p2p_key(s: &Settings) -> anyhow::Result<cyrcles_p2p::Keypair> {
    let path = &s.p2p_key_file;
    let seed = if path.exists() {
        read_key(path)?
    } else {
        let seed = Zeroizing::new(crate::random::random_bytes::<32>());
        write_new_key(path, &seed)?;
        seed
    };
    let mut bytes = *seed;
    cyrcles_p2p::Keypair::ed25519_from_bytes(&mut bytes).context("invalid p2p key")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Whether `secret` is in `text`: any 8-byte window of it as raw bytes,
    /// hex or a byte list, or all of it as base64 or base64url.
    pub(crate) fn leaks(text: &str, secret: &[u8]) -> bool {
        let std_b64 = STANDARD.encode(secret);
        let url_b64 = crate::base64url::encode(secret);
        let lower = text.to_lowercase();
        let window = |w: &[u8]| {
            let hex: String = w.iter().map(|b| format!("{b:02x}")).collect();
            let list = format!("{w:?}");
            lower.contains(&hex)
                || text.contains(&list[1..list.len() - 1])
                || text.as_bytes().windows(w.len()).any(|t| t == w)
        };
        secret.windows(8).any(window) || text.contains(&url_b64) || text.contains(&std_b64)
    }

    #[test]
    fn a_secret_prints_and_serializes_redacted_and_deserializes_bare() {
        let s: Secret<String> = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(s.expose(), "hunter2");
        for shown in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{s}"),
            serde_json::to_string(&s).unwrap(),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
        }
        let unset = Secret::new(String::new());
        assert_eq!(serde_json::to_string(&unset).unwrap(), "\"\"");
    }
}
