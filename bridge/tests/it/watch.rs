//! The challenge-status watch map (reproduced attack 2 of issue 12): a
//! stranger with one interaction cookie asks for the status of challenge
//! ids that do not exist, or opens long polls and drops them; the map keeps
//! nothing for either, and a real long poll still wakes on the answer.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::attacker::metric;
use crate::common::{Answer, Rp, TestAgent, TestBridge, browser, location, start_login};
use cyrcles_testkit::{bounded, wait_until};

const ENTRIES: &str = "cyrcles_bridge_login_watch_challenges";
const WAITERS: &str = "cyrcles_bridge_login_watch_waiters";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_challenge_ids_leave_nothing_in_the_watch_map() {
    let bridge = TestBridge::start().await;
    let (id, _) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, None).await;
    let b = browser();
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    // One interaction: all the attacker needs.
    let ix = location(&b.get(&url).send().await.unwrap());
    // Ids of the right shape that name no challenge, long ones, odd ones.
    let cids: Vec<String> = (0..3_000)
        .map(|i| match i % 3 {
            0 => cyrcles_bridge::random::id(),
            1 => format!("{}{i}", "x".repeat(1_500)),
            _ => format!("not-an-id-{i}"),
        })
        .collect();
    let statuses: Vec<u16> = futures::stream::iter(cids)
        .map(|cid| {
            let b = b.clone();
            let url = bridge.url(&format!("{ix}/challenge/{cid}/status?wait=1"));
            async move { b.get(url).send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 404), "{statuses:?}");
    assert_eq!(metric(&bridge, ENTRIES).await, 0, "bogus ids were kept");
    assert_eq!(metric(&bridge, WAITERS).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_long_polls_are_released_and_a_real_one_wakes_on_the_answer() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 61).await;
    agent.set_answer(Answer::Hold);
    let (id, _) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, None).await;
    let b = browser();
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let (_, res, _) = start_login(&bridge, &b, &url, &agent.ego_text()).await;
    let wait = bridge.url(&location(&res));
    wait_until(30, "the agent holds the challenge", || async {
        agent.held_count() == 1
    })
    .await;

    // Long polls that the browser gives up on (closed tabs, a stranger's
    // loop): each is released when its connection goes away.
    for _ in 0..3 {
        let poll = tokio::spawn({
            let b = b.clone();
            let url = format!("{wait}/status?wait=25");
            async move { b.get(url).send().await }
        });
        wait_until(30, "the long poll is waiting", || async {
            metric(&bridge, WAITERS).await == 1
        })
        .await;
        poll.abort();
        wait_until(20, "the abandoned long poll is released", || async {
            metric(&bridge, WAITERS).await == 0 && metric(&bridge, ENTRIES).await == 0
        })
        .await;
    }

    // The person's own long poll wakes as soon as the agent answers, not
    // when its 25 s run out.
    let poll = tokio::spawn({
        let b = b.clone();
        let url = format!("{wait}/status?wait=25");
        async move {
            let started = cyrcles_p2p::Clock::system().instant();
            let v: Value = b.get(url).send().await.unwrap().json().await.unwrap();
            (v, started.elapsed())
        }
    });
    wait_until(30, "the long poll is waiting", || async {
        metric(&bridge, WAITERS).await == 1
    })
    .await;
    assert_eq!(agent.answer_held(true), 1);
    let (v, took) = bounded(30, "the long poll", poll).await.unwrap();
    assert_eq!(v["status"], "approved", "{v}");
    assert!(took < Duration::from_secs(20), "woke after {took:?}");
    wait_until(20, "the answered poll is released", || async {
        metric(&bridge, WAITERS).await == 0 && metric(&bridge, ENTRIES).await == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_per_challenge_are_bounded() {
    let bridge = TestBridge::start().await;
    let agent = TestAgent::start(&bridge, 62).await;
    agent.set_answer(Answer::Hold);
    let (id, _) = bridge.confidential().await;
    let rp = Rp::discover(&bridge, &id, None).await;
    let b = browser();
    let (url, _, _, _) = rp.auth_url(&[], &[]);
    let (_, res, _) = start_login(&bridge, &b, &url, &agent.ego_text()).await;
    let wait = bridge.url(&location(&res));
    let cap = cyrcles_bridge::login::watch::MAX_WAITERS_PER_CHALLENGE;
    let polls: Vec<_> = (0..cap)
        .map(|_| {
            let b = b.clone();
            let url = format!("{wait}/status?wait=25");
            tokio::spawn(async move { b.get(url).send().await })
        })
        .collect();
    wait_until(30, "the long polls are waiting", || async {
        metric(&bridge, WAITERS).await == cap as i64
    })
    .await;
    // One more is answered at once, without joining the waiters.
    let started = cyrcles_p2p::Clock::system().instant();
    let v: Value = b
        .get(format!("{wait}/status?wait=25"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "pending");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(metric(&bridge, WAITERS).await, cap as i64);
    for p in polls {
        p.abort();
    }
    wait_until(20, "the long polls are released", || async {
        metric(&bridge, WAITERS).await == 0 && metric(&bridge, ENTRIES).await == 0
    })
    .await;
}
