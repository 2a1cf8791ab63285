//! The daemon's side of the control socket: the caller check, one task per
//! connection, and the dispatch of requests.

use std::sync::Arc;
use std::time::Duration;

use cyrcles_core::EgoId;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};

use cyrcles_p2p::NodeHandle;

use super::error::{BadInput, Chain, Expired, Internal, NotFound, Refused};
use super::{
    Error, Result, Shared, approval, circle, egos, friends, info as describe, lifecycle, lock,
    node_health, recovery, repair, shares, write,
};
use crate::control::peer::{self, Caller, Credentials};
use crate::control::proto::{
    ErrorCode, ErrorReply, MAX_REQUEST, NodeInfo, Reply, Request, StatusInfo, WatchEvent,
    read_frame, write_frame,
};
use crate::keystore::Passphrase;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;

/// The reply to a failed request: the error's code and text. What went
/// wrong inside the daemon is logged with its sources.
fn failure(e: Error) -> Reply {
    let code = e.code();
    if code == ErrorCode::Internal {
        warn!(error = %Chain(&e), "request failed");
    } else {
        debug!(?code, error = %Chain(&e), "request failed");
    }
    Reply::Error(ErrorReply::from(e))
}

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(shared: Arc<Shared>, listener: UnixListener) {
    let own = peer::own_uid();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    connection(shared, stream, own).await;
                    drop(permit);
                });
            }
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn send(stream: &mut UnixStream, reply: &Reply) -> bool {
    match write_frame(stream, reply).await {
        Ok(()) => true,
        Err(e) => {
            debug!("client went away: {}", Chain(&e));
            false
        }
    }
}

async fn connection(shared: Arc<Shared>, mut stream: UnixStream, own: u32) {
    let creds = match stream.peer_cred() {
        Ok(c) => Credentials {
            uid: c.uid(),
            pid: c.pid(),
        },
        Err(e) => {
            warn!("cannot read the caller's credentials: {e}");
            return;
        }
    };
    if let Err(e) = peer::check(creds, own) {
        let exe = creds
            .pid
            .and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok());
        warn!(uid = creds.uid, pid = ?creds.pid, ?exe, "connection refused: another user");
        send(&mut stream, &failure(Refused::OtherUser(e).into())).await;
        return;
    }
    let caller = Caller::identify(creds);
    let request = match tokio::time::timeout(
        REQUEST_TIMEOUT,
        read_frame::<_, Request>(&mut stream, MAX_REQUEST),
    )
    .await
    {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            send(&mut stream, &failure(BadInput::Frame(e).into())).await;
            return;
        }
        Err(_) => return,
    };
    info!(
        command = request.name(),
        pid = ?caller.pid,
        exe = ?caller.exe,
        "request"
    );
    match request {
        Request::Watch => watch(&shared, &mut stream).await,
        Request::Sign { ego, reason, nonce } => {
            sign(&shared, &mut stream, &caller, &ego, reason, nonce).await;
        }
        Request::FriendInvite { ego, name } => invite(&shared, &mut stream, &ego, name).await,
        other => {
            let reply = dispatch(&shared, other).await.unwrap_or_else(failure);
            send(&mut stream, &reply).await;
        }
    }
}

fn ego_id_by_name(shared: &Shared, name: &str) -> Result<EgoId> {
    shared.egos.id_by_name(name)
}

fn done(message: impl Into<String>) -> Reply {
    Reply::Done {
        message: message.into(),
    }
}

async fn dispatch(shared: &Arc<Shared>, request: Request) -> Result<Reply> {
    match request {
        Request::Status => status(shared).await,
        Request::Unlock { passphrase } => unlock(shared, passphrase.expose()).await,
        Request::Lock => {
            *write(&shared.data_key) = None;
            write(&shared.signers).clear();
            info!("keys locked");
            Ok(done(
                "locked: the keys are forgotten until `cyrcles unlock`",
            ))
        }
        Request::Stop => {
            let _ = shared.stop.send(true);
            Ok(done("the agent is stopping"))
        }
        Request::EgoCreate { name } => {
            let (id, published) = lifecycle::create(shared, &name).await?;
            let mut info = ego_show(shared, id).await?;
            if let Err(e) = published {
                info.last_error = Some(e.to_string());
            }
            Ok(Reply::Ego(info))
        }
        Request::EgoList => {
            let locked = shared.is_locked();
            let mut list: Vec<_> = shared.egos.read(|egos| {
                egos.values()
                    .map(|e| describe::ego_info(e, locked))
                    .collect()
            });
            list.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Reply::Egos { egos: list })
        }
        Request::EgoShow { name } => {
            let id = ego_id_by_name(shared, &name)?;
            Ok(Reply::Ego(ego_show(shared, id).await?))
        }
        Request::EgoRotate { name } => {
            let id = lifecycle::rotate(shared, &name).await?;
            Ok(Reply::Ego(ego_show(shared, id).await?))
        }
        Request::EgoRevoke { name } => {
            let id = lifecycle::revoke(shared, &name).await?;
            Ok(Reply::Ego(ego_show(shared, id).await?))
        }
        Request::RecoveryKit { name } => {
            let now = shared.now().secs();
            let mut kit = shared
                .egos
                .read(|egos| egos::find(egos, &name).map(|e| describe::kit(e, now)))?;
            let ego = ego_id_by_name(shared, &name)?;
            kit.friends = circle::view::kit_friends(shared, &ego).await?;
            Ok(Reply::Kit(kit))
        }
        Request::Requests => Ok(Reply::Requests {
            requests: lock(&shared.approvals).requests(),
        }),
        Request::Approve {
            id,
            code,
            remember,
            auto,
        } => approval::approve(shared, id, code, remember, auto).await,
        Request::Deny {
            id,
            ban_site,
            ban_bridge,
            not_me,
        } => approval::deny(shared, id, ban_site, ban_bridge, not_me).await,
        Request::PolicyAllow {
            ego,
            bridge,
            client,
            auto,
        } => {
            let id = ego_id_by_name(shared, &ego)?;
            approval::allow(shared, id, &bridge, &client, auto).await
        }
        Request::PolicyList => Ok(Reply::Policies {
            policies: lock(&shared.approvals).policies(),
        }),
        Request::PolicyRemove { id } => {
            let row = shared.keystore.remove_policy(id).await?;
            approval::load_policies(shared).await?;
            Ok(Reply::Policy(lock(&shared.approvals).policy_info(&row)))
        }
        Request::BanList => Ok(Reply::Bans {
            bans: lock(&shared.approvals).bans(),
        }),
        Request::BanAdd { ego, target } => {
            let id = match ego {
                Some(name) => Some(ego_id_by_name(shared, &name)?),
                None => None,
            };
            approval::ban(shared, id, target).await
        }
        Request::BanRemove { id } => {
            let row = shared.keystore.remove_ban(id).await?;
            approval::load_policies(shared).await?;
            Ok(Reply::Ban(lock(&shared.approvals).ban_info(&row)))
        }
        Request::FriendAccept { code, ego, name } => Ok(Reply::Friend(
            friends::accept(shared, code.expose(), ego.as_deref(), name).await?,
        )),
        Request::FriendList => Ok(Reply::Friends {
            friends: friends::list(shared).await?,
        }),
        Request::CircleAdd { ego, friend } => Ok(Reply::Circle(
            circle::owner::change(shared, &ego, &friend, true).await?,
        )),
        Request::CircleRemove { ego, friend } => Ok(Reply::Circle(
            circle::owner::change(shared, &ego, &friend, false).await?,
        )),
        Request::CircleShow { ego } => Ok(Reply::Circle(circle::view::show(shared, &ego).await?)),
        Request::CircleRepair { ego, friend } => {
            Ok(Reply::Circle(repair::repair(shared, &ego, &friend).await?))
        }
        Request::CirclePolicy { ego, threshold } => Ok(Reply::Circle(
            circle::owner::set_threshold(shared, &ego, threshold).await?,
        )),
        Request::Shares => Ok(Reply::Shares {
            shares: shares::list(shared).await?,
        }),
        Request::Recover {
            name,
            ego_id,
            friends,
        } => {
            let started = recovery::start(shared, &name, &ego_id, &friends).await?;
            Ok(Reply::Recoveries {
                incoming: Vec::new(),
                outgoing: vec![started],
            })
        }
        Request::CircleRequests => Ok(Reply::CircleRequests {
            requests: circle::changes::list(shared),
        }),
        Request::CircleApprove { id } => Ok(done(circle::changes::decide(shared, id, true)?)),
        Request::CircleDeny { id } => Ok(done(circle::changes::decide(shared, id, false)?)),
        Request::RecoveryList => {
            let (incoming, outgoing) = recovery::list(shared);
            Ok(Reply::Recoveries { incoming, outgoing })
        }
        Request::RecoveryApprove { id } => Ok(done(recovery::decide(shared, id, true)?)),
        Request::RecoveryDeny { id } => Ok(done(recovery::decide(shared, id, false)?)),
        Request::RecoveryObject { ego } => {
            Ok(done(recovery::objection::object(shared, &ego).await?))
        }
        Request::Watch | Request::Sign { .. } | Request::FriendInvite { .. } => {
            Err(Internal::Streaming.into())
        }
    }
}

async fn ego_show(shared: &Shared, id: EgoId) -> Result<crate::control::proto::EgoInfo> {
    let locked = shared.is_locked();
    let (mut info, node) = shared
        .egos
        .get(&id, |state| {
            (describe::ego_info(state, locked), state.node.clone())
        })
        .ok_or(NotFound::Ego(id))?;
    if let Some(node) = node {
        info.node = Some(node_health::check(&node).await.0.as_str().into());
    }
    Ok(info)
}

async fn status(shared: &Shared) -> Result<Reply> {
    // Asked without the egos lock held: a node that does not answer must
    // not hold up every other command.
    let (egos, nodes) = shared.egos.read(|egos| {
        let nodes: Vec<(String, NodeHandle)> = egos
            .values()
            .filter_map(|s| s.node.clone().map(|n| (s.row.name.clone(), n)))
            .collect();
        (egos.len(), nodes)
    });
    let checks = nodes.iter().map(|(_, node)| node_health::check(node));
    let health = futures::future::join_all(checks).await;
    let nodes = nodes
        .iter()
        .zip(health)
        .map(|((ego, node), (health, s))| NodeInfo {
            ego: ego.clone(),
            peer_id: node.peer_id().to_string(),
            state: health.as_str().into(),
            connected_peers: s.as_ref().map_or(0, |s| s.connected_peers),
            panics: s.as_ref().map_or(0, |s| s.panics),
            listen_addrs: s
                .map(|s| s.listen_addrs.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
        })
        .collect();
    Ok(Reply::Status(StatusInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        home: shared.home.dir().display().to_string(),
        locked: shared.is_locked(),
        protection: shared.protection.as_str().into(),
        started_at: shared.started_at,
        now: shared.now().secs(),
        egos,
        pending: lock(&shared.approvals).pending_count(),
        nodes,
        auto_approvals: lock(&shared.auto_times).summary(),
    }))
}

async fn unlock(shared: &Arc<Shared>, passphrase: &str) -> Result<Reply> {
    if !shared.is_locked() {
        return Ok(done("already unlocked"));
    }
    let p = Passphrase::new(passphrase.to_string())?;
    let key = shared.keystore.unlock(&shared.home, Some(&p)).await?;
    *write(&shared.data_key) = Some(key);
    lifecycle::activate(shared).await;
    info!("keys unlocked");
    Ok(done("unlocked"))
}

/// Streams request events until the client hangs up: first every waiting
/// request, then what happens.
async fn watch(shared: &Shared, stream: &mut UnixStream) {
    let mut events = shared.events.subscribe();
    let snapshot = lock(&shared.approvals).requests();
    for request in snapshot {
        if !send(
            stream,
            &Reply::Event(WatchEvent::Pending {
                request: Box::new(request),
            }),
        )
        .await
        {
            return;
        }
    }
    let (mut reader, mut writer) = stream.split();
    let mut probe = [0u8; 1];
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(e) => {
                    if write_frame(&mut writer, &Reply::Event(e)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Too slow to follow: start again from the current state.
                    let snapshot = lock(&shared.approvals).requests();
                    for request in snapshot {
                        let e = Reply::Event(WatchEvent::Pending { request: Box::new(request) });
                        if write_frame(&mut writer, &e).await.is_err() {
                            return;
                        }
                    }
                }
                Err(RecvError::Closed) => return,
            },
            // The client sends nothing more; a read returning means it left.
            _ = reader.read(&mut probe) => return,
        }
    }
}

/// A local program's signing request: queue, tell the program its id and
/// code, then wait for the person, the deadline or the program leaving.
async fn sign(
    shared: &Arc<Shared>,
    stream: &mut UnixStream,
    caller: &Caller,
    ego: &str,
    reason: String,
    nonce: Option<String>,
) {
    let queued = async {
        let nonce = match nonce {
            Some(h) => Some(hex::decode(h.trim()).map_err(|_| BadInput::Nonce)?),
            None => None,
        };
        let id = ego_id_by_name(shared, ego)?;
        approval::queue_local(shared, caller, id, reason, nonce)
    }
    .await;
    let (id, code, answer) = match queued {
        Ok(q) => q,
        Err(e) => {
            send(stream, &failure(e)).await;
            return;
        }
    };
    if !send(stream, &Reply::SignPending { id, code }).await {
        approval::withdraw(shared, id, "withdrawn");
        return;
    }
    let (mut reader, mut writer) = stream.split();
    let mut probe = [0u8; 1];
    let reply = tokio::select! {
        a = answer => match a {
            Ok(Ok(sig)) => Reply::Signed(sig),
            Ok(Err(e)) => failure(e),
            Err(_) => failure(Refused::Withdrawn.into()),
        },
        _ = tokio::time::sleep(Duration::from_secs(approval::LOCAL_WAIT_SECS)) => {
            approval::withdraw(shared, id, "expired");
            failure(Expired::Unapproved.into())
        }
        _ = reader.read(&mut probe) => {
            approval::withdraw(shared, id, "withdrawn");
            return;
        }
    };
    let _ = write_frame(&mut writer, &reply).await;
}

/// `friend invite`: opens the invite, tells the code, then waits for the
/// friend, the expiry, or the CLI leaving (which closes the invite).
async fn invite(shared: &Arc<Shared>, stream: &mut UnixStream, ego: &str, name: Option<String>) {
    let (code, expires_at, outcome) = match friends::open(shared, ego, name).await {
        Ok(o) => o,
        Err(e) => {
            send(stream, &failure(e)).await;
            return;
        }
    };
    let nameplate = code.nameplate();
    let open = Reply::InviteOpen {
        code: code.to_string(),
        ego: ego.to_string(),
        expires_at,
    };
    if !send(stream, &open).await {
        friends::close(shared, nameplate, "the invite's command left").await;
        return;
    }
    let (mut reader, mut writer) = stream.split();
    let mut probe = [0u8; 1];
    let reply = tokio::select! {
        o = outcome => match o {
            Ok(Ok(friend)) => Reply::Friend(friend),
            Ok(Err(e)) => failure(e),
            Err(_) => failure(Expired::InviteGone.into()),
        },
        _ = tokio::time::sleep(Duration::from_secs(friends::INVITE_TTL_SECS)) => {
            friends::close(shared, nameplate, "the invite expired").await;
            failure(Expired::InviteUnused.into())
        }
        _ = reader.read(&mut probe) => {
            friends::close(shared, nameplate, "the invite's command left").await;
            return;
        }
    };
    let _ = write_frame(&mut writer, &reply).await;
}
