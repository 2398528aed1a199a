//! Guest links: a room's host (its owner or an admin, [`is_host`]) makes,
//! lists and revokes invite links; a person without an account presents one
//! with a name and gets a guest token for that room alone.
//!
//! Tokens are 244 random bits (two version-4 UUIDs from the OS's generator);
//! only their SHA-256 is stored (a hash this fast is right for random tokens:
//! there is nothing to guess). A link's token is shown once, when it is made.
//! A use is counted per guest token issued, atomically with the checks, so a
//! link with one use left admits one guest. Revoking a link lets the guests
//! already in stay; ending or deleting the room removes them like everyone.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use webcall_domain::guests::{
    GuestClaims, GuestName, GuestTokenCodec, Invite, InviteId, InviteRepository, IssuedGuestToken,
    Redeemed,
};
use webcall_domain::model::{User, UserId};
use webcall_domain::ports::Clock;
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use crate::admission::is_host;
use crate::rooms::RoomService;
use crate::AppError;

/// Shortest and longest life of a link, and the default.
pub const MIN_LINK_LIFETIME: Duration = Duration::hours(1);
pub const MAX_LINK_LIFETIME: Duration = Duration::days(30);
pub const DEFAULT_LINK_LIFETIME: Duration = Duration::days(1);
/// Most uses a link may allow (or none: unlimited).
pub const MAX_LINK_USES: u32 = 1000;
/// Links a room may have at once (revoked ones do not count; expired ones do
/// until revoked), so that nobody fills the database with them.
pub const MAX_LINKS_PER_ROOM: usize = 100;
/// How long a guest token lets its holder into the room's call: a working
/// day. It is not refreshed; after it, the guest opens the link again (one
/// more use).
pub const GUEST_TOKEN_LIFETIME: Duration = Duration::hours(12);

/// The ports [`Guests`] works through.
pub struct GuestsDeps {
    pub invites: Arc<dyn InviteRepository>,
    pub rooms: Arc<RoomService>,
    pub tokens: Arc<dyn GuestTokenCodec>,
    pub clock: Arc<dyn Clock>,
}

/// A link as its host asks for it: lifetime in seconds (default a day) and
/// use limit (`None`: unlimited).
#[derive(Debug, Default, Clone, Copy)]
pub struct NewLink {
    pub expires_in_secs: Option<i64>,
    pub max_uses: Option<u32>,
}

/// A link just made: its record and its token, shown this once.
#[derive(Debug)]
pub struct CreatedLink {
    pub invite: Invite,
    pub token: SecretString,
}

/// The guest-link use cases.
pub struct Guests {
    deps: GuestsDeps,
}

/// What is stored of a token.
fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// An invite token as presented: anything but 64 lowercase hex digits is
/// unknown without asking storage.
fn well_formed(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Guests {
    pub fn new(deps: GuestsDeps) -> Self {
        Self { deps }
    }

    /// The room, if `caller` is one of its hosts (`NotRoomOwner` otherwise).
    async fn hosted(&self, caller: &User, room: &RoomName) -> Result<(), AppError> {
        let stored = self
            .deps
            .rooms
            .find(room)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        if !is_host(&stored, caller.id, caller.role) {
            return Err(AppError::NotRoomOwner);
        }
        Ok(())
    }

    /// A host makes a link for the room.
    #[tracing::instrument(skip_all, fields(user_id = %caller.id, room = %room))]
    pub async fn create(
        &self,
        caller: &User,
        room: &RoomName,
        link: NewLink,
    ) -> Result<CreatedLink, AppError> {
        let lifetime = match link.expires_in_secs {
            None => DEFAULT_LINK_LIFETIME,
            Some(secs) => Duration::try_seconds(secs)
                .filter(|d| (MIN_LINK_LIFETIME..=MAX_LINK_LIFETIME).contains(d))
                .ok_or(DomainError::Invalid {
                    field: "expires_in",
                    message: "must be 3600-2592000 seconds (1 hour to 30 days)",
                })?,
        };
        if link
            .max_uses
            .is_some_and(|uses| !(1..=MAX_LINK_USES).contains(&uses))
        {
            return Err(DomainError::Invalid {
                field: "max_uses",
                message: "must be 1-1000, or null for unlimited",
            }
            .into());
        }
        self.hosted(caller, room).await?;
        if self.deps.invites.list_invites(room).await?.len() >= MAX_LINKS_PER_ROOM {
            return Err(AppError::InviteLimit);
        }
        let now = self.deps.clock.now();
        let invite = Invite {
            id: InviteId::new_random(),
            room: room.clone(),
            created_by: caller.id,
            created_at: now,
            expires_at: now + lifetime,
            max_uses: link.max_uses,
            uses: 0,
        };
        let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        if !self
            .deps
            .invites
            .create_invite(&invite, &token_hash(&token))
            .await?
        {
            return Err(AppError::RoomNotFound);
        }
        tracing::info!(invite = %invite.id, "invite link made");
        Ok(CreatedLink {
            invite,
            token: SecretString::from(token),
        })
    }

    /// A host lists the room's links, newest first (never their tokens).
    pub async fn list(&self, caller: &User, room: &RoomName) -> Result<Vec<Invite>, AppError> {
        self.hosted(caller, room).await?;
        Ok(self.deps.invites.list_invites(room).await?)
    }

    /// A host revokes a link: nobody new gets in by it; guests already in stay.
    #[tracing::instrument(skip_all, fields(user_id = %caller.id, room = %room, invite = %id))]
    pub async fn revoke(
        &self,
        caller: &User,
        room: &RoomName,
        id: InviteId,
    ) -> Result<(), AppError> {
        self.hosted(caller, room).await?;
        if !self.deps.invites.delete_invite(room, id).await? {
            return Err(AppError::InviteNotFound);
        }
        tracing::info!("invite link revoked");
        Ok(())
    }

    /// What a link leads to, for the page a guest lands on (no use counted):
    /// `InviteNotFound`, `InviteExpired` or `InviteUsedUp` when it would not
    /// let them in.
    pub async fn preview(&self, token: &str) -> Result<Invite, AppError> {
        if !well_formed(token) {
            return Err(AppError::InviteNotFound);
        }
        let invite = self
            .deps
            .invites
            .find_invite(&token_hash(token))
            .await?
            .ok_or(AppError::InviteNotFound)?;
        let now = self.deps.clock.now();
        if now >= invite.expires_at {
            return Err(AppError::InviteExpired);
        }
        if !invite.usable(now) {
            return Err(AppError::InviteUsedUp);
        }
        Ok(invite)
    }

    /// A guest presents a link and a name: one use is counted and a guest
    /// token for the link's room is issued (a fresh guest id each time).
    #[tracing::instrument(skip_all)]
    pub async fn join(&self, token: &str, name: &str) -> Result<IssuedGuestToken, AppError> {
        let name = GuestName::parse(name)?;
        if !well_formed(token) {
            return Err(AppError::InviteNotFound);
        }
        let now = self.deps.clock.now();
        let invite = match self
            .deps
            .invites
            .redeem_invite(&token_hash(token), now)
            .await?
        {
            Redeemed::Admitted(invite) => invite,
            Redeemed::NotFound => return Err(AppError::InviteNotFound),
            Redeemed::Expired => return Err(AppError::InviteExpired),
            Redeemed::UsedUp => return Err(AppError::InviteUsedUp),
        };
        let issued = self
            .deps
            .tokens
            .issue(UserId::new_random(), &invite.room, &name, now);
        tracing::info!(invite = %invite.id, room = %invite.room, guest = %issued.claims.guest_id,
            "guest admitted by invite link");
        Ok(issued)
    }

    /// Checks a guest token (signature, audience, expiry).
    pub fn authenticate(&self, token: &SecretString) -> Result<GuestClaims, AppError> {
        self.deps
            .tokens
            .verify(token.expose_secret(), self.deps.clock.now())
            .map_err(AppError::from)
    }

    /// The guest token, checked, if it is one for `room` (`Forbidden` when it
    /// is for another room).
    pub fn admit_to(&self, token: &SecretString, room: &RoomName) -> Result<GuestClaims, AppError> {
        let claims = self.authenticate(token)?;
        if &claims.room != room {
            return Err(AppError::Forbidden);
        }
        Ok(claims)
    }
}
