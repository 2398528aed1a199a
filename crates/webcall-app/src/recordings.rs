//! Recordings of routed calls as a room's hosts find them: the list, one
//! file to download, deleting one. Only a host of the room (its owner or an
//! admin, [`is_host`]) may; everyone else gets `NotRoomOwner` (403), and an
//! unknown room, recording or file is 404. Starting and stopping recordings
//! is the hub's (the signaling socket).
//!
//! The [`Recorder`] works on the disk: its calls run on a blocking thread.

use std::path::PathBuf;
use std::sync::Arc;

use webcall_domain::media::{Recorder, RecordingId, RecordingSummary};
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use crate::admission::{is_host, Caller};
use crate::rooms::RoomService;
use crate::AppError;

/// See the module docs.
pub struct RecordingsService {
    recorder: Arc<dyn Recorder>,
    rooms: Arc<RoomService>,
}

impl RecordingsService {
    pub fn new(recorder: Arc<dyn Recorder>, rooms: Arc<RoomService>) -> Self {
        Self { recorder, rooms }
    }

    /// The room's recordings, newest first.
    #[tracing::instrument(skip_all, fields(room = %room, user = %caller.user))]
    pub async fn list(
        &self,
        caller: Caller,
        room: &RoomName,
    ) -> Result<Vec<RecordingSummary>, AppError> {
        self.hosted(caller, room).await?;
        let room = room.clone();
        self.blocking(move |recorder| recorder.list(&room)).await
    }

    /// Where a recording's file is on disk (`name` as the list gave it).
    #[tracing::instrument(skip_all, fields(room = %room, user = %caller.user))]
    pub async fn file(
        &self,
        caller: Caller,
        room: &RoomName,
        id: &str,
        name: &str,
    ) -> Result<PathBuf, AppError> {
        self.hosted(caller, room).await?;
        let id = RecordingId::parse(id).ok_or(AppError::RecordingNotFound)?;
        let (room, name) = (room.clone(), name.to_owned());
        self.blocking(move |recorder| recorder.file_path(&room, &id, &name))
            .await?
            .ok_or(AppError::RecordingNotFound)
    }

    /// Deletes a recording and its files (not one that is running).
    #[tracing::instrument(skip_all, fields(room = %room, user = %caller.user))]
    pub async fn delete(&self, caller: Caller, room: &RoomName, id: &str) -> Result<(), AppError> {
        self.hosted(caller, room).await?;
        let id = RecordingId::parse(id).ok_or(AppError::RecordingNotFound)?;
        let room = room.clone();
        if self
            .blocking(move |recorder| recorder.delete(&room, &id))
            .await?
        {
            Ok(())
        } else {
            Err(AppError::RecordingNotFound)
        }
    }

    /// `RoomNotFound` without such a room, `NotRoomOwner` unless the
    /// caller is a host of it.
    async fn hosted(&self, caller: Caller, room: &RoomName) -> Result<(), AppError> {
        let stored = self.rooms.find(room).await?.ok_or(AppError::RoomNotFound)?;
        if !is_host(&stored, caller.user, caller.role) {
            return Err(AppError::NotRoomOwner);
        }
        Ok(())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn Recorder) -> Result<T, DomainError> + Send + 'static,
    ) -> Result<T, AppError> {
        let recorder = self.recorder.clone();
        let done = tokio::task::spawn_blocking(move || work(recorder.as_ref()))
            .await
            .map_err(DomainError::infrastructure)?;
        Ok(done?)
    }
}
