//! The circle protocol (`/cyrcles/circle/1`): envelopes, every message
//! kind, and live ceremony state machines fed with what a peer sends.
//!
//! The input is a sequence of frames (`cyrcles_fuzz::frames`: a flags
//! byte, a 16-bit length, the bytes). A frame is an envelope (flags bit 0
//! clear) or a bare message body of kind `flags >> 4` (bit 0 set). Bit 1
//! makes the harness re-target the message at the live session (its
//! session, circle and ego ids), and for ceremony and recovery requests,
//! re-sign it as the owner or as a new device would, so that the checks
//! behind the signature are reached. Bit 3: the frame holds arbitrary
//! field values (times, seqs, indices) of a ceremony or recovery request,
//! which the harness builds and signs.
//!
//! The fixture is a 2-of-3 circle of the fixture ego. Each input starts a
//! signing session (member 1 committed honestly), a repair of member 3's
//! share (helper 1's sigma in), and member 2 ready to sign. Properties:
//! every decoder is canonical; an aggregate signature verifies under the
//! circle key and an honest member is never named a cheater; after any
//! junk, the honest members still complete the signing and the repair; a
//! repaired share is member 3's real share; whatever `authorize` or
//! `authorize_recovery` accepts is the next step of the record; nothing
//! unsigned by the owner is authorized.

#![no_main]

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::circle::messages::{MAX_CIRCLE_MESSAGE_SIZE, kind};
use cyrcles_core::circle::seal::seal;
use cyrcles_core::circle::{
    CeremonyRequest, CircleError, CircleRefused, Coordinator, DealtShare, MemberId, MemberShare,
    Purpose, RecoveryBody, RecoveryPending, RecoveryRequest, RepairDelta, RepairHelper, RepairKeys,
    RepairRequest, RepairSealed, RepairSigma, RepairTarget, RequestBody, Round1, Round2, ShareAck,
    SignerNonces, SigningPolicy, SigningRequest, authorize, authorize_recovery, commit, repair_aad,
};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::record::{CertStatus, EgoCert};
use cyrcles_core::{Context, UnixTime};
use cyrcles_fuzz::{
    MONTH, NOW, SESSION, circle, ego, frames, key, m, repair, rng, seal_key, share,
};
use libfuzzer_sys::fuzz_target;

/// What the session signs (an `EgoCert` context message).
const BODY: &[u8] = b"fuzz: a body for the circle to sign";
/// The p2p layer's cap on a circle request (body plus envelope head).
const MAX_ENVELOPE: usize = MAX_CIRCLE_MESSAGE_SIZE + 16;

/// A time: absolute, or an offset from the fixture's clock.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum T {
    Abs(u64),
    Rel(i32),
}

impl T {
    fn at(self) -> UnixTime {
        UnixTime::from_secs(match self {
            T::Abs(t) => t,
            T::Rel(d) => NOW.saturating_add_signed(i64::from(d)),
        })
    }
}

/// A ceremony or recovery request from arbitrary field values, around the
/// fixture ego's next certificate or link (`None`: the right value).
#[derive(Arbitrary, Debug)]
struct Fields {
    recovery: bool,
    link: bool,
    issued_at: T,
    generation: Option<u64>,
    seq: Option<u64>,
    key: u8,
    not_before: T,
    not_after: T,
    revoked: bool,
    circle_index: Option<u64>,
    index: Option<u64>,
}

impl Fields {
    fn envelope(&self) -> Envelope {
        let e = ego();
        let record = &e.new.record;
        let mut cert = record.next_cert(key(self.key).public(), UnixTime::from_secs(NOW), MONTH);
        cert.not_before = self.not_before.at();
        cert.not_after = self.not_after.at();
        cert.seq = self.seq.unwrap_or(cert.seq);
        cert.circle_index = self.circle_index.unwrap_or(cert.circle_index);
        if self.revoked {
            cert.status = CertStatus::Revoked;
        }
        if self.recovery {
            let body = RecoveryBody {
                ego_id: e.verified.ego_id(),
                peer_id: vec![0, 36, 8, 1, 18, 32, 9],
                cert,
                issued_at: self.issued_at.at(),
                session: SESSION,
            };
            return Envelope::wrap(kind::RECOVERY_REQUEST, &body.sign(&key(self.key)));
        }
        let purpose = if self.link {
            let mut link = record.next_link(key(self.key).public(), self.issued_at.at());
            link.index = self.index.unwrap_or(link.index);
            Purpose::Link(link)
        } else {
            Purpose::Certify(cert)
        };
        let body = RequestBody {
            ego_id: e.verified.ego_id(),
            circle_id: circle().circle_id,
            generation: self.generation.unwrap_or(0),
            session: SESSION,
            purpose,
            issued_at: self.issued_at.at(),
        };
        Envelope::wrap(kind::CEREMONY_REQUEST, &body.sign(&e.new.ego))
    }
}

/// The live state of one input, each part made when a frame first needs
/// it (most inputs never reach a state machine).
#[derive(Default)]
struct Live {
    signing: Option<Signing>,
    repairing: Option<Repairing>,
}

/// A signing session: the coordinator, with member 1 committed honestly,
/// and member 2 waiting for a signing request.
struct Signing {
    coordinator: Coordinator,
    /// Member 1's nonces, until it signs.
    member1: Option<SignerNonces>,
    /// Members whose share the coordinator took from a frame.
    junk_shares: BTreeSet<MemberId>,
    /// Member 2, waiting for a signing request.
    participant: Option<(SignerNonces, Round1)>,
}

/// The repair of member 3: helper 1 (its own delta in), and the target
/// (helper 1's sigma in).
struct Repairing {
    helper: RepairHelper,
    target: RepairTarget,
    /// Sigmas the repair target took from frames.
    junk_sigmas: BTreeSet<MemberId>,
}

impl Signing {
    fn new() -> Self {
        let mut rng = rng(3);
        let public = circle().dealing.public.clone();
        let message = Context::EgoCert.signing_bytes(BODY);
        let mut coordinator = Coordinator::new(public, SESSION, message)
            .unwrap_or_else(|e| panic!("coordinator: {e}"));
        let (n1, r1) = commit(share(1), SESSION, &mut rng);
        coordinator
            .add_commitments(r1)
            .unwrap_or_else(|e| panic!("honest commitment: {e}"));
        Self {
            coordinator,
            member1: Some(n1),
            junk_shares: BTreeSet::new(),
            participant: Some(commit(share(2), SESSION, &mut rng)),
        }
    }
}

impl Repairing {
    fn new() -> Self {
        let rep = repair();
        let mut helper = RepairHelper::new(share(1).clone(), rep.request.clone())
            .unwrap_or_else(|e| panic!("helper: {e}"));
        helper
            .add_delta(rep.delta_1_1.clone())
            .unwrap_or_else(|e| panic!("own delta: {e}"));
        let mut target = RepairTarget::new(rep.request.clone());
        target
            .add_sigma(rep.sigma[0].clone())
            .unwrap_or_else(|e| panic!("honest sigma: {e}"));
        Self {
            helper,
            target,
            junk_sigmas: BTreeSet::new(),
        }
    }
}

impl Live {
    fn signing(&mut self) -> &mut Signing {
        self.signing.get_or_insert_with(Signing::new)
    }

    fn repairing(&mut self) -> &mut Repairing {
        self.repairing.get_or_insert_with(Repairing::new)
    }

    fn frame(&mut self, flags: u8, bytes: &[u8]) {
        let envelope = if flags & 8 != 0 {
            // Fields of a ceremony or recovery request, built here.
            let Ok(f) = Fields::arbitrary_take_rest(Unstructured::new(bytes)) else {
                return;
            };
            f.envelope()
        } else if flags & 1 == 0 {
            let Ok(env) = Envelope::from_cbor(bytes, MAX_ENVELOPE) else {
                return;
            };
            assert_eq!(env.to_cbor(), bytes, "non-canonical envelope accepted");
            env
        } else {
            Envelope {
                kind: u16::from(flags >> 4),
                body: bytes.to_vec(),
            }
        };
        self.message(flags & 2 != 0, &envelope);
    }

    fn message(&mut self, adopt: bool, env: &Envelope) {
        match env.kind {
            kind::DEALT_SHARE => {
                if let Some(d) = open::<DealtShare>(env) {
                    dealt_share(d, &env.body);
                }
            }
            kind::SHARE_ACK => {
                if let Some(ack) = open::<ShareAck>(env) {
                    share_ack(&ack);
                }
            }
            kind::ROUND1 => {
                if let Some(mut r1) = open::<Round1>(env) {
                    if adopt {
                        r1.session = SESSION;
                    }
                    self.signing().round1(r1);
                }
            }
            kind::SIGNING_REQUEST => {
                if let Some(mut req) = open::<SigningRequest>(env) {
                    if adopt {
                        req.session = SESSION;
                    }
                    self.signing().signing_request(&req);
                }
            }
            kind::ROUND2 => {
                if let Some(mut r2) = open::<Round2>(env) {
                    if adopt {
                        r2.session = SESSION;
                    }
                    let member = r2.member;
                    let s = self.signing();
                    if s.coordinator.add_share(r2).is_ok() {
                        s.junk_shares.insert(member);
                        s.try_aggregate();
                    }
                }
            }
            kind::REPAIR_REQUEST => {
                if let Some(req) = open::<RepairRequest>(env) {
                    repair_request(req);
                }
            }
            kind::REPAIR_DELTA => {
                if let Some(mut d) = open::<RepairDelta>(env) {
                    if adopt {
                        d.session = SESSION;
                    }
                    let helper = &mut self.repairing().helper;
                    if helper.add_delta(d).is_ok() {
                        // Complete: the sigma can be made (its value is
                        // whatever the junk delta makes it).
                        helper
                            .sigma()
                            .unwrap_or_else(|e| panic!("sigma after every delta: {e}"));
                    }
                }
            }
            kind::REPAIR_SIGMA => {
                if let Some(mut s) = open::<RepairSigma>(env) {
                    if adopt {
                        s.session = SESSION;
                        s.circle_id = circle().circle_id;
                        s.generation = 0;
                    }
                    let from = s.from;
                    let r = self.repairing();
                    if r.target.add_sigma(s).is_ok() {
                        r.junk_sigmas.insert(from);
                        r.try_finish();
                    }
                }
            }
            kind::CEREMONY_REQUEST => {
                if let Some(req) = open::<CeremonyRequest>(env) {
                    ceremony_request(req, adopt);
                }
            }
            kind::REFUSED => {
                let _ = open::<CircleRefused>(env);
            }
            kind::RECOVERY_REQUEST => {
                if let Some(req) = open::<RecoveryRequest>(env) {
                    recovery_request(req, adopt);
                }
            }
            kind::RECOVERY_PENDING => {
                if let Some(p) = open::<RecoveryPending>(env) {
                    assert!(p.public.is_member(p.member));
                    let again = cyrcles_core::circle::CirclePublic::from_cbor(&p.public.to_cbor());
                    assert!(again.is_ok_and(|q| q.group_key() == p.public.group_key()));
                }
            }
            kind::REPAIR_KEYS => {
                if let Some(keys) = open::<RepairKeys>(env) {
                    repair_keys(&keys);
                }
            }
            kind::REPAIR_SEALED => {
                if let Some(bundle) = open::<RepairSealed>(env) {
                    repair_sealed(&bundle);
                }
            }
            _ => {}
        }
    }
}

impl Signing {
    fn round1(&mut self, r1: Round1) {
        if self.coordinator.add_commitments(r1).is_err() || !self.coordinator.has_quorum() {
            return;
        }
        let req = self
            .coordinator
            .request()
            .unwrap_or_else(|e| panic!("request with a quorum: {e}"));
        // Member 1 signs at once, as an honest participant does (it may
        // refuse a request with a strange commitment: that is its right).
        if let Some(nonces) = self.member1.take()
            && let Ok(r2) = nonces.sign(share(1), &req)
        {
            self.coordinator
                .add_share(r2)
                .unwrap_or_else(|e| panic!("member 1's share refused: {e}"));
        }
        self.try_aggregate();
    }

    fn try_aggregate(&self) {
        if !self.coordinator.missing().is_empty() {
            return;
        }
        match self.coordinator.aggregate() {
            Ok(sig) => {
                let group = circle().dealing.public.group_key();
                assert!(
                    group.verify(Context::EgoCert, BODY, &sig).is_ok(),
                    "aggregate does not verify"
                );
            }
            Err(CircleError::Cheaters(named)) => {
                assert!(!named.is_empty());
                for c in &named {
                    assert!(
                        self.junk_shares.contains(c),
                        "honest member {c} named a cheater"
                    );
                }
            }
            Err(_) => {}
        }
    }

    fn signing_request(&mut self, req: &SigningRequest) {
        let Some((nonces, r1)) = self.participant.take() else {
            return;
        };
        if let Ok(r2) = nonces.sign(share(2), req) {
            assert_eq!(r2.member, m(2));
            assert_eq!(r2.session, SESSION);
            assert_eq!(req.session, SESSION);
            let public = &circle().dealing.public;
            assert!(req.commitments.len() >= public.threshold());
            assert!(req.commitments.keys().all(|k| public.is_member(*k)));
            assert_eq!(
                req.commitments.get(&m(2)),
                Some(&r1.commitments),
                "member 2 signed under commitments that are not its own"
            );
        }
    }

    /// After the junk, the honest members complete the signing if they can.
    fn finish(mut self) {
        // Without a quorum, nothing but member 1's honest commitment is in
        // the session: member 2 commits and both sign, which must succeed.
        if !self.coordinator.has_quorum()
            && let Some((n2, r1)) = self.participant.take()
            && let Some(n1) = self.member1.take()
        {
            self.coordinator
                .add_commitments(r1)
                .unwrap_or_else(|e| panic!("honest commitment refused after junk: {e}"));
            let req = self
                .coordinator
                .request()
                .unwrap_or_else(|e| panic!("request with a quorum: {e}"));
            for (n, nonces) in [(1, n1), (2, n2)] {
                let r2 = nonces
                    .sign(share(n), &req)
                    .unwrap_or_else(|e| panic!("honest member {n} refused: {e}"));
                self.coordinator
                    .add_share(r2)
                    .unwrap_or_else(|e| panic!("honest share {n} refused: {e}"));
            }
            let sig = self
                .coordinator
                .aggregate()
                .unwrap_or_else(|e| panic!("honest signing failed after junk: {e}"));
            let group = circle().dealing.public.group_key();
            assert!(group.verify(Context::EgoCert, BODY, &sig).is_ok());
        }
    }
}

impl Repairing {
    fn try_finish(&self) {
        if let Ok(s) = self.target.finish() {
            assert_eq!(
                s.ack(),
                share(3).ack(),
                "repaired a share that is not member 3's"
            );
        }
    }

    /// After the junk, unless a frame's sigma took helper 2's place, its
    /// honest sigma completes the repair of member 3's real share.
    fn finish(self) {
        if !self.junk_sigmas.contains(&m(2)) {
            let mut target = self.target;
            target
                .add_sigma(repair().sigma[1].clone())
                .unwrap_or_else(|e| panic!("honest sigma refused after junk: {e}"));
            let s = target
                .finish()
                .unwrap_or_else(|e| panic!("honest repair failed: {e}"));
            assert_eq!(s.ack(), share(3).ack());
        }
    }
}

fn repair_request(req: RepairRequest) {
    let Ok(h) = RepairHelper::new(share(1).clone(), req.clone()) else {
        return;
    };
    let public = &circle().dealing.public;
    assert_eq!(req.circle_id, circle().circle_id);
    assert!(req.helpers.contains(&m(1)) && !req.helpers.contains(&req.target));
    assert!(req.helpers.len() >= public.threshold());
    assert_eq!(
        req.helpers.iter().collect::<BTreeSet<_>>().len(),
        req.helpers.len()
    );
    let deltas = h
        .deltas(&mut rng(4))
        .unwrap_or_else(|e| panic!("deltas: {e}"));
    assert_eq!(deltas.len(), req.helpers.len());
}

fn repair_keys(keys: &RepairKeys) {
    let mut r = rng(4);
    for (member, k) in keys.keys.iter().take(4) {
        let aad = repair_aad(b"delta", keys.session, m(1), *member);
        if let Ok(sealed) = seal(k, &aad, b"a delta", &mut r) {
            // Only the holder of the key opens it: not this fixture.
            if *k != seal_key().public() {
                assert!(seal_key().open(&aad, &sealed).is_err());
            }
        }
    }
    // Sealed to the fixture, it opens, and only with its own data.
    let aad = repair_aad(b"sigma", keys.session, m(2), m(1));
    let plain = keys.to_cbor();
    let sealed =
        seal(&seal_key().public(), &aad, &plain, &mut r).unwrap_or_else(|e| panic!("seal: {e}"));
    let opened = seal_key()
        .open(&aad, &sealed)
        .unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(opened.as_slice(), plain.as_slice());
    let other = repair_aad(b"delta", keys.session, m(2), m(1));
    assert!(seal_key().open(&other, &sealed).is_err());
}

/// Opens a body under the protocol cap; canonical or refused.
fn open<T: Decode + Encode>(env: &Envelope) -> Option<T> {
    let t = env.open::<T>(MAX_CIRCLE_MESSAGE_SIZE).ok()?;
    assert_eq!(
        t.to_cbor(),
        env.body,
        "non-canonical message of kind {} accepted",
        env.kind
    );
    Some(t)
}

fn dealt_share(d: DealtShare, body: &[u8]) {
    assert_eq!(d.to_secret_cbor().as_slice(), body);
    if let Ok(s) = MemberShare::accept(d) {
        assert!(
            s.public().check_ack(&s.ack()).is_ok(),
            "a share that does not match itself"
        );
        assert!(MemberShare::from_secret_cbor(body).is_ok());
    }
}

/// What `check_ack` binds: the member's verifying share and the digest of
/// the commitment (finding F3 in docs/security.md: not the circle id or
/// the generation, which the agent must compare itself).
fn share_ack(ack: &ShareAck) {
    if circle().dealing.public.check_ack(ack).is_ok() {
        let real = share(ack.member.get()).ack();
        assert_eq!(
            (ack.verifying_share, ack.commitment_digest),
            (real.verifying_share, real.commitment_digest),
            "the dealer took a wrong acknowledgement"
        );
    }
}

/// The member's clock: the request's own time when plausible.
fn member_now(t: UnixTime) -> UnixTime {
    if t.secs().abs_diff(NOW) <= 2 * 86_400 {
        t
    } else {
        UnixTime::from_secs(NOW)
    }
}

fn ceremony_request(mut req: CeremonyRequest, adopt: bool) {
    let e = ego();
    let policy = SigningPolicy::default();
    let now = member_now(req.body.issued_at);
    if adopt {
        req.body.ego_id = e.verified.ego_id();
        req.body.circle_id = circle().circle_id;
        req.body.generation = 0;
        req = req.body.sign(&e.new.ego);
    }
    let got = authorize(&req, &e.verified, share(1), None, now, &policy);
    let Ok(bytes) = got else {
        return;
    };
    assert_eq!(
        req.clone().body.sign(&e.new.ego).sig,
        req.sig,
        "authorized a request the owner did not sign"
    );
    assert_eq!(bytes, req.body.purpose.signing_bytes());
    let cert = e.verified.cert();
    let revocation = match &req.body.purpose {
        Purpose::Certify(next) => {
            assert_eq!(next.ego_id, e.verified.ego_id());
            assert_eq!(next.seq, cert.seq + 1);
            assert_eq!(next.circle_index, cert.circle_index);
            assert!(next.not_before < next.not_after || next.status == CertStatus::Revoked);
            next.status == CertStatus::Revoked
        }
        Purpose::Link(link) => {
            assert_eq!(link.index, e.verified.record().chain.len() as u64 + 1);
            assert_ne!(link.circle_pk, e.verified.circle_key());
            false
        }
        Purpose::Enter { link, cert: next } => {
            assert_eq!(link.body.index, e.verified.record().chain.len() as u64 + 1);
            assert_eq!(next.seq, cert.seq + 1);
            assert_eq!(next.ego_pk, cert.ego_pk);
            assert_eq!(next.circle_index, link.body.index);
            false
        }
    };
    // Signed a moment ago: only a revocation passes the rate limit.
    let again = authorize(&req, &e.verified, share(1), Some(now), now, &policy);
    assert_eq!(again.is_ok(), revocation, "rate limit: {again:?}");
}

fn recovery_request(mut req: RecoveryRequest, adopt: bool) {
    let e = ego();
    let policy = SigningPolicy::default();
    let now = member_now(req.body.issued_at);
    let new_key = key(9);
    if adopt {
        req.body.ego_id = e.verified.ego_id();
        req.body.cert.ego_id = e.verified.ego_id();
        req.body.cert.ego_pk = new_key.public();
        req = req.body.sign(&new_key);
        assert!(req.check_possession().is_ok());
    }
    let possession = req.check_possession();
    let got = authorize_recovery(&req, &e.verified, share(1), now, &policy);
    if possession.is_err() {
        assert_eq!(got.err(), possession.err());
        return;
    }
    let Ok(bytes) = got else {
        return;
    };
    let next: &EgoCert = &req.body.cert;
    assert_eq!(bytes, Context::EgoCert.signing_bytes(&next.to_cbor()));
    let cert = e.verified.cert();
    assert_eq!(next.ego_id, e.verified.ego_id());
    assert_eq!(next.seq, cert.seq + 1);
    assert_eq!(next.status, CertStatus::Active);
    assert_ne!(next.ego_pk, cert.ego_pk);
    assert!(next.not_before < next.not_after);
    assert!(next.not_after.since(next.not_before) <= policy.max_cert_validity);
    // Any change after signing loses the proof of possession.
    let mut altered = req.clone();
    altered.body.session.0[0] ^= 1;
    assert!(altered.check_possession().is_err());
}

fn repair_sealed(bundle: &RepairSealed) {
    for (from, sealed) in bundle.items.iter().take(4) {
        let aad = repair_aad(b"delta", bundle.session, *from, bundle.member);
        let Ok(plain) = seal_key().open(&aad, sealed) else {
            continue;
        };
        // It was sealed to us with this data: any change to it, or other
        // data, and it does not open.
        for i in [0, sealed.len() / 2, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                seal_key().open(&aad, &bad).is_err(),
                "an altered item opened"
            );
        }
        let other = repair_aad(b"sigma", bundle.session, *from, bundle.member);
        assert!(
            seal_key().open(&other, sealed).is_err(),
            "opened under other data"
        );
        if let Ok(d) = RepairDelta::from_cbor(&plain, MAX_CIRCLE_MESSAGE_SIZE) {
            assert_eq!(d.to_cbor(), plain.as_slice());
        }
    }
}

fuzz_target!(
    init: cyrcles_fuzz::write_seeds("circle", cyrcles_fuzz::seeds::circle_seeds),
    |data: &[u8]| {
    let mut live = Live::default();
    for (flags, frame) in frames(data, 12) {
        live.frame(flags, frame);
    }
    if let Some(s) = live.signing {
        s.finish();
    }
    if let Some(r) = live.repairing {
        r.finish();
    }
    }
);
