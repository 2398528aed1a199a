//! Files in a room's chat (attachments): upload one to a room, download it
//! or its preview, delete it, and the sweep that applies retention and
//! removes what a crash left behind.
//!
//! Who may: an upload or a download is open to whoever the room's history is
//! open to ([`AccessService::readable`], the admission decision); a guest
//! token may download in its own room but never upload. A file is deleted by
//! its sender or a host of the room ([`is_host`]).
//!
//! Layout: this file is the service, its limits, downloads, deletion and the
//! sweep; `upload` the upload (limits, rate, quotas, streaming into the
//! [`FileStore`], the preview, the record and the message); `ledger` what
//! uploads in flight hold (a slot per upload and the bytes it reserved,
//! given back on drop); tests in `tests`.

mod ledger;
#[cfg(test)]
mod tests;
mod upload;

pub use upload::{UploadBody, UploadRequest};

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use webcall_domain::attachments::{
    Attachment, AttachmentId, AttachmentRepository, FileRead, FileStore, Thumbnailer,
    THUMBNAIL_HEAD_BYTES,
};
use webcall_domain::ports::{Clock, Presence};
use webcall_domain::signaling::RoomName;

use crate::admission::{is_host, Caller};
use crate::hub::{Hub, RoomFiles};
use crate::rate::RateLimit;
use crate::room_access::AccessService;
use crate::rooms::RoomService;
use crate::AppError;

use ledger::Ledger;

/// Uploads one user may have in flight at once.
pub const IN_FLIGHT_PER_USER: usize = 4;
/// Uploads one user may start in [`START_WINDOW`].
pub const STARTED_PER_WINDOW: usize = 60;
pub const START_WINDOW: Duration = Duration::from_secs(600);
/// Files up to this size get a preview (if they are images).
pub const PREVIEW_MAX_BYTES: u64 = 25 * 1024 * 1024;
/// A file in the store with no record, or an unfinished upload, older than
/// this is removed by the sweep (a crash between commit and record).
pub const ORPHAN_AGE: Duration = Duration::from_secs(3600);
/// Attachments deleted by retention per query.
const SWEEP_BATCH: u32 = 100;

/// `ATTACHMENT_*` settings.
#[derive(Debug, Clone, Copy)]
pub struct AttachmentLimits {
    /// `ATTACHMENT_MAX_BYTES`: the largest file.
    pub max_bytes: u64,
    /// `ATTACHMENT_QUOTA_USER_BYTES`: what one user may store (0: no quota).
    pub quota_user: u64,
    /// `ATTACHMENT_QUOTA_TOTAL_BYTES`: what everyone may store (0: no quota).
    pub quota_total: u64,
    /// `ATTACHMENT_RETENTION_DAYS`: files older are deleted (`None`: kept).
    pub retention: Option<Duration>,
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        Self {
            max_bytes: 25 * 1024 * 1024,
            quota_user: 1024 * 1024 * 1024,
            quota_total: 20 * 1024 * 1024 * 1024,
            retention: Some(Duration::from_secs(30 * 24 * 3600)),
        }
    }
}

/// Who asks for a file.
#[derive(Debug, Clone)]
pub enum FileCaller {
    /// A signed-in account (its name is the message's `username`).
    Account { caller: Caller, username: String },
    /// A guest token, good for its one room.
    Guest { room: RoomName },
}

/// The ports and use cases [`Attachments`] works through.
pub struct AttachmentsDeps {
    pub records: Arc<dyn AttachmentRepository>,
    pub files: Arc<dyn FileStore>,
    pub thumbnailer: Arc<dyn Thumbnailer>,
    pub access: Arc<AccessService>,
    pub rooms: Arc<RoomService>,
    /// Who is in which call (an upload's `peer` must be the uploader's).
    pub presence: Arc<dyn Presence>,
    pub hub: Arc<Hub>,
    pub clock: Arc<dyn Clock>,
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Attachments past retention (records, messages and files).
    pub expired: usize,
    /// Files with no record.
    pub orphans: usize,
}

/// See the module docs.
pub struct Attachments {
    deps: AttachmentsDeps,
    limits: AttachmentLimits,
    ledger: Arc<Ledger>,
    started: RateLimit<webcall_domain::model::UserId>,
    /// Previews are made one at a time (CPU and memory bound).
    previews: Semaphore,
}

impl Attachments {
    pub fn new(deps: AttachmentsDeps, limits: AttachmentLimits) -> Arc<Self> {
        Arc::new(Self {
            deps,
            limits,
            ledger: Arc::default(),
            started: RateLimit::new(STARTED_PER_WINDOW, START_WINDOW),
            previews: Semaphore::new(1),
        })
    }

    pub fn limits(&self) -> AttachmentLimits {
        self.limits
    }

    /// The attachment `id` of `room`, if the caller may read the room's
    /// history (an account; `pass` for a room with a password) or holds a
    /// guest token for it. The caller is checked first, so a stranger learns
    /// nothing of which ids exist.
    pub async fn find(
        &self,
        caller: &FileCaller,
        room: &RoomName,
        id: &str,
        pass: Option<&str>,
    ) -> Result<Attachment, AppError> {
        match caller {
            FileCaller::Account { caller, .. } => {
                self.deps.access.readable(*caller, room, pass).await?;
            }
            FileCaller::Guest { room: guest_room } if guest_room == room => {}
            FileCaller::Guest { .. } => return Err(AppError::Forbidden),
        }
        self.in_room(room, id).await
    }

    async fn in_room(&self, room: &RoomName, id: &str) -> Result<Attachment, AppError> {
        let id = AttachmentId::parse(id).ok_or(AppError::AttachmentNotFound)?;
        match self.deps.records.attachment(&id).await? {
            Some(attachment) if &attachment.room == room => Ok(attachment),
            _ => Err(AppError::AttachmentNotFound),
        }
    }

    /// The file's bytes from `offset`, `len` of them (to the end when
    /// `None`), read chunk by chunk.
    pub async fn read(
        &self,
        attachment: &Attachment,
        offset: u64,
        len: Option<u64>,
    ) -> Result<Box<dyn FileRead>, AppError> {
        self.deps
            .files
            .open(&attachment.id.file_key(), offset, len)
            .await?
            .ok_or(AppError::AttachmentNotFound)
    }

    /// The file's preview and its media type (`image/png` or `image/jpeg`).
    pub async fn thumbnail(
        &self,
        attachment: &Attachment,
    ) -> Result<(Vec<u8>, &'static str), AppError> {
        if attachment.thumbnail.is_none() {
            return Err(AppError::ThumbnailNotFound);
        }
        let bytes = self
            .read_whole(&attachment.id.thumbnail_key())
            .await?
            .ok_or(AppError::ThumbnailNotFound)?;
        let media_type = if bytes.starts_with(&[0xFF, 0xD8]) {
            "image/jpeg"
        } else {
            "image/png"
        };
        Ok((bytes, media_type))
    }

    /// The whole file under `key`, `None` when there is none.
    /// The first [`THUMBNAIL_HEAD_BYTES`] bytes of a stored file (fewer when
    /// it is shorter; none when it is gone).
    async fn read_head(&self, key: &str) -> Result<Vec<u8>, AppError> {
        let mut head = Vec::new();
        if let Some(mut read) = self
            .deps
            .files
            .open(key, 0, Some(THUMBNAIL_HEAD_BYTES))
            .await?
        {
            while let Some(chunk) = read.next_chunk().await? {
                head.extend_from_slice(&chunk);
            }
        }
        Ok(head)
    }

    async fn read_whole(&self, key: &str) -> Result<Option<Vec<u8>>, AppError> {
        let Some(mut read) = self.deps.files.open(key, 0, None).await? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = read.next_chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }

    /// Deletes a file, its record and its message, by its sender or a host of
    /// the room; `chat_deleted` goes to the room.
    #[tracing::instrument(skip_all, fields(room = %room, user = %caller.user))]
    pub async fn delete(&self, caller: Caller, room: &RoomName, id: &str) -> Result<(), AppError> {
        let attachment = self.in_room(room, id).await?;
        if attachment.user_id != caller.user {
            let stored = self
                .deps
                .rooms
                .find(room)
                .await?
                .ok_or(AppError::RoomNotFound)?;
            if !is_host(&stored, caller.user, caller.role) {
                return Err(AppError::NotSender);
            }
        }
        let Some(deleted) = self.deps.records.delete_attachment(&attachment.id).await? else {
            return Err(AppError::AttachmentNotFound);
        };
        self.remove_files(&deleted.id).await;
        self.deps.hub.chat_deleted(room, deleted.message_id).await;
        tracing::info!(attachment = %deleted.id, "file deleted");
        Ok(())
    }

    /// Removes a file and its preview from the store (a failure is logged:
    /// the orphan sweep tries again).
    async fn remove_files(&self, id: &AttachmentId) {
        for key in [id.file_key(), id.thumbnail_key()] {
            if let Err(err) = self.deps.files.delete(&key).await {
                tracing::warn!(%key, error = %err, "could not remove a file");
            }
        }
    }

    /// Deletes the attachments older than the retention (records, messages,
    /// files; `chat_deleted` to their rooms), then files with no record and
    /// unfinished uploads older than [`ORPHAN_AGE`]. Every instance may run
    /// it: what one deletes, the others find gone.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Swept, AppError> {
        let mut swept = Swept::default();
        if let Some(retention) = self.limits.retention {
            let before =
                now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
            loop {
                let expired = self
                    .deps
                    .records
                    .delete_attachments_before(before, SWEEP_BATCH)
                    .await?;
                for attachment in &expired {
                    self.remove_files(&attachment.id).await;
                    self.deps
                        .hub
                        .chat_deleted(&attachment.room, attachment.message_id)
                        .await;
                }
                swept.expired += expired.len();
                if expired.len() < SWEEP_BATCH as usize {
                    break;
                }
            }
        }
        let stale = now - chrono::Duration::from_std(ORPHAN_AGE).unwrap_or_default();
        let old: Vec<(String, AttachmentId)> = self
            .deps
            .files
            .list(stale)
            .await?
            .into_iter()
            .filter(|(_, written)| *written < stale)
            .filter_map(|(key, _)| {
                let id = AttachmentId::parse(key.strip_suffix(".thumb").unwrap_or(&key))?;
                Some((key, id))
            })
            .collect();
        for batch in old.chunks(500) {
            let ids: Vec<AttachmentId> = batch.iter().map(|(_, id)| id.clone()).collect();
            let known: HashSet<AttachmentId> = self
                .deps
                .records
                .existing_attachments(&ids)
                .await?
                .into_iter()
                .collect();
            for (key, id) in batch {
                if known.contains(id) {
                    continue;
                }
                match self.deps.files.delete(key).await {
                    Ok(true) => swept.orphans += 1,
                    Ok(false) => {}
                    Err(err) => tracing::warn!(%key, error = %err, "could not remove an orphan"),
                }
            }
        }
        if swept != Swept::default() {
            tracing::info!(
                expired = swept.expired,
                orphans = swept.orphans,
                "files swept"
            );
        }
        Ok(swept)
    }

    /// The ids of `room`'s attachments (before the room is deleted).
    pub async fn room_attachments(&self, room: &RoomName) -> Vec<AttachmentId> {
        match self.deps.records.room_attachments(room).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!(room = %room, error = %err, "could not list a room's files: the sweep removes them later");
                Vec::new()
            }
        }
    }

    /// Removes the files of these attachments (their room was deleted).
    pub async fn remove_room_files(&self, ids: &[AttachmentId]) {
        for id in ids {
            self.remove_files(id).await;
        }
    }

    #[cfg(test)]
    fn in_flight(&self, user: webcall_domain::model::UserId) -> (usize, u64) {
        self.ledger.in_flight(user)
    }
}

#[async_trait]
impl RoomFiles for Attachments {
    async fn room_files(&self, room: &RoomName) -> Vec<AttachmentId> {
        self.room_attachments(room).await
    }

    async fn remove_room_files(&self, ids: Vec<AttachmentId>) {
        Attachments::remove_room_files(self, &ids).await;
    }
}
