//! Ego records: `EgoRecord::decode_bytes`, `verify`, `verify_cached`, the
//! selection rule and the anti-rollback memory.
//!
//! First byte < 0x80: the rest is a record as a DHT peer sends it. The
//! decoder must be canonical (decode → encode gives the same bytes),
//! `verify` must refuse whatever does not decode, and anything it accepts
//! must meet the rules it documents.
//!
//! First byte ≥ 0x80: the rest describes one or two records of one ego
//! field by field (times, seqs, indices, keys, sizes, all arbitrary) and
//! the harness signs them properly, so `verify` and `select` see validly
//! signed records with extreme values.

#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder::sign_with_key;
use cyrcles_core::record::types::{
    MAX_ADDR_LEN, MAX_ADDRS_PER_PEER, MAX_CHAIN_LINKS, MAX_PEER_ID_LEN, MAX_PEERS,
};
use cyrcles_core::record::{
    CertStatus, Choice, CircleLink, Conflict, DuplicityKind, EgoCert, EgoRecord, Endpoints,
    Freshness, Inception, MAX_RECORD_SIZE, PeerEndpoint, RollbackError, RollbackMemory,
    SignatureCache, Signed, VerifiedEgo, select, verify_cached,
};
use cyrcles_core::time::{CLOCK_SKEW_SECS, MAX_FUTURE_SECS};
use cyrcles_core::{DhtKey, EgoId, SecretKey, UnixTime, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode < 0x80 {
        raw(rest);
    } else if let Ok(spec) = Pair::arbitrary_take_rest(Unstructured::new(rest)) {
        signed(&spec);
    }
});

/// 64 deterministic keys, made once.
fn keys() -> &'static [SecretKey] {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| (0..64).map(cyrcles_fuzz::key).collect())
}

fn k(i: u8) -> &'static SecretKey {
    let keys = keys();
    &keys[usize::from(i) % keys.len()]
}

fn same_verdict(
    a: &Result<VerifiedEgo, cyrcles_core::RecordError>,
    b: &Result<VerifiedEgo, cyrcles_core::RecordError>,
) {
    match (a, b) {
        (Ok(x), Ok(y)) => assert_eq!(x.bytes(), y.bytes()),
        (Err(x), Err(y)) => assert_eq!(x, y),
        _ => panic!("verify and verify_cached disagree: {a:?} / {b:?}"),
    }
}

/// Bytes from the network.
fn raw(bytes: &[u8]) {
    let decoded = EgoRecord::decode_bytes(bytes);
    let stranger = DhtKey::from_bytes([0x5a; 32]);
    match &decoded {
        Err(_) => {
            // Whatever does not decode never verifies, under any key.
            let e = verify(bytes, &stranger, UnixTime::from_secs(cyrcles_fuzz::NOW))
                .expect_err("verify accepted bytes that do not decode");
            assert_eq!(e.rule(), 1, "undecodable bytes must fail rule 1, got {e:?}");
        }
        Ok(record) => {
            assert!(bytes.len() <= MAX_RECORD_SIZE);
            assert_eq!(
                record.to_cbor(),
                bytes,
                "the decoder accepted a non-canonical encoding"
            );
            let key = record.ego_id().dht_key();
            // At the certificate's start, which makes the test vectors valid.
            let now = record.cert.body.not_before;
            let got = verify(bytes, &key, now);
            let mut cache = SignatureCache::new(16);
            same_verdict(&got, &verify_cached(bytes, &key, now, &mut cache));
            same_verdict(&got, &verify_cached(bytes, &key, now, &mut cache));
            if let Ok(v) = &got {
                check_accepted(v, record, bytes, now);
                assert_eq!(select(v, v).ok(), Some(Choice::KeepCurrent));
                assert!(
                    verify(bytes, &stranger, now).is_err(),
                    "verified under a wrong DHT key"
                );
            }
        }
    }
}

/// What every accepted record satisfies (rules 2 to 5 of `verify`).
fn check_accepted(v: &VerifiedEgo, record: &EgoRecord, bytes: &[u8], now: UnixTime) {
    assert_eq!(v.bytes(), bytes);
    assert_eq!(v.record(), record);
    let id = record.ego_id();
    assert_eq!(v.ego_id(), id);
    assert_eq!(v.dht_key(), id.dht_key());
    let horizon = now.plus(MAX_FUTURE_SECS);
    assert!(record.inception.body.created_at <= horizon);
    let mut previous = record.inception.body.created_at;
    for (i, link) in record.chain.iter().enumerate() {
        assert_eq!(link.body.ego_id, id);
        assert_eq!(link.body.index, i as u64 + 1);
        assert!(link.body.issued_at >= previous && link.body.issued_at <= horizon);
        previous = link.body.issued_at;
    }
    let c = &record.cert.body;
    assert_eq!(c.ego_id, id);
    assert_eq!(c.circle_index, record.chain.len() as u64);
    assert!(c.not_before < c.not_after);
    assert!(c.not_before <= now.plus(CLOCK_SKEW_SECS));
    assert!(now <= c.not_after.plus(CLOCK_SKEW_SECS));
    if let Some(ep) = &record.endpoints {
        assert_eq!(ep.body.ego_id, id);
        assert!(ep.body.issued_at < ep.body.expires_at && ep.body.issued_at <= horizon);
    }
    let rank = v.rank();
    assert_eq!(rank.chain_len, record.chain.len() as u64);
    assert_eq!(rank.cert_seq, c.seq);
    assert!(v.chain_digest(rank.chain_len).is_some());
    assert!(v.chain_digest(rank.chain_len + 1).is_none());
}

/// A time: absolute, or an offset from the verifier's `now`.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum T {
    Abs(u64),
    Rel(i32),
}

impl T {
    fn at(self, now: u64) -> UnixTime {
        UnixTime::from_secs(match self {
            T::Abs(t) => t,
            T::Rel(d) => now.saturating_add_signed(i64::from(d)),
        })
    }
}

#[derive(Arbitrary, Debug, Clone)]
struct LinkSpec {
    key: u8,
    issued_at: T,
    /// `None`: the right index.
    index: Option<u64>,
    wrong_ego: bool,
}

#[derive(Arbitrary, Debug, Clone)]
struct CertSpec {
    seq: u64,
    key: u8,
    not_before: T,
    not_after: T,
    revoked: bool,
    /// `None`: the last link's index.
    circle_index: Option<u64>,
    wrong_ego: bool,
}

#[derive(Arbitrary, Debug, Clone)]
struct EndpointsSpec {
    seq: u64,
    peers: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// Extra peers, each a copy of the first: a cheap way to large records.
    copies: u8,
    issued_at: T,
    expires_at: T,
    wrong_ego: bool,
}

#[derive(Arbitrary, Debug, Clone)]
struct RecordSpec {
    links: Vec<LinkSpec>,
    cert: CertSpec,
    endpoints: Option<EndpointsSpec>,
}

/// The second record: the first one's inception and first `keep` links,
/// then links and parts of its own.
#[derive(Arbitrary, Debug, Clone)]
struct Other {
    keep: u8,
    links: Vec<LinkSpec>,
    cert: Option<CertSpec>,
    endpoints: Option<Option<EndpointsSpec>>,
}

#[derive(Arbitrary, Debug, Clone)]
struct Pair {
    now: u64,
    near_now: bool,
    root: u8,
    first_circle: u8,
    created_at: T,
    a: RecordSpec,
    b: Option<Other>,
}

/// Builds and signs a record as specified; links are signed by the key
/// before them, the certificate by the circle key its index names (the
/// last one when out of range), endpoints by the certified key.
fn build(
    p: &Pair,
    now: u64,
    links: &[LinkSpec],
    cert: &CertSpec,
    ep: Option<&EndpointsSpec>,
) -> EgoRecord {
    let inception = Inception {
        root_pk: k(p.root).public(),
        circle_pk: k(p.first_circle).public(),
        created_at: p.created_at.at(now),
    };
    let id = inception.ego_id();
    let other = EgoId::from_bytes([0xee; 32]);
    let pick = |wrong: bool| if wrong { other } else { id };
    let inception = sign_with_key(k(p.root), inception);
    let mut chain: Vec<Signed<CircleLink>> = Vec::new();
    let mut signer = p.root;
    for (i, l) in links.iter().enumerate() {
        let body = CircleLink {
            ego_id: pick(l.wrong_ego),
            index: l.index.unwrap_or(i as u64 + 1),
            circle_pk: k(l.key).public(),
            issued_at: l.issued_at.at(now),
        };
        chain.push(sign_with_key(k(signer), body));
        signer = l.key;
    }
    let circle_index = cert.circle_index.unwrap_or(chain.len() as u64);
    let cert_signer = match circle_index {
        0 => p.first_circle,
        i => usize::try_from(i - 1)
            .ok()
            .and_then(|i| links.get(i))
            .map_or(signer, |l| l.key),
    };
    let cert_body = EgoCert {
        ego_id: pick(cert.wrong_ego),
        seq: cert.seq,
        ego_pk: k(cert.key).public(),
        not_before: cert.not_before.at(now),
        not_after: cert.not_after.at(now),
        status: if cert.revoked {
            CertStatus::Revoked
        } else {
            CertStatus::Active
        },
        circle_index,
    };
    let endpoints = ep.map(|e| {
        let mut peers: Vec<PeerEndpoint> = e
            .peers
            .iter()
            .map(|(peer_id, addrs)| PeerEndpoint {
                peer_id: peer_id.clone(),
                addrs: addrs.clone(),
            })
            .collect();
        if let Some(first) = peers.first().cloned() {
            peers.extend(std::iter::repeat_n(first, usize::from(e.copies % 16)));
        }
        sign_with_key(
            k(cert.key),
            Endpoints {
                ego_id: pick(e.wrong_ego),
                seq: e.seq,
                peers,
                issued_at: e.issued_at.at(now),
                expires_at: e.expires_at.at(now),
            },
        )
    });
    EgoRecord {
        inception,
        chain,
        cert: sign_with_key(k(cert_signer), cert_body),
        endpoints,
    }
}

/// Whether the record stays within the format's size and count limits.
fn within_limits(r: &EgoRecord, len: usize) -> bool {
    len <= MAX_RECORD_SIZE
        && r.chain.len() <= MAX_CHAIN_LINKS
        && r.endpoints.as_ref().is_none_or(|e| {
            e.body.peers.len() <= MAX_PEERS
                && e.body.peers.iter().all(|p| {
                    (1..=MAX_PEER_ID_LEN).contains(&p.peer_id.len())
                        && p.addrs.len() <= MAX_ADDRS_PER_PEER
                        && p.addrs
                            .iter()
                            .all(|a| (1..=MAX_ADDR_LEN).contains(&a.len()))
                })
        })
}

/// A record an honest agent would publish at `now`: it must verify.
fn ordinary(r: &EgoRecord, now: UnixTime) -> bool {
    let year = 365 * 86_400;
    let recent = |t: UnixTime| t <= now && now.since(t) <= year;
    let id = r.ego_id();
    let c = &r.cert.body;
    let distinct = {
        let mut ks: Vec<_> = std::iter::once(r.inception.body.root_pk)
            .chain(std::iter::once(r.inception.body.circle_pk))
            .chain(r.chain.iter().map(|l| l.body.circle_pk))
            .chain(std::iter::once(c.ego_pk))
            .collect();
        let n = ks.len();
        ks.sort();
        ks.dedup();
        ks.len() == n
    };
    let mut previous = r.inception.body.created_at;
    let chain_ok = r.chain.iter().enumerate().all(|(i, l)| {
        let ok = l.body.ego_id == id
            && l.body.index == i as u64 + 1
            && l.body.issued_at >= previous
            && recent(l.body.issued_at);
        previous = l.body.issued_at;
        ok
    });
    let born = r.inception.body.created_at;
    distinct
        && recent(born)
        && c.not_before >= born
        && chain_ok
        && c.ego_id == id
        && c.status == CertStatus::Active
        && c.circle_index == r.chain.len() as u64
        && (1..=1 << 32).contains(&c.seq)
        && c.not_before <= now
        && now < c.not_after
        && c.not_after.since(c.not_before) <= cyrcles_fuzz::MONTH
        && r.endpoints.as_ref().is_none_or(|e| {
            e.body.ego_id == id
                && e.body.issued_at >= born
                && e.body.seq <= 1 << 32
                && e.body.issued_at <= now
                && now < e.body.expires_at
                && e.body.expires_at.since(e.body.issued_at) <= 86_400
        })
}

fn signed(p: &Pair) {
    // Half of the time a plausible clock, so that valid records are common.
    let now = if p.near_now {
        cyrcles_fuzz::NOW.wrapping_add(p.now % (1 << 26))
    } else {
        p.now
    };
    let t = UnixTime::from_secs(now);
    let cap = |l: &[LinkSpec]| l.iter().take(6).cloned().collect::<Vec<_>>();
    let a_links = cap(&p.a.links);
    let a = build(p, now, &a_links, &p.a.cert, p.a.endpoints.as_ref());
    let va = check_one(&a, t);
    let Some(b) = &p.b else {
        return;
    };
    let keep = usize::from(b.keep).min(a_links.len());
    let mut b_links: Vec<LinkSpec> = a_links.get(..keep).unwrap_or_default().to_vec();
    b_links.extend(cap(&b.links));
    let b_cert = b.cert.as_ref().unwrap_or(&p.a.cert);
    let b_ep = match &b.endpoints {
        None => p.a.endpoints.as_ref(),
        Some(e) => e.as_ref(),
    };
    let rb = build(p, now, &b_links, b_cert, b_ep);
    let vb = check_one(&rb, t);
    if let (Some(va), Some(vb)) = (va, vb) {
        check_pair(&va, &vb, &a, &rb);
    }
}

/// Encodes, decodes and verifies one built record.
fn check_one(r: &EgoRecord, now: UnixTime) -> Option<VerifiedEgo> {
    let bytes = r.to_cbor();
    let limits = within_limits(r, bytes.len());
    match EgoRecord::decode_bytes(&bytes) {
        Ok(back) => {
            assert!(limits, "decoded a record beyond the format's limits");
            assert_eq!(&back, r, "decode(encode(r)) != r");
        }
        Err(e) => assert!(!limits, "refused a record within the limits: {e}"),
    }
    let key = r.ego_id().dht_key();
    let got = verify(&bytes, &key, now);
    let mut cache = SignatureCache::new(8);
    same_verdict(&got, &verify_cached(&bytes, &key, now, &mut cache));
    same_verdict(&got, &verify_cached(&bytes, &key, now, &mut cache));
    match got {
        Ok(v) => {
            check_accepted(&v, r, &bytes, now);
            Some(v)
        }
        Err(e) => {
            assert!(
                !(limits && ordinary(r, now)),
                "refused an ordinary record: {e}"
            );
            None
        }
    }
}

/// Selection and the rollback memory between two valid records of one ego.
fn check_pair(va: &VerifiedEgo, vb: &VerifiedEgo, a: &EgoRecord, b: &EgoRecord) {
    assert_eq!(select(va, va).ok(), Some(Choice::KeepCurrent));
    assert_eq!(select(vb, vb).ok(), Some(Choice::KeepCurrent));
    let ab = select(va, vb);
    let ba = select(vb, va);
    let (ra, rb) = (va.rank(), vb.rank());
    // Rule 1: chains that are not prefixes of one another are duplicity.
    let common = a.chain.len().min(b.chain.len());
    let diverge = (0..common).find(|&i| a.chain[i].body != b.chain[i].body);
    if let Some(i) = diverge {
        let want = DuplicityKind::DivergentChains {
            at_link: i as u64 + 1,
        };
        for r in [&ab, &ba] {
            match r {
                Err(Conflict::Duplicity(ev)) => assert_eq!(ev.kind, want),
                other => panic!("divergent chains not reported: {other:?}"),
            }
        }
    }
    match (&ab, &ba) {
        (Ok(Choice::TakeCandidate), Ok(Choice::KeepCurrent)) => assert!(rb > ra),
        (Ok(Choice::KeepCurrent), Ok(Choice::TakeCandidate)) => assert!(ra > rb),
        (Ok(Choice::KeepCurrent), Ok(Choice::KeepCurrent)) => {
            assert_eq!(ra, rb);
            assert_eq!(va.cert_digest(), vb.cert_digest());
        }
        (Err(Conflict::Duplicity(x)), Err(Conflict::Duplicity(y))) => {
            assert_eq!(x.kind, y.kind);
            assert_eq!(
                (&x.first, &x.second),
                (&va.bytes().to_vec(), &vb.bytes().to_vec())
            );
        }
        _ => panic!("select is not antisymmetric: {ab:?} / {ba:?}"),
    }
    // The rollback memory agrees with the selection rule.
    let mut memory = RollbackMemory::new(4);
    assert_eq!(memory.accept(va), Ok(Freshness::Newer));
    assert_eq!(memory.check(va), Ok(Freshness::Same));
    match (&ab, memory.check(vb)) {
        (Ok(Choice::TakeCandidate), got) => assert_eq!(got, Ok(Freshness::Newer)),
        (Ok(Choice::KeepCurrent), got) if ra == rb => assert_eq!(got, Ok(Freshness::Same)),
        (Ok(Choice::KeepCurrent), got) => {
            assert!(matches!(got, Err(RollbackError::Stale { .. })), "{got:?}")
        }
        (Err(_), got) => assert!(got.is_err(), "rollback memory took a conflicting record"),
    }
}
