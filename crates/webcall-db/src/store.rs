use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use uuid::Uuid;
use webcall_domain::model::{
    Email, LoginIdentifier, NewUser, PasswordHash, User, UserId, Username,
};
use webcall_domain::ports::{HealthCheck, TokenRevocations, UserRepository};
use webcall_domain::DomainError;

/// Which SQL database a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite:` URLs select SQLite, `postgres://` and `postgresql://` PostgreSQL.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// A connection pool and the queries WebCall runs on it.
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

impl SqlStore {
    /// Connects (creating a SQLite file if it is missing; WAL mode) without migrating.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)
            .context("DATABASE_URL must start with sqlite:, postgres:// or postgresql://")?;
        let (url, max_connections) = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                (format!("{url}{sep}mode=rwc"), 8)
            }
            Backend::Sqlite => (url.to_owned(), 8),
            Backend::Postgres => (url.to_owned(), 16),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("cannot open the {backend:?} database"))?;
        Ok(Self { pool, backend })
    }

    /// Connects and applies the embedded migrations.
    pub async fn connect_and_migrate(url: &str) -> anyhow::Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies any migration not yet applied (idempotent).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("../../migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("../../migrations/postgres"),
        };
        migrator
            .run(&self.pool)
            .await
            .context("applying database migrations")?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs raw SQL (administration and tests: creating a scratch schema, say).
    pub async fn execute_raw(&self, sql: &str) -> anyhow::Result<()> {
        self.pool.execute(sql).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn infra(err: sqlx::Error) -> DomainError {
    DomainError::infrastructure(err)
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(ms: i64) -> Result<DateTime<Utc>, DomainError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| DomainError::infrastructure(format!("stored time out of range: {ms}")))
}

fn corrupt(what: &str) -> DomainError {
    DomainError::infrastructure(format!("stored {what} is not valid"))
}

fn user_from_row(row: &AnyRow) -> Result<User, DomainError> {
    let id: String = row.try_get("id").map_err(infra)?;
    let email: String = row.try_get("email").map_err(infra)?;
    let username: String = row.try_get("username").map_err(infra)?;
    Ok(User {
        id: UserId(Uuid::from_str(&id).map_err(|_| corrupt("user id"))?),
        email: Email::parse(&email).map_err(|_| corrupt("email"))?,
        username: Username::parse(&username).map_err(|_| corrupt("username"))?,
        created_at: from_millis(row.try_get("created_at").map_err(infra)?)?,
    })
}

const USER_COLUMNS: &str = "id, email, username, created_at, password_hash";

#[async_trait]
impl UserRepository for SqlStore {
    async fn insert(&self, new: NewUser) -> Result<User, DomainError> {
        let user = new.user;
        let result = sqlx::query(
            "INSERT INTO users (id, email, email_norm, username, username_norm, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.id.to_string())
        .bind(user.email.as_str().to_owned())
        .bind(user.email.normalized())
        .bind(user.username.as_str().to_owned())
        .bind(user.username.normalized())
        .bind(new.password_hash.0)
        .bind(millis(user.created_at))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(User {
                // Stored to the millisecond: return what a later read returns.
                created_at: from_millis(millis(user.created_at))?,
                ..user
            }),
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
}

#[async_trait]
impl TokenRevocations for SqlStore {
    async fn revoke(
        &self,
        jti: Uuid,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await.map_err(infra)?;
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti.to_string())
        .bind(user.to_string())
        .bind(millis(expires_at))
        .execute(&mut *tx)
        .await
        .map_err(infra)?;
        // Entries past their token's expiry prove nothing any more: sweep them here,
        // on the rare write path, so the table stays as small as the live tokens.
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(millis(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(infra)?;
        tx.commit().await.map_err(infra)
    }

    async fn is_revoked(&self, jti: Uuid) -> Result<bool, DomainError> {
        let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1")
            .bind(jti.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(infra)?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl HealthCheck for SqlStore {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), DomainError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(infra)
    }
}
