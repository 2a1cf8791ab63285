//! Egos: creation, the network node of each, endpoints, publication,
//! rotation and revocation.
//!
//! Each ego has its own node with its own device key (libp2p identity), so
//! two egos of one person share no identifier on the network.

use std::sync::Arc;
use std::time::Duration;

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder::{self, BuildError};
use cyrcles_core::record::{CertStatus, EgoCert, EgoRecord, PeerEndpoint};
use cyrcles_core::{CircleSecret, EgoId, SecretKey, UnixTime};
use cyrcles_p2p::multiaddr::Protocol as AddrProtocol;
use cyrcles_p2p::{DhtMode, Keypair, Multiaddr, Node, NodeConfig, NodeEvent, NodeHandle};
use rand_core::{OsRng, RngCore};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};
use zeroize::Zeroizing;

use super::{Shared, Signer, approval, lock, read, write};
use crate::control::proto::{ErrorCode, ErrorReply};
use crate::keystore::seal::SymmetricKey;
use crate::keystore::{EgoRow, SecretKind};

/// Longest ego name.
const MAX_NAME_LEN: usize = 32;
/// Addresses published per peer (the record format allows 8).
const MAX_PUBLISHED_ADDRS: usize = 8;
/// How long `ego create` waits for the first publication.
const FIRST_PUBLISH_WAIT: Duration = Duration::from_secs(15);
/// The pause between two tries of the first publication.
const FIRST_PUBLISH_RETRY: Duration = Duration::from_millis(300);

/// One ego in the daemon.
#[derive(Debug)]
pub(crate) struct EgoState {
    /// The stored row (name, circle id, times, last status).
    pub(crate) row: EgoRow,
    /// The current record, decoded (none if the stored one is damaged).
    pub(crate) record: Option<EgoRecord>,
    /// The ego's node, while unlocked (or since the last unlock).
    pub(crate) node: Option<NodeHandle>,
    /// Why the ego cannot be used, if its stored data is damaged.
    pub(crate) damage: Option<String>,
    /// The shared circle (threshold, members), once friends hold it.
    pub(crate) circle: Option<(u16, usize)>,
    /// When the next rotation through friends may be tried, and the wait
    /// after a failure (backoff).
    pub(crate) friends_retry: Option<(UnixTime, u64)>,
    /// Why the last rotation through friends failed (kept until one
    /// succeeds; a later publication does not clear it).
    pub(crate) friends_error: Option<String>,
}

impl EgoState {
    pub(crate) fn ego_id(&self) -> EgoId {
        self.row.ego_id
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.cert.body.status == CertStatus::Revoked)
    }

    /// The record, or the "damaged" error.
    pub(crate) fn record(&self) -> Result<&EgoRecord, ErrorReply> {
        self.record.as_ref().ok_or_else(|| {
            ErrorReply::new(
                ErrorCode::Damaged,
                format!(
                    "ego {:?} is damaged: {}",
                    self.row.name,
                    self.damage.as_deref().unwrap_or("its record is unreadable")
                ),
            )
        })
    }
}

/// When a certificate is renewed: at half of its validity.
pub(crate) fn rotation_due(cert: &EgoCert) -> UnixTime {
    let span = cert.not_after.since(cert.not_before);
    cert.not_before.plus(span / 2)
}

fn build_error(e: BuildError) -> ErrorReply {
    match e {
        BuildError::Revoked => ErrorReply::new(ErrorCode::Conflict, "the ego is revoked"),
        other => ErrorReply::new(
            ErrorCode::Internal,
            format!("record update refused: {other}"),
        ),
    }
}

/// Checks a new ego's name: 1 to 32 letters, digits, `-`, `_` or `.`,
/// starting with a letter or digit.
pub(crate) fn check_name(name: &str) -> Result<(), ErrorReply> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ErrorReply::new(
            ErrorCode::BadRequest,
            format!(
                "{name:?} is not a valid ego name: use 1 to {MAX_NAME_LEN} letters, digits, \
                 '-', '_' or '.', starting with a letter or digit"
            ),
        ))
    }
}

/// Finds an ego by name.
pub(crate) fn find<'a>(
    egos: &'a std::collections::BTreeMap<EgoId, EgoState>,
    name: &str,
) -> Result<&'a EgoState, ErrorReply> {
    egos.values()
        .find(|e| e.row.name == name)
        .ok_or_else(|| unknown_ego(name))
}

pub(crate) fn unknown_ego(name: &str) -> ErrorReply {
    ErrorReply::new(
        ErrorCode::NotFound,
        format!("no ego named {name:?}; `cyrcles ego list` shows them"),
    )
}

/// Reads every ego from the keystore (no secrets needed).
pub(crate) async fn load(shared: &Shared) -> Result<(), crate::keystore::KeystoreError> {
    let rows = shared.keystore.egos().await?;
    let mut egos = shared.egos.lock().await;
    for row in rows {
        let (record, damage) = match EgoRecord::decode_bytes(&row.record) {
            Ok(r) => (Some(r), None),
            Err(e) => {
                error!(ego = %row.ego_id, "the stored record does not decode: {e}");
                (
                    None,
                    Some(format!("the stored record does not decode: {e}")),
                )
            }
        };
        let circle = shared
            .keystore
            .circle(&row.ego_id)
            .await?
            .map(|c| (c.threshold, c.members.len()));
        let state = EgoState {
            row,
            record,
            node: None,
            damage,
            circle,
            friends_retry: None,
            friends_error: None,
        };
        lock(&shared.approvals).track_ego(&state);
        egos.insert(state.ego_id(), state);
    }
    Ok(())
}

/// After an unlock: starts every ego's node and loads the ego keys.
pub(crate) async fn activate(shared: &Arc<Shared>) {
    let Ok(key) = shared.data_key() else {
        return;
    };
    let mut egos = shared.egos.lock().await;
    for state in egos.values_mut() {
        if state.damage.is_some() {
            continue;
        }
        if let Err(e) = activate_one(shared, state, &key).await {
            error!(ego = %state.row.name, "cannot start: {}", e.message);
            state.damage = Some(e.message);
        }
    }
    drop(egos);
    shared.wake.notify_one();
}

async fn activate_one(
    shared: &Arc<Shared>,
    state: &mut EgoState,
    key: &SymmetricKey,
) -> Result<(), ErrorReply> {
    let id = state.ego_id();
    if state.node.is_none() {
        let device = shared.keystore.secret(key, &id, SecretKind::Device).await?;
        state.node = Some(start_node(shared, id, &device).await?);
    }
    if !state.is_revoked() {
        let cert = &state.record()?.cert.body;
        let seed = shared.keystore.secret(key, &id, SecretKind::Ego).await?;
        let ego = SecretKey::from_seed(&seed);
        if ego.public() != cert.ego_pk {
            return Err(ErrorReply::new(
                ErrorCode::Damaged,
                "the stored ego key is not the certified one",
            ));
        }
        set_signer(shared, id, ego, cert.seq);
    }
    Ok(())
}

pub(crate) fn set_signer(shared: &Shared, id: EgoId, key: SecretKey, cert_seq: u64) {
    write(&shared.signers).insert(
        id,
        Signer {
            key: Arc::new(key),
            cert_seq,
        },
    );
}

/// Starts an ego's node from its device key and spawns its event loop.
pub(crate) async fn start_node(
    shared: &Arc<Shared>,
    ego: EgoId,
    device: &Zeroizing<[u8; 32]>,
) -> Result<NodeHandle, ErrorReply> {
    let mut seed = Zeroizing::new(**device);
    let keypair = Keypair::ed25519_from_bytes(&mut seed[..]).map_err(|e| {
        ErrorReply::new(
            ErrorCode::Damaged,
            format!("the device key is unusable: {e}"),
        )
    })?;
    let s = &shared.settings;
    let mut c = NodeConfig::new(keypair);
    c.listen = s.listen.clone();
    c.bootstrap = s.bootstrap.clone();
    c.external_addrs = s.external_addrs.clone();
    c.mode = DhtMode::Auto;
    c.dial_private_addrs = s.dial_private_addrs;
    c.clock = shared.clock.clone();
    c.agent_version = format!("cyrcles-agent/{}", env!("CARGO_PKG_VERSION"));
    // An agent stores few records for others; keep its memory small.
    c.limits.requests_per_peer_per_minute = s.requests_per_peer_per_minute;
    c.limits.max_records = 2_000;
    c.limits.rollback_memory = 10_000;
    c.limits.signature_cache = 10_000;
    c.limits.tracked_peers = 2_000;
    c.limits.max_connections = 256;
    let (node, events) = Node::spawn(c).await.map_err(|e| {
        ErrorReply::new(
            ErrorCode::Network,
            format!("cannot start the network node: {e}"),
        )
    })?;
    for relay in &s.relays {
        let node = node.clone();
        let circuit = relay.clone().with(AddrProtocol::P2pCircuit);
        tokio::spawn(async move {
            match node.listen_on(circuit.clone()).await {
                Ok(a) => info!(%a, "relay circuit reserved"),
                Err(e) => warn!(%circuit, "relay reservation failed: {e}"),
            }
        });
    }
    spawn_events(shared.clone(), ego, events);
    Ok(node)
}

fn spawn_events(shared: Arc<Shared>, ego: EgoId, mut events: mpsc::Receiver<NodeEvent>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NodeEvent::Login {
                    peer,
                    challenge,
                    responder,
                } => approval::on_login(&shared, ego, peer, challenge, responder),
                NodeEvent::ListenAddrsChanged(_) => shared.wake.notify_one(),
                NodeEvent::Duplicity { ego_id, kind, .. } => {
                    error!(
                        ego = %ego_id,
                        "two valid, conflicting records of an ego were seen ({kind:?}): \
                         its circle is compromised"
                    );
                }
                NodeEvent::Invite {
                    peer,
                    message,
                    responder,
                } => super::friends::on_message(&shared, ego, peer, message, responder),
                NodeEvent::Circle {
                    peer,
                    message,
                    responder,
                } => super::circles::on_message(&shared, ego, peer, message, responder),
            }
        }
    });
}

/// Stops every node.
pub(crate) async fn stop_nodes(shared: &Shared) {
    let mut egos = shared.egos.lock().await;
    for state in egos.values_mut() {
        if let Some(node) = state.node.take() {
            node.shutdown().await;
        }
    }
}

/// The endpoints to publish for a node: configured external addresses,
/// relay circuits, then its other listen addresses (loopback last), at
/// most eight.
pub(crate) async fn endpoint_peers(shared: &Shared, node: &NodeHandle) -> Vec<PeerEndpoint> {
    let listen = node
        .status()
        .await
        .map(|s| s.listen_addrs)
        .unwrap_or_default();
    let is_circuit = |a: &Multiaddr| a.iter().any(|p| matches!(p, AddrProtocol::P2pCircuit));
    let is_loopback = |a: &Multiaddr| {
        a.iter().any(|p| match p {
            AddrProtocol::Ip4(ip) => ip.is_loopback(),
            AddrProtocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        })
    };
    let mut ordered: Vec<Multiaddr> = shared.settings.external_addrs.clone();
    ordered.extend(listen.iter().filter(|a| is_circuit(a)).cloned());
    ordered.extend(
        listen
            .iter()
            .filter(|a| !is_circuit(a) && !is_loopback(a))
            .cloned(),
    );
    ordered.extend(listen.iter().filter(|a| is_loopback(a)).cloned());
    let mut addrs: Vec<Vec<u8>> = Vec::new();
    for a in ordered {
        let bytes = a.to_vec();
        if bytes.len() <= cyrcles_core::record::types::MAX_ADDR_LEN && !addrs.contains(&bytes) {
            addrs.push(bytes);
        }
        if addrs.len() == MAX_PUBLISHED_ADDRS {
            break;
        }
    }
    vec![PeerEndpoint {
        peer_id: node.peer_id().to_bytes(),
        addrs,
    }]
}

/// Publishes a record through the ego's node and records the outcome.
/// Returns how many peers stored it.
pub(crate) async fn publish(
    shared: &Shared,
    ego: EgoId,
    node: &NodeHandle,
    bytes: Vec<u8>,
) -> Result<usize, String> {
    let outcome = match node.publish(bytes).await {
        Ok(p) if p.stored_at > 0 => Ok(p.stored_at),
        Ok(_) => Err("no peer has stored the record yet (no network?); retrying".to_string()),
        Err(e) => Err(format!("publication failed: {e}")),
    };
    let now = shared.now().secs();
    let (at, err) = match &outcome {
        Ok(_) => (Some(now), None),
        Err(e) => (None, Some(e.as_str())),
    };
    if let Err(e) = shared.keystore.set_status(&ego, at, err).await {
        warn!(%ego, "cannot record the publication status: {e}");
    }
    if let Some(state) = shared.egos.lock().await.get_mut(&ego) {
        if at.is_some() {
            state.row.last_published_at = at;
        }
        state.row.last_error = err.map(str::to_owned);
    }
    match &outcome {
        Ok(n) => debug!(%ego, peers = n, "record published"),
        Err(e) => debug!(%ego, "{e}"),
    }
    outcome
}

/// Creates an ego: keys, node, first record; stores and publishes it.
/// Returns the ego id and how many peers stored the record.
pub(crate) async fn create(
    shared: &Arc<Shared>,
    name: &str,
) -> Result<(EgoId, Result<usize, String>), ErrorReply> {
    check_name(name)?;
    let key = shared.data_key()?;
    let mut egos = shared.egos.lock().await;
    if egos.values().any(|e| e.row.name == name) {
        return Err(ErrorReply::new(
            ErrorCode::Conflict,
            format!("an ego named {name:?} already exists"),
        ));
    }
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
    let node = start_node(shared, ego_id, &device).await?;
    let peers = endpoint_peers(shared, &node).await;
    if let Err(e) = record.set_endpoints_dated(&ego, peers, now, s.endpoints_validity) {
        node.shutdown().await;
        return Err(build_error(e));
    }
    let bytes = record.to_cbor();
    let row = EgoRow {
        ego_id,
        name: name.to_string(),
        record: bytes.clone(),
        circle_id,
        created_at: now.secs(),
        revoked_at: None,
        last_published_at: None,
        last_error: None,
    };
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
    egos.insert(ego_id, state);
    drop(egos);
    info!(ego = %ego_id, name, "ego created");
    // A node that has just started may not have joined the network yet:
    // the first publication is tried again until a peer stores it.
    let deadline: tokio::time::Instant =
        cyrcles_p2p::deadline::after(std::time::Instant::now(), FIRST_PUBLISH_WAIT).into();
    let published = loop {
        let attempt =
            tokio::time::timeout_at(deadline, publish(shared, ego_id, &node, bytes.clone()))
                .await
                .unwrap_or_else(|_| {
                    Err("publication is taking long; the daemon keeps trying".into())
                });
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
async fn rotate_locked(
    shared: &Shared,
    state: &mut EgoState,
    key: &SymmetricKey,
) -> Result<Vec<u8>, ErrorReply> {
    let id = state.ego_id();
    if state.is_revoked() {
        return Err(ErrorReply::new(ErrorCode::Conflict, "the ego is revoked"));
    }
    let node = state.node.clone().ok_or_else(|| {
        ErrorReply::new(ErrorCode::Locked, "the ego's node is not running (locked?)")
    })?;
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
    let bytes = store_rotation(shared, state, record, key, new_key).await?;
    info!(ego = %id, seq, "ego key rotated");
    Ok(bytes)
}

/// Stores a record that certifies `new_key` together with the sealed key,
/// then makes both current. Returns the record's bytes.
pub(crate) async fn store_rotation(
    shared: &Shared,
    state: &mut EgoState,
    record: EgoRecord,
    key: &SymmetricKey,
    new_key: SecretKey,
) -> Result<Vec<u8>, ErrorReply> {
    let id = state.ego_id();
    let bytes = record.to_cbor();
    shared
        .keystore
        .save_record(&id, &bytes, Some((key, &new_key.to_seed()[..])))
        .await?;
    set_signer(shared, id, new_key, record.cert.body.seq);
    state.record = Some(record);
    state.row.record = bytes.clone();
    Ok(bytes)
}

/// Stores a revoked record (deleting every secret but the device key) and
/// ends the ego's signing and pending requests. Returns the record's bytes.
pub(crate) async fn store_revocation(
    shared: &Shared,
    state: &mut EgoState,
    record: EgoRecord,
    at: u64,
) -> Result<Vec<u8>, ErrorReply> {
    let id = state.ego_id();
    let bytes = record.to_cbor();
    shared.keystore.save_revocation(&id, &bytes, at).await?;
    state.record = Some(record);
    state.row.record = bytes.clone();
    state.row.revoked_at = Some(at);
    write(&shared.signers).remove(&id);
    approval::ego_revoked(shared, id);
    Ok(bytes)
}

async fn whole_circle(
    shared: &Shared,
    key: &SymmetricKey,
    id: &EgoId,
) -> Result<CircleSecret, ErrorReply> {
    if !shared
        .keystore
        .secret_kinds(id)
        .await?
        .contains(&SecretKind::Circle)
    {
        return Err(ErrorReply::new(
            ErrorCode::Conflict,
            "this agent does not hold the whole circle key (friends hold shares)",
        ));
    }
    let bytes = shared.keystore.secret(key, id, SecretKind::Circle).await?;
    CircleSecret::from_bytes(&bytes).map_err(|_| {
        ErrorReply::new(
            ErrorCode::Damaged,
            format!("the stored circle key of ego {id} is not a valid key"),
        )
    })
}

/// `ego rotate NAME`.
pub(crate) async fn rotate(shared: &Arc<Shared>, name: &str) -> Result<EgoId, ErrorReply> {
    let key = shared.data_key()?;
    let mut egos = shared.egos.lock().await;
    let id = find(&egos, name)?.ego_id();
    let state = egos.get_mut(&id).ok_or_else(|| unknown_ego(name))?;
    usable(state)?;
    let node = state.node.clone();
    let bytes = if state.circle.is_some() {
        // The friends certify the new key; not under the egos lock.
        drop(egos);
        super::circles::rotate_via_friends(shared, id).await?
    } else {
        let bytes = rotate_locked(shared, state, &key).await?;
        drop(egos);
        bytes
    };
    if let Some(node) = node {
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = publish(&shared, id, &node, bytes).await;
        });
    }
    Ok(id)
}

fn usable(state: &EgoState) -> Result<(), ErrorReply> {
    match &state.damage {
        Some(d) => Err(ErrorReply::new(
            ErrorCode::Damaged,
            format!("ego {:?} is damaged: {d}", state.row.name),
        )),
        None => Ok(()),
    }
}

/// `ego revoke NAME`: a revocation signed by the circle key, stored and
/// published; the ego's secrets but the device key are deleted.
pub(crate) async fn revoke(shared: &Arc<Shared>, name: &str) -> Result<EgoId, ErrorReply> {
    let key = shared.data_key()?;
    let mut egos = shared.egos.lock().await;
    let id = find(&egos, name)?.ego_id();
    let state = egos.get_mut(&id).ok_or_else(|| unknown_ego(name))?;
    usable(state)?;
    if state.is_revoked() {
        return Err(ErrorReply::new(
            ErrorCode::Conflict,
            format!("ego {name:?} is already revoked"),
        ));
    }
    if state.circle.is_some() {
        // The friends sign the revocation; not under the egos lock.
        let node = state.node.clone();
        drop(egos);
        let bytes = super::circles::revoke_via_friends(shared, id).await?;
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
    let bytes = store_revocation(shared, state, record, now.secs()).await?;
    let node = state.node.clone();
    drop(egos);
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
pub(crate) async fn renew_if_due(
    shared: &Shared,
    state: &mut EgoState,
    key: &SymmetricKey,
) -> Result<Option<Vec<u8>>, ErrorReply> {
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
    // this lock (see `maintenance`).
    if now >= rotation_due(&current.cert.body) && state.circle.is_none() {
        return rotate_locked(shared, state, key).await.map(Some);
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
    state.record = Some(record);
    state.row.record = bytes.clone();
    debug!(ego = %state.ego_id(), "endpoints renewed");
    Ok(Some(bytes))
}
