//! The deploy files, checked without a container engine or systemd:
//! docker-compose.yml, the Dockerfile and deploy/cyrcles-bridge.service.
//! Each check returns the problems it finds, so a broken file fails with
//! its reasons; the checks also run on broken and unrelated input, to show
//! that they catch mistakes and never panic.

use std::collections::BTreeSet;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

/// Variables the bridge reads that are not configuration keys (the log
/// filter and the configuration file; `ENV_NOT_KEYS` in src/config.rs).
const NOT_KEYS: [&str; 2] = ["CYRCLES_BRIDGE_CONFIG", "CYRCLES_BRIDGE_LOG"];

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every configuration variable: the `# CYRCLES_BRIDGE_*` lines of
/// deploy/bridge.example.toml (a test in src/config.rs keeps that file in
/// step with the code).
fn config_vars(example: &str) -> BTreeSet<String> {
    example
        .lines()
        .filter_map(|line| {
            let name = line.trim().strip_prefix('#')?.trim();
            let is_var = name.starts_with("CYRCLES_BRIDGE_")
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            is_var.then(|| name.to_string())
        })
        .collect()
}

fn known_var(name: &str, vars: &BTreeSet<String>) -> bool {
    !name.starts_with("CYRCLES_BRIDGE_") || vars.contains(name) || NOT_KEYS.contains(&name)
}

// ---- docker-compose.yml ----------------------------------------------------

/// A scalar as text (YAML reads `8080` as a number and `true` as a bool).
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A command: a list, or a string split at spaces.
fn words(y: &Yaml) -> Vec<String> {
    match y.as_vec() {
        Some(list) => list.iter().filter_map(scalar).collect(),
        None => scalar(y)
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

/// The value of `--name VALUE` or `--name=VALUE` in a command.
fn option_value(words: &[String], name: &str) -> Option<String> {
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == name {
            return it.next().cloned();
        }
        if let Some(v) = w.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_string());
        }
    }
    None
}

/// A service's environment, as a mapping or as a list of `KEY=VALUE`.
fn environment(service: &Yaml) -> Vec<(String, Option<String>)> {
    let env = &service["environment"];
    if let Some(map) = env.as_hash() {
        map.iter()
            .filter_map(|(k, v)| Some((scalar(k)?, scalar(v))))
            .collect()
    } else if let Some(list) = env.as_vec() {
        list.iter()
            .filter_map(scalar)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (item, None),
            })
            .collect()
    } else {
        Vec::new()
    }
}

fn env_value(service: &Yaml, name: &str) -> Option<String> {
    environment(service)
        .into_iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v)
}

/// `8080` or `8000-8010`.
fn port_range(text: &str) -> Vec<u16> {
    match text.split_once('-') {
        Some((a, b)) => match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            (Ok(a), Ok(b)) if a <= b => (a..=b).collect(),
            _ => Vec::new(),
        },
        None => text.trim().parse().into_iter().collect(),
    }
}

/// The host ports a service publishes: `[IP:]HOST:CONTAINER[/PROTO]`, or
/// the long syntax with `published`. A bare container port publishes on a
/// random host port, which is not counted.
fn published_ports(service: &Yaml) -> Vec<u16> {
    let mut out = Vec::new();
    for p in service["ports"].as_vec().into_iter().flatten() {
        let host = if p.is_hash() {
            scalar(&p["published"])
        } else {
            scalar(p).and_then(|s| {
                let spec = s.split('/').next().unwrap_or_default();
                let mut parts = spec.rsplitn(3, ':');
                let _container = parts.next();
                parts.next().map(str::to_string)
            })
        };
        if let Some(h) = host {
            out.extend(port_range(&h));
        }
    }
    out
}

/// The named volumes a service mounts (not bind mounts of host paths).
fn named_volumes(service: &Yaml) -> Vec<String> {
    service["volumes"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if v.is_hash() {
                let kind = scalar(&v["type"]).unwrap_or_else(|| "volume".into());
                if kind == "volume" {
                    scalar(&v["source"])
                } else {
                    None
                }
            } else {
                let text = scalar(v)?;
                let (source, _) = text.split_once(':')?;
                let is_path = source.is_empty() || source.starts_with(['/', '.', '~', '$']);
                (!is_path).then(|| source.to_string())
            }
        })
        .collect()
}

fn builds_from_root(service: &Yaml) -> bool {
    let build = &service["build"];
    let context = scalar(build).or_else(|| scalar(&build["context"]));
    matches!(context.as_deref(), Some(".") | Some("./"))
}

fn has_healthcheck(service: &Yaml) -> bool {
    let check = &service["healthcheck"];
    if check["disable"].as_bool() == Some(true) {
        return false;
    }
    let test = words(&check["test"]);
    match test.first().map(String::as_str) {
        None | Some("NONE") => false,
        Some("CMD") | Some("CMD-SHELL") => test.len() > 1,
        Some(_) => true,
    }
}

fn check_compose(text: &str, vars: &BTreeSet<String>) -> Vec<String> {
    let docs = match YamlLoader::load_from_str(text) {
        Ok(docs) => docs,
        Err(e) => return vec![format!("not YAML: {e}")],
    };
    let Some(doc) = docs.first() else {
        return vec!["no YAML document".into()];
    };
    let mut problems = Vec::new();
    if !doc["version"].is_badvalue() {
        problems.push("the compose specification has no `version` key".to_string());
    }
    let services = &doc["services"];
    for name in ["postgres", "bridge", "demo"] {
        if !services[name].is_hash() {
            problems.push(format!("no service {name}"));
        }
    }
    for name in ["bridge", "demo"] {
        if !builds_from_root(&services[name]) {
            problems.push(format!("{name} does not build from `.`"));
        }
    }
    let condition = scalar(&services["bridge"]["depends_on"]["postgres"]["condition"]);
    if condition.as_deref() != Some("service_healthy") {
        problems.push("bridge does not wait for postgres to be service_healthy".into());
    }
    if !has_healthcheck(&services["postgres"]) {
        problems.push("postgres has no healthcheck".into());
    }

    let declared: BTreeSet<String> = doc["volumes"]
        .as_hash()
        .map(|h| h.keys().filter_map(scalar).collect())
        .unwrap_or_default();
    let mut ports = BTreeSet::new();
    for (name, service) in services.as_hash().into_iter().flatten() {
        let name = scalar(name).unwrap_or_default();
        for (var, _) in environment(service) {
            if !known_var(&var, vars) {
                problems.push(format!(
                    "{name}: {var} is not a bridge configuration variable"
                ));
            }
        }
        ports.extend(published_ports(service));
        for volume in named_volumes(service) {
            if !declared.contains(&volume) {
                problems.push(format!("{name}: volume {volume} is not declared"));
            }
        }
    }
    for port in [8080, 3000] {
        if !ports.contains(&port) {
            problems.push(format!("port {port} is not published"));
        }
    }

    // The demo site must use the very issuer the bridge announces: the
    // browser and the site see one URL.
    let demo = &services["demo"];
    let command = words(&demo["command"]);
    if command.first().map(String::as_str) != Some("cyrcles-demo")
        || !command.iter().any(|w| w == "site")
    {
        problems.push(format!(
            "demo does not run `cyrcles-demo site`: {command:?}"
        ));
    }
    let issuer = env_value(&services["bridge"], "CYRCLES_BRIDGE_ISSUER");
    let demo_issuer =
        option_value(&command, "--issuer").or_else(|| env_value(demo, "CYRCLES_DEMO_ISSUER"));
    if issuer.is_none() || demo_issuer != issuer {
        problems.push(format!(
            "the demo's issuer {demo_issuer:?} is not the bridge's {issuer:?}"
        ));
    }
    problems
}

// ---- Dockerfile --------------------------------------------------------------

/// A Dockerfile's instructions: (keyword in upper case, arguments), with
/// continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut finish = |current: &mut String| {
        let line = current.trim();
        if !line.is_empty() {
            let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            out.push((keyword.to_ascii_uppercase(), args.trim().to_string()));
        }
        current.clear();
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                finish(&mut current);
            }
        }
    }
    finish(&mut current);
    out
}

/// The names an `ENV` instruction sets: `ENV A=1 B=2` or `ENV A 1`.
fn env_names(args: &str) -> Vec<String> {
    let mut tokens = args.split_whitespace();
    match tokens.next() {
        Some(first) if first.contains('=') => std::iter::once(first)
            .chain(tokens)
            .filter_map(|t| t.split_once('='))
            .map(|(k, _)| k.to_string())
            .collect(),
        Some(first) => vec![first.to_string()],
        None => Vec::new(),
    }
}

/// Whether a path-like word names `file` (`/out/cyrcles-bridge`, or in the
/// JSON form `["/out/cyrcles-bridge",`).
fn names_file(word: &str, file: &str) -> bool {
    let word = word.trim_matches(|c| matches!(c, '"' | '[' | ']' | ','));
    word.rsplit('/').next() == Some(file)
}

fn check_dockerfile(text: &str, vars: &BTreeSet<String>) -> Vec<String> {
    let all = instructions(text);
    let mut problems = Vec::new();
    let froms: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k == "FROM")
        .map(|(i, _)| i)
        .collect();
    if froms.len() < 2 {
        problems.push(format!(
            "{} FROM stage(s); a multi-stage build needs two",
            froms.len()
        ));
    }
    let final_stage = froms
        .last()
        .and_then(|&i| all.get(i + 1..))
        .unwrap_or_default();

    let user = final_stage
        .iter()
        .rev()
        .find(|(k, _)| k == "USER")
        .map(|(_, args)| {
            args.split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        });
    match user.as_deref() {
        None => problems.push("the final stage has no USER (it would run as root)".into()),
        Some("" | "root" | "0") => problems.push(format!("the final stage runs as {user:?}")),
        Some(_) => {}
    }
    let copies_bridge = final_stage.iter().any(|(k, args)| {
        (k == "COPY" || k == "ADD")
            && args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .any(|w| names_file(w, "cyrcles-bridge"))
    });
    if !copies_bridge {
        problems.push("the final stage does not copy cyrcles-bridge".into());
    }
    let runs_bridge = final_stage.iter().any(|(k, args)| {
        (k == "CMD" || k == "ENTRYPOINT")
            && args
                .split_whitespace()
                .any(|w| names_file(w, "cyrcles-bridge"))
    });
    if !runs_bridge {
        problems.push("the default command does not run cyrcles-bridge".into());
    }
    let builds_locked = all
        .iter()
        .any(|(k, args)| k == "RUN" && args.contains("cargo build") && args.contains("--locked"));
    if !builds_locked {
        problems.push("no stage runs `cargo build --locked`".into());
    }
    for (_, args) in all.iter().filter(|(k, _)| k == "ENV") {
        for var in env_names(args) {
            if !known_var(&var, vars) {
                problems.push(format!("ENV {var} is not a bridge configuration variable"));
            }
        }
    }
    problems
}

// ---- deploy/cyrcles-bridge.service -------------------------------------------

/// A unit file's `Key=Value` settings, in order (comments and section
/// headers dropped).
fn unit_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn check_unit(text: &str, vars: &BTreeSet<String>) -> Vec<String> {
    let settings = unit_settings(text);
    // The last assignment wins, as in systemd.
    let last = |key: &str| {
        settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let mut problems = Vec::new();
    match last("User") {
        None | Some("" | "root" | "0") => {
            problems.push("the service does not run as an unprivileged User=".into())
        }
        Some(_) => {}
    }
    if !matches!(last("NoNewPrivileges"), Some("yes" | "true" | "on" | "1")) {
        problems.push("NoNewPrivileges=yes is missing".into());
    }
    if last("ProtectSystem") != Some("strict") {
        problems.push("ProtectSystem=strict is missing".into());
    }
    let exec: Vec<&str> = last("ExecStart")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let binary = exec
        .first()
        .map(|b| b.trim_start_matches(['-', '@', ':', '+', '!', '|']))
        .unwrap_or_default();
    if !binary.starts_with('/') || !names_file(binary, "cyrcles-bridge") {
        problems.push(format!(
            "ExecStart does not run cyrcles-bridge by absolute path: {binary:?}"
        ));
    }
    if !exec.contains(&"serve") {
        problems.push("ExecStart does not run `serve`".into());
    }
    for (_, value) in settings.iter().filter(|(k, _)| k == "Environment") {
        for assignment in value.split_whitespace() {
            let assignment = assignment.trim_matches(|c| c == '"' || c == '\'');
            if let Some((var, _)) = assignment.split_once('=')
                && !known_var(var, vars)
            {
                problems.push(format!(
                    "Environment {var} is not a bridge configuration variable"
                ));
            }
        }
    }
    problems
}

// ---- the tests ---------------------------------------------------------------

fn vars() -> BTreeSet<String> {
    let vars = config_vars(&read("deploy/bridge.example.toml"));
    // The example names each key's variable; a few must be there.
    for v in [
        "CYRCLES_BRIDGE_ISSUER",
        "CYRCLES_BRIDGE_DATABASE_URL",
        "CYRCLES_BRIDGE_HTTP_LISTEN",
        "CYRCLES_BRIDGE_P2P_LISTEN",
        "CYRCLES_BRIDGE_DATA_DIR",
    ] {
        assert!(vars.contains(v), "{v} missing from bridge.example.toml");
    }
    vars
}

#[test]
fn compose_file_is_consistent() {
    let problems = check_compose(&read("docker-compose.yml"), &vars());
    assert!(problems.is_empty(), "docker-compose.yml: {problems:#?}");
}

#[test]
fn dockerfile_is_multi_stage_and_unprivileged() {
    let problems = check_dockerfile(&read("Dockerfile"), &vars());
    assert!(problems.is_empty(), "Dockerfile: {problems:#?}");
    let ignore = read(".dockerignore");
    let ignored: Vec<&str> = ignore.lines().map(str::trim).collect();
    assert!(
        ignored.iter().any(|l| l.trim_end_matches('/') == "target"),
        ".dockerignore must keep target/ out of the build context"
    );
}

#[test]
fn systemd_unit_is_hardened() {
    let problems = check_unit(&read("deploy/cyrcles-bridge.service"), &vars());
    assert!(problems.is_empty(), "cyrcles-bridge.service: {problems:#?}");
}

/// Asserts that some problem mentions `expect`.
fn finds(problems: &[String], expect: &str) {
    assert!(
        problems.iter().any(|p| p.contains(expect)),
        "expected a problem about {expect:?}, got {problems:#?}"
    );
}

#[test]
fn checks_catch_broken_files() {
    let vars = vars();
    let broken = "
services:
  postgres:
    image: postgres:16
  bridge:
    image: cyrcles
    depends_on: [postgres]
    environment:
      - CYRCLES_BRIDGE_ISSUER=http://localhost:8080
      - CYRCLES_BRIDGE_HTTP_LISTN=0.0.0.0:8080
    ports: ['8080']
    volumes: ['data:/var/lib/cyrcles', './local:/mnt']
  demo:
    build: ./demo
    command: cyrcles-demo site --issuer http://bridge:8080
";
    let problems = check_compose(broken, &vars);
    for expect in [
        "bridge does not build",
        "demo does not build",
        "service_healthy",
        "postgres has no healthcheck",
        "CYRCLES_BRIDGE_HTTP_LISTN",
        "port 8080",
        "port 3000",
        "volume data",
        "issuer",
    ] {
        finds(&problems, expect);
    }
    assert!(
        !problems.iter().any(|p| p.contains("./local")),
        "a bind mount is not a named volume: {problems:#?}"
    );
    finds(
        &check_compose("version: '3'\nservices: {}\n", &vars),
        "version",
    );

    let single = "FROM debian:bookworm-slim\nCOPY cyrcles-bridge /usr/local/bin/\nCMD [\"cyrcles-bridge\", \"serve\"]\n";
    finds(&check_dockerfile(single, &vars), "FROM stage");
    finds(&check_dockerfile(single, &vars), "no USER");
    let root = "FROM rust AS b\nRUN cargo build --locked\nFROM debian\nENV CYRCLES_BRIDGE_NOPE=1\nCOPY --from=b \\\n  /out/cyrcles-demo /usr/local/bin/\nUSER root:root\nCMD cyrcles-demo\n";
    let problems = check_dockerfile(root, &vars);
    for expect in [
        "runs as",
        "copy cyrcles-bridge",
        "does not run cyrcles-bridge",
        "CYRCLES_BRIDGE_NOPE",
    ] {
        finds(&problems, expect);
    }
    // A USER in the build stage does not make the final stage unprivileged.
    finds(
        &check_dockerfile(
            "FROM a AS b\nUSER 10001\nRUN cargo build --locked\nFROM c\nCOPY --from=b /x/cyrcles-bridge /y/\nCMD cyrcles-bridge serve\n",
            &vars,
        ),
        "no USER",
    );

    let unit = "[Service]\nUser=cyrcles\nNoNewPrivileges=yes\nProtectSystem=strict\nExecStart=/usr/local/bin/cyrcles-bridge serve\n";
    assert!(check_unit(unit, &vars).is_empty());
    let unit = "[Service]\nUser=root\nNoNewPrivileges=no\nProtectSystem=full\nExecStart=cyrcles-bridge\nEnvironment=CYRCLES_BRIDGE_X=1\n";
    let problems = check_unit(unit, &vars);
    for expect in [
        "User=",
        "NoNewPrivileges",
        "ProtectSystem",
        "absolute path",
        "serve",
        "CYRCLES_BRIDGE_X",
    ] {
        finds(&problems, expect);
    }
}

/// `text` with `from` replaced by `to`, which must have been there.
fn mutate(text: &str, from: &str, to: &str) -> String {
    assert!(
        !from.is_empty() && text.contains(from),
        "{from:?} is no longer in the file"
    );
    text.replacen(from, to, 1)
}

#[test]
fn checks_catch_mistakes_in_the_real_files() {
    let vars = vars();
    let compose = read("docker-compose.yml");
    finds(
        &check_compose(
            &mutate(&compose, "service_healthy", "service_started"),
            &vars,
        ),
        "service_healthy",
    );
    finds(
        &check_compose(
            &mutate(
                &compose,
                "CYRCLES_BRIDGE_HTTP_LISTEN:",
                "CYRCLES_BRIDGE_HTTP_ADDRESS:",
            ),
            &vars,
        ),
        "CYRCLES_BRIDGE_HTTP_ADDRESS",
    );
    let dockerfile = read("Dockerfile");
    let user = instructions(&dockerfile)
        .into_iter()
        .rev()
        .find(|(k, _)| k == "USER")
        .map(|(_, args)| format!("USER {args}"))
        .unwrap_or_default();
    finds(
        &check_dockerfile(&mutate(&dockerfile, &user, "USER root"), &vars),
        "runs as",
    );
    let unit = read("deploy/cyrcles-bridge.service");
    finds(
        &check_unit(
            &mutate(&unit, "ProtectSystem=strict", "ProtectSystem=full"),
            &vars,
        ),
        "ProtectSystem",
    );
}

#[test]
fn checks_reject_unrelated_input_without_panicking() {
    let vars = vars();
    let inputs = [
        "",
        "just some text",
        "[1, 2",
        "services: 3",
        "services:\n  bridge: [1, 2]\n  demo: ~\nvolumes: 7\n",
        "services:\n  bridge:\n    ports: [{published: x}, 99999, '1-0:1', ':::']\n    volumes: [{type: bind}, ':', 5]\n    environment: [3, '=', CYRCLES_BRIDGE_]\n",
        "FROM\nUSER\n\\",
        "\u{0}\u{feff}\\\n#\n=",
    ];
    for input in inputs {
        assert!(!check_compose(input, &vars).is_empty(), "{input:?}");
        assert!(!check_dockerfile(input, &vars).is_empty(), "{input:?}");
        assert!(!check_unit(input, &vars).is_empty(), "{input:?}");
    }
    // The files check as what they are, not as each other.
    assert!(!check_dockerfile(&read("docker-compose.yml"), &vars).is_empty());
    assert!(!check_unit(&read("Dockerfile"), &vars).is_empty());
    assert!(!check_compose(&read("deploy/cyrcles-bridge.service"), &vars).is_empty());
    assert_eq!(port_range("8000-8002"), vec![8000, 8001, 8002]);
    assert!(port_range("9-1").is_empty() && port_range("x").is_empty());
}
