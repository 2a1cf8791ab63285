//! Unit tests of the proof-of-work gate.

use super::solve::DecimalCounter;
use super::token::TOKEN_LEN;
use super::*;
use crate::base64url;
use crate::limits::MemoryLimits;
use ring::digest;

const SECRET: [u8; 32] = [7u8; 32];
const T0: u64 = 1_700_000_000;
const EPOCH: u32 = 7;

/// Checks 1 to 7 only.
fn chk(g: &PowGate, token: &str, solution: &str, now: u64) -> Result<(), PowError> {
    g.check(token, solution, now).map(|_| ())
}

/// Every check, replay included, against `spent`.
fn verify(
    g: &PowGate,
    spent: &MemoryLimits,
    token: &str,
    solution: &str,
    now: u64,
) -> Result<(), PowError> {
    futures::executor::block_on(g.verify(spent, token, solution, now)).unwrap()
}

/// A challenge of the current epoch of `spent`.
fn current(g: &PowGate, spent: &MemoryLimits, now: u64) -> PowChallenge {
    let epoch = futures::executor::block_on(crate::limits::LimitStore::pow_epoch(spent)).unwrap();
    g.challenge(now, epoch)
}

fn gate(difficulty: u8) -> PowGate {
    PowGate::new(SECRET, difficulty, 300, 1000)
}

fn decode(token: &str) -> Vec<u8> {
    base64url::decode(token).unwrap()
}

/// A solution string that does NOT meet `difficulty` for `token`.
fn non_solution(token: &str, difficulty: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|s| leading_zero_bits(work_hash(token, s).as_ref()) < u32::from(difficulty))
        .unwrap()
}

#[test]
fn challenge_has_documented_layout() {
    let g = gate(12);
    let c = g.challenge(T0, EPOCH);
    assert_eq!(c.difficulty, 12);
    assert_eq!(c.token.len(), 62);
    assert_eq!(TOKEN_CHARS, 62);
    let bytes = decode(&c.token);
    assert_eq!(bytes.len(), TOKEN_LEN);
    assert_eq!(bytes[0], TOKEN_VERSION);
    assert_eq!(bytes[1..5], EPOCH.to_be_bytes());
    assert_eq!(bytes[5..13], T0.to_be_bytes());
    assert_eq!(bytes[13], 12);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &SECRET), &bytes[..30]);
    assert_eq!(&bytes[30..], &tag.as_ref()[..16]);
    let parsed = g
        .check(&c.token, &solve(&c.token, 12).unwrap(), T0)
        .unwrap();
    assert_eq!(
        (parsed.epoch, parsed.issued_at, parsed.difficulty),
        (EPOCH, T0, 12)
    );
    // Random field differs between challenges.
    let c2 = g.challenge(T0, EPOCH);
    assert_ne!(c.token, c2.token);
    assert_ne!(decode(&c2.token)[14..30], bytes[14..30]);
}

#[test]
fn round_trip() {
    let g = gate(12);
    let c = g.challenge(T0, EPOCH);
    let sol = solve(&c.token, c.difficulty).unwrap();
    assert!(sol.len() <= MAX_SOLUTION_CHARS);
    assert_eq!(chk(&g, &c.token, &sol, T0 + 5), Ok(()));
}

#[test]
fn difficulty_zero_accepts_any_digits() {
    let g = gate(0);
    let c = g.challenge(T0, EPOCH);
    assert_eq!(solve(&c.token, 0).as_deref(), Some("0"));
    assert_eq!(chk(&g, &c.token, "12345", T0), Ok(()));
}

#[test]
fn replay_refused() {
    let g = gate(8);
    let l = MemoryLimits::new(10);
    let c = current(&g, &l, T0);
    let sol = solve(&c.token, 8).unwrap();
    assert_eq!(verify(&g, &l, &c.token, &sol, T0), Ok(()));
    assert_eq!(
        verify(&g, &l, &c.token, &sol, T0 + 1),
        Err(PowError::Replayed)
    );
    // Another valid solution of the same token is also a replay.
    let first: u64 = sol.parse().unwrap();
    let other = (first + 1..)
        .map(|n| n.to_string())
        .find(|s| leading_zero_bits(work_hash(&c.token, s).as_ref()) >= 8)
        .unwrap();
    assert_eq!(
        verify(&g, &l, &c.token, &other, T0 + 2),
        Err(PowError::Replayed)
    );
    // A different token is fine.
    let c2 = current(&g, &l, T0);
    let sol2 = solve(&c2.token, 8).unwrap();
    assert_eq!(verify(&g, &l, &c2.token, &sol2, T0), Ok(()));
}

#[test]
fn wrong_solution_refused() {
    let g = gate(12);
    let l = MemoryLimits::new(10);
    let c = current(&g, &l, T0);
    let bad = non_solution(&c.token, 12);
    assert_eq!(
        verify(&g, &l, &c.token, &bad, T0),
        Err(PowError::InsufficientWork)
    );
    // A refused attempt does not spend the token.
    let sol = solve(&c.token, 12).unwrap();
    assert_eq!(verify(&g, &l, &c.token, &sol, T0), Ok(()));
}

#[test]
fn solution_of_other_token_refused() {
    let g = gate(12);
    let a = g.challenge(T0, EPOCH);
    let b = g.challenge(T0, EPOCH);
    let sol_a = solve(&a.token, 12).unwrap();
    if leading_zero_bits(work_hash(&b.token, &sol_a).as_ref()) < 12 {
        assert_eq!(
            chk(&g, &b.token, &sol_a, T0),
            Err(PowError::InsufficientWork)
        );
    }
}

#[test]
fn tampered_token_refused_for_every_byte_and_bit() {
    let g = gate(4);
    let c = g.challenge(T0, EPOCH);
    let sol = solve(&c.token, 4).unwrap();
    let bytes = decode(&c.token);
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut t = bytes.clone();
            t[i] ^= 1 << bit;
            let tok = base64url::encode(&t);
            let want = if i == 0 {
                PowError::UnsupportedVersion(t[0])
            } else {
                PowError::BadTag
            };
            assert_eq!(chk(&g, &tok, &sol, T0), Err(want), "byte {i} bit {bit}");
        }
    }
    // Same for every character position of the ASCII token.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for i in 0..c.token.len() {
        let mut t = c.token.clone().into_bytes();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let tok = String::from_utf8(t).unwrap();
        assert!(chk(&g, &tok, &sol, T0).is_err(), "char {i}");
        assert!(tok.bytes().all(|b| alphabet.contains(&b)));
    }
    // A token made with another secret.
    let other = PowGate::new([8u8; 32], 4, 300, 10).challenge(T0, EPOCH);
    let sol = solve(&other.token, 4).unwrap();
    assert_eq!(chk(&g, &other.token, &sol, T0), Err(PowError::BadTag));
    // Untampered still verifies.
    let sol = solve(&c.token, 4).unwrap();
    assert_eq!(chk(&g, &c.token, &sol, T0), Ok(()));
}

#[test]
fn malformed_tokens_refused() {
    let g = gate(0);
    let c = g.challenge(T0, EPOCH);
    let cases = [
        String::new(),
        "A".to_string(),
        c.token[..61].to_string(),
        format!("{}A", c.token),
        format!("{}AAAA", c.token),
        format!("{}==", c.token),
        format!(" {}", &c.token[1..]),
        format!("+{}", &c.token[1..]),
        format!("{}/", &c.token[..61]),
        format!("{}\n", &c.token[..61]),
        "!".repeat(62),
        "é".repeat(31),
    ];
    for (i, t) in cases.iter().enumerate() {
        assert_eq!(
            chk(&g, t, "1", T0),
            Err(PowError::Malformed),
            "case {i}: {t:?}"
        );
    }
    // Well-formed base64 of the wrong length.
    let short = base64url::encode(&[1u8; TOKEN_LEN - 1]);
    assert_eq!(chk(&g, &short, "1", T0), Err(PowError::Malformed));
    let long = base64url::encode(&[1u8; TOKEN_LEN + 3]);
    assert_eq!(chk(&g, &long, "1", T0), Err(PowError::Malformed));
    // Non-canonical trailing bits: 46 bytes leave 4 unused bits in the
    // last character, which must be zero; setting one is refused, not
    // decoded to the same bytes.
    let mut t = c.token.clone().into_bytes();
    let last = t.last_mut().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let v = alphabet.iter().position(|x| x == last).unwrap();
    *last = alphabet[v | 1];
    if alphabet[v] != *last {
        assert_eq!(
            chk(&g, &String::from_utf8(t).unwrap(), "1", T0),
            Err(PowError::Malformed)
        );
    }
    // Largest accepted length still decodes (and is then malformed).
    let max = "A".repeat(MAX_TOKEN_CHARS);
    assert_eq!(chk(&g, &max, "1", T0), Err(PowError::Malformed));
}

#[test]
fn version_checked_before_tag() {
    let g = gate(0);
    for version in [1, 3] {
        let mut bytes = decode(&g.challenge(T0, EPOCH).token);
        bytes[0] = version;
        let tok = base64url::encode(&bytes);
        assert_eq!(
            chk(&g, &tok, "1", T0),
            Err(PowError::UnsupportedVersion(version))
        );
    }
}

#[test]
fn oversized_and_non_digit_inputs_refused() {
    let g = gate(4);
    let c = g.challenge(T0, EPOCH);
    let long_token = "A".repeat(MAX_TOKEN_CHARS + 1);
    assert_eq!(chk(&g, &long_token, "1", T0), Err(PowError::TokenTooLong));
    assert_eq!(
        chk(&g, &"A".repeat(100_000), "1", T0),
        Err(PowError::TokenTooLong)
    );
    // Size caps come before anything else.
    assert_eq!(chk(&g, &long_token, "x", T0), Err(PowError::TokenTooLong));
    let long_sol = "1".repeat(MAX_SOLUTION_CHARS + 1);
    assert_eq!(
        chk(&g, &c.token, &long_sol, T0),
        Err(PowError::SolutionTooLong)
    );
    for bad in [
        "", "12a", "-1", "+1", " 1", "1 ", "1.0", "0x10", "\u{ff11}", "١",
    ] {
        assert_eq!(
            chk(&g, &c.token, bad, T0),
            Err(PowError::SolutionNotDigits),
            "{bad:?}"
        );
    }
    // 20 digits is a permitted format (it fails or passes on the work).
    let twenty = "9".repeat(MAX_SOLUTION_CHARS);
    let r = chk(&g, &c.token, &twenty, T0);
    assert!(r.is_ok() || r == Err(PowError::InsufficientWork));
}

#[test]
fn expired_and_future_tokens_refused() {
    let g = PowGate::new(SECRET, 4, 300, 1000);
    let c = g.challenge(T0, EPOCH);
    let sol = solve(&c.token, 4).unwrap();
    assert_eq!(chk(&g, &c.token, &sol, T0 + 301), Err(PowError::Expired));
    assert_eq!(chk(&g, &c.token, &sol, u64::MAX), Err(PowError::Expired));
    assert_eq!(chk(&g, &c.token, &sol, T0 - 61), Err(PowError::NotYetValid));
    assert_eq!(chk(&g, &c.token, &sol, 0), Err(PowError::NotYetValid));
    // Boundaries are inclusive.
    assert_eq!(chk(&g, &c.token, &sol, T0 + 300), Ok(()));
    let c = g.challenge(T0, EPOCH);
    let sol = solve(&c.token, 4).unwrap();
    assert_eq!(chk(&g, &c.token, &sol, T0 - 60), Ok(()));
    // Extreme issue times do not overflow.
    let c = g.challenge(u64::MAX, EPOCH);
    let sol = solve(&c.token, 4).unwrap();
    assert_eq!(chk(&g, &c.token, &sol, 0), Err(PowError::NotYetValid));
    assert_eq!(chk(&g, &c.token, &sol, u64::MAX), Ok(()));
}

#[test]
fn difficulty_below_minimum_refused() {
    let easy = PowGate::new(SECRET, 4, 300, 1000);
    let hard = PowGate::new(SECRET, 8, 300, 1000);
    let c = easy.challenge(T0, EPOCH);
    let sol = solve(&c.token, 12).unwrap(); // plenty of work, still refused
    assert_eq!(
        chk(&hard, &c.token, &sol, T0),
        Err(PowError::DifficultyTooLow {
            token: 4,
            required: 8
        })
    );
    // Raising the gate's difficulty retires easier outstanding tokens...
    easy.set_difficulty(8);
    assert_eq!(
        chk(&easy, &c.token, &sol, T0),
        Err(PowError::DifficultyTooLow {
            token: 4,
            required: 8
        })
    );
    // ...and lowering it keeps harder ones valid, at their own difficulty.
    let c8 = hard.challenge(T0, EPOCH);
    hard.set_difficulty(2);
    let weak = (0u64..)
        .map(|n| n.to_string())
        .find(|s| {
            let z = leading_zero_bits(work_hash(&c8.token, s).as_ref());
            (2..8).contains(&z)
        })
        .unwrap();
    assert_eq!(
        chk(&hard, &c8.token, &weak, T0),
        Err(PowError::InsufficientWork)
    );
    let sol8 = solve(&c8.token, 8).unwrap();
    assert_eq!(chk(&hard, &c8.token, &sol8, T0), Ok(()));
}

#[test]
fn difficulty_is_capped() {
    let g = PowGate::new(SECRET, 200, 300, 10);
    assert_eq!(g.difficulty(), MAX_DIFFICULTY);
    g.set_difficulty(255);
    assert_eq!(g.difficulty(), MAX_DIFFICULTY);
    g.set_difficulty(3);
    assert_eq!(g.difficulty(), 3);
    assert_eq!(solve("x", MAX_DIFFICULTY + 1), None);
}

#[test]
fn spent_set_is_bounded() {
    // The rule at the bound: the spend that finds the set full is taken and
    // ends the epoch; every outstanding token is retired, none locked out.
    let g = PowGate::new(SECRET, 0, 100, 3);
    let l = MemoryLimits::new(10);
    let old: Vec<_> = (0..5).map(|_| current(&g, &l, T0).token).collect();
    for t in &old[..3] {
        assert_eq!(verify(&g, &l, t, "0", T0), Ok(()));
    }
    assert_eq!(l.sizes().1, 3);
    assert_eq!(
        verify(&g, &l, &old[3], "0", T0),
        Ok(()),
        "the fourth is taken"
    );
    assert_eq!(l.sizes().1, 0, "and the set starts empty");
    // The old epoch's tokens, spent or not, are refused from now on.
    assert_eq!(verify(&g, &l, &old[0], "0", T0), Err(PowError::Retired));
    assert_eq!(verify(&g, &l, &old[4], "0", T0), Err(PowError::Retired));
    // A fresh token works at once.
    let fresh = current(&g, &l, T0).token;
    assert_eq!(verify(&g, &l, &fresh, "0", T0), Ok(()));
    assert_eq!(verify(&g, &l, &fresh, "0", T0), Err(PowError::Replayed));
}

#[test]
fn replay_refused_for_whole_token_life() {
    // max_age 100 s: a token from a clock 60 s ahead is spent as early as
    // allowed and stays refused while any instance could take it, even
    // after purges, and then it has expired.
    let g = PowGate::new(SECRET, 0, 100, 100);
    let l = MemoryLimits::new(10);
    let a = current(&g, &l, T0 + 60).token;
    assert_eq!(verify(&g, &l, &a, "0", T0), Ok(()));
    for now in [T0 + 1, T0 + 100, T0 + 159, T0 + 160] {
        futures::executor::block_on(crate::limits::LimitStore::purge_limits(
            &l,
            i64::try_from(now).unwrap(),
        ))
        .unwrap();
        assert_eq!(
            verify(&g, &l, &a, "1", now),
            Err(PowError::Replayed),
            "at T0 + {}",
            now - T0
        );
    }
    assert_eq!(verify(&g, &l, &a, "1", T0 + 161), Err(PowError::Expired));
}

#[test]
fn a_token_of_another_epoch_is_retired() {
    let g = gate(0);
    let l = MemoryLimits::new(10);
    let e = futures::executor::block_on(crate::limits::LimitStore::pow_epoch(&l)).unwrap();
    let other = g.challenge(T0, e.wrapping_add(1)).token;
    assert_eq!(verify(&g, &l, &other, "0", T0), Err(PowError::Retired));
}
#[test]
fn debug_hides_secret() {
    let g = PowGate::new([0xAB; 32], 9, 300, 10);
    let s = format!("{g:?}");
    assert!(s.contains("PowGate") && s.contains("difficulty: 9"), "{s}");
    assert!(
        !s.contains("171") && !s.to_lowercase().contains("ab,"),
        "{s}"
    );
    assert!(!s.contains("key"), "{s}");
}

#[test]
fn fallback_random_is_unique() {
    let g = gate(4);
    let a = g.fallback_random(T0);
    let b = g.fallback_random(T0);
    assert_ne!(a, b);
    assert_ne!(a, [0; 16]);
}

#[test]
fn leading_zero_bits_counts() {
    assert_eq!(leading_zero_bits(&[0x80]), 0);
    assert_eq!(leading_zero_bits(&[0x01]), 7);
    assert_eq!(leading_zero_bits(&[0, 0x40]), 9);
    assert_eq!(leading_zero_bits(&[0, 0, 0, 0]), 32);
    assert_eq!(leading_zero_bits(&[]), 0);
}

#[test]
fn decimal_counter_counts_like_integers() {
    let mut c = DecimalCounter::new();
    for n in 0u64..=12_345 {
        assert_eq!(c.as_bytes(), n.to_string().as_bytes());
        assert!(c.increment());
    }
    let mut c = DecimalCounter {
        digits: *b"99999999999999999998",
        len: 20,
    };
    assert!(c.increment());
    assert_eq!(c.as_bytes(), b"99999999999999999999");
    assert!(!c.increment());
}

#[test]
fn solve_finds_first_solution() {
    let tok = "test-token";
    let sol = solve(tok, 10).unwrap();
    let n: u64 = sol.parse().unwrap();
    assert!(leading_zero_bits(work_hash(tok, &sol).as_ref()) >= 10);
    for m in 0..n {
        assert!(leading_zero_bits(work_hash(tok, &m.to_string()).as_ref()) < 10);
    }
}

/// Cross-checks pow.js against ring's SHA-256 and this module's solver
/// and verifier, when `node` is available.
#[test]
fn javascript_solver_matches_rust() {
    use std::fmt::Write as _;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    const POW_JS: &str = include_str!("../../../templates/static/pow.js");
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !cyrcles_testkit::require_tool("`node` on PATH", node_ok) {
        return;
    }

    // Strings to hash: every length 0..=200 of a pattern (all padding
    // cases), the standard vectors, and non-ASCII text.
    let mut strings: Vec<String> = (0..=200)
        .map(|n| {
            (0..n)
                .map(|i| char::from(b'a' + u8::try_from(i * 7 % 26).unwrap()))
                .collect()
        })
        .collect();
    strings.push("abc".into());
    strings.push("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".into());
    strings.push("héllo ✓ 😀 \u{7f}\u{80}\u{7ff}\u{800}\u{ffff}".into());

    // Tokens to solve: real challenges, plus strings of every length
    // around the block boundaries so that the solver's midstate and
    // schedule caching is exercised (prefix = token + ':').
    let g = gate(10);
    let real: Vec<String> = (0..4).map(|_| g.challenge(T0, EPOCH).token).collect();
    let mut tokens = real.clone();
    for len in (0..=8).chain(50..=70).chain(110..=130) {
        tokens.push(
            (0..len)
                .map(|i| char::from(b'A' + u8::try_from(i % 26).unwrap()))
                .collect(),
        );
    }
    let hard = gate(16).challenge(T0, EPOCH).token;

    // JSON array of strings; non-ASCII as \u escapes (surrogate pairs
    // beyond the BMP) so the text survives the environment unchanged.
    let json = |items: &[String]| {
        let mut out = String::from("[");
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            for ch in s.chars() {
                if ch.is_ascii_alphanumeric() || " -_:.".contains(ch) {
                    out.push(ch);
                } else {
                    let mut units = [0u16; 2];
                    for unit in ch.encode_utf16(&mut units) {
                        write!(out, "\\u{unit:04x}").unwrap();
                    }
                }
            }
            out.push('"');
        }
        out.push(']');
        out
    };

    let harness = r#"
;(function () {
  var api = module.exports;
  var strings = JSON.parse(process.env.POW_STRINGS);
  var tokens = JSON.parse(process.env.POW_TOKENS);
  var lines = [];
  strings.forEach(function (s, i) { lines.push('hash ' + i + ' ' + api.sha256hex(s)); });
  tokens.forEach(function (t, i) { lines.push('solve ' + i + ' ' + api.solve(t, 10, 1 << 20)); });
  lines.push('hard ' + api.solve(process.env.POW_HARD, 16, 1 << 24));
  process.stdout.write(lines.join('\n') + '\n');
})();
"#;
    // Each search is bounded (null after 2^20 or 2^24 tries, 2^10 and
    // 2^16 expected), so a broken solver fails instead of hanging.
    let mut child = Command::new("node")
        .arg("-")
        .env("POW_STRINGS", json(&strings))
        .env("POW_TOKENS", json(&tokens))
        .env("POW_HARD", &hard)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(POW_JS.as_bytes()).unwrap();
    stdin.write_all(harness.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut hashes = 0;
    let mut solves = 0;
    let mut hard_seen = false;
    for line in stdout.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[0] {
            "hash" => {
                let i: usize = parts[1].parse().unwrap();
                let want = digest::digest(&digest::SHA256, strings[i].as_bytes());
                let want: String = want.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(parts[2], want, "sha256 of string {i}");
                hashes += 1;
            }
            "solve" => {
                let i: usize = parts[1].parse().unwrap();
                let rust = solve(&tokens[i], 10).unwrap();
                assert_eq!(parts[2], rust, "first solution for token {i}");
                solves += 1;
            }
            "hard" => {
                assert_eq!(parts[1], solve(&hard, 16).unwrap());
                hard_seen = true;
            }
            other => panic!("unexpected output {other:?}"),
        }
    }
    assert_eq!(hashes, strings.len());
    let js_hash = |i: usize| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("hash {i} ")))
            .unwrap()
            .to_string()
    };
    assert_eq!(strings[0], "");
    assert_eq!(
        js_hash(0),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(strings[201], "abc");
    assert_eq!(
        js_hash(201),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        js_hash(202),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert_eq!(solves, tokens.len());
    assert!(hard_seen);

    // JS solutions pass the Rust verifier.
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("solve ")).collect();
    for (i, tok) in real.iter().enumerate() {
        let sol = lines[i].split(' ').nth(2).unwrap();
        assert_eq!(chk(&g, tok, sol, T0 + 1), Ok(()), "token {i}");
    }
    let hard_sol = stdout
        .lines()
        .find_map(|l| l.strip_prefix("hard "))
        .unwrap();
    assert_eq!(chk(&gate(16), &hard, hard_sol, T0), Ok(()));
}
