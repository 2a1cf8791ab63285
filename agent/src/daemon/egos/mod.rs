//! Egos: the state of each, looking one up, loading them, endpoints,
//! publication, and storing a rotated or revoked record. The table of
//! every ego, the only owner of the egos lock, is [`EgoTable`]
//! (`table.rs`): no await runs under that lock. What changes an ego
//! (create, rotate, revoke, renew) is in `lifecycle.rs`; starting its node
//! is in `node.rs`.
//!
//! Each ego has its own node with its own device key (libp2p identity), so
//! two egos of one person share no identifier on the network.

use std::sync::Arc;

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder::BuildError;
use cyrcles_core::record::{CertStatus, EgoCert, EgoRecord, PeerEndpoint};
use cyrcles_core::{EgoId, SecretKey, UnixTime};
use cyrcles_p2p::multiaddr::Protocol as AddrProtocol;
use cyrcles_p2p::{Multiaddr, NodeHandle};
use tracing::{debug, error, warn};

use super::error::{BadInput, Chain, Conflict, Damaged, Internal, NotFound, Unpublished};
use super::{Error, Result, Shared, Signer, lock, write};

mod table;

use crate::keystore::EgoRow;
use crate::keystore::seal::SymmetricKey;
pub(crate) use table::{Busy, EgoTable};

/// Longest ego name.
const MAX_NAME_LEN: usize = 32;
/// Addresses published per peer (the record format allows 8).
const MAX_PUBLISHED_ADDRS: usize = 8;

/// One ego in the daemon.
#[derive(Debug, Clone)]
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
    pub(crate) fn record(&self) -> Result<&EgoRecord> {
        self.record.as_ref().ok_or_else(|| {
            Error::from(Damaged::Ego {
                ego: self.row.name.clone(),
                why: self
                    .damage
                    .clone()
                    .unwrap_or_else(|| "its record is unreadable".into()),
            })
        })
    }
}

/// When a certificate is renewed: at half of its validity.
pub(crate) fn rotation_due(cert: &EgoCert) -> UnixTime {
    let span = cert.not_after.since(cert.not_before);
    cert.not_before.plus(span / 2)
}

pub(crate) fn build_error(e: BuildError) -> Error {
    match e {
        BuildError::Revoked => Conflict::Revoked.into(),
        other => Internal::RecordUpdate(other).into(),
    }
}

/// Checks a new ego's name: 1 to 32 letters, digits, `-`, `_` or `.`,
/// starting with a letter or digit.
pub(crate) fn check_name(name: &str) -> Result<()> {
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
        Err(BadInput::EgoName {
            name: name.into(),
            max: MAX_NAME_LEN,
        }
        .into())
    }
}

/// Finds an ego by name.
pub(crate) fn find<'a>(
    egos: &'a std::collections::BTreeMap<EgoId, EgoState>,
    name: &str,
) -> Result<&'a EgoState> {
    egos.values()
        .find(|e| e.row.name == name)
        .ok_or_else(|| unknown_ego(name))
}

pub(crate) fn unknown_ego(name: &str) -> Error {
    NotFound::EgoNamed(name.into()).into()
}

/// The id of the ego called `name`.
pub(crate) fn ego_by_name(shared: &Shared, name: &str) -> Result<EgoId> {
    shared.egos.id_by_name(name)
}

/// Reads every ego from the keystore (no secrets needed).
pub(crate) async fn load(shared: &Shared) -> Result<(), crate::keystore::KeystoreError> {
    let rows = shared.keystore.egos().await?;
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
        shared.egos.insert(state);
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

/// Stops every node.
pub(crate) async fn stop_nodes(shared: &Shared) {
    for node in shared.egos.take_nodes() {
        node.shutdown().await;
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
) -> Result<usize, Unpublished> {
    let outcome = match node.publish(bytes).await {
        Ok(p) if p.stored_at > 0 => Ok(p.stored_at),
        Ok(_) => Err(Unpublished::NoPeer),
        Err(e) => Err(Unpublished::Failed(e)),
    };
    let now = shared.now().secs();
    let (at, err) = match &outcome {
        Ok(_) => (Some(now), None),
        Err(e) => (None, Some(e.to_string())),
    };
    if let Err(e) = shared.keystore.set_status(&ego, at, err.as_deref()).await {
        warn!(%ego, "cannot record the publication status: {}", Chain(&e));
    }
    match &outcome {
        Ok(n) => debug!(%ego, peers = n, "record published"),
        Err(e) => debug!(%ego, "{}", Chain(e)),
    }
    shared.egos.update(&ego, |state| {
        if at.is_some() {
            state.row.last_published_at = at;
        }
        state.row.last_error = err;
    });
    outcome
}

/// Stores a record that certifies `new_key` together with the sealed key
/// (one transaction), then makes both current. The caller holds the
/// ego's reservation. Returns the record's bytes.
pub(crate) async fn store_rotation(
    shared: &Shared,
    busy: &Busy<'_>,
    record: EgoRecord,
    key: &SymmetricKey,
    new_key: SecretKey,
) -> Result<Vec<u8>> {
    let id = busy.id();
    let bytes = record.to_cbor();
    shared
        .keystore
        .save_record(&id, &bytes, Some((key, &new_key.to_seed()[..])))
        .await?;
    set_signer(shared, id, new_key, record.cert.body.seq);
    shared.egos.update(&id, |state| {
        state.record = Some(record);
        state.row.record = bytes.clone();
    });
    Ok(bytes)
}

/// Stores a revoked record (deleting every secret but the device key, one
/// transaction) and ends the ego's signing; the caller holds the ego's
/// reservation and ends its pending requests
/// (`approval::ego_revoked`). Returns the record's bytes.
pub(crate) async fn store_revocation(
    shared: &Shared,
    busy: &Busy<'_>,
    record: EgoRecord,
    at: u64,
) -> Result<Vec<u8>> {
    let id = busy.id();
    let bytes = record.to_cbor();
    shared.keystore.save_revocation(&id, &bytes, at).await?;
    shared.egos.update(&id, |state| {
        state.record = Some(record);
        state.row.record = bytes.clone();
        state.row.revoked_at = Some(at);
    });
    write(&shared.signers).remove(&id);
    Ok(bytes)
}
