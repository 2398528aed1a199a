//! Files in the chat (#19) in real headless Chromium against the real server.
//! Ada and Bob are in one call with the chat open. Ada drops an 8 MiB file
//! onto her chat (a `drop` event with a File made in the page: WebDriver cannot
//! drag from the desktop) while DevTools slows her upload down: the "Drop files
//! to share" overlay shows while it hovers, then her row's progress bar is seen
//! part way; a second file cancelled part way leaves no row, the server counts
//! the upload cut short and nobody gets it. Bob gets the first file's message
//! with its name and size, and what its Download link serves is the very same
//! bytes (SHA-256). Bob pastes a screenshot: it is named
//! `screenshot-YYYY-MM-DD-HHMMSS.png` and Ada sees its preview. Bob, no host,
//! has no Delete on Ada's file; Ada, the owner, has one on his. A guest (an
//! invite link) has no paperclip, no Delete, and a drop is refused with a
//! reason, but sees the preview and downloads. Ada deletes her file and it goes
//! from Bob's chat. A file over ATTACHMENT_MAX_BYTES (the welcome says it) is
//! refused on its row in plain words without a byte sent. On a 360 px phone, in Russian, the chat with its files fits the
//! screen. Screenshots land in the target directory's `screenshots/files-*.png`.

mod support;
mod webclient;

use fantoccini::Client;
use serde_json::{json, Value};
use support::{spawn_app, TestApp};
use webclient::{
    click, click_join, eventually, fill, join_call, js, no_sideways_scroll, screenshot, set_lang,
    tile_of, Driver, Engine,
};

/// The server's largest file in this test (ATTACHMENT_MAX_BYTES): 10 MiB.
const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Ada's file: 8 MiB, big enough for its progress to be seen at a slow upload.
const BIG: u64 = 8 * 1024 * 1024;

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

/// Opens the chat panel unless it is open.
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

/// In the page: a file `name` of `size` bytes (a fixed pattern) dragged over
/// the chat log and dropped; answers whether the drop overlay showed while it
/// hovered, and the file's SHA-256 in hex.
const DROP: &str = r#"
const [name, size, type, done] = arguments;
const bytes = new Uint8Array(size);
for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 11)) & 255;
const file = new File([bytes], name, { type });
const dt = new DataTransfer();
dt.items.add(file);
const log = document.querySelector('[data-testid=chat-log]');
const fire = (type) => log.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
fire('dragenter');
fire('dragover');
const overlay = !document.querySelector('[data-testid=chat-drop]').hidden;
fire('drop');
const gone = document.querySelector('[data-testid=chat-drop]').hidden;
crypto.subtle.digest('SHA-256', bytes).then((d) => done({
  overlay, gone, sha: [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join(''),
}));
"#;

/// In the page: a screenshot (a PNG drawn on a canvas, named `image.png` as
/// browsers name a pasted image) pasted into the message box.
const PASTE: &str = r#"
const done = arguments[0];
const c = document.createElement('canvas');
c.width = 640; c.height = 400;
const g = c.getContext('2d');
g.fillStyle = '#0ea5e9'; g.fillRect(0, 0, 640, 400);
g.fillStyle = '#f43f5e'; g.fillRect(40, 40, 300, 200);
const noise = g.createImageData(120, 120); // a photo-like patch: the PNG is some KB, not bytes
let x = 7;
for (let i = 0; i < noise.data.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; noise.data[i] = (i % 4 === 3) ? 255 : x >>> 24; }
g.putImageData(noise, 400, 200);
c.toBlob((blob) => {
  const dt = new DataTransfer();
  dt.items.add(new File([blob], 'image.png', { type: 'image/png' }));
  const input = document.querySelector('[data-testid=chat-input]');
  input.focus();
  const ev = new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: dt });
  input.dispatchEvent(ev);
  done({ prevented: ev.defaultPrevented, size: blob.size });
}, 'image/png');
"#;

/// The file card named `name` in the page, as a selector.
fn card(name: &str) -> String {
    format!("[data-testid=file-card][data-name={}]", json!(name))
}

#[tokio::test]
async fn files_are_dropped_pasted_shown_downloaded_and_deleted_in_the_chat() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let app = spawn_app(&[
        ("ATTACHMENT_MAX_BYTES", &MAX_BYTES.to_string()),
        ("ATTACHMENT_DIR", files.path().to_str().unwrap()),
    ])
    .await;
    let ada = driver.browser(1280, 800).await;
    let bob = driver.browser(1280, 800).await;
    sign_in(&ada, &app, "ada").await;
    sign_in(&bob, &app, "bob").await;
    join_call(&ada, &app.url("/r/files")).await; // the first in: the room's owner, a host
    join_call(&bob, &app.url("/r/files")).await;
    tile_of(&ada, "bob").await;
    tile_of(&bob, "ada").await;
    open_chat(&ada).await;
    open_chat(&bob).await;
    assert_eq!(
        js(&bob, "const b = document.querySelector('[data-testid=chat-attach]'); return !b.hidden && b.getAttribute('aria-label');").await,
        json!("Share files"),
        "the paperclip is there, with a name for screen readers"
    );

    // Ada drops an 8 MiB file while her upload runs at 2 MB/s.
    driver.cdp(&ada, "Network.enable", json!({})).await;
    driver
        .cdp(
            &ada,
            "Network.emulateNetworkConditions",
            json!({"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 2_000_000}),
        )
        .await;
    let name = "Квартальный отчёт 2026 (final).pdf";
    let dropped = ada
        .execute_async(
            DROP,
            vec![json!(name), json!(BIG), json!("application/pdf")],
        )
        .await
        .unwrap();
    assert_eq!(dropped["overlay"], json!(true), "the drop overlay showed");
    assert_eq!(dropped["gone"], json!(true), "and went with the drop");
    let sha = dropped["sha"].as_str().unwrap().to_owned();
    let part_way = eventually(
        &ada,
        "ada's progress bar part way",
        &format!(
            "const r = document.querySelector('[data-testid=upload-row][data-name={}]'); \
             const bar = r && r.querySelector('[data-testid=upload-progress]'); \
             return r && r.dataset.state === 'uploading' && bar.offsetParent !== null && bar.value > 0 && bar.value < 100 \
               && [bar.value, r.querySelector('[data-testid=upload-status]').textContent];",
            json!(name)
        ),
    )
    .await;
    screenshot(&ada, "files-uploading").await;
    let pct = part_way[0].as_f64().unwrap();
    assert!(pct > 0.0 && pct < 100.0, "{part_way}");
    assert!(
        part_way[1].as_str().unwrap().ends_with("of 8\u{a0}MB"),
        "how much is sent, of the whole: {part_way}"
    );
    // Sent: the row gives way to her own message (on the right).
    eventually(
        &ada,
        "ada's file in her chat",
        &format!(
            "return !document.querySelector('[data-testid=upload-row]') && \
             document.querySelector('{}')?.closest('[data-testid=chat-message]').dataset.mine === 'true';",
            card(name)
        ),
    )
    .await;
    // Another one, cancelled part way: its row goes, the server sees the upload cut short, and
    // nothing of it reaches Bob.
    let cut_before = refusals(&app, "size_mismatch").await;
    ada.execute_async(
        DROP,
        vec![
            json!("cancelled.bin"),
            json!(BIG),
            json!("application/octet-stream"),
        ],
    )
    .await
    .unwrap();
    eventually(
        &ada,
        "the second file part way",
        "const r = document.querySelector('[data-testid=upload-row][data-name=\"cancelled.bin\"]'); \
         return r && r.dataset.state === 'uploading' && r.querySelector('[data-testid=upload-progress]').value > 0;",
    )
    .await;
    click(
        &ada,
        "[data-testid=upload-row][data-name=\"cancelled.bin\"] [data-testid=upload-cancel]",
    )
    .await;
    eventually(
        &ada,
        "the cancelled row gone",
        "return !document.querySelector('[data-testid=upload-row]');",
    )
    .await;
    let mut cut = cut_before;
    for _ in 0..100 {
        cut = refusals(&app, "size_mismatch").await;
        if cut > cut_before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(cut, cut_before + 1, "the server saw the upload end early");

    // Three files in one drop: a row each, two on their way and the third waiting its turn.
    let states = ada
        .execute_async(
            "const done = arguments[0]; const dt = new DataTransfer(); \
             for (const n of ['one.txt', 'two.txt', 'three.txt']) dt.items.add(new File([new Uint8Array(300000).fill(65)], n, { type: 'text/plain' })); \
             const log = document.querySelector('[data-testid=chat-log]'); \
             for (const t of ['dragenter', 'dragover', 'drop']) log.dispatchEvent(new DragEvent(t, { bubbles: true, cancelable: true, dataTransfer: dt })); \
             done([...document.querySelectorAll('[data-testid=upload-row]')].map((r) => [r.dataset.name, r.dataset.state]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        states,
        json!([
            ["one.txt", "uploading"],
            ["two.txt", "uploading"],
            ["three.txt", "queued"]
        ])
    );
    eventually(
        &ada,
        "the three sent",
        "return !document.querySelector('[data-testid=upload-row]') \
           && document.querySelectorAll('[data-testid=file-card][data-kind=text]').length === 3;",
    )
    .await;
    driver
        .cdp(
            &ada,
            "Network.emulateNetworkConditions",
            json!({"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await;

    // Bob sees it: the name, the size, and the Download link serves the same bytes.
    let seen = eventually(
        &bob,
        "the file in bob's chat",
        &format!(
            "const c = document.querySelector('{}'); \
             return c && [c.querySelector('[data-testid=file-name]').textContent, \
               c.querySelector('[data-testid=file-name]').title, \
               c.querySelector('[data-testid=file-size]').textContent, c.dataset.size, c.dataset.kind, \
               c.closest('[data-testid=chat-message]').dataset.mine, \
               c.querySelector('[data-testid=file-download]').getAttribute('download')];",
            card(name)
        ),
    )
    .await;
    assert_eq!(
        seen,
        json!([
            name,
            name,
            "8\u{a0}MB",
            BIG.to_string(),
            "pdf",
            "false",
            name
        ])
    );
    assert_eq!(
        has_file(&bob, "cancelled.bin").await,
        json!(false),
        "a cancelled file reaches nobody"
    );
    let three = eventually(
        &bob,
        "the three files at bob's",
        "const c = [...document.querySelectorAll('[data-testid=file-card][data-kind=text]')]; \
         return c.length === 3 && c.map((x) => [x.dataset.name, x.dataset.size]).sort();",
    )
    .await;
    assert_eq!(
        three,
        json!([
            ["one.txt", "300000"],
            ["three.txt", "300000"],
            ["two.txt", "300000"]
        ]),
        "each once, whole"
    );
    let fetched = bob
        .execute_async(
            &format!(
                "const done = arguments[0]; \
                 const a = document.querySelector('{} [data-testid=file-download]'); \
                 fetch(a.href).then(async (r) => {{ const b = await r.arrayBuffer(); \
                   const d = await crypto.subtle.digest('SHA-256', b); \
                   done({{status: r.status, length: b.byteLength, \
                     sha: [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join('')}}); }}) \
                 .catch((e) => done({{error: String(e)}}));",
                card(name)
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        fetched,
        json!({"status": 200, "length": BIG, "sha": sha}),
        "bob downloads exactly what ada sent"
    );
    assert_eq!(
        js(
            &bob,
            &format!(
                "const d = document.querySelector('{} [data-testid=file-delete]'); return !!d && d.offsetParent !== null;",
                card(name)
            )
        )
        .await,
        json!(false),
        "bob is neither its sender nor a host: no Delete"
    );

    // Bob pastes a screenshot: Ada sees its preview.
    let pasted = bob.execute_async(PASTE, vec![]).await.unwrap();
    assert_eq!(pasted["prevented"], json!(true), "{pasted}");
    let shot = eventually(
        &ada,
        "the screenshot's preview at ada's",
        "const c = [...document.querySelectorAll('[data-testid=file-card][data-kind=image]')].pop(); \
         const img = c && c.querySelector('[data-testid=file-preview]'); \
         return img && img.complete && img.naturalWidth > 0 \
           && [c.dataset.name, img.naturalWidth, img.naturalHeight, Number(img.getAttribute('width')), Number(img.getAttribute('height'))];",
    )
    .await;
    let shot_name = shot[0].as_str().unwrap().to_owned();
    let stamp = shot_name
        .strip_prefix("screenshot-")
        .and_then(|s| s.strip_suffix(".png"))
        .unwrap_or_default();
    assert!(
        stamp.len() == 17
            && stamp
                .char_indices()
                .all(|(i, c)| if [4, 7, 10].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }),
        "a pasted screenshot is named screenshot-YYYY-MM-DD-HHMMSS.png: {shot}"
    );
    assert!(
        shot[3].as_u64().unwrap() > 0 && shot[4].as_u64().unwrap() > 0,
        "the preview's box is sized from the frame: {shot}"
    );
    eventually(
        &bob,
        "bob's own screenshot in his chat",
        &format!(
            "const c = document.querySelector('{}'); return c && c.closest('[data-testid=chat-message]').dataset.mine === 'true';",
            card(&shot_name)
        ),
    )
    .await;
    assert_eq!(
        js(
            &ada,
            &format!(
                "const d = document.querySelector('{} [data-testid=file-delete]'); return !!d && d.offsetParent !== null;",
                card(&shot_name)
            )
        )
        .await,
        json!(true),
        "ada, the room's owner, may delete anyone's file"
    );
    screenshot(&ada, "files-ada").await;

    // A guest (an invite link) gets no paperclip and cannot drop a file, but sees and downloads.
    let guest = join_as_guest(&driver, &app, "files", "Anna").await;
    open_chat(&guest).await;
    let at_guest = eventually(
        &guest,
        "the screenshot in the guest's chat",
        &format!(
            "const c = document.querySelector('{}'); const img = c && c.querySelector('[data-testid=file-preview]'); \
             return img && img.complete && img.naturalWidth > 0 \
               && [document.querySelector('[data-testid=chat-attach]').hidden, !!c.querySelector('[data-testid=file-delete]'), c.dataset.size];",
            card(&shot_name)
        ),
    )
    .await;
    assert_eq!(
        (&at_guest[0], &at_guest[1]),
        (&json!(true), &json!(false)),
        "no paperclip and no Delete for a guest: {at_guest}"
    );
    let got = guest
        .execute_async(
            &format!(
                "const done = arguments[0]; \
                 fetch(document.querySelector('{} [data-testid=file-download]').href) \
                 .then(async (r) => done([r.status, (await r.arrayBuffer()).byteLength])).catch((e) => done(String(e)));",
                card(&shot_name)
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        json!([200, at_guest[2].as_str().unwrap().parse::<u64>().unwrap()]),
        "a guest downloads"
    );
    guest
        .execute_async(
            DROP,
            vec![json!("guest.txt"), json!(100), json!("text/plain")],
        )
        .await
        .unwrap();
    eventually(
        &guest,
        "the guest told why not",
        "return [...document.querySelectorAll('#toasts .toast')].some((t) => t.textContent.includes('Guests cannot share files'));",
    )
    .await;
    assert_eq!(
        js(
            &guest,
            "return document.querySelectorAll('[data-testid=upload-row]').length;"
        )
        .await,
        json!(0),
        "nothing is sent"
    );
    guest.close().await.unwrap();

    // Ada deletes her file (asked first): it goes from Bob's chat.
    click(&ada, &format!("{} [data-testid=file-delete]", card(name))).await;
    click(&ada, "[data-testid=confirm-ok]").await;
    eventually(
        &bob,
        "ada's file gone from bob's chat",
        &format!("return !document.querySelector('{}');", card(name)),
    )
    .await;
    eventually(
        &ada,
        "and from hers",
        &format!("return !document.querySelector('{}');", card(name)),
    )
    .await;
    assert_eq!(
        js(
            &bob,
            &format!("return !!document.querySelector('{}');", card(&shot_name))
        )
        .await,
        json!(true),
        "bob's screenshot stays"
    );

    // A file over the server's limit (the welcome says it): refused on its
    // row, in plain words, without a byte sent.
    let refusals = too_large_refusals(&app).await;
    let too_big = "everything.zip";
    ada.execute_async(
        DROP,
        vec![
            json!(too_big),
            json!(MAX_BYTES + (1 << 20)),
            json!("application/zip"),
        ],
    )
    .await
    .unwrap();
    let refused = eventually(
        &ada,
        "the too-big file refused",
        &format!(
            "const r = document.querySelector('[data-testid=upload-row][data-name={}]'); \
             return r && r.dataset.state === 'failed' && [r.dataset.error, r.querySelector('[data-testid=upload-status]').textContent, \
               r.querySelector('[data-testid=upload-retry]').hidden, r.querySelector('[data-testid=upload-dismiss]').hidden];",
            json!(too_big)
        ),
    )
    .await;
    assert_eq!(refused[0], json!("too_large"), "{refused}");
    assert!(
        refused[1].as_str().unwrap().starts_with("Too big"),
        "{refused}"
    );
    assert_eq!(
        (&refused[2], &refused[3]),
        (&json!(true), &json!(false)),
        "no Try again for a file that can never fit; Dismiss is there: {refused}"
    );
    screenshot(&ada, "files-too-big").await;
    assert_eq!(
        has_file(&bob, too_big).await,
        json!(false),
        "nothing of it reached bob"
    );
    click(&ada, "[data-testid=upload-dismiss]").await;
    eventually(
        &ada,
        "the refused row dismissed",
        "return !document.querySelector('[data-testid=upload-row]');",
    )
    .await;
    assert_eq!(
        too_large_refusals(&app).await,
        refusals,
        "refused in the page: the server never saw it"
    );
    // And the next one too.
    ada.execute_async(
        DROP,
        vec![
            json!("more.zip"),
            json!(MAX_BYTES * 2),
            json!("application/zip"),
        ],
    )
    .await
    .unwrap();
    let again = eventually(
        &ada,
        "the second too-big file refused",
        "const r = document.querySelector('[data-testid=upload-row][data-name=\"more.zip\"]'); \
         return r && r.dataset.state === 'failed' && r.querySelector('[data-testid=upload-status]').textContent;",
    )
    .await;
    assert_eq!(
        again,
        json!("Too big: this server takes files up to 10\u{a0}MB.")
    );
    assert_eq!(
        too_large_refusals(&app).await,
        refusals,
        "refused in the page: the server never saw it"
    );
    click(&ada, "[data-testid=upload-dismiss]").await;

    // On a phone, in Russian: sizes in Russian units, and the chat fits the screen.
    driver.emulate_viewport(&bob, 360, 740).await;
    set_lang(&bob, "ru").await;
    open_chat(&bob).await;
    let inside = js(
        &bob,
        &format!(
            "const r = document.querySelector('{}').getBoundingClientRect(); \
             return [r.left >= 0 && r.right <= window.innerWidth, r.width];",
            card(&shot_name)
        ),
    )
    .await;
    assert_eq!(
        inside[0],
        json!(true),
        "the file card fits a 360 px screen: {inside}"
    );
    let size_ru = js(
        &bob,
        &format!(
            "return document.querySelector('{} [data-testid=file-size]').textContent;",
            card(&shot_name)
        ),
    )
    .await;
    assert!(size_ru.as_str().unwrap().ends_with("\u{a0}КБ"), "{size_ru}");
    no_sideways_scroll(&bob, "the chat with files at 360 px").await;
    screenshot(&bob, "files-phone-ru").await;
}

/// Whether a file message named `name` is in `browser`'s chat.
async fn has_file(browser: &Client, name: &str) -> Value {
    js(
        browser,
        &format!("return !!document.querySelector('{}');", card(name)),
    )
    .await
}

/// How many uploads the server refused as too large (its metrics).
async fn too_large_refusals(app: &TestApp) -> u64 {
    refusals(app, "too_large").await
}

/// How many uploads the server refused for `reason` (its metrics).
async fn refusals(app: &TestApp, reason: &str) -> u64 {
    let label = format!("reason=\"{reason}\"");
    app.metrics()
        .await
        .lines()
        .find(|l| l.starts_with("webcall_attachment_refusals_total") && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

/// Someone without an account in a browser of their own, in `room`'s call by
/// an invite link its owner made (through the API), named `name`.
async fn join_as_guest(driver: &Driver, app: &TestApp, room: &str, name: &str) -> Client {
    let owner = app.fresh_token("ada").await;
    let made: Value = app
        .http
        .post(app.url(&format!("/api/v1/rooms/{room}/invites")))
        .bearer_auth(owner)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = made["url"].as_str().expect("an invite link").to_owned();
    let guest = driver.browser(1280, 800).await;
    guest.goto(&app.url("/static/404.html")).await.unwrap();
    js(
        &guest,
        "localStorage.setItem('webcall.lang', 'en'); return true;",
    )
    .await;
    guest.goto(&url).await.unwrap();
    eventually(
        &guest,
        "the guest landing page",
        "return document.querySelector('[data-testid=guest-form]')?.hidden === false;",
    )
    .await;
    fill(&guest, "[data-testid=guest-name]", name).await;
    click(&guest, "[data-testid=guest-submit]").await;
    click_join(&guest).await;
    guest
}
