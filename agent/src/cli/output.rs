//! What the CLI prints: text for people, JSON with `--json`.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use cyrcles_p2p::Clock;

use super::Failure;
use super::stdout::{out, outln};
use crate::control::proto::{
    BanInfo, EgoInfo, ErrorCode, PolicyInfo, Reply, RequestInfo, StatusInfo,
};
use crate::keystore::{BanReason, BanTarget, PolicyOrigin};
use crate::text::{for_terminal, untrusted};

mod circles;
use circles::{changes_text, circle_text, friend_text, recoveries_text};

/// The stable name of an error code (as in the JSON output).
pub(crate) fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Internal => "internal",
        ErrorCode::BadRequest => "bad-request",
        ErrorCode::NotFound => "not-found",
        ErrorCode::WrongCode => "wrong-code",
        ErrorCode::Locked => "locked",
        ErrorCode::Damaged => "damaged",
        ErrorCode::Conflict => "conflict",
        ErrorCode::Refused => "refused",
        ErrorCode::Expired => "expired",
        ErrorCode::Network => "network",
    }
}

/// Starts the daemon's log output on standard error (`CYRCLES_LOG` sets
/// the filter; default `info`).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CYRCLES_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Prints a failure: to standard error, or as JSON on standard output.
pub(crate) fn failure(f: &Failure, json: bool) {
    if json {
        let v = serde_json::json!({ "error": { "code": f.kind, "message": f.message } });
        outln!("{v}");
    } else {
        eprintln!("cyrcles: {}", for_terminal(&f.message));
    }
}

/// Asks a yes/no question on the terminal; `false` without one.
pub(crate) fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes")
}

/// Civil date from days since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// `2026-11-24 10:00 UTC`.
pub(crate) fn date(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `in 3 days`, `5 min ago`.
pub(crate) fn relative(secs: u64, now: u64) -> String {
    let (delta, future) = if secs >= now {
        (secs - now, true)
    } else {
        (now - secs, false)
    };
    if delta == 0 {
        return "just now".into();
    }
    let amount = crate::text::duration(delta);
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

fn when(secs: u64, now: u64) -> String {
    format!("{} ({})", date(secs), relative(secs, now))
}

fn now() -> u64 {
    Clock::system().now().secs()
}

fn ego_text(e: &EgoInfo, now: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", e.name);
    let _ = writeln!(s, "  ego id          {}", e.ego_id);
    let _ = writeln!(s, "  fingerprint     {}", e.fingerprint);
    let _ = writeln!(s, "  state           {}", e.state);
    match e.node.as_deref() {
        Some("stopped") => {
            let _ = writeln!(
                s,
                "  node            STOPPED: no login reaches this ego; restart the agent"
            );
        }
        Some(other) => {
            let _ = writeln!(s, "  node            {other}");
        }
        None => {}
    }
    if let Some(d) = &e.damage {
        let _ = writeln!(s, "  damage          {d}");
    }
    if e.state == "damaged" && e.cert_seq == 0 {
        return s;
    }
    let _ = writeln!(
        s,
        "  certificate     seq {}, valid until {}",
        e.cert_seq,
        when(e.cert_not_after, now)
    );
    if let Some(t) = e.next_rotation {
        let _ = writeln!(s, "  next rotation   {}", when(t, now));
    }
    let _ = writeln!(s, "  circle          {}", e.circle);
    match &e.endpoints {
        Some(ep) => {
            let _ = writeln!(
                s,
                "  endpoints       seq {}, valid until {}",
                ep.seq,
                when(ep.expires_at, now)
            );
            for p in &ep.peers {
                let _ = writeln!(s, "    peer          {}", p.peer_id);
                for a in &p.addrs {
                    let _ = writeln!(s, "                  {a}");
                }
            }
        }
        None => {
            let _ = writeln!(s, "  endpoints       none (not reachable for logins)");
        }
    }
    match e.last_published_at {
        Some(t) => {
            let _ = writeln!(s, "  published       {}", when(t, now));
        }
        None => {
            let _ = writeln!(s, "  published       not yet");
        }
    }
    if let Some(err) = &e.last_error {
        let _ = writeln!(s, "  last problem    {err}");
    }
    if let Some(err) = &e.rotation_problem {
        let _ = writeln!(
            s,
            "  rotation        failed, tried again at the next rotation time: {err}"
        );
    }
    s
}

fn request_text(r: &RequestInfo, now: u64) -> String {
    let mut s = String::new();
    // Everything a request names but its id and ego came from whoever
    // sent it.
    let field = |v: Option<&str>, none: &'static str| untrusted(v.unwrap_or(none)).into_owned();
    match r.kind.as_str() {
        "local" => {
            let _ = writeln!(
                s,
                "[{}] {} ← program {} (pid {}): {}",
                r.id,
                r.ego,
                field(r.program.as_deref(), "?"),
                r.program_pid.map_or("?".to_string(), |p| p.to_string()),
                untrusted(&r.site)
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "[{}] {} ← {} ({}){}",
                r.id,
                r.ego,
                untrusted(&r.site),
                field(r.origin.as_deref(), "?"),
                if r.known_site {
                    ", a remembered site"
                } else {
                    ""
                }
            );
            let _ = writeln!(
                s,
                "    through {} (client {}), browser at {}",
                field(r.bridge.as_deref(), "?"),
                field(r.client_id.as_deref(), "?"),
                field(r.client_ip.as_deref(), "an unreported address")
            );
            if r.confirm {
                let _ = writeln!(
                    s,
                    "    the site asks you to confirm this login yourself: no remembered site or policy answers it"
                );
            }
        }
    }
    let _ = write!(
        s,
        "    received {}, expires {}",
        relative(r.received_at, now),
        relative(r.expires_at, now)
    );
    if r.wrong_codes > 0 {
        let _ = write!(s, ", {} wrong code(s) typed", r.wrong_codes);
    }
    s
}

/// One request, for `watch` (safe to print).
pub(crate) fn request_line(r: &RequestInfo) -> String {
    for_terminal(&request_text(r, now())).into_owned()
}

fn policy_text(p: &PolicyInfo) -> String {
    format!(
        "[{}] {}: client {} at {} ({}{})",
        p.id,
        p.ego,
        untrusted(&p.client),
        untrusted(&p.bridge),
        match p.origin {
            PolicyOrigin::Policy => "a policy",
            PolicyOrigin::RememberedSite => "remembered when you approved a login",
        },
        if p.auto {
            ", approved without asking"
        } else {
            ""
        }
    )
}

fn ban_text(b: &BanInfo) -> String {
    let what = match &b.target {
        BanTarget::Site { issuer, client_id } => {
            format!("site {} at {}", untrusted(client_id), untrusted(issuer))
        }
        BanTarget::Bridge { issuer } => format!("bridge {}", untrusted(issuer)),
        BanTarget::Program { path } => format!("program {}", untrusted(path)),
    };
    let whose = b
        .ego
        .as_deref()
        .map_or("all egos".to_string(), |e| format!("ego {e}"));
    let why = match b.reason {
        BanReason::User => "",
        BanReason::NotMe => " — reported as not you",
    };
    format!("[{}] {what}, for {whose}{why}", b.id)
}

fn status_text(s: &StatusInfo) -> String {
    let mut out = format!(
        "agent {} running (pid {}), home {}\n  keys     {} ({})\n  egos     {}\n  waiting  {} request(s)\n",
        s.version,
        s.pid,
        s.home,
        if s.locked { "locked" } else { "unlocked" },
        if s.protection == "passphrase" {
            "passphrase"
        } else {
            "key file"
        },
        s.egos,
        s.pending
    );
    for n in &s.nodes {
        match n.state.as_str() {
            "stopped" => {
                let _ = writeln!(
                    out,
                    "  node of {}: STOPPED, no login reaches this ego; restart the agent \
                     (peer id {})",
                    n.ego, n.peer_id
                );
            }
            "not-answering" => {
                let _ = writeln!(
                    out,
                    "  node of {}: NOT ANSWERING (peer id {})",
                    n.ego, n.peer_id
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  node of {}: {} peer(s) connected, peer id {}",
                    n.ego, n.connected_peers, n.peer_id
                );
                if n.panics > 0 {
                    let _ = writeln!(
                        out,
                        "    it survived {} panic(s) while handling network input (see the log)",
                        n.panics
                    );
                }
            }
        }
    }
    if let Some(t) = &s.auto_approvals {
        let _ = writeln!(
            out,
            "  auto-approved logins answered in {} µs (median), {} µs (p99) over the last {}",
            t.p50_us, t.p99_us, t.samples
        );
    }
    out
}

/// Prints a reply.
pub(crate) fn reply(r: &Reply, json: bool) {
    if json {
        match serde_json::to_string_pretty(r) {
            Ok(s) => outln!("{s}"),
            Err(e) => eprintln!("cyrcles: cannot print the answer: {e}"),
        }
        return;
    }
    if let Reply::Error(e) = r {
        eprintln!("cyrcles: {}", for_terminal(&e.message));
        return;
    }
    out!("{}", for_terminal(&reply_text(r, now())));
}

/// A reply as text for people. Fields from outside are escaped where
/// they are written; the caller escapes the whole once more.
fn reply_text(r: &Reply, now: u64) -> String {
    let mut out = String::new();
    match r {
        Reply::Status(s) => {
            let _ = write!(out, "{}", status_text(s));
        }
        Reply::Done { message } => {
            let _ = writeln!(out, "{message}");
        }
        Reply::Ego(e) => {
            let _ = write!(out, "{}", ego_text(e, now));
        }
        Reply::Egos { egos } => {
            if egos.is_empty() {
                let _ = writeln!(out, "No ego yet: `cyrcles ego create NAME` makes one.");
            }
            for e in egos {
                let _ = writeln!(
                    out,
                    "{:<16} {}  {}  {}",
                    e.name, e.fingerprint, e.state, e.ego_id
                );
            }
        }
        Reply::Kit(k) => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(k).unwrap_or_default()
            );
        }
        Reply::Requests { requests } => {
            if requests.is_empty() {
                let _ = writeln!(out, "No request is waiting.");
            }
            for q in requests {
                let _ = writeln!(out, "{}", request_text(q, now));
            }
            if let Some(q) = requests.first() {
                let _ = writeln!(
                    out,
                    "\nApprove with `cyrcles approve {} --code NN` (NN: the number shown on the \
                     login page), or deny with `cyrcles deny {}`.",
                    q.id, q.id
                );
            }
        }
        Reply::Approved { id, policy } => {
            let _ = writeln!(out, "Approved request {id}.");
            if let Some(p) = policy {
                let _ = writeln!(out, "Remembered: {}", policy_text(p));
            }
        }
        Reply::Denied { id, bans } => {
            let _ = writeln!(out, "Denied request {id}.");
            for b in bans {
                let _ = writeln!(out, "Banned: {}", ban_text(b));
            }
        }
        Reply::Policy(p) => {
            let _ = writeln!(out, "{}", policy_text(p));
        }
        Reply::Policies { policies } => {
            if policies.is_empty() {
                let _ = writeln!(out, "No remembered site.");
            }
            for p in policies {
                let _ = writeln!(out, "{}", policy_text(p));
            }
        }
        Reply::Ban(b) => {
            let _ = writeln!(out, "{}", ban_text(b));
        }
        Reply::Bans { bans } => {
            if bans.is_empty() {
                let _ = writeln!(out, "No ban.");
            }
            for b in bans {
                let _ = writeln!(out, "{}", ban_text(b));
            }
        }
        Reply::SignPending { id, code } => {
            let _ = writeln!(out, "request {id} waits (code {code:02})");
        }
        Reply::Signed(s) => {
            let _ = writeln!(out, "signature  {}", s.signature);
            let _ = writeln!(out, "message    {}", s.message);
            let _ = writeln!(
                out,
                "ego key    {} (certificate seq {})",
                s.ego_key, s.cert_seq
            );
            let _ = writeln!(out, "ego id     {}", s.ego_id);
        }
        Reply::Event(e) => {
            let _ = writeln!(out, "{e:?}");
        }
        Reply::InviteOpen {
            code,
            ego,
            expires_at,
        } => {
            let _ = writeln!(out, "Invite code for {ego}:  {code}");
            let _ = writeln!(
                out,
                "Read it to your friend (by phone or in person); they run \
                 `cyrcles friend accept {code}`. It works once, until {}.",
                date(*expires_at)
            );
            let _ = writeln!(out, "Waiting for your friend...");
        }
        Reply::Friend(f) => {
            let _ = writeln!(out, "{}", friend_text(f));
            let _ = writeln!(
                out,
                "Compare these digits with your friend: {}. If they differ, someone is in the \
                 middle: tell your friend, and do not use this friendship.",
                f.fingerprint
            );
        }
        Reply::Friends { friends } => {
            if friends.is_empty() {
                let _ = writeln!(
                    out,
                    "No friend yet: `cyrcles friend invite --ego NAME` opens an invite."
                );
            }
            for f in friends {
                let _ = writeln!(out, "{}", friend_text(f));
            }
        }
        Reply::Circle(c) => {
            let _ = write!(out, "{}", circle_text(c, now));
        }
        Reply::Shares { shares } => {
            if shares.is_empty() {
                let _ = writeln!(out, "This agent holds no share of a friend's circle.");
            }
            for s in shares {
                let _ = writeln!(
                    out,
                    "{} (ego {}), as your ego {}: generation {}, received {}, {}",
                    untrusted(&s.friend),
                    s.friend_ego_id,
                    s.my_ego,
                    s.generation,
                    relative(s.received_at, now),
                    s.last_signed_at
                        .map_or("never signed".to_string(), |t| format!(
                            "last signed {}",
                            relative(t, now)
                        ))
                );
            }
        }
        Reply::CircleRequests { requests } => {
            let _ = write!(out, "{}", changes_text(requests, now));
        }
        Reply::Recoveries { incoming, outgoing } => {
            let _ = write!(out, "{}", recoveries_text(incoming, outgoing, now));
        }
        Reply::Error(e) => {
            let _ = writeln!(out, "cyrcles: {}", e.message);
        }
    }
    out
}

/// `ego recovery-kit`: to a file or standard output.
pub(crate) fn kit(r: Reply, out: Option<&Path>, json: bool) -> Result<(), Failure> {
    let Reply::Kit(k) = r else {
        return Err(Failure::new(1, "internal", "unexpected answer"));
    };
    let text =
        serde_json::to_string_pretty(&k).map_err(|e| Failure::new(1, "internal", e.to_string()))?;
    match out {
        Some(path) => {
            std::fs::write(path, format!("{text}\n")).map_err(|e| {
                Failure::new(
                    1,
                    "internal",
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
            let message = format!(
                "Wrote the recovery kit of {} to {}. Keep a copy off this device; it holds no secret.",
                k.fingerprint,
                path.display()
            );
            reply(&Reply::Done { message }, json);
        }
        None => outln!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::FriendInfo;

    #[test]
    fn what_a_request_names_cannot_reorder_or_split_the_prompt() {
        let r = RequestInfo {
            id: 7,
            kind: "login".into(),
            ego: "main".into(),
            ego_id: String::new(),
            site: "\u{202e}moc.lapyap".into(),
            client_id: Some("shop\u{2028}Approve with code 42".into()),
            origin: Some("https://\u{2066}evil\u{2069}.example".into()),
            bridge: Some("https://bridge.test\u{200b}".into()),
            bridge_peer: None,
            client_ip: Some("203.0.113.7\u{feff}".into()),
            program: None,
            program_pid: None,
            known_site: false,
            confirm: false,
            received_at: 0,
            expires_at: 0,
            wrong_codes: 0,
        };
        let text = request_line(&r);
        for bad in [
            '\u{202e}', '\u{2028}', '\u{2066}', '\u{2069}', '\u{200b}', '\u{feff}',
        ] {
            assert!(!text.contains(bad), "{text:?}");
        }
        assert!(text.contains("\\u{202e}moc.lapyap"), "{text}");
        assert!(text.contains("shop\\u{2028}Approve"), "{text}");
        // The prompt's own lines stay.
        assert_eq!(text.lines().count(), 3, "{text}");
        // A reply's text, with a friend named by a recovery kit.
        let friend = FriendInfo {
            id: 1,
            ego: "main".into(),
            name: "bob\nApproved: yes".into(),
            ego_id: "e".into(),
            fingerprint: "123 456".into(),
            peer_id: String::new(),
            created_at: 0,
        };
        let shown = reply_text(
            &Reply::Friends {
                friends: vec![friend],
            },
            0,
        );
        assert_eq!(shown.lines().count(), 1, "{shown}");
        assert!(shown.contains("bob\\u{a}Approved"), "{shown}");
    }

    #[test]
    fn a_stopped_node_is_said_so() {
        let node = |state: &str| crate::control::proto::NodeInfo {
            ego: "main".into(),
            peer_id: "12D3KooW".into(),
            state: state.into(),
            connected_peers: 0,
            listen_addrs: Vec::new(),
            panics: 0,
        };
        let s = StatusInfo {
            version: "0".into(),
            pid: 1,
            home: "/h".into(),
            locked: false,
            protection: "key-file".into(),
            started_at: 0,
            now: 0,
            egos: 2,
            pending: 0,
            nodes: vec![
                node("running"),
                node("stopped"),
                crate::control::proto::NodeInfo {
                    panics: 2,
                    ..node("running")
                },
            ],
            auto_approvals: None,
        };
        let text = status_text(&s);
        assert!(text.contains("node of main: 0 peer(s) connected"), "{text}");
        assert!(text.contains("node of main: STOPPED"), "{text}");
        assert_eq!(text.matches("survived").count(), 1, "{text}");
        assert!(text.contains("survived 2 panic(s)"), "{text}");
    }

    #[test]
    fn dates_and_relative_times() {
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_795_500_000), "2026-11-24 06:00 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(relative(100, 100), "just now");
        assert_eq!(relative(100 + 15 * 86_400, 100), "in 15 days");
        assert_eq!(relative(100, 100 + 300), "5 min ago");
        assert_eq!(relative(100 + 7200, 100), "in 2 h");
    }
}
