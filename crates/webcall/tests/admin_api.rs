//! The admin API through the real server (SQLite file; PostgreSQL too where
//! `TEST_DATABASE_URL` is set): who may call each endpoint, the first account
//! and `ADMIN_EMAILS` as admins, never the last admin, bans that end calls at
//! once, rooms locked, ended, deleted and given away, the audit log, reset
//! links, bad input, and the admin's request budget.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{error_of, spawn_app, TestApp, PASSWORD};

/// Sends `method path` with `token` (if any) and a JSON `body` (if any).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

async fn me(app: &TestApp, token: &str) -> Value {
    json_of(app.get_authed("/api/v1/auth/me", token).await).await
}

/// An admin (the first account) and a member, with their tokens and ids.
struct People {
    admin: String,
    member: String,
    member_id: String,
}

async fn people(app: &TestApp) -> People {
    let admin = app.user_token("root").await;
    let member = app.user_token("bob").await;
    let member_id = me(app, &member).await["id"].as_str().unwrap().to_owned();
    People {
        admin,
        member,
        member_id,
    }
}

#[tokio::test]
async fn every_admin_endpoint_is_for_admins_only() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    let target = app.user_token("carol").await;
    let target_id = me(&app, &target).await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.create_room(&p.member, "bobs-room").await.status(), 201);
    let user = |tail: &str| format!("/api/v1/admin/users/{target_id}{tail}");
    // (method, path, body, the admin's status) in an order the admin's calls
    // can all succeed in.
    let endpoints: Vec<(Method, String, Option<Value>, u16)> = vec![
        (Method::GET, "/api/v1/admin/users?q=o".into(), None, 200),
        (Method::POST, user("/ban"), None, 204),
        (Method::POST, user("/unban"), None, 204),
        (
            Method::PUT,
            user("/role"),
            Some(json!({"role": "member"})),
            204,
        ),
        (Method::POST, user("/password-reset"), None, 201),
        (Method::GET, "/api/v1/admin/rooms".into(), None, 200),
        (
            Method::PUT,
            "/api/v1/admin/rooms/bobs-room/lock".into(),
            Some(json!({"locked": true})),
            204,
        ),
        (
            Method::PUT,
            "/api/v1/admin/rooms/bobs-room/owner".into(),
            Some(json!({"user_id": target_id})),
            204,
        ),
        (
            Method::POST,
            "/api/v1/admin/rooms/bobs-room/end".into(),
            None,
            204,
        ),
        (
            Method::DELETE,
            "/api/v1/admin/rooms/bobs-room".into(),
            None,
            204,
        ),
        (Method::GET, "/api/v1/admin/calls".into(), None, 200),
        (Method::GET, "/api/v1/admin/audit".into(), None, 200),
        (Method::DELETE, user(""), None, 204),
    ];
    for (method, path, body, admin_status) in &endpoints {
        let none = call(&app, method.clone(), path, None, body.clone()).await;
        let (status, code, _) = error_of(none).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "token_missing"),
            "{method} {path}"
        );
        let member = call(&app, method.clone(), path, Some(&p.member), body.clone()).await;
        let (status, code, _) = error_of(member).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "forbidden"),
            "{method} {path}"
        );
        let admin = call(&app, method.clone(), path, Some(&p.admin), body.clone()).await;
        assert_eq!(admin.status(), *admin_status, "{method} {path}");
    }
    // The member's refusals changed nothing: only the admin's calls are audited.
    let audit = json_of(app.get_authed("/api/v1/admin/audit", &p.admin).await).await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 9, "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn the_first_account_is_an_admin_and_me_says_so() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    assert_eq!(me(&app, &p.admin).await["role"], "admin");
    assert_eq!(me(&app, &p.member).await["role"], "member");
    app.stop().await;
}

/// A PostgreSQL `DATABASE_URL` on a schema of its own, when there is a server.
async fn postgres_database() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let schema = format!("admin_{}", uuid::Uuid::new_v4().simple());
    let store = webcall_db::SqlStore::connect(&url).await.unwrap();
    store
        .execute_raw(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    store.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

#[tokio::test]
async fn two_first_registrations_at_once_make_exactly_one_admin() {
    for round in 0..6 {
        // Every other round on PostgreSQL, when there is one.
        let database = if round % 2 == 1 {
            postgres_database().await
        } else {
            None
        };
        let vars: Vec<(&str, &str)> = database
            .as_deref()
            .map(|url| vec![("DATABASE_URL", url)])
            .unwrap_or_default();
        let app = spawn_app(&vars).await;
        let (a, b) = tokio::join!(
            app.register("ann@example.org", "ann"),
            app.register("ben@example.org", "ben")
        );
        assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
        let roles = [
            json_of(a).await["role"].clone(),
            json_of(b).await["role"].clone(),
        ];
        let admins = roles.iter().filter(|role| *role == "admin").count();
        assert_eq!(admins, 1, "round {round}: {roles:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn admin_emails_are_admins_at_registration_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let app = spawn_app(&[("DATABASE_URL", &db)]).await;
    app.user_token("first").await;
    let boss = app.user_token("boss").await;
    assert_eq!(me(&app, &boss).await["role"], "member");
    app.stop().await;

    // Restarted with the address listed (in another case): now an admin.
    let app = spawn_app(&[
        ("DATABASE_URL", &db),
        ("ADMIN_EMAILS", "someone@example.org, BOSS@example.org"),
    ])
    .await;
    let boss = app.fresh_token("boss").await;
    assert_eq!(me(&app, &boss).await["role"], "admin");
    // A new account with a listed address registers as an admin.
    let someone = app.user_token("someone").await;
    assert_eq!(me(&app, &someone).await["role"], "admin");
    assert_eq!(
        me(&app, &app.fresh_token("first").await).await["role"],
        "admin"
    );
    app.stop().await;
}

#[tokio::test]
async fn there_is_always_an_admin() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    let root_id = me(&app, &p.admin).await["id"].as_str().unwrap().to_owned();
    let role = |id: &str, token: &str, role: &str| {
        let (path, token) = (format!("/api/v1/admin/users/{id}/role"), token.to_owned());
        let body = json!({ "role": role });
        let app = &app;
        async move { call(app, Method::PUT, &path, Some(&token), Some(body)).await }
    };
    assert_eq!(
        error_of(role(&root_id, &p.admin, "member").await).await.1,
        "last_admin"
    );
    let delete = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/users/{root_id}"),
        Some(&p.admin),
        None,
    )
    .await;
    assert_eq!(error_of(delete).await.1, "last_admin");
    let ban_self = app
        .post_authed(&format!("/api/v1/admin/users/{root_id}/ban"), &p.admin)
        .await;
    assert_eq!(
        error_of(ban_self).await,
        (409, "cannot_ban_self".into(), None)
    );

    // Bob is made an admin; then root may step down, and bob may not.
    assert_eq!(role(&p.member_id, &p.admin, "admin").await.status(), 204);
    assert_eq!(me(&app, &p.member).await["role"], "admin");
    assert_eq!(role(&root_id, &p.admin, "member").await.status(), 204);
    assert_eq!(me(&app, &p.admin).await["role"], "member");
    let (status, code, _) = error_of(app.get_authed("/api/v1/admin/users", &p.admin).await).await;
    assert_eq!(
        (status, code.as_str()),
        (403, "forbidden"),
        "demoted at once"
    );
    assert_eq!(
        error_of(role(&p.member_id, &p.member, "member").await)
            .await
            .1,
        "last_admin"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_last_admin_cannot_delete_their_own_account() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    assert_eq!(app.create_room(&p.admin, "roots-room").await.status(), 201);
    let leave = |token: &str| {
        let request = app
            .http
            .delete(app.url("/api/v1/auth/me"))
            .bearer_auth(token)
            .json(&json!({ "password": PASSWORD }));
        async move { request.send().await.unwrap() }
    };
    assert_eq!(error_of(leave(&p.admin).await).await.1, "last_admin");
    let room = app.get_authed("/api/v1/rooms/roots-room", &p.member).await;
    assert_eq!(room.status(), 200, "nothing was deleted");
    let promote = call(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/users/{}/role", p.member_id),
        Some(&p.admin),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(promote.status(), 204);
    assert_eq!(leave(&p.admin).await.status(), 204);
    app.stop().await;
}

#[tokio::test]
async fn a_ban_ends_the_call_at_once_and_refuses_the_account() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    let other = app.user_token("carol").await;
    let (mut bob_ws, _) = app.join("standup", &p.member).await;
    let (mut carol_ws, _) = app.join("standup", &other).await;
    bob_ws.recv_type("peer_joined").await;

    let ban = format!("/api/v1/admin/users/{}/ban", p.member_id);
    assert_eq!(app.post_authed(&ban, &p.admin).await.status(), 204);
    assert_eq!(bob_ws.close_code().await, Some(4403));
    let left = carol_ws.recv_type("peer_left").await;
    assert_eq!(left["reason"], "left", "{left}");

    let refused = error_of(app.get_authed("/api/v1/auth/me", &p.member).await).await;
    assert_eq!(refused, (403, "banned".into(), None));
    let login = error_of(app.login_username("bob", PASSWORD).await).await;
    assert_eq!(login, (403, "banned".into(), None));
    assert_eq!(
        app.try_ws("standup", &p.member, None).await.err(),
        Some(403)
    );
    let users = json_of(app.get_authed("/api/v1/admin/users?q=bob", &p.admin).await).await;
    assert_eq!(users["users"][0]["banned"], true, "{users}");
    assert!(users["users"][0]["banned_at"].is_string(), "{users}");

    // A wrong password still says only that.
    let wrong = error_of(app.login_username("bob", "not the password").await).await;
    assert_eq!(wrong.1, "invalid_credentials");

    let unban = format!("/api/v1/admin/users/{}/unban", p.member_id);
    assert_eq!(app.post_authed(&unban, &p.admin).await.status(), 204);
    // The ban ended the sessions it found: only a new login works.
    let stale = app.get_authed("/api/v1/auth/me", &p.member).await.status();
    assert_eq!(stale, 401, "a token from before the ban works again");
    // Tokens carry whole seconds: a login in the ban's own second counts as
    // from before it, so let that second pass.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let token = app.fresh_token("bob").await;
    app.join("standup", &token).await;
    app.stop().await;
}

#[tokio::test]
async fn users_are_searched_and_paged_by_username_with_who_is_online() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    for name in ["alice", "Alfred", "zed", "walter"] {
        app.user_token(name).await;
    }
    let (_ws, _) = app.join("lobby", &p.member).await;
    let page = |query: &str| {
        let path = format!("/api/v1/admin/users?{query}");
        let (app, token) = (&app, &p.admin);
        async move { app.get_authed(&path, token).await }
    };
    let first = json_of(page("limit=2").await).await;
    let names = |body: &Value| -> Vec<String> {
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["Alfred", "alice"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = json_of(page(&format!("limit=2&cursor={cursor}")).await).await;
    assert_eq!(names(&second), ["bob", "root"]);
    assert_eq!(second["users"][0]["online"], true);
    assert_eq!(second["users"][1]["online"], false);
    assert_eq!(second["users"][1]["role"], "admin");
    let cursor = second["next_cursor"].as_str().unwrap().to_owned();
    let last = json_of(page(&format!("limit=2&cursor={cursor}")).await).await;
    assert_eq!(names(&last), ["walter", "zed"]);
    assert_eq!(last["next_cursor"], Value::Null);

    // By username or e-mail, case-insensitively; `%` and `_` are plain characters.
    assert_eq!(
        names(&json_of(page("q=AL").await).await),
        ["Alfred", "alice", "walter"]
    );
    assert_eq!(
        names(&json_of(page("q=ZED%40EXAMPLE").await).await),
        ["zed"]
    );
    assert!(names(&json_of(page("q=%25").await).await).is_empty());
    let user = &json_of(page("q=zed").await).await["users"][0];
    for key in [
        "id",
        "email",
        "username",
        "role",
        "banned",
        "banned_at",
        "created_at",
        "online",
    ] {
        assert!(user.get(key).is_some(), "{key}: {user}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_locked_room_keeps_newcomers_in_the_lobby_and_those_inside_in() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    let carol = app.user_token("carol").await;
    let (mut bob_ws, _) = app.join("planning", &p.member).await;
    let lock = |locked: bool| {
        call(
            &app,
            Method::PUT,
            "/api/v1/admin/rooms/planning/lock",
            Some(&p.admin),
            Some(json!({ "locked": locked })),
        )
    };
    assert_eq!(lock(true).await.status(), 204);
    let room = json_of(app.get_authed("/api/v1/rooms/planning", &carol).await).await;
    assert_eq!(room["locked"], true);

    // A newcomer waits in the lobby (tests/lobby.rs has the rest of it).
    let mut waiting = app.try_ws("planning", &carol, None).await.unwrap();
    let frame = waiting.recv().await;
    assert_eq!(frame["type"], "waiting", "{frame}");
    // Bob, inside, stays; the owner may come in.
    bob_ws.send(json!({"type": "ping"})).await;
    assert_eq!(bob_ws.recv_type("knock").await["username"], "carol");
    app.join("planning", &p.member).await;
    waiting.send(json!({"type": "leave"})).await;
    assert_eq!(waiting.close_code().await, Some(1000));

    assert_eq!(lock(false).await.status(), 204);
    app.join("planning", &carol).await;
    app.stop().await;
}

#[tokio::test]
async fn an_ended_call_empties_the_room_and_keeps_it() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    let carol = app.user_token("carol").await;
    let carol_id = me(&app, &carol).await["id"].as_str().unwrap().to_owned();
    let (mut bob_ws, _) = app.join("retro", &p.member).await;
    let (mut carol_ws, _) = app.join("retro", &carol).await;
    bob_ws.recv_type("peer_joined").await;

    let calls = json_of(app.get_authed("/api/v1/admin/calls", &p.admin).await).await;
    let room = &calls["rooms"][0];
    assert_eq!(room["name"], "retro");
    let people_in: Vec<&str> = room["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|peer| peer["username"].as_str().unwrap())
        .collect();
    assert_eq!(people_in, ["bob", "carol"]);
    for key in ["peer_id", "user_id", "mic", "cam", "screen"] {
        assert!(room["participants"][0].get(key).is_some(), "{key}");
    }
    let rooms = json_of(app.get_authed("/api/v1/admin/rooms", &p.admin).await).await;
    assert_eq!(rooms["rooms"][0]["participants"], 2, "{rooms}");
    assert_eq!(rooms["rooms"][0]["owner"]["username"], "bob");

    assert_eq!(
        app.post_authed("/api/v1/admin/rooms/retro/end", &p.admin)
            .await
            .status(),
        204
    );
    let (left, code) = bob_ws.left_until_close("room_deleted").await;
    assert_eq!((left.len(), code), (1, Some(4004)));
    assert_eq!(carol_ws.close_code().await, Some(4004));
    let calls = json_of(app.get_authed("/api/v1/admin/calls", &p.admin).await).await;
    assert_eq!(calls["rooms"], json!([]));
    // The room stays, and may change hands.
    let give = call(
        &app,
        Method::PUT,
        "/api/v1/admin/rooms/retro/owner",
        Some(&p.admin),
        Some(json!({ "user_id": carol_id })),
    )
    .await;
    assert_eq!(give.status(), 204);
    let room = json_of(app.get_authed("/api/v1/rooms/retro", &carol).await).await;
    assert_eq!(room["owner"]["username"], "carol");
    let (_, welcome) = app.join("retro", &carol).await;
    assert_eq!(welcome["owner"], true, "{welcome}");

    let delete = call(
        &app,
        Method::DELETE,
        "/api/v1/admin/rooms/retro",
        Some(&p.admin),
        None,
    )
    .await;
    assert_eq!(delete.status(), 204);
    let gone = error_of(app.get_authed("/api/v1/rooms/retro", &carol).await).await;
    assert_eq!(gone.1, "room_not_found");
    app.stop().await;
}

#[tokio::test]
async fn every_admin_action_is_in_the_audit_log_newest_first() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    app.create_room(&p.member, "audited").await;
    let ban = format!("/api/v1/admin/users/{}/ban", p.member_id);
    let unban = format!("/api/v1/admin/users/{}/unban", p.member_id);
    app.post_authed(&ban, &p.admin).await;
    app.post_authed(&unban, &p.admin).await;
    app.post_authed("/api/v1/admin/rooms/audited/end", &p.admin)
        .await;
    // A refused change leaves no entry.
    app.post_authed("/api/v1/admin/rooms/nowhere/end", &p.admin)
        .await;

    let first = json_of(
        app.get_authed("/api/v1/admin/audit?limit=2", &p.admin)
            .await,
    )
    .await;
    let entries = first["entries"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "room.end");
    assert_eq!(entries[0]["target"], "audited");
    assert_eq!(entries[1]["action"], "user.unban");
    assert_eq!(entries[1]["target"], "bob");
    assert_eq!(entries[1]["actor"]["username"], "root");
    assert!(entries[1]["at"].is_string() && entries[1]["id"].is_i64());
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = json_of(
        app.get_authed(
            &format!("/api/v1/admin/audit?limit=2&cursor={cursor}"),
            &p.admin,
        )
        .await,
    )
    .await;
    assert_eq!(rest["entries"][0]["action"], "user.ban");
    assert_eq!(rest["entries"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn a_reset_link_works_once_and_ends_every_login() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    let (mut bob_ws, _) = app.join("desk", &p.member).await;
    let path = format!("/api/v1/admin/users/{}/password-reset", p.member_id);
    let make = || app.post_authed(&path, &p.admin);
    let older = json_of(make().await).await;
    let link = json_of(make().await).await;
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("http://{}/reset#", app.addr)),
        "{url}"
    );
    assert!(link["expires_at"].is_string());
    let token_of = |link: &Value| {
        link["url"]
            .as_str()
            .unwrap()
            .split_once('#')
            .unwrap()
            .1
            .to_owned()
    };
    let token = token_of(&link);
    assert!(token.len() >= 32, "at least 128 bits");
    let reset = |token: String, password: &str| {
        let body = json!({"token": token, "password": password});
        let app = &app;
        async move { app.post_json("/api/v1/auth/password-reset", &body).await }
    };
    // A newer link voided the older one.
    let voided = error_of(reset(token_of(&older), "a brand new password").await).await;
    assert_eq!(voided, (400, "reset_link_invalid".into(), None));
    let short = error_of(reset(token.clone(), "short").await).await;
    assert_eq!(short.1, "validation_failed");

    assert_eq!(
        reset(token.clone(), "a brand new password").await.status(),
        204
    );
    assert_eq!(bob_ws.close_code().await, Some(4401));
    let old = error_of(app.get_authed("/api/v1/auth/me", &p.member).await).await;
    assert_eq!(old.1, "token_revoked");
    assert_eq!(
        error_of(app.login_username("bob", PASSWORD).await).await.1,
        "invalid_credentials"
    );
    // Tokens carry whole seconds: one from later in the reset's second cannot
    // be told from one before it, so it is refused too. Sign in a second on.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let login = app.login_username("bob", "a brand new password").await;
    assert_eq!(login.status(), 200);
    let fresh = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(me(&app, &fresh).await["username"], "bob");
    // Used once.
    let again = error_of(reset(token, "yet another password").await).await;
    assert_eq!(again.1, "reset_link_invalid");
    app.stop().await;
}

/// An error's status, code and field.
type Expected<'a> = (u16, &'a str, Option<&'a str>);

#[tokio::test]
async fn bad_input_gets_a_clear_error() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    app.create_room(&p.member, "real-room").await;
    let unknown = uuid::Uuid::new_v4();
    let owner_unknown = format!("{{\"user_id\":\"{unknown}\"}}");
    let cases: Vec<(Method, String, Option<&str>, Expected)> = vec![
        (
            Method::POST,
            format!("/api/v1/admin/users/{unknown}/ban"),
            None,
            (404, "user_not_found", None),
        ),
        (
            Method::POST,
            "/api/v1/admin/users/not-a-uuid/unban".into(),
            None,
            (404, "user_not_found", None),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/users/{unknown}"),
            None,
            (404, "user_not_found", None),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{unknown}/password-reset"),
            None,
            (404, "user_not_found", None),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{}/role", p.member_id),
            Some("{\"role\":"),
            (400, "malformed_json", None),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{}/role", p.member_id),
            Some("{\"role\":\"boss\"}"),
            (422, "validation_failed", Some("role")),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{}/role", p.member_id),
            Some("{\"role\":7}"),
            (422, "validation_failed", Some("role")),
        ),
        (
            Method::POST,
            "/api/v1/admin/rooms/nowhere/end".into(),
            None,
            (404, "room_not_found", None),
        ),
        (
            Method::POST,
            "/api/v1/admin/rooms/bad%20name/end".into(),
            None,
            (404, "room_not_found", None),
        ),
        (
            Method::DELETE,
            "/api/v1/admin/rooms/nowhere".into(),
            None,
            (404, "room_not_found", None),
        ),
        (
            Method::PUT,
            "/api/v1/admin/rooms/real-room/lock".into(),
            Some("{}"),
            (422, "validation_failed", Some("locked")),
        ),
        (
            Method::PUT,
            "/api/v1/admin/rooms/real-room/lock".into(),
            Some("{\"locked\":\"yes\"}"),
            (422, "validation_failed", Some("locked")),
        ),
        (
            Method::PUT,
            "/api/v1/admin/rooms/nowhere/lock".into(),
            Some("{\"locked\":true}"),
            (404, "room_not_found", None),
        ),
        (
            Method::PUT,
            "/api/v1/admin/rooms/real-room/owner".into(),
            Some("{\"user_id\":\"x\"}"),
            (422, "validation_failed", Some("user_id")),
        ),
        (
            Method::PUT,
            "/api/v1/admin/rooms/real-room/owner".into(),
            Some(owner_unknown.as_str()),
            (404, "user_not_found", None),
        ),
        (
            Method::GET,
            "/api/v1/admin/users?limit=many".into(),
            None,
            (422, "validation_failed", None),
        ),
        (
            Method::GET,
            "/api/v1/admin/audit?cursor=yesterday".into(),
            None,
            (422, "validation_failed", Some("cursor")),
        ),
        (
            Method::GET,
            "/api/v1/admin/rooms?cursor=no%20such".into(),
            None,
            (422, "validation_failed", Some("cursor")),
        ),
    ];
    for (method, path, body, (status, code, field)) in cases {
        let mut request = app
            .http
            .request(method.clone(), app.url(&path))
            .bearer_auth(&p.admin);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let got = error_of(request.send().await.unwrap()).await;
        assert_eq!(
            (got.0, got.1.as_str(), got.2.as_deref()),
            (status, code, field),
            "{method} {path} {body:?}"
        );
    }
    // Nothing of that was half done.
    let audit = json_of(app.get_authed("/api/v1/admin/audit", &p.admin).await).await;
    assert_eq!(audit["entries"], json!([]));
    let link = error_of(
        app.post_json(
            "/api/v1/auth/password-reset",
            &json!({"token": "nope", "password": "long enough pw"}),
        )
        .await,
    )
    .await;
    assert_eq!(link.1, "reset_link_invalid");
    app.stop().await;
}

#[tokio::test]
async fn an_admin_has_a_budget_of_changes() {
    let app = spawn_app(&[]).await;
    let p = people(&app).await;
    let unban = format!("/api/v1/admin/users/{}/unban", p.member_id);
    for _ in 0..30 {
        assert_eq!(app.post_authed(&unban, &p.admin).await.status(), 204);
    }
    let refused = app.post_authed(&unban, &p.admin).await;
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(error_of(refused).await.1, "too_many_requests");
    // Reads have a budget of their own, not spent yet.
    assert_eq!(
        app.get_authed("/api/v1/admin/calls", &p.admin)
            .await
            .status(),
        200
    );
    app.stop().await;
}
