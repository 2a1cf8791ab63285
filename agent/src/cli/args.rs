//! The `cyrcles` command line's arguments: the commands, their options and
//! the exit codes they document.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    pub(super) kit: Option<PathBuf>,
    /// Without a kit: the ego id to recover
    #[arg(long, value_name = "ID", requires = "friend")]
    pub(super) ego_id: Option<String>,
    /// Without a kit: a friend's ego id, as they read it to you (repeat
    /// for each friend you can reach)
    #[arg(long, value_name = "EGO_ID", conflicts_with = "kit")]
    pub(super) friend: Vec<String>,
    /// The local name of the recovered ego
    #[arg(long, value_name = "NAME", default_value = "main")]
    pub(super) name: String,
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
    /// Tell your friends you did not ask for a recovery of your ego that
    /// this device was warned of: their approvals pause until they decide
    /// again
    Object {
        /// Your ego
        ego: String,
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
    /// List friends' requests to change their circle or end their ego,
    /// which wait for you
    Requests,
    /// Approve a friend's circle change or revocation: call them first and
    /// compare the six digits
    Approve {
        /// The request's id (see `cyrcles circle requests`)
        id: u64,
    },
    /// Deny a friend's circle change or revocation
    Deny {
        /// The request's id
        id: u64,
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
