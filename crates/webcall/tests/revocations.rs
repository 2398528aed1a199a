//! Logouts held in memory by a single instance (no Redis): refused at once, still
//! refused after a restart, forgotten once their token has expired; and accounts
//! remembered by id. Against a real SQLite file.

mod support;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use support::{error_of, spawn_app, JWT_SECRET};
use uuid::Uuid;
use webcall_app::auth_cache::{CachedRevocations, CachedUsers};
use webcall_auth::JwtCodec;
use webcall_db::SqlStore;
use webcall_domain::model::{
    Email, NewUser, PasswordHash, Role, TokenHolder, User, UserId, Username,
};
use webcall_domain::ports::{Clock, TokenCodec, TokenRevocations, UserRepository};

/// A clock the test moves.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("webcall.db").display())
}

/// A token minted with the test servers' secret, for `user`.
fn token_for(user: UserId) -> String {
    use secrecy::ExposeSecret;
    let codec = JwtCodec::new(&JWT_SECRET.to_owned().into(), Duration::minutes(5));
    codec
        .issue(user, Utc::now())
        .token
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn a_logged_out_token_is_refused_at_once_without_asking_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let app = spawn_app(&[("DATABASE_URL", &url)]).await;
    let token = app.user_token("ada").await;
    let other = app.fresh_token("ada").await;
    assert!(app.try_ws("lobby", &token, None).await.is_ok());

    assert_eq!(
        app.post_authed("/api/v1/auth/logout", &token)
            .await
            .status(),
        204
    );
    // The stored revocation is gone behind the server's back: the one in memory
    // still refuses the token.
    let db = SqlStore::connect(&url).await.unwrap();
    db.execute_raw("DELETE FROM revoked_tokens").await.unwrap();
    db.close().await;
    assert_eq!(app.try_ws("lobby", &token, None).await.err(), Some(401));
    let (status, code, _) = error_of(app.get_authed("/api/v1/auth/me", &token).await).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"));
    // Another session of the same account still joins.
    let (_client, welcome) = app.join("lobby", &other).await;
    assert_eq!(welcome["self"]["username"], "ada");
    app.stop().await;
}

#[tokio::test]
async fn a_token_of_an_unknown_account_is_refused() {
    let app = spawn_app(&[]).await;
    let stranger = token_for(UserId::new_random());
    assert_eq!(app.try_ws("lobby", &stranger, None).await.err(), Some(401));
    let (status, code, _) = error_of(app.get_authed("/api/v1/auth/me", &stranger).await).await;
    assert_eq!((status, code.as_str()), (401, "token_invalid"));
    app.stop().await;
}

#[tokio::test]
async fn logouts_from_before_a_restart_are_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let app = spawn_app(&[("DATABASE_URL", &url)]).await;
    let token = app.user_token("ada").await;
    let other = app.fresh_token("ada").await;
    app.post_authed("/api/v1/auth/logout", &token).await;
    app.stop().await;

    let app = spawn_app(&[("DATABASE_URL", &url)]).await;
    assert_eq!(app.try_ws("lobby", &token, None).await.err(), Some(401));
    let (status, code, _) = error_of(app.get_authed("/api/v1/auth/me", &token).await).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"));
    let (_client, welcome) = app.join("lobby", &other).await;
    assert_eq!(welcome["self"]["username"], "ada");
    app.stop().await;
}

async fn refresh(app: &support::TestApp, token: &str) -> reqwest::Response {
    app.post_authed("/api/v1/auth/refresh", token).await
}

async fn token_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_a_replay_revokes_the_whole_family() {
    let app = spawn_app(&[]).await;
    let first = app.user_token("ada").await;
    let other_login = app.fresh_token("ada").await;

    let second = token_of(refresh(&app, &first).await).await;
    let (status, code, _) = error_of(app.get_authed("/api/v1/auth/me", &first).await).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"), "rotated");
    let third = token_of(refresh(&app, &second).await).await;
    let (mut call, joined) = app.join("lobby", &third).await;
    let (mut other_call, _) = app.join("lobby", &other_login).await;
    call.recv_type("peer_joined").await;

    // Someone presents a refreshed-away token again: one of the two holders is
    // a thief, so the family goes, down to the newest token and its call.
    let (status, code, _) = error_of(refresh(&app, &first).await).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"));
    for token in [&first, &second, &third] {
        let (status, code, _) = error_of(app.get_authed("/api/v1/auth/me", token).await).await;
        assert_eq!((status, code.as_str()), (401, "token_revoked"));
        let (status, code, _) = error_of(refresh(&app, token).await).await;
        assert_eq!((status, code.as_str()), (401, "token_revoked"));
    }
    assert_eq!(call.close_code().await, Some(4401));
    assert_eq!(app.try_ws("lobby", &third, None).await.err(), Some(401));
    // Another login of the same account is another family: its call goes on
    // and hears that the cut-off one left.
    let left = other_call.recv_type("peer_left").await;
    assert_eq!(left["peer_id"], joined["peer_id"]);
    assert_eq!(
        app.get_authed("/api/v1/auth/me", &other_login)
            .await
            .status(),
        200
    );
    token_of(refresh(&app, &other_login).await).await;
    app.stop().await;
}

#[tokio::test]
async fn logging_out_ends_that_login_and_its_calls_and_nothing_else() {
    let app = spawn_app(&[]).await;
    let first = app.user_token("ada").await;
    let other_login = app.fresh_token("ada").await;
    // A call opened before the tab refreshed its token.
    let (mut call, joined) = app.join("lobby", &first).await;
    let (mut other_call, _) = app.join("lobby", &other_login).await;
    call.recv_type("peer_joined").await;
    let second = token_of(refresh(&app, &first).await).await;

    assert_eq!(
        app.post_authed("/api/v1/auth/logout", &second)
            .await
            .status(),
        204
    );
    assert_eq!(call.close_code().await, Some(4401));
    for token in [&first, &second] {
        let (status, code, _) = error_of(app.get_authed("/api/v1/auth/me", token).await).await;
        assert_eq!((status, code.as_str()), (401, "token_revoked"));
        // A tab that refreshes after the logout is refused, and that is no
        // replay: nobody else is cut off.
        let (status, code, _) = error_of(refresh(&app, token).await).await;
        assert_eq!((status, code.as_str()), (401, "token_revoked"));
    }
    let left = other_call.recv_type("peer_left").await;
    assert_eq!(left["peer_id"], joined["peer_id"]);
    assert_eq!(left["reason"], "left");
    assert!(
        other_call
            .quiet_for(std::time::Duration::from_millis(300))
            .await,
        "the other login's call goes on"
    );
    token_of(refresh(&app, &other_login).await).await;
    app.stop().await;
}

#[tokio::test]
async fn a_token_from_before_token_families_refreshes_into_one_that_works() {
    let app = spawn_app(&[]).await;
    let token = app.user_token("ada").await;
    let me: serde_json::Value = app
        .get_authed("/api/v1/auth/me", &token)
        .await
        .json()
        .await
        .unwrap();
    let user: Uuid = me["id"].as_str().unwrap().parse().unwrap();
    // Minted as the server did before token families: no `fam` claim.
    let now = Utc::now().timestamp();
    let legacy = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": user, "iat": now, "exp": now + 300, "jti": Uuid::new_v4()}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        app.get_authed("/api/v1/auth/me", &legacy).await.status(),
        200
    );

    let successor = token_of(refresh(&app, &legacy).await).await;
    assert_eq!(
        app.get_authed("/api/v1/auth/me", &successor).await.status(),
        200
    );
    let (status, code, _) = error_of(app.get_authed("/api/v1/auth/me", &legacy).await).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"), "rotated");
    token_of(refresh(&app, &successor).await).await;
    app.stop().await;
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_mint_at_most_one_successor() {
    let app = spawn_app(&[]).await;
    let token = app.user_token("ada").await;
    let attempts = (0..10).map(|_| refresh(&app, &token));
    let responses = futures_util::future::join_all(attempts).await;
    let minted = responses.iter().filter(|r| r.status() == 200).count();
    assert!(minted <= 1, "{minted} successors minted from one token");
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_account_is_refused_at_once_and_its_calls_end_with_4401() {
    let app = spawn_app(&[]).await;
    // The first account is the admin, who may not leave the server without one.
    app.user_token("root").await;
    let ada = app.user_token("ada").await;
    let grace = app.user_token("grace").await;
    // grace's room, where ada is a guest; and ada's own room, where grace is.
    let (mut grace_call, _) = app.join("lobby", &grace).await;
    let (mut ada_call, _) = app.join("lobby", &ada).await;
    let created = app
        .http
        .post(app.url("/api/v1/rooms"))
        .bearer_auth(&ada)
        .json(&serde_json::json!({"name": "adas-room"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let (mut grace_in_adas, _) = app.join("adas-room", &grace).await;
    // The account is remembered (the join read it).
    assert_eq!(app.get_authed("/api/v1/auth/me", &ada).await.status(), 200);

    let delete = |password: &str| {
        app.http
            .delete(app.url("/api/v1/auth/me"))
            .bearer_auth(&ada)
            .json(&serde_json::json!({ "password": password }))
            .send()
    };
    let (status, code, _) = error_of(delete("not my password").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
    assert_eq!(delete(support::PASSWORD).await.unwrap().status(), 204);

    assert_eq!(ada_call.close_code().await, Some(4401));
    let (status, code, _) = error_of(app.get_authed("/api/v1/auth/me", &ada).await).await;
    assert_eq!((status, code.as_str()), (401, "token_invalid"));
    let (status, code, _) = error_of(refresh(&app, &ada).await).await;
    assert_eq!((status, code.as_str()), (401, "token_invalid"));
    assert_eq!(app.try_ws("lobby", &ada, None).await.err(), Some(401));
    assert_eq!(
        app.login_username("ada", support::PASSWORD).await.status(),
        401
    );
    // Her room went with her (as a deleted room does: 4004); others are
    // unaffected, and see ada leave their rooms.
    assert_eq!(grace_in_adas.close_code().await, Some(4004));
    let rooms: serde_json::Value = app
        .get_authed("/api/v1/rooms", &grace)
        .await
        .json()
        .await
        .unwrap();
    assert!(!rooms.to_string().contains("adas-room"), "{rooms}");
    let left = grace_call.recv_type("peer_left").await;
    assert!(left["peer_id"].is_string(), "{left}");
    assert_eq!(
        app.get_authed("/api/v1/auth/me", &grace).await.status(),
        200
    );
    grace_call
        .send(serde_json::json!({"type": "chat", "text": "still here"}))
        .await;
    let chat = grace_call.recv_type("chat").await;
    assert_eq!(chat["text"], "still here");
    app.stop().await;
}

fn account(name: &str) -> NewUser {
    NewUser {
        user: User {
            id: UserId::new_random(),
            email: Email::parse(&format!("{name}@example.org")).unwrap(),
            username: Username::parse(name).unwrap(),
            created_at: Utc::now(),
            role: Role::Member,
            banned_at: None,
            tokens_valid_from: None,
        },
        password_hash: PasswordHash("$argon2id$not-a-real-hash".into()),
    }
}

#[tokio::test]
async fn an_expired_revocation_is_forgotten_and_not_loaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::connect_and_migrate(&sqlite_url(&dir))
            .await
            .unwrap(),
    );
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let users = Arc::new(CachedUsers::new(store.clone(), clock.clone(), 16));
    let ada = users.insert(account("ada")).await.unwrap();
    let revocations = CachedRevocations::load(store.clone(), users.clone(), clock.clone())
        .await
        .unwrap();

    let (short, long) = (Uuid::new_v4(), Uuid::new_v4());
    let now = clock.now();
    revocations
        .revoke(short, ada.id, now + Duration::minutes(1))
        .await
        .unwrap();
    revocations
        .revoke(long, ada.id, now + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(revocations.len(), 2);
    assert_eq!(
        revocations.holder(short, short, ada.id).await.unwrap(),
        TokenHolder::Revoked
    );
    assert!(store.is_revoked(short).await.unwrap(), "stored first");

    // Past the short token's expiry (and the margin), its revocation goes.
    clock.advance(Duration::minutes(1) + CachedRevocations::PRUNE_MARGIN + Duration::seconds(1));
    assert_eq!(revocations.len(), 1);
    assert!(!revocations.is_revoked(short).await.unwrap());
    assert!(revocations.is_revoked(long).await.unwrap());

    // A restart loads only what is still in force.
    let restarted = CachedRevocations::load(store.clone(), users.clone(), clock.clone())
        .await
        .unwrap();
    assert_eq!(restarted.len(), 1);
    assert_eq!(
        restarted.holder(long, long, ada.id).await.unwrap(),
        TokenHolder::Revoked
    );
    assert_eq!(
        restarted
            .holder(Uuid::new_v4(), Uuid::new_v4(), ada.id)
            .await
            .unwrap(),
        TokenHolder::Active(ada.clone())
    );
    assert_eq!(
        restarted
            .holder(Uuid::new_v4(), Uuid::new_v4(), UserId::new_random())
            .await
            .unwrap(),
        TokenHolder::Unknown
    );
    store.close().await;
}

#[tokio::test]
async fn remembered_accounts_stay_few_and_are_read_again_after_a_while() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::connect_and_migrate(&sqlite_url(&dir))
            .await
            .unwrap(),
    );
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let users = CachedUsers::new(store.clone(), clock.clone(), 8);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(store.insert(account(&format!("user{i}"))).await.unwrap().id);
    }
    for id in &ids {
        assert!(users.find_by_id(*id).await.unwrap().is_some());
        assert!(users.len() <= 8, "capped: {}", users.len());
    }
    // Every account is still found, remembered or not.
    for id in &ids {
        assert!(users.find_by_id(*id).await.unwrap().is_some());
    }
    // An account deleted by hand in the database (no code path does it) is
    // refused again once its entry has aged out.
    let gone = ids[19];
    assert!(users.find_by_id(gone).await.unwrap().is_some());
    store
        .execute_raw(&format!("DELETE FROM users WHERE id = '{gone}'"))
        .await
        .unwrap();
    clock.advance(CachedUsers::MAX_AGE * 2);
    assert_eq!(users.find_by_id(gone).await.unwrap(), None);
    store.close().await;
}
