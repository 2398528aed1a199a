use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use uuid::Uuid;
use webcall_domain::model::{
    Email, LoginIdentifier, NewUser, PasswordHash, TokenHolder, User, UserId, Username,
};
use webcall_domain::ports::{
    ChatRepository, HealthCheck, RoomRepository, TokenRevocations, UserRepository,
};
use webcall_domain::signaling::{ChatMessage, NewChatMessage, PeerId, Room, RoomName};
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

fn user_from_row(row: &AnyRow) -> Result<User, DomainError> {
    let id: String = row.try_get("id").map_err(infra)?;
    let email: String = row.try_get("email").map_err(infra)?;
    let username: String = row.try_get("username").map_err(infra)?;
    Ok(User {
        id: UserId(Uuid::from_str(&id).map_err(|_| corrupt("user id"))?),
        email: Email::parse(&email).unwrap_or_else(|_| Email::from_stored(&email)),
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
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM revoked_tokens WHERE jti = $1 OR jti = $3) AS revoked, \
             users.id, users.email, users.username, users.created_at \
             FROM (SELECT 1 AS probe) AS probe LEFT JOIN users ON users.id = $2",
        )
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

const ROOM_COLUMNS: &str =
    "rooms.name, rooms.owner_id, users.username AS owner_name, rooms.created_at";

fn room_from_row(row: &AnyRow) -> Result<Room, DomainError> {
    let name: String = row.try_get("name").map_err(infra)?;
    let owner: String = row.try_get("owner_id").map_err(infra)?;
    Ok(Room {
        name: RoomName::parse(&name).map_err(|_| corrupt("room name"))?,
        owner: UserId(Uuid::from_str(&owner).map_err(|_| corrupt("room owner"))?),
        owner_name: row.try_get("owner_name").map_err(infra)?,
        created_at: from_millis(row.try_get("created_at").map_err(infra)?)?,
    })
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
            "INSERT INTO rooms (name, owner_id, created_at) SELECT $1, $2, $3 \
             WHERE (SELECT COUNT(*) FROM rooms WHERE owner_id = $4) < $5",
        )
        .bind(name.as_str().to_owned())
        .bind(owner.to_string())
        .bind(millis(at))
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
        sqlx::query("DELETE FROM chat_messages WHERE room = $1")
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

fn chat_from_row(row: &AnyRow) -> Result<ChatMessage, DomainError> {
    let room: String = row.try_get("room").map_err(infra)?;
    let peer: String = row.try_get("peer_id").map_err(infra)?;
    let user: String = row.try_get("user_id").map_err(infra)?;
    Ok(ChatMessage {
        id: row.try_get("id").map_err(infra)?,
        room: RoomName::parse(&room).map_err(|_| corrupt("chat room"))?,
        from: PeerId::from_client(&peer),
        user_id: UserId(Uuid::from_str(&user).map_err(|_| corrupt("chat user"))?),
        username: row.try_get("username").map_err(infra)?,
        text: row.try_get("text").map_err(infra)?,
        ts: from_millis(row.try_get("created_at").map_err(infra)?)?,
    })
}

#[async_trait]
impl ChatRepository for SqlStore {
    async fn append_chat(&self, message: NewChatMessage) -> Result<ChatMessage, DomainError> {
        let row = sqlx::query(
            "INSERT INTO chat_messages (room, peer_id, user_id, username, text, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(message.room.as_str().to_owned())
        .bind(message.from.as_str().to_owned())
        .bind(message.user_id.to_string())
        .bind(message.username.clone())
        .bind(message.text.as_str().to_owned())
        .bind(millis(message.ts))
        .fetch_one(&self.pool)
        .await
        .map_err(infra)?;
        Ok(ChatMessage {
            id: row.try_get("id").map_err(infra)?,
            room: message.room,
            from: message.from,
            user_id: message.user_id,
            username: message.username,
            text: message.text.as_str().to_owned(),
            ts: from_millis(millis(message.ts))?,
        })
    }

    async fn chat_before(
        &self,
        room: &RoomName,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, DomainError> {
        let rows = sqlx::query(
            "SELECT id, room, peer_id, user_id, username, text, created_at FROM chat_messages \
             WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(room.as_str().to_owned())
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(infra)?;
        let mut messages = rows
            .iter()
            .map(chat_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(messages)
    }
}
