//! How circles, friends and their requests read in a terminal.

use std::fmt::Write as _;

use super::relative;
use crate::control::proto::{
    CircleInfo, FriendInfo, IncomingChange, IncomingRecovery, OutgoingRecovery,
};
use crate::text::untrusted;

pub(super) fn changes_text(requests: &[IncomingChange], now: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if requests.is_empty() {
        out.push_str("No friend asks you to approve a change of their circle.\n");
    }
    for r in requests {
        let asks = if r.what == "revocation" {
            "asks to end their ego for good"
        } else {
            "asks to change who holds their circle"
        };
        let _ = writeln!(
            out,
            "request {}: {} (ego {}) {asks}, {}; fingerprint {}: {}",
            r.id,
            untrusted(&r.friend),
            r.friend_ego_id,
            relative(r.received_at, now),
            r.fingerprint,
            r.state
        );
    }
    if requests.iter().any(|r| r.state == "pending") {
        out.push_str(
            "Call the friend: approve only if they asked for this and read you the same \
             fingerprint (`cyrcles circle approve ID`); someone holding a copy of their device \
             could ask too (`cyrcles circle deny ID`).\n",
        );
    }
    out
}

pub(super) fn recoveries_text(
    incoming: &[IncomingRecovery],
    outgoing: &[OutgoingRecovery],
    now: u64,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if incoming.is_empty() && outgoing.is_empty() {
        out.push_str("No recovery request, and no recovery in progress.\n");
    }
    for i in incoming {
        let _ = writeln!(
            out,
            "request {}: {} (ego {}) asks to recover on a new device, {}; fingerprint {}: {}",
            i.id,
            untrusted(&i.friend),
            i.friend_ego_id,
            relative(i.received_at, now),
            i.fingerprint,
            i.state
        );
    }
    if incoming.iter().any(|i| i.state == "pending") {
        out.push_str(
            "Call the friend and ask them to read their fingerprint; approve only if it is the \
             same: `cyrcles recovery approve ID` (else `cyrcles recovery deny ID`).\n",
        );
    }
    for o in outgoing {
        let _ = writeln!(
            out,
            "recovering {} (ego {}), fingerprint {}: {} ({})",
            untrusted(&o.name),
            o.ego_id,
            o.fingerprint,
            o.state,
            untrusted(&o.note)
        );
        if o.state == "asking" {
            let _ = writeln!(
                out,
                "  read the fingerprint to each friend; they approve with `cyrcles recovery approve`{}",
                o.threshold
                    .map_or(String::new(), |t| format!(" ({t} approvals are needed)"))
            );
        }
        for f in &o.friends {
            let _ = writeln!(out, "  {}: {}", untrusted(&f.name), untrusted(&f.answer));
        }
    }
    out
}

pub(super) fn circle_text(c: &CircleInfo, now: u64) -> String {
    let mut out = format!("circle of {}: {}\n", c.ego, c.state);
    if let Some(n) = &c.note {
        let _ = writeln!(out, "  {n}");
    }
    for m in &c.members {
        let _ = writeln!(
            out,
            "  member {}  {} ({})",
            m.member.unwrap_or_default(),
            untrusted(&m.name),
            m.ego_id
        );
    }
    if let Some(at) = c.shared_at {
        let _ = writeln!(out, "  shared {}", relative(at, now));
    }
    let planned: Vec<String> = c
        .planned
        .iter()
        .map(|m| untrusted(&m.name).into_owned())
        .collect();
    let _ = writeln!(
        out,
        "  chosen friends: {} (threshold {})",
        if planned.is_empty() {
            "none yet: `cyrcles circle add EGO FRIEND`".to_string()
        } else {
            planned.join(", ")
        },
        c.planned_threshold
    );
    for w in &c.warnings {
        let _ = writeln!(out, "  note: {w}");
    }
    out
}

pub(super) fn friend_text(f: &FriendInfo) -> String {
    format!(
        "[{}] {}: friend {} (ego {}), fingerprint {}",
        f.id,
        f.ego,
        untrusted(&f.name),
        f.ego_id,
        f.fingerprint
    )
}
