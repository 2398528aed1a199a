//! Chat history: [`ChatRepository`] in SQL. A file's message carries its
//! attachment (joined from `attachments`, see `attachments.rs`).

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;
use webcall_domain::model::UserId;
use webcall_domain::ports::ChatRepository;
use webcall_domain::signaling::{ChatMessage, NewChatMessage, PeerId, RoomName};
use webcall_domain::DomainError;

use super::attachments::{chat_attachment_from_row, CHAT_ATTACHMENT_COLUMNS};
use super::{corrupt, from_millis, infra, millis, SqlStore};

fn chat_from_row(row: &AnyRow) -> Result<ChatMessage, DomainError> {
    let room: String = row.try_get("room").map_err(infra)?;
    let peer: String = row.try_get("peer_id").map_err(infra)?;
    let user: String = row.try_get("user_id").map_err(infra)?;
    Ok(ChatMessage {
        id: row.try_get("id").map_err(infra)?,
        room: RoomName::parse(&room).map_err(|_| corrupt("chat room"))?,
        from: PeerId::from_client(&peer),
        user_id: UserId(Uuid::from_str(&user).map_err(|_| corrupt("chat user"))?),
        username: row.try_get("username").map_err(infra)?,
        text: row.try_get("text").map_err(infra)?,
        ts: from_millis(row.try_get("created_at").map_err(infra)?)?,
        attachment: chat_attachment_from_row(row)?,
    })
}

#[async_trait]
impl ChatRepository for SqlStore {
    async fn append_chat(&self, message: NewChatMessage) -> Result<ChatMessage, DomainError> {
        let row = sqlx::query(
            "INSERT INTO chat_messages (room, peer_id, user_id, username, text, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(message.room.as_str().to_owned())
        .bind(message.from.as_str().to_owned())
        .bind(message.user_id.to_string())
        .bind(message.username.clone())
        .bind(message.text.as_str().to_owned())
        .bind(millis(message.ts))
        .fetch_one(&self.pool)
        .await
        .map_err(infra)?;
        Ok(ChatMessage {
            id: row.try_get("id").map_err(infra)?,
            room: message.room,
            from: message.from,
            user_id: message.user_id,
            username: message.username,
            text: message.text.as_str().to_owned(),
            ts: from_millis(millis(message.ts))?,
            attachment: None,
        })
    }

    async fn chat_before(
        &self,
        room: &RoomName,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, DomainError> {
        let rows = sqlx::query(&format!(
            "SELECT chat_messages.id, chat_messages.room, chat_messages.peer_id, \
             chat_messages.user_id, chat_messages.username, chat_messages.text, \
             chat_messages.created_at, {CHAT_ATTACHMENT_COLUMNS} FROM chat_messages \
             LEFT JOIN attachments ON attachments.id = chat_messages.attachment_id \
             WHERE chat_messages.room = $1 AND chat_messages.id < $2 \
             ORDER BY chat_messages.id DESC LIMIT $3"
        ))
        .bind(room.as_str().to_owned())
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        let mut messages = rows
            .iter()
            .map(chat_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(messages)
    }
}
