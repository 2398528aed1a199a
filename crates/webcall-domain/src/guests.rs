//! Guest links: a room's host makes an invite link (an expiry, a use limit);
//! a person without an account opens it, types a name and joins that room's
//! call as a guest, with a short-lived guest token that is good for nothing
//! else. Here: the records, the guest's name, and the two ports
//! ([`InviteRepository`], [`GuestTokenCodec`]).

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::model::{TokenError, UserId};
use crate::signaling::RoomName;
use crate::DomainError;

/// An invite link's id (what the list shows and revoking names; not its token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InviteId(pub Uuid);

impl InviteId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw).ok().map(Self)
    }
}

impl fmt::Display for InviteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An invite link as stored (its token only as a hash, elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: InviteId,
    pub room: RoomName,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `None`: as many guests as like until it expires.
    pub max_uses: Option<u32>,
    /// Guest tokens issued through it so far.
    pub uses: u32,
}

impl Invite {
    /// Whether it still lets a guest in at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at && self.max_uses.is_none_or(|max| self.uses < max)
    }
}

/// How presenting an invite token came out; a use is counted only when
/// `Admitted`, atomically with the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// One more use counted (`uses` includes it).
    Admitted(Invite),
    /// No such link: never made, revoked, or its room is gone.
    NotFound,
    Expired,
    UsedUp,
}

/// The name a guest types: 1-32 characters after trimming (runs of spaces
/// become one), letters and digits of any script, spaces, `.`, `_`, `-` and
/// `'`. Guests may take a name an account has: they are always shown with a
/// "guest" badge, so nobody passes for a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestName(String);

impl GuestName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-' | '\'');
        let len = name.chars().count();
        if !(1..=32).contains(&len) || !name.chars().all(allowed) {
            return Err(DomainError::Invalid {
                field: "name",
                message: "must be 1-32 letters, digits, spaces, '.', '_', '-' or '''",
            });
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a guest token says once its signature and expiry have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestClaims {
    /// A fresh id per token: the guest's user id in the call (no account has it).
    pub guest_id: UserId,
    /// The one room it lets into.
    pub room: RoomName,
    pub name: GuestName,
    pub jti: Uuid,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A freshly minted guest token with its claims.
#[derive(Debug)]
pub struct IssuedGuestToken {
    pub token: SecretString,
    pub claims: GuestClaims,
}

/// Invite links as stored; they go with their room.
#[async_trait]
pub trait InviteRepository: Send + Sync {
    /// Stores a link with the SHA-256 of its token; false if the room is gone.
    async fn create_invite(&self, invite: &Invite, token_hash: &str) -> Result<bool, DomainError>;
    /// The room's links, newest first.
    async fn list_invites(&self, room: &RoomName) -> Result<Vec<Invite>, DomainError>;
    /// Revokes (deletes) the link; false if the room has no such link.
    async fn delete_invite(&self, room: &RoomName, id: InviteId) -> Result<bool, DomainError>;
    /// The link with this token hash, used up or not.
    async fn find_invite(&self, token_hash: &str) -> Result<Option<Invite>, DomainError>;
    /// Counts one use if the link is usable at `now`; two guests racing for
    /// the last use cannot both have it.
    async fn redeem_invite(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, DomainError>;
}

/// Guest tokens: minted and checked apart from account tokens (their own
/// audience and key), so one is never taken for the other.
pub trait GuestTokenCodec: Send + Sync {
    fn issue(
        &self,
        guest_id: UserId,
        room: &RoomName,
        name: &GuestName,
        now: DateTime<Utc>,
    ) -> IssuedGuestToken;
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<GuestClaims, TokenError>;
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn guest_names_are_trimmed_and_checked() {
        assert_eq!(
            GuestName::parse("  Anna   K. ").unwrap().as_str(),
            "Anna K."
        );
        assert_eq!(GuestName::parse("Пётр").unwrap().as_str(), "Пётр");
        assert_eq!(GuestName::parse("O'Neil-2").unwrap().as_str(), "O'Neil-2");
        for bad in [
            "",
            "   ",
            "<script>",
            "a\u{0}b",
            "emoji 🙂",
            &"x".repeat(33),
        ] {
            assert!(GuestName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_invite_is_usable_until_it_expires_or_is_used_up() {
        let now = Utc::now();
        let invite = Invite {
            id: InviteId::new_random(),
            room: RoomName::parse("standup").unwrap(),
            created_by: UserId::new_random(),
            created_at: now,
            expires_at: now + Duration::hours(1),
            max_uses: Some(2),
            uses: 1,
        };
        assert!(invite.usable(now));
        assert!(!invite.usable(now + Duration::hours(1)));
        assert!(!Invite {
            uses: 2,
            ..invite.clone()
        }
        .usable(now));
        assert!(Invite {
            max_uses: None,
            uses: 5000,
            ..invite
        }
        .usable(now));
    }
}
