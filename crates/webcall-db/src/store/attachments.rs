//! Files shared in the chat: [`AttachmentRepository`] in SQL (`attachments`,
//! migration 0012). An attachment and its chat message (`chat_messages` row
//! with `attachment_id` set) are written and deleted in one transaction; the
//! bytes are elsewhere (the `FileStore`).

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;
use webcall_domain::attachments::{
    Attachment, AttachmentId, AttachmentRepository, AttachmentUsage, ContentType, FileName,
    NewAttachment, ThumbnailSize,
};
use webcall_domain::model::UserId;
use webcall_domain::signaling::{AttachmentRef, ChatMessage, RoomName};
use webcall_domain::DomainError;

use super::{corrupt, from_millis, infra, millis, Backend, SqlStore};

/// The record's columns, as `attachment_from_row` reads them.
const ATTACHMENT_COLUMNS: &str =
    "id, room, user_id, name, size, content_type, sha256, thumb_width, thumb_height, created_at";

/// How many ids one `IN (…)` list binds (far below both databases' limits).
const IDS_PER_QUERY: usize = 500;

/// A chat row's attachment, from a `LEFT JOIN attachments` whose columns are
/// prefixed `att_` (`None` for a text message).
pub(super) const CHAT_ATTACHMENT_COLUMNS: &str =
    "attachments.id AS att_id, attachments.name AS att_name, attachments.size AS att_size, \
     attachments.content_type AS att_type, attachments.thumb_width AS att_thumb_width, \
     attachments.thumb_height AS att_thumb_height";

pub(super) fn chat_attachment_from_row(
    row: &AnyRow,
) -> Result<Option<Box<AttachmentRef>>, DomainError> {
    let Some(id) = row.try_get::<Option<String>, _>("att_id").map_err(infra)? else {
        return Ok(None);
    };
    Ok(Some(Box::new(AttachmentRef {
        id,
        name: row.try_get("att_name").map_err(infra)?,
        size: size(row.try_get("att_size").map_err(infra)?)?,
        content_type: row.try_get("att_type").map_err(infra)?,
        thumbnail: thumbnail(
            row.try_get("att_thumb_width").map_err(infra)?,
            row.try_get("att_thumb_height").map_err(infra)?,
        )?
        .map(|t| (t.width, t.height)),
    })))
}

fn size(stored: i64) -> Result<u64, DomainError> {
    u64::try_from(stored).map_err(|_| corrupt("attachment size"))
}

fn thumbnail(
    width: Option<i64>,
    height: Option<i64>,
) -> Result<Option<ThumbnailSize>, DomainError> {
    let side = |n: i64| u32::try_from(n).map_err(|_| corrupt("thumbnail size"));
    match (width, height) {
        (Some(width), Some(height)) => Ok(Some(ThumbnailSize {
            width: side(width)?,
            height: side(height)?,
        })),
        _ => Ok(None),
    }
}

/// The record in `row` (columns [`ATTACHMENT_COLUMNS`]) with its message's id.
fn attachment_from_row(row: &AnyRow, message_id: i64) -> Result<Attachment, DomainError> {
    let id: String = row.try_get("id").map_err(infra)?;
    let room: String = row.try_get("room").map_err(infra)?;
    let user: String = row.try_get("user_id").map_err(infra)?;
    Ok(Attachment {
        id: AttachmentId::parse(&id).ok_or_else(|| corrupt("attachment id"))?,
        room: RoomName::parse(&room).map_err(|_| corrupt("attachment room"))?,
        message_id,
        user_id: UserId(Uuid::from_str(&user).map_err(|_| corrupt("attachment user"))?),
        name: FileName::from_stored(row.try_get("name").map_err(infra)?),
        size: size(row.try_get("size").map_err(infra)?)?,
        content_type: ContentType::parse(Some(
            &row.try_get::<String, _>("content_type").map_err(infra)?,
        )),
        sha256: row.try_get("sha256").map_err(infra)?,
        thumbnail: thumbnail(
            row.try_get("thumb_width").map_err(infra)?,
            row.try_get("thumb_height").map_err(infra)?,
        )?,
        created_at: from_millis(row.try_get("created_at").map_err(infra)?)?,
    })
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SqlStore {
    /// A transaction that reads before it writes. SQLite: takes the write lock
    /// at once (`BEGIN IMMEDIATE`, waiting out the busy timeout), since a read
    /// transaction cannot always be turned into a write one later.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, DomainError> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(infra)
    }
}

/// Deletes one attachment and its message inside `tx`; what was deleted.
/// The record is locked before its message is touched: the order every
/// deletion takes (a room's too), so two never wait for each other.
async fn delete_in(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    id: &AttachmentId,
) -> Result<Option<Attachment>, DomainError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let exists = sqlx::query(&format!("SELECT id FROM attachments WHERE id = $1{lock}"))
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(infra)?;
    if exists.is_none() {
        return Ok(None);
    }
    // The message (explicitly, as rooms.rs does, rather than by ON DELETE
    // CASCADE), then the record.
    let message = sqlx::query("DELETE FROM chat_messages WHERE attachment_id = $1 RETURNING id")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(infra)?;
    let row = sqlx::query(&format!(
        "DELETE FROM attachments WHERE id = $1 RETURNING {ATTACHMENT_COLUMNS}"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await
    .map_err(infra)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let message_id = match message {
        Some(message) => message.try_get("id").map_err(infra)?,
        // Cannot happen while both are written together; 0 names no message.
        None => 0,
    };
    attachment_from_row(&row, message_id).map(Some)
}

#[async_trait]
impl AttachmentRepository for SqlStore {
    async fn insert_attachment(&self, new: NewAttachment) -> Result<ChatMessage, DomainError> {
        let size = i64::try_from(new.size).map_err(|_| DomainError::Invalid {
            field: "size",
            message: "too large",
        })?;
        let created_at = millis(new.created_at);
        let mut tx = self.pool.begin().await.map_err(infra)?;
        // Inserted only while the room exists (no foreign-key error to tell apart).
        let inserted = sqlx::query(
            "INSERT INTO attachments (id, room, user_id, name, size, content_type, sha256, \
             thumb_width, thumb_height, created_at) \
             SELECT $1, name, $2, $3, $4, $5, $6, $7, $8, $9 FROM rooms WHERE name = $10",
        )
        .bind(new.id.to_string())
        .bind(new.user_id.to_string())
        .bind(new.name.as_str().to_owned())
        .bind(size)
        .bind(new.content_type.as_str().to_owned())
        .bind(new.sha256.clone())
        .bind(new.thumbnail.map(|t| i64::from(t.width)))
        .bind(new.thumbnail.map(|t| i64::from(t.height)))
        .bind(created_at)
        .bind(new.room.as_str().to_owned())
        .execute(&mut *tx)
        .await
        .map_err(infra)?;
        if inserted.rows_affected() == 0 {
            return Err(DomainError::Invalid {
                field: "room",
                message: "no such room",
            });
        }
        let row = sqlx::query(
            "INSERT INTO chat_messages \
             (room, peer_id, user_id, username, text, created_at, attachment_id) \
             VALUES ($1, $2, $3, $4, '', $5, $6) RETURNING id",
        )
        .bind(new.room.as_str().to_owned())
        .bind(new.from.as_str().to_owned())
        .bind(new.user_id.to_string())
        .bind(new.username.clone())
        .bind(created_at)
        .bind(new.id.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(infra)?;
        let id: i64 = row.try_get("id").map_err(infra)?;
        tx.commit().await.map_err(infra)?;
        let attachment = AttachmentRef {
            id: new.id.to_string(),
            name: new.name.as_str().to_owned(),
            size: new.size,
            content_type: new.content_type.as_str().to_owned(),
            thumbnail: new.thumbnail.map(|t| (t.width, t.height)),
        };
        Ok(ChatMessage {
            id,
            room: new.room,
            from: new.from,
            user_id: new.user_id,
            username: new.username,
            text: String::new(),
            ts: from_millis(created_at)?,
            attachment: Some(Box::new(attachment)),
        })
    }

    async fn attachment(&self, id: &AttachmentId) -> Result<Option<Attachment>, DomainError> {
        let row = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS}, \
             (SELECT MIN(chat_messages.id) FROM chat_messages \
              WHERE chat_messages.attachment_id = attachments.id) AS message_id \
             FROM attachments WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(infra)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let message_id: Option<i64> = row.try_get("message_id").map_err(infra)?;
        attachment_from_row(&row, message_id.unwrap_or(0)).map(Some)
    }

    async fn delete_attachment(
        &self,
        id: &AttachmentId,
    ) -> Result<Option<Attachment>, DomainError> {
        let mut tx = self.begin_write().await?;
        let deleted = delete_in(&mut tx, self.backend, id).await?;
        tx.commit().await.map_err(infra)?;
        Ok(deleted)
    }

    async fn attachment_usage(&self, user: UserId) -> Result<AttachmentUsage, DomainError> {
        // PostgreSQL's SUM of BIGINT is NUMERIC, which the Any driver cannot
        // read: cast back.
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN user_id = $1 THEN size ELSE 0 END), 0) AS BIGINT) \
             AS by_user, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS by_all FROM attachments",
        )
        .bind(user.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(infra)?;
        let bytes = |column: &str| -> Result<u64, DomainError> {
            size(row.try_get(column).map_err(infra)?)
        };
        Ok(AttachmentUsage {
            user: bytes("by_user")?,
            total: bytes("by_all")?,
        })
    }

    async fn room_attachments(&self, room: &RoomName) -> Result<Vec<AttachmentId>, DomainError> {
        let rows = sqlx::query("SELECT id FROM attachments WHERE room = $1 ORDER BY created_at")
            .bind(room.as_str().to_owned())
            .fetch_all(&self.pool)
            .await
            .map_err(infra)?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id").map_err(infra)?;
                AttachmentId::parse(&id).ok_or_else(|| corrupt("attachment id"))
            })
            .collect()
    }

    async fn delete_attachments_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Attachment>, DomainError> {
        let mut tx = self.begin_write().await?;
        // PostgreSQL: the batch's rows are locked, so a sender deleting one of
        // them meanwhile waits and then finds it gone (SQLite writes one at a
        // time anyway).
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "SELECT id FROM attachments WHERE created_at < $1 ORDER BY created_at, id LIMIT $2{lock}"
        ))
        .bind(millis(before))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(infra)?;
        let mut deleted = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id").map_err(infra)?;
            let id = AttachmentId::parse(&id).ok_or_else(|| corrupt("attachment id"))?;
            if let Some(attachment) = delete_in(&mut tx, self.backend, &id).await? {
                deleted.push(attachment);
            }
        }
        tx.commit().await.map_err(infra)?;
        Ok(deleted)
    }

    async fn existing_attachments(
        &self,
        ids: &[AttachmentId],
    ) -> Result<Vec<AttachmentId>, DomainError> {
        let mut found = Vec::new();
        for batch in ids.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT id FROM attachments WHERE id IN ({})",
                placeholders(1, batch.len())
            );
            let mut query = sqlx::query(&sql);
            for id in batch {
                query = query.bind(id.to_string());
            }
            let rows = query.fetch_all(&self.pool).await.map_err(infra)?;
            for row in &rows {
                let id: String = row.try_get("id").map_err(infra)?;
                found.push(AttachmentId::parse(&id).ok_or_else(|| corrupt("attachment id"))?);
            }
        }
        Ok(found)
    }
}
