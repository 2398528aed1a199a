//! The guest-link use cases on the in-memory store, with a manual clock.

use std::sync::Arc;

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use webcall_domain::admin::AdminRepository;
use webcall_domain::admin::NewAuditEntry;
use webcall_domain::guests::InviteId;
use webcall_domain::model::{Role, User};
use webcall_domain::ports::{Clock, RoomRepository, UserRepository};
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use super::{Guests, GuestsDeps, NewLink, GUEST_TOKEN_LIFETIME};
use crate::presence::InProcessPresence;
use crate::rooms::{RoomDeps, RoomLimits, RoomService};
use crate::testing::{ManualClock, MemoryGuestTokens, MemoryInvites, MemoryStore};
use crate::AppError;

struct Harness {
    guests: Guests,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    owner: User,
    member: User,
    room: RoomName,
}

async fn harness() -> Harness {
    let store = Arc::new(MemoryStore::default());
    let clock = Arc::new(ManualClock::default());
    let rooms = Arc::new(RoomService::new(
        RoomDeps {
            rooms: store.clone(),
            chat: store.clone(),
            presence: Arc::new(InProcessPresence::default()),
            clock: clock.clone(),
        },
        RoomLimits::default(),
    ));
    let guests = Guests::new(GuestsDeps {
        invites: Arc::new(MemoryInvites::new(store.clone())),
        rooms: rooms.clone(),
        tokens: Arc::new(MemoryGuestTokens::new(GUEST_TOKEN_LIFETIME)),
        clock: clock.clone(),
    });
    let owner = store.add_user("owner");
    let member = store.add_user("member");
    let room = RoomName::parse("standup").unwrap();
    rooms.create(&room, owner.id).await.unwrap();
    Harness {
        guests,
        store,
        clock,
        owner,
        member,
        room,
    }
}

impl Harness {
    async fn link(&self, max_uses: Option<u32>) -> (InviteId, String) {
        let link = NewLink {
            expires_in_secs: Some(3600),
            max_uses,
        };
        let made = self
            .guests
            .create(&self.owner, &self.room, link)
            .await
            .unwrap();
        (made.invite.id, made.token.expose_secret().to_owned())
    }

    async fn admin(&self) -> User {
        let user = self.store.add_user("root");
        let entry = NewAuditEntry {
            at: self.clock.now(),
            actor: user.id,
            actor_name: "root".into(),
            action: "test.setup",
            target: "root".into(),
            detail: None,
        };
        self.store
            .set_role(user.id, Role::Admin, entry)
            .await
            .unwrap();
        self.store.find_by_id(user.id).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn the_owner_makes_lists_and_revokes_links_and_a_member_may_not() {
    let h = harness().await;
    let (id, token) = h.link(Some(5)).await;
    assert_eq!(token.len(), 64, "two UUIDs' worth of random hex");
    let listed = h.guests.list(&h.owner, &h.room).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id, listed[0].max_uses, listed[0].uses),
        (id, Some(5), 0)
    );
    assert_eq!(listed[0].expires_at, h.clock.now() + Duration::hours(1));

    let member = &h.member;
    assert!(matches!(
        h.guests
            .create(member, &h.room, NewLink::default())
            .await
            .unwrap_err(),
        AppError::NotRoomOwner
    ));
    assert!(matches!(
        h.guests.list(member, &h.room).await.unwrap_err(),
        AppError::NotRoomOwner
    ));
    assert!(matches!(
        h.guests.revoke(member, &h.room, id).await.unwrap_err(),
        AppError::NotRoomOwner
    ));

    h.guests.revoke(&h.owner, &h.room, id).await.unwrap();
    assert!(h.guests.list(&h.owner, &h.room).await.unwrap().is_empty());
    assert!(matches!(
        h.guests.revoke(&h.owner, &h.room, id).await.unwrap_err(),
        AppError::InviteNotFound
    ));
    assert!(matches!(
        h.guests.join(&token, "Anna").await.unwrap_err(),
        AppError::InviteNotFound
    ));
}

#[tokio::test]
async fn an_admin_manages_any_rooms_links() {
    let h = harness().await;
    let admin = h.admin().await;
    let made = h
        .guests
        .create(&admin, &h.room, NewLink::default())
        .await
        .unwrap();
    assert_eq!(
        made.invite.expires_at,
        h.clock.now() + Duration::days(1),
        "a day by default"
    );
    assert_eq!(made.invite.max_uses, None);
    assert_eq!(h.guests.list(&admin, &h.room).await.unwrap().len(), 1);
    h.guests
        .revoke(&admin, &h.room, made.invite.id)
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_lifetimes_and_use_limits_are_refused_by_field() {
    let h = harness().await;
    let cases = [
        (Some(60), None, "expires_in"),
        (Some(31 * 86400), None, "expires_in"),
        (Some(-5), None, "expires_in"),
        (None, Some(0), "max_uses"),
        (None, Some(1001), "max_uses"),
    ];
    for (expires_in_secs, max_uses, expected) in cases {
        let link = NewLink {
            expires_in_secs,
            max_uses,
        };
        match h.guests.create(&h.owner, &h.room, link).await {
            Err(AppError::Domain(DomainError::Invalid { field, .. })) => {
                assert_eq!(field, expected)
            }
            other => panic!("{expires_in_secs:?}/{max_uses:?}: {other:?}"),
        }
    }
    let missing = RoomName::parse("nowhere").unwrap();
    assert!(matches!(
        h.guests
            .create(&h.owner, &missing, NewLink::default())
            .await
            .unwrap_err(),
        AppError::RoomNotFound
    ));
    assert!(h.guests.list(&h.owner, &h.room).await.unwrap().is_empty());
}

#[tokio::test]
async fn each_guest_token_counts_one_use_up_to_the_limit() {
    let h = harness().await;
    let (_, token) = h.link(Some(2)).await;
    let invite = h.guests.preview(&token).await.unwrap();
    assert_eq!((invite.room.as_str(), invite.uses), ("standup", 0));
    let first = h.guests.join(&token, " Anna  K. ").await.unwrap();
    let second = h.guests.join(&token, "Anna K.").await.unwrap();
    assert_eq!(first.claims.name.as_str(), "Anna K.");
    assert_ne!(
        first.claims.guest_id, second.claims.guest_id,
        "a fresh guest id per token"
    );
    assert!(matches!(
        h.guests.join(&token, "Third").await.unwrap_err(),
        AppError::InviteUsedUp
    ));
    assert!(matches!(
        h.guests.preview(&token).await.unwrap_err(),
        AppError::InviteUsedUp
    ));
    assert_eq!(h.guests.list(&h.owner, &h.room).await.unwrap()[0].uses, 2);
}

#[tokio::test]
async fn a_bad_name_or_token_counts_no_use() {
    let h = harness().await;
    let (_, token) = h.link(Some(1)).await;
    match h.guests.join(&token, "<b>").await {
        Err(AppError::Domain(DomainError::Invalid { field, .. })) => assert_eq!(field, "name"),
        other => panic!("{other:?}"),
    }
    for bad in ["", "nope", &token.to_uppercase(), &format!("{token}0")] {
        assert!(matches!(
            h.guests.join(bad, "Anna").await.unwrap_err(),
            AppError::InviteNotFound
        ));
    }
    h.guests.join(&token, "Anna").await.unwrap();
}

#[tokio::test]
async fn an_expired_link_lets_nobody_in() {
    let h = harness().await;
    let (_, token) = h.link(None).await;
    h.clock.advance(Duration::minutes(59));
    h.guests.join(&token, "Anna").await.unwrap();
    h.clock.advance(Duration::minutes(1));
    assert!(matches!(
        h.guests.preview(&token).await.unwrap_err(),
        AppError::InviteExpired
    ));
    assert!(matches!(
        h.guests.join(&token, "Boris").await.unwrap_err(),
        AppError::InviteExpired
    ));
}

#[tokio::test]
async fn a_guest_token_admits_to_its_room_only_and_for_twelve_hours() {
    let h = harness().await;
    let (_, token) = h.link(None).await;
    let issued = h.guests.join(&token, "Anna").await.unwrap();
    let claims = h.guests.admit_to(&issued.token, &h.room).unwrap();
    assert_eq!(claims.guest_id, issued.claims.guest_id);
    let other = RoomName::parse("other").unwrap();
    assert!(matches!(
        h.guests.admit_to(&issued.token, &other).unwrap_err(),
        AppError::Forbidden
    ));
    assert!(matches!(
        h.guests
            .admit_to(&SecretString::from("forged"), &h.room)
            .unwrap_err(),
        AppError::TokenInvalid
    ));
    h.clock.advance(Duration::hours(12));
    assert!(matches!(
        h.guests.admit_to(&issued.token, &h.room).unwrap_err(),
        AppError::TokenExpired
    ));
}

#[tokio::test]
async fn deleting_the_room_takes_its_links() {
    let h = harness().await;
    let (_, token) = h.link(None).await;
    assert!(h.store.delete_room(&h.room).await.unwrap());
    assert!(matches!(
        h.guests.join(&token, "Anna").await.unwrap_err(),
        AppError::InviteNotFound
    ));
}
