//! Running the server: the admin use cases behind `/api/v1/admin/*`, and the
//! one place that decides who may call them.
//!
//! Every entry point takes an [`Actor`], and only [`Admin::admit`] makes one:
//! from the caller's account (already authenticated, so not banned), if it is
//! an admin and within its request budget. So no handler can forget the check.
//!
//! Layout: this file holds the service, the guard and the audit entry every
//! change writes; `users` is accounts (search, ban, role, delete), `rooms` is
//! rooms and live calls (end, delete, lock, owner), `audit` reads the log,
//! `reset` the one-time password-reset links.

mod audit;
mod reset;
mod rooms;
#[cfg(test)]
mod tests;
mod users;

pub use audit::AuditPage;
pub use reset::ResetLink;
pub use rooms::{LiveRoom, RoomPage};
pub use users::{AdminUser, UserPage};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use webcall_domain::admin::{AdminRepository, NewAuditEntry};
use webcall_domain::model::{Role, User, UserId};
use webcall_domain::ports::{Clock, PasswordHasher, Presence, UserRepository};

use crate::hub::Hub;
use crate::rate::RateLimit;
use crate::rooms::RoomService;
use crate::AppError;

/// An admin, checked by [`Admin::admit`] for one request: the proof the admin
/// use cases ask for (it cannot be made anywhere else).
#[derive(Debug, Clone)]
pub struct Actor {
    id: UserId,
    username: String,
}

impl Actor {
    pub fn id(&self) -> UserId {
        self.id
    }

    pub fn username(&self) -> &str {
        &self.username
    }
}

/// What a request does, for its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only (GET).
    Read,
    /// Changes something (every other method).
    Change,
}

/// Requests one admin may make: all of them, and changes among them.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    pub requests_per_minute: usize,
    pub changes_per_minute: usize,
}

impl Default for AdminLimits {
    fn default() -> Self {
        Self {
            requests_per_minute: 120,
            changes_per_minute: 30,
        }
    }
}

/// The ports and use cases [`Admin`] works through.
pub struct AdminDeps {
    pub users: Arc<dyn UserRepository>,
    pub store: Arc<dyn AdminRepository>,
    pub rooms: Arc<RoomService>,
    pub hub: Arc<Hub>,
    pub presence: Arc<dyn Presence>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
}

/// The admin use cases; see the module docs.
pub struct Admin {
    deps: AdminDeps,
    requests: RateLimit<UserId>,
    changes: RateLimit<UserId>,
    /// Password-reset attempts per client address (the link is the only
    /// credential there, and each attempt hashes a password).
    resets: RateLimit<IpAddr>,
}

/// Password-reset attempts one address may make in [`RESET_WINDOW`].
const RESETS_PER_ADDRESS: usize = 20;
const RESET_WINDOW: Duration = Duration::from_secs(600);

impl Admin {
    pub fn new(deps: AdminDeps, limits: AdminLimits) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            deps,
            requests: RateLimit::new(limits.requests_per_minute.max(1), minute),
            changes: RateLimit::new(limits.changes_per_minute.max(1), minute),
            resets: RateLimit::new(RESETS_PER_ADDRESS, RESET_WINDOW),
        }
    }

    /// The guard of every admin request: `user` (the caller's account, as the
    /// bearer check found it) must be an admin (else `Forbidden`), within its
    /// budget for `access` (else `TooManyRequests`).
    pub fn admit(&self, user: &User, access: Access) -> Result<Actor, AppError> {
        if user.role != Role::Admin || user.banned_at.is_some() {
            tracing::info!(user_id = %user.id, "admin request refused: not an admin");
            return Err(AppError::Forbidden);
        }
        let now = self.deps.clock.now();
        let throttled = |retry_after| AppError::TooManyRequests { retry_after };
        self.requests.admit(user.id, now).map_err(throttled)?;
        if access == Access::Change {
            self.changes.admit(user.id, now).map_err(throttled)?;
        }
        Ok(Actor {
            id: user.id,
            username: user.username.as_str().to_owned(),
        })
    }

    /// The audit entry of `actor` doing `action` to `target` now, for a change
    /// to store with it (in the same transaction).
    pub fn entry(
        &self,
        actor: &Actor,
        action: &'static str,
        target: impl Into<String>,
        detail: Option<String>,
    ) -> NewAuditEntry {
        NewAuditEntry {
            at: self.deps.clock.now(),
            actor: actor.id,
            actor_name: actor.username.clone(),
            action,
            target: target.into(),
            detail,
        }
    }

    /// Records an action whose change is not in the database (a call ended,
    /// an allocation closed).
    pub async fn record(
        &self,
        actor: &Actor,
        action: &'static str,
        target: impl Into<String>,
        detail: Option<String>,
    ) -> Result<(), AppError> {
        let entry = self.entry(actor, action, target, detail);
        self.deps.store.record(entry).await?;
        Ok(())
    }

    /// The account `id`, or `UserNotFound`.
    async fn user(&self, id: UserId) -> Result<User, AppError> {
        self.deps
            .users
            .find_by_id(id)
            .await?
            .ok_or(AppError::UserNotFound)
    }
}

/// A page's size: `limit` within 1–200, 50 when absent.
pub fn page_size(limit: Option<u32>) -> usize {
    limit.unwrap_or(50).clamp(1, 200) as usize
}
