//! The domain's error type.

/// Anything boxed that an adapter reports as the cause of an infrastructure failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error the domain or a port reports.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A value failed validation (HTTP 422, naming `field`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    /// The e-mail address belongs to another account (HTTP 409).
    #[error("email already registered")]
    EmailTaken,
    /// The username belongs to another account (HTTP 409).
    #[error("username already taken")]
    UsernameTaken,
    /// A room of that name exists already (HTTP 409).
    #[error("room already exists")]
    RoomExists,
    /// The user owns as many rooms as one may (HTTP 403).
    #[error("you own {max} rooms, the most one account may; delete one first")]
    RoomLimit { max: usize },
    /// Too much work is queued (password hashing): try again after `retry_after`
    /// (HTTP 503 with Retry-After).
    #[error("the server is busy, try again shortly")]
    Overloaded { retry_after: std::time::Duration },
    /// Storage or another dependency failed (HTTP 500 / 503; details are logged, never returned).
    #[error("infrastructure failure")]
    Infrastructure(#[source] BoxError),
    /// A dependency is down or did not answer in time, for now: try again later
    /// (HTTP 503 `service_unavailable` with Retry-After; WS close 1013).
    #[error("a dependency is unavailable: try again later")]
    Unavailable(#[source] BoxError),
}

impl DomainError {
    /// Wraps an adapter's error as an infrastructure failure.
    pub fn infrastructure(err: impl Into<BoxError>) -> Self {
        Self::Infrastructure(err.into())
    }

    /// Wraps an adapter's error as a dependency being down for now.
    pub fn unavailable(err: impl Into<BoxError>) -> Self {
        Self::Unavailable(err.into())
    }
}
