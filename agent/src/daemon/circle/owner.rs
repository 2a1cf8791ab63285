//! The owner's side of a circle: `circle add`, `circle remove` and
//! `circle policy` have the planned friends generate a new circle key
//! (`generate.rs`; this agent never holds it); rotation and revocation of
//! the ego key go through them once they hold it.
//!
//! No network call is made while the egos lock or the ego's reservation
//! is held: each operation takes a [`Snapshot`], runs the ceremony, then
//! [`apply`]s the result, under the ego's reservation, only if the ego did
//! not change meanwhile (a change that interleaved is refused with "the
//! ego changed during the ceremony"). Each commit is one keystore
//! transaction.

use std::sync::Arc;

use cyrcles_core::circle::Purpose;
use cyrcles_core::record::builder::{sign_with_circle, sign_with_key};
use cyrcles_core::record::{EgoCert, EgoRecord, Signed};
use cyrcles_core::{CircleSecret, EgoId, SecretKey};
use cyrcles_p2p::NodeHandle;
use rand_core::OsRng;
use tracing::info;

use super::changes::{self, PendingCircle};
use super::coordinator::session;
use super::generate::generate;
use super::view::describe;
use super::{Snapshot, default_threshold, snapshot};
use crate::control::proto::CircleInfo;
use crate::daemon::egos::ego_by_name;
use crate::daemon::error::{BadInput, Conflict, Damaged, Internal, NotFound, Refused};
use crate::daemon::peers::{find_friend, friends_of};
use crate::daemon::{Result, Shared, approval, egos};
use crate::keystore::seal::SymmetricKey;
use crate::keystore::{CircleRow, FriendRow, SecretKind};

/// `circle add` (`member = true`) and `circle remove`.
pub(crate) async fn change(
    shared: &Arc<Shared>,
    name: &str,
    friend: &str,
    member: bool,
) -> Result<CircleInfo> {
    let ego = ego_by_name(shared, name)?;
    let friends = friends_of(shared, &ego).await?;
    let row = find_friend(&friends, name, friend)?;
    shared.keystore.set_planned(&ego, row.id, member).await?;
    let note = reshare(shared, ego).await?;
    describe(shared, ego, name, Some(note)).await
}

/// `circle policy --threshold T`.
pub(crate) async fn set_threshold(
    shared: &Arc<Shared>,
    name: &str,
    threshold: u16,
) -> Result<CircleInfo> {
    let ego = ego_by_name(shared, name)?;
    if threshold < 2 {
        return Err(BadInput::Threshold.into());
    }
    shared.keystore.set_threshold(&ego, Some(threshold)).await?;
    let note = reshare(shared, ego).await?;
    describe(shared, ego, name, Some(note)).await
}

/// Brings the shared circle in line with the plan; returns what happened.
async fn reshare(shared: &Arc<Shared>, ego: EgoId) -> Result<String> {
    let friends = friends_of(shared, &ego).await?;
    let (plan, asked) = shared.keystore.plan(&ego).await?;
    let n = plan.len();
    if n < 2 {
        return Ok(format!(
            "{n} friend(s) planned: the circle is shared once it has at least 2"
        ));
    }
    let t = asked.unwrap_or_else(|| default_threshold(n));
    if usize::from(t) > n {
        return Ok(format!(
            "the threshold {t} is more than the {n} friends planned: add friends or lower it"
        ));
    }
    let current = shared.keystore.circle(&ego).await?;
    if let Some(c) = &current {
        let same: Vec<i64> = c.members.iter().map(|(_, f)| *f).collect();
        if same == plan && c.threshold == t {
            return Ok("the circle already matches the plan".into());
        }
    }
    let key = shared.data_key()?;
    let snap = snapshot(shared, &ego)?;
    let now = shared.now();
    let members: Vec<&FriendRow> = plan.iter().filter_map(|id| friends.get(id)).collect();
    let generation = u64::try_from(snap.record.chain.len()).unwrap_or(u64::MAX) + 1;
    // A circle whose link waits for the friends' humans is used again, so
    // that their approval of its digits still holds (`changes.rs`).
    let public = match changes::take_pending(shared, &ego, &plan, t, generation) {
        Some(p) => p.public,
        None => generate(shared, &snap, &members, t, generation).await?,
    };
    let row = CircleRow {
        circle_id: snap.circle_id.0,
        generation,
        threshold: t,
        public: public.to_cbor(),
        members: members
            .iter()
            .zip(public.members())
            .map(|(f, m)| (m.get(), f.id))
            .collect(),
        created_at: now.secs(),
    };
    let pending = PendingCircle {
        plan,
        threshold: t,
        generation,
        public,
    };
    // The members hold their shares now: until the record is committed,
    // a failure keeps the circle for the next run of the command.
    let record = match link_and_certify(shared, &key, &snap, current.as_ref(), &row, &pending).await
    {
        Ok(r) => r,
        Err(e) => {
            changes::keep_pending(shared, ego, pending);
            return Err(e);
        }
    };
    let bytes = apply(shared, &ego, &snap, record, Store::Circle(&row)).await?;
    info!(%ego, t, n, generation, "circle shared");
    publish_later(shared, ego, snap.node.clone(), bytes);
    Ok(format!(
        "shared {t} of {n}: the friends' agents generated the circle key and hold its shares; \
         no device knows it whole"
    ))
}

/// The record with the new circle: its link, signed by whoever holds the
/// current circle (the root key or the whole circle key while this agent
/// still holds them, else a threshold of the old circle, whose humans
/// approve it), then the ego key certified under the new circle by a
/// threshold of its members (an `enter` request).
async fn link_and_certify(
    shared: &Shared,
    key: &SymmetricKey,
    snap: &Snapshot,
    current: Option<&CircleRow>,
    row: &CircleRow,
    pending: &PendingCircle,
) -> Result<EgoRecord> {
    let ego = snap.record.ego_id();
    let now = shared.now();
    let mut record = snap.record.clone();
    let body = record.next_link(pending.public.group_key(), now);
    let kinds = shared.keystore.secret_kinds(&ego).await?;
    let link = if record.chain.is_empty() && kinds.contains(&SecretKind::Root) {
        let root = shared.keystore.secret(key, &ego, SecretKind::Root).await?;
        sign_with_key(&SecretKey::from_seed(&root), body)
    } else if kinds.contains(&SecretKind::Circle) {
        let whole = shared
            .keystore
            .secret(key, &ego, SecretKind::Circle)
            .await?;
        let whole = CircleSecret::from_bytes(&whole).map_err(|_| Damaged::CircleKey)?;
        sign_with_circle(&whole, &mut OsRng, body)
    } else {
        let old = current.ok_or(Damaged::NoCircle)?;
        let sig = session(shared, snap, old, Purpose::Link(body.clone())).await?;
        Signed { body, sig }
    };
    record.push_link(link.clone()).map_err(Internal::Link)?;
    let cert = record.next_cert(snap.ego_key.public(), now, shared.settings.cert_validity);
    let sig = session(
        shared,
        snap,
        row,
        Purpose::Enter {
            link,
            cert: cert.clone(),
        },
    )
    .await?;
    record
        .set_cert(Signed { body: cert, sig })
        .map_err(Refused::FriendsCert)?;
    Ok(record)
}

/// How a new record is stored.
enum Store<'a> {
    /// A new circle: the circle row, and the root and whole circle keys go.
    Circle(&'a CircleRow),
    /// A rotation: the new ego key, sealed under the data key.
    Rotation(&'a SymmetricKey, Box<SecretKey>),
    /// A revocation at this time: every secret but the device key goes.
    Revocation(u64),
}

/// Applies a new record if the ego did not change since the snapshot;
/// the keystore, the in-memory state and the signer follow. Returns the
/// record's bytes.
async fn apply(
    shared: &Shared,
    ego: &EgoId,
    snap: &Snapshot,
    record: EgoRecord,
    store: Store<'_>,
) -> Result<Vec<u8>> {
    use cyrcles_core::cbor::Encode;
    let busy = shared.egos.reserve(*ego).await;
    let held = shared
        .egos
        .get(ego, |state| {
            state.record().map(|r| (r.cert.body.seq, r.chain.len()))
        })
        .ok_or(NotFound::Ego(*ego))??;
    if held != (snap.record.cert.body.seq, snap.record.chain.len()) {
        return Err(Conflict::Changed.into());
    }
    match store {
        Store::Circle(row) => {
            let bytes = record.to_cbor();
            shared.keystore.commit_circle(ego, &bytes, row).await?;
            shared.egos.update(ego, |state| {
                state.circle = Some((row.threshold, row.members.len()));
                state.record = Some(record);
                state.row.record = bytes.clone();
            });
            Ok(bytes)
        }
        Store::Rotation(key, new_key) => {
            egos::store_rotation(shared, &busy, record, key, *new_key).await
        }
        Store::Revocation(at) => {
            let bytes = egos::store_revocation(shared, &busy, record, at).await?;
            approval::ego_revoked(shared, *ego);
            Ok(bytes)
        }
    }
}

fn publish_later(shared: &Arc<Shared>, ego: EgoId, node: NodeHandle, bytes: Vec<u8>) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let _ = egos::publish(&shared, ego, &node, bytes).await;
    });
}

/// Rotates the ego key through the friends (flow 4): a new key certified
/// by a threshold of the circle. Returns the record to publish.
pub(crate) async fn rotate_via_friends(shared: &Shared, ego: EgoId) -> Result<Vec<u8>> {
    let circle = shared
        .keystore
        .circle(&ego)
        .await?
        .ok_or(Conflict::NoSharedCircle)?;
    let key = shared.data_key()?;
    let snap = snapshot(shared, &ego)?;
    let now = shared.now();
    let new_key = SecretKey::generate(&mut OsRng);
    let cert: EgoCert = snap
        .record
        .next_cert(new_key.public(), now, shared.settings.cert_validity);
    let sig = session(shared, &snap, &circle, Purpose::Certify(cert.clone())).await?;
    let mut record = snap.record.clone();
    record
        .set_cert(Signed { body: cert, sig })
        .map_err(Refused::FriendsCert)?;
    let peers = egos::endpoint_peers(shared, &snap.node).await;
    record
        .set_endpoints_dated(&new_key, peers, now, shared.settings.endpoints_validity)
        .map_err(Internal::Endpoints)?;
    let bytes = apply(
        shared,
        &ego,
        &snap,
        record,
        Store::Rotation(&key, Box::new(new_key)),
    )
    .await?;
    info!(%ego, "ego key rotated by the friends");
    Ok(bytes)
}

/// Revokes the ego through the friends: a threshold of the circle signs
/// the revocation certificate. Returns the record to publish.
pub(crate) async fn revoke_via_friends(shared: &Shared, ego: EgoId) -> Result<Vec<u8>> {
    let circle = shared
        .keystore
        .circle(&ego)
        .await?
        .ok_or(Conflict::NoSharedCircle)?;
    let snap = snapshot(shared, &ego)?;
    let now = shared.now();
    let body = snap.record.revocation(now, shared.settings.cert_validity);
    let sig = session(shared, &snap, &circle, Purpose::Certify(body.clone())).await?;
    let mut record = snap.record.clone();
    record
        .set_cert(Signed { body, sig })
        .map_err(Refused::FriendsRevocation)?;
    let bytes = apply(shared, &ego, &snap, record, Store::Revocation(now.secs())).await?;
    info!(%ego, "ego revoked by the friends");
    Ok(bytes)
}
