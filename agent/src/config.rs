//! The agent's settings: `HOME/config.toml` (every key optional, unknown
//! keys refused), then the daemon's command-line flags and their
//! environment variables (`--bootstrap`/`CYRCLES_BOOTSTRAP`,
//! `--listen`/`CYRCLES_LISTEN`, `--relay`/`CYRCLES_RELAY`).
//!
//! `deploy/agent.example.toml` lists every key with its default; a test
//! keeps it in step with [`AgentConfig::default`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use cyrcles_p2p::Multiaddr;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A configuration problem.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid setting {key}: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// How many login requests an ego takes, and from whom (see
/// `docs/agent.md`, "Quotas"). Two kinds of quota:
///
/// * what a sender may spend, counted as each request arrives (prompted
///   or approved by policy): `per_source` per sending node and browser
///   network (IPv4 /24, IPv6 /64, as the challenge reports it),
///   `per_peer` per sending node, `per_program` per local program;
/// * what the person grants, counted when the person or a policy
///   approves: `per_site`, `per_bridge` and `total`. Requests the person
///   never approved count for nothing here.
///
/// The pending bounds keep a flood from holding every slot: a new request
/// always gets in, pushing out the oldest of the fullest source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    /// Requests per source (sending node and browser network) per
    /// `source_window_secs`.
    pub per_source: u32,
    /// The source window.
    pub source_window_secs: u64,
    /// Requests per sending node per `peer_window_secs`.
    pub per_peer: u32,
    /// The peer window.
    pub peer_window_secs: u64,
    /// Approvals per site (bridge issuer and client id) per
    /// `site_window_secs`.
    pub per_site: u32,
    /// The site window.
    pub site_window_secs: u64,
    /// Approvals per bridge (issuer) per `bridge_window_secs`.
    pub per_bridge: u32,
    /// The bridge window.
    pub bridge_window_secs: u64,
    /// Requests per local program per `program_window_secs`.
    pub per_program: u32,
    /// The program window.
    pub program_window_secs: u64,
    /// Approvals in all per `total_window_secs`.
    pub total: u32,
    /// The total window.
    pub total_window_secs: u64,
    /// Requests waiting for the person at once, per ego.
    pub max_pending: usize,
    /// Requests waiting at once from one sending node (or program), per
    /// ego.
    pub max_pending_per_peer: usize,
    /// Requests waiting at once from one source, per ego.
    pub max_pending_per_source: usize,
    /// Wrong match codes typed for one request before it is denied.
    pub wrong_code_limit: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            per_source: 10,
            source_window_secs: 600,
            per_peer: 30,
            peer_window_secs: 600,
            per_site: 5,
            site_window_secs: 600,
            per_bridge: 10,
            bridge_window_secs: 600,
            per_program: 5,
            program_window_secs: 600,
            total: 20,
            total_window_secs: 3600,
            max_pending: 16,
            max_pending_per_peer: 4,
            max_pending_per_source: 2,
            wrong_code_limit: 3,
        }
    }
}

/// Network settings shared by every ego's node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Where each ego's node listens. Port 0 lets the system pick one.
    pub listen: Vec<String>,
    /// Peers to join the network through (`/ip4/…/tcp/…/p2p/<id>`).
    pub bootstrap: Vec<String>,
    /// Addresses at which others reach this machine, published in each
    /// ego's endpoints (for a port forwarded on a router).
    pub external_addrs: Vec<String>,
    /// Relays (bridges) at which each ego's node reserves a circuit, for
    /// machines others cannot reach directly (`/ip4/…/tcp/…/p2p/<id>`).
    pub relays: Vec<String>,
    /// Inbound requests per protocol each peer may send per minute.
    pub requests_per_peer_per_minute: u32,
    /// Dial loopback, private and link-local addresses named by friends'
    /// records and invite announcements (off: those are anyone's to write;
    /// the bootstrap peers and relays configured here are dialled
    /// whatever their address). Turn on when friends share this machine or
    /// a private network.
    pub dial_private_addrs: bool,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/0.0.0.0/tcp/0".into()],
            bootstrap: Vec::new(),
            external_addrs: Vec::new(),
            relays: Vec::new(),
            requests_per_peer_per_minute: 120,
            dial_private_addrs: false,
        }
    }
}

/// What this agent signs for friends' circles without asking its human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Circles {
    /// Least time between two signatures for one friend's ego (seconds).
    pub sign_interval_secs: u64,
    /// Longest certificate this agent helps a friend's circle issue (days).
    pub max_cert_days: u64,
    /// While recovering an ego on this device: how often the friends are
    /// asked again (seconds).
    pub recovery_poll_secs: u64,
    /// How often the agent checks its friends' records and deletes the
    /// shares of circles they no longer use (seconds).
    pub share_sweep_secs: u64,
    /// How long this agent waits, after its human approved a friend's
    /// recovery, before it signs (seconds; at most 7 days). Until then the
    /// human can withdraw the approval, for instance after the friend's old
    /// device reported an attempt they did not make.
    pub recovery_delay_secs: u64,
}

impl Default for Circles {
    fn default() -> Self {
        Self {
            sign_interval_secs: 3600,
            max_cert_days: 90,
            recovery_poll_secs: 10,
            share_sweep_secs: 3600,
            recovery_delay_secs: 86_400,
        }
    }
}

/// Everything in `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Ego certificates are issued for this many days and renewed at half
    /// of it.
    pub cert_validity_days: u64,
    /// The signed endpoints list is valid this many hours and re-signed at
    /// half of it.
    pub endpoints_validity_hours: u64,
    /// Show a desktop notification (`notify-send`) for each login request,
    /// when a desktop session is available.
    pub notify: bool,
    /// How often the daemon checks whether a certificate or the endpoints
    /// need renewing.
    pub maintenance_interval_secs: u64,
    /// Network.
    pub network: Network,
    /// Login quotas.
    pub quotas: Quotas,
    /// Signing for friends' circles.
    pub circles: Circles,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            cert_validity_days: 30,
            endpoints_validity_hours: 24,
            notify: true,
            maintenance_interval_secs: 60,
            network: Network::default(),
            quotas: Quotas::default(),
            circles: Circles::default(),
        }
    }
}

/// Settings checked and converted.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Certificate validity.
    pub cert_validity: u64,
    /// Endpoints validity.
    pub endpoints_validity: u64,
    /// Desktop notifications.
    pub notify: bool,
    /// Maintenance period.
    pub maintenance_interval: Duration,
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap peers.
    pub bootstrap: Vec<Multiaddr>,
    /// External addresses.
    pub external_addrs: Vec<Multiaddr>,
    /// Relays.
    pub relays: Vec<Multiaddr>,
    /// Inbound request rate per peer.
    pub requests_per_peer_per_minute: u32,
    /// Dial private addresses named by records.
    pub dial_private_addrs: bool,
    /// Quotas.
    pub quotas: Quotas,
    /// The member's signing policy for friends' circles.
    pub signing: cyrcles_core::circle::SigningPolicy,
    /// How often a recovery asks the friends again.
    pub recovery_poll: std::time::Duration,
    /// How often old shares of friends' circles are looked for (seconds).
    pub share_sweep: u64,
    /// How long an approved recovery of a friend's ego waits (seconds).
    pub recovery_delay: u64,
}

fn addrs(key: &'static str, list: &[String]) -> Result<Vec<Multiaddr>, ConfigError> {
    list.iter()
        .map(|s| {
            s.parse::<Multiaddr>().map_err(|e| ConfigError::Invalid {
                key,
                reason: format!("{s:?} is not a multiaddr: {e}"),
            })
        })
        .collect()
}

fn peer_addrs(key: &'static str, list: &[String]) -> Result<Vec<Multiaddr>, ConfigError> {
    let out = addrs(key, list)?;
    for a in &out {
        if !matches!(
            a.iter().last(),
            Some(cyrcles_p2p::multiaddr::Protocol::P2p(_))
        ) {
            return Err(ConfigError::Invalid {
                key,
                reason: format!("{a} must end in /p2p/<peer id>"),
            });
        }
    }
    Ok(out)
}

/// Longest recovery delay: a recovery must end before the ego's last
/// certificate does (30 days by default, 15 of them often gone already).
pub const MAX_RECOVERY_DELAY_SECS: u64 = 7 * 86_400;

fn at_most(key: &'static str, v: u64, max: u64) -> Result<u64, ConfigError> {
    if v > max {
        return Err(ConfigError::Invalid {
            key,
            reason: format!("must be at most {max}"),
        });
    }
    Ok(v)
}

fn positive(key: &'static str, v: u64) -> Result<u64, ConfigError> {
    if v == 0 {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be at least 1".into(),
        });
    }
    Ok(v)
}

impl AgentConfig {
    /// Reads `path` if it exists; the defaults otherwise.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Checks every value and converts it.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        // The protocol's maxima (docs/protocol.md, section 6): a longer
        // certificate or endpoints list would make the record invalid.
        let max_days = cyrcles_core::time::MAX_CERT_VALIDITY_SECS / 86_400;
        let max_hours = cyrcles_core::time::MAX_ENDPOINTS_VALIDITY_SECS / 3600;
        let days = positive("cert_validity_days", self.cert_validity_days)?;
        if days > max_days {
            return Err(ConfigError::Invalid {
                key: "cert_validity_days",
                reason: format!("at most {max_days} (the protocol maximum)"),
            });
        }
        let hours = positive("endpoints_validity_hours", self.endpoints_validity_hours)?;
        if hours > max_hours {
            return Err(ConfigError::Invalid {
                key: "endpoints_validity_hours",
                reason: format!("at most {max_hours} (the protocol maximum)"),
            });
        }
        let max_cert_days = positive("circles.max_cert_days", self.circles.max_cert_days)?;
        if max_cert_days > max_days {
            return Err(ConfigError::Invalid {
                key: "circles.max_cert_days",
                reason: format!("at most {max_days} (the protocol maximum)"),
            });
        }
        let q = &self.quotas;
        for (key, v) in [
            ("quotas.source_window_secs", q.source_window_secs),
            ("quotas.peer_window_secs", q.peer_window_secs),
            ("quotas.site_window_secs", q.site_window_secs),
            ("quotas.bridge_window_secs", q.bridge_window_secs),
            ("quotas.program_window_secs", q.program_window_secs),
            ("quotas.total_window_secs", q.total_window_secs),
            ("quotas.max_pending", q.max_pending as u64),
            ("quotas.max_pending_per_peer", q.max_pending_per_peer as u64),
            (
                "quotas.max_pending_per_source",
                q.max_pending_per_source as u64,
            ),
            ("quotas.wrong_code_limit", u64::from(q.wrong_code_limit)),
        ] {
            positive(key, v)?;
        }
        let listen = addrs("network.listen", &self.network.listen)?;
        if listen.is_empty() {
            return Err(ConfigError::Invalid {
                key: "network.listen",
                reason: "at least one address is needed".into(),
            });
        }
        Ok(Settings {
            cert_validity: days * 24 * 3600,
            endpoints_validity: hours * 3600,
            notify: self.notify,
            maintenance_interval: Duration::from_secs(positive(
                "maintenance_interval_secs",
                self.maintenance_interval_secs,
            )?),
            listen,
            bootstrap: peer_addrs("network.bootstrap", &self.network.bootstrap)?,
            external_addrs: addrs("network.external_addrs", &self.network.external_addrs)?,
            relays: peer_addrs("network.relays", &self.network.relays)?,
            dial_private_addrs: self.network.dial_private_addrs,
            requests_per_peer_per_minute: u32::try_from(positive(
                "network.requests_per_peer_per_minute",
                u64::from(self.network.requests_per_peer_per_minute),
            )?)
            .unwrap_or(u32::MAX),
            quotas: self.quotas.clone(),
            signing: cyrcles_core::circle::SigningPolicy {
                max_cert_validity: max_cert_days * 86_400,
                min_interval: self.circles.sign_interval_secs,
            },
            recovery_poll: std::time::Duration::from_secs(positive(
                "circles.recovery_poll_secs",
                self.circles.recovery_poll_secs,
            )?),
            share_sweep: positive("circles.share_sweep_secs", self.circles.share_sweep_secs)?,
            recovery_delay: at_most(
                "circles.recovery_delay_secs",
                self.circles.recovery_delay_secs,
                MAX_RECOVERY_DELAY_SECS,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_lists_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agent.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // Every commented-out `key = value` line, uncommented, is the
        // default configuration.
        let uncommented: String = text
            .lines()
            .map(|l| {
                let t = l.trim_start();
                match t.strip_prefix("# ") {
                    Some(rest) if rest.contains(" = ") || rest.starts_with('[') => rest,
                    _ if t.starts_with('[') => t,
                    _ => "",
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: AgentConfig = toml::from_str(&uncommented).unwrap();
        assert_eq!(parsed, AgentConfig::default());
        // And it names every key.
        let defaults = serde_json::to_value(AgentConfig::default()).unwrap();
        let mut keys = Vec::new();
        for (k, v) in defaults.as_object().unwrap() {
            match v.as_object() {
                Some(section) => keys.extend(section.keys().cloned()),
                None => keys.push(k.clone()),
            }
        }
        for key in keys {
            assert!(
                text.contains(&format!("{key} = ")),
                "{key} is not documented"
            );
        }
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = AgentConfig::default();
        c.network.bootstrap = vec!["/ip4/127.0.0.1/tcp/1".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("network.bootstrap") && e.contains("/p2p/"),
            "{e}"
        );
        let mut c = AgentConfig::default();
        c.quotas.total_window_secs = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("total_window")
        );
        let e = toml::from_str::<AgentConfig>("cert_validity = 3").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn validities_above_the_protocol_maxima_are_refused() {
        // 90 days of certificate and 30 days of endpoints are the most a
        // record may carry; the longest allowed still validates.
        let c = AgentConfig {
            cert_validity_days: 90,
            endpoints_validity_hours: 720,
            circles: Circles {
                max_cert_days: 90,
                ..Circles::default()
            },
            ..AgentConfig::default()
        };
        let s = c.validate().unwrap();
        assert_eq!(s.cert_validity, cyrcles_core::time::MAX_CERT_VALIDITY_SECS);
        assert_eq!(
            s.endpoints_validity,
            cyrcles_core::time::MAX_ENDPOINTS_VALIDITY_SECS
        );
        for (edit, key) in [
            (
                (|c: &mut AgentConfig| c.cert_validity_days = 91) as fn(&mut AgentConfig),
                "cert_validity_days",
            ),
            (
                |c: &mut AgentConfig| c.endpoints_validity_hours = 721,
                "endpoints_validity_hours",
            ),
            (
                |c: &mut AgentConfig| c.circles.max_cert_days = 91,
                "circles.max_cert_days",
            ),
        ] {
            let mut c = AgentConfig::default();
            edit(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("protocol maximum"), "{e}");
        }
    }
}
