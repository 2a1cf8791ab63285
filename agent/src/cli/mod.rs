//! The `cyrcles` command line. Every command but `init` and `daemon` is a
//! client of the daemon's socket.

mod args;
mod output;
mod stdout;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use cyrcles_p2p::Clock;

pub use args::{
    BanCommand, CircleCommand, Cli, Command, DaemonArgs, EgoCommand, FriendCommand, PolicyCommand,
    RecoverArgs, RecoveryCommand,
};

use crate::config::AgentConfig;
use crate::control::client::{Client, ClientError};
use crate::control::proto::{KitFriend, RecoveryKit, Reply, Request, SecretText};
use crate::daemon::{Daemon, DaemonOptions};
use crate::home::Home;
use crate::keystore::seal::KdfParams;
use crate::keystore::{Keystore, KeystoreError, Passphrase};
use crate::network_memory;
use stdout::outln;

/// A failed command: its message and exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
    pub(crate) kind: &'static str,
}

impl Failure {
    pub(crate) fn new(code: u8, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            kind,
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let kind = match &e {
            ClientError::NotRunning { .. } => "not-running",
            ClientError::Forbidden { .. } => "refused",
            ClientError::Daemon(d) => output::code_name(d.code),
            _ => "internal",
        };
        Failure::new(e.exit_code(), kind, e.to_string())
    }
}

impl From<KeystoreError> for Failure {
    fn from(e: KeystoreError) -> Self {
        let code = crate::daemon::keystore_code(&e);
        Failure::new(code.exit_code(), output::code_name(code), e.to_string())
    }
}

/// Runs the command line and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = cli.json;
    let runtime = match &cli.command {
        Command::Daemon(_) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cyrcles: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli));
    // A read of the terminal may still wait in a blocking thread (`watch`);
    // do not wait for a line nobody will type.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            output::failure(&f, json);
            ExitCode::from(f.code)
        }
    }
}

fn home_of(cli: &Cli) -> Result<Home, Failure> {
    Home::resolve(cli.home.clone()).map_err(|e| Failure::new(7, "damaged", e.to_string()))
}

/// Reads a passphrase from a file, or standard input for "-".
fn read_passphrase(path: &Path) -> Result<Passphrase, Failure> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).map_err(|e| {
            Failure::new(2, "bad-request", format!("cannot read standard input: {e}"))
        })?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| {
            Failure::new(
                2,
                "bad-request",
                format!("cannot read {}: {e}", path.display()),
            )
        })?
    };
    Passphrase::new(text).map_err(Failure::from)
}

/// Largest recovery kit read.
const MAX_KIT_LEN: u64 = 64 * 1024;

/// `recover`: the friends from the kit, or from the command line.
fn recover_request(args: RecoverArgs) -> Result<Request, Failure> {
    let bad = |m: String| Failure::new(2, "bad-request", m);
    let (ego_id, friends) = match (&args.kit, args.ego_id) {
        (Some(path), _) => {
            let len = std::fs::metadata(path)
                .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?
                .len();
            if len > MAX_KIT_LEN {
                return Err(bad(format!("{} is too large for a kit", path.display())));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
            let kit: RecoveryKit = serde_json::from_str(&text)
                .map_err(|e| bad(format!("{} is not a recovery kit: {e}", path.display())))?;
            if kit.format != "cyrcles-recovery-kit" || kit.version != 1 {
                return Err(bad(format!(
                    "{} is not a recovery kit of a version this agent reads",
                    path.display()
                )));
            }
            if kit.friends.is_empty() {
                return Err(bad(
                    "the kit names no friend: it was written before the circle was shared".into(),
                ));
            }
            (kit.ego_id, kit.friends)
        }
        (None, Some(id)) => (
            id,
            args.friend
                .into_iter()
                .enumerate()
                .map(|(i, ego_id)| KitFriend {
                    name: format!("friend-{}", i + 1),
                    ego_id,
                    peer_id: String::new(),
                })
                .collect(),
        ),
        (None, None) => return Err(bad("give --kit FILE, or --ego-id ID with --friend".into())),
    };
    Ok(Request::Recover {
        name: args.name,
        ego_id,
        friends,
    })
}

async fn call(home: &Home, request: Request) -> Result<Reply, Failure> {
    Ok(Client::call(home, &request).await?)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let home = home_of(&cli)?;
    let json = cli.json;
    let request = match cli.command {
        Command::Init { passphrase_file } => return init(&home, passphrase_file, json).await,
        Command::Daemon(args) => return daemon(home, args).await,
        Command::Watch => return watch::run(&home, json).await,
        Command::Sign { ego, reason, nonce } => {
            return sign(&home, Request::Sign { ego, reason, nonce }, json).await;
        }
        Command::Friend(FriendCommand::Invite { ego, name }) => {
            return invite(&home, Request::FriendInvite { ego, name }, json).await;
        }
        Command::Friend(FriendCommand::Accept { code, ego, name }) => Request::FriendAccept {
            code: SecretText::new(code),
            ego,
            name,
        },
        Command::Friend(FriendCommand::List) => Request::FriendList,
        Command::Circle(CircleCommand::Add { ego, friend }) => Request::CircleAdd { ego, friend },
        Command::Circle(CircleCommand::Remove { ego, friend }) => {
            Request::CircleRemove { ego, friend }
        }
        Command::Circle(CircleCommand::Show { ego }) => Request::CircleShow { ego },
        Command::Circle(CircleCommand::Requests) => Request::CircleRequests,
        Command::Circle(CircleCommand::Approve { id }) => Request::CircleApprove { id },
        Command::Circle(CircleCommand::Deny { id }) => Request::CircleDeny { id },
        Command::Circle(CircleCommand::Repair { ego, friend }) => {
            Request::CircleRepair { ego, friend }
        }
        Command::Circle(CircleCommand::Policy { ego, threshold }) => {
            Request::CirclePolicy { ego, threshold }
        }
        Command::Shares => Request::Shares,
        Command::Recover(args) => recover_request(args)?,
        Command::Recovery(RecoveryCommand::List) => Request::RecoveryList,
        Command::Recovery(RecoveryCommand::Approve { id }) => Request::RecoveryApprove { id },
        Command::Recovery(RecoveryCommand::Deny { id }) => Request::RecoveryDeny { id },
        Command::Recovery(RecoveryCommand::Object { ego }) => Request::RecoveryObject { ego },
        Command::Status => Request::Status,
        Command::Unlock { passphrase_file } => {
            let p = read_passphrase(&passphrase_file)?;
            Request::Unlock {
                passphrase: SecretText::new(p.expose().to_string()),
            }
        }
        Command::Lock => Request::Lock,
        Command::Stop => Request::Stop,
        Command::Ego(c) => match c {
            EgoCommand::Create { name } => Request::EgoCreate { name },
            EgoCommand::List => Request::EgoList,
            EgoCommand::Show { name } => Request::EgoShow { name },
            EgoCommand::Rotate { name } => Request::EgoRotate { name },
            EgoCommand::Revoke { name, yes } => {
                if !yes
                    && !output::confirm(&format!(
                        "Revoke ego {name:?} for good? Bridges will refuse it and it cannot be undone."
                    ))
                {
                    return Err(Failure::new(
                        8,
                        "conflict",
                        "not revoked (confirm with --yes, or answer yes at the prompt)",
                    ));
                }
                Request::EgoRevoke { name }
            }
            EgoCommand::RecoveryKit { name, out } => {
                let reply = call(&home, Request::RecoveryKit { name }).await?;
                return output::kit(reply, out.as_deref(), json);
            }
        },
        Command::Requests => Request::Requests,
        Command::Approve {
            id,
            code,
            remember,
            auto,
        } => Request::Approve {
            id,
            code,
            remember,
            auto,
        },
        Command::Deny {
            id,
            ban_site,
            ban_bridge,
            not_me,
        } => Request::Deny {
            id,
            ban_site,
            ban_bridge,
            not_me,
        },
        Command::Policy(c) => match c {
            PolicyCommand::Allow {
                ego,
                bridge,
                client,
                auto,
            } => Request::PolicyAllow {
                ego,
                bridge,
                client,
                auto,
            },
            PolicyCommand::List => Request::PolicyList,
            PolicyCommand::Remove { id } => Request::PolicyRemove { id },
        },
        Command::Ban(c) => match c {
            BanCommand::List => Request::BanList,
            BanCommand::Remove { id } => Request::BanRemove { id },
            BanCommand::Add {
                ego,
                bridge,
                client,
                program,
            } => {
                use crate::keystore::BanTarget;
                let target = match (bridge, client, program) {
                    (_, _, Some(path)) => BanTarget::Program { path },
                    (Some(issuer), Some(client_id), None) => BanTarget::Site { issuer, client_id },
                    (Some(issuer), None, None) => BanTarget::Bridge { issuer },
                    _ => {
                        return Err(Failure::new(
                            2,
                            "bad-request",
                            "give --ego NAME --bridge ISSUER [--client CLIENT_ID], or --program PATH",
                        ));
                    }
                };
                Request::BanAdd { ego, target }
            }
        },
    };
    let reply = call(&home, request).await?;
    output::reply(&reply, json);
    Ok(())
}

async fn init(home: &Home, passphrase_file: Option<PathBuf>, json: bool) -> Result<(), Failure> {
    let passphrase = passphrase_file
        .as_deref()
        .map(read_passphrase)
        .transpose()?;
    home.ensure()
        .map_err(|e| Failure::new(7, "damaged", e.to_string()))?;
    let now = Clock::system().now().secs();
    let (store, _key) =
        Keystore::create(home, passphrase.as_ref(), KdfParams::default(), now).await?;
    store.close().await;
    let protection = if passphrase.is_some() {
        "a passphrase".to_string()
    } else {
        format!("the key file {} (mode 0600)", home.key_path().display())
    };
    let message = format!(
        "Initialised {}; the keys are protected by {protection}.\n\
         Next: `cyrcles daemon`, then `cyrcles ego create NAME`.",
        home.dir().display()
    );
    output::reply(&Reply::Done { message }, json);
    Ok(())
}

async fn daemon(home: Home, args: DaemonArgs) -> Result<(), Failure> {
    output::init_logging();
    let bad = |e: &dyn std::fmt::Display| Failure::new(2, "bad-request", e.to_string());
    let mut config = AgentConfig::load(&home.config_path()).map_err(|e| bad(&e))?;
    // The network: the flag (remembered once valid), else the file's
    // setting, else what an earlier start remembered.
    let given = !args.bootstrap.is_empty();
    let mut from_memory = false;
    if given {
        config.network.bootstrap = args.bootstrap;
    } else if config.network.bootstrap.is_empty() {
        config.network.bootstrap = network_memory::remembered(&home).map_err(|e| bad(&e))?;
        from_memory = !config.network.bootstrap.is_empty();
    }
    if !args.listen.is_empty() {
        config.network.listen = args.listen;
    }
    if !args.relay.is_empty() {
        config.network.relays = args.relay;
    }
    if args.dial_private_addrs {
        config.network.dial_private_addrs = true;
    }
    let settings = config.validate().map_err(|e| bad(&e))?;
    let bootstrap = config.network.bootstrap.clone();
    let passphrase = args
        .passphrase_file
        .as_deref()
        .map(read_passphrase)
        .transpose()?;
    let d = Daemon::start(DaemonOptions {
        home: home.clone(),
        settings,
        clock: Clock::system(),
        passphrase,
    })
    .await
    .map_err(|e| Failure::new(e.exit_code(), "daemon", e.to_string()))?;
    if d.initialised_now() {
        eprintln!(
            "cyrcles: initialised a new home at {} without a passphrase: the keys are sealed \
             under the key file {} (mode 0600). For a passphrase instead, run \
             `cyrcles init --passphrase-file FILE` on a fresh home.",
            home.dir().display(),
            home.key_path().display()
        );
    }
    if d.is_locked() {
        eprintln!("cyrcles: the keystore is locked; run `cyrcles unlock --passphrase-file FILE`.");
    }
    eprintln!(
        "cyrcles: agent {} running (pid {}), socket {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        d.socket_path().display()
    );
    if given {
        // The home exists now: the next plain `cyrcles daemon` joins here.
        if let Err(e) = network_memory::remember(&home, &bootstrap) {
            eprintln!("cyrcles: cannot remember the bootstrap addresses: {e}");
        }
    } else if from_memory {
        eprintln!(
            "cyrcles: joining the network through {} remembered address(es) (from an earlier \
             `--bootstrap`)",
            bootstrap.len()
        );
    } else if bootstrap.is_empty() {
        eprintln!(
            "cyrcles: no bootstrap address: this agent joins no network. Start it once with \
             `cyrcles daemon --bootstrap ADDR` (a bridge prints its address); it is remembered"
        );
    }
    d.run(shutdown_signal()).await;
    eprintln!("cyrcles: agent stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        // Without signal handlers the daemon still stops on `cyrcles stop`.
        _ => std::future::pending::<()>().await,
    }
}

async fn sign(home: &Home, request: Request, json: bool) -> Result<(), Failure> {
    let mut c = Client::connect(home).await?;
    c.send(&request).await?;
    loop {
        match c.next().await? {
            Some(Reply::SignPending { id, code }) => {
                eprintln!(
                    "Waiting for approval: run `cyrcles approve {id} --code {code:02}` \
                     (or answer in `cyrcles watch`)."
                );
            }
            Some(reply @ Reply::Signed(_)) => {
                output::reply(&reply, json);
                return Ok(());
            }
            other => return Err(stream_broke(other)),
        }
    }
}

/// `friend invite`: prints the code, then waits for the friend.
async fn invite(home: &Home, request: Request, json: bool) -> Result<(), Failure> {
    let mut c = Client::connect(home).await?;
    c.send(&request).await?;
    loop {
        match c.next().await? {
            Some(open @ Reply::InviteOpen { .. }) => {
                if json {
                    // One JSON document per line, so a script reads the code
                    // before the friend answers.
                    outln!("{}", serde_json::to_string(&open).unwrap_or_default());
                } else {
                    output::reply(&open, false);
                }
            }
            Some(friend @ Reply::Friend(_)) => {
                if json {
                    outln!("{}", serde_json::to_string(&friend).unwrap_or_default());
                } else {
                    output::reply(&friend, false);
                }
                return Ok(());
            }
            other => return Err(stream_broke(other)),
        }
    }
}

/// A streamed answer that is not the next step: an unexpected reply, or
/// the agent closing the connection.
fn stream_broke(reply: Option<Reply>) -> Failure {
    match reply {
        Some(other) => Failure::new(1, "internal", format!("unexpected answer: {other:?}")),
        None => Failure::new(1, "internal", "the agent closed the connection"),
    }
}
