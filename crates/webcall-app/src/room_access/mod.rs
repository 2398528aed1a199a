//! The access use cases behind the REST API: create a room with its access,
//! change it and its members (hosts only), trade the room password for a room
//! pass (throttled against guessing), and what one room or the room list shows
//! a caller — each through [`decide`](crate::admission::decide).

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use webcall_domain::access::{Access, AccessChange, Member, RoomAccess};
use webcall_domain::model::{LoginIdentifier, Password, Role, Username};
use webcall_domain::ports::RoomAccessRepository;
use webcall_domain::ports::{Clock, PasswordHasher, Presence, RoomModeration, UserRepository};
use webcall_domain::signaling::{ChatMessage, Room, RoomName};
use webcall_domain::DomainError;

use crate::admission::{
    decide, is_host, needs_membership, pass_ok, Admission, Caller, Facts, Refusal, RoomPasses,
};
use crate::hub::Hub;
use crate::rooms::{RoomService, RoomSummary};
use crate::throttle::{LoginThrottle, ThrottleConfig};
use crate::AppError;

/// The ports and services [`AccessService`] works through.
pub struct AccessDeps {
    pub rooms: Arc<RoomService>,
    pub access: Arc<dyn RoomAccessRepository>,
    pub moderation: Arc<dyn RoomModeration>,
    pub users: Arc<dyn UserRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub presence: Arc<dyn Presence>,
    pub clock: Arc<dyn Clock>,
    /// Told when a room's access changed, so every instance reads it again.
    pub hub: Arc<Hub>,
}

/// One room as a caller may see it (the pre-join screen).
#[derive(Debug, Clone)]
pub struct RoomView {
    pub summary: RoomSummary,
    /// What joining now would come to (`Refuse(PasswordRequired)` asks for
    /// the password; the people in the call are not shown then).
    pub admission: Admission,
    /// The caller is a host: they may change the room's access.
    pub host: bool,
}

/// See the module docs.
pub struct AccessService {
    deps: AccessDeps,
    passes: RoomPasses,
    /// Wrong room passwords per room and account, and per address.
    guesses: LoginThrottle,
}

impl AccessService {
    pub fn new(deps: AccessDeps, throttle: ThrottleConfig) -> Self {
        Self {
            deps,
            passes: RoomPasses::default(),
            guesses: LoginThrottle::new(throttle),
        }
    }

    /// Creates a room owned by the caller with its access level, password and
    /// "ask to join" (within the owner's room limits), in one step.
    pub async fn create(
        &self,
        caller: Caller,
        name: &RoomName,
        access: Access,
        password: Option<String>,
        ask_to_join: bool,
    ) -> Result<Room, AppError> {
        let password = match password {
            Some(raw) => Some(self.hash(raw).await?),
            None => None,
        };
        let now = self.deps.clock.now();
        self.deps.rooms.count_creation(caller.user, now)?;
        let settings = RoomAccess {
            access,
            password,
            ask_to_join,
        };
        Ok(self
            .deps
            .access
            .create_room_with_access(
                name,
                caller.user,
                now,
                self.deps.rooms.limits().per_user,
                &settings,
            )
            .await?)
    }

    /// A host changes the room's access level, password (`Some(None)`
    /// removes it) or "ask to join"; every instance reads the room again.
    pub async fn change(
        &self,
        caller: Caller,
        name: &RoomName,
        access: Option<Access>,
        password: Option<Option<String>>,
        ask_to_join: Option<bool>,
    ) -> Result<Room, AppError> {
        self.hosted(caller, name).await?;
        let password = match password {
            Some(Some(raw)) => Some(Some(self.hash(raw).await?)),
            Some(None) => Some(None),
            None => None,
        };
        let change = AccessChange {
            access,
            password,
            ask_to_join,
        };
        if !self.deps.access.change_access(name, &change).await? {
            return Err(AppError::RoomNotFound);
        }
        self.deps.hub.room_changed(name).await;
        tracing::info!(room = %name, "room access changed");
        self.deps
            .rooms
            .find(name)
            .await?
            .ok_or(AppError::RoomNotFound)
    }

    /// The room's members (hosts only).
    pub async fn members(&self, caller: Caller, name: &RoomName) -> Result<Vec<Member>, AppError> {
        self.hosted(caller, name).await?;
        Ok(self.deps.access.members(name).await?)
    }

    /// A host invites the account named `username` (again is fine).
    pub async fn add_member(
        &self,
        caller: Caller,
        name: &RoomName,
        username: &str,
    ) -> Result<Member, AppError> {
        self.hosted(caller, name).await?;
        let user = self.user_named(username).await?;
        let now = self.deps.clock.now();
        if !self.deps.access.add_member(name, user.id, now).await? {
            return Err(AppError::RoomNotFound);
        }
        Ok(Member {
            user_id: user.id,
            username: user.username.as_str().to_owned(),
            added_at: now,
        })
    }

    /// A host removes a member (they may not enter a private room again; a
    /// call they are in goes on).
    pub async fn remove_member(
        &self,
        caller: Caller,
        name: &RoomName,
        username: &str,
    ) -> Result<(), AppError> {
        self.hosted(caller, name).await?;
        let user = self.user_named(username).await?;
        if !self.deps.access.remove_member(name, user.id).await? {
            return Err(AppError::UserNotFound);
        }
        Ok(())
    }

    /// Trades the room's password for a room pass (see [`RoomPasses`]). Wrong
    /// passwords are throttled per room and account and per address, like
    /// logins (429 `too_many_attempts` with Retry-After).
    pub async fn unlock(
        &self,
        caller: Caller,
        name: &RoomName,
        password: String,
        client: IpAddr,
    ) -> Result<(String, DateTime<Utc>), AppError> {
        let room = self
            .deps
            .rooms
            .find(name)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        let facts = self.facts(&room, caller).await?;
        if let Admission::Refuse(refusal @ (Refusal::Banned | Refusal::Private)) =
            decide(&room, caller, facts)
        {
            return Err(refusal.into());
        }
        let Some(hash) = room.access.password.clone() else {
            return Err(AppError::RoomHasNoPassword);
        };
        let password = Password::for_login(password)?;
        let now = self.deps.clock.now();
        let key = format!("room-pass:{name}:{}", caller.user);
        self.guesses
            .reserve(&key, client, now)
            .map_err(|retry_after| AppError::TooManyAttempts { retry_after })?;
        let right = match self.deps.hasher.verify(&password, Some(&hash)).await {
            Ok(right) => right,
            Err(err) => {
                self.guesses.release(&key, client, now);
                return Err(err.into());
            }
        };
        if !right {
            tracing::info!(room = %name, "wrong room password");
            return Err(AppError::RoomPasswordWrong);
        }
        self.guesses.succeeded(&key, client, now);
        Ok(self.passes.mint(name, caller.user, &hash, now))
    }

    /// The room and who is in its call, with what joining would come to;
    /// `RoomPrivate` / `BannedFromRoom` when the caller may not enter at all,
    /// `None` when there is no such room (joining creates it).
    pub async fn view(
        &self,
        caller: Caller,
        name: &RoomName,
        pass: Option<&str>,
    ) -> Result<Option<RoomView>, AppError> {
        let Some(room) = self.deps.rooms.find(name).await? else {
            return Ok(None);
        };
        let mut facts = self.facts(&room, caller).await?;
        facts.pass_ok = pass_ok(&self.passes, &room, caller, pass, self.deps.clock.now());
        let admission = decide(&room, caller, facts);
        if let Admission::Refuse(refusal @ (Refusal::Banned | Refusal::Private)) = admission {
            return Err(refusal.into());
        }
        let peers = match admission {
            Admission::Refuse(_) => Vec::new(),
            _ => self.deps.presence.peers(name).await?,
        };
        Ok(Some(RoomView {
            host: is_host(&room, caller.user, caller.role),
            summary: RoomSummary { room, peers },
            admission,
        }))
    }

    /// A page of the room's chat history (see `RoomService::messages`), for
    /// those who may enter it: a private room's non-member, a banned account
    /// and, without a valid room pass, anyone but a host of a room with a
    /// password are refused. (A lobby does not hide the history: the room is
    /// known to the caller, and nobody inside is shown by it.)
    pub async fn history(
        &self,
        caller: Caller,
        name: &RoomName,
        pass: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, AppError> {
        let view = self.view(caller, name, pass).await?;
        if let Some(RoomView {
            admission: Admission::Refuse(refusal),
            ..
        }) = view
        {
            return Err(refusal.into());
        }
        self.deps.rooms.messages(name, before, limit).await
    }

    /// The room, if its history (and so its files) is open to the caller by
    /// the rule of [`Self::history`]; `RoomNotFound` when there is no such
    /// room, the refusal's error otherwise.
    pub async fn readable(
        &self,
        caller: Caller,
        name: &RoomName,
        pass: Option<&str>,
    ) -> Result<Room, AppError> {
        let room = self
            .deps
            .rooms
            .find(name)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        let mut facts = self.facts(&room, caller).await?;
        facts.pass_ok = pass_ok(&self.passes, &room, caller, pass, self.deps.clock.now());
        match decide(&room, caller, facts) {
            Admission::Refuse(refusal) => Err(refusal.into()),
            Admission::Admit | Admission::Wait => Ok(room),
        }
    }

    /// A page of the rooms the caller may see listed, by name: admins see
    /// every room; others public ones, their own, and private ones they are a
    /// member of. With whether more follow.
    pub async fn list(
        &self,
        caller: Caller,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<(Vec<RoomSummary>, bool), AppError> {
        if caller.role == Role::Admin {
            return self.deps.rooms.list(after, limit).await;
        }
        let mut rooms = self
            .deps
            .access
            .list_visible_rooms(caller.user, after, limit + 1)
            .await?;
        let more = rooms.len() > limit;
        rooms.truncate(limit);
        Ok((self.deps.rooms.with_peers(rooms).await?, more))
    }

    /// The room if the caller is a host of it; `NotRoomOwner` otherwise.
    async fn hosted(&self, caller: Caller, name: &RoomName) -> Result<Room, AppError> {
        let room = self
            .deps
            .rooms
            .find(name)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        if !is_host(&room, caller.user, caller.role) {
            return Err(AppError::NotRoomOwner);
        }
        Ok(room)
    }

    /// What the decision needs besides the room and a pass.
    async fn facts(&self, room: &Room, caller: Caller) -> Result<Facts, AppError> {
        let member = if needs_membership(room, caller) {
            self.deps.access.is_member(&room.name, caller.user).await?
        } else {
            false
        };
        let rules = self.deps.moderation.room_rules(&room.name).await?;
        Ok(Facts {
            member,
            banned: rules.is_banned(caller.user),
            ..Facts::default()
        })
    }

    async fn user_named(&self, username: &str) -> Result<webcall_domain::model::User, AppError> {
        let name = Username::parse(username).map_err(|_| AppError::UserNotFound)?;
        let found = self
            .deps
            .users
            .find_for_login(&LoginIdentifier::Username(name))
            .await?;
        found.map(|(user, _)| user).ok_or(AppError::UserNotFound)
    }

    async fn hash(&self, raw: String) -> Result<webcall_domain::model::PasswordHash, AppError> {
        if raw.is_empty() || raw.chars().count() > 128 {
            return Err(DomainError::Invalid {
                field: "password",
                message: "must be 1-128 characters",
            }
            .into());
        }
        let password = Password::for_login(raw)?;
        Ok(self.deps.hasher.hash(&password).await?)
    }
}

#[cfg(test)]
mod tests;
