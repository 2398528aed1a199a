//! The admin use cases' storage: [`AdminRepository`] in SQL. Each change is
//! written with its audit entry in one transaction, the entry first: on SQLite
//! that takes the write lock before anything is read, so a guard (never the
//! last admin) and its change cannot be split by another writer. On PostgreSQL
//! changes to admins take the admins' lock ([`SqlStore::lock_admins`]) first.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;
use webcall_domain::admin::{
    AccountChange, AdminRepository, AuditEntry, NewAuditEntry, OwnerChange,
};
use webcall_domain::model::{PasswordHash, Role, User, UserId};
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use super::users::{user_from_row, USER_FIELDS};
use super::{corrupt, from_millis, infra, millis, Backend, SqlStore};

/// The key of PostgreSQL's transaction-scoped advisory lock that changes to
/// who is an admin take in turn ("webcall admins" in ASCII, more or less).
const ADMINS_LOCK: i64 = 0x7765_6263_6164_6d6e;

/// True when an admin other than `$N` remains (not banned); `$N` is bound by the caller.
fn another_admin(param: usize) -> String {
    format!(
        "(SELECT COUNT(*) FROM users AS others WHERE others.role = 'admin' \
         AND others.banned_at IS NULL AND others.id <> ${param}) > 0"
    )
}

/// `%`, `_` and `\` taken literally in a `LIKE … ESCAPE '\'` pattern.
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, DomainError> {
    let actor: String = row.try_get("actor_id").map_err(infra)?;
    Ok(AuditEntry {
        id: row.try_get("id").map_err(infra)?,
        at: from_millis(row.try_get("at").map_err(infra)?)?,
        actor: UserId(Uuid::from_str(&actor).map_err(|_| corrupt("audit actor"))?),
        actor_name: row.try_get("actor_name").map_err(infra)?,
        action: row.try_get("action").map_err(infra)?,
        target: row.try_get("target").map_err(infra)?,
        detail: row.try_get("detail").map_err(infra)?,
    })
}

impl SqlStore {
    /// Takes turns with every other change to who is an admin (PostgreSQL:
    /// READ COMMITTED would let two such changes both see the admin they
    /// remove as "another admin"). Released at the end of the transaction.
    pub(super) async fn lock_admins(tx: &mut Transaction<'_, Any>) -> Result<(), DomainError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ADMINS_LOCK)
            .execute(&mut **tx)
            .await
            .map_err(infra)?;
        Ok(())
    }

    /// A transaction with the audit entry written (and, on PostgreSQL, the
    /// admins' lock taken when `admins` is true).
    pub(super) async fn audited(
        &self,
        audit: &NewAuditEntry,
        admins: bool,
    ) -> Result<Transaction<'static, Any>, DomainError> {
        let mut tx = self.pool.begin().await.map_err(infra)?;
        if admins && self.backend == Backend::Postgres {
            Self::lock_admins(&mut tx).await?;
        }
        insert_audit(&mut tx, audit).await?;
        Ok(tx)
    }

    async fn user_exists(&self, user: UserId) -> Result<bool, DomainError> {
        Ok(sqlx::query("SELECT 1 FROM users WHERE id = $1")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(infra)?
            .is_some())
    }

    /// Commits `tx` when `changed`; otherwise rolls it back (the audit entry
    /// with it) and tells a missing account from the guard refusing.
    async fn account_change(
        &self,
        tx: Transaction<'static, Any>,
        changed: bool,
        user: UserId,
    ) -> Result<AccountChange, DomainError> {
        if changed {
            tx.commit().await.map_err(infra)?;
            return Ok(AccountChange::Done);
        }
        tx.rollback().await.map_err(infra)?;
        Ok(if self.user_exists(user).await? {
            AccountChange::LastAdmin
        } else {
            AccountChange::NotFound
        })
    }
}

/// Commits the change (and its audit entry) when it happened, else rolls both back.
async fn finish(tx: Transaction<'static, Any>, changed: bool) -> Result<(), DomainError> {
    if changed {
        tx.commit().await
    } else {
        tx.rollback().await
    }
    .map_err(infra)
}

async fn insert_audit(
    tx: &mut Transaction<'_, Any>,
    audit: &NewAuditEntry,
) -> Result<(), DomainError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_id, actor_name, action, target, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(millis(audit.at))
    .bind(audit.actor.to_string())
    .bind(audit.actor_name.clone())
    .bind(audit.action)
    .bind(audit.target.clone())
    .bind(audit.detail.clone())
    .execute(&mut **tx)
    .await
    .map_err(infra)?;
    Ok(())
}

#[async_trait]
impl AdminRepository for SqlStore {
    async fn search_users(
        &self,
        query: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<User>, DomainError> {
        let pattern = format!(
            "%{}%",
            like_literal(&query.unwrap_or_default().to_lowercase())
        );
        let rows = sqlx::query(&format!(
            "SELECT {USER_FIELDS} FROM users \
             WHERE (username_norm LIKE $1 ESCAPE '\\' OR email_norm LIKE $2 ESCAPE '\\') \
             AND username_norm > $3 ORDER BY username_norm LIMIT $4"
        ))
        .bind(pattern.clone())
        .bind(pattern)
        .bind(after.unwrap_or_default().to_ascii_lowercase())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn set_banned(
        &self,
        user: UserId,
        banned_at: Option<DateTime<Utc>>,
        audit: NewAuditEntry,
    ) -> Result<AccountChange, DomainError> {
        let mut tx = self.audited(&audit, true).await?;
        let ban = format!(
            "UPDATE users SET banned_at = COALESCE(banned_at, $1), tokens_valid_from = $1 \
             WHERE id = $2 AND (role <> 'admin' OR {})",
            another_admin(3)
        );
        let changed = match banned_at {
            Some(at) => sqlx::query(&ban)
                .bind(millis(at))
                .bind(user.to_string())
                .bind(user.to_string()),
            None => sqlx::query("UPDATE users SET banned_at = NULL WHERE id = $1")
                .bind(user.to_string()),
        }
        .execute(&mut *tx)
        .await
        .map_err(infra)?
        .rows_affected()
            > 0;
        self.account_change(tx, changed, user).await
    }

    async fn set_role(
        &self,
        user: UserId,
        role: Role,
        audit: NewAuditEntry,
    ) -> Result<AccountChange, DomainError> {
        let mut tx = self.audited(&audit, true).await?;
        let changed = sqlx::query(&format!(
            "UPDATE users SET role = $1 WHERE id = $2 AND ($3 = 'admin' OR {})",
            another_admin(4)
        ))
        .bind(role.as_str())
        .bind(user.to_string())
        .bind(role.as_str())
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .map_err(infra)?
        .rows_affected()
            > 0;
        self.account_change(tx, changed, user).await
    }

    async fn delete_user(
        &self,
        user: UserId,
        audit: NewAuditEntry,
    ) -> Result<AccountChange, DomainError> {
        let mut tx = self.audited(&audit, true).await?;
        let changed = sqlx::query(&format!(
            "DELETE FROM users WHERE id = $1 AND (role <> 'admin' OR {})",
            another_admin(2)
        ))
        .bind(user.to_string())
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .map_err(infra)?
        .rows_affected()
            > 0;
        self.account_change(tx, changed, user).await
    }

    async fn is_last_admin(&self, user: UserId) -> Result<bool, DomainError> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS last FROM users WHERE id = $1 AND role = 'admin' \
             AND banned_at IS NULL AND NOT {}",
            another_admin(2)
        ))
        .bind(user.to_string())
        .bind(user.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(infra)?;
        Ok(row.try_get::<i64, _>("last").map_err(infra)? > 0)
    }

    async fn promote_emails(&self, emails: &[String]) -> Result<u64, DomainError> {
        let mut promoted = 0;
        for email in emails {
            promoted += sqlx::query(
                "UPDATE users SET role = 'admin' WHERE email_norm = $1 AND role <> 'admin'",
            )
            .bind(email.clone())
            .execute(&self.pool)
            .await
            .map_err(infra)?
            .rows_affected();
        }
        Ok(promoted)
    }

    async fn set_room_locked(
        &self,
        room: &RoomName,
        locked: bool,
        audit: NewAuditEntry,
    ) -> Result<bool, DomainError> {
        let mut tx = self.audited(&audit, false).await?;
        let changed = sqlx::query("UPDATE rooms SET locked = $1 WHERE name = $2")
            .bind(i64::from(locked))
            .bind(room.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(infra)?
            .rows_affected()
            > 0;
        finish(tx, changed).await?;
        Ok(changed)
    }

    async fn set_room_owner(
        &self,
        room: &RoomName,
        owner: UserId,
        audit: NewAuditEntry,
    ) -> Result<OwnerChange, DomainError> {
        let mut tx = self.audited(&audit, false).await?;
        let changed = sqlx::query(
            "UPDATE rooms SET owner_id = $1 WHERE name = $2 \
             AND EXISTS (SELECT 1 FROM users WHERE id = $3)",
        )
        .bind(owner.to_string())
        .bind(room.as_str().to_owned())
        .bind(owner.to_string())
        .execute(&mut *tx)
        .await
        .map_err(infra)?
        .rows_affected()
            > 0;
        if changed {
            tx.commit().await.map_err(infra)?;
            return Ok(OwnerChange::Done);
        }
        tx.rollback().await.map_err(infra)?;
        Ok(if !self.user_exists(owner).await? {
            OwnerChange::NoSuchUser
        } else {
            OwnerChange::NoSuchRoom
        })
    }

    async fn delete_room_audited(
        &self,
        room: &RoomName,
        audit: NewAuditEntry,
    ) -> Result<bool, DomainError> {
        let mut tx = self.audited(&audit, false).await?;
        // Files first (their messages go with them), the order deleting one
        // file takes: two deletions never wait for each other.
        sqlx::query("DELETE FROM attachments WHERE room = $1")
            .bind(room.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(infra)?;
        sqlx::query("DELETE FROM chat_messages WHERE room = $1")
            .bind(room.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(infra)?;
        let deleted = sqlx::query("DELETE FROM rooms WHERE name = $1")
            .bind(room.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(infra)?
            .rows_affected()
            > 0;
        finish(tx, deleted).await?;
        Ok(deleted)
    }

    async fn record(&self, audit: NewAuditEntry) -> Result<(), DomainError> {
        let tx = self.audited(&audit, false).await?;
        tx.commit().await.map_err(infra)
    }

    async fn audit_page(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, DomainError> {
        let rows = sqlx::query(
            "SELECT id, at, actor_id, actor_name, action, target, detail FROM audit_log \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn create_reset(
        &self,
        user: UserId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        audit: NewAuditEntry,
    ) -> Result<bool, DomainError> {
        let mut tx = self.audited(&audit, false).await?;
        let stored = sqlx::query(
            "INSERT INTO password_resets (user_id, token_hash, expires_at) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM users WHERE id = $4) \
             ON CONFLICT (user_id) DO UPDATE SET token_hash = excluded.token_hash, \
             expires_at = excluded.expires_at",
        )
        .bind(user.to_string())
        .bind(token_hash.to_owned())
        .bind(millis(expires_at))
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .map_err(infra)?
        .rows_affected()
            > 0;
        finish(tx, stored).await?;
        Ok(stored)
    }

    async fn consume_reset(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        password_hash: PasswordHash,
    ) -> Result<Option<UserId>, DomainError> {
        let mut tx = self.pool.begin().await.map_err(infra)?;
        let row = sqlx::query(
            "DELETE FROM password_resets WHERE token_hash = $1 AND expires_at > $2 \
             RETURNING user_id",
        )
        .bind(token_hash.to_owned())
        .bind(millis(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(infra)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user: String = row.try_get("user_id").map_err(infra)?;
        // Tokens carry whole seconds (`iat`), so a login later in this same
        // second is refused too: never one from before the reset.
        let from = millis(now);
        sqlx::query("UPDATE users SET password_hash = $1, tokens_valid_from = $2 WHERE id = $3")
            .bind(password_hash.0)
            .bind(from)
            .bind(user.clone())
            .execute(&mut *tx)
            .await
            .map_err(infra)?;
        tx.commit().await.map_err(infra)?;
        Ok(Some(UserId(
            Uuid::from_str(&user).map_err(|_| corrupt("reset user id"))?,
        )))
    }
}
