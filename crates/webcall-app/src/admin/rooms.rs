//! Rooms and calls, for admins: list rooms with who is in each, end a call
//! (the room stays), delete a room, lock it against newcomers, give it to
//! another owner; and the live calls, on every instance.

use webcall_domain::admin::OwnerChange;
use webcall_domain::model::UserId;
use webcall_domain::signaling::{PeerInfo, RoomName};

use super::{Actor, Admin};
use crate::rooms::RoomSummary;
use crate::AppError;

/// A page of rooms by name, and whether more follow.
#[derive(Debug, Clone)]
pub struct RoomPage {
    pub rooms: Vec<RoomSummary>,
    pub more: bool,
}

/// A room with a call in it now, and who is in it.
#[derive(Debug, Clone)]
pub struct LiveRoom {
    pub name: RoomName,
    pub peers: Vec<PeerInfo>,
}

impl Admin {
    /// Rooms by name, `limit` after `after`, each with who is in its call.
    pub async fn rooms(
        &self,
        _actor: &Actor,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<RoomPage, AppError> {
        let (rooms, more) = self.deps.rooms.list(after, limit).await?;
        Ok(RoomPage { rooms, more })
    }

    /// Every call going on now, on every instance, by room name.
    pub async fn live_calls(&self, _actor: &Actor) -> Result<Vec<LiveRoom>, AppError> {
        let mut rooms: Vec<LiveRoom> = self
            .deps
            .presence
            .occupancy()
            .await?
            .into_iter()
            .filter(|(_, peers)| !peers.is_empty())
            .map(|(name, mut peers)| {
                peers.sort_by(|a, b| a.username.cmp(&b.username));
                LiveRoom { name, peers }
            })
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rooms)
    }

    /// Ends the room's call: everyone in it is disconnected (4004, as if the
    /// room were deleted); the room stays.
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), room = %room))]
    pub async fn end_call(&self, actor: &Actor, room: &RoomName) -> Result<(), AppError> {
        self.deps
            .rooms
            .find(room)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        self.record(actor, "room.end", room.as_str(), None).await?;
        self.deps.hub.end_call(room).await;
        Ok(())
    }

    /// Deletes the room as its owner would: its call ends (4004), its chat and
    /// its files go.
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), room = %room))]
    pub async fn delete_room(&self, actor: &Actor, room: &RoomName) -> Result<(), AppError> {
        let entry = self.entry(actor, "room.delete", room.as_str(), None);
        let files = self.deps.hub.room_files(room).await;
        if !self.deps.store.delete_room_audited(room, entry).await? {
            return Err(AppError::RoomNotFound);
        }
        self.deps.hub.remove_room_files(files).await;
        self.deps.hub.end_call(room).await;
        tracing::info!("room deleted by an admin");
        Ok(())
    }

    /// Locks the room (newcomers are refused with 4005, those in the call
    /// stay) or unlocks it, on every instance.
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), room = %room))]
    pub async fn lock_room(
        &self,
        actor: &Actor,
        room: &RoomName,
        locked: bool,
    ) -> Result<(), AppError> {
        let action = if locked { "room.lock" } else { "room.unlock" };
        let entry = self.entry(actor, action, room.as_str(), None);
        if !self.deps.store.set_room_locked(room, locked, entry).await? {
            return Err(AppError::RoomNotFound);
        }
        self.deps.hub.room_changed(room).await;
        tracing::info!(locked, "room lock set");
        Ok(())
    }

    /// Gives the room to `owner` (who may then have more rooms than
    /// `ROOMS_PER_USER`: an admin's choice).
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), room = %room))]
    pub async fn set_owner(
        &self,
        actor: &Actor,
        room: &RoomName,
        owner: UserId,
    ) -> Result<(), AppError> {
        let user = self.user(owner).await?;
        let entry = self.entry(
            actor,
            "room.owner",
            room.as_str(),
            Some(user.username.as_str().to_owned()),
        );
        match self.deps.store.set_room_owner(room, owner, entry).await? {
            OwnerChange::Done => {}
            OwnerChange::NoSuchRoom => return Err(AppError::RoomNotFound),
            OwnerChange::NoSuchUser => return Err(AppError::UserNotFound),
        }
        self.deps.hub.room_changed(room).await;
        tracing::info!(owner = %owner, "room owner set");
        Ok(())
    }
}
