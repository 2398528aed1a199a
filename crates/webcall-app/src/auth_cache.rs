//! Memory in front of account storage, so that opening a call asks no database.
//!
//! [`CachedUsers`] remembers accounts by id, the newest ones from start-up. No
//! code path renames an account, deleting one through it forgets it at once,
//! and an admin's change makes every instance forget it ([`CachedUsers::forget`]
//! through the hub's `on_account_change`), so a remembered one stays right; entries still expire (an account deleted by
//! hand in the database is refused again after at most twice
//! [`CachedUsers::MAX_AGE`]) and their number is capped. With several instances
//! an account deleted on another one is still remembered here for that long:
//! tokens are checked against storage there (the revocations are not cached),
//! which finds it gone.
//!
//! [`CachedRevocations`] holds the revoked, still-unexpired tokens in memory:
//! loaded at start-up, added to after each logout is stored. It is exact only
//! when this process is the only one using the database, because then it sees
//! every logout itself. With Redis (several instances) storage stays the truth:
//! the binary does not use it there.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use webcall_domain::model::{LoginIdentifier, NewUser, PasswordHash, TokenHolder, User, UserId};
use webcall_domain::ports::{Clock, TokenRevocations, UserRepository};
use webcall_domain::DomainError;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accounts by id, in front of a [`UserRepository`]. See the module docs.
pub struct CachedUsers {
    inner: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
    cache: Mutex<Generations>,
}

/// Two maps: new entries go into `young`; when it is full or older than
/// `MAX_AGE` it becomes `old` (the previous `old` is dropped). So at most
/// `capacity` entries are held, none older than twice `MAX_AGE`. `forgets`
/// counts the accounts forgotten so far: a read that started before a forget
/// may have found the account as it was before the change, so it is not
/// remembered.
struct Generations {
    young: HashMap<UserId, User>,
    old: HashMap<UserId, User>,
    young_since: DateTime<Utc>,
    per_generation: usize,
    forgets: u64,
}

impl Generations {
    fn age(&mut self, now: DateTime<Utc>) {
        let elapsed = now - self.young_since;
        if elapsed >= CachedUsers::MAX_AGE || self.young.len() >= self.per_generation {
            self.old = std::mem::take(&mut self.young);
            if elapsed >= CachedUsers::MAX_AGE * 2 {
                self.old.clear();
            }
            self.young_since = now;
        }
    }

    fn get(&mut self, id: UserId, now: DateTime<Utc>) -> Option<User> {
        self.age(now);
        self.young.get(&id).or_else(|| self.old.get(&id)).cloned()
    }

    fn forget(&mut self, id: UserId) {
        self.young.remove(&id);
        self.old.remove(&id);
        self.forgets += 1;
    }

    fn put(&mut self, user: &User, now: DateTime<Utc>) {
        self.age(now);
        self.young.insert(user.id, user.clone());
    }
}

impl CachedUsers {
    /// How long an entry is trusted before it is read again (at most twice this).
    pub const MAX_AGE: Duration = Duration::minutes(5);

    /// Remembers up to `capacity` accounts.
    pub fn new(inner: Arc<dyn UserRepository>, clock: Arc<dyn Clock>, capacity: usize) -> Self {
        let now = clock.now();
        Self {
            inner,
            clock,
            cache: Mutex::new(Generations {
                young: HashMap::new(),
                old: HashMap::new(),
                young_since: now,
                per_generation: (capacity / 2).max(1),
                forgets: 0,
            }),
        }
    }

    /// Remembers the newest accounts (as many as one generation holds), so that
    /// the joins right after a start (every client reconnecting) ask no database.
    /// Returns how many.
    pub async fn preload(&self) -> Result<usize, DomainError> {
        let limit = lock(&self.cache).per_generation;
        let users = self.inner.newest(limit).await?;
        let now = self.clock.now();
        let mut cache = lock(&self.cache);
        for user in &users {
            cache.put(user, now);
        }
        Ok(users.len())
    }

    /// How many accounts are remembered now.
    pub fn len(&self) -> usize {
        let cache = lock(&self.cache);
        cache.young.len() + cache.old.len()
    }

    /// Whether no account is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the account, so that its next use reads it again (an admin
    /// changed it: banned, promoted, its password reset).
    pub fn forget(&self, id: UserId) {
        lock(&self.cache).forget(id);
    }

    fn remember(&self, user: &User) {
        lock(&self.cache).put(user, self.clock.now());
    }

    fn forgets(&self) -> u64 {
        lock(&self.cache).forgets
    }

    /// Remembers `user`, read from storage when `forgets` accounts had been
    /// forgotten, unless one was forgotten since (it may be this one).
    fn remember_read(&self, user: &User, forgets: u64) {
        let mut cache = lock(&self.cache);
        if cache.forgets == forgets {
            cache.put(user, self.clock.now());
        }
    }
}

#[async_trait]
impl UserRepository for CachedUsers {
    async fn insert(&self, user: NewUser) -> Result<User, DomainError> {
        let user = self.inner.insert(user).await?;
        self.remember(&user);
        Ok(user)
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, DomainError> {
        if let Some(user) = lock(&self.cache).get(id, self.clock.now()) {
            return Ok(Some(user));
        }
        let forgets = self.forgets();
        let found = self.inner.find_by_id(id).await?;
        if let Some(user) = &found {
            self.remember_read(user, forgets);
        }
        Ok(found)
    }

    async fn find_for_login(
        &self,
        login: &LoginIdentifier,
    ) -> Result<Option<(User, PasswordHash)>, DomainError> {
        let forgets = self.forgets();
        let found = self.inner.find_for_login(login).await?;
        if let Some((user, _)) = &found {
            self.remember_read(user, forgets);
        }
        Ok(found)
    }

    async fn delete(&self, id: UserId) -> Result<bool, DomainError> {
        let deleted = self.inner.delete(id).await?;
        lock(&self.cache).forget(id);
        Ok(deleted)
    }

    async fn newest(&self, limit: usize) -> Result<Vec<User>, DomainError> {
        self.inner.newest(limit).await
    }
}

/// Revocations in memory for a single instance, in front of their storage. See
/// the module docs.
pub struct CachedRevocations {
    store: Arc<dyn TokenRevocations>,
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
    revoked: Mutex<Revoked>,
}

/// The revoked tokens, by id and by expiry (to drop the expired ones cheaply).
#[derive(Default)]
struct Revoked {
    by_jti: HashMap<Uuid, DateTime<Utc>>,
    by_expiry: BTreeSet<(DateTime<Utc>, Uuid)>,
}

impl Revoked {
    fn insert(&mut self, jti: Uuid, expires_at: DateTime<Utc>) {
        if let Some(before) = self.by_jti.insert(jti, expires_at) {
            self.by_expiry.remove(&(before, jti));
        }
        self.by_expiry.insert((expires_at, jti));
    }

    /// Forgets the tokens that expired before `now` less a margin: an expired
    /// token is refused before its revocation is looked at, and the margin covers
    /// a wall clock that steps back a little.
    fn prune(&mut self, now: DateTime<Utc>) {
        let horizon = now - CachedRevocations::PRUNE_MARGIN;
        while let Some(&(expires_at, jti)) = self.by_expiry.first() {
            if expires_at >= horizon {
                break;
            }
            self.by_expiry.pop_first();
            self.by_jti.remove(&jti);
        }
    }
}

impl CachedRevocations {
    /// How long after its token's expiry a revocation is still kept.
    pub const PRUNE_MARGIN: Duration = Duration::minutes(1);

    /// Loads the revocations still in force from `store`. `users` answers the
    /// account half of [`TokenRevocations::holder`] (a [`CachedUsers`], usually).
    /// Only for a process that is the only user of the database.
    pub async fn load(
        store: Arc<dyn TokenRevocations>,
        users: Arc<dyn UserRepository>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, DomainError> {
        let mut revoked = Revoked::default();
        for (jti, expires_at) in store
            .revoked_after(clock.now() - Self::PRUNE_MARGIN)
            .await?
        {
            revoked.insert(jti, expires_at);
        }
        Ok(Self {
            store,
            users,
            clock,
            revoked: Mutex::new(revoked),
        })
    }

    /// How many revocations are held now.
    pub fn len(&self) -> usize {
        let mut revoked = lock(&self.revoked);
        revoked.prune(self.clock.now());
        revoked.by_jti.len()
    }

    /// Whether no revocation is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn held(&self, jti: Uuid) -> bool {
        let mut revoked = lock(&self.revoked);
        revoked.prune(self.clock.now());
        revoked.by_jti.contains_key(&jti)
    }
}

#[async_trait]
impl TokenRevocations for CachedRevocations {
    /// Stores the revocation first: it is held in memory only once it would also
    /// be found after a restart.
    async fn revoke(
        &self,
        jti: Uuid,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let newly = self.store.revoke(jti, user, expires_at).await?;
        let mut revoked = lock(&self.revoked);
        revoked.insert(jti, expires_at);
        revoked.prune(self.clock.now());
        Ok(newly)
    }

    async fn is_revoked(&self, jti: Uuid) -> Result<bool, DomainError> {
        Ok(self.held(jti))
    }

    async fn holder(
        &self,
        jti: Uuid,
        family: Uuid,
        user: UserId,
    ) -> Result<TokenHolder, DomainError> {
        if self.held(jti) || self.held(family) {
            return Ok(TokenHolder::Revoked);
        }
        Ok(match self.users.find_by_id(user).await? {
            Some(user) => TokenHolder::Active(user),
            None => TokenHolder::Unknown,
        })
    }

    async fn revoked_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, DomainError> {
        let revoked = lock(&self.revoked);
        Ok(revoked
            .by_jti
            .iter()
            .filter(|(_, &expires_at)| expires_at > after)
            .map(|(&jti, &expires_at)| (jti, expires_at))
            .collect())
    }
}
