//! The pre-join screen and devices, in headless Chromium with fake devices (three
//! fake cameras where a test asks for them): `/r/{room}` shows the room, who is
//! in its call (`GET /api/v1/rooms/{room}`), a live camera preview, a moving mic
//! level and the device pickers; the choices made there (camera 3, mic off) are
//! what the other person gets, from the very stream the preview showed (no
//! second getUserMedia); switching the camera in the call swaps the track
//! without an offer/answer while the other side keeps decoding; the choices are
//! remembered after a reload; the old `index.html#room=` links become `/r/`;
//! a phone in Russian has no sideways scroll; refused or missing devices are
//! explained and joining still works, receive-only; Firefox ESR hides the
//! speaker picker it cannot serve; the demo shows the screen. Screenshots land in
//! the target directory.
//!
//! Over 500 lines: whole user paths in real browsers (each browser start costs
//! seconds, so each test walks far) over several device setups (three fake
//! cameras, none, access refused, Firefox's own).

mod support;
mod webclient;

use fantoccini::Client;
use serde_json::{json, Value};
use support::{error_of, spawn_app, TestApp};
use webclient::{
    call_path, click, click_join, css, eventually, join_call, js, no_sideways_scroll, screenshot,
    tile_of, Driver, Engine,
};

/// Chromium's fake cameras: the second of them (`fake_device_1`) is a depth
/// camera (Y16) that WebRTC cannot encode, so the tests pick the first and the
/// third, both ordinary (I420).
const THREE_CAMERAS: &str = "--use-fake-device-for-media-stream=device-count=3";

/// One scenario at a time: each takes browsers, the machine may have two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Registers `name` over the API and signs the browser in with its token.
async fn signed_in(browser: &Client, app: &TestApp, name: &str) {
    let token = app.user_token(name).await;
    browser.goto(&app.url("/static/auth.html")).await.unwrap();
    browser
        .execute(
            "localStorage.setItem('webcall.token', arguments[0]); localStorage.setItem('webcall.token_exp', String(Date.now() + 3600e3)); return true;",
            vec![json!(token)],
        )
        .await
        .unwrap();
}

/// Picks the option `value` in the select `testid` as a person would (a change event).
async fn choose(browser: &Client, testid: &str, value: &str) {
    browser
        .execute(
            "const s = document.querySelector(`[data-testid=${arguments[0]}]`); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change', {bubbles: true})); return s.value;",
            vec![json!(testid), json!(value)],
        )
        .await
        .unwrap();
}

/// The deviceIds offered by the select `testid`, once it offers `n` or more, all
/// with labels (they come with the permission).
async fn options(browser: &Client, testid: &str, n: usize) -> Vec<String> {
    let script = format!(
        "const o = [...document.querySelectorAll('[data-testid={testid}] option')]; \
         return o.length >= {n} && o.every((x) => x.value && x.textContent.trim()) && o.map((x) => x.value);"
    );
    let ids = eventually(
        browser,
        &format!("{n} labelled options in {testid}"),
        &script,
    )
    .await;
    ids.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Video frames decoded from `peer` so far.
async fn frames(browser: &Client, peer: &str) -> u64 {
    let path = call_path(browser, peer, |_| true).await.unwrap();
    path["frames"].as_u64().unwrap_or(0)
}

/// How many times the signalling state of the connection with `peer` changed
/// since [`count_negotiations`] started counting (an offer or answer changes it).
const NEGOTIATIONS: &str = "return window.__negotiations;";

async fn count_negotiations(browser: &Client, peer: &str) {
    browser
        .execute(
            "window.__negotiations = 0; window.webcall.pc(arguments[0]).addEventListener('signalingstatechange', () => { window.__negotiations += 1; }); return true;",
            vec![json!(peer)],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn pre_join_choices_reach_the_call_and_the_camera_switches_without_renegotiating() {
    let _serial = SERIAL.lock().await;
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let bob = driver.browser(1280, 800).await;
    let ada = driver.browser_with(1280, 800, &[THREE_CAMERAS]).await;
    signed_in(&bob, &app, "bob").await;
    signed_in(&ada, &app, "ada").await;

    // Bob is already in the call.
    join_call(&bob, &app.url("/r/team")).await;

    // Ada's pre-join: the room, Bob inside, a live preview, a moving mic level, two cameras.
    ada.goto(&app.url("/r/team")).await.unwrap();
    css(&ada, "[data-testid=prejoin]:not([hidden])").await;
    assert_eq!(
        js(
            &ada,
            "return document.querySelector('[data-testid=prejoin-room]').textContent;"
        )
        .await,
        "team"
    );
    eventually(
        &ada,
        "bob listed as inside",
        "return [...document.querySelectorAll('[data-testid=prejoin-person]')].some((p) => p.textContent === 'bob');",
    )
    .await;
    eventually(
        &ada,
        "a live camera preview",
        "const v = document.querySelector('[data-testid=prejoin-video]'); \
         return v.srcObject && v.srcObject.getVideoTracks()[0]?.readyState === 'live' && v.videoWidth > 0;",
    )
    .await;
    eventually(
        &ada,
        "the mic level moves",
        "return Number(document.querySelector('[data-testid=prejoin-level]').dataset.level) > 0.01;",
    )
    .await;
    let cameras = options(&ada, "prejoin-camera", 3).await;
    assert_eq!(cameras.len(), 3, "{cameras:?}");
    options(&ada, "prejoin-microphone", 1).await;
    assert_eq!(
        js(
            &ada,
            "return document.querySelector('[data-testid=prejoin-media-state]').hidden;"
        )
        .await,
        json!(true),
        "no warning while camera and microphone work"
    );
    screenshot(&ada, "prejoin").await;

    // Noise suppression off: the microphone reopens without it.
    click(&ada, "label[for=prejoin-noiseSuppression]").await;
    eventually(
        &ada,
        "a microphone without noise suppression",
        "const t = window.webcall.localTrack('audio'); return !!t && t.readyState === 'live' && t.getSettings().noiseSuppression === false;",
    )
    .await;

    // Camera 3 and the mic off.
    choose(&ada, "prejoin-camera", &cameras[2]).await;
    let preview_on = |id: &str| {
        format!(
            "const t = document.querySelector('[data-testid=prejoin-video]').srcObject?.getVideoTracks()[0]; \
             return !!t && t.readyState === 'live' && t.getSettings().deviceId === '{id}';"
        )
    };
    eventually(&ada, "the preview from camera 3", &preview_on(&cameras[2])).await;
    click(&ada, "[data-testid=prejoin-mic]").await;
    eventually(
        &ada,
        "the mic toggle off",
        "return document.querySelector('[data-testid=prejoin-mic]').getAttribute('aria-pressed') === 'false';",
    )
    .await;
    screenshot(&ada, "prejoin-camera3-mic-off").await;

    // Joining takes the preview's own tracks: no other getUserMedia call.
    js(
        &ada,
        "window.__preview = document.querySelector('[data-testid=prejoin-video]').srcObject.getVideoTracks()[0]; \
         window.__gum = 0; const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices); \
         navigator.mediaDevices.getUserMedia = (c) => { window.__gum += 1; return gum(c); }; return true;",
    )
    .await;
    click_join(&ada).await;
    let bob_on_ada = tile_of(&ada, "bob").await;
    let ada_on_bob = tile_of(&bob, "ada").await;
    assert_eq!(
        js(
            &ada,
            "return window.webcall.localTrack('video') === window.__preview && window.__gum;"
        )
        .await,
        json!(0),
        "the call sends the preview's camera track, and asked for nothing more"
    );

    // Bob decodes Ada's video, which comes from camera 3, and sees her mic off.
    call_path(&bob, &ada_on_bob, webclient::decoding)
        .await
        .unwrap_or_else(|last| panic!("bob decodes no video from ada: {last}"));
    eventually(
        &bob,
        "ada's mic shown off",
        &format!(
            "const t = document.querySelector('[data-peer-id=\"{ada_on_bob}\"]'); return t && t.dataset.audio === 'false' && t.dataset.video === 'true';"
        ),
    )
    .await;
    let sent_from = |id: &str| {
        format!(
            "const s = window.webcall.pc('{bob_on_ada}').getSenders().find((s) => s.track && s.track.kind === 'video'); \
             return !!s && s.track.readyState === 'live' && s.track.getSettings().deviceId === '{id}';"
        )
    };
    eventually(&ada, "ada sends camera 3", &sent_from(&cameras[2])).await;
    assert_eq!(
        js(
            &ada,
            "const t = window.webcall.localTrack('audio'); return [t.enabled, t.getSettings().noiseSuppression];"
        )
        .await,
        json!([false, false]),
        "the call's microphone is muted and without noise suppression, as chosen"
    );

    // Mid-call: camera 1 from the settings dialog. The sender swaps its track, no
    // offer or answer on either side, and Bob keeps decoding.
    count_negotiations(&ada, &bob_on_ada).await;
    count_negotiations(&bob, &ada_on_bob).await;
    let before = frames(&bob, &ada_on_bob).await;
    click(&ada, "[data-testid=open-settings]").await;
    css(&ada, "[data-testid=settings-dialog][open]").await;
    options(&ada, "settings-camera", 3).await;
    assert_eq!(
        js(
            &ada,
            "return document.querySelector('[data-testid=settings-camera]').value;"
        )
        .await,
        json!(cameras[2]),
        "the dialog shows the camera in use"
    );
    choose(&ada, "settings-camera", &cameras[0]).await;
    eventually(&ada, "ada sends camera 1", &sent_from(&cameras[0])).await;
    screenshot(&ada, "settings-dialog").await;

    // The speaker: the call's Web Audio plays through the one picked.
    let speakers = options(&ada, "settings-speaker", 1).await;
    let speaker = speakers.last().unwrap();
    choose(&ada, "settings-speaker", speaker).await;
    eventually(
        &ada,
        "the AudioContext plays through the chosen speaker",
        &format!("return window.webcall.audioSink() === '{speaker}';"),
    )
    .await;
    let mut last = before;
    for round in 0..2 {
        let now = eventually(
            &bob,
            "more frames decoded",
            &format!(
                "return window.webcall.stats('{ada_on_bob}').then((r) => {{ let f = 0; r.forEach((s) => {{ if (s.type === 'inbound-rtp' && s.kind === 'video') f += s.framesDecoded || 0; }}); return f > {last} && f; }});"
            ),
        )
        .await
        .as_u64()
        .unwrap();
        eprintln!("round {round}: bob decoded {now} frames from ada (was {last})");
        last = now;
    }
    assert_eq!(js(&ada, NEGOTIATIONS).await, json!(0), "ada renegotiated");
    assert_eq!(js(&bob, NEGOTIATIONS).await, json!(0), "bob renegotiated");
    assert_eq!(
        js(
            &ada,
            "const p = document.querySelector('[data-testid=local-tile] video'); return p.srcObject.getVideoTracks()[0].getSettings().deviceId;"
        )
        .await,
        json!(cameras[0]),
        "ada's own tile shows the new camera"
    );

    // Reload: the pre-join comes back with camera 1 and the mic off.
    ada.refresh().await.unwrap();
    css(&ada, "[data-testid=prejoin]:not([hidden])").await;
    options(&ada, "prejoin-camera", 3).await;
    eventually(&ada, "the preview from camera 1", &preview_on(&cameras[0])).await;
    eventually(
        &ada,
        "camera 1 picked, mic off, noise suppression off",
        &format!(
            "return document.querySelector('[data-testid=prejoin-camera]').value === '{}' && \
             document.querySelector('[data-testid=prejoin-mic]').getAttribute('aria-pressed') === 'false' && \
             !document.querySelector('[data-testid=prejoin-noiseSuppression]').checked && \
             window.webcall.localTrack('audio')?.getSettings().noiseSuppression === false;",
            cameras[0]
        ),
    )
    .await;

    ada.close().await.unwrap();
    bob.close().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn the_room_api_says_who_is_inside_and_404s_an_unknown_room() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    let (_in_call, _welcome) = app.join("team", &ada).await;

    let response = app.get_authed("/api/v1/rooms/team", &bob).await;
    assert_eq!(response.status(), 200);
    let room: Value = response.json().await.unwrap();
    assert_eq!(room["name"], "team", "{room}");
    assert_eq!(room["owner"]["username"], "ada", "{room}");
    assert_eq!(room["people"], json!(["ada"]), "{room}");
    assert_eq!(room["participants"], 1, "{room}");

    let (status, code, _) = error_of(app.get_authed("/api/v1/rooms/nobody-here", &bob).await).await;
    assert_eq!((status, code.as_str()), (404, "room_not_found"));
    let (status, _, _) = error_of(app.get_authed("/api/v1/rooms/no%20spaces", &bob).await).await;
    assert_eq!(status, 422);
    let anonymous = app
        .http
        .get(app.url("/api/v1/rooms/team"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

/// On a phone, in Russian: the old link form becomes `/r/`, the new room is
/// explained, nothing is wider than the screen (pre-join, call, settings), and
/// the lobby's Join and the sign-in page's `#room=` lead to `/r/{room}` too.
#[tokio::test]
async fn on_a_phone_in_russian_old_links_become_r_and_nothing_scrolls_sideways() {
    let _serial = SERIAL.lock().await;
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let ada = driver.phone(360, 740).await;
    signed_in(&ada, &app, "ada").await;
    js(
        &ada,
        "localStorage.setItem('webcall.lang', 'ru'); return true;",
    )
    .await;

    ada.goto(&app.url("/static/index.html?forceRelay=1#room=phone"))
        .await
        .unwrap();
    css(&ada, "[data-testid=prejoin]:not([hidden])").await;
    assert_eq!(
        js(
            &ada,
            "return location.pathname + location.search + location.hash;"
        )
        .await,
        "/r/phone?forceRelay=1"
    );
    let said = eventually(
        &ada,
        "the new room explained",
        "const w = document.querySelector('[data-testid=prejoin-who]'); return w.dataset.state === 'new' && w.textContent.trim();",
    )
    .await;
    assert!(said.as_str().unwrap().contains("комнаты ещё нет"), "{said}");
    eventually(
        &ada,
        "a live camera preview",
        "const v = document.querySelector('[data-testid=prejoin-video]'); return v.videoWidth > 0;",
    )
    .await;
    no_sideways_scroll(&ada, "the pre-join screen").await;
    assert_eq!(
        js(&ada, "return window.innerWidth;").await,
        360,
        "a phone's width"
    );
    screenshot(&ada, "prejoin-ru-phone").await;
    ada.execute(
        "document.querySelector('[data-testid=prejoin-join]').scrollIntoView(); return true;",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&ada, "prejoin-ru-phone-bottom").await;

    click_join(&ada).await;
    no_sideways_scroll(&ada, "the call").await;
    click(&ada, "[data-testid=open-settings]").await;
    css(&ada, "[data-testid=settings-dialog][open]").await;
    options(&ada, "settings-camera", 1).await;
    no_sideways_scroll(&ada, "the settings dialog").await;
    screenshot(&ada, "settings-ru-phone").await;
    click(&ada, "[data-testid=settings-close]").await;
    click(&ada, "[data-testid=leave]").await;

    // The lobby's Join goes to the room's one address.
    css(
        &ada,
        "[data-testid=left-view]:not([hidden]) [data-testid=back-to-rooms]",
    )
    .await
    .click()
    .await
    .unwrap();
    css(&ada, "[data-testid=lobby]:not([hidden])").await;
    webclient::fill(&ada, "#room-name", "other").await;
    click(&ada, "[data-testid=join-room]").await;
    css(&ada, "[data-testid=prejoin]:not([hidden])").await;
    assert_eq!(
        js(&ada, "return location.pathname + location.search;").await,
        "/r/other?forceRelay=1"
    );

    // The sign-in page's old `#room=` form leads to the room's address too.
    ada.goto(&app.url("/static/auth.html#room=from-auth"))
        .await
        .unwrap();
    css(&ada, "[data-testid=prejoin]:not([hidden])").await;
    assert_eq!(
        js(&ada, "return location.pathname + location.hash;").await,
        "/r/from-auth"
    );
    ada.close().await.unwrap();
    app.stop().await;
}

/// Camera and microphone refused: the pre-join says so, and joining works
/// receive-only (the other person's video is decoded, and they see neither mic
/// nor camera). A machine with no camera says that instead.
#[tokio::test]
async fn refused_or_missing_devices_are_explained_and_joining_still_works() {
    let _serial = SERIAL.lock().await;
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let bob = driver.browser(1280, 800).await;
    signed_in(&bob, &app, "bob").await;
    join_call(&bob, &app.url("/r/quiet")).await;
    let media_state = "const s = document.querySelector('[data-testid=prejoin-media-state]'); \
         return !s.hidden && s.dataset.state !== 'asking' && s.dataset.state;";

    // No camera (Chromium's fake devices, none of them video).
    let carl = driver
        .browser_with(
            1280,
            800,
            &["--use-fake-device-for-media-stream=device-count=0"],
        )
        .await;
    signed_in(&carl, &app, "carl").await;
    carl.goto(&app.url("/r/quiet")).await.unwrap();
    let state = eventually(&carl, "the pre-join says there is no camera", media_state).await;
    assert_eq!(state, "no_cam");
    screenshot(&carl, "prejoin-no-camera").await;
    carl.close().await.unwrap();

    // Permission refused (Chromium's fake prompt says no).
    let ada = driver
        .browser_with(1280, 800, &["--use-fake-ui-for-media-stream=deny"])
        .await;
    signed_in(&ada, &app, "ada").await;
    ada.goto(&app.url("/r/quiet")).await.unwrap();
    let state = eventually(&ada, "the pre-join says access is refused", media_state).await;
    assert_eq!(state, "denied");
    let camera_picker = js(
        &ada,
        "const s = document.querySelector('[data-testid=prejoin-camera]'); return [s.disabled, s.options.length, s.value];",
    )
    .await;
    assert_eq!(
        camera_picker,
        json!([true, 1, ""]),
        "no camera to pick without access"
    );
    screenshot(&ada, "prejoin-denied").await;
    click_join(&ada).await;
    let bob_on_ada = tile_of(&ada, "bob").await;
    call_path(&ada, &bob_on_ada, webclient::decoding)
        .await
        .unwrap_or_else(|last| panic!("ada decodes no video from bob: {last}"));
    let ada_on_bob = tile_of(&bob, "ada").await;
    eventually(
        &bob,
        "ada shown without mic and camera",
        &format!(
            "const t = document.querySelector('[data-peer-id=\"{ada_on_bob}\"]'); return t.dataset.audio === 'false' && t.dataset.video === 'false';"
        ),
    )
    .await;
    ada.close().await.unwrap();
    bob.close().await.unwrap();
    app.stop().await;
}

/// Firefox ESR: its fake camera and microphone are offered, the preview runs,
/// and where the browser cannot choose a speaker for Web Audio
/// (`AudioContext.setSinkId`) the speaker picker is hidden with a note; joining
/// and the settings dialog work the same.
#[tokio::test]
async fn in_firefox_the_pre_join_offers_the_devices_firefox_can_choose() {
    let _serial = SERIAL.lock().await;
    let Some(driver) = Driver::start(Engine::Firefox).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let fox = driver.browser(1280, 800).await;
    signed_in(&fox, &app, "fox").await;
    fox.goto(&app.url("/r/foxes")).await.unwrap();
    css(&fox, "[data-testid=prejoin]:not([hidden])").await;
    eventually(
        &fox,
        "a live camera preview",
        "const v = document.querySelector('[data-testid=prejoin-video]'); return !!v.srcObject && v.videoWidth > 0;",
    )
    .await;
    options(&fox, "prejoin-camera", 1).await;
    options(&fox, "prejoin-microphone", 1).await;
    eventually(
        &fox,
        "the mic level moves",
        "return Number(document.querySelector('[data-testid=prejoin-level]').dataset.level) > 0.01;",
    )
    .await;
    let sink = js(&fox, "return 'setSinkId' in AudioContext.prototype;").await;
    let speaker = js(
        &fox,
        "return [document.querySelector('[data-testid=prejoin-speaker]').closest('.dev-field').hidden, \
                 document.querySelector('[data-testid=prejoin-speaker-note]').hidden];",
    )
    .await;
    if sink == json!(false) {
        assert_eq!(speaker, json!([true, false]), "picker hidden, note shown");
    } else {
        assert_eq!(speaker, json!([false, true]), "picker shown, no note");
    }
    screenshot(&fox, "prejoin-firefox").await;
    click_join(&fox).await;
    eventually(
        &fox,
        "the call sends the preview's camera",
        "const t = window.webcall.localTrack('video'); return !!t && t.readyState === 'live';",
    )
    .await;
    click(&fox, "[data-testid=open-settings]").await;
    css(&fox, "[data-testid=settings-dialog][open]").await;
    options(&fox, "settings-camera", 1).await;
    screenshot(&fox, "settings-firefox").await;
    fox.close().await.unwrap();
    app.stop().await;
}

/// Demo mode (`?demo=prejoin`, loopback only, no sign-in, no devices): the
/// pre-join screen for screenshots, on a desktop and a phone; Join goes on to
/// the demo call.
#[tokio::test]
async fn the_demo_shows_the_pre_join_screen() {
    let _serial = SERIAL.lock().await;
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    for (name, browser) in [
        ("demo-prejoin", driver.browser(1280, 800).await),
        ("demo-prejoin-phone", driver.phone(360, 740).await),
    ] {
        browser
            .goto(&app.url("/static/index.html?demo=prejoin&peers=3"))
            .await
            .unwrap();
        css(&browser, "[data-testid=prejoin]:not([hidden])").await;
        eventually(
            &browser,
            "three people inside and a stand-in camera",
            "return document.querySelectorAll('[data-testid=prejoin-person]').length === 3 && \
             document.querySelector('[data-testid=prejoin-video]').videoWidth > 0;",
        )
        .await;
        options(&browser, "prejoin-camera", 2).await;
        no_sideways_scroll(&browser, name).await;
        screenshot(&browser, name).await;
        click_join(&browser).await;
        browser.close().await.unwrap();
    }
    app.stop().await;
}
