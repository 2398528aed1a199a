//! The attachment storage contract ([`AttachmentRepository`]), run against a
//! real SQLite file always and PostgreSQL when `TEST_DATABASE_URL` is set: a
//! file's record and its chat message are written and deleted together, the
//! history shows the file, a room's deletion takes both with it, usage sums
//! the sizes, retention deletes the oldest in batches, and the orphan check
//! tells which ids have a record.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;
use webcall_db::SqlStore;
use webcall_domain::admin::{AdminRepository, NewAuditEntry};
use webcall_domain::attachments::{
    Attachment, AttachmentId, AttachmentRepository, AttachmentUsage, ContentType, FileName,
    NewAttachment, ThumbnailSize,
};
use webcall_domain::model::{Email, NewUser, PasswordHash, Role, User, UserId, Username};
use webcall_domain::ports::{ChatRepository, RoomRepository, UserRepository};
use webcall_domain::signaling::{AttachmentRef, ChatText, NewChatMessage, PeerId, RoomName};
use webcall_domain::DomainError;

/// A SQLite store, and a PostgreSQL one on a schema of its own when there is a
/// server (the schema is dropped by [`cleanup`]).
async fn stores(dir: &tempfile::TempDir) -> (Vec<(&'static str, SqlStore)>, Option<String>) {
    let sqlite = format!("sqlite://{}", dir.path().join("attachments.db").display());
    let mut stores = vec![(
        "sqlite",
        SqlStore::connect_and_migrate(&sqlite).await.unwrap(),
    )];
    let mut schema = None;
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let name = format!("test_{}", Uuid::new_v4().simple());
            let admin = SqlStore::connect(&url).await.unwrap();
            admin
                .execute_raw(&format!("CREATE SCHEMA {name}"))
                .await
                .unwrap();
            admin.close().await;
            let sep = if url.contains('?') { '&' } else { '?' };
            let scoped = format!("{url}{sep}options=-c%20search_path%3D{name}");
            stores.push((
                "postgres",
                SqlStore::connect_and_migrate(&scoped).await.unwrap(),
            ));
            schema = Some(name);
        }
        _ => assert!(
            std::env::var("CI").is_err(),
            "CI must set TEST_DATABASE_URL so the PostgreSQL tests run"
        ),
    }
    (stores, schema)
}

async fn cleanup(stores: Vec<(&'static str, SqlStore)>, schema: Option<String>) {
    for (_, store) in &stores {
        store.close().await;
    }
    if let (Some(schema), Ok(url)) = (schema, std::env::var("TEST_DATABASE_URL")) {
        let admin = SqlStore::connect(&url).await.unwrap();
        admin
            .execute_raw(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
        admin.close().await;
    }
}

async fn user(store: &SqlStore, name: &str) -> User {
    let user = User {
        id: UserId::new_random(),
        email: Email::parse(&format!("{name}@example.org")).unwrap(),
        username: Username::parse(name).unwrap(),
        created_at: Utc.timestamp_millis_opt(1_780_000_000_123).unwrap(),
        role: Role::Member,
        banned_at: None,
        tokens_valid_from: None,
    };
    store
        .insert(NewUser {
            user,
            password_hash: PasswordHash("$argon2id$not-a-real-hash".into()),
        })
        .await
        .unwrap()
}

async fn room(store: &SqlStore, name: &str, owner: &User) -> RoomName {
    let room = RoomName::parse(name).unwrap();
    store
        .create_room(&room, owner.id, Utc::now(), 10)
        .await
        .unwrap();
    room
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

fn file(
    room: &RoomName,
    by: &User,
    name: &str,
    size: u64,
    created: DateTime<Utc>,
) -> NewAttachment {
    NewAttachment {
        id: AttachmentId::new_random(),
        room: room.clone(),
        from: PeerId::from_client("peer-1"),
        user_id: by.id,
        username: by.username.as_str().to_owned(),
        name: FileName::sanitise(name),
        size,
        content_type: ContentType::parse(Some("application/pdf")),
        sha256: "ab".repeat(32),
        thumbnail: None,
        created_at: created,
    }
}

fn text(room: &RoomName, by: &User, text: &str) -> NewChatMessage {
    NewChatMessage {
        room: room.clone(),
        from: PeerId::from_client("peer-1"),
        user_id: by.id,
        username: by.username.as_str().to_owned(),
        text: ChatText::parse(text).unwrap(),
        ts: Utc::now(),
    }
}

#[tokio::test]
async fn a_file_is_stored_with_its_message_shown_in_the_history_and_deleted_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (stores, schema) = stores(&dir).await;
    for (db, store) in &stores {
        let ada = user(store, "ada").await;
        let team = room(store, "team", &ada).await;
        store
            .append_chat(text(&team, &ada, "before"))
            .await
            .unwrap();
        let mut new = file(&team, &ada, "slides.pdf", 123_456, at(1_780_000_000_789));
        new.content_type = ContentType::parse(Some("image/png"));
        new.thumbnail = Some(ThumbnailSize {
            width: 320,
            height: 180,
        });
        let message = store.insert_attachment(new.clone()).await.unwrap();
        let shared = AttachmentRef {
            id: new.id.to_string(),
            name: "slides.pdf".into(),
            size: 123_456,
            content_type: "image/png".into(),
            thumbnail: Some((320, 180)),
        };
        assert_eq!(message.attachment.as_deref(), Some(&shared), "{db}");
        assert_eq!(message.text, "", "{db}");
        assert_eq!(message.from.as_str(), "peer-1", "{db}");
        assert_eq!(message.username, "ada", "{db}");
        assert_eq!(message.ts, new.created_at, "{db}");
        store.append_chat(text(&team, &ada, "after")).await.unwrap();

        let stored = store.attachment(&new.id).await.unwrap();
        let expected = Attachment {
            id: new.id.clone(),
            room: team.clone(),
            message_id: message.id,
            user_id: ada.id,
            name: new.name.clone(),
            size: 123_456,
            content_type: new.content_type.clone(),
            sha256: new.sha256.clone(),
            thumbnail: new.thumbnail,
            created_at: new.created_at,
        };
        assert_eq!(stored.as_ref(), Some(&expected), "{db}");
        assert_eq!(expected.to_ref(), shared, "{db}");

        // The history: text, the file (with its attachment), text.
        let history = store.chat_before(&team, None, 50).await.unwrap();
        let seen: Vec<(&str, Option<&AttachmentRef>)> = history
            .iter()
            .map(|m| (m.text.as_str(), m.attachment.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [("before", None), ("", Some(&shared)), ("after", None)],
            "{db}"
        );
        assert_eq!(history[1], message, "{db}");

        // Deleted: the record and its message; a second time, nothing.
        let deleted = store.delete_attachment(&new.id).await.unwrap();
        assert_eq!(deleted, Some(expected), "{db}");
        assert_eq!(
            store.delete_attachment(&new.id).await.unwrap(),
            None,
            "{db}"
        );
        assert_eq!(store.attachment(&new.id).await.unwrap(), None, "{db}");
        let texts: Vec<String> = store
            .chat_before(&team, None, 50)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["before", "after"], "{db}");
    }
    cleanup(stores, schema).await;
}

#[tokio::test]
async fn a_file_for_a_room_that_is_gone_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (stores, schema) = stores(&dir).await;
    for (db, store) in &stores {
        let ada = user(store, "ada").await;
        let nowhere = RoomName::parse("nowhere").unwrap();
        let new = file(&nowhere, &ada, "a.txt", 10, Utc::now());
        assert!(
            matches!(
                store.insert_attachment(new.clone()).await,
                Err(DomainError::Invalid { field: "room", .. })
            ),
            "{db}"
        );
        assert_eq!(store.attachment(&new.id).await.unwrap(), None, "{db}");
        assert_eq!(
            store.attachment_usage(ada.id).await.unwrap(),
            AttachmentUsage::default(),
            "{db}"
        );
    }
    cleanup(stores, schema).await;
}

#[tokio::test]
async fn a_deleted_room_takes_its_files_and_their_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (stores, schema) = stores(&dir).await;
    for (db, store) in &stores {
        let ada = user(store, "ada").await;
        let team = room(store, "team", &ada).await;
        let other = room(store, "other", &ada).await;
        let a = store
            .insert_attachment(file(&team, &ada, "a.pdf", 10, Utc::now()))
            .await
            .unwrap();
        let b = store
            .insert_attachment(file(&team, &ada, "b.pdf", 20, Utc::now()))
            .await
            .unwrap();
        let kept = store
            .insert_attachment(file(&other, &ada, "c.pdf", 30, Utc::now()))
            .await
            .unwrap();
        let id = |m: &webcall_domain::signaling::ChatMessage| {
            AttachmentId::parse(&m.attachment.as_ref().unwrap().id).unwrap()
        };
        let mut listed = store.room_attachments(&team).await.unwrap();
        listed.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        let mut want = vec![id(&a), id(&b)];
        want.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        assert_eq!(listed, want, "{db}");

        assert!(store.delete_room(&team).await.unwrap(), "{db}");
        for gone in [&a, &b] {
            assert_eq!(store.attachment(&id(gone)).await.unwrap(), None, "{db}");
        }
        assert!(store.room_attachments(&team).await.unwrap().is_empty());
        // A room of that name again starts with no files and no history.
        room(store, "team", &ada).await;
        assert!(store.chat_before(&team, None, 50).await.unwrap().is_empty());
        assert!(store.room_attachments(&team).await.unwrap().is_empty());

        // Deleted by an administrator (with its audit entry): the same.
        let audited = room(store, "audited", &ada).await;
        let gone = store
            .insert_attachment(file(&audited, &ada, "d.pdf", 40, Utc::now()))
            .await
            .unwrap();
        let audit = NewAuditEntry {
            at: Utc::now(),
            actor: ada.id,
            actor_name: "ada".into(),
            action: "room.delete",
            target: "audited".into(),
            detail: None,
        };
        assert!(store.delete_room_audited(&audited, audit).await.unwrap());
        assert_eq!(store.attachment(&id(&gone)).await.unwrap(), None, "{db}");
        assert!(store.room_attachments(&audited).await.unwrap().is_empty());

        // The migration's foreign keys alone do it too (a room row deleted
        // by hand): the record and its message go.
        store
            .execute_raw("DELETE FROM rooms WHERE name = 'other'")
            .await
            .unwrap();
        assert_eq!(store.attachment(&id(&kept)).await.unwrap(), None, "{db}");
        assert!(store
            .chat_before(&other, None, 50)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.attachment_usage(ada.id).await.unwrap(),
            AttachmentUsage::default(),
            "{db}"
        );
    }
    cleanup(stores, schema).await;
}

#[tokio::test]
async fn usage_sums_the_sizes_of_one_user_and_of_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let (stores, schema) = stores(&dir).await;
    for (db, store) in &stores {
        let ada = user(store, "ada").await;
        let bob = user(store, "bob").await;
        assert_eq!(
            store.attachment_usage(ada.id).await.unwrap(),
            AttachmentUsage { user: 0, total: 0 },
            "{db}"
        );
        let team = room(store, "team", &ada).await;
        let big = 5 * 1024 * 1024 * 1024u64; // past 32 bits
        store
            .insert_attachment(file(&team, &ada, "a", big, Utc::now()))
            .await
            .unwrap();
        let second = store
            .insert_attachment(file(&team, &ada, "b", 100, Utc::now()))
            .await
            .unwrap();
        store
            .insert_attachment(file(&team, &bob, "c", 7, Utc::now()))
            .await
            .unwrap();
        let usage = |user| store.attachment_usage(user);
        assert_eq!(
            usage(ada.id).await.unwrap(),
            AttachmentUsage {
                user: big + 100,
                total: big + 107
            },
            "{db}"
        );
        assert_eq!(
            usage(bob.id).await.unwrap(),
            AttachmentUsage {
                user: 7,
                total: big + 107
            },
            "{db}"
        );
        assert_eq!(
            usage(UserId::new_random()).await.unwrap(),
            AttachmentUsage {
                user: 0,
                total: big + 107
            },
            "{db}"
        );
        let id = AttachmentId::parse(&second.attachment.unwrap().id).unwrap();
        store.delete_attachment(&id).await.unwrap();
        assert_eq!(usage(ada.id).await.unwrap().user, big, "{db}");
    }
    cleanup(stores, schema).await;
}

#[tokio::test]
async fn old_files_are_deleted_oldest_first_a_batch_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (stores, schema) = stores(&dir).await;
    for (db, store) in &stores {
        let ada = user(store, "ada").await;
        let team = room(store, "team", &ada).await;
        let t0 = at(1_780_000_000_000);
        let mut messages = Vec::new();
        for i in 0..5 {
            let created = t0 + Duration::days(i);
            let message = store
                .insert_attachment(file(&team, &ada, &format!("f{i}"), 10, created))
                .await
                .unwrap();
            messages.push(message);
        }
        let cutoff = t0 + Duration::days(3); // f0, f1, f2 are older
        let first = store.delete_attachments_before(cutoff, 2).await.unwrap();
        let names: Vec<&str> = first.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["f0", "f1"], "{db}");
        let message_ids: Vec<i64> = first.iter().map(|a| a.message_id).collect();
        assert_eq!(message_ids, [messages[0].id, messages[1].id], "{db}");
        let second = store.delete_attachments_before(cutoff, 2).await.unwrap();
        let names: Vec<&str> = second.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["f2"], "{db}");
        assert!(store
            .delete_attachments_before(cutoff, 2)
            .await
            .unwrap()
            .is_empty());
        // What is left: the two newer files, each with its message.
        let history = store.chat_before(&team, None, 50).await.unwrap();
        let left: Vec<&str> = history
            .iter()
            .map(|m| m.attachment.as_ref().unwrap().name.as_str())
            .collect();
        assert_eq!(left, ["f3", "f4"], "{db}");
        assert_eq!(store.attachment_usage(ada.id).await.unwrap().total, 20);
    }
    cleanup(stores, schema).await;
}

#[tokio::test]
async fn the_orphan_check_names_the_ids_that_have_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let (stores, schema) = stores(&dir).await;
    for (db, store) in &stores {
        let ada = user(store, "ada").await;
        let team = room(store, "team", &ada).await;
        let mut known = Vec::new();
        for i in 0..3 {
            let message = store
                .insert_attachment(file(&team, &ada, &format!("f{i}"), 1, Utc::now()))
                .await
                .unwrap();
            known.push(AttachmentId::parse(&message.attachment.unwrap().id).unwrap());
        }
        assert!(store.existing_attachments(&[]).await.unwrap().is_empty());
        // More ids than one query binds, the known ones among them.
        let mut asked: Vec<AttachmentId> = (0..1200).map(|_| AttachmentId::new_random()).collect();
        asked.insert(0, known[0].clone());
        asked.insert(700, known[1].clone());
        asked.push(known[2].clone());
        let mut found = store.existing_attachments(&asked).await.unwrap();
        found.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        known.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        assert_eq!(found, known, "{db}");
    }
    cleanup(stores, schema).await;
}

/// The retention sweep, a room's other files being deleted by their sender
/// (twice each, as two clicks would) all at once: every file is deleted once,
/// by exactly one of them, and none fails (no deadlock, no busy database).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletions_racing_each_other_delete_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let (stores, schema) = stores(&dir).await;
    for (db, store) in &stores {
        let ada = user(store, "ada").await;
        let team = room(store, "team", &ada).await;
        let old = at(1_780_000_000_000);
        let mut ids = Vec::new();
        for i in 0..8 {
            let message = store
                .insert_attachment(file(&team, &ada, &format!("f{i}"), 1, old))
                .await
                .unwrap();
            ids.push(AttachmentId::parse(&message.attachment.unwrap().id).unwrap());
        }
        let sweep = {
            let store = store.clone();
            tokio::spawn(async move { store.delete_attachments_before(Utc::now(), 100).await })
        };
        let singles: Vec<_> = ids
            .iter()
            .chain(ids.iter())
            .map(|id| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move { store.delete_attachment(&id).await })
            })
            .collect();
        let mut deleted: Vec<String> = sweep
            .await
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|a| a.id.to_string())
            .collect();
        for single in futures_util::future::join_all(singles).await {
            if let Some(a) = single.unwrap().unwrap() {
                deleted.push(a.id.to_string());
            }
        }
        deleted.sort();
        let mut want: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        want.sort();
        assert_eq!(deleted, want, "{db}");
        assert!(store.chat_before(&team, None, 50).await.unwrap().is_empty());
    }
    cleanup(stores, schema).await;
}
