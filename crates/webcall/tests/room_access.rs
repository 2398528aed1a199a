//! Who may enter a room, over the API and real sockets (docs/protocol.md
//! "Access to rooms"): the room list shows each caller what they may see
//! (admins all); a private room refuses non-members (403 `room_private`, WS
//! 4010) until the owner invites them; a room password buys a room pass (a
//! wrong one 403, repeated ones 429) without which the socket closes with 4011;
//! hosts (the owner, admins) need neither.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{error_of, spawn_app, TestApp};

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// `root` (the first account: an admin), `ann` and `bob`, with their tokens.
async fn people(app: &TestApp) -> (String, String, String) {
    let root = app.user_token("root").await;
    let ann = app.user_token("ann").await;
    let bob = app.user_token("bob").await;
    (root, ann, bob)
}

async fn create(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    call(app, Method::POST, "/api/v1/rooms", token, Some(body)).await
}

async fn listed(app: &TestApp, token: &str) -> Vec<String> {
    let page = ok_json(app.get_authed("/api/v1/rooms", token).await).await;
    page["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn unlock(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    let body = json!({ "password": password });
    call(
        app,
        Method::POST,
        "/api/v1/rooms/vault/pass",
        token,
        Some(body),
    )
    .await
}

async fn patch(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    call(app, Method::PATCH, "/api/v1/rooms/team", token, Some(body)).await
}

/// The first frame of a join and the close code after it, or the welcome.
async fn refused(app: &TestApp, room: &str, token: &str) -> (Value, Option<u16>) {
    let mut client = app.try_ws(room, token, None).await.unwrap();
    let frame = client.recv().await;
    (frame, client.close_code().await)
}

#[tokio::test]
async fn the_room_list_shows_each_caller_what_they_may_see() {
    let app = spawn_app(&[]).await;
    let (root, ann, bob) = people(&app).await;
    for (name, access) in [
        ("open", "public"),
        ("quiet", "unlisted"),
        ("secret", "private"),
    ] {
        let made = ok_json(create(&app, &ann, json!({"name": name, "access": access})).await).await;
        assert_eq!(made["access"], access);
        assert_eq!(made["has_password"], false);
    }
    let (status, code, field) =
        error_of(create(&app, &ann, json!({"name": "x", "access": "secret"})).await).await;
    assert_eq!(
        (status, code.as_str(), field.as_deref()),
        (422, "validation_failed", Some("access"))
    );

    assert_eq!(listed(&app, &bob).await, ["open"]);
    assert_eq!(listed(&app, &ann).await, ["open", "quiet", "secret"]);
    assert_eq!(listed(&app, &root).await, ["open", "quiet", "secret"]);
    let invited = call(
        &app,
        Method::PUT,
        "/api/v1/rooms/secret/members/bob",
        &ann,
        None,
    )
    .await;
    assert_eq!(ok_json(invited).await["username"], "bob");
    assert_eq!(listed(&app, &bob).await, ["open", "secret"]);
    // An unlisted room is not listed, yet anyone signed in with the link enters.
    let quiet = ok_json(app.get_authed("/api/v1/rooms/quiet", &bob).await).await;
    assert_eq!(quiet["admission"], "admit");
    app.join("quiet", &bob).await;
    app.stop().await;
}

#[tokio::test]
async fn a_private_room_refuses_non_members_until_the_owner_invites_them() {
    let app = spawn_app(&[]).await;
    let (root, ann, bob) = people(&app).await;
    ok_json(create(&app, &ann, json!({"name": "secret", "access": "private"})).await).await;
    let (status, code, _) = error_of(app.get_authed("/api/v1/rooms/secret", &bob).await).await;
    assert_eq!((status, code.as_str()), (403, "room_private"));
    let (frame, close) = refused(&app, "secret", &bob).await;
    assert_eq!(frame["code"], "room_private", "{frame}");
    assert_eq!(close, Some(4010));
    let history = app.get_authed("/api/v1/rooms/secret/messages", &bob).await;
    assert_eq!(
        error_of(history).await.1,
        "room_private",
        "no history either"
    );

    // Only a host manages members.
    let path = "/api/v1/rooms/secret/members/bob";
    let (status, code, _) = error_of(call(&app, Method::PUT, path, &bob, None).await).await;
    assert_eq!((status, code.as_str()), (403, "not_room_owner"));
    let nobody = call(
        &app,
        Method::PUT,
        "/api/v1/rooms/secret/members/nobody",
        &ann,
        None,
    )
    .await;
    assert_eq!(error_of(nobody).await.1, "user_not_found");
    ok_json(call(&app, Method::PUT, path, &ann, None).await).await;
    let members = ok_json(app.get_authed("/api/v1/rooms/secret/members", &ann).await).await;
    assert_eq!(members["members"][0]["username"], "bob");
    let seen = ok_json(app.get_authed("/api/v1/rooms/secret", &bob).await).await;
    assert_eq!(
        (seen["admission"].as_str(), seen["host"].as_bool()),
        (Some("admit"), Some(false))
    );
    let (bob_ws, _) = app.join("secret", &bob).await;
    drop(bob_ws);

    let removed = call(&app, Method::DELETE, path, &ann, None).await;
    assert_eq!(removed.status(), 204);
    let (frame, close) = refused(&app, "secret", &bob).await;
    assert_eq!(
        (frame["code"].as_str(), close),
        (Some("room_private"), Some(4010))
    );
    // Hosts need no membership: the owner, and an admin.
    app.join("secret", &ann).await;
    let root_view = ok_json(app.get_authed("/api/v1/rooms/secret", &root).await).await;
    assert_eq!(root_view["host"], true);
    app.join("secret", &root).await;
    app.stop().await;
}

#[tokio::test]
async fn a_room_password_buys_a_pass_wrong_ones_are_refused_and_throttled() {
    let app = spawn_app(&[]).await;
    let (root, ann, bob) = people(&app).await;
    let carol = app.user_token("carol").await;
    let made = create(
        &app,
        &ann,
        json!({"name": "vault", "password": "open sesame"}),
    )
    .await;
    assert_eq!(ok_json(made).await["has_password"], true);
    let (_ann_ws, _) = app.join("vault", &ann).await;

    let seen = ok_json(app.get_authed("/api/v1/rooms/vault", &bob).await).await;
    assert_eq!(seen["admission"], "password_required");
    assert_eq!(
        seen["people"],
        json!([]),
        "nobody shown before the password"
    );
    let (frame, close) = refused(&app, "vault", &bob).await;
    assert_eq!(frame["code"], "room_password_required", "{frame}");
    assert_eq!(close, Some(4011));

    let (status, code, _) = error_of(unlock(&app, &bob, "wrong").await).await;
    assert_eq!((status, code.as_str()), (403, "room_password_wrong"));
    let pass = ok_json(unlock(&app, &bob, "open sesame").await).await;
    let pass = pass["pass"].as_str().unwrap().to_owned();
    assert!(!pass.contains("sesame"));
    // The pass goes with the join (never the password itself).
    let with_pass = format!("{bob}&pass={pass}");
    let (_bob_ws, welcome) = app.join("vault", &with_pass).await;
    assert_eq!(welcome["room"], "vault");
    // The history, too, needs the pass.
    let history = app.get_authed("/api/v1/rooms/vault/messages", &bob).await;
    assert_eq!(error_of(history).await.1, "room_password_required");
    let path = format!("/api/v1/rooms/vault/messages?pass={pass}");
    assert_eq!(app.get_authed(&path, &bob).await.status(), 200);
    // It is Bob's: Carol cannot use it.
    let carol_with_bobs = format!("{carol}&pass={pass}");
    let (frame, close) = refused(&app, "vault", &carol_with_bobs).await;
    assert_eq!(
        (frame["code"].as_str(), close),
        (Some("room_password_required"), Some(4011))
    );

    // Guessing: five wrong, then even the right one waits.
    for _ in 0..5 {
        assert_eq!(
            error_of(unlock(&app, &carol, "guess").await).await.1,
            "room_password_wrong"
        );
    }
    let throttled = unlock(&app, &carol, "open sesame").await;
    assert!(throttled.headers().contains_key("retry-after"));
    let (status, code, _) = error_of(throttled).await;
    assert_eq!((status, code.as_str()), (429, "too_many_attempts"));

    // Hosts need no password.
    app.join("vault", &root).await;
    app.stop().await;
}

#[tokio::test]
async fn only_hosts_change_a_rooms_access_and_a_new_password_voids_old_passes() {
    let app = spawn_app(&[]).await;
    let (root, ann, bob) = people(&app).await;
    ok_json(create(&app, &ann, json!({"name": "team"})).await).await;
    let (status, code, _) = error_of(patch(&app, &bob, json!({"access": "private"})).await).await;
    assert_eq!((status, code.as_str()), (403, "not_room_owner"));
    let (status, _, field) = error_of(patch(&app, &ann, json!({"access": "hidden"})).await).await;
    assert_eq!((status, field.as_deref()), (422, Some("access")));
    let (status, _, field) = error_of(patch(&app, &ann, json!({"password": ""})).await).await;
    assert_eq!((status, field.as_deref()), (422, Some("password")));

    let changed =
        ok_json(patch(&app, &ann, json!({"password": "one", "ask_to_join": true})).await).await;
    assert_eq!(
        (
            changed["has_password"].as_bool(),
            changed["ask_to_join"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(changed["access"], "public", "left as it was");
    let pass = ok_json(
        call(
            &app,
            Method::POST,
            "/api/v1/rooms/team/pass",
            &bob,
            Some(json!({"password": "one"})),
        )
        .await,
    )
    .await["pass"]
        .as_str()
        .unwrap()
        .to_owned();
    // An admin may change it too: a new password voids the pass.
    ok_json(
        patch(
            &app,
            &root,
            json!({"password": "two", "ask_to_join": false}),
        )
        .await,
    )
    .await;
    let (frame, close) = refused(&app, "team", &format!("{bob}&pass={pass}")).await;
    assert_eq!(
        (frame["code"].as_str(), close),
        (Some("room_password_required"), Some(4011))
    );
    // `null` removes the password: Bob walks in.
    let open = ok_json(patch(&app, &ann, json!({"password": null})).await).await;
    assert_eq!(open["has_password"], false);
    app.join("team", &bob).await;
    let no_password = call(
        &app,
        Method::POST,
        "/api/v1/rooms/team/pass",
        &bob,
        Some(json!({"password": "x"})),
    )
    .await;
    assert_eq!(error_of(no_password).await.1, "room_has_no_password");
    app.stop().await;
}
