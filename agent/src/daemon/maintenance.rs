//! The maintenance loop: renews certificates and endpoints when due and
//! retries failed publications. It runs every `maintenance_interval`, and
//! at once when a node's addresses change or after an unlock.

use std::sync::Arc;

use tracing::warn;

use super::{Shared, egos};

/// Runs until the daemon stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut stop = shared.stop.subscribe();
    loop {
        tick(&shared).await;
        tokio::select! {
            _ = tokio::time::sleep(shared.settings.maintenance_interval) => {}
            _ = shared.wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One pass over the egos.
pub(crate) async fn tick(shared: &Shared) {
    let Ok(key) = shared.data_key() else {
        return;
    };
    let mut to_publish = Vec::new();
    {
        let mut all = shared.egos.lock().await;
        for state in all.values_mut() {
            if state.damage.is_some() {
                continue;
            }
            match egos::renew_if_due(shared, state, &key).await {
                Ok(Some(bytes)) => {
                    if let Some(node) = state.node.clone() {
                        to_publish.push((state.ego_id(), node, bytes));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(ego = %state.row.name, "renewal failed: {}", e.message);
                    if let Err(e) = shared
                        .keystore
                        .set_status(&state.ego_id(), None, Some(&e.message))
                        .await
                    {
                        warn!("cannot record the failure: {e}");
                    }
                    state.row.last_error = Some(e.message);
                }
            }
        }
    }
    for (id, node, bytes) in to_publish {
        let _ = egos::publish(shared, id, &node, bytes).await;
    }
}
