//! Rooms' moderation rules: [`RoomModeration`] in SQL (`rooms.hosts_only`,
//! `room_bans`; migration 0008). A room's bans go with the room.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;
use webcall_domain::model::UserId;
use webcall_domain::ports::RoomModeration;
use webcall_domain::signaling::{RoomName, RoomRules};
use webcall_domain::DomainError;

use super::{corrupt, infra, millis, SqlStore};

#[async_trait]
impl RoomModeration for SqlStore {
    async fn room_rules(&self, room: &RoomName) -> Result<RoomRules, DomainError> {
        // One round trip: the room's flag, with one row per ban (or one with none).
        let rows = sqlx::query(
            "SELECT rooms.hosts_only, room_bans.user_id FROM rooms \
             LEFT JOIN room_bans ON room_bans.room = rooms.name WHERE rooms.name = $1",
        )
        .bind(room.as_str().to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        let mut rules = RoomRules::default();
        for row in &rows {
            rules.hosts_only = row.try_get::<i64, _>("hosts_only").map_err(infra)? != 0;
            if let Some(user) = row.try_get::<Option<String>, _>("user_id").map_err(infra)? {
                let id = Uuid::from_str(&user).map_err(|_| corrupt("banned user"))?;
                rules.banned.push(UserId(id));
            }
        }
        Ok(rules)
    }

    async fn ban_from_room(
        &self,
        room: &RoomName,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        sqlx::query(
            "INSERT INTO room_bans (room, user_id, banned_at) VALUES ($1, $2, $3) \
             ON CONFLICT (room, user_id) DO NOTHING",
        )
        .bind(room.as_str().to_owned())
        .bind(user.to_string())
        .bind(millis(at))
        .execute(&self.pool)
        .await
        .map_err(infra)?;
        Ok(())
    }

    async fn set_hosts_only(&self, room: &RoomName, on: bool) -> Result<bool, DomainError> {
        let updated = sqlx::query("UPDATE rooms SET hosts_only = $1 WHERE name = $2")
            .bind(i64::from(on))
            .bind(room.as_str().to_owned())
            .execute(&self.pool)
            .await
            .map_err(infra)?;
        Ok(updated.rows_affected() > 0)
    }
}
