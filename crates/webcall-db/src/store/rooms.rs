//! Rooms: [`RoomRepository`] in SQL.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;
use webcall_domain::access::{Access, RoomAccess};
use webcall_domain::model::{PasswordHash, UserId};
use webcall_domain::ports::RoomRepository;
use webcall_domain::signaling::{Room, RoomName};
use webcall_domain::DomainError;

use super::{corrupt, from_millis, infra, millis, Backend, SqlStore};

pub(super) const ROOM_COLUMNS: &str =
    "rooms.name, rooms.owner_id, users.username AS owner_name, rooms.created_at, rooms.locked, \
     rooms.access, rooms.password_hash, rooms.ask_to_join";

pub(super) fn room_from_row(row: &AnyRow) -> Result<Room, DomainError> {
    let name: String = row.try_get("name").map_err(infra)?;
    let owner: String = row.try_get("owner_id").map_err(infra)?;
    Ok(Room {
        name: RoomName::parse(&name).map_err(|_| corrupt("room name"))?,
        owner: UserId(Uuid::from_str(&owner).map_err(|_| corrupt("room owner"))?),
        owner_name: row.try_get("owner_name").map_err(infra)?,
        created_at: from_millis(row.try_get("created_at").map_err(infra)?)?,
        locked: row.try_get::<i64, _>("locked").map_err(infra)? != 0,
        access: RoomAccess {
            access: Access::parse(&row.try_get::<String, _>("access").map_err(infra)?)
                .map_err(|_| corrupt("room access"))?,
            password: row
                .try_get::<Option<String>, _>("password_hash")
                .map_err(infra)?
                .map(PasswordHash),
            ask_to_join: row.try_get::<i64, _>("ask_to_join").map_err(infra)? != 0,
        },
    })
}

impl SqlStore {
    /// Creates the room with its access set (see `create_room`).
    pub(super) async fn insert_room(
        &self,
        name: &RoomName,
        owner: UserId,
        at: DateTime<Utc>,
        max_owned: usize,
        access: &RoomAccess,
    ) -> Result<Room, DomainError> {
        // One statement counts and inserts. SQLite runs it under the database's
        // write lock; PostgreSQL first locks the owner's row, so that concurrent
        // creations by one owner take turns (READ COMMITTED would let them all
        // count the same rooms).
        let mut tx = self.pool.begin().await.map_err(infra)?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(owner.to_string())
                .execute(&mut *tx)
                .await
                .map_err(infra)?;
        }
        let inserted = sqlx::query(
            "INSERT INTO rooms (name, owner_id, created_at, access, password_hash, ask_to_join) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE (SELECT COUNT(*) FROM rooms WHERE owner_id = $7) < $8",
        )
        .bind(name.as_str().to_owned())
        .bind(owner.to_string())
        .bind(millis(at))
        .bind(access.access.as_str())
        .bind(access.password.as_ref().map(|hash| hash.0.clone()))
        .bind(i64::from(access.ask_to_join))
        .bind(owner.to_string())
        .bind(i64::try_from(max_owned).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(done) if done.rows_affected() == 0 => {
                return Err(DomainError::RoomLimit { max: max_owned })
            }
            Ok(_) => tx.commit().await.map_err(infra)?,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(DomainError::RoomExists)
            }
            Err(err) => return Err(infra(err)),
        }
        self.find_room(name)
            .await?
            .ok_or_else(|| DomainError::infrastructure("room vanished right after it was created"))
    }
}

#[async_trait]
impl RoomRepository for SqlStore {
    async fn create_room(
        &self,
        name: &RoomName,
        owner: UserId,
        at: DateTime<Utc>,
        max_owned: usize,
    ) -> Result<Room, DomainError> {
        self.insert_room(name, owner, at, max_owned, &RoomAccess::default())
            .await
    }

    async fn find_room(&self, name: &RoomName) -> Result<Option<Room>, DomainError> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms JOIN users ON users.id = rooms.owner_id WHERE rooms.name = $1"
        ))
        .bind(name.as_str().to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(infra)?;
        row.as_ref().map(room_from_row).transpose()
    }

    async fn list_rooms(
        &self,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<Room>, DomainError> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms JOIN users ON users.id = rooms.owner_id \
             WHERE rooms.name > $1 ORDER BY rooms.name LIMIT $2"
        ))
        .bind(after.map_or("", RoomName::as_str).to_owned())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        rows.iter().map(room_from_row).collect()
    }

    async fn delete_room(&self, name: &RoomName) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await.map_err(infra)?;
        // Explicit rather than trusting ON DELETE CASCADE (SQLite needs foreign_keys on).
        // Files first (their messages go with them), the order deleting one
        // file takes: two deletions never wait for each other.
        sqlx::query("DELETE FROM attachments WHERE room = $1")
            .bind(name.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(infra)?;
        sqlx::query("DELETE FROM chat_messages WHERE room = $1")
            .bind(name.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(infra)?;
        sqlx::query("DELETE FROM room_members WHERE room = $1")
            .bind(name.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(infra)?;
        sqlx::query("DELETE FROM room_bans WHERE room = $1")
            .bind(name.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(infra)?;
        let deleted = sqlx::query("DELETE FROM rooms WHERE name = $1")
            .bind(name.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(infra)?
            .rows_affected();
        tx.commit().await.map_err(infra)?;
        Ok(deleted > 0)
    }
}
