//! What changes an ego as a whole: `ego create`, starting every ego after
//! an unlock, `ego rotate`, `ego revoke`, and the maintenance loop's
//! renewal. While the agent holds the whole circle key these run under the
//! ego's reservation ([`Busy`]), never under the egos lock: they read a
//! copy of the ego's state, do the keystore and node work, then commit
//! the result to the table. Once friends hold the circle, rotation and
//! revocation go through them (`circle::owner`), which reserve the ego
//! only to commit.

use std::sync::Arc;
use std::time::Duration;

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder;
use cyrcles_core::{CircleSecret, EgoId, SecretKey};
use rand_core::{OsRng, RngCore};
use tracing::{debug, error, info};
use zeroize::Zeroizing;

use super::circle::owner::{revoke_via_friends, rotate_via_friends};
use super::egos::{
    Busy, EgoState, build_error, check_name, endpoint_peers, publish, rotation_due, set_signer,
    store_revocation, store_rotation,
};
use super::error::{Chain, Conflict, Damaged, Locked, Unpublished};
use super::{Result, Shared, approval, lock, node, read};
use crate::keystore::seal::SymmetricKey;
use crate::keystore::{EgoRow, SecretKind};

/// How long `ego create` waits for the first publication.
const FIRST_PUBLISH_WAIT: Duration = Duration::from_secs(15);
/// The pause between two tries of the first publication.
const FIRST_PUBLISH_RETRY: Duration = Duration::from_millis(300);

/// After an unlock: starts every ego's node and loads the ego keys, one
/// ego at a time under its reservation.
pub(crate) async fn activate(shared: &Arc<Shared>) {
    let Ok(key) = shared.data_key() else {
        return;
    };
    for id in shared.egos.ids() {
        let busy = shared.egos.reserve(id).await;
        let Some(state) = shared.egos.get(&id, EgoState::clone) else {
            continue;
        };
        if state.damage.is_some() {
            continue;
        }
        if let Err(e) = activate_one(shared, &busy, &state, &key).await {
            error!(ego = %state.row.name, "cannot start: {}", Chain(&e));
            shared.egos.update(&id, |s| s.damage = Some(e.to_string()));
        }
    }
    shared.wake.notify_one();
}

async fn activate_one(
    shared: &Arc<Shared>,
    busy: &Busy<'_>,
    state: &EgoState,
    key: &SymmetricKey,
) -> Result<()> {
    let id = busy.id();
    if state.node.is_none() {
        let device = shared.keystore.secret(key, &id, SecretKind::Device).await?;
        let node = node::start(shared, id, &device).await?;
        shared.egos.update(&id, |s| s.node = Some(node));
    }
    if !state.is_revoked() {
        let cert = &state.record()?.cert.body;
        let seed = shared.keystore.secret(key, &id, SecretKind::Ego).await?;
        let ego = SecretKey::from_seed(&seed);
        if ego.public() != cert.ego_pk {
            return Err(Damaged::EgoKey.into());
        }
        set_signer(shared, id, ego, cert.seq);
    }
    Ok(())
}

/// Creates an ego: keys, node, first record; stores and publishes it.
/// Returns the ego id and how many peers stored the record.
pub(crate) async fn create(
    shared: &Arc<Shared>,
    name: &str,
) -> Result<(EgoId, Result<usize, Unpublished>)> {
    check_name(name)?;
    let key = shared.data_key()?;
    // Held until the ego is in the table: a second `ego create NAME` is
    // refused meanwhile.
    let name_hold = shared.egos.reserve_name(name)?;
    let mut device = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut device[..]);
    let now = shared.now();
    let s = &shared.settings;
    // The ego id is known only once the keys exist; the node needs no id
    // until it serves logins, and its event loop is told the id below.
    let mut circle_id = [0u8; 16];
    OsRng.fill_bytes(&mut circle_id);
    let root = SecretKey::generate(&mut OsRng);
    let circle = CircleSecret::generate(&mut OsRng);
    let ego = SecretKey::generate(&mut OsRng);
    let mut record = builder::first_record(&root, &circle, &ego, &mut OsRng, now, s.cert_validity)
        .map_err(build_error)?;
    let ego_id = record.ego_id();
    let node = node::start(shared, ego_id, &device).await?;
    let peers = endpoint_peers(shared, &node).await;
    if let Err(e) = record.set_endpoints_dated(&ego, peers, now, s.endpoints_validity) {
        node.shutdown().await;
        return Err(build_error(e));
    }
    let bytes = record.to_cbor();
    let row = EgoRow::new(ego_id, name, bytes.clone(), circle_id, now.secs());
    let secrets: [(SecretKind, &[u8]); 4] = [
        (SecretKind::Root, &root.to_seed()[..]),
        (SecretKind::Circle, &circle.to_bytes()[..]),
        (SecretKind::Ego, &ego.to_seed()[..]),
        (SecretKind::Device, &device[..]),
    ];
    if let Err(e) = shared.keystore.insert_ego(&key, &row, &secrets).await {
        node.shutdown().await;
        return Err(e.into());
    }
    set_signer(shared, ego_id, ego, 1);
    let state = EgoState {
        row,
        record: Some(record),
        node: Some(node.clone()),
        damage: None,
        circle: None,
        friends_retry: None,
        friends_error: None,
    };
    lock(&shared.approvals).track_ego(&state);
    shared.egos.insert(state);
    drop(name_hold);
    info!(ego = %ego_id, name, "ego created");
    // A node that has just started may not have joined the network yet:
    // the first publication is tried again until a peer stores it.
    let deadline: tokio::time::Instant =
        cyrcles_p2p::deadline::after(tokio::time::Instant::now().into_std(), FIRST_PUBLISH_WAIT)
            .into();
    let published = loop {
        let attempt =
            tokio::time::timeout_at(deadline, publish(shared, ego_id, &node, bytes.clone()))
                .await
                .unwrap_or(Err(Unpublished::TakingLong));
        match attempt {
            Err(_)
                if tokio::time::Instant::now()
                    .checked_add(FIRST_PUBLISH_RETRY)
                    .is_some_and(|t| t < deadline) =>
            {
                // Join again through the bootstrap peers before the next try.
                for addr in &shared.settings.bootstrap {
                    let _ = node.dial(addr.clone()).await;
                }
                let _ = node.bootstrap().await;
                tokio::time::sleep(FIRST_PUBLISH_RETRY).await;
            }
            done => break done,
        }
    };
    Ok((ego_id, published))
}

/// Certifies a new ego key with the whole circle key, signs new endpoints
/// with it and stores both. Returns the new record's bytes.
async fn rotate_whole(
    shared: &Shared,
    busy: &Busy<'_>,
    state: &EgoState,
    key: &SymmetricKey,
) -> Result<Vec<u8>> {
    let id = busy.id();
    if state.is_revoked() {
        return Err(Conflict::Revoked.into());
    }
    let node = state.node.clone().ok_or(Locked::Node)?;
    let circle = whole_circle(shared, key, &id).await?;
    let now = shared.now();
    let s = &shared.settings;
    let new_key = SecretKey::generate(&mut OsRng);
    let mut record = state.record()?.clone();
    record
        .certify_with(&circle, &mut OsRng, new_key.public(), now, s.cert_validity)
        .map_err(build_error)?;
    let peers = endpoint_peers(shared, &node).await;
    record
        .set_endpoints_dated(&new_key, peers, now, s.endpoints_validity)
        .map_err(build_error)?;
    let seq = record.cert.body.seq;
    let bytes = store_rotation(shared, busy, record, key, new_key).await?;
    info!(ego = %id, seq, "ego key rotated");
    Ok(bytes)
}

async fn whole_circle(shared: &Shared, key: &SymmetricKey, id: &EgoId) -> Result<CircleSecret> {
    if !shared
        .keystore
        .secret_kinds(id)
        .await?
        .contains(&SecretKind::Circle)
    {
        return Err(Conflict::CircleShared.into());
    }
    let bytes = shared.keystore.secret(key, id, SecretKind::Circle).await?;
    CircleSecret::from_bytes(&bytes).map_err(|_| Damaged::CircleKeyOf(*id).into())
}

/// `ego rotate NAME`.
pub(crate) async fn rotate(shared: &Arc<Shared>, name: &str) -> Result<EgoId> {
    let key = shared.data_key()?;
    let id = shared.egos.id_by_name(name)?;
    let busy = shared.egos.reserve(id).await;
    let state = current(shared, &busy, name)?;
    usable(&state)?;
    let node = state.node.clone();
    let bytes = if state.circle.is_some() {
        // The friends certify the new key; the ego is reserved only to
        // commit (`circle::owner`).
        drop(busy);
        rotate_via_friends(shared, id).await?
    } else {
        rotate_whole(shared, &busy, &state, &key).await?
    };
    if let Some(node) = node {
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = publish(&shared, id, &node, bytes).await;
        });
    }
    Ok(id)
}

/// A copy of the reserved ego's state.
fn current(shared: &Shared, busy: &Busy<'_>, name: &str) -> Result<EgoState> {
    shared
        .egos
        .get(&busy.id(), EgoState::clone)
        .ok_or_else(|| super::egos::unknown_ego(name))
}

fn usable(state: &EgoState) -> Result<()> {
    match &state.damage {
        Some(d) => Err(Damaged::Ego {
            ego: state.row.name.clone(),
            why: d.clone(),
        }
        .into()),
        None => Ok(()),
    }
}

/// `ego revoke NAME`: a revocation signed by the circle key, stored and
/// published; the ego's secrets but the device key are deleted.
pub(crate) async fn revoke(shared: &Arc<Shared>, name: &str) -> Result<EgoId> {
    let key = shared.data_key()?;
    let id = shared.egos.id_by_name(name)?;
    let busy = shared.egos.reserve(id).await;
    let state = current(shared, &busy, name)?;
    usable(&state)?;
    if state.is_revoked() {
        return Err(Conflict::AlreadyRevoked(name.into()).into());
    }
    let node = state.node.clone();
    if state.circle.is_some() {
        // The friends sign the revocation; the ego is reserved only to
        // commit (`circle::owner`).
        drop(busy);
        let bytes = revoke_via_friends(shared, id).await?;
        info!(ego = %id, "ego revoked");
        if let Some(node) = node {
            let _ = publish(shared, id, &node, bytes).await;
        }
        return Ok(id);
    }
    let circle = whole_circle(shared, &key, &id).await?;
    let now = shared.now();
    let mut record = state.record()?.clone();
    record
        .revoke_with(&circle, &mut OsRng, now, shared.settings.cert_validity)
        .map_err(build_error)?;
    drop(circle);
    let bytes = store_revocation(shared, &busy, record, now.secs()).await?;
    approval::ego_revoked(shared, id);
    drop(busy);
    info!(ego = %id, "ego revoked");
    if let Some(node) = node {
        let _ = publish(shared, id, &node, bytes).await;
    }
    Ok(id)
}

/// What the maintenance loop does for one ego: a new certificate at
/// half-life, new endpoints at half-life or when the node's addresses
/// changed. Returns the record to publish, if it changed or the last
/// publication failed.
/// The caller holds the ego's reservation; `state` is a copy of its
/// state taken under it.
pub(crate) async fn renew_if_due(
    shared: &Shared,
    busy: &Busy<'_>,
    state: &EgoState,
    key: &SymmetricKey,
) -> Result<Option<Vec<u8>>> {
    let Some(node) = state.node.clone() else {
        return Ok(None);
    };
    let retry = state.row.last_error.is_some() || state.row.last_published_at.is_none();
    if state.is_revoked() {
        return Ok(retry.then(|| state.row.record.clone()));
    }
    let now = shared.now();
    let current = state.record()?;
    // With a shared circle, rotation goes through the friends, outside
    // this reservation (see `maintenance`).
    if now >= rotation_due(&current.cert.body) && state.circle.is_none() {
        return rotate_whole(shared, busy, state, key).await.map(Some);
    }
    let peers = endpoint_peers(shared, &node).await;
    let due = match &current.endpoints {
        None => true,
        Some(e) => {
            let span = e.body.expires_at.since(e.body.issued_at);
            now >= e.body.issued_at.plus(span / 2) || e.body.peers != peers
        }
    };
    if !due {
        return Ok(retry.then(|| state.row.record.clone()));
    }
    let signer = read(&shared.signers).get(&state.ego_id()).cloned();
    let Some(signer) = signer else {
        return Ok(None);
    };
    let mut record = current.clone();
    record
        .set_endpoints_dated(&signer.key, peers, now, shared.settings.endpoints_validity)
        .map_err(build_error)?;
    let bytes = record.to_cbor();
    shared
        .keystore
        .save_record(&state.ego_id(), &bytes, None)
        .await?;
    shared.egos.update(&busy.id(), |s| {
        s.record = Some(record);
        s.row.record = bytes.clone();
    });
    debug!(ego = %state.ego_id(), "endpoints renewed");
    Ok(Some(bytes))
}
