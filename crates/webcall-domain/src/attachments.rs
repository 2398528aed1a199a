//! Files shared in a room's chat: what an attachment is, its name made safe to
//! show and to send back, its declared type, and the three ports behind it:
//! [`AttachmentRepository`] (the records, with their chat messages),
//! [`FileStore`] (the bytes: a directory today, an S3-compatible store later)
//! and [`Thumbnailer`] (an image's preview).
//!
//! An attachment is a chat message whose `attachment` names the file; the file
//! itself is stored under the attachment's id, never under the name a client
//! sent.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::UserId;
use crate::signaling::{AttachmentRef, ChatMessage, PeerId, RoomName};
use crate::DomainError;

/// An attachment's id: 128 random bits, 32 lowercase hex digits. It names the
/// file in the [`FileStore`] and in URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttachmentId(String);

impl AttachmentId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4().simple().to_string())
    }

    /// Exactly 32 lowercase hex digits, else `None` (so an id from a URL can
    /// never name another path).
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of the file's bytes in the [`FileStore`].
    pub fn file_key(&self) -> String {
        self.0.clone()
    }

    /// The key of its preview in the [`FileStore`].
    pub fn thumbnail_key(&self) -> String {
        format!("{}.thumb", self.0)
    }
}

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file's name as shown in the chat and offered on download: whatever a
/// client sent, made harmless. Never fails: the worst input becomes `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    /// At most this many bytes (UTF-8), the extension kept.
    pub const MAX_BYTES: usize = 200;

    /// Keeps the last path component (`/` and `\` both separate), drops
    /// control characters (NUL included), bidirectional overrides and
    /// isolates (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) and
    /// other invisible format characters, trims spaces and dots at both ends
    /// (no `..`, no hidden `.name`, no Windows trailing dot), and shortens it
    /// to [`Self::MAX_BYTES`] keeping the extension. Empty → `file`.
    pub fn sanitise(raw: &str) -> Self {
        let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let cleaned: String = last
            .chars()
            .filter(|c| !c.is_control() && !is_invisible_format(*c))
            .collect();
        let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
        let name = shorten(trimmed, Self::MAX_BYTES);
        if name.is_empty() {
            Self("file".to_owned())
        } else {
            Self(name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Trusted as stored (it was sanitised before it was written).
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }
}

/// Bidirectional controls and the zero-width format characters that can make
/// `evil` U+202E `gpj.exe` show as `evilexe.jpg`.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// `name` cut to at most `max` bytes on a character boundary, keeping a short
/// extension (up to 16 bytes) at the end.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= 16 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    let mut cut = max - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = stem[..cut].trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    format!("{stem}{ext}")
}

/// A declared media type, `type/subtype` in lowercase (parameters dropped);
/// anything else is `application/octet-stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType(String);

impl ContentType {
    pub const OCTET_STREAM: &'static str = "application/octet-stream";

    pub fn parse(raw: Option<&str>) -> Self {
        let essence = raw
            .and_then(|r| r.split(';').next())
            .map(|r| r.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let valid = essence.len() <= 127
            && essence.split_once('/').is_some_and(|(t, s)| {
                let token = |p: &str| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
                };
                token(t) && token(s)
            });
        if valid {
            Self(essence)
        } else {
            Self(Self::OCTET_STREAM.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest side of a preview, in pixels.
pub const THUMBNAIL_MAX_SIDE: u32 = 320;

/// An image's preview as made and stored (always PNG or JPEG, at most
/// [`THUMBNAIL_MAX_SIDE`] pixels a side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailSize {
    pub width: u32,
    pub height: u32,
}

/// An attachment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub room: RoomName,
    /// Its chat message.
    pub message_id: i64,
    pub user_id: UserId,
    pub name: FileName,
    pub size: u64,
    pub content_type: ContentType,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    pub thumbnail: Option<ThumbnailSize>,
    pub created_at: DateTime<Utc>,
}

impl Attachment {
    pub fn to_ref(&self) -> AttachmentRef {
        AttachmentRef {
            id: self.id.to_string(),
            name: self.name.as_str().to_owned(),
            size: self.size,
            content_type: self.content_type.as_str().to_owned(),
            thumbnail: self.thumbnail.map(|t| (t.width, t.height)),
        }
    }
}

/// An attachment about to be stored, with its chat message.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub id: AttachmentId,
    pub room: RoomName,
    /// The uploader's peer in the call, when they are in it (else empty).
    pub from: PeerId,
    pub user_id: UserId,
    pub username: String,
    pub name: FileName,
    pub size: u64,
    pub content_type: ContentType,
    pub sha256: String,
    pub thumbnail: Option<ThumbnailSize>,
    pub created_at: DateTime<Utc>,
}

/// Bytes stored, for the quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttachmentUsage {
    /// By the one user asked about.
    pub user: u64,
    /// By everyone.
    pub total: u64,
}

/// Attachment records. Each attachment and its chat message are written and
/// deleted together (one transaction); they go with their room.
#[async_trait]
pub trait AttachmentRepository: Send + Sync {
    /// Stores the attachment and its chat message (empty text, `attachment`
    /// set) in one transaction; returns the message as clients are sent it.
    async fn insert_attachment(&self, new: NewAttachment) -> Result<ChatMessage, DomainError>;
    async fn attachment(&self, id: &AttachmentId) -> Result<Option<Attachment>, DomainError>;
    /// Deletes the attachment and its chat message together; what was
    /// deleted, `None` if there was no such attachment.
    async fn delete_attachment(&self, id: &AttachmentId)
        -> Result<Option<Attachment>, DomainError>;
    /// Bytes stored by `user` and by everyone.
    async fn attachment_usage(&self, user: UserId) -> Result<AttachmentUsage, DomainError>;
    /// The ids of a room's attachments (to remove their files when the room goes).
    async fn room_attachments(&self, room: &RoomName) -> Result<Vec<AttachmentId>, DomainError>;
    /// Deletes up to `limit` attachments created before `before`, with their
    /// chat messages; what was deleted.
    async fn delete_attachments_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Attachment>, DomainError>;
    /// Of `ids`, those that have a record (the others' files are orphans).
    async fn existing_attachments(
        &self,
        ids: &[AttachmentId],
    ) -> Result<Vec<AttachmentId>, DomainError>;
}

/// Where files' bytes are kept: a directory on this host (the default), or
/// later an S3-compatible store. A file under a key appears whole or not at
/// all: [`FileStore::create`] writes aside and [`FileUpload::commit`] makes it
/// visible in one step.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Starts a new file under `key`. Nothing is readable under `key` until
    /// the upload is committed; an upload dropped or aborted leaves nothing.
    async fn create(&self, key: &str) -> Result<Box<dyn FileUpload>, DomainError>;
    /// Reads `len` bytes from `offset` of the file under `key` (to its end when
    /// `len` is `None`); `None` when there is no such file.
    async fn open(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<Option<Box<dyn FileRead>>, DomainError>;
    /// Removes the file; false if there was none.
    async fn delete(&self, key: &str) -> Result<bool, DomainError>;
    /// Every committed file's key and when it was written (for the orphan
    /// sweep); also removes uncommitted leftovers older than `stale_before`
    /// (from a crash mid-upload).
    async fn list(
        &self,
        stale_before: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, DomainError>;
}

/// A file being written.
#[async_trait]
pub trait FileUpload: Send {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), DomainError>;
    /// Makes the file visible under its key, whole (flushed to disk first).
    async fn commit(self: Box<Self>) -> Result<(), DomainError>;
    /// Removes what was written. Dropping an upload does the same, later.
    async fn abort(self: Box<Self>);
}

/// A file being read, chunk by chunk.
#[async_trait]
pub trait FileRead: Send {
    /// The next chunk; `None` at the end of the asked range.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, DomainError>;
}

/// Makes an image's preview. CPU-bound and blocking: callers run it on a
/// worker thread, one at a time.
pub trait Thumbnailer: Send + Sync {
    /// A PNG or JPEG preview of `image` (its content decides the format, not
    /// a declared type: PNG, JPEG, GIF, WebP), with its size and media type;
    /// `None` when it is not such an image, is damaged, or has more pixels
    /// than the thumbnailer allows (a decompression bomb is refused before it
    /// is decoded).
    fn thumbnail(&self, image: &[u8]) -> Option<(Vec<u8>, ThumbnailSize, &'static str)>;

    /// Whether a file that starts with `head` (its first
    /// [`THUMBNAIL_HEAD_BYTES`] bytes) is an image of a format it previews:
    /// a file that is not is never read whole.
    fn recognises(&self, head: &[u8]) -> bool;
}

/// How much of a file's start [`Thumbnailer::recognises`] is shown.
pub const THUMBNAIL_HEAD_BYTES: u64 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_nothing_else_parses() {
        let id = AttachmentId::new_random();
        assert_eq!(AttachmentId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.thumbnail_key(), format!("{id}.thumb"));
        for bad in [
            "",
            "../etc/passwd",
            &"A".repeat(32),
            &"0".repeat(31),
            &"0".repeat(33),
        ] {
            assert_eq!(AttachmentId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn path_tricks_in_names_are_neutralised() {
        let cases = [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("/absolute/path/x.txt", "x.txt"),
            ("C:\\Users\\me\\notes.txt", "notes.txt"),
            ("nul\0byte.txt", "nulbyte.txt"),
            ("evil\u{202E}gpj.exe", "evilgpj.exe"),
            ("a\u{2066}b\u{2069}.txt", "ab.txt"),
            ("..", "file"),
            ("", "file"),
            ("dir/", "file"),
            ("  .hidden  ", "hidden"),
            ("trailing.", "trailing"),
            ("line\nbreak.txt", "linebreak.txt"),
            ("Отчёт 2026.docx", "Отчёт 2026.docx"),
        ];
        for (raw, want) in cases {
            assert_eq!(FileName::sanitise(raw).as_str(), want, "{raw:?}");
        }
    }

    #[test]
    fn long_names_are_shortened_on_a_character_boundary_keeping_the_extension() {
        let name = FileName::sanitise(&format!("{}.pdf", "ж".repeat(300)));
        assert!(name.as_str().len() <= FileName::MAX_BYTES);
        assert!(name.as_str().ends_with(".pdf"));
        let no_ext = FileName::sanitise(&"x".repeat(1000));
        assert_eq!(no_ext.as_str().len(), FileName::MAX_BYTES);
    }

    #[test]
    fn content_types_keep_the_essence_or_fall_back_to_octet_stream() {
        assert_eq!(ContentType::parse(Some("Image/PNG")).as_str(), "image/png");
        assert_eq!(
            ContentType::parse(Some("text/html; charset=utf-8")).as_str(),
            "text/html"
        );
        for bad in [
            None,
            Some(""),
            Some("nonsense"),
            Some("a/b/c"),
            Some("te xt/plain"),
        ] {
            assert_eq!(ContentType::parse(bad).as_str(), ContentType::OCTET_STREAM);
        }
    }
}
