//! Distributed key generation (protocol section 9.4): attacks by a
//! participant and by the relaying owner's agent first, then honest runs
//! whose shares sign like dealt ones, encodings and the transcript vector.
//!
//! Every message crosses the "wire" (encoded and decoded) on its way
//! through the relay.

use std::collections::BTreeMap;

use cyrcles_core::cbor::{Decode, DecodeError, Encode, Encoder};
use cyrcles_core::circle::dkg::{
    DkgConfirm, DkgError, DkgParams, DkgParticipant, DkgRound1, DkgRound2, MAX_DKG_CONFIRM_SIZE,
    MAX_DKG_ROUND1_SIZE, MAX_DKG_ROUND2_SIZE, dkg_aad,
};
use cyrcles_core::circle::seal::seal;
use cyrcles_core::circle::{
    CircleId, CirclePublic, Coordinator, MemberId, MemberShare, SessionId, commit,
};
use cyrcles_core::{Context, EgoId, SecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use sha2::{Digest, Sha256};

use crate::common::rng as seeded;

fn m(n: u16) -> MemberId {
    MemberId::new(n).unwrap()
}

/// The participants' ego keys and the run's parameters.
struct Setup {
    params: DkgParams,
    keys: Vec<SecretKey>,
}

impl Setup {
    fn new(t: u16, n: u16) -> Self {
        let keys: Vec<SecretKey> = (1..=n)
            .map(|i| SecretKey::from_seed(&[i as u8; 32]))
            .collect();
        let params = DkgParams {
            ego_id: EgoId::from_bytes([0xe9; 32]),
            circle_id: CircleId([4; 16]),
            generation: 2,
            session: SessionId([5; 16]),
            threshold: t,
            participants: keys
                .iter()
                .enumerate()
                .map(|(i, k)| (m(i as u16 + 1), k.public()))
                .collect(),
        };
        Self { params, keys }
    }

    fn key(&self, member: u16) -> &SecretKey {
        &self.keys[usize::from(member) - 1]
    }

    fn n(&self) -> u16 {
        self.params.participants.len() as u16
    }

    /// Every participant started; their round-1 messages by member.
    fn start(&self, rng: &mut ChaCha20Rng) -> (Participants, BTreeMap<u16, DkgRound1>) {
        let mut ps = BTreeMap::new();
        let mut r1 = BTreeMap::new();
        for i in 1..=self.n() {
            let (p, msg) =
                DkgParticipant::start(self.params.clone(), m(i), self.key(i), rng).unwrap();
            ps.insert(i, p);
            r1.insert(i, msg);
        }
        (ps, r1)
    }
}

type Participants = BTreeMap<u16, DkgParticipant>;

/// Through the relay: encoded, then decoded by the receiver.
fn wire1(msg: &DkgRound1) -> DkgRound1 {
    DkgRound1::decode_bytes(&msg.to_cbor()).unwrap()
}

fn wire2(msg: &DkgRound2) -> DkgRound2 {
    DkgRound2::decode_bytes(&msg.to_cbor()).unwrap()
}

fn wire3(msg: &DkgConfirm) -> DkgConfirm {
    DkgConfirm::decode_bytes(&msg.to_cbor()).unwrap()
}

fn deliver_round1(ps: &mut Participants, r1: &BTreeMap<u16, DkgRound1>) {
    for (to, p) in ps.iter_mut() {
        for (from, msg) in r1 {
            if from != to {
                p.add_round1(wire1(msg)).unwrap();
            }
        }
    }
}

fn all_round2(s: &Setup, ps: &mut Participants, rng: &mut ChaCha20Rng) -> BTreeMap<u16, DkgRound2> {
    ps.iter_mut()
        .map(|(i, p)| (*i, p.round2(s.key(*i), rng).unwrap()))
        .collect()
}

fn deliver_round2(ps: &mut Participants, r2: &BTreeMap<u16, DkgRound2>) {
    for (to, p) in ps.iter_mut() {
        for (from, msg) in r2 {
            if from != to {
                p.add_round2(wire2(msg)).unwrap();
            }
        }
    }
}

fn all_confirms(s: &Setup, ps: &mut Participants) -> BTreeMap<u16, DkgConfirm> {
    ps.iter_mut()
        .map(|(i, p)| (*i, p.confirm(s.key(*i)).unwrap()))
        .collect()
}

fn deliver_confirms(ps: &mut Participants, c: &BTreeMap<u16, DkgConfirm>) {
    for (to, p) in ps.iter_mut() {
        for (from, msg) in c {
            if from != to {
                p.add_confirm(wire3(msg)).unwrap();
            }
        }
    }
}

/// A whole honest run; every participant's share and public side.
fn run(s: &Setup, rng: &mut ChaCha20Rng) -> (Participants, Vec<(MemberShare, CirclePublic)>) {
    let (mut ps, r1) = s.start(rng);
    deliver_round1(&mut ps, &r1);
    let r2 = all_round2(s, &mut ps, rng);
    deliver_round2(&mut ps, &r2);
    let c = all_confirms(s, &mut ps);
    deliver_confirms(&mut ps, &c);
    let out = ps.values().map(|p| p.finish().unwrap()).collect();
    (ps, out)
}

/// Signs with `signers` through the ordinary FROST coordinator and checks
/// the result with ed25519-dalek under the group key.
fn sign_and_verify(
    shares: &[MemberShare],
    public: &CirclePublic,
    signers: &[u16],
    rng: &mut ChaCha20Rng,
) {
    let session = SessionId([0x51; 16]);
    let msg = Context::CircleLink.signing_bytes(b"a link to the new circle key");
    let mut coord = Coordinator::new(public.clone(), session, msg.clone()).unwrap();
    let mut nonces = Vec::new();
    for &i in signers {
        let share = &shares[usize::from(i) - 1];
        let (n, r1) = commit(share, session, rng);
        coord.add_commitments(r1).unwrap();
        nonces.push((share, n));
    }
    let request = coord.request().unwrap();
    for (share, n) in nonces {
        coord.add_share(n.sign(share, &request).unwrap()).unwrap();
    }
    let sig = coord.aggregate().unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(public.group_key().as_bytes()).unwrap();
    vk.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
        .unwrap();
}

// --- A participant cheating on the threshold -------------------------------

/// Member 3 commits to `coefficients` coefficients instead of t, and signs
/// its message properly with its own ego key over the honest run.
fn cheat_threshold(t: u16, n: u16, coefficients: u16) {
    let s = Setup::new(t, n);
    let mut rng = seeded(9100 + u64::from(coefficients));
    let (mut ps, r1) = s.start(&mut rng);
    let mut cheat_params = s.params.clone();
    cheat_params.threshold = coefficients;
    let (_, mut cheat) = DkgParticipant::start(cheat_params, m(3), s.key(3), &mut rng).unwrap();
    cheat.sign(&s.params, s.key(3));
    for (to, p) in ps.iter_mut().filter(|(i, _)| **i != 3) {
        for (from, msg) in &r1 {
            if *from != 3 && from != to {
                p.add_round1(wire1(msg)).unwrap();
            }
        }
        assert_eq!(
            p.add_round1(wire1(&cheat)),
            Err(DkgError::WrongThreshold {
                member: m(3),
                found: usize::from(coefficients),
                expected: usize::from(t),
            }),
            "member {to} accepted a commitment of {coefficients} coefficients"
        );
        // Without member 3, round 2 cannot start.
        let key = s.key(*to);
        assert_eq!(
            p.round2(key, &mut rng),
            Err(DkgError::Incomplete(vec![m(3)]))
        );
    }
}

#[test]
fn a_participant_raising_the_threshold_is_refused_by_every_honest_participant() {
    cheat_threshold(3, 5, 4);
    cheat_threshold(2, 3, 3);
}

#[test]
fn a_participant_lowering_the_threshold_is_refused_by_every_honest_participant() {
    cheat_threshold(3, 5, 2);
}

#[test]
fn a_bad_proof_of_knowledge_is_refused_naming_its_sender() {
    let s = Setup::new(3, 5);
    let mut rng = seeded(9200);
    let (mut ps, mut r1) = s.start(&mut rng);
    // Member 4 sends another run's proof with its commitment.
    let (_, other) = DkgParticipant::start(s.params.clone(), m(4), s.key(4), &mut rng).unwrap();
    let bad = r1.get_mut(&4).unwrap();
    bad.proof = other.proof;
    bad.sign(&s.params, s.key(4));
    deliver_round1(&mut ps, &r1);
    for (i, p) in ps.iter_mut().filter(|(i, _)| **i != 4) {
        assert_eq!(p.round2(s.key(*i), &mut rng), Err(DkgError::BadProof(m(4))));
    }
}

// --- The relay equivocating ---------------------------------------------

#[test]
fn an_equivocating_relay_is_caught_by_the_confirmation_and_nobody_keeps_a_share() {
    let s = Setup::new(3, 5);
    let mut rng = seeded(9300);
    let (mut ps, r1) = s.start(&mut rng);
    // Member 3 colludes with the relay: it runs part 1 twice; the relay
    // shows version A to member 2 and version B to members 1, 4 and 5.
    let mut a = ps.remove(&3).unwrap();
    let (mut b, r1_b) = DkgParticipant::start(s.params.clone(), m(3), s.key(3), &mut rng).unwrap();
    let r1_a = r1[&3].clone();
    assert_ne!(r1_a.commitment, r1_b.commitment);
    for (from, msg) in &r1 {
        if *from != 3 {
            a.add_round1(wire1(msg)).unwrap();
            b.add_round1(wire1(msg)).unwrap();
        }
    }
    for (to, p) in ps.iter_mut() {
        for (from, msg) in &r1 {
            if from == to {
                continue;
            }
            let msg = match (*from, *to) {
                (3, 2) => &r1_a,
                (3, _) => &r1_b,
                _ => msg,
            };
            p.add_round1(wire1(msg)).unwrap();
        }
    }
    // Round 2: member 3 sends each member the share of the polynomial that
    // member saw, so every share checks against its commitment.
    let mut r2 = all_round2(&s, &mut ps, &mut rng);
    let r2_a = a.round2(s.key(3), &mut rng).unwrap();
    let r2_b = b.round2(s.key(3), &mut rng).unwrap();
    r2.insert(3, r2_b.clone());
    for (to, p) in ps.iter_mut() {
        for (from, msg) in &r2 {
            if from == to {
                continue;
            }
            let msg = if (*from, *to) == (3, 2) { &r2_a } else { msg };
            p.add_round2(wire2(msg)).unwrap();
        }
    }
    // Part 3 succeeds for everyone: without the confirmation round, member
    // 2 would keep a share of another key than the others.
    let confirms = all_confirms(&s, &mut ps);
    assert_ne!(confirms[&2].group_key, confirms[&1].group_key);
    assert_eq!(confirms[&1].group_key, confirms[&4].group_key);
    // Member 3 confirms, to each, whatever that member computed.
    let mirror = |to: u16| {
        let mut c = confirms[&to].clone();
        c.member = m(3);
        c.sign(&s.params, s.key(3));
        c
    };
    // The confirmation round catches it, at every honest participant.
    for (to, p) in ps.iter_mut() {
        let mut errors = Vec::new();
        for (from, msg) in &confirms {
            if from != to
                && let Err(e) = p.add_confirm(wire3(msg))
            {
                errors.push(e);
            }
        }
        if let Err(e) = p.add_confirm(wire3(&mirror(*to))) {
            errors.push(e);
        }
        let expected_cheat = if *to == 2 { m(1) } else { m(2) };
        assert!(
            errors.contains(&DkgError::Equivocation {
                member: expected_cheat
            }),
            "member {to}: {errors:?}"
        );
        assert!(
            matches!(p.finish(), Err(DkgError::Equivocation { .. })),
            "member {to} kept a share after an equivocation"
        );
    }
}

#[test]
fn a_stale_round1_shown_to_one_member_makes_its_share_check_fail() {
    // The relay shows member 2 an older round-1 message of member 3 (the
    // same member ran part 1 twice; honest member 3 uses the second): member
    // 2's share from 3 does not match the commitment it holds.
    let s = Setup::new(3, 5);
    let mut rng = seeded(9350);
    let (mut ps, r1) = s.start(&mut rng);
    let (_, stale) = DkgParticipant::start(s.params.clone(), m(3), s.key(3), &mut rng).unwrap();
    for (to, p) in ps.iter_mut() {
        for (from, msg) in &r1 {
            if from != to {
                let msg = if (*from, *to) == (3, 2) { &stale } else { msg };
                p.add_round1(wire1(msg)).unwrap();
            }
        }
    }
    let r2 = all_round2(&s, &mut ps, &mut rng);
    for (to, p) in ps.iter_mut() {
        for (from, msg) in &r2 {
            if from == to {
                continue;
            }
            let got = p.add_round2(wire2(msg));
            if (*from, *to) == (2, 3) {
                // Member 2 sealed to the stale message's key: member 3
                // cannot open it either.
                assert_eq!(got, Err(DkgError::Sealed(m(2))));
            } else {
                got.unwrap();
            }
        }
    }
    assert_eq!(
        ps.get_mut(&2).unwrap().confirm(s.key(2)),
        Err(DkgError::BadShare(m(3)))
    );
    assert!(ps[&2].finish().is_err());
}

// --- Forged, misdirected and replayed messages ----------------------------

/// The same message with one field changed and, if `resign`, signed again
/// by its sender's real key.
fn variants_r1(s: &Setup, msg: &DkgRound1) -> Vec<(DkgRound1, DkgError)> {
    let from = msg.member;
    let mut out = Vec::new();
    let mut forged = msg.clone();
    forged.signature.0[10] ^= 1;
    out.push((forged, DkgError::BadSignature(from)));
    let mut by_other = msg.clone();
    by_other.sign(&s.params, s.key(5));
    out.push((by_other, DkgError::BadSignature(from)));
    let mut session = msg.clone();
    session.session = SessionId([6; 16]);
    session.sign(&s.params, s.key(from.get()));
    out.push((session, DkgError::WrongSession { member: from }));
    let mut generation = msg.clone();
    generation.generation = 3;
    generation.sign(&s.params, s.key(from.get()));
    out.push((generation, DkgError::WrongSession { member: from }));
    let mut circle = msg.clone();
    circle.circle_id = CircleId([8; 16]);
    circle.sign(&s.params, s.key(from.get()));
    out.push((circle, DkgError::WrongSession { member: from }));
    let mut stranger = msg.clone();
    stranger.member = m(6);
    out.push((stranger, DkgError::NotAParticipant(m(6))));
    // Signed for another ego's circle (the binding covers the ego id).
    let mut ego = s.params.clone();
    ego.ego_id = EgoId::from_bytes([1; 32]);
    let mut other_ego = msg.clone();
    other_ego.sign(&ego, s.key(from.get()));
    out.push((other_ego, DkgError::BadSignature(from)));
    out
}

#[test]
fn forged_replayed_or_stray_round1_messages_are_refused() {
    let s = Setup::new(3, 5);
    let mut rng = seeded(9400);
    let (mut ps, r1) = s.start(&mut rng);
    let p = ps.get_mut(&1).unwrap();
    for (bad, expected) in variants_r1(&s, &r1[&2]) {
        assert_eq!(p.add_round1(wire1(&bad)), Err(expected), "{bad:?}");
    }
    // A message claiming to be this participant's own.
    assert_eq!(p.add_round1(wire1(&r1[&1])), Err(DkgError::Duplicate(m(1))));
    p.add_round1(wire1(&r1[&2])).unwrap();
    assert_eq!(p.add_round1(wire1(&r1[&2])), Err(DkgError::Duplicate(m(2))));
    // A second, differently signed message from member 2.
    let (_, again) = DkgParticipant::start(s.params.clone(), m(2), s.key(2), &mut rng).unwrap();
    assert_eq!(p.add_round1(wire1(&again)), Err(DkgError::Duplicate(m(2))));
    assert_eq!(p.missing(), vec![m(3), m(4), m(5)]);
}

/// Participants 1..=5 after round 1 and their round-2 bundles.
fn after_round2(
    s: &Setup,
    seed: u64,
) -> (
    Participants,
    BTreeMap<u16, DkgRound1>,
    BTreeMap<u16, DkgRound2>,
) {
    let mut rng = seeded(seed);
    let (mut ps, r1) = s.start(&mut rng);
    deliver_round1(&mut ps, &r1);
    let r2 = all_round2(s, &mut ps, &mut rng);
    (ps, r1, r2)
}

#[test]
fn forged_replayed_or_stray_round2_messages_are_refused() {
    let s = Setup::new(3, 5);
    let (mut ps, _, r2) = after_round2(&s, 9500);
    let msg = &r2[&2];
    let p = ps.get_mut(&1).unwrap();
    let mut forged = msg.clone();
    forged.signature.0[0] ^= 0x80;
    assert_eq!(p.add_round2(forged), Err(DkgError::BadSignature(m(2))));
    let mut by_other = msg.clone();
    by_other.sign(&s.params, s.key(1));
    assert_eq!(p.add_round2(by_other), Err(DkgError::BadSignature(m(2))));
    let mut session = msg.clone();
    session.session = SessionId([6; 16]);
    session.sign(&s.params, s.key(2));
    assert_eq!(
        p.add_round2(session),
        Err(DkgError::WrongSession { member: m(2) })
    );
    let mut generation = msg.clone();
    generation.generation = 1;
    generation.sign(&s.params, s.key(2));
    assert_eq!(
        p.add_round2(generation),
        Err(DkgError::WrongSession { member: m(2) })
    );
    let mut stranger = msg.clone();
    stranger.member = m(7);
    assert_eq!(p.add_round2(stranger), Err(DkgError::NotAParticipant(m(7))));
    // Leaving a member out of the bundle.
    let mut short = msg.clone();
    short.items.retain(|(to, _)| *to != m(4));
    short.sign(&s.params, s.key(2));
    assert_eq!(p.add_round2(short), Err(DkgError::Recipients(m(2))));
    assert_eq!(p.add_round2(wire2(&r2[&1])), Err(DkgError::Duplicate(m(1))));
    p.add_round2(wire2(msg)).unwrap();
    assert_eq!(p.add_round2(wire2(msg)), Err(DkgError::Duplicate(m(2))));
}

#[test]
fn a_sealed_share_cannot_be_redirected_to_another_member() {
    let s = Setup::new(3, 5);
    let (mut ps, _, r2) = after_round2(&s, 9600);
    let msg = &r2[&1];
    let item = |to: u16| {
        msg.items
            .iter()
            .find(|(t, _)| *t == m(to))
            .unwrap()
            .1
            .clone()
    };
    // The relay moves member 5's item into member 4's slot: the bundle's
    // signature breaks.
    let mut moved = msg.clone();
    for (to, sealed) in moved.items.iter_mut() {
        if *to == m(4) {
            *sealed = item(5);
        }
    }
    assert_eq!(
        ps.get_mut(&4).unwrap().add_round2(moved.clone()),
        Err(DkgError::BadSignature(m(1)))
    );
    // Even with a valid signature (the sender itself redirects), the item
    // does not open for member 4.
    moved.sign(&s.params, s.key(1));
    assert_eq!(
        ps.get_mut(&4).unwrap().add_round2(moved),
        Err(DkgError::Sealed(m(1)))
    );
    // Sealed to member 4's key but bound to another recipient (or sender):
    // refused too.
    let (_, r1, _) = after_round2(&s, 9600);
    let mut rng = seeded(9601);
    let key4 = r1[&4].seal_key;
    for (from, to) in [(1, 5), (2, 4)] {
        let mut bound = msg.clone();
        for (t, sealed) in bound.items.iter_mut() {
            if *t == m(4) {
                *sealed = seal(
                    &key4,
                    &dkg_aad(s.params.session, m(from), m(to)),
                    &[1; 32],
                    &mut rng,
                )
                .unwrap();
            }
        }
        bound.sign(&s.params, s.key(1));
        assert_eq!(
            ps.get_mut(&4).unwrap().add_round2(bound),
            Err(DkgError::Sealed(m(1)))
        );
    }
    // Member 4 still takes the genuine bundle.
    ps.get_mut(&4).unwrap().add_round2(wire2(msg)).unwrap();
}

#[test]
fn a_sealed_share_cannot_be_replayed_into_another_session() {
    let s = Setup::new(3, 5);
    let (mut ps, r1, r2) = after_round2(&s, 9700);
    // Session A's whole bundle, replayed into session B.
    let mut other = Setup::new(3, 5);
    other.params.session = SessionId([0x77; 16]);
    let (mut ps_b, r1_b, _) = after_round2(&other, 9701);
    assert_eq!(
        ps_b.get_mut(&4).unwrap().add_round2(wire2(&r2[&1])),
        Err(DkgError::WrongSession { member: m(1) })
    );
    // Session A's items under a bundle re-signed for session B: they are
    // sealed to session A's keys and bound to session A.
    let mut replay = r2[&1].clone();
    replay.session = other.params.session;
    replay.sign(&other.params, other.key(1));
    assert_eq!(
        ps_b.get_mut(&4).unwrap().add_round2(replay.clone()),
        Err(DkgError::Sealed(m(1)))
    );
    // Even sealed to the right key, an item bound to another session's
    // additional data does not open.
    let mut rng = seeded(9702);
    let mut share = [0u8; 32];
    rng.fill_bytes(&mut share[..31]);
    for (to, sealed) in replay.items.iter_mut() {
        let key = r1_b[&to.get()].seal_key;
        *sealed = seal(
            &key,
            &dkg_aad(s.params.session, m(1), *to),
            &share,
            &mut rng,
        )
        .unwrap();
    }
    replay.sign(&other.params, other.key(1));
    assert_eq!(
        ps_b.get_mut(&4).unwrap().add_round2(replay.clone()),
        Err(DkgError::Sealed(m(1)))
    );
    // With the right additional data it opens (so the check above is the
    // binding, not a broken item).
    for (to, sealed) in replay.items.iter_mut() {
        let key = r1_b[&to.get()].seal_key;
        *sealed = seal(
            &key,
            &dkg_aad(other.params.session, m(1), *to),
            &share,
            &mut rng,
        )
        .unwrap();
    }
    replay.sign(&other.params, other.key(1));
    ps_b.get_mut(&4).unwrap().add_round2(replay).unwrap();
    let _ = (&mut ps, r1);
}

#[test]
fn forged_replayed_or_stray_confirmations_are_refused() {
    let s = Setup::new(2, 3);
    let mut rng = seeded(9800);
    let (mut ps, r1) = s.start(&mut rng);
    deliver_round1(&mut ps, &r1);
    let r2 = all_round2(&s, &mut ps, &mut rng);
    deliver_round2(&mut ps, &r2);
    let c = all_confirms(&s, &mut ps);
    let msg = &c[&2];
    let p = ps.get_mut(&1).unwrap();
    let mut forged = msg.clone();
    forged.signature.0[33] ^= 4;
    assert_eq!(p.add_confirm(forged), Err(DkgError::BadSignature(m(2))));
    let mut by_other = msg.clone();
    by_other.sign(&s.params, s.key(3));
    assert_eq!(p.add_confirm(by_other), Err(DkgError::BadSignature(m(2))));
    let mut session = msg.clone();
    session.session = SessionId([6; 16]);
    session.sign(&s.params, s.key(2));
    assert_eq!(
        p.add_confirm(session),
        Err(DkgError::WrongSession { member: m(2) })
    );
    let mut generation = msg.clone();
    generation.generation = 9;
    generation.sign(&s.params, s.key(2));
    assert_eq!(
        p.add_confirm(generation),
        Err(DkgError::WrongSession { member: m(2) })
    );
    let mut stranger = msg.clone();
    stranger.member = m(4);
    assert_eq!(
        p.add_confirm(stranger),
        Err(DkgError::NotAParticipant(m(4)))
    );
    assert_eq!(p.add_confirm(wire3(&c[&1])), Err(DkgError::Duplicate(m(1))));
    // Not complete yet: no share.
    assert_eq!(
        p.finish().map(|_| ()),
        Err(DkgError::Incomplete(vec![m(2), m(3)]))
    );
    p.add_confirm(wire3(msg)).unwrap();
    assert_eq!(p.add_confirm(wire3(msg)), Err(DkgError::Duplicate(m(2))));
    p.add_confirm(wire3(&c[&3])).unwrap();
    p.finish().unwrap();
}

#[test]
fn steps_out_of_order_and_bad_parameters_are_refused() {
    let s = Setup::new(3, 5);
    let mut rng = seeded(9900);
    let (mut ps, r1) = s.start(&mut rng);
    let p = ps.get_mut(&1).unwrap();
    assert_eq!(
        p.round2(s.key(1), &mut rng),
        Err(DkgError::Incomplete(vec![m(2), m(3), m(4), m(5)]))
    );
    assert!(matches!(p.confirm(s.key(1)), Err(DkgError::OutOfOrder(_))));
    assert!(matches!(p.finish(), Err(DkgError::OutOfOrder(_))));
    for (from, msg) in &r1 {
        if *from != 1 {
            p.add_round1(wire1(msg)).unwrap();
        }
    }
    p.round2(s.key(1), &mut rng).unwrap();
    assert!(matches!(
        p.round2(s.key(1), &mut rng),
        Err(DkgError::OutOfOrder(_))
    ));
    assert!(matches!(
        p.add_round1(wire1(&r1[&1])),
        Err(DkgError::Duplicate(_))
    ));
    assert!(matches!(p.confirm(s.key(1)), Err(DkgError::Incomplete(_))));

    let bad = |f: &dyn Fn(&mut DkgParams)| {
        let mut params = s.params.clone();
        f(&mut params);
        DkgParticipant::start(params, m(1), s.key(1), &mut seeded(1)).map(|_| ())
    };
    assert!(matches!(
        bad(&|p| p.threshold = 1),
        Err(DkgError::Parameters(_))
    ));
    assert!(matches!(
        bad(&|p| p.threshold = 6),
        Err(DkgError::Parameters(_))
    ));
    assert!(matches!(
        bad(&|p| p.participants.swap(0, 1)),
        Err(DkgError::Parameters(_))
    ));
    assert!(matches!(
        bad(&|p| p.participants[2].1 = p.participants[3].1),
        Err(DkgError::Parameters(_))
    ));
    assert!(matches!(
        bad(&|p| p.participants[0].1 = s.key(2).public()),
        Err(DkgError::Parameters(_))
    ));
    assert!(matches!(
        bad(&|p| p.participants.truncate(0)),
        Err(DkgError::Parameters(_))
    ));
    let big = Setup::new(3, 64);
    let mut params = big.params.clone();
    params
        .participants
        .push((m(64), SecretKey::from_seed(&[200; 32]).public()));
    assert!(matches!(
        DkgParticipant::start(params, m(1), big.key(1), &mut seeded(1)),
        Err(DkgError::Parameters(_))
    ));
    assert!(matches!(
        DkgParticipant::start(s.params.clone(), m(6), s.key(1), &mut seeded(1)),
        Err(DkgError::NotAParticipant(_))
    ));
}

// --- Honest runs ----------------------------------------------------------

fn honest(t: u16, n: u16, seed: u64, signer_sets: &[&[u16]]) {
    let s = Setup::new(t, n);
    let mut rng = seeded(seed);
    let (ps, out) = run(&s, &mut rng);
    let group_key = out[0].1.group_key();
    let digest = ps[&1].transcript_digest().unwrap();
    for (i, (share, public)) in out.iter().enumerate() {
        assert_eq!(share.member(), m(i as u16 + 1));
        assert_eq!(share.group_key(), group_key);
        assert_eq!(public, &out[0].1);
        assert_eq!(public.threshold(), usize::from(t));
        assert_eq!(share.generation(), 2);
        assert_eq!(share.circle_id(), s.params.circle_id);
        assert_eq!(share.ego_id(), s.params.ego_id);
        assert_eq!(ps[&(i as u16 + 1)].transcript_digest(), Some(digest));
        // The share is the ordinary kind: it is stored, reloaded and
        // acknowledged as a dealt one.
        let reloaded = MemberShare::from_secret_cbor(&share.to_secret_cbor()).unwrap();
        assert_eq!(reloaded.group_key(), group_key);
        out[0].1.check_ack(&share.ack()).unwrap();
        // The secret share appears in no Debug output.
        let secret = share.to_secret_cbor();
        let at = secret
            .windows(3)
            .position(|w| w == [0x06, 0x58, 0x20])
            .unwrap()
            + 3;
        let scalar = hex::encode(&secret[at..at + 32]);
        let shown = format!("{share:?} {:?} {public:?}", ps[&(i as u16 + 1)]);
        assert!(!shown.contains(&scalar));
    }
    let public = CirclePublic::from_cbor(&out[0].1.to_cbor()).unwrap();
    assert_eq!(public, out[0].1);
    let shares: Vec<MemberShare> = out.into_iter().map(|(s, _)| s).collect();
    for signers in signer_sets {
        sign_and_verify(&shares, &public, signers, &mut rng);
    }
}

#[test]
fn an_honest_three_of_five_run_gives_shares_that_sign_like_dealt_ones() {
    honest(3, 5, 9001, &[&[1, 2, 3], &[2, 4, 5], &[1, 3, 4, 5]]);
}

#[test]
fn an_honest_two_of_three_run_gives_shares_that_sign_like_dealt_ones() {
    honest(2, 3, 9002, &[&[1, 2], &[1, 3], &[2, 3]]);
}

#[test]
fn fewer_than_the_threshold_cannot_sign_with_dkg_shares() {
    let s = Setup::new(3, 5);
    let mut rng = seeded(9003);
    let (_, out) = run(&s, &mut rng);
    let session = SessionId([0x52; 16]);
    let mut coord = Coordinator::new(out[0].1.clone(), session, b"m".to_vec()).unwrap();
    for share in out.iter().take(2).map(|(s, _)| s) {
        coord
            .add_commitments(commit(share, session, &mut rng).1)
            .unwrap();
    }
    assert!(coord.request().is_err());
}

#[test]
fn messages_may_arrive_early() {
    // Round-2 bundles and confirmations may reach a participant before it
    // has taken the step itself.
    let s = Setup::new(2, 3);
    let mut rng = seeded(9004);
    let (mut ps, r1) = s.start(&mut rng);
    for (from, msg) in &r1 {
        if *from != 3 {
            ps.get_mut(&3).unwrap().add_round1(wire1(msg)).unwrap();
        }
    }
    let r2_3 = ps.get_mut(&3).unwrap().round2(s.key(3), &mut rng).unwrap();
    // Member 1 gets member 3's bundle before it has all round-1 messages.
    ps.get_mut(&1).unwrap().add_round2(wire2(&r2_3)).unwrap();
    for (to, p) in ps.iter_mut().filter(|(i, _)| **i != 3) {
        for (from, msg) in &r1 {
            if from != to {
                p.add_round1(wire1(msg)).unwrap();
            }
        }
    }
    let mut r2 = BTreeMap::new();
    for i in [1u16, 2] {
        r2.insert(
            i,
            ps.get_mut(&i).unwrap().round2(s.key(i), &mut rng).unwrap(),
        );
    }
    for (from, msg) in &r2 {
        for to in [1u16, 2, 3] {
            if *from != to {
                ps.get_mut(&to).unwrap().add_round2(wire2(msg)).unwrap();
            }
        }
    }
    ps.get_mut(&2).unwrap().add_round2(wire2(&r2_3)).unwrap();
    let c3 = ps.get_mut(&3).unwrap().confirm(s.key(3)).unwrap();
    ps.get_mut(&1).unwrap().add_confirm(wire3(&c3)).unwrap();
    let c = all_confirms(&s, &mut ps);
    for (from, msg) in &c {
        for to in [1u16, 2, 3] {
            if *from != to && !(*from == 3 && to == 1) {
                ps.get_mut(&to).unwrap().add_confirm(wire3(msg)).unwrap();
            }
        }
    }
    let keys: Vec<_> = ps
        .values()
        .map(|p| p.finish().unwrap().1.group_key())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
}

// --- Encodings ------------------------------------------------------------

fn truncations_fail<T: Decode + std::fmt::Debug>(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
) {
    for len in 0..bytes.len() {
        assert!(
            decode(&bytes[..len]).is_err(),
            "a {len}-byte prefix decoded"
        );
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(matches!(
        decode(&longer),
        Err(DecodeError::TrailingBytes { .. })
    ));
    // Every single-byte change either fails or decodes to something that
    // re-encodes to exactly those bytes (no panic, no silent
    // normalisation).
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.to_vec();
            b[i] ^= flip;
            let _ = decode(&b);
        }
    }
}

#[test]
fn messages_round_trip_and_truncated_or_garbage_input_fails_cleanly() {
    let s = Setup::new(3, 5);
    let (mut ps, r1, r2) = after_round2(&s, 9950);
    deliver_round2(&mut ps, &r2);
    let c = all_confirms(&s, &mut ps);

    let b1 = r1[&2].to_cbor();
    assert_eq!(DkgRound1::decode_bytes(&b1).unwrap().to_cbor(), b1);
    truncations_fail(&b1, DkgRound1::decode_bytes);
    let b2 = r2[&2].to_cbor();
    assert_eq!(DkgRound2::decode_bytes(&b2).unwrap(), r2[&2]);
    truncations_fail(&b2, DkgRound2::decode_bytes);
    let b3 = c[&2].to_cbor();
    assert_eq!(DkgConfirm::decode_bytes(&b3).unwrap(), c[&2]);
    truncations_fail(&b3, DkgConfirm::decode_bytes);

    // Garbage and oversized input.
    let mut rng = seeded(9951);
    for len in [0usize, 1, 7, 64, 300, 4000] {
        let mut junk = vec![0u8; len];
        rng.fill_bytes(&mut junk);
        assert!(DkgRound1::decode_bytes(&junk).is_err());
        assert!(DkgRound2::decode_bytes(&junk).is_err());
        assert!(DkgConfirm::decode_bytes(&junk).is_err());
    }
    assert!(matches!(
        DkgRound1::decode_bytes(&vec![0; MAX_DKG_ROUND1_SIZE + 1]),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(matches!(
        DkgRound2::decode_bytes(&vec![0; MAX_DKG_ROUND2_SIZE + 1]),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(matches!(
        DkgConfirm::decode_bytes(&vec![0; MAX_DKG_CONFIRM_SIZE + 1]),
        Err(DecodeError::TooLarge { .. })
    ));
    // The largest messages fit their caps: a 64-member run's round 1
    // (t = 64) and round 2 (63 items).
    let big = Setup::new(64, 64);
    let (p, msg) = DkgParticipant::start(big.params.clone(), m(1), big.key(1), &mut rng).unwrap();
    assert!(msg.to_cbor().len() <= MAX_DKG_ROUND1_SIZE);
    let mut bundle = r2[&2].clone();
    bundle.items = (2..=64)
        .map(|i| (m(i), r2[&2].items[0].1.clone()))
        .collect();
    assert!(bundle.to_cbor().len() <= MAX_DKG_ROUND2_SIZE);
    assert_eq!(DkgRound2::decode_bytes(&bundle.to_cbor()).unwrap(), bundle);
    drop(p);
}

// --- The transcript vector -----------------------------------------------

#[test]
fn the_transcript_digest_is_deterministic() {
    let s = Setup::new(2, 3);
    let digest = |seed| {
        let mut rng = seeded(seed);
        let (ps, out) = run(&s, &mut rng);
        (ps[&1].transcript_digest().unwrap(), out[0].1.group_key())
    };
    let (d, key) = digest(4242);
    assert_eq!(digest(4242), (d, key));
    assert_ne!(digest(4243).0, d);
    // Fixed seeds (ego keys [i; 32], ChaCha20 seed 4242 drawn in the order
    // of `run`): the digest and group key of section 9.4's vector.
    assert_eq!(
        hex::encode(d),
        "5491cc6e190a4d5cbb9a945a834c5bdd2946e2ebaa8237d2c6bab7e81b8ae19a"
    );
    assert_eq!(
        hex::encode(key.as_bytes()),
        "83bbfa7734fcbcbc064b564bc949cf3195ac2e038486ba4a96eb7485fbdf15d5"
    );
}

#[test]
fn the_transcript_digest_is_the_one_section_9_4_defines() {
    // Recomputed here from the specification, from the public round-1
    // messages alone.
    let s = Setup::new(3, 4);
    let mut rng = seeded(4343);
    let (mut ps, r1) = s.start(&mut rng);
    deliver_round1(&mut ps, &r1);
    let r2 = all_round2(&s, &mut ps, &mut rng);
    deliver_round2(&mut ps, &r2);
    let c = all_confirms(&s, &mut ps);
    let mut e = Encoder::new();
    e.map(9);
    e.key(0);
    e.uint(1);
    e.key(1);
    e.bytes(s.params.ego_id.as_bytes());
    e.key(2);
    e.bytes(&s.params.circle_id.0);
    e.key(3);
    e.uint(s.params.generation);
    e.key(4);
    e.bytes(&s.params.session.0);
    e.key(5);
    e.uint(3);
    e.key(6);
    e.array(4);
    for (member, key) in &s.params.participants {
        e.array(2);
        e.uint(u64::from(member.get()));
        e.bytes(key.as_bytes());
    }
    e.key(7);
    e.array(4);
    for msg in r1.values() {
        e.array(4);
        e.uint(u64::from(msg.member.get()));
        let points = msg.commitment.serialize().unwrap();
        e.array(points.len());
        for p in &points {
            e.bytes(p);
        }
        e.bytes(&msg.proof.serialize().unwrap());
        e.bytes(&msg.seal_key);
    }
    e.key(8);
    e.bytes(c[&1].group_key.as_bytes());
    let mut h = Sha256::new();
    h.update(b"cyrcles/v1/dkg-transcript\0");
    h.update(e.into_bytes());
    let expected: [u8; 32] = h.finalize().into();
    for (i, confirm) in &c {
        assert_eq!(confirm.digest, expected, "member {i}");
    }
}

/// The owner's agent, which relays but takes no part, computes from the
/// round-1 messages alone the same public side every participant ends
/// with: it checks the members' acknowledgements against it.
#[test]
fn the_relay_derives_the_circle_s_public_side_from_round_1() {
    use cyrcles_core::circle::{DkgStartBody, circle_public_from_round1};
    let s = Setup::new(3, 5);
    let start = DkgStartBody {
        ego_id: s.params.ego_id,
        circle_id: s.params.circle_id,
        generation: s.params.generation,
        session: s.params.session,
        threshold: s.params.threshold,
        participants: (1..=5u8)
            .map(|i| (m(u16::from(i)), EgoId::from_bytes([i; 32])))
            .collect(),
        issued_at: cyrcles_core::UnixTime::from_secs(0),
    };
    let mut rng = seeded(4_401);
    let (mut ps, r1) = s.start(&mut rng);
    let all: Vec<DkgRound1> = r1.values().cloned().collect();
    let public = circle_public_from_round1(&start, &all).unwrap();
    deliver_round1(&mut ps, &r1);
    let r2 = all_round2(&s, &mut ps, &mut rng);
    deliver_round2(&mut ps, &r2);
    let c = all_confirms(&s, &mut ps);
    deliver_confirms(&mut ps, &c);
    for p in ps.values() {
        let (share, theirs) = p.finish().unwrap();
        assert_eq!(theirs, public);
        public.check_ack(&share.ack()).unwrap();
    }
    // A message missing, out of order, or of another run is refused.
    assert!(circle_public_from_round1(&start, &all[..4]).is_err());
    let mut swapped = all.clone();
    swapped.swap(0, 1);
    assert!(circle_public_from_round1(&start, &swapped).is_err());
    let mut other = all;
    other[2].session = SessionId([0x66; 16]);
    assert_eq!(
        circle_public_from_round1(&start, &other),
        Err(DkgError::WrongSession { member: m(3) })
    );
}
