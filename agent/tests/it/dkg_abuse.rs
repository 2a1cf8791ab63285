//! Key generations a friend's agent must not take part in
//! (docs/circle-authority.md, P6; protocol section 9.4): a `dkg-start`
//! from a node that is not a friend's, relays of a run that does not
//! exist, and a start (from the friend's own device, signed by its ego
//! key) that names a participant whose record does not exist. Nothing is
//! kept, and the owner's circle is unchanged.

use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::request::refused;
use cyrcles_core::circle::{
    CircleId, CircleRefused, DkgRelay, DkgStartBody, DkgStep, MemberId, SessionId,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::record::VerifiedEgo;
use cyrcles_core::{EgoId, SecretKey};
use cyrcles_testkit::{Agent, Poll};

use crate::circles::secret_kinds_at;
use crate::common::{BIN, Bridge};
use crate::friends::{befriend, stranger_ego};

const CONFIG: &str = "maintenance_interval_secs = 1\n[circles]\nsign_interval_secs = 0\n";

/// Sends `envelope` from `from` to the node `to`'s record names; returns
/// the refusal code of the answer.
async fn refusal_of(from: &Bridge, to: &VerifiedEgo, envelope: &Envelope) -> u16 {
    let (peer, addrs) = from.target(to);
    let answer = Poll::new(60, "an answer")
        .every(std::time::Duration::from_millis(200))
        .ok(|| async {
            let answer = from.node.circle(peer, addrs.clone(), envelope).await?;
            Ok::<_, cyrcles_p2p::RequestError>(answer)
        })
        .await;
    assert_eq!(answer.kind, kind::REFUSED, "{answer:?}");
    answer
        .open::<CircleRefused>(MAX_CIRCLE_MESSAGE_SIZE)
        .unwrap()
        .code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_generations_from_strangers_or_naming_unknown_egos_are_refused() {
    let bridge = Bridge::start(cyrcles_p2p::Clock::system()).await;
    let mut alice = Agent::builder(BIN)
        .bootstrap(&bridge.addr)
        .config(CONFIG)
        .start()
        .await;
    let bob = Agent::builder(BIN)
        .bootstrap(&bridge.addr)
        .config(CONFIG)
        .start()
        .await;
    let carol = Agent::builder(BIN)
        .bootstrap(&bridge.addr)
        .config(CONFIG)
        .start()
        .await;
    let a = alice.create("main").await;
    let b = bob.create("main").await;
    let c = carol.create("main").await;
    let bob_record = bridge.resolve(b).await;
    bridge.resolve(c).await;
    bridge.resolve(a).await;
    befriend(&alice, "main", "bob", &bob, "main", "alice").await;
    befriend(&alice, "main", "carol", &carol, "main", "alice").await;

    // A stranger's node starts a key generation naming bob: refused
    // before anything is looked up or kept.
    let key = SecretKey::from_seed(&[3; 32]);
    let start = DkgStartBody {
        ego_id: stranger_ego(),
        circle_id: CircleId([1; 16]),
        generation: 1,
        session: SessionId([2; 16]),
        threshold: 2,
        participants: vec![
            (MemberId::new(1).unwrap(), b),
            (MemberId::new(2).unwrap(), EgoId::from_bytes([9; 32])),
        ],
        issued_at: bridge.now(),
    }
    .sign(&key);
    let envelope = Envelope::wrap(kind::DKG_START, &start);
    assert_eq!(
        refusal_of(&bridge, &bob_record, &envelope).await,
        refused::NOT_A_FRIEND
    );
    // Relays of a run bob never started, and garbage.
    let relay = DkgRelay {
        session: SessionId([2; 16]),
        step: DkgStep::Round1,
        messages: vec![vec![1, 2, 3]],
    };
    let envelope = Envelope::wrap(kind::DKG_RELAY, &relay);
    assert_eq!(
        refusal_of(&bridge, &bob_record, &envelope).await,
        refused::NO_SESSION
    );
    let garbage = Envelope {
        kind: kind::DKG_START,
        body: vec![0xa1, 0x00, 0x02],
    };
    assert_eq!(
        refusal_of(&bridge, &bob_record, &garbage).await,
        refused::INVALID
    );

    // Alice's own device (it holds her ego key and her node's identity:
    // a stolen copy would too) names, in carol's place, an ego that has no
    // record: bob cannot check that participant's messages and refuses.
    alice.stop().await;
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", alice.home.join("agent.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE friends SET friend_ego_id = $1 WHERE petname = 'carol'")
            .bind(EgoId::from_bytes([0x5a; 32]).to_string())
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    alice.spawn(Some(&bridge.addr), &[]).await;
    alice.json(&["circle", "add", "main", "bob"]).await;
    let out = alice.cli(&["circle", "add", "main", "carol"]).await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("did not take part in generating"),
        "{out:?}"
    );
    Poll::new(30, "bob's log of the refusal")
        .until(|| async {
            bob.log_text()
                .contains("a key generation naming an ego whose record is not found")
        })
        .await;
    // Nothing changed: alice still holds her keys whole, bob no share.
    assert_eq!(
        secret_kinds_at(&alice.home, a).await,
        ["circle", "device", "ego", "root"]
    );
    assert_eq!(
        bob.json(&["shares"]).await["shares"],
        serde_json::Value::Array(vec![])
    );
}
