//! [`EgoTable`]: the only owner of the egos lock.
//!
//! The lock is a `std::sync::Mutex`, held only inside this file's
//! methods, and every method that takes it is synchronous (readers and
//! writers pass closures): nothing can await under it, so a slow node, a
//! friend that does not answer or a keystore transaction never holds up
//! a read or a change of another ego. The compiler keeps it so: a std
//! guard cannot be held across an await in a spawned task.
//!
//! A change to one ego is made exclusive by a reservation, [`Busy`],
//! taken with [`EgoTable::reserve`] (which waits while another change of
//! the same ego runs) and released when dropped; the awaited work (the
//! keystore transaction, the node's answers) runs under the reservation,
//! not under the lock, and its result is committed with
//! [`EgoTable::update`] or [`EgoTable::insert`]. A new ego's name is
//! held the same way ([`EgoTable::reserve_name`]) while it is created or
//! recovered, and a second `ego create` of the name is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use cyrcles_core::EgoId;
use cyrcles_p2p::NodeHandle;
use tokio::sync::Notify;

use super::{EgoState, find};
use crate::daemon::error::Conflict;
use crate::daemon::{Result, lock};

/// Every ego in the daemon, behind the egos lock.
#[derive(Debug, Default)]
pub(crate) struct EgoTable {
    inner: Mutex<Inner>,
    /// Woken when a reservation ends.
    released: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    egos: BTreeMap<EgoId, EgoState>,
    /// Egos whose change is under way.
    busy: BTreeSet<EgoId>,
    /// Names of egos being created or recovered.
    names: BTreeSet<String>,
}

/// An exclusive change of one ego; dropped, it lets the next one run.
#[derive(Debug)]
#[must_use = "the ego is free again once this is dropped"]
pub(crate) struct Busy<'a> {
    table: &'a EgoTable,
    id: EgoId,
}

impl Busy<'_> {
    /// The reserved ego.
    pub(crate) fn id(&self) -> EgoId {
        self.id
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        lock(&self.table.inner).busy.remove(&self.id);
        self.table.released.notify_waiters();
    }
}

/// A name held for an ego being created or recovered.
#[derive(Debug)]
#[must_use = "the name is free again once this is dropped"]
pub(crate) struct NameHold<'a> {
    table: &'a EgoTable,
    name: String,
}

impl Drop for NameHold<'_> {
    fn drop(&mut self) {
        lock(&self.table.inner).names.remove(&self.name);
    }
}

impl EgoTable {
    /// Reads the whole table.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&BTreeMap<EgoId, EgoState>) -> R) -> R {
        f(&lock(&self.inner).egos)
    }

    /// Reads one ego (`None` if there is no such ego).
    pub(crate) fn get<R>(&self, id: &EgoId, f: impl FnOnce(&EgoState) -> R) -> Option<R> {
        lock(&self.inner).egos.get(id).map(f)
    }

    /// Changes one ego's in-memory state (`None` if there is no such ego).
    /// Callers that also change the keystore hold the ego's [`Busy`].
    pub(crate) fn update<R>(&self, id: &EgoId, f: impl FnOnce(&mut EgoState) -> R) -> Option<R> {
        lock(&self.inner).egos.get_mut(id).map(f)
    }

    /// The id of the ego called `name`.
    pub(crate) fn id_by_name(&self, name: &str) -> Result<EgoId> {
        self.read(|egos| find(egos, name).map(EgoState::ego_id))
    }

    /// Every ego's id.
    pub(crate) fn ids(&self) -> Vec<EgoId> {
        self.read(|egos| egos.keys().copied().collect())
    }

    /// Adds an ego (loaded, created or recovered).
    pub(crate) fn insert(&self, state: EgoState) {
        lock(&self.inner).egos.insert(state.ego_id(), state);
    }

    /// Takes every ego's node (to stop them).
    pub(crate) fn take_nodes(&self) -> Vec<NodeHandle> {
        let mut inner = lock(&self.inner);
        inner
            .egos
            .values_mut()
            .filter_map(|s| s.node.take())
            .collect()
    }

    /// Makes a change of `id` exclusive: waits while another change of it
    /// runs. The lock is not held while waiting.
    pub(crate) async fn reserve(&self, id: EgoId) -> Busy<'_> {
        loop {
            let released = {
                let mut inner = lock(&self.inner);
                if inner.busy.insert(id) {
                    return Busy { table: self, id };
                }
                // Made under the lock, so a release after the check wakes it.
                let released = self.released.notified();
                drop(inner);
                released
            };
            released.await;
        }
    }

    /// Holds `name` for a new ego; refused if an ego has it or another
    /// creation or recovery holds it.
    pub(crate) fn reserve_name(&self, name: &str) -> Result<NameHold<'_>> {
        let mut inner = lock(&self.inner);
        if inner.egos.values().any(|e| e.row.name == name) || !inner.names.insert(name.into()) {
            return Err(Conflict::NameTaken(name.into()).into());
        }
        Ok(NameHold {
            table: self,
            name: name.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::FutureExt;
    use tokio::sync::oneshot;

    use super::*;
    use crate::control::proto::ErrorCode;
    use crate::keystore::EgoRow;

    fn state(n: u8, name: &str) -> EgoState {
        EgoState {
            row: EgoRow::new(EgoId::from_bytes([n; 32]), name, Vec::new(), [0; 16], 0),
            record: None,
            node: None,
            damage: None,
            circle: None,
            friends_retry: None,
            friends_error: None,
        }
    }

    #[tokio::test]
    async fn a_slow_change_of_one_ego_holds_up_no_other() {
        let table = Arc::new(EgoTable::default());
        let (a, b) = (EgoId::from_bytes([1; 32]), EgoId::from_bytes([2; 32]));
        table.insert(state(1, "a"));
        table.insert(state(2, "b"));
        let (reserved, reserved_rx) = oneshot::channel();
        let (answer, answer_rx) = oneshot::channel::<()>();
        let t = table.clone();
        // A change of `a` waiting on a network answer that has not come.
        let slow = tokio::spawn(async move {
            let busy = t.reserve(a).await;
            let _ = reserved.send(());
            let _ = answer_rx.await;
            t.update(&busy.id(), |s| s.row.last_error = Some("answered".into()));
        });
        reserved_rx.await.expect("the slow change started");

        // Meanwhile: the table reads, and `b` is changed at once (a free
        // ego's reservation is ready on its first poll).
        assert_eq!(table.id_by_name("b").ok(), Some(b));
        assert_eq!(table.get(&a, |s| s.row.name.clone()).as_deref(), Some("a"));
        let busy_b = table.reserve(b).now_or_never().expect("b is not held up");
        table.update(&b, |s| s.row.last_error = Some("b changed".into()));
        drop(busy_b);

        // A second change of `a` waits for the first.
        let mut second = Box::pin(table.reserve(a));
        assert!((&mut second).now_or_never().is_none(), "a is busy");
        let _ = answer.send(());
        slow.await.expect("the slow change ends");
        let busy_a = second.await;
        assert_eq!(
            table.get(&busy_a.id(), |s| s.row.last_error.clone()),
            Some(Some("answered".into()))
        );
    }

    #[test]
    fn a_name_is_held_while_its_ego_is_made() {
        let table = EgoTable::default();
        table.insert(state(1, "a"));
        assert!(table.reserve_name("a").is_err(), "an ego has it");
        let hold = table.reserve_name("b").expect("free");
        let second = table.reserve_name("b");
        assert_eq!(
            second.map(|_| ()).map_err(|e| e.code()),
            Err(ErrorCode::Conflict)
        );
        drop(hold);
        assert!(table.reserve_name("b").is_ok(), "free again");
    }
}
