//! Record cases at each limit of section 10 (at the limit: valid; one past
//! it: refused), the time bounds of rule 5 at their edges, the endpoints
//! checks, and the rule 2 and rule 4 checks the first cases do not reach.

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::builder::{self, sign_with_key};
use cyrcles_core::record::{
    CertStatus, MAX_ADDR_LEN, MAX_ADDRS_PER_PEER, MAX_PEER_ID_LEN, MAX_PEERS, MAX_RECORD_SIZE,
    PeerEndpoint,
};
use cyrcles_core::time::{
    CLOCK_SKEW_SECS, MAX_CERT_VALIDITY_SECS, MAX_ENDPOINTS_VALIDITY_SECS, MAX_FUTURE_SECS,
};
use cyrcles_core::{EgoId, UnixTime};

use crate::cases::{Case, case, raw, recert, reendpoints, reseal, valid};
use crate::common::{NOW, Owner, T0, peer, rng, sign_link, three_links};

const ENCODING: Option<(u8, &str)> = Some((1, "encoding"));
const TOO_LARGE: Option<(u8, &str)> = Some((1, "too_large"));
const NOT_YET: Option<(u8, &str)> = Some((5, "not_yet_valid"));
const TOO_LONG: Option<(u8, &str)> = Some((5, "validity_too_long"));
const WINDOW: Option<(u8, &str)> = Some((5, "invalid_window"));
const MAX: UnixTime = UnixTime::from_secs(u64::MAX);

fn peer_with(id_len: usize, addr_lens: &[usize], fill: u8) -> PeerEndpoint {
    PeerEndpoint {
        peer_id: vec![fill; id_len],
        addrs: addr_lens.iter().map(|&n| vec![fill; n]).collect(),
    }
}

fn with_peers(seed: u64, peers: Vec<PeerEndpoint>) -> Owner {
    let mut o = Owner::new(seed);
    reendpoints(&mut o, |e| e.peers = peers);
    o
}

/// A fresh ego whose record is exactly `size` bytes: 8 peers of 8
/// addresses, whose lengths are spread to reach the size.
fn sized(seed: u64, size: usize) -> Owner {
    let build = |o: &mut Owner, lens: &[usize]| {
        let peers = (0..MAX_PEERS)
            .map(|p| peer_with(38, &lens[p * 8..p * 8 + 8], p as u8))
            .collect();
        reendpoints(o, |e| e.peers = peers);
    };
    let mut o = Owner::new(seed);
    let mut lens = vec![200usize; MAX_PEERS * MAX_ADDRS_PER_PEER];
    build(&mut o, &lens);
    let mut missing = size - o.bytes().len();
    for l in &mut lens {
        // Lengths stay within 24..=255, so each head keeps its two bytes.
        let add = missing.min(255 - *l);
        *l += add;
        missing -= add;
    }
    assert_eq!(missing, 0);
    build(&mut o, &lens);
    assert_eq!(o.bytes().len(), size);
    o
}

pub fn all() -> Vec<Case> {
    let mut out = Vec::new();
    sizes_and_counts(&mut out);
    cert_times(&mut out);
    endpoints_times(&mut out);
    other_times(&mut out);
    identity_and_continuity(&mut out);
    out
}

fn sizes_and_counts(out: &mut Vec<Case>) {
    let o = sized(200, MAX_RECORD_SIZE);
    out.push(valid(
        "valid_record_at_size_cap",
        "a validly signed record of exactly 16384 bytes (8 peers of 8 addresses)",
        &o,
        true,
    ));
    let o = sized(200, MAX_RECORD_SIZE + 1);
    out.push(case(
        "rule1_record_one_byte_over_size_cap",
        "the same record with one address one byte longer: 16385 bytes, validly signed, refused on size",
        &o,
        TOO_LARGE,
    ));

    // Counts.
    let full: Vec<PeerEndpoint> = (0..MAX_PEERS as u8)
        .map(|p| peer_with(38, &[8; MAX_ADDRS_PER_PEER], p))
        .collect();
    out.push(valid(
        "valid_endpoints_max_peers_and_addresses",
        "endpoints with 8 peers of 8 addresses each",
        &with_peers(201, full.clone()),
        true,
    ));
    let mut nine = full.clone();
    nine.push(peer_with(38, &[8], 9));
    out.push(case(
        "rule1_endpoints_nine_peers",
        "endpoints (validly signed) with 9 peers",
        &with_peers(202, nine),
        ENCODING,
    ));
    out.push(case(
        "rule1_peer_nine_addresses",
        "a peer (validly signed) with 9 addresses",
        &with_peers(203, vec![peer_with(38, &[8; MAX_ADDRS_PER_PEER + 1], 1)]),
        ENCODING,
    ));
    out.push(valid(
        "valid_endpoints_without_peers",
        "endpoints with an empty peer list",
        &with_peers(204, vec![]),
        true,
    ));
    out.push(valid(
        "valid_peer_without_addresses",
        "a peer with an empty address list",
        &with_peers(205, vec![peer_with(38, &[], 1)]),
        true,
    ));

    // Lengths.
    for (name, description, id, addr, error) in [
        ("valid_peer_id_one_byte", "a peer id of 1 byte", 1, 8, None),
        (
            "valid_peer_id_max_length",
            "a peer id of 64 bytes",
            MAX_PEER_ID_LEN,
            8,
            None,
        ),
        (
            "rule1_peer_id_too_long",
            "a peer id of 65 bytes (validly signed)",
            MAX_PEER_ID_LEN + 1,
            8,
            ENCODING,
        ),
        (
            "rule1_peer_id_empty",
            "an empty peer id (validly signed)",
            0,
            8,
            ENCODING,
        ),
        (
            "valid_address_one_byte",
            "an address of 1 byte",
            38,
            1,
            None,
        ),
        (
            "valid_address_max_length",
            "an address of 256 bytes",
            38,
            MAX_ADDR_LEN,
            None,
        ),
        (
            "rule1_address_too_long",
            "an address of 257 bytes (validly signed)",
            38,
            MAX_ADDR_LEN + 1,
            ENCODING,
        ),
        (
            "rule1_address_empty",
            "an empty address (validly signed)",
            38,
            0,
            ENCODING,
        ),
    ] {
        let o = with_peers(210, vec![peer_with(id, &[addr], 1)]);
        out.push(match error {
            None => valid(name, description, &o, true),
            Some(_) => case(name, description, &o, error),
        });
    }

    // The chain: 128 links would not fit in 16384 bytes, so the longest
    // chain that fits is the limit a record meets first.
    let mut o = Owner::new(220);
    let mut fit = o.bytes();
    let mut n = 0;
    loop {
        n += 1;
        o.add_link(T0.plus(n));
        if o.bytes().len() > MAX_RECORD_SIZE {
            break;
        }
        fit = o.bytes();
    }
    assert!(n <= 128);
    out.push(Case {
        record: fit.clone(),
        ..valid(
            "valid_longest_chain_within_size_cap",
            &format!(
                "a chain of {} links and one endpoint ({} bytes): one more link would exceed 16384 bytes, \
                 so the 128-link limit cannot be reached within the size cap",
                n - 1,
                fit.len()
            ),
            &o,
            true,
        )
    });
    out.push(case(
        "rule1_chain_one_link_over_size_cap",
        &format!(
            "the same ego with {n} links, validly signed: {} bytes, refused on size",
            o.bytes().len()
        ),
        &o,
        TOO_LARGE,
    ));
    // A chain array announcing 129 links is refused from its head.
    let o = Owner::new(221);
    let bytes = o.bytes();
    let at = 4 + o.record.inception.to_cbor().len();
    assert_eq!(&bytes[at..at + 2], &[0x02, 0x80]);
    let head = [&bytes[..at + 1], &[0x98, 0x81], &bytes[at + 2..]].concat();
    out.push(raw(
        "rule1_chain_head_over_128_links",
        "a fresh ego's record whose empty chain array (0x80) is written as an array of 129 items (0x98 0x81)",
        &o,
        head,
        (1, "encoding"),
    ));
}

fn cert_times(out: &mut Vec<Case>) {
    let mut o = Owner::new(230);
    recert(&mut o, 0, |c| {
        c.not_after = c.not_before.plus(MAX_CERT_VALIDITY_SECS)
    });
    out.push(valid(
        "valid_cert_max_validity",
        "a certificate valid exactly 90 days (7776000 s)",
        &o,
        true,
    ));
    let mut o = Owner::new(231);
    recert(&mut o, 0, |c| {
        c.not_after = c.not_before.plus(MAX_CERT_VALIDITY_SECS + 1)
    });
    out.push(case(
        "rule5_cert_validity_too_long",
        "a certificate (validly signed) valid 90 days and one second",
        &o,
        TOO_LONG,
    ));
    let mut o = Owner::new(232);
    recert(&mut o, 0, |c| c.not_after = MAX);
    out.push(case(
        "rule5_cert_not_after_end_of_time",
        "a certificate (validly signed) with not_after = 2^64 - 1: the record that used to stop DHT nodes",
        &o,
        TOO_LONG,
    ));
    let mut o = Owner::new(233);
    recert(&mut o, 0, |c| {
        c.status = CertStatus::Revoked;
        c.not_after = c.not_before.plus(MAX_CERT_VALIDITY_SECS + 1);
    });
    o.record.endpoints = None;
    out.push(case(
        "rule5_revoked_cert_validity_too_long",
        "a revocation (validly signed) valid 90 days and one second: the bound holds for revocations too",
        &o,
        TOO_LONG,
    ));
    let mut o = Owner::new(234);
    recert(&mut o, 0, |c| {
        c.not_before = NOW.plus(CLOCK_SKEW_SECS);
        c.not_after = c.not_before.plus(builder::DEFAULT_CERT_VALIDITY_SECS);
    });
    out.push(valid(
        "valid_cert_starts_at_skew_limit",
        "a certificate starting exactly 300 s after the verification time",
        &o,
        true,
    ));
    let mut o = Owner::new(235);
    recert(&mut o, 0, |c| {
        c.not_before = NOW.plus(CLOCK_SKEW_SECS + 1);
        c.not_after = c.not_before.plus(builder::DEFAULT_CERT_VALIDITY_SECS);
    });
    out.push(
        case(
            "rule5_cert_starts_past_skew_limit",
            "a certificate starting 301 s after the verification time",
            &o,
            NOT_YET,
        )
        .valid_at(NOW.plus(1)),
    );
    let o = Owner::new(236);
    let end = o.record.cert.body.not_after;
    out.push(
        valid(
            "valid_cert_ended_within_skew",
            "verified 300 s after the certificate's not_after (its endpoints have long expired)",
            &o,
            false,
        )
        .at(end.plus(CLOCK_SKEW_SECS)),
    );
    out.push(
        case(
            "rule5_cert_expired_past_skew",
            "verified 301 s after the certificate's not_after",
            &o,
            Some((5, "cert_expired")),
        )
        .at(end.plus(CLOCK_SKEW_SECS + 1))
        .valid_at(end),
    );
    let mut o = Owner::new(237);
    recert(&mut o, 0, |c| {
        c.not_before = MAX.minus(10);
        c.not_after = MAX;
    });
    out.push(
        case(
            "rule5_cert_at_end_of_time",
            "a certificate valid from 2^64 - 11 to 2^64 - 1, verified now",
            &o,
            NOT_YET,
        )
        .valid_at(MAX.minus(20)),
    );
}

fn endpoints_times(out: &mut Vec<Case>) {
    let mut o = Owner::new(240);
    reendpoints(&mut o, |e| {
        e.expires_at = e.issued_at.plus(MAX_ENDPOINTS_VALIDITY_SECS)
    });
    out.push(valid(
        "valid_endpoints_max_validity",
        "endpoints valid exactly 30 days (2592000 s)",
        &o,
        true,
    ));
    let mut o = Owner::new(241);
    reendpoints(&mut o, |e| {
        e.expires_at = e.issued_at.plus(MAX_ENDPOINTS_VALIDITY_SECS + 1)
    });
    out.push(case(
        "rule5_endpoints_validity_too_long",
        "endpoints (validly signed) valid 30 days and one second",
        &o,
        TOO_LONG,
    ));
    let mut o = Owner::new(242);
    reendpoints(&mut o, |e| e.expires_at = MAX);
    out.push(case(
        "rule5_endpoints_expire_at_end_of_time",
        "endpoints (validly signed) with expires_at = 2^64 - 1",
        &o,
        TOO_LONG,
    ));
    let mut o = Owner::new(243);
    reendpoints(&mut o, |e| e.expires_at = e.issued_at);
    out.push(case(
        "rule5_endpoints_empty_window",
        "endpoints whose expires_at equals their issued_at",
        &o,
        WINDOW,
    ));
    let mut o = Owner::new(244);
    reendpoints(&mut o, |e| e.expires_at = e.issued_at.minus(1));
    out.push(case(
        "rule5_endpoints_expire_before_issue",
        "endpoints whose expires_at is one second before their issued_at",
        &o,
        WINDOW,
    ));
    let mut o = Owner::new(245);
    reendpoints(&mut o, |e| {
        e.issued_at = NOW.plus(MAX_FUTURE_SECS);
        e.expires_at = e.issued_at.plus(3_600);
    });
    out.push(valid(
        "valid_endpoints_issued_at_future_limit",
        "endpoints issued exactly 7200 s after the verification time",
        &o,
        true,
    ));
    let mut o = Owner::new(246);
    reendpoints(&mut o, |e| {
        e.issued_at = NOW.plus(MAX_FUTURE_SECS + 1);
        e.expires_at = e.issued_at.plus(3_600);
    });
    out.push(
        case(
            "rule5_endpoints_from_future",
            "endpoints issued 7201 s after the verification time",
            &o,
            NOT_YET,
        )
        .valid_at(NOW.plus(1)),
    );
    let o = Owner::new(247);
    let expiry = o.record.endpoints.as_ref().unwrap().body.expires_at;
    out.push(
        valid(
            "valid_endpoints_live_at_skew_limit",
            "verified 300 s after the endpoints' expires_at: still live",
            &o,
            true,
        )
        .at(expiry.plus(CLOCK_SKEW_SECS)),
    );
    out.push(
        valid(
            "valid_endpoints_not_live",
            "verified 301 s after the endpoints' expires_at: the record is valid, the endpoints are not live",
            &o,
            false,
        )
        .at(expiry.plus(CLOCK_SKEW_SECS + 1)),
    );
    let mut o = Owner::new(248);
    recert(&mut o, 0, |c| c.status = CertStatus::Revoked);
    out.push(valid(
        "valid_revoked_with_endpoints",
        "a revocation of the same ego key that keeps endpoints signed by it: valid, but endpoints of a revoked ego are never live",
        &o,
        false,
    ));
}

fn other_times(out: &mut Vec<Case>) {
    for (name, description, delta, error) in [
        (
            "valid_inception_at_future_limit",
            "the inception was created exactly 7200 s after the verification time",
            MAX_FUTURE_SECS,
            None,
        ),
        (
            "rule5_inception_past_future_limit",
            "the inception was created 7201 s after the verification time",
            MAX_FUTURE_SECS + 1,
            NOT_YET,
        ),
    ] {
        let mut o = Owner::new(250);
        o.record.inception.body.created_at = NOW.plus(delta);
        o.record.inception = sign_with_key(&o.root, o.record.inception.body.clone());
        reseal(&mut o);
        out.push(match error {
            None => valid(name, description, &o, true),
            Some(_) => case(name, description, &o, error).valid_at(NOW.plus(1)),
        });
    }
    for (name, description, delta, error) in [
        (
            "valid_link_at_future_limit",
            "link 3 was issued exactly 7200 s after the verification time",
            MAX_FUTURE_SECS,
            None,
        ),
        (
            "rule5_link_past_future_limit",
            "link 3 was issued 7201 s after the verification time",
            MAX_FUTURE_SECS + 1,
            NOT_YET,
        ),
    ] {
        let mut o = three_links(251);
        let mut body = o.record.chain[2].body.clone();
        body.issued_at = NOW.plus(delta);
        o.record.chain[2] = sign_link(&mut o, 2, body);
        out.push(match error {
            None => valid(name, description, &o, true),
            Some(_) => case(name, description, &o, error).valid_at(NOW.plus(1)),
        });
    }

    // Times at both ends of u64.
    let mut r = rng(252);
    let new =
        builder::create_ego(&mut r, UnixTime::from_secs(0), 86_400, vec![peer(1)], 3_600).unwrap();
    let o = Owner {
        root: new.root,
        circles: vec![new.circle],
        ego: new.ego,
        record: new.record,
        rng: r,
    };
    out.push(
        valid(
            "valid_times_at_epoch",
            "an ego created at time 0 (certificate for a day, endpoints for an hour), verified at 3600",
            &o,
            true,
        )
        .at(UnixTime::from_secs(3_600)),
    );
    let start = MAX.minus(1_000);
    let mut r = rng(253);
    let new = builder::create_ego(
        &mut r,
        start,
        builder::DEFAULT_CERT_VALIDITY_SECS,
        vec![peer(1)],
        builder::DEFAULT_ENDPOINTS_VALIDITY_SECS,
    )
    .unwrap();
    let mut o = Owner {
        root: new.root,
        circles: vec![new.circle],
        ego: new.ego,
        record: new.record,
        rng: r,
    };
    assert_eq!(o.record.cert.body.not_after, MAX);
    recert(&mut o, 0, |c| c.seq = u64::MAX);
    reendpoints(&mut o, |e| e.seq = u64::MAX);
    out.push(
        valid(
            "valid_times_near_end_of_time",
            "an ego created at 2^64 - 1001 whose certificate and endpoints end at 2^64 - 1 and whose seqs are 2^64 - 1, \
             verified at 2^64 - 991: not_after + 300 must not wrap around",
            &o,
            true,
        )
        .at(start.plus(10)),
    );
    let o = Owner::new(254);
    out.push(
        case(
            "rule5_verified_at_end_of_time",
            "a fresh ego verified at 2^64 - 1",
            &o,
            Some((5, "cert_expired")),
        )
        .at(MAX)
        .valid_at(NOW),
    );
    out.push(
        case(
            "rule5_verified_at_epoch",
            "a fresh ego verified at time 0: its inception is from the future",
            &o,
            NOT_YET,
        )
        .at(UnixTime::from_secs(0))
        .valid_at(NOW),
    );
}

fn identity_and_continuity(out: &mut Vec<Case>) {
    let mut o = Owner::new(260);
    reendpoints(&mut o, |e| e.ego_id = EgoId::from_bytes([6; 32]));
    out.push(case(
        "rule2_endpoints_name_other_ego",
        "the endpoints (validly signed by the ego key) name another ego id",
        &o,
        Some((2, "ego_id_mismatch")),
    ));
    for (name, description, index) in [
        (
            "rule4_cert_circle_index_beyond_chain",
            "the certificate (signed by circle key 3) names circle 4; the chain has 3 links",
            4,
        ),
        (
            "rule4_cert_circle_index_max",
            "the certificate (signed by circle key 3) names circle 2^64 - 1; the chain has 3 links",
            u64::MAX,
        ),
    ] {
        let mut o = three_links(261);
        recert(&mut o, 3, |c| c.circle_index = index);
        out.push(case(
            name,
            description,
            &o,
            Some((4, "cert_not_from_last_circle")),
        ));
    }
    let mut o = Owner::new(262);
    o.add_link(T0.plus(10));
    let mut body = o.record.chain[0].body.clone();
    body.issued_at = T0.minus(1);
    o.record.chain[0] = sign_link(&mut o, 0, body);
    out.push(case(
        "rule4_first_link_before_inception",
        "link 1 (validly signed) was issued one second before the inception's created_at",
        &o,
        Some((4, "chain_order")),
    ));
    let mut o = Owner::new(263);
    o.add_link(T0);
    out.push(valid(
        "valid_link_at_inception_time",
        "link 1 was issued at the inception's created_at",
        &o,
        true,
    ));
}
