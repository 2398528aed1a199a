//! The lobby and room passwords in real headless Chromium against the real
//! server: in a room that asks to join, Bob's Join shows "Waiting for the host
//! to let you in"; Ann (the owner, in the call) sees "bob wants to join" and a
//! count on the people button, admits him, and his call starts at once; Carol
//! (in Russian) is denied and told so at once. A room with a password asks for
//! it on the pre-join screen (a wrong one is refused, the right one lets Join
//! through), and the owner's Room access dialog makes a room private.
//! Screenshots land in the target directory's `screenshots/lobby-*.png`.

mod support;
mod webclient;

use fantoccini::Client;
use reqwest::Method;
use serde_json::{json, Value};
use support::{spawn_app, TestApp};
use webclient::{
    click, css, eventually, fill, join_call, js, screenshot, set_lang, tile_of, Driver, Engine,
};

/// Signs `user` in (in English) with `token`.
async fn sign_in(browser: &Client, app: &TestApp, token: &str) {
    browser.goto(&app.url("/static/auth.html")).await.unwrap();
    browser
        .execute(
            "localStorage.setItem('webcall.token', arguments[0]); localStorage.setItem('webcall.token_exp', String(Date.now() + 3600e3)); localStorage.setItem('webcall.lang', 'en'); return true;",
            vec![json!(token)],
        )
        .await
        .unwrap();
}

async fn create(app: &TestApp, token: &str, body: Value) {
    let made = app
        .http
        .request(Method::POST, app.url("/api/v1/rooms"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
}

/// The text of the first element at `selector` once it is shown.
async fn shown_text(browser: &Client, what: &str, selector: &str) -> Value {
    eventually(
        browser,
        what,
        &format!("const e = document.querySelector({}); return e && !e.hidden && e.offsetParent !== null && e.textContent;", json!(selector)),
    )
    .await
}

#[tokio::test]
async fn the_host_admits_one_newcomer_and_denies_another_who_see_the_answer_at_once() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    app.user_token("root").await; // the first account is an admin: not Ann
    let (ann_t, bob_t, carol_t) = (
        app.user_token("ann").await,
        app.user_token("bob").await,
        app.user_token("carol").await,
    );
    create(&app, &ann_t, json!({"name": "team", "ask_to_join": true})).await;
    let ann = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;
    let carol = driver.browser(1280, 800).await;
    sign_in(&ann, &app, &ann_t).await;
    sign_in(&bob, &app, &bob_t).await;
    sign_in(&carol, &app, &carol_t).await;
    join_call(&ann, &app.url("/r/team")).await;

    bob.goto(&app.url("/r/team")).await.unwrap();
    let note = shown_text(&bob, "the lobby note", "[data-testid=room-gate-note]").await;
    assert!(
        note.as_str().unwrap().contains("The host lets people into"),
        "{note}"
    );
    join_call(&bob, &app.url("/r/team")).await;
    let waiting = shown_text(
        &bob,
        "the waiting screen",
        "[data-testid=lobby-waiting-text]",
    )
    .await;
    assert_eq!(waiting, "Waiting for the host to let you in…");
    screenshot(&bob, "lobby-waiting").await;

    let knock = shown_text(&ann, "bob knocks", "[data-testid=knock] .knock-text").await;
    assert_eq!(knock, "bob wants to join");
    assert_eq!(
        js(
            &ann,
            "return document.querySelector('[data-testid=knock-count]').textContent;"
        )
        .await,
        "1"
    );
    screenshot(&ann, "lobby-knock").await;
    click(&ann, "[data-testid=knock-admit]").await;
    // Bob is in at once: his waiting screen goes, and each sees the other.
    eventually(
        &bob,
        "bob's waiting screen gone",
        "return document.querySelector('[data-testid=lobby-waiting]').hidden;",
    )
    .await;
    tile_of(&ann, "bob").await;
    tile_of(&bob, "ann").await;
    assert_eq!(
        js(
            &ann,
            "return document.querySelectorAll('[data-testid=knock]').length;"
        )
        .await,
        0
    );
    assert_eq!(
        js(
            &ann,
            "return document.querySelector('[data-testid=knock-count]').hidden;"
        )
        .await,
        true
    );

    // Carol, in Russian, is denied and told so at once.
    carol.goto(&app.url("/r/team")).await.unwrap();
    set_lang(&carol, "ru").await;
    css(&carol, "[data-testid=prejoin]:not([hidden])").await;
    join_call(&carol, &app.url("/r/team")).await;
    let waiting = shown_text(&carol, "carol waits", "[data-testid=lobby-waiting-text]").await;
    assert_eq!(waiting, "Ждём, когда ведущий вас впустит…");
    shown_text(&ann, "carol knocks", "[data-testid=knock]").await;
    click(&ann, "[data-testid=knock-deny]").await;
    let told = eventually(
        &carol,
        "carol told she was denied",
        "const n = document.querySelector('[data-notice=ended]'); return n && n.textContent;",
    )
    .await;
    assert!(
        told.as_str()
            .unwrap()
            .contains("Ведущий не впустил вас в «team»."),
        "{told}"
    );
    assert_eq!(
        js(
            &carol,
            "return document.querySelector('[data-testid=call-view]').hidden;"
        )
        .await,
        true
    );

    // The owner makes the room private in the Room access dialog.
    click(&ann, "[data-testid=toggle-people]").await;
    click(&ann, "[data-testid=room-access-open]").await;
    css(&ann, "[data-testid=access-dialog][open]").await;
    js(&ann, "const s = document.querySelector('[data-testid=access-level]'); s.value = 'private'; return true;").await;
    fill(&ann, "[data-testid=access-member-name]", "bob").await;
    click(&ann, "[data-testid=access-member-add]").await;
    shown_text(
        &ann,
        "bob listed as a member",
        "[data-testid=access-members] li",
    )
    .await;
    screenshot(&ann, "lobby-room-access").await;
    click(&ann, "[data-testid=access-save]").await;
    eventually(
        &ann,
        "the dialog closed",
        "return !document.querySelector('[data-testid=access-dialog]');",
    )
    .await;
    let room: Value = app
        .get_authed("/api/v1/rooms/team", &ann_t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (room["access"].as_str(), room["ask_to_join"].as_bool()),
        (Some("private"), Some(true))
    );
    let carol_sees = app.get_authed("/api/v1/rooms/team", &carol_t).await;
    assert_eq!(carol_sees.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn a_room_password_is_asked_for_on_the_pre_join_screen() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    app.user_token("root").await;
    let (ann_t, bob_t) = (app.user_token("ann").await, app.user_token("bob").await);
    create(
        &app,
        &ann_t,
        json!({"name": "vault", "password": "open sesame"}),
    )
    .await;
    let ann = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;
    sign_in(&ann, &app, &ann_t).await;
    sign_in(&bob, &app, &bob_t).await;
    join_call(&ann, &app.url("/r/vault")).await; // the owner needs no password

    bob.goto(&app.url("/r/vault")).await.unwrap();
    let note = shown_text(&bob, "the password prompt", "[data-testid=room-gate-note]").await;
    assert_eq!(note, "“vault” has a password. Type it to join.");
    assert_eq!(
        js(
            &bob,
            "return document.querySelector('[data-testid=prejoin-join]').disabled;"
        )
        .await,
        true
    );
    fill(&bob, "[data-testid=room-password]", "guess").await;
    click(&bob, "[data-testid=room-password-ok]").await;
    let wrong = shown_text(
        &bob,
        "a wrong password refused",
        "[data-testid=room-gate][data-kind=error] [data-testid=room-gate-note]",
    )
    .await;
    assert_eq!(wrong, "Wrong password. Try again.");
    screenshot(&bob, "lobby-password").await;
    fill(&bob, "[data-testid=room-password]", "open sesame").await;
    click(&bob, "[data-testid=room-password-ok]").await;
    let ok = shown_text(
        &bob,
        "the password accepted",
        "[data-testid=room-gate][data-kind=ok] [data-testid=room-gate-note]",
    )
    .await;
    assert_eq!(ok, "Password accepted: you may join.");
    // The page holds a room pass, not the password.
    let kept = js(
        &bob,
        "return sessionStorage.getItem('webcall.roompass.vault');",
    )
    .await;
    assert!(!kept.as_str().unwrap().contains("sesame"), "{kept}");
    webclient::click_join(&bob).await;
    tile_of(&bob, "ann").await;
    tile_of(&ann, "bob").await;
    app.stop().await;
}
