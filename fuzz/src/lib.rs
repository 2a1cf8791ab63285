//! Shared pieces of the fuzz targets: deterministic randomness, fixtures
//! (an ego, its verified record, a dealt circle), and small input helpers.
//!
//! Fixtures are built once per process from fixed seeds, so a crashing
//! input replays the same way on another machine.

use std::sync::OnceLock;

pub mod seeds;

use cyrcles_core::circle::seal::SealKey;
use cyrcles_core::circle::{
    CircleId, Dealing, MemberId, MemberShare, RepairDelta, RepairHelper, RepairRequest,
    RepairSigma, SessionId, deal,
};
use cyrcles_core::record::builder::create_ego;
use cyrcles_core::record::{NewEgo, PeerEndpoint};
use cyrcles_core::{SecretKey, UnixTime, VerifiedEgo, verify};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The fixtures' clock: 2026-01-01T00:00:00Z.
pub const NOW: u64 = 1_767_225_600;
/// Thirty days, the agent's default certificate validity.
pub const MONTH: u64 = 30 * 86_400;

/// A deterministic generator (never for real keys).
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A deterministic Ed25519 key.
pub fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

/// An ego with its keys and its record, verified at [`NOW`].
pub struct Ego {
    /// Keys and record.
    pub new: NewEgo,
    /// The record as a verifier holds it.
    pub verified: VerifiedEgo,
}

/// The fixture ego: certificate seq 1 valid for a month from [`NOW`], one
/// endpoint.
pub fn ego() -> &'static Ego {
    static EGO: OnceLock<Ego> = OnceLock::new();
    EGO.get_or_init(|| {
        let peers = vec![PeerEndpoint {
            peer_id: vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20, 7, 7, 7, 7],
            addrs: vec![vec![0x04, 127, 0, 0, 1, 0x06, 0x1f, 0x90]],
        }];
        let new = create_ego(&mut rng(1), UnixTime::from_secs(NOW), MONTH, peers, 86_400)
            .unwrap_or_else(|e| panic!("fixture ego: {e}"));
        let bytes = cyrcles_core::cbor::Encode::to_cbor(&new.record);
        let id = new.record.ego_id();
        let verified = verify(&bytes, &id.dht_key(), UnixTime::from_secs(NOW))
            .unwrap_or_else(|e| panic!("fixture record: {e}"));
        Ego { new, verified }
    })
}

/// The fixture ego's circle key split 2-of-3 (generation 0, the key of
/// its inception), with every member's accepted share.
pub struct Circle {
    /// The circle id.
    pub circle_id: CircleId,
    /// The dealer's output.
    pub dealing: Dealing,
    /// Member 1, 2 and 3's shares, in order.
    pub shares: Vec<MemberShare>,
}

/// The fixture circle.
pub fn circle() -> &'static Circle {
    static CIRCLE: OnceLock<Circle> = OnceLock::new();
    CIRCLE.get_or_init(|| {
        let e = ego();
        let circle_id = CircleId([9; 16]);
        let dealing = deal(
            &e.new.circle,
            e.verified.ego_id(),
            circle_id,
            0,
            2,
            3,
            &mut rng(2),
        )
        .unwrap_or_else(|err| panic!("fixture dealing: {err}"));
        let shares = dealing
            .shares
            .iter()
            .map(|d| MemberShare::accept(d.clone()).unwrap_or_else(|err| panic!("share: {err}")))
            .collect();
        Circle {
            circle_id,
            dealing,
            shares,
        }
    })
}

/// Splits `data` into length-prefixed frames (one byte of flags, two bytes
/// of big-endian length, then the frame), at most `max` of them; a short
/// last frame takes what is left.
pub fn frames(mut data: &[u8], max: usize) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while out.len() < max {
        let [flags, hi, lo, rest @ ..] = data else {
            break;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (frame, tail) = rest.split_at(len);
        out.push((*flags, frame));
        data = tail;
    }
    out
}

/// Applies `edits` (position, xor mask) to `bytes`, positions taken
/// modulo the length (callers compare with the original to know whether
/// anything changed: two edits may cancel out).
pub fn mutate(bytes: &mut [u8], edits: &[(u16, u8)]) {
    if bytes.is_empty() {
        return;
    }
    for (pos, mask) in edits {
        let i = usize::from(*pos) % bytes.len();
        if let Some(b) = bytes.get_mut(i) {
            *b ^= mask;
        }
    }
}

/// The session of the fixture's signing and repair.
pub const SESSION: SessionId = SessionId([5; 16]);

/// Member `n` (1 to 64).
pub fn m(n: u16) -> MemberId {
    MemberId::new(n).unwrap_or_else(|| panic!("member {n}"))
}

/// Member `n`'s share of the fixture circle (1 to 3).
pub fn share(n: u16) -> &'static MemberShare {
    &circle().shares[usize::from(n - 1)]
}

/// The repair of member 3's share by helpers 1 and 2, run honestly once.
pub struct Repair {
    /// The request.
    pub request: RepairRequest,
    /// Member 1's delta to itself.
    pub delta_1_1: RepairDelta,
    /// Helper 1's and helper 2's sigmas.
    pub sigma: [RepairSigma; 2],
}

/// The fixture repair.
pub fn repair() -> &'static Repair {
    static REPAIR: OnceLock<Repair> = OnceLock::new();
    REPAIR.get_or_init(|| {
        let request = RepairRequest {
            session: SESSION,
            circle_id: circle().circle_id,
            generation: 0,
            target: m(3),
            helpers: vec![m(1), m(2)],
        };
        let mut r = rng(7);
        let mut helpers: Vec<RepairHelper> = [1, 2]
            .iter()
            .map(|&n| RepairHelper::new(share(n).clone(), request.clone()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("helpers: {e}"));
        let deltas: Vec<RepairDelta> = helpers
            .iter()
            .flat_map(|h| h.deltas(&mut r).unwrap_or_else(|e| panic!("deltas: {e}")))
            .collect();
        let delta_1_1 = deltas
            .iter()
            .find(|d| d.from == m(1) && d.to == m(1))
            .cloned()
            .unwrap_or_else(|| panic!("no delta 1 -> 1"));
        for d in deltas {
            let to = usize::from(d.to.get() - 1);
            helpers[to]
                .add_delta(d)
                .unwrap_or_else(|e| panic!("add_delta: {e}"));
        }
        let sigma = [0, 1].map(|i| helpers[i].sigma().unwrap_or_else(|e| panic!("sigma: {e}")));
        Repair {
            request,
            delta_1_1,
            sigma,
        }
    })
}

/// The fixture member's key for sealed repair items.
pub fn seal_key() -> &'static SealKey {
    static KEY: OnceLock<SealKey> = OnceLock::new();
    KEY.get_or_init(|| SealKey::generate(&mut rng(8)))
}

/// One frame for [`frames`].
pub fn frame(flags: u8, bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut out = vec![flags];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
    out
}

/// With `CYRCLES_FUZZ_SEEDS=<dir>` set, writes `make()`'s inputs there
/// (`<target>-<i>`) and exits: `cargo fuzz run <target> -- -runs=0` with
/// it set makes the seed corpus of a target from the fixtures.
pub fn write_seeds(target: &str, make: fn() -> Vec<Vec<u8>>) {
    let Ok(dir) = std::env::var("CYRCLES_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        panic!("{}: {e}", dir.display());
    }
    for (i, seed) in make().iter().enumerate() {
        let path = dir.join(format!("{target}-{i:02}"));
        if let Err(e) = std::fs::write(&path, seed) {
            panic!("{}: {e}", path.display());
        }
    }
    std::process::exit(0);
}
