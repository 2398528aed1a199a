//! The web client in real headless Chromium (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them), driven over WebDriver: sign in
//! through the page, two people in one room through the embedded TURN relay
//! (`forceRelay=1`), names, chat, video decoded over a relay candidate pair, a
//! volume slider, leaving. Screenshots land in the target directory.

mod support;
mod webclient;

use std::time::Duration;

use fantoccini::Client;
use serde_json::{json, Value};
use support::{spawn_app, TestApp, PASSWORD, REGISTRATION_SECRET};
use webclient::{
    auth_ready, click, connection_check, css, eventually, fill, join_call, screenshot, tile_of,
    Driver, Engine, CALL_PATH,
};

async fn register_through_the_page(browser: &Client, app: &TestApp, name: &str) {
    browser
        .goto(&app.url("/static/auth.html#register"))
        .await
        .unwrap();
    auth_ready(browser).await;
    fill(browser, "#register-email", &format!("{name}@example.org")).await;
    fill(browser, "#register-username", name).await;
    fill(browser, "#register-password", PASSWORD).await;
    fill(browser, "#register-secret", "not-the-secret").await;
    click(browser, "[data-testid=register-submit]").await;
    // 403: the secret field says so, inline.
    eventually(
        browser,
        "inline error for a wrong secret",
        "const e = document.querySelector('[data-testid=register-secret-error]'); return e && !e.hidden && e.textContent.trim();",
    )
    .await;
    screenshot(browser, "auth-register-error").await;
    fill(browser, "#register-secret", REGISTRATION_SECRET).await;
    click(browser, "[data-testid=register-submit]").await;
    // Registered and signed in: the app's lobby.
    css(browser, "[data-testid=lobby]:not([hidden])").await;
}

async fn log_in_through_the_page(browser: &Client, app: &TestApp, name: &str) {
    browser.goto(&app.url("/static/auth.html")).await.unwrap();
    auth_ready(browser).await;
    screenshot(browser, "auth").await;
    fill(browser, "#login-user", name).await;
    fill(browser, "#login-password", PASSWORD).await;
    click(browser, "[data-testid=login-submit]").await;
    css(browser, "[data-testid=lobby]:not([hidden])").await;
}

async fn relayed_video(browser: &Client, peer: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..60 {
        last = browser
            .execute_async(CALL_PATH, vec![json!(peer)])
            .await
            .unwrap();
        if last["local"] == "relay" && last["frames"].as_u64().unwrap_or(0) > 0 {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("no relayed, decoded video: {last}");
}

#[tokio::test]
async fn two_people_call_each_other_through_the_embedded_relay() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let ada = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;

    register_through_the_page(&ada, &app, "ada").await;
    app.register("bob@example.org", "bob").await;
    log_in_through_the_page(&bob, &app, "bob").await;
    screenshot(&bob, "lobby").await;

    join_call(&ada, &app.url("/r/team?forceRelay=1")).await;
    join_call(&bob, &app.url("/r/team?forceRelay=1")).await;
    let bob_on_ada = tile_of(&ada, "bob").await;
    let ada_on_bob = tile_of(&bob, "ada").await;

    // Both receive each other's video, and both over the relay.
    let seen_by_ada = relayed_video(&ada, &bob_on_ada).await;
    let seen_by_bob = relayed_video(&bob, &ada_on_bob).await;
    assert_eq!(seen_by_ada["remote"], "relay", "{seen_by_ada}");
    assert_eq!(seen_by_bob["remote"], "relay", "{seen_by_bob}");
    assert!(
        app.relay_allocations() >= 2,
        "the embedded relay carries the call"
    );

    // Chat: own messages marked as mine, the other's not.
    fill(&ada, "[data-testid=chat-input]", "hello from ada").await;
    css(&ada, "[data-testid=chat-input]")
        .await
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let mine = "const m = [...document.querySelectorAll('[data-testid=chat-log] [data-testid=chat-message]')].find(m => m.textContent.includes('hello from ada')); return m && m.dataset.mine;";
    assert_eq!(eventually(&ada, "ada's own message", mine).await, "true");
    assert_eq!(
        eventually(&bob, "ada's message at bob", mine).await,
        "false"
    );

    // Volume: 150 % on Ada's tile at Bob changes that peer's gain.
    let set_volume = format!(
        "const s = document.querySelector('[data-peer-id=\"{ada_on_bob}\"] [data-testid=volume]'); \
         s.value = 150; s.dispatchEvent(new Event('input', {{bubbles: true}})); s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;"
    );
    bob.execute(&set_volume, vec![]).await.unwrap();
    let gain = eventually(
        &bob,
        "gain 1.5",
        &format!(
            "const g = window.webcall.gain('{ada_on_bob}'); return Math.abs(g - 1.5) < 0.001 && g;"
        ),
    )
    .await;
    assert!((gain.as_f64().unwrap() - 1.5).abs() < 0.001);
    let data_gain = eventually(
        &bob,
        "data-gain",
        &format!("return document.querySelector('[data-peer-id=\"{ada_on_bob}\"]').dataset.gain;"),
    )
    .await;
    assert_eq!(data_gain, "1.5");

    screenshot(&ada, "call-ada").await;
    screenshot(&bob, "call-bob").await;

    // Bob leaves; his tile disappears at Ada's.
    click(&bob, "[data-testid=leave]").await;
    eventually(
        &ada,
        "bob's tile gone",
        &format!("return !document.querySelector('[data-peer-id=\"{bob_on_ada}\"]');"),
    )
    .await;

    ada.close().await.unwrap();
    bob.close().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn the_connection_check_page_finds_both_relay_transports() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let token = app.user_token("ada").await;
    let browser = driver.browser(1000, 900).await;
    browser.goto(&app.url("/static/auth.html")).await.unwrap();
    browser
        .execute(
            "localStorage.setItem('webcall.token', arguments[0]); localStorage.setItem('webcall.token_exp', String(Date.now() + 3600e3)); return true;",
            vec![json!(token)],
        )
        .await
        .unwrap();
    let check = connection_check(&browser, &app.url("/check")).await;
    assert_eq!(check["udp"], "ok", "{check}");
    assert_eq!(check["tcp"], "ok", "{check}");
    assert!(
        check["summary"]
            .as_str()
            .is_some_and(|s| s.contains("connect")),
        "{check}"
    );
    let raw = browser
        .execute(
            "return document.querySelector('[data-testid=check-raw]').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        raw.as_str().unwrap().contains("\"relayProtocol\": \"tcp\""),
        "{raw}"
    );
    screenshot(&browser, "check").await;
    // In Russian, on a phone: every row's verdict is there, none cut.
    driver.emulate_viewport(&browser, 360, 740).await;
    click(&browser, "[data-lang=ru]").await;
    let tls_title = browser
        .execute(
            "return document.querySelector('[data-testid=check-tls] strong').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(tls_title, "Ретранслятор по TLS (порт HTTPS)");
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, json!(false), "no sideways scrolling on a phone");
    screenshot(&browser, "check-ru-phone").await;
    browser.close().await.unwrap();
    app.stop().await;
}

/// The lobby shows rooms a page (50) at a time with "Show more rooms", and
/// says so inline when the account owns as many rooms as it may.
#[tokio::test]
async fn the_lobby_pages_rooms_and_explains_the_room_limit() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[("ROOMS_PER_USER", "30")]).await;
    for (user, count) in [("ada", 30), ("bob", 25)] {
        let token = app.user_token(user).await;
        for i in 0..count {
            let created = app.create_room(&token, &format!("{user}-{i:02}")).await;
            assert_eq!(created.status(), 201);
        }
    }
    let ada = driver.browser(1280, 800).await;
    log_in_through_the_page(&ada, &app, "ada").await;
    let rooms_and_more = |rooms: usize, more: bool| {
        format!(
            "const n = document.querySelectorAll('[data-testid=room-list] > li').length; \
             const more = !document.querySelector('[data-testid=more-rooms]').hidden; \
             return n === {rooms} && more === {more};"
        )
    };
    eventually(
        &ada,
        "the first 50 rooms and a button for more",
        &rooms_and_more(50, true),
    )
    .await;
    click(&ada, "[data-testid=more-rooms]").await;
    eventually(
        &ada,
        "all 55 rooms, no more button",
        &rooms_and_more(55, false),
    )
    .await;
    fill(&ada, "#room-name", "one-more").await;
    click(&ada, "[data-testid=join-room]").await;
    let said = eventually(
        &ada,
        "the room limit, inline",
        "const e = document.querySelector('#room-name-error'); return e && !e.hidden && e.textContent.trim();",
    )
    .await;
    assert!(said.as_str().unwrap().contains("Delete one"), "{said}");
    css(&ada, "[data-testid=lobby]:not([hidden])").await;
    screenshot(&ada, "lobby-room-limit").await;

    // In Russian on a phone: the same, and nothing wider than the screen.
    ada.execute("localStorage.setItem('webcall.lang', 'ru');", vec![])
        .await
        .unwrap();
    driver.emulate_viewport(&ada, 360, 740).await;
    ada.refresh().await.unwrap();
    eventually(&ada, "the first 50 rooms again", &rooms_and_more(50, true)).await;
    fill(&ada, "#room-name", "one-more").await;
    click(&ada, "[data-testid=join-room]").await;
    let said = eventually(
        &ada,
        "the room limit, inline, in Russian",
        "const e = document.querySelector('#room-name-error'); return e && !e.hidden && e.textContent.trim();",
    )
    .await;
    assert!(said.as_str().unwrap().contains("удалите"), "{said}");
    let overflow = ada
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the lobby is {overflow} px wider than a 360 px screen"
    );
    screenshot(&ada, "lobby-room-limit-ru-phone").await;
    ada.close().await.unwrap();
    app.stop().await;
}
