//! The admin panel (`/admin`) and the password-reset page (`/reset`) in real
//! headless Chromium against the real server: the first account (an admin) sees
//! the lobby's Admin link, finds a user by searching, bans them while they are
//! in a call in another browser (their call ends and they are told why; their
//! row says "banned", also after a reload), and the users tab reads in Russian;
//! a member gets "Admins only" with a way back, and no Admin link; someone not
//! signed in is sent to sign in; a reset link made in the panel lets a person
//! set a new password (mismatched twice first) and sign in with it, once; the
//! TURN tab lists the allocation of a call forced through the relay, quotas
//! saved there and a key rotated on the Keys tab are what the API then reports;
//! rooms are locked and handed to another owner; every tab fits a 360 px phone
//! without sideways scrolling, in both languages. Screenshots land in the
//! target directory's `screenshots/admin-*.png`.

mod support;
mod webclient;

use fantoccini::Client;
use serde_json::json;
use support::{TestApp, PASSWORD};
use webclient::{
    auth_ready, click, css, eventually, fill, join_call, js, no_sideways_scroll, screenshot,
    set_lang, Driver, Engine,
};

/// One scenario at a time: each takes browsers, the machine may have two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TABS: [&str; 6] = ["users", "rooms", "calls", "turn", "keys", "audit"];

/// Registers `name` over the API and signs the browser in with its token
/// (returned, for the test's own API calls).
async fn signed_in(browser: &Client, app: &TestApp, name: &str) -> String {
    let token = app.user_token(name).await;
    browser.goto(&app.url("/static/auth.html")).await.unwrap();
    browser
        .execute(
            "localStorage.setItem('webcall.token', arguments[0]); localStorage.setItem('webcall.token_exp', String(Date.now() + 3600e3)); return true;",
            vec![json!(token)],
        )
        .await
        .unwrap();
    token
}

/// Opens the panel on `tab` and waits until the tab has drawn what it loaded.
async fn open_tab(browser: &Client, app: &TestApp, tab: &str) {
    browser
        .goto(&app.url(&format!("/admin#{tab}")))
        .await
        .unwrap();
    show_tab(browser, tab).await;
}

/// Clicks the tab and waits for its panel to be shown and filled.
async fn show_tab(browser: &Client, tab: &str) {
    click(browser, &format!("[data-testid=admin-tab-{tab}]")).await;
    eventually(
        browser,
        &format!("the {tab} tab drawn"),
        &format!(
            "const p = document.querySelector('[data-testid=admin-panel-{tab}]'); \
             return p && !p.hidden && p.children.length > 0 && !p.querySelector('[aria-busy=true]');"
        ),
    )
    .await;
}

/// Types into the users search and waits until only rows matching `expect` show.
async fn search_users(browser: &Client, text: &str, expect: &str) {
    fill(browser, "[data-testid=users-search]", text).await;
    eventually(
        browser,
        &format!("the search for {text} shows {expect}"),
        &format!(
            "const rows = [...document.querySelectorAll('[data-testid=user-row]')]; \
             return rows.length > 0 && rows.every((r) => r.dataset.username.includes('{expect}'));"
        ),
    )
    .await;
}

/// The status (`online`/`offline`/`banned`) of `username`'s row.
const STATUS: &str = "const r = document.querySelector(`[data-testid=user-row][data-username=\"${arguments[0]}\"]`); \
     return r && r.querySelector('[data-testid=user-status]').dataset.status;";

async fn status_of(browser: &Client, username: &str) -> String {
    let v = browser
        .execute(STATUS, vec![json!(username)])
        .await
        .unwrap();
    v.as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn an_admin_bans_a_user_in_a_call_who_is_removed_and_shown_banned() {
    let _serial = SERIAL.lock().await;
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = support::spawn_app(&[]).await;
    let admin = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;
    signed_in(&admin, &app, "ada").await; // the first account: an admin
    signed_in(&bob, &app, "bob").await;
    app.user_token("bobby").await; // also matches "bob"
    app.user_token("carol").await;

    // The lobby shows ada the way to the panel; bob gets none.
    admin.goto(&app.url("/static/index.html")).await.unwrap();
    css(&admin, "[data-testid=admin-link]:not([hidden])").await;
    bob.goto(&app.url("/static/index.html")).await.unwrap();
    css(&bob, "[data-testid=lobby]:not([hidden])").await;
    assert_eq!(
        js(
            &bob,
            "return document.querySelector('[data-testid=admin-link]').hidden;"
        )
        .await,
        true,
        "a member sees no Admin link"
    );

    // Bob is in a call.
    join_call(&bob, &app.url("/r/standup")).await;

    // Ada finds him by searching and bans him.
    click(&admin, "[data-testid=admin-link]").await;
    show_tab(&admin, "users").await;
    eventually(
        &admin,
        "all four people listed",
        "return document.querySelectorAll('[data-testid=user-row]').length === 4;",
    )
    .await;
    search_users(&admin, "BOB", "bob").await; // case-insensitive, username or e-mail
    assert_eq!(
        js(
            &admin,
            "return document.querySelectorAll('[data-testid=user-row]').length;"
        )
        .await,
        2,
        "bob and bobby"
    );
    search_users(&admin, "bob@", "bob").await;
    assert_eq!(status_of(&admin, "bob").await, "online");
    screenshot(&admin, "admin-users").await;
    click(
        &admin,
        "[data-testid=user-row][data-username=bob] [data-testid=user-ban]",
    )
    .await;
    // Cancel first: nothing happens.
    click(&admin, "[data-testid=confirm-cancel]").await;
    assert_eq!(status_of(&admin, "bob").await, "online");
    click(
        &admin,
        "[data-testid=user-row][data-username=bob] [data-testid=user-ban]",
    )
    .await;
    click(&admin, "[data-testid=confirm-ok]").await;
    eventually(
        &admin,
        "bob's row says banned",
        "const r = document.querySelector('[data-testid=user-row][data-username=bob]'); \
         return r && r.querySelector('[data-testid=user-status]').dataset.status === 'banned';",
    )
    .await;

    // Bob's call ends at once, and he is told why.
    eventually(
        &bob,
        "bob is out of the call, told he was blocked",
        "const n = document.querySelector('[data-notice=ended]'); \
         return document.querySelector('[data-testid=call-view]').hidden && n && /blocked/i.test(n.textContent);",
    )
    .await;
    screenshot(&bob, "admin-banned-member").await;

    // The server says so too: after a reload the row still reads banned, and
    // bob cannot sign in again.
    open_tab(&admin, &app, "users").await;
    search_users(&admin, "bob@", "bob").await;
    assert_eq!(status_of(&admin, "bob").await, "banned");
    let login = app.login_username("bob", PASSWORD).await;
    assert_eq!(login.status(), 403);

    // The audit log has it.
    show_tab(&admin, "audit").await;
    eventually(
        &admin,
        "the ban in the audit log",
        "return [...document.querySelectorAll('[data-testid=audit-row]')].some((r) => r.dataset.action === 'user.ban');",
    )
    .await;

    // The users tab in Russian.
    show_tab(&admin, "users").await;
    set_lang(&admin, "ru").await;
    search_users(&admin, "bob@", "bob").await;
    let texts = js(
        &admin,
        "const r = document.querySelector('[data-testid=user-row][data-username=bob]'); \
         return {status: r.querySelector('[data-testid=user-status]').textContent, \
                 unban: r.querySelector('[data-testid=user-unban]').textContent, \
                 head: document.querySelector('[data-testid=admin-panel-users] th').textContent, \
                 tab: document.querySelector('[data-testid=admin-tab-users]').textContent, \
                 search: document.querySelector('[data-testid=users-search]').placeholder};",
    )
    .await;
    assert_eq!(texts["status"], "Заблокирован", "{texts}");
    assert_eq!(texts["unban"], "Разблокировать", "{texts}");
    assert_eq!(texts["head"], "Пользователь", "{texts}");
    assert_eq!(texts["tab"], "Пользователи", "{texts}");
    assert_eq!(texts["search"], "Поиск по имени или e-mail", "{texts}");
    screenshot(&admin, "admin-users-ru").await;

    // Unban: bob signs in again.
    click(
        &admin,
        "[data-testid=user-row][data-username=bob] [data-testid=user-unban]",
    )
    .await;
    eventually(
        &admin,
        "bob's row no longer banned",
        "const r = document.querySelector('[data-testid=user-row][data-username=bob]'); \
         return r && r.dataset.banned === 'false';",
    )
    .await;
    assert_eq!(app.login_username("bob", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_member_sees_admins_only_and_a_stranger_is_asked_to_sign_in() {
    let _serial = SERIAL.lock().await;
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = support::spawn_app(&[]).await;
    app.user_token("ada").await; // the first account: the admin
    let browser = driver.browser(1280, 800).await;

    // Not signed in: the sign-in page, which comes back here afterwards.
    browser.goto(&app.url("/admin")).await.unwrap();
    css(&browser, "[data-testid=login-form]").await;
    let url = browser.current_url().await.unwrap();
    assert!(url.as_str().contains("next=%2Fadmin"), "{url}");

    // A member: "Admins only", a link back to the lobby, no admin data.
    signed_in(&browser, &app, "bob").await;
    browser.goto(&app.url("/admin#users")).await.unwrap();
    css(&browser, "[data-testid=admin-denied]:not([hidden])").await;
    assert_eq!(
        js(&browser, "return document.querySelector('[data-testid=admin]').hidden && !document.querySelector('[data-testid=user-row]');").await,
        true
    );
    screenshot(&browser, "admin-denied").await;
    set_lang(&browser, "ru").await;
    assert_eq!(
        js(
            &browser,
            "return document.querySelector('[data-testid=admin-denied] h1').textContent;"
        )
        .await,
        "Только для администраторов"
    );
    click(&browser, "[data-testid=admin-denied-back]").await;
    css(&browser, "[data-testid=lobby]:not([hidden])").await;
}

#[tokio::test]
async fn a_reset_link_from_the_panel_sets_a_new_password_once() {
    let _serial = SERIAL.lock().await;
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = support::spawn_app(&[]).await;
    let admin = driver.browser(1280, 800).await;
    let ada = signed_in(&admin, &app, "ada").await;
    app.user_token("bob").await;

    // Rooms: lock one (the API then says so to everyone) and give it to bob.
    assert_eq!(app.create_room(&ada, "board").await.status(), 201);
    open_tab(&admin, &app, "rooms").await;
    click(
        &admin,
        "[data-testid=room-row][data-room=board] [data-testid=room-lock]",
    )
    .await;
    click(&admin, "[data-testid=confirm-ok]").await;
    css(
        &admin,
        "[data-testid=room-row][data-room=board][data-locked=true]",
    )
    .await;
    let room: serde_json::Value = app
        .get_authed("/api/v1/rooms/board", &ada)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(room["locked"], true, "{room}");
    click(
        &admin,
        "[data-testid=room-row][data-room=board] [data-testid=room-owner]",
    )
    .await;
    fill(&admin, "[data-testid=owner-username]", "nobody").await;
    click(&admin, "[data-testid=owner-ok]").await;
    css(&admin, "[data-testid=owner-error]:not([hidden])").await;
    fill(&admin, "[data-testid=owner-username]", "bob").await;
    click(&admin, "[data-testid=owner-ok]").await;
    eventually(
        &admin,
        "bob owns the room",
        "const r = document.querySelector('[data-testid=room-row][data-room=board]'); \
         return r && r.querySelector('[data-testid=room-owner-name]').textContent === 'bob' && !document.querySelector('[data-testid=owner-dialog]');",
    )
    .await;
    open_tab(&admin, &app, "rooms").await; // as the server has it
    css(
        &admin,
        "[data-testid=room-row][data-room=board][data-locked=true]",
    )
    .await;
    assert_eq!(
        js(&admin, "return document.querySelector('[data-testid=room-row][data-room=board] [data-testid=room-owner-name]').textContent;").await,
        "bob"
    );

    open_tab(&admin, &app, "users").await;
    search_users(&admin, "bob", "bob").await;
    click(
        &admin,
        "[data-testid=user-row][data-username=bob] [data-testid=user-reset]",
    )
    .await;
    click(&admin, "[data-testid=confirm-ok]").await;
    css(&admin, "[data-testid=reset-link-dialog][open]").await;
    let link = js(
        &admin,
        "return document.querySelector('[data-testid=reset-link-url]').value;",
    )
    .await;
    let link = link.as_str().unwrap().to_owned();
    assert!(link.contains("/reset#"), "{link}");
    click(&admin, "[data-testid=reset-link-copy]").await;
    screenshot(&admin, "admin-reset-link").await;
    click(&admin, "[data-testid=reset-link-close]").await;

    // Bob opens it in a browser of his own (the link names this server's
    // host as the server sees it; the test serves on the same address).
    let bob = driver.browser(1280, 800).await;
    let path = &link[link.find("/reset#").unwrap()..];
    bob.goto(&app.url(path)).await.unwrap();
    css(&bob, "[data-testid=reset-form]:not([hidden])").await;
    fill(&bob, "[data-testid=reset-password]", "a brand new secret").await;
    fill(&bob, "[data-testid=reset-password2]", "a brand new secreT").await;
    click(&bob, "[data-testid=reset-submit]").await;
    css(&bob, "[data-testid=reset-password2-error]:not([hidden])").await;
    fill(&bob, "[data-testid=reset-password2]", "a brand new secret").await;
    click(&bob, "[data-testid=reset-submit]").await;
    css(&bob, "[data-testid=reset-done]:not([hidden])").await;
    screenshot(&bob, "admin-reset-done").await;

    // Signing in with the new password works, through the page's own form.
    click(&bob, "[data-testid=reset-sign-in]").await;
    auth_ready(&bob).await;
    fill(&bob, "[data-testid=login-user]", "bob").await;
    fill(&bob, "[data-testid=login-password]", "a brand new secret").await;
    click(&bob, "[data-testid=login-submit]").await;
    css(&bob, "[data-testid=lobby]:not([hidden])").await;
    assert_eq!(app.login_username("bob", PASSWORD).await.status(), 401);

    // The link was good once.
    let again = driver.browser(1280, 800).await;
    again.goto(&app.url(path)).await.unwrap();
    fill(&again, "[data-testid=reset-password]", "yet another secret").await;
    fill(
        &again,
        "[data-testid=reset-password2]",
        "yet another secret",
    )
    .await;
    click(&again, "[data-testid=reset-submit]").await;
    css(&again, "[data-testid=reset-invalid]:not([hidden])").await;
    set_lang(&again, "ru").await;
    assert_eq!(
        js(
            &again,
            "return document.querySelector('[data-testid=reset-invalid] h2').textContent;"
        )
        .await,
        "Эта ссылка больше не работает"
    );
}

#[tokio::test]
async fn every_tab_fits_a_phone_and_turn_lists_a_relayed_call() {
    let _serial = SERIAL.lock().await;
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = support::spawn_app(&[("TURN_ALLOW_LOOPBACK_PEERS", "true")]).await;
    let admin = driver.phone(360, 740).await;
    let ada = signed_in(&admin, &app, "ada").await;

    // Two people in a call forced through the relay, so TURN has allocations.
    let bob = driver.browser(1280, 800).await;
    let carol = driver.browser(1280, 800).await;
    signed_in(&bob, &app, "bob").await;
    signed_in(&carol, &app, "carol").await;
    join_call(&bob, &app.url("/r/relayed?forceRelay=1")).await;
    join_call(&carol, &app.url("/r/relayed?forceRelay=1")).await;

    for lang in ["en", "ru"] {
        admin.goto(&app.url("/admin")).await.unwrap();
        set_lang(&admin, lang).await;
        for tab in TABS {
            show_tab(&admin, tab).await;
            if tab == "calls" {
                eventually(
                    &admin,
                    "the call listed with both people",
                    "const r = document.querySelector('[data-testid=call-room][data-room=relayed]'); \
                     return r && r.querySelectorAll('[data-testid=call-person]').length === 2;",
                )
                .await;
            }
            if tab == "turn" {
                eventually(
                    &admin,
                    "bob's relay allocation listed",
                    "return !!document.querySelector('[data-testid=turn-row][data-username=bob]');",
                )
                .await;
            }
            no_sideways_scroll(&admin, &format!("the {tab} tab in {lang} at 360 px")).await;
            screenshot(&admin, &format!("admin-{tab}-{lang}-phone")).await;
        }
    }

    // Quotas and a key rotation from the panel, as the API then reports them.
    show_tab(&admin, "turn").await;
    css(&admin, "[data-testid=turn-quota-user]").await;
    eventually(
        &admin,
        "the quotas loaded",
        "return document.querySelector('[data-testid=turn-quota-user]').value !== '';",
    )
    .await;
    fill(&admin, "[data-testid=turn-quota-user]", "0").await;
    click(&admin, "[data-testid=turn-quota-save]").await;
    css(&admin, "[data-testid=turn-quota-error]:not([hidden])").await;
    fill(&admin, "[data-testid=turn-quota-user]", "7").await;
    fill(&admin, "[data-testid=turn-quota-total]", "700").await;
    click(&admin, "[data-testid=turn-quota-save]").await;
    let mut quotas = serde_json::Value::Null;
    for _ in 0..50 {
        quotas = app
            .get_authed("/api/v1/admin/turn/quotas", &ada)
            .await
            .json()
            .await
            .unwrap();
        if quotas["per_user"] == 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(quotas, json!({"per_user": 7, "total": 700}));

    show_tab(&admin, "keys").await;
    let generation = "return document.querySelector('[data-testid=key-jwt] [data-testid=key-generation]').textContent;";
    assert_eq!(js(&admin, generation).await, "0");
    click(&admin, "[data-testid=key-jwt] [data-testid=key-rotate]").await;
    click(&admin, "[data-testid=confirm-ok]").await;
    eventually(
        &admin,
        "the sign-in key in its generation 1",
        "return document.querySelector('[data-testid=key-jwt] [data-testid=key-generation]').textContent === '1';",
    )
    .await;
    let keys: serde_json::Value = app
        .get_authed("/api/v1/admin/keys", &ada)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys["jwt"]["generation"], 1, "{keys}");
    no_sideways_scroll(&admin, "the keys tab after a rotation").await;
}
