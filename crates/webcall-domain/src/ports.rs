//! Ports: what the use cases need from the outside world, implemented by adapters.
//!
//! A trait lives here only where something real is swapped: SQLite vs PostgreSQL
//! storage, the password hash and token formats, TURN credentials, presence
//! (in-process vs Redis), the other instances (Redis, or none when alone), the
//! clock (tests move time) and what `/readyz` checks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::access::{AccessChange, Member, RoomAccess};
use crate::admin::NewAuditEntry;
use crate::model::{
    IssuedToken, LoginIdentifier, NewUser, Password, PasswordHash, TokenClaims, TokenError,
    TokenHolder, TurnCredentials, User, UserId,
};
use crate::operations::{KeyGeneration, KeyKind, RelayAllocation, RelayQuotas};
use crate::signaling::RoomRules;
use crate::signaling::{
    ChatMessage, ClusterMessage, NewChatMessage, PeerId, PeerInfo, Room, RoomName,
};
use crate::DomainError;

/// Account storage.
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new account; `EmailTaken` / `UsernameTaken` when either is in use
    /// (compared case-insensitively).
    async fn insert(&self, user: NewUser) -> Result<User, DomainError>;
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, DomainError>;
    /// The account and its password hash, for a login.
    async fn find_for_login(
        &self,
        login: &LoginIdentifier,
    ) -> Result<Option<(User, PasswordHash)>, DomainError>;
    /// Deletes the account (its rooms and revocations go with it); false if
    /// there was none.
    async fn delete(&self, id: UserId) -> Result<bool, DomainError>;
    /// The `limit` most recently registered accounts, newest first (to remember
    /// them from start-up).
    async fn newest(&self, limit: usize) -> Result<Vec<User>, DomainError>;
}

/// Tokens revoked by logout or refresh, and token families revoked whole,
/// remembered until they would have expired anyway. A family is revoked under
/// its own id (ids are UUIDs: never a token's).
#[async_trait]
pub trait TokenRevocations: Send + Sync {
    /// Revokes `jti` (a token's or a family's id). True if it was not revoked
    /// before: of two concurrent calls, exactly one gets true.
    async fn revoke(
        &self,
        jti: Uuid,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, DomainError>;
    async fn is_revoked(&self, jti: Uuid) -> Result<bool, DomainError>;
    /// Whether `jti` or its `family` is revoked and, if not, the account `user`,
    /// in one round trip (a revoked token is `Revoked` whether or not its account
    /// still exists).
    async fn holder(
        &self,
        jti: Uuid,
        family: Uuid,
        user: UserId,
    ) -> Result<TokenHolder, DomainError>;
    /// Every revoked token that expires after `after`, with its expiry (to hold
    /// the revocations in memory from start-up).
    async fn revoked_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, DomainError>;
}

/// Password hashing. Implementations keep the CPU-heavy work off the async runtime.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, DomainError>;
    /// Checks `password` against `hash`. With `None` (no such account) it does the
    /// same amount of work against a dummy hash and returns `false`, so a login for
    /// an unknown user takes as long as one with a wrong password.
    async fn verify(
        &self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, DomainError>;
}

/// Access-token minting and checking (signature, algorithm, expiry). Revocation is
/// [`TokenRevocations`]' job.
pub trait TokenCodec: Send + Sync {
    /// A token that starts a new family (a login).
    fn issue(&self, user: UserId, now: DateTime<Utc>) -> IssuedToken {
        self.issue_in_family(user, Uuid::new_v4(), now)
    }
    /// A token in an existing family (a refresh).
    fn issue_in_family(&self, user: UserId, family: Uuid, now: DateTime<Utc>) -> IssuedToken;
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<TokenClaims, TokenError>;
}

/// Mints credentials for a TURN server: time-limited REST credentials (coturn's
/// `use-auth-secret` scheme) for the embedded relay or an external coturn, or a
/// static pair configured for an external server.
pub trait TurnCredentialMinter: Send + Sync {
    fn mint(&self, user: UserId, now: DateTime<Utc>) -> TurnCredentials;
    /// How long minted credentials stay valid, in seconds (`None`: they do not expire).
    fn ttl_secs(&self) -> Option<u64>;
}

/// The time, as a port so tests can move it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A dependency whose health `/readyz` reports (the database, later the TURN relay).
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// A short stable name shown in `/readyz`.
    fn name(&self) -> &'static str;
    async fn check(&self) -> Result<(), DomainError>;
}

/// Rooms as stored.
#[async_trait]
pub trait RoomRepository: Send + Sync {
    /// Creates the room; `RoomExists` if the name is taken, `RoomLimit` if
    /// `owner` owns `max_owned` rooms already (checked and inserted atomically:
    /// concurrent requests cannot pass the limit together).
    async fn create_room(
        &self,
        name: &RoomName,
        owner: UserId,
        at: DateTime<Utc>,
        max_owned: usize,
    ) -> Result<Room, DomainError>;
    async fn find_room(&self, name: &RoomName) -> Result<Option<Room>, DomainError>;
    /// Up to `limit` rooms by name, those after `after` (a keyset page).
    async fn list_rooms(
        &self,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<Room>, DomainError>;
    /// Deletes the room and its chat history; false if there was no such room.
    async fn delete_room(&self, name: &RoomName) -> Result<bool, DomainError>;
}

/// A room's moderation rules as stored (bans, "only hosts may speak"); they go
/// with the room when it is deleted.
#[async_trait]
pub trait RoomModeration: Send + Sync {
    /// The room's rules (the defaults when there is no such room).
    async fn room_rules(&self, room: &RoomName) -> Result<RoomRules, DomainError>;
    /// Bans `user` from `room` (again is a no-op).
    async fn ban_from_room(
        &self,
        room: &RoomName,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError>;
    /// Switches "only hosts may speak"; false if there is no such room.
    async fn set_hosts_only(&self, room: &RoomName, on: bool) -> Result<bool, DomainError>;
}

/// Chat history.
#[async_trait]
pub trait ChatRepository: Send + Sync {
    /// Stores a message and returns it with its id (written before anyone sees it).
    async fn append_chat(&self, message: NewChatMessage) -> Result<ChatMessage, DomainError>;
    /// Up to `limit` messages of `room` with ids below `before` (all when `None`),
    /// oldest first.
    async fn chat_before(
        &self,
        room: &RoomName,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, DomainError>;
}

/// Who is in which room, on every instance: in-process when WebCall runs
/// alone, Redis when several instances share rooms.
#[async_trait]
pub trait Presence: Send + Sync {
    /// Adds `peer` to `room` unless the room already holds `capacity` peers.
    /// Returns the peers that were there before, or `None` when the room is full.
    async fn join(
        &self,
        room: &RoomName,
        peer: &PeerInfo,
        capacity: usize,
    ) -> Result<Option<Vec<PeerInfo>>, DomainError>;
    /// Replaces the peer's record (its state changed).
    async fn update(&self, room: &RoomName, peer: &PeerInfo) -> Result<(), DomainError>;
    /// Removes the peer. True for the one caller that actually removed it, so a
    /// departure is announced once.
    async fn leave(&self, room: &RoomName, peer: &PeerId) -> Result<bool, DomainError>;
    async fn peers(&self, room: &RoomName) -> Result<Vec<PeerInfo>, DomainError>;
    /// Every room with peers in it.
    async fn occupancy(&self) -> Result<Vec<(RoomName, Vec<PeerInfo>)>, DomainError>;
}

/// The other instances that serve the same rooms (Redis): the road for events
/// and commands, and the resume tokens they share. There is none when WebCall
/// runs alone.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Hands a message to the other instances.
    async fn publish(&self, message: &ClusterMessage) -> Result<(), DomainError>;
    /// Makes `token` resume `peer` in `room` on any instance.
    async fn remember_resume(
        &self,
        token: &str,
        room: &RoomName,
        peer: &PeerId,
    ) -> Result<(), DomainError>;
    async fn forget_resume(&self, token: &str) -> Result<(), DomainError>;
    /// The peer `token` resumes in `room`, if it is still present, now served by
    /// this instance. `None` when unknown, for another room, or gone.
    async fn claim_resume(
        &self,
        token: &str,
        room: &RoomName,
    ) -> Result<Option<PeerInfo>, DomainError>;
    /// Puts this instance's peers back into presence (with their resume tokens)
    /// after the connection was lost: a restarted Redis may have come back
    /// empty. Records of this instance's peers that are not in `peers` (they left
    /// meanwhile) are dropped.
    async fn restore(&self, peers: &[LocalPresence]) -> Result<(), DomainError>;
}

/// A peer served by this instance, as [`Cluster::restore`] puts it back.
#[derive(Debug, Clone)]
pub struct LocalPresence {
    pub room: RoomName,
    pub info: PeerInfo,
    pub resume_token: String,
}

/// Receives what the cluster brings from other instances.
#[async_trait]
pub trait ClusterListener: Send + Sync {
    /// A room event or a command published by another instance.
    async fn receive(&self, message: ClusterMessage);
    /// A peer of a dead instance was removed from presence by this instance:
    /// tell its room (once).
    async fn departed(&self, room: RoomName, peer: PeerId);
    /// The connection was lost and is back: what the cluster held may be gone and
    /// messages published meanwhile were lost. Restore this instance's peers
    /// ([`Cluster::restore`]) and publish again what could not be published. An
    /// error means "not yet": the cluster calls again.
    async fn reconnected(&self) -> Result<(), DomainError>;
}

/// The embedded TURN relay of this instance, as an operator manages it (absent
/// when the relay does not run here).
pub trait RelayControl: Send + Sync {
    /// Every live allocation, oldest first.
    fn allocations(&self) -> Vec<RelayAllocation>;
    /// Ends the allocation: its relay socket closes, the client's next Refresh
    /// gets 437. False if no allocation here has that id.
    fn end_allocation(&self, id: &str) -> bool;
    /// Ends every allocation of `user` here (a banned or deleted account); how many.
    fn end_user(&self, user: UserId) -> usize;
    fn quotas(&self) -> RelayQuotas;
    /// Applies to the next Allocate; allocations over a lowered quota stay.
    fn set_quotas(&self, quotas: RelayQuotas);
}

/// A signing key that rotates by generation (JWT access tokens, TURN REST
/// credentials): see [`crate::operations`].
pub trait RotatingKey: Send + Sync {
    fn generation(&self) -> KeyGeneration;
    /// Signs with `generation` from now on, unless it is older than the one in
    /// use (commands from other instances may arrive late or twice). True if
    /// it changed.
    fn adopt(&self, generation: KeyGeneration) -> bool;
    /// The longest anything signed with a generation stays valid: how long the
    /// previous generation keeps verifying after a rotation.
    fn lifetime(&self) -> std::time::Duration;
}

/// What the operator changed at run time, kept across restarts. Each change is
/// written with its audit entry, in one transaction.
#[async_trait]
pub trait OperatorSettings: Send + Sync {
    /// The relay quotas last saved, with their version (`None`: never changed,
    /// the environment's apply).
    async fn relay_quotas(&self) -> Result<Option<(RelayQuotas, u64)>, DomainError>;
    /// Saves the quotas; returns their new version (one more than any before:
    /// of two instances saving at once, the later version is what is stored).
    async fn save_relay_quotas(
        &self,
        quotas: RelayQuotas,
        audit: NewAuditEntry,
    ) -> Result<u64, DomainError>;
    async fn key_generation(&self, key: KeyKind) -> Result<KeyGeneration, DomainError>;
    /// Moves `key` to its next generation at `now`, atomically (two rotations
    /// at once make two generations).
    async fn rotate_key(
        &self,
        key: KeyKind,
        now: DateTime<Utc>,
        audit: NewAuditEntry,
    ) -> Result<KeyGeneration, DomainError>;
}

/// Rooms' access levels, passwords and members (migration 0010).
#[async_trait]
pub trait RoomAccessRepository: Send + Sync {
    /// Creates the room with `access` set, as `RoomRepository::create_room`
    /// does (the same errors), in one step: a room never exists half made.
    async fn create_room_with_access(
        &self,
        name: &RoomName,
        owner: UserId,
        at: DateTime<Utc>,
        max_owned: usize,
        access: &RoomAccess,
    ) -> Result<Room, DomainError>;
    /// Applies `change`; false if there is no such room.
    async fn change_access(
        &self,
        room: &RoomName,
        change: &AccessChange,
    ) -> Result<bool, DomainError>;
    /// Up to `limit` rooms by name after `after` that `viewer` may see listed:
    /// public ones, those they own, and private ones they are a member of.
    async fn list_visible_rooms(
        &self,
        viewer: UserId,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<Room>, DomainError>;
    async fn is_member(&self, room: &RoomName, user: UserId) -> Result<bool, DomainError>;
    /// The room's members by username.
    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, DomainError>;
    /// Adds `user` (again is a no-op); false if there is no such room.
    async fn add_member(
        &self,
        room: &RoomName,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError>;
    /// Removes `user`; false if they were not a member.
    async fn remove_member(&self, room: &RoomName, user: UserId) -> Result<bool, DomainError>;
}
