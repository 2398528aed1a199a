//! Running the server: the audit log's records and [`AdminRepository`], the
//! storage behind the admin API (accounts searched, banned, promoted or deleted;
//! rooms locked or given away; one-time password-reset links). Every change
//! through it is written together with its audit entry, in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{PasswordHash, Role, User, UserId};
use crate::signaling::RoomName;
use crate::DomainError;

/// An admin action about to be recorded: who did what to what, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub at: DateTime<Utc>,
    pub actor: UserId,
    /// The actor's username then (the entry outlives a rename or a deletion).
    pub actor_name: String,
    /// Dotted, stable: `user.ban`, `room.lock`, … (the API shows it as is).
    pub action: &'static str,
    /// What it was done to: a username, a room name, an id.
    pub target: String,
    pub detail: Option<String>,
}

/// A recorded admin action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increasing: newer entries have larger ids.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: UserId,
    pub actor_name: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

/// How a change to an account came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    Done,
    /// No such account.
    NotFound,
    /// It would leave no admin who is not banned: nothing was changed.
    LastAdmin,
}

/// How giving a room to another owner came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerChange {
    Done,
    NoSuchRoom,
    NoSuchUser,
}

/// Storage for the admin use cases. "Admin" below means an account with the
/// admin role that is not banned; no change may leave none.
#[async_trait]
pub trait AdminRepository: Send + Sync {
    /// Up to `limit` accounts ordered by username (case-insensitively), those
    /// after the username `after`, whose username or e-mail contains `query`
    /// (case-insensitive; `%` and `_` are plain characters).
    async fn search_users(
        &self,
        query: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<User>, DomainError>;

    /// Bans the account (`Some(at)`; an account banned already keeps its
    /// first time) or lifts the ban (`None`), with its audit entry. Banning
    /// the last admin is `LastAdmin`.
    async fn set_banned(
        &self,
        user: UserId,
        banned_at: Option<DateTime<Utc>>,
        audit: NewAuditEntry,
    ) -> Result<AccountChange, DomainError>;

    /// Sets the account's role, with its audit entry; demoting the last admin
    /// is `LastAdmin`.
    async fn set_role(
        &self,
        user: UserId,
        role: Role,
        audit: NewAuditEntry,
    ) -> Result<AccountChange, DomainError>;

    /// Deletes the account (its rooms and revocations go with it), with its
    /// audit entry; deleting the last admin is `LastAdmin`.
    async fn delete_user(
        &self,
        user: UserId,
        audit: NewAuditEntry,
    ) -> Result<AccountChange, DomainError>;

    /// Whether the account is the only admin (deleting it would leave none).
    async fn is_last_admin(&self, user: UserId) -> Result<bool, DomainError>;

    /// Makes the accounts with these e-mail addresses (normalised, see
    /// [`crate::model::Email::normalized`]) admins (`ADMIN_EMAILS` at
    /// start-up). Returns how many changed.
    async fn promote_emails(&self, emails: &[String]) -> Result<u64, DomainError>;

    /// Locks or unlocks the room, with its audit entry; false if there is no
    /// such room.
    async fn set_room_locked(
        &self,
        room: &RoomName,
        locked: bool,
        audit: NewAuditEntry,
    ) -> Result<bool, DomainError>;

    /// Gives the room to `owner`, with its audit entry.
    async fn set_room_owner(
        &self,
        room: &RoomName,
        owner: UserId,
        audit: NewAuditEntry,
    ) -> Result<OwnerChange, DomainError>;

    /// Deletes the room and its chat, with its audit entry; false if there was
    /// no such room.
    async fn delete_room_audited(
        &self,
        room: &RoomName,
        audit: NewAuditEntry,
    ) -> Result<bool, DomainError>;

    /// Records an action whose change is not in the database (a call ended).
    async fn record(&self, audit: NewAuditEntry) -> Result<(), DomainError>;

    /// Up to `limit` entries, newest first, those with ids below `before`.
    async fn audit_page(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, DomainError>;

    /// Stores the account's one-time reset link (only the token's hash),
    /// replacing any older one, with its audit entry; false if there is no such
    /// account.
    async fn create_reset(
        &self,
        user: UserId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        audit: NewAuditEntry,
    ) -> Result<bool, DomainError>;

    /// Uses the link whose token hashes to `token_hash` if it has not expired
    /// by `now`: in one transaction the link is deleted, the password replaced
    /// and tokens issued before `now` voided. The account, or `None` (unknown,
    /// used or expired link). Of two concurrent uses, one succeeds.
    async fn consume_reset(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        password_hash: PasswordHash,
    ) -> Result<Option<UserId>, DomainError>;
}
