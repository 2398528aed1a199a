//! The storage contract, run against a real SQLite file always and against
//! PostgreSQL when `TEST_DATABASE_URL` is set (CI sets it; with `CI=true` and no
//! URL the suite fails rather than silently skipping PostgreSQL).

use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;
use webcall_db::SqlStore;
use webcall_domain::model::{
    Email, LoginIdentifier, NewUser, PasswordHash, Role, TokenHolder, User, UserId, Username,
};
use webcall_domain::ports::{HealthCheck, TokenRevocations, UserRepository};
use webcall_domain::DomainError;

/// One store per backend, each on an empty database of its own.
struct Backends {
    stores: Vec<(&'static str, SqlStore)>,
    _dir: tempfile::TempDir,
    pg_schema: Option<(String, String)>,
}

async fn backends() -> Backends {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("test.db").display());
    let mut stores = vec![(
        "sqlite",
        SqlStore::connect_and_migrate(&sqlite_url).await.unwrap(),
    )];
    let mut pg_schema = None;
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let (store, schema) = postgres_in_fresh_schema(&url).await;
            stores.push(("postgres", store));
            pg_schema = Some((url, schema));
        }
        _ => assert!(
            std::env::var("CI").is_err(),
            "CI must set TEST_DATABASE_URL so the PostgreSQL tests run"
        ),
    }
    Backends {
        stores,
        _dir: dir,
        pg_schema,
    }
}

/// A schema of its own per test, so tests run in parallel on one database.
async fn postgres_in_fresh_schema(url: &str) -> (SqlStore, String) {
    let schema = format!("test_{}", Uuid::new_v4().simple());
    let admin = SqlStore::connect(url).await.unwrap();
    admin
        .execute_raw(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    admin.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    (
        SqlStore::connect_and_migrate(&scoped).await.unwrap(),
        schema,
    )
}

impl Backends {
    async fn cleanup(self) {
        for (_, store) in &self.stores {
            store.close().await;
        }
        if let Some((url, schema)) = &self.pg_schema {
            let admin = SqlStore::connect(url).await.unwrap();
            admin
                .execute_raw(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

fn new_user(email: &str, username: &str) -> NewUser {
    NewUser {
        user: User {
            id: UserId::new_random(),
            email: Email::parse(email).unwrap(),
            username: Username::parse(username).unwrap(),
            created_at: Utc.timestamp_millis_opt(1_780_000_000_123).unwrap(),
            role: Role::Member,
            banned_at: None,
            tokens_valid_from: None,
        },
        password_hash: PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
    }
}

#[tokio::test]
async fn a_stored_user_reads_back_the_same() {
    let backends = backends().await;
    for (name, store) in &backends.stores {
        let new = new_user("Ada@Example.org", "Ada");
        let stored = store.insert(new.clone()).await.unwrap();
        // The first account ever stored is an admin.
        let expected = User {
            role: Role::Admin,
            ..new.user.clone()
        };
        assert_eq!(stored, expected, "{name}");
        let found = store.find_by_id(new.user.id).await.unwrap();
        assert_eq!(found.as_ref(), Some(&expected), "{name}");
        assert_eq!(
            store.find_by_id(UserId::new_random()).await.unwrap(),
            None,
            "{name}"
        );
    }
    backends.cleanup().await;
}

#[tokio::test]
async fn login_lookup_ignores_case_and_returns_the_hash() {
    let backends = backends().await;
    for (name, store) in &backends.stores {
        let new = new_user("Ada@Example.org", "Ada");
        store.insert(new.clone()).await.unwrap();
        for login in [
            LoginIdentifier::parse(Some("ada@example.ORG"), None).unwrap(),
            LoginIdentifier::parse(None, Some("aDA")).unwrap(),
        ] {
            let (user, hash) = store.find_for_login(&login).await.unwrap().expect(name);
            assert_eq!(user.id, new.user.id, "{name}");
            assert_eq!(hash, new.password_hash, "{name}");
        }
        let nobody = LoginIdentifier::parse(None, Some("grace")).unwrap();
        assert!(
            store.find_for_login(&nobody).await.unwrap().is_none(),
            "{name}"
        );
    }
    backends.cleanup().await;
}

/// Addresses stored before e-mails were normalised (NFD here, made so by hand)
/// are brought to NFC at migration, so the account is found by the address typed
/// either way; where the other form is an account already, both stay; an address
/// today's rules refuse (a zero-width space) still reads back.
#[tokio::test]
async fn addresses_stored_before_normalisation_are_normalised_at_migration() {
    let backends = backends().await;
    for (name, store) in &backends.stores {
        let jose = store
            .insert(new_user("jose@example.org", "jose"))
            .await
            .unwrap();
        let rene_nfd = store
            .insert(new_user("rene@example.org", "rene"))
            .await
            .unwrap();
        let rene_nfc = store
            .insert(new_user("ren\u{e9}@example.org", "rene2"))
            .await
            .unwrap();
        let odd = store
            .insert(new_user("odd@example.org", "odd"))
            .await
            .unwrap();
        for (user, email) in [
            (&jose, "jose\u{301}@example.org"),
            (&rene_nfd, "rene\u{301}@example.org"),
            (&odd, "o\u{200b}dd@example.org"),
        ] {
            store
                .execute_raw(&format!(
                    "UPDATE users SET email = '{email}', email_norm = '{}' WHERE id = '{}'",
                    email.to_lowercase(),
                    user.id
                ))
                .await
                .unwrap();
        }
        let nfc = LoginIdentifier::parse(Some("jos\u{e9}@example.org"), None).unwrap();
        assert!(
            store.find_for_login(&nfc).await.unwrap().is_none(),
            "{name}: aged"
        );

        assert_eq!(store.normalize_stored_emails().await.unwrap(), 1, "{name}");
        let (found, _) = store.find_for_login(&nfc).await.unwrap().expect(name);
        assert_eq!(found.id, jose.id, "{name}");
        assert_eq!(found.email.as_str(), "jos\u{e9}@example.org", "{name}");
        let rene = LoginIdentifier::parse(Some("ren\u{e9}@example.org"), None).unwrap();
        let (found, _) = store.find_for_login(&rene).await.unwrap().expect(name);
        assert_eq!(
            found.id, rene_nfc.id,
            "{name}: the NFC account keeps its address"
        );
        let odd_back = store.find_by_id(odd.id).await.unwrap().expect(name);
        assert_eq!(odd_back.email.as_str(), "o\u{200b}dd@example.org", "{name}");
        assert_eq!(
            store.normalize_stored_emails().await.unwrap(),
            0,
            "{name}: idempotent"
        );
    }
    backends.cleanup().await;
}

#[tokio::test]
async fn duplicates_are_refused_case_insensitively_and_write_nothing() {
    let backends = backends().await;
    for (name, store) in &backends.stores {
        store
            .insert(new_user("ada@example.org", "ada"))
            .await
            .unwrap();

        let same_email = store.insert(new_user("ADA@example.org", "someone")).await;
        assert!(
            matches!(same_email, Err(DomainError::EmailTaken)),
            "{name}: {same_email:?}"
        );
        let same_name = store.insert(new_user("other@example.org", "ADA")).await;
        assert!(
            matches!(same_name, Err(DomainError::UsernameTaken)),
            "{name}: {same_name:?}"
        );

        for login in [
            LoginIdentifier::parse(None, Some("someone")).unwrap(),
            LoginIdentifier::parse(Some("other@example.org"), None).unwrap(),
        ] {
            assert!(
                store.find_for_login(&login).await.unwrap().is_none(),
                "{name}"
            );
        }
    }
    backends.cleanup().await;
}

#[tokio::test]
async fn revocations_are_remembered_until_expiry_then_swept() {
    let backends = backends().await;
    for (name, store) in &backends.stores {
        let user = new_user("ada@example.org", "ada");
        store.insert(user.clone()).await.unwrap();
        let id = user.user.id;
        let live = Uuid::new_v4();
        let expired = Uuid::new_v4();
        assert!(!store.is_revoked(live).await.unwrap(), "{name}");

        store
            .revoke(expired, id, Utc::now() - Duration::minutes(1))
            .await
            .unwrap();
        store
            .revoke(live, id, Utc::now() + Duration::hours(1))
            .await
            .unwrap();
        store
            .revoke(live, id, Utc::now() + Duration::hours(1))
            .await
            .unwrap();

        assert!(store.is_revoked(live).await.unwrap(), "{name}");
        assert!(
            !store.is_revoked(expired).await.unwrap(),
            "{name}: expired entries are swept"
        );
    }
    backends.cleanup().await;
}

#[tokio::test]
async fn a_token_holder_is_the_account_unless_revoked_or_gone() {
    let backends = backends().await;
    for (name, store) in &backends.stores {
        let user = new_user("ada@example.org", "ada");
        store.insert(user.clone()).await.unwrap();
        let id = user.user.id;
        let (live, revoked) = (Uuid::new_v4(), Uuid::new_v4());
        let expires_at = Utc::now() + Duration::hours(1);
        assert!(
            store.revoke(revoked, id, expires_at).await.unwrap(),
            "{name}"
        );
        assert!(
            !store.revoke(revoked, id, expires_at).await.unwrap(),
            "{name}: the second revocation is not new"
        );

        match store.holder(live, live, id).await.unwrap() {
            TokenHolder::Active(found) => {
                assert_eq!(
                    found,
                    store.find_by_id(id).await.unwrap().unwrap(),
                    "{name}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(
            store.holder(revoked, revoked, id).await.unwrap(),
            TokenHolder::Revoked,
            "{name}"
        );
        assert_eq!(
            store.holder(live, revoked, id).await.unwrap(),
            TokenHolder::Revoked,
            "{name}: a token of a revoked family"
        );
        assert_eq!(
            store
                .holder(live, live, UserId::new_random())
                .await
                .unwrap(),
            TokenHolder::Unknown,
            "{name}"
        );
        // A deleted account holds nothing any more.
        assert!(store.delete(id).await.unwrap(), "{name}");
        assert!(!store.delete(id).await.unwrap(), "{name}");
        assert_eq!(store.find_by_id(id).await.unwrap(), None, "{name}");
        assert_eq!(
            store.holder(live, live, id).await.unwrap(),
            TokenHolder::Unknown,
            "{name}"
        );
    }
    backends.cleanup().await;
}

#[tokio::test]
async fn the_revocations_in_force_are_listed_with_their_expiry() {
    let backends = backends().await;
    for (name, store) in &backends.stores {
        let user = new_user("ada@example.org", "ada");
        store.insert(user.clone()).await.unwrap();
        let now = Utc
            .timestamp_millis_opt(Utc::now().timestamp_millis())
            .unwrap();
        let (soon, later) = (Uuid::new_v4(), Uuid::new_v4());
        let soon_at = now + Duration::minutes(1);
        let later_at = now + Duration::hours(1);
        store.revoke(soon, user.user.id, soon_at).await.unwrap();
        store.revoke(later, user.user.id, later_at).await.unwrap();

        let mut all = store.revoked_after(now).await.unwrap();
        all.sort();
        let mut expected = vec![(soon, soon_at), (later, later_at)];
        expected.sort();
        assert_eq!(all, expected, "{name}");
        assert_eq!(
            store.revoked_after(soon_at).await.unwrap(),
            vec![(later, later_at)],
            "{name}: only those expiring after the given time"
        );
    }
    backends.cleanup().await;
}

#[tokio::test]
async fn the_newest_accounts_come_first() {
    let backends = backends().await;
    for (name, store) in &backends.stores {
        let mut ada = new_user("ada@example.org", "ada");
        ada.user.created_at = Utc::now() - Duration::minutes(2);
        let mut bob = new_user("bob@example.org", "bob");
        bob.user.created_at = Utc::now() - Duration::minutes(1);
        let ada = store.insert(ada).await.unwrap();
        let bob = store.insert(bob).await.unwrap();
        assert_eq!(
            store.newest(10).await.unwrap(),
            vec![bob.clone(), ada],
            "{name}"
        );
        assert_eq!(store.newest(1).await.unwrap(), vec![bob], "{name}");
    }
    backends.cleanup().await;
}

#[tokio::test]
async fn migrations_are_idempotent_and_health_answers() {
    let backends = backends().await;
    for (name, store) in &backends.stores {
        store.migrate().await.unwrap();
        store
            .check()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    backends.cleanup().await;
}

#[tokio::test]
async fn sqlite_data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nested.db").display());
    let new = new_user("ada@example.org", "ada");
    let store = SqlStore::connect_and_migrate(&url).await.unwrap();
    store.insert(new.clone()).await.unwrap();
    store.close().await;

    let reopened = SqlStore::connect_and_migrate(&url).await.unwrap();
    assert_eq!(
        reopened.find_by_id(new.user.id).await.unwrap(),
        Some(User {
            role: Role::Admin,
            ..new.user
        })
    );
    reopened.close().await;
}

mod rooms_and_chat {
    use webcall_domain::ports::{ChatRepository, RoomRepository};
    use webcall_domain::signaling::{ChatText, NewChatMessage, PeerId, RoomName};

    use super::*;

    fn chat(room: &RoomName, user: &User, text: &str) -> NewChatMessage {
        NewChatMessage {
            room: room.clone(),
            from: PeerId::new_random(),
            user_id: user.id,
            username: user.username.as_str().to_owned(),
            text: ChatText::parse(text).unwrap(),
            ts: Utc::now(),
        }
    }

    /// Creates `name` for `owner` under a limit of `max_owned`, expecting success.
    async fn room(store: &SqlStore, name: &str, owner: &User, max_owned: usize) -> RoomName {
        let room = RoomName::parse(name).unwrap();
        store
            .create_room(&room, owner.id, Utc::now(), max_owned)
            .await
            .unwrap();
        room
    }

    #[tokio::test]
    async fn rooms_are_created_once_listed_and_deleted_with_their_chat() {
        let backends = backends().await;
        for (name, store) in &backends.stores {
            let owner = store
                .insert(new_user("ada@example.org", "ada"))
                .await
                .unwrap();
            let room = RoomName::parse("team").unwrap();
            let created = store
                .create_room(&room, owner.id, Utc::now(), 10)
                .await
                .unwrap();
            assert_eq!(created.owner, owner.id, "{name}");
            assert_eq!(created.owner_name, "ada", "{name}");
            assert!(matches!(
                store.create_room(&room, owner.id, Utc::now(), 10).await,
                Err(DomainError::RoomExists)
            ));
            assert_eq!(
                store.find_room(&room).await.unwrap(),
                Some(created),
                "{name}"
            );
            assert_eq!(store.list_rooms(None, 10).await.unwrap().len(), 1, "{name}");

            store
                .append_chat(chat(&room, &owner, "hello"))
                .await
                .unwrap();
            assert!(store.delete_room(&room).await.unwrap(), "{name}");
            assert!(!store.delete_room(&room).await.unwrap(), "{name}");
            assert_eq!(store.find_room(&room).await.unwrap(), None, "{name}");
            // A room of the same name starts with an empty history.
            store
                .create_room(&room, owner.id, Utc::now(), 10)
                .await
                .unwrap();
            assert!(
                store.chat_before(&room, None, 50).await.unwrap().is_empty(),
                "{name}"
            );
        }
        backends.cleanup().await;
    }

    /// The owner's limit holds however many creations race for the last
    /// places; other owners are not affected; a deleted room frees a place.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_owner_cannot_pass_the_room_limit_even_concurrently() {
        let backends = backends().await;
        for (name, store) in &backends.stores {
            let ada = store
                .insert(new_user("ada@example.org", "ada"))
                .await
                .unwrap();
            let bob = store
                .insert(new_user("bob@example.org", "bob"))
                .await
                .unwrap();
            // Tasks on the multi-threaded runtime, each on a connection of its own.
            let attempts = (0..12).map(|i| {
                let (store, room) = (store.clone(), RoomName::parse(&format!("r{i:02}")).unwrap());
                tokio::spawn(async move { store.create_room(&room, ada.id, Utc::now(), 5).await })
            });
            let results: Vec<_> = futures_util::future::join_all(attempts)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            let created = results.iter().filter(|r| r.is_ok()).count();
            let limited = results
                .iter()
                .filter(|r| matches!(r, Err(DomainError::RoomLimit { max: 5 })))
                .count();
            assert_eq!((created, limited), (5, 7), "{name}: {results:?}");
            assert_eq!(
                store.list_rooms(None, 100).await.unwrap().len(),
                5,
                "{name}"
            );
            room(store, "bobs", &bob, 5).await;
            let rooms = store.list_rooms(None, 100).await.unwrap();
            let adas = rooms.iter().find(|r| r.owner == ada.id).unwrap();
            store.delete_room(&adas.name).await.unwrap();
            room(store, "again", &ada, 5).await;
        }
        backends.cleanup().await;
    }

    /// Pages by name: each `after` the last name of the page before, no room
    /// twice or left out.
    #[tokio::test]
    async fn rooms_are_listed_a_page_at_a_time() {
        let backends = backends().await;
        for (name, store) in &backends.stores {
            let ada = store
                .insert(new_user("ada@example.org", "ada"))
                .await
                .unwrap();
            let mut names: Vec<String> = (0..7).map(|i| format!("room-{i}")).collect();
            for name in names.iter().rev() {
                room(store, name, &ada, 50).await;
            }
            names.sort();
            let mut seen = Vec::new();
            let mut after: Option<RoomName> = None;
            loop {
                let page = store.list_rooms(after.as_ref(), 3).await.unwrap();
                assert!(page.len() <= 3, "{name}");
                let Some(last) = page.last() else { break };
                after = Some(last.name.clone());
                seen.extend(page.iter().map(|r| r.name.as_str().to_owned()));
            }
            assert_eq!(seen, names, "{name}");
        }
        backends.cleanup().await;
    }

    #[tokio::test]
    async fn chat_ids_increase_and_pages_go_backwards_oldest_first() {
        let backends = backends().await;
        for (name, store) in &backends.stores {
            let owner = store
                .insert(new_user("ada@example.org", "ada"))
                .await
                .unwrap();
            let room = RoomName::parse("team").unwrap();
            let other = RoomName::parse("other").unwrap();
            store
                .create_room(&room, owner.id, Utc::now(), 10)
                .await
                .unwrap();
            store
                .create_room(&other, owner.id, Utc::now(), 10)
                .await
                .unwrap();
            let mut ids = Vec::new();
            for i in 0..7 {
                ids.push(
                    store
                        .append_chat(chat(&room, &owner, &format!("m{i}")))
                        .await
                        .unwrap()
                        .id,
                );
                store
                    .append_chat(chat(&other, &owner, "elsewhere"))
                    .await
                    .unwrap();
            }
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{name}: {ids:?}");
            let latest = store.chat_before(&room, None, 3).await.unwrap();
            let texts: Vec<&str> = latest.iter().map(|m| m.text.as_str()).collect();
            assert_eq!(texts, ["m4", "m5", "m6"], "{name}");
            let older = store
                .chat_before(&room, Some(latest[0].id), 10)
                .await
                .unwrap();
            let texts: Vec<&str> = older.iter().map(|m| m.text.as_str()).collect();
            assert_eq!(texts, ["m0", "m1", "m2", "m3"], "{name}");
            assert_eq!(older[0].username, "ada");
            assert_eq!(older[0].user_id, owner.id);
        }
        backends.cleanup().await;
    }

    #[tokio::test]
    async fn a_rooms_moderation_rules_are_stored_and_go_with_the_room() {
        use webcall_domain::ports::RoomModeration;
        use webcall_domain::signaling::RoomRules;
        let backends = backends().await;
        for (name, store) in &backends.stores {
            let ada = store
                .insert(new_user("ada@example.org", "ada"))
                .await
                .unwrap();
            let bob = store
                .insert(new_user("bob@example.org", "bob"))
                .await
                .unwrap();
            let team = room(store, "team", &ada, 10).await;
            let nowhere = RoomName::parse("nowhere").unwrap();
            assert_eq!(store.room_rules(&team).await.unwrap(), RoomRules::default());
            assert!(store.set_hosts_only(&team, true).await.unwrap(), "{name}");
            assert!(!store.set_hosts_only(&nowhere, true).await.unwrap());
            for _ in 0..2 {
                store
                    .ban_from_room(&team, bob.id, Utc::now())
                    .await
                    .unwrap();
            }
            store
                .ban_from_room(&team, ada.id, Utc::now())
                .await
                .unwrap();
            let rules = store.room_rules(&team).await.unwrap();
            assert!(rules.hosts_only, "{name}");
            assert!(rules.is_banned(bob.id) && rules.is_banned(ada.id), "{name}");
            assert_eq!(rules.banned.len(), 2, "{name}: a ban is stored once");
            assert!(
                store
                    .ban_from_room(&nowhere, bob.id, Utc::now())
                    .await
                    .is_err(),
                "{name}: no ban from a room that does not exist"
            );
            // Deleting the room ends its rules: a room of the same name starts clean.
            assert!(store.delete_room(&team).await.unwrap());
            room(store, "team", &ada, 10).await;
            assert_eq!(store.room_rules(&team).await.unwrap(), RoomRules::default());
        }
        backends.cleanup().await;
    }
}
