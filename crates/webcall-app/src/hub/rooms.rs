//! Rooms for the REST API: create, list with who is in them, delete (the
//! call ends for everyone in it), and chat history.

use std::collections::HashMap;

use webcall_domain::model::UserId;
use webcall_domain::signaling::{ChatMessage, Command, PeerInfo, Room, RoomName};

use super::{Hub, RoomSummary};
use crate::AppError;

impl Hub {
    /// Creates an empty room owned by `owner` (REST).
    pub async fn create_room(&self, name: &RoomName, owner: UserId) -> Result<Room, AppError> {
        self.store_new_room(name, owner).await
    }

    /// Creates a room within the owner's hourly rate and room limit.
    pub(super) async fn store_new_room(
        &self,
        name: &RoomName,
        owner: UserId,
    ) -> Result<Room, AppError> {
        let now = self.deps.clock.now();
        self.creations
            .admit(owner, now)
            .map_err(|retry_after| AppError::RoomCreationRate { retry_after })?;
        Ok(self
            .deps
            .rooms
            .create_room(name, owner, now, self.config.max_rooms_per_user)
            .await?)
    }

    /// A page of rooms by name (those after `after`, up to `limit`), each with
    /// who is in it now; and whether more follow.
    pub async fn list_rooms(
        &self,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<(Vec<RoomSummary>, bool), AppError> {
        let mut rooms = self.deps.rooms.list_rooms(after, limit + 1).await?;
        let more = rooms.len() > limit;
        rooms.truncate(limit);
        let mut occupancy: HashMap<RoomName, Vec<PeerInfo>> =
            self.deps.presence.occupancy().await?.into_iter().collect();
        let summaries = rooms
            .into_iter()
            .map(|room| RoomSummary {
                peers: occupancy.remove(&room.name).unwrap_or_default(),
                room,
            })
            .collect();
        Ok((summaries, more))
    }

    /// The owner deletes a room: the call ends for everyone in it (close 4004).
    pub async fn delete_room(&self, name: &RoomName, user: UserId) -> Result<(), AppError> {
        let room = self
            .deps
            .rooms
            .find_room(name)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        if room.owner != user {
            return Err(AppError::NotRoomOwner);
        }
        // Who is in the call, on every instance, so that each is told the others
        // left. Without the list (the bus failed) each instance still tells its own.
        let peers = match self.deps.presence.peers(name).await {
            Ok(peers) => peers.into_iter().map(|peer| peer.peer_id).collect(),
            Err(err) => {
                tracing::warn!(room = %name, error = %err, "room deleted: presence unavailable");
                Vec::new()
            }
        };
        self.deps.rooms.delete_room(name).await?;
        self.command(Command::EndRoom {
            room: name.clone(),
            peers,
        })
        .await;
        tracing::info!(room = %name, "room deleted");
        Ok(())
    }

    /// Deletes every room `owner` owns, as [`Self::delete_room`] does (its calls
    /// end with 4004), before the account goes.
    pub async fn delete_rooms_of(&self, owner: UserId) -> Result<(), AppError> {
        let mut after: Option<RoomName> = None;
        loop {
            let page = self.deps.rooms.list_rooms(after.as_ref(), 500).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.name.clone());
            for room in page.iter().filter(|room| room.owner == owner) {
                match self.delete_room(&room.name, owner).await {
                    Ok(()) | Err(AppError::RoomNotFound) => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }

    /// A page of chat history, oldest first (`before` an id, at most `limit`).
    pub async fn messages(
        &self,
        name: &RoomName,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, AppError> {
        self.deps
            .rooms
            .find_room(name)
            .await?
            .ok_or(AppError::RoomNotFound)?;
        Ok(self.deps.chat.chat_before(name, before, limit).await?)
    }
}
