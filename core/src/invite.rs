//! Invites: two people make their agents friends without a man in the
//! middle (DESIGN.md, "Invites").
//!
//! The inviter's agent makes an [`InviteCode`] such as `4821-orbit-ladder`
//! and the person reads it to the friend by phone. The number is the
//! **nameplate**; the two words are the secret, 22 bits, drawn from the
//! BIP-39 English list (2,048 words, unique in their first four letters).
//!
//! The DHT rendezvous where the inviter's node waits is keyed by the
//! nameplate *and the first word* ([`InviteCode::rendezvous`]), and every
//! hello names that key: someone who does not know the code must guess
//! both (9,999 × 2,048 ≈ 2^24.3 candidates, each a DHT lookup or a hello)
//! just to reach an invite. The whole code is the SPAKE2 password, so
//! whoever reaches it makes one online guess of the second word (2^11)
//! and learns nothing offline.
//!
//! The exchange, over `/cyrcles/invite/1` (acceptor → inviter):
//!
//! 1. [`InviteHello`]: the nameplate and rendezvous key, the acceptor's
//!    SPAKE2 message and the acceptor's party (ego id, current ego key,
//!    device peer id). The inviter checks the key
//!    ([`Inviter::expects`]) and the party before anything else; a hello
//!    that fails costs the invite nothing.
//! 2. [`InviteReply`]: the inviter's SPAKE2 message and party, and the
//!    inviter's key confirmation. From here the acceptor can tell whether
//!    its code was right, so the invite is spent: one guess per code.
//! 3. [`InviteConfirm`]: the acceptor's key confirmation; the inviter
//!    answers [`InviteDone`].
//!
//! Both confirmations are HMAC-SHA-256 under the SPAKE2 key over the
//! transcript, which holds both SPAKE2 messages and both parties: a MITM
//! who swapped an ego id, an ego key or a peer id, or who does not know
//! the code, fails both. Each side then shows the same six-digit
//! [`Friendship::fingerprint`] for the people to compare.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::cbor::{Decode, DecodeError, Decoder, Encode, Encoder};
use crate::id::EgoId;
use crate::keys::PublicKey;

/// Envelope kinds on `/cyrcles/invite/1`.
pub mod kind {
    /// [`super::InviteHello`].
    pub const HELLO: u16 = 1;
    /// [`super::InviteReply`].
    pub const REPLY: u16 = 2;
    /// [`super::InviteConfirm`].
    pub const CONFIRM: u16 = 3;
    /// [`super::InviteDone`].
    pub const DONE: u16 = 4;
    /// [`super::InviteRefused`].
    pub const REFUSED: u16 = 5;
}

/// Invite message format version.
pub const INVITE_VERSION: u64 = 1;
/// Nameplates run from 1 to this.
pub const MAX_NAMEPLATE: u16 = 9999;
/// Secret words in a code.
pub const WORDS: usize = 2;
/// Longest peer id carried (a libp2p Ed25519 peer id is 38 bytes).
pub const MAX_PEER_ID_LEN: usize = 64;
/// Length of a SPAKE2 message over Ed25519 (a side byte and a point).
pub const PAKE_MESSAGE_LEN: usize = 33;
/// Cap on any encoded invite message.
pub const MAX_INVITE_MESSAGE_SIZE: usize = 1024;

const SPAKE_ID_INVITER: &[u8] = b"cyrcles/v1/invite/inviter";
const SPAKE_ID_ACCEPTOR: &[u8] = b"cyrcles/v1/invite/acceptor";
const RENDEZVOUS_CONTEXT: &[u8] = b"cyrcles/v1/invite/rendezvous";
/// Argon2id memory of the rendezvous derivation, in KiB (8 MiB).
pub const RENDEZVOUS_MEMORY_KIB: u32 = 8 * 1024;
/// Argon2id passes of the rendezvous derivation.
pub const RENDEZVOUS_PASSES: u32 = 2;
const TRANSCRIPT_CONTEXT: &[u8] = b"cyrcles/v1/invite/transcript";

type HmacSha256 = Hmac<Sha256>;

fn word_list() -> &'static [&'static str; 2048] {
    bip39::Language::English.word_list()
}

/// An invite code: a public nameplate and two secret words.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteCode {
    nameplate: u16,
    words: [u16; WORDS],
}

impl InviteCode {
    /// A new random code.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let pick = |rng: &mut R, n: u32| {
            // Rejection sampling keeps every value equally likely.
            let zone = u32::MAX - u32::MAX % n;
            loop {
                let v = rng.next_u32();
                if v < zone {
                    return u16::try_from(v % n).unwrap_or_default();
                }
            }
        };
        let nameplate = pick(rng, u32::from(MAX_NAMEPLATE)) + 1;
        let words = [pick(rng, 2048), pick(rng, 2048)];
        Self { nameplate, words }
    }

    /// The public part.
    pub fn nameplate(&self) -> u16 {
        self.nameplate
    }

    /// The DHT key under which the inviter's node announces itself, and
    /// which every hello names: Argon2id of the nameplate and the first
    /// word (see [`rendezvous`]). It never depends on the second word.
    /// Costly on purpose: compute it once per invite.
    pub fn rendezvous(&self) -> [u8; 32] {
        let [first, _] = self.words;
        rendezvous(self.nameplate, first)
    }

    fn password(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.to_string().into_bytes())
    }
}

/// The rendezvous key of a nameplate and a first word, by its index in
/// the word list: Argon2id (version 0x13) with [`RENDEZVOUS_MEMORY_KIB`]
/// KiB, [`RENDEZVOUS_PASSES`] passes and one lane, of the password
/// `u16_be(nameplate) ‖ u16_be(first_word)`, salted with
/// `"cyrcles/v1/invite/rendezvous"`, 32 bytes out.
///
/// The key is stored by the DHT nodes closest to it, and anyone could
/// invert a fast hash of these 24 bits at once: the cost (20 to 40 ms on
/// one core) makes trying every nameplate and first word take days of
/// one core, far longer than an invite lives (10 minutes).
pub fn rendezvous(nameplate: u16, first_word: u16) -> [u8; 32] {
    let mut out = [0u8; 32];
    let [n0, n1] = nameplate.to_be_bytes();
    let [w0, w1] = first_word.to_be_bytes();
    let password = [n0, n1, w0, w1];
    // Infallible for these constants: the memory is at least 8 KiB per
    // lane, one pass or more, one lane, a 32-byte output and a 28-byte
    // salt are all within Argon2's limits (a unit test runs it).
    if let Ok(params) =
        argon2::Params::new(RENDEZVOUS_MEMORY_KIB, RENDEZVOUS_PASSES, 1, Some(out.len()))
    {
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let _ = a.hash_password_into(&password, RENDEZVOUS_CONTEXT, &mut out);
    }
    out
}

impl fmt::Display for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = word_list();
        write!(f, "{}", self.nameplate)?;
        for w in self.words {
            write!(f, "-{}", list.get(usize::from(w)).copied().unwrap_or("?"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InviteCode({}-..)", self.nameplate)
    }
}

/// Why a typed code is not an invite code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodeError {
    /// Not `NUMBER-WORD-WORD`.
    #[error("an invite code reads NUMBER-WORD-WORD, such as 4821-orbit-ladder")]
    Shape,
    /// The number is not 1 to 9999.
    #[error("the number of an invite code runs from 1 to 9999")]
    Nameplate,
    /// A word is not in the list.
    #[error("{0:?} is not one of the invite words; check the spelling")]
    Word(String),
}

impl FromStr for InviteCode {
    type Err = CodeError;

    /// Accepts any case, spaces instead of dashes, and a word's first four
    /// letters when they name one word.
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower
            .split(|c: char| c == '-' || c.is_ascii_whitespace())
            .filter(|p| !p.is_empty())
            .collect();
        let [number, w1, w2] = parts.as_slice() else {
            return Err(CodeError::Shape);
        };
        if number.is_empty() || number.len() > 4 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::Shape);
        }
        let nameplate: u16 = number.parse().map_err(|_| CodeError::Shape)?;
        if nameplate == 0 || nameplate > MAX_NAMEPLATE {
            return Err(CodeError::Nameplate);
        }
        Ok(Self {
            nameplate,
            words: [word_index(w1)?, word_index(w2)?],
        })
    }
}

fn word_index(w: &str) -> Result<u16, CodeError> {
    let list = word_list();
    let found = list.iter().position(|x| *x == w).or_else(|| {
        // BIP-39 words are unique in their first four letters.
        if w.len() < 4 {
            return None;
        }
        let mut hits = list.iter().enumerate().filter(|(_, x)| x.starts_with(w));
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    });
    found
        .and_then(|i| u16::try_from(i).ok())
        .ok_or_else(|| CodeError::Word(w.to_string()))
}

/// One side of an invite: who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// Their ego.
    pub ego_id: EgoId,
    /// Their ego's current certified key (the peer checks it against the
    /// ego's record in the DHT).
    pub ego_pk: PublicKey,
    /// The libp2p peer id (bytes) of their ego's node, where circle
    /// messages reach them.
    pub peer_id: Vec<u8>,
}

impl Party {
    fn encode_fields(&self, e: &mut Encoder, first_key: u64) {
        e.key(first_key);
        e.bytes(self.ego_id.as_bytes());
        e.key(first_key + 1);
        self.ego_pk.encode(e);
        e.key(first_key + 2);
        e.bytes(&self.peer_id);
    }

    fn decode_fields(
        d: &mut Decoder<'_>,
        m: &mut crate::cbor::MapReader,
        first_key: u64,
    ) -> Result<Self, DecodeError> {
        m.key(d, first_key)?;
        let ego_id = EgoId::from_bytes(d.bytes_fixed::<32>("ego_id")?);
        m.key(d, first_key + 1)?;
        let ego_pk = PublicKey::decode(d, "ego_pk")?;
        m.key(d, first_key + 2)?;
        let peer_id = d.bytes_in("peer_id", 1, MAX_PEER_ID_LEN)?.to_vec();
        Ok(Self {
            ego_id,
            ego_pk,
            peer_id,
        })
    }
}

fn version(d: &mut Decoder<'_>, m: &mut crate::cbor::MapReader) -> Result<(), DecodeError> {
    m.key(d, 0)?;
    match d.uint()? {
        INVITE_VERSION => Ok(()),
        v => Err(DecodeError::UnknownVersion(v)),
    }
}

/// Step 1, acceptor → inviter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteHello {
    /// The nameplate the acceptor was given.
    pub nameplate: u16,
    /// The acceptor's SPAKE2 message.
    pub pake: [u8; PAKE_MESSAGE_LEN],
    /// The acceptor.
    pub acceptor: Party,
    /// The code's rendezvous key: whoever sends a hello shows it knows the
    /// nameplate and the first word.
    pub rendezvous: [u8; 32],
}

impl Encode for InviteHello {
    fn encode(&self, e: &mut Encoder) {
        e.map(7);
        e.key(0);
        e.uint(INVITE_VERSION);
        e.key(1);
        e.uint(u64::from(self.nameplate));
        e.key(2);
        e.bytes(&self.pake);
        self.acceptor.encode_fields(e, 3);
        e.key(6);
        e.bytes(&self.rendezvous);
    }
}

impl Decode for InviteHello {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("invite hello")?;
        version(d, &mut m)?;
        m.expect_len(7)?;
        m.key(d, 1)?;
        let nameplate = u16::try_from(d.uint_max("nameplate", u64::from(MAX_NAMEPLATE))?)
            .map_err(|_| DecodeError::OutOfRange { what: "nameplate" })?;
        m.key(d, 2)?;
        let pake = d.bytes_fixed::<PAKE_MESSAGE_LEN>("pake")?;
        let acceptor = Party::decode_fields(d, &mut m, 3)?;
        m.key(d, 6)?;
        let rendezvous = d.bytes_fixed::<32>("rendezvous")?;
        Ok(Self {
            nameplate,
            pake,
            acceptor,
            rendezvous,
        })
    }
}

/// Step 2, inviter → acceptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteReply {
    /// The inviter's SPAKE2 message.
    pub pake: [u8; PAKE_MESSAGE_LEN],
    /// The inviter.
    pub inviter: Party,
    /// HMAC(K, "inviter" ‖ transcript).
    pub confirm: [u8; 32],
}

impl Encode for InviteReply {
    fn encode(&self, e: &mut Encoder) {
        e.map(6);
        e.key(0);
        e.uint(INVITE_VERSION);
        e.key(1);
        e.bytes(&self.pake);
        self.inviter.encode_fields(e, 2);
        e.key(5);
        e.bytes(&self.confirm);
    }
}

impl Decode for InviteReply {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("invite reply")?;
        version(d, &mut m)?;
        m.expect_len(6)?;
        m.key(d, 1)?;
        let pake = d.bytes_fixed::<PAKE_MESSAGE_LEN>("pake")?;
        let inviter = Party::decode_fields(d, &mut m, 2)?;
        m.key(d, 5)?;
        let confirm = d.bytes_fixed::<32>("confirm")?;
        Ok(Self {
            pake,
            inviter,
            confirm,
        })
    }
}

/// Step 3, acceptor → inviter: HMAC(K, "acceptor" ‖ transcript).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteConfirm {
    /// The nameplate, so the inviter finds the exchange.
    pub nameplate: u16,
    /// The acceptor's key confirmation.
    pub confirm: [u8; 32],
}

impl Encode for InviteConfirm {
    fn encode(&self, e: &mut Encoder) {
        e.map(3);
        e.key(0);
        e.uint(INVITE_VERSION);
        e.key(1);
        e.uint(u64::from(self.nameplate));
        e.key(2);
        e.bytes(&self.confirm);
    }
}

impl Decode for InviteConfirm {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("invite confirm")?;
        version(d, &mut m)?;
        m.expect_len(3)?;
        m.key(d, 1)?;
        let nameplate = u16::try_from(d.uint_max("nameplate", u64::from(MAX_NAMEPLATE))?)
            .map_err(|_| DecodeError::OutOfRange { what: "nameplate" })?;
        m.key(d, 2)?;
        let confirm = d.bytes_fixed::<32>("confirm")?;
        Ok(Self { nameplate, confirm })
    }
}

/// Step 4, inviter → acceptor: the inviter checked the confirmation and
/// stored the friendship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteDone;

impl Encode for InviteDone {
    fn encode(&self, e: &mut Encoder) {
        e.map(1);
        e.key(0);
        e.uint(INVITE_VERSION);
    }
}

impl Decode for InviteDone {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("invite done")?;
        version(d, &mut m)?;
        m.expect_len(1)?;
        Ok(Self)
    }
}

/// Why an inviter refused a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedReason {
    /// No open invite has this nameplate and rendezvous key (expired,
    /// spent, or never made).
    NoInvite = 0,
    /// The confirmation did not match: a wrong code, or a MITM. The
    /// invite is burnt.
    WrongCode = 1,
    /// The message was malformed or out of order.
    Invalid = 2,
    /// The acceptor's ego or key does not match its record in the DHT;
    /// the invite is not spent.
    UnknownParty = 3,
    /// Too many attempts from this peer (or too many at once); the
    /// invite is not spent.
    RateLimited = 4,
}

impl RefusedReason {
    fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => Self::NoInvite,
            1 => Self::WrongCode,
            2 => Self::Invalid,
            3 => Self::UnknownParty,
            4 => Self::RateLimited,
            _ => return None,
        })
    }
}

/// The inviter's refusal of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteRefused {
    /// Why.
    pub reason: RefusedReason,
}

impl Encode for InviteRefused {
    fn encode(&self, e: &mut Encoder) {
        e.map(2);
        e.key(0);
        e.uint(INVITE_VERSION);
        e.key(1);
        e.uint(self.reason as u64);
    }
}

impl Decode for InviteRefused {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map("invite refused")?;
        version(d, &mut m)?;
        m.expect_len(2)?;
        m.key(d, 1)?;
        let value = d.uint()?;
        let reason = RefusedReason::from_u64(value).ok_or(DecodeError::UnknownValue {
            what: "refused reason",
            value,
        })?;
        Ok(Self { reason })
    }
}

/// Why an invite failed on this side.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InviteError {
    /// The other side's confirmation does not match: the code was wrong,
    /// or someone is in the middle.
    #[error("the invite code does not match (a wrong code, or someone in the middle)")]
    Mismatch,
    /// A SPAKE2 message is malformed (or reflects our own).
    #[error("malformed invite key exchange: {0}")]
    Pake(String),
    /// The message is for another invite.
    #[error("the message is for another invite")]
    WrongInvite,
    /// The other side claims to be this very ego.
    #[error("an ego cannot befriend itself")]
    SelfInvite,
}

/// A successful invite: the other side and the words to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Friendship {
    /// The friend.
    pub friend: Party,
    /// Six digits (`"123 456"`) both sides show; the people compare them.
    pub fingerprint: String,
}

/// What both sides hash: both SPAKE2 messages and both parties.
fn transcript(hello: &InviteHello, inviter_pake: &[u8], inviter: &Party) -> [u8; 32] {
    let mut e = Encoder::new();
    e.map(3);
    e.key(0);
    hello.encode(&mut e);
    e.key(1);
    e.bytes(inviter_pake);
    e.key(2);
    e.map(3);
    inviter.encode_fields(&mut e, 0);
    let mut h = Sha256::new();
    h.update(TRANSCRIPT_CONTEXT);
    h.update([0]);
    h.update(e.into_bytes());
    h.finalize().into()
}

/// The keys both sides derive once SPAKE2 is done.
struct Confirmation {
    key: Zeroizing<Vec<u8>>,
    transcript: [u8; 32],
}

impl Confirmation {
    fn mac(&self, label: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(label);
        m.update(&[0]);
        m.update(&self.transcript);
        m
    }

    fn tag(&self, label: &[u8]) -> [u8; 32] {
        self.mac(label).finalize().into_bytes().into()
    }

    fn check(&self, label: &[u8], tag: &[u8; 32]) -> Result<(), InviteError> {
        self.mac(label)
            .verify_slice(tag)
            .map_err(|_| InviteError::Mismatch)
    }

    fn fingerprint(&self) -> String {
        six_digits(&self.tag(b"fingerprint"))
    }
}

/// The six digits people compare, `DDD DDD`: the first four bytes of a
/// digest as a big-endian number modulo 10^6.
pub(crate) fn six_digits(digest: &[u8; 32]) -> String {
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000;
    format!("{:03} {:03}", n / 1000, n % 1000)
}

fn pake_bytes(v: &[u8]) -> Result<[u8; PAKE_MESSAGE_LEN], InviteError> {
    v.try_into()
        .map_err(|_| InviteError::Pake(format!("{} bytes", v.len())))
}

/// The inviter's side, from the code to the first hello.
pub struct Inviter {
    code: InviteCode,
    me: Party,
    /// The code's rendezvous key, derived once.
    rendezvous: [u8; 32],
}

impl fmt::Debug for Inviter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inviter")
            .field("code", &self.code)
            .field("me", &self.me.ego_id)
            .finish()
    }
}

/// The inviter waiting for the acceptor's confirmation.
pub struct InviterWaiting {
    confirmation: Confirmation,
    friend: Party,
    nameplate: u16,
}

impl fmt::Debug for InviterWaiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviterWaiting")
            .field("friend", &self.friend.ego_id)
            .finish_non_exhaustive()
    }
}

impl Inviter {
    /// An open invite.
    pub fn new(code: InviteCode, me: Party) -> Self {
        let rendezvous = code.rendezvous();
        Self {
            code,
            me,
            rendezvous,
        }
    }

    /// The code's rendezvous key (derived once, when the invite opened).
    pub fn rendezvous(&self) -> [u8; 32] {
        self.rendezvous
    }

    /// The code (for the person to read out).
    pub fn code(&self) -> &InviteCode {
        &self.code
    }

    /// Whether `hello` is for this invite: its nameplate and its
    /// rendezvous key are this code's. A hello that is not costs the
    /// invite nothing.
    pub fn expects(&self, hello: &InviteHello) -> bool {
        hello.nameplate == self.code.nameplate && hello.rendezvous == self.rendezvous
    }

    /// Answers a hello. Once the reply is sent the acceptor can tell
    /// whether its code was right, so the invite is spent: the caller must
    /// forget the code whatever follows.
    pub fn on_hello<R: RngCore + CryptoRng>(
        &self,
        hello: &InviteHello,
        rng: &mut R,
    ) -> Result<(InviterWaiting, InviteReply), InviteError> {
        if !self.expects(hello) {
            return Err(InviteError::WrongInvite);
        }
        if hello.acceptor.ego_id == self.me.ego_id {
            return Err(InviteError::SelfInvite);
        }
        let password = self.code.password();
        let (state, msg) = Spake2::<Ed25519Group>::start_a_with_rng(
            &Password::new(&password),
            &Identity::new(SPAKE_ID_INVITER),
            &Identity::new(SPAKE_ID_ACCEPTOR),
            rng,
        );
        let key = state
            .finish(&hello.pake)
            .map_err(|e| InviteError::Pake(format!("{e:?}")))?;
        let pake = pake_bytes(&msg)?;
        let confirmation = Confirmation {
            key: Zeroizing::new(key),
            transcript: transcript(hello, &pake, &self.me),
        };
        let reply = InviteReply {
            pake,
            inviter: self.me.clone(),
            confirm: confirmation.tag(b"inviter"),
        };
        Ok((
            InviterWaiting {
                confirmation,
                friend: hello.acceptor.clone(),
                nameplate: hello.nameplate,
            },
            reply,
        ))
    }
}

impl InviterWaiting {
    /// Checks the acceptor's confirmation.
    pub fn on_confirm(self, confirm: &InviteConfirm) -> Result<Friendship, InviteError> {
        if confirm.nameplate != self.nameplate {
            return Err(InviteError::WrongInvite);
        }
        self.confirmation.check(b"acceptor", &confirm.confirm)?;
        Ok(Friendship {
            fingerprint: self.confirmation.fingerprint(),
            friend: self.friend,
        })
    }
}

/// The acceptor's side.
pub struct Acceptor {
    state: Spake2<Ed25519Group>,
    hello: InviteHello,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("nameplate", &self.hello.nameplate)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Starts from the typed code; the hello goes to the node found at the
    /// code's rendezvous.
    pub fn start<R: RngCore + CryptoRng>(
        code: &InviteCode,
        me: Party,
        rng: &mut R,
    ) -> Result<(Self, InviteHello), InviteError> {
        let password = code.password();
        let (state, msg) = Spake2::<Ed25519Group>::start_b_with_rng(
            &Password::new(&password),
            &Identity::new(SPAKE_ID_INVITER),
            &Identity::new(SPAKE_ID_ACCEPTOR),
            rng,
        );
        let hello = InviteHello {
            nameplate: code.nameplate,
            pake: pake_bytes(&msg)?,
            acceptor: me,
            rendezvous: code.rendezvous(),
        };
        Ok((
            Self {
                state,
                hello: hello.clone(),
            },
            hello,
        ))
    }

    /// Checks the inviter's reply; on success, the confirmation to send.
    pub fn on_reply(self, reply: &InviteReply) -> Result<(Friendship, InviteConfirm), InviteError> {
        if reply.inviter.ego_id == self.hello.acceptor.ego_id {
            return Err(InviteError::SelfInvite);
        }
        let key = self
            .state
            .finish(&reply.pake)
            .map_err(|e| InviteError::Pake(format!("{e:?}")))?;
        let confirmation = Confirmation {
            key: Zeroizing::new(key),
            transcript: transcript(&self.hello, &reply.pake, &reply.inviter),
        };
        confirmation.check(b"inviter", &reply.confirm)?;
        let confirm = InviteConfirm {
            nameplate: self.hello.nameplate,
            confirm: confirmation.tag(b"acceptor"),
        };
        Ok((
            Friendship {
                fingerprint: confirmation.fingerprint(),
                friend: reply.inviter.clone(),
            },
            confirm,
        ))
    }
}
