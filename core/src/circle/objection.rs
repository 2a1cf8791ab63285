//! An objection to a recovery (docs/circle-authority.md, P4): the device
//! that holds the ego's current key tells a member that it did not ask
//! for the recovery of a new key. The member's agent pauses its approval
//! of that recovery and shows its human both claims; the human decides.
//!
//! Whoever stole the device holds the current key too, so an objection
//! never decides anything by itself: a member keeps one objection per
//! recovery (ego and new key), and its human's decision after it is
//! final for that recovery. A thief can therefore stall a recovery once,
//! by one human's answer, never for ever.
//!
//! ```cddl
//! objection = {
//!   0: 1,                    ; version
//!   1: ego-id,
//!   2: public-key,           ; the new ego key of the recovery objected to
//!   3: time,                 ; issued_at
//!   4: signature,            ; by the record's current ego key over
//!                            ; "cyrcles/v1/objection" || 0x00 || encode(keys 0..3)
//! }
//! objection-noted = { 0: 1, 1: 0 / 1 / 2 / 3 }  ; see `Noted`
//! ```

use super::request::{REQUEST_VERSION, Refusal};
use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;
use crate::keys::{Context, PublicKey, SecretKey, Signature};
use crate::record::{CertStatus, VerifiedEgo};
use crate::time::{CLOCK_SKEW_SECS, UnixTime};

/// The fields of an objection, before the current ego key signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectionBody {
    /// The ego.
    pub ego_id: EgoId,
    /// The new key whose recovery the device did not ask for.
    pub new_key: PublicKey,
    /// When the device objected.
    pub issued_at: UnixTime,
}

impl ObjectionBody {
    fn encode_fields(&self, e: &mut Encoder) {
        e.key(0);
        e.uint(REQUEST_VERSION);
        e.key(1);
        e.bytes(self.ego_id.as_bytes());
        e.key(2);
        self.new_key.encode(e);
        e.key(3);
        e.uint(self.issued_at.secs());
    }

    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(4);
        self.encode_fields(&mut e);
        e.into_bytes()
    }

    /// Signs with the ego's current key (the objecting device).
    pub fn sign(self, ego: &SecretKey) -> Objection {
        let sig = ego.sign(Context::Objection, &self.unsigned_bytes());
        Objection { body: self, sig }
    }
}

/// A signed objection to the recovery of `body.new_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Objection {
    /// The fields.
    pub body: ObjectionBody,
    /// By the ego key the record certifies.
    pub sig: Signature,
}

impl Objection {
    /// A member's check against the ego's current record (verified, from
    /// the DHT) and its clock: the record is this ego's and not revoked,
    /// its certificate holds now, the signature is by its ego key, and the
    /// objection is fresh.
    pub fn verify(&self, record: &VerifiedEgo, now: UnixTime) -> Result<(), Refusal> {
        let b = &self.body;
        if b.ego_id != record.ego_id() {
            return Err(Refusal::WrongEgo);
        }
        if record.cert().status != CertStatus::Active || !record.key_usable_at(now) {
            return Err(Refusal::CertNotValid);
        }
        record
            .ego_key()
            .verify(Context::Objection, &b.unsigned_bytes(), &self.sig)
            .map_err(|_| Refusal::BadSignature)?;
        if !b.issued_at.within(now, CLOCK_SKEW_SECS) {
            return Err(Refusal::Stale);
        }
        Ok(())
    }
}

impl Encode for Objection {
    fn encode(&self, e: &mut Encoder) {
        e.map(5);
        self.body.encode_fields(e);
        e.key(4);
        self.sig.encode(e);
    }
}

impl Decode for Objection {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("objection")?;
        m.key(d, 0)?;
        match d.uint()? {
            REQUEST_VERSION => {}
            v => return Err(DecodeError::UnknownVersion(v)),
        }
        m.expect_len(5)?;
        m.key(d, 1)?;
        let ego_id = EgoId::from_bytes(d.bytes_fixed::<32>("ego_id")?);
        m.key(d, 2)?;
        let new_key = PublicKey::decode(d, "new_key")?;
        m.key(d, 3)?;
        let issued_at = UnixTime::from_secs(d.uint()?);
        m.key(d, 4)?;
        let sig = Signature::decode(d)?;
        Ok(Self {
            body: ObjectionBody {
                ego_id,
                new_key,
                issued_at,
            },
            sig,
        })
    }
}

/// What a member did with an objection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// The member has no request for that recovery.
    Unknown,
    /// The request waits for the member's human, who now sees the
    /// objection too.
    Shown,
    /// The member's human had approved: the approval is paused until the
    /// human confirms or withdraws it.
    Paused,
    /// Not kept: the recovery was objected to already, or denied.
    Dropped,
}

impl Noted {
    fn code(self) -> u64 {
        match self {
            Noted::Unknown => 0,
            Noted::Shown => 1,
            Noted::Paused => 2,
            Noted::Dropped => 3,
        }
    }
}

/// A member's answer to an [`Objection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectionNoted {
    /// What the member did.
    pub noted: Noted,
}

impl Encode for ObjectionNoted {
    fn encode(&self, e: &mut Encoder) {
        e.map(2);
        e.key(0);
        e.uint(REQUEST_VERSION);
        e.key(1);
        e.uint(self.noted.code());
    }
}

impl Decode for ObjectionNoted {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("objection noted")?;
        m.key(d, 0)?;
        match d.uint()? {
            REQUEST_VERSION => {}
            v => return Err(DecodeError::UnknownVersion(v)),
        }
        m.expect_len(2)?;
        m.key(d, 1)?;
        let noted = match d.uint()? {
            0 => Noted::Unknown,
            1 => Noted::Shown,
            2 => Noted::Paused,
            3 => Noted::Dropped,
            value => {
                return Err(DecodeError::UnknownValue {
                    what: "objection noted",
                    value,
                });
            }
        };
        Ok(Self { noted })
    }
}
