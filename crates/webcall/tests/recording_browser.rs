//! Recording a call in real headless Chromium against the real server: the
//! room's owner routes a two-person call through the server, starts a
//! recording from their bar in the participant list; both see the red REC
//! mark naming who started it, and the other person is asked to stay or leave
//! (and stays). About six seconds later the owner stops it; the recording is
//! listed over REST and in the owner's Recordings dialog with one WebM file per
//! person, and `ffprobe` reads each downloaded file as Opus + VP8 lasting six
//! seconds, give or take one.
//!
//! Needs `ffprobe` (ffmpeg) and Chromium; a missing one prints SKIPPED (fails
//! under `CI`). See routed/mod.rs for the server's media address.

mod routed;
mod support;
mod webclient;

use std::time::Duration;

use routed::{decodes_everyone, in_mode, open_people, routed_app, sign_in};
use serde_json::{json, Value};
use webclient::{click, css, eventually, join_call, js, screenshot, tile_of, Driver, Engine};

/// How long the test lets the recording run.
const RECORDED: Duration = Duration::from_secs(6);

fn ffprobe_installed() -> bool {
    let there = std::process::Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok();
    if !there {
        assert!(
            std::env::var("CI").is_err(),
            "ffprobe is missing: apt-get install ffmpeg"
        );
        eprintln!("SKIPPED: ffprobe not installed (apt-get install ffmpeg)");
    }
    there
}

/// ffprobe's reading of `file`: the codec of each stream and the duration in seconds.
fn probe(file: &std::path::Path) -> (Vec<String>, f64) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut codecs: Vec<String> = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["codec_name"].as_str().map(str::to_owned))
        .collect();
    codecs.sort();
    let duration = report["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {report}"));
    (codecs, duration)
}

#[tokio::test]
async fn a_recorded_call_gives_a_webm_per_person_that_ffprobe_reads() {
    if !ffprobe_installed() {
        return;
    }
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    // Never routed by size: the owner asks.
    let routed = routed_app("0").await;
    let app = &routed.app;
    let ada = driver.browser(1100, 760).await;
    let bob = driver.browser(1100, 760).await;
    let ada_token = sign_in(&ada, app, "ada").await;
    sign_in(&bob, app, "bob").await;
    join_call(&ada, &routed.room_url("rec")).await; // the first to join owns the room
    join_call(&bob, &routed.room_url("rec")).await;
    tile_of(&ada, "bob").await;
    tile_of(&bob, "ada").await;
    in_mode(&ada, "ada", "mesh").await;

    // The owner routes the call through the server, then records it.
    open_people(&ada).await;
    css(&ada, "[data-testid=media-mode-toggle]:not([hidden])").await;
    click(&ada, "[data-testid=media-mode-toggle]").await;
    in_mode(&ada, "ada", "sfu").await;
    in_mode(&bob, "bob", "sfu").await;
    decodes_everyone(&ada, "ada", &["bob"]).await;
    decodes_everyone(&bob, "bob", &["ada"]).await;
    assert_eq!(
        js(
            &bob,
            "return document.querySelector('[data-testid=record-toggle]').hidden;"
        )
        .await,
        json!(true),
        "bob is no host: no Record button"
    );
    click(&ada, "[data-testid=record-toggle]").await;
    click(&ada, "[data-testid=confirm-ok]").await; // "Record this call?"
                                                   // The recording begins after this click and before ada sees REC; it ends after the stop
                                                   // click and before REC goes away. A file lasts between those bounds (give or take a
                                                   // frame interval each end), however slow the machine is to pass the messages along.
    let asked_to_start = tokio::time::Instant::now();
    let mut seen_started = None;

    // Everyone sees REC with who started it; bob is asked and stays.
    for (who, browser) in [("ada", &ada), ("bob", &bob)] {
        let mark = eventually(
            browser,
            &format!("{who} sees the REC mark"),
            "const m = document.querySelector('[data-testid=rec-mark]'); return !!m && !m.hidden && m.offsetParent !== null && m.title;",
        )
        .await;
        assert!(mark.as_str().unwrap().contains("ada"), "{who}: {mark}");
        seen_started.get_or_insert_with(tokio::time::Instant::now);
    }
    let seen_started = seen_started.unwrap();
    let asked = eventually(
        &bob,
        "bob is asked to stay or leave",
        "const d = document.querySelector('[data-testid=rec-consent]'); return !!d && d.open && d.textContent;",
    )
    .await;
    assert!(asked.as_str().unwrap().contains("ada"), "{asked}");
    assert!(
        js(
            &bob,
            "return !!document.querySelector('[data-testid=rec-consent] [data-testid=rec-leave]');"
        )
        .await
            == json!(true),
        "bob may leave instead"
    );
    screenshot(&bob, "recording-consent").await;
    click(&bob, "[data-testid=rec-ack]").await;
    assert_eq!(
        js(
            &ada,
            "return !!document.querySelector('[data-testid=rec-consent]');"
        )
        .await,
        json!(false),
        "who started it is not asked"
    );
    screenshot(&ada, "recording-running").await;

    tokio::time::sleep_until(seen_started + RECORDED).await;
    let asked_to_stop = tokio::time::Instant::now();
    click(&ada, "[data-testid=record-toggle]").await; // "Stop recording"
    for (who, browser) in [("ada", &ada), ("bob", &bob)] {
        eventually(
            browser,
            &format!("{who}'s REC mark gone"),
            "return document.querySelector('[data-testid=rec-mark]').hidden;",
        )
        .await;
    }
    let seen_stopped = tokio::time::Instant::now();
    let shortest = (asked_to_stop - seen_started).as_secs_f64() - 0.5;
    let longest = (seen_stopped - asked_to_start).as_secs_f64() + 0.5;

    // Listed over REST once finished, one file per person.
    let mut listed = Value::Null;
    for _ in 0..100 {
        let response = app
            .get_authed("/api/v1/rooms/rec/recordings", &ada_token)
            .await;
        assert_eq!(response.status(), 200);
        listed = response.json().await.unwrap();
        if listed["recordings"][0]["ended_at"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recording = &listed["recordings"][0];
    assert!(recording["ended_at"].is_string(), "finished: {listed}");
    assert_eq!(recording["started_by"], "ada", "{listed}");
    let id = recording["id"].as_str().unwrap().to_owned();
    let mut names: Vec<String> = recording["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .filter(|n| n.ends_with(".webm"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "a file per person: {listed}");
    assert!(
        names[0].starts_with("ada-") && names[1].starts_with("bob-"),
        "{names:?}"
    );

    // The owner's Recordings dialog lists the same files.
    click(&ada, "[data-testid=recordings-open]").await;
    let shown = eventually(
        &ada,
        "the recordings listed in ada's dialog",
        "const links = [...document.querySelectorAll('[data-testid=recordings-dialog] [data-testid=recording-file]')]; \
         return links.length >= 2 && links.map((a) => a.dataset.name).sort();",
    )
    .await;
    assert_eq!(shown, json!(names), "the dialog lists the files");
    screenshot(&ada, "recording-list").await;

    // Each file downloads (the link's ?token= form) and ffprobe reads Opus + VP8, lasting as long as the recording ran.
    let dir = tempfile::tempdir().unwrap();
    for name in &names {
        let response = app
            .http
            .get(app.url(&format!(
                "/api/v1/rooms/rec/recordings/{id}/files/{name}?token={ada_token}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let path = dir.path().join(name);
        std::fs::write(&path, response.bytes().await.unwrap()).unwrap();
        let (codecs, duration) = probe(&path);
        assert_eq!(codecs, ["opus", "vp8"], "{name}");
        assert!(
            (shortest..=longest).contains(&duration),
            "{name} lasts {duration} s, not between {shortest:.2} and {longest:.2} s"
        );
        eprintln!("{name}: {codecs:?}, {duration} s");
    }

    ada.close().await.unwrap();
    bob.close().await.unwrap();
    routed.app.stop().await;
}
