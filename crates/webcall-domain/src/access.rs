//! Who may enter a room: its access level ([`Access`]), its optional password
//! and "ask to join" flag ([`RoomAccess`]) and its members; their storage port
//! is `ports::RoomAccessRepository`. The decision itself (admit, wait in the
//! lobby, refuse) is the use cases' (`webcall-app`'s `admission`).

use chrono::{DateTime, Utc};

use crate::model::{PasswordHash, UserId};
use crate::DomainError;

/// A room's access level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Access {
    /// Listed to every signed-in user; anyone signed in may enter.
    #[default]
    Public,
    /// Not listed; anyone signed in who has the link may enter.
    Unlisted,
    /// Members only (the owner invites them by username); listed to them.
    Private,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unlisted => "unlisted",
            Self::Private => "private",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "public" => Ok(Self::Public),
            "unlisted" => Ok(Self::Unlisted),
            "private" => Ok(Self::Private),
            _ => Err(DomainError::Invalid {
                field: "access",
                message: "must be public, unlisted or private",
            }),
        }
    }
}

/// How a room lets people in, as stored with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomAccess {
    pub access: Access,
    /// The room password's hash (argon2, PHC string), if it has one.
    pub password: Option<PasswordHash>,
    /// Newcomers wait in the lobby until a host admits them.
    pub ask_to_join: bool,
}

/// A change to a room's access; `None` leaves that part as it is
/// (`password: Some(None)` removes the password).
#[derive(Debug, Clone, Default)]
pub struct AccessChange {
    pub access: Option<Access>,
    pub password: Option<Option<PasswordHash>>,
    pub ask_to_join: Option<bool>,
}

/// A member of a private room (any room may have members; only a private one
/// needs them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: UserId,
    pub username: String,
    pub added_at: DateTime<Utc>,
}
