//! The `cyrcles-demo` command line: the quickstart (a bridge and a demo
//! website with Login with Cyrcles), or the website alone against an
//! existing bridge.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::quickstart::{Demo, DemoOptions};
use crate::site::{ClientCredentials, Site, SiteConfig};
use anyhow::Context;
use clap::{Parser, Subcommand};
use cyrcles_bridge::config::Config;
use url::Url;

/// The Cyrcles demo: a website with "Login with Cyrcles".
#[derive(Debug, Parser)]
#[command(name = "cyrcles-demo", version)]
struct Cli {
    /// The bridge's configuration file (default: the bridge's embedded
    /// defaults; `CYRCLES_BRIDGE_*` variables apply too)
    #[arg(long, env = "CYRCLES_BRIDGE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the demo website listens
    #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
    site_listen: SocketAddr,
    /// The demo website's URL, as the browser reaches it
    #[arg(long, default_value = "http://localhost:3000", value_name = "URL")]
    site_url: Url,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run only the website, against an existing bridge
    Site {
        /// The bridge's issuer URL
        #[arg(long, env = "CYRCLES_DEMO_ISSUER", value_name = "URL")]
        issuer: String,
        /// A registered client id (without it, the site registers itself)
        #[arg(long, env = "CYRCLES_DEMO_CLIENT_ID", requires = "client_secret")]
        client_id: Option<String>,
        /// The client's secret
        #[arg(long, env = "CYRCLES_DEMO_CLIENT_SECRET", hide_env_values = true)]
        client_secret: Option<String>,
        /// Where to listen
        #[arg(long, env = "CYRCLES_DEMO_LISTEN", default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// The site's URL, as the browser reaches it
        #[arg(
            long,
            env = "CYRCLES_DEMO_PUBLIC_URL",
            default_value = "http://localhost:3000"
        )]
        public_url: Url,
    },
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let settings = Config::load(cli.config.as_deref(), std::env::vars())?.validate()?;
            let site_listener = tokio::net::TcpListener::bind(cli.site_listen)
                .await
                .with_context(|| format!("cannot listen on {}", cli.site_listen))?;
            let demo = Demo::start(DemoOptions {
                settings,
                bridge_listener: None,
                site_listener,
                site_url: cli.site_url,
            })
            .await?;
            eprintln!("{}", demo.next_steps());
            demo.serve(shutdown_signal()).await
        }
        Some(Command::Site {
            issuer,
            client_id,
            client_secret,
            listen,
            public_url,
        }) => {
            let client = match (client_id, client_secret) {
                (Some(client_id), Some(client_secret)) => Some(ClientCredentials {
                    client_id,
                    client_secret,
                }),
                _ => None,
            };
            let config = SiteConfig {
                issuer,
                public_url: public_url.clone(),
                client,
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let mut public_url = public_url;
            crate::site::take_bound_port(&mut public_url, &listener);
            if let Ok(a) = listener.local_addr() {
                eprintln!("listening on {a}");
            }
            let config = SiteConfig {
                public_url: public_url.clone(),
                ..config
            };
            // The bridge may still be starting: try for a minute.
            let mut tries = 0;
            let site = loop {
                match Site::connect(config.clone()).await {
                    Ok(s) => break s,
                    Err(e) if tries < 30 => {
                        tries += 1;
                        eprintln!("waiting for the bridge: {e:#}");
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    }
                    Err(e) => return Err(e),
                }
            };
            eprintln!("Cyrcles demo website on {public_url}");
            axum::serve(listener, site.router())
                .with_graceful_shutdown(shutdown_signal())
                .await
                .context("the demo site stopped")
        }
    }
}

/// Runs the command line; returns the exit status.
pub fn main() -> ExitCode {
    // reqwest's rustls needs a process-wide crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CYRCLES_LOG")
                // libp2p's own chatter (e.g. "no known peers" on a new DHT)
                // would bury the next steps printed for the newcomer.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        "info,libp2p=error,libp2p_kad=error,sqlx=warn",
                    )
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
