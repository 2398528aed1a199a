//! One call between two browser engines: headless Chromium (chromedriver) and
//! headless Firefox ESR (geckodriver) in one room, the server in-process. Both
//! see the other's tile with the right name, decode the other's video and hear
//! the other, through the embedded TURN relay (`forceRelay=1`: relay candidates
//! on both sides) and as a plain call on this machine (host candidates on both
//! sides: Chromium gathers none on loopback, so that one needs an interface with
//! an address, as any machine on a network has).
//!
//! In the plain call they also share files both ways through the chat: a file
//! dropped in Firefox downloads whole in Chromium, an image dropped in
//! Chromium shows its preview in Firefox.
//!
//! The connection check page runs in Firefox too.
//!
//! `.ci/run` installs `firefox-esr` and `geckodriver`; elsewhere a missing tool
//! prints SKIPPED and the test passes, under `CI` it fails.

mod support;
mod webclient;

use std::time::Instant;

use fantoccini::Client;
use serde_json::{json, Value};
use support::{spawn_app, TestApp, PASSWORD, REGISTRATION_SECRET};
use webclient::{
    auth_ready, call_path, click, connection_check, css, decoding, eventually, fill, join_call, js,
    tile_of, Driver, Engine,
};

/// One scenario at a time: each takes two browsers, the machine may have two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Chromium's person ("ada", signed up through the page) and Firefox's ("fox",
/// registered over the API, its token put in localStorage), both in the lobby.
struct People {
    _drivers: [Driver; 2],
    ada: Client,
    fox: Client,
}

async fn people(app: &TestApp) -> Option<People> {
    let chromedriver = Driver::start(Engine::Chromium).await?;
    let geckodriver = Driver::start(Engine::Firefox).await?;
    let ada = chromedriver.browser(1280, 800).await;
    let fox = geckodriver.browser(1280, 800).await;

    ada.goto(&app.url("/static/auth.html#register"))
        .await
        .unwrap();
    auth_ready(&ada).await;
    fill(&ada, "#register-email", "ada@example.org").await;
    fill(&ada, "#register-username", "ada").await;
    fill(&ada, "#register-password", PASSWORD).await;
    fill(&ada, "#register-secret", REGISTRATION_SECRET).await;
    click(&ada, "[data-testid=register-submit]").await;
    css(&ada, "[data-testid=lobby]:not([hidden])").await;

    signed_in_with_token(&fox, app, "fox").await;
    fox.goto(&app.url("/")).await.unwrap();
    css(&fox, "[data-testid=lobby]:not([hidden])").await;

    Some(People {
        _drivers: [chromedriver, geckodriver],
        ada,
        fox,
    })
}

/// Registers `name` over the API and puts a fresh token of theirs where the
/// web client keeps it.
async fn signed_in_with_token(browser: &Client, app: &TestApp, name: &str) {
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

/// Both open `path`; each sees the other's named tile, the call with the other,
/// as each side's getStats says, decodes video over a pair whose local candidate
/// is `local`, and each hears the other through its Web Audio graph. Returns
/// (seen by ada, seen by fox).
async fn call(people: &People, path: &str, local: &str) -> (Value, Value) {
    let People { ada, fox, .. } = people;
    let started = Instant::now();
    join_call(ada, path).await;
    join_call(fox, path).await;
    let fox_on_ada = tile_of(ada, "fox").await;
    let ada_on_fox = tile_of(fox, "ada").await;

    let mut seen = Vec::new();
    for (who, browser, peer) in [
        ("ada (Chromium)", ada, &fox_on_ada),
        ("fox (Firefox)", fox, &ada_on_fox),
    ] {
        let wanted = |path: &Value| decoding(path) && path["local"] == local;
        match call_path(browser, peer, wanted).await {
            Ok(path) => seen.push(path),
            Err(last) => panic!(
                "{who}: no decoded video over a {local} candidate; getStats said last: {last}"
            ),
        }
    }
    // And each hears the other: the Web Audio graph runs and measures the other's sound.
    for (who, browser, peer) in [
        ("ada (Chromium)", ada, &fox_on_ada),
        ("fox (Firefox)", fox, &ada_on_fox),
    ] {
        let audible = format!(
            "return window.webcall.audioState() === 'running' && window.webcall.level('{peer}') > 0.01 && window.webcall.level('{peer}');"
        );
        let level = eventually(browser, &format!("{who} hears the other"), &audible).await;
        eprintln!("{who} hears the other at level {level}");
    }
    let by_fox = seen.pop().unwrap();
    let by_ada = seen.pop().unwrap();
    // One pair, seen from both ends: each side's remote address is the other's local one.
    assert_eq!(
        by_ada["remoteAddress"], by_fox["localAddress"],
        "{by_ada} {by_fox}"
    );
    assert_eq!(
        by_fox["remoteAddress"], by_ada["localAddress"],
        "{by_ada} {by_fox}"
    );
    eprintln!(
        "{path}: video and sound both ways after {:.1} s\n  seen by ada (Chromium): {by_ada}\n  seen by fox (Firefox):  {by_fox}",
        started.elapsed().as_secs_f64()
    );
    (by_ada, by_fox)
}

/// Firefox's remote candidate is of type `kind`, or peer-reflexive: Firefox met
/// it in the other's connectivity check before the signalling brought it, and
/// unlike Chromium keeps that name once the candidate is signalled. Which
/// candidate it is [`call`] has checked: the other's local one, by address.
fn met_in_a_check_or(seen_by_firefox: &Value, kind: &str) -> bool {
    seen_by_firefox["remote"] == kind || seen_by_firefox["remote"] == "prflx"
}

async fn leave(browser: &Client) {
    click(browser, "[data-testid=leave]").await;
    // "You left …": back to the rooms from there.
    css(
        browser,
        "[data-testid=left-view]:not([hidden]) [data-testid=back-to-rooms]",
    )
    .await
    .click()
    .await
    .unwrap();
    eventually(
        browser,
        "back in the lobby",
        "return !!document.querySelector('[data-testid=lobby]:not([hidden])');",
    )
    .await;
}

/// Chromium's Ada and Firefox's Fox meet at `path`; each sees the other over a
/// pair whose remote candidate is of `kind` (Firefox may still call it prflx:
/// see [`met_in_a_check_or`]). `None` when a browser is missing.
async fn in_a_call(app: &TestApp, path: &str, kind: &str) -> Option<People> {
    let started = Instant::now();
    let people = people(app).await?;
    eprintln!(
        "both browsers up, signed in: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (by_ada, by_fox) = call(&people, &app.url(path), kind).await;
    assert_eq!(by_ada["remote"], kind, "{by_ada}");
    assert!(met_in_a_check_or(&by_fox, kind), "{by_fox}");
    Some(people)
}

/// Both leave the room and close their browsers.
async fn hang_up(people: People) {
    leave(&people.fox).await;
    leave(&people.ada).await;
    people.ada.clone().close().await.unwrap();
    people.fox.clone().close().await.unwrap();
}

#[tokio::test]
async fn chromium_and_firefox_call_each_other_through_the_embedded_relay() {
    let _serial = SERIAL.lock().await;
    let app = spawn_app(&[]).await;
    let Some(people) = in_a_call(&app, "/r/engines?forceRelay=1", "relay").await else {
        return;
    };
    assert!(
        app.relay_allocations() >= 2,
        "the embedded relay carries the call"
    );
    hang_up(people).await;
    app.stop().await;
}

/// In the page: `arguments[0]` bytes of a pattern (or, with `arguments[1]`
/// true, a PNG drawn on a canvas) dropped on the chat as a file named
/// `arguments[2]`; done with the SHA-256 of what was dropped.
const DROP_FILE: &str = r#"
const [size, image, name, done] = arguments;
const made = image
  ? new Promise((ok) => {
      const c = document.createElement('canvas');
      c.width = 480; c.height = 270;
      const g = c.getContext('2d');
      g.fillStyle = '#0ea5e9'; g.fillRect(0, 0, 480, 270);
      g.fillStyle = '#f43f5e'; g.fillRect(40, 40, 200, 120);
      c.toBlob((b) => b.arrayBuffer().then((a) => ok(new Uint8Array(a))), 'image/png');
    })
  : Promise.resolve(Uint8Array.from({ length: size }, (_, i) => (i * 31 + (i >> 11)) & 255));
made.then(async (bytes) => {
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, { type: image ? 'image/png' : 'application/octet-stream' }));
  const log = document.querySelector('[data-testid=chat-log]');
  for (const type of ['dragenter', 'dragover', 'drop']) {
    log.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
  }
  const d = await crypto.subtle.digest('SHA-256', bytes);
  done([...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join(''));
});
"#;

/// In the page: the file card named `arguments[0]` downloaded through its
/// Download link; done with its status, length and SHA-256.
const FETCH_FILE: &str = r#"
const [name, done] = arguments;
const card = [...document.querySelectorAll('[data-testid=file-card]')].find((c) => c.dataset.name === name);
fetch(card.querySelector('[data-testid=file-download]').href).then(async (r) => {
  const b = await r.arrayBuffer();
  const d = await crypto.subtle.digest('SHA-256', b);
  done({ status: r.status, length: b.byteLength,
    sha: [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join('') });
}).catch((e) => done({ error: String(e) }));
"#;

async fn open_chat(browser: &Client) {
    if js(
        browser,
        "return document.querySelector('[data-testid=chat-panel]').hidden;",
    )
    .await
        == json!(true)
    {
        click(browser, "[data-testid=toggle-chat]").await;
    }
    eventually(
        browser,
        "the chat open",
        "return !document.querySelector('[data-testid=chat-panel]').hidden;",
    )
    .await;
}

/// Fox (Firefox) drops a file: Ada (Chromium) gets it and downloads the same
/// bytes. Ada drops an image: Fox sees its preview.
async fn share_files(people: &People) {
    let People { ada, fox, .. } = people;
    open_chat(ada).await;
    open_chat(fox).await;
    let sha = fox
        .execute_async(
            DROP_FILE,
            vec![json!(300_000), json!(false), json!("fox.bin")],
        )
        .await
        .unwrap();
    eventually(
        ada,
        "fox's file in ada's chat",
        "return [...document.querySelectorAll('[data-testid=file-card]')].some((c) => c.dataset.name === 'fox.bin');",
    )
    .await;
    let fetched = ada
        .execute_async(FETCH_FILE, vec![json!("fox.bin")])
        .await
        .unwrap();
    assert_eq!(
        fetched,
        json!({"status": 200, "length": 300_000, "sha": sha}),
        "Chromium downloads what Firefox sent"
    );
    ada.execute_async(DROP_FILE, vec![json!(0), json!(true), json!("ada.png")])
        .await
        .unwrap();
    let preview = eventually(
        fox,
        "ada's image previewed in firefox",
        "const c = [...document.querySelectorAll('[data-testid=file-card]')].find((c) => c.dataset.name === 'ada.png'); \
         const img = c && c.querySelector('[data-testid=file-preview]'); \
         if (img) img.scrollIntoView(); \
         return !!img && img.complete && img.naturalWidth > 0 && [img.naturalWidth, img.naturalHeight];",
    )
    .await;
    assert_eq!(
        preview,
        json!([320, 180]),
        "the server's preview, 320 px wide"
    );
}

#[tokio::test]
async fn chromium_and_firefox_call_each_other_directly() {
    let _serial = SERIAL.lock().await;
    let app = spawn_app(&[]).await;
    let Some(people) = in_a_call(&app, "/r/engines", "host").await else {
        return;
    };
    share_files(&people).await;
    hang_up(people).await;
    app.stop().await;
}

/// The connection check page (`/check`) in Firefox: its relay over UDP and over
/// TCP both give an address (what browser.rs checks in Chromium).
#[tokio::test]
async fn the_connection_check_page_finds_both_relay_transports_in_firefox() {
    let _serial = SERIAL.lock().await;
    let app = spawn_app(&[]).await;
    let Some(geckodriver) = Driver::start(Engine::Firefox).await else {
        return;
    };
    let fox = geckodriver.browser(1000, 900).await;
    signed_in_with_token(&fox, &app, "fox").await;
    let check = connection_check(&fox, &app.url("/check")).await;
    assert_eq!(check["udp"], "ok", "{check}");
    assert_eq!(check["tcp"], "ok", "{check}");
    assert!(
        check["summary"]
            .as_str()
            .is_some_and(|s| s.contains("connect")),
        "{check}"
    );
    fox.close().await.unwrap();
    app.stop().await;
}
