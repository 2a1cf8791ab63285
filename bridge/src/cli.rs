//! The `cyrcles-bridge` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::app::{Application, Options, open_store};
use crate::config::{Config, Settings};
use crate::oidc::client::{Client, ClientMetadata};
use crate::oidc::register::create_client;
use crate::stdout::outln;

/// The Cyrcles bridge: an OpenID Connect provider for "Login with Cyrcles".
#[derive(Debug, Parser)]
#[command(name = "cyrcles-bridge", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Also `CYRCLES_BRIDGE_CONFIG`. Every key
    /// can be set by a `CYRCLES_BRIDGE_*` variable; see `config keys`.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bridge (HTTP and the DHT node).
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Manage the sites (OAuth clients) that may use this bridge.
    Client {
        /// The client command.
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Manage ID-token signing keys.
    Keys {
        /// The key command.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Show configuration keys and their environment variables.
    Config {
        /// The config command.
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// `client` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a site; prints its client id and, for confidential
    /// clients, its secret (shown once).
    Add {
        /// The name people see on the login page.
        #[arg(long)]
        name: String,
        /// A redirect URI (repeat for several).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A post-logout redirect URI (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// The site's back-channel logout endpoint.
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// A public client (no secret, PKCE required): single-page and
        /// native apps.
        #[arg(long)]
        public: bool,
        /// For confidential clients: client_secret_basic (default) or
        /// client_secret_post.
        #[arg(long, default_value = "client_secret_basic")]
        auth_method: String,
        /// ID token algorithm: RS256 (default), ES256 or EdDSA.
        #[arg(long, default_value = "RS256")]
        alg: String,
        /// pairwise (default) or public subject identifiers.
        #[arg(long, default_value = "pairwise")]
        subject_type: String,
        /// Do not issue refresh tokens to this client.
        #[arg(long)]
        no_refresh: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the registered sites.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a site and revoke everything issued to it.
    Remove {
        /// The client id.
        client_id: String,
    },
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make new signing keys: published now, signing in 10 minutes (when
    /// relying parties' cached JWKS have them); the old ones stay published
    /// until the tokens they signed have expired.
    Rotate {
        /// Sign with the new keys at once and retire the old ones now (a
        /// key that leaked); relying parties with a cached JWKS refetch it
        /// on the unknown key id.
        #[arg(long)]
        now: bool,
    },
    /// List the published keys.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every configuration key and its environment variable.
    Keys,
    /// The effective configuration after the file and the environment
    /// (secrets redacted: the master key, the database password).
    Show,
}

fn init_logging() {
    let filter = std::env::var("CYRCLES_BRIDGE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,libp2p=warn,libp2p_kad=error,sqlx=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let path = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("CYRCLES_BRIDGE_CONFIG").map(PathBuf::from));
    Ok(Config::load(path.as_deref(), std::env::vars())?)
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    Ok(load_config(cli)?.validate()?)
}

/// Runs the command line; returns the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve => {
            let s = settings(&cli)?;
            let ip = s.listen.ip();
            let app = Application::build(s, Options::default()).await?;
            // The address bound, which differs from the configured one on
            // port 0; tests read the `listening on` line.
            let listen = std::net::SocketAddr::new(ip, app.port());
            let issuer = app.state().settings.issuer.clone();
            tracing::info!(%issuer, http = %listen, "cyrcles-bridge is running");
            for a in app.p2p_addrs() {
                tracing::info!(addr = %a, "DHT node listening; agents bootstrap with: cyrcles daemon --bootstrap {a}");
            }
            eprintln!(
                "cyrcles-bridge {} serving {issuer}",
                env!("CARGO_PKG_VERSION")
            );
            eprintln!("listening on {listen}");
            for a in app.p2p_addrs() {
                eprintln!("DHT bootstrap address for agents: {a}");
            }
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            let s = settings(&cli)?;
            open_store(&s).await?;
            outln!("database schema is up to date");
            Ok(())
        }
        Command::Client { command } => client(&cli, command).await,
        Command::Keys { command } => keys(&cli, command).await,
        Command::Config { command } => match command {
            ConfigCommand::Keys => {
                for (k, v) in Config::keys() {
                    outln!("{k:40} {v}");
                }
                Ok(())
            }
            ConfigCommand::Show => {
                outln!("{}", load_config(&cli)?.show()?);
                Ok(())
            }
        },
    }
}

fn now() -> i64 {
    crate::state::unix_secs(cyrcles_p2p::Clock::system().now())
}

async fn client(cli: &Cli, command: &ClientCommand) -> anyhow::Result<()> {
    let s = settings(cli)?;
    let store = open_store(&s).await?;
    match command {
        ClientCommand::Add {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            public,
            auth_method,
            alg,
            subject_type,
            no_refresh,
            json,
        } => {
            let mut grants = vec!["authorization_code".to_string()];
            if !no_refresh {
                grants.push("refresh_token".into());
            }
            let meta: ClientMetadata = serde_json::from_value(json!({
                "redirect_uris": redirect_uris,
                "post_logout_redirect_uris": post_logout_redirect_uris,
                "backchannel_logout_uri": backchannel_logout_uri,
                "token_endpoint_auth_method": if *public { "none" } else { auth_method.as_str() },
                "id_token_signed_response_alg": alg,
                "subject_type": subject_type,
                "grant_types": grants,
                "client_name": name,
            }))?;
            let meta = meta
                .validate()
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code.as_str(), e.description))?;
            let created = create_client(&store, Some(name.clone()), meta, false, now()).await?;
            if *json {
                outln!(
                    "{}",
                    json!({
                        "client_id": created.row.client_id,
                        "client_secret": created.secret,
                        "name": created.row.name,
                        "issuer": s.issuer,
                    })
                );
            } else {
                outln!("client_id:     {}", created.row.client_id);
                if let Some(secret) = &created.secret {
                    outln!("client_secret: {secret}");
                    outln!("(the secret is shown only now; store it in the site's configuration)");
                }
                outln!("issuer:        {}", s.issuer);
                outln!(
                    "discovery:     {}/.well-known/openid-configuration",
                    s.issuer
                );
            }
            Ok(())
        }
        ClientCommand::List { json } => {
            let rows = store.list_clients().await?;
            let clients: Vec<Client> = rows
                .into_iter()
                .map(Client::from_row)
                .collect::<Result<_, _>>()?;
            if *json {
                let v: Vec<_> = clients
                    .iter()
                    .map(|c| {
                        json!({
                            "client_id": c.id,
                            "name": c.name,
                            "public": c.is_public(),
                            "redirect_uris": c.meta.redirect_uris,
                            "created_at": c.created_at,
                        })
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else if clients.is_empty() {
                outln!(
                    "no clients; add one with: cyrcles-bridge client add --name NAME --redirect-uri URI"
                );
            } else {
                for c in clients {
                    outln!(
                        "{}  {}  {}  {}",
                        c.id,
                        if c.is_public() {
                            "public      "
                        } else {
                            "confidential"
                        },
                        c.name,
                        c.meta.redirect_uris.join(" ")
                    );
                }
            }
            Ok(())
        }
        ClientCommand::Remove { client_id } => {
            if store.delete_client(client_id, now()).await? {
                outln!("removed {client_id}; its tokens are revoked");
                Ok(())
            } else {
                anyhow::bail!("no client {client_id}")
            }
        }
    }
}

async fn keys(cli: &Cli, command: &KeysCommand) -> anyhow::Result<()> {
    let s = settings(cli)?;
    let store = open_store(&s).await?;
    let master = std::sync::Arc::new(crate::secrets::master_key(&s)?);
    let ring = crate::keys::KeyRing::load(store.clone(), master, now())
        .await
        .context("cannot load the signing keys")?;
    match command {
        KeysCommand::Rotate { now: at_once } => {
            let publish_for =
                i64::try_from(s.oidc.id_token_ttl_secs.max(120)).unwrap_or(3_600) + 3_600;
            let kids = ring.rotate(now(), publish_for, *at_once).await?;
            outln!("new signing keys: {}", kids.join(", "));
            if *at_once {
                outln!("running bridges sign with them within a minute");
            } else {
                outln!(
                    "published now; running bridges sign with them in {} minutes",
                    crate::keys::STAGE_SECS / 60
                );
            }
            Ok(())
        }
        KeysCommand::List { json } => {
            let rows = store.published_keys(now()).await?;
            if *json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|k| json!({"kid": k.kid, "alg": k.alg, "created_at": k.created_at, "retired_at": k.retired_at, "publish_until": k.publish_until}))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for k in rows {
                    let state = if k.retired_at.is_some() {
                        "retired"
                    } else {
                        "active "
                    };
                    outln!("{}  {:5}  {}", k.kid, k.alg, state);
                }
            }
            Ok(())
        }
    }
}
