//! The `cyrcles` command line. Every command but `init` and `daemon` is a
//! client of the daemon's socket.

mod output;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cyrcles_p2p::system_clock;

use crate::config::AgentConfig;
use crate::control::client::{Client, ClientError};
use crate::control::proto::{KitFriend, RecoveryKit, Reply, Request, SecretText};
use crate::daemon::{Daemon, DaemonOptions};
use crate::home::Home;
use crate::keystore::seal::KdfParams;
use crate::keystore::{Keystore, KeystoreError, Passphrase};

const EXIT_CODES: &str = "\
Exit codes:
  0  success                      6  the keystore is locked, or wrong passphrase
  1  internal or connection error 7  the keystore or home is damaged or unsafe
  2  usage error, invalid value   8  already exists, or its state forbids it
  3  the agent is not running     9  refused (another user, a ban, a quota, denied)
  4  no such ego or request       10 expired before anyone answered
  5  wrong match code             11 the network did not answer";

/// Cyrcles: log in with keys you hold, vouched for by your friends.
///
/// The agent keeps your egos (personas) and their keys, keeps their
/// records published, and answers login requests from websites: each
/// request waits until you type the two-digit code shown on the login
/// page.
#[derive(Debug, Parser)]
#[command(name = "cyrcles", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The agent's home directory [default: $XDG_DATA_HOME/cyrcles, or
    /// ~/.local/share/cyrcles]
    #[arg(long, global = true, env = "CYRCLES_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Print JSON for scripts instead of text
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the home directory and its keystore
    Init {
        /// Protect the keys with the passphrase in FILE ("-" reads standard
        /// input); without it, a key file with mode 0600 protects them
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Run the agent in the foreground (a fresh home is initialised
    /// without a passphrase)
    Daemon(DaemonArgs),
    /// Show whether the agent runs, and its state
    Status,
    /// Unlock a passphrase-protected keystore
    Unlock {
        /// Read the passphrase from FILE ("-" reads standard input)
        #[arg(long, value_name = "FILE")]
        passphrase_file: PathBuf,
    },
    /// Forget the keys in memory until the next unlock
    Lock,
    /// Stop the agent
    Stop,
    /// Create, show, rotate and revoke egos
    #[command(subcommand)]
    Ego(EgoCommand),
    /// List the requests waiting for you
    Requests,
    /// Approve a request with the code shown on the login page
    Approve {
        /// The request's id (see `cyrcles requests`)
        id: u64,
        /// The two-digit code shown on the login page
        #[arg(long, value_name = "NN", value_parser = clap::value_parser!(u8).range(0..=99))]
        code: u8,
        /// Remember this site for this ego
        #[arg(long)]
        remember: bool,
        /// With --remember: approve this site's next logins without asking
        #[arg(long, requires = "remember")]
        auto: bool,
    },
    /// Deny a request
    Deny {
        /// The request's id
        id: u64,
        /// Also ban the site (for a local request: the program)
        #[arg(long)]
        ban_site: bool,
        /// Also ban the bridge
        #[arg(long)]
        ban_bridge: bool,
        /// It was not me: deny, ban the site and record the attempt
        #[arg(long)]
        not_me: bool,
    },
    /// Show requests as they come and answer them here
    Watch,
    /// Ask the agent to sign for a local program (the person approves it)
    Sign {
        /// The ego that signs
        #[arg(long, value_name = "NAME")]
        ego: String,
        /// Why, shown to the person
        #[arg(long)]
        reason: String,
        /// A nonce to sign (hex, 16 to 64 bytes); one is chosen if absent
        #[arg(long)]
        nonce: Option<String>,
    },
    /// Remember sites, and let some log in without asking
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Ban sites, bridges and local programs
    #[command(subcommand)]
    Ban(BanCommand),
    /// Make friends: invite, accept an invite, list
    #[command(subcommand)]
    Friend(FriendCommand),
    /// Choose the friends who hold an ego's circle key, and how many must sign
    #[command(subcommand)]
    Circle(CircleCommand),
    /// List the shares this agent holds for friends' circles
    Shares,
    /// Recover an ego on this device after losing the old one: the circle's
    /// friends approve a new key
    Recover(RecoverArgs),
    /// Friends' recovery requests (approve or deny them), and this device's
    /// own recoveries
    #[command(subcommand)]
    Recovery(RecoveryCommand),
}

/// `cyrcles recover`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("from").required(true).args(["kit", "ego_id"])))]
pub struct RecoverArgs {
    /// The ego's recovery kit (`cyrcles ego recovery-kit NAME --out FILE`)
    #[arg(long, value_name = "FILE")]
    kit: Option<PathBuf>,
    /// Without a kit: the ego id to recover
    #[arg(long, value_name = "ID", requires = "friend")]
    ego_id: Option<String>,
    /// Without a kit: a friend's ego id, as they read it to you (repeat
    /// for each friend you can reach)
    #[arg(long, value_name = "EGO_ID", conflicts_with = "kit")]
    friend: Vec<String>,
    /// The local name of the recovered ego
    #[arg(long, value_name = "NAME", default_value = "main")]
    name: String,
}

/// `cyrcles recovery`.
#[derive(Debug, Subcommand)]
pub enum RecoveryCommand {
    /// List friends' recovery requests and this device's recoveries
    List,
    /// Approve a friend's recovery request: call them first and compare
    /// the six digits
    Approve {
        /// The request's id (see `cyrcles recovery list`)
        id: u64,
    },
    /// Deny a friend's recovery request
    Deny {
        /// The request's id
        id: u64,
    },
}

/// `cyrcles circle`.
#[derive(Debug, Subcommand)]
pub enum CircleCommand {
    /// Add a friend to an ego's circle (the circle is shared again once it
    /// has at least 2 friends)
    Add {
        /// Your ego
        ego: String,
        /// The friend's name (see `cyrcles friend list`)
        friend: String,
    },
    /// Remove a friend from an ego's circle (the circle is shared again
    /// without them)
    Remove {
        /// Your ego
        ego: String,
        /// The friend's name
        friend: String,
    },
    /// Rebuild a friend's lost share (after they lost their home) with a
    /// threshold of the other friends; nobody learns any share
    Repair {
        /// Your ego
        ego: String,
        /// The friend whose share is lost
        friend: String,
    },
    /// Show an ego's circle: members, threshold, state
    Show {
        /// Your ego
        ego: String,
    },
    /// Set how many friends must sign (at least 2; all of them for a strict
    /// circle)
    Policy {
        /// Your ego
        ego: String,
        /// Friends needed to sign
        #[arg(long, value_name = "T")]
        threshold: u16,
    },
}

/// `cyrcles friend`.
#[derive(Debug, Subcommand)]
pub enum FriendCommand {
    /// Open an invite for one of your egos and wait for the friend (prints
    /// a code such as 4821-orbit-ladder to read to them; it works once,
    /// for 10 minutes)
    Invite {
        /// Your ego the friend joins
        #[arg(long, value_name = "NAME")]
        ego: String,
        /// Your name for the friend (default: their ego's fingerprint)
        #[arg(long, value_name = "PETNAME")]
        name: Option<String>,
    },
    /// Accept the invite code a friend read to you
    Accept {
        /// The code, such as 4821-orbit-ladder
        code: String,
        /// Your ego that befriends (needed when you have several)
        #[arg(long = "as", value_name = "EGO")]
        ego: Option<String>,
        /// Your name for the friend (default: their ego's fingerprint)
        #[arg(long, value_name = "PETNAME")]
        name: Option<String>,
    },
    /// List your friends, per ego
    List,
}

/// `cyrcles daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Join the network through this peer (repeatable;
    /// /ip4/…/tcp/…/p2p/<id>); replaces network.bootstrap
    #[arg(
        long = "bootstrap",
        value_name = "MULTIADDR",
        env = "CYRCLES_BOOTSTRAP",
        value_delimiter = ','
    )]
    pub bootstrap: Vec<String>,
    /// Listen on this address (repeatable); replaces network.listen
    #[arg(
        long = "listen",
        value_name = "MULTIADDR",
        env = "CYRCLES_LISTEN",
        value_delimiter = ','
    )]
    pub listen: Vec<String>,
    /// Reserve a relay circuit at this bridge (repeatable); replaces
    /// network.relays
    #[arg(
        long = "relay",
        value_name = "MULTIADDR",
        env = "CYRCLES_RELAY",
        value_delimiter = ','
    )]
    pub relay: Vec<String>,
    /// Dial loopback and private addresses that friends' records name (for
    /// friends on this machine or network); sets network.dial_private_addrs
    #[arg(long = "dial-private-addrs", env = "CYRCLES_DIAL_PRIVATE_ADDRS")]
    pub dial_private_addrs: bool,
    /// Unlock a passphrase-protected keystore with the passphrase in FILE
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// `cyrcles ego …`.
#[derive(Debug, Subcommand)]
pub enum EgoCommand {
    /// Create an ego and publish it; prints its id
    Create {
        /// A local name for it (never published)
        name: String,
    },
    /// List the egos
    List,
    /// Show an ego: id, fingerprint, certificate, circle, endpoints
    Show {
        /// The ego's name
        name: String,
    },
    /// Certify a new ego key now (the agent also does it at half-life)
    Rotate {
        /// The ego's name
        name: String,
    },
    /// Revoke an ego for good: bridges refuse it from then on
    Revoke {
        /// The ego's name
        name: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
    /// Write the ego's recovery kit (no secret in it)
    RecoveryKit {
        /// The ego's name
        name: String,
        /// Write to FILE instead of standard output
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `cyrcles policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Remember a site (a client at a bridge) for an ego
    Allow {
        /// The ego's name
        #[arg(long, value_name = "NAME")]
        ego: String,
        /// The bridge's issuer URL
        #[arg(long, value_name = "ISSUER")]
        bridge: String,
        /// The site's client id at that bridge
        #[arg(long, value_name = "CLIENT_ID")]
        client: String,
        /// Approve its logins without asking
        #[arg(long)]
        auto: bool,
    },
    /// List remembered sites
    List,
    /// Forget a remembered site
    Remove {
        /// Its id (see `policy list`)
        id: i64,
    },
}

/// `cyrcles ban …`.
#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// List bans
    List,
    /// Ban a site or a bridge for an ego, or a local program for all
    Add {
        /// The ego (site and bridge bans)
        #[arg(long, value_name = "NAME")]
        ego: Option<String>,
        /// The bridge's issuer URL
        #[arg(long, value_name = "ISSUER")]
        bridge: Option<String>,
        /// With --bridge: only this client (site)
        #[arg(long, value_name = "CLIENT_ID", requires = "bridge")]
        client: Option<String>,
        /// A local program's path
        #[arg(long, value_name = "PATH", conflicts_with_all = ["bridge", "client", "ego"])]
        program: Option<String>,
    },
    /// Lift a ban
    Remove {
        /// Its id (see `ban list`)
        id: i64,
    },
}

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
        let reply = crate::control::proto::ErrorReply::from(&e);
        Failure::new(
            reply.code.exit_code(),
            output::code_name(reply.code),
            reply.message,
        )
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
    let now = system_clock()().secs();
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
    if !args.bootstrap.is_empty() {
        config.network.bootstrap = args.bootstrap;
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
    let passphrase = args
        .passphrase_file
        .as_deref()
        .map(read_passphrase)
        .transpose()?;
    let d = Daemon::start(DaemonOptions {
        home: home.clone(),
        settings,
        clock: system_clock(),
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
                    println!("{}", serde_json::to_string(&open).unwrap_or_default());
                } else {
                    output::reply(&open, false);
                }
            }
            Some(friend @ Reply::Friend(_)) => {
                if json {
                    println!("{}", serde_json::to_string(&friend).unwrap_or_default());
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
