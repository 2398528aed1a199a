//! Accounts, for admins: search and page through them, ban and unban, grant
//! and revoke the admin role, delete. Never the last admin: storage refuses
//! (in the change's own transaction) whatever would leave none.

use std::collections::HashSet;

use webcall_domain::admin::AccountChange;
use webcall_domain::model::{Role, User, UserId};
use webcall_domain::DomainError;

use super::{Actor, Admin};
use crate::AppError;

/// An account as an admin sees it.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub user: User,
    /// In a call now, on any instance.
    pub online: bool,
}

/// A page of accounts, and where the next one starts.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<AdminUser>,
    pub next_cursor: Option<String>,
}

/// Longest search text and cursor accepted.
const MAX_QUERY_CHARS: usize = 254;

fn change(outcome: AccountChange) -> Result<(), AppError> {
    match outcome {
        AccountChange::Done => Ok(()),
        AccountChange::NotFound => Err(AppError::UserNotFound),
        AccountChange::LastAdmin => Err(AppError::LastAdmin),
    }
}

impl Admin {
    /// Accounts by username whose username or e-mail contains `query`
    /// (case-insensitive), `limit` at a time after `cursor` (the previous
    /// page's `next_cursor`).
    pub async fn users(
        &self,
        _actor: &Actor,
        query: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<UserPage, AppError> {
        let query = query.map(str::trim).filter(|q| !q.is_empty());
        if query.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
            return Err(DomainError::Invalid {
                field: "q",
                message: "must be at most 254 characters",
            }
            .into());
        }
        let cursor = cursor.filter(|c| !c.is_empty());
        if cursor.is_some_and(|c| c.len() > 64) {
            return Err(DomainError::Invalid {
                field: "cursor",
                message: "must be a next_cursor this server gave",
            }
            .into());
        }
        let mut users = self
            .deps
            .store
            .search_users(query, cursor, limit + 1)
            .await?;
        let more = users.len() > limit;
        users.truncate(limit);
        let online: HashSet<UserId> = self
            .deps
            .presence
            .occupancy()
            .await?
            .into_iter()
            .flat_map(|(_, peers)| peers.into_iter().map(|peer| peer.user_id))
            .collect();
        let next_cursor = more
            .then(|| users.last().map(|user| user.username.normalized()))
            .flatten();
        Ok(UserPage {
            users: users
                .into_iter()
                .map(|user| AdminUser {
                    online: online.contains(&user.id),
                    user,
                })
                .collect(),
            next_cursor,
        })
    }

    /// Bans the account: it cannot log in, its tokens stop working and its
    /// connections close (4403) on every instance at once. Its sessions end for
    /// good: tokens issued before the ban stay refused after an unban (like a
    /// password reset: tokens carry whole seconds, so one issued in the ban's
    /// own second is refused too).
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), target = %target))]
    pub async fn ban(&self, actor: &Actor, target: UserId) -> Result<(), AppError> {
        if target == actor.id() {
            return Err(AppError::CannotBanSelf);
        }
        let user = self.user(target).await?;
        let entry = self.entry(actor, "user.ban", user.username.as_str(), None);
        let at = self.deps.clock.now();
        change(self.deps.store.set_banned(target, Some(at), entry).await?)?;
        self.deps.hub.ban_user(target).await;
        tracing::info!("account banned");
        Ok(())
    }

    /// Lifts the account's ban.
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), target = %target))]
    pub async fn unban(&self, actor: &Actor, target: UserId) -> Result<(), AppError> {
        let user = self.user(target).await?;
        let entry = self.entry(actor, "user.unban", user.username.as_str(), None);
        change(self.deps.store.set_banned(target, None, entry).await?)?;
        self.deps.hub.account_changed(target).await;
        tracing::info!("account unbanned");
        Ok(())
    }

    /// Grants or revokes the admin role (`LastAdmin` if none would remain).
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), target = %target))]
    pub async fn set_role(
        &self,
        actor: &Actor,
        target: UserId,
        role: Role,
    ) -> Result<(), AppError> {
        let user = self.user(target).await?;
        let detail = Some(format!("{} -> {}", user.role.as_str(), role.as_str()));
        let entry = self.entry(actor, "user.role", user.username.as_str(), detail);
        change(self.deps.store.set_role(target, role, entry).await?)?;
        self.deps.hub.account_changed(target).await;
        tracing::info!(role = role.as_str(), "role set");
        Ok(())
    }

    /// Refuses (`LastAdmin`) when `user` is the only admin: checked before an
    /// account deletes itself (`DELETE /api/v1/auth/me`). A check, not a lock:
    /// two last admins deleting themselves at the same instant could both
    /// pass (`ADMIN_EMAILS` and a restart make a new one).
    pub async fn check_leaving(&self, user: UserId) -> Result<(), AppError> {
        if self.deps.store.is_last_admin(user).await? {
            return Err(AppError::LastAdmin);
        }
        Ok(())
    }

    /// Deletes the account as its owner would: its rooms go (their calls end
    /// with 4004), then its own connections close (4401).
    #[tracing::instrument(skip_all, fields(actor = %actor.id(), target = %target))]
    pub async fn delete_user(&self, actor: &Actor, target: UserId) -> Result<(), AppError> {
        let user = self.user(target).await?;
        let owned = self.deps.rooms.owned_by(target).await?;
        let detail = Some(user.email.as_str().to_owned());
        let entry = self.entry(actor, "user.delete", user.username.as_str(), detail);
        change(self.deps.store.delete_user(target, entry).await?)?;
        for room in &owned {
            self.deps.hub.end_call(&room.name).await;
        }
        self.deps.hub.revoke_user(target).await;
        self.deps.hub.account_changed(target).await;
        tracing::info!(rooms = owned.len(), "account deleted by an admin");
        Ok(())
    }
}
