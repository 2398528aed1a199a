//! One upload, in order: a guest is refused; a file over the size limit is
//! refused before a byte is read; the room's history must be open to the
//! caller; the user's uploads in flight and started lately are capped; the
//! quotas are checked with what uploads in flight reserved, and this one
//! reserves its size; the body is streamed into the [`FileStore`] while it
//! is hashed (SHA-256) and counted (more or fewer bytes than declared aborts
//! it); the file is committed; an image gets a preview; the record and its
//! message are written together (the files are removed if that fails); the
//! message goes to the room.
//!
//! What follows the commit runs in its own task, so a client that goes away
//! then cannot leave a stored file without its record. Before it, dropping
//! the upload (a client gone mid-body) drops the store's upload (nothing is
//! kept) and the slot (the reservation is given back).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use webcall_domain::attachments::{
    AttachmentId, ContentType, FileName, FileUpload, NewAttachment, ThumbnailSize,
};
use webcall_domain::signaling::{ChatMessage, PeerId, RoomName};
use webcall_domain::DomainError;

use super::{Attachments, FileCaller, IN_FLIGHT_PER_USER, PREVIEW_MAX_BYTES};
use crate::AppError;

/// The body of an upload, chunk by chunk.
#[async_trait]
pub trait UploadBody: Send {
    /// The next chunk, `None` at the end; an error (`SizeMismatch`) when the
    /// body could not be read to its end (the client went away).
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, AppError>;
}

/// A body lent to an upload (its caller reads what is left after a refusal).
#[async_trait]
impl<B: UploadBody + ?Sized> UploadBody for &mut B {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, AppError> {
        (**self).next_chunk().await
    }
}

/// What an upload says of itself.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub room: RoomName,
    /// A room pass, for a room with a password.
    pub pass: Option<String>,
    /// The file's name as the client sent it (sanitised here).
    pub name: String,
    /// The declared media type (`Content-Type`).
    pub content_type: Option<String>,
    /// `Content-Length`.
    pub declared_len: Option<u64>,
    /// The uploader's peer in the call, if they say they are in it.
    pub peer: Option<String>,
}

/// Why an upload was refused, for the metric.
fn refusal_reason(err: &AppError) -> &'static str {
    match err {
        AppError::FileTooLarge { .. } => "too_large",
        AppError::QuotaExceeded(_) => "quota_exceeded",
        AppError::TooManyUploads { .. } => "too_many_uploads",
        AppError::SizeMismatch => "size_mismatch",
        AppError::GuestUploadForbidden
        | AppError::RoomPrivate
        | AppError::BannedFromRoom
        | AppError::RoomPasswordRequired => "forbidden",
        AppError::LengthRequired => "length_required",
        AppError::RoomNotFound => "room_not_found",
        _ => "error",
    }
}

impl Attachments {
    /// Stores one file sent to `request.room` and shares it there as a chat
    /// message; the message as clients are sent it. See the module docs.
    #[tracing::instrument(skip_all, fields(room = %request.room))]
    pub async fn upload<B: UploadBody>(
        self: &Arc<Self>,
        caller: FileCaller,
        request: UploadRequest,
        body: B,
    ) -> Result<ChatMessage, AppError> {
        let result = self.upload_inner(caller, request, body).await;
        match &result {
            Ok(message) => {
                let size = message.attachment.as_ref().map_or(0, |a| a.size);
                metrics::counter!("webcall_attachment_uploads_total").increment(1);
                metrics::counter!("webcall_attachment_upload_bytes_total").increment(size);
            }
            Err(err) => {
                metrics::counter!("webcall_attachment_refusals_total", "reason" => refusal_reason(err))
                    .increment(1);
            }
        }
        result
    }

    async fn upload_inner<B: UploadBody>(
        self: &Arc<Self>,
        caller: FileCaller,
        request: UploadRequest,
        mut body: B,
    ) -> Result<ChatMessage, AppError> {
        let FileCaller::Account { caller, username } = caller else {
            return Err(AppError::GuestUploadForbidden);
        };
        let declared = request.declared_len.ok_or(AppError::LengthRequired)?;
        if declared > self.limits.max_bytes {
            return Err(AppError::FileTooLarge {
                max: self.limits.max_bytes,
            });
        }
        let room = request.room.clone();
        self.deps
            .access
            .readable(caller, &room, request.pass.as_deref())
            .await?;
        let now = self.deps.clock.now();
        let mut slot =
            self.ledger
                .start(caller.user, IN_FLIGHT_PER_USER)
                .ok_or(AppError::TooManyUploads {
                    retry_after: std::time::Duration::from_secs(1),
                })?;
        self.started
            .admit(caller.user, now)
            .map_err(|retry_after| AppError::TooManyUploads { retry_after })?;
        let stored = self.deps.records.attachment_usage(caller.user).await?;
        slot.reserve(
            declared,
            stored,
            self.limits.quota_user,
            self.limits.quota_total,
        )
        .map_err(AppError::QuotaExceeded)?;

        let id = AttachmentId::new_random();
        let upload = self.deps.files.create(&id.file_key()).await?;
        let sha256 = receive(upload, &mut body, declared).await?;

        let from = self
            .peer_of(&room, request.peer.as_deref(), caller.user)
            .await;
        let new = NewAttachment {
            id,
            room,
            from,
            user_id: caller.user,
            username,
            name: FileName::sanitise(&request.name),
            size: declared,
            content_type: ContentType::parse(request.content_type.as_deref()),
            sha256,
            thumbnail: None,
            created_at: now,
        };
        // The file is stored: what follows runs to its end even if the
        // client goes away now (its record, or its removal).
        let this = self.clone();
        let finish = tokio::spawn(async move {
            let result = this.finish(new).await;
            drop(slot);
            result
        });
        finish
            .await
            .map_err(|err| DomainError::infrastructure(format!("upload task: {err}")))?
    }

    /// The preview, the record with its message, and the message to the room.
    async fn finish(&self, mut new: NewAttachment) -> Result<ChatMessage, AppError> {
        if new.size <= PREVIEW_MAX_BYTES {
            new.thumbnail = self.preview(&new.id).await;
        }
        let id = new.id.clone();
        let message = match self.deps.records.insert_attachment(new).await {
            Ok(message) => message,
            Err(err) => {
                self.remove_files(&id).await;
                return Err(err.into());
            }
        };
        self.deps.hub.share_file(message.clone()).await;
        tracing::info!(attachment = %id, "file shared");
        Ok(message)
    }

    /// Makes and stores the preview of the file `id` if it is an image (one
    /// at a time, on a worker thread); its size, or `None`.
    async fn preview(&self, id: &AttachmentId) -> Option<ThumbnailSize> {
        // Only an image is read whole: its first bytes say whether it is one.
        match self.read_head(&id.file_key()).await {
            Ok(head) if self.deps.thumbnailer.recognises(&head) => {}
            Ok(_) => return None,
            Err(err) => {
                tracing::warn!(error = %err, "could not read a file back for its preview");
                return None;
            }
        }
        let _turn = self.previews.acquire().await.ok()?;
        let image = match self.read_whole(&id.file_key()).await {
            Ok(Some(image)) => image,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(error = %err, "could not read a file back for its preview");
                return None;
            }
        };
        let thumbnailer = self.deps.thumbnailer.clone();
        let made = tokio::task::spawn_blocking(move || thumbnailer.thumbnail(&image))
            .await
            .ok()
            .flatten()?;
        let (bytes, size, _media_type) = made;
        let stored: Result<(), DomainError> = async {
            let mut upload = self.deps.files.create(&id.thumbnail_key()).await?;
            upload.write(&bytes).await?;
            upload.commit().await
        }
        .await;
        match stored {
            Ok(()) => Some(size),
            Err(err) => {
                tracing::warn!(error = %err, "could not store a preview");
                None
            }
        }
    }

    /// `peer` if it is the caller's peer in the room's call, else empty.
    async fn peer_of(
        &self,
        room: &RoomName,
        peer: Option<&str>,
        user: webcall_domain::model::UserId,
    ) -> PeerId {
        let empty = PeerId::from_client("");
        let Some(peer) = peer.filter(|p| !p.is_empty()) else {
            return empty;
        };
        match self.deps.presence.peers(room).await {
            Ok(peers) => peers
                .into_iter()
                .find(|p| p.peer_id.as_str() == peer && p.user_id == user)
                .map_or(empty, |p| p.peer_id),
            Err(_) => empty,
        }
    }
}

/// Streams `body` into `upload`, hashing and counting; commits it if exactly
/// `declared` bytes came, else aborts it. The SHA-256, lowercase hex.
async fn receive<B: UploadBody>(
    mut upload: Box<dyn FileUpload>,
    body: &mut B,
    declared: u64,
) -> Result<String, AppError> {
    let mut hasher = Sha256::new();
    let mut count: u64 = 0;
    loop {
        let chunk = match body.next_chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => {
                upload.abort().await;
                return Err(err);
            }
        };
        count = count.saturating_add(chunk.len() as u64);
        if count > declared {
            upload.abort().await;
            return Err(AppError::SizeMismatch);
        }
        hasher.update(&chunk);
        if let Err(err) = upload.write(&chunk).await {
            upload.abort().await;
            return Err(err.into());
        }
    }
    if count != declared {
        upload.abort().await;
        return Err(AppError::SizeMismatch);
    }
    upload.commit().await?;
    Ok(format!("{:x}", hasher.finalize()))
}
