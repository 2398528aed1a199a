//! The access use cases on the in-memory store: what the room list and a room
//! show each caller, members, the room password and its throttle, bans.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::Utc;
use webcall_domain::access::Access;
use webcall_domain::model::{Role, UserId};
use webcall_domain::ports::{RoomModeration, RoomRepository};
use webcall_domain::signaling::RoomName;

use super::*;
use crate::hub::{Hub, HubDeps, SignalingConfig};
use crate::ice::IceServersService;
use crate::presence::InProcessPresence;
use crate::rooms::{RoomDeps, RoomLimits, RoomService};
use crate::testing::{FastHasher, ManualClock, MemoryStore};
use crate::throttle::ThrottleConfig;

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
            media: None,
            recorder: None,
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
        sfu: false,
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
