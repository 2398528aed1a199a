//! Recordings through the real server: a real recording (real Opus and VP8
//! frames from ffmpeg, written by the `DiskRecorder` into the server's
//! `RECORDING_DIR`) listed, downloaded (whole, by range, with the safe
//! download headers) and deleted by the room's owner or an admin; anyone
//! else refused, unknown or crafted ids and names not found.

mod support;

#[path = "../../webcall-record/tests/support/media.rs"]
mod media;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{error_of, spawn_app, TestApp};
use webcall_domain::media::{Recorder, RecordingId};
use webcall_domain::signaling::{PeerId, RoomName};
use webcall_record::DiskRecorder;

/// A finished two-person recording of `room` in `dir`; `None` without ffmpeg.
fn record(dir: &Path, work: &Path, room: &str) -> Option<RecordingId> {
    let media = media::make(work, 3)?;
    let recorder = DiskRecorder::new(dir.to_owned()).unwrap();
    let id = RecordingId::new_random();
    let mut recording = recorder
        .start(&RoomName::parse(room).unwrap(), &id, "olive")
        .unwrap();
    let people = [
        media::Participant {
            peer: PeerId::from_client("0123456789abcdef"),
            username: "olive".into(),
            offset: Duration::ZERO,
            screen: false,
            video: true,
        },
        media::Participant {
            peer: PeerId::from_client("fedcba9876543210"),
            username: "mallory".into(),
            offset: Duration::from_millis(250),
            screen: false,
            video: true,
        },
    ];
    media::feed(recording.as_mut(), &media, &people, None);
    recording.finish();
    Some(id)
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn owners_and_admins_list_download_and_delete_recordings_others_may_not() {
    let recordings = tempfile::tempdir().unwrap();
    let dir = recordings.path().join("rec");
    let app = spawn_app(&[("RECORDING_DIR", dir.to_str().unwrap())]).await;
    let admin = app.user_token("root").await;
    let owner = app.user_token("olive").await;
    let member = app.user_token("mallory").await;
    assert_eq!(app.create_room(&owner, "standup").await.status(), 201);
    let Some(id) = record(&dir, recordings.path(), "standup") else {
        return;
    };
    let list_path = "/api/v1/rooms/standup/recordings";

    // The owner's list: the recording, its two files and their sizes.
    let response = get(&app, list_path, Some(&owner)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let listed = body["recordings"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["room"], "standup");
    assert_eq!(listed[0]["started_by"], "olive");
    assert!(listed[0]["started_at"].is_string());
    assert!(listed[0]["ended_at"].is_string());
    let files = listed[0]["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "olive-0123456789abcdef.webm",
            "mallory-fedcba9876543210.webm"
        ]
    );
    let on_disk = std::fs::read(dir.join("standup").join(id.as_str()).join(names[0])).unwrap();
    assert_eq!(files[0]["bytes"], on_disk.len());
    // An admin is a host of every room.
    assert_eq!(get(&app, list_path, Some(&admin)).await.status(), 200);

    // The download: the same bytes, as an attachment the browser never runs.
    let file_path = format!("/api/v1/rooms/standup/recordings/{id}/files/{}", names[0]);
    let response = get(&app, &file_path, Some(&owner)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "video/webm");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"olive-0123456789abcdef.webm\"; filename*=UTF-8''olive-0123456789abcdef.webm"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(
        headers["content-length"],
        on_disk.len().to_string().as_str()
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), on_disk.as_slice());
    // A link with ?token= (a download or a <video src>) works the same.
    let response = app
        .http
        .get(app.url(&file_path))
        .query(&[("token", &owner)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), on_disk.as_slice());
    // Ranges.
    let response = app
        .http
        .get(app.url(&file_path))
        .bearer_auth(&owner)
        .header("range", "bytes=100-1123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes 100-1123/{}", on_disk.len()).as_str()
    );
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        &on_disk[100..1124]
    );
    let response = app
        .http
        .get(app.url(&file_path))
        .bearer_auth(&owner)
        .header("range", format!("bytes={}-", on_disk.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);

    // Another member of the call is not a host; no token, no answer.
    let delete_path = format!("/api/v1/rooms/standup/recordings/{id}");
    for (status, code) in [
        (get(&app, list_path, Some(&member)).await, "not_room_owner"),
        (get(&app, &file_path, Some(&member)).await, "not_room_owner"),
        (
            app.delete_authed(&delete_path, &member).await,
            "not_room_owner",
        ),
        (get(&app, list_path, None).await, "token_missing"),
        (get(&app, &file_path, None).await, "token_missing"),
        (
            app.http.delete(app.url(&delete_path)).send().await.unwrap(),
            "token_missing",
        ),
        (
            get(&app, list_path, Some("not-a-token")).await,
            "token_invalid",
        ),
    ] {
        let (status, got, _) = error_of(status).await;
        assert_eq!(got, code);
        assert_eq!(status, if code.starts_with("token") { 401 } else { 403 });
    }

    // Unknown rooms, recordings and files; names that try to leave the
    // recording's directory.
    let other = RecordingId::new_random();
    for path in [
        format!(
            "/api/v1/rooms/standup/recordings/{other}/files/{}",
            names[0]
        ),
        format!(
            "/api/v1/rooms/standup/recordings/not-an-id/files/{}",
            names[0]
        ),
        format!("/api/v1/rooms/standup/recordings/{id}/files/nobody.webm"),
        format!("/api/v1/rooms/standup/recordings/{id}/files/manifest.json"),
        format!("/api/v1/rooms/standup/recordings/{id}/files/..%2Fmanifest.json"),
        format!("/api/v1/rooms/standup/recordings/{id}/files/..%2F..%2F..%2Fwebcall.db"),
        format!("/api/v1/rooms/standup/recordings/{id}/files/%2Fetc%2Fpasswd"),
    ] {
        let (status, code, _) = error_of(get(&app, &path, Some(&owner)).await).await;
        assert_eq!(
            (status, code.as_str()),
            (404, "recording_not_found"),
            "{path}"
        );
    }
    // The client makes `%2E%2E` a `..` and drops it: no route at all.
    let dots = format!("/api/v1/rooms/standup/recordings/{id}/files/%2E%2E");
    assert_eq!(get(&app, &dots, Some(&owner)).await.status(), 404);
    let (status, code, _) =
        error_of(get(&app, "/api/v1/rooms/nowhere/recordings", Some(&owner)).await).await;
    assert_eq!((status, code.as_str()), (404, "room_not_found"));
    let (status, code, _) = error_of(
        app.delete_authed(&format!("/api/v1/rooms/standup/recordings/{other}"), &owner)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "recording_not_found"));

    // Deleted: gone from the list, the disk and the downloads.
    let response = app.delete_authed(&delete_path, &owner).await;
    assert_eq!(response.status(), 204);
    assert!(!dir.join("standup").join(id.as_str()).exists());
    let body: Value = get(&app, list_path, Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["recordings"], serde_json::json!([]));
    let (status, _, _) = error_of(get(&app, &file_path, Some(&owner)).await).await;
    assert_eq!(status, 404);
    let (status, _, _) = error_of(app.delete_authed(&delete_path, &owner).await).await;
    assert_eq!(status, 404);
    app.stop().await;
}
