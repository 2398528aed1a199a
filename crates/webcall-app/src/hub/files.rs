//! Files shared in a room's chat, as the hub carries them: a file's message
//! goes to the room like chat ([`Hub::share_file`]), a deleted one's
//! `chat_deleted` too ([`Hub::chat_deleted`]), on every instance, and the
//! recent chat a join is sent follows both. A room that is deleted takes its
//! files with it through [`RoomFiles`] (the attachments use cases, which hold
//! the hub: the hub holds them weakly).

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use webcall_domain::attachments::AttachmentId;
use webcall_domain::signaling::{ChatMessage, Envelope, RoomEvent, RoomName};

use super::Hub;

/// Removes the files of a room that is being deleted: its attachments' ids
/// are read before the room goes (their records go with it), their files
/// removed after.
#[async_trait]
pub trait RoomFiles: Send + Sync {
    /// The ids of the room's attachments (none when they cannot be read: the
    /// orphan sweep removes those files later).
    async fn room_files(&self, room: &RoomName) -> Vec<AttachmentId>;
    /// Removes these attachments' files (and previews).
    async fn remove_room_files(&self, ids: Vec<AttachmentId>);
}

impl Hub {
    /// Hands a deleted room's files to `files` while it lives; once: a
    /// second one is refused.
    pub fn files_with(&self, files: &Arc<dyn RoomFiles>) -> bool {
        self.files.set(Arc::downgrade(files)).is_ok()
    }

    fn room_files_hook(&self) -> Option<Arc<dyn RoomFiles>> {
        self.files.get().and_then(Weak::upgrade)
    }

    /// The ids of `room`'s attachments, read before the room is deleted.
    pub(crate) async fn room_files(&self, room: &RoomName) -> Vec<AttachmentId> {
        match self.room_files_hook() {
            Some(files) => files.room_files(room).await,
            None => Vec::new(),
        }
    }

    /// Removes the files of a room that was just deleted.
    pub(crate) async fn remove_room_files(&self, ids: Vec<AttachmentId>) {
        if ids.is_empty() {
            return;
        }
        if let Some(files) = self.room_files_hook() {
            files.remove_room_files(ids).await;
        }
    }

    /// Sends a file's message (stored already) to everyone in its room, on
    /// every instance, as a `chat` event.
    pub async fn share_file(&self, message: ChatMessage) {
        self.dispatch(Envelope {
            room: message.room.clone(),
            to: None,
            except: None,
            event: RoomEvent::Chat { message },
        })
        .await;
    }

    /// Tells everyone in `room`, on every instance, that message `id` was
    /// deleted; a later join is not sent it.
    pub async fn chat_deleted(&self, room: &RoomName, id: i64) {
        self.dispatch(Envelope {
            room: room.clone(),
            to: None,
            except: None,
            event: RoomEvent::ChatDeleted { id },
        })
        .await;
    }
}
