//! The admin use cases against the in-memory store, presence and hub: who is
//! admitted, never the last admin, what a ban, a deletion, a lock and a reset
//! link do to calls and accounts, and that each change is audited.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret;
use uuid::Uuid;
use webcall_domain::admin::AdminRepository;
use webcall_domain::model::{Role, User, UserId};
use webcall_domain::ports::{Clock, PasswordHasher, UserRepository};
use webcall_domain::signaling::RoomName;

use super::{Access, Actor, Admin, AdminDeps, AdminLimits};
use crate::hub::{CloseReason, Hub, HubDeps, JoinRequest, Session, SignalingConfig};
use crate::ice::IceServersService;
use crate::presence::InProcessPresence;
use crate::rooms::{RoomDeps, RoomLimits, RoomService};
use crate::testing::{FastHasher, ManualClock, MemoryStore};
use crate::AppError;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));

struct Harness {
    admin: Admin,
    store: Arc<MemoryStore>,
    hub: Arc<Hub>,
    clock: Arc<ManualClock>,
    /// Accounts the hub was told an admin changed.
    forgotten: Arc<Mutex<Vec<UserId>>>,
}

fn harness() -> Harness {
    let store = Arc::new(MemoryStore::default());
    let presence = Arc::new(InProcessPresence::default());
    let clock = Arc::new(ManualClock::default());
    let rooms = Arc::new(RoomService::new(
        RoomDeps {
            rooms: store.clone(),
            chat: store.clone(),
            presence: presence.clone(),
            clock: clock.clone(),
        },
        RoomLimits::default(),
    ));
    let hub = Hub::new(
        HubDeps {
            rooms: rooms.clone(),
            chat: store.clone(),
            moderation: store.clone(),
            access: store.clone(),
            presence: presence.clone(),
            cluster: None,
            ice: Arc::new(IceServersService::new(vec![], vec![], clock.clone())),
            media: None,
            recorder: None,
            clock: clock.clone(),
        },
        SignalingConfig::default(),
    );
    let forgotten = Arc::new(Mutex::new(Vec::new()));
    let seen = forgotten.clone();
    hub.on_account_change(move |user| seen.lock().unwrap().push(user));
    let admin = Admin::new(
        AdminDeps {
            users: store.clone(),
            store: store.clone(),
            rooms,
            hub: hub.clone(),
            presence,
            hasher: Arc::new(FastHasher::default()),
            clock: clock.clone(),
        },
        AdminLimits::default(),
    );
    Harness {
        admin,
        store,
        hub,
        clock,
        forgotten,
    }
}

impl Harness {
    /// An account made an admin directly in storage.
    async fn admin_user(&self, name: &str) -> User {
        let user = self.store.add_user(name);
        let boot = Actor {
            id: user.id,
            username: "boot".into(),
        };
        let entry = self.admin.entry(&boot, "test.setup", name, None);
        self.store
            .set_role(user.id, Role::Admin, entry)
            .await
            .unwrap();
        self.user(user.id).await
    }

    async fn user(&self, id: UserId) -> User {
        self.store
            .find_by_id(id)
            .await
            .unwrap()
            .expect("an account")
    }

    async fn actor(&self, user: &User) -> Actor {
        let user = self.user(user.id).await;
        self.admin.admit(&user, Access::Change).unwrap()
    }

    async fn join(&self, user: &User, room: &str) -> Result<Session, AppError> {
        self.hub
            .join(JoinRequest {
                room: RoomName::parse(room).unwrap(),
                user_id: user.id,
                username: user.username.as_str().to_owned(),
                login: Uuid::new_v4(),
                role: user.role,
                guest: false,
                resume: None,
                pass: None,
                admitted: false,
                sfu: false,
            })
            .await
    }

    async fn actions(&self) -> Vec<String> {
        let page = self.store.audit_page(None, 100).await.unwrap();
        page.into_iter().rev().map(|e| e.action).collect()
    }
}

fn closed(session: &Session) -> Option<CloseReason> {
    *session.close.borrow()
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

#[tokio::test]
async fn only_admins_are_admitted_within_their_budget() {
    let h = harness();
    let member = h.store.add_user("bob");
    assert!(matches!(
        h.admin.admit(&member, Access::Read),
        Err(AppError::Forbidden)
    ));
    let root = h.admin_user("root").await;
    let limits = AdminLimits::default();
    for _ in 0..limits.changes_per_minute {
        h.admin.admit(&root, Access::Change).unwrap();
    }
    assert!(matches!(
        h.admin.admit(&root, Access::Change),
        Err(AppError::TooManyRequests { .. })
    ));
    // Reads have the rest of the larger budget.
    for _ in limits.changes_per_minute + 1..limits.requests_per_minute {
        h.admin.admit(&root, Access::Read).unwrap();
    }
    assert!(matches!(
        h.admin.admit(&root, Access::Read),
        Err(AppError::TooManyRequests { .. })
    ));
    h.clock.advance(chrono::Duration::minutes(1));
    h.admin.admit(&root, Access::Change).unwrap();
}

#[tokio::test]
async fn a_ban_closes_the_users_calls_and_is_audited() {
    let h = harness();
    let root = h.admin_user("root").await;
    let bob = h.store.add_user("bob");
    let actor = h.actor(&root).await;
    let session = h.join(&bob, "standup").await.unwrap();
    let carol = h.store.add_user("carol");
    let other = h.join(&carol, "standup").await.unwrap();

    assert!(matches!(
        h.admin.ban(&actor, root.id).await,
        Err(AppError::CannotBanSelf)
    ));
    assert!(matches!(
        h.admin.ban(&actor, UserId::new_random()).await,
        Err(AppError::UserNotFound)
    ));
    h.admin.ban(&actor, bob.id).await.unwrap();
    assert_eq!(closed(&session), Some(CloseReason::Banned));
    assert_eq!(closed(&other), None);
    assert!(h.user(bob.id).await.banned_at.is_some());
    assert_eq!(*h.forgotten.lock().unwrap(), [bob.id]);
    // A banned admin is no admin.
    assert!(matches!(
        h.admin.admit(&h.user(bob.id).await, Access::Read),
        Err(AppError::Forbidden)
    ));

    h.admin.unban(&actor, bob.id).await.unwrap();
    assert_eq!(h.user(bob.id).await.banned_at, None);
    assert_eq!(h.actions().await, ["test.setup", "user.ban", "user.unban"]);
}

#[tokio::test]
async fn the_last_admin_stays_an_admin() {
    let h = harness();
    let root = h.admin_user("root").await;
    let actor = h.actor(&root).await;
    let bob = h.store.add_user("bob");
    assert!(matches!(
        h.admin.set_role(&actor, root.id, Role::Member).await,
        Err(AppError::LastAdmin)
    ));
    assert!(matches!(
        h.admin.delete_user(&actor, root.id).await,
        Err(AppError::LastAdmin)
    ));
    h.admin.set_role(&actor, bob.id, Role::Admin).await.unwrap();
    h.admin
        .set_role(&actor, root.id, Role::Member)
        .await
        .unwrap();
    assert_eq!(h.user(root.id).await.role, Role::Member);
    assert_eq!(h.user(bob.id).await.role, Role::Admin);
    let entries = h.store.audit_page(None, 1).await.unwrap();
    assert_eq!(entries[0].detail.as_deref(), Some("admin -> member"));
    assert_eq!(entries[0].target, "root");
    // Refusals are not audited.
    assert_eq!(h.actions().await, ["test.setup", "user.role", "user.role"]);
}

#[tokio::test]
async fn a_deleted_account_takes_its_rooms_and_calls_with_it() {
    let h = harness();
    let root = h.admin_user("root").await;
    let actor = h.actor(&root).await;
    let bob = h.store.add_user("bob");
    let carol = h.store.add_user("carol");
    let own = h.join(&bob, "bobs-room").await.unwrap();
    let guest = h.join(&carol, "bobs-room").await.unwrap();
    let _host = h.join(&carol, "carols-room").await.unwrap();
    let elsewhere = h.join(&bob, "carols-room").await.unwrap();

    h.admin.delete_user(&actor, bob.id).await.unwrap();
    assert_eq!(closed(&guest), Some(CloseReason::RoomDeleted));
    assert!(closed(&own).is_some());
    assert_eq!(closed(&elsewhere), Some(CloseReason::TokenRevoked));
    assert!(h.store.find_by_id(bob.id).await.unwrap().is_none());
    assert!(h.admin.rooms(&actor, None, 10).await.unwrap().rooms.len() == 1);
    assert_eq!(h.actions().await.last().unwrap(), "user.delete");
}

#[tokio::test]
async fn a_locked_room_sends_newcomers_to_the_lobby_but_not_its_owner_or_those_inside() {
    let h = harness();
    let root = h.admin_user("root").await;
    let actor = h.actor(&root).await;
    let bob = h.store.add_user("bob");
    let carol = h.store.add_user("carol");
    let inside = h.join(&bob, "planning").await.unwrap();

    h.admin
        .lock_room(&actor, &room("planning"), true)
        .await
        .unwrap();
    assert!(matches!(
        h.join(&carol, "planning").await,
        Err(AppError::MustWait)
    ));
    assert_eq!(closed(&inside), None);
    h.join(&bob, "planning").await.unwrap();
    assert!(matches!(
        h.admin.lock_room(&actor, &room("nowhere"), true).await,
        Err(AppError::RoomNotFound)
    ));

    // Given to carol, she may come in though it is locked.
    h.admin
        .set_owner(&actor, &room("planning"), carol.id)
        .await
        .unwrap();
    let session = h.join(&carol, "planning").await.unwrap();
    assert_eq!(session.welcome.owner_id, carol.id);
    h.admin
        .lock_room(&actor, &room("planning"), false)
        .await
        .unwrap();
    h.join(&root, "planning").await.unwrap();
    assert_eq!(
        h.actions().await,
        ["test.setup", "room.lock", "room.owner", "room.unlock"]
    );
}

#[tokio::test]
async fn an_ended_call_closes_everyone_and_keeps_the_room() {
    let h = harness();
    let root = h.admin_user("root").await;
    let actor = h.actor(&root).await;
    let bob = h.store.add_user("bob");
    let session = h.join(&bob, "retro").await.unwrap();
    assert_eq!(h.admin.live_calls(&actor).await.unwrap().len(), 1);
    h.admin.end_call(&actor, &room("retro")).await.unwrap();
    assert_eq!(closed(&session), Some(CloseReason::RoomDeleted));
    assert!(h.admin.live_calls(&actor).await.unwrap().is_empty());
    assert_eq!(
        h.admin.rooms(&actor, None, 10).await.unwrap().rooms.len(),
        1
    );
    h.admin.delete_room(&actor, &room("retro")).await.unwrap();
    assert!(h
        .admin
        .rooms(&actor, None, 10)
        .await
        .unwrap()
        .rooms
        .is_empty());
    assert!(matches!(
        h.admin.end_call(&actor, &room("retro")).await,
        Err(AppError::RoomNotFound)
    ));
}

#[tokio::test]
async fn a_reset_link_works_once_for_a_day_and_the_newest_only() {
    let h = harness();
    let root = h.admin_user("root").await;
    let actor = h.actor(&root).await;
    let bob = h.store.add_user("bob");
    let session = h.join(&bob, "desk").await.unwrap();
    let token = |link: &super::ResetLink| Some(link.token.expose_secret().to_owned());
    let password = || Some("a brand new password".to_owned());

    let older = h.admin.reset_link(&actor, bob.id).await.unwrap();
    let link = h.admin.reset_link(&actor, bob.id).await.unwrap();
    assert_eq!(link.expires_at, h.clock.now() + chrono::Duration::hours(24));
    assert!(link.token.expose_secret().len() >= 32);
    assert!(matches!(
        h.admin
            .reset_password(token(&older), password(), CLIENT)
            .await,
        Err(AppError::ResetLinkInvalid)
    ));
    h.admin
        .reset_password(token(&link), password(), CLIENT)
        .await
        .unwrap();
    assert_eq!(closed(&session), Some(CloseReason::TokenRevoked));
    let reset = h.user(bob.id).await;
    assert_eq!(reset.tokens_valid_from, Some(h.clock.now()));
    assert!(!reset.accepts_token_from(h.clock.now() - chrono::Duration::seconds(1)));
    let hasher = FastHasher::default();
    let new = webcall_domain::model::Password::parse("a brand new password".into()).unwrap();
    let (_, stored) = h
        .store
        .find_for_login(&webcall_domain::model::LoginIdentifier::Username(
            bob.username.clone(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(hasher.verify(&new, Some(&stored)).await.unwrap());
    assert!(matches!(
        h.admin
            .reset_password(token(&link), password(), CLIENT)
            .await,
        Err(AppError::ResetLinkInvalid)
    ));

    let late = h.admin.reset_link(&actor, bob.id).await.unwrap();
    h.clock.advance(chrono::Duration::hours(24));
    assert!(matches!(
        h.admin
            .reset_password(token(&late), password(), CLIENT)
            .await,
        Err(AppError::ResetLinkInvalid)
    ));
}

#[tokio::test]
async fn reset_attempts_are_limited_per_address() {
    let h = harness();
    for _ in 0..super::RESETS_PER_ADDRESS {
        assert!(matches!(
            h.admin
                .reset_password(Some("guess".into()), Some("long enough pw".into()), CLIENT)
                .await,
            Err(AppError::ResetLinkInvalid)
        ));
    }
    assert!(matches!(
        h.admin
            .reset_password(Some("guess".into()), Some("long enough pw".into()), CLIENT)
            .await,
        Err(AppError::TooManyAttempts { .. })
    ));
}

#[tokio::test]
async fn users_are_found_by_name_or_address_a_page_at_a_time() {
    let h = harness();
    let root = h.admin_user("root").await;
    let actor = h.actor(&root).await;
    for name in ["alice", "Alfred", "bob"] {
        h.store.add_user(name);
    }
    let bob = h.store.add_user("walter");
    let _call = h.join(&bob, "lobby").await.unwrap();
    let page = h.admin.users(&actor, Some("AL"), None, 2).await.unwrap();
    let names: Vec<&str> = page
        .users
        .iter()
        .map(|u| u.user.username.as_str())
        .collect();
    assert_eq!(names, ["Alfred", "alice"]);
    let next = page.next_cursor.as_deref();
    let rest = h.admin.users(&actor, Some("al"), next, 2).await.unwrap();
    assert_eq!(rest.users.len(), 1);
    assert!(rest.users[0].online);
    assert_eq!(rest.next_cursor, None);
    assert!(matches!(
        h.admin.users(&actor, Some(&"x".repeat(300)), None, 2).await,
        Err(AppError::Domain(_))
    ));
}

#[tokio::test]
async fn a_changed_account_is_forgotten_and_read_again() {
    let h = harness();
    let root = h.admin_user("root").await;
    let bob = h.store.add_user("bob");
    let cache = crate::auth_cache::CachedUsers::new(h.store.clone(), h.clock.clone(), 16);
    let banned = |user: Option<User>| user.unwrap().banned_at.is_some();
    assert!(!banned(cache.find_by_id(bob.id).await.unwrap()));
    let actor = h.actor(&root).await;
    h.admin.ban(&actor, bob.id).await.unwrap();
    // The hub is told (every instance's hook makes its cache forget it);
    // until a cache forgets, it holds the copy from before.
    assert_eq!(*h.forgotten.lock().unwrap(), [bob.id]);
    assert!(!banned(cache.find_by_id(bob.id).await.unwrap()));
    cache.forget(bob.id);
    assert!(banned(cache.find_by_id(bob.id).await.unwrap()));
}
