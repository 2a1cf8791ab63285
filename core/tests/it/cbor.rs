//! The strict decoder, byte by byte.

use cyrcles_core::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use cyrcles_core::record::{CircleLink, Inception};
use cyrcles_core::{PublicKey, UnixTime};

fn uint(bytes: &[u8]) -> Result<u64, DecodeError> {
    let mut d = Decoder::new(bytes);
    let v = d.uint()?;
    d.finish()?;
    Ok(v)
}

#[test]
fn integers_use_the_shortest_head_and_nothing_else() {
    for (v, enc) in [
        (0u64, &[0x00][..]),
        (23, &[0x17]),
        (24, &[0x18, 0x18]),
        (255, &[0x18, 0xff]),
        (256, &[0x19, 0x01, 0x00]),
        (65_535, &[0x19, 0xff, 0xff]),
        (65_536, &[0x1a, 0x00, 0x01, 0x00, 0x00]),
        (u64::from(u32::MAX), &[0x1a, 0xff, 0xff, 0xff, 0xff]),
        (u64::from(u32::MAX) + 1, &[0x1b, 0, 0, 0, 1, 0, 0, 0, 0]),
        (
            u64::MAX,
            &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ] {
        let mut e = Encoder::new();
        e.uint(v);
        assert_eq!(e.into_bytes(), enc, "{v}");
        assert_eq!(uint(enc), Ok(v));
    }
    for non_shortest in [
        &[0x18, 0x17][..],
        &[0x19, 0x00, 0xff],
        &[0x1a, 0x00, 0x00, 0xff, 0xff],
        &[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    ] {
        assert_eq!(uint(non_shortest), Err(DecodeError::NonCanonical));
    }
}

#[test]
fn everything_outside_the_subset_is_refused() {
    // Negative integer, tag, float, undefined, reserved info, indefinite
    // byte string, break.
    for bad in [
        &[0x20][..],
        &[0xc0, 0x00],
        &[0xf9, 0x3c, 0x00],
        &[0xf7],
        &[0x1c],
        &[0x5f, 0x41, 0x00, 0xff],
        &[0xff],
    ] {
        let mut d = Decoder::new(bad);
        assert!(d.uint().is_err() || d.finish().is_err(), "{bad:02x?}");
        let mut d = Decoder::new(bad);
        assert!(d.bytes().is_err(), "{bad:02x?}");
    }
    let mut d = Decoder::new(&[0x5f, 0x41, 0x00, 0xff]);
    assert_eq!(d.bytes(), Err(DecodeError::IndefiniteLength));
    let mut d = Decoder::new(&[0x1c]);
    assert_eq!(d.uint(), Err(DecodeError::Malformed));
}

#[test]
fn lengths_beyond_the_input_fail_without_allocating() {
    // A byte string claiming 2^64-1 bytes, and an array claiming 2^32 items.
    let mut d = Decoder::new(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(d.bytes(), Err(DecodeError::Truncated));
    let mut d = Decoder::new(&[0x9b, 0, 0, 0, 1, 0, 0, 0, 0]);
    assert_eq!(d.array("x", usize::MAX), Err(DecodeError::Truncated));
}

#[test]
fn text_must_be_utf8_without_control_characters() {
    let mut d = Decoder::new(&[0x62, 0xc3, 0x28]);
    assert_eq!(d.text("t", 10), Err(DecodeError::InvalidUtf8));
    let mut d = Decoder::new(&[0x63, b'a', 0x1b, b'b']);
    assert_eq!(
        d.text("t", 10),
        Err(DecodeError::ForbiddenCharacter { what: "t" })
    );
    // Line and paragraph separators and bidi controls, each three bytes
    // of UTF-8, are refused like control characters.
    for c in [
        '\u{2028}', '\u{2029}', '\u{202E}', '\u{2066}', '\u{200F}', '\u{061C}',
    ] {
        let text = format!("a{c}b");
        let bytes = [&[0x60 + text.len() as u8][..], text.as_bytes()].concat();
        let mut d = Decoder::new(&bytes);
        assert_eq!(
            d.text("t", 10),
            Err(DecodeError::ForbiddenCharacter { what: "t" }),
            "{c:?}"
        );
    }
    // A zero-width joiner (emoji sequences, Indic scripts) is allowed.
    let mut d = Decoder::new(&[0x65, b'a', 0xe2, 0x80, 0x8d, b'b']);
    assert_eq!(d.text("t", 10), Ok("a\u{200D}b"));
    let mut d = Decoder::new(&[0x62, 0xc3, 0xa9]);
    assert_eq!(d.text("t", 10), Ok("é"));
    let mut d = Decoder::new(&[0x63, b'a', b'b', b'c']);
    assert_eq!(d.text("t", 2), Err(DecodeError::OutOfRange { what: "t" }));
}

fn link() -> CircleLink {
    CircleLink {
        ego_id: cyrcles_core::EgoId::from_bytes([3; 32]),
        index: 1,
        circle_pk: PublicKey([7; 32]),
        issued_at: UnixTime::from_secs(1000),
    }
}

#[test]
fn map_keys_must_be_exactly_the_schema_in_order() {
    let good = link().to_cbor();
    // a4 00 58 20 <32> 01 01 02 58 20 <32> 03 19 03 e8
    assert_eq!(&good[..4], &[0xa4, 0x00, 0x58, 0x20]);
    assert_eq!(CircleLink::from_cbor(&good, 100), Ok(link()));

    // Key 0 twice: key 1 (at offset 36) rewritten as 0.
    let mut dup = good.clone();
    assert_eq!(dup[36], 0x01);
    dup[36] = 0x00;
    assert_eq!(
        CircleLink::from_cbor(&dup, 100),
        Err(DecodeError::DuplicateKey(0))
    );
    // An unknown key 4 in place of key 3.
    let mut unknown = good.clone();
    let k3 = good.len() - 4;
    assert_eq!(unknown[k3], 0x03);
    unknown[k3] = 0x04;
    assert_eq!(
        CircleLink::from_cbor(&unknown, 100),
        Err(DecodeError::UnexpectedKey {
            expected: 3,
            found: 4
        })
    );
    // Keys out of order: 0, 2, 1, 3.
    let mut e = Encoder::new();
    e.map(4);
    e.key(0);
    e.bytes(&[3; 32]);
    e.key(2);
    e.bytes(&[7; 32]);
    e.key(1);
    e.uint(1);
    e.key(3);
    e.uint(1000);
    assert_eq!(
        CircleLink::from_cbor(&e.into_bytes(), 100),
        Err(DecodeError::UnexpectedKey {
            expected: 1,
            found: 2
        })
    );
    // A key lower than the one before it: 0, 1, 0.
    let mut e = Encoder::new();
    e.map(4);
    e.key(0);
    e.bytes(&[3; 32]);
    e.key(1);
    e.uint(1);
    e.key(0);
    assert_eq!(
        CircleLink::from_cbor(&e.into_bytes(), 100),
        Err(DecodeError::UnsortedKey(0))
    );
    // A missing key (map of 3).
    let mut short = good.clone();
    short[0] = 0xa3;
    assert!(matches!(
        CircleLink::from_cbor(&short, 100),
        Err(DecodeError::WrongCount { .. })
    ));
    // An extra key (map of 4 with key 3 appended).
    let mut long = good.clone();
    long[0] = 0xa5;
    long.extend_from_slice(&[0x04, 0x00]);
    assert!(matches!(
        CircleLink::from_cbor(&long, 100),
        Err(DecodeError::WrongCount { .. })
    ));
    // Trailing bytes.
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        CircleLink::from_cbor(&trailing, 100),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    // Size cap before parsing.
    assert_eq!(
        CircleLink::from_cbor(&good, good.len() - 1),
        Err(DecodeError::TooLarge {
            len: good.len(),
            max: good.len() - 1
        })
    );
}

#[test]
fn unknown_versions_are_named() {
    let inc = Inception {
        root_pk: PublicKey([1; 32]),
        circle_pk: PublicKey([2; 32]),
        created_at: UnixTime::from_secs(5),
    };
    let mut bytes = inc.to_cbor();
    assert_eq!(&bytes[..3], &[0xa4, 0x00, 0x01]);
    bytes[2] = 0x02;
    assert_eq!(
        Inception::from_cbor(&bytes, 200),
        Err(DecodeError::UnknownVersion(2))
    );
}
