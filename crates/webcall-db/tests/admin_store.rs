//! The admin storage contract ([`AdminRepository`], and the first account as
//! an admin), run against a real SQLite file always and PostgreSQL when
//! `TEST_DATABASE_URL` is set: changes and their audit entries together, never
//! a change that leaves no admin (also when two race), searches, reset links.

use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;
use webcall_db::SqlStore;
use webcall_domain::admin::{AccountChange, AdminRepository, NewAuditEntry, OwnerChange};
use webcall_domain::model::{Email, NewUser, PasswordHash, Role, User, UserId, Username};
use webcall_domain::ports::{RoomRepository, UserRepository};
use webcall_domain::signaling::RoomName;

/// A SQLite store, and a PostgreSQL one on a schema of its own when there is a server.
async fn stores(dir: &tempfile::TempDir) -> Vec<(&'static str, SqlStore)> {
    let sqlite = format!("sqlite://{}", dir.path().join("admin.db").display());
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

fn new_user(name: &str) -> NewUser {
    NewUser {
        user: User {
            id: UserId::new_random(),
            email: Email::parse(&format!("{name}@example.org")).unwrap(),
            username: Username::parse(name).unwrap(),
            created_at: Utc.timestamp_millis_opt(1_780_000_000_123).unwrap(),
            role: Role::Member,
            banned_at: None,
            tokens_valid_from: None,
        },
        password_hash: PasswordHash("$argon2id$not-a-real-hash".into()),
    }
}

fn entry(action: &'static str, target: &str) -> NewAuditEntry {
    NewAuditEntry {
        at: Utc.timestamp_millis_opt(1_780_000_100_000).unwrap(),
        actor: UserId::new_random(),
        actor_name: "root".into(),
        action,
        target: target.into(),
        detail: None,
    }
}

async fn actions(store: &SqlStore) -> Vec<String> {
    let entries = store.audit_page(None, 100).await.unwrap();
    entries.into_iter().rev().map(|e| e.action).collect()
}

#[tokio::test]
async fn two_first_accounts_stored_at_once_make_one_admin() {
    let dir = tempfile::tempdir().unwrap();
    for (name, store) in stores(&dir).await {
        for round in 0..20 {
            store.execute_raw("DELETE FROM users").await.unwrap();
            let (a, b) = tokio::join!(store.insert(new_user("ann")), store.insert(new_user("ben")));
            let (a, b) = (a.unwrap(), b.unwrap());
            let admins = [&a, &b].iter().filter(|u| u.role == Role::Admin).count();
            assert_eq!(admins, 1, "{name} round {round}");
            let stored = store.find_by_id(a.id).await.unwrap().unwrap();
            assert_eq!(stored.role, a.role, "{name}: what insert said is stored");
        }
        // A later account is a member unless it asks to be an admin (ADMIN_EMAILS).
        assert_eq!(
            store.insert(new_user("cid")).await.unwrap().role,
            Role::Member
        );
        let mut listed = new_user("dee");
        listed.user.role = Role::Admin;
        assert_eq!(store.insert(listed).await.unwrap().role, Role::Admin);
        store.close().await;
    }
}

#[tokio::test]
async fn no_change_leaves_no_admin_and_a_refused_one_leaves_no_entry() {
    let dir = tempfile::tempdir().unwrap();
    for (name, store) in stores(&dir).await {
        let root = store.insert(new_user("root")).await.unwrap();
        let bob = store.insert(new_user("bob")).await.unwrap();
        assert!(store.is_last_admin(root.id).await.unwrap(), "{name}");
        assert!(!store.is_last_admin(bob.id).await.unwrap(), "{name}");
        let demote = |id| store.set_role(id, Role::Member, entry("user.role", "x"));
        assert_eq!(
            demote(root.id).await.unwrap(),
            AccountChange::LastAdmin,
            "{name}"
        );
        let ban = store.set_banned(root.id, Some(Utc::now()), entry("user.ban", "root"));
        assert_eq!(ban.await.unwrap(), AccountChange::LastAdmin, "{name}");
        let delete = store.delete_user(root.id, entry("user.delete", "root"));
        assert_eq!(delete.await.unwrap(), AccountChange::LastAdmin, "{name}");
        let missing = store.set_role(UserId::new_random(), Role::Admin, entry("user.role", "?"));
        assert_eq!(missing.await.unwrap(), AccountChange::NotFound, "{name}");
        assert!(
            actions(&store).await.is_empty(),
            "{name}: nothing was changed"
        );

        // Two admins demoting each other at once: one of them stays.
        let promote = store.set_role(bob.id, Role::Admin, entry("user.role", "bob"));
        assert_eq!(promote.await.unwrap(), AccountChange::Done);
        assert!(!store.is_last_admin(root.id).await.unwrap(), "{name}");
        let (a, b) = tokio::join!(demote(root.id), demote(bob.id));
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| *o == AccountChange::Done);
        assert_eq!(
            outcomes,
            [AccountChange::LastAdmin, AccountChange::Done],
            "{name}"
        );
        let admins = store.search_users(None, None, 10).await.unwrap();
        assert_eq!(
            admins.iter().filter(|u| u.role == Role::Admin).count(),
            1,
            "{name}"
        );
        assert_eq!(actions(&store).await, ["user.role", "user.role"], "{name}");

        // A banned admin is no admin: the other one cannot go.
        let (admin, member) = if admins[0].role == Role::Admin {
            (admins[0].id, admins[1].id)
        } else {
            (admins[1].id, admins[0].id)
        };
        let promote = store.set_role(member, Role::Admin, entry("user.role", "m"));
        assert_eq!(promote.await.unwrap(), AccountChange::Done);
        let at = Utc.timestamp_millis_opt(1_780_000_200_000).unwrap();
        let ban = store.set_banned(member, Some(at), entry("user.ban", "m"));
        assert_eq!(ban.await.unwrap(), AccountChange::Done);
        assert_eq!(
            store.find_by_id(member).await.unwrap().unwrap().banned_at,
            Some(at)
        );
        assert_eq!(
            demote(admin).await.unwrap(),
            AccountChange::LastAdmin,
            "{name}"
        );
        let unban = store.set_banned(member, None, entry("user.unban", "m"));
        assert_eq!(unban.await.unwrap(), AccountChange::Done);
        let delete = store.delete_user(admin, entry("user.delete", "a"));
        assert_eq!(delete.await.unwrap(), AccountChange::Done, "{name}");
        assert!(store.find_by_id(admin).await.unwrap().is_none());
        store.close().await;
    }
}

#[tokio::test]
async fn users_are_searched_by_name_or_address_in_username_order() {
    let dir = tempfile::tempdir().unwrap();
    for (name, store) in stores(&dir).await {
        for user in ["zed", "Alfred", "alice", "a_b", "axb"] {
            store.insert(new_user(user)).await.unwrap();
        }
        let names = |users: Vec<User>| -> Vec<String> {
            users
                .iter()
                .map(|u| u.username.as_str().to_owned())
                .collect()
        };
        let all = names(store.search_users(None, None, 10).await.unwrap());
        assert_eq!(
            all,
            ["a_b", "alfred", "alice", "axb", "zed"]
                .map(|n| { all.iter().find(|a| a.to_lowercase() == n).unwrap().clone() }),
            "{name}"
        );
        let page = names(
            store
                .search_users(Some("AL"), Some("alfred"), 10)
                .await
                .unwrap(),
        );
        assert_eq!(page, ["alice"], "{name}");
        // `_` and `%` are plain characters, not wildcards.
        let literal = names(store.search_users(Some("a_"), None, 10).await.unwrap());
        assert_eq!(literal, ["a_b"], "{name}");
        assert!(store
            .search_users(Some("%"), None, 10)
            .await
            .unwrap()
            .is_empty());
        let by_mail = names(
            store
                .search_users(Some("ZED@EXAMPLE"), None, 10)
                .await
                .unwrap(),
        );
        assert_eq!(by_mail, ["zed"], "{name}");
        store.close().await;
    }
}

#[tokio::test]
async fn rooms_are_locked_given_away_and_deleted_with_their_entries() {
    let dir = tempfile::tempdir().unwrap();
    for (name, store) in stores(&dir).await {
        let bob = store.insert(new_user("bob")).await.unwrap();
        let carol = store.insert(new_user("carol")).await.unwrap();
        let room = RoomName::parse("planning").unwrap();
        store
            .create_room(&room, bob.id, Utc::now(), 10)
            .await
            .unwrap();
        assert!(!store.find_room(&room).await.unwrap().unwrap().locked);
        assert!(store
            .set_room_locked(&room, true, entry("room.lock", "planning"))
            .await
            .unwrap());
        assert!(
            store.find_room(&room).await.unwrap().unwrap().locked,
            "{name}"
        );
        let nowhere = RoomName::parse("nowhere").unwrap();
        assert!(!store
            .set_room_locked(&nowhere, true, entry("room.lock", "x"))
            .await
            .unwrap());

        let give = store.set_room_owner(&room, carol.id, entry("room.owner", "planning"));
        assert_eq!(give.await.unwrap(), OwnerChange::Done);
        let stored = store.find_room(&room).await.unwrap().unwrap();
        assert_eq!(
            (stored.owner, stored.owner_name.as_str()),
            (carol.id, "carol")
        );
        let nobody = store.set_room_owner(&room, UserId::new_random(), entry("room.owner", "x"));
        assert_eq!(nobody.await.unwrap(), OwnerChange::NoSuchUser);
        let no_room = store.set_room_owner(&nowhere, carol.id, entry("room.owner", "x"));
        assert_eq!(no_room.await.unwrap(), OwnerChange::NoSuchRoom);

        assert!(store
            .delete_room_audited(&room, entry("room.delete", "planning"))
            .await
            .unwrap());
        assert!(store.find_room(&room).await.unwrap().is_none());
        assert!(!store
            .delete_room_audited(&room, entry("room.delete", "planning"))
            .await
            .unwrap());
        store.record(entry("room.end", "elsewhere")).await.unwrap();
        assert_eq!(
            actions(&store).await,
            ["room.lock", "room.owner", "room.delete", "room.end"],
            "{name}"
        );
        // Newest first, a page at a time, by id.
        let newest = store.audit_page(None, 2).await.unwrap();
        assert_eq!(newest[0].action, "room.end");
        assert_eq!(newest[0].target, "elsewhere");
        assert_eq!(newest[0].actor_name, "root");
        let older = store.audit_page(Some(newest[1].id), 10).await.unwrap();
        assert_eq!(older.len(), 2);
        store.close().await;
    }
}

#[tokio::test]
async fn a_reset_link_is_used_once_before_it_expires_and_a_newer_one_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    for (name, store) in stores(&dir).await {
        let bob = store.insert(new_user("bob")).await.unwrap();
        let now = Utc.timestamp_millis_opt(1_780_000_000_500).unwrap();
        let expires = now + Duration::hours(24);
        let reset = |hash: &'static str| {
            store.create_reset(bob.id, hash, expires, entry("user.password_reset", "bob"))
        };
        assert!(reset("old-hash").await.unwrap());
        assert!(reset("new-hash").await.unwrap());
        let nobody = store.create_reset(
            UserId::new_random(),
            "x",
            expires,
            entry("user.password_reset", "x"),
        );
        assert!(!nobody.await.unwrap());
        let new_hash = || PasswordHash("$argon2id$new".into());
        assert_eq!(
            store
                .consume_reset("old-hash", now, new_hash())
                .await
                .unwrap(),
            None,
            "{name}"
        );
        let late = expires + Duration::milliseconds(1);
        assert_eq!(
            store
                .consume_reset("new-hash", late, new_hash())
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .consume_reset("new-hash", now, new_hash())
                .await
                .unwrap(),
            Some(bob.id)
        );
        assert_eq!(
            store
                .consume_reset("new-hash", now, new_hash())
                .await
                .unwrap(),
            None,
            "{name}: once"
        );
        let stored = store.find_by_id(bob.id).await.unwrap().unwrap();
        assert_eq!(stored.tokens_valid_from, Some(now), "{name}");
        assert!(stored.accepts_token_from(Utc.timestamp_opt(1_780_000_001, 0).unwrap()));
        assert!(!stored.accepts_token_from(Utc.timestamp_opt(1_780_000_000, 0).unwrap()));
        let login = webcall_domain::model::LoginIdentifier::Username(bob.username.clone());
        let (_, hash) = store.find_for_login(&login).await.unwrap().unwrap();
        assert_eq!(hash, new_hash());
        assert_eq!(
            actions(&store).await.len(),
            2,
            "{name}: the refused one left no entry"
        );
        store.close().await;
    }
}
