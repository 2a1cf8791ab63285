//! Signatures for local programs (protocol section 8.1): a program's
//! `sign` request, queued for the person like a login, and the signature
//! made once the person approves it.

use std::sync::Arc;

use cyrcles_core::cbor::Encode;
use cyrcles_core::local::{LocalParams, LocalRequest};
use cyrcles_core::{EgoId, UnixTime};
use rand_core::{OsRng, RngCore};
use tokio::sync::oneshot;
use tracing::info;

use super::{LOCAL_NONCE_LEN, LOCAL_WAIT_SECS, over_quota, queue_for_person};
use crate::control::peer::Caller;
use crate::control::proto::LocalSignature;
use crate::daemon::error::{BadInput, Conflict, Refused};
use crate::daemon::pending::{LocalAnswer, Pending, PendingKind};
use crate::daemon::source::Source;
use crate::daemon::{Result, Shared, Signer, lock};
use crate::text::untrusted;

/// A local program's `sign` request: checks and queues it. Returns its id,
/// its code and where the answer will arrive.
pub(crate) fn queue_local(
    shared: &Arc<Shared>,
    caller: &Caller,
    ego: EgoId,
    reason: String,
    nonce: Option<Vec<u8>>,
) -> Result<(u64, u8, oneshot::Receiver<LocalAnswer>)> {
    let now = shared.now().secs();
    let program = caller.program();
    let nonce = nonce.unwrap_or_else(|| {
        let mut n = vec![0u8; LOCAL_NONCE_LEN];
        OsRng.fill_bytes(&mut n);
        n
    });
    // Checked now, so a bad request is refused before it bothers anyone.
    LocalRequest::new(LocalParams {
        ego_id: ego,
        program: program.clone(),
        reason: reason.clone(),
        nonce: nonce.clone(),
        issued_at: UnixTime::from_secs(now),
    })
    .map_err(BadInput::LocalRequest)?;
    let mut a = lock(&shared.approvals);
    if a.revoked.contains(&ego) {
        return Err(Conflict::Revoked.into());
    }
    if a.banned_program(&program) {
        info!(program = %untrusted(&program), "local request refused: the program is banned");
        return Err(Refused::Banned(program).into());
    }
    let quotas = a.quotas.clone();
    a.book(ego)
        .admit_local(&program, now, &quotas)
        .map_err(over_quota)?;
    let code = u8::try_from(OsRng.next_u32() % 100).unwrap_or(0);
    let (tx, rx) = oneshot::channel();
    let id = queue_for_person(
        shared,
        a,
        Pending {
            ego_id: ego,
            source: Source::program(&program),
            code,
            wrong_codes: 0,
            received_at: now,
            expires_at: now + LOCAL_WAIT_SECS,
            kind: PendingKind::Local {
                program,
                pid: caller.pid,
                reason,
                nonce,
                answer: tx,
            },
        },
    );
    Ok((id, code, rx))
}

pub(super) fn sign_local(
    ego: EgoId,
    signer: &Signer,
    program: String,
    reason: String,
    nonce: Vec<u8>,
    now: UnixTime,
) -> LocalAnswer {
    let request = LocalRequest::new(LocalParams {
        ego_id: ego,
        program,
        reason,
        nonce,
        issued_at: now,
    })
    .map_err(BadInput::LocalRequest)?;
    let sig = request.sign(&signer.key);
    let p = request.params();
    Ok(LocalSignature {
        ego_id: ego.to_string(),
        ego_key: hex::encode(signer.key.public().as_bytes()),
        cert_seq: signer.cert_seq,
        program: p.program.clone(),
        reason: p.reason.clone(),
        nonce: hex::encode(&p.nonce),
        issued_at: p.issued_at.secs(),
        message: hex::encode(request.to_cbor()),
        signature: hex::encode(sig.0),
    })
}
