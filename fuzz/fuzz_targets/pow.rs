//! The bridge's proof-of-work gate (`bridge/src/pow.rs`): `PowGate::verify`
//! with token and solution strings from a login form.
//!
//! A token is arbitrary text, or a genuine token of the gate with edits,
//! or a token made with another secret. Properties, each checked against
//! an independent reading of the token format (strict base64url, 42
//! bytes, the HMAC tag recomputed here):
//! * an accepted token carries the gate's tag: a token with a wrong tag is
//!   never accepted, and an edited genuine token never is;
//! * an accepted solution meets the token's difficulty, which is at least
//!   the gate's, within the token's age limits;
//! * a token is accepted once: the second use is `Replayed`;
//! * a genuine token solved honestly within its life is accepted (the
//!   legitimate user gets in).

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cyrcles_bridge::pow::{CLOCK_SLACK_SECS, PowError, PowGate, solve};
use libfuzzer_sys::fuzz_target;
use ring::{digest, hmac};

const SECRET: [u8; 32] = [0x42; 32];
const MAX_AGE: u64 = 300;
const T0: u64 = cyrcles_fuzz::NOW;

#[derive(Arbitrary, Debug)]
enum Token {
    /// Any text.
    Text(String),
    /// The gate's own token, with edits to its text.
    Genuine(Vec<(u16, u8)>),
    /// A well-formed token signed with another secret.
    Foreign([u8; 32]),
    /// A token assembled from fields, tagged with the gate's secret.
    Fields {
        version: u8,
        issued_at: u64,
        difficulty: u8,
        random: [u8; 16],
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    token: Token,
    /// `None`: solve it honestly.
    solution: Option<String>,
    difficulty: u8,
    /// Seconds after the token was issued, possibly negative.
    age: i32,
    max_spent: u8,
}

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) {
        run(&input);
    }
});

fn tag(secret: &[u8; 32], signed: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, signed).as_ref()[..16].to_vec()
}

fn assemble(
    version: u8,
    issued_at: u64,
    difficulty: u8,
    random: &[u8; 16],
    secret: &[u8; 32],
) -> String {
    let mut bytes = vec![version];
    bytes.extend_from_slice(&issued_at.to_be_bytes());
    bytes.push(difficulty);
    bytes.extend_from_slice(random);
    let t = tag(secret, &bytes);
    bytes.extend_from_slice(&t);
    URL_SAFE_NO_PAD.encode(&bytes)
}

fn leading_zeros(bytes: &[u8]) -> u32 {
    let mut n = 0;
    for b in bytes {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// The token's fields if it is the gate's own: strict decoding and the tag.
fn read(token: &str) -> Option<(u8, u64, u8)> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != 42 || URL_SAFE_NO_PAD.encode(&bytes) != token {
        return None;
    }
    let (signed, t) = bytes.split_at(26);
    if tag(&SECRET, signed) != t {
        return None;
    }
    let issued = u64::from_be_bytes(signed[1..9].try_into().ok()?);
    Some((signed[0], issued, signed[9]))
}

fn run(input: &Input) {
    // Low difficulties keep honest solving cheap.
    let difficulty = input.difficulty % 6;
    let gate = PowGate::new(
        SECRET,
        difficulty,
        MAX_AGE,
        usize::from(input.max_spent % 4),
    );
    let genuine = gate.challenge(T0).token;
    let token = match &input.token {
        Token::Text(s) => s.clone(),
        Token::Genuine(edits) => {
            let mut b = genuine.clone().into_bytes();
            cyrcles_fuzz::mutate(&mut b, edits);
            String::from_utf8_lossy(&b).into_owned()
        }
        Token::Foreign(secret) => {
            let secret = if *secret == SECRET { [0; 32] } else { *secret };
            assemble(1, T0, difficulty, &[1; 16], &secret)
        }
        Token::Fields {
            version,
            issued_at,
            difficulty,
            random,
        } => assemble(*version, *issued_at, *difficulty, random, &SECRET),
    };
    let fields = read(&token);
    let solution = match &input.solution {
        Some(s) => s.clone(),
        None => match fields {
            Some((_, _, d)) if d <= 8 => solve(&token, d).unwrap_or_default(),
            _ => "0".into(),
        },
    };
    let issued = fields.map_or(T0, |(_, t, _)| t);
    let now = issued.saturating_add_signed(i64::from(input.age));
    let got = gate.verify(&token, &solution, now);
    let Some((version, issued_at, token_difficulty)) = fields else {
        assert!(
            got.is_err(),
            "accepted a token without the gate's tag: {token:?}"
        );
        return;
    };
    if let Token::Genuine(_) = input.token {
        if token != genuine {
            assert!(got.is_err(), "accepted an edited token: {token:?}");
        }
    }
    let work = {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(token.as_bytes());
        ctx.update(b":");
        ctx.update(solution.as_bytes());
        leading_zeros(ctx.finish().as_ref())
    };
    let fresh = issued_at <= now.saturating_add(CLOCK_SLACK_SECS)
        && now.saturating_sub(issued_at) <= MAX_AGE;
    let digits = !solution.is_empty()
        && solution.len() <= 20
        && solution.bytes().all(|b| b.is_ascii_digit());
    let acceptable = version == 1
        && digits
        && fresh
        && token_difficulty >= difficulty
        && work >= u32::from(token_difficulty);
    match got {
        Ok(()) => {
            assert!(
                acceptable,
                "accepted what the format refuses: {token:?} {solution:?} at {now}"
            );
            // Once only.
            assert_eq!(gate.verify(&token, &solution, now), Err(PowError::Replayed));
        }
        Err(PowError::Busy) => assert!(input.max_spent % 4 == 0 && acceptable),
        Err(e) => assert!(!acceptable, "refused an honest solution with {e:?}"),
    }
}
