//! Record cases a verifier on a lenient Ed25519 library gets wrong: keys of
//! small order (root, circle and ego keys; every point of the 8-torsion and
//! two non-canonical encodings of the identity), signatures with a
//! small-order or mixed-order R or a non-canonical S, and signatures in
//! the wrong context. Each is refused under rule 3; each forged signature
//! is checked to fool a lenient or a cofactored verifier, so the vector
//! really tells a strict verifier from the others.

use cyrcles_core::cbor::Encode;
use cyrcles_core::record::Signed;
use cyrcles_core::record::builder::sign_with_key;
use cyrcles_core::{Context, PublicKey};
use ed25519_dalek::Signer;

use crate::cases::{Case, case, recert, reseal};
use crate::common::{Owner, three_links};
use crate::ed25519::{
    cofactored_accepts, forge_for_small_key, identity_non_canonical, lenient_accepts,
    mixed_order_r, not_a_point, s_plus_l, small_order_r, torsion,
};

const BAD_SIG: Option<(u8, &str)> = Some((3, "bad_signature"));

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fresh ego whose root key is the small-order `t`, its inception
/// "signed" without a secret.
fn small_root(seed: u64, t: [u8; 32]) -> Owner {
    let mut o = Owner::new(seed);
    o.record.inception.body.root_pk = PublicKey(t);
    let body = o.record.inception.body.clone();
    let sig = forge_for_small_key(&t, Context::Inception, &body.to_cbor());
    assert!(lenient_accepts(
        &t,
        Context::Inception,
        &body.to_cbor(),
        &sig
    ));
    o.record.inception = Signed { body, sig };
    reseal(&mut o);
    o
}

pub fn all() -> Vec<Case> {
    let mut out = Vec::new();
    let order = ["1 (the identity)", "8", "4", "8", "2", "8", "4", "8"];

    for (i, t) in torsion().into_iter().enumerate() {
        let o = small_root(100 + i as u64, t);
        out.push(case(
            &format!("rule3_root_pk_small_order_{i}"),
            &format!(
                "root_pk is the point of order {} encoded {}; the inception's signature needs no secret \
                 (R = [r]B, S = r with [k]A the identity) and passes a cofactorless verifier that allows small-order keys",
                order[i],
                hex(&t)
            ),
            &o,
            BAD_SIG,
        ));
    }
    for (i, t) in identity_non_canonical().into_iter().enumerate() {
        let o = small_root(110 + i as u64, t);
        out.push(case(
            &format!("rule3_root_pk_identity_non_canonical_{i}"),
            &format!(
                "root_pk is a non-canonical encoding of the identity ({}), inception signed without a secret",
                hex(&t)
            ),
            &o,
            BAD_SIG,
        ));
    }

    // The inception's circle key is the identity: it "signs" the certificate.
    let mut o = Owner::new(120);
    let t = torsion()[0];
    o.record.inception.body.circle_pk = PublicKey(t);
    o.record.inception = sign_with_key(&o.root, o.record.inception.body.clone());
    reseal(&mut o);
    let body = o.record.cert.body.clone();
    let sig = forge_for_small_key(&t, Context::EgoCert, &body.to_cbor());
    o.record.cert = Signed { body, sig };
    out.push(case(
        "rule3_circle_pk_small_order",
        "the inception's circle_pk is the identity point; the certificate is signed under it without a secret",
        &o,
        BAD_SIG,
    ));

    // Link 3 introduces a circle key of order 8, which "signs" the certificate.
    let mut o = three_links(121);
    let t = torsion()[1];
    let mut link = o.record.chain[2].body.clone();
    link.circle_pk = PublicKey(t);
    o.record.chain[2] = crate::common::sign_link(&mut o, 2, link);
    let body = o.record.cert.body.clone();
    let sig = forge_for_small_key(&t, Context::EgoCert, &body.to_cbor());
    assert!(lenient_accepts(&t, Context::EgoCert, &body.to_cbor(), &sig));
    o.record.cert = Signed { body, sig };
    out.push(case(
        "rule3_link_circle_pk_small_order",
        "link 3 (validly signed) introduces a circle key of order 8; the certificate is signed under it without a secret",
        &o,
        BAD_SIG,
    ));

    // The certified ego key is the identity; the endpoints are "signed" by it.
    let mut o = Owner::new(122);
    let t = torsion()[0];
    recert(&mut o, 0, |c| c.ego_pk = PublicKey(t));
    let body = o.record.endpoints.as_ref().unwrap().body.clone();
    let sig = forge_for_small_key(&t, Context::Endpoints, &body.to_cbor());
    o.record.endpoints = Some(Signed { body, sig });
    out.push(case(
        "rule3_ego_pk_small_order_with_endpoints",
        "the certificate (validly signed) certifies the identity point as ego key; the endpoints are signed under it without a secret",
        &o,
        BAD_SIG,
    ));
    let mut o = Owner::new(123);
    recert(&mut o, 0, |c| c.ego_pk = PublicKey(torsion()[2]));
    o.record.endpoints = None;
    out.push(case(
        "rule3_ego_pk_small_order_without_endpoints",
        "the certificate (validly signed) certifies a point of order 4 as ego key and the record has no endpoints: \
         the key must still be refused, or anyone could sign logins for the ego at a lenient verifier",
        &o,
        BAD_SIG,
    ));
    let mut o = Owner::new(124);
    recert(&mut o, 0, |c| c.ego_pk = PublicKey(not_a_point()));
    o.record.endpoints = None;
    out.push(case(
        "rule3_ego_pk_not_a_point",
        "the certificate (validly signed) certifies 32 bytes that decode to no curve point, no endpoints",
        &o,
        BAD_SIG,
    ));

    // Malleable signatures by the real root key.
    let mut o = Owner::new(125);
    let body = o.record.inception.body.to_cbor();
    let pk = o.root.public().0;
    let sig = small_order_r(&o.root, &torsion()[1], Context::Inception, &body);
    assert!(cofactored_accepts(&pk, Context::Inception, &body, &sig));
    o.record.inception.sig = sig;
    out.push(case(
        "rule3_signature_small_order_r",
        "the inception's signature has R of order 8 and S = k·a: a cofactored verifier accepts it",
        &o,
        BAD_SIG,
    ));
    let mut o = Owner::new(126);
    let sig = mixed_order_r(&o.root, Context::Inception, &body_of(&o));
    assert!(cofactored_accepts(
        &pk_of(&o),
        Context::Inception,
        &body_of(&o),
        &sig
    ));
    o.record.inception.sig = sig;
    out.push(case(
        "rule3_signature_mixed_order_r",
        "the inception's signature has R = [r]B + T with T of order 8 and S = r + k·a: a cofactored verifier accepts it, \
         the cofactorless equation does not hold",
        &o,
        BAD_SIG,
    ));
    let mut o = Owner::new(127);
    let sig = s_plus_l(&o.record.inception.sig);
    assert!(cofactored_accepts(
        &pk_of(&o),
        Context::Inception,
        &body_of(&o),
        &sig
    ));
    o.record.inception.sig = sig;
    out.push(case(
        "rule3_signature_s_not_canonical",
        "the inception's signature with S + ℓ in place of S (the same value mod ℓ): a verifier that reduces S accepts it",
        &o,
        BAD_SIG,
    ));
    let mut o = three_links(128);
    o.record.cert.sig = s_plus_l(&o.record.cert.sig);
    out.push(case(
        "rule3_cert_signature_s_not_canonical",
        "the certificate's (FROST) signature with S + ℓ in place of S",
        &o,
        BAD_SIG,
    ));
    let mut o = Owner::new(129);
    let ep = o.record.endpoints.as_mut().unwrap();
    ep.sig = s_plus_l(&ep.sig);
    out.push(case(
        "rule3_endpoints_signature_s_not_canonical",
        "the endpoints' signature with S + ℓ in place of S",
        &o,
        BAD_SIG,
    ));

    // Contexts.
    let mut o = Owner::new(130);
    o.record.inception.sig = o.root.sign(Context::EgoCert, &body_of(&o));
    out.push(case(
        "rule3_signature_in_another_context",
        "the inception signed by the root key in the context cyrcles/v1/ego-cert instead of cyrcles/v1/inception",
        &o,
        BAD_SIG,
    ));
    let mut o = Owner::new(131);
    let raw = ed25519_dalek::SigningKey::from_bytes(&o.root.to_seed());
    let message = [b"cyrcles/v1/inception".as_slice(), &body_of(&o)].concat();
    o.record.inception.sig = cyrcles_core::Signature(raw.sign(&message).to_bytes());
    out.push(case(
        "rule3_signature_without_context_terminator",
        "the inception signed over \"cyrcles/v1/inception\" || body, without the 0x00 after the context",
        &o,
        BAD_SIG,
    ));
    out
}

fn body_of(o: &Owner) -> Vec<u8> {
    o.record.inception.body.to_cbor()
}

fn pk_of(o: &Owner) -> [u8; 32] {
    o.root.public().0
}
