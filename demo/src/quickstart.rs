//! The quickstart: a bridge on its embedded defaults (SQLite, a new DHT)
//! and the demo website registered at it, in one process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cyrcles_bridge::app::{Application, Options};
use cyrcles_bridge::config::Settings;
use tokio::sync::oneshot;
use tracing::warn;
use url::Url;

use crate::site::{ClientCredentials, Site, SiteConfig};

/// Where the demo keeps its client credentials, next to the bridge's data.
const CLIENT_FILE: &str = "demo-client.json";

/// What the quickstart needs.
#[derive(Debug)]
pub struct DemoOptions {
    /// The bridge's settings (its defaults unless configured).
    pub settings: Settings,
    /// Serve the bridge on this listener instead of `http.listen`.
    pub bridge_listener: Option<std::net::TcpListener>,
    /// The site's listener.
    pub site_listener: tokio::net::TcpListener,
    /// The site's public URL.
    pub site_url: Url,
}

/// A running quickstart.
pub struct Demo {
    /// The bridge's issuer.
    pub issuer: String,
    /// The site's URL.
    pub site_url: Url,
    /// The bridge's DHT addresses (for `cyrcles daemon --bootstrap`).
    pub bootstrap: Vec<String>,
    /// The site.
    pub site: Arc<Site>,
    site_listener: tokio::net::TcpListener,
    bridge_stop: oneshot::Sender<()>,
    bridge: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("issuer", &self.issuer)
            .field("site_url", &self.site_url.as_str())
            .finish_non_exhaustive()
    }
}

fn read_client(path: &Path) -> Option<ClientCredentials> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_client(path: &Path, c: &ClientCredentials) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(serde_json::to_string_pretty(c)?.as_bytes())?;
    Ok(())
}

impl Demo {
    /// Starts the bridge, then registers the site at it (once: the
    /// credentials are kept in the bridge's data directory).
    pub async fn start(mut opts: DemoOptions) -> anyhow::Result<Demo> {
        // Everything of the demo runs on this machine: the bridge reaches
        // the agent at its loopback and private addresses.
        opts.settings.p2p.dial_private_addrs = true;
        // ... and the site, which registers itself, at its loopback address.
        opts.settings.oidc.private_backchannel_targets = true;
        let client_file: PathBuf = opts.settings.data_dir.join(CLIENT_FILE);
        let app = Application::build(
            opts.settings,
            Options {
                listener: opts.bridge_listener,
                ..Options::default()
            },
        )
        .await?;
        // After the build: an issuer on port 0 has taken the bound port.
        let issuer = app.state().settings.issuer.clone();
        crate::site::take_bound_port(&mut opts.site_url, &opts.site_listener);
        let bootstrap = app.p2p_addrs().iter().map(ToString::to_string).collect();
        let (bridge_stop, stopped) = oneshot::channel::<()>();
        let bridge = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let saved = read_client(&client_file);
        let site = Site::connect(SiteConfig {
            issuer: issuer.clone(),
            public_url: opts.site_url.clone(),
            client: saved.clone(),
        })
        .await?;
        if saved.is_none()
            && let Err(e) = write_client(&client_file, site.credentials())
        {
            warn!("the demo's client credentials are not saved: {e:#}");
        }
        Ok(Demo {
            issuer,
            site_url: opts.site_url,
            bootstrap,
            site,
            site_listener: opts.site_listener,
            bridge_stop,
            bridge,
        })
    }

    /// What to do next, for the person who started the demo.
    pub fn next_steps(&self) -> String {
        let bootstrap = self
            .bootstrap
            .iter()
            .find(|a| a.contains("/127.0.0.1/"))
            .or_else(|| self.bootstrap.first())
            .cloned()
            .unwrap_or_else(|| "<the bridge's DHT address>".into());
        format!(
            "\nThe Cyrcles demo is running.\n\
             \n  demo website   {site}\n  bridge (OIDC)  {issuer}\n\
             \nIn another terminal, install the agent and make an ego:\n\
             \n  cargo install --locked --path agent\n  \
             cyrcles daemon --bootstrap {bootstrap} &\n  \
             cyrcles ego create main          # prints your ego id\n\
             \nThen open {site}, click \"Login with Cyrcles\" and type the ego id. The page \
             shows a two-digit code; approve the login with it:\n\
             \n  cyrcles requests                 # the waiting request and its number\n  \
             cyrcles approve 1 --code NN      # or answer it in `cyrcles watch`\n\
             \nCtrl-C stops the demo.\n",
            site = self.site_url.as_str().trim_end_matches('/'),
            issuer = self.issuer,
        )
    }

    /// Serves the site until `shutdown`, then stops the bridge.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.site.router();
        let served = axum::serve(self.site_listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = self.bridge_stop.send(());
        match self.bridge.await {
            Ok(r) => r?,
            Err(e) => warn!("the bridge task ended abnormally: {e}"),
        }
        served.context("the demo site stopped")
    }
}
