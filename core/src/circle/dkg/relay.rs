//! The owner's agent's two messages to the participants of a DKG
//! (protocol section 9.4): `dkg-start`, which names the run and is signed
//! by the owner's current ego key, and `dkg-relay`, which carries the other
//! participants' messages of one step, as they sent them (each is signed by
//! its sender, so the relay can neither forge nor alter one).
//!
//! ```cddl
//! dkg-start = {
//!   0: 1,                          ; version
//!   1: ego-id,                     ; whose circle key
//!   2: bstr .size 16,              ; circle id
//!   3: uint,                       ; generation (the index of the link to come)
//!   4: bstr .size 16,              ; session
//!   5: uint,                       ; threshold t, 2..=n
//!   6: [2*64 [uint, ego-id]],      ; (member, ego id), members 1..=n in order
//!   7: time,                       ; issued_at
//!   8: signature,                  ; by the owner's ego key over
//!                                  ; "cyrcles/v1/dkg-start" || 0x00 || encode(keys 0..7)
//! }
//! dkg-relay = {
//!   0: 1,
//!   1: bstr .size 16,              ; session
//!   2: 1 / 2 / 3,                  ; step: round 1, round 2, confirmations
//!   3: [0*63 bstr],                ; the other participants' encoded messages
//! }
//! ```

use std::collections::BTreeSet;

use super::{DkgError, DkgParams, MAX_DKG_ROUND1_SIZE, MAX_DKG_ROUND2_SIZE};
use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::circle::messages::{
    CIRCLE_VERSION, CircleId, MAX_CIRCLE_MESSAGE_SIZE, MAX_MEMBERS, MemberId, SessionId, version,
};
use crate::id::EgoId;
use crate::keys::{Context, PublicKey, SecretKey, Signature, SignatureError};
use crate::time::UnixTime;

/// Cap on an encoded [`DkgStart`] (64 participants are 2.4 KiB).
pub const MAX_DKG_START_SIZE: usize = 4096;
/// Cap on an encoded [`DkgRelay`]: it must fit one circle message. The
/// owner's agent splits a step into several relays when its messages do
/// not fit one (a large circle's round 2).
pub const MAX_DKG_RELAY_SIZE: usize = MAX_CIRCLE_MESSAGE_SIZE;
/// Cap on one message inside a relay: the largest DKG message.
pub const MAX_RELAYED_MESSAGE: usize = if MAX_DKG_ROUND2_SIZE > MAX_DKG_ROUND1_SIZE {
    MAX_DKG_ROUND2_SIZE
} else {
    MAX_DKG_ROUND1_SIZE
};

/// The fields of a `dkg-start`, before the owner signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgStartBody {
    /// The ego whose new circle key this is (the owner).
    pub ego_id: EgoId,
    /// The circle.
    pub circle_id: CircleId,
    /// The index of the link that will introduce the key.
    pub generation: u64,
    /// The run.
    pub session: SessionId,
    /// Signers needed, 2..=n.
    pub threshold: u16,
    /// The participants: members 1..=n in order, each with its ego id
    /// (whose current record gives the key its messages are signed with).
    pub participants: Vec<(MemberId, EgoId)>,
    /// When the owner's agent started the run.
    pub issued_at: UnixTime,
}

impl DkgStartBody {
    fn encode_fields(&self, e: &mut Encoder) {
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(self.ego_id.as_bytes());
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.uint(self.generation);
        e.key(4);
        e.bytes(&self.session.0);
        e.key(5);
        e.uint(u64::from(self.threshold));
        e.key(6);
        e.array(self.participants.len());
        for (m, ego) in &self.participants {
            e.array(2);
            m.encode(e);
            e.bytes(ego.as_bytes());
        }
        e.key(7);
        e.uint(self.issued_at.secs());
    }

    /// The signed bytes: `encode(keys 0..7)`.
    pub fn unsigned_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(8);
        self.encode_fields(&mut e);
        e.into_bytes()
    }

    /// Signs with the owner's current ego key.
    pub fn sign(self, ego_key: &SecretKey) -> DkgStart {
        let sig = ego_key.sign(Context::DkgStart, &self.unsigned_bytes());
        DkgStart { body: self, sig }
    }

    /// The member the ego `ego` is in this run, if it is a participant.
    pub fn member_of(&self, ego: &EgoId) -> Option<MemberId> {
        self.participants
            .iter()
            .find(|(_, e)| e == ego)
            .map(|(m, _)| *m)
    }

    /// The run's [`DkgParams`], given each participant's current ego key
    /// in member order (looked up by the caller from their records).
    pub fn params(&self, keys: &[PublicKey]) -> Result<DkgParams, DkgError> {
        if keys.len() != self.participants.len() {
            return Err(DkgError::Parameters("one ego key per participant"));
        }
        let params = DkgParams {
            ego_id: self.ego_id,
            circle_id: self.circle_id,
            generation: self.generation,
            session: self.session,
            threshold: self.threshold,
            participants: self
                .participants
                .iter()
                .map(|(m, _)| *m)
                .zip(keys.iter().copied())
                .collect(),
        };
        params.check()?;
        Ok(params)
    }
}

/// The owner's signed start of a DKG, sent to each participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgStart {
    /// The fields.
    pub body: DkgStartBody,
    /// By the owner's current ego key (context `cyrcles/v1/dkg-start`).
    pub sig: Signature,
}

impl DkgStart {
    /// Whether the owner's ego key `key` signed it.
    pub fn verify(&self, key: &PublicKey) -> Result<(), SignatureError> {
        key.verify(Context::DkgStart, &self.body.unsigned_bytes(), &self.sig)
    }

    /// Decodes one from the wire, within [`MAX_DKG_START_SIZE`].
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_cbor(bytes, MAX_DKG_START_SIZE)
    }
}

impl Encode for DkgStart {
    fn encode(&self, e: &mut Encoder) {
        e.map(9);
        self.body.encode_fields(e);
        e.key(8);
        self.sig.encode(e);
    }
}

impl Decode for DkgStart {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("dkg start")?;
        version(d, &mut m)?;
        m.expect_len(9)?;
        m.key(d, 1)?;
        let ego_id = EgoId::from_bytes(d.bytes_fixed::<32>("ego_id")?);
        m.key(d, 2)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 3)?;
        let generation = d.uint()?;
        m.key(d, 4)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 5)?;
        let threshold = u16::try_from(d.uint_max("threshold", u64::from(MAX_MEMBERS))?)
            .map_err(|_| DecodeError::OutOfRange { what: "threshold" })?;
        m.key(d, 6)?;
        let n = d.array("participants", usize::from(MAX_MEMBERS))?;
        if n < 2 || usize::from(threshold) > n || threshold < 2 {
            return Err(DecodeError::OutOfRange {
                what: "participants",
            });
        }
        let mut participants = Vec::with_capacity(n);
        let mut egos = BTreeSet::new();
        for i in 1..=n {
            d.array_exact("participant", 2)?;
            let member = MemberId::decode(d)?;
            let ego = EgoId::from_bytes(d.bytes_fixed::<32>("participant ego_id")?);
            if usize::from(member.get()) != i {
                return Err(DecodeError::OutOfRange {
                    what: "participants (members 1..=n in order)",
                });
            }
            if ego == ego_id || !egos.insert(ego) {
                return Err(DecodeError::OutOfRange {
                    what: "participants (distinct friends)",
                });
            }
            participants.push((member, ego));
        }
        m.key(d, 7)?;
        let issued_at = UnixTime::from_secs(d.uint()?);
        m.key(d, 8)?;
        let sig = Signature::decode(d)?;
        Ok(Self {
            body: DkgStartBody {
                ego_id,
                circle_id,
                generation,
                session,
                threshold,
                participants,
                issued_at,
            },
            sig,
        })
    }
}

/// Which messages a [`DkgRelay`] carries, and what its recipient answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DkgStep {
    /// The others' round-1 messages; answered with a `DkgRound2`.
    Round1 = 1,
    /// The others' round-2 bundles; answered with a `DkgConfirm`.
    Round2 = 2,
    /// The others' confirmations; answered with a `share-ack`.
    Confirm = 3,
}

impl DkgStep {
    fn code(self) -> u64 {
        self as u64
    }

    fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(Self::Round1),
            2 => Some(Self::Round2),
            3 => Some(Self::Confirm),
            _ => None,
        }
    }
}

/// The relayed messages of one step, owner → one participant. A relay
/// that leaves the step incomplete (the step was split to fit) is
/// answered with an empty relay of the same session and step ("more").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgRelay {
    /// The run.
    pub session: SessionId,
    /// The step.
    pub step: DkgStep,
    /// The other participants' messages, each as its sender encoded it.
    pub messages: Vec<Vec<u8>>,
}

impl DkgRelay {
    /// Decodes one from the wire, within [`MAX_DKG_RELAY_SIZE`].
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_cbor(bytes, MAX_DKG_RELAY_SIZE)
    }

    /// Splits `messages` into relays that each fit [`MAX_DKG_RELAY_SIZE`]
    /// (at least one, possibly empty).
    pub fn split(session: SessionId, step: DkgStep, messages: Vec<Vec<u8>>) -> Vec<Self> {
        // Map header, session, step and array header; each message's
        // byte-string header is at most 3 bytes below 64 KiB.
        const HEADER: usize = 1 + 2 + 17 + 2 + 1 + 3;
        let mut out = Vec::new();
        let mut current = Vec::new();
        let mut size = HEADER;
        for m in messages {
            let len = m.len() + 3;
            if !current.is_empty()
                && (size + len > MAX_DKG_RELAY_SIZE
                    || current.len() == usize::from(MAX_MEMBERS - 1))
            {
                out.push(Self {
                    session,
                    step,
                    messages: std::mem::take(&mut current),
                });
                size = HEADER;
            }
            size += len;
            current.push(m);
        }
        out.push(Self {
            session,
            step,
            messages: current,
        });
        out
    }
}

impl Encode for DkgRelay {
    fn encode(&self, e: &mut Encoder) {
        e.map(4);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&self.session.0);
        e.key(2);
        e.uint(self.step.code());
        e.key(3);
        e.array(self.messages.len());
        for m in &self.messages {
            e.bytes(m);
        }
    }
}

impl Decode for DkgRelay {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("dkg relay")?;
        version(d, &mut m)?;
        m.expect_len(4)?;
        m.key(d, 1)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 2)?;
        let code = d.uint()?;
        let step = DkgStep::from_code(code).ok_or(DecodeError::UnknownValue {
            what: "dkg step",
            value: code,
        })?;
        m.key(d, 3)?;
        let n = d.array("relayed messages", usize::from(MAX_MEMBERS - 1))?;
        let mut messages = Vec::with_capacity(n);
        for _ in 0..n {
            messages.push(
                d.bytes_in("relayed message", 1, MAX_RELAYED_MESSAGE)?
                    .to_vec(),
            );
        }
        Ok(Self {
            session,
            step,
            messages,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    fn key(seed: u64) -> SecretKey {
        SecretKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
    }

    fn body(n: u16) -> DkgStartBody {
        DkgStartBody {
            ego_id: EgoId::from_bytes([1; 32]),
            circle_id: CircleId([2; 16]),
            generation: 3,
            session: SessionId([4; 16]),
            threshold: 2,
            participants: (1..=n)
                .map(|i| {
                    let mut b = [0x40; 32];
                    b[..2].copy_from_slice(&i.to_be_bytes());
                    (MemberId::new(i).unwrap(), EgoId::from_bytes(b))
                })
                .collect(),
            issued_at: UnixTime::from_secs(1_767_225_600),
        }
    }

    #[test]
    fn a_start_round_trips_and_verifies_under_the_owner_s_key_only() {
        let owner = key(1);
        let other = key(2);
        let start = body(64).sign(&owner);
        let bytes = start.to_cbor();
        assert!(bytes.len() <= MAX_DKG_START_SIZE);
        let back = DkgStart::decode_bytes(&bytes).unwrap();
        assert_eq!(back, start);
        assert!(back.verify(&owner.public()).is_ok());
        assert!(back.verify(&other.public()).is_err());
        let mut changed = back.clone();
        changed.body.threshold = 3;
        assert!(changed.verify(&owner.public()).is_err());
        assert_eq!(
            back.body.member_of(&back.body.participants[4].1),
            MemberId::new(5)
        );
        assert_eq!(back.body.member_of(&back.body.ego_id), None);
    }

    #[test]
    fn a_start_with_bad_participants_or_threshold_does_not_decode() {
        let owner = key(1);
        let refused = |b: DkgStartBody| DkgStart::decode_bytes(&b.sign(&owner).to_cbor()).is_err();
        let mut b = body(3);
        b.participants.swap(0, 1);
        assert!(refused(b), "members out of order");
        let mut b = body(3);
        b.participants[2].1 = b.participants[0].1;
        assert!(refused(b), "one friend twice");
        let mut b = body(3);
        b.participants[1].1 = b.ego_id;
        assert!(refused(b), "the owner among the participants");
        let mut b = body(3);
        b.threshold = 4;
        assert!(refused(b), "threshold above n");
        let mut b = body(3);
        b.threshold = 1;
        assert!(refused(b), "threshold below 2");
        assert!(refused(body(1)), "one participant");
    }

    #[test]
    fn params_need_one_valid_distinct_key_per_participant() {
        let b = body(3);
        let keys: Vec<PublicKey> = (10..13).map(|s| key(s).public()).collect();
        let p = b.params(&keys).unwrap();
        assert_eq!(p.participants[2].1, keys[2]);
        assert!(b.params(&keys[..2]).is_err());
        assert!(b.params(&[keys[0], keys[0], keys[1]]).is_err());
    }

    #[test]
    fn a_relay_round_trips_and_splits_to_fit() {
        let r = DkgRelay {
            session: SessionId([9; 16]),
            step: DkgStep::Round2,
            messages: vec![vec![1; 10], vec![2; 4000]],
        };
        assert_eq!(DkgRelay::decode_bytes(&r.to_cbor()).unwrap(), r);
        let big: Vec<Vec<u8>> = (0..63).map(|i| vec![i; 5300]).collect();
        let parts = DkgRelay::split(SessionId([9; 16]), DkgStep::Round2, big.clone());
        assert!(parts.len() > 1);
        let mut all = Vec::new();
        for p in &parts {
            let bytes = p.to_cbor();
            assert!(bytes.len() <= MAX_DKG_RELAY_SIZE, "{}", bytes.len());
            all.extend(DkgRelay::decode_bytes(&bytes).unwrap().messages);
        }
        assert_eq!(all, big);
        let empty = DkgRelay::split(SessionId([9; 16]), DkgStep::Confirm, Vec::new());
        assert_eq!(empty.len(), 1);
        assert!(empty[0].messages.is_empty());
    }

    #[test]
    fn garbage_relays_do_not_decode() {
        let ok = DkgRelay {
            session: SessionId([9; 16]),
            step: DkgStep::Round1,
            messages: vec![vec![1; 10]],
        };
        let mut e = Encoder::new();
        e.map(4);
        e.key(0);
        e.uint(CIRCLE_VERSION);
        e.key(1);
        e.bytes(&[9; 16]);
        e.key(2);
        e.uint(4);
        e.key(3);
        e.array(0);
        assert!(DkgRelay::decode_bytes(&e.into_bytes()).is_err(), "step 4");
        let too_many = DkgRelay {
            messages: vec![vec![1]; 64],
            ..ok.clone()
        };
        assert!(DkgRelay::decode_bytes(&too_many.to_cbor()).is_err());
        let empty_item = DkgRelay {
            messages: vec![Vec::new()],
            ..ok.clone()
        };
        assert!(DkgRelay::decode_bytes(&empty_item.to_cbor()).is_err());
        let too_long = DkgRelay {
            messages: vec![vec![0; MAX_RELAYED_MESSAGE + 1]],
            ..ok.clone()
        };
        assert!(DkgRelay::decode_bytes(&too_long.to_cbor()).is_err());
        for cut in 0..ok.to_cbor().len() {
            assert!(DkgRelay::decode_bytes(&ok.to_cbor()[..cut]).is_err());
        }
        let start = body(3).sign(&key(3)).to_cbor();
        for cut in 0..start.len() {
            assert!(DkgStart::decode_bytes(&start[..cut]).is_err());
        }
        assert!(DkgStart::decode_bytes(&ok.to_cbor()).is_err());
        assert!(DkgRelay::decode_bytes(&start).is_err());
    }
}
