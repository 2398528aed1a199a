//! Guest links: [`InviteRepository`] in SQL (`room_invites`, migration 0011).
//! A use is counted by one conditional `UPDATE`, so two guests racing for a
//! link's last use cannot both have it.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;
use webcall_domain::guests::{Invite, InviteId, InviteRepository, Redeemed};
use webcall_domain::model::UserId;
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use super::{corrupt, from_millis, infra, millis, SqlStore};

const INVITE_FIELDS: &str = "id, room, created_by, created_at, expires_at, max_uses, uses";

fn invite_from_row(row: &AnyRow) -> Result<Invite, DomainError> {
    let id: String = row.try_get("id").map_err(infra)?;
    let room: String = row.try_get("room").map_err(infra)?;
    let created_by: String = row.try_get("created_by").map_err(infra)?;
    let max_uses: Option<i64> = row.try_get("max_uses").map_err(infra)?;
    let uses: i64 = row.try_get("uses").map_err(infra)?;
    let count = |n: i64| u32::try_from(n).map_err(|_| corrupt("invite use count"));
    Ok(Invite {
        id: InviteId::parse(&id).ok_or_else(|| corrupt("invite id"))?,
        room: RoomName::parse(&room).map_err(|_| corrupt("invite room"))?,
        created_by: UserId(Uuid::from_str(&created_by).map_err(|_| corrupt("invite maker"))?),
        created_at: from_millis(row.try_get("created_at").map_err(infra)?)?,
        expires_at: from_millis(row.try_get("expires_at").map_err(infra)?)?,
        max_uses: max_uses.map(count).transpose()?,
        uses: count(uses)?,
    })
}

#[async_trait]
impl InviteRepository for SqlStore {
    async fn create_invite(&self, invite: &Invite, token_hash: &str) -> Result<bool, DomainError> {
        // Inserted only while the room exists (no foreign-key error to tell apart).
        let inserted = sqlx::query(
            "INSERT INTO room_invites \
             (id, room, token_hash, created_by, created_at, expires_at, max_uses, uses) \
             SELECT $1, name, $2, $3, $4, $5, $6, 0 FROM rooms WHERE name = $7",
        )
        .bind(invite.id.to_string())
        .bind(token_hash.to_owned())
        .bind(invite.created_by.to_string())
        .bind(millis(invite.created_at))
        .bind(millis(invite.expires_at))
        .bind(invite.max_uses.map(i64::from))
        .bind(invite.room.as_str().to_owned())
        .execute(&self.pool)
        .await
        .map_err(infra)?;
        Ok(inserted.rows_affected() > 0)
    }

    async fn list_invites(&self, room: &RoomName) -> Result<Vec<Invite>, DomainError> {
        let rows = sqlx::query(&format!(
            "SELECT {INVITE_FIELDS} FROM room_invites WHERE room = $1 \
             ORDER BY created_at DESC, id"
        ))
        .bind(room.as_str().to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        rows.iter().map(invite_from_row).collect()
    }

    async fn delete_invite(&self, room: &RoomName, id: InviteId) -> Result<bool, DomainError> {
        let deleted = sqlx::query("DELETE FROM room_invites WHERE id = $1 AND room = $2")
            .bind(id.to_string())
            .bind(room.as_str().to_owned())
            .execute(&self.pool)
            .await
            .map_err(infra)?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn find_invite(&self, token_hash: &str) -> Result<Option<Invite>, DomainError> {
        let row = sqlx::query(&format!(
            "SELECT {INVITE_FIELDS} FROM room_invites WHERE token_hash = $1"
        ))
        .bind(token_hash.to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(infra)?;
        row.as_ref().map(invite_from_row).transpose()
    }

    async fn redeem_invite(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, DomainError> {
        let row = sqlx::query(&format!(
            "UPDATE room_invites SET uses = uses + 1 \
             WHERE token_hash = $1 AND expires_at > $2 \
             AND (max_uses IS NULL OR uses < max_uses) RETURNING {INVITE_FIELDS}"
        ))
        .bind(token_hash.to_owned())
        .bind(millis(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(infra)?;
        if let Some(row) = row {
            return Ok(Redeemed::Admitted(invite_from_row(&row)?));
        }
        // Not counted: say why.
        Ok(match self.find_invite(token_hash).await? {
            None => Redeemed::NotFound,
            Some(invite) if now >= invite.expires_at => Redeemed::Expired,
            Some(_) => Redeemed::UsedUp,
        })
    }
}
