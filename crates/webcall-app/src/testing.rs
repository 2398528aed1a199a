//! In-memory stand-ins for the domain's ports, for unit tests (compiled only
//! under `cfg(test)`): fast and exact, no database, no sleeps.
//!
//! - [`MemoryStore`]: accounts, revocations, rooms, their chat and moderation
//!   rules in one place, with
//!   the SQL store's contract (`webcall-db`'s `SqlStore` and `migrations/`):
//!   case-insensitive unique e-mails (NFC) and usernames, a revocation per id
//!   stored once, the owned-rooms limit checked and applied under one lock, and
//!   the same cascades (an account takes its rooms, their chat and its
//!   revocations with it). Times are kept to the millisecond, as stored.
//! - [`FastHasher`]: a quick, unsalted password hash that still refuses a wrong
//!   password, counts its work and can be made busy (`Overloaded`).
//! - [`ManualClock`]: a [`Clock`] the test moves.
//! - [`MemoryInvites`], [`MemoryGuestTokens`]: guest links and guest tokens.
//! - [`MemoryFiles`], [`FakeThumbnailer`]: files' bytes and previews (the
//!   store's attachment records are `attachments`').
//! - [`MemoryCluster`]: one instance's road to the others ([`Cluster`]): it
//!   records what the instance publishes (the test hands it on, or not), shares
//!   resume tokens with its [`MemoryCluster::another_instance`], and can be down.
//!
//! Share them as `Arc<MemoryStore>` etc.; each coerces to the `Arc<dyn Port>`
//! the use cases take.
//!
//! Longer than our usual ~500 lines because the stand-ins' own tests live here
//! beside them: a stand-in that broke its port's contract would let the use
//! cases' tests pass for the wrong reason.

mod access_store;
mod admin_store;
mod attachments;
mod invites;

pub use attachments::{FakeThumbnailer, MemoryFiles};
pub use invites::{MemoryGuestTokens, MemoryInvites};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use webcall_domain::access::RoomAccess;
use webcall_domain::admin::AuditEntry;
use webcall_domain::model::{
    Email, LoginIdentifier, NewUser, Password, PasswordHash, Role, TokenHolder, User, UserId,
    Username,
};
use webcall_domain::ports::{
    ChatRepository, Clock, Cluster, LocalPresence, PasswordHasher, Presence, RoomModeration,
    RoomRepository, TokenRevocations, UserRepository,
};
use webcall_domain::signaling::{
    ChatMessage, ClusterMessage, NewChatMessage, PeerId, PeerInfo, Room, RoomName, RoomRules,
};
use webcall_domain::DomainError;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A time as storage keeps it: to the millisecond.
fn stored(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(at.timestamp_millis())
        .single()
        .expect("a time that was valid stays valid to the millisecond")
}

/// What a foreign key refuses in SQL: an infrastructure failure, as there.
fn missing(what: &str) -> DomainError {
    DomainError::infrastructure(format!("foreign key: no such {what}"))
}

/// Accounts, revocations, rooms and chat in memory; see the module docs.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Reads of rooms' moderation rules ([`Self::rules_reads`]).
    rules_reads: AtomicUsize,
}

#[derive(Default)]
struct State {
    users: HashMap<UserId, (User, PasswordHash)>,
    /// Revoked token or family ids: the account and the expiry.
    revoked: HashMap<Uuid, (UserId, DateTime<Utc>)>,
    /// Rooms by name (in byte order, like SQLite's and `COLLATE "C"`).
    rooms: BTreeMap<RoomName, (UserId, DateTime<Utc>)>,
    /// Chat by id, over all rooms.
    chat: BTreeMap<i64, ChatMessage>,
    last_chat_id: i64,
    /// Rooms' moderation rules (none stored: the defaults).
    rules: HashMap<RoomName, RoomRules>,
    /// Rooms an admin locked.
    locked: HashSet<RoomName>,
    /// The audit log, oldest first.
    audit: Vec<AuditEntry>,
    /// Reset links by account: the token's hash and its expiry.
    resets: HashMap<UserId, (String, DateTime<Utc>)>,
    /// Rooms' access (none stored: public, no password).
    access: HashMap<RoomName, RoomAccess>,
    /// Rooms' members, and when they were added.
    members: BTreeMap<(RoomName, UserId), DateTime<Utc>>,
    /// Files' records by id (their messages are in `chat`).
    attachments: BTreeMap<String, webcall_domain::attachments::Attachment>,
}

impl State {
    fn user_by_email(&self, email: &Email) -> Option<&(User, PasswordHash)> {
        let norm = email.normalized();
        self.users
            .values()
            .find(|(user, _)| user.email.normalized() == norm)
    }

    fn user_by_name(&self, name: &Username) -> Option<&(User, PasswordHash)> {
        let norm = name.normalized();
        self.users
            .values()
            .find(|(user, _)| user.username.normalized() == norm)
    }

    fn room(&self, name: &RoomName) -> Option<Room> {
        let (owner, created_at) = self.rooms.get(name)?;
        let (user, _) = self.users.get(owner)?;
        Some(Room {
            name: name.clone(),
            owner: *owner,
            owner_name: user.username.as_str().to_owned(),
            created_at: *created_at,
            locked: self.locked.contains(name),
            access: self.access.get(name).cloned().unwrap_or_default(),
        })
    }

    fn delete_room(&mut self, name: &RoomName) -> bool {
        self.chat.retain(|_, message| &message.room != name);
        self.rules.remove(name);
        self.locked.remove(name);
        self.access.remove(name);
        self.members.retain(|(room, _), _| room != name);
        self.attachments.retain(|_, a| &a.room != name);
        self.rooms.remove(name).is_some()
    }
}

impl MemoryStore {
    /// Stores an account named `username` (`{username}@example.org`, a hash no
    /// password matches), for tests that need one to exist: a room's owner, say.
    pub fn add_user(&self, username: &str) -> User {
        let user = User {
            id: UserId::new_random(),
            email: Email::parse(&format!("{username}@example.org")).expect("a test e-mail"),
            username: Username::parse(username).expect("a test username"),
            created_at: stored(Utc::now()),
            role: Role::Member,
            banned_at: None,
            tokens_valid_from: None,
        };
        let mut state = lock(&self.state);
        assert!(
            state.user_by_name(&user.username).is_none(),
            "{username} exists already"
        );
        let hash = PasswordHash("!no-password".into());
        state.users.insert(user.id, (user.clone(), hash));
        user
    }

    /// How many accounts are stored.
    pub fn user_count(&self) -> usize {
        lock(&self.state).users.len()
    }

    /// How many times rooms' moderation rules were read.
    pub fn rules_reads(&self) -> usize {
        self.rules_reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl UserRepository for MemoryStore {
    async fn insert(&self, new: NewUser) -> Result<User, DomainError> {
        let mut state = lock(&self.state);
        if state.users.contains_key(&new.user.id) {
            return Err(DomainError::infrastructure("duplicate user id"));
        }
        if state.user_by_email(&new.user.email).is_some() {
            return Err(DomainError::EmailTaken);
        }
        if state.user_by_name(&new.user.username).is_some() {
            return Err(DomainError::UsernameTaken);
        }
        // The first account is an admin, as in SQL.
        let role = if state.users.is_empty() {
            Role::Admin
        } else {
            new.user.role
        };
        let user = User {
            created_at: stored(new.user.created_at),
            role,
            ..new.user
        };
        state
            .users
            .insert(user.id, (user.clone(), new.password_hash));
        Ok(user)
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, DomainError> {
        Ok(lock(&self.state).users.get(&id).map(|(u, _)| u.clone()))
    }

    async fn find_for_login(
        &self,
        login: &LoginIdentifier,
    ) -> Result<Option<(User, PasswordHash)>, DomainError> {
        let state = lock(&self.state);
        let found = match login {
            LoginIdentifier::Email(email) => state.user_by_email(email),
            LoginIdentifier::Username(name) => state.user_by_name(name),
        };
        Ok(found.cloned())
    }

    async fn delete(&self, id: UserId) -> Result<bool, DomainError> {
        let mut state = lock(&self.state);
        if state.users.remove(&id).is_none() {
            return Ok(false);
        }
        state.revoked.retain(|_, (user, _)| *user != id);
        state.resets.remove(&id);
        for rules in state.rules.values_mut() {
            rules.banned.retain(|user| *user != id);
        }
        state.members.retain(|(_, user), _| *user != id);
        let owned: Vec<RoomName> = state
            .rooms
            .iter()
            .filter(|(_, (owner, _))| *owner == id)
            .map(|(name, _)| name.clone())
            .collect();
        for name in &owned {
            state.delete_room(name);
        }
        Ok(true)
    }

    async fn newest(&self, limit: usize) -> Result<Vec<User>, DomainError> {
        let state = lock(&self.state);
        let mut users: Vec<User> = state.users.values().map(|(u, _)| u.clone()).collect();
        users.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        users.truncate(limit);
        Ok(users)
    }
}

/// Nothing is swept: an expired revocation is never asked about (the expired
/// token is refused first), and [`TokenRevocations::revoked_after`] filters.
#[async_trait]
impl TokenRevocations for MemoryStore {
    async fn revoke(
        &self,
        jti: Uuid,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let mut state = lock(&self.state);
        if state.revoked.contains_key(&jti) {
            return Ok(false);
        }
        if !state.users.contains_key(&user) {
            return Err(missing("user"));
        }
        state.revoked.insert(jti, (user, stored(expires_at)));
        Ok(true)
    }

    async fn is_revoked(&self, jti: Uuid) -> Result<bool, DomainError> {
        Ok(lock(&self.state).revoked.contains_key(&jti))
    }

    async fn holder(
        &self,
        jti: Uuid,
        family: Uuid,
        user: UserId,
    ) -> Result<TokenHolder, DomainError> {
        let state = lock(&self.state);
        if state.revoked.contains_key(&jti) || state.revoked.contains_key(&family) {
            return Ok(TokenHolder::Revoked);
        }
        Ok(match state.users.get(&user) {
            Some((user, _)) => TokenHolder::Active(user.clone()),
            None => TokenHolder::Unknown,
        })
    }

    async fn revoked_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, DomainError> {
        Ok(lock(&self.state)
            .revoked
            .iter()
            .filter(|(_, (_, expires_at))| *expires_at > stored(after))
            .map(|(jti, (_, expires_at))| (*jti, *expires_at))
            .collect())
    }
}

#[async_trait]
impl RoomRepository for MemoryStore {
    /// Checked in the SQL statement's order: the limit, then the name, then
    /// that the owner exists.
    async fn create_room(
        &self,
        name: &RoomName,
        owner: UserId,
        at: DateTime<Utc>,
        max_owned: usize,
    ) -> Result<Room, DomainError> {
        let mut state = lock(&self.state);
        let owned = state.rooms.values().filter(|(o, _)| *o == owner).count();
        if owned >= max_owned {
            return Err(DomainError::RoomLimit { max: max_owned });
        }
        if state.rooms.contains_key(name) {
            return Err(DomainError::RoomExists);
        }
        if !state.users.contains_key(&owner) {
            return Err(missing("user"));
        }
        state.rooms.insert(name.clone(), (owner, stored(at)));
        Ok(state.room(name).expect("just inserted"))
    }

    async fn find_room(&self, name: &RoomName) -> Result<Option<Room>, DomainError> {
        Ok(lock(&self.state).room(name))
    }

    async fn list_rooms(
        &self,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<Room>, DomainError> {
        let state = lock(&self.state);
        Ok(state
            .rooms
            .keys()
            .filter(|name| after.is_none_or(|after| *name > after))
            .take(limit)
            .filter_map(|name| state.room(name))
            .collect())
    }

    async fn delete_room(&self, name: &RoomName) -> Result<bool, DomainError> {
        Ok(lock(&self.state).delete_room(name))
    }
}

/// As in SQL: a ban needs the room and the account (foreign keys); the rules
/// go with either.
#[async_trait]
impl RoomModeration for MemoryStore {
    async fn room_rules(&self, room: &RoomName) -> Result<RoomRules, DomainError> {
        self.rules_reads.fetch_add(1, Ordering::SeqCst);
        Ok(lock(&self.state)
            .rules
            .get(room)
            .cloned()
            .unwrap_or_default())
    }

    async fn ban_from_room(
        &self,
        room: &RoomName,
        user: UserId,
        _at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut state = lock(&self.state);
        if !state.rooms.contains_key(room) {
            return Err(missing("room"));
        }
        if !state.users.contains_key(&user) {
            return Err(missing("user"));
        }
        let rules = state.rules.entry(room.clone()).or_default();
        if !rules.is_banned(user) {
            rules.banned.push(user);
        }
        Ok(())
    }

    async fn set_hosts_only(&self, room: &RoomName, on: bool) -> Result<bool, DomainError> {
        let mut state = lock(&self.state);
        if !state.rooms.contains_key(room) {
            return Ok(false);
        }
        state.rules.entry(room.clone()).or_default().hosts_only = on;
        Ok(true)
    }
}

#[async_trait]
impl ChatRepository for MemoryStore {
    async fn append_chat(&self, message: NewChatMessage) -> Result<ChatMessage, DomainError> {
        let mut state = lock(&self.state);
        if !state.rooms.contains_key(&message.room) {
            return Err(missing("room"));
        }
        state.last_chat_id += 1;
        let stored = ChatMessage {
            id: state.last_chat_id,
            room: message.room,
            from: message.from,
            user_id: message.user_id,
            username: message.username,
            text: message.text.as_str().to_owned(),
            ts: stored(message.ts),
            attachment: None,
        };
        state.chat.insert(stored.id, stored.clone());
        Ok(stored)
    }

    async fn chat_before(
        &self,
        room: &RoomName,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, DomainError> {
        let state = lock(&self.state);
        let mut messages: Vec<ChatMessage> = state
            .chat
            .range(..before.unwrap_or(i64::MAX))
            .rev()
            .map(|(_, message)| message)
            .filter(|message| &message.room == room)
            .take(limit as usize)
            .cloned()
            .collect();
        messages.reverse();
        Ok(messages)
    }
}

/// A quick password hash (SHA-256, unsalted: fine for tests, never for
/// accounts). Like the real one it gives the runtime back once while it works,
/// so concurrent requests interleave there; and it keeps the contract that an
/// unknown account (`verify(_, None)`) costs one verification and is refused.
#[derive(Default)]
pub struct FastHasher {
    hashes: AtomicUsize,
    verifies: AtomicUsize,
    busy: AtomicBool,
}

impl FastHasher {
    /// How long a busy hasher asks callers to wait.
    pub const RETRY_AFTER: Duration = Duration::from_secs(1);

    /// Makes every call fail with `Overloaded` (too much hashing queued) or not.
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::SeqCst);
    }

    /// How many passwords were hashed.
    pub fn hashes(&self) -> usize {
        self.hashes.load(Ordering::SeqCst)
    }

    /// How many passwords were checked (against a hash or, for an unknown
    /// account, against nothing).
    pub fn verifies(&self) -> usize {
        self.verifies.load(Ordering::SeqCst)
    }

    async fn work(&self, password: &Password) -> Result<String, DomainError> {
        if self.busy.load(Ordering::SeqCst) {
            return Err(DomainError::Overloaded {
                retry_after: Self::RETRY_AFTER,
            });
        }
        tokio::task::yield_now().await;
        let digest = Sha256::digest(password.expose().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("$test-sha256${hex}"))
    }
}

#[async_trait]
impl PasswordHasher for FastHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, DomainError> {
        let hash = self.work(password).await?;
        self.hashes.fetch_add(1, Ordering::SeqCst);
        Ok(PasswordHash(hash))
    }

    async fn verify(
        &self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, DomainError> {
        let computed = self.work(password).await?;
        self.verifies.fetch_add(1, Ordering::SeqCst);
        Ok(hash.is_some_and(|hash| hash.0 == computed))
    }
}

/// A [`Clock`] that stands still until the test moves it.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *lock(&self.0) += by;
    }
}

/// Starts at 2025-01-01 00:00:00 UTC (a whole second, as tokens count time).
impl Default for ManualClock {
    fn default() -> Self {
        Self::new(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

/// One instance's [`Cluster`]. What it publishes is recorded, in order, for
/// the test to read ([`Self::take_published`]) and hand to the other instances'
/// [`ClusterListener`](webcall_domain::ports::ClusterListener)s, as Redis
/// would. Resume tokens are shared with [`Self::another_instance`], and a claim
/// finds the peer in the shared presence, as with Redis. While it is down
/// ([`Self::set_down`]) every call fails with `Unavailable`.
pub struct MemoryCluster {
    presence: Arc<dyn Presence>,
    resume: Arc<Mutex<HashMap<String, (RoomName, PeerId)>>>,
    published: Mutex<Vec<ClusterMessage>>,
    restored: Mutex<Vec<LocalPresence>>,
    down: AtomicBool,
}

impl MemoryCluster {
    /// The first instance, with `presence` shared by every instance.
    pub fn new(presence: Arc<dyn Presence>) -> Self {
        Self {
            presence,
            resume: Arc::default(),
            published: Mutex::default(),
            restored: Mutex::default(),
            down: AtomicBool::new(false),
        }
    }

    /// Another instance of the same cluster: the same presence and resume tokens,
    /// its own record of what it publishes.
    pub fn another_instance(&self) -> Self {
        Self {
            resume: self.resume.clone(),
            ..Self::new(self.presence.clone())
        }
    }

    /// Makes every call fail (the cluster is down) or work again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// What was published since the last call, oldest first.
    pub fn take_published(&self) -> Vec<ClusterMessage> {
        std::mem::take(&mut *lock(&self.published))
    }

    /// The peers the last [`Cluster::restore`] put back.
    pub fn restored(&self) -> Vec<LocalPresence> {
        lock(&self.restored).clone()
    }

    fn up(&self) -> Result<(), DomainError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(DomainError::unavailable("the cluster is down"));
        }
        Ok(())
    }
}

#[async_trait]
impl Cluster for MemoryCluster {
    async fn publish(&self, message: &ClusterMessage) -> Result<(), DomainError> {
        self.up()?;
        lock(&self.published).push(message.clone());
        Ok(())
    }

    async fn remember_resume(
        &self,
        token: &str,
        room: &RoomName,
        peer: &PeerId,
    ) -> Result<(), DomainError> {
        self.up()?;
        lock(&self.resume).insert(token.to_owned(), (room.clone(), peer.clone()));
        Ok(())
    }

    async fn forget_resume(&self, token: &str) -> Result<(), DomainError> {
        self.up()?;
        lock(&self.resume).remove(token);
        Ok(())
    }

    async fn claim_resume(
        &self,
        token: &str,
        room: &RoomName,
    ) -> Result<Option<PeerInfo>, DomainError> {
        self.up()?;
        let peer = match lock(&self.resume).get(token) {
            Some((its_room, peer)) if its_room == room => peer.clone(),
            _ => return Ok(None),
        };
        let peers = self.presence.peers(room).await?;
        Ok(peers.into_iter().find(|p| p.peer_id == peer))
    }

    async fn restore(&self, peers: &[LocalPresence]) -> Result<(), DomainError> {
        self.up()?;
        *lock(&self.restored) = peers.to_vec();
        Ok(())
    }
}

/// The stand-ins keep the contract the use cases rely on.
#[cfg(test)]
mod tests {
    use webcall_domain::signaling::{ChatText, PeerState};

    use super::*;
    use crate::presence::InProcessPresence;

    fn account(email: &str, username: &str) -> NewUser {
        NewUser {
            user: User {
                id: UserId::new_random(),
                email: Email::parse(email).unwrap(),
                username: Username::parse(username).unwrap(),
                created_at: ManualClock::default().now(),
                role: Role::Member,
                banned_at: None,
                tokens_valid_from: None,
            },
            password_hash: PasswordHash("h".into()),
        }
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn chat(room: &RoomName, text: &str) -> NewChatMessage {
        NewChatMessage {
            room: room.clone(),
            from: PeerId::from_client("p"),
            user_id: UserId::new_random(),
            username: "ada".into(),
            text: ChatText::parse(text).unwrap(),
            ts: Utc::now(),
        }
    }

    #[tokio::test]
    async fn emails_and_usernames_are_unique_whatever_the_case_or_unicode_form() {
        let store = MemoryStore::default();
        store
            .insert(account("jose\u{301}@example.org", "Jose"))
            .await
            .unwrap();
        for (email, name, expected) in [
            ("JOS\u{C9}@Example.org", "other", "email"),
            ("other@example.org", "JOSE", "username"),
        ] {
            let err = store.insert(account(email, name)).await.unwrap_err();
            let field = match err {
                DomainError::EmailTaken => "email",
                DomainError::UsernameTaken => "username",
                other => panic!("{other:?}"),
            };
            assert_eq!(field, expected);
        }
        let by_email = LoginIdentifier::parse(Some("jos\u{E9}@EXAMPLE.org"), None).unwrap();
        let (found, _) = store.find_for_login(&by_email).await.unwrap().unwrap();
        assert_eq!(found.username.as_str(), "Jose");
        assert_eq!(store.user_count(), 1);
    }

    #[tokio::test]
    async fn a_revocation_is_new_exactly_once_and_goes_with_its_account() {
        let store = MemoryStore::default();
        let ada = store.add_user("ada");
        let (jti, family) = (Uuid::new_v4(), Uuid::new_v4());
        let clock = ManualClock::default();
        let expires = clock.now() + chrono::Duration::hours(1);
        assert!(store.revoke(jti, ada.id, expires).await.unwrap());
        assert!(!store.revoke(jti, ada.id, expires).await.unwrap());
        let holder = |jti, family| store.holder(jti, family, ada.id);
        assert_eq!(holder(jti, family).await.unwrap(), TokenHolder::Revoked);
        assert_eq!(holder(family, jti).await.unwrap(), TokenHolder::Revoked);
        let fresh = holder(Uuid::new_v4(), family).await.unwrap();
        assert_eq!(fresh, TokenHolder::Active(ada.clone()));
        clock.advance(chrono::Duration::minutes(59));
        let in_force = store.revoked_after(clock.now()).await.unwrap();
        assert_eq!(in_force, vec![(jti, expires)]);
        clock.advance(chrono::Duration::minutes(1));
        assert_eq!(store.revoked_after(clock.now()).await.unwrap(), vec![]);

        assert!(store.delete(ada.id).await.unwrap());
        assert!(!store.is_revoked(jti).await.unwrap());
        assert_eq!(holder(jti, family).await.unwrap(), TokenHolder::Unknown);
        assert!(
            store.revoke(family, ada.id, expires).await.is_err(),
            "no account"
        );
    }

    #[tokio::test]
    async fn the_owned_rooms_limit_holds_for_concurrent_creations() {
        let store = Arc::new(MemoryStore::default());
        let ada = store.add_user("ada");
        let at = Utc::now();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .create_room(&room(&format!("r{i}")), ada.id, at, 3)
                        .await
                })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(room) => {
                    assert_eq!((room.owner, room.owner_name.as_str()), (ada.id, "ada"));
                    created += 1;
                }
                Err(DomainError::RoomLimit { max: 3 }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(created, 3);
        let grace = store.add_user("grace");
        let taken = store.list_rooms(None, 1).await.unwrap().remove(0).name;
        assert!(matches!(
            store.create_room(&taken, grace.id, at, 3).await,
            Err(DomainError::RoomExists)
        ));
        let stranger = UserId::new_random();
        assert!(store
            .create_room(&room("x"), stranger, at, 3)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn rooms_are_listed_by_name_a_page_at_a_time() {
        let store = MemoryStore::default();
        let ada = store.add_user("ada");
        for name in ["b", "a", "d", "c", "E"] {
            store
                .create_room(&room(name), ada.id, Utc::now(), 10)
                .await
                .unwrap();
        }
        let names = |rooms: Vec<Room>| -> Vec<String> {
            rooms.into_iter().map(|r| r.name.to_string()).collect()
        };
        let first = names(store.list_rooms(None, 3).await.unwrap());
        assert_eq!(first, ["E", "a", "b"]);
        let after = room(&first[2]);
        let second = names(store.list_rooms(Some(&after), 3).await.unwrap());
        assert_eq!(second, ["c", "d"]);
        assert!(store
            .list_rooms(Some(&room("d")), 3)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn chat_pages_come_oldest_first_and_go_with_their_room() {
        let store = MemoryStore::default();
        let ada = store.add_user("ada");
        let (lobby, other) = (room("lobby"), room("other"));
        for name in [&lobby, &other] {
            store
                .create_room(name, ada.id, Utc::now(), 10)
                .await
                .unwrap();
        }
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                store
                    .append_chat(chat(&lobby, &format!("m{i}")))
                    .await
                    .unwrap()
                    .id,
            );
            store.append_chat(chat(&other, "elsewhere")).await.unwrap();
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let texts = |messages: Vec<ChatMessage>| -> Vec<String> {
            messages.into_iter().map(|m| m.text).collect()
        };
        let latest = store.chat_before(&lobby, None, 2).await.unwrap();
        assert_eq!(texts(latest.clone()), ["m3", "m4"]);
        let earlier = store.chat_before(&lobby, Some(latest[0].id), 10).await;
        assert_eq!(texts(earlier.unwrap()), ["m0", "m1", "m2"]);

        assert!(store.delete_room(&lobby).await.unwrap());
        assert!(!store.delete_room(&lobby).await.unwrap());
        assert!(store
            .chat_before(&lobby, None, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(store.append_chat(chat(&lobby, "late")).await.is_err());
        assert_eq!(store.chat_before(&other, None, 10).await.unwrap().len(), 5);
        // An account takes its rooms and their chat with it.
        store.delete(ada.id).await.unwrap();
        assert_eq!(store.find_room(&other).await.unwrap(), None);
        assert!(store
            .chat_before(&other, None, 10)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn the_hasher_refuses_a_wrong_password_and_an_unknown_account() {
        let hasher = FastHasher::default();
        let password = Password::parse("correct horse".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(!hash.0.contains("correct horse"));
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        let wrong = Password::for_login("correct horsE".into()).unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
        assert_eq!((hasher.hashes(), hasher.verifies()), (1, 3));
        hasher.set_busy(true);
        assert!(matches!(
            hasher.verify(&password, Some(&hash)).await,
            Err(DomainError::Overloaded { .. })
        ));
    }

    #[tokio::test]
    async fn a_resume_token_is_claimed_on_any_instance_for_its_room_while_its_peer_is_present() {
        let presence = Arc::new(InProcessPresence::default());
        let here = MemoryCluster::new(presence.clone());
        let there = here.another_instance();
        let lobby = room("lobby");
        let peer = PeerInfo {
            peer_id: PeerId::from_client("p"),
            user_id: UserId::new_random(),
            username: "ada".into(),
            state: PeerState::default(),
            host: false,
            guest: false,
        };
        presence.join(&lobby, &peer, 16).await.unwrap();
        here.remember_resume("t", &lobby, &peer.peer_id)
            .await
            .unwrap();
        assert_eq!(
            there.claim_resume("t", &lobby).await.unwrap(),
            Some(peer.clone())
        );
        assert_eq!(there.claim_resume("t", &room("other")).await.unwrap(), None);
        assert_eq!(there.claim_resume("u", &lobby).await.unwrap(), None);
        presence.leave(&lobby, &peer.peer_id).await.unwrap();
        assert_eq!(there.claim_resume("t", &lobby).await.unwrap(), None, "gone");
        presence.join(&lobby, &peer, 16).await.unwrap();
        there.forget_resume("t").await.unwrap();
        assert_eq!(here.claim_resume("t", &lobby).await.unwrap(), None);

        let message = ClusterMessage::Command(webcall_domain::signaling::Command::RollCall);
        here.set_down(true);
        assert!(here.publish(&message).await.is_err());
        assert!(
            there.publish(&message).await.is_ok(),
            "each instance's own link"
        );
        here.set_down(false);
        here.publish(&message).await.unwrap();
        assert_eq!(here.take_published(), std::slice::from_ref(&message));
        assert!(here.take_published().is_empty());
        assert_eq!(there.take_published(), [message]);

        let mine = LocalPresence {
            room: lobby.clone(),
            info: peer.clone(),
            resume_token: "t".into(),
        };
        here.restore(std::slice::from_ref(&mine)).await.unwrap();
        let restored = here.restored();
        assert_eq!(restored.len(), 1);
        assert_eq!((&restored[0].room, &restored[0].info), (&lobby, &peer));
    }
}
