//! Feedback and safety in a call, in real headless Chromium against the real
//! server: a signaling connection cut at the TCP level (a proxy between the
//! browser and the server drops it) shows "Reconnecting…" and the call resumes
//! with the same peer id; each remote tile shows its connection quality with
//! the numbers in words; a reaction reaches the other browser over the
//! sender's tile; kicking, deleting a room and leaving through the logo ask
//! first (cancel keeps things as they were, confirm does it); toasts stay off
//! the tiles; alone in a call the share card shows; after Leave the "You left"
//! view rejoins; Russian strings; a 64-character room name fits a 360 px phone.
//! Screenshots (1280x800 and 360x740, English and Russian) land in the target
//! directory's `screenshots/feedback-*.png`.
//!
//! Over 500 lines: three whole user paths (each browser start costs seconds,
//! so each test walks far) and the TCP proxy the first one needs.

mod support;
mod webclient;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use fantoccini::Client;
use serde_json::{json, Value};
use support::{spawn_app, TestApp};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use webclient::{
    call_path, click, click_join, css, decoding, eventually, join_call, js, no_sideways_scroll,
    screenshot, set_lang, tile_of, Driver, Engine,
};

/// A TCP proxy in front of the server whose connections the test can cut, as a
/// network that goes away would: every open connection is dropped and new ones
/// are refused until it is restored. Or it can freeze them: they stay open and
/// carry nothing more, as when a network silently stops (no close ever comes).
struct Proxy {
    addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    freeze: Arc<tokio::sync::watch::Sender<u64>>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let freeze = Arc::new(tokio::sync::watch::channel(0u64).0);
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (cut2, open2, freeze2) = (cut.clone(), open.clone(), freeze.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut frozen = freeze2.subscribe();
                let task = tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = frozen.changed() => {
                            // Hold both ends open, silent, until cut.
                            std::future::pending::<()>().await;
                        }
                    }
                });
                open2.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            cut,
            freeze,
            open,
            accept,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Drops every connection through the proxy and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// The connections open now go silent; new ones work.
    fn freeze(&self) {
        self.freeze.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Signs `user` in at `origin` (the app, or the proxy: storage is per origin).
async fn sign_in(browser: &Client, app: &TestApp, origin: &str, user: &str) {
    let token = app.user_token(user).await;
    browser
        .goto(&format!("{origin}/static/auth.html"))
        .await
        .unwrap();
    browser
        .execute(
            "localStorage.setItem('webcall.token', arguments[0]); localStorage.setItem('webcall.token_exp', String(Date.now() + 3600e3)); localStorage.setItem('webcall.lang', arguments[1]); return true;",
            vec![json!(token), json!("en")],
        )
        .await
        .unwrap();
}

/// A Chrome DevTools command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp(&'static str, Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &reqwest::Url,
        session: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({"cmd": self.0, "params": self.1});
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// A phone's viewport: headless Chromium keeps its windows at least 500 px wide,
/// so the page is given a 360x740 screen through DevTools instead.
async fn phone(browser: &Client) {
    browser
        .issue_cmd(Cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": false}),
        ))
        .await
        .unwrap();
    assert_eq!(
        js(browser, "return window.innerWidth;").await,
        json!(360),
        "a 360 px viewport"
    );
}

const DIALOG_OPEN: &str = "const d = document.querySelector('[data-testid=confirm-dialog]'); return !!d && d.open && d.textContent;";
const DIALOG_GONE: &str = "return !document.querySelector('[data-testid=confirm-dialog]');";

/// Every shown toast's box and the visible part of every tile (a tile shows only
/// inside the stage when the stage clips): does any toast overlap a tile?
const TOASTS_OVER_TILES: &str = r#"
const toasts = [...document.querySelectorAll('#toasts .toast')].filter((t) => t.getClientRects().length);
const stage = document.querySelector('#stage');
const clip = getComputedStyle(stage).overflow !== 'visible' ? stage.getBoundingClientRect() : null;
const seen = (r) => clip ? { left: Math.max(r.left, clip.left), right: Math.min(r.right, clip.right), top: Math.max(r.top, clip.top), bottom: Math.min(r.bottom, clip.bottom) } : r;
const tiles = [...document.querySelectorAll('#grid .tile')].map((v) => seen(v.getBoundingClientRect()));
const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
return { toasts: toasts.length, overlap: toasts.some((t) => tiles.some((v) => hit(t.getBoundingClientRect(), v))) };
"#;

#[tokio::test]
async fn a_cut_signaling_connection_shows_reconnecting_and_the_call_resumes() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let proxy = Proxy::start(app.addr).await;
    let ada = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;
    sign_in(&ada, &app, &proxy.url(""), "ada").await;
    sign_in(&bob, &app, &app.url(""), "bob").await;
    join_call(&ada, &proxy.url("/r/team")).await;
    css(&ada, "[data-testid=conn-status][data-state=connected]").await;
    join_call(&bob, &app.url("/r/team")).await;
    let bob_at_ada = tile_of(&ada, "bob").await;
    let ada_at_bob = tile_of(&bob, "ada").await;
    let before = call_path(&ada, &bob_at_ada, decoding)
        .await
        .expect("ada decodes bob's video");
    let ada_id = js(&ada, "return window.webcall.peerId;").await;
    assert_eq!(ada_id.as_str(), Some(ada_at_bob.as_str()));

    proxy.cut();
    eventually(
        &ada,
        "the reconnecting banner",
        "const n = document.querySelector('[data-notice=reconnecting]'); return !!n && n.textContent.includes('reconnecting');",
    )
    .await;
    assert_eq!(
        js(
            &ada,
            "return document.querySelector('[data-testid=conn-status]').dataset.state;"
        )
        .await,
        "reconnecting"
    );
    screenshot(&ada, "feedback-reconnecting-1280").await;

    proxy.restore();
    eventually(
        &ada,
        "the banner gone and the status connected",
        "return !document.querySelector('[data-notice=reconnecting]') && document.querySelector('[data-testid=conn-status]').dataset.state === 'connected';",
    )
    .await;
    // Resumed, not rejoined: the same peer id, and Bob never saw Ada leave.
    assert_eq!(js(&ada, "return window.webcall.peerId;").await, ada_id);
    assert_eq!(
        js(
            &bob,
            &format!("return !!document.querySelector('[data-peer-id=\"{ada_at_bob}\"]');")
        )
        .await,
        json!(true)
    );
    let frames = before["frames"].as_u64().unwrap();
    call_path(&ada, &bob_at_ada, |p| {
        p["frames"].as_u64().unwrap_or(0) > frames + 10
    })
    .await
    .expect("bob's video still decoding at ada after the resume");
    // A network that goes silent (no close, nothing at all): the unanswered
    // ping says "reconnecting", and the client gives up on that socket and
    // resumes on a new one.
    proxy.freeze();
    eventually(
        &ada,
        "the reconnecting banner on a silent connection",
        "return !!document.querySelector('[data-notice=reconnecting]');",
    )
    .await;
    eventually(
        &ada,
        "resumed after the silent connection",
        "return !document.querySelector('[data-notice=reconnecting]') && document.querySelector('[data-testid=conn-status]').dataset.state === 'connected';",
    )
    .await;
    assert_eq!(js(&ada, "return window.webcall.peerId;").await, ada_id);

    // The signaling works again: a reaction goes through.
    click(&ada, "[data-testid=toggle-reactions]").await;
    click(&ada, "[data-testid=reaction-menu] button[data-emoji='👏']").await;
    eventually(
        &bob,
        "ada's reaction after the resume",
        &format!("return !!document.querySelector('[data-peer-id=\"{ada_at_bob}\"] [data-testid=reaction][data-emoji=\"👏\"]');"),
    )
    .await;

    ada.close().await.unwrap();
    bob.close().await.unwrap();
    drop(proxy);
    app.stop().await;
}

#[tokio::test]
async fn quality_reactions_kick_and_leave_ask_and_tell() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let ada = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;
    sign_in(&ada, &app, &app.url(""), "ada").await;
    sign_in(&bob, &app, &app.url(""), "bob").await;

    // Alone: the share card, with the room's link.
    join_call(&ada, &app.url("/r/team")).await;
    let link = eventually(
        &ada,
        "the alone card",
        "const c = document.querySelector('[data-testid=alone-card]'); return c && !c.hidden && document.querySelector('[data-testid=alone-link]').value;",
    )
    .await;
    assert!(link.as_str().unwrap().ends_with("/r/team"), "{link}");
    screenshot(&ada, "feedback-alone-1280").await;

    join_call(&bob, &app.url("/r/team")).await;
    let bob_at_ada = tile_of(&ada, "bob").await;
    let ada_at_bob = tile_of(&bob, "ada").await;
    eventually(
        &ada,
        "the alone card hidden",
        "return document.querySelector('[data-testid=alone-card]').hidden;",
    )
    .await;
    // The "bob joined" toast is in its lane, over no tile.
    let toasts = eventually(
        &ada,
        "a toast shown",
        &format!("const r = (() => {{ {TOASTS_OVER_TILES} }})(); return r.toasts > 0 && r;"),
    )
    .await;
    assert_eq!(toasts["overlap"], json!(false), "{toasts}");
    screenshot(&ada, "feedback-toast-lane-1280").await;

    // Quality: a level and the numbers in words.
    let quality = eventually(
        &ada,
        "a measured connection quality",
        &format!(
            "const t = document.querySelector('[data-peer-id=\"{bob_at_ada}\"]'); const q = t.querySelector('[data-testid=quality]'); \
             return q && ['good', 'fair', 'poor'].includes(t.dataset.quality) && [t.dataset.quality, q.getAttribute('title'), q.getAttribute('aria-label')];"
        ),
    )
    .await;
    let words = quality[1].as_str().unwrap();
    let pattern = regex_lite(words);
    assert!(pattern, "{quality}");
    assert_eq!(quality[1], quality[2], "the tooltip is the label");
    assert!(
        words.starts_with(match quality[0].as_str().unwrap() {
            "good" => "Good connection",
            "fair" => "Fair connection",
            _ => "Poor connection",
        }),
        "{words}"
    );

    // A reaction from Bob floats over his tile at Ada's, and over his own tile.
    click(&bob, "[data-testid=toggle-reactions]").await;
    assert_eq!(
        js(&bob, "return document.querySelector('[data-testid=toggle-reactions]').getAttribute('aria-expanded');").await,
        "true"
    );
    click(&bob, "[data-testid=reaction-menu] button[data-emoji='🎉']").await;
    eventually(
        &ada,
        "bob's reaction over his tile",
        &format!("return !!document.querySelector('[data-peer-id=\"{bob_at_ada}\"] [data-testid=reaction][data-emoji=\"🎉\"]');"),
    )
    .await;
    eventually(
        &bob,
        "bob's reaction over his own tile",
        "return !!document.querySelector('[data-testid=local-tile] [data-testid=reaction][data-emoji=\"🎉\"]');",
    )
    .await;
    screenshot(&ada, "feedback-call-quality-reaction-1280").await;

    // Kick asks first; Esc cancels and Bob stays.
    let kick = format!("[data-peer-id=\"{bob_at_ada}\"] [data-testid=kick]");
    click(&ada, &kick).await;
    let asked = eventually(&ada, "the kick question", DIALOG_OPEN).await;
    assert!(
        asked
            .as_str()
            .unwrap()
            .contains("Remove bob from the call?"),
        "{asked}"
    );
    assert_eq!(
        js(&ada, "return document.activeElement.dataset.testid;").await,
        "confirm-cancel",
        "the safe choice has the focus"
    );
    // Tab stays inside the dialog.
    ada.active_element()
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    assert_eq!(
        js(&ada, "return document.activeElement.dataset.testid;").await,
        "confirm-ok"
    );
    // Then the "Also ban from this room" checkbox (moderation.js), then back round.
    for next in ["confirm-choice", "confirm-cancel"] {
        ada.active_element()
            .await
            .unwrap()
            .send_keys("\u{E004}")
            .await
            .unwrap();
        assert_eq!(
            js(&ada, "return document.activeElement.dataset.testid;").await,
            next
        );
    }
    screenshot(&ada, "feedback-kick-confirm-1280").await;
    ada.active_element()
        .await
        .unwrap()
        .send_keys("\u{E00C}")
        .await
        .unwrap();
    eventually(&ada, "the dialog closed by Esc", DIALOG_GONE).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        js(
            &ada,
            &format!("return !!document.querySelector('[data-peer-id=\"{bob_at_ada}\"]');")
        )
        .await,
        json!(true),
        "cancelled: bob is still in the call"
    );
    assert_eq!(
        js(
            &bob,
            "return !document.querySelector('[data-testid=call-view]').hidden;"
        )
        .await,
        json!(true)
    );

    // In Russian: the kick button's tooltip and label, Leave and Log out differ.
    set_lang(&ada, "ru").await;
    let ru = js(
        &ada,
        &format!(
            "const k = document.querySelector('{}'); return [k.title, k.getAttribute('aria-label'), \
             document.querySelector('#leave .ctl-label').textContent, document.querySelector('#leave').title, \
             document.querySelector('#logout').title];",
            kick.replace('\'', "\\'")
        ),
    )
    .await;
    assert_eq!(
        ru,
        json!([
            "Удалить bob из звонка",
            "Удалить bob из звонка",
            "Выход",
            "Покинуть звонок",
            "Выйти из аккаунта"
        ])
    );
    let quality_ru = js(
        &ada,
        &format!("return document.querySelector('[data-peer-id=\"{bob_at_ada}\"] [data-testid=quality]').title;"),
    )
    .await;
    assert!(
        quality_ru.as_str().unwrap().contains("связь")
            || quality_ru.as_str().unwrap().contains("Связь"),
        "{quality_ru}"
    );
    screenshot(&ada, "feedback-call-ru-1280").await;
    click(&ada, &kick).await;
    let asked = eventually(&ada, "the kick question in Russian", DIALOG_OPEN).await;
    assert!(
        asked.as_str().unwrap().contains("Удалить bob из звонка?"),
        "{asked}"
    );
    screenshot(&ada, "feedback-kick-confirm-ru-1280").await;
    click(&ada, "[data-testid=confirm-ok]").await;
    eventually(
        &ada,
        "bob removed",
        &format!("return !document.querySelector('[data-peer-id=\"{bob_at_ada}\"]');"),
    )
    .await;
    eventually(
        &bob,
        "bob told he was removed",
        "return !!document.querySelector('[data-notice=ended]');",
    )
    .await;
    set_lang(&ada, "en").await;

    // Leaving through the logo asks; cancel stays, confirm goes to the lobby.
    click(&ada, "[data-testid=brand]").await;
    let asked = eventually(&ada, "the leave question", DIALOG_OPEN).await;
    assert!(
        asked.as_str().unwrap().contains("Leave the call?"),
        "{asked}"
    );
    click(&ada, "[data-testid=confirm-cancel]").await;
    eventually(&ada, "the dialog closed", DIALOG_GONE).await;
    assert_eq!(
        js(
            &ada,
            "return !document.querySelector('[data-testid=call-view]').hidden && window.webcall.room;"
        )
        .await,
        "team"
    );
    click(&ada, "[data-testid=brand]").await;
    eventually(&ada, "the leave question again", DIALOG_OPEN).await;
    click(&ada, "[data-testid=confirm-ok]").await;
    css(&ada, "[data-testid=lobby]:not([hidden])").await;
    assert_eq!(js(&ada, "return window.webcall.room;").await, Value::Null);

    // The Leave button leaves at once, then "You left team" with Rejoin.
    join_call(&ada, &app.url("/r/team")).await;
    css(&ada, "[data-testid=conn-status][data-state=connected]").await;
    click(&ada, "[data-testid=leave]").await;
    let title = eventually(
        &ada,
        "the left view",
        "const v = document.querySelector('[data-testid=left-view]'); return v && !v.hidden && document.querySelector('[data-testid=left-title]').textContent;",
    )
    .await;
    assert_eq!(title, "You left “team”");
    assert_eq!(
        js(&ada, "return document.querySelector('[data-testid=lobby]').hidden && document.querySelector('[data-testid=call-view]').hidden;").await,
        json!(true)
    );
    screenshot(&ada, "feedback-left-1280").await;
    click(&ada, "[data-testid=rejoin]").await;
    click_join(&ada).await;
    css(&ada, "[data-testid=conn-status][data-state=connected]").await;
    assert_eq!(js(&ada, "return window.webcall.room;").await, "team");
    assert!(ada.current_url().await.unwrap().path().ends_with("/r/team"));
    let _ = ada_at_bob;

    ada.close().await.unwrap();
    bob.close().await.unwrap();
    app.stop().await;
}

/// "Good connection — 40 ms, 0 % lost, 1.2 Mbit/s": the numbers are there.
fn regex_lite(words: &str) -> bool {
    let Some((_, numbers)) = words.split_once(" — ") else {
        return false;
    };
    let parts: Vec<&str> = numbers.split(", ").collect();
    let number = |s: &str| s.chars().any(|c| c.is_ascii_digit());
    parts.len() == 3
        && parts[0].ends_with(" ms")
        && number(parts[0])
        && parts[1].ends_with(" % lost")
        && number(parts[1])
        && (parts[2].ends_with(" Mbit/s") || parts[2].ends_with(" kbit/s"))
        && number(parts[2])
}

#[tokio::test]
async fn a_64_character_room_fits_a_phone_and_deleting_it_asks_first() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let long = "a-very-long-room-name-for-the-whole-team-and-friends-0123456789a";
    assert_eq!(long.len(), 64);
    let ada = driver.browser(500, 800).await;
    sign_in(&ada, &app, &app.url(""), "ada").await;
    phone(&ada).await;
    let token = app.fresh_token("ada").await;
    assert_eq!(app.create_room(&token, long).await.status(), 201);
    ada.execute("localStorage.setItem('webcall.lang', 'ru');", vec![])
        .await
        .unwrap();
    ada.goto(&app.url("/static/index.html")).await.unwrap();
    css(
        &ada,
        &format!("[data-testid=room-item][data-room=\"{long}\"]"),
    )
    .await;
    js(
        &ada,
        "document.querySelector('[data-testid=room-list]').scrollIntoView({block: 'center'}); return true;",
    )
    .await;
    screenshot(&ada, "feedback-lobby-long-ru-360").await;
    no_sideways_scroll(&ada, "the lobby with a 64-character room, in Russian").await;

    // Waits are said in minutes and seconds (the sign-in page's retry countdown).
    let waits = ada
        .execute_async(
            "const done = arguments[0]; import('/static/js/i18n.js').then((m) => done([m.formatDuration(887, 'en'), m.formatDuration(887, 'ru'), m.formatDuration(42, 'en'), m.t('err_too_many_attempts', {s: 887})]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        waits,
        json!([
            "14 min 47 s",
            "14 мин 47 с",
            "42 s",
            "Слишком много попыток. Повторите через 14 мин 47 с."
        ])
    );

    // Deleting asks (over the page where it is scrolled to); cancel keeps the room.
    let scrolled = js(
        &ada,
        "document.querySelector('[data-testid=delete-room]').scrollIntoView({block: 'center'}); return scrollY;",
    )
    .await;
    assert!(scrolled.as_f64().unwrap() > 100.0, "scrolled: {scrolled}");
    click(&ada, "[data-testid=delete-room]").await;
    let asked = eventually(&ada, "the delete question", DIALOG_OPEN).await;
    assert!(
        asked.as_str().unwrap().contains("Удалить комнату"),
        "{asked}"
    );
    no_sideways_scroll(&ada, "the delete question").await;
    screenshot(&ada, "feedback-delete-confirm-ru-360").await;
    click(&ada, "[data-testid=confirm-cancel]").await;
    eventually(&ada, "the dialog closed", DIALOG_GONE).await;
    let rooms = app.get_authed("/api/v1/rooms", &token).await;
    let rooms: Value = rooms.json().await.unwrap();
    assert!(rooms.to_string().contains(long), "kept: {rooms}");

    // In the call: the header cuts the name short with the whole name as its tooltip.
    click(
        &ada,
        &format!("[data-room=\"{long}\"] [data-testid=enter-room]"),
    )
    .await;
    css(&ada, "[data-testid=prejoin]:not([hidden])").await;
    no_sideways_scroll(&ada, "the pre-join of a 64-character room, in Russian").await;
    click_join(&ada).await;
    css(&ada, "[data-testid=conn-status][data-state=connected]").await;
    let title = js(
        &ada,
        "const t = document.querySelector('[data-testid=room-title]'); return [t.title, t.scrollWidth > t.clientWidth];",
    )
    .await;
    assert_eq!(title, json!([long, true]));
    eventually(
        &ada,
        "the alone card",
        "const c = document.querySelector('[data-testid=alone-card]'); return c && !c.hidden;",
    )
    .await;
    screenshot(&ada, "feedback-call-alone-ru-360").await;
    no_sideways_scroll(&ada, "the call with a 64-character room, in Russian").await;
    click(&ada, "[data-testid=toggle-reactions]").await;
    no_sideways_scroll(&ada, "the reactions menu on a phone").await;
    screenshot(&ada, "feedback-reactions-ru-360").await;
    click(&ada, "[data-testid=reaction-menu] button[data-emoji='❤️']").await;
    eventually(
        &ada,
        "the reaction over the own tile",
        "return !!document.querySelector('[data-testid=local-tile] [data-testid=reaction]');",
    )
    .await;

    click(&ada, "[data-testid=leave]").await;
    css(&ada, "[data-testid=left-view]:not([hidden])").await;
    no_sideways_scroll(&ada, "the left view").await;
    screenshot(&ada, "feedback-left-ru-360").await;
    set_lang(&ada, "en").await;
    screenshot(&ada, "feedback-left-360").await;
    click(&ada, "[data-testid=back-to-rooms]").await;
    css(&ada, "[data-testid=lobby]:not([hidden])").await;

    // Deleting, confirmed.
    click(&ada, "[data-testid=delete-room]").await;
    eventually(&ada, "the delete question", DIALOG_OPEN).await;
    click(&ada, "[data-testid=confirm-ok]").await;
    eventually(
        &ada,
        "the room gone from the list",
        &format!("return !document.querySelector('[data-room=\"{long}\"]');"),
    )
    .await;

    // English call on a phone, for the screenshot.
    join_call(&ada, &app.url("/r/team")).await;
    css(&ada, "[data-testid=conn-status][data-state=connected]").await;
    no_sideways_scroll(&ada, "an English call on a phone").await;
    screenshot(&ada, "feedback-call-alone-360").await;

    // Someone joins: the card goes, the quality shows on their tile, on a phone too.
    let bob = driver.browser(1280, 800).await;
    sign_in(&bob, &app, &app.url(""), "bob").await;
    join_call(&bob, &app.url("/r/team")).await;
    let bob_at_ada = tile_of(&ada, "bob").await;
    eventually(
        &ada,
        "bob's connection quality measured",
        &format!("return ['good', 'fair', 'poor'].includes(document.querySelector('[data-peer-id=\"{bob_at_ada}\"]').dataset.quality);"),
    )
    .await;
    assert_eq!(
        js(
            &ada,
            "return document.querySelector('[data-testid=alone-card]').hidden;"
        )
        .await,
        json!(true)
    );
    click(&bob, "[data-testid=toggle-reactions]").await;
    click(&bob, "[data-testid=reaction-menu] button[data-emoji='👍']").await;
    eventually(
        &ada,
        "bob's reaction on a phone",
        &format!("return !!document.querySelector('[data-peer-id=\"{bob_at_ada}\"] [data-testid=reaction]');"),
    )
    .await;
    no_sideways_scroll(&ada, "a two-person call on a phone").await;
    screenshot(&ada, "feedback-call-360").await;

    bob.close().await.unwrap();
    ada.close().await.unwrap();
    app.stop().await;
}
