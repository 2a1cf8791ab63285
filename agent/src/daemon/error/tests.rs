//! Each kind's code and text, and the sources kept beneath.

use std::error::Error as _;
use std::io;
use std::path::PathBuf;

use cyrcles_p2p::Cause;

use super::*;

/// What the CLI shows for `e`: its code and its text.
fn shown(e: impl Into<Error>) -> (ErrorCode, String) {
    let reply = ErrorReply::from(e.into());
    (reply.code, reply.message)
}

fn io_error() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "disk says no")
}

fn spawn() -> SpawnError {
    SpawnError::Listen {
        addr: cyrcles_p2p::Multiaddr::empty(),
        reason: "busy".into(),
    }
}

fn ego() -> EgoId {
    EgoId::from_bytes([7; 32])
}

#[test]
fn each_kind_has_its_code_and_the_text_the_person_reads() {
    use ErrorCode as C;
    let request = RequestError::Timeout;
    let circle = CircleError::InvalidShare;
    let build = BuildError::ChainFull;
    let parse = ParseIdError::Character;
    let cases: Vec<(Error, ErrorCode, String)> = vec![
        // Network.
        (
            Network::NodeStart(spawn()).into(),
            C::Network,
            format!("cannot start the network node: {}", spawn()),
        ),
        (
            Network::NodeStopped(Stopped).into(),
            C::Network,
            format!("the agent's node stopped: {Stopped}"),
        ),
        (
            Network::Unannounced(Unannounced::NoPeer).into(),
            C::Network,
            "the invite could not be announced on the network (no peer stored it); \
             is the agent connected to a bridge (--bootstrap)?"
                .into(),
        ),
        (
            Network::Unannounced(Unannounced::Failed(request.clone())).into(),
            C::Network,
            format!(
                "the invite could not be announced on the network ({request}); \
                 is the agent connected to a bridge (--bootstrap)?"
            ),
        ),
        (
            Network::InviterSilent(request.clone()).into(),
            C::Network,
            format!("the inviter's agent did not answer: {request}"),
        ),
        (
            Network::DkgSilent {
                friend: "bob".into(),
                step: "round 2",
                source: Unanswered::Timeout,
            }
            .into(),
            C::Network,
            "friend \"bob\" did not take part in generating the new circle key (round 2: no \
             answer in time); the circle is unchanged"
                .into(),
        ),
        (
            Network::TooFewSigners {
                got: 1,
                needed: 2,
                problems: vec!["bob: no answer in time".into(), "eve: a bad answer".into()],
            }
            .into(),
            C::Network,
            "1 of the 2 friends needed answered (bob: no answer in time; eve: a bad answer); \
             retrying later"
                .into(),
        ),
        (
            Network::Unsigned(3).into(),
            C::Network,
            "member 3 did not complete the signature; retrying later".into(),
        ),
        (
            Network::NoRecord {
                ego: ego(),
                source: Unanswered::Timeout,
            }
            .into(),
            C::Network,
            format!(
                "no valid record of ego {} was found in the DHT (no answer in time); a record \
                 whose certificate expired cannot be recovered",
                ego()
            ),
        ),
        (
            Network::NoRecord {
                ego: ego(),
                source: Unanswered::Lookup(GetError::Timeout),
            }
            .into(),
            C::Network,
            format!(
                "no valid record of ego {} was found in the DHT (the lookup timed out); a \
                 record whose certificate expired cannot be recovered",
                ego()
            ),
        ),
        (
            Network::TooFewHelpers {
                online: 1,
                needed: 2,
            }
            .into(),
            C::Network,
            "1 friend can help, 2 are needed; try again when more are online".into(),
        ),
        (
            Network::TargetAbsent {
                friend: "bob".into(),
                problems: vec!["bob: refused (code 4)".into()],
            }
            .into(),
            C::Network,
            "\"bob\" did not take part (bob: refused (code 4)); the circle is unchanged".into(),
        ),
        (
            Network::HelpersSilent {
                answered: 1,
                needed: 2,
                problems: vec!["eve: a bad answer".into()],
            }
            .into(),
            C::Network,
            "1 of the 2 helpers needed answered (eve: a bad answer); try again later".into(),
        ),
        (
            Network::HelperSilent {
                helper: "eve".into(),
                source: Unanswered::Request(request.clone()),
            }
            .into(),
            C::Network,
            format!("eve: {request}; the repair stopped"),
        ),
        // Refused.
        (
            Refused::OtherUser(ForeignUser { own: 1, peer: 2 }).into(),
            C::Refused,
            "refused: the agent serves only uid 1, not uid 2".into(),
        ),
        (
            Refused::ByPerson.into(),
            C::Refused,
            "the person denied the request".into(),
        ),
        (
            Refused::Withdrawn.into(),
            C::Refused,
            "the request was withdrawn".into(),
        ),
        (
            Refused::Banned("/usr/bin/x".into()).into(),
            C::Refused,
            "/usr/bin/x is banned from asking this agent".into(),
        ),
        (
            Refused::Quota {
                which: "program",
                retry_after: 30,
            }
            .into(),
            C::Refused,
            "over the program quota; try again in 30 s".into(),
        ),
        (
            Refused::TooManyInvites(16).into(),
            C::Refused,
            "16 invites are open already; let one finish or expire first".into(),
        ),
        (
            Refused::Invite(InviteError::SelfInvite).into(),
            C::Refused,
            "an ego cannot befriend itself".into(),
        ),
        (
            Refused::UnknownParty.into(),
            C::Refused,
            "the inviter's agent could not find your ego's record; is your agent connected?".into(),
        ),
        (
            Refused::InviterBusy.into(),
            C::Refused,
            "the inviter's agent is busy; try again".into(),
        ),
        (
            Refused::ByInviter.into(),
            C::Refused,
            "the inviter's agent refused the exchange".into(),
        ),
        (
            Refused::OutOfTurn.into(),
            C::Refused,
            "the inviter's agent answered out of turn".into(),
        ),
        (
            Refused::MalformedReply(DecodeError::Truncated).into(),
            C::Refused,
            "malformed reply: input ends early".into(),
        ),
        (
            Refused::OtherNode.into(),
            C::Refused,
            "the inviter's agent named another node than its own".into(),
        ),
        (
            Refused::InviterEgo(PartyCheck::Timeout).into(),
            C::Refused,
            "the inviter's ego does not check out: its record was not found in time".into(),
        ),
        (
            Refused::InviterEgo(PartyCheck::NotFound(GetError::Timeout)).into(),
            C::Refused,
            "the inviter's ego does not check out: its record was not found: the lookup \
             timed out"
                .into(),
        ),
        (
            Refused::InviterEgo(PartyCheck::Revoked).into(),
            C::Refused,
            "the inviter's ego does not check out: the ego is revoked".into(),
        ),
        (
            Refused::InviterEgo(PartyCheck::WrongKey).into(),
            C::Refused,
            "the inviter's ego does not check out: the ego key is not the one its record \
             certifies"
                .into(),
        ),
        (
            Refused::DkgAnswer("bob".into()).into(),
            C::Refused,
            "friend \"bob\" answered the key generation out of turn; the circle is unchanged"
                .into(),
        ),
        (
            Refused::DkgPublic(cyrcles_core::circle::DkgError::Parameters(
                "threshold below 2",
            ))
            .into(),
            C::Refused,
            "the friends' key generation makes no circle: invalid DKG parameters: threshold \
             below 2"
                .into(),
        ),
        (
            Refused::ShareDeclined("bob".into()).into(),
            C::Refused,
            "friend \"bob\" refused its share; the circle is unchanged".into(),
        ),
        (
            Refused::OtherShareAcked("bob".into()).into(),
            C::Refused,
            "friend \"bob\" acknowledged another share than the one it was sent; the circle \
             is unchanged"
                .into(),
        ),
        (
            Refused::ShareAck {
                friend: "bob".into(),
                source: circle.clone(),
            }
            .into(),
            C::Refused,
            format!("friend \"bob\" acknowledged wrongly: {circle}"),
        ),
        (
            Refused::FriendsCert(build.clone()).into(),
            C::Refused,
            format!("the friends' certificate does not fit: {build}"),
        ),
        (
            Refused::FriendsRevocation(build.clone()).into(),
            C::Refused,
            format!("the friends' revocation does not fit: {build}"),
        ),
        (
            Refused::SignatureShare {
                member: 2,
                source: circle.clone(),
            }
            .into(),
            C::Refused,
            format!("member 2: {circle}"),
        ),
        (
            Refused::Aggregate(circle.clone()).into(),
            C::Refused,
            format!("the friends' signature failed: {circle}"),
        ),
        (
            Refused::RecoveredCert(build.clone()).into(),
            C::Refused,
            format!("the certificate does not fit: {build}"),
        ),
        (
            Refused::NoSigma(2).into(),
            C::Refused,
            "member 2 sent no sigma for the target".into(),
        ),
        (
            Refused::HelperAnswer("eve".into()).into(),
            C::Refused,
            "eve: a bad answer; the repair stopped".into(),
        ),
        (
            Refused::Rebuild {
                friend: "bob".into(),
                source: Unanswered::Refused(5),
            }
            .into(),
            C::Refused,
            "\"bob\" could not rebuild the share: refused (code 5)".into(),
        ),
        (
            Refused::RepairAck {
                friend: "bob".into(),
                source: circle.clone(),
            }
            .into(),
            C::Refused,
            format!("\"bob\" acknowledged wrongly: {circle}"),
        ),
        // Not found.
        (
            NotFound::EgoNamed("work".into()).into(),
            C::NotFound,
            "no ego named \"work\"; `cyrcles ego list` shows them".into(),
        ),
        (
            NotFound::Ego(ego()).into(),
            C::NotFound,
            format!("no ego {}", ego()),
        ),
        (
            NotFound::NoEgoYet.into(),
            C::NotFound,
            "no ego yet: create one with `cyrcles ego create NAME`".into(),
        ),
        (
            NotFound::Friend {
                ego: "work".into(),
                friend: "bob".into(),
            }
            .into(),
            C::NotFound,
            "ego \"work\" has no friend \"bob\"; `cyrcles friend list` shows them".into(),
        ),
        (
            NotFound::CircleMember {
                ego: "work".into(),
                friend: "bob".into(),
            }
            .into(),
            C::NotFound,
            "\"bob\" is not a member of \"work\"'s circle".into(),
        ),
        (
            NotFound::Request(4).into(),
            C::NotFound,
            "no waiting request 4 (it may have expired or been answered); see `cyrcles \
             requests`"
                .into(),
        ),
        (
            NotFound::Recovery(4).into(),
            C::NotFound,
            "no recovery request 4; `cyrcles recovery list` shows them".into(),
        ),
        (
            NotFound::Invite.into(),
            C::NotFound,
            "no open invite has this code (expired, already used, or mistyped number)".into(),
        ),
        (
            NotFound::Inviter(4821).into(),
            C::NotFound,
            "nobody is waiting with invite number 4821 (expired, mistyped, or the inviter's \
             agent is offline)"
                .into(),
        ),
        // Bad input.
        (
            BadInput::Frame(FrameError::TooLarge(9)).into(),
            C::BadRequest,
            "bad request: message of 9 bytes is over the limit".into(),
        ),
        (
            BadInput::EgoName {
                name: "-x".into(),
                max: 32,
            }
            .into(),
            C::BadRequest,
            "\"-x\" is not a valid ego name: use 1 to 32 letters, digits, '-', '_' or '.', \
             starting with a letter or digit"
                .into(),
        ),
        (
            BadInput::WhichEgo.into(),
            C::BadRequest,
            "this agent has several egos: name the one that befriends with --as EGO".into(),
        ),
        (
            BadInput::InviteCode(CodeError::Shape).into(),
            C::BadRequest,
            CodeError::Shape.to_string(),
        ),
        (
            BadInput::Threshold.into(),
            C::BadRequest,
            "the threshold must be at least 2: with 1, any single friend could certify a key"
                .into(),
        ),
        (
            BadInput::TooManyFriends.into(),
            C::BadRequest,
            "too many friends".into(),
        ),
        (
            BadInput::PolicyText("the client id").into(),
            C::BadRequest,
            "the client id must be 1 to 256 printable characters".into(),
        ),
        (
            BadInput::BanText.into(),
            C::BadRequest,
            "ban targets must be 1 to 1024 printable characters".into(),
        ),
        (
            BadInput::ProgramBanEgo.into(),
            C::BadRequest,
            "program bans apply to the whole agent; give no ego".into(),
        ),
        (
            BadInput::BanNeedsEgo.into(),
            C::BadRequest,
            "site and bridge bans belong to an ego; give --ego NAME".into(),
        ),
        (
            BadInput::LocalBridge.into(),
            C::BadRequest,
            "a local request has no bridge; use --ban-site to ban the program".into(),
        ),
        (
            BadInput::LocalRequest(LocalError::Field("nonce")).into(),
            C::BadRequest,
            "invalid local request field: nonce".into(),
        ),
        (
            BadInput::Nonce.into(),
            C::BadRequest,
            "the nonce must be hex".into(),
        ),
        (
            BadInput::NoKitFriend.into(),
            C::BadRequest,
            "name at least one friend of the circle (the kit lists them)".into(),
        ),
        (
            BadInput::KitEgoId {
                friend: "bob".into(),
                text: "x".into(),
                source: parse.clone(),
            }
            .into(),
            C::BadRequest,
            format!("friend \"bob\": \"x\" is not an ego id: {parse}"),
        ),
        (
            BadInput::KitPeerId {
                friend: "bob".into(),
                text: "x".into(),
                source: "not base58".into(),
            }
            .into(),
            C::BadRequest,
            "friend \"bob\": \"x\" is not a peer id: not base58".into(),
        ),
        (
            BadInput::EgoId {
                text: "x".into(),
                source: parse.clone(),
            }
            .into(),
            C::BadRequest,
            format!("\"x\" is not an ego id: {parse}"),
        ),
        // Conflict.
        (
            Conflict::Revoked.into(),
            C::Conflict,
            "the ego is revoked".into(),
        ),
        (
            Conflict::EgoRevoked("work".into()).into(),
            C::Conflict,
            "ego \"work\" is revoked".into(),
        ),
        (
            Conflict::AlreadyRevoked("work".into()).into(),
            C::Conflict,
            "ego \"work\" is already revoked".into(),
        ),
        (
            Conflict::NameTaken("work".into()).into(),
            C::Conflict,
            "an ego named \"work\" already exists".into(),
        ),
        (
            Conflict::AlreadyHeld.into(),
            C::Conflict,
            "this agent already holds that ego: nothing to recover".into(),
        ),
        (
            Conflict::Recovering.into(),
            C::Conflict,
            "that ego is already being recovered; `cyrcles recovery list` shows how far".into(),
        ),
        (
            Conflict::RevokedRecovery.into(),
            C::Conflict,
            "the ego is revoked: it cannot be recovered".into(),
        ),
        (
            Conflict::Changed.into(),
            C::Conflict,
            "the ego changed during the ceremony; try again".into(),
        ),
        (
            Conflict::NoSharedCircle.into(),
            C::Conflict,
            "the ego has no shared circle".into(),
        ),
        (
            Conflict::NothingToRepair("work".into()).into(),
            C::Conflict,
            "ego \"work\" has no shared circle to repair".into(),
        ),
        (
            Conflict::CircleShared.into(),
            C::Conflict,
            "this agent does not hold the whole circle key (friends hold shares)".into(),
        ),
        (
            Conflict::Decided {
                what: "recovery request",
                id: 3,
                decision: "denied",
            }
            .into(),
            C::Conflict,
            "recovery request 3 is already denied".into(),
        ),
        // Damaged.
        (
            Damaged::Ego {
                ego: "work".into(),
                why: "its record is unreadable".into(),
            }
            .into(),
            C::Damaged,
            "ego \"work\" is damaged: its record is unreadable".into(),
        ),
        (
            Damaged::EgoKey.into(),
            C::Damaged,
            "the stored ego key is not the certified one".into(),
        ),
        (
            Damaged::DeviceKey("short".into()).into(),
            C::Damaged,
            "the device key is unusable: short".into(),
        ),
        (
            Damaged::CircleKey.into(),
            C::Damaged,
            "the stored circle key is not valid".into(),
        ),
        (
            Damaged::CircleKeyOf(ego()).into(),
            C::Damaged,
            format!("the stored circle key of ego {} is not a valid key", ego()),
        ),
        (
            Damaged::NoCircle.into(),
            C::Damaged,
            "no circle key and no shared circle".into(),
        ),
        (
            Damaged::Circle(DecodeError::Truncated).into(),
            C::Damaged,
            "the stored circle is damaged: input ends early".into(),
        ),
        (
            Damaged::FriendPeer("bob".into()).into(),
            C::Damaged,
            "friend \"bob\" has no valid peer id".into(),
        ),
        // Locked.
        (
            Locked::Keystore.into(),
            C::Locked,
            "the keystore is locked; run `cyrcles unlock --passphrase-file FILE`".into(),
        ),
        (
            Locked::Invite.into(),
            C::Locked,
            "the keys are locked; run `cyrcles unlock` first".into(),
        ),
        (
            Locked::Ceremony.into(),
            C::Locked,
            "the keys are locked; run `cyrcles unlock`".into(),
        ),
        (
            Locked::Node.into(),
            C::Locked,
            "the ego's node is not running (locked?)".into(),
        ),
        (
            Locked::Approval.into(),
            C::Locked,
            "the ego's key is locked; run `cyrcles unlock`, then approve again".into(),
        ),
        // Expired.
        (
            Expired::InviteClosed("the invite expired").into(),
            C::Expired,
            "the invite expired".into(),
        ),
        (
            Expired::InviteGone.into(),
            C::Expired,
            "the invite was closed".into(),
        ),
        (
            Expired::InviteUnused.into(),
            C::Expired,
            "nobody used the invite in time".into(),
        ),
        (
            Expired::Unconfirmed.into(),
            C::Expired,
            "an agent answered the invite and did not finish it; if that was not your \
             friend, open a new invite"
                .into(),
        ),
        (
            Expired::Unapproved.into(),
            C::Expired,
            "nobody approved the request in time".into(),
        ),
        // Wrong code.
        (
            WrongCode::Invite.into(),
            C::WrongCode,
            "the invite code did not match: a wrong code, or someone in the middle; the \
             invite is burnt, open a new one"
                .into(),
        ),
        (
            WrongCode::Inviter.into(),
            C::WrongCode,
            "the invite code did not match; ask your friend for a new invite".into(),
        ),
        (
            WrongCode::Retry { code: 7, left: 2 }.into(),
            C::WrongCode,
            "wrong code: 07 is not the number shown with the request (2 tries left)".into(),
        ),
        (
            WrongCode::Denied { code: 7, wrong: 3 }.into(),
            C::WrongCode,
            "wrong code: 07 is not the number shown; after 3 wrong codes the request is \
             denied"
                .into(),
        ),
        // Internal.
        (
            Internal::Streaming.into(),
            C::Internal,
            "streaming request in the single-reply path".into(),
        ),
        (
            Internal::DkgTask.into(),
            C::Internal,
            "a key generation task failed".into(),
        ),
        (
            Internal::RepairTask.into(),
            C::Internal,
            "a repair task failed".into(),
        ),
        (
            Internal::RecordUpdate(build.clone()).into(),
            C::Internal,
            format!("record update refused: {build}"),
        ),
        (
            Internal::Endpoints(build.clone()).into(),
            C::Internal,
            build.to_string(),
        ),
        (
            Internal::Link(build.clone()).into(),
            C::Internal,
            format!("the new link does not fit: {build}"),
        ),
        (
            Internal::Frost(circle.clone()).into(),
            C::Internal,
            circle.to_string(),
        ),
        (
            Internal::InviteStart(InviteError::SelfInvite).into(),
            C::Internal,
            "an ego cannot befriend itself".into(),
        ),
    ];
    for (e, code, text) in cases {
        assert_eq!(shown(e), (code, text));
    }
}

#[test]
fn a_keystore_error_keeps_its_own_code_and_text() {
    use ErrorCode as C;
    let cases = [
        (KeystoreError::WrongPassphrase, C::Locked),
        (KeystoreError::PassphraseRequired, C::Locked),
        (KeystoreError::BadPassphrase("empty"), C::BadRequest),
        (KeystoreError::NotFound("policy 3".into()), C::NotFound),
        (KeystoreError::Exists("ban".into()), C::Conflict),
        (
            KeystoreError::AlreadyInitialised(PathBuf::from("/h")),
            C::Conflict,
        ),
        (
            KeystoreError::NotInitialised(PathBuf::from("/h")),
            C::Damaged,
        ),
        (
            KeystoreError::SecretDamaged {
                ego: "work".into(),
                kind: "ego",
            },
            C::Damaged,
        ),
        (
            KeystoreError::Io {
                path: PathBuf::from("/h/agent.db"),
                source: io_error(),
            },
            C::Internal,
        ),
    ];
    for (e, code) in cases {
        let text = e.to_string();
        assert_eq!(shown(e), (code, text));
    }
}

#[test]
fn the_error_beneath_is_kept() {
    // A keystore failure: the keystore error, then its I/O error.
    let e = Error::from(KeystoreError::Io {
        path: PathBuf::from("/h/agent.db"),
        source: io_error(),
    });
    let ks = e.source().expect("the keystore error");
    assert!(ks.downcast_ref::<KeystoreError>().is_some());
    let io = ks.source().expect("the I/O error");
    assert_eq!(io.to_string(), "disk says no");

    // A network failure: the request error, its cause, and libp2p's
    // (here an I/O) error beneath.
    let e = Error::from(Network::InviterSilent(RequestError::Unreachable(
        Cause::caused_by("dial failed", io_error()),
    )));
    assert_eq!(
        e.to_string(),
        "the inviter's agent did not answer: could not reach the peer: dial failed"
    );
    let request = e.source().expect("the request error");
    assert!(request.downcast_ref::<RequestError>().is_some());
    let cause = request.source().expect("the cause");
    assert_eq!(
        cause.source().map(ToString::to_string).as_deref(),
        Some("disk says no")
    );

    // Each kind that wraps another error says so.
    for e in [
        Error::from(Network::NodeStopped(Stopped)),
        Error::from(Network::HelperSilent {
            helper: "eve".into(),
            source: Unanswered::Timeout,
        }),
        Error::from(Refused::Aggregate(CircleError::InvalidShare)),
        Error::from(Damaged::Circle(DecodeError::Truncated)),
        Error::from(BadInput::LocalRequest(LocalError::Field("nonce"))),
        Error::from(Internal::Link(BuildError::ChainFull)),
    ] {
        assert!(e.source().is_some(), "{e} has no source");
    }
}

#[test]
fn a_log_line_tells_the_chain_once() {
    let e = Error::from(Network::InviterSilent(RequestError::Unreachable(
        Cause::caused_by("dial failed", io_error()),
    )));
    assert_eq!(
        Chain(&e).to_string(),
        "the inviter's agent did not answer: could not reach the peer: dial failed: \
         disk says no"
    );
    let e = Error::from(KeystoreError::Io {
        path: PathBuf::from("/h/agent.db"),
        source: io_error(),
    });
    assert_eq!(Chain(&e).to_string(), "/h/agent.db: disk says no");
}

#[test]
fn a_publication_failure_reads_as_before() {
    assert_eq!(
        Unpublished::NoPeer.to_string(),
        "no peer has stored the record yet (no network?); retrying"
    );
    let refused = cyrcles_p2p::PublishError::StoreFull;
    assert_eq!(
        Unpublished::Failed(refused.clone()).to_string(),
        format!("publication failed: {refused}")
    );
    assert!(Unpublished::Failed(refused).source().is_some());
    assert_eq!(
        Unpublished::TakingLong.to_string(),
        "publication is taking long; the daemon keeps trying"
    );
}
