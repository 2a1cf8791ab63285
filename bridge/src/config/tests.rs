//! Unit tests of the configuration.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn defaults_validate() {
    let s = Config::load(None, env(&[])).unwrap().validate().unwrap();
    assert_eq!(s.issuer, "http://localhost:8080");
    assert_eq!(s.db_kind, DbKind::Sqlite);
    assert!(s.database_url.ends_with("bridge.db?mode=rwc"));
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
