//! [`RoomAccessRepository`] for [`MemoryStore`], with the SQL store's
//! contract: a room made with its access in one step (the limit, then the
//! name, then the owner), members only of rooms that exist.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use webcall_domain::access::{AccessChange, Member, RoomAccess};
use webcall_domain::model::UserId;
use webcall_domain::ports::RoomAccessRepository;
use webcall_domain::ports::RoomRepository;
use webcall_domain::signaling::{Room, RoomName};
use webcall_domain::DomainError;

use super::{lock, stored, MemoryStore};

#[async_trait]
impl RoomAccessRepository for MemoryStore {
    async fn create_room_with_access(
        &self,
        name: &RoomName,
        owner: UserId,
        at: DateTime<Utc>,
        max_owned: usize,
        access: &RoomAccess,
    ) -> Result<Room, DomainError> {
        self.create_room(name, owner, at, max_owned).await?;
        let mut state = lock(&self.state);
        state.access.insert(name.clone(), access.clone());
        Ok(state.room(name).expect("just inserted"))
    }

    async fn change_access(
        &self,
        room: &RoomName,
        change: &AccessChange,
    ) -> Result<bool, DomainError> {
        let mut state = lock(&self.state);
        if !state.rooms.contains_key(room) {
            return Ok(false);
        }
        let access = state.access.entry(room.clone()).or_default();
        if let Some(level) = change.access {
            access.access = level;
        }
        if let Some(password) = &change.password {
            access.password = password.clone();
        }
        if let Some(ask) = change.ask_to_join {
            access.ask_to_join = ask;
        }
        Ok(true)
    }

    async fn list_visible_rooms(
        &self,
        viewer: UserId,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<Room>, DomainError> {
        let state = lock(&self.state);
        Ok(state
            .rooms
            .keys()
            .filter(|name| after.is_none_or(|after| *name > after))
            .filter_map(|name| state.room(name))
            .filter(|room| {
                use webcall_domain::access::Access;
                room.access.access == Access::Public
                    || room.owner == viewer
                    || (room.access.access == Access::Private
                        && state.members.contains_key(&(room.name.clone(), viewer)))
            })
            .take(limit)
            .collect())
    }

    async fn is_member(&self, room: &RoomName, user: UserId) -> Result<bool, DomainError> {
        Ok(lock(&self.state)
            .members
            .contains_key(&(room.clone(), user)))
    }

    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, DomainError> {
        let state = lock(&self.state);
        let mut members: Vec<Member> = state
            .members
            .iter()
            .filter(|((name, _), _)| name == room)
            .filter_map(|((_, user), added_at)| {
                let (account, _) = state.users.get(user)?;
                Some(Member {
                    user_id: *user,
                    username: account.username.as_str().to_owned(),
                    added_at: *added_at,
                })
            })
            .collect();
        members.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(members)
    }

    async fn add_member(
        &self,
        room: &RoomName,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let mut state = lock(&self.state);
        if !state.rooms.contains_key(room) {
            return Ok(false);
        }
        state
            .members
            .entry((room.clone(), user))
            .or_insert(stored(at));
        Ok(true)
    }

    async fn remove_member(&self, room: &RoomName, user: UserId) -> Result<bool, DomainError> {
        Ok(lock(&self.state)
            .members
            .remove(&(room.clone(), user))
            .is_some())
    }
}
