//! Moderation in a call over real sockets (docs/protocol.md §3 "Moderation"):
//! the owner mutes a peer (it is told, the others see it muted), stops a
//! share, mutes all; "only hosts may speak" refuses an unmute; a kick with a
//! ban keeps the account out (4006) until the room is deleted, across a
//! restart; a non-host's moderation changes nothing; and all of it across two
//! instances sharing the machine's Redis (`TEST_REDIS_URL`).

mod support;

use serde_json::{json, Value};
use support::{spawn_app, TestApp, WsClient};

/// Ada (the owner), Bob and Carol in `room`, everyone's arrivals read.
async fn three_in_room(app: &TestApp, room: &str) -> [(WsClient, Value); 3] {
    let mut joined: Vec<(WsClient, Value)> = Vec::new();
    for name in ["ada", "bob", "carol"] {
        let token = app.user_token(name).await;
        let (client, welcome) = app.join(room, &token).await;
        for (other, _) in &mut joined {
            let frame = other.recv_type("peer_joined").await;
            assert_eq!(frame["peer"]["peer_id"], welcome["peer_id"]);
        }
        joined.push((client, welcome));
    }
    joined.try_into().ok().unwrap()
}

fn state(audio: bool, screen: bool) -> Value {
    json!({"audio": audio, "video": true, "screen": screen, "hand": false})
}

#[tokio::test]
async fn the_owner_mutes_a_peer_who_is_told_while_the_others_see_it_muted() {
    let app = spawn_app(&[]).await;
    let [(mut a, a_welcome), (mut b, b_welcome), (mut c, _)] = three_in_room(&app, "team").await;
    assert_eq!(a_welcome["host"], true);
    assert_eq!(b_welcome["host"], false);
    assert_eq!(b_welcome["hosts_only"], false);
    assert_eq!(b_welcome["peers"][0]["host"], true, "ada is marked a host");
    b.send(json!({"type": "state", "state": state(true, true)}))
        .await;
    assert_eq!(c.recv_type("peer_state").await["state"], state(true, true));

    a.send(json!({"type": "mute", "peer_id": b_welcome["peer_id"]}))
        .await;
    let told = b.recv_type("moderated").await;
    assert_eq!(told["action"], "mute");
    assert_eq!(told["by"], a_welcome["peer_id"]);
    let seen = c.recv_type("peer_state").await;
    assert_eq!(seen["peer_id"], b_welcome["peer_id"]);
    assert_eq!(seen["state"], state(false, true));

    a.send(json!({"type": "stop_screen", "peer_id": b_welcome["peer_id"]}))
        .await;
    assert_eq!(b.recv_type("moderated").await["action"], "stop_screen");
    assert_eq!(
        c.recv_type("peer_state").await["state"],
        state(false, false)
    );
    // A later joiner sees Bob as the host left him.
    let dave = app.user_token("dave").await;
    let (_d, d_welcome) = app.join("team", &dave).await;
    let bob = d_welcome["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == b_welcome["peer_id"])
        .unwrap();
    assert_eq!(bob["state"], state(false, false));
    app.stop().await;
}

#[tokio::test]
async fn moderation_from_someone_who_is_not_a_host_is_refused_and_changes_nothing() {
    let app = spawn_app(&[]).await;
    let [(_a, _), (mut b, b_welcome), (mut c, c_welcome)] = three_in_room(&app, "team").await;
    let carol = c_welcome["peer_id"].clone();
    for frame in [
        json!({"type": "mute", "peer_id": carol}),
        json!({"type": "stop_screen", "peer_id": carol}),
        json!({"type": "mute_all"}),
        json!({"type": "hosts_only", "on": true}),
        json!({"type": "kick", "peer_id": carol, "ban": true}),
    ] {
        b.send(frame.clone()).await;
        let error = b.recv_type("error").await;
        assert_eq!(error["code"], "not_room_owner", "{frame}");
    }
    b.send(json!({"type": "mute", "peer_id": 1})).await;
    assert_eq!(b.recv_type("error").await["code"], "bad_frame");
    // Bob's next frame is what Carol hears of him next: nothing came before it.
    b.send(json!({"type": "state", "state": state(true, false)}))
        .await;
    let next = c.recv().await;
    assert_eq!(next["type"], "peer_state", "{next}");
    assert_eq!(next["peer_id"], b_welcome["peer_id"]);
    app.stop().await;
}

#[tokio::test]
async fn while_only_hosts_may_speak_an_unmute_is_refused_until_it_is_turned_off() {
    let app = spawn_app(&[]).await;
    let [(mut a, a_welcome), (mut b, b_welcome), (mut c, _)] = three_in_room(&app, "team").await;
    b.send(json!({"type": "state", "state": state(true, false)}))
        .await;
    c.recv_type("peer_state").await;

    a.send(json!({"type": "hosts_only", "on": true})).await;
    let on = c.recv_type("hosts_only").await;
    assert_eq!(
        (on["on"].clone(), on["by"].clone()),
        (json!(true), a_welcome["peer_id"].clone())
    );
    assert_eq!(b.recv_type("hosts_only").await["on"], true);
    assert_eq!(b.recv_type("moderated").await["action"], "mute");
    assert_eq!(
        c.recv_type("peer_state").await["state"],
        state(false, false)
    );

    b.send(json!({"type": "state", "state": state(true, false)}))
        .await;
    assert_eq!(b.recv_type("error").await["code"], "hosts_only");
    // The host speaks; a later joiner is told the room's rule.
    a.send(json!({"type": "state", "state": state(true, false)}))
        .await;
    let next = c.recv().await;
    assert_eq!(
        next["peer_id"], a_welcome["peer_id"],
        "bob's unmute was not seen: {next}"
    );
    let dave = app.user_token("dave").await;
    let (_d, d_welcome) = app.join("team", &dave).await;
    assert_eq!(d_welcome["hosts_only"], true);

    a.send(json!({"type": "hosts_only", "on": false})).await;
    assert_eq!(b.recv_type("hosts_only").await["on"], false);
    b.send(json!({"type": "state", "state": state(true, false)}))
        .await;
    let unmuted = c.recv_type("peer_state").await;
    assert_eq!(unmuted["peer_id"], b_welcome["peer_id"]);
    assert_eq!(unmuted["state"], state(true, false));
    app.stop().await;
}

#[tokio::test]
async fn mute_all_mutes_everyone_but_the_host() {
    let app = spawn_app(&[]).await;
    let [(mut a, a_welcome), (mut b, _), (mut c, c_welcome)] = three_in_room(&app, "team").await;
    for client in [&mut a, &mut c] {
        client
            .send(json!({"type": "state", "state": state(true, false)}))
            .await;
    }
    assert_eq!(
        b.recv_type("peer_state").await["peer_id"],
        a_welcome["peer_id"]
    );
    assert_eq!(
        b.recv_type("peer_state").await["peer_id"],
        c_welcome["peer_id"]
    );

    a.send(json!({"type": "mute_all"})).await;
    assert_eq!(c.recv_type("moderated").await["action"], "mute");
    let seen = b.recv_type("peer_state").await;
    assert_eq!(seen["peer_id"], c_welcome["peer_id"]);
    assert_eq!(seen["state"], state(false, false));
    app.stop().await;
}

#[tokio::test]
async fn a_banned_account_is_refused_with_4006_across_a_restart_until_the_room_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("kept.db").display());
    let app = spawn_app(&[("DATABASE_URL", &db)]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    let (mut a, _) = app.join("team", &ada).await;
    let (mut b, b_welcome) = app.join("team", &bob).await;
    a.recv_type("peer_joined").await;

    a.send(json!({"type": "kick", "peer_id": b_welcome["peer_id"], "ban": true}))
        .await;
    assert_eq!(b.close_code().await, Some(4003));
    assert_eq!(a.recv_type("peer_left").await["reason"], "kicked");
    let mut again = app.try_ws("team", &bob, None).await.unwrap();
    let error = again.recv().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "banned_from_room");
    assert_eq!(again.close_code().await, Some(4006));
    // Elsewhere he is welcome.
    app.join("elsewhere", &bob).await;
    drop(a);
    app.stop().await;

    // The ban is stored with the room: a restart keeps it.
    let app = spawn_app(&[("DATABASE_URL", &db)]).await;
    let mut again = app.try_ws("team", &bob, None).await.unwrap();
    assert_eq!(again.recv().await["code"], "banned_from_room");
    assert_eq!(again.close_code().await, Some(4006));
    // Deleting the room ends it.
    let deleted = app.delete_authed("/api/v1/rooms/team", &ada).await;
    assert_eq!(deleted.status(), 204);
    let (_b, welcome) = app.join("team", &bob).await;
    assert_eq!(welcome["owner"], true, "a new room, his");
    app.stop().await;
}

#[tokio::test]
async fn moderation_reaches_peers_on_another_instance_through_redis() {
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
    let ada = one.user_token("ada").await;
    let bob = two.user_token("bob").await;
    let carol = one.user_token("carol").await;
    let (mut a, _) = one.join("team", &ada).await;
    let (mut b, b_welcome) = two.join("team", &bob).await;
    let (mut c, _) = one.join("team", &carol).await;
    a.recv_type("peer_joined").await;
    b.send(json!({"type": "state", "state": state(true, false)}))
        .await;
    assert_eq!(c.recv_type("peer_state").await["state"], state(true, false));

    // Ada, on instance one, mutes Bob, on instance two; Carol (one) sees it.
    a.send(json!({"type": "mute", "peer_id": b_welcome["peer_id"]}))
        .await;
    assert_eq!(b.recv_type("moderated").await["action"], "mute");
    let seen = c.recv_type("peer_state").await;
    assert_eq!(seen["peer_id"], b_welcome["peer_id"]);
    assert_eq!(seen["state"], state(false, false));

    // Only hosts may speak: instance two refuses Bob's unmute.
    a.send(json!({"type": "hosts_only", "on": true})).await;
    assert_eq!(b.recv_type("hosts_only").await["on"], true);
    b.send(json!({"type": "state", "state": state(true, false)}))
        .await;
    assert_eq!(b.recv_type("error").await["code"], "hosts_only");

    // Banned on one: closed on two, and refused there.
    a.send(json!({"type": "kick", "peer_id": b_welcome["peer_id"], "ban": true}))
        .await;
    assert_eq!(b.close_code().await, Some(4003));
    let mut again = two.try_ws("team", &bob, None).await.unwrap();
    assert_eq!(again.recv().await["code"], "banned_from_room");
    assert_eq!(again.close_code().await, Some(4006));
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn an_admin_moderates_in_someone_elses_room_and_a_member_owner_too() {
    let app = spawn_app(&[]).await;
    // The first account is an admin; Bob owns the room, Carol is in it.
    let root = app.user_token("root").await;
    let bob = app.user_token("bob").await;
    let carol = app.user_token("carol").await;
    let (mut b, b_welcome) = app.join("bobs", &bob).await;
    let (mut c, c_welcome) = app.join("bobs", &carol).await;
    let (mut r, r_welcome) = app.join("bobs", &root).await;
    assert_eq!(b_welcome["host"], true, "the owner");
    assert_eq!(c_welcome["host"], false);
    assert_eq!(r_welcome["host"], true, "an admin");
    assert_eq!(r_welcome["owner"], false);
    b.recv_type("peer_joined").await;
    c.recv_type("peer_joined").await;
    let joined = b.recv_type("peer_joined").await;
    assert_eq!(
        joined["peer"]["host"], true,
        "the others see the admin as a host"
    );

    r.send(json!({"type": "mute", "peer_id": c_welcome["peer_id"]}))
        .await;
    assert_eq!(c.recv_type("moderated").await["by"], r_welcome["peer_id"]);
    b.send(json!({"type": "hosts_only", "on": true})).await;
    assert_eq!(r.recv_type("hosts_only").await["by"], b_welcome["peer_id"]);
    // Hosts speak; Carol may not.
    r.send(json!({"type": "state", "state": state(true, false)}))
        .await;
    assert_eq!(
        b.recv_type("peer_state").await["peer_id"],
        r_welcome["peer_id"]
    );
    c.send(json!({"type": "state", "state": state(true, false)}))
        .await;
    assert_eq!(c.recv_type("error").await["code"], "hosts_only");
    app.stop().await;
}
