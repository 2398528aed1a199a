//! What an account may do: [`Role`]. A model like those in `model` (which
//! re-exports it), in a file of its own to keep that one small.

use crate::DomainError;

/// What an account may do: an admin runs the server (the admin API), a member
/// uses it. The first account registered is an admin, and so are the addresses
/// in `ADMIN_EMAILS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    Admin,
    #[default]
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            _ => Err(DomainError::Invalid {
                field: "role",
                message: "must be admin or member",
            }),
        }
    }
}
