//! Files for unit tests: [`AttachmentRepository`] for [`MemoryStore`] with
//! the SQL store's contract (a record and its chat message written and
//! deleted together, both going with their room), [`MemoryFiles`] (a
//! [`FileStore`] in memory that counts unfinished uploads) and
//! [`FakeThumbnailer`] (a "preview" of any file that starts with `IMG`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use webcall_domain::attachments::{
    Attachment, AttachmentId, AttachmentRepository, AttachmentUsage, FileRead, FileStore,
    FileUpload, NewAttachment, ThumbnailSize, Thumbnailer,
};
use webcall_domain::model::UserId;
use webcall_domain::signaling::{ChatMessage, RoomName};
use webcall_domain::DomainError;

use super::{lock, missing, stored, MemoryStore};

#[async_trait]
impl AttachmentRepository for MemoryStore {
    async fn insert_attachment(&self, new: NewAttachment) -> Result<ChatMessage, DomainError> {
        let mut state = lock(&self.state);
        if !state.rooms.contains_key(&new.room) {
            return Err(missing("room"));
        }
        let attachment = Attachment {
            id: new.id,
            room: new.room.clone(),
            message_id: 0,
            user_id: new.user_id,
            name: new.name,
            size: new.size,
            content_type: new.content_type,
            sha256: new.sha256,
            thumbnail: new.thumbnail,
            created_at: stored(new.created_at),
        };
        state.last_chat_id += 1;
        let message = ChatMessage {
            id: state.last_chat_id,
            room: new.room,
            from: new.from,
            user_id: new.user_id,
            username: new.username,
            text: String::new(),
            ts: stored(new.created_at),
            attachment: Some(Box::new(attachment.to_ref())),
        };
        state.chat.insert(message.id, message.clone());
        state.attachments.insert(
            attachment.id.as_str().to_owned(),
            Attachment {
                message_id: message.id,
                ..attachment
            },
        );
        Ok(message)
    }

    async fn attachment(&self, id: &AttachmentId) -> Result<Option<Attachment>, DomainError> {
        Ok(lock(&self.state).attachments.get(id.as_str()).cloned())
    }

    async fn delete_attachment(
        &self,
        id: &AttachmentId,
    ) -> Result<Option<Attachment>, DomainError> {
        let mut state = lock(&self.state);
        let deleted = state.attachments.remove(id.as_str());
        if let Some(attachment) = &deleted {
            state.chat.remove(&attachment.message_id);
        }
        Ok(deleted)
    }

    async fn attachment_usage(&self, user: UserId) -> Result<AttachmentUsage, DomainError> {
        let state = lock(&self.state);
        let mut usage = AttachmentUsage::default();
        for attachment in state.attachments.values() {
            usage.total += attachment.size;
            if attachment.user_id == user {
                usage.user += attachment.size;
            }
        }
        Ok(usage)
    }

    async fn room_attachments(&self, room: &RoomName) -> Result<Vec<AttachmentId>, DomainError> {
        Ok(lock(&self.state)
            .attachments
            .values()
            .filter(|a| &a.room == room)
            .map(|a| a.id.clone())
            .collect())
    }

    async fn delete_attachments_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Attachment>, DomainError> {
        let mut state = lock(&self.state);
        let old: Vec<String> = state
            .attachments
            .iter()
            .filter(|(_, a)| a.created_at < before)
            .take(limit as usize)
            .map(|(key, _)| key.clone())
            .collect();
        let mut deleted = Vec::new();
        for key in old {
            if let Some(attachment) = state.attachments.remove(&key) {
                state.chat.remove(&attachment.message_id);
                deleted.push(attachment);
            }
        }
        Ok(deleted)
    }

    async fn existing_attachments(
        &self,
        ids: &[AttachmentId],
    ) -> Result<Vec<AttachmentId>, DomainError> {
        let state = lock(&self.state);
        Ok(ids
            .iter()
            .filter(|id| state.attachments.contains_key(id.as_str()))
            .cloned()
            .collect())
    }
}

/// Committed files by key: their bytes and when they were written.
type Files = HashMap<String, (Vec<u8>, DateTime<Utc>)>;

/// Files in memory: committed ones by key with when they were written, and
/// a count of uploads begun and not yet committed, aborted or dropped.
#[derive(Default)]
pub struct MemoryFiles {
    files: Arc<Mutex<Files>>,
    open_uploads: Arc<AtomicUsize>,
    bytes_read: Arc<AtomicUsize>,
}

impl MemoryFiles {
    /// Bytes read back from the store so far.
    pub fn bytes_read(&self) -> usize {
        self.bytes_read.load(Ordering::SeqCst)
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = lock(&self.files).keys().cloned().collect();
        keys.sort();
        keys
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.files).get(key).map(|(bytes, _)| bytes.clone())
    }

    /// Uploads begun and not finished either way.
    pub fn open_uploads(&self) -> usize {
        self.open_uploads.load(Ordering::SeqCst)
    }

    /// A file written at `at`, as if by an upload whose record never came.
    pub fn put(&self, key: &str, bytes: &[u8], at: DateTime<Utc>) {
        lock(&self.files).insert(key.to_owned(), (bytes.to_vec(), at));
    }
}

struct MemoryUpload {
    key: String,
    bytes: Vec<u8>,
    at: DateTime<Utc>,
    files: Arc<Mutex<Files>>,
    open_uploads: Arc<AtomicUsize>,
    done: bool,
}

impl Drop for MemoryUpload {
    fn drop(&mut self) {
        if !self.done {
            self.open_uploads.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl FileUpload for MemoryUpload {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), DomainError> {
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), DomainError> {
        self.done = true;
        self.open_uploads.fetch_sub(1, Ordering::SeqCst);
        let bytes = std::mem::take(&mut self.bytes);
        lock(&self.files).insert(self.key.clone(), (bytes, self.at));
        Ok(())
    }

    async fn abort(self: Box<Self>) {}
}

struct MemoryRead(Option<Bytes>);

#[async_trait]
impl FileRead for MemoryRead {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, DomainError> {
        Ok(self.0.take())
    }
}

#[async_trait]
impl FileStore for MemoryFiles {
    async fn create(&self, key: &str) -> Result<Box<dyn FileUpload>, DomainError> {
        self.open_uploads.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(MemoryUpload {
            key: key.to_owned(),
            bytes: Vec::new(),
            at: Utc::now(),
            files: self.files.clone(),
            open_uploads: self.open_uploads.clone(),
            done: false,
        }))
    }

    async fn open(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<Option<Box<dyn FileRead>>, DomainError> {
        let files = lock(&self.files);
        let Some((bytes, _)) = files.get(key) else {
            return Ok(None);
        };
        let start = (offset as usize).min(bytes.len());
        let end = len.map_or(bytes.len(), |len| (start + len as usize).min(bytes.len()));
        self.bytes_read.fetch_add(end - start, Ordering::SeqCst);
        Ok(Some(Box::new(MemoryRead(Some(Bytes::copy_from_slice(
            &bytes[start..end],
        ))))))
    }

    async fn delete(&self, key: &str) -> Result<bool, DomainError> {
        Ok(lock(&self.files).remove(key).is_some())
    }

    async fn list(
        &self,
        _stale_before: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, DomainError> {
        Ok(lock(&self.files)
            .iter()
            .map(|(key, (_, at))| (key.clone(), *at))
            .collect())
    }
}

/// A "preview" (`PREVIEW`, 2×1) of any file that starts with `IMG`.
pub struct FakeThumbnailer;

impl FakeThumbnailer {
    pub const PREVIEW: &'static [u8] = b"\x89PNG preview";
}

impl Thumbnailer for FakeThumbnailer {
    fn recognises(&self, head: &[u8]) -> bool {
        head.starts_with(b"IMG")
    }

    fn thumbnail(&self, image: &[u8]) -> Option<(Vec<u8>, ThumbnailSize, &'static str)> {
        image.starts_with(b"IMG").then(|| {
            (
                Self::PREVIEW.to_vec(),
                ThumbnailSize {
                    width: 2,
                    height: 1,
                },
                "image/png",
            )
        })
    }
}
