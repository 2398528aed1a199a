//! Driving the web client in Chromium over WebDriver: what browser.rs and
//! networks.rs share (waiting for elements and conditions, a peer's tile, and the
//! getStats script that says which candidate pair a call runs over).
#![allow(dead_code)]

use std::time::Duration;

use fantoccini::{Client, Locator};
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
];

pub async fn css(browser: &Client, selector: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
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
    panic!("never true: {what}");
}

pub async fn fill(browser: &Client, selector: &str, text: &str) {
    let field = css(browser, selector).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

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

/// The call with `peer` as getStats sees it: the selected candidate pair's local
/// and remote candidate types (`local`, `remote`), the local candidate's
/// `relayProtocol` (udp/tcp/tls, relay candidates only) and `protocol` (the
/// transport between the candidates), both addresses, and the video frames
/// decoded from that peer (`frames`).
pub const CALL_PATH: &str = r#"
const [peer, done] = arguments;
window.webcall.stats(peer).then((report) => {
  let pair = null, frames = 0;
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
  });
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
    let mut last = Value::Null;
    for _ in 0..60 {
        last = browser
            .execute_async(CALL_PATH, vec![json!(peer)])
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
