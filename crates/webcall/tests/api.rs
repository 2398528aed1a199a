//! The accounts API end to end: the real server on port 0 over a real SQLite
//! file (and PostgreSQL when `TEST_DATABASE_URL` is set), driven with reqwest;
//! and what an unknown address answers (the JSON error, or the 404 pages, which
//! headless Chromium also reads in both languages).

mod support;
mod webclient;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::{error_of, spawn_app, JWT_SECRET, PASSWORD, REGISTRATION_SECRET};

fn register_body(email: &str, username: &str, password: &str, secret: &str) -> Value {
    json!({"email": email, "username": username, "password": password, "secret": secret})
}

#[tokio::test]
async fn register_returns_the_user_without_the_hash() {
    let app = spawn_app(&[]).await;
    let response = app.register("Ada@Example.org", "ada").await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "Ada@Example.org");
    assert_eq!(user["username"], "ada");
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(user["created_at"].as_str().unwrap()).is_ok());
    assert_eq!(user["role"], "admin", "the first account is an admin");
    let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        5,
        "only id, email, username, created_at, role: {user}"
    );
    app.stop().await;
}

#[tokio::test]
async fn registration_secret_is_required_and_checked_first() {
    let app = spawn_app(&[]).await;
    for body in [
        register_body("ada@example.org", "ada", PASSWORD, "wrong"),
        register_body("ada@example.org", "ada", PASSWORD, ""),
        json!({"email": "ada@example.org", "username": "ada", "password": PASSWORD}),
        // Invalid fields do not reveal anything without the secret.
        register_body("not-an-email", "a", "short", "wrong"),
    ] {
        let response = app.post_json("/api/v1/auth/register", &body).await;
        assert_eq!(
            error_of(response).await,
            (403, "registration_secret_invalid".into(), None),
            "{body}"
        );
    }
    // Nothing was created: the name is still free.
    assert_eq!(app.register("ada@example.org", "ada").await.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn duplicate_email_or_username_is_a_conflict_whatever_the_case() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.register("ada@example.org", "ada").await.status(), 201);
    assert_eq!(
        error_of(app.register("ADA@Example.ORG", "grace").await).await,
        (409, "email_taken".into(), Some("email".into()))
    );
    assert_eq!(
        error_of(app.register("grace@example.org", "ADA").await).await,
        (409, "username_taken".into(), Some("username".into()))
    );
    // The refused registrations left nothing behind.
    assert_eq!(
        app.register("grace@example.org", "grace").await.status(),
        201
    );
    app.stop().await;
}

#[tokio::test]
async fn one_email_typed_in_nfc_or_nfd_is_one_account_and_invisible_characters_are_refused() {
    let app = spawn_app(&[]).await;
    let nfc = "jos\u{E9}@example.org";
    let nfd = "jose\u{301}@example.org";
    assert_eq!(app.register(nfd, "jose").await.status(), 201);
    assert_eq!(
        error_of(app.register(nfc, "jose2").await).await,
        (409, "email_taken".into(), Some("email".into()))
    );
    for email in [nfc, nfd, "JOS\u{C9}@example.org"] {
        let login = app
            .post_json(
                "/api/v1/auth/login",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(login.status(), 200, "{email:?}");
    }
    for email in [
        "jos\u{E9}\u{200B}@example.org",
        "\u{202E}gro.elpmaxe@ada",
        "ada\u{FEFF}@example.org",
    ] {
        let (status, code, field) = error_of(app.register(email, "someone").await).await;
        assert_eq!(
            (status, code.as_str(), field.as_deref()),
            (422, "validation_failed", Some("email")),
            "{email:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn invalid_fields_are_422_naming_the_field() {
    let app = spawn_app(&[]).await;
    let s = REGISTRATION_SECRET;
    let cases = [
        (register_body("not-an-email", "ada", PASSWORD, s), "email"),
        (
            json!({"username": "ada", "password": PASSWORD, "secret": s}),
            "email",
        ),
        (
            register_body("ada@example.org", "ad", PASSWORD, s),
            "username",
        ),
        (
            register_body("ada@example.org", "ada lovelace", PASSWORD, s),
            "username",
        ),
        (
            register_body("ada@example.org", &"a".repeat(33), PASSWORD, s),
            "username",
        ),
        (
            register_body("ada@example.org", "ada", "1234567", s),
            "password",
        ),
        (
            register_body("ada@example.org", "ada", &"x".repeat(129), s),
            "password",
        ),
        (
            json!({"email": 42, "username": "ada", "password": PASSWORD, "secret": s}),
            "email",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_json("/api/v1/auth/register", &body).await;
        assert_eq!(
            error_of(response).await,
            (422, "validation_failed".into(), Some(field.into())),
            "{body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_the_json_error_shape() {
    let app = spawn_app(&[]).await;
    let post_raw = |content_type: &'static str, body: String| {
        app.http
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let malformed = post_raw("application/json", "{\"username\": ".into())
        .await
        .unwrap();
    assert_eq!(
        error_of(malformed).await,
        (400, "malformed_json".into(), None)
    );
    let not_json = post_raw("text/plain", "{}".into()).await.unwrap();
    assert_eq!(
        error_of(not_json).await,
        (415, "unsupported_media_type".into(), None)
    );
    let huge = format!("{{\"username\": \"{}\"}}", "a".repeat(100 * 1024));
    let too_large = post_raw("application/json", huge).await.unwrap();
    assert_eq!(
        error_of(too_large).await,
        (413, "payload_too_large".into(), None)
    );
    let missing = app
        .http
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await, (404, "not_found".into(), None));
    let wrong_method = app
        .http
        .get(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(wrong_method).await,
        (405, "method_not_allowed".into(), None)
    );
    // The server is unharmed.
    assert_eq!(app.register("ada@example.org", "ada").await.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn login_by_email_or_username_returns_a_bearer_token() {
    let app = spawn_app(&[]).await;
    app.register("Ada@Example.org", "Ada").await;
    for body in [
        json!({"email": "ada@example.org", "password": PASSWORD}),
        json!({"username": "ada", "password": PASSWORD}),
    ] {
        let response = app.post_json("/api/v1/auth/login", &body).await;
        assert_eq!(response.status(), 200, "{body}");
        let token: Value = response.json().await.unwrap();
        assert_eq!(token["token_type"], "bearer");
        assert_eq!(token["expires_in"], 3600);
        let me = app
            .get_authed("/api/v1/auth/me", token["access_token"].as_str().unwrap())
            .await;
        assert_eq!(me.status(), 200);
        assert_eq!(me.json::<Value>().await.unwrap()["username"], "Ada");
    }
    app.stop().await;
}

#[tokio::test]
async fn login_needs_exactly_one_of_email_or_username() {
    let app = spawn_app(&[]).await;
    app.register("ada@example.org", "ada").await;
    for body in [
        json!({"password": PASSWORD}),
        json!({"email": "ada@example.org", "username": "ada", "password": PASSWORD}),
    ] {
        let (status, code, field) =
            error_of(app.post_json("/api/v1/auth/login", &body).await).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "validation_failed"),
            "{body}"
        );
        assert!(field.is_some());
    }
    app.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app(&[]).await;
    app.register("ada@example.org", "ada").await;
    let wrong = app.login_username("ada", "not the password").await;
    let unknown = app.login_username("nobody", PASSWORD).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let wrong: Value = wrong.json().await.unwrap();
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
    app.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let app = spawn_app(&[]).await;
    app.register("ada@example.org", "ada").await;
    app.register("grace@example.org", "grace").await;
    for _ in 0..5 {
        assert_eq!(app.login_username("ada", "guess-guess").await.status(), 401);
    }
    // Even the right password is refused while the account is locked.
    let locked = app.login_username("ada", PASSWORD).await;
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(
        error_of(locked).await,
        (429, "too_many_attempts".into(), None)
    );
    // Another account is unaffected.
    assert_eq!(app.login_username("grace", PASSWORD).await.status(), 200);
    app.stop().await;
}

/// Fails 30 logins for 30 different accounts as the client at `forwarded_for`.
async fn spray(app: &support::TestApp, forwarded_for: &str) {
    for i in 0..30 {
        let response = app
            .http
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"username": format!("victim{i}"), "password": "guess-guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
}

async fn login_from(app: &support::TestApp, forwarded_for: &str, username: &str) -> u16 {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_attacker_does_not_lock_out_everyone() {
    let app = spawn_app(&[("TRUSTED_PROXIES", "127.0.0.1/32,::1")]).await;
    app.register("ada@example.org", "ada").await;
    spray(&app, "203.0.113.66").await;
    assert_eq!(login_from(&app, "203.0.113.66", "ada").await, 429);
    assert_eq!(login_from(&app, "198.51.100.7", "ada").await, 200);
    app.stop().await;
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app(&[]).await;
    app.register("ada@example.org", "ada").await;
    spray(&app, "203.0.113.66").await;
    // The attacker cannot dodge the lock by claiming another address.
    assert_eq!(login_from(&app, "198.51.100.7", "ada").await, 429);
    app.stop().await;
}

/// Counts the statuses of `responses`.
fn tally(responses: Vec<reqwest::Response>) -> std::collections::BTreeMap<u16, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for response in responses {
        *seen.entry(response.status().as_u16()).or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn concurrent_guesses_get_no_more_tries_than_the_account_limit() {
    let app = spawn_app(&[]).await;
    app.register("ada@example.org", "ada").await;
    // 199 wrong passwords and the right one, all at once.
    let attempts = (0..200).map(|i| {
        let password = if i == 199 {
            PASSWORD.to_owned()
        } else {
            format!("guess-{i:04}")
        };
        app.http
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": "ada", "password": password}))
            .send()
    });
    let responses = futures_util::future::join_all(attempts).await;
    let seen = tally(responses.into_iter().map(Result::unwrap).collect());
    let checked = seen.get(&401).unwrap_or(&0) + seen.get(&200).unwrap_or(&0);
    assert!(checked <= 5, "at most 5 passwords checked: {seen:?}");
    assert_eq!(seen.get(&429), Some(&(200 - checked)), "{seen:?}");
    app.stop().await;
}

#[tokio::test]
async fn username_and_email_of_one_account_share_one_budget() {
    let app = spawn_app(&[]).await;
    app.register("ada@example.org", "ada").await;
    for i in 0..5 {
        let body = if i % 2 == 0 {
            json!({"username": "ADA", "password": "guess-guess"})
        } else {
            json!({"email": "Ada@Example.org", "password": "guess-guess"})
        };
        let response = app.post_json("/api/v1/auth/login", &body).await;
        assert_eq!(response.status(), 401, "attempt {i}");
    }
    for body in [
        json!({"username": "ada", "password": PASSWORD}),
        json!({"email": "ada@example.org", "password": PASSWORD}),
    ] {
        let response = app.post_json("/api/v1/auth/login", &body).await;
        assert_eq!(response.status(), 429, "{body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn guessing_the_registration_secret_is_limited_per_address() {
    let app = spawn_app(&[("TRUSTED_PROXIES", "127.0.0.1/32,::1")]).await;
    let register_from = |forwarded_for: &str, i: usize, secret: &str| {
        app.http
            .post(app.url("/api/v1/auth/register"))
            .header("x-forwarded-for", forwarded_for)
            .json(&register_body(
                &format!("u{i}@example.org"),
                &format!("user{i}"),
                PASSWORD,
                secret,
            ))
            .send()
    };
    let guesses = (0..40).map(|i| register_from("203.0.113.66", i, &format!("guess-{i}")));
    let responses: Vec<_> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let limited = responses
        .iter()
        .find(|r| r.status() == 429)
        .expect("some guesses are refused");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    let seen = tally(responses);
    assert_eq!(seen.get(&403), Some(&10), "{seen:?}");
    assert_eq!(seen.get(&429), Some(&30), "{seen:?}");
    // The guesser's address is refused even with the right secret; others are not.
    let response = register_from("203.0.113.66", 100, REGISTRATION_SECRET)
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (429, "too_many_attempts".into(), None)
    );
    let response = register_from("198.51.100.7", 101, REGISTRATION_SECRET)
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    app.stop().await;
}

fn forge(claims: Value, key: &str, alg: Algorithm) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn protected_routes_refuse_missing_and_bad_tokens() {
    let app = spawn_app(&[]).await;
    let token = app.user_token("ada").await;
    let me: Value = app
        .get_authed("/api/v1/auth/me", &token)
        .await
        .json()
        .await
        .unwrap();
    let sub = me["id"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    let jti = uuid::Uuid::new_v4();
    let valid_claims = json!({"sub": sub, "iat": now, "exp": now + 600, "jti": jti});
    // Sanity: a token forged with the real key and algorithm is accepted, so the
    // refusals below are about what each one changes.
    let good = forge(valid_claims.clone(), JWT_SECRET, Algorithm::HS256);
    assert_eq!(app.get_authed("/api/v1/auth/me", &good).await.status(), 200);

    let missing = app
        .http
        .get(app.url("/api/v1/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_of(missing).await, (401, "token_missing".into(), None));

    let header_none = base64_url(r#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{header_none}.{}.", base64_url(&valid_claims.to_string()));
    let expired = forge(
        json!({"sub": sub, "iat": now - 7200, "exp": now - 3600, "jti": jti}),
        JWT_SECRET,
        Algorithm::HS256,
    );
    let cases = [
        ("garbage", "token_invalid"),
        (alg_none.as_str(), "token_invalid"),
        (
            &forge(
                valid_claims.clone(),
                "another-key-another-key-another-key!",
                Algorithm::HS256,
            ),
            "token_invalid",
        ),
        (
            &forge(valid_claims.clone(), JWT_SECRET, Algorithm::HS384),
            "token_invalid",
        ),
        (expired.as_str(), "token_expired"),
    ];
    for (token, code) in cases {
        for (method, path) in [
            ("GET", "/api/v1/auth/me"),
            ("POST", "/api/v1/auth/refresh"),
            ("POST", "/api/v1/auth/logout"),
        ] {
            let request = app
                .http
                .request(method.parse().unwrap(), app.url(path))
                .bearer_auth(token);
            let response = request.send().await.unwrap();
            assert_eq!(
                error_of(response).await,
                (401, code.into(), None),
                "{path} with {token}"
            );
        }
    }
    app.stop().await;
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn logout_revokes_that_token_everywhere_and_only_that_token() {
    let app = spawn_app(&[]).await;
    let token = app.user_token("ada").await;
    let other_session = app.fresh_token("ada").await;

    let logout = app.post_authed("/api/v1/auth/logout", &token).await;
    assert_eq!(logout.status(), 204);
    assert_eq!(
        error_of(app.get_authed("/api/v1/auth/me", &token).await)
            .await
            .1,
        "token_revoked"
    );
    assert_eq!(
        error_of(app.post_authed("/api/v1/auth/refresh", &token).await)
            .await
            .1,
        "token_revoked"
    );
    assert_eq!(
        error_of(app.post_authed("/api/v1/auth/logout", &token).await)
            .await
            .1,
        "token_revoked"
    );
    assert_eq!(
        app.get_authed("/api/v1/auth/me", &other_session)
            .await
            .status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn refresh_issues_a_new_token_that_works() {
    let app = spawn_app(&[("JWT_EXPIRES_MIN", "5")]).await;
    let token = app.user_token("ada").await;
    let response = app.post_authed("/api/v1/auth/refresh", &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 300);
    let fresh = body["access_token"].as_str().unwrap();
    assert_ne!(fresh, token);
    // The refreshed-away token is revoked (rotation); the fresh one works.
    let (status, code, _) = error_of(app.post_authed("/api/v1/auth/logout", &token).await).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"));
    assert_eq!(app.get_authed("/api/v1/auth/me", fresh).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app(&[]).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["turn"], "ok", "the relay answers STUN");
    app.stop().await;
}

#[tokio::test]
async fn the_accounts_flow_works_on_postgres() {
    let Some(url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set TEST_DATABASE_URL"
        );
        return;
    };
    let schema = format!("api_{}", uuid::Uuid::new_v4().simple());
    let admin = webcall_db::SqlStore::connect(&url).await.unwrap();
    admin
        .execute_raw(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");

    let app = spawn_app(&[("DATABASE_URL", &scoped)]).await;
    let token = app.user_token("ada").await;
    assert_eq!(
        error_of(app.register("ADA@example.org", "other").await)
            .await
            .1,
        "email_taken"
    );
    assert_eq!(
        app.get_authed("/api/v1/auth/me", &token).await.status(),
        200
    );
    assert_eq!(
        app.post_authed("/api/v1/auth/logout", &token)
            .await
            .status(),
        204
    );
    assert_eq!(
        error_of(app.get_authed("/api/v1/auth/me", &token).await)
            .await
            .1,
        "token_revoked"
    );
    app.stop().await;

    admin
        .execute_raw(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    admin.close().await;
}

#[tokio::test]
async fn ice_servers_need_a_token_and_carry_rest_credentials_for_the_caller() {
    use hmac::{Hmac, Mac};
    let app = spawn_app(&[]).await;
    let unauthenticated = app
        .http
        .get(app.url("/api/v1/webrtc/ice-servers"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(unauthenticated).await,
        (401, "token_missing".into(), None)
    );

    let token = app.user_token("ada").await;
    let me: Value = app
        .get_authed("/api/v1/auth/me", &token)
        .await
        .json()
        .await
        .unwrap();
    let response = app.get_authed("/api/v1/webrtc/ice-servers", &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ttl"], 86400);
    let servers = body["iceServers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{body}");
    let port = app.turn_port();
    assert_eq!(
        servers[0],
        json!({"urls": [format!("stun:127.0.0.1:{port}")]})
    );
    let turn = &servers[1];
    assert_eq!(
        turn["urls"],
        json!([
            format!("turn:127.0.0.1:{port}?transport=udp"),
            format!("turn:127.0.0.1:{port}?transport=tcp")
        ])
    );
    let username = turn["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, me["id"].as_str().unwrap());
    let expiry: i64 = expiry.parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now + 86400 - 5..=now + 86400 + 5).contains(&expiry),
        "{expiry}"
    );
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(support::TURN_SECRET.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    let expected = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    assert_eq!(turn["credential"], expected);
    app.stop().await;
}

#[tokio::test]
async fn external_servers_replace_the_embedded_relay() {
    let app = spawn_app(&[
        ("STUN_SERVERS", "stun:stun.example.org:3478"),
        (
            "TURN_URLS",
            "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349",
        ),
        ("TURN_USERNAME", "static-user"),
        ("TURN_PASSWORD", "static-pass"),
    ])
    .await;
    assert_eq!(app.turn_port(), 0, "no embedded relay");
    let token = app.user_token("ada").await;
    let body: Value = app
        .get_authed("/api/v1/webrtc/ice-servers", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["iceServers"],
        json!([
            {"urls": ["stun:stun.example.org:3478"]},
            {"urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
             "username": "static-user", "credential": "static-pass"}
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn pages_are_served_embedded_with_security_headers() {
    let app = spawn_app(&[]).await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = no_redirect.get(app.url("/")).send().await.unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/static/index.html");
    for path in ["/static/index.html", "/static/auth.html", "/r/team-call"] {
        let page = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let headers = page.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(page
            .text()
            .await
            .unwrap()
            .contains("<script type=\"module\" src=\"/static/js/"));
    }
    let js = app
        .http
        .get(app.url("/static/js/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let api = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(
        api.headers().contains_key("content-security-policy"),
        "API responses carry the headers too"
    );
    let missing = app
        .http
        .get(app.url("/static/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await.1, "not_found");
    let escape = app
        .http
        .get(app.url("/static/%2e%2e/Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(escape.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_description_matches_the_routes() {
    let app = spawn_app(&[]).await;
    let token = app.user_token("ada").await;
    let spec: Value = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.sort();
    let mut served = vec![
        "POST /api/v1/auth/register",
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/refresh",
        "GET /api/v1/auth/me",
        "DELETE /api/v1/auth/me",
        "POST /api/v1/auth/logout",
        "GET /api/v1/webrtc/ice-servers",
        "GET /api/v1/rooms",
        "POST /api/v1/rooms",
        "GET /api/v1/rooms/{room}",
        "DELETE /api/v1/rooms/{room}",
        "GET /api/v1/rooms/{room}/messages",
        "PATCH /api/v1/rooms/{room}",
        "GET /api/v1/rooms/{room}/members",
        "PUT /api/v1/rooms/{room}/members/{username}",
        "DELETE /api/v1/rooms/{room}/members/{username}",
        "POST /api/v1/rooms/{room}/pass",
        "GET /ws/rooms/{room}",
        "GET /healthz",
        "GET /readyz",
        "GET /api/openapi.json",
        "POST /api/v1/auth/password-reset",
        "GET /api/v1/admin/users",
        "DELETE /api/v1/admin/users/{id}",
        "POST /api/v1/admin/users/{id}/ban",
        "POST /api/v1/admin/users/{id}/unban",
        "PUT /api/v1/admin/users/{id}/role",
        "POST /api/v1/admin/users/{id}/password-reset",
        "GET /api/v1/admin/rooms",
        "DELETE /api/v1/admin/rooms/{name}",
        "POST /api/v1/admin/rooms/{name}/end",
        "PUT /api/v1/admin/rooms/{name}/lock",
        "PUT /api/v1/admin/rooms/{name}/owner",
        "GET /api/v1/admin/calls",
        "GET /api/v1/admin/audit",
        "GET /api/v1/rooms/{room}/invites",
        "POST /api/v1/rooms/{room}/invites",
        "DELETE /api/v1/rooms/{room}/invites/{id}",
        "POST /api/v1/guest/invite",
        "POST /api/v1/guest",
        "GET /api/v1/admin/turn/allocations",
        "DELETE /api/v1/admin/turn/allocations/{id}",
        "GET /api/v1/admin/turn/quotas",
        "GET /api/v1/admin/keys",
        "POST /api/v1/admin/keys/{key}/rotate",
        "PUT /api/v1/admin/turn/quotas",
        "POST /api/v1/rooms/{room}/attachments",
        "GET /api/v1/rooms/{room}/attachments/{id}",
        "DELETE /api/v1/rooms/{room}/attachments/{id}",
        "GET /api/v1/rooms/{room}/attachments/{id}/thumbnail",
        "GET /api/v1/rooms/{room}/recordings",
        "DELETE /api/v1/rooms/{room}/recordings/{id}",
        "GET /api/v1/rooms/{room}/recordings/{id}/files/{name}",
    ];
    served.sort();
    assert_eq!(
        documented, served,
        "every API route is described, and nothing else"
    );
    // Each described route exists (the router's own 404/405 never answers it).
    for entry in &documented {
        let (method, path) = entry.split_once(' ').unwrap();
        let url = app.url(
            &path
                .replace("{room}", "no-such-room")
                .replace("{name}", "no-such-room")
                .replace("{key}", "jwt")
                .replace("{id}", &uuid::Uuid::new_v4().to_string()),
        );
        let response = app
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            !(body.contains("\"not_found\"") || body.contains("method_not_allowed")),
            "{entry}: {status} {body}"
        );
    }
    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("/static/js/docs.js"));
    app.stop().await;
}

/// What a browser sends when it opens a page.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// An address nothing serves is a 404 page for a browser (HTML, styled, with a
/// way back to the rooms), and the API's JSON error for a program or under
/// `/api/` and `/ws/`. `/r/` with no or an invalid room name is a 404 page that
/// says what a room name is; a valid one is still the app.
#[tokio::test]
async fn unknown_pages_are_an_html_404_and_unknown_api_paths_stay_json() {
    let app = spawn_app(&[]).await;
    let get =
        |path: &str, accept: &str| app.http.get(app.url(path)).header("accept", accept).send();
    let long = format!("/r/{}", "a".repeat(65));
    for (path, kind) in [
        ("/nope", "page"),
        ("/static/nope.html", "page"),
        ("/r/team/extra", "page"),
        ("/r", "room"),
        ("/r/", "room"),
        ("/r/not%20a%20room", "room"),
        ("/r/%3Cb%3E", "room"),
        (long.as_str(), "room"),
    ] {
        let page = get(path, BROWSER_ACCEPT).await.unwrap();
        assert_eq!(page.status(), 404, "{path}");
        let headers = page.headers().clone();
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        let body = page.text().await.unwrap();
        assert!(
            body.contains(&format!("data-kind=\"{kind}\"")),
            "{path}: {body}"
        );
        assert!(body.contains("href=\"/static/index.html\""), "{path}");
        assert!(body.contains("/static/css/notfound.css"), "{path}");
        assert!(body.contains("/static/js/notfound.js"), "{path}");
        assert!(!body.contains("<b>"), "the path is never echoed: {path}");
        if kind == "room" {
            assert!(body.contains("1–64"), "says what a room name is: {body}");
        }
    }
    // A room page needs no Accept: a link is a page whatever asks for it.
    let room = get("/r/", "*/*").await.unwrap();
    assert_eq!(room.status(), 404);
    assert!(room.text().await.unwrap().contains("data-kind=\"room\""));
    let valid = get("/r/team-call", BROWSER_ACCEPT).await.unwrap();
    assert_eq!(valid.status(), 200);
    assert!(valid.text().await.unwrap().contains("/static/js/app.js"));

    // Programs and the API keep the JSON error.
    for (path, accept) in [
        ("/api/v1/nothing-here", BROWSER_ACCEPT),
        ("/api", BROWSER_ACCEPT),
        ("/ws/nothing", BROWSER_ACCEPT),
        ("/nope", "*/*"),
        ("/nope", "application/json"),
        ("/static/nope.js", "*/*"),
    ] {
        let response = get(path, accept).await.unwrap();
        assert_eq!(
            error_of(response).await,
            (404, "not_found".into(), None),
            "{path} {accept}"
        );
    }

    // Every string the two pages show exists in English and in Russian.
    let i18n = get("/static/js/i18n.js", "*/*")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (en, ru) = i18n.split_once("\n  ru: {").expect("a Russian dictionary");
    let mut keys = vec!["nf_room_invalid".to_owned()];
    for page in ["/static/404.html", "/static/room-404.html"] {
        let html = get(page, BROWSER_ACCEPT)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        keys.extend(
            html.split("data-i18n=\"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .map(str::to_owned),
        );
    }
    for key in keys.iter().filter(|k| k.starts_with("nf_")) {
        let entry = |dict: &str| {
            dict.lines()
                .find(|l| l.trim_start().starts_with(&format!("{key}: ")))
                .map(str::to_owned)
        };
        let english = entry(en).unwrap_or_else(|| panic!("{key} in English"));
        let russian = entry(ru).unwrap_or_else(|| panic!("{key} in Russian"));
        assert_ne!(english, russian);
        assert!(
            russian
                .chars()
                .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap())),
            "{key} is really Russian: {russian}"
        );
    }
    assert!(keys.len() > 10, "{keys:?}");
    app.stop().await;
}

/// The 404 pages in headless Chromium on a phone-sized window: the room page
/// names the link's invalid name as text (markup in it stays text), both pages
/// switch to Russian and back, nothing overflows sideways, and the link leads
/// back into the app.
#[tokio::test]
async fn the_404_pages_read_in_english_and_russian_and_fit_a_phone() {
    use webclient::{click, css, eventually, screenshot, Driver, Engine};
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let phone = driver.browser(360, 740).await;
    let text = |selector: &str| {
        format!("const e = document.querySelector('{selector}'); return e ? e.textContent : null;")
    };
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth;";

    phone
        .goto(&app.url("/r/%3Cimg%20src%3Dx%3Ebad%20name"))
        .await
        .unwrap();
    css(&phone, "[data-testid=not-found][data-kind=room]").await;
    eventually(
        &phone,
        "the invalid name, as text",
        "const e = document.querySelector('[data-testid=room-name-invalid]'); return e.textContent.includes('<img src=x>bad name') && !document.querySelector('main img');",
    )
    .await;
    assert_eq!(phone.execute(fits, vec![]).await.unwrap(), json!(true));
    click(&phone, "[data-lang-switch] button[data-lang=ru]").await;
    eventually(
        &phone,
        "the room page in Russian",
        "return document.querySelector('h1').textContent === 'Такой комнаты нет' && document.querySelector('[data-testid=room-name-invalid]').textContent.includes('недопустимое') && document.documentElement.lang === 'ru';",
    )
    .await;
    assert_eq!(phone.execute(fits, vec![]).await.unwrap(), json!(true));
    screenshot(&phone, "room-404-ru-360").await;

    // The language chosen stays; the other page switches back to English.
    phone.goto(&app.url("/no/such/page")).await.unwrap();
    css(&phone, "[data-testid=not-found][data-kind=page]").await;
    eventually(
        &phone,
        "the page in Russian",
        "return document.querySelector('h1').textContent === 'Такой страницы нет';",
    )
    .await;
    assert_eq!(phone.execute(fits, vec![]).await.unwrap(), json!(true));
    screenshot(&phone, "404-ru-360").await;
    click(&phone, "[data-lang-switch] button[data-lang=en]").await;
    eventually(
        &phone,
        "the page in English",
        "return document.querySelector('h1').textContent === 'This page does not exist' && document.documentElement.lang === 'en';",
    )
    .await;
    click(&phone, "[data-testid=to-rooms]").await;
    // Not signed in: the app sends on to the sign-in page.
    eventually(
        &phone,
        "the app, out of the 404",
        "return !document.querySelector('[data-testid=not-found]') && location.pathname.startsWith('/static/') && document.readyState === 'complete';",
    )
    .await;

    let desktop = driver.browser(1280, 800).await;
    desktop.goto(&app.url("/r/")).await.unwrap();
    css(&desktop, "[data-testid=not-found][data-kind=room]").await;
    let said = eventually(
        &desktop,
        "the empty link",
        &text("[data-testid=room-name-invalid]"),
    )
    .await;
    assert_eq!(said, json!("This link names no room."));
    assert_eq!(desktop.execute(fits, vec![]).await.unwrap(), json!(true));
    screenshot(&desktop, "room-404-en-1280").await;
    phone.close().await.unwrap();
    desktop.close().await.unwrap();
    app.stop().await;
}
