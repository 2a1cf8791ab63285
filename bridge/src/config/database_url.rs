//! `database_url`: a secret (a PostgreSQL URL can hold a password) that
//! shows itself with the password replaced, so that `config show`, `Debug`
//! and logs still say which database.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secrets::{REDACTED, Secret};

/// A database URL (`sqlite:…` or `postgres://…`). `Debug`, `Display` and
/// serializing show [`DatabaseUrl::redacted`]; the URL itself only comes
/// out of [`DatabaseUrl::expose`]. Deserializes from the bare URL; zeroized
/// on drop.
#[derive(Clone, Default)]
pub struct DatabaseUrl(Secret<String>);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: String) -> Self {
        DatabaseUrl(Secret::new(url))
    }

    /// The URL with its password: for connecting only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Whether the URL is empty (the default: SQLite in `data_dir`).
    pub fn is_empty(&self) -> bool {
        self.0.expose().is_empty()
    }

    /// The URL with any password replaced by [`REDACTED`].
    pub fn redacted(&self) -> String {
        redact(self.0.expose())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Secret::deserialize(d).map(DatabaseUrl)
    }
}

/// `url` with its passwords replaced by [`REDACTED`]: the userinfo's
/// (`postgres://user:[redacted]@host/db`) and the value of every
/// `password=` parameter (`sslpassword=` too). A SQLite URL holds a path and
/// no password, and is returned as it is.
///
/// Any other text is read generously, since it may not be a valid URL (`config
/// show` prints what has not been validated yet): the userinfo runs to the
/// last `@`, so a password with a bare `@`, `/` or `?` is hidden whole.
/// Hiding more than the password is fine; showing part of it is not.
fn redact(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.to_string();
    }
    let mut out = String::with_capacity(url.len() + REDACTED.len());
    let (scheme, mut rest) = url.find("://").map_or(("", url), |i| url.split_at(i + 3));
    out.push_str(scheme);
    if let Some((userinfo, host)) = rest.rsplit_once('@') {
        match userinfo.split_once(':') {
            Some((user, password)) if !password.is_empty() => {
                out.push_str(user);
                out.push(':');
                out.push_str(REDACTED);
            }
            _ => out.push_str(userinfo),
        }
        out.push('@');
        rest = host;
    }
    out.push_str(rest);
    redact_parameters(&out)
}

/// Replaces the value of every `…password=` (any case) up to the next `&`
/// or `#`.
fn redact_parameters(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len() + REDACTED.len());
    let mut rest = text;
    while let Some(i) = rest
        .as_bytes()
        .windows(KEY.len())
        .position(|w| w.eq_ignore_ascii_case(KEY.as_bytes()))
    {
        // `i` and `i + KEY.len()` border ASCII bytes: char boundaries.
        let (before, after) = rest.split_at(i + KEY.len());
        out.push_str(before);
        let end = after.find(['&', '#']).unwrap_or(after.len());
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = after.split_at(end).1;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_the_rest_is_kept() {
        for (url, shown) in [
            ("postgres://u:hunter2@h/db", "postgres://u:[redacted]@h/db"),
            (
                "postgresql://cyrcles:p%40ss@db.example:5432/cyrcles?sslmode=require",
                "postgresql://cyrcles:[redacted]@db.example:5432/cyrcles?sslmode=require",
            ),
            // Not valid URLs, but what an operator may have typed.
            ("postgres://u:hun@ter2@h/db", "postgres://u:[redacted]@h/db"),
            ("postgres://u:hun/ter2@h/db", "postgres://u:[redacted]@h/db"),
            ("postgres://:hunter2@h/db", "postgres://:[redacted]@h/db"),
            (
                "postgres://u@h/db?host=/run/postgresql&password=hunter2&sslmode=disable",
                "postgres://u@h/db?host=/run/postgresql&password=[redacted]&sslmode=disable",
            ),
            (
                "postgres://u@h/db?PASSWORD=hunter2#x",
                "postgres://u@h/db?PASSWORD=[redacted]#x",
            ),
            (
                "postgres://h/db?sslpassword=hunter2",
                "postgres://h/db?sslpassword=[redacted]",
            ),
            (
                "postgres://h/db?password=hunter@2",
                "postgres://h/db?password=[redacted]",
            ),
            // Nothing to hide.
            (
                "postgres://cyrcles@localhost/cyrcles?host=/run/postgresql",
                "postgres://cyrcles@localhost/cyrcles?host=/run/postgresql",
            ),
            ("postgres://[::1]:5432/db", "postgres://[::1]:5432/db"),
            ("postgres://u:@h/db", "postgres://u:@h/db"),
            (
                "sqlite:///var/lib/cyrcles/bridge.db?mode=rwc",
                "sqlite:///var/lib/cyrcles/bridge.db?mode=rwc",
            ),
            ("sqlite://./a:b@c/bridge.db", "sqlite://./a:b@c/bridge.db"),
            ("", ""),
        ] {
            let u = DatabaseUrl::new(url.to_string());
            assert_eq!(u.redacted(), shown, "{url}");
            assert_eq!(u.to_string(), shown, "{url}");
            assert_eq!(format!("{u:?}"), format!("DatabaseUrl({shown:?})"));
            assert_eq!(serde_json::to_value(&u).unwrap(), shown);
            assert_eq!(u.expose(), url);
        }
    }

    #[test]
    fn it_deserializes_from_the_bare_url() {
        let u: DatabaseUrl = serde_json::from_str("\"postgres://u:hunter2@h/db\"").unwrap();
        assert_eq!(u.expose(), "postgres://u:hunter2@h/db");
    }
}
