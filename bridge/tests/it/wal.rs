//! SQLite's write-ahead log (issue 12, measured: 1.1 GiB after a minute of
//! refresh grants, never shrinking). Sustained writes from every pool
//! connection while the maintenance checkpoint runs keep the log file
//! small, and after the checkpoint it is empty.

use cyrcles_bridge::crypto::sha256;
use cyrcles_bridge::store::{NewGrant, RotateOutcome, TokenKind};
use cyrcles_bridge::tasks::checkpoint_once;

use crate::attacker::metric;
use crate::common::TestBridge;
use cyrcles_testkit::wait_until;

/// A refresh grant's writes, as the token endpoint does them: a grant, its
/// refresh token rotated, a new access and refresh token.
async fn refresh_cycle(store: &cyrcles_bridge::store::Store, id: &str, now: i64) {
    store
        .insert_grant(&NewGrant {
            grant_id: id.into(),
            client_id: "c".into(),
            ego_id: "e".into(),
            sid: None,
            sub: "s".into(),
            scope: "openid".into(),
            claims: None,
            nonce: None,
            auth_time: now,
            acr: "a".into(),
            cert_seq: None,
            cert_epoch: None,
            created_at: now,
            revoked_at: None,
        })
        .await
        .unwrap();
    let old = sha256(id);
    store
        .insert_token(
            &old,
            TokenKind::Refresh,
            id,
            "c",
            "openid",
            now,
            now + 1_000,
        )
        .await
        .unwrap();
    assert!(matches!(
        store.rotate_refresh(&old, "c", now).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
    let (access, refresh) = (sha256(&format!("{id}a")), sha256(&format!("{id}r")));
    store
        .insert_token_pair(
            &access,
            now + 10,
            Some((&refresh, now + 100)),
            id,
            "c",
            "openid",
            now,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_writes_leave_a_small_write_ahead_log() {
    let bridge = TestBridge::start().await;
    let store = bridge.state.store.clone();
    let now = bridge.clock.now();
    // Four writers (the pool's four connections), 1 000 refresh grants
    // each; every 100 they report and wait until the test has run the
    // checkpoint (as the maintenance task does every second) while the
    // others go on writing. Waiting makes the writes between two
    // checkpoints the same on a slow machine as on a fast one.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>(4);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (store, tx) = (store.clone(), tx.clone());
            tokio::spawn(async move {
                for i in 0..1_000 {
                    refresh_cycle(&store, &format!("g{w}-{i}"), now).await;
                    if i % 100 == 99 {
                        let (done, checkpointed) = tokio::sync::oneshot::channel();
                        let _ = tx.send(done).await;
                        let _ = checkpointed.await;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut largest = 0;
    let mut completed = 0;
    while let Some(done) = rx.recv().await {
        largest = largest.max(store.wal_bytes().await.unwrap());
        if checkpoint_once(&bridge.state).await.unwrap() {
            completed += 1;
        }
        let _ = done.send(());
    }
    for w in writers {
        w.await.unwrap();
    }
    // About 21 KB of log per refresh grant: 84 MB without checkpoints.
    // (The bridge's own task checkpoints too; when both meet, one waits
    // for the next turn.)
    assert!(completed >= 10, "{completed} of 40 checkpoints completed");
    assert!(
        largest < 32 * 1024 * 1024,
        "the log reached {largest} bytes between checkpoints"
    );
    wait_until(60, "a checkpoint completes", || async {
        checkpoint_once(&bridge.state).await.unwrap()
    })
    .await;
    // Empty, but for what the bridge's own tasks may have written since.
    assert!(store.wal_bytes().await.unwrap() < 1024 * 1024);
    assert!(metric(&bridge, "cyrcles_bridge_sqlite_wal_bytes").await < 1024 * 1024);
    assert_eq!(bridge.state.store.rows("grants").await.unwrap(), 4_000);
}
