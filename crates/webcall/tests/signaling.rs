//! Signaling end to end: real WebSocket clients (tokio-tungstenite) against the
//! real server. Every frame type, every error, resume, stale peers, limits.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{error_of, spawn_app, TestApp, WsClient};
use tokio_tungstenite::tungstenite::Message;

async fn two_in_room(app: &TestApp, room: &str) -> (WsClient, Value, WsClient, Value) {
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    let (mut a, a_welcome) = app.join(room, &ada).await;
    let (b, b_welcome) = app.join(room, &bob).await;
    let joined = a.recv_type("peer_joined").await;
    assert_eq!(joined["peer"]["peer_id"], b_welcome["peer_id"]);
    (a, a_welcome, b, b_welcome)
}

#[tokio::test]
async fn the_upgrade_is_refused_without_a_valid_token_or_with_a_bad_room() {
    let app = spawn_app(&[]).await;
    let token = app.user_token("ada").await;
    assert_eq!(app.try_ws("lobby", "", None).await.err(), Some(401));
    assert_eq!(
        app.try_ws("lobby", "not-a-token", None).await.err(),
        Some(401)
    );
    assert_eq!(
        app.try_ws("bad%20room", &token, None).await.err(),
        Some(422)
    );
    assert_eq!(
        app.try_ws(&"x".repeat(65), &token, None).await.err(),
        Some(422)
    );
    let revoked = app.fresh_token("ada").await;
    app.post_authed("/api/v1/auth/logout", &revoked).await;
    assert_eq!(app.try_ws("lobby", &revoked, None).await.err(), Some(401));
    assert!(app.try_ws("lobby", &token, None).await.is_ok());
    app.stop().await;
}

#[tokio::test]
async fn welcome_carries_identity_peers_history_and_the_ice_servers() {
    let app = spawn_app(&[]).await;
    let token = app.user_token("ada").await;
    let (_a, welcome) = app.join("team", &token).await;
    assert_eq!(welcome["protocol"], 1);
    assert_eq!(welcome["room"], "team");
    assert_eq!(welcome["owner"], true, "the first joiner owns the room");
    assert_eq!(welcome["self"]["username"], "ada");
    assert_eq!(welcome["peers"], json!([]));
    assert_eq!(welcome["chat"], json!([]));
    assert_eq!(welcome["resumed"], false);
    assert!(welcome["resume_token"]
        .as_str()
        .is_some_and(|t| t.len() >= 16));
    assert!(welcome["peer_id"].as_str().is_some_and(|p| !p.is_empty()));
    let rest: Value = app
        .get_authed("/api/v1/webrtc/ice-servers", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(welcome["ice_servers"]["ttl"], rest["ttl"]);
    let urls = |v: &Value| {
        v["iceServers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["urls"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(urls(&welcome["ice_servers"]), urls(&rest));
    assert!(welcome["ice_servers"]["iceServers"][1]["credential"].is_string());

    let bob = app.user_token("bob").await;
    let (_b, second) = app.join("team", &bob).await;
    assert_eq!(second["owner"], false);
    // Who owns the room, for everyone (the participant list marks them).
    assert_eq!(second["owner_id"], welcome["self"]["user_id"]);
    assert_eq!(welcome["owner_id"], welcome["self"]["user_id"]);
    app.stop().await;
}

#[tokio::test]
async fn presence_shows_real_names_and_a_user_on_two_devices_is_two_peers() {
    let app = spawn_app(&[]).await;
    let (mut a, a_welcome, _b, b_welcome) = two_in_room(&app, "team").await;
    let peers = b_welcome["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["peer_id"], a_welcome["peer_id"]);
    assert_eq!(peers[0]["username"], "ada");
    assert_eq!(peers[0]["user_id"], a_welcome["self"]["user_id"]);
    assert_eq!(
        peers[0]["state"],
        json!({"audio": false, "video": false, "screen": false, "hand": false})
    );

    let bob_again = app.fresh_token("bob").await;
    let (_phone, phone) = app.join("team", &bob_again).await;
    assert_ne!(phone["peer_id"], b_welcome["peer_id"]);
    assert_eq!(phone["peers"].as_array().unwrap().len(), 2);
    let joined = a.recv_type("peer_joined").await;
    assert_eq!(joined["peer"]["username"], "bob");
    assert_eq!(joined["peer"]["peer_id"], phone["peer_id"]);
    app.stop().await;
}

#[tokio::test]
async fn signals_reach_only_their_target_with_the_server_setting_from() {
    let app = spawn_app(&[]).await;
    let (mut a, a_welcome, mut b, b_welcome) = two_in_room(&app, "team").await;
    let carol = app.user_token("carol").await;
    let (mut c, c_welcome) = app.join("other-room", &carol).await;

    let offer = json!({"sdp": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}});
    a.send(json!({"type": "signal", "to": b_welcome["peer_id"], "from": "forged", "data": offer}))
        .await;
    let signal = b.recv_type("signal").await;
    assert_eq!(
        signal["from"], a_welcome["peer_id"],
        "from is set by the server"
    );
    assert_eq!(signal["data"], offer, "data passes through untouched");

    // Nobody else sees it; a peer in another room cannot be reached.
    a.send(json!({"type": "signal", "to": c_welcome["peer_id"], "data": {"candidate": "x"}}))
        .await;
    let error = a.recv_type("error").await;
    assert_eq!(error["code"], "peer_not_found");
    a.send(json!({"type": "signal", "to": "no-such-peer", "data": {}}))
        .await;
    assert_eq!(a.recv_type("error").await["code"], "peer_not_found");
    assert!(c.quiet_for(Duration::from_millis(300)).await);
    app.stop().await;
}

#[tokio::test]
async fn chat_is_stored_echoed_to_the_sender_and_sent_as_history() {
    let app = spawn_app(&[]).await;
    let (mut a, a_welcome, mut b, _) = two_in_room(&app, "team").await;
    a.send(json!({"type": "chat", "text": "  hello <b>team</b>  "}))
        .await;
    let echoed = a.recv_type("chat").await;
    let received = b.recv_type("chat").await;
    assert_eq!(echoed, received);
    assert_eq!(
        received["text"], "hello <b>team</b>",
        "trimmed, not altered otherwise"
    );
    assert_eq!(received["from"], a_welcome["peer_id"]);
    assert_eq!(received["user_id"], a_welcome["self"]["user_id"]);
    assert_eq!(received["username"], "ada");
    assert!(chrono::DateTime::parse_from_rfc3339(received["ts"].as_str().unwrap()).is_ok());
    assert!(received["ts"].as_str().unwrap().ends_with('Z'));

    for bad in ["   ", &"x".repeat(2001)] {
        a.send(json!({"type": "chat", "text": bad})).await;
        assert_eq!(a.recv_type("error").await["code"], "validation_failed");
    }
    for i in 0..3 {
        a.send(json!({"type": "chat", "text": format!("m{i}")}))
            .await;
        a.recv_type("chat").await;
    }
    let carol = app.user_token("carol").await;
    let (_c, welcome) = app.join("team", &carol).await;
    let history: Vec<&str> = welcome["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        ["hello <b>team</b>", "m0", "m1", "m2"],
        "oldest first"
    );
    let ids: Vec<i64> = welcome["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let page: Value = app
        .get_authed(
            &format!("/api/v1/rooms/team/messages?before={}&limit=2", ids[3]),
            &carol,
        )
        .await
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["m0", "m1"]);
    let bad = app
        .get_authed("/api/v1/rooms/team/messages?before=abc", &carol)
        .await;
    assert_eq!(error_of(bad).await.0, 422);
    app.stop().await;
}

#[tokio::test]
async fn reactions_from_the_fixed_set_reach_the_room_and_others_get_an_error() {
    let app = spawn_app(&[]).await;
    let (mut a, a_welcome, mut b, _) = two_in_room(&app, "team").await;
    for emoji in ["👍", "👏", "😂", "❤️", "🎉", "😮"] {
        a.send(json!({"type": "reaction", "emoji": emoji})).await;
        let expected = json!({"type": "reaction", "peer_id": a_welcome["peer_id"], "emoji": emoji});
        assert_eq!(b.recv_type("reaction").await, expected);
        assert_eq!(
            a.recv_type("reaction").await,
            expected,
            "echoed to the sender"
        );
    }
    for bad in [json!("💩"), json!(""), json!("👍👍"), json!("<b>hi</b>")] {
        a.send(json!({"type": "reaction", "emoji": bad})).await;
        assert_eq!(a.recv_type("error").await["code"], "validation_failed");
    }
    a.send(json!({"type": "reaction", "emoji": 5})).await;
    assert_eq!(a.recv_type("error").await["code"], "bad_frame");
    a.send(json!({"type": "reaction"})).await;
    assert_eq!(a.recv_type("error").await["code"], "bad_frame");
    a.send(json!({"type": "chat", "text": "still here"})).await;
    assert_eq!(
        b.recv_type("chat").await["text"],
        "still here",
        "none of it closed the connection"
    );

    // A burst of reactions is rate limited like any frame: dropped with an error.
    for _ in 0..220 {
        a.send(json!({"type": "reaction", "emoji": "🎉"})).await;
    }
    let mut limited = false;
    while !limited {
        limited = a.recv().await["code"] == "rate_limited";
    }
    app.stop().await;
}

#[tokio::test]
async fn state_changes_reach_the_others_with_all_four_flags() {
    let app = spawn_app(&[]).await;
    let (mut a, a_welcome, mut b, _) = two_in_room(&app, "team").await;
    let state = json!({"audio": true, "video": false, "screen": true, "hand": true});
    a.send(json!({"type": "state", "state": state})).await;
    let frame = b.recv_type("peer_state").await;
    assert_eq!(frame["peer_id"], a_welcome["peer_id"]);
    assert_eq!(frame["state"], state);
    a.send(json!({"type": "state", "state": {"audio": true}}))
        .await;
    assert_eq!(a.recv_type("error").await["code"], "bad_frame");
    // Joiners see the current state.
    let carol = app.user_token("carol").await;
    let (_c, welcome) = app.join("team", &carol).await;
    let ada = welcome["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["username"] == "ada")
        .unwrap()
        .clone();
    assert_eq!(ada["state"], state);
    app.stop().await;
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_stays() {
    let app = spawn_app(&[]).await;
    let (mut a, _, mut b, _) = two_in_room(&app, "team").await;
    a.send_raw(Message::text("{not json")).await;
    assert_eq!(a.recv().await["code"], "bad_frame");
    a.send(json!({"no": "type"})).await;
    assert_eq!(a.recv().await["code"], "bad_frame");
    a.send(json!(["ping"])).await;
    assert_eq!(
        a.recv().await["code"],
        "bad_frame",
        "frames are JSON objects"
    );
    a.send(json!({"type": "dance"})).await;
    assert_eq!(a.recv().await["code"], "unknown_type");
    a.send(json!({"type": "signal", "to": 5})).await;
    assert_eq!(a.recv().await["code"], "bad_frame");
    a.send_raw(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(a.recv().await["code"], "unsupported_frame");
    a.send(json!({"type": "ping"})).await;
    assert_eq!(a.recv().await, json!({"type": "pong"}));
    a.send(json!({"type": "chat", "text": "still here"})).await;
    assert_eq!(b.recv_type("chat").await["text"], "still here");
    app.stop().await;
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_only_that_connection_with_1009() {
    let app = spawn_app(&[]).await;
    let (mut a, _, mut b, _) = two_in_room(&app, "team").await;
    b.send_raw(Message::text(format!(
        "{{\"type\":\"chat\",\"text\":\"{}\"}}",
        "x".repeat(70 * 1024)
    )))
    .await;
    assert_eq!(b.close_code().await, Some(1009));
    a.send(json!({"type": "ping"})).await;
    assert_eq!(a.recv_type("pong").await["type"], "pong");
    app.stop().await;
}

#[tokio::test]
async fn a_flooding_client_is_rate_limited_then_closed_with_4029() {
    let app = spawn_app(&[]).await;
    let (mut a, _, mut b, _) = two_in_room(&app, "team").await;
    for _ in 0..400 {
        b.send(json!({"type": "ping"})).await;
    }
    let mut saw_rate_limited = false;
    let code = loop {
        match b.next().await {
            Some(Message::Text(text)) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                saw_rate_limited |= frame["code"] == "rate_limited";
            }
            Some(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Some(_) => {}
            None => break None,
        }
    };
    assert!(saw_rate_limited);
    assert_eq!(code, Some(4029));
    a.send(json!({"type": "ping"})).await;
    assert_eq!(
        a.recv_type("pong").await["type"],
        "pong",
        "others are unaffected"
    );
    app.stop().await;
}

#[tokio::test]
async fn leave_tells_the_others_at_once() {
    let app = spawn_app(&[]).await;
    let (mut a, _, mut b, b_welcome) = two_in_room(&app, "team").await;
    b.send(json!({"type": "leave"})).await;
    let left = a.recv_type("peer_left").await;
    assert_eq!(
        left,
        json!({"type": "peer_left", "peer_id": b_welcome["peer_id"], "reason": "left"})
    );
    assert_eq!(b.close_code().await, Some(1000));
    app.stop().await;
}

#[tokio::test]
async fn only_the_owner_kicks_and_the_kicked_peer_is_closed_with_4003() {
    let app = spawn_app(&[]).await;
    let (mut a, a_welcome, mut b, b_welcome) = two_in_room(&app, "team").await;
    b.send(json!({"type": "kick", "peer_id": a_welcome["peer_id"]}))
        .await;
    assert_eq!(b.recv_type("error").await["code"], "not_room_owner");
    a.send(json!({"type": "kick", "peer_id": "nobody"})).await;
    assert_eq!(a.recv_type("error").await["code"], "peer_not_found");
    a.send(json!({"type": "kick", "peer_id": b_welcome["peer_id"]}))
        .await;
    assert_eq!(b.close_code().await, Some(4003));
    let left = a.recv_type("peer_left").await;
    assert_eq!(left["reason"], "kicked");
    assert_eq!(left["peer_id"], b_welcome["peer_id"]);
    app.stop().await;
}

#[tokio::test]
async fn the_room_is_full_at_room_max_peers() {
    let app = spawn_app(&[("ROOM_MAX_PEERS", "2")]).await;
    let (_a, _, _b, _) = two_in_room(&app, "team").await;
    let carol = app.user_token("carol").await;
    let mut c = app.try_ws("team", &carol, None).await.unwrap();
    let error = c.recv().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "room_full");
    assert_eq!(c.close_code().await, Some(4009));
    app.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_removed_with_reason_timeout() {
    let app = spawn_app(&[
        ("WS_PING_SECS", "1"),
        ("WS_IDLE_TIMEOUT_SECS", "2"),
        ("WS_RESUME_GRACE_SECS", "1"),
    ])
    .await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    let (mut a, _) = app.join("team", &ada).await;
    // Bob never reads again, so never answers a ping: silent.
    let (_b_silent, b_welcome) = app.join("team", &bob).await;
    a.recv_type("peer_joined").await;
    // Ada keeps answering pings while she waits (recv polls the socket).
    let left = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), a.recv())
            .await
            .expect("peer_left within 10 s");
        if frame["type"] == "peer_left" {
            break frame;
        }
    };
    assert_eq!(left["peer_id"], b_welcome["peer_id"]);
    assert_eq!(left["reason"], "timeout");
    app.stop().await;
}

#[tokio::test]
async fn a_dropped_peer_resumes_with_its_id_and_missed_frames_and_no_churn() {
    let app = spawn_app(&[("WS_RESUME_GRACE_SECS", "10")]).await;
    let (mut a, a_welcome, b, b_welcome) = two_in_room(&app, "team").await;
    let bob = app.fresh_token("bob").await;
    b.vanish();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Sent while Bob is away.
    a.send(json!({"type": "signal", "to": b_welcome["peer_id"], "data": {"candidate": "missed"}}))
        .await;
    a.send(json!({"type": "chat", "text": "are you there?"}))
        .await;
    a.recv_type("chat").await;

    let resume = b_welcome["resume_token"].as_str().unwrap();
    let mut b = app.try_ws("team", &bob, Some(resume)).await.unwrap();
    let welcome = b.recv().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["peer_id"], b_welcome["peer_id"], "same peer id");
    assert_eq!(welcome["peers"][0]["peer_id"], a_welcome["peer_id"]);
    let signal = b.recv_type("signal").await;
    assert_eq!(signal["data"]["candidate"], "missed");
    assert_eq!(b.recv_type("chat").await["text"], "are you there?");
    // Ada saw neither a peer_left nor a peer_joined.
    assert!(a.quiet_for(Duration::from_millis(500)).await);

    // A stale or unknown resume token is simply a fresh join.
    let bob2 = app.fresh_token("bob").await;
    let mut fresh = app
        .try_ws("team", &bob2, Some("not-a-token"))
        .await
        .unwrap();
    let welcome = fresh.recv().await;
    assert_eq!(welcome["resumed"], false);
    assert_ne!(welcome["peer_id"], b_welcome["peer_id"]);
    app.stop().await;
}

#[tokio::test]
async fn resuming_while_the_old_socket_is_still_open_takes_it_over() {
    let app = spawn_app(&[]).await;
    let (mut a, _, mut old, b_welcome) = two_in_room(&app, "team").await;
    let bob = app.fresh_token("bob").await;
    let resume = b_welcome["resume_token"].as_str().unwrap();
    let mut new = app.try_ws("team", &bob, Some(resume)).await.unwrap();
    let welcome = new.recv().await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["peer_id"], b_welcome["peer_id"]);
    assert_eq!(
        old.close_code().await,
        Some(1000),
        "the old socket is closed"
    );
    a.send(json!({"type": "chat", "text": "to the new socket"}))
        .await;
    assert_eq!(new.recv_type("chat").await["text"], "to the new socket");
    assert_eq!(
        a.recv().await["type"],
        "chat",
        "Ada's own echo, and no peer_left/peer_joined before it"
    );
    assert!(
        a.quiet_for(Duration::from_millis(300)).await,
        "nor after it"
    );
    app.stop().await;
}

#[tokio::test]
async fn after_the_grace_period_a_dropped_peer_leaves_with_timeout() {
    let app = spawn_app(&[("WS_RESUME_GRACE_SECS", "1")]).await;
    let (mut a, _, b, b_welcome) = two_in_room(&app, "team").await;
    b.vanish();
    let left = a.recv_type("peer_left").await;
    assert_eq!(left["peer_id"], b_welcome["peer_id"]);
    assert_eq!(left["reason"], "timeout");
    app.stop().await;
}

#[tokio::test]
async fn logout_closes_the_tokens_connections_with_4401() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    let (mut a, _) = app.join("team", &ada).await;
    let (mut b, b_welcome) = app.join("team", &bob).await;
    a.recv_type("peer_joined").await;
    assert_eq!(
        app.post_authed("/api/v1/auth/logout", &bob).await.status(),
        204
    );
    assert_eq!(b.close_code().await, Some(4401));
    let left = a.recv_type("peer_left").await;
    assert_eq!(left["peer_id"], b_welcome["peer_id"]);
    app.stop().await;
}

#[tokio::test]
async fn an_expiring_token_closes_its_connection_with_4401() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    let me: Value = app
        .get_authed("/api/v1/auth/me", &ada)
        .await
        .json()
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": me["id"], "iat": now, "exp": now + 2, "jti": uuid::Uuid::new_v4()});
    let short = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(support::JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (mut a, _) = app.join("team", &short).await;
    assert_eq!(a.close_code().await, Some(4401));
    app.stop().await;
}

#[tokio::test]
async fn rooms_are_listed_with_live_people_and_the_owner_deletes_them() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    let created = app
        .http
        .post(app.url("/api/v1/rooms"))
        .bearer_auth(&ada)
        .json(&json!({"name": "planning"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let room: Value = created.json().await.unwrap();
    assert_eq!(room["name"], "planning");
    assert_eq!(room["owner"]["username"], "ada");
    let again = app
        .http
        .post(app.url("/api/v1/rooms"))
        .bearer_auth(&bob)
        .json(&json!({"name": "planning"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(again).await,
        (409, "room_exists".into(), Some("name".into()))
    );
    let bad = app
        .http
        .post(app.url("/api/v1/rooms"))
        .bearer_auth(&bob)
        .json(&json!({"name": "no spaces"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(bad).await,
        (422, "validation_failed".into(), Some("name".into()))
    );

    let (mut a, welcome) = app.join("planning", &ada).await;
    assert_eq!(welcome["owner"], true);
    let a_id = welcome["peer_id"].as_str().unwrap().to_owned();
    let (mut b, b_welcome) = app.join("planning", &bob).await;
    let b_id = b_welcome["peer_id"].as_str().unwrap().to_owned();
    let (mut b2, b2_welcome) = app.join("planning", &bob).await;
    let b2_id = b2_welcome["peer_id"].as_str().unwrap().to_owned();
    b.recv_type("peer_joined").await;
    a.recv_type("peer_joined").await;
    a.recv_type("peer_joined").await;
    let list: Value = app
        .get_authed("/api/v1/rooms", &bob)
        .await
        .json()
        .await
        .unwrap();
    let planning = list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "planning")
        .unwrap()
        .clone();
    assert_eq!(planning["participants"], 3);
    let mut people: Vec<&str> = planning["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    people.sort();
    assert_eq!(people, ["ada", "bob", "bob"]);
    assert_eq!(
        error_of(app.get_authed("/api/v1/rooms", "nope").await)
            .await
            .0,
        401
    );

    let refused = app.delete_authed("/api/v1/rooms/planning", &bob).await;
    assert_eq!(
        error_of(refused).await,
        (403, "not_room_owner".into(), None)
    );
    let missing = app.delete_authed("/api/v1/rooms/nothing", &ada).await;
    assert_eq!(
        error_of(missing).await,
        (404, "room_not_found".into(), None)
    );
    let deleted = app.delete_authed("/api/v1/rooms/planning", &ada).await;
    assert_eq!(deleted.status(), 204);
    // Each is told that the others left because the room was deleted, then closed.
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        a.left_until_close("room_deleted").await,
        (sorted(vec![b_id.clone(), b2_id.clone()]), Some(4004))
    );
    assert_eq!(
        b.left_until_close("room_deleted").await,
        (sorted(vec![a_id.clone(), b2_id.clone()]), Some(4004))
    );
    assert_eq!(
        b2.left_until_close("room_deleted").await,
        (sorted(vec![a_id, b_id]), Some(4004))
    );
    let list: Value = app
        .get_authed("/api/v1/rooms", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert!(list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["name"] != "planning"));
    let history = app
        .get_authed("/api/v1/rooms/planning/messages", &bob)
        .await;
    assert_eq!(error_of(history).await.1, "room_not_found");
    app.stop().await;
}

/// The room's latest stored messages, as the REST API pages them.
async fn stored_history(app: &TestApp, room: &str, token: &str) -> Value {
    let page: Value = app
        .get_authed(&format!("/api/v1/rooms/{room}/messages?limit=50"), token)
        .await
        .json()
        .await
        .unwrap();
    page["messages"].clone()
}

#[tokio::test]
async fn welcome_history_is_the_latest_50_stored_while_the_room_is_busy() {
    let app = spawn_app(&[]).await;
    let (mut a, _, mut b, _) = two_in_room(&app, "team").await;
    for i in 0..60 {
        let (sender, other) = if i % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        sender
            .send(json!({"type": "chat", "text": format!("m{i}")}))
            .await;
        sender.recv_type("chat").await;
        other.recv_type("chat").await;
    }
    let carol = app.user_token("carol").await;
    let (_c, welcome) = app.join("team", &carol).await;
    let stored = stored_history(&app, "team", &carol).await;
    assert_eq!(stored.as_array().unwrap().len(), 50);
    assert_eq!(stored[0]["text"], "m10");
    assert_eq!(welcome["chat"], stored, "the same 50, oldest first");
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_room_is_not_remembered_with_its_owner_or_history() {
    let app = spawn_app(&[]).await;
    let (mut a, _, mut b, _) = two_in_room(&app, "planning").await;
    a.send(json!({"type": "chat", "text": "before"})).await;
    b.recv_type("chat").await;
    let ada = app.fresh_token("ada").await;
    let deleted = app.delete_authed("/api/v1/rooms/planning", &ada).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(a.close_code().await, Some(4004));
    assert_eq!(b.close_code().await, Some(4004));

    let bob = app.fresh_token("bob").await;
    let (_b, welcome) = app.join("planning", &bob).await;
    assert_eq!(
        welcome["owner"], true,
        "a new room, owned by its first joiner"
    );
    assert_eq!(welcome["chat"], json!([]));
    let (_a, welcome) = app.join("planning", &ada).await;
    assert_eq!(welcome["owner"], false);
    assert_eq!(welcome["chat"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_logged_out_token_is_refused_at_once_while_its_room_is_live() {
    let app = spawn_app(&[]).await;
    let (_a, _, mut b, _) = two_in_room(&app, "team").await;
    let bob = app.fresh_token("bob").await;
    let (_b2, _) = app.join("team", &bob).await;
    assert_eq!(
        app.post_authed("/api/v1/auth/logout", &bob).await.status(),
        204
    );
    assert_eq!(app.try_ws("team", &bob, None).await.err(), Some(401));
    let refused = app.get_authed("/api/v1/auth/me", &bob).await;
    assert_eq!(error_of(refused).await.1, "token_revoked");
    // Bob's other token still works.
    b.send(json!({"type": "ping"})).await;
    assert_eq!(b.recv_type("pong").await["type"], "pong");
    app.stop().await;
}

#[tokio::test]
async fn chat_survives_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("persist.db").display());
    let app = spawn_app(&[("DATABASE_URL", &db)]).await;
    let ada = app.user_token("ada").await;
    let (mut a, _) = app.join("team", &ada).await;
    a.send(json!({"type": "chat", "text": "remember me"})).await;
    a.recv_type("chat").await;
    app.stop().await;

    let app = spawn_app(&[("DATABASE_URL", &db)]).await;
    let token = app.fresh_token("ada").await;
    let (_a, welcome) = app.join("team", &token).await;
    assert_eq!(welcome["chat"][0]["text"], "remember me");
    assert_eq!(welcome["owner"], true, "ownership survives too");
    app.stop().await;
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1001() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    let (mut a, _) = app.join("team", &ada).await;
    let stopping = tokio::spawn(app.stop());
    assert_eq!(a.close_code().await, Some(1001));
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("stops within 10 s")
        .unwrap();
}

#[tokio::test]
async fn peers_joining_at_the_same_moment_all_see_each_other() {
    let app = spawn_app(&[]).await;
    let mut tokens = Vec::new();
    for i in 0..12 {
        tokens.push(app.user_token(&format!("user{i}")).await);
    }
    let joins = tokens.iter().map(|token| app.join("crowd", token));
    let mut clients: Vec<(WsClient, Value)> = futures_util::future::join_all(joins).await;
    let all: std::collections::HashSet<String> = clients
        .iter()
        .map(|(_, w)| w["peer_id"].as_str().unwrap().to_owned())
        .collect();
    for (client, welcome) in &mut clients {
        let me = welcome["peer_id"].as_str().unwrap().to_owned();
        let mut known: std::collections::HashSet<String> = welcome["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["peer_id"].as_str().unwrap().to_owned())
            .collect();
        while known.len() < all.len() - 1 {
            let frame = client.recv_type("peer_joined").await;
            known.insert(frame["peer"]["peer_id"].as_str().unwrap().to_owned());
        }
        assert!(!known.contains(&me));
        assert_eq!(known.len(), all.len() - 1);
    }
    // The room did not exist: it was looked up (and created) once for all of
    // them, by one joiner, who owns it.
    let owners = clients.iter().filter(|(_, w)| w["owner"] == true).count();
    assert_eq!(owners, 1);
    app.stop().await;
}

#[tokio::test]
async fn peers_joining_an_empty_room_at_once_all_get_its_stored_history() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    {
        let (mut a, _) = app.join("lounge", &ada).await;
        for i in 0..3 {
            a.send(json!({"type": "chat", "text": format!("earlier {i}")}))
                .await;
            a.recv_type("chat").await;
        }
        a.send(json!({"type": "leave"})).await;
        assert_eq!(a.close_code().await, Some(1000));
    }
    // The room has no peers now, so nothing of it is in memory: the joiners
    // below arrive while its history is being read.
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(app.user_token(&format!("user{i}")).await);
    }
    let joins = tokens.iter().map(|token| app.join("lounge", token));
    let clients: Vec<(WsClient, Value)> = futures_util::future::join_all(joins).await;
    for (_, welcome) in &clients {
        let texts: Vec<&str> = welcome["chat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["earlier 0", "earlier 1", "earlier 2"]);
        assert_eq!(welcome["owner"], false, "ada created the room");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_peer_that_never_reads_does_not_stall_the_room() {
    let app = spawn_app(&[]).await;
    let (mut a, _, _never_reads, _) = two_in_room(&app, "team").await;
    let carol = app.user_token("carol").await;
    let (mut c, _) = app.join("team", &carol).await;
    a.recv_type("peer_joined").await;
    // Far more than the socket buffers and the per-connection queue of the peer
    // that never reads can hold.
    let big = "x".repeat(1900);
    for i in 0..1500 {
        let sender = if i % 2 == 0 { &mut a } else { &mut c };
        sender
            .send(json!({"type": "chat", "text": format!("{i} {big}")}))
            .await;
        if i % 45 == 44 {
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 1500 {
        let frame = c.recv_type("chat").await;
        seen.insert(
            frame["text"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_peer_that_stops_reading_big_signals_is_closed_with_4008_and_the_others_get_all() {
    let app = spawn_app(&[]).await;
    let (slow_token, fast_token, sender_token) = (
        app.user_token("slow").await,
        app.user_token("fast").await,
        app.user_token("sender").await,
    );
    let (mut slow, slow_welcome) = app.join_small_buffer("big", &slow_token).await;
    let (mut fast, fast_welcome) = app.join("big", &fast_token).await;
    let (mut sender, _) = app.join("big", &sender_token).await;
    fast.recv_type("peer_joined").await;
    // From here on `slow` reads nothing until the sender is done: 120 signals of
    // 60 KiB (7 MiB) each to it and to `fast`, within the rate limit.
    const SIGNALS: usize = 120;
    let reader = tokio::spawn(async move {
        let mut seen = 0;
        while seen < SIGNALS {
            let frame = fast.recv_type("signal").await;
            assert_eq!(frame["data"]["n"], seen, "in order, none missing");
            seen += 1;
        }
        fast
    });
    let pad = "x".repeat(60 * 1024);
    for n in 0..SIGNALS {
        for to in [&slow_welcome["peer_id"], &fast_welcome["peer_id"]] {
            sender
                .send(json!({"type": "signal", "to": to, "data": {"n": n, "pad": pad}}))
                .await;
        }
        if n % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    }
    let mut fast = reader.await.unwrap();
    // What the kernel held reaches `slow`, then the close: its queue overflowed
    // (1 MiB) long before the 120th signal.
    let mut signals = 0;
    let code = loop {
        match slow.next().await {
            Some(Message::Text(_)) => signals += 1,
            Some(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Some(_) => {}
            None => break None,
        }
    };
    assert_eq!(code, Some(4008), "after {signals} signals");
    assert!(signals < SIGNALS, "{signals}");
    // The others carry on.
    sender
        .send(json!({"type": "chat", "text": "still here"}))
        .await;
    assert_eq!(fast.recv_type("chat").await["text"], "still here");
    app.stop().await;
}

#[tokio::test]
async fn metrics_show_peers_frames_requests_and_the_relay() {
    let app = spawn_app(&[]).await;
    let (mut a, _, _b, _) = two_in_room(&app, "team").await;
    a.send(json!({"type": "chat", "text": "counted"})).await;
    a.recv_type("chat").await;
    assert_eq!(
        app.login_username("ada", "wrong-password").await.status(),
        401
    );
    let text = app.metrics().await;
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    };
    assert_eq!(value("webcall_peers "), 2.0);
    assert_eq!(value("webcall_rooms "), 1.0);
    assert!(value("webcall_ws_frames_total{direction=\"in\"}") >= 1.0);
    assert!(value("webcall_ws_frames_total{direction=\"out\"}") >= 3.0);
    assert!(value("webcall_auth_failures_total{kind=\"login\"}") >= 1.0);
    assert!(text.contains(
        "webcall_http_requests_total{route=\"/api/v1/auth/login\",method=\"POST\",status=\"401\"}"
    ));
    assert!(
        text.contains("webcall_http_request_duration_seconds_bucket{route=\"/api/v1/auth/login\"")
    );
    assert!(text.contains("webcall_turn_allocations "));
    app.stop().await;
}

/// The Grafana dashboard in deploy/ only charts metrics the server exports.
#[tokio::test]
async fn the_grafana_dashboard_uses_exported_metrics() {
    let app = spawn_app(&[]).await;
    let (mut a, _, _b, _) = two_in_room(&app, "team").await;
    a.send(json!({"type": "chat", "text": "x"})).await;
    a.recv_type("chat").await;
    app.login_username("ada", "wrong-password").await;
    let exported = app.metrics().await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana-dashboard.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("webcall_") {
                    names.insert(word.trim_end_matches("_bucket").to_owned());
                }
            }
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        assert!(
            exported.contains(name.as_str()),
            "{name} is not exported:\n{exported}"
        );
    }
    app.stop().await;
}

/// `ROOMS_PER_USER` caps the rooms one account owns, whether made by POST or by
/// joining a new name (403 `room_limit_reached` / close 4013); others may still
/// create; the list comes a page at a time with `next_cursor`.
#[tokio::test]
async fn rooms_per_user_are_capped_and_listed_in_pages() {
    let app = spawn_app(&[("ROOMS_PER_USER", "3")]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    for name in ["a1", "a2"] {
        assert_eq!(app.create_room(&ada, name).await.status(), 201);
    }
    // The third by a first join.
    let (_a3, _) = app.join("a3", &ada).await;
    assert_eq!(
        error_of(app.create_room(&ada, "a4").await).await,
        (403, "room_limit_reached".into(), None)
    );
    let mut over = app.try_ws("a5", &ada, None).await.expect("upgraded");
    let error = over.recv().await;
    assert_eq!(error["code"], "room_limit_reached", "{error}");
    assert_eq!(over.close_code().await, Some(4013));
    // An existing room is joined whoever owns it; others still create.
    let (_b, _) = app.join("a1", &bob).await;
    for name in ["b1", "b2"] {
        assert_eq!(app.create_room(&bob, name).await.status(), 201);
    }

    let mut seen = Vec::new();
    let mut path = "/api/v1/rooms?limit=2".to_owned();
    loop {
        let page: Value = app.get_authed(&path, &bob).await.json().await.unwrap();
        let rooms = page["rooms"].as_array().unwrap();
        assert!(rooms.len() <= 2, "{page}");
        seen.extend(rooms.iter().map(|r| r["name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/rooms?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a1", "a2", "a3", "b1", "b2"]);
    assert_eq!(
        error_of(app.get_authed("/api/v1/rooms?cursor=no%20such", &bob).await)
            .await
            .0,
        422
    );
    app.stop().await;
}

/// `ROOM_CREATIONS_PER_HOUR` counts creations (deleted rooms too), atomically:
/// concurrent requests cannot pass it; beyond it 429 with Retry-After, or close
/// 4013 on a join that would create a room; other users are not affected.
#[tokio::test]
async fn room_creations_are_rate_limited_per_user() {
    let app = spawn_app(&[("ROOM_CREATIONS_PER_HOUR", "3")]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    let names: Vec<String> = (0..10).map(|i| format!("burst-{i}")).collect();
    let attempts = names.iter().map(|name| app.create_room(&ada, name));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    // Deleting does not give the creation back.
    let deleted = app.delete_authed("/api/v1/rooms/burst-0", &ada).await;
    assert!(matches!(deleted.status().as_u16(), 204 | 404));
    let refused = app.create_room(&ada, "one-more").await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(
        error_of(refused).await,
        (429, "room_creation_rate".into(), None)
    );
    let mut joined = app
        .try_ws("by-joining", &ada, None)
        .await
        .expect("upgraded");
    assert_eq!(joined.recv().await["code"], "room_creation_rate");
    assert_eq!(joined.close_code().await, Some(4013));
    assert_eq!(app.create_room(&bob, "bobs").await.status(), 201);
    app.stop().await;
}
