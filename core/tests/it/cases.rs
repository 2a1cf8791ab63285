//! The record cases behind both the validation tests and the committed
//! test vectors: valid records, and for each check of each rule a record
//! that breaks that check and nothing else.
//!
//! This file holds the first cases of each rule; `cases_keys.rs` adds the
//! small-order keys and malleable signatures, `cases_limits.rs` the limits
//! of section 10, the time bounds and the endpoints checks.

use cyrcles_core::DhtKey;
use cyrcles_core::UnixTime;
use cyrcles_core::record::builder::{sign_with_circle, sign_with_key};
use cyrcles_core::record::{EgoCert, Endpoints, MAX_RECORD_SIZE};

use crate::common::{NOW, Owner, T0, three_links};

pub struct Case {
    pub name: String,
    pub description: String,
    pub now: UnixTime,
    pub dht_key: DhtKey,
    pub record: Vec<u8>,
    /// `None` when valid, else (rule, code).
    pub error: Option<(u8, &'static str)>,
    /// For a valid record: whether its endpoints are live at `now`.
    pub live: Option<bool>,
    /// For a case that breaks only a time check: a time at which the same
    /// record verifies (none for windows that are malformed at any time).
    pub valid_at: Option<UnixTime>,
}

impl Case {
    /// The same case verified at another time.
    pub fn at(mut self, now: UnixTime) -> Self {
        self.now = now;
        self
    }

    /// Names a time at which the record verifies.
    pub fn valid_at(mut self, t: UnixTime) -> Self {
        self.valid_at = Some(t);
        self
    }
}

pub fn case(
    name: &str,
    description: &str,
    owner: &Owner,
    error: Option<(u8, &'static str)>,
) -> Case {
    Case {
        name: name.into(),
        description: description.into(),
        now: NOW,
        dht_key: owner.record.ego_id().dht_key(),
        record: owner.bytes(),
        error,
        live: None,
        valid_at: None,
    }
}

/// A valid case, with whether its endpoints are live.
pub fn valid(name: &str, description: &str, owner: &Owner, live: bool) -> Case {
    Case {
        live: Some(live),
        ..case(name, description, owner, None)
    }
}

pub fn raw(
    name: &str,
    description: &str,
    owner: &Owner,
    record: Vec<u8>,
    error: (u8, &'static str),
) -> Case {
    Case {
        record,
        ..case(name, description, owner, Some(error))
    }
}

/// Re-signs the certificate of `o` with circle key `k` after `edit`.
pub fn recert(o: &mut Owner, k: usize, edit: impl FnOnce(&mut EgoCert)) {
    let mut body = o.record.cert.body.clone();
    edit(&mut body);
    o.record.cert = sign_with_circle(&o.circles[k], &mut o.rng, body);
}

/// Re-signs the endpoints of `o` with its ego key after `edit`.
pub fn reendpoints(o: &mut Owner, edit: impl FnOnce(&mut Endpoints)) {
    let mut body = o.record.endpoints.as_ref().unwrap().body.clone();
    edit(&mut body);
    o.record.endpoints = Some(sign_with_key(&o.ego, body));
}

/// After an edit of the inception (which changes the ego id): names the
/// new ego id in every other part and signs each again with the key that
/// must sign it. The inception itself is left as it is.
pub fn reseal(o: &mut Owner) {
    let id = o.record.ego_id();
    for i in 0..o.record.chain.len() {
        let mut body = o.record.chain[i].body.clone();
        body.ego_id = id;
        o.record.chain[i] = if i == 0 {
            sign_with_key(&o.root, body)
        } else {
            sign_with_circle(&o.circles[i], &mut o.rng, body)
        };
    }
    let k = o.record.cert.body.circle_index as usize;
    recert(o, k, |c| c.ego_id = id);
    if o.record.endpoints.is_some() {
        reendpoints(o, |e| e.ego_id = id);
    }
}

pub fn all() -> Vec<Case> {
    let mut out = base();
    out.extend(crate::cases_keys::all());
    out.extend(crate::cases_limits::all());
    let mut names = std::collections::BTreeSet::new();
    for c in &out {
        assert!(names.insert(c.name.clone()), "two cases named {}", c.name);
        assert_eq!(c.error.is_none(), c.live.is_some(), "{}", c.name);
    }
    out
}

fn base() -> Vec<Case> {
    let mut out = Vec::new();

    // Valid records.
    let fresh = Owner::new(1);
    out.push(valid(
        "valid_fresh_ego",
        "a new ego: empty chain, certificate seq 1 by the inception's circle key, one endpoint",
        &fresh,
        true,
    ));
    let chained = three_links(2);
    out.push(valid(
        "valid_three_link_chain",
        "an ego whose circle chain has three links; certificate seq 4 by the last circle key",
        &chained,
        true,
    ));
    let mut rotated = three_links(3);
    rotated.rotate(T0.plus(100));
    out.push(valid(
        "valid_rotated_ego_key",
        "three links, then a new ego key (certificate seq 5) with endpoints signed by it",
        &rotated,
        true,
    ));
    let mut revoked = three_links(4);
    let circle = revoked.circles.pop().unwrap();
    revoked
        .record
        .revoke_with(&circle, &mut revoked.rng, T0.plus(200), 30 * 86_400)
        .unwrap();
    revoked.circles.push(circle);
    out.push(valid(
        "valid_revoked_ego",
        "three links, then a revocation (certificate seq 5, status revoked, no endpoints)",
        &revoked,
        false,
    ));

    let mut recovered = three_links(5);
    recovered.rotate(T0.plus(100));
    recovered.recover(T0.plus(200));
    out.push(valid(
        "valid_recovered_ego",
        "three links, a rotation, then a recovery: certificate seq 6 with epoch 1 (key 7), endpoints signed by the new key",
        &recovered,
        true,
    ));

    // Rule 1: encoding.
    let base = three_links(10);
    let bytes = base.bytes();
    let mut big = bytes.clone();
    big.resize(MAX_RECORD_SIZE + 1, 0);
    out.push(raw(
        "rule1_too_large",
        "a valid record padded to 16385 bytes: refused on size before parsing",
        &base,
        big,
        (1, "too_large"),
    ));
    let mut trailing = bytes.clone();
    trailing.push(0x00);
    out.push(raw(
        "rule1_trailing_byte",
        "a valid record followed by one extra byte",
        &base,
        trailing,
        (1, "encoding"),
    ));
    // The record opens with a5 00 01 (map of 5, key 0, version 1); write the
    // version as 18 01, a non-shortest head.
    assert_eq!(&bytes[..3], &[0xa5, 0x00, 0x01]);
    let non_canonical = [&[0xa5, 0x00, 0x18, 0x01][..], &bytes[3..]].concat();
    out.push(raw(
        "rule1_non_canonical_integer",
        "the record version written as 0x18 0x01 instead of 0x01",
        &base,
        non_canonical,
        (1, "encoding"),
    ));
    let unknown_version = [&[0xa5, 0x00, 0x02][..], &bytes[3..]].concat();
    out.push(raw(
        "rule1_unknown_version",
        "record version 2",
        &base,
        unknown_version,
        (1, "encoding"),
    ));
    // Key 1 (the inception) follows the version: repeat key 0 there.
    assert_eq!(bytes[3], 0x01);
    let mut duplicate = bytes.clone();
    duplicate[3] = 0x00;
    out.push(raw(
        "rule1_duplicate_map_key",
        "map key 0 written twice in the record map",
        &base,
        duplicate,
        (1, "encoding"),
    ));
    // A certificate with key 7 (epoch) written as 0: the canonical form
    // leaves a zero epoch out, so one certificate has one encoding.
    let mut explicit = three_links(11);
    explicit.recover(T0.plus(200));
    let cert = cyrcles_core::cbor::Encode::to_cbor(&explicit.record.cert.body);
    assert_eq!(&cert[cert.len() - 2..], &[0x07, 0x01]);
    let all = explicit.bytes();
    let at = all
        .windows(cert.len())
        .position(|w| w == cert.as_slice())
        .unwrap();
    let mut zero = all.clone();
    zero[at + cert.len() - 1] = 0x00;
    out.push(raw(
        "rule1_explicit_zero_epoch",
        "a certificate with 8 pairs whose key 7 (epoch) is 0: a zero epoch is left out",
        &explicit,
        zero,
        (1, "encoding"),
    ));
    let indefinite = [&[0xbf][..], &bytes[1..], &[0xff][..]].concat();
    out.push(raw(
        "rule1_indefinite_length",
        "the record map written with an indefinite-length head",
        &base,
        indefinite,
        (1, "encoding"),
    ));

    // Rule 2: identity.
    let mut o = three_links(20);
    recert(&mut o, 3, |c| {
        c.ego_id = cyrcles_core::EgoId::from_bytes([7; 32])
    });
    out.push(case(
        "rule2_cert_names_other_ego",
        "the certificate (validly signed by the last circle key) names another ego id",
        &o,
        Some((2, "ego_id_mismatch")),
    ));
    let mut o = three_links(22);
    let mut body = o.record.chain[1].body.clone();
    body.ego_id = cyrcles_core::EgoId::from_bytes([8; 32]);
    o.record.chain[1] = sign_with_circle(&o.circles[1], &mut o.rng, body);
    out.push(case(
        "rule2_link_names_other_ego",
        "link 2 (validly signed by circle key 1) names another ego id",
        &o,
        Some((2, "ego_id_mismatch")),
    ));
    let o = three_links(21);
    let mut c = case(
        "rule2_wrong_dht_key",
        "a valid record presented under the DHT key of another ego",
        &o,
        Some((2, "dht_key_mismatch")),
    );
    c.dht_key = cyrcles_core::EgoId::from_bytes([9; 32]).dht_key();
    out.push(c);

    // Rule 3: signatures.
    let mut o = three_links(30);
    o.record.inception.sig.0[0] ^= 1;
    out.push(case(
        "rule3_bad_inception_signature",
        "one bit of the inception signature flipped",
        &o,
        Some((3, "bad_signature")),
    ));
    let mut o = three_links(31);
    o.record.chain[1].sig.0[5] ^= 0x80;
    out.push(case(
        "rule3_bad_link_signature",
        "one bit of link 2's signature flipped",
        &o,
        Some((3, "bad_signature")),
    ));
    let mut o = three_links(32);
    let body = o.record.chain[2].body.clone();
    // Link 3 signed by the root key instead of circle key 2.
    o.record.chain[2] = sign_with_key(&o.root, body);
    out.push(case(
        "rule3_link_signed_by_wrong_key",
        "link 3 signed by the root key instead of the circle key of link 2",
        &o,
        Some((3, "bad_signature")),
    ));
    let mut o = three_links(33);
    recert(&mut o, 2, |_| {});
    out.push(case(
        "rule3_cert_signed_by_previous_circle",
        "the certificate names circle 3 but is signed by circle key 2",
        &o,
        Some((3, "bad_signature")),
    ));
    let mut o = three_links(34);
    if let Some(ep) = o.record.endpoints.as_mut() {
        ep.body.seq += 1;
    }
    out.push(case(
        "rule3_bad_endpoints_signature",
        "the endpoints seq changed after signing",
        &o,
        Some((3, "bad_signature")),
    ));

    // Rule 4: continuity.
    let mut o = three_links(40);
    let mut body = o.record.chain[1].body.clone();
    body.index = 3;
    o.record.chain[1] = sign_with_circle(&o.circles[1], &mut o.rng, body);
    out.push(case(
        "rule4_link_index_gap",
        "link 2 carries index 3 (validly signed by circle key 1)",
        &o,
        Some((4, "chain_index")),
    ));
    let mut o = three_links(41);
    let mut body = o.record.chain[1].body.clone();
    body.issued_at = T0.plus(5);
    o.record.chain[1] = sign_with_circle(&o.circles[1], &mut o.rng, body);
    out.push(case(
        "rule4_link_out_of_order",
        "link 2 issued before link 1 (validly signed)",
        &o,
        Some((4, "chain_order")),
    ));
    let mut o = three_links(42);
    recert(&mut o, 2, |c| c.circle_index = 2);
    out.push(case(
        "rule4_cert_not_from_last_circle",
        "the certificate is signed by circle 2, and says so, but the chain has 3 links",
        &o,
        Some((4, "cert_not_from_last_circle")),
    ));

    // Rule 5: time.
    let mut o = three_links(50);
    recert(&mut o, 3, |c| c.not_before = NOW.plus(3_600));
    out.push(
        case(
            "rule5_cert_not_yet_valid",
            "the certificate starts one hour after the verification time",
            &o,
            Some((5, "not_yet_valid")),
        )
        .valid_at(NOW.plus(3_600)),
    );
    let mut o = three_links(51);
    recert(&mut o, 3, |c| {
        c.not_before = T0;
        c.not_after = NOW.minus(3_000);
    });
    out.push(
        case(
            "rule5_cert_expired",
            "the certificate ended 50 minutes before the verification time",
            &o,
            Some((5, "cert_expired")),
        )
        .valid_at(T0.plus(60)),
    );
    let mut o = three_links(52);
    recert(&mut o, 3, |c| c.not_after = c.not_before);
    out.push(case(
        "rule5_cert_empty_window",
        "the certificate's not_after equals its not_before",
        &o,
        Some((5, "invalid_window")),
    ));
    let mut o = Owner::new(53);
    // Created three hours after the verification time.
    let future = NOW.plus(3 * 3_600);
    o.record.inception.body.created_at = future;
    o.record.inception = sign_with_key(&o.root, o.record.inception.body.clone());
    let new_id = o.record.ego_id();
    recert(&mut o, 0, |c| {
        c.ego_id = new_id;
        c.not_before = T0;
    });
    o.record.endpoints = None;
    out.push(
        case(
            "rule5_inception_from_future",
            "the inception was created three hours after the verification time",
            &o,
            Some((5, "not_yet_valid")),
        )
        .valid_at(NOW.plus(3 * 3_600)),
    );

    // Every record fits the cap unless it is meant not to.
    for c in &out {
        assert!(c.record.len() <= MAX_RECORD_SIZE || c.error == Some((1, "too_large")));
    }
    out
}
