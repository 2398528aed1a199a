//! The call's layouts in real headless Chromium. Demo mode (15 fake peers): the
//! grid and the speaker view fit 16 people at 1280×800 and on a 360×740 phone,
//! in English and Russian, and every width between (430–1100 px) fits too: no
//! tile overlapping another or leaving the stage, no sideways scrolling, no
//! control cut, off screen or unnamed, no name left with a `{placeholder}`; the
//! participant list puts a raised hand first and marks you and the owner; `?`
//! opens the shortcuts, `F` full screen, and keys do nothing while typing; on a
//! phone your own picture floats and snaps to the corner it is dragged to; a
//! screen share takes the large tile with a "… is presenting" bar. A real call
//! of three browsers: the large tile follows whoever speaks (Chromium's fake
//! microphone), a pin overrides it, the participant list shows names,
//! microphones, the owner and a raised hand first, and the call timer runs.
//! Screenshots land in the target directory.
//!
//! Over 500 lines because each test is one long story a user would walk
//! through (sixteen people across sizes and languages; a call of three), with
//! the stage-checking script they share kept beside them.

mod support;
mod webclient;

use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions, MouseActions, PointerAction};
use fantoccini::Client;
use serde_json::{json, Value};
use support::{spawn_app, TestApp};
use webclient::{click, css, eventually, join_call, screenshot, set_lang, tile_of, Driver, Engine};

/// One key press, as a keyboard would send it (to whatever has the focus).
async fn press(browser: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    browser.perform_actions(keys).await.unwrap();
}

/// The stage as a user sees it, once laid out for its size and no tile is moving: tiles shown, whether any
/// two overlap (the floating self-view aside) or one leaves the stage, sideways
/// overflow of the page (and which elements stick out), the view, the large
/// tile, the "+N" tile, the smallest tile, control labels cut short, controls
/// without a name, and names or tooltips left with a `{placeholder}`.
const STAGE: &str = r#"
if (document.getAnimations().some((a) => a instanceof CSSTransition && a.playState === 'running')) return null;
const grid = document.querySelector('[data-testid=video-grid]');
if (grid.dataset.size !== `${grid.clientWidth}x${grid.clientHeight}`) return null; // a resize not laid out yet
const stage = grid.getBoundingClientRect();
const name = (t) => t.dataset.username || 'me';
const tiles = [...grid.querySelectorAll('.tile')].filter((t) => t.dataset.offstage !== 'true');
const boxes = tiles.map((t) => ({ id: name(t), pip: t.dataset.pip === 'true', b: t.getBoundingClientRect() }));
const more = grid.querySelector('[data-testid=more-tiles]');
if (!more.hidden) boxes.push({ id: 'more', pip: false, b: more.getBoundingClientRect() });
let overlap = null;
for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
  const a = boxes[i], c = boxes[j];
  if (a.pip || c.pip) continue;
  if (a.b.left < c.b.right - 1 && c.b.left < a.b.right - 1 && a.b.top < c.b.bottom - 1 && c.b.top < a.b.bottom - 1) overlap = `${a.id}/${c.id}`;
}
const outside = boxes.filter(({ b }) => b.left < stage.left - 1 || b.right > stage.right + 1 || b.top < stage.top - 1 || b.bottom > stage.bottom + 1).map((x) => x.id);
const sticking = [...document.querySelectorAll('body *')].filter((e) => {
  if (e.closest('[hidden], dialog:not([open])')) return false;
  const b = e.getBoundingClientRect();
  return b.width > 0 && b.height > 0 && (b.right > innerWidth + 1 || b.left < -1);
}).slice(0, 5).map((e) => `${e.tagName}.${e.className}`);
const ctls = [...document.querySelectorAll('#controls .ctl')].filter((c) => c.offsetParent !== null);
const cut = ctls.map((c) => c.querySelector('.ctl-label')).filter((l) => l.offsetWidth > 1 && l.scrollWidth > l.clientWidth + 1).map((l) => l.textContent);
const unnamed = ctls.filter((c) => !c.textContent.trim() && !c.getAttribute('aria-label')).map((c) => c.id);
const offscreen = ctls.filter((c) => c.getBoundingClientRect().right > innerWidth + 1).map((c) => c.id);
const placeholders = [...document.querySelectorAll('[aria-label*="{"], [title*="{"]')].map((e) => e.getAttribute('aria-label') || e.title).slice(0, 3);
const main = tiles.find((t) => t.dataset.main === 'true');
const pip = tiles.find((t) => t.dataset.pip === 'true');
return {
  shown: tiles.length, more: more.hidden ? 0 : Number(more.textContent.replace(/\D/g, '')),
  overlap, outside, sticking, cut, unnamed, offscreen, placeholders,
  overflow: document.documentElement.scrollWidth > innerWidth, width: innerWidth,
  mode: grid.dataset.mode, main: main ? name(main) : null, pip: pip ? name(pip) : null,
  corner: pip ? pip.dataset.corner || null : null,
  smallest: Math.round(Math.min(...boxes.map(({ b }) => Math.min(b.width, b.height)))),
};
"#;

/// The stage once it has settled, checked for what must always hold: nothing
/// overlaps, nothing leaves the stage or the screen, every control is whole and named.
async fn settled_stage(browser: &Client, what: &str) -> Value {
    let stage = eventually(browser, what, STAGE).await;
    assert_eq!(
        stage["overlap"],
        Value::Null,
        "{what}: tiles overlap: {stage}"
    );
    assert_eq!(
        stage["outside"],
        json!([]),
        "{what}: off the stage: {stage}"
    );
    assert_eq!(
        stage["overflow"],
        json!(false),
        "{what}: sideways scrolling: {stage}"
    );
    assert_eq!(
        stage["sticking"],
        json!([]),
        "{what}: wider than the screen: {stage}"
    );
    assert_eq!(
        stage["cut"],
        json!([]),
        "{what}: control labels cut: {stage}"
    );
    assert_eq!(
        stage["unnamed"],
        json!([]),
        "{what}: controls without a name: {stage}"
    );
    assert_eq!(
        stage["offscreen"],
        json!([]),
        "{what}: controls off screen: {stage}"
    );
    assert_eq!(
        stage["placeholders"],
        json!([]),
        "{what}: names left untranslated: {stage}"
    );
    stage
}

/// The participant list as shown: each row's name, microphone, hand, you, owner.
const PEOPLE: &str = r#"
const panel = document.querySelector('[data-testid=people-panel]');
if (!panel || panel.hidden) return null;
return [...panel.querySelectorAll('[data-testid=person]')].map((r) => ({
  name: r.querySelector('[data-testid=person-name]').textContent,
  mic: r.querySelector('[data-testid=person-mic]').dataset.on === 'true',
  hand: !!r.querySelector('[data-testid=person-hand]'),
  you: !!r.querySelector('[data-testid=person-you]'),
  owner: !!r.querySelector('[data-testid=person-owner]'),
}));
"#;

#[tokio::test]
async fn sixteen_people_fit_in_grid_and_speaker_view_on_a_desktop_and_a_phone() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let browser = driver.browser(1280, 800).await;
    driver.emulate_viewport(&browser, 1280, 800).await;
    browser
        .goto(&app.url("/static/index.html?demo=call&peers=15"))
        .await
        .unwrap();
    css(&browser, "[data-testid=call-view]:not([hidden])").await;

    for lang in ["en", "ru"] {
        set_lang(&browser, lang).await;
        // Grid: all sixteen, side by side.
        let grid = settled_stage(&browser, "the grid of 16").await;
        assert_eq!(grid["mode"], "grid", "{grid}");
        assert_eq!(grid["shown"], 16, "{grid}");
        assert!(grid["smallest"].as_i64().unwrap() >= 100, "{grid}");
        screenshot(&browser, &format!("layout-grid-16-{lang}")).await;

        // S: the speaker view, one large tile and a strip; the rest behind "+N".
        press(&browser, 's').await;
        let speaker = settled_stage(&browser, "the speaker view of 16").await;
        assert_eq!(speaker["mode"], "speaker", "{speaker}");
        assert!(speaker["main"].is_string(), "{speaker}");
        let more = speaker["more"].as_i64().unwrap();
        assert!(more > 0, "{speaker}");
        assert_eq!(speaker["shown"].as_i64().unwrap() + more, 16, "{speaker}");
        screenshot(&browser, &format!("layout-speaker-16-{lang}")).await;

        // F: the large tile full screen; F again leaves it.
        press(&browser, 'f').await;
        eventually(
            &browser,
            "the large tile full screen",
            "const f = document.fullscreenElement; return !!f && f.dataset.main === 'true';",
        )
        .await;
        press(&browser, 'f').await;
        eventually(
            &browser,
            "out of full screen",
            "return !document.fullscreenElement;",
        )
        .await;

        // "+N" shows everyone again: the grid.
        click(&browser, "[data-testid=more-tiles]").await;
        assert_eq!(
            settled_stage(&browser, "back to the grid").await["mode"],
            "grid"
        );

        // P: the participant list, raised hands first, you and the owner marked.
        press(&browser, 'p').await;
        let people = eventually(&browser, "the participant list", PEOPLE).await;
        let rows = people.as_array().unwrap();
        assert_eq!(rows.len(), 16, "{people}");
        assert_eq!(rows[0]["name"], "linus", "a raised hand first: {people}");
        assert_eq!(rows[0]["hand"], true, "{people}");
        assert_eq!(rows[0]["mic"], false, "{people}");
        assert_eq!(rows[1]["name"], "ada", "{people}");
        assert_eq!(rows[1]["you"], true, "{people}");
        assert_eq!(rows[1]["owner"], true, "{people}");
        assert_eq!(
            browser
                .execute(
                    "return document.querySelector('[data-testid=people-count]').textContent;",
                    vec![]
                )
                .await
                .unwrap(),
            "16"
        );
        screenshot(&browser, &format!("layout-people-{lang}")).await;
        press(&browser, 'p').await;

        // ?: the shortcuts; Esc closes them.
        press(&browser, '?').await;
        eventually(
            &browser,
            "the shortcuts dialog",
            "return document.querySelector('[data-testid=shortcuts-dialog]').open;",
        )
        .await;
        screenshot(&browser, &format!("layout-help-{lang}")).await;
        press(&browser, '\u{E00C}').await;
        eventually(
            &browser,
            "the shortcuts dialog closed",
            "return !document.querySelector('[data-testid=shortcuts-dialog]').open;",
        )
        .await;
    }

    // C opens the chat at its input; typing there is typing: "p" and "s" go into the
    // message, not to the layout.
    press(&browser, 'c').await;
    eventually(
        &browser,
        "the chat open, its input focused",
        "return !document.querySelector('[data-testid=chat-panel]').hidden && document.activeElement === document.querySelector('[data-testid=chat-input]');",
    )
    .await;
    press(&browser, 'p').await;
    press(&browser, 's').await;
    let typed = browser
        .execute(
            "return [document.querySelector('[data-testid=chat-input]').value, \
             document.querySelector('[data-testid=people-panel]').hidden, \
             document.querySelector('[data-testid=video-grid]').dataset.mode];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(typed, json!(["ps", true, "grid"]));

    // A phone: the large tile and a strip, your own picture floating; in both languages.
    driver.emulate_viewport(&browser, 360, 740).await;
    browser.refresh().await.unwrap();
    css(&browser, "[data-testid=call-view]:not([hidden])").await;
    for lang in ["ru", "en"] {
        set_lang(&browser, lang).await;
        let phone = settled_stage(&browser, "16 on a phone").await;
        assert_eq!(phone["width"], 360, "{phone}");
        assert_eq!(phone["mode"], "speaker", "{phone}");
        assert_eq!(phone["pip"], "me", "{phone}");
        assert!(phone["more"].as_i64().unwrap() > 0, "{phone}");
        screenshot(&browser, &format!("layout-phone-16-{lang}")).await;
        // S on a phone: everyone in a grid, your own picture among them.
        press(&browser, 's').await;
        let grid = settled_stage(&browser, "the grid on a phone").await;
        assert_eq!(grid["mode"], "grid", "{grid}");
        assert_eq!(grid["shown"], 16, "{grid}");
        assert_eq!(grid["pip"], Value::Null, "{grid}");
        screenshot(&browser, &format!("layout-phone-grid-16-{lang}")).await;
        press(&browser, 's').await;
        assert_eq!(
            settled_stage(&browser, "speaker view again").await["mode"],
            "speaker"
        );
        click(&browser, "[data-testid=toggle-people]").await;
        eventually(&browser, "the participant list on a phone", PEOPLE).await;
        assert_eq!(
            settled_stage(&browser, "the list on a phone").await["overflow"],
            false
        );
        screenshot(&browser, &format!("layout-people-phone-{lang}")).await;
        click(&browser, "[data-testid=people-close]").await;
        // The More menu holds the view switch and the shortcuts.
        click(&browser, "[data-testid=more-controls]").await;
        eventually(
            &browser,
            "the More menu",
            "return !document.querySelector('[data-testid=more-menu]').hidden && document.querySelectorAll('[data-testid=more-menu] [role=menuitem]').length;",
        )
        .await;
        screenshot(&browser, &format!("layout-more-phone-{lang}")).await;
        browser
            .execute(
                "[...document.querySelectorAll('[data-testid=more-menu] [role=menuitem]')].pop().click(); return true;",
                vec![],
            )
            .await
            .unwrap();
        eventually(
            &browser,
            "the shortcuts from the More menu",
            "return document.querySelector('[data-testid=shortcuts-dialog]').open;",
        )
        .await;
        screenshot(&browser, &format!("layout-help-phone-{lang}")).await;
        press(&browser, '\u{E00C}').await;
    }

    // Every width between a phone and a desktop, in the longer language: nothing sticks out.
    set_lang(&browser, "ru").await;
    for width in [430, 600, 601, 760, 761, 860, 861, 1024, 1099, 1100] {
        driver.emulate_viewport(&browser, width, 740).await;
        let stage = settled_stage(&browser, &format!("16 people at {width} px")).await;
        assert_eq!(stage["width"], width, "{stage}");
    }
    driver.emulate_viewport(&browser, 360, 740).await;
    set_lang(&browser, "en").await;

    // Drag your own picture to the bottom left: it snaps to that corner, on the stage.
    assert_eq!(
        settled_stage(&browser, "before the drag").await["pip"],
        "me"
    );
    let me = css(&browser, "[data-testid=local-tile]").await;
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: me,
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down { button: 0 })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(200)),
            x: -120.0,
            y: 200.0,
        })
        .then(PointerAction::MoveTo {
            duration: Some(Duration::from_millis(200)),
            x: 40.0,
            y: 560.0,
        })
        .then(PointerAction::Up { button: 0 });
    browser.perform_actions(drag).await.unwrap();
    let dropped = settled_stage(&browser, "the picture dropped").await;
    assert_eq!(dropped["corner"], "bl", "{dropped}");
    let corner = browser
        .execute(
            "const g = document.querySelector('[data-testid=video-grid]').getBoundingClientRect(); \
             const b = document.querySelector('[data-testid=local-tile]').getBoundingClientRect(); \
             return [b.left - g.left < g.width / 2, b.bottom > g.top + g.height / 2];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(corner, json!([true, true]), "{dropped}");
    screenshot(&browser, "layout-phone-dragged").await;

    // You present: a bar says so, with a button that stops it.
    driver.emulate_viewport(&browser, 1280, 800).await;
    // The chat closed (it opens itself at 1100 px and wider), the controls have the whole
    // width: Share is on the bar, not under More.
    eventually(
        &browser,
        "the chat closed and the Share button on the bar",
        "const chat = document.querySelector('[data-testid=chat-panel]'); \
         if (!chat.hidden) { document.querySelector('[data-testid=chat-close]').click(); return false; } \
         return document.querySelector('[data-testid=toggle-screen]').offsetParent !== null;",
    )
    .await;
    settled_stage(&browser, "back at 1280 px").await;
    click(&browser, "[data-testid=toggle-screen]").await;
    let mine = eventually(
        &browser,
        "you are presenting",
        "const b = document.querySelector('[data-testid=presenting]'); return !b.hidden && b.dataset.mine === 'true' && b.textContent;",
    )
    .await;
    assert!(
        mine.as_str().unwrap().contains("You are presenting"),
        "{mine}"
    );
    screenshot(&browser, "layout-you-present").await;
    click(&browser, "[data-testid=stop-presenting]").await;
    eventually(
        &browser,
        "the bar gone once you stop",
        "return document.querySelector('[data-testid=presenting]').hidden && document.querySelector('[data-testid=toggle-screen]').getAttribute('aria-pressed') === 'false';",
    )
    .await;

    // Someone presents: their screen takes the large tile, with a bar that says so.
    for (width, height, name) in [
        (1280, 800, "layout-presenting"),
        (360, 740, "layout-presenting-phone"),
    ] {
        driver.emulate_viewport(&browser, width, height).await;
        browser
            .goto(&app.url("/static/index.html?demo=call&peers=5&present=1"))
            .await
            .unwrap();
        set_lang(&browser, "en").await;
        let stage = settled_stage(&browser, "a screen share").await;
        assert_eq!(stage["mode"], "speaker", "{stage}");
        assert_eq!(stage["main"], "margaret", "{stage}");
        let bar = eventually(
            &browser,
            "the presenting bar",
            "const b = document.querySelector('[data-testid=presenting]'); return !b.hidden && b.textContent;",
        )
        .await;
        assert!(
            bar.as_str().unwrap().contains("margaret is presenting"),
            "{bar}"
        );
        screenshot(&browser, name).await;
    }

    browser.close().await.unwrap();
    app.stop().await;
}

async fn join(browser: &Client, app: &TestApp, user: &str, room: &str) {
    let token = app.user_token(user).await;
    browser.goto(&app.url("/static/auth.html")).await.unwrap();
    browser
        .execute(
            "localStorage.setItem('webcall.token', arguments[0]); localStorage.setItem('webcall.token_exp', String(Date.now() + 3600e3)); localStorage.setItem('webcall.lang', 'en'); return true;",
            vec![json!(token)],
        )
        .await
        .unwrap();
    join_call(browser, &app.url(&format!("/r/{room}?forceRelay=1"))).await;
    eventually(
        browser,
        &format!("{user} connected"),
        "return document.querySelector('[data-testid=conn-status]').dataset.state === 'connected' && document.querySelector('[data-testid=toggle-mic]').getAttribute('aria-pressed') === 'true';",
    )
    .await;
}

/// Who has the large tile at `browser` (a username, or null).
const MAIN: &str = "const t = document.querySelector('[data-testid=video-grid] .tile[data-main=true]'); return t ? (t.dataset.username || 'me') : null;";

async fn main_becomes(browser: &Client, who: &str) {
    let script = format!(
        "const t = document.querySelector('[data-testid=video-grid] .tile[data-main=true]'); return !!t && t.dataset.username === '{who}';"
    );
    eventually(browser, &format!("{who} in the large tile"), &script).await;
}

async fn toggle_mic(browser: &Client, on: bool) {
    click(browser, "[data-testid=toggle-mic]").await;
    eventually(
        browser,
        "the microphone switched",
        &format!("return document.querySelector('[data-testid=toggle-mic]').getAttribute('aria-pressed') === '{on}';"),
    )
    .await;
}

/// Loudness of each remote peer as `browser` hears it now, a few times over.
async fn levels(browser: &Client) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(
            browser
                .execute(
                    "return Object.fromEntries(window.webcall.peers().map((p) => [p.username, Math.round(window.webcall.level(p.peer_id) * 1000) / 1000]));",
                    vec![],
                )
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    seen
}

#[tokio::test]
async fn in_a_call_of_three_the_large_tile_follows_the_speaker_and_a_pin_overrides_it() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let ada = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;
    let cyd = driver.browser(1280, 800).await;
    driver.emulate_viewport(&cyd, 1280, 800).await;

    // Ada starts the room (she owns it); Bob joins with his microphone off.
    join(&ada, &app, "ada", "standup").await;
    join(&bob, &app, "bob", "standup").await;
    toggle_mic(&bob, false).await;
    join(&cyd, &app, "cyd", "standup").await;
    let ada_at_cyd = tile_of(&cyd, "ada").await;
    tile_of(&cyd, "bob").await;
    eventually(
        &cyd,
        "bob's microphone off at cyd",
        "return document.querySelector('[data-testid=remote-tile][data-username=bob]').dataset.audio === 'false';",
    )
    .await;

    // What "speaking" looks like: Chromium's fake microphone beeps.
    let heard = levels(&cyd).await;
    eprintln!("levels at cyd, ada on and bob off: {heard:?}");

    // Cyd picks the speaker view: Ada, the one talking, is large.
    press(&cyd, 's').await;
    main_becomes(&cyd, "ada").await;
    let stage = settled_stage(&cyd, "speaker view in a call").await;
    assert_eq!(stage["mode"], "speaker", "{stage}");
    eventually(
        &cyd,
        "ada marked as the active speaker",
        &format!("return document.querySelector('[data-peer-id=\"{ada_at_cyd}\"]').dataset.activeSpeaker === 'true';"),
    )
    .await;
    screenshot(&cyd, "layout-call-speaker-ada").await;

    // Ada mutes, Bob unmutes: Bob takes the large tile.
    toggle_mic(&ada, false).await;
    toggle_mic(&bob, true).await;
    main_becomes(&cyd, "bob").await;
    eprintln!(
        "levels at cyd, ada off and bob on: {:?}",
        levels(&cyd).await
    );
    screenshot(&cyd, "layout-call-speaker-bob").await;

    // The participant list: names, microphones, the owner, you; a raised hand goes first.
    press(&bob, 'h').await;
    click(&cyd, "[data-testid=toggle-people]").await;
    let people = eventually(
        &cyd,
        "bob's raised hand first in the list",
        &format!(
            "const p = (() => {{ {PEOPLE} }})(); return p && p.length === 3 && p[0].hand && p;"
        ),
    )
    .await;
    assert_eq!(
        people,
        json!([
            {"name": "bob", "mic": true, "hand": true, "you": false, "owner": false},
            {"name": "cyd", "mic": true, "hand": false, "you": true, "owner": false},
            {"name": "ada", "mic": false, "hand": false, "you": false, "owner": true},
        ])
    );
    assert_eq!(
        cyd.execute(
            "return document.querySelector('[data-testid=people-count]').textContent;",
            vec![]
        )
        .await
        .unwrap(),
        "3"
    );
    screenshot(&cyd, "layout-call-people").await;

    // A pin beats the active speaker: Ada stays large while Bob talks; unpinned, Bob is back.
    css(
        &cyd,
        &format!("[data-testid=person][data-peer-id=\"{ada_at_cyd}\"] [data-testid=person-pin]"),
    )
    .await
    .click()
    .await
    .unwrap();
    main_becomes(&cyd, "ada").await;
    for _ in 0..15 {
        assert_eq!(cyd.execute(MAIN, vec![]).await.unwrap(), "ada", "pinned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bob_speaks = "return document.querySelector('[data-testid=remote-tile][data-username=bob]').dataset.activeSpeaker === 'true';";
    eventually(&cyd, "bob is still the active speaker", bob_speaks).await;
    screenshot(&cyd, "layout-call-pinned").await;
    css(
        &cyd,
        &format!("[data-testid=person][data-peer-id=\"{ada_at_cyd}\"] [data-testid=person-pin]"),
    )
    .await
    .click()
    .await
    .unwrap();
    main_becomes(&cyd, "bob").await;

    // The timer in the top bar runs: mm:ss, and it moves.
    let first = eventually(
        &cyd,
        "the call timer",
        "const t = document.querySelector('[data-testid=call-timer]').textContent; return /^\\d\\d:\\d\\d$/.test(t) && t;",
    )
    .await;
    eventually(
        &cyd,
        "the call timer moved",
        &format!(
            "return document.querySelector('[data-testid=call-timer]').textContent !== {first};"
        ),
    )
    .await;

    // On a phone: Ada and Bob two-up, Cyd's own picture floating; nothing wider than the screen.
    click(&cyd, "[data-testid=people-close]").await;
    driver.emulate_viewport(&cyd, 360, 740).await;
    let phone = settled_stage(&cyd, "a call of three on a phone").await;
    assert_eq!(phone["pip"], "me", "{phone}");
    assert_eq!(phone["shown"], 3, "{phone}");
    screenshot(&cyd, "layout-call-phone").await;

    for browser in [ada, bob, cyd] {
        browser.close().await.unwrap();
    }
    app.stop().await;
}
