//! Recovery after a lost device (DESIGN.md, flow 6): the owner's new
//! device asks the circle to certify a new ego key. Nothing the lost
//! device held is needed; the friends' humans approve instead.
//!
//! The new device signs its [`RecoveryRequest`] with the new ego key
//! (proof of possession). Each member's agent queues it for its human
//! and answers [`RecoveryPending`] (its member id and the circle's public
//! data, so the new device can coordinate). Once the human approved,
//! the member checks the request against the ego's current record
//! ([`authorize_recovery`]) and answers with its FROST commitments; the
//! second round is the ordinary one. The aggregate is the certificate's
//! signature by the circle key, with the epoch raised by one: it wins over
//! every certificate of the lost key's epoch (a thief's rotations
//! included), and the old ego key is dead from then on.
//!
//! ```cddl
//! recovery-request = {
//!   0: 1,                    ; version
//!   1: ego-id,
//!   2: bstr .size (1..64),   ; the new device's peer id
//!   3: bstr,                 ; encode(ego-cert): the certificate asked
//!   4: time,                 ; issued_at
//!   5: bstr .size 16,        ; session id of this attempt
//!   6: signature,            ; by the new ego key (ego-cert key 3) over
//!                            ; "cyrcles/v1/recovery-request" || 0x00 || encode(keys 0..5)
//! }
//! recovery-pending = { 0: 1, 1: member-id, 2: bstr .size 16, ; circle id
//!                      3: circle-public }
//! recovery-notice = { 0: 1, 1: bstr .size (1..1024) } ; encode(recovery-request)
//! recovery-noticed = { 0: 1 }
//! ```
//!
//! A member that queues a new request also tells the nodes the ego's
//! current record names, from its own node, with a [`RecoveryNotice`]:
//! the request as it received it, which the old device verifies itself.
//! A modified new device cannot skip that warning.

use sha2::{Digest, Sha256};

use super::dealer::{CirclePublic, MemberShare};
use super::messages::{CircleId, MemberId, SessionId};
use super::request::{MAX_BODY_LEN, REQUEST_VERSION, Refusal, SigningPolicy, max_validity};
use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;
use crate::keys::{Context, PublicKey, SecretKey, Signature};
use crate::record::{CertStatus, EgoCert, SignedBody, VerifiedEgo};
use crate::time::{CLOCK_SKEW_SECS, UnixTime};

/// Longest peer id carried (libp2p Ed25519 peer ids are 38 bytes).
pub const MAX_PEER_ID_LEN: usize = 64;
/// Longest encoded circle public data carried.
pub const MAX_PUBLIC_LEN: usize = 8 * 1024;

/// The fields of a recovery request, before the new key signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryBody {
    /// The ego to recover.
    pub ego_id: EgoId,
    /// The new device's peer id (the sender must be this peer).
    pub peer_id: Vec<u8>,
    /// The certificate asked for the new ego key.
    pub cert: EgoCert,
    /// When the new device asked.
    pub issued_at: UnixTime,
    /// This attempt's signing session.
    pub session: SessionId,
}

impl RecoveryBody {
    fn encode_fields(&self, e: &mut Encoder) {
        e.key(0);
        e.uint(REQUEST_VERSION);
        e.key(1);
        e.bytes(self.ego_id.as_bytes());
        e.key(2);
        e.bytes(&self.peer_id);
        e.key(3);
        e.bytes(&self.cert.to_cbor());
        e.key(4);
        e.uint(self.issued_at.secs());
        e.key(5);
        e.bytes(&self.session.0);
    }

    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(6);
        self.encode_fields(&mut e);
        e.into_bytes()
    }

    /// Signs with the new ego key, which must be the one `cert` names.
    pub fn sign(self, new_key: &SecretKey) -> RecoveryRequest {
        let sig = new_key.sign(Context::RecoveryRequest, &self.unsigned_bytes());
        RecoveryRequest { body: self, sig }
    }
}

/// A new device's request to certify its ego key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRequest {
    /// The fields.
    pub body: RecoveryBody,
    /// By the new ego key.
    pub sig: Signature,
}

impl RecoveryRequest {
    /// The new ego key.
    pub fn new_key(&self) -> PublicKey {
        self.body.cert.ego_pk
    }

    /// Checks the proof of possession: the body is signed by the key its
    /// certificate names, for the ego it names. Cheap; done before any
    /// other work.
    pub fn check_possession(&self) -> Result<(), Refusal> {
        if self.body.cert.ego_id != self.body.ego_id {
            return Err(Refusal::WrongEgo);
        }
        self.body
            .cert
            .ego_pk
            .verify(
                Context::RecoveryRequest,
                &self.body.unsigned_bytes(),
                &self.sig,
            )
            .map_err(|_| Refusal::BadSignature)
    }

    /// Six digits both people compare (by phone) before the friend
    /// approves: derived from the ego, the new key and the new device.
    pub fn fingerprint(&self) -> String {
        recovery_fingerprint(&self.body.ego_id, &self.new_key(), &self.body.peer_id)
    }
}

/// The six digits of [`RecoveryRequest::fingerprint`].
pub fn recovery_fingerprint(ego: &EgoId, new_key: &PublicKey, peer_id: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"cyrcles/v1/recovery-fingerprint\0");
    h.update(ego.as_bytes());
    h.update(new_key.as_bytes());
    h.update(peer_id);
    crate::invite::six_digits(&h.finalize().into())
}

impl Encode for RecoveryRequest {
    fn encode(&self, e: &mut Encoder) {
        e.map(7);
        self.body.encode_fields(e);
        e.key(6);
        self.sig.encode(e);
    }
}

impl Decode for RecoveryRequest {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("recovery request")?;
        m.key(d, 0)?;
        match d.uint()? {
            REQUEST_VERSION => {}
            v => return Err(DecodeError::UnknownVersion(v)),
        }
        m.expect_len(7)?;
        m.key(d, 1)?;
        let ego_id = EgoId::from_bytes(d.bytes_fixed::<32>("ego_id")?);
        m.key(d, 2)?;
        let peer_id = d.bytes_in("peer_id", 1, MAX_PEER_ID_LEN)?.to_vec();
        m.key(d, 3)?;
        let cert = EgoCert::from_cbor(d.bytes_in("cert", 1, MAX_BODY_LEN)?, MAX_BODY_LEN)?;
        m.key(d, 4)?;
        let issued_at = UnixTime::from_secs(d.uint()?);
        m.key(d, 5)?;
        let session = SessionId(d.bytes_fixed::<16>("session")?);
        m.key(d, 6)?;
        let sig = Signature::decode(d)?;
        Ok(Self {
            body: RecoveryBody {
                ego_id,
                peer_id,
                cert,
                issued_at,
                session,
            },
            sig,
        })
    }
}

/// A member's answer while it does not sign yet: who it is in the circle,
/// the circle's public data, and, once its human approved, how long the
/// recovery still waits (the member's recovery delay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPending {
    /// The member's id in the circle.
    pub member: MemberId,
    /// The circle's id (the owner keeps it to share the circle again).
    pub circle_id: CircleId,
    /// The circle's public data ([`CirclePublic::to_cbor`]).
    pub public: CirclePublic,
    /// Seconds until the member signs, its human having approved; 0 while
    /// the human has not decided (key 4, absent when 0).
    pub wait_secs: u64,
}

impl Encode for RecoveryPending {
    fn encode(&self, e: &mut Encoder) {
        e.map(if self.wait_secs == 0 { 4 } else { 5 });
        e.key(0);
        e.uint(REQUEST_VERSION);
        e.key(1);
        self.member.encode(e);
        e.key(2);
        e.bytes(&self.circle_id.0);
        e.key(3);
        e.bytes(&self.public.to_cbor());
        if self.wait_secs != 0 {
            e.key(4);
            e.uint(self.wait_secs);
        }
    }
}

impl Decode for RecoveryPending {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("recovery pending")?;
        m.key(d, 0)?;
        match d.uint()? {
            REQUEST_VERSION => {}
            v => return Err(DecodeError::UnknownVersion(v)),
        }
        // Key 4 (wait_secs) is present only when not 0.
        let waiting = m.len() == 5;
        if !waiting {
            m.expect_len(4)?;
        }
        m.key(d, 1)?;
        let member = MemberId::decode(d)?;
        m.key(d, 2)?;
        let circle_id = CircleId(d.bytes_fixed::<16>("circle_id")?);
        m.key(d, 3)?;
        let public = CirclePublic::from_cbor(d.bytes_in("circle public", 1, MAX_PUBLIC_LEN)?)?;
        if !public.is_member(member) {
            return Err(DecodeError::OutOfRange { what: "member" });
        }
        let wait_secs = if waiting {
            m.key(d, 4)?;
            match d.uint()? {
                0 => return Err(DecodeError::ExplicitDefault { what: "wait_secs" }),
                w => w,
            }
        } else {
            0
        };
        Ok(Self {
            member,
            circle_id,
            public,
            wait_secs,
        })
    }
}

/// Longest encoded recovery request a [`RecoveryNotice`] carries.
pub const MAX_NOTICE_REQUEST_LEN: usize = 1024;

/// A member tells the nodes of an ego's current record that a recovery
/// of that ego was asked: the request exactly as the member received it
/// (the encoding is canonical, so decoding and encoding again gives the
/// same bytes), which the receiver checks itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryNotice {
    /// The request the member received.
    pub request: RecoveryRequest,
}

impl Encode for RecoveryNotice {
    fn encode(&self, e: &mut Encoder) {
        e.map(2);
        e.key(0);
        e.uint(REQUEST_VERSION);
        e.key(1);
        e.bytes(&self.request.to_cbor());
    }
}

impl Decode for RecoveryNotice {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("recovery notice")?;
        m.key(d, 0)?;
        match d.uint()? {
            REQUEST_VERSION => {}
            v => return Err(DecodeError::UnknownVersion(v)),
        }
        m.expect_len(2)?;
        m.key(d, 1)?;
        let inner = d.bytes_in("recovery request", 1, MAX_NOTICE_REQUEST_LEN)?;
        let request = RecoveryRequest::from_cbor(inner, MAX_NOTICE_REQUEST_LEN)?;
        Ok(Self { request })
    }
}

/// The answer of a node that holds the ego a [`RecoveryNotice`] names:
/// it verified the request and told its person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryNoticed;

impl Encode for RecoveryNoticed {
    fn encode(&self, e: &mut Encoder) {
        e.map(1);
        e.key(0);
        e.uint(REQUEST_VERSION);
    }
}

impl Decode for RecoveryNoticed {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("recovery noticed")?;
        m.key(d, 0)?;
        match d.uint()? {
            REQUEST_VERSION => {}
            v => return Err(DecodeError::UnknownVersion(v)),
        }
        m.expect_len(1)?;
        Ok(Self)
    }
}

/// A member's check of an approved recovery request against the ego's
/// current record (verified, from the DHT), its share and its clock. On
/// success, the bytes to sign: the certificate's signing bytes.
///
/// Unlike [`super::authorize`], no rate limit applies (a human
/// approved). The ego must not be revoked, the new key must differ from
/// the current one, and the certificate must be the next one, starting
/// now, within the policy. The record itself must still verify, so a
/// recovery has to happen while the last certificate is valid (the DHT
/// drops expired records).
pub fn authorize_recovery(
    request: &RecoveryRequest,
    record: &VerifiedEgo,
    share: &MemberShare,
    now: UnixTime,
    policy: &SigningPolicy,
) -> Result<Vec<u8>, Refusal> {
    request.check_possession()?;
    let b = &request.body;
    if b.ego_id != record.ego_id() || share.ego_id() != b.ego_id {
        return Err(Refusal::WrongEgo);
    }
    if share.group_key() != record.circle_key() {
        return Err(Refusal::WrongCircle);
    }
    let current = record.cert();
    if current.status != CertStatus::Active {
        return Err(Refusal::CertNotValid);
    }
    if !b.issued_at.within(now, CLOCK_SKEW_SECS) {
        return Err(Refusal::Stale);
    }
    let next = &b.cert;
    // The epoch orders a recovery after every certificate of the current
    // epoch, so its seq is not compared: a thief rotating the lost key
    // while the members wait cannot make the request stale.
    if Some(next.epoch) != current.epoch.checked_add(1)
        || next.seq == 0
        || next.circle_index != current.circle_index
        || next.status != CertStatus::Active
        || next.ego_pk == current.ego_pk
    {
        return Err(Refusal::NotNext);
    }
    let starts_now = next.not_before.within(now, CLOCK_SKEW_SECS);
    let span = next.not_after.since(next.not_before);
    if !starts_now || span == 0 || span > max_validity(policy) {
        return Err(Refusal::BadValidity);
    }
    Ok(EgoCert::CONTEXT.signing_bytes(&next.to_cbor()))
}
