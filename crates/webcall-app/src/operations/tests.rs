//! The operator's use cases on one or two instances sharing a store and a
//! cluster (the test hands each instance's published commands to the other, as
//! Redis would), with the real JWT codec and a manual clock, and a relay
//! stand-in that records what it is asked (the relay itself is tested in
//! webcall-turn against real TURN clients).
//!
//! Over 500 lines: the two stand-ins (stored settings, relay) and the
//! two-instance set-up live here beside the only tests that use them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use webcall_auth::JwtCodec;
use webcall_domain::admin::{AdminRepository, NewAuditEntry};
use webcall_domain::model::{Role, UserId};
use webcall_domain::operations::{
    KeyGeneration, KeyKind, RelayAllocation, RelayQuotas, RelayTransport, Traffic,
};
use webcall_domain::ports::{
    Clock, ClusterListener, OperatorSettings, RelayControl, RotatingKey, TokenCodec,
};
use webcall_domain::signaling::{ClusterMessage, Command};
use webcall_domain::DomainError;

use super::{Operations, OperationsDeps};
use crate::admin::{Access, Actor, Admin, AdminDeps, AdminLimits};
use crate::hub::{Hub, HubDeps, SignalingConfig};
use crate::ice::IceServersService;
use crate::presence::InProcessPresence;
use crate::rooms::{RoomDeps, RoomLimits, RoomService};
use crate::testing::{FastHasher, ManualClock, MemoryCluster, MemoryStore};
use crate::AppError;

/// What the operator stored, as the SQL store keeps it, with the audit
/// entries written with each change.
#[derive(Default)]
struct MemorySettings {
    quotas: Mutex<Option<(RelayQuotas, u64)>>,
    keys: Mutex<Vec<(KeyKind, KeyGeneration)>>,
    audit: Mutex<Vec<NewAuditEntry>>,
}

impl MemorySettings {
    fn actions(&self) -> Vec<(&'static str, String)> {
        let audit = self.audit.lock().unwrap();
        audit.iter().map(|e| (e.action, e.target.clone())).collect()
    }
}

#[async_trait]
impl OperatorSettings for MemorySettings {
    async fn relay_quotas(&self) -> Result<Option<(RelayQuotas, u64)>, DomainError> {
        Ok(*self.quotas.lock().unwrap())
    }

    async fn save_relay_quotas(
        &self,
        quotas: RelayQuotas,
        audit: NewAuditEntry,
    ) -> Result<u64, DomainError> {
        self.audit.lock().unwrap().push(audit);
        let mut stored = self.quotas.lock().unwrap();
        let version = stored.map_or(0, |(_, version)| version) + 1;
        *stored = Some((quotas, version));
        Ok(version)
    }

    async fn key_generation(&self, key: KeyKind) -> Result<KeyGeneration, DomainError> {
        let keys = self.keys.lock().unwrap();
        Ok(keys
            .iter()
            .find(|(kind, _)| *kind == key)
            .map_or(KeyGeneration::INITIAL, |(_, generation)| *generation))
    }

    async fn rotate_key(
        &self,
        key: KeyKind,
        now: DateTime<Utc>,
        audit: NewAuditEntry,
    ) -> Result<KeyGeneration, DomainError> {
        self.audit.lock().unwrap().push(audit);
        let mut keys = self.keys.lock().unwrap();
        let current = keys
            .iter()
            .find(|(kind, _)| *kind == key)
            .map_or(KeyGeneration::INITIAL, |(_, generation)| *generation);
        let next = current.next(now);
        keys.retain(|(kind, _)| *kind != key);
        keys.push((key, next));
        Ok(next)
    }
}

/// A relay that holds what the test gives it.
struct StandInRelay {
    allocations: Mutex<Vec<RelayAllocation>>,
    quotas: Mutex<RelayQuotas>,
}

impl StandInRelay {
    fn new() -> Self {
        Self {
            allocations: Mutex::default(),
            quotas: Mutex::new(RelayQuotas {
                per_user: 10,
                total: 1000,
            }),
        }
    }

    fn hold(&self, id: &str, user: UserId, traffic: Traffic, rates: (u64, u64)) {
        self.allocations.lock().unwrap().push(RelayAllocation {
            id: id.into(),
            user: user.to_string(),
            user_id: Some(user),
            transport: RelayTransport::Udp,
            client: "203.0.113.1:5000".parse().unwrap(),
            relayed: "198.51.100.1:50000".parse().unwrap(),
            age: Duration::from_secs(3),
            traffic,
            rate_in_bps: rates.0,
            rate_out_bps: rates.1,
        });
    }

    fn ids(&self) -> Vec<String> {
        let allocations = self.allocations.lock().unwrap();
        allocations.iter().map(|a| a.id.clone()).collect()
    }
}

impl RelayControl for StandInRelay {
    fn allocations(&self) -> Vec<RelayAllocation> {
        self.allocations.lock().unwrap().clone()
    }

    fn end_allocation(&self, id: &str) -> bool {
        let mut allocations = self.allocations.lock().unwrap();
        let before = allocations.len();
        allocations.retain(|a| a.id != id);
        allocations.len() < before
    }

    fn end_user(&self, user: UserId) -> usize {
        let mut allocations = self.allocations.lock().unwrap();
        let before = allocations.len();
        allocations.retain(|a| a.user_id != Some(user));
        before - allocations.len()
    }

    fn quotas(&self) -> RelayQuotas {
        *self.quotas.lock().unwrap()
    }

    fn set_quotas(&self, quotas: RelayQuotas) {
        *self.quotas.lock().unwrap() = quotas;
    }
}

const JWT_SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

/// One instance: its hub, relay, JWT codec and the operator's use cases, and
/// an admin admitted by its guard.
struct Instance {
    operations: Arc<Operations>,
    actor: Actor,
    hub: Arc<Hub>,
    relay: Arc<StandInRelay>,
    jwt: Arc<JwtCodec>,
    cluster: Option<Arc<MemoryCluster>>,
}

/// What the instances share: the store, the settings, presence, the clock.
struct Shared {
    store: Arc<MemoryStore>,
    settings: Arc<MemorySettings>,
    presence: Arc<InProcessPresence>,
    clock: Arc<ManualClock>,
}

impl Shared {
    fn new() -> Self {
        Self {
            store: Arc::default(),
            settings: Arc::default(),
            presence: Arc::default(),
            clock: Arc::default(),
        }
    }

    /// An instance, with a relay unless `relay` is false, in `cluster` if any.
    fn instance(&self, cluster: Option<Arc<MemoryCluster>>, relay: bool) -> Instance {
        let rooms = Arc::new(RoomService::new(
            RoomDeps {
                rooms: self.store.clone(),
                chat: self.store.clone(),
                presence: self.presence.clone(),
                clock: self.clock.clone(),
            },
            RoomLimits::default(),
        ));
        let hub = Hub::new(
            HubDeps {
                rooms: rooms.clone(),
                chat: self.store.clone(),
                moderation: self.store.clone(),
                access: self.store.clone(),
                presence: self.presence.clone(),
                cluster: cluster.clone().map(|c| c as _),
                ice: Arc::new(IceServersService::new(vec![], vec![], self.clock.clone())),
                media: None,
                recorder: None,
                clock: self.clock.clone(),
            },
            SignalingConfig::default(),
        );
        let stand_in = Arc::new(StandInRelay::new());
        let jwt = Arc::new(JwtCodec::new(
            &SecretString::from(JWT_SECRET),
            chrono::Duration::minutes(60),
        ));
        let turn_key = Arc::new(JwtCodec::new(
            &SecretString::from("turn"),
            chrono::Duration::hours(24),
        ));
        let admin = Arc::new(Admin::new(
            AdminDeps {
                users: self.store.clone(),
                store: self.store.clone(),
                rooms,
                hub: hub.clone(),
                presence: self.presence.clone(),
                hasher: Arc::new(FastHasher::default()),
                clock: self.clock.clone(),
            },
            AdminLimits::default(),
        ));
        let mut root = self.store.add_user(&format!("root{}", rand_suffix()));
        root.role = Role::Admin;
        let actor = admin.admit(&root, Access::Change).unwrap();
        let operations = Operations::new(OperationsDeps {
            settings: self.settings.clone(),
            relay: relay.then(|| stand_in.clone() as Arc<dyn RelayControl>),
            turn_key: relay.then_some(turn_key as Arc<dyn RotatingKey>),
            jwt_key: jwt.clone(),
            hub: hub.clone(),
            admin,
            users: self.store.clone(),
            clock: self.clock.clone(),
            instance: "test".into(),
        });
        Instance {
            operations,
            actor,
            hub,
            relay: stand_in,
            jwt,
            cluster,
        }
    }

    /// Two instances of one cluster, each with a relay.
    fn pair(&self) -> (Instance, Instance) {
        let cluster = Arc::new(MemoryCluster::new(self.presence.clone()));
        let other = Arc::new(cluster.another_instance());
        (
            self.instance(Some(cluster), true),
            self.instance(Some(other), true),
        )
    }
}

impl Instance {
    /// Hands what this instance published to `other`, as Redis would.
    async fn deliver_to(&self, other: &Instance) -> Vec<ClusterMessage> {
        let published = self.cluster.as_ref().unwrap().take_published();
        for message in &published {
            other.hub.receive(message.clone()).await;
        }
        published
    }
}

/// Tells the admins of several instances apart.
fn rand_suffix() -> String {
    UserId::new_random().0.simple().to_string()[..8].to_owned()
}

fn quotas(per_user: u32, total: u32) -> RelayQuotas {
    RelayQuotas::new(per_user, total).unwrap()
}

#[tokio::test]
async fn a_quota_change_is_stored_and_applied_on_every_instance() {
    let shared = Shared::new();
    let (a, b) = shared.pair();
    a.operations
        .set_quotas(&a.actor, quotas(3, 50))
        .await
        .unwrap();
    assert_eq!(a.relay.quotas(), quotas(3, 50));
    assert_eq!(a.operations.quotas(&a.actor).unwrap(), quotas(3, 50));
    assert_eq!(
        shared.settings.relay_quotas().await.unwrap(),
        Some((quotas(3, 50), 1))
    );
    assert_eq!(
        shared.settings.actions(),
        [("turn.quotas.set", "turn".to_owned())]
    );
    assert_eq!(b.relay.quotas().per_user, 10, "not before the command");
    a.deliver_to(&b).await;
    assert_eq!(b.relay.quotas(), quotas(3, 50));
}

#[tokio::test]
async fn of_two_quota_changes_at_once_the_later_version_wins_everywhere() {
    let shared = Shared::new();
    let (a, b) = shared.pair();
    a.operations
        .set_quotas(&a.actor, quotas(1, 10))
        .await
        .unwrap();
    b.operations
        .set_quotas(&b.actor, quotas(2, 20))
        .await
        .unwrap();
    // Each hears the other's change after making its own.
    a.deliver_to(&b).await;
    b.deliver_to(&a).await;
    assert_eq!(a.relay.quotas(), quotas(2, 20));
    assert_eq!(b.relay.quotas(), quotas(2, 20));
    assert_eq!(
        shared.settings.relay_quotas().await.unwrap(),
        Some((quotas(2, 20), 2))
    );
}

#[tokio::test]
async fn a_restart_restores_the_stored_quotas_and_key_generations() {
    let shared = Shared::new();
    let first = shared.instance(None, true);
    first
        .operations
        .set_quotas(&first.actor, quotas(4, 40))
        .await
        .unwrap();
    first
        .operations
        .rotate(&first.actor, KeyKind::Jwt)
        .await
        .unwrap();
    first
        .operations
        .rotate(&first.actor, KeyKind::Jwt)
        .await
        .unwrap();
    let restarted = shared.instance(None, true);
    assert_eq!(restarted.relay.quotas().per_user, 10);
    restarted.operations.restore().await.unwrap();
    assert_eq!(restarted.relay.quotas(), quotas(4, 40));
    assert_eq!(restarted.jwt.generation().generation, 2);
    assert_eq!(
        restarted.operations.keys(&restarted.actor)[0].generation,
        KeyGeneration::INITIAL,
        "the TURN key was never rotated"
    );
}

#[tokio::test]
async fn a_jwt_rotation_reaches_every_instance_and_old_tokens_verify_for_their_lifetime() {
    let shared = Shared::new();
    let (a, b) = shared.pair();
    let user = UserId::new_random();
    let old = a.jwt.issue(user, shared.clock.now());
    let status = a.operations.rotate(&a.actor, KeyKind::Jwt).await.unwrap();
    assert_eq!(status.generation.generation, 1);
    assert_eq!(
        shared.settings.actions(),
        [("key.rotate", "jwt".to_owned())]
    );
    assert_eq!(status.generation.rotated_at, Some(shared.clock.now()));
    assert_eq!(
        status.previous_valid_until,
        Some(shared.clock.now() + chrono::Duration::minutes(60))
    );
    let published = a.deliver_to(&b).await;
    assert!(matches!(
        &published[..],
        [ClusterMessage::Command(Command::KeyRotated { key: KeyKind::Jwt, generation })]
            if generation.generation == 1
    ));
    assert_eq!(b.jwt.generation(), status.generation);
    let new = b.jwt.issue(user, shared.clock.now());
    for codec in [&a.jwt, &b.jwt] {
        for token in [&old, &new] {
            assert!(codec
                .verify(token.token.expose_secret(), shared.clock.now())
                .is_ok());
        }
    }
    // A second rotation retires generation 0 at once.
    a.operations.rotate(&a.actor, KeyKind::Jwt).await.unwrap();
    assert!(a
        .jwt
        .verify(old.token.expose_secret(), shared.clock.now())
        .is_err());
    assert!(a
        .jwt
        .verify(new.token.expose_secret(), shared.clock.now())
        .is_ok());
}

#[tokio::test]
async fn without_the_embedded_relay_there_is_nothing_to_manage_and_no_turn_key_to_rotate() {
    let shared = Shared::new();
    let alone = shared.instance(None, false);
    assert!(matches!(
        alone.operations.rotate(&alone.actor, KeyKind::Turn).await,
        Err(AppError::RelayNotRunning)
    ));
    assert!(matches!(
        alone
            .operations
            .set_quotas(&alone.actor, quotas(1, 1))
            .await,
        Err(AppError::RelayNotRunning)
    ));
    assert!(matches!(
        alone.operations.quotas(&alone.actor),
        Err(AppError::RelayNotRunning)
    ));
    let listing = alone.operations.allocations(&alone.actor).await.unwrap();
    assert!(listing.allocations.is_empty());
    assert_eq!(listing.totals.quotas, None);
    let keys = alone.operations.keys(&alone.actor);
    assert_eq!((keys[0].kind, keys[0].rotates), (KeyKind::Turn, false));
    assert_eq!((keys[1].kind, keys[1].rotates), (KeyKind::Jwt, true));
    assert_eq!(
        shared
            .settings
            .key_generation(KeyKind::Turn)
            .await
            .unwrap()
            .generation,
        0
    );
}

#[tokio::test]
async fn the_listing_adds_up_the_allocations() {
    let shared = Shared::new();
    let alone = shared.instance(None, true);
    let (ada, bob) = (shared.store.add_user("ada").id, UserId::new_random());
    let traffic = |n| Traffic {
        packets_in: n,
        bytes_in: 100 * n,
        packets_out: 2 * n,
        bytes_out: 50 * n,
    };
    alone
        .relay
        .hold("00000000000000a1", ada, traffic(1), (800, 400));
    alone
        .relay
        .hold("00000000000000a2", ada, traffic(2), (0, 0));
    alone
        .relay
        .hold("00000000000000b1", bob, traffic(3), (10, 20));
    let listing = alone.operations.allocations(&alone.actor).await.unwrap();
    assert_eq!(listing.instance, "test");
    assert_eq!(listing.allocations.len(), 3);
    let names: Vec<Option<&str>> = listing
        .allocations
        .iter()
        .map(|(_, name)| name.as_deref())
        .collect();
    assert_eq!(
        names,
        [Some("ada"), Some("ada"), None],
        "bob has no account"
    );
    let totals = listing.totals;
    assert_eq!((totals.allocations, totals.users), (3, 2));
    assert_eq!(totals.traffic, traffic(6));
    assert_eq!((totals.rate_in_bps, totals.rate_out_bps), (810, 420));
    assert_eq!(totals.quotas, Some(quotas(10, 1000)));
}

#[tokio::test]
async fn ending_an_allocation_alone_needs_it_to_exist() {
    let shared = Shared::new();
    let alone = shared.instance(None, true);
    alone.relay.hold(
        "00000000000000a1",
        UserId::new_random(),
        Traffic::default(),
        (0, 0),
    );
    for unknown in ["00000000000000ff", "not-an-id", "00000000000000A1", ""] {
        assert!(
            matches!(
                alone.operations.end_allocation(&alone.actor, unknown).await,
                Err(AppError::AllocationNotFound)
            ),
            "{unknown}"
        );
    }
    alone
        .operations
        .end_allocation(&alone.actor, "00000000000000a1")
        .await
        .unwrap();
    assert!(alone.relay.ids().is_empty());
    let audit = shared.store.audit_page(None, 10).await.unwrap();
    assert_eq!(
        (audit[0].action.as_str(), audit[0].target.as_str()),
        ("turn.allocation.end", "00000000000000a1")
    );
}

#[tokio::test]
async fn an_allocation_held_by_another_instance_is_ended_there() {
    let shared = Shared::new();
    let (a, b) = shared.pair();
    b.relay.hold(
        "00000000000000b1",
        UserId::new_random(),
        Traffic::default(),
        (0, 0),
    );
    a.operations
        .end_allocation(&a.actor, "00000000000000b1")
        .await
        .unwrap();
    assert_eq!(b.relay.ids(), ["00000000000000b1"]);
    a.deliver_to(&b).await;
    assert!(b.relay.ids().is_empty());
}

#[tokio::test]
async fn a_banned_users_allocations_end_on_every_instance() {
    let shared = Shared::new();
    let (a, b) = shared.pair();
    let banned = UserId::new_random();
    a.relay
        .hold("00000000000000a1", banned, Traffic::default(), (0, 0));
    b.relay
        .hold("00000000000000b1", banned, Traffic::default(), (0, 0));
    a.hub.ban_user(banned).await;
    assert!(a.relay.ids().is_empty());
    assert_eq!(b.relay.ids(), ["00000000000000b1"]);
    a.deliver_to(&b).await;
    assert!(b.relay.ids().is_empty());
}

#[tokio::test]
async fn a_revoked_users_allocations_end_on_every_instance() {
    let shared = Shared::new();
    let (a, b) = shared.pair();
    let (gone, stays) = (UserId::new_random(), UserId::new_random());
    a.relay
        .hold("00000000000000a1", gone, Traffic::default(), (0, 0));
    a.relay
        .hold("00000000000000a2", stays, Traffic::default(), (0, 0));
    b.relay
        .hold("00000000000000b1", gone, Traffic::default(), (0, 0));
    a.hub.revoke_user(gone).await;
    assert_eq!(a.relay.ids(), ["00000000000000a2"]);
    a.deliver_to(&b).await;
    assert!(b.relay.ids().is_empty());
}
