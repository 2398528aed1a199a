//! What the operator changed at run time: [`OperatorSettings`] in SQL (the
//! relay quotas and the signing keys' generations; never a key), each change
//! with its audit entry in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use webcall_domain::admin::NewAuditEntry;
use webcall_domain::operations::{KeyGeneration, KeyKind, RelayQuotas};
use webcall_domain::ports::OperatorSettings;
use webcall_domain::DomainError;

use super::{corrupt, from_millis, infra, millis, SqlStore};

fn generation_from_row(row: &sqlx::any::AnyRow) -> Result<KeyGeneration, DomainError> {
    let generation: i64 = row.try_get("generation").map_err(infra)?;
    let rotated_at: Option<i64> = row.try_get("rotated_at").map_err(infra)?;
    Ok(KeyGeneration {
        generation: u32::try_from(generation).map_err(|_| corrupt("key generation"))?,
        rotated_at: rotated_at.map(from_millis).transpose()?,
    })
}

#[async_trait]
impl OperatorSettings for SqlStore {
    async fn relay_quotas(&self) -> Result<Option<(RelayQuotas, u64)>, DomainError> {
        let row = sqlx::query("SELECT per_user, total, version FROM relay_quotas WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(infra)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let number = |column: &str| -> Result<u32, DomainError> {
            let value: i64 = row.try_get(column).map_err(infra)?;
            u32::try_from(value).map_err(|_| corrupt("relay quota"))
        };
        let quotas = RelayQuotas::new(number("per_user")?, number("total")?)
            .map_err(|_| corrupt("relay quotas"))?;
        let version: i64 = row.try_get("version").map_err(infra)?;
        Ok(Some((quotas, version as u64)))
    }

    async fn save_relay_quotas(
        &self,
        quotas: RelayQuotas,
        audit: NewAuditEntry,
    ) -> Result<u64, DomainError> {
        let mut tx = self.audited(&audit, false).await?;
        let row = sqlx::query(
            "INSERT INTO relay_quotas (id, per_user, total, version) VALUES (1, $1, $2, 1) \
             ON CONFLICT (id) DO UPDATE SET per_user = excluded.per_user, \
             total = excluded.total, version = relay_quotas.version + 1 \
             RETURNING version",
        )
        .bind(i64::from(quotas.per_user))
        .bind(i64::from(quotas.total))
        .fetch_one(&mut *tx)
        .await
        .map_err(infra)?;
        let version: i64 = row.try_get("version").map_err(infra)?;
        tx.commit().await.map_err(infra)?;
        Ok(version as u64)
    }

    async fn key_generation(&self, key: KeyKind) -> Result<KeyGeneration, DomainError> {
        let row = sqlx::query("SELECT generation, rotated_at FROM signing_keys WHERE kind = $1")
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(infra)?;
        row.as_ref()
            .map_or(Ok(KeyGeneration::INITIAL), generation_from_row)
    }

    async fn rotate_key(
        &self,
        key: KeyKind,
        now: DateTime<Utc>,
        audit: NewAuditEntry,
    ) -> Result<KeyGeneration, DomainError> {
        let mut tx = self.audited(&audit, false).await?;
        let row = sqlx::query(
            "UPDATE signing_keys SET generation = generation + 1, rotated_at = $2 \
             WHERE kind = $1 RETURNING generation, rotated_at",
        )
        .bind(key.as_str())
        .bind(millis(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(infra)?
        .ok_or_else(|| corrupt("signing key row"))?;
        let generation = generation_from_row(&row)?;
        tx.commit().await.map_err(infra)?;
        Ok(generation)
    }
}
