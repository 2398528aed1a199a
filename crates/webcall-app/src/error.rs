//! The use-case layer's error type.

use std::time::Duration;

use webcall_domain::DomainError;

/// What a use case can fail with. The HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A domain rule or a dependency failed (422 / 409 / 500, by the inner error).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Registration secret missing or wrong (HTTP 403).
    #[error("registration secret is missing or wrong")]
    RegistrationSecretInvalid,
    /// Unknown account or wrong password, deliberately indistinguishable (HTTP 401).
    #[error("wrong email/username or password")]
    InvalidCredentials,
    /// Too many failed logins for this account or address (HTTP 429 with Retry-After).
    #[error("too many failed attempts")]
    TooManyAttempts { retry_after: Duration },
    /// No bearer token was sent (HTTP 401).
    #[error("authentication required")]
    TokenMissing,
    /// Bad signature, algorithm, claims, or an account that no longer exists (HTTP 401).
    #[error("token invalid")]
    TokenInvalid,
    /// The token's `exp` has passed (HTTP 401).
    #[error("token expired")]
    TokenExpired,
    /// The token was revoked by logout or refresh, or its family was (HTTP 401).
    #[error("token revoked")]
    TokenRevoked,
    /// The user created `ROOM_CREATIONS_PER_HOUR` rooms in the last hour
    /// (HTTP 429 with Retry-After; WS close 4013).
    #[error("too many rooms created; try again later")]
    RoomCreationRate { retry_after: Duration },
    /// A refreshed-away token was presented to refresh again: its whole family
    /// (`login`) is now revoked, and the connections opened with its tokens are
    /// to be closed (HTTP 401 `token_revoked`).
    #[error("token revoked")]
    TokenReplayed { login: uuid::Uuid },
    /// The room holds `ROOM_MAX_PEERS` already (WS close 4009).
    #[error("the room is full")]
    RoomFull,
    /// No such room (HTTP 404).
    #[error("no such room")]
    RoomNotFound,
    /// Only the room's owner may do that (HTTP 403).
    #[error("only the room's owner may do that")]
    NotRoomOwner,
    /// The addressed peer is not in the room (WS error frame).
    #[error("no such peer in this room")]
    PeerNotFound,
    /// A host banned this account from the room (WS close 4006; HTTP 403).
    #[error("you are banned from this room")]
    BannedFromRoom,
    /// Only hosts may turn their microphone on in this room now (WS error
    /// frame; HTTP 403).
    #[error("only hosts may speak in this room now")]
    HostsOnly,
    /// A routed call's rule refused the request (WS error frame with the
    /// refusal's code; HTTP 409).
    #[error("{0}")]
    Media(MediaRefusal),
    /// The caller is not an admin (HTTP 403 `forbidden`).
    #[error("only admins may do that")]
    Forbidden,
    /// The account is banned: no login, no token (HTTP 403 `banned`; WS close 4403).
    #[error("this account is banned")]
    Banned,
    /// An admin tried to ban themself (HTTP 409 `cannot_ban_self`).
    #[error("you cannot ban yourself")]
    CannotBanSelf,
    /// The change would leave no admin (HTTP 409 `last_admin`).
    #[error("the server needs at least one admin")]
    LastAdmin,
    /// No such account (HTTP 404 `user_not_found`).
    #[error("no such user")]
    UserNotFound,
    /// An admin locked the room: no newcomers (WS close 4005).
    #[error("the room is locked")]
    RoomLocked,
    /// A password-reset link that is unknown, used or expired (HTTP 400
    /// `reset_link_invalid`).
    #[error("this reset link is invalid, used or expired")]
    ResetLinkInvalid,
    /// Too many admin requests (HTTP 429 `too_many_requests` with Retry-After).
    #[error("too many requests; try again later")]
    TooManyRequests { retry_after: Duration },
    /// A private room, and the caller is no member (HTTP 403 `room_private`;
    /// WS close 4010).
    #[error("this room is private: only its members may enter")]
    RoomPrivate,
    /// The room has a password and no valid room pass came (HTTP 403
    /// `room_password_required`; WS close 4011).
    #[error("this room needs its password")]
    RoomPasswordRequired,
    /// A wrong room password (HTTP 403 `room_password_wrong`).
    #[error("wrong room password")]
    RoomPasswordWrong,
    /// A room pass was asked of a room without a password (HTTP 409
    /// `room_has_no_password`).
    #[error("this room has no password")]
    RoomHasNoPassword,
    /// The room is locked or asks to join: the newcomer waits in its lobby
    /// until a host answers (never an HTTP answer; the WS sends `waiting`).
    #[error("waiting for a host to let you in")]
    MustWait,
    /// A host denied the newcomer in the lobby (WS close 4012).
    #[error("a host did not let you in")]
    Denied,
    /// No such invite link: never made, revoked, or its room is gone (HTTP 404
    /// `invite_not_found`).
    #[error("this invite link does not exist or was revoked")]
    InviteNotFound,
    /// The invite link's time is over (HTTP 410 `invite_expired`).
    #[error("this invite link has expired")]
    InviteExpired,
    /// The invite link admitted as many guests as it allows (HTTP 410
    /// `invite_used_up`).
    #[error("this invite link has been used up")]
    InviteUsedUp,
    /// The room has as many invite links as it may (HTTP 409 `invite_limit`).
    #[error("this room has too many invite links; revoke some first")]
    InviteLimit,
    /// No relay allocation has that id (HTTP 404).
    #[error("no such relay allocation")]
    AllocationNotFound,
    /// The embedded TURN relay does not run here: there are no allocations or
    /// quotas to manage, and its key does not rotate (HTTP 409).
    #[error("the embedded TURN relay does not run on this server; an external TURN server's secret is changed in its own configuration and TURN_SECRET, then both restart")]
    RelayNotRunning,
    /// A guest token tried to upload a file (HTTP 403 `guest_upload_forbidden`).
    #[error("guests may download files, not upload them")]
    GuestUploadForbidden,
    /// An upload without `Content-Length` (HTTP 411 `length_required`).
    #[error("an upload needs a Content-Length")]
    LengthRequired,
    /// The file is larger than `ATTACHMENT_MAX_BYTES` (HTTP 413 `too_large`).
    #[error("the file is larger than {max} bytes")]
    FileTooLarge { max: u64 },
    /// The user's or the server's file quota would be passed (HTTP 413
    /// `quota_exceeded`).
    #[error("{0}")]
    QuotaExceeded(Quota),
    /// Too many uploads at once or started lately by one user (HTTP 429
    /// `too_many_uploads`, with Retry-After).
    #[error("too many uploads; wait for one to finish or try again later")]
    TooManyUploads { retry_after: Duration },
    /// The body was longer or shorter than its `Content-Length`, or ended
    /// before it (the client went away) (HTTP 400 `size_mismatch`).
    #[error("the body does not have the length its Content-Length said")]
    SizeMismatch,
    /// No such file in this room (HTTP 404 `attachment_not_found`).
    #[error("no such file in this room")]
    AttachmentNotFound,
    /// The file has no preview (HTTP 404 `thumbnail_not_found`).
    #[error("this file has no preview")]
    ThumbnailNotFound,
    /// Only the file's sender or a host of the room may delete it (HTTP 403
    /// `not_sender`).
    #[error("only its sender or a host of the room may delete this file")]
    NotSender,
    /// No such recording of this room, or no such file in it (HTTP 404
    /// `recording_not_found`).
    #[error("no such recording or file in this room")]
    RecordingNotFound,
    /// This server does not record calls (HTTP 404 `recording_disabled`).
    #[error("recording is not enabled on this server")]
    RecordingDisabled,
}

/// Why a routed call (SFU mode) or its recording refused a request; each has
/// the stable code of its `error` frame ([`MediaRefusal::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaRefusal {
    /// The room is routed and the client does not know routed calls.
    UpdateRequired,
    /// Routed calls are off here (`SFU_ENABLED=false`, or several instances).
    SfuUnavailable,
    /// An `sfu` frame while the room is a mesh.
    NotRouted,
    /// A recording runs (start again, or back to mesh, is refused).
    RecordingRunning,
    /// A stop with no recording running.
    NotRecording,
}

impl MediaRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::UpdateRequired => "update_required",
            Self::SfuUnavailable => "sfu_unavailable",
            Self::NotRouted => "not_routed",
            Self::RecordingRunning => "recording_running",
            Self::NotRecording => "not_recording",
        }
    }
}

impl std::fmt::Display for MediaRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::UpdateRequired => {
                "This call now goes through the server and this page is out of date: reload it."
            }
            Self::SfuUnavailable => "routed calls are not available on this server",
            Self::NotRouted => "this call is not routed through the server",
            Self::RecordingRunning => "a recording is running: stop it first",
            Self::NotRecording => "no recording is running",
        })
    }
}

/// Whose file quota an upload would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// `ATTACHMENT_QUOTA_USER_BYTES`.
    User,
    /// `ATTACHMENT_QUOTA_TOTAL_BYTES`.
    Server,
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Quota::User => "your file quota is used up: delete some of your files first",
            Quota::Server => "the server's file quota is used up",
        })
    }
}
