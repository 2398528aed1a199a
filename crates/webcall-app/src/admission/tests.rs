//! The admission decision over every access level × kind of caller × flag,
//! and the access use cases on the in-memory store.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::Utc;
use webcall_domain::access::{Access, RoomAccess};
use webcall_domain::model::{PasswordHash, Role, UserId};
use webcall_domain::ports::{RoomModeration, RoomRepository};
use webcall_domain::signaling::{Room, RoomName};

use super::*;
use crate::hub::{Hub, HubDeps, SignalingConfig};
use crate::ice::IceServersService;
use crate::presence::InProcessPresence;
use crate::rooms::{RoomDeps, RoomLimits, RoomService};
use crate::testing::{FastHasher, ManualClock, MemoryStore};
use crate::throttle::ThrottleConfig;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Owner,
    Admin,
    Member,
    Stranger,
}

const KINDS: [Kind; 4] = [Kind::Owner, Kind::Admin, Kind::Member, Kind::Stranger];

fn room(access: Access, password: bool, ask_to_join: bool, locked: bool, owner: UserId) -> Room {
    Room {
        name: RoomName::parse("r").unwrap(),
        owner,
        owner_name: "owner".into(),
        created_at: Utc::now(),
        locked,
        access: RoomAccess {
            access,
            password: password.then(|| PasswordHash("$argon2id$x".into())),
            ask_to_join,
        },
    }
}

/// What the decision should say, written out rule by rule.
fn expected(kind: Kind, access: Access, password: bool, lobby: bool, facts: Facts) -> Admission {
    if matches!(kind, Kind::Owner | Kind::Admin) {
        return Admission::Admit;
    }
    if facts.banned {
        return Admission::Refuse(Refusal::Banned);
    }
    if access == Access::Private && kind != Kind::Member {
        return Admission::Refuse(Refusal::Private);
    }
    if password && !facts.pass_ok {
        return Admission::Refuse(Refusal::PasswordRequired);
    }
    if lobby && !facts.admitted {
        return Admission::Wait;
    }
    Admission::Admit
}

#[test]
fn every_level_caller_and_flag() {
    let owner = UserId::new_random();
    let mut checked = 0;
    for access in [Access::Public, Access::Unlisted, Access::Private] {
        for kind in KINDS {
            for bits in 0..64u8 {
                let bit = |n: u8| bits & (1 << n) != 0;
                let (password, ask, locked) = (bit(0), bit(1), bit(2));
                let facts = Facts {
                    member: kind == Kind::Member,
                    banned: bit(3),
                    pass_ok: bit(4),
                    admitted: bit(5),
                };
                let caller = Caller {
                    user: if kind == Kind::Owner {
                        owner
                    } else {
                        UserId::new_random()
                    },
                    role: if kind == Kind::Admin {
                        Role::Admin
                    } else {
                        Role::Member
                    },
                };
                let got = decide(&room(access, password, ask, locked, owner), caller, facts);
                let want = expected(kind, access, password, ask || locked, facts);
                assert_eq!(
                    got, want,
                    "{access:?} {kind:?} pw={password} ask={ask} locked={locked} {facts:?}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 4 * 64);
}

#[test]
fn membership_is_asked_only_of_a_private_room_and_not_of_hosts() {
    let owner = UserId::new_random();
    let stranger = Caller {
        user: UserId::new_random(),
        role: Role::Member,
    };
    let admin = Caller {
        role: Role::Admin,
        ..stranger
    };
    let private = room(Access::Private, false, false, false, owner);
    assert!(needs_membership(&private, stranger));
    assert!(!needs_membership(&private, admin));
    assert!(!needs_membership(
        &private,
        Caller {
            user: owner,
            role: Role::Member
        }
    ));
    assert!(!needs_membership(
        &room(Access::Unlisted, false, false, false, owner),
        stranger
    ));
}

struct World {
    store: Arc<MemoryStore>,
    access: AccessService,
    hub: Arc<Hub>,
}

fn world() -> World {
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
            clock: clock.clone(),
        },
        SignalingConfig::default(),
    );
    let access = AccessService::new(
        AccessDeps {
            rooms,
            access: store.clone(),
            moderation: store.clone(),
            users: store.clone(),
            hasher: Arc::new(FastHasher::default()),
            presence,
            clock,
            hub: hub.clone(),
        },
        ThrottleConfig::default(),
    );
    World { store, access, hub }
}

fn caller(user: &webcall_domain::model::User) -> Caller {
    Caller {
        user: user.id,
        role: Role::Member,
    }
}

fn name(raw: &str) -> RoomName {
    RoomName::parse(raw).unwrap()
}

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn the_list_shows_each_caller_what_they_may_see() {
    let w = world();
    let (ann, bob) = (w.store.add_user("ann"), w.store.add_user("bob"));
    for (access, room) in [
        (Access::Public, "open"),
        (Access::Unlisted, "quiet"),
        (Access::Private, "secret"),
    ] {
        let room = name(room);
        let made = w.access.create(caller(&ann), &room, access, None, false);
        made.await.unwrap();
    }
    let names = |rooms: Vec<crate::rooms::RoomSummary>| {
        rooms
            .into_iter()
            .map(|r| r.room.name.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let (seen, _) = w.access.list(caller(&bob), None, 10).await.unwrap();
    assert_eq!(names(seen), ["open"]);
    let (seen, _) = w.access.list(caller(&ann), None, 10).await.unwrap();
    assert_eq!(names(seen), ["open", "quiet", "secret"]);
    w.access
        .add_member(caller(&ann), &name("secret"), "bob")
        .await
        .unwrap();
    let (seen, _) = w.access.list(caller(&bob), None, 10).await.unwrap();
    assert_eq!(names(seen), ["open", "secret"]);
    let root = Caller {
        user: UserId::new_random(),
        role: Role::Admin,
    };
    let (seen, more) = w.access.list(root, None, 2).await.unwrap();
    assert_eq!(
        (names(seen), more),
        (vec!["open".to_owned(), "quiet".to_owned()], true)
    );
}

#[tokio::test]
async fn a_private_room_refuses_strangers_until_invited_and_after_removal() {
    let w = world();
    let (ann, bob) = (w.store.add_user("ann"), w.store.add_user("bob"));
    w.access
        .create(caller(&ann), &name("secret"), Access::Private, None, false)
        .await
        .unwrap();
    assert!(matches!(
        w.access.view(caller(&bob), &name("secret"), None).await,
        Err(AppError::RoomPrivate)
    ));
    let join = crate::hub::JoinRequest {
        room: name("secret"),
        user_id: bob.id,
        username: "bob".into(),
        login: uuid::Uuid::new_v4(),
        role: Role::Member,
        guest: false,
        resume: None,
        pass: None,
        admitted: false,
    };
    assert!(matches!(
        w.hub.join(join.clone()).await,
        Err(AppError::RoomPrivate)
    ));
    // Only a host may invite.
    assert!(matches!(
        w.access
            .add_member(caller(&bob), &name("secret"), "bob")
            .await,
        Err(AppError::NotRoomOwner)
    ));
    assert!(matches!(
        w.access
            .add_member(caller(&ann), &name("secret"), "nobody")
            .await,
        Err(AppError::UserNotFound)
    ));
    w.access
        .add_member(caller(&ann), &name("secret"), "bob")
        .await
        .unwrap();
    let view = w
        .access
        .view(caller(&bob), &name("secret"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.admission, Admission::Admit);
    assert!(!view.host);
    w.hub.join(join.clone()).await.unwrap();
    let members = w
        .access
        .members(caller(&ann), &name("secret"))
        .await
        .unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.username.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );
    w.access
        .remove_member(caller(&ann), &name("secret"), "bob")
        .await
        .unwrap();
    assert!(matches!(
        w.hub
            .join(crate::hub::JoinRequest {
                login: uuid::Uuid::new_v4(),
                ..join
            })
            .await,
        Err(AppError::RoomPrivate)
    ));
}

#[tokio::test]
async fn a_room_password_buys_a_pass_and_guesses_are_throttled() {
    let w = world();
    let (ann, bob, eve) = (
        w.store.add_user("ann"),
        w.store.add_user("bob"),
        w.store.add_user("eve"),
    );
    let room = name("locked-up");
    w.access
        .create(
            caller(&ann),
            &room,
            Access::Unlisted,
            Some("open sesame".into()),
            false,
        )
        .await
        .unwrap();
    let stored = w.store.find_room(&room).await.unwrap().unwrap();
    assert_ne!(
        stored.access.password.as_ref().unwrap().0,
        "open sesame",
        "stored hashed"
    );
    let view = w
        .access
        .view(caller(&bob), &room, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.admission, Admission::Refuse(Refusal::PasswordRequired));
    assert!(matches!(
        w.access
            .unlock(caller(&bob), &room, "wrong".into(), HOME)
            .await,
        Err(AppError::RoomPasswordWrong)
    ));
    let (pass, _) = w
        .access
        .unlock(caller(&bob), &room, "open sesame".into(), HOME)
        .await
        .unwrap();
    let view = w
        .access
        .view(caller(&bob), &room, Some(&pass))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.admission, Admission::Admit);
    // Bob's pass is not Eve's.
    let view = w
        .access
        .view(caller(&eve), &room, Some(&pass))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.admission, Admission::Refuse(Refusal::PasswordRequired));
    // Five wrong guesses, then even the right one waits.
    for _ in 0..5 {
        assert!(matches!(
            w.access
                .unlock(caller(&eve), &room, "guess".into(), HOME)
                .await,
            Err(AppError::RoomPasswordWrong)
        ));
    }
    assert!(matches!(
        w.access
            .unlock(caller(&eve), &room, "open sesame".into(), HOME)
            .await,
        Err(AppError::TooManyAttempts { .. })
    ));
    // A new password voids the passes bought with the old one.
    w.access
        .change(
            caller(&ann),
            &room,
            None,
            Some(Some("new one".into())),
            None,
        )
        .await
        .unwrap();
    let view = w
        .access
        .view(caller(&bob), &room, Some(&pass))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.admission, Admission::Refuse(Refusal::PasswordRequired));
    // Only hosts change it; removing it opens the room.
    assert!(matches!(
        w.access
            .change(caller(&bob), &room, Some(Access::Public), None, None)
            .await,
        Err(AppError::NotRoomOwner)
    ));
    w.access
        .change(caller(&ann), &room, None, Some(None), None)
        .await
        .unwrap();
    let view = w
        .access
        .view(caller(&bob), &room, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.admission, Admission::Admit);
    assert!(matches!(
        w.access.unlock(caller(&bob), &room, "x".into(), HOME).await,
        Err(AppError::RoomHasNoPassword)
    ));
}

#[tokio::test]
async fn a_banned_caller_is_refused_before_anything_else() {
    let w = world();
    let (ann, bob) = (w.store.add_user("ann"), w.store.add_user("bob"));
    w.access
        .create(caller(&ann), &name("r"), Access::Public, None, true)
        .await
        .unwrap();
    w.store
        .ban_from_room(&name("r"), bob.id, Utc::now())
        .await
        .unwrap();
    assert!(matches!(
        w.access.view(caller(&bob), &name("r"), None).await,
        Err(AppError::BannedFromRoom)
    ));
}
