//! The lobby over real sockets (docs/protocol.md "Lobby"): in a room that asks
//! to join (or is locked), a newcomer's socket waits (`waiting`), the hosts
//! hear `knock` and answer `admit` (the newcomer gets its `welcome` at once) or
//! `deny` (`denied`, close 4012); a newcomer who gives up leaves the hosts'
//! lists; with no host there the newcomer is told so, and a host who comes
//! later sees them; and across two instances sharing the machine's Redis.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{spawn_app, TestApp, WsClient};

/// `root` (the first account, an admin) is registered first, so that Ann, who
/// owns the room, and Bob are plain members.
async fn ask_to_join_room(app: &TestApp, room: &str) -> (String, String) {
    app.user_token("root").await;
    let ann = app.user_token("ann").await;
    let bob = app.user_token("bob").await;
    let made = app
        .http
        .request(Method::POST, app.url("/api/v1/rooms"))
        .bearer_auth(&ann)
        .json(&json!({"name": room, "ask_to_join": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    (ann, bob)
}

/// Bob's socket into the lobby, its `waiting` frame read.
async fn knock(app: &TestApp, room: &str, token: &str) -> (WsClient, Value) {
    let mut client = app.try_ws(room, token, None).await.unwrap();
    let waiting = client.recv().await;
    assert_eq!(waiting["type"], "waiting", "{waiting}");
    (client, waiting)
}

#[tokio::test]
async fn a_host_admits_a_newcomer_who_gets_the_welcome_at_once() {
    let app = spawn_app(&[]).await;
    let (ann, bob) = ask_to_join_room(&app, "team").await;
    let (mut a, a_welcome) = app.join("team", &ann).await;
    let (mut b, waiting) = knock(&app, "team", &bob).await;
    assert_eq!(waiting["hosts_present"], true);
    let knocked = a.recv_type("knock").await;
    assert_eq!(knocked["username"], "bob");

    // Bob is not in the room yet: nobody else sees him, and he may not act.
    b.send(json!({"type": "chat", "text": "hi"})).await;
    assert_eq!(b.recv().await["code"], "not_in_room");
    b.send(json!({"type": "ping"})).await;
    assert_eq!(b.recv().await["type"], "pong");

    a.send(json!({"type": "admit", "knock": knocked["knock"]}))
        .await;
    let welcome = b.recv().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["peers"][0]["peer_id"], a_welcome["peer_id"]);
    let ended = a.recv_type("knock_ended").await;
    assert_eq!(
        (ended["knock"].clone(), ended["outcome"].as_str()),
        (knocked["knock"].clone(), Some("admitted"))
    );
    assert_eq!(a.recv_type("peer_joined").await["peer"]["username"], "bob");
    app.stop().await;
}

#[tokio::test]
async fn a_denied_newcomer_is_told_at_once_and_one_who_gives_up_leaves_the_list() {
    let app = spawn_app(&[]).await;
    let (ann, bob) = ask_to_join_room(&app, "team").await;
    let carol = app.user_token("carol").await;
    let (mut a, _) = app.join("team", &ann).await;
    let (mut b, _) = knock(&app, "team", &bob).await;
    let bobs = a.recv_type("knock").await;
    let (mut c, _) = knock(&app, "team", &carol).await;
    let carols = a.recv_type("knock").await;
    assert_eq!(carols["username"], "carol");

    // Only a host answers: Carol cannot let herself in (she is not in the room).
    c.send(json!({"type": "admit", "knock": carols["knock"]}))
        .await;
    assert_eq!(c.recv().await["code"], "not_in_room");

    a.send(json!({"type": "deny", "knock": bobs["knock"]}))
        .await;
    let denied = b.recv().await;
    assert_eq!(denied["code"], "denied", "{denied}");
    assert_eq!(b.close_code().await, Some(4012));
    assert_eq!(a.recv_type("knock_ended").await["outcome"], "denied");

    c.send(json!({"type": "leave"})).await;
    assert_eq!(c.close_code().await, Some(1000));
    let ended = a.recv_type("knock_ended").await;
    assert_eq!(
        (ended["knock"].clone(), ended["outcome"].as_str()),
        (carols["knock"].clone(), Some("left"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_non_host_in_the_room_cannot_answer_and_hears_no_knocks() {
    let app = spawn_app(&[]).await;
    let (ann, bob) = ask_to_join_room(&app, "team").await;
    let carol = app.user_token("carol").await;
    let (mut a, _) = app.join("team", &ann).await;
    let (mut b, _) = knock(&app, "team", &bob).await;
    let knocked = a.recv_type("knock").await;
    a.send(json!({"type": "admit", "knock": knocked["knock"]}))
        .await;
    b.recv_type("welcome").await;

    let (mut c, _) = knock(&app, "team", &carol).await;
    let carols = a.recv_type("knock").await;
    b.send(json!({"type": "admit", "knock": carols["knock"]}))
        .await;
    let error = b.recv_type("error").await;
    assert_eq!(error["code"], "not_room_owner");
    // Bob heard no knock (the error is the first frame that came to him).
    c.send(json!({"type": "ping"})).await;
    assert_eq!(c.recv().await["type"], "pong", "Carol still waits");
    app.stop().await;
}

#[tokio::test]
async fn with_no_host_there_the_newcomer_waits_for_one_who_sees_them_on_arrival() {
    let app = spawn_app(&[]).await;
    let (ann, bob) = ask_to_join_room(&app, "team").await;
    let (mut b, waiting) = knock(&app, "team", &bob).await;
    assert_eq!(waiting["hosts_present"], false, "waiting for the host");
    let (mut a, _) = app.join("team", &ann).await;
    let knocked = a.recv_type("knock").await;
    assert_eq!(knocked["username"], "bob");
    let told = b.recv().await;
    assert_eq!(
        (told["type"].as_str(), told["hosts_present"].as_bool()),
        (Some("waiting"), Some(true))
    );
    a.send(json!({"type": "admit", "knock": knocked["knock"]}))
        .await;
    assert_eq!(b.recv().await["type"], "welcome");
    app.stop().await;
}

#[tokio::test]
async fn a_newcomer_on_one_instance_is_admitted_by_a_host_on_another() {
    let redis = match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(std::env::var("CI").is_err(), "CI must set TEST_REDIS_URL");
            eprintln!("SKIPPED: TEST_REDIS_URL not set");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("DATABASE_URL", db.as_str()),
    ];
    let one = spawn_app(&vars).await;
    let two = spawn_app(&vars).await;
    let (ann, bob) = ask_to_join_room(&one, "team").await;
    let carol = one.user_token("carol").await;
    let (mut a, a_welcome) = one.join("team", &ann).await;

    // Bob waits on instance two; Ann, on one, admits him.
    let (mut b, waiting) = knock(&two, "team", &bob).await;
    assert_eq!(waiting["hosts_present"], true);
    let knocked = a.recv_type("knock").await;
    assert_eq!(knocked["username"], "bob");
    a.send(json!({"type": "admit", "knock": knocked["knock"]}))
        .await;
    let welcome = b.recv().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["peers"][0]["peer_id"], a_welcome["peer_id"]);
    assert_eq!(a.recv_type("knock_ended").await["outcome"], "admitted");

    // Carol, on two, gives up: Ann's list on one drops her.
    let (mut c, _) = knock(&two, "team", &carol).await;
    let carols = a.recv_type("knock").await;
    c.send(json!({"type": "leave"})).await;
    let ended = a.recv_type("knock_ended").await;
    assert_eq!(
        (ended["knock"].clone(), ended["outcome"].as_str()),
        (carols["knock"].clone(), Some("left"))
    );
    one.stop().await;
    two.stop().await;
}
