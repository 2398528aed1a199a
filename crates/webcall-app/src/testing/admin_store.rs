//! [`AdminRepository`] for [`MemoryStore`], with the SQL store's contract:
//! each change and its audit entry together or not at all, under one lock, and
//! never a change that leaves no admin who is not banned.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use webcall_domain::admin::{
    AccountChange, AdminRepository, AuditEntry, NewAuditEntry, OwnerChange,
};
use webcall_domain::model::{PasswordHash, Role, User, UserId};
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use super::{lock, stored, MemoryStore, State};

impl State {
    fn audit(&mut self, entry: NewAuditEntry) {
        let id = self.audit.last().map_or(1, |last| last.id + 1);
        self.audit.push(AuditEntry {
            id,
            at: stored(entry.at),
            actor: entry.actor,
            actor_name: entry.actor_name,
            action: entry.action.to_owned(),
            target: entry.target,
            detail: entry.detail,
        });
    }

    /// Whether an admin other than `user` remains (not banned).
    fn another_admin(&self, user: UserId) -> bool {
        self.users.values().any(|(other, _)| {
            other.id != user && other.role == Role::Admin && other.banned_at.is_none()
        })
    }

    /// Applies `change` to the account with its audit entry, unless it would
    /// remove the last admin (`removes_admin` says whether it takes `user`
    /// out of the admins).
    fn change_account(
        &mut self,
        user: UserId,
        removes_admin: bool,
        audit: NewAuditEntry,
        change: impl FnOnce(&mut Self),
    ) -> AccountChange {
        let Some((found, _)) = self.users.get(&user) else {
            return AccountChange::NotFound;
        };
        if removes_admin && found.role == Role::Admin && !self.another_admin(user) {
            return AccountChange::LastAdmin;
        }
        change(self);
        self.audit(audit);
        AccountChange::Done
    }
}

#[async_trait]
impl AdminRepository for MemoryStore {
    async fn search_users(
        &self,
        query: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<User>, DomainError> {
        let state = lock(&self.state);
        let query = query.unwrap_or_default().to_lowercase();
        let after = after.unwrap_or_default().to_ascii_lowercase();
        let mut users: Vec<User> = state
            .users
            .values()
            .map(|(user, _)| user.clone())
            .filter(|user| {
                user.username.normalized().contains(&query)
                    || user.email.normalized().contains(&query)
            })
            .filter(|user| user.username.normalized() > after)
            .collect();
        users.sort_by_key(|user| user.username.normalized());
        users.truncate(limit);
        Ok(users)
    }

    async fn set_banned(
        &self,
        user: UserId,
        banned_at: Option<DateTime<Utc>>,
        audit: NewAuditEntry,
    ) -> Result<AccountChange, DomainError> {
        let mut state = lock(&self.state);
        Ok(
            state.change_account(user, banned_at.is_some(), audit, |state| {
                if let Some((found, _)) = state.users.get_mut(&user) {
                    if let Some(at) = banned_at {
                        found.banned_at = Some(found.banned_at.unwrap_or(stored(at)));
                        found.tokens_valid_from = Some(stored(at));
                    } else {
                        found.banned_at = None;
                    }
                }
            }),
        )
    }

    async fn set_role(
        &self,
        user: UserId,
        role: Role,
        audit: NewAuditEntry,
    ) -> Result<AccountChange, DomainError> {
        let mut state = lock(&self.state);
        Ok(
            state.change_account(user, role != Role::Admin, audit, |state| {
                if let Some((found, _)) = state.users.get_mut(&user) {
                    found.role = role;
                }
            }),
        )
    }

    async fn delete_user(
        &self,
        user: UserId,
        audit: NewAuditEntry,
    ) -> Result<AccountChange, DomainError> {
        let outcome = {
            let mut state = lock(&self.state);
            state.change_account(user, true, audit, |_| {})
        };
        if outcome == AccountChange::Done {
            // The cascades of `UserRepository::delete`.
            webcall_domain::ports::UserRepository::delete(self, user).await?;
        }
        Ok(outcome)
    }

    async fn is_last_admin(&self, user: UserId) -> Result<bool, DomainError> {
        let state = lock(&self.state);
        Ok(state.users.get(&user).is_some_and(|(found, _)| {
            found.role == Role::Admin && found.banned_at.is_none() && !state.another_admin(user)
        }))
    }

    async fn promote_emails(&self, emails: &[String]) -> Result<u64, DomainError> {
        let mut state = lock(&self.state);
        let mut promoted = 0;
        for (user, _) in state.users.values_mut() {
            if user.role != Role::Admin && emails.contains(&user.email.normalized()) {
                user.role = Role::Admin;
                promoted += 1;
            }
        }
        Ok(promoted)
    }

    async fn set_room_locked(
        &self,
        room: &RoomName,
        locked: bool,
        audit: NewAuditEntry,
    ) -> Result<bool, DomainError> {
        let mut state = lock(&self.state);
        if !state.rooms.contains_key(room) {
            return Ok(false);
        }
        if locked {
            state.locked.insert(room.clone());
        } else {
            state.locked.remove(room);
        }
        state.audit(audit);
        Ok(true)
    }

    async fn set_room_owner(
        &self,
        room: &RoomName,
        owner: UserId,
        audit: NewAuditEntry,
    ) -> Result<OwnerChange, DomainError> {
        let mut state = lock(&self.state);
        if !state.users.contains_key(&owner) {
            return Ok(OwnerChange::NoSuchUser);
        }
        let Some((current, _)) = state.rooms.get_mut(room) else {
            return Ok(OwnerChange::NoSuchRoom);
        };
        *current = owner;
        state.audit(audit);
        Ok(OwnerChange::Done)
    }

    async fn delete_room_audited(
        &self,
        room: &RoomName,
        audit: NewAuditEntry,
    ) -> Result<bool, DomainError> {
        let mut state = lock(&self.state);
        let deleted = state.delete_room(room);
        if deleted {
            state.audit(audit);
        }
        Ok(deleted)
    }

    async fn record(&self, audit: NewAuditEntry) -> Result<(), DomainError> {
        lock(&self.state).audit(audit);
        Ok(())
    }

    async fn audit_page(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, DomainError> {
        let state = lock(&self.state);
        Ok(state
            .audit
            .iter()
            .rev()
            .filter(|entry| before.is_none_or(|before| entry.id < before))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn create_reset(
        &self,
        user: UserId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        audit: NewAuditEntry,
    ) -> Result<bool, DomainError> {
        let mut state = lock(&self.state);
        if !state.users.contains_key(&user) {
            return Ok(false);
        }
        state
            .resets
            .insert(user, (token_hash.to_owned(), stored(expires_at)));
        state.audit(audit);
        Ok(true)
    }

    async fn consume_reset(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        password_hash: PasswordHash,
    ) -> Result<Option<UserId>, DomainError> {
        let mut state = lock(&self.state);
        let Some(user) = state
            .resets
            .iter()
            .find(|(_, (hash, expires_at))| hash == token_hash && *expires_at > now)
            .map(|(user, _)| *user)
        else {
            return Ok(None);
        };
        state.resets.remove(&user);
        if let Some((found, hash)) = state.users.get_mut(&user) {
            *hash = password_hash;
            found.tokens_valid_from = Some(stored(now));
        }
        Ok(Some(user))
    }
}
