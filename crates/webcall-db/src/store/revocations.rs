//! Revoked tokens and token families: [`TokenRevocations`] in SQL.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;
use webcall_domain::model::{TokenHolder, UserId};
use webcall_domain::ports::TokenRevocations;
use webcall_domain::DomainError;

use super::users::{user_from_row, USER_FIELDS};
use super::{corrupt, from_millis, infra, millis, SqlStore};

#[async_trait]
impl TokenRevocations for SqlStore {
    async fn revoke(
        &self,
        jti: Uuid,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let mut tx = self.pool.begin().await.map_err(infra)?;
        let inserted = sqlx::query(
            "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti.to_string())
        .bind(user.to_string())
        .bind(millis(expires_at))
        .execute(&mut *tx)
        .await
        .map_err(infra)?
        .rows_affected()
            == 1;
        // Entries past their token's expiry prove nothing any more: sweep them here,
        // on the rare write path, so the table stays as small as the live tokens.
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(millis(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(infra)?;
        tx.commit().await.map_err(infra)?;
        Ok(inserted)
    }

    async fn is_revoked(&self, jti: Uuid) -> Result<bool, DomainError> {
        let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1")
            .bind(jti.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(infra)?;
        Ok(row.is_some())
    }

    async fn holder(
        &self,
        jti: Uuid,
        family: Uuid,
        user: UserId,
    ) -> Result<TokenHolder, DomainError> {
        // One row always: the revocation count, and the account's columns (NULL
        // when there is no such account).
        let row = sqlx::query(&format!(
            "SELECT (SELECT COUNT(*) FROM revoked_tokens WHERE jti = $1 OR jti = $3) AS revoked, \
             {USER_FIELDS} \
             FROM (SELECT 1 AS probe) AS probe LEFT JOIN users ON users.id = $2",
        ))
        .bind(jti.to_string())
        .bind(user.to_string())
        .bind(family.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(infra)?;
        let revoked: i64 = row.try_get("revoked").map_err(infra)?;
        if revoked > 0 {
            return Ok(TokenHolder::Revoked);
        }
        let id: Option<String> = row.try_get("id").map_err(infra)?;
        if id.is_none() {
            return Ok(TokenHolder::Unknown);
        }
        user_from_row(&row).map(TokenHolder::Active)
    }

    async fn revoked_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, DomainError> {
        let rows = sqlx::query("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > $1")
            .bind(millis(after))
            .fetch_all(&self.pool)
            .await
            .map_err(infra)?;
        rows.iter()
            .map(|row| {
                let jti: String = row.try_get("jti").map_err(infra)?;
                let jti = Uuid::from_str(&jti).map_err(|_| corrupt("revoked jti"))?;
                Ok((jti, from_millis(row.try_get("expires_at").map_err(infra)?)?))
            })
            .collect()
    }
}
