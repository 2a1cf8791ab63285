//! `selection.json`: the selection rule and the anti-rollback memory of
//! docs/protocol.md section 7, as tables. Every record in it is valid at
//! the case's `now`; what is tested is which one wins.

use cyrcles_core::record::builder::sign_with_circle;
use cyrcles_core::record::{
    Choice, Conflict, DuplicityKind, RollbackError, RollbackMemory, select,
};
use cyrcles_core::{VerifiedEgo, verify};
use serde_json::{Value, json};

use crate::common::{NOW, Owner, T0, peer, rng};
use crate::vectors::{hex_field, key};

fn kind_json(k: DuplicityKind) -> Value {
    match k {
        DuplicityKind::DivergentChains { at_link } => {
            json!({ "outcome": "duplicity", "kind": "divergent_chains", "at_link": at_link })
        }
        DuplicityKind::ConflictingCertificates { seq } => {
            json!({ "outcome": "duplicity", "kind": "conflicting_certificates", "seq": seq })
        }
    }
}

fn outcome(held: &VerifiedEgo, candidate: &VerifiedEgo) -> Value {
    match select(held, candidate) {
        Ok(Choice::KeepCurrent) => json!({ "outcome": "keep" }),
        Ok(Choice::TakeCandidate) => json!({ "outcome": "take" }),
        Err(Conflict::Duplicity(ev)) => kind_json(ev.kind),
        Err(Conflict::DifferentEgos) => panic!("a case compares two egos"),
    }
}

fn memory_outcome(mem: &mut RollbackMemory, v: &VerifiedEgo) -> &'static str {
    match mem.accept(v) {
        Ok(_) => "accepted",
        Err(RollbackError::Stale { .. }) => "stale",
        Err(RollbackError::Duplicity(_)) => "duplicity",
    }
}

/// Two histories of one ego: the same seed gives the same root and
/// inception; another rng after that gives other circle keys.
fn twin(seed: u64, other_rng: u64) -> Owner {
    let mut o = Owner::new(seed);
    o.rng = rng(other_rng);
    o
}

struct Snap(Vec<u8>);

fn snap(o: &Owner) -> Snap {
    Snap(o.bytes())
}

fn pairs() -> Vec<(&'static str, &'static str, Snap, Snap)> {
    let mut out = Vec::new();
    // Endpoints under one certificate.
    let mut o = Owner::new(800);
    let ep1 = snap(&o);
    o.record
        .set_endpoints(&o.ego, vec![peer(9)], T0.plus(1), 3_600)
        .unwrap();
    let ep2 = snap(&o);
    let mut bare = Owner::new(800);
    bare.record.endpoints = None;
    let none = snap(&bare);
    out.push((
        "endpoints_higher_seq_wins",
        "same certificate; the candidate's endpoints seq is 2, the held one's 1",
        Snap(ep1.0.clone()),
        Snap(ep2.0.clone()),
    ));
    out.push((
        "endpoints_lower_seq_loses",
        "same certificate; the candidate's endpoints seq is 1, the held one's 2",
        Snap(ep2.0.clone()),
        Snap(ep1.0.clone()),
    ));
    out.push((
        "endpoints_equal_seq_keeps_held",
        "the same record twice",
        Snap(ep1.0.clone()),
        Snap(ep1.0.clone()),
    ));
    out.push((
        "endpoints_present_beat_absent",
        "same certificate; the held record has no endpoints (seq 0)",
        Snap(none.0.clone()),
        Snap(ep1.0.clone()),
    ));
    out.push((
        "endpoints_absent_lose",
        "same certificate; the candidate has no endpoints (seq 0)",
        Snap(ep1.0.clone()),
        none,
    ));
    // Certificates.
    o.rotate(T0.plus(2));
    let cert2 = snap(&o);
    out.push(("cert_higher_seq_wins_over_endpoints_seq", "the candidate's certificate seq is 2 with endpoints seq 1; the held record has certificate seq 1 with endpoints seq 2", Snap(ep2.0.clone()), Snap(cert2.0.clone())));
    out.push((
        "cert_lower_seq_loses",
        "the candidate has certificate seq 1, the held record seq 2",
        cert2,
        ep2,
    ));
    let mut other_sig = Owner::new(801);
    let held = snap(&other_sig);
    let body = other_sig.record.cert.body.clone();
    other_sig.record.cert = sign_with_circle(other_sig.circle(), &mut rng(5), body);
    out.push((
        "same_cert_other_signature_is_not_duplicity",
        "the same certificate body with another valid (randomized) signature",
        held,
        snap(&other_sig),
    ));
    let a = Owner::new(802);
    let mut b = Owner::new(802);
    let mut body = b.record.cert.body.clone();
    body.not_after = body.not_after.plus(1);
    b.record.cert = b.sign_current(body);
    out.push((
        "conflicting_certificates",
        "two different certificates with seq 1 under one circle key",
        snap(&a),
        snap(&b),
    ));
    // Epochs: a recovery (epoch 1) against rotations of the lost key.
    let mut rotated = Owner::new(805);
    for i in 0..4 {
        rotated.rotate(T0.plus(10 + i));
    }
    let mut recovered = Owner::new(805);
    recovered.recover(T0.plus(20));
    out.push((
        "higher_epoch_wins_over_cert_seq",
        "the candidate has epoch 1 and certificate seq 2 (a recovery); the held record epoch 0 and seq 5",
        snap(&rotated),
        snap(&recovered),
    ));
    out.push((
        "lower_epoch_loses",
        "the candidate has epoch 0 and certificate seq 5; the held record epoch 1 and seq 2",
        snap(&recovered),
        snap(&rotated),
    ));
    let mut once = Owner::new(806);
    once.rotate(T0.plus(10));
    let mut recovered_once = Owner::new(806);
    recovered_once.recover(T0.plus(10));
    out.push((
        "same_seq_higher_epoch_is_not_duplicity",
        "certificate seq 2 in both; the candidate's has epoch 1, the held one's epoch 0",
        snap(&once),
        snap(&recovered_once),
    ));
    let mut other_recovery = twin(806, 9_004);
    other_recovery.recover(T0.plus(10));
    out.push((
        "conflicting_certificates_same_epoch",
        "two different certificates with epoch 1 and seq 2 (two recoveries) under one circle key",
        snap(&recovered_once),
        snap(&other_recovery),
    ));
    // Chains.
    let mut short = Owner::new(803);
    for i in 0..4 {
        short.rotate(T0.plus(10 + i));
    }
    let mut long = Owner::new(803);
    long.add_link(T0.plus(20));
    out.push((
        "longer_chain_wins_over_cert_seq",
        "the candidate has 1 link and certificate seq 2; the held record has no link and seq 5",
        snap(&short),
        snap(&long),
    ));
    out.push((
        "shorter_chain_loses",
        "the candidate has no link and certificate seq 5; the held record has 1 link",
        snap(&long),
        snap(&short),
    ));
    let mut x = Owner::new(804);
    x.add_link(T0.plus(1));
    let mut y = twin(804, 9_001);
    y.add_link(T0.plus(1));
    out.push((
        "divergent_chains_same_length",
        "two chains of one link with different circle keys",
        snap(&x),
        snap(&y),
    ));
    y.add_link(T0.plus(2));
    out.push((
        "longer_chain_not_extending_is_duplicity",
        "a chain of 2 links whose link 1 differs from the held record's",
        snap(&x),
        snap(&y),
    ));
    let mut z = Owner::new(804);
    z.add_link(T0.plus(1));
    z.add_link(T0.plus(2));
    out.push((
        "longer_chain_extending_wins",
        "a chain of 2 links whose link 1 is the held record's",
        snap(&x),
        snap(&z),
    ));
    out
}

fn sequences() -> Vec<(&'static str, &'static str, Vec<Snap>)> {
    let mut out = Vec::new();
    let mut o = Owner::new(810);
    let v1 = snap(&o);
    o.rotate(T0.plus(1));
    let v2 = snap(&o);
    o.add_link(T0.plus(2));
    let v3 = snap(&o);
    out.push((
        "rollbacks_are_stale",
        "certificate seq 1; again; seq 2; seq 1 again; 1 link; seq 2 without link again",
        vec![
            Snap(v1.0.clone()),
            Snap(v1.0.clone()),
            Snap(v2.0.clone()),
            v1,
            v3,
            v2,
        ],
    ));
    let mut a = Owner::new(811);
    a.add_link(T0.plus(1));
    let mut b = twin(811, 9_002);
    b.add_link(T0.plus(1));
    b.add_link(T0.plus(2));
    out.push((
        "fork_against_memory",
        "1 link; a 2-link chain whose link 1 differs; the first record again (still accepted)",
        vec![snap(&a), snap(&b), snap(&a)],
    ));
    let c = Owner::new(812);
    let mut d = Owner::new(812);
    let mut body = d.record.cert.body.clone();
    body.not_after = body.not_after.plus(1);
    d.record.cert = d.sign_current(body);
    out.push((
        "conflicting_certificates_against_memory",
        "certificate seq 1; another certificate seq 1 under the same circle key",
        vec![snap(&c), snap(&d)],
    ));
    let mut e = Owner::new(813);
    let e1 = snap(&e);
    e.record
        .set_endpoints(&e.ego, vec![peer(3)], T0.plus(1), 3_600)
        .unwrap();
    out.push((
        "endpoints_rollback",
        "endpoints seq 2; endpoints seq 1 under the same certificate",
        vec![snap(&e), e1],
    ));
    let mut short = Owner::new(814);
    for i in 0..4 {
        short.rotate(T0.plus(10 + i));
    }
    let mut long = Owner::new(814);
    long.add_link(T0.plus(20));
    out.push((
        "longer_chain_then_higher_cert_seq",
        "no link and certificate seq 5; 1 link and seq 2; the first again (stale: shorter chain)",
        vec![snap(&short), snap(&long), snap(&short)],
    ));
    let mut h = Owner::new(816);
    for i in 0..4 {
        h.rotate(T0.plus(10 + i));
    }
    let stolen = snap(&h);
    let mut r = Owner::new(816);
    r.recover(T0.plus(20));
    let back = snap(&r);
    r.rotate(T0.plus(21));
    out.push((
        "recovery_then_the_lost_key",
        "epoch 0 and certificate seq 5; a recovery (epoch 1, seq 2); the seq 5 record again (stale: lower epoch); a rotation after the recovery (epoch 1, seq 3)",
        vec![Snap(stolen.0.clone()), back, stolen, snap(&r)],
    ));
    let mut f = Owner::new(815);
    f.add_link(T0.plus(1));
    f.add_link(T0.plus(2));
    let f2 = snap(&f);
    f.add_link(T0.plus(3));
    let f3 = snap(&f);
    let mut g = Owner::new(815);
    g.add_link(T0.plus(1));
    g.add_link(T0.plus(2));
    g.rng = rng(9_003);
    g.add_link(T0.plus(3));
    g.add_link(T0.plus(4));
    out.push((
        "extension_then_late_fork",
        "2 links; 3 links extending them; 4 links that share 2 links but differ at link 3",
        vec![f2, f3, snap(&g)],
    ));
    out
}

pub fn selection() -> Value {
    let v = |s: &Snap, key: &cyrcles_core::DhtKey| verify(&s.0, key, NOW).unwrap();
    let pairs: Vec<Value> = pairs()
        .into_iter()
        .map(|(name, description, held, candidate)| {
            let k = any_key(&held.0);
            let expect = outcome(&v(&held, &k), &v(&candidate, &k));
            json!({
                "name": name,
                "description": description,
                "now": NOW.secs(),
                "dht_key": hex::encode(k.as_bytes()),
                "held": hex::encode(&held.0),
                "candidate": hex::encode(&candidate.0),
                "expect": expect,
            })
        })
        .collect();
    let memory: Vec<Value> = sequences()
        .into_iter()
        .map(|(name, description, records)| {
            let k = any_key(&records[0].0);
            let mut mem = RollbackMemory::new(16);
            let expect: Vec<&str> = records
                .iter()
                .map(|r| memory_outcome(&mut mem, &v(r, &k)))
                .collect();
            json!({
                "name": name,
                "description": description,
                "now": NOW.secs(),
                "dht_key": hex::encode(k.as_bytes()),
                "records": records.iter().map(|r| hex::encode(&r.0)).collect::<Vec<_>>(),
                "expect": expect,
            })
        })
        .collect();
    json!({
        "about": "Selection and anti-rollback (docs/protocol.md, section 7). Every record verifies under `dht_key` at \
                  `now`. `pairs`: the verifier holds `held` and receives `candidate`; `expect.outcome` is keep, take \
                  or duplicity (with `kind` divergent_chains and `at_link`, or conflicting_certificates and `seq`). \
                  `memory`: an empty anti-rollback memory receives `records` in order; `expect` gives for each \
                  accepted, stale or duplicity.",
        "pairs": pairs,
        "memory": memory,
    })
}

/// The DHT key of a record's ego (the records in a case share it).
fn any_key(bytes: &[u8]) -> cyrcles_core::DhtKey {
    cyrcles_core::record::EgoRecord::decode_bytes(bytes)
        .unwrap()
        .ego_id()
        .dht_key()
}

#[test]
fn committed_selection_vectors_choose_as_stated() {
    if crate::vectors::regenerating() {
        return;
    }
    let text = std::fs::read_to_string(crate::vectors::dir().join("selection.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let pairs = v["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 12);
    for c in pairs {
        let name = c["name"].as_str().unwrap();
        let now = cyrcles_core::UnixTime::from_secs(c["now"].as_u64().unwrap());
        let k = key(&c["dht_key"]);
        let held = verify(&hex_field(c, "held"), &k, now).unwrap();
        let candidate = verify(&hex_field(c, "candidate"), &k, now).unwrap();
        assert_eq!(outcome(&held, &candidate), c["expect"], "{name}");
    }
    for outcome in ["keep", "take", "duplicity"] {
        assert!(pairs.iter().any(|c| c["expect"]["outcome"] == outcome));
    }
    let memory = v["memory"].as_array().unwrap();
    assert!(memory.len() >= 5);
    for c in memory {
        let name = c["name"].as_str().unwrap();
        let now = cyrcles_core::UnixTime::from_secs(c["now"].as_u64().unwrap());
        let k = key(&c["dht_key"]);
        let mut mem = RollbackMemory::new(16);
        let got: Vec<&str> = c["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let bytes = hex::decode(r.as_str().unwrap()).unwrap();
                memory_outcome(&mut mem, &verify(&bytes, &k, now).unwrap())
            })
            .collect();
        assert_eq!(json!(got), c["expect"], "{name}");
    }
}
