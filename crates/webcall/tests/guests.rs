//! Guest links through the real server: a room's owner (or an admin, never a
//! member) makes, lists and revokes invite links; a link's use limit holds; a
//! guest token opens its room's call and the ICE servers and nothing else;
//! guests are marked in the call, can be removed, and leave with the room;
//! and no token reaches the log.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use support::{error_of, spawn_app, TestApp};

/// What the servers of this test binary log: WebCall's crates at every level,
/// the HTTP and SQL layers at DEBUG (not the test's own WebSocket client,
/// which logs the URLs it opens).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "webcall=trace,webcall_http=trace,webcall_app=trace,webcall_db=trace,\
                 webcall_auth=trace,tower_http=debug,axum=debug,sqlx=debug",
            ))
            .with_writer(move || Capture(sink.clone()))
            .init();
        logs
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An admin (the first account), the room's owner and a member, with `room` made.
async fn people(app: &TestApp, room: &str) -> (String, String, String) {
    let admin = app.user_token("root").await;
    let owner = app.user_token("ada").await;
    let member = app.user_token("bob").await;
    assert_eq!(app.create_room(&owner, room).await.status(), 201);
    (admin, owner, member)
}

async fn create(app: &TestApp, token: &str, room: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v1/rooms/{room}/invites")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn revoke(app: &TestApp, token: &str, room: &str, id: &str) -> reqwest::Response {
    app.delete_authed(&format!("/api/v1/rooms/{room}/invites/{id}"), token)
        .await
}

/// A link for `room` made by `token`: (id, invite token from the URL's fragment).
async fn link(app: &TestApp, token: &str, room: &str, body: Value) -> (String, String) {
    let made = create(app, token, room, body).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let url = made["url"].as_str().unwrap();
    let (_, secret) = url.split_once("/join#").expect("a /join#TOKEN link");
    (made["id"].as_str().unwrap().to_owned(), secret.to_owned())
}

async fn guest(app: &TestApp, invite: &str, name: &str) -> reqwest::Response {
    app.post_json("/api/v1/guest", &json!({"token": invite, "name": name}))
        .await
}

async fn guest_token(app: &TestApp, invite: &str, name: &str) -> String {
    let joined = guest(app, invite, name).await;
    assert_eq!(joined.status(), 200);
    let body: Value = joined.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_owner_and_admins_manage_a_rooms_links_and_members_get_403() {
    let logs = captured_logs();
    let app = spawn_app(&[]).await;
    let (admin, owner, member) = people(&app, "team").await;

    let made = create(
        &app,
        &owner,
        "team",
        json!({"expires_in": 7200, "max_uses": 3}),
    )
    .await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let url = made["url"].as_str().unwrap();
    let secret = url.split_once("/join#").unwrap().1;
    assert!(
        url.starts_with(&format!("http://{}/join#", app.addr)),
        "{url}"
    );
    assert_eq!(secret.len(), 64, "244 random bits in hex");
    assert_eq!(made["max_uses"], 3);
    assert_eq!(made["uses"], 0);
    assert_eq!(made["state"], "active");

    let listed = app.get_authed("/api/v1/rooms/team/invites", &owner).await;
    assert_eq!(listed.status(), 200);
    let text = listed.text().await.unwrap();
    assert!(!text.contains(secret), "the token is shown once only");
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed["invites"][0]["id"], made["id"]);
    assert!(listed["invites"][0].get("url").is_none());

    // A member of the server is no host of Ada's room.
    let id = made["id"].as_str().unwrap();
    let refused = [
        create(&app, &member, "team", json!({})).await,
        app.get_authed("/api/v1/rooms/team/invites", &member).await,
        revoke(&app, &member, "team", id).await,
    ];
    for response in refused {
        assert_eq!(
            error_of(response).await,
            (403, "not_room_owner".into(), None)
        );
    }
    // An admin may, in any room.
    let (admin_link, _) = link(&app, &admin, "team", json!({"max_uses": null})).await;
    let listed: Value = app
        .get_authed("/api/v1/rooms/team/invites", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["invites"].as_array().unwrap().len(), 2);
    assert_eq!(
        listed["invites"][0]["max_uses"],
        Value::Null,
        "newest first"
    );
    assert_eq!(
        revoke(&app, &admin, "team", &admin_link).await.status(),
        204
    );
    assert_eq!(revoke(&app, &owner, "team", id).await.status(), 204);
    assert_eq!(
        error_of(revoke(&app, &owner, "team", id).await).await,
        (404, "invite_not_found".into(), None)
    );
    assert_eq!(
        error_of(revoke(&app, &owner, "team", "not-an-id").await).await,
        (404, "invite_not_found".into(), None)
    );

    // Bad input: each refused by field, nothing made.
    for (body, field) in [
        (json!({"expires_in": 60}), "expires_in"),
        (json!({"expires_in": 40 * 86400}), "expires_in"),
        (json!({"max_uses": 0}), "max_uses"),
        (json!({"max_uses": 1001}), "max_uses"),
        (json!({"max_uses": -1}), "max_uses"),
        (json!({"expires_in": "soon"}), "expires_in"),
    ] {
        let (status, code, got) = error_of(create(&app, &owner, "team", body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "validation_failed"),
            "{body}"
        );
        assert_eq!(got.as_deref(), Some(field), "{body}");
    }
    assert_eq!(
        error_of(create(&app, &owner, "nowhere", json!({})).await).await,
        (404, "room_not_found".into(), None)
    );
    let unauthenticated = app
        .post_json("/api/v1/rooms/team/invites", &json!({}))
        .await;
    assert_eq!(unauthenticated.status(), 401);
    let listed: Value = app
        .get_authed("/api/v1/rooms/team/invites", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["invites"], json!([]));
    assert_no_secret_logged(&logs, secret);
}

#[tokio::test]
async fn a_link_admits_as_many_guests_as_it_allows_and_none_once_revoked() {
    let logs = captured_logs();
    let app = spawn_app(&[]).await;
    let (_, owner, _) = people(&app, "team").await;
    let (id, invite) = link(&app, &owner, "team", json!({"max_uses": 2})).await;

    let preview = app
        .post_json("/api/v1/guest/invite", &json!({"token": invite}))
        .await;
    assert_eq!(preview.status(), 200);
    assert_eq!(preview.json::<Value>().await.unwrap()["room"], "team");

    let (status, code, field) = error_of(guest(&app, &invite, "<b>x</b>").await).await;
    assert_eq!(
        (status, code.as_str(), field.as_deref()),
        (422, "validation_failed", Some("name"))
    );
    let first = guest(&app, &invite, "  Anna  K. ").await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["room"], "team");
    assert_eq!(first["guest"]["name"], "Anna K.");
    assert_eq!(first["expires_in"], 12 * 3600);
    guest_token(&app, &invite, "Ada").await; // a member's name is fine: guests wear a badge
    assert_eq!(
        error_of(guest(&app, &invite, "Third").await).await,
        (410, "invite_used_up".into(), None)
    );
    let preview = app
        .post_json("/api/v1/guest/invite", &json!({"token": invite}))
        .await;
    assert_eq!(
        error_of(preview).await,
        (410, "invite_used_up".into(), None)
    );
    let listed: Value = app
        .get_authed("/api/v1/rooms/team/invites", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["invites"][0]["uses"], 2);
    assert_eq!(listed["invites"][0]["state"], "used_up");

    let (_, unlimited) = link(&app, &owner, "team", json!({})).await;
    guest_token(&app, &unlimited, "Anna").await;
    let revoked_id = {
        let listed: Value = app
            .get_authed("/api/v1/rooms/team/invites", &owner)
            .await
            .json()
            .await
            .unwrap();
        listed["invites"][0]["id"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        revoke(&app, &owner, "team", &revoked_id).await.status(),
        204
    );
    assert_eq!(
        error_of(guest(&app, &unlimited, "Anna").await).await,
        (404, "invite_not_found".into(), None)
    );
    for garbage in ["", "abc", &"0".repeat(64)] {
        assert_eq!(
            error_of(guest(&app, garbage, "Anna").await).await,
            (404, "invite_not_found".into(), None)
        );
    }
    assert_eq!(revoke(&app, &owner, "team", &id).await.status(), 204);
    assert_no_secret_logged(&logs, &invite);
    assert_no_secret_logged(&logs, &unlimited);
    assert_no_secret_logged(&logs, first["access_token"].as_str().unwrap());
}

#[tokio::test]
async fn a_guest_token_opens_its_rooms_call_and_ice_servers_and_nothing_else() {
    let logs = captured_logs();
    let app = spawn_app(&[]).await;
    let (_, owner, _) = people(&app, "team").await;
    assert_eq!(app.create_room(&owner, "other").await.status(), 201);
    let (_, invite) = link(&app, &owner, "team", json!({})).await;
    let token = guest_token(&app, &invite, "Anna").await;

    let ice = app.get_authed("/api/v1/webrtc/ice-servers", &token).await;
    assert_eq!(ice.status(), 200);
    assert!(ice.json::<Value>().await.unwrap()["iceServers"].is_array());
    for path in [
        "/api/v1/auth/me",
        "/api/v1/rooms",
        "/api/v1/rooms/team",
        "/api/v1/rooms/team/messages",
        "/api/v1/rooms/team/invites",
        "/api/v1/admin/users",
        "/api/v1/admin/calls",
    ] {
        let (status, code, _) = error_of(app.get_authed(path, &token).await).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "token_invalid"),
            "GET {path}"
        );
    }
    for path in [
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/rooms",
    ] {
        let status = app.post_authed(path, &token).await.status();
        assert_eq!(status, 401, "POST {path}");
    }
    let delete = app.delete_authed("/api/v1/rooms/team", &token).await;
    assert_eq!(delete.status(), 401);
    assert_eq!(app.try_ws("other", &token, None).await.err(), Some(403));
    assert_eq!(app.try_ws("team", "forged", None).await.err(), Some(401));

    // In the call: marked a guest, never a host.
    let (mut ada, _) = app.join("team", &owner).await;
    let (_guest, welcome) = app.join("team", &token).await;
    assert_eq!(welcome["self"]["username"], "Anna");
    assert_eq!(welcome["host"], false);
    assert!(
        welcome["peers"][0].get("guest").is_none(),
        "Ada is no guest"
    );
    let joined = ada.recv_type("peer_joined").await;
    assert_eq!(joined["peer"]["username"], "Anna");
    assert_eq!(joined["peer"]["guest"], true);
    assert_no_secret_logged(&logs, &token);
}

#[tokio::test]
async fn hosts_remove_guests_and_the_room_ending_ends_their_call() {
    let app = spawn_app(&[]).await;
    let (_, owner, _) = people(&app, "team").await;
    let (_, invite) = link(&app, &owner, "team", json!({})).await;
    let (mut ada, _) = app.join("team", &owner).await;

    // Kicked with "also ban": a guest has no account to ban; it is removed.
    let token = guest_token(&app, &invite, "Anna").await;
    let (mut anna, anna_welcome) = app.join("team", &token).await;
    ada.recv_type("peer_joined").await;
    ada.send(json!({"type": "kick", "peer_id": anna_welcome["peer_id"], "ban": true}))
        .await;
    assert_eq!(anna.close_code().await, Some(4003));
    assert_eq!(ada.recv_type("peer_left").await["reason"], "kicked");

    // Revoking the link lets those inside stay; deleting the room ends it.
    let boris = guest_token(&app, &invite, "Boris").await;
    let (mut boris_ws, _) = app.join("team", &boris).await;
    ada.recv_type("peer_joined").await;
    let listed: Value = app
        .get_authed("/api/v1/rooms/team/invites", &owner)
        .await
        .json()
        .await
        .unwrap();
    let id = listed["invites"][0]["id"].as_str().unwrap();
    assert_eq!(revoke(&app, &owner, "team", id).await.status(), 204);
    ada.send(json!({"type": "chat", "text": "still with us?"}))
        .await;
    assert_eq!(boris_ws.recv_type("chat").await["text"], "still with us?");
    let deleted = app.delete_authed("/api/v1/rooms/team", &owner).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(boris_ws.close_code().await, Some(4004));
    // A guest never brings a deleted room back: refused with 4004.
    let mut again = app.try_ws("team", &boris, None).await.unwrap();
    assert_eq!(again.recv().await["code"], "room_not_found");
    assert_eq!(again.close_code().await, Some(4004));
    let room = app.get_authed("/api/v1/rooms/team", &owner).await;
    assert_eq!(room.status(), 404);
}

fn assert_no_secret_logged(logs: &Mutex<Vec<u8>>, secret: &str) {
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(!logs.is_empty(), "the servers logged something");
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
    assert!(leaks.is_empty(), "a token was logged: {leaks:#?}");
}

/// A room made by Ada's token with `body` (access, password, ask to join).
async fn room_with(app: &TestApp, token: &str, body: Value) {
    let made = app
        .http
        .post(app.url("/api/v1/rooms"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{body}");
}

#[tokio::test]
async fn a_link_stands_for_membership_and_password_but_the_lobby_holds_guests() {
    let app = spawn_app(&[]).await;
    let _admin = app.user_token("root").await;
    let owner = app.user_token("ada").await;
    let member = app.user_token("bob").await;
    room_with(
        &app,
        &owner,
        json!({"name": "secret", "access": "private", "password": "open sesame 1"}),
    )
    .await;
    // Bob, an account but no member, is refused; a guest with the link is in.
    assert_eq!(
        app.get_authed("/api/v1/rooms/secret", &member)
            .await
            .status(),
        403
    );
    let (_, invite) = link(&app, &owner, "secret", json!({})).await;
    let token = guest_token(&app, &invite, "Anna").await;
    let (_anna, welcome) = app.join("secret", &token).await;
    assert_eq!(welcome["room"], "secret");

    // A room that asks to join: the guest waits until a host admits it.
    room_with(&app, &owner, json!({"name": "desk", "ask_to_join": true})).await;
    let (_, invite) = link(&app, &owner, "desk", json!({})).await;
    let token = guest_token(&app, &invite, "Boris").await;
    let (mut ada, _) = app.join("desk", &owner).await;
    let mut boris = app.try_ws("desk", &token, None).await.unwrap();
    assert_eq!(boris.recv().await["type"], "waiting");
    let knocked = ada.recv_type("knock").await;
    assert_eq!(knocked["username"], "Boris");
    ada.send(json!({"type": "admit", "knock": knocked["knock"]}))
        .await;
    assert_eq!(boris.recv().await["type"], "welcome");
    let joined = ada.recv_type("peer_joined").await;
    assert_eq!(joined["peer"]["guest"], true);
}
