//! [`MemoryInvites`]: guest links in memory with the SQL store's contract (a
//! link only for a room that exists; a use counted under one lock, never past
//! the limit or the expiry). [`MemoryGuestTokens`]: guest tokens that are
//! opaque ids remembered with their claims.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use webcall_domain::guests::{
    GuestClaims, GuestName, GuestTokenCodec, Invite, InviteId, InviteRepository, IssuedGuestToken,
    Redeemed,
};
use webcall_domain::model::{TokenError, UserId};
use webcall_domain::ports::RoomRepository;
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use super::{lock, stored, MemoryStore};

/// Invite links over a [`MemoryStore`]'s rooms.
pub struct MemoryInvites {
    rooms: Arc<MemoryStore>,
    /// Each link with its token hash, oldest first.
    links: Mutex<Vec<(Invite, String)>>,
}

impl MemoryInvites {
    pub fn new(rooms: Arc<MemoryStore>) -> Self {
        Self {
            rooms,
            links: Mutex::default(),
        }
    }

    /// Links whose room is gone go, as the foreign key's cascade does.
    async fn prune(&self) -> Result<(), DomainError> {
        let rooms: Vec<RoomName> = {
            let links = lock(&self.links);
            links.iter().map(|(i, _)| i.room.clone()).collect()
        };
        let mut gone = Vec::new();
        for room in rooms {
            if self.rooms.find_room(&room).await?.is_none() {
                gone.push(room);
            }
        }
        lock(&self.links).retain(|(i, _)| !gone.contains(&i.room));
        Ok(())
    }
}

#[async_trait]
impl InviteRepository for MemoryInvites {
    async fn create_invite(&self, invite: &Invite, token_hash: &str) -> Result<bool, DomainError> {
        if self.rooms.find_room(&invite.room).await?.is_none() {
            return Ok(false);
        }
        let mut kept = invite.clone();
        kept.created_at = stored(kept.created_at);
        kept.expires_at = stored(kept.expires_at);
        lock(&self.links).push((kept, token_hash.to_owned()));
        Ok(true)
    }

    async fn list_invites(&self, room: &RoomName) -> Result<Vec<Invite>, DomainError> {
        self.prune().await?;
        let links = lock(&self.links);
        Ok(links
            .iter()
            .rev()
            .filter(|(i, _)| &i.room == room)
            .map(|(i, _)| i.clone())
            .collect())
    }

    async fn delete_invite(&self, room: &RoomName, id: InviteId) -> Result<bool, DomainError> {
        let mut links = lock(&self.links);
        let before = links.len();
        links.retain(|(i, _)| !(i.id == id && &i.room == room));
        Ok(links.len() < before)
    }

    async fn find_invite(&self, token_hash: &str) -> Result<Option<Invite>, DomainError> {
        self.prune().await?;
        let links = lock(&self.links);
        Ok(links
            .iter()
            .find(|(_, hash)| hash == token_hash)
            .map(|(i, _)| i.clone()))
    }

    async fn redeem_invite(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, DomainError> {
        self.prune().await?;
        let mut links = lock(&self.links);
        let Some((invite, _)) = links.iter_mut().find(|(_, hash)| hash == token_hash) else {
            return Ok(Redeemed::NotFound);
        };
        if now >= invite.expires_at {
            return Ok(Redeemed::Expired);
        }
        if !invite.usable(now) {
            return Ok(Redeemed::UsedUp);
        }
        invite.uses += 1;
        Ok(Redeemed::Admitted(invite.clone()))
    }
}

/// Guest tokens as opaque ids, for the use cases' tests.
#[derive(Default)]
pub struct MemoryGuestTokens {
    issued: Mutex<HashMap<String, GuestClaims>>,
    lifetime: chrono::Duration,
}

impl MemoryGuestTokens {
    pub fn new(lifetime: chrono::Duration) -> Self {
        Self {
            issued: Mutex::default(),
            lifetime,
        }
    }
}

impl GuestTokenCodec for MemoryGuestTokens {
    fn issue(
        &self,
        guest_id: UserId,
        room: &RoomName,
        name: &GuestName,
        now: DateTime<Utc>,
    ) -> IssuedGuestToken {
        let claims = GuestClaims {
            guest_id,
            room: room.clone(),
            name: name.clone(),
            jti: Uuid::new_v4(),
            issued_at: now,
            expires_at: now + self.lifetime,
        };
        let token = claims.jti.simple().to_string();
        lock(&self.issued).insert(token.clone(), claims.clone());
        IssuedGuestToken {
            token: token.into(),
            claims,
        }
    }

    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<GuestClaims, TokenError> {
        let claims = lock(&self.issued)
            .get(token)
            .cloned()
            .ok_or(TokenError::Invalid)?;
        if now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}
