//! Raw Ed25519 arithmetic for the vectors that a lenient verifier gets
//! wrong: small-order keys, small-order and mixed-order R, S ≥ ℓ.
//!
//! Each forgery here is built so that some verifier other than
//! `verify_strict` accepts it ([`lenient_accepts`] for a cofactorless
//! verifier that allows small-order keys, as `ed25519-dalek`'s `verify`;
//! [`cofactored_accepts`] for one that multiplies by the cofactor and
//! reduces S, as RFC 8032 permits). The vector tests assert that, so each
//! vector really separates a strict verifier from a lenient one.

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use cyrcles_core::{Context, PublicKey, SecretKey, Signature};
use ed25519_dalek::Verifier;
use sha2::{Digest, Sha512};

/// ℓ, the order of the prime subgroup, little-endian.
pub const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The eight points of small order (the 8-torsion), canonically encoded:
/// index 0 is the identity, 4 has order 2, 2 and 6 order 4, the odd ones
/// order 8.
pub fn torsion() -> Vec<[u8; 32]> {
    EIGHT_TORSION
        .iter()
        .map(|p| p.compress().to_bytes())
        .collect()
}

/// Two non-canonical encodings of the identity: x = 0 with the sign bit
/// set, and y = p + 1.
pub fn identity_non_canonical() -> Vec<[u8; 32]> {
    let mut signed = [0u8; 32];
    signed[0] = 1;
    signed[31] = 0x80;
    // p = 2^255 - 19, so p + 1 = 2^255 - 18: 0xee, 0xff…0xff, 0x7f.
    let mut p_plus_one = [0xffu8; 32];
    p_plus_one[0] = 0xee;
    p_plus_one[31] = 0x7f;
    vec![signed, p_plus_one]
}

/// 32 bytes that decode to no curve point.
pub fn not_a_point() -> [u8; 32] {
    (2u8..)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| CompressedEdwardsY(*b).decompress().is_none())
        .unwrap()
}

fn hram(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let h = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(message)
        .finalize();
    Scalar::from_bytes_mod_order_wide(&h.into())
}

fn point(bytes: &[u8; 32]) -> EdwardsPoint {
    CompressedEdwardsY(*bytes).decompress().unwrap()
}

fn sig(r: &[u8; 32], s: &[u8; 32]) -> Signature {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s);
    Signature(out)
}

/// The secret scalar of an RFC 8032 key (the clamped first half of
/// SHA-512 of its seed).
fn secret_scalar(key: &SecretKey) -> Scalar {
    let h = Sha512::digest(key.to_seed().as_slice());
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

/// A "signature" under the small-order key `a` that needs no secret:
/// R = [r]B and S = r, with r chosen so that [k]A is the identity. A
/// cofactorless verifier that allows small-order keys accepts it.
pub fn forge_for_small_key(a: &[u8; 32], context: Context, body: &[u8]) -> Signature {
    let message = context.signing_bytes(body);
    let a_point = point(a);
    (1u64..)
        .map(|i| {
            let r = Scalar::from(i) * Scalar::from(0x9e37_79b9_7f4a_7c15u64);
            let r_bytes = EdwardsPoint::mul_base(&r).compress().to_bytes();
            (r, r_bytes)
        })
        .find(|(_, r_bytes)| {
            (a_point * hram(r_bytes, a, &message)).compress().to_bytes() == torsion()[0]
        })
        .map(|(r, r_bytes)| sig(&r_bytes, &r.to_bytes()))
        .unwrap()
}

/// A signature by `key` whose R is the small-order point `t`: S = k·a, so
/// `[8][S]B = [8]R + [8][k]A` holds (a cofactored verifier accepts) but the
/// cofactorless equation does not, and R is of small order.
pub fn small_order_r(key: &SecretKey, t: &[u8; 32], context: Context, body: &[u8]) -> Signature {
    let message = context.signing_bytes(body);
    let a = key.public().0;
    let s = hram(t, &a, &message) * secret_scalar(key);
    sig(t, &s.to_bytes())
}

/// A signature by `key` whose R = [r]B + T has a small-order component
/// (T of order 8): S = r + k·a. Cofactored verifiers accept it; R is not of
/// small order, so only the cofactorless equation refuses it.
pub fn mixed_order_r(key: &SecretKey, context: Context, body: &[u8]) -> Signature {
    let message = context.signing_bytes(body);
    let a = key.public().0;
    let r = Scalar::from(0x1234_5678_9abc_def1u64) * Scalar::from(0x0fed_cba9_8765_4321u64);
    let r_point = EdwardsPoint::mul_base(&r) + point(&torsion()[1]);
    let r_bytes = r_point.compress().to_bytes();
    let s = r + hram(&r_bytes, &a, &message) * secret_scalar(key);
    sig(&r_bytes, &s.to_bytes())
}

/// `sig` with S replaced by S + ℓ: the same value mod ℓ, no longer
/// canonical. Verifiers that reduce S accept it.
pub fn s_plus_l(sig: &Signature) -> Signature {
    let mut out = sig.0;
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let v = u16::from(out[32 + i]) + u16::from(*l) + carry;
        out[32 + i] = (v & 0xff) as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    Signature(out)
}

/// A cofactorless verifier that allows small-order keys and R
/// (`ed25519-dalek`'s plain `verify`).
pub fn lenient_accepts(key: &[u8; 32], context: Context, body: &[u8], s: &Signature) -> bool {
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
        return false;
    };
    vk.verify(
        &context.signing_bytes(body),
        &ed25519_dalek::Signature::from_bytes(&s.0),
    )
    .is_ok()
}

/// A cofactored verifier that reduces S modulo ℓ: `[8]([S]B − R − [k]A)`
/// is the identity.
pub fn cofactored_accepts(key: &[u8; 32], context: Context, body: &[u8], s: &Signature) -> bool {
    let message = context.signing_bytes(body);
    let r: [u8; 32] = s.0[..32].try_into().unwrap();
    let sv: [u8; 32] = s.0[32..].try_into().unwrap();
    let (Some(a_point), Some(r_point)) = (
        CompressedEdwardsY(*key).decompress(),
        CompressedEdwardsY(r).decompress(),
    ) else {
        return false;
    };
    let k = hram(&r, key, &message);
    let check = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(sv)) - r_point - a_point * k;
    check.mul_by_cofactor().compress().to_bytes() == torsion()[0]
}

/// Whether this implementation accepts the signature.
pub fn strict_accepts(key: &[u8; 32], context: Context, body: &[u8], s: &Signature) -> bool {
    PublicKey(*key).verify(context, body, s).is_ok()
}

#[test]
fn each_forgery_fools_a_lenient_verifier_and_not_this_one() {
    let key = SecretKey::from_seed(&[42; 32]);
    let body = b"\xa1\x00\x01";
    let ctx = Context::Inception;
    let honest = key.sign(ctx, body);
    let pk = key.public().0;
    assert!(strict_accepts(&pk, ctx, body, &honest));
    assert!(lenient_accepts(&pk, ctx, body, &honest));
    assert!(cofactored_accepts(&pk, ctx, body, &honest));

    for t in torsion().iter().chain(&identity_non_canonical()) {
        let forged = forge_for_small_key(t, ctx, body);
        assert!(lenient_accepts(t, ctx, body, &forged), "{t:02x?}");
        assert!(cofactored_accepts(t, ctx, body, &forged));
        assert!(!strict_accepts(t, ctx, body, &forged));
        assert!(PublicKey(*t).check().is_err());
    }
    for t in &torsion()[1..] {
        let forged = small_order_r(&key, t, ctx, body);
        assert!(cofactored_accepts(&pk, ctx, body, &forged));
        assert!(!strict_accepts(&pk, ctx, body, &forged));
    }
    let mixed = mixed_order_r(&key, ctx, body);
    assert!(cofactored_accepts(&pk, ctx, body, &mixed));
    assert!(!lenient_accepts(&pk, ctx, body, &mixed));
    assert!(!strict_accepts(&pk, ctx, body, &mixed));
    let high = s_plus_l(&honest);
    assert!(cofactored_accepts(&pk, ctx, body, &high));
    assert!(!strict_accepts(&pk, ctx, body, &high));
    assert!(PublicKey(not_a_point()).check().is_err());
}
