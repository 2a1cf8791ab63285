//! The daemon: holds the keystore, runs one network node per ego, answers
//! login challenges under the person's policy, and serves the control
//! socket.
//!
//! State lives in [`Shared`]:
//! * `egos` ([`egos::EgoTable`]): every ego, its record and its node. The
//!   table is the only owner of the egos lock, a std mutex taken only in
//!   its synchronous methods, so no network, node or keystore await runs
//!   under it. A change of one ego (unlock, rotate, revoke, new
//!   endpoints, a circle commit) holds that ego's reservation
//!   ([`egos::Busy`]) instead: two changes of one ego never interleave,
//!   and a slow change of one ego holds up neither reads nor the others;
//!   `ego create` and recovery hold the new ego's name.
//!   Ceremonies through friends reserve the ego only to commit, after
//!   checking that it did not change meanwhile. Each change is one
//!   keystore transaction (recovery's finish: `install_recovered`);
//! * `signers`: the unlocked ego keys, read by the login path without
//!   waiting for ego changes;
//! * `approvals`: pending requests, quotas and the cached policies and bans;
//! * `data_key`: the keystore's data key while unlocked.
//!
//! Tasks: the socket server (`server.rs`), one event loop per node
//! (`inbound.rs`), and the maintenance loop that renews certificates and
//! endpoints (`maintenance.rs`).
//!
//! # Layout
//!
//! * Egos: `egos/` (each ego's state, lookups, endpoints, publication,
//!   storing a rotated or revoked record; `egos/table.rs`, the table and
//!   its lock), `lifecycle.rs` (create, start
//!   after an unlock, rotate, revoke, renew), `node.rs` (starting an ego's
//!   network node).
//! * `inbound.rs`: the one router of inbound network messages; every
//!   `NodeEvent` goes from there to its receiver, and receivers never
//!   route.
//! * Logins: `approval/` (answers under the person's policy; `local.rs`
//!   for local programs' signatures, `rules.rs` for the rules set by
//!   command), `pending.rs`, `quota.rs`, `source.rs`, `timing.rs`, `notify.rs`.
//! * Friends: `friends.rs` (invites), `hello_gate.rs`; `peers.rs` (a
//!   friend's node and record, used by every ceremony).
//! * Circles: `circle/owner.rs` (sharing, rotating and revoking through
//!   the friends), `circle/coordinator.rs` (the owner's FROST session),
//!   `circle/member.rs` (a friend's side), `circle/view.rs` (`circle
//!   show`, the kit's friends); `shares.rs` (shares held for friends, the
//!   refusals); `sessions.rs` (bounded session tables).
//! * Recovery: `recovery/new_device.rs`, `recovery/friend.rs`,
//!   `recovery_queue.rs`; repair of a share: `repair.rs`.
//! * `maintenance.rs`, `node_health.rs`, `server.rs` (the control socket).
//! * `error.rs`: the daemon's [`Error`]; only `server.rs` turns it into an
//!   error reply.
//!
//! Imports among these point one way (no cycle; the agent's test
//! `architecture::the_agent_daemon_has_no_module_cycle` checks it on every
//! test run): a receiver never imports the router, and `egos/` imports
//! none of the modules that change an ego.

mod approval;
mod circle;
mod egos;
mod error;
mod friends;
mod hello_gate;
mod inbound;
mod info;
mod lifecycle;
mod maintenance;
mod node;
mod node_health;
mod notify;
mod peers;
mod pending;
mod quota;
mod recovery;
mod recovery_queue;
mod repair;
mod server;
mod sessions;
mod shares;
mod source;
mod timing;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cyrcles_core::{EgoId, SecretKey, UnixTime};
use cyrcles_p2p::Clock;
use thiserror::Error;
use tokio::net::UnixListener;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::control::proto::WatchEvent;
use crate::home::{Home, HomeError};
use crate::keystore::seal::{KdfParams, SymmetricKey};
use crate::keystore::{Keystore, KeystoreError, Passphrase, Protection};

pub(crate) use approval::Approvals;
pub(crate) use error::{Error, Result, keystore_code};

/// What the daemon needs to start.
#[derive(Clone)]
pub struct DaemonOptions {
    /// The home directory.
    pub home: Home,
    /// Checked settings.
    pub settings: Settings,
    /// The clock (the system clock, or a test's).
    pub clock: Clock,
    /// The passphrase, for a passphrase-protected keystore.
    pub passphrase: Option<Passphrase>,
}

impl std::fmt::Debug for DaemonOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonOptions")
            .field("home", &self.home)
            .field("settings", &self.settings)
            .field("passphrase", &self.passphrase)
            .finish_non_exhaustive()
    }
}

/// Why the daemon could not start.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The home directory is unusable.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The keystore could not be opened or unlocked.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// Another daemon serves this home.
    #[error("another agent is already running on {0}")]
    AlreadyRunning(PathBuf),
    /// The socket could not be created.
    #[error("cannot listen on {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl DaemonError {
    /// The CLI's exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Home(_) => 7,
            DaemonError::Keystore(e) => keystore_code(e).exit_code(),
            DaemonError::AlreadyRunning(_) => 8,
            DaemonError::Socket { .. } => 1,
        }
    }
}

/// An unlocked ego key, as the login path uses it.
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    pub(crate) key: Arc<SecretKey>,
    pub(crate) cert_seq: u64,
}

/// The daemon's state, shared by its tasks.
pub(crate) struct Shared {
    pub(crate) home: Home,
    pub(crate) settings: Settings,
    pub(crate) clock: Clock,
    pub(crate) keystore: Keystore,
    pub(crate) protection: Protection,
    pub(crate) started_at: u64,
    pub(crate) data_key: RwLock<Option<SymmetricKey>>,
    pub(crate) egos: egos::EgoTable,
    pub(crate) signers: RwLock<HashMap<EgoId, Signer>>,
    pub(crate) approvals: Mutex<Approvals>,
    pub(crate) auto_times: Mutex<timing::Samples>,
    pub(crate) invites: Mutex<friends::Invites>,
    pub(crate) sessions: Mutex<circle::member::Sessions>,
    pub(crate) recoveries: Mutex<recovery::Recoveries>,
    pub(crate) changes: Mutex<circle::changes::Changes>,
    pub(crate) repairs: Mutex<repair::Repairs>,
    pub(crate) dkgs: Mutex<circle::dkg::Dkgs>,
    /// When old shares of friends' circles were last looked for.
    pub(crate) share_sweep: Mutex<Option<UnixTime>>,
    pub(crate) events: broadcast::Sender<WatchEvent>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) wake: Notify,
}

/// Locks a mutex; a panic elsewhere while holding it does not make the
/// data unusable here (every critical section leaves it consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The data key, or the "locked" error.
    pub(crate) fn data_key(&self) -> Result<SymmetricKey> {
        read(&self.data_key)
            .clone()
            .ok_or(Error::Locked(error::Locked::Keystore))
    }

    pub(crate) fn is_locked(&self) -> bool {
        read(&self.data_key).is_none()
    }

    pub(crate) fn emit(&self, event: WatchEvent) {
        // No watcher is not an error.
        let _ = self.events.send(event);
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    initialised: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("home", &self.home)
            .field("locked", &self.is_locked())
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Opens (or, on a fresh home, creates without a passphrase) the
    /// keystore, unlocks it when it can, binds the socket, starts every
    /// ego's node and the background tasks.
    pub async fn start(opts: DaemonOptions) -> Result<Daemon, DaemonError> {
        let DaemonOptions {
            home,
            settings,
            clock,
            passphrase,
        } = opts;
        home.ensure()?;
        let now = clock.now().secs();
        let (keystore, key, initialised) = if home.is_initialised() {
            let ks = Keystore::open(&home).await?;
            let key = match (ks.protection().await?, &passphrase) {
                (Protection::Passphrase, None) => None,
                (_, p) => Some(ks.unlock(&home, p.as_ref()).await?),
            };
            (ks, key, false)
        } else {
            let (ks, key) = Keystore::create(&home, None, KdfParams::default(), now).await?;
            (ks, Some(key), true)
        };
        let protection = keystore.protection().await?;
        let listener = bind(&home).await?;
        let (events, _) = broadcast::channel(64);
        let (stop, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            home,
            approvals: Mutex::new(Approvals::new(settings.quotas.clone())),
            auto_times: Mutex::new(timing::Samples::default()),
            invites: Mutex::new(friends::Invites::default()),
            sessions: Mutex::new(circle::member::Sessions::default()),
            recoveries: Mutex::new(recovery::Recoveries::default()),
            changes: Mutex::new(circle::changes::Changes::default()),
            repairs: Mutex::new(repair::Repairs::default()),
            dkgs: Mutex::new(circle::dkg::Dkgs::default()),
            share_sweep: Mutex::new(None),
            settings,
            clock,
            keystore,
            protection,
            started_at: now,
            data_key: RwLock::new(None),
            egos: egos::EgoTable::default(),
            signers: RwLock::new(HashMap::new()),
            events,
            stop,
            wake: Notify::new(),
        });
        egos::load(&shared).await?;
        approval::load_policies(&shared).await?;
        if let Some(key) = key {
            *write(&shared.data_key) = Some(key);
            lifecycle::activate(&shared).await;
        }
        let tasks = vec![
            tokio::spawn(server::serve(shared.clone(), listener)),
            tokio::spawn(maintenance::run(shared.clone())),
        ];
        Ok(Daemon {
            shared,
            tasks,
            initialised,
        })
    }

    /// Whether this start created the home's keystore.
    pub fn initialised_now(&self) -> bool {
        self.initialised
    }

    /// Whether the keys are locked (a passphrase is needed).
    pub fn is_locked(&self) -> bool {
        self.shared.is_locked()
    }

    /// The socket path.
    pub fn socket_path(&self) -> PathBuf {
        self.shared.home.socket_path()
    }

    /// Runs until `signal` completes or a client sends `stop`, then shuts
    /// down.
    pub async fn run(self, signal: impl Future<Output = ()>) {
        let mut stopped = self.shared.stop.subscribe();
        tokio::select! {
            _ = signal => {}
            _ = stopped.wait_for(|s| *s) => {}
        }
        self.shutdown().await;
    }

    /// Stops serving, refuses what waits, stops the nodes, closes the
    /// keystore and removes the socket.
    pub async fn shutdown(self) {
        let _ = self.shared.stop.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        approval::withdraw_all(&self.shared);
        egos::stop_nodes(&self.shared).await;
        *write(&self.shared.data_key) = None;
        write(&self.shared.signers).clear();
        self.shared.keystore.close().await;
        let _ = std::fs::remove_file(self.shared.home.socket_path());
    }
}

/// Binds the control socket with mode 0600, replacing a stale one and
/// refusing to start beside a live daemon.
async fn bind(home: &Home) -> Result<UnixListener, DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let path = home.socket_path();
    if path.exists() {
        if tokio::net::UnixStream::connect(&path).await.is_ok() {
            return Err(DaemonError::AlreadyRunning(path));
        }
        std::fs::remove_file(&path).map_err(|source| DaemonError::Socket {
            path: path.clone(),
            source,
        })?;
    }
    let listener = UnixListener::bind(&path).map_err(|source| DaemonError::Socket {
        path: path.clone(),
        source,
    })?;
    // The home is 0700 already; the socket's own mode is a second fence.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| DaemonError::Socket { path, source })?;
    Ok(listener)
}
