//! What sfu_browser.rs and recording_browser.rs share: a server whose calls
//! may go through it (SFU on a free UDP port, recordings in a temporary
//! directory), people signed in in their browsers, and the page scripts that
//! say which mode a call is in and whether every other person's video is
//! decoded and moving.
//!
//! Chromium gathers no host candidates on loopback, so the server's media
//! candidate must be an address of a real interface of this machine
//! (`SFU_PUBLIC_IP`), found with `ip -4 -o addr show scope global`. A machine
//! with none runs the calls through the embedded relay instead
//! (`forceRelay=1`: the relay may reach the server's own loopback candidate).
#![allow(dead_code)]

use std::time::Duration;

use fantoccini::Client;
use serde_json::{json, Value};

use crate::support::{spawn_app, TestApp};
use crate::webclient::{click, eventually, js, Driver, Engine};

/// A small moving camera picture for Chromium (640×360, 10 frames a second,
/// made once with ffmpeg's test pattern), in place of the fake device's
/// 1280×720 at 30: each browser encodes and draws less, so six or seven of
/// them share this machine's two cores with the server. `None` without ffmpeg.
fn small_camera() -> Option<&'static str> {
    static FILE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("routed-camera.y4m");
        let made = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=640x360:rate=10")
            .args(["-t", "2", "-pix_fmt", "yuv420p"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        made.then(|| path.display().to_string())
    })
    .as_deref()
}

/// A browser for a routed call: Chromium with the [`small_camera`] when
/// there is one; Firefox's own fake camera is small already.
pub async fn routed_browser(driver: &Driver) -> Client {
    match (driver.engine(), small_camera()) {
        (Engine::Chromium, Some(file)) => {
            let flag = format!("--use-file-for-fake-video-capture={file}");
            driver.browser_with(800, 600, &[flag.as_str()]).await
        }
        _ => driver.browser(800, 600).await,
    }
}

/// A server for routed calls and where it writes its recordings.
pub struct RoutedApp {
    pub app: TestApp,
    pub recordings: tempfile::TempDir,
    /// The query every room address gets (`?forceRelay=1` without a usable interface).
    pub query: &'static str,
}

impl RoutedApp {
    /// `/r/{room}` with the query the calls need here.
    pub fn room_url(&self, room: &str) -> String {
        self.app.url(&format!("/r/{room}{}", self.query))
    }
}

/// The first IPv4 address of a non-loopback interface of this machine, if any.
pub fn machine_address() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            let addr = words.next()?.split('/').next()?;
            addr.parse::<std::net::Ipv4Addr>()
                .ok()
                .filter(|a| !a.is_loopback())
                .map(|a| a.to_string())
        })
}

/// Starts the server with routed calls from `from_peers` people on
/// (`SFU_FROM_PEERS`; "0": only when a host asks or a recording starts).
pub async fn routed_app(from_peers: &str) -> RoutedApp {
    let recordings = tempfile::tempdir().unwrap();
    let dir = recordings.path().display().to_string();
    let address = machine_address();
    let mut vars = vec![
        ("SFU_ENABLED", "true"),
        ("SFU_UDP_PORT", "0"),
        ("SFU_FROM_PEERS", from_peers),
        ("RECORDING_DIR", dir.as_str()),
    ];
    if let Some(address) = address.as_deref() {
        vars.push(("SFU_PUBLIC_IP", address));
    }
    // RUST_LOG=webcall_sfu=debug shows every session's state each 5 s.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let app = spawn_app(&vars).await;
    eprintln!(
        "routed calls: server media candidate {}",
        address.as_deref().unwrap_or("127.0.0.1 through the relay")
    );
    RoutedApp {
        app,
        recordings,
        query: if address.is_some() {
            ""
        } else {
            "?forceRelay=1"
        },
    }
}

/// Signs `user` in (a fresh account, English), on the server's origin; returns their token.
pub async fn sign_in(browser: &Client, app: &TestApp, user: &str) -> String {
    let token = app.user_token(user).await;
    browser.goto(&app.url("/static/auth.html")).await.unwrap();
    browser
        .execute(
            "localStorage.setItem('webcall.token', arguments[0]); localStorage.setItem('webcall.token_exp', String(Date.now() + 3600e3)); localStorage.setItem('webcall.lang', 'en'); return true;",
            vec![json!(token)],
        )
        .await
        .unwrap();
    token
}

/// The call's mode as the page holds it and as its badge shows it:
/// `{mode, badge, title}`.
pub async fn mode_of(browser: &Client) -> Value {
    js(
        browser,
        "const b = document.querySelector('[data-testid=media-mode]'); \
         return { mode: window.webcall.mediaMode(), badge: b && b.dataset.mode, title: b && b.title };",
    )
    .await
}

/// Waits until the page's call is in `mode` ('mesh' or 'sfu') and its badge says so.
pub async fn in_mode(browser: &Client, who: &str, mode: &str) {
    eventually(
        browser,
        &format!("{who}'s call in {mode} mode, its badge saying so"),
        &format!(
            "const b = document.querySelector('[data-testid=media-mode]'); \
             return window.webcall.mediaMode() === '{mode}' && !!b && b.dataset.mode === '{mode}' && b.offsetParent !== null;"
        ),
    )
    .await;
}

/// In the page: for each name in `arguments[0]`, that person's tile's video:
/// its width and how many frames it has shown (the larger of
/// getVideoPlaybackQuality's count and a requestVideoFrameCallback counter
/// this script installs where the browser has it).
const VIDEO_OF: &str = r#"
const [names] = arguments;
const out = {};
for (const n of names) {
  const t = [...document.querySelectorAll('[data-testid=remote-tile]')].find((x) => x.dataset.username === n);
  const v = t && t.querySelector('video');
  if (!v) { out[n] = null; continue; }
  if (v.requestVideoFrameCallback && !v.__counting) {
    v.__counting = true; v.__frames = 0;
    const tick = () => { v.__frames += 1; v.requestVideoFrameCallback(tick); };
    v.requestVideoFrameCallback(tick);
  }
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  out[n] = { width: v.videoWidth, height: v.videoHeight, frames: Math.max(q || 0, v.__frames || 0) };
}
return out;
"#;

/// Each remote tile as the page has it: on the stage or not, and its video's tracks.
const TILES_STATE: &str = r#"
return [...document.querySelectorAll('[data-testid=remote-tile]')].map((t) => {
  const v = t.querySelector('video');
  const tracks = v && v.srcObject ? v.srcObject.getTracks().map((x) => `${x.kind}:${x.readyState}:${x.muted ? 'muted' : 'live'}`) : null;
  return { user: t.dataset.username, offstage: t.dataset.offstage, tracks };
}).concat([(() => {
  const pc = window.webcall.routedPc();
  if (!pc) return { routed: null };
  return { signaling: pc.signalingState, connection: pc.connectionState,
    transceivers: pc.getTransceivers().map((x) => `${x.mid}:${x.direction}/${x.currentDirection}:${x.receiver.track.kind}:${x.receiver.track.muted ? 'muted' : 'live'}`),
    forwarded: window.webcall.forwarded(), view: window.webcall.view(), problems: window.webcall.routedProblems() };
})()]);
"#;

async fn videos(browser: &Client, names: &[&str]) -> Value {
    browser.execute(VIDEO_OF, vec![json!(names)]).await.unwrap()
}

/// Waits (60 s at most) until `who` decodes the video of everyone in
/// `others`: each one's tile has a picture (videoWidth > 0) and its frame count
/// moves on after that. Panics naming who is missing.
pub async fn decodes_everyone(browser: &Client, who: &str, others: &[&str]) {
    let mut first: Option<Value> = None;
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        last = videos(browser, others).await;
        let pictured = others
            .iter()
            .all(|n| last[*n]["width"].as_u64().unwrap_or(0) > 0);
        if pictured {
            match &first {
                None => first = Some(last.clone()),
                Some(before) => {
                    let moving = others.iter().all(|n| {
                        last[*n]["frames"].as_u64().unwrap_or(0)
                            > before[*n]["frames"].as_u64().unwrap_or(0)
                    });
                    if moving {
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let tiles = js(browser, TILES_STATE).await;
    panic!("{who} does not decode everyone's video: first {first:?}, last {last}; tiles: {tiles}");
}

/// Opens the participant list (where a host's buttons are) unless it is open.
pub async fn open_people(browser: &Client) {
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

/// The page's peer id and whether its call view shows.
pub async fn still_in_call(browser: &Client) -> (String, bool) {
    let v = js(
        browser,
        "return [window.webcall.peerId, !document.querySelector('[data-testid=call-view]').hidden];",
    )
    .await;
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_bool().unwrap_or(false),
    )
}
