//! Driving the web client in real browsers over WebDriver: what browser.rs,
//! engines.rs and networks.rs share (a WebDriver server with a browser of its own
//! per session, Chromium through chromedriver and Firefox through geckodriver;
//! waiting for elements and conditions, a peer's tile, and the getStats script
//! that says which candidate pair a call runs over, in both engines).
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Chromium's flags in every test: headless, fake camera and microphone that need
/// no permission prompt, nothing that phones home.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--force-prefers-reduced-motion",
];

/// Which browser a [`Driver`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Debian's `chromium` through `chromedriver` (`chromium-driver`).
    Chromium,
    /// Debian's `firefox-esr` through `geckodriver` (`cargo install geckodriver`).
    Firefox,
}

impl Engine {
    fn driver(self) -> &'static str {
        match self {
            Engine::Chromium => "chromedriver",
            Engine::Firefox => "geckodriver",
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            Engine::Chromium => "apt-get install chromium chromium-driver",
            Engine::Firefox => "apt-get install firefox-esr; cargo install geckodriver",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Engine::Chromium => "/usr/bin/chromium",
            Engine::Firefox => "/usr/bin/firefox-esr",
        }
    }
}

/// A WebDriver server (chromedriver or geckodriver) on a free loopback port; its
/// log (Firefox's console included) lands in the target directory. geckodriver
/// holds one session at a time: one driver per Firefox.
///
/// The driver leads a process group of its own, which the browsers it starts
/// join: dropping the driver (a failed test too) kills them all, so no browser
/// outlives its test.
pub struct Driver {
    child: tokio::process::Child,
    engine: Engine,
    url: String,
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: a plain syscall on the process group this driver leads.
            unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

impl Driver {
    /// `None` (after printing SKIPPED) when the driver or the browser is not
    /// installed; under `CI` that fails instead.
    pub async fn start(engine: Engine) -> Option<Self> {
        let driver = engine.driver();
        let missing = if std::process::Command::new(driver)
            .arg("--version")
            .output()
            .is_err()
        {
            Some(driver)
        } else if !std::path::Path::new(engine.binary()).exists() {
            Some(engine.binary())
        } else {
            None
        };
        if let Some(missing) = missing {
            assert!(
                std::env::var("CI").is_err(),
                "{missing} is missing: {}",
                engine.install_hint()
            );
            eprintln!(
                "SKIPPED: {missing} not installed ({})",
                engine.install_hint()
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let logs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("webdriver");
        std::fs::create_dir_all(&logs).unwrap();
        let log = std::fs::File::create(logs.join(format!("{driver}-{port}.log"))).unwrap();
        let profiles = tempfile::tempdir().unwrap();
        // The browsers (the driver's children) run at a lower priority than the
        // server under test: on this machine they share two cores with it, where
        // people's browsers run on their own machines; a starved media server
        // would measure this box, not the server.
        let mut command = tokio::process::Command::new("nice");
        command.args(["-n", "10", driver]);
        match engine {
            Engine::Chromium => {
                command.arg(format!("--port={port}"));
            }
            Engine::Firefox => {
                // Marionette's port is the system's choice (drivers run side by
                // side); the profiles geckodriver makes go where ours go.
                command
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .env("TMPDIR", profiles.path());
            }
        }
        let child = command
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("{url}/status")).await.is_ok() {
                return Some(Self {
                    child,
                    engine,
                    url,
                    profiles,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{driver} did not start");
    }

    /// Chromium's viewport set to exactly `width`×`height` CSS pixels (headless
    /// Chromium keeps its window at least 500 px wide, so a phone's 360 px needs
    /// device-metrics emulation: `Emulation.setDeviceMetricsOverride` over
    /// chromedriver's CDP endpoint). Lasts for the session, across page loads.
    pub async fn emulate_viewport(&self, browser: &Client, width: u32, height: u32) {
        let metrics =
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false});
        self.cdp(browser, "Emulation.setDeviceMetricsOverride", metrics)
            .await;
    }

    /// Runs a DevTools command in the page of `browser` (Chromium only, over
    /// chromedriver's CDP endpoint; its effect lasts for the session), e.g.
    /// `Network.emulateNetworkConditions` to slow an upload down.
    pub async fn cdp(&self, browser: &Client, cmd: &str, params: Value) -> Value {
        assert_eq!(self.engine, Engine::Chromium, "CDP is Chromium's");
        let session = browser.session_id().await.unwrap().expect("a session");
        let response = reqwest::Client::new()
            .post(format!("{}/session/{session}/goog/cdp/execute", self.url))
            .json(&json!({"cmd": cmd, "params": params}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{cmd}: {}",
            response.text().await.unwrap()
        );
        response.json::<Value>().await.unwrap()["value"].take()
    }

    /// A browser of its own (a fresh profile: separate storage, like two people).
    /// Which browser this driver runs.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub async fn browser(&self, width: u32, height: u32) -> Client {
        self.browser_with(width, height, &[]).await
    }

    /// As [`Driver::browser`], Chromium with `extra` flags; a flag named like one
    /// of [`CHROMIUM_ARGS`] (before any `=`) takes its place
    /// (`--use-fake-device-for-media-stream=device-count=2`: two fake cameras).
    pub async fn browser_with(&self, width: u32, height: u32, extra: &[&str]) -> Client {
        self.session(width, height, extra, false).await
    }

    /// A browser whose pages see a `width` × `height` viewport as on a phone.
    /// Headless Chromium's window is never narrower than 500 px, so a 360 px
    /// screen needs Chromium's mobile emulation (device metrics); Firefox gets
    /// the window size.
    pub async fn phone(&self, width: u32, height: u32) -> Client {
        self.session(width, height, &[], true).await
    }

    async fn session(&self, width: u32, height: u32, extra: &[&str], phone: bool) -> Client {
        let caps = match self.engine {
            Engine::Chromium => {
                let profile = self
                    .profiles
                    .path()
                    .join(uuid::Uuid::new_v4().simple().to_string());
                let name = |flag: &str| flag.split('=').next().unwrap_or_default().to_owned();
                let mut args: Vec<String> = CHROMIUM_ARGS
                    .iter()
                    .filter(|a| !extra.iter().any(|e| name(e) == name(a)))
                    .chain(extra)
                    .map(|a| a.to_string())
                    .collect();
                args.push(format!("--window-size={width},{height}"));
                args.push(format!("--user-data-dir={}", profile.display()));
                let mut options = json!({"binary": self.engine.binary(), "args": args});
                if phone {
                    options["mobileEmulation"] = json!({
                        "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true, "mobile": true}
                    });
                }
                json!({"browserName": "chrome", "goog:chromeOptions": options})
            }
            // geckodriver makes a fresh temporary profile for every session.
            Engine::Firefox => json!({
                "browserName": "firefox",
                "moz:firefoxOptions": {
                    "binary": self.engine.binary(),
                    "args": ["-headless", "-width", width.to_string(), "-height", height.to_string()],
                    "prefs": firefox_prefs(),
                }
            }),
        };
        let caps = caps.as_object().unwrap().clone().into_iter().collect();
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("a {:?} session: {e}", self.engine))
    }
}

/// Firefox's preferences in every test: fake camera and microphone without a
/// prompt, autoplay (media and Web Audio) allowed, a mock audio output (a
/// machine without a sound card has none), loopback and plain host
/// candidates (no mDNS names: the other browser could not resolve them), the
/// page's console on the driver's log, and nothing that phones home (no OpenH264
/// download: VP8 it is).
pub fn firefox_prefs() -> Value {
    json!({
        "media.navigator.streams.fake": true,
        "media.navigator.permission.disabled": true,
        "media.autoplay.default": 0,
        "media.autoplay.blocking_policy": 0,
        "media.autoplay.block-webaudio": false,
        // Audio output without a sound card: else every AudioContext stays suspended.
        "media.cubeb.force_mock_context": true,
        "media.peerconnection.ice.loopback": true,
        "media.peerconnection.ice.obfuscate_host_addresses": false,
        "media.gmp-manager.updateEnabled": false,
        "media.gmp-gmpopenh264.enabled": false,
        "media.gmp-gmpopenh264.autoupdate": false,
        "devtools.console.stdout.content": true,
        "browser.shell.checkDefaultBrowser": false,
        "app.update.enabled": false,
    })
}

/// Waits until the sign-in page's script has wired its forms (before that, a
/// click on Sign in would be the browser's own form submission).
pub async fn auth_ready(browser: &Client) {
    eventually(
        browser,
        "the sign-in page's script ran",
        "return document.body.dataset.ready === 'true';",
    )
    .await;
}

/// Waits (20 s at most) for an element; panics naming it if it never shows.
pub async fn css(browser: &Client, selector: &str) -> fantoccini::elements::Element {
    match find_within(browser, selector, Duration::from_secs(20)).await {
        Ok(element) => element,
        Err(e) => panic!("{selector}: {e}\npage: {}", page_state(browser).await),
    }
}

/// Where a browser is and what it shows (the address, the visible text's
/// start, the shown error messages) and the page's resources that did not
/// load (status 0: a module script among them leaves the HTML standing
/// without its script), for a failing test to say.
pub async fn page_state(browser: &Client) -> Value {
    browser
        .execute(
            "return {href: location.href, text: document.body ? document.body.innerText.slice(0, 400) : null, \
             errors: [...document.querySelectorAll('[role=alert], .form-error, .field-error')].filter((e) => !e.hidden).map((e) => e.textContent), \
             failed: performance.getEntriesByType('resource').filter((e) => e.responseStatus === 0).map((e) => e.name)};",
            vec![],
        )
        .await
        .unwrap_or_else(|e| json!(format!("(no answer: {e})")))
}

/// Waits up to `limit` for an element, returning the last error if it never
/// shows. A look-up that a page navigation aborts (a click that submits a
/// form and loads the next page) is retried, not taken as an answer: the
/// element may well be on the page that loads.
pub async fn find_within(
    browser: &Client,
    selector: &str,
    limit: Duration,
) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match browser.find(Locator::Css(selector)).await {
            Ok(element) => return Ok(element),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Where the browser tests leave their screenshots: the target directory.
const SHOTS: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/screenshots");

/// Saves what the browser shows as `screenshots/{name}.png` in the target directory.
pub async fn screenshot(browser: &Client, name: &str) {
    std::fs::create_dir_all(SHOTS).unwrap();
    let png = browser.screenshot().await.unwrap();
    std::fs::write(format!("{SHOTS}/{name}.png"), png).unwrap();
}

/// Runs a script in the page and returns its value.
pub async fn js(browser: &Client, script: &str) -> Value {
    browser.execute(script, vec![]).await.unwrap()
}

/// Clicks the element at `selector`, finding it again if the page re-rendered it
/// in between (the lobby refreshes its list every few seconds).
pub async fn click(browser: &Client, selector: &str) {
    for _ in 0..5 {
        match css(browser, selector).await.click().await {
            Ok(_) => return,
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                continue
            }
            Err(e) => panic!("click {selector}: {e}"),
        }
    }
    panic!("click {selector}: the element kept going stale");
}

/// Switches the page's language with its EN/RU switch and waits until it took.
pub async fn set_lang(browser: &Client, lang: &str) {
    click(browser, &format!("[data-lang-switch] [data-lang={lang}]")).await;
    eventually(
        browser,
        "the language switched",
        &format!("return document.documentElement.lang === '{lang}';"),
    )
    .await;
}

/// No element of the page reaches past the right edge of the window.
pub async fn no_sideways_scroll(browser: &Client, what: &str) {
    let overflow = js(
        browser,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    )
    .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "{what}: the page is {overflow} px wider than the window"
    );
}

/// Polls a JS expression until it is truthy (20 s at most), returning its value.
pub async fn eventually(browser: &Client, what: &str, script: &str) -> Value {
    for _ in 0..100 {
        let value = browser.execute(script, vec![]).await.unwrap();
        if !(value.is_null() || value == json!(false) || value == json!("")) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("never true: {what}\npage: {}", page_state(browser).await);
}

/// Types `text` into the field at `selector` once it is shown (a page's script
/// may still be revealing its form when the page has loaded; seen on a loaded
/// CI machine as "element not interactable").
pub async fn fill(browser: &Client, selector: &str, text: &str) {
    let field = css(browser, selector).await;
    for _ in 0..100 {
        if field.is_displayed().await.unwrap_or(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Opens a room's address (`/r/{room}`, any query kept) and joins its call as a
/// person does: the pre-join screen comes up, Join is clicked, the call view shows.
pub async fn join_call(browser: &Client, url: &str) {
    browser.goto(url).await.unwrap();
    click_join(browser).await;
}

/// On the pre-join screen already shown: clicks Join once it can be clicked and
/// waits for the call view.
pub async fn click_join(browser: &Client) {
    let join = css(
        browser,
        "[data-testid=prejoin]:not([hidden]) [data-testid=prejoin-join]",
    )
    .await;
    // As a person does, once the screen has settled: the camera has answered
    // (its "asking" line goes then, and everything below it moves up) and Join
    // stays where it is between two looks. A click aimed while the button was
    // moving landed beside it: Join was never pressed (seen in CI as a first
    // join that never showed the call view).
    for _ in 0..100 {
        if browser
            .execute(JOIN_SETTLED, vec![])
            .await
            .is_ok_and(|settled| settled == json!(true))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    join.click().await.unwrap();
    if let Err(e) = find_within(
        browser,
        "[data-testid=call-view]:not([hidden])",
        Duration::from_secs(20),
    )
    .await
    {
        // What the person would see, to tell a slow camera from a lost socket.
        let page = js(browser, PAGE_STATE).await;
        panic!("Join clicked, no call view after 20 s ({e}); the page: {page}");
    }
}

/// In the page: Join shown, enabled, the camera no longer being asked for,
/// and the button where it was at the previous look.
const JOIN_SETTLED: &str = "const b = document.querySelector('[data-testid=prejoin]:not([hidden]) [data-testid=prejoin-join]'); \
    const s = document.querySelector('[data-testid=prejoin-media-state]'); \
    if (!b || b.disabled || b.offsetParent === null) return false; \
    if (s && s.dataset.state === 'asking') return false; \
    const r = b.getBoundingClientRect(); const at = [r.x, r.y, r.width, r.height].join(); \
    const still = window.__joinAt === at; window.__joinAt = at; return still;";

/// In the page: where it is and what it shows (the views, the pre-join's
/// media state and button, any notice), for a failure message.
const PAGE_STATE: &str = "const q = (s) => document.querySelector(s);     const shown = (s) => { const e = q(s); return !!e && !e.hidden && e.offsetParent !== null; };     return { href: location.pathname + location.search,       prejoin: shown('[data-testid=prejoin]'), call: shown('[data-testid=call-view]'),       media: q('[data-testid=prejoin-media-state]')?.dataset.state ?? null,       join_disabled: q('[data-testid=prejoin-join]')?.disabled ?? null,       notices: [...document.querySelectorAll('[role=alert], [role=status], .toast, .notice')]         .filter((e) => !e.hidden && e.textContent.trim()).map((e) => e.textContent.trim().slice(0, 200)) };";

/// The remote tile of `username` in `browser`, once it exists.
pub async fn tile_of(browser: &Client, username: &str) -> String {
    let script = format!(
        "const t = document.querySelector('[data-testid=remote-tile][data-username=\"{username}\"]'); \
         return t && t.querySelector('[data-testid=peer-name]').textContent.includes('{username}') && t.dataset.peerId;"
    );
    eventually(browser, &format!("a tile for {username}"), &script)
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// The call with `peer` (`null`: a routed call's connection to the server) as
/// getStats sees it (Chromium: the transport's selected
/// pair; Firefox: the `selected` succeeded pair): the selected candidate pair's local
/// and remote candidate types (`local`, `remote`), the local candidate's
/// `relayProtocol` (udp/tcp/tls, relay candidates only) and `protocol` (the
/// transport between the candidates), both addresses, and the video frames
/// decoded from that peer (`frames`).
pub const CALL_PATH: &str = r#"
const [peer, done] = arguments;
// peer null: the routed call's one connection to the server.
const pc = peer === null ? window.webcall.routedPc() : window.webcall.pc(peer);
if (!pc) { done({error: 'no connection yet'}); return; }
pc.getStats().then((report) => {
  let pair = null, frames = 0;
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
  });
  // Firefox has no transport stats: its pair in use says `selected` (non-standard).
  if (!pair) report.forEach((s) => { if (s.type === 'candidate-pair' && s.selected && s.state === 'succeeded') pair = s; });
  if (!pair) report.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  const local = pair && byId.get(pair.localCandidateId);
  const remote = pair && byId.get(pair.remoteCandidateId);
  done({
    local: local && local.candidateType, remote: remote && remote.candidateType, frames,
    relayProtocol: local && local.relayProtocol, protocol: local && local.protocol,
    localAddress: local && `${local.address}:${local.port}`,
    remoteAddress: remote && `${remote.address}:${remote.port}`,
  });
}).catch((e) => done({error: String(e)}));
"#;

/// Polls [`CALL_PATH`] for `peer` (30 s at most) until `wanted` holds for it;
/// `Err` with what was seen last otherwise.
pub async fn call_path(
    browser: &Client,
    peer: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Value, Value> {
    polled_path(browser, json!(peer), wanted).await
}

/// [`call_path`] of a routed call: its one connection to the server, with the
/// video decoded from everyone over it.
pub async fn routed_path(
    browser: &Client,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Value, Value> {
    polled_path(browser, Value::Null, wanted).await
}

async fn polled_path(
    browser: &Client,
    peer: Value,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Value, Value> {
    let mut last = Value::Null;
    for _ in 0..60 {
        last = browser
            .execute_async(CALL_PATH, vec![peer.clone()])
            .await
            .unwrap();
        if wanted(&last) {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}

/// Video frames were decoded from the peer.
pub fn decoding(path: &Value) -> bool {
    path["frames"].as_u64().unwrap_or(0) > 0
}

/// Opens the connection check at `url` and waits for it to finish: each row's
/// state (`direct`, `udp`, `tcp`, `tls`: ok, warn or fail), and the summary's
/// text (`summary`) and message key (`summary_key`).
pub async fn connection_check(browser: &Client, url: &str) -> Value {
    browser.goto(url).await.unwrap();
    eventually(
        browser,
        "the check finished",
        "return document.body.dataset.checked === 'true';",
    )
    .await;
    browser
        .execute(
            "const state = (id) => document.querySelector(`[data-testid=check-${id}]`).dataset.state; \
             const summary = document.querySelector('[data-testid=check-summary]'); \
             return {direct: state('direct'), udp: state('udp'), tcp: state('tcp'), tls: state('tls'), \
                     summary: summary.textContent, summary_key: summary.dataset.i18n};",
            vec![],
        )
        .await
        .unwrap()
}
