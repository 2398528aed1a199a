//! Who may enter a room: [`RoomAccessRepository`] in SQL (`rooms.access`,
//! `rooms.password_hash`, `rooms.ask_to_join`, `room_members`; migration 0010).
//! A room's members go with the room, and an account's memberships with it.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;
use webcall_domain::access::{AccessChange, Member, RoomAccess};
use webcall_domain::model::UserId;
use webcall_domain::ports::RoomAccessRepository;
use webcall_domain::signaling::{Room, RoomName};
use webcall_domain::DomainError;

use super::rooms::{room_from_row, ROOM_COLUMNS};
use super::{corrupt, from_millis, infra, millis, SqlStore};

#[async_trait]
impl RoomAccessRepository for SqlStore {
    async fn create_room_with_access(
        &self,
        name: &RoomName,
        owner: UserId,
        at: DateTime<Utc>,
        max_owned: usize,
        access: &RoomAccess,
    ) -> Result<Room, DomainError> {
        self.insert_room(name, owner, at, max_owned, access).await
    }

    async fn change_access(
        &self,
        room: &RoomName,
        change: &AccessChange,
    ) -> Result<bool, DomainError> {
        // One statement: each part is set, or kept (CASE on a flag).
        let updated = sqlx::query(
            "UPDATE rooms SET \
             access = CASE WHEN $1 = 1 THEN $2 ELSE access END, \
             password_hash = CASE WHEN $3 = 1 THEN $4 ELSE password_hash END, \
             ask_to_join = CASE WHEN $5 = 1 THEN $6 ELSE ask_to_join END \
             WHERE name = $7",
        )
        .bind(i64::from(change.access.is_some()))
        .bind(change.access.map_or("public", |a| a.as_str()))
        .bind(i64::from(change.password.is_some()))
        .bind(change.password.clone().flatten().map(|hash| hash.0))
        .bind(i64::from(change.ask_to_join.is_some()))
        .bind(i64::from(change.ask_to_join.unwrap_or(false)))
        .bind(room.as_str().to_owned())
        .execute(&self.pool)
        .await
        .map_err(infra)?;
        Ok(updated.rows_affected() > 0)
    }

    async fn list_visible_rooms(
        &self,
        viewer: UserId,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<Room>, DomainError> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms JOIN users ON users.id = rooms.owner_id \
             WHERE rooms.name > $1 AND (rooms.access = 'public' OR rooms.owner_id = $2 \
             OR (rooms.access = 'private' AND EXISTS (SELECT 1 FROM room_members \
             WHERE room_members.room = rooms.name AND room_members.user_id = $3))) \
             ORDER BY rooms.name LIMIT $4"
        ))
        .bind(after.map_or("", RoomName::as_str).to_owned())
        .bind(viewer.to_string())
        .bind(viewer.to_string())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        rows.iter().map(room_from_row).collect()
    }

    async fn is_member(&self, room: &RoomName, user: UserId) -> Result<bool, DomainError> {
        let row = sqlx::query("SELECT 1 AS one FROM room_members WHERE room = $1 AND user_id = $2")
            .bind(room.as_str().to_owned())
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(infra)?;
        Ok(row.is_some())
    }

    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, DomainError> {
        let rows = sqlx::query(
            "SELECT room_members.user_id, users.username, room_members.added_at \
             FROM room_members JOIN users ON users.id = room_members.user_id \
             WHERE room_members.room = $1 ORDER BY users.username",
        )
        .bind(room.as_str().to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("user_id").map_err(infra)?;
                Ok(Member {
                    user_id: UserId(Uuid::from_str(&id).map_err(|_| corrupt("member"))?),
                    username: row.try_get("username").map_err(infra)?,
                    added_at: from_millis(row.try_get("added_at").map_err(infra)?)?,
                })
            })
            .collect()
    }

    async fn add_member(
        &self,
        room: &RoomName,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let added = sqlx::query(
            "INSERT INTO room_members (room, user_id, added_at) \
             SELECT name, $1, $2 FROM rooms WHERE name = $3 \
             ON CONFLICT (room, user_id) DO NOTHING",
        )
        .bind(user.to_string())
        .bind(millis(at))
        .bind(room.as_str().to_owned())
        .execute(&self.pool)
        .await
        .map_err(infra)?;
        if added.rows_affected() > 0 {
            return Ok(true);
        }
        // Nothing inserted: already a member, or no such room.
        let exists = sqlx::query("SELECT 1 AS one FROM rooms WHERE name = $1")
            .bind(room.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(infra)?;
        Ok(exists.is_some())
    }

    async fn remove_member(&self, room: &RoomName, user: UserId) -> Result<bool, DomainError> {
        let removed = sqlx::query("DELETE FROM room_members WHERE room = $1 AND user_id = $2")
            .bind(room.as_str().to_owned())
            .bind(user.to_string())
            .execute(&self.pool)
            .await
            .map_err(infra)?;
        Ok(removed.rows_affected() > 0)
    }
}
