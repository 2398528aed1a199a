//! The guest-link storage contract ([`InviteRepository`]), run against a real
//! SQLite file always and PostgreSQL when `TEST_DATABASE_URL` is set: links
//! read back as made, a use is counted only while the link is usable (also
//! when guests race for the last one), revoking and deleting the room remove
//! links.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;
use webcall_db::SqlStore;
use webcall_domain::guests::{Invite, InviteId, InviteRepository, Redeemed};
use webcall_domain::model::{Email, NewUser, PasswordHash, Role, User, UserId, Username};
use webcall_domain::ports::{RoomRepository, UserRepository};
use webcall_domain::signaling::RoomName;

/// A SQLite store, and a PostgreSQL one on a schema of its own when there is a server.
async fn stores(dir: &tempfile::TempDir) -> Vec<(&'static str, SqlStore)> {
    let sqlite = format!("sqlite://{}", dir.path().join("invites.db").display());
    let mut stores = vec![(
        "sqlite",
        SqlStore::connect_and_migrate(&sqlite).await.unwrap(),
    )];
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("test_{}", Uuid::new_v4().simple());
            let admin = SqlStore::connect(&url).await.unwrap();
            admin
                .execute_raw(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
            admin.close().await;
            let sep = if url.contains('?') { '&' } else { '?' };
            let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
            stores.push((
                "postgres",
                SqlStore::connect_and_migrate(&scoped).await.unwrap(),
            ));
        }
        _ => assert!(
            std::env::var("CI").is_err(),
            "CI must set TEST_DATABASE_URL so the PostgreSQL tests run"
        ),
    }
    stores
}

async fn owner_and_room(store: &SqlStore) -> (User, RoomName) {
    let user = User {
        id: UserId::new_random(),
        email: Email::parse("ada@example.org").unwrap(),
        username: Username::parse("ada").unwrap(),
        created_at: Utc.timestamp_millis_opt(1_780_000_000_123).unwrap(),
        role: Role::Member,
        banned_at: None,
        tokens_valid_from: None,
    };
    let user = store
        .insert(NewUser {
            user,
            password_hash: PasswordHash("$argon2id$not-a-real-hash".into()),
        })
        .await
        .unwrap();
    let room = RoomName::parse("team").unwrap();
    store
        .create_room(&room, user.id, Utc::now(), 10)
        .await
        .unwrap();
    (user, room)
}

fn invite(room: &RoomName, by: &User, max_uses: Option<u32>) -> Invite {
    let now = Utc.timestamp_millis_opt(1_780_000_000_456).unwrap();
    Invite {
        id: InviteId::new_random(),
        room: room.clone(),
        created_by: by.id,
        created_at: now,
        expires_at: now + Duration::hours(1),
        max_uses,
        uses: 0,
    }
}

#[tokio::test]
async fn links_read_back_count_uses_within_limit_and_expiry_and_go_when_revoked() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in stores(&dir).await {
        let (ada, room) = owner_and_room(&store).await;
        let limited = invite(&room, &ada, Some(2));
        assert!(store.create_invite(&limited, "hash-a").await.unwrap());
        let mut later = invite(&room, &ada, None);
        later.created_at += Duration::seconds(1);
        assert!(store.create_invite(&later, "hash-b").await.unwrap());
        let gone = RoomName::parse("nowhere").unwrap();
        assert!(!store
            .create_invite(&invite(&gone, &ada, None), "hash-c")
            .await
            .unwrap());

        let listed = store.list_invites(&room).await.unwrap();
        assert_eq!(listed, vec![later.clone(), limited.clone()], "{backend}");
        assert_eq!(
            store.find_invite("hash-a").await.unwrap(),
            Some(limited.clone())
        );
        assert_eq!(store.find_invite("hash-x").await.unwrap(), None);

        let now = limited.created_at;
        for uses in 1..=2 {
            match store.redeem_invite("hash-a", now).await.unwrap() {
                Redeemed::Admitted(invite) => assert_eq!(invite.uses, uses, "{backend}"),
                other => panic!("{backend}: {other:?}"),
            }
        }
        assert_eq!(
            store.redeem_invite("hash-a", now).await.unwrap(),
            Redeemed::UsedUp
        );
        assert_eq!(
            store
                .redeem_invite("hash-b", later.expires_at)
                .await
                .unwrap(),
            Redeemed::Expired,
            "{backend}"
        );
        assert_eq!(
            store.redeem_invite("hash-x", now).await.unwrap(),
            Redeemed::NotFound
        );
        assert_eq!(store.find_invite("hash-a").await.unwrap().unwrap().uses, 2);

        assert!(store.delete_invite(&room, limited.id).await.unwrap());
        assert!(!store.delete_invite(&room, limited.id).await.unwrap());
        assert!(!store.delete_invite(&gone, later.id).await.unwrap());
        assert_eq!(
            store.redeem_invite("hash-a", now).await.unwrap(),
            Redeemed::NotFound
        );
        // The room takes its links with it.
        assert!(store.delete_room(&room).await.unwrap());
        assert_eq!(
            store.find_invite("hash-b").await.unwrap(),
            None,
            "{backend}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn guests_racing_for_the_last_uses_get_exactly_that_many() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in stores(&dir).await {
        let store = Arc::new(store);
        let (ada, room) = owner_and_room(&store).await;
        let link = invite(&room, &ada, Some(3));
        assert!(store.create_invite(&link, "race").await.unwrap());
        let tries = (0..12).map(|_| {
            let store = store.clone();
            let now = link.created_at;
            tokio::spawn(async move { store.redeem_invite("race", now).await.unwrap() })
        });
        let mut admitted = 0;
        for attempt in tries {
            match attempt.await.unwrap() {
                Redeemed::Admitted(_) => admitted += 1,
                Redeemed::UsedUp => {}
                other => panic!("{backend}: {other:?}"),
            }
        }
        assert_eq!(admitted, 3, "{backend}");
        assert_eq!(store.find_invite("race").await.unwrap().unwrap().uses, 3);
        store.close().await;
    }
}
