//! The API's one error shape:
//! `{"error": {"code": "registration_secret_invalid", "message": "…", "field": "email"}}`.
//! `code` is stable API (the web client translates it); `field` appears on 409/422.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use webcall_app::AppError;
use webcall_domain::DomainError;

/// An error on its way to becoming an HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A use case failed; its status depends on the variant.
    #[error(transparent)]
    App(#[from] AppError),
    /// The body is not syntactically valid JSON (400 `malformed_json`).
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// A JSON value has the wrong type (422 `validation_failed`, with `field` when known).
    #[error("{message}")]
    InvalidBody {
        field: Option<String>,
        message: String,
    },
    /// Body sent without `Content-Type: application/json` (415 `unsupported_media_type`).
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// Body over the size limit (413 `payload_too_large`).
    #[error("request body is too large")]
    PayloadTooLarge,
    /// The body could not be read (400 `bad_request`).
    #[error("could not read the request body")]
    BadRequest,
    /// No such route (404 `not_found`).
    #[error("no such endpoint")]
    NotFound,
    /// The route exists, the method does not (405 `method_not_allowed`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The account holds `WS_MAX_PER_USER` signaling sockets already (429
    /// `too_many_connections`).
    #[error("too many open calls for this account; close one first")]
    TooManyConnections,
    /// A dependency is down (503 `not_ready`).
    #[error("{0} is not ready")]
    NotReady(&'static str),
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        Self::App(AppError::Domain(err))
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// Status, stable code and the field the error is about.
    fn parts(&self) -> (StatusCode, &'static str, Option<&str>) {
        use AppError as A;
        use DomainError as D;
        match self {
            Self::App(A::Domain(D::Invalid { field, .. })) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                Some(field),
            ),
            Self::App(A::Domain(D::EmailTaken)) => {
                (StatusCode::CONFLICT, "email_taken", Some("email"))
            }
            Self::App(A::Domain(D::UsernameTaken)) => {
                (StatusCode::CONFLICT, "username_taken", Some("username"))
            }
            Self::App(A::Domain(D::RoomExists)) => {
                (StatusCode::CONFLICT, "room_exists", Some("name"))
            }
            Self::App(A::Domain(D::RoomLimit { .. })) => {
                (StatusCode::FORBIDDEN, "room_limit_reached", None)
            }
            Self::App(A::RoomFull) => (StatusCode::CONFLICT, "room_full", None),
            Self::App(A::RoomNotFound) => (StatusCode::NOT_FOUND, "room_not_found", None),
            Self::App(A::NotRoomOwner) => (StatusCode::FORBIDDEN, "not_room_owner", None),
            Self::App(A::PeerNotFound) => (StatusCode::NOT_FOUND, "peer_not_found", None),
            Self::App(A::BannedFromRoom) => (StatusCode::FORBIDDEN, "banned_from_room", None),
            Self::App(A::HostsOnly) => (StatusCode::FORBIDDEN, "hosts_only", None),
            Self::App(A::Media(refusal)) => (StatusCode::CONFLICT, refusal.code(), None),
            Self::App(A::InviteNotFound) => (StatusCode::NOT_FOUND, "invite_not_found", None),
            Self::App(A::InviteExpired) => (StatusCode::GONE, "invite_expired", None),
            Self::App(A::InviteUsedUp) => (StatusCode::GONE, "invite_used_up", None),
            Self::App(A::InviteLimit) => (StatusCode::CONFLICT, "invite_limit", None),
            Self::App(A::AllocationNotFound) => {
                (StatusCode::NOT_FOUND, "allocation_not_found", None)
            }
            Self::App(A::RelayNotRunning) => (StatusCode::CONFLICT, "turn_relay_not_running", None),
            Self::App(A::GuestUploadForbidden) => {
                (StatusCode::FORBIDDEN, "guest_upload_forbidden", None)
            }
            Self::App(A::LengthRequired) => (StatusCode::LENGTH_REQUIRED, "length_required", None),
            Self::App(A::FileTooLarge { .. }) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", None),
            Self::App(A::QuotaExceeded(_)) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded", None)
            }
            Self::App(A::TooManyUploads { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads", None)
            }
            Self::App(A::SizeMismatch) => (StatusCode::BAD_REQUEST, "size_mismatch", None),
            Self::App(A::AttachmentNotFound) => {
                (StatusCode::NOT_FOUND, "attachment_not_found", None)
            }
            Self::App(A::ThumbnailNotFound) => (StatusCode::NOT_FOUND, "thumbnail_not_found", None),
            Self::App(A::NotSender) => (StatusCode::FORBIDDEN, "not_sender", None),
            Self::App(A::RecordingNotFound) => (StatusCode::NOT_FOUND, "recording_not_found", None),
            Self::App(A::RecordingDisabled) => (StatusCode::NOT_FOUND, "recording_disabled", None),
            Self::App(A::Domain(D::Overloaded { .. })) => {
                (StatusCode::SERVICE_UNAVAILABLE, "overloaded", None)
            }
            Self::App(A::Domain(D::Infrastructure(_))) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal_error", None)
            }
            Self::App(A::Domain(D::Unavailable(_))) => {
                (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", None)
            }
            Self::App(A::RegistrationSecretInvalid) => {
                (StatusCode::FORBIDDEN, "registration_secret_invalid", None)
            }
            Self::App(A::InvalidCredentials) => {
                (StatusCode::UNAUTHORIZED, "invalid_credentials", None)
            }
            Self::App(A::TooManyAttempts { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", None)
            }
            Self::App(A::RoomCreationRate { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, "room_creation_rate", None)
            }
            Self::App(A::TokenMissing) => (StatusCode::UNAUTHORIZED, "token_missing", None),
            Self::App(A::TokenInvalid) => (StatusCode::UNAUTHORIZED, "token_invalid", None),
            Self::App(A::TokenExpired) => (StatusCode::UNAUTHORIZED, "token_expired", None),
            Self::App(A::TokenRevoked | A::TokenReplayed { .. }) => {
                (StatusCode::UNAUTHORIZED, "token_revoked", None)
            }
            Self::App(A::Forbidden) => (StatusCode::FORBIDDEN, "forbidden", None),
            Self::App(A::Banned) => (StatusCode::FORBIDDEN, "banned", None),
            Self::App(A::CannotBanSelf) => (StatusCode::CONFLICT, "cannot_ban_self", None),
            Self::App(A::LastAdmin) => (StatusCode::CONFLICT, "last_admin", None),
            Self::App(A::UserNotFound) => (StatusCode::NOT_FOUND, "user_not_found", None),
            Self::App(A::RoomLocked) => (StatusCode::FORBIDDEN, "room_locked", None),
            Self::App(A::RoomPrivate) => (StatusCode::FORBIDDEN, "room_private", None),
            Self::App(A::RoomPasswordRequired) => {
                (StatusCode::FORBIDDEN, "room_password_required", None)
            }
            Self::App(A::RoomPasswordWrong) => (StatusCode::FORBIDDEN, "room_password_wrong", None),
            Self::App(A::RoomHasNoPassword) => (StatusCode::CONFLICT, "room_has_no_password", None),
            // Never an HTTP answer: the WebSocket puts the newcomer in the lobby.
            Self::App(A::MustWait) => (StatusCode::FORBIDDEN, "waiting", None),
            Self::App(A::Denied) => (StatusCode::FORBIDDEN, "denied", None),
            Self::App(A::ResetLinkInvalid) => (StatusCode::BAD_REQUEST, "reset_link_invalid", None),
            Self::App(A::TooManyRequests { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests", None)
            }
            Self::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json", None),
            Self::InvalidBody { field, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                field.as_deref(),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
            Self::BadRequest => (StatusCode::BAD_REQUEST, "bad_request", None),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", None),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None),
            Self::TooManyConnections => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_connections", None)
            }
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready", None),
        }
    }

    /// The message shown to the client; internal errors say nothing of their cause.
    fn public_message(&self) -> String {
        match self {
            Self::App(AppError::Domain(DomainError::Infrastructure(_))) => {
                "internal server error".to_owned()
            }
            Self::App(AppError::Domain(DomainError::Unavailable(_))) => {
                "temporarily unavailable: try again later".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.parts();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %ErrorChain(&self), code, "request failed");
        } else if status.is_server_error() {
            tracing::error!(error = %ErrorChain(&self), code, "request failed");
        }
        let body = Body {
            error: Detail {
                code,
                message: self.public_message(),
                field,
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::App(
                AppError::TooManyAttempts { retry_after }
                | AppError::RoomCreationRate { retry_after }
                | AppError::TooManyRequests { retry_after }
                | AppError::TooManyUploads { retry_after }
                | AppError::Domain(DomainError::Overloaded { retry_after }),
            ) => {
                headers.insert(header::RETRY_AFTER, retry_after_value(*retry_after));
            }
            Self::App(AppError::Domain(DomainError::Unavailable(_))) => {
                headers.insert(header::RETRY_AFTER, retry_after_value(UNAVAILABLE_RETRY));
            }
            Self::App(
                AppError::TokenMissing
                | AppError::TokenInvalid
                | AppError::TokenExpired
                | AppError::TokenRevoked
                | AppError::TokenReplayed { .. },
            ) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// When a client should try again after a dependency was unavailable.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(2);

/// Whole seconds, rounded up, at least 1.
fn retry_after_value(wait: Duration) -> HeaderValue {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(secs.max(1))
}

/// Formats an error with its whole `source()` chain, for the log.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_value(Duration::from_millis(1500)), "2");
        assert_eq!(retry_after_value(Duration::from_secs(60)), "60");
        assert_eq!(retry_after_value(Duration::ZERO), "1");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::from(DomainError::infrastructure("password=hunter2 at db host"));
        assert_eq!(err.public_message(), "internal server error");
        assert_eq!(err.parts().0, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_unavailable_dependency_is_a_503_that_hides_its_cause() {
        let err = ApiError::from(DomainError::unavailable("redis://:secret@cache refused"));
        assert_eq!(
            err.public_message(),
            "temporarily unavailable: try again later"
        );
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
