//! `cyrcles watch`: shows requests as they arrive and takes the answer on
//! the terminal (the match code, `d` to deny, `n` for "not me", `s` to
//! skip). With `--json` it prints one event per line and asks nothing.

use std::collections::VecDeque;
use std::io::Write;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::stdout::{out, outln};
use super::{Failure, output};
use crate::control::client::{Client, ClientError};
use crate::control::proto::{Reply, Request, RequestInfo, WatchEvent};
use crate::home::Home;
use crate::text::for_terminal;

const PROMPT: &str = "    code shown on the login page, d = deny, n = not me, s = skip: ";
/// Requests kept to ask about; the daemon holds at most 16 per ego, so
/// more means events were missed (the oldest are dropped).
const MAX_QUEUED: usize = 64;

/// Runs until standard input closes (or the daemon stops).
pub(crate) async fn run(home: &Home, json: bool) -> Result<(), Failure> {
    let mut stream = Client::connect(home).await?;
    stream.send(&Request::Watch).await?;
    if json {
        while let Some(reply) = stream.next().await? {
            if let Reply::Event(e) = reply {
                outln!("{}", serde_json::to_string(&e).unwrap_or_default());
            }
        }
        return Ok(());
    }
    eprintln!("Waiting for requests (Ctrl-D or Ctrl-C to stop).");
    // Frames are read by their own task: a read cut short by the terminal
    // branch below would lose part of a frame.
    let (tx, mut events) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let next = stream.next().await;
            let end = !matches!(next, Ok(Some(_)));
            if tx.send(next).await.is_err() || end {
                return;
            }
        }
    });
    let mut queue: VecDeque<RequestInfo> = VecDeque::new();
    let mut current: Option<RequestInfo> = None;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        if current.is_none() {
            current = queue.pop_front();
            if let Some(r) = &current {
                outln!("\n{}", output::request_line(r));
                out!("{PROMPT}");
                let _ = std::io::stdout().flush();
            }
        }
        tokio::select! {
            event = events.recv() => match event.transpose()?.flatten() {
                Some(Reply::Event(WatchEvent::Pending { request })) => {
                    let known = current.as_ref().is_some_and(|c| c.id == request.id)
                        || queue.iter().any(|q| q.id == request.id);
                    if !known {
                        if queue.len() >= MAX_QUEUED {
                            queue.pop_front();
                        }
                        queue.push_back(*request);
                    }
                }
                Some(Reply::Event(WatchEvent::Resolved { id, outcome })) => {
                    queue.retain(|q| q.id != id);
                    if current.as_ref().is_some_and(|c| c.id == id) {
                        outln!("\n    request {id}: {}", for_terminal(&outcome));
                        current = None;
                    }
                }
                Some(Reply::Event(WatchEvent::Notice { message })) => {
                    outln!("\n    note: {}", for_terminal(&message));
                }
                Some(_) => {}
                None => {
                    eprintln!("The agent stopped.");
                    return Ok(());
                }
            },
            line = lines.next_line() => {
                let Ok(Some(line)) = line else {
                    return Ok(());
                };
                let Some(r) = current.clone() else {
                    outln!("    no request is waiting");
                    continue;
                };
                match answer(home, &r, line.trim()).await {
                    Answered::Done(message) => {
                        outln!("    {}", for_terminal(&message));
                        current = None;
                    }
                    Answered::Skip => current = None,
                    Answered::Again(message) => {
                        outln!("    {}", for_terminal(&message));
                        out!("{PROMPT}");
                        let _ = std::io::stdout().flush();
                    }
                }
            }
        }
    }
}

enum Answered {
    Done(String),
    Skip,
    Again(String),
}

async fn answer(home: &Home, r: &RequestInfo, input: &str) -> Answered {
    let request = match input {
        "" | "s" | "skip" => return Answered::Skip,
        "d" | "deny" => Request::Deny {
            id: r.id,
            ban_site: false,
            ban_bridge: false,
            not_me: false,
        },
        "n" | "not me" => Request::Deny {
            id: r.id,
            ban_site: false,
            ban_bridge: false,
            not_me: true,
        },
        code => match code.parse::<u8>() {
            Ok(c) if c <= 99 => Request::Approve {
                id: r.id,
                code: c,
                remember: false,
                auto: false,
            },
            _ => return Answered::Again("type the two-digit code, d, n or s".into()),
        },
    };
    match Client::call(home, &request).await {
        Ok(Reply::Approved { .. }) => Answered::Done("approved".into()),
        Ok(Reply::Denied { bans, .. }) if bans.is_empty() => Answered::Done("denied".into()),
        Ok(Reply::Denied { .. }) => Answered::Done("denied, and the site is banned".into()),
        Ok(other) => Answered::Done(format!("{other:?}")),
        Err(ClientError::Daemon(e)) if e.code == crate::control::proto::ErrorCode::WrongCode => {
            Answered::Again(e.message)
        }
        Err(e) => Answered::Done(e.to_string()),
    }
}
