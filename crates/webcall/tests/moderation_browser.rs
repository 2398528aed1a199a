//! Moderation in real headless Chromium against the real server, in English
//! then in Russian: the owner mutes Bob from his tile (Bob's page says "Muted
//! by the host", the microphone track it sends is disabled, the owner's page
//! shows him muted), stops his screen share from the participant list, turns
//! "Only hosts may speak" on (Bob's microphone button is disabled with a
//! tooltip that says why, a click keeps it off, and the owner's page plays no
//! sound from him), then off; and removes him with "Also ban from this room"
//! ticked: Bob is told, and his way back is refused with "banned". Screenshots
//! land in the target directory's `screenshots/moderation-*.png`.

mod support;
mod webclient;

use fantoccini::Client;
use serde_json::{json, Value};
use support::{spawn_app, TestApp};
use webclient::{
    click, eventually, join_call, js, no_sideways_scroll, screenshot, set_lang, tile_of, Driver,
    Engine,
};

/// Signs `user` in (in English).
async fn sign_in(browser: &Client, app: &TestApp, user: &str) {
    let token = app.user_token(user).await;
    browser.goto(&app.url("/static/auth.html")).await.unwrap();
    browser
        .execute(
            "localStorage.setItem('webcall.token', arguments[0]); localStorage.setItem('webcall.token_exp', String(Date.now() + 3600e3)); localStorage.setItem('webcall.lang', 'en'); return true;",
            vec![json!(token)],
        )
        .await
        .unwrap();
}

/// The toast text shown now that contains `text`, once there is one.
async fn toast(browser: &Client, what: &str, text: &str) -> Value {
    eventually(
        browser,
        what,
        &format!(
            "return [...document.querySelectorAll('#toasts .toast')].map((t) => t.textContent).find((t) => t.includes({}));",
            json!(text)
        ),
    )
    .await
}

/// Opens the participant list unless it is open.
async fn open_people(browser: &Client) {
    let hidden = "return document.querySelector('[data-testid=people-panel]').hidden;";
    if js(browser, hidden).await == json!(true) {
        click(browser, "[data-testid=toggle-people]").await;
    }
    eventually(
        browser,
        "the participant list open",
        "return !document.querySelector('[data-testid=people-panel]').hidden;",
    )
    .await;
}

/// Whether the microphone track Bob sends is enabled, as his page holds it and
/// as the connection to `peer` sends it.
fn mic_sent(peer: &str) -> String {
    format!(
        "const t = window.webcall.localTrack('audio'); \
         const s = window.webcall.pc('{peer}').getSenders().find((s) => s.track && s.track.kind === 'audio'); \
         return t && s && s.track === t && [t.enabled];"
    )
}

/// Strings that differ by language.
struct Lang {
    code: &'static str,
    muted: &'static str,
    stopped: &'static str,
    locked: &'static str,
    ban: &'static str,
    banned: &'static str,
}

const EN: Lang = Lang {
    code: "en",
    muted: "Muted by the host",
    stopped: "The host stopped your screen share",
    locked: "Only hosts may speak now: the host turned this on",
    ban: "Also ban from this room",
    banned: "You are banned from “team”.",
};

const RU: Lang = Lang {
    code: "ru",
    muted: "Ведущий выключил ваш микрофон",
    stopped: "Ведущий остановил показ вашего экрана",
    locked: "Сейчас говорить могут только ведущие: так решил ведущий",
    ban: "Также запретить вход в эту комнату",
    banned: "Вход в «team» для вас закрыт.",
};

#[tokio::test]
async fn the_host_mutes_stops_a_share_locks_the_microphones_and_bans() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let ada = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;
    sign_in(&ada, &app, "ada").await;
    sign_in(&bob, &app, "bob").await;
    join_call(&ada, &app.url("/r/team")).await;
    join_call(&bob, &app.url("/r/team")).await;
    let bob_at_ada = tile_of(&ada, "bob").await;
    let ada_at_bob = tile_of(&bob, "ada").await;
    assert_eq!(
        js(&bob, "return !!document.querySelector('[data-testid=mod-mute]') || !document.querySelector('[data-testid=moderation-bar]').hidden;").await,
        json!(false),
        "bob is no host: no host controls"
    );

    for lang in [EN, RU] {
        set_lang(&ada, lang.code).await;
        set_lang(&bob, lang.code).await;
        let bob_tile = format!("[data-peer-id=\"{bob_at_ada}\"]");
        let bob_row = format!("[data-testid=person][data-peer-id=\"{bob_at_ada}\"]");
        // Bob talks (his microphone is on after joining, or he turns it on).
        if js(&bob, &mic_sent(&ada_at_bob)).await != json!([true]) {
            click(&bob, "[data-testid=toggle-mic]").await;
        }
        eventually(&bob, "bob's microphone on", &mic_sent(&ada_at_bob)).await;
        eventually(
            &ada,
            "bob shown talking",
            &format!("return document.querySelector('{bob_tile}').dataset.audio === 'true';"),
        )
        .await;

        // Mute, from his tile.
        click(&ada, &format!("{bob_tile} [data-testid=mod-mute]")).await;
        toast(&bob, "bob told he was muted", lang.muted).await;
        eventually(
            &bob,
            "bob's microphone track disabled",
            &format!(
                "const r = (() => {{ {} }})(); return r && r[0] === false;",
                mic_sent(&ada_at_bob)
            ),
        )
        .await;
        eventually(
            &ada,
            "bob shown muted at ada's",
            &format!("return document.querySelector('{bob_tile}').dataset.audio === 'false';"),
        )
        .await;
        screenshot(&bob, &format!("moderation-muted-{}-1280", lang.code)).await;

        // Stop his screen share, from the participant list.
        eventually(
            &bob,
            "the chat closed and Share on the bar",
            "const chat = document.querySelector('[data-testid=chat-panel]'); \
             if (!chat.hidden) { document.querySelector('[data-testid=chat-close]').click(); return false; } \
             return document.querySelector('[data-testid=toggle-screen]').offsetParent !== null;",
        )
        .await;
        click(&bob, "[data-testid=toggle-screen]").await;
        eventually(
            &ada,
            "bob presenting",
            &format!("return document.querySelector('{bob_tile}').dataset.screen === 'true';"),
        )
        .await;
        open_people(&ada).await;
        click(&ada, &format!("{bob_row} [data-testid=mod-stop-share]")).await;
        toast(&bob, "bob told his share was stopped", lang.stopped).await;
        eventually(
            &bob,
            "bob's share stopped",
            "return document.querySelector('[data-testid=toggle-screen]').getAttribute('aria-pressed') === 'false';",
        )
        .await;
        eventually(
            &ada,
            "bob shown not presenting",
            &format!("return document.querySelector('{bob_tile}').dataset.screen === 'false';"),
        )
        .await;

        // Only hosts may speak: Bob's microphone button says why it does nothing.
        click(&ada, "[data-testid=hosts-only]").await;
        let title = eventually(
            &bob,
            "bob's microphone locked",
            "const m = document.querySelector('[data-testid=toggle-mic]'); return m.getAttribute('aria-disabled') === 'true' && m.title;",
        )
        .await;
        assert_eq!(title, lang.locked);
        click(&bob, "[data-testid=toggle-mic]").await;
        toast(&bob, "bob told why", lang.locked).await;
        assert_eq!(js(&bob, &mic_sent(&ada_at_bob)).await, json!([false]));
        // Ada's page would play nothing from him anyway.
        eventually(
            &ada,
            "bob silenced at ada's",
            &format!("return window.webcall.gain('{bob_at_ada}') === 0 && document.querySelector('{bob_tile}').dataset.silenced === 'true';"),
        )
        .await;
        screenshot(&ada, &format!("moderation-hosts-only-{}-1280", lang.code)).await;
        screenshot(&bob, &format!("moderation-mic-locked-{}-1280", lang.code)).await;
        // On a phone the host's bar fits.
        driver.emulate_viewport(&ada, 360, 740).await;
        eventually(
            &ada,
            "the host's bar shown on a phone",
            "const b = document.querySelector('[data-testid=moderation-bar]'); return b.offsetParent !== null && b.getBoundingClientRect().right <= innerWidth;",
        )
        .await;
        no_sideways_scroll(&ada, "the participant list with the host's bar").await;
        screenshot(&ada, &format!("moderation-hosts-only-{}-phone", lang.code)).await;
        driver.emulate_viewport(&ada, 1280, 800).await;
        // A wide window opens the chat, which closes the participant list.
        eventually(
            &ada,
            "the chat open again at 1280 px",
            "return !document.querySelector('[data-testid=chat-panel]').hidden && document.querySelector('[data-testid=toggle-people]').offsetParent !== null;",
        )
        .await;
        open_people(&ada).await;

        click(&ada, "[data-testid=hosts-only]").await;
        eventually(
            &bob,
            "bob's microphone unlocked",
            "return document.querySelector('[data-testid=toggle-mic]').getAttribute('aria-disabled') === 'false';",
        )
        .await;
        eventually(
            &ada,
            "bob heard again",
            &format!("return window.webcall.gain('{bob_at_ada}') === 1;"),
        )
        .await;
    }

    // Remove with a ban (in Russian now).
    click(
        &ada,
        &format!("[data-peer-id=\"{bob_at_ada}\"] [data-testid=kick]"),
    )
    .await;
    let asked = eventually(
        &ada,
        "the remove question",
        "const d = document.querySelector('[data-testid=confirm-dialog]'); return !!d && d.open && d.textContent;",
    )
    .await;
    assert!(asked.as_str().unwrap().contains(RU.ban), "{asked}");
    click(&ada, "[data-testid=confirm-choice]").await;
    let body = js(
        &ada,
        "return document.querySelector('[data-testid=confirm-dialog] .confirm-body').textContent;",
    )
    .await;
    assert!(
        body.as_str().unwrap().contains("не сможет вернуться"),
        "{body}"
    );
    screenshot(&ada, "moderation-ban-confirm-ru-1280").await;
    click(&ada, "[data-testid=confirm-ok]").await;
    eventually(
        &bob,
        "bob told he was removed",
        "return !!document.querySelector('[data-notice=ended]');",
    )
    .await;
    // His way back: the call starts, and the server refuses it (4006).
    bob.goto(&app.url("/r/team")).await.unwrap();
    eventually(
        &bob,
        "the join button",
        "const b = document.querySelector('[data-testid=prejoin]:not([hidden]) [data-testid=prejoin-join]'); return !!b && !b.disabled && b.offsetParent !== null;",
    )
    .await;
    click(&bob, "[data-testid=prejoin-join]").await;
    let notice = eventually(
        &bob,
        "bob refused on his way back",
        &format!(
            "const n = document.querySelector('[data-notice=ended]'); return n && n.textContent.includes({}) && n.textContent;",
            json!(RU.banned)
        ),
    )
    .await;
    assert!(notice.as_str().unwrap().contains(RU.banned), "{notice}");
    screenshot(&bob, "moderation-banned-ru-1280").await;
    set_lang(&bob, "en").await;
    let notice = js(
        &bob,
        "return document.querySelector('[data-notice=ended]').textContent;",
    )
    .await;
    assert!(notice.as_str().unwrap().contains(EN.banned), "{notice}");
    app.stop().await;
}
