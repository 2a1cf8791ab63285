//! The socket serves only its own user; damaged keystores fail clearly;
//! no secret appears in the clear on disk or in the log.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use base64::Engine;
use cyrcles_agent::home::Home;
use cyrcles_agent::keystore::{Keystore, SecretKind};
use cyrcles_core::EgoId;

use crate::common::BIN;
use cyrcles_testkit::{Agent, Output, TempDir, bounded, wait_until};

/// Every file below `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}

/// Asserts that none of `secrets` appears, raw, in hex or in base64, in
/// any file under `home` or in `log`.
pub fn assert_absent(home: &Path, log: &Path, secrets: &[Vec<u8>]) {
    let mut places = files(home);
    places.push(log.to_path_buf());
    assert!(places.len() >= 3, "nothing to scan: {places:?}");
    for secret in secrets {
        let forms: Vec<Vec<u8>> = vec![
            secret.clone(),
            hex::encode(secret).into_bytes(),
            hex::encode_upper(secret).into_bytes(),
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(secret)
                .into_bytes(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(secret)
                .into_bytes(),
        ];
        for place in &places {
            let bytes = std::fs::read(place).unwrap_or_default();
            for form in &forms {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                    "a secret appears in {}",
                    place.display()
                );
            }
        }
    }
}

/// Every secret of every ego, read through the keystore with its key file.
async fn secrets_of(home: &Path) -> Vec<Vec<u8>> {
    let home = Home::at(home);
    let ks = Keystore::open(&home).await.unwrap();
    let key = ks.unlock(&home, None).await.unwrap();
    let mut out = Vec::new();
    for row in ks.egos().await.unwrap() {
        for kind in ks.secret_kinds(&row.ego_id).await.unwrap() {
            out.push(ks.secret(&key, &row.ego_id, kind).await.unwrap().to_vec());
        }
    }
    ks.close().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_in_the_clear_under_the_home_or_in_the_log() {
    let mut agent = Agent::builder(BIN).start().await;
    agent.create::<cyrcles_core::EgoId>("gaming").await;
    agent.create::<cyrcles_core::EgoId>("work").await;
    let mut secrets = secrets_of(&agent.home).await;
    // Two egos, four secrets each (root, circle, ego, device).
    assert_eq!(secrets.len(), 8);
    agent.json(&["ego", "rotate", "gaming"]).await;
    agent.json(&["ego", "show", "gaming"]).await;
    secrets.extend(secrets_of(&agent.home).await);
    agent.stop().await;
    assert_absent(&agent.home, &agent.log, &secrets);
    // The files that hold anything are private.
    for f in ["agent.db", "agent.key"] {
        let mode = std::fs::metadata(agent.home.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} has mode {mode:o}");
    }
    let mode = std::fs::metadata(&agent.home).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

async fn daemon_exits(home: &Path) -> Output {
    bounded(
        30,
        "the daemon to give up",
        cyrcles_testkit::agent::command(BIN, home, ["daemon", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .output(),
    )
    .await
    .unwrap()
    .into()
}

/// A stopped agent with one ego; returns it and a copy of its keystore.
async fn stopped_agent() -> (Agent, Vec<u8>, Vec<u8>) {
    let mut agent = Agent::builder(BIN).start().await;
    agent.create::<cyrcles_core::EgoId>("gaming").await;
    agent.stop().await;
    let db = std::fs::read(agent.home.join("agent.db")).unwrap();
    let key = std::fs::read(agent.home.join("agent.key")).unwrap();
    (agent, db, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_keystores_give_clear_errors() {
    let (mut agent, db, key) = stopped_agent().await;
    let db_path = agent.home.join("agent.db");
    let key_path = agent.home.join("agent.key");
    let damaged = |out: &Output, what: &str| {
        assert_eq!(out.code, 7, "{what}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
    };
    // Truncated to half.
    std::fs::write(&db_path, &db[..db.len() / 2]).unwrap();
    let out = daemon_exits(&agent.home).await;
    damaged(&out, "truncated");
    assert!(out.stderr.contains("damaged"), "{}", out.stderr);
    // Overwritten with garbage.
    std::fs::write(&db_path, vec![0x5a; 8192]).unwrap();
    let out = daemon_exits(&agent.home).await;
    damaged(&out, "garbage");
    assert!(out.stderr.contains("damaged"), "{}", out.stderr);
    // An empty file.
    std::fs::write(&db_path, b"").unwrap();
    let out = daemon_exits(&agent.home).await;
    damaged(&out, "empty");
    assert!(out.stderr.contains("no keystore"), "{}", out.stderr);
    // None of this wrote to the file it found.
    assert!(std::fs::read(&db_path).unwrap().is_empty());
    // The keystore intact, the key file cut short, or another key.
    std::fs::write(&db_path, &db).unwrap();
    std::fs::write(&key_path, &key[..10]).unwrap();
    let out = daemon_exits(&agent.home).await;
    damaged(&out, "short key file");
    assert!(
        out.stderr.contains("key file") && out.stderr.contains("10 bytes"),
        "{}",
        out.stderr
    );
    std::fs::write(&key_path, [7u8; 32]).unwrap();
    let out = daemon_exits(&agent.home).await;
    damaged(&out, "wrong key file");
    assert!(out.stderr.contains("does not open"), "{}", out.stderr);
    // A key file others can read is refused.
    std::fs::write(&key_path, &key).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = daemon_exits(&agent.home).await;
    damaged(&out, "readable key file");
    assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Restored: everything is there again.
    agent.spawn(None, &[]).await;
    assert_eq!(
        agent.json(&["ego", "show", "gaming"]).await["state"],
        "active"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_secret_marks_its_ego_and_spares_the_others() {
    let mut agent = Agent::builder(BIN).start().await;
    let gaming: EgoId = agent.create("gaming").await;
    agent.create::<cyrcles_core::EgoId>("work").await;
    agent.stop().await;
    // Flip one byte of the sealed ego key of "gaming".
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", agent.home.join("agent.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let sealed: Vec<u8> =
            sqlx::query_scalar("SELECT sealed FROM secrets WHERE ego_id = $1 AND kind = 'ego'")
                .bind(gaming.to_string())
                .fetch_one(&mut c)
                .await
                .unwrap();
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        sqlx::query("UPDATE secrets SET sealed = $1 WHERE ego_id = $2 AND kind = 'ego'")
            .bind(bad)
            .bind(gaming.to_string())
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    agent.spawn(None, &[]).await;
    let v = agent.json(&["ego", "show", "gaming"]).await;
    assert_eq!(v["state"], "damaged");
    assert!(
        v["damage"].as_str().unwrap().contains("does not open"),
        "{v}"
    );
    let out = agent.cli(&["ego", "rotate", "gaming"]).await;
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(
        agent.json(&["ego", "show", "work"]).await["state"],
        "active"
    );
    agent.json(&["ego", "rotate", "work"]).await;
    assert!(!agent.log_text().contains("panicked"));
    let _ = SecretKind::Ego;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_refuses_other_users() {
    let agent = Agent::builder(BIN).start().await;
    // Its own user is served.
    assert_eq!(agent.cli(&["status"]).await.code, 0);
    let socket = agent.home.join("agent.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    if cyrcles_agent::control::peer::own_uid() != 0 {
        eprintln!("not root: the cross-user part of this test needs root to run as another uid");
        return;
    }
    // Open the file permissions, so that only the daemon's own check
    // stands between another user and the agent.
    std::fs::set_permissions(&agent.home, std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let dir = TempDir::new("cyt");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("cyrcles");
    std::fs::copy(BIN, &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    for args in [
        &["status"][..],
        &["--json", "requests"],
        &["ego", "create", "x"],
    ] {
        let out = std::process::Command::new(&exe)
            .arg("--home")
            .arg(&agent.home)
            .args(args)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(9), "{args:?}: {out:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("serves only uid 0"), "{text}");
    }
    // Nothing was created, and the refusal is in the log.
    assert!(
        agent.json(&["ego", "list"]).await["egos"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    wait_until(5, "the log line", || async {
        agent.log_text().contains("uid=65534")
    })
    .await;
}
