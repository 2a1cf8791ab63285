//! The `cyrcles-bridge` binary: client and key management, configuration,
//! and `serve` starting with nothing but a data directory and free ports.

use std::process::Command;

use cyrcles_testkit::{Printed, TempDir, bounded, wait_until};
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cyrcles-bridge"))
}

fn temp() -> TempDir {
    TempDir::new("cyrcles-cli")
}

fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = bin()
        .args(args)
        .env("CYRCLES_BRIDGE_DATA_DIR", dir)
        .env("CYRCLES_BRIDGE_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `cyrcles-bridge config show | head -1`: standard output is a pipe
/// nobody reads any more. The program ends quietly with status 0, where
/// `println!` panicked ("failed printing to stdout") with a stack trace.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let tmp = temp();
    let (reader, writer) = std::io::pipe().unwrap();
    // The reader is gone before the program writes its first byte.
    drop(reader);
    let out = bin()
        .args(["config", "show"])
        .env("CYRCLES_BRIDGE_DATA_DIR", tmp.path())
        .env("CYRCLES_BRIDGE_LOG", "warn")
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn client_keys_and_config_commands() {
    let tmp = temp();
    let dir = tmp.path();
    let (ok, out, err) = run(
        dir,
        &[
            "client",
            "add",
            "--name",
            "Shop",
            "--redirect-uri",
            "https://shop.example/cb",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let id = v["client_id"].as_str().unwrap().to_string();
    assert!(v["client_secret"].as_str().unwrap().len() >= 43);
    let (ok, out, _) = run(
        dir,
        &[
            "client",
            "add",
            "--name",
            "App",
            "--redirect-uri",
            "com.example.app:/cb",
            "--public",
            "--json",
        ],
    );
    assert!(ok);
    let public: Value = serde_json::from_str(&out).unwrap();
    assert!(
        public["client_secret"].is_null(),
        "public clients have no secret"
    );
    let (ok, out, _) = run(dir, &["client", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // Bad input is refused with a clear message and a failure status.
    let (ok, _, err) = run(
        dir,
        &[
            "client",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
    );
    assert!(!ok);
    assert!(err.contains("invalid_redirect_uri"), "{err}");
    let (ok, out, _) = run(dir, &["client", "remove", &id]);
    assert!(ok && out.contains("removed"));
    let (ok, _, err) = run(dir, &["client", "remove", &id]);
    assert!(!ok && err.contains("no client"));
    // Keys: three active, then rotation keeps the old ones published.
    let (ok, out, _) = run(dir, &["keys", "list", "--json"]);
    assert!(ok);
    let before: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(before.as_array().unwrap().len(), 3);
    // Staged: three new keys published beside the three that still sign.
    let (ok, out, err) = run(dir, &["keys", "rotate"]);
    assert!(ok, "{err}");
    assert!(out.contains("in 10 minutes"), "{out}");
    let (_, out, _) = run(dir, &["keys", "list", "--json"]);
    let after: Value = serde_json::from_str(&out).unwrap();
    let after = after.as_array().unwrap();
    assert_eq!(after.len(), 6);
    assert_eq!(
        after.iter().filter(|k| k["retired_at"].is_null()).count(),
        6
    );
    // At once (a leaked key): the others are retired now, still published.
    let (ok, _, err) = run(dir, &["keys", "rotate", "--now"]);
    assert!(ok, "{err}");
    let (_, out, _) = run(dir, &["keys", "list", "--json"]);
    let after: Value = serde_json::from_str(&out).unwrap();
    let after = after.as_array().unwrap();
    assert_eq!(after.len(), 9);
    assert_eq!(
        after.iter().filter(|k| k["retired_at"].is_null()).count(),
        3
    );
    // Configuration.
    let (ok, out, _) = run(dir, &["config", "keys"]);
    assert!(ok && out.contains("CYRCLES_BRIDGE_OIDC_CODE_TTL_SECS"));
    let out = bin()
        .args(["config", "show"])
        .env("CYRCLES_BRIDGE_NOT_A_KEY", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CYRCLES_BRIDGE_NOT_A_KEY"));
    let (ok, out, _) = run(dir, &["migrate"]);
    assert!(ok && out.contains("up to date"));
}

/// The master key, in base64 and hex, and a database password: none of them
/// may be in `text`.
fn assert_no_secret(text: &str, key_b64: &str, key_hex: &str) {
    assert!(
        !text.contains("hunter2"),
        "the database password in: {text}"
    );
    assert!(!text.contains(key_b64), "the master key in: {text}");
    assert!(
        !text.to_lowercase().contains(key_hex),
        "the master key in: {text}"
    );
}

#[test]
fn config_show_and_errors_never_print_a_secret() {
    use base64::Engine;
    let tmp = temp();
    let dir = tmp.path();
    let key: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7 + 3).unwrap());
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(key);
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let with_secrets = |args: &[&str], url: &str| {
        let out = bin()
            .args(args)
            .env("CYRCLES_BRIDGE_DATA_DIR", dir)
            .env("CYRCLES_BRIDGE_LOG", "trace")
            .env("CYRCLES_BRIDGE_MASTER_KEY", &key_b64)
            .env("CYRCLES_BRIDGE_DATABASE_URL", url)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = with_secrets(&["config", "show"], "postgres://u:hunter2@h/db");
    assert!(ok, "{err}");
    assert_no_secret(&out, &key_b64, &key_hex);
    assert_no_secret(&err, &key_b64, &key_hex);
    // The operator still sees which database, and that a key is set.
    assert!(
        out.contains("postgres://u:") && out.contains("@h/db"),
        "{out}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["database_url"], "postgres://u:[redacted]@h/db");
    assert_eq!(v["master_key"], "[redacted]");
    // A refused URL is refused without being quoted.
    let (ok, out, err) = with_secrets(&["migrate"], "mysql://u:hunter2@h/db");
    assert!(!ok && err.contains("database_url"), "{err}");
    assert_no_secret(&out, &key_b64, &key_hex);
    assert_no_secret(&err, &key_b64, &key_hex);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_on_defaults_and_stops_on_sigterm() {
    let dir = TempDir::new("cyrcles-cli");
    // Port 0: the bridge binds a free port and says which.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cyrcles-bridge"))
        .arg("serve")
        .env("CYRCLES_BRIDGE_DATA_DIR", dir.path())
        .env("CYRCLES_BRIDGE_HTTP_LISTEN", "127.0.0.1:0")
        .env("CYRCLES_BRIDGE_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0")
        .env("CYRCLES_BRIDGE_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let printed = Printed::watch(
        child.stderr.take().unwrap(),
        dir.join("serve.log"),
        &["listening on "],
    );
    let addr: std::net::SocketAddr = printed
        .after("listening on ", "the `listening on` line")
        .await
        .parse()
        .unwrap();
    wait_until(20, "the bridge to become healthy", || async {
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(
        dir.join("master.key").exists()
            && dir.join("bridge.db").exists()
            && dir.join("p2p.key").exists()
    );
    // Graceful shutdown on SIGTERM.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().unwrap().to_string())
        .status();
    let status = bounded(10, "the bridge to stop on SIGTERM", child.wait())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    // The process has exited: its output is all in the log.
    printed.ended(10).await;
    let err = printed.log_text();
    assert!(
        err.contains("DHT bootstrap address for agents: /ip4/127.0.0.1/tcp/"),
        "{err}"
    );
}
