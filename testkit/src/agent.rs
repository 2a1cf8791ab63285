//! The agent as a person runs it: `cyrcles daemon` as a process on a home
//! of its own, and `cyrcles` commands run against that home.
//!
//! The binary is the caller's to name, as Cargo tells only the package
//! that builds a binary where it is: the agent's tests pass
//! `env!("CARGO_BIN_EXE_cyrcles")`, the journeys their own build of it.
//! Every daemon listens on loopback port 0 and dials private addresses
//! (everything in a test is on loopback); `CYRCLES_HOME` is never
//! inherited.

use std::ffi::OsStr;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::bounded;
use crate::temp::TempDir;
use crate::wait::{Poll, wait_for};

/// How long a daemon has to answer `cyrcles status` after it starts.
const START_SECS: u64 = 30;
/// How long a daemon has to exit after `cyrcles stop`.
const STOP_SECS: u64 = 20;

/// What a CLI command printed and returned.
#[derive(Debug)]
pub struct Output {
    /// The exit code (-1 if it was killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// The standard output as JSON, whatever the exit code.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Asserts success and returns the JSON output.
    pub fn ok(&self) -> Value {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self.json()
    }
}

/// How an [`Agent`] is set up; from [`Agent::builder`].
#[derive(Debug)]
pub struct AgentBuilder {
    bin: PathBuf,
    place: Option<(PathBuf, String)>,
    config: Option<String>,
    env: Vec<(String, String)>,
    bootstrap: Option<String>,
}

impl AgentBuilder {
    /// The home is `DIR/NAME` and the log `DIR/NAME.log`, left in `dir`
    /// when the agent is dropped. Without this, the agent has a
    /// [`TempDir`] of its own (home `home`, log `daemon.log`), removed with
    /// it.
    pub fn in_dir(mut self, dir: &Path, name: &str) -> Self {
        self.place = Some((dir.to_path_buf(), name.to_string()));
        self
    }

    /// Writes `toml` as the home's `config.toml` before the first start.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_string());
        self
    }

    /// An environment variable for the daemon (every start).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The daemon's `--bootstrap` address on its first start.
    pub fn bootstrap(mut self, addr: impl ToString) -> Self {
        self.bootstrap = Some(addr.to_string());
        self
    }

    /// The agent, not started. With a [`config`](AgentBuilder::config),
    /// its home is created (mode 0700, as the daemon makes it) holding
    /// it; otherwise the daemon creates the home.
    pub fn build(self) -> Agent {
        let (home, log, dir) = match &self.place {
            Some((dir, name)) => (dir.join(name), dir.join(format!("{name}.log")), None),
            None => {
                let dir = TempDir::new("cyt");
                (dir.join("home"), dir.join("daemon.log"), Some(dir))
            }
        };
        if let Some(toml) = &self.config {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&home).unwrap();
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::fs::write(home.join("config.toml"), toml).unwrap();
        }
        Agent {
            bin: self.bin,
            home,
            log,
            env: self.env,
            child: None,
            _dir: dir,
        }
    }

    /// The agent, started: its daemon answers.
    pub async fn start(self) -> Agent {
        let bootstrap = self.bootstrap.clone();
        let mut agent = self.build();
        agent
            .spawn(bootstrap.as_ref().map(|b| b as &dyn Display), &[])
            .await;
        agent
    }
}

/// A home and, while started, its `cyrcles daemon` process (killed on
/// drop).
#[derive(Debug)]
pub struct Agent {
    bin: PathBuf,
    pub home: PathBuf,
    /// The daemon's standard output and error, appended to on each start.
    pub log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    _dir: Option<TempDir>,
}

impl Agent {
    /// An agent run by the `cyrcles` binary at `bin`.
    pub fn builder(bin: impl Into<PathBuf>) -> AgentBuilder {
        AgentBuilder {
            bin: bin.into(),
            place: None,
            config: None,
            env: Vec::new(),
            bootstrap: None,
        }
    }

    /// An agent on an existing home, not started.
    pub fn on_home(bin: impl Into<PathBuf>, home: PathBuf, log: PathBuf) -> Agent {
        Agent {
            bin: bin.into(),
            home,
            log,
            env: Vec::new(),
            child: None,
            _dir: None,
        }
    }

    /// Starts the daemon on this home, joined to `bootstrap`, with
    /// `extra` flags; returns once `cyrcles status` answers. Panics with
    /// the log if the daemon exits first.
    pub async fn spawn(&mut self, bootstrap: Option<&dyn Display>, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = self.command(["daemon", "--listen", "/ip4/127.0.0.1/tcp/0"]);
        cmd.arg("--dial-private-addrs")
            .args(extra)
            .env("CYRCLES_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(b) = bootstrap {
            cmd.arg("--bootstrap").arg(b.to_string());
        }
        // In a mutex, so that each check can look at it.
        let child = Mutex::new(cmd.spawn().unwrap());
        let what = format!("the daemon of {} to start", self.home.display());
        wait_for(START_SECS, &what, || async {
            if self.cli(&["status"]).await.code == 0 {
                return Some(());
            }
            let exited = child.lock().unwrap().try_wait().ok().flatten();
            if let Some(status) = exited {
                panic!("the daemon exited ({status}): {}", self.log_text());
            }
            None
        })
        .await;
        self.child = Some(child.into_inner().unwrap());
    }

    /// `cyrcles --home HOME ARGS…` as a command to adjust and run (its
    /// standard input is null).
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        command(&self.bin, &self.home, args)
    }

    /// Runs `cyrcles --home HOME ARGS…`.
    pub async fn cli(&self, args: &[&str]) -> Output {
        cli(&self.bin, &self.home, args).await
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `cyrcles --json ARGS…`, asserting success.
    pub async fn json(&self, args: &[&str]) -> Value {
        self.cli(&json_args(args)).await.ok()
    }

    /// `cyrcles --json ARGS…` until it succeeds, trying every half second
    /// (each try may cost the network some work) for up to `secs`; panics
    /// naming `what` with the last output.
    pub async fn until_ok(&self, args: &[&str], what: &str, secs: u64) -> Value {
        let all = json_args(args);
        Poll::new(secs, what)
            .every(Duration::from_millis(500))
            .ok(|| async {
                let out = self.cli(&all).await;
                if out.code == 0 {
                    Ok(out.json())
                } else {
                    Err(out)
                }
            })
            .await
    }

    /// Creates an ego; returns its id, parsed as `T` (a `String` for its
    /// text).
    pub async fn create<T>(&self, name: &str) -> T
    where
        T: FromStr,
        T::Err: std::fmt::Debug,
    {
        let v = self.json(&["ego", "create", name]).await;
        v.get("ego_id")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no ego_id in {v}"))
            .parse()
            .unwrap()
    }

    /// Stops the daemon with `cyrcles stop`, asserting that the command
    /// succeeds and that the daemon then exits successfully.
    pub async fn stop(&mut self) {
        let out = self.cli(&["stop"]).await;
        assert_eq!(out.code, 0, "{out:?}");
        let mut child = self.child.take().expect("the daemon was not started");
        let status = bounded(STOP_SECS, "daemon stop", child.wait())
            .await
            .unwrap();
        assert!(status.success(), "the daemon exited with {status}");
    }

    /// What the daemon logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `cyrcles requests` lists a request for which `which`
    /// holds; returns it.
    pub async fn wait_request(&self, what: &str, which: impl Fn(&Value) -> bool) -> Value {
        wait_for(20, what, || async {
            let v = self.json(&["requests"]).await;
            v.get("requests")?
                .as_array()?
                .iter()
                .find(|r| which(r))
                .cloned()
        })
        .await
    }

    /// Runs a change of this agent's circle or the revocation of its ego
    /// (`circle add`, `circle remove`, `circle policy`, `ego revoke`) that
    /// the old circle's members' humans must approve: the command stops
    /// asking for approval and prints six digits; each of `approvers`
    /// approves the request `cyrcles circle requests` lists with those
    /// digits (as a friend does after a call); then the command runs again
    /// until it succeeds (for up to `secs`). Returns its JSON output.
    pub async fn with_approvals(&self, args: &[&str], approvers: &[&Agent], secs: u64) -> Value {
        let first = self.cli(&json_args(args)).await;
        assert_ne!(first.code, 0, "the change needed no approval: {first:?}");
        // With --json the error is printed on standard output.
        let fingerprint = fingerprint_in(&first.stdout)
            .or_else(|| fingerprint_in(&first.stderr))
            .unwrap_or_else(|| panic!("no fingerprint was shown: {first:?}"));
        for friend in approvers {
            friend.decide_change(&fingerprint, true).await;
        }
        self.until_ok(args, "the approved change", secs).await
    }

    /// Writes the recovery kit of `ego` to `dir/kit.json` (off the device,
    /// as the person keeps it); returns its path.
    pub async fn write_kit(&self, ego: &str, dir: &Path) -> PathBuf {
        let kit = dir.join("kit.json");
        let path = kit.to_str().expect("a UTF-8 kit path");
        self.json(&["ego", "recovery-kit", ego, "--out", path])
            .await;
        kit
    }

    /// Waits until `cyrcles circle requests` lists a friend's request with
    /// these six digits; returns it.
    pub async fn circle_request(&self, fingerprint: &str) -> Value {
        wait_for(60, "the friend's circle request", || async {
            let v = self.json(&["circle", "requests"]).await;
            v.get("requests")?
                .as_array()?
                .iter()
                .find(|r| r["fingerprint"] == fingerprint)
                .cloned()
        })
        .await
    }

    /// Approves (or denies) the circle request with these six digits once
    /// it is listed, as the friend's human does after the owner's call.
    pub async fn decide_change(&self, fingerprint: &str, approve: bool) {
        let r = self.circle_request(fingerprint).await;
        let id = r
            .get("id")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("a circle request without an id: {r}"));
        let verb = if approve { "approve" } else { "deny" };
        self.json(&["circle", verb, &id.to_string()]).await;
    }

    /// Waits until `cyrcles requests` lists at least `n` requests; returns
    /// them.
    pub async fn wait_requests(&self, n: usize) -> Vec<Value> {
        wait_for(20, "requests to arrive", || async {
            let v = self.json(&["requests"]).await;
            let list = v.get("requests")?.as_array()?;
            (list.len() >= n).then(|| list.clone())
        })
        .await
    }
}

/// `BIN --home HOME ARGS…` as a command (standard input null,
/// `CYRCLES_HOME` not inherited).
pub fn command<I, S>(bin: impl AsRef<Path>, home: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(bin.as_ref());
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("CYRCLES_HOME")
        .stdin(Stdio::null());
    cmd
}

/// Runs `BIN --home HOME ARGS…`, for a home without an [`Agent`].
pub async fn cli(bin: impl AsRef<Path>, home: &Path, args: &[&str]) -> Output {
    command(bin, home, args).output().await.unwrap().into()
}

/// The six digits `DDD DDD` that follow "fingerprint " in `text`.
pub fn fingerprint_in(text: &str) -> Option<String> {
    text.match_indices("fingerprint ").find_map(|(at, word)| {
        let digits = text.get(at + word.len()..at + word.len() + 7)?;
        let shape = digits.bytes().enumerate().all(|(i, c)| {
            if i == 3 {
                c == b' '
            } else {
                c.is_ascii_digit()
            }
        });
        shape.then(|| digits.to_owned())
    })
}

fn json_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    all
}
