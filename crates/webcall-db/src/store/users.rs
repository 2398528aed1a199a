//! Accounts: [`UserRepository`] in SQL.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;
use webcall_domain::model::{
    Email, LoginIdentifier, NewUser, PasswordHash, Role, User, UserId, Username,
};
use webcall_domain::ports::UserRepository;
use webcall_domain::DomainError;

use super::{corrupt, from_millis, infra, millis, Backend, SqlStore};

/// The columns [`user_from_row`] reads, of the `users` table.
pub(super) const USER_FIELDS: &str = "users.id, users.email, users.username, users.created_at, \
     users.role, users.banned_at, users.tokens_valid_from";

pub(super) fn user_from_row(row: &AnyRow) -> Result<User, DomainError> {
    let id: String = row.try_get("id").map_err(infra)?;
    let email: String = row.try_get("email").map_err(infra)?;
    let username: String = row.try_get("username").map_err(infra)?;
    let role: String = row.try_get("role").map_err(infra)?;
    let optional_time = |column: &str| -> Result<_, DomainError> {
        let ms: Option<i64> = row.try_get(column).map_err(infra)?;
        ms.map(from_millis).transpose()
    };
    Ok(User {
        id: UserId(Uuid::from_str(&id).map_err(|_| corrupt("user id"))?),
        email: Email::parse(&email).unwrap_or_else(|_| Email::from_stored(&email)),
        username: Username::parse(&username).map_err(|_| corrupt("username"))?,
        created_at: from_millis(row.try_get("created_at").map_err(infra)?)?,
        role: Role::parse(&role).map_err(|_| corrupt("role"))?,
        banned_at: optional_time("banned_at")?,
        tokens_valid_from: optional_time("tokens_valid_from")?,
    })
}

const USER_COLUMNS: &str = "id, email, username, created_at, role, banned_at, \
     tokens_valid_from, password_hash";

#[async_trait]
impl UserRepository for SqlStore {
    /// The first account ever stored is an admin, whatever `new` says: one
    /// statement decides it, under SQLite's write lock or, on PostgreSQL, the
    /// admins' lock ([`SqlStore::lock_admins`]), so two first registrations at
    /// once make one admin.
    async fn insert(&self, new: NewUser) -> Result<User, DomainError> {
        let user = new.user;
        let mut tx = self.pool.begin().await.map_err(infra)?;
        if self.backend == Backend::Postgres {
            Self::lock_admins(&mut tx).await?;
        }
        let result = sqlx::query(
            "INSERT INTO users (id, email, email_norm, username, username_norm, password_hash, created_at, role) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, \
             CASE WHEN $8 = 'admin' OR NOT EXISTS (SELECT 1 FROM users) THEN 'admin' ELSE 'member' END) \
             RETURNING role",
        )
        .bind(user.id.to_string())
        .bind(user.email.as_str().to_owned())
        .bind(user.email.normalized())
        .bind(user.username.as_str().to_owned())
        .bind(user.username.normalized())
        .bind(new.password_hash.0)
        .bind(millis(user.created_at))
        .bind(user.role.as_str())
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(infra)?;
                let role: String = row.try_get("role").map_err(infra)?;
                Ok(User {
                    // Stored to the millisecond: return what a later read returns.
                    created_at: from_millis(millis(user.created_at))?,
                    role: Role::parse(&role).map_err(|_| corrupt("role"))?,
                    ..user
                })
            }
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                if db.message().contains("username_norm") {
                    Err(DomainError::UsernameTaken)
                } else {
                    Err(DomainError::EmailTaken)
                }
            }
            Err(err) => Err(infra(err)),
        }
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, DomainError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(infra)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_for_login(
        &self,
        login: &LoginIdentifier,
    ) -> Result<Option<(User, PasswordHash)>, DomainError> {
        let (column, value) = match login {
            LoginIdentifier::Email(email) => ("email_norm", email.normalized()),
            LoginIdentifier::Username(name) => ("username_norm", name.normalized()),
        };
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {column} = $1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(infra)?;
        let Some(row) = row else { return Ok(None) };
        let hash: String = row.try_get("password_hash").map_err(infra)?;
        Ok(Some((user_from_row(&row)?, PasswordHash(hash))))
    }

    async fn delete(&self, id: UserId) -> Result<bool, DomainError> {
        let result = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(infra)?;
        Ok(result.rows_affected() > 0)
    }

    async fn newest(&self, limit: usize) -> Result<Vec<User>, DomainError> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at DESC, id LIMIT $1"
        ))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        rows.iter().map(user_from_row).collect()
    }
}
