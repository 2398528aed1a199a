//! The SQL store: one [`SqlStore`] over SQLite or PostgreSQL (sqlx's `Any`
//! driver), implementing every storage port; each port's queries are in a file
//! of their own (`users`, `revocations`, `rooms`, `chat`, `moderation`, `admin`,
//! `operations`, `access`, `invites`, `attachments`).

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};
use webcall_domain::model::Email;
use webcall_domain::ports::HealthCheck;
use webcall_domain::DomainError;

mod access;
mod admin;
mod attachments;
mod chat;
mod invites;
mod moderation;
mod operations;
mod revocations;
mod rooms;
mod users;

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
        if backend == Backend::Sqlite {
            // WAL is a property of the file: switch it once, on one connection.
            // Eight connections opening at once and each switching it found the
            // file busy now and then ("database is locked" logged at start-up,
            // about 1 start in 20), whatever the busy timeout.
            use sqlx::Connection as _;
            let mut first = sqlx::AnyConnection::connect(&url)
                .await
                .with_context(|| format!("cannot open the {backend:?} database"))?;
            first
                .execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")
                .await
                .context("cannot switch the SQLite database to WAL mode")?;
            first.close().await.ok();
        }
        let mut options = AnyPoolOptions::new().max_connections(max_connections);
        if backend == Backend::Sqlite {
            // Opening a SQLite connection starts a thread and reads the schema:
            // open them all now, and keep them, rather than in the middle of the
            // first burst of joins (a restart's reconnect storm).
            options = options
                .min_connections(max_connections)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = options
            // A SQLite connection is a file handle on a thread of its own: there is
            // no link to go stale, and the default ping before each use would add a
            // round trip to that thread (two context switches) to every query.
            .test_before_acquire(backend == Backend::Postgres)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON;",
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
        // Once, after the migration that marks it due (not at every start).
        let due = sqlx::query("SELECT due FROM email_nfc_pending")
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        if due {
            self.normalize_stored_emails()
                .await
                .context("normalising stored e-mail addresses")?;
            sqlx::query("DELETE FROM email_nfc_pending")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Brings addresses stored before e-mails were normalised (NFC) to today's
    /// form, so that their accounts are found by the address typed either way and
    /// the other form cannot register again. Where both forms are accounts
    /// already, both are left as they are, with a warning. Returns how many
    /// were rewritten.
    pub async fn normalize_stored_emails(&self) -> anyhow::Result<usize> {
        let rows = sqlx::query("SELECT id, email, email_norm FROM users")
            .fetch_all(&self.pool)
            .await?;
        let mut rewritten = 0;
        for row in &rows {
            let id: String = row.try_get("id")?;
            let stored: String = row.try_get("email")?;
            let stored_norm: String = row.try_get("email_norm")?;
            let email = Email::from_stored(&stored);
            let norm = email.normalized();
            if email.as_str() == stored && norm == stored_norm {
                continue;
            }
            let updated = sqlx::query("UPDATE users SET email = $1, email_norm = $2 WHERE id = $3")
                .bind(email.as_str().to_owned())
                .bind(norm)
                .bind(id.clone())
                .execute(&self.pool)
                .await;
            match updated {
                Ok(_) => rewritten += 1,
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    tracing::warn!(user_id = %id, "an account's e-mail address is another account's in another Unicode form; both left as they are");
                }
                Err(err) => return Err(err.into()),
            }
        }
        if rewritten > 0 {
            tracing::info!(rewritten, "stored e-mail addresses normalised (NFC)");
        }
        Ok(rewritten)
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
