//! Admin actions on one instance take effect on the other at once: two
//! instances sharing PostgreSQL (a SQLite file when `TEST_DATABASE_URL` is
//! not set) and the machine's real Redis (`TEST_REDIS_URL`; CI sets both).
//! A ban on A closes the user's socket on B and B refuses their token; ending
//! a room on A empties it on B; a lock or a new role set on A holds on B.

mod support;

use std::time::Instant;

use serde_json::{json, Value};
use support::{error_of, spawn_app, TestApp};

/// How long a change may take to reach the other instance before the test
/// gives up (it takes milliseconds; the issue asks for under a second).
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(std::env::var("CI").is_err(), "CI must set TEST_REDIS_URL");
            eprintln!("SKIPPED: TEST_REDIS_URL not set");
            None
        }
    }
}

/// Two instances on one database and one Redis (a key prefix of their own).
struct Pair {
    a: TestApp,
    b: TestApp,
    _dir: tempfile::TempDir,
}

async fn pair(redis: &str) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let database = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("cluster_{}", uuid::Uuid::new_v4().simple());
            let store = webcall_db::SqlStore::connect(&url).await.unwrap();
            store
                .execute_raw(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
            store.close().await;
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options=-c%20search_path%3D{schema}")
        }
        _ => format!("sqlite://{}", dir.path().join("shared.db").display()),
    };
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("REDIS_URL", redis),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("DATABASE_URL", database.as_str()),
    ];
    let a = spawn_app(&vars).await;
    let b = spawn_app(&vars).await;
    Pair { a, b, _dir: dir }
}

async fn id_of(app: &TestApp, token: &str) -> String {
    let me: Value = app
        .get_authed("/api/v1/auth/me", token)
        .await
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_ban_on_one_instance_ends_the_call_and_the_token_on_the_other() {
    let Some(redis) = redis_url() else { return };
    let Pair { a, b, _dir } = pair(&redis).await;
    let admin = a.user_token("root").await;
    let bob = b.user_token("bob").await;
    let carol = a.user_token("carol").await;
    let bob_id = id_of(&b, &bob).await;
    let (mut bob_ws, _) = b.join("standup", &bob).await;
    let (mut carol_ws, _) = a.join("standup", &carol).await;
    bob_ws.recv_type("peer_joined").await;

    let started = Instant::now();
    let ban = a
        .post_authed(&format!("/api/v1/admin/users/{bob_id}/ban"), &admin)
        .await;
    assert_eq!(ban.status(), 204);
    assert_eq!(bob_ws.close_code().await, Some(4403));
    eprintln!(
        "ban to close on the other instance: {:?}",
        started.elapsed()
    );
    assert_eq!(carol_ws.recv_type("peer_left").await["reason"], "left");
    let refused = error_of(b.get_authed("/api/v1/auth/me", &bob).await).await;
    assert_eq!(refused, (403, "banned".into(), None));
    assert_eq!(b.try_ws("standup", &bob, None).await.err(), Some(403));
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn an_ended_room_on_one_instance_is_empty_on_the_other() {
    let Some(redis) = redis_url() else { return };
    let Pair { a, b, _dir } = pair(&redis).await;
    let admin = a.user_token("root").await;
    let bob = b.user_token("bob").await;
    let carol = b.user_token("carol").await;
    let (mut bob_ws, _) = b.join("retro", &bob).await;
    let (mut carol_ws, _) = b.join("retro", &carol).await;
    bob_ws.recv_type("peer_joined").await;

    let end = a.post_authed("/api/v1/admin/rooms/retro/end", &admin).await;
    assert_eq!(end.status(), 204);
    let (left, code) = bob_ws.left_until_close("room_deleted").await;
    assert_eq!((left.len(), code), (1, Some(4004)));
    assert_eq!(carol_ws.close_code().await, Some(4004));
    for server in [&a, &b] {
        let calls: Value = server
            .get_authed("/api/v1/admin/calls", &admin)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(calls["rooms"], json!([]));
    }
    // The room stays.
    assert_eq!(
        b.get_authed("/api/v1/rooms/retro", &bob).await.status(),
        200
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_lock_and_a_role_set_on_one_instance_hold_on_the_other() {
    let Some(redis) = redis_url() else { return };
    let Pair { a, b, _dir } = pair(&redis).await;
    let admin = a.user_token("root").await;
    let bob = b.user_token("bob").await;
    let carol = b.user_token("carol").await;
    let bob_id = id_of(&b, &bob).await;
    // B holds the room (Bob is in its call) and Bob's account in memory.
    let (_bob_ws, _) = b.join("planning", &bob).await;
    let me: Value = b
        .get_authed("/api/v1/auth/me", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "member");

    let lock = a
        .http
        .put(a.url("/api/v1/admin/rooms/planning/lock"))
        .bearer_auth(&admin)
        .json(&json!({"locked": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(lock.status(), 204);
    // B hears of it through Redis, a moment later: try until it sends
    // newcomers to the lobby.
    let started = Instant::now();
    let mut first = None;
    while started.elapsed() < WAIT {
        let mut joined = b.try_ws("planning", &carol, None).await.unwrap();
        let frame = joined.recv().await;
        if frame["type"] == "waiting" {
            joined.send(json!({"type": "leave"})).await;
            first = Some((frame["type"].clone(), joined.close_code().await));
            break;
        }
        joined.send(json!({"type": "leave"})).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    eprintln!(
        "lock to the lobby on the other instance: {:?}",
        started.elapsed()
    );
    assert_eq!(first, Some((json!("waiting"), Some(1000))));

    let role = a
        .http
        .put(a.url(&format!("/api/v1/admin/users/{bob_id}/role")))
        .bearer_auth(&admin)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(role.status(), 204);
    // The bearer check reads the account from the database: at once.
    assert_eq!(
        b.get_authed("/api/v1/admin/calls", &bob).await.status(),
        200
    );
    // B's memory of the account is dropped when the word arrives.
    let started = Instant::now();
    let mut role = Value::Null;
    while started.elapsed() < WAIT && role != "admin" {
        let me: Value = b
            .get_authed("/api/v1/auth/me", &bob)
            .await
            .json()
            .await
            .unwrap();
        role = me["role"].clone();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    eprintln!(
        "role to /auth/me on the other instance: {:?}",
        started.elapsed()
    );
    assert_eq!(role, "admin");
    a.stop().await;
    b.stop().await;
}
