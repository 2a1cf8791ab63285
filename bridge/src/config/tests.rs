//! Unit tests of the configuration.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_local_issuer_on_port_0_takes_the_bound_port() {
    let load = |issuer: &str| {
        Config::load(None, env(&[("CYRCLES_BRIDGE_ISSUER", issuer)]))
            .unwrap()
            .validate()
            .unwrap()
    };
    let mut s = load("http://127.0.0.1:0");
    s.take_bound_port(4321);
    assert_eq!(s.issuer, "http://127.0.0.1:4321");
    assert_eq!(s.issuer_url.port(), Some(4321));
    let mut s = load("http://localhost:0/oidc");
    s.take_bound_port(4321);
    assert_eq!(s.issuer, "http://localhost:4321/oidc");
    // Any other issuer is what the operator wrote.
    for issuer in ["http://localhost:8080", "https://id.example"] {
        let mut s = load(issuer);
        s.take_bound_port(4321);
        assert_eq!(s.issuer, issuer);
    }
}

#[test]
fn defaults_validate() {
    let s = Config::load(None, env(&[])).unwrap().validate().unwrap();
    assert_eq!(s.issuer, "http://localhost:8080");
    assert_eq!(s.db_kind, DbKind::Sqlite);
    assert!(s.database_url.expose().ends_with("bridge.db?mode=rwc"));
}

#[test]
fn env_overrides_every_kind_of_key() {
    let c = Config::load(
        None,
        env(&[
            ("CYRCLES_BRIDGE_ISSUER", "https://id.example"),
            ("CYRCLES_BRIDGE_HTTP_LISTEN", "0.0.0.0:9000"),
            ("CYRCLES_BRIDGE_OIDC_CODE_TTL_SECS", "30"),
            ("CYRCLES_BRIDGE_OIDC_DYNAMIC_REGISTRATION", "false"),
            (
                "CYRCLES_BRIDGE_P2P_BOOTSTRAP",
                "/ip4/1.2.3.4/tcp/4001, /ip4/5.6.7.8/tcp/4001",
            ),
            ("CYRCLES_BRIDGE_LOG", "debug"),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(c.issuer, "https://id.example");
    assert_eq!(c.http.listen, "0.0.0.0:9000");
    assert_eq!(c.oidc.code_ttl_secs, 30);
    assert!(!c.oidc.dynamic_registration);
    assert_eq!(c.p2p.bootstrap.len(), 2);
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    let e = Config::load(None, env(&[("CYRCLES_BRIDGE_NOPE", "1")])).unwrap_err();
    assert!(matches!(e, ConfigError::Env { .. }));
    let e = Config::load(None, env(&[("CYRCLES_BRIDGE_OIDC_CODE_TTL_SECS", "soon")])).unwrap_err();
    assert!(matches!(e, ConfigError::Env { .. }));
    let dir = std::env::temp_dir().join(format!("cyrcles-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "issuer = \"https://a.example\"\n[http]\nlisten_on = \"x\"\n",
    )
    .unwrap();
    assert!(matches!(
        Config::load(Some(&path), env(&[])),
        Err(ConfigError::Parse(_))
    ));
    std::fs::write(&path, "issuer = \"http://example.com\"\n").unwrap();
    let c = Config::load(Some(&path), env(&[])).unwrap();
    assert!(matches!(
        c.validate(),
        Err(ConfigError::Invalid { key: "issuer", .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_example_file_parses_to_the_defaults_and_documents_every_key() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/bridge.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let from_file = Config::load(Some(&path), env(&[])).unwrap();
    assert_eq!(
        serde_json::to_value(&from_file).unwrap(),
        serde_json::to_value(Config::default()).unwrap(),
        "the example must show the defaults"
    );
    for (key, var) in Config::keys() {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            text.contains(&format!("\n{leaf} = ")),
            "{key} is not in the example"
        );
        assert!(text.contains(&var), "{var} is not in the example");
    }
}

#[test]
fn every_key_has_a_variable() {
    let keys = Config::keys();
    assert!(
        keys.iter()
            .any(|(k, v)| k == "oidc.code_ttl_secs" && v == "CYRCLES_BRIDGE_OIDC_CODE_TTL_SECS")
    );
    assert!(
        keys.iter()
            .any(|(k, v)| k == "issuer" && v == "CYRCLES_BRIDGE_ISSUER")
    );
}

/// A master key known to the test: 32 distinct bytes, and its base64.
fn known_master_key() -> ([u8; 32], String) {
    use base64::Engine;
    let key: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7 + 3).unwrap());
    let text = base64::engine::general_purpose::STANDARD.encode(key);
    (key, text)
}

/// What a secret must not be found as in `text`.
fn assert_no_secret(text: &str, key: &[u8; 32]) {
    assert!(
        !text.contains("hunter2"),
        "the database password in: {text}"
    );
    assert!(
        !crate::secrets::tests::leaks(text, key),
        "the master key in: {text}"
    );
}

#[test]
fn debug_and_config_show_never_print_a_secret() {
    let (key, key_b64) = known_master_key();
    let c = Config::load(
        None,
        env(&[
            ("CYRCLES_BRIDGE_MASTER_KEY", &key_b64),
            ("CYRCLES_BRIDGE_DATABASE_URL", "postgres://u:hunter2@h/db"),
        ]),
    )
    .unwrap();
    // Loaded as given: the secrets still work.
    assert_eq!(c.master_key.expose(), &key_b64);
    assert_eq!(c.database_url.expose(), "postgres://u:hunter2@h/db");
    let shown = c.show().unwrap();
    let s = c.clone().validate().unwrap();
    assert_eq!(s.db_kind, DbKind::Postgres);
    assert_eq!(s.database_url.expose(), "postgres://u:hunter2@h/db");
    let master = crate::secrets::master_key(&s).unwrap();
    assert_eq!(*master.to_bytes(), key);
    for text in [
        format!("{c:?}"),
        format!("{c:#?}"),
        shown.clone(),
        format!("{s:?}"),
        format!("{s:#?}"),
        format!("{:?}", s.master_key_inline),
        format!("{} {}", s.database_url, c.master_key),
    ] {
        assert_no_secret(&text, &key);
    }
    // An operator still sees which database, and that a key is set.
    assert!(
        shown.contains("postgres://u:") && shown.contains("@h/db"),
        "{shown}"
    );
    let v: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["database_url"], "postgres://u:[redacted]@h/db");
    assert_eq!(v["master_key"], "[redacted]");
    assert!(format!("{c:?}").contains("postgres://u:[redacted]@h/db"));
    // SQLite paths are shown as they are; an unset key is empty.
    let sqlite = "sqlite:///var/lib/cyrcles/bridge.db?mode=rwc";
    let c = Config::load(None, env(&[("CYRCLES_BRIDGE_DATABASE_URL", sqlite)])).unwrap();
    let v: Value = serde_json::from_str(&c.show().unwrap()).unwrap();
    assert_eq!(v["database_url"], sqlite);
    assert_eq!(v["master_key"], "");
}

#[test]
fn secrets_from_the_file_and_its_syntax_errors_are_not_printed() {
    let (key, key_b64) = known_master_key();
    let dir = std::env::temp_dir().join(format!("cyrcles-config-{}", crate::random::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bridge.toml");
    std::fs::write(
        &path,
        format!("master_key = \"{key_b64}\"\ndatabase_url = \"postgres://u:hunter2@h/db\"\n"),
    )
    .unwrap();
    let c = Config::load(Some(&path), env(&[])).unwrap();
    assert_eq!(c.database_url.expose(), "postgres://u:hunter2@h/db");
    assert_eq!(c.master_key.expose(), &key_b64);
    assert_no_secret(&format!("{c:?}"), &key);
    assert_no_secret(&c.show().unwrap(), &key);
    // A broken line holding a secret: the error says where, not what.
    for broken in [
        format!("issuer = \"https://id.example\"\nmaster_key = \"{key_b64}\nx = 1\n"),
        "issuer = \"https://id.example\"\ndatabase_url = \"postgres://u:hunter2@h/db\" x\n".into(),
    ] {
        std::fs::write(&path, broken).unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(matches!(e, ConfigError::Parse(_)), "{e}");
        let e = e.to_string();
        assert!(e.contains("at line 2, column "), "{e}");
        assert_no_secret(&e, &key);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
