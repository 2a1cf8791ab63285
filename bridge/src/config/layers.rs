//! How the defaults, the file and the environment are layered into one
//! JSON value before it becomes a [`Config`](super::Config). Every string
//! replaced or left behind here is wiped: it may be a secret.

use std::path::Path;

use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use super::{ConfigError, ENV_NOT_KEYS, ENV_PREFIX};

/// Merges the file at `path`, then the variables, into `value`.
pub(super) fn layer(
    value: &mut Value,
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    if let Some(path) = path {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?,
            );
        // Straight into JSON values (no `toml::Table` copy left to wipe); a
        // TOML document is always a table, so this is an object.
        let file: Value = toml::from_str(&text).map_err(|e| toml_error(&text, &e))?;
        merge(value, file);
    }
    for (name, raw) in env {
        let raw = Zeroizing::new(raw);
        if !name.starts_with(ENV_PREFIX) || ENV_NOT_KEYS.contains(&name.as_str()) {
            continue;
        }
        apply_env(value, &name, &raw)?;
    }
    Ok(())
}

/// A TOML syntax error, without the line of the file that the parser's own
/// message quotes (it may be the line holding a secret).
fn toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| {
            let line = before.rsplit('\n').next().unwrap_or_default();
            format!(
                " at line {}, column {}",
                before.matches('\n').count() + 1,
                line.chars().count() + 1
            )
        })
        .unwrap_or_default();
    ConfigError::Parse(format!("TOML parse error{at}: {}", e.message().trim_end()))
}

/// Zeroizes every string in `value`.
pub(super) fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

pub(super) fn env_name(section: Option<&str>, key: &str) -> String {
    match section {
        Some(s) => format!("{ENV_PREFIX}{}_{}", s.to_uppercase(), key.to_uppercase()),
        None => format!("{ENV_PREFIX}{}", key.to_uppercase()),
    }
}

/// Deep-merges `over` into `base` (objects merge, everything else
/// replaces).
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => {
            wipe(slot);
            *slot = v;
        }
    }
}

/// Sets the key named by an environment variable, converting the text to
/// the type of the key's default.
fn apply_env(value: &mut Value, name: &str, raw: &str) -> Result<(), ConfigError> {
    let err = |reason: &str| ConfigError::Env {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let rest = name
        .strip_prefix(ENV_PREFIX)
        .ok_or_else(|| err("not a bridge variable"))?
        .to_lowercase();
    let Value::Object(root) = value else {
        return Err(err("internal: configuration is not an object"));
    };
    // A top-level key, or `<section>_<key>`.
    let slot = if root.contains_key(&rest) && !root.get(&rest).is_some_and(Value::is_object) {
        root.get_mut(&rest)
    } else {
        let section = root
            .iter()
            .filter(|(_, v)| v.is_object())
            .map(|(k, _)| k.clone())
            .find(|k| rest.starts_with(&format!("{k}_")));
        match section {
            Some(s) => {
                let key = rest.get(s.len() + 1..).unwrap_or_default().to_string();
                root.get_mut(&s).and_then(|sec| sec.get_mut(&key))
            }
            None => None,
        }
    };
    let Some(slot) = slot else {
        return Err(err("no such configuration key"));
    };
    let new = match slot {
        Value::Bool(_) => match raw {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => return Err(err("expected true or false")),
        },
        Value::Number(_) => Value::Number(
            raw.trim()
                .parse::<u64>()
                .map_err(|_| err("expected a non-negative integer"))?
                .into(),
        ),
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        _ => Value::String(raw.to_string()),
    };
    wipe(slot);
    *slot = new;
    Ok(())
}
