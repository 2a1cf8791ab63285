//! The bridge's own secrets on disk: the master key and the p2p identity
//! key. Each is created on first start in a file only the bridge's user can
//! read (mode 0600), and read back afterwards.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::jose::MasterKey;

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
    let raw = Zeroizing::new(STANDARD.decode(text).context("not base64")?);
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
            *decode(inline.trim()).context("master_key")?,
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
        let seed = Zeroizing::new(crate::util::random_bytes::<32>());
        write_new_key(path, &seed)?;
        seed
    };
    let mut bytes = *seed;
    cyrcles_p2p::Keypair::ed25519_from_bytes(&mut bytes).context("invalid p2p key")
}
