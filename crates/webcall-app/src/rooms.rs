//! Rooms as stored: create one within its owner's limits, find one, list them
//! with who is in each call now, and read a room's chat history. Ending a
//! room's call (deleting it) is the hub's: it has the connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use webcall_domain::model::UserId;
use webcall_domain::ports::{ChatRepository, Clock, Presence, RoomRepository};
use webcall_domain::signaling::{ChatMessage, PeerInfo, Room, RoomName};
use webcall_domain::DomainError;

use crate::rate::RateLimit;
use crate::AppError;

/// How many rooms one account may have and make.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    /// `ROOMS_PER_USER`: rooms one account may own (made by POST or by the
    /// first join of a new name).
    pub per_user: usize,
    /// `ROOM_CREATIONS_PER_HOUR`: rooms one account may create in an hour
    /// (creating and deleting in a loop is work for the database too).
    pub creations_per_hour: usize,
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            per_user: 50,
            creations_per_hour: 60,
        }
    }
}

/// A room with who is in it now.
#[derive(Debug, Clone)]
pub struct RoomSummary {
    pub room: Room,
    pub peers: Vec<PeerInfo>,
}

/// The ports [`RoomService`] works through.
pub struct RoomDeps {
    pub rooms: Arc<dyn RoomRepository>,
    pub chat: Arc<dyn ChatRepository>,
    pub presence: Arc<dyn Presence>,
    pub clock: Arc<dyn Clock>,
}

/// The room use cases.
pub struct RoomService {
    deps: RoomDeps,
    limits: RoomLimits,
    /// Room creations per user in the last hour.
    creations: RateLimit<UserId>,
}

impl RoomService {
    pub fn new(deps: RoomDeps, limits: RoomLimits) -> Self {
        Self {
            deps,
            creations: RateLimit::new(limits.creations_per_hour, Duration::from_secs(3600)),
            limits,
        }
    }

    /// Creates an empty room owned by `owner`, within the owner's hourly rate
    /// and room limit.
    pub async fn create(&self, name: &RoomName, owner: UserId) -> Result<Room, AppError> {
        let now = self.deps.clock.now();
        self.count_creation(owner, now)?;
        Ok(self
            .deps
            .rooms
            .create_room(name, owner, now, self.limits.per_user)
            .await?)
    }

    /// Counts a room creation by `owner` against the hourly rate.
    pub(crate) fn count_creation(&self, owner: UserId, now: DateTime<Utc>) -> Result<(), AppError> {
        self.creations
            .admit(owner, now)
            .map_err(|retry_after| AppError::RoomCreationRate { retry_after })
    }

    pub fn limits(&self) -> RoomLimits {
        self.limits
    }

    pub async fn find(&self, name: &RoomName) -> Result<Option<Room>, AppError> {
        Ok(self.deps.rooms.find_room(name).await?)
    }

    /// The room, created (owned by `user`) if it does not exist: the first join
    /// of a new name.
    pub async fn find_or_create(&self, name: &RoomName, user: UserId) -> Result<Room, AppError> {
        if let Some(room) = self.find(name).await? {
            return Ok(room);
        }
        match self.create(name, user).await {
            Ok(room) => Ok(room),
            // Two first joiners at once: the other one created it.
            Err(AppError::Domain(DomainError::RoomExists)) => {
                self.find(name).await?.ok_or(AppError::RoomNotFound)
            }
            Err(err) => Err(err),
        }
    }

    /// A page of rooms by name (those after `after`, up to `limit`), each with
    /// who is in it now; and whether more follow.
    pub async fn list(
        &self,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<(Vec<RoomSummary>, bool), AppError> {
        let mut rooms = self.deps.rooms.list_rooms(after, limit + 1).await?;
        let more = rooms.len() > limit;
        rooms.truncate(limit);
        Ok((self.with_peers(rooms).await?, more))
    }

    /// Each room with who is in its call now.
    pub(crate) async fn with_peers(&self, rooms: Vec<Room>) -> Result<Vec<RoomSummary>, AppError> {
        let mut occupancy: HashMap<RoomName, Vec<PeerInfo>> =
            self.deps.presence.occupancy().await?.into_iter().collect();
        let summaries = rooms
            .into_iter()
            .map(|room| RoomSummary {
                peers: occupancy.remove(&room.name).unwrap_or_default(),
                room,
            })
            .collect();
        Ok(summaries)
    }

    /// One room with who is in its call now (for the pre-join screen); `None`
    /// when there is no such room (its first joiner creates it).
    pub async fn summary(&self, name: &RoomName) -> Result<Option<RoomSummary>, AppError> {
        let Some(room) = self.find(name).await? else {
            return Ok(None);
        };
        let peers = self.deps.presence.peers(name).await?;
        Ok(Some(RoomSummary { room, peers }))
    }

    /// Every room `owner` owns (to end their calls before the account goes).
    pub async fn owned_by(&self, owner: UserId) -> Result<Vec<Room>, AppError> {
        let mut owned = Vec::new();
        let mut after: Option<RoomName> = None;
        loop {
            let page = self.deps.rooms.list_rooms(after.as_ref(), 500).await?;
            let Some(last) = page.last() else {
                return Ok(owned);
            };
            after = Some(last.name.clone());
            owned.extend(page.into_iter().filter(|room| room.owner == owner));
        }
    }

    /// Deletes the stored room and its chat (the hub ends its call first).
    pub(crate) async fn delete(&self, name: &RoomName) -> Result<bool, AppError> {
        Ok(self.deps.rooms.delete_room(name).await?)
    }

    /// A page of chat history, oldest first (`before` an id, at most `limit`).
    pub async fn messages(
        &self,
        name: &RoomName,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, AppError> {
        self.find(name).await?.ok_or(AppError::RoomNotFound)?;
        Ok(self.deps.chat.chat_before(name, before, limit).await?)
    }
}
