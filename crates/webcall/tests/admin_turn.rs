//! The TURN and keys part of the admin API through the real binary: the
//! embedded relay's allocations (a real TURN client holds them), ending one,
//! quotas changed at run time (the next Allocate over them gets 486, and they
//! survive a restart), rotating the JWT and TURN keys (what was signed before
//! keeps working, what is signed after names the new generation; a second
//! rotation retires the first generation at once), a ban ending the user's
//! allocations, and two instances sharing Redis seeing quotas and rotations
//! within a second. Every endpoint: 401 without a token, 403 for a member.

mod support;
#[path = "../../webcall-turn/tests/support/mod.rs"]
mod turn_support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use stun::message::Message;
use support::{error_of, spawn_app, TestApp};
use tokio::net::UdpSocket;
use turn_support::{error_code, relayed, round_trip, Probe};

/// `method path` with `token` and a JSON `body`, if any.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
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

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get_authed(path, token).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

async fn put_quotas(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    call(
        app,
        reqwest::Method::PUT,
        "/api/v1/admin/turn/quotas",
        Some(token),
        Some(body),
    )
    .await
}

async fn rotate(app: &TestApp, token: &str, key: &str) -> reqwest::Response {
    app.post_authed(&format!("/api/v1/admin/keys/{key}/rotate"), token)
        .await
}

/// The TURN credentials `/api/v1/webrtc/ice-servers` hands the holder of `token`.
async fn turn_credentials(app: &TestApp, token: &str) -> (String, String) {
    let body = get_json(app, "/api/v1/webrtc/ice-servers", token).await;
    let turn = &body["iceServers"][1];
    (
        turn["username"].as_str().unwrap().to_owned(),
        turn["credential"].as_str().unwrap().to_owned(),
    )
}

/// The `kid` of an access token's header.
fn kid(token: &str) -> Option<String> {
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().map(str::to_owned)
}

/// A TURN client over UDP and the answer to its Allocate with `credentials`.
async fn allocate(app: &TestApp, (username, password): &(String, String)) -> (Probe, Option<u16>) {
    let (probe, answer) = allocation(app, (username, password)).await;
    (probe, error_code(&answer))
}

async fn allocation(app: &TestApp, (username, password): (&str, &str)) -> (Probe, Message) {
    let mut probe = Probe::udp(format!("127.0.0.1:{}", app.turn_port()).parse().unwrap()).await;
    let answer = probe.allocate(username, password).await;
    (probe, answer)
}

/// Allocates with `credentials` and relays a datagram each way through a peer.
async fn allocate_and_relay(app: &TestApp, credentials: &(String, String)) -> Probe {
    let (user, pass) = (credentials.0.as_str(), credentials.1.as_str());
    let (mut probe, answer) = allocation(app, (user, pass)).await;
    assert_eq!(error_code(&answer), None, "{user}: {answer}");
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    round_trip(&mut probe, user, pass, relayed(&answer), &peer).await;
    probe
}

/// A server whose relay may relay to loopback peers (the tests' own sockets).
async fn spawn(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("TURN_ALLOW_LOOPBACK_PEERS", "true")];
    vars.extend_from_slice(extra);
    spawn_app(&vars).await
}

#[tokio::test]
async fn every_turn_and_keys_endpoint_refuses_strangers_and_members() {
    let app = spawn(&[]).await;
    let _root = app.user_token("root").await;
    let member = app.user_token("ada").await;
    let endpoints = [
        (reqwest::Method::GET, "/api/v1/admin/turn/allocations", None),
        (
            reqwest::Method::DELETE,
            "/api/v1/admin/turn/allocations/00000000000000a1",
            None,
        ),
        (reqwest::Method::GET, "/api/v1/admin/turn/quotas", None),
        (
            reqwest::Method::PUT,
            "/api/v1/admin/turn/quotas",
            Some(json!({"per_user": 1, "total": 1})),
        ),
        (reqwest::Method::GET, "/api/v1/admin/keys", None),
        (
            reqwest::Method::POST,
            "/api/v1/admin/keys/turn/rotate",
            None,
        ),
        (reqwest::Method::POST, "/api/v1/admin/keys/jwt/rotate", None),
    ];
    for (method, path, body) in endpoints {
        let anonymous = call(&app, method.clone(), path, None, body.clone()).await;
        assert_eq!(anonymous.status(), 401, "{method} {path} without a token");
        let refused = call(&app, method.clone(), path, Some(&member), body).await;
        assert_eq!(
            error_of(refused).await,
            (403, "forbidden".into(), None),
            "{method} {path} as a member"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn allocations_are_listed_with_their_user_and_traffic_and_can_be_ended() {
    let app = spawn(&[]).await;
    let root = app.user_token("root").await;
    let ada = app.user_token("ada").await;
    let me = get_json(&app, "/api/v1/auth/me", &ada).await;
    let credentials = turn_credentials(&app, &ada).await;
    let mut probe = allocate_and_relay(&app, &credentials).await;

    let listed = get_json(&app, "/api/v1/admin/turn/allocations", &root).await;
    assert_eq!(listed["instance"], "local");
    let allocations = listed["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 1, "{listed}");
    let allocation = &allocations[0];
    assert_eq!(allocation["user_id"], me["id"]);
    assert_eq!(allocation["username"], "ada");
    assert_eq!(allocation["transport"], "udp");
    let Some(client) = probe_addr(&probe) else {
        unreachable!()
    };
    assert_eq!(allocation["client"], client.to_string());
    assert_eq!(
        (
            allocation["packets_in"].as_u64(),
            allocation["bytes_in"].as_u64()
        ),
        (Some(1), Some(b"to the peer".len() as u64))
    );
    assert_eq!(
        (
            allocation["packets_out"].as_u64(),
            allocation["bytes_out"].as_u64()
        ),
        (Some(1), Some(b"to the client".len() as u64))
    );
    assert!(
        allocation["rate_in_bps"].as_u64().unwrap() > 0,
        "{allocation}"
    );
    assert_eq!(listed["totals"]["allocations"], 1);
    assert_eq!(
        listed["totals"]["quotas"],
        json!({"per_user": 10, "total": 1000})
    );

    let path = format!(
        "/api/v1/admin/turn/allocations/{}",
        allocation["id"].as_str().unwrap()
    );
    let ended = call(&app, reqwest::Method::DELETE, &path, Some(&root), None).await;
    assert_eq!(ended.status(), 204);
    assert_eq!(app.relay_allocations(), 0);
    assert_eq!(
        error_code(&probe.refresh(&credentials.0, &credentials.1).await),
        Some(437),
        "the client's next Refresh fails"
    );
    let again = call(&app, reqwest::Method::DELETE, &path, Some(&root), None).await;
    assert_eq!(
        error_of(again).await,
        (404, "allocation_not_found".into(), None)
    );
    let audit = get_json(&app, "/api/v1/admin/audit", &root).await;
    assert_eq!(audit["entries"][0]["action"], "turn.allocation.end");
    app.stop().await;
}

fn probe_addr(probe: &Probe) -> Option<std::net::SocketAddr> {
    match &probe.wire {
        turn_support::Wire::Udp(socket, _) => socket.local_addr().ok(),
        turn_support::Wire::Stream(_) => None,
    }
}

#[tokio::test]
async fn quotas_changed_at_run_time_refuse_the_next_allocation_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("webcall.db").display());
    let app = spawn(&[("DATABASE_URL", &db)]).await;
    let root = app.user_token("root").await;
    let ada = app.user_token("ada").await;
    assert_eq!(
        get_json(&app, "/api/v1/admin/turn/quotas", &root).await,
        json!({"per_user": 10, "total": 1000})
    );
    for (body, field) in [
        (json!({"per_user": 0, "total": 5}), "per_user"),
        (json!({"per_user": 6, "total": 5}), "per_user"),
        (json!({"per_user": 1, "total": 70000}), "total"),
        (json!({"per_user": "one", "total": 5}), "per_user"),
        (json!({"per_user": -1, "total": 5}), "per_user"),
        (json!({"per_user": 1}), ""),
        (json!({"per_user": 1, "total": 5, "extra": 1}), ""),
    ] {
        let (status, code, got) = error_of(put_quotas(&app, &root, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "validation_failed"),
            "{body}"
        );
        if !field.is_empty() {
            assert_eq!(got.as_deref(), Some(field), "{body}");
        }
    }
    let malformed = app
        .http
        .put(app.url("/api/v1/admin/turn/quotas"))
        .bearer_auth(&root)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(malformed).await.1, "malformed_json");

    let credentials = turn_credentials(&app, &ada).await;
    let (_first, code) = allocate(&app, &credentials).await;
    assert_eq!(code, None);
    let changed = put_quotas(&app, &root, json!({"per_user": 1, "total": 5})).await;
    assert_eq!(changed.status(), 204);
    let (_second, code) = allocate(&app, &credentials).await;
    assert_eq!(code, Some(486), "over the new per-user quota");
    let audit = get_json(&app, "/api/v1/admin/audit", &root).await;
    assert_eq!(audit["entries"][0]["action"], "turn.quotas.set");
    app.stop().await;

    let restarted = spawn(&[("DATABASE_URL", &db)]).await;
    let root = restarted.fresh_token("root").await;
    assert_eq!(
        get_json(&restarted, "/api/v1/admin/turn/quotas", &root).await,
        json!({"per_user": 1, "total": 5})
    );
    restarted.stop().await;
}

#[tokio::test]
async fn a_jwt_rotation_keeps_old_tokens_working_and_a_second_retires_them() {
    let app = spawn(&[]).await;
    let root = app.user_token("root").await;
    let old = app.user_token("ada").await;
    assert_eq!(kid(&old).as_deref(), Some("0"));
    let keys = get_json(&app, "/api/v1/admin/keys", &root).await;
    assert_eq!(
        keys["jwt"],
        json!({"generation": 0, "rotated_at": null, "previous_valid_until": null, "rotates": true})
    );

    let rotated = rotate(&app, &root, "jwt").await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    assert_eq!(rotated["generation"], 1);
    let at = chrono::DateTime::parse_from_rfc3339(rotated["rotated_at"].as_str().unwrap()).unwrap();
    let until =
        chrono::DateTime::parse_from_rfc3339(rotated["previous_valid_until"].as_str().unwrap())
            .unwrap();
    assert_eq!(until - at, chrono::Duration::minutes(60), "JWT_EXPIRES_MIN");
    assert_eq!(
        get_json(&app, "/api/v1/admin/keys", &root).await["jwt"],
        rotated
    );

    // Tokens from before still work, on REST and WebSocket; new ones name generation 1.
    assert_eq!(app.get_authed("/api/v1/auth/me", &old).await.status(), 200);
    let (_call, _) = app.join("lobby", &old).await;
    let new = app.fresh_token("ada").await;
    assert_eq!(kid(&new).as_deref(), Some("1"));
    assert_eq!(app.get_authed("/api/v1/auth/me", &new).await.status(), 200);

    // A second rotation retires generation 0 at once (the way to drop a leaked key).
    let root = app.fresh_token("root").await;
    assert_eq!(rotate(&app, &root, "jwt").await.status(), 200);
    let (status, code, _) = error_of(app.get_authed("/api/v1/auth/me", &old).await).await;
    assert_eq!((status, code.as_str()), (401, "token_invalid"));
    assert_eq!(app.try_ws("lobby", &old, None).await.err(), Some(401));
    assert_eq!(app.get_authed("/api/v1/auth/me", &new).await.status(), 200);

    let unknown = rotate(&app, &root, "ssh").await;
    assert_eq!(error_of(unknown).await.0, 404);
    let audit = get_json(&app, "/api/v1/admin/audit", &root).await;
    assert_eq!(audit["entries"][0]["action"], "key.rotate");
    assert_eq!(audit["entries"][0]["target"], "jwt");
    app.stop().await;
}

#[tokio::test]
async fn a_turn_rotation_keeps_old_credentials_allocating_and_a_second_retires_them() {
    let app = spawn(&[]).await;
    let root = app.user_token("root").await;
    let ada = app.user_token("ada").await;
    let old = turn_credentials(&app, &ada).await;
    assert!(!old.0.contains(":k"), "{}", old.0);
    let rotated: Value = rotate(&app, &root, "turn").await.json().await.unwrap();
    assert_eq!(rotated["generation"], 1);
    let new = turn_credentials(&app, &ada).await;
    assert!(new.0.contains(":k1:"), "{}", new.0);
    let mut live = allocate_and_relay(&app, &old).await;
    allocate_and_relay(&app, &new).await;
    assert_eq!(rotate(&app, &root, "turn").await.status(), 200);
    let (_probe, code) = allocate(&app, &old).await;
    assert_eq!(
        code,
        Some(401),
        "generation 0 retired by the second rotation"
    );
    assert_eq!(
        error_code(&live.refresh(&old.0, &old.1).await),
        Some(401),
        "and its live allocations cannot be refreshed"
    );
    allocate_and_relay(&app, &new).await;
    app.stop().await;
}

#[tokio::test]
async fn without_the_embedded_relay_the_turn_key_does_not_rotate() {
    let app = spawn(&[("TURN_EMBEDDED", "false")]).await;
    let root = app.user_token("root").await;
    let keys = get_json(&app, "/api/v1/admin/keys", &root).await;
    assert_eq!(keys["turn"]["rotates"], false);
    let (status, code, _) = error_of(rotate(&app, &root, "turn").await).await;
    assert_eq!((status, code.as_str()), (409, "turn_relay_not_running"));
    let (status, code, _) =
        error_of(app.get_authed("/api/v1/admin/turn/quotas", &root).await).await;
    assert_eq!((status, code.as_str()), (409, "turn_relay_not_running"));
    let listed = get_json(&app, "/api/v1/admin/turn/allocations", &root).await;
    assert_eq!(listed["allocations"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_banned_users_allocations_end() {
    let app = spawn(&[]).await;
    let root = app.user_token("root").await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    let ada_id = get_json(&app, "/api/v1/auth/me", &ada).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ada_credentials = turn_credentials(&app, &ada).await;
    let (_a1, code1) = allocate(&app, &ada_credentials).await;
    let (_a2, code2) = allocate(&app, &ada_credentials).await;
    let (_b, code3) = allocate(&app, &turn_credentials(&app, &bob).await).await;
    assert_eq!((code1, code2, code3), (None, None, None));
    assert_eq!(app.relay_allocations(), 3);
    let banned = app
        .post_authed(&format!("/api/v1/admin/users/{ada_id}/ban"), &root)
        .await;
    assert_eq!(banned.status(), 204);
    assert_eq!(app.relay_allocations(), 1, "only bob's is left");
    let listed = get_json(&app, "/api/v1/admin/turn/allocations", &root).await;
    assert_eq!(listed["allocations"][0]["username"], "bob");
    app.stop().await;
}

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

/// Polls `check` until it holds; how long that took (at most 5 s).
async fn within<F, Fut>(mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(5), "never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn two_instances_with_redis_see_quotas_and_rotations_within_a_second() {
    let Some(redis) = redis_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("DATABASE_URL", db.as_str()),
    ];
    let a = spawn(&vars).await;
    let b = spawn(&vars).await;
    let root_a = a.user_token("root").await;
    let root_b = b.fresh_token("root").await;
    let ada_b = b.user_token("ada").await;

    assert_eq!(
        put_quotas(&a, &root_a, json!({"per_user": 2, "total": 7}))
            .await
            .status(),
        204
    );
    let took = within(|| async {
        b.get_authed("/api/v1/admin/turn/quotas", &root_b)
            .await
            .json::<Value>()
            .await
            .unwrap()
            == json!({"per_user": 2, "total": 7})
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "quotas reached B in {took:?}"
    );

    assert_eq!(rotate(&a, &root_a, "jwt").await.status(), 200);
    assert_eq!(rotate(&a, &root_a, "turn").await.status(), 200);
    let took = within(|| async {
        let keys = get_json(&b, "/api/v1/admin/keys", &root_b).await;
        keys["jwt"]["generation"] == 1 && keys["turn"]["generation"] == 1
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "rotations reached B in {took:?}"
    );
    // B signs with the new generations; A accepts what B signs, and the other way round.
    let from_b = b.fresh_token("ada").await;
    assert_eq!(kid(&from_b).as_deref(), Some("1"));
    assert_eq!(a.get_authed("/api/v1/auth/me", &from_b).await.status(), 200);
    assert_eq!(b.get_authed("/api/v1/auth/me", &ada_b).await.status(), 200);
    let (username, _) = turn_credentials(&b, &ada_b).await;
    assert!(username.contains(":k1:"), "{username}");
    a.stop().await;
    b.stop().await;
}
