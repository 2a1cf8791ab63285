//! The limit stores keep one contract: in memory (a bridge on SQLite), and
//! in the database (PostgreSQL, shared by every instance; the same queries
//! also run on SQLite here, so both engines are checked).

use cyrcles_bridge::config::DbKind;
use cyrcles_bridge::limits::{LimitStore, Limits, Rate, Spend};
use cyrcles_bridge::store::Store;
use cyrcles_p2p::{Clock, ManualClock};

use crate::common::postgres_db;

async fn sqlite_store() -> Store {
    let dir = std::env::temp_dir().join(format!(
        "cyrcles-limits-test-{}",
        cyrcles_bridge::random::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let sqlite = Store::connect(&url, DbKind::Sqlite, 4).await.unwrap();
    sqlite.migrate().await.unwrap();
    sqlite
}

async fn every_store() -> Vec<(&'static str, Limits)> {
    let sqlite = sqlite_store().await;
    let mut out = vec![
        ("memory", Limits::memory(1_000)),
        ("sql on sqlite", Limits::shared(sqlite, Clock::system())),
    ];
    match postgres_db().await {
        Some(url) => {
            let pg = Store::connect(&url, DbKind::Postgres, 4).await.unwrap();
            pg.migrate().await.unwrap();
            out.push(("sql on postgres", Limits::shared(pg, Clock::system())));
        }
        None => {
            eprintln!("CYRCLES_TEST_POSTGRES_URL is not set: PostgreSQL limits not tested")
        }
    }
    out
}

#[tokio::test]
async fn rates_and_the_spent_set_keep_one_contract_everywhere() {
    // A minute boundary.
    const T0: i64 = 1_800_000_000;
    for (name, l) in every_store().await {
        // Five a minute per key; keys are apart.
        let r = Rate::per_minute(5);
        for i in 0..5 {
            assert_eq!(l.hit("a", r, T0 + i).await.unwrap(), Ok(()), "{name}");
        }
        let wait = l.hit("a", r, T0 + 5).await.unwrap().unwrap_err();
        assert!((1..=60).contains(&wait), "{name}: {wait}");
        assert_eq!(l.hit("b", r, T0 + 5).await.unwrap(), Ok(()), "{name}");
        // Half-way through the next window, half of the last one counts
        // (the refused attempt counted too: 6 hits, weighing 3), so two
        // more fit.
        assert!(l.hit("a", r, T0 + 90).await.unwrap().is_ok(), "{name}");
        assert!(l.hit("a", r, T0 + 90).await.unwrap().is_ok(), "{name}");
        assert!(l.hit("a", r, T0 + 90).await.unwrap().is_err(), "{name}");
        // Two windows later, all is forgotten.
        assert_eq!(l.hit("a", r, T0 + 180).await.unwrap(), Ok(()), "{name}");
        assert!(l.purge_limits(T0 + 1_000).await.unwrap() >= 2, "{name}");

        // Tokens spend once; the set holds at most 3 live tags.
        let e = l.pow_epoch().await.unwrap();
        let exp = T0 + 300;
        for (t, until) in [(1u8, T0 + 10), (2, exp), (3, exp)] {
            assert_eq!(
                l.spend(e, &[t; 16], until, 3, T0).await.unwrap(),
                Spend::Fresh,
                "{name}"
            );
        }
        assert_eq!(
            l.spend(e, &[1; 16], exp, 3, T0).await.unwrap(),
            Spend::Replayed,
            "{name}"
        );
        // An expired tag makes room instead of ending the epoch.
        assert_eq!(
            l.spend(e, &[4; 16], exp, 3, T0 + 20).await.unwrap(),
            Spend::Fresh,
            "{name}"
        );
        let e2 = l.pow_epoch().await.unwrap();
        assert_eq!(e2, e, "{name}");
        // Full of live tags: the spend that finds it so is accepted and
        // ends the epoch; every outstanding token of it is retired, and
        // the tags spent in it cannot come back either.
        let Spend::EpochEnded { current: e3 } =
            l.spend(e2, &[10; 16], exp, 3, T0 + 21).await.unwrap()
        else {
            panic!("{name}: the full set did not end its epoch");
        };
        assert_ne!(e3, e2, "{name}");
        assert_eq!(l.pow_epoch().await.unwrap(), e3, "{name}");
        assert_eq!(
            l.spend(e2, &[30; 16], exp, 3, T0 + 2).await.unwrap(),
            Spend::Retired { current: e3 },
            "{name}"
        );
        assert_eq!(
            l.spend(e2, &[1; 16], exp, 3, T0 + 2).await.unwrap(),
            Spend::Retired { current: e3 },
            "{name}"
        );
        // Tokens of the new epoch spend as usual.
        assert_eq!(
            l.spend(e3, &[1; 16], exp, 3, T0 + 2).await.unwrap(),
            Spend::Fresh,
            "{name}"
        );
        assert_eq!(
            l.spend(e3, &[1; 16], exp, 3, T0 + 2).await.unwrap(),
            Spend::Replayed,
            "{name}"
        );
    }
}

/// Instances sharing the database: one ends the proof-of-work epoch (its
/// spent set filled up); another keeps the epoch it read for 2 s by its
/// clock, then reads the new one.
#[tokio::test]
async fn a_shared_epoch_is_read_again_once_its_cache_is_stale() {
    const T0: i64 = 1_800_000_000;
    let store = sqlite_store().await;
    let manual = ManualClock::starting_now();
    let here = Limits::shared(store.clone(), manual.clock());
    let there = Limits::shared(store, manual.clock());
    let e = here.pow_epoch().await.unwrap();
    // The other instance's set holds one live tag: the second ends the
    // epoch.
    assert_eq!(there.pow_epoch().await.unwrap(), e);
    assert_eq!(
        there.spend(e, &[1; 16], T0 + 300, 1, T0).await.unwrap(),
        Spend::Fresh
    );
    let Spend::EpochEnded { current } = there.spend(e, &[2; 16], T0 + 300, 1, T0).await.unwrap()
    else {
        panic!("the full set did not end its epoch");
    };
    assert_ne!(current, e);
    manual.advance(std::time::Duration::from_millis(1_999));
    assert_eq!(here.pow_epoch().await.unwrap(), e, "cached for 2 s");
    manual.advance(std::time::Duration::from_millis(1));
    assert_eq!(here.pow_epoch().await.unwrap(), current, "read again after");
}
