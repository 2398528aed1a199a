//! Files in a room's chat through the real server, with real files on disk
//! (`ATTACHMENT_DIR` beside the test's SQLite file): upload and download by
//! members with every header the contract promises, who may not, ranges,
//! previews of a real PNG, the file's message live and in the history, what
//! an interrupted upload leaves (nothing), the limits, deletion, a deleted
//! room's files, retention, and names made harmless.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{error_of, spawn_app, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes that are not all alike, `len` of them.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

async fn upload(
    app: &TestApp,
    token: &str,
    room: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v1/rooms/{room}/attachments")))
        .query(&[("name", name)])
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

/// Uploads and returns the message's frame.
async fn shared(app: &TestApp, token: &str, room: &str, name: &str, bytes: Vec<u8>) -> Value {
    let response = upload(app, token, room, name, "application/octet-stream", bytes).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["message"].clone()
}

fn file_url(room: &str, id: &Value) -> String {
    format!("/api/v1/rooms/{room}/attachments/{}", id.as_str().unwrap())
}

fn dir(app: &TestApp) -> PathBuf {
    app.data_dir.join("attachments")
}

/// The committed files in the attachments directory, and the unfinished ones.
fn stored(dir: &Path) -> (Vec<String>, Vec<String>) {
    let names = |path: PathBuf| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    (names(dir.to_owned()), names(dir.join(".partial")))
}

async fn history(app: &TestApp, token: &str, room: &str) -> Vec<Value> {
    let page: Value = app
        .get_authed(&format!("/api/v1/rooms/{room}/messages"), token)
        .await
        .json()
        .await
        .unwrap();
    page["messages"].as_array().unwrap().clone()
}

/// Until `check` holds (the server notices a dropped connection when it
/// next reads), or panics after a while.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

/// Sends an upload's request line and headers, and `body` of it, on a raw
/// connection (the body may be shorter than `declared`).
async fn raw_upload(
    app: &TestApp,
    token: &str,
    room: &str,
    declared: usize,
    body: &[u8],
) -> tokio::net::TcpStream {
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/rooms/{room}/attachments?name=raw.bin HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {declared}\r\n\r\n",
        app.addr
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body).await.unwrap();
    tcp.flush().await.unwrap();
    tcp
}

#[tokio::test]
async fn a_member_uploads_and_another_downloads_the_same_bytes_with_every_header() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    let (mut bobs_call, _) = app.join("team", &bob).await;

    let bytes = content(300_000);
    let response = upload(
        &app,
        &ada,
        "team",
        "slides.pdf",
        "application/pdf",
        bytes.clone(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let message = &body["message"];
    assert_eq!(message["type"], "chat");
    assert_eq!(message["text"], "");
    assert_eq!(message["username"], "ada");
    assert_eq!(message["from"], "");
    let file = &message["attachment"];
    assert_eq!(file["name"], "slides.pdf");
    assert_eq!(file["size"], 300_000);
    assert_eq!(file["type"], "application/pdf");
    assert_eq!(file["thumbnail"], Value::Null);
    assert_eq!(file["id"].as_str().unwrap().len(), 32);

    // Live, to the peer in the call.
    let live = bobs_call.recv_type("chat").await;
    assert_eq!(&live, message);

    let url = file_url("team", &file["id"]);
    let got = app.get_authed(&url, &bob).await;
    assert_eq!(got.status(), 200);
    let headers = got.headers().clone();
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "application/pdf");
    assert_eq!(
        header("content-disposition"),
        "attachment; filename=\"slides.pdf\"; filename*=UTF-8''slides.pdf"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("content-security-policy"), "sandbox");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("cache-control"), "private, max-age=3600");
    assert_eq!(header("accept-ranges"), "bytes");
    assert_eq!(header("content-length"), "300000");
    let sha = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(header("etag"), format!("\"{sha}\""));
    let downloaded = got.bytes().await.unwrap();
    assert_eq!(format!("{:x}", Sha256::digest(&downloaded)), sha);
    assert_eq!(downloaded.as_ref(), bytes.as_slice());

    // `?token=` for links and <img src>; no token at all is 401.
    let linked = app
        .http
        .get(app.url(&format!("{url}?token={bob}")))
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), 200);
    assert_eq!(linked.bytes().await.unwrap().len(), 300_000);
    let anonymous = app.http.get(app.url(&url)).send().await.unwrap();
    assert_eq!(
        error_of(anonymous).await,
        (401, "token_missing".into(), None)
    );

    // In the history and in a later joiner's welcome.
    let messages = history(&app, &bob, "team").await;
    assert_eq!(messages.last(), Some(message));
    let cyd = app.user_token("cyd").await;
    let (_, welcome) = app.join("team", &cyd).await;
    assert_eq!(welcome["chat"].as_array().unwrap().last(), Some(message));

    // On disk under its id, nothing unfinished.
    assert_eq!(
        stored(&dir(&app)),
        (vec![file["id"].as_str().unwrap().to_owned()], vec![])
    );
    let metrics = app.metrics().await;
    for series in [
        "webcall_attachment_uploads_total",
        "webcall_attachment_upload_bytes_total",
        "webcall_attachment_refusals_total{reason=\"too_large\"}",
    ] {
        assert!(metrics.contains(series), "{series}");
    }
    app.stop().await;
}

#[tokio::test]
async fn strangers_are_refused_and_guests_may_download_but_not_upload() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    let eve = app.user_token("eve").await;
    let created = app
        .http
        .post(app.url("/api/v1/rooms"))
        .bearer_auth(&ada)
        .json(&json!({"name": "secret", "access": "private"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let message = shared(&app, &ada, "secret", "plan.txt", b"the plan".to_vec()).await;
    let url = file_url("secret", &message["attachment"]["id"]);

    assert_eq!(
        error_of(app.get_authed(&url, &eve).await).await.0,
        403,
        "a private room's non-member"
    );
    let refused = upload(&app, &eve, "secret", "x.txt", "text/plain", b"x".to_vec()).await;
    assert_eq!(error_of(refused).await, (403, "room_private".into(), None));
    let nowhere = upload(&app, &ada, "nowhere", "x.txt", "text/plain", b"x".to_vec()).await;
    assert_eq!(
        error_of(nowhere).await,
        (404, "room_not_found".into(), None)
    );
    let unknown = app
        .get_authed(&file_url("secret", &json!("0".repeat(32))), &ada)
        .await;
    assert_eq!(
        error_of(unknown).await,
        (404, "attachment_not_found".into(), None)
    );

    // A guest of the room.
    let link: Value = app
        .http
        .post(app.url("/api/v1/rooms/secret/invites"))
        .bearer_auth(&ada)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let invite = link["url"]
        .as_str()
        .unwrap()
        .split_once("/join#")
        .unwrap()
        .1;
    let guest: Value = app
        .post_json(
            "/api/v1/guest",
            &json!({"token": invite, "name": "Visitor"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let guest = guest["access_token"].as_str().unwrap();
    let got = app
        .http
        .get(app.url(&format!("{url}?token={guest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"the plan");
    let by_guest = upload(&app, guest, "secret", "x.txt", "text/plain", b"x".to_vec()).await;
    assert_eq!(
        error_of(by_guest).await,
        (403, "guest_upload_forbidden".into(), None)
    );
    app.stop().await;
}

#[tokio::test]
async fn one_range_is_a_206_beyond_the_file_a_416_and_several_the_whole_file() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    let bytes = content(1000);
    let message = shared(&app, &ada, "team", "data.bin", bytes.clone()).await;
    let url = app.url(&file_url("team", &message["attachment"]["id"]));
    let ranged = |range: &'static str| {
        app.http
            .get(&url)
            .bearer_auth(&ada)
            .header("range", range)
            .send()
    };

    let part = ranged("bytes=100-199").await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 100-199/1000");
    assert_eq!(part.headers()["content-length"], "100");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[100..200]);

    let tail = ranged("bytes=-10").await.unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.headers()["content-range"], "bytes 990-999/1000");
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &bytes[990..]);

    let rest = ranged("bytes=995-").await.unwrap();
    assert_eq!(rest.status(), 206);
    assert_eq!(rest.bytes().await.unwrap().as_ref(), &bytes[995..]);

    let beyond = ranged("bytes=1000-").await.unwrap();
    assert_eq!(beyond.status(), 416);
    assert_eq!(beyond.headers()["content-range"], "bytes */1000");

    let several = ranged("bytes=0-1,5-6").await.unwrap();
    assert_eq!(several.status(), 200);
    assert_eq!(several.bytes().await.unwrap().len(), 1000);
    app.stop().await;
}

#[tokio::test]
async fn a_real_png_gets_a_preview_and_other_files_none() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    let image = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([x as u8, y as u8, 128]));
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // Declared as text: the content decides.
    let response = upload(&app, &ada, "team", "photo.png", "text/plain", png).await;
    assert_eq!(response.status(), 201);
    let message: Value = response.json().await.unwrap();
    let file = &message["message"]["attachment"];
    assert_eq!(file["thumbnail"], json!({"width": 320, "height": 240}));

    let url = format!("{}/thumbnail", file_url("team", &file["id"]));
    let preview = app
        .http
        .get(app.url(&format!("{url}?token={ada}")))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 200);
    let headers = preview.headers().clone();
    assert!(
        ["image/png", "image/jpeg"].contains(&headers["content-type"].to_str().unwrap()),
        "{headers:?}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(headers["cache-control"], "private, max-age=3600");
    let decoded = image::load_from_memory(&preview.bytes().await.unwrap()).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (320, 240));

    let text = shared(&app, &ada, "team", "notes.txt", b"not an image".to_vec()).await;
    assert_eq!(text["attachment"]["thumbnail"], Value::Null);
    let none = app
        .get_authed(
            &format!("{}/thumbnail", file_url("team", &text["attachment"]["id"])),
            &ada,
        )
        .await;
    assert_eq!(
        error_of(none).await,
        (404, "thumbnail_not_found".into(), None)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_mid_upload_leaves_nothing_and_its_quota_is_free_again() {
    let app = spawn_app(&[("ATTACHMENT_QUOTA_USER_BYTES", "1500000")]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    let (mut bobs_call, _) = app.join("team", &bob).await;

    let tcp = raw_upload(&app, &ada, "team", 1_000_000, &content(100_000)).await;
    let partials = || async { stored(&dir(&app)).1.len() };
    eventually("the upload is under way", || async {
        partials().await == 1
    })
    .await;
    // Its 1 MB is reserved: another is over the quota.
    let second = upload(&app, &ada, "team", "b.bin", "a/b", content(1_000_000)).await;
    assert_eq!(error_of(second).await.1, "quota_exceeded");
    drop(tcp);

    // Once the server notices, nothing is left and the reservation is back.
    eventually("the partial file is gone", || async {
        partials().await == 0
    })
    .await;
    let mut message = Value::Null;
    for _ in 0..100 {
        let again = upload(&app, &ada, "team", "c.bin", "a/b", content(1_000_000)).await;
        if again.status() == 201 {
            message = again.json::<Value>().await.unwrap()["message"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(message.is_object(), "the quota is usable again");
    let id = message["attachment"]["id"].as_str().unwrap().to_owned();
    // Only that file on disk, no partial; one message, the one that worked.
    assert_eq!(stored(&dir(&app)), (vec![id.clone()], vec![]));
    let messages = history(&app, &ada, "team").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["attachment"]["id"], id.as_str());
    assert_eq!(
        bobs_call.recv_type("chat").await["attachment"]["id"],
        id.as_str()
    );
    app.stop().await;
}

#[tokio::test]
async fn no_length_is_411_a_body_cut_short_400_and_excess_bytes_never_reach_the_file() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);

    // Shorter than declared: the client ends its side after 500 of 1000 bytes.
    let mut tcp = raw_upload(&app, &ada, "team", 1000, &content(500)).await;
    tcp.shutdown().await.unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("size_mismatch"), "{answer}");
    assert_eq!(stored(&dir(&app)), (vec![], vec![]));

    // No length at all (chunked): 411.
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/rooms/team/attachments?name=c.bin HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {ada}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        app.addr
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    assert!(answer.contains("length_required"), "{answer}");
    assert_eq!(stored(&dir(&app)), (vec![], vec![]));

    // Longer than declared: HTTP/1.1 reads exactly Content-Length bytes; the
    // rest is not part of the file (it is a malformed next request).
    let mut tcp = raw_upload(&app, &ada, "team", 10, b"0123456789 AND MORE BYTES\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(
        answer.contains("HTTP/1.1 400"),
        "the excess is refused: {answer}"
    );
    let messages = history(&app, &ada, "team").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["attachment"]["size"], 10);
    let got = app
        .get_authed(&file_url("team", &messages[0]["attachment"]["id"]), &ada)
        .await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"0123456789");
    app.stop().await;
}

#[tokio::test]
async fn files_over_the_limit_or_the_quota_are_refused_before_they_are_stored() {
    let app = spawn_app(&[
        ("ATTACHMENT_MAX_BYTES", "1000"),
        ("ATTACHMENT_QUOTA_USER_BYTES", "1500"),
    ])
    .await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    // The welcome tells the client the limit, so it can refuse a bigger file unsent.
    let (_, welcome) = app.join("team", &ada).await;
    assert_eq!(welcome["attachment_max_bytes"], 1000);
    let big = upload(&app, &ada, "team", "big", "a/b", content(1001)).await;
    assert_eq!(error_of(big).await, (413, "too_large".into(), None));
    shared(&app, &ada, "team", "one", content(1000)).await;
    let over = upload(&app, &ada, "team", "two", "a/b", content(1000)).await;
    let (status, code, _) = error_of(over).await;
    assert_eq!((status, code.as_str()), (413, "quota_exceeded"));
    // The quota is Ada's: Bob may.
    shared(&app, &bob, "team", "bobs", content(1000)).await;
    assert_eq!(stored(&dir(&app)).0.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_fifth_upload_at_once_is_429() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(raw_upload(&app, &ada, "team", 1000, &content(10)).await);
    }
    eventually("four uploads are in flight", || async {
        stored(&dir(&app)).1.len() == 4
    })
    .await;
    let fifth = upload(&app, &ada, "team", "x", "a/b", content(10)).await;
    assert!(fifth.headers().contains_key("retry-after"));
    assert_eq!(
        error_of(fifth).await,
        (429, "too_many_uploads".into(), None)
    );
    drop(stalled);
    eventually("the stalled uploads are gone", || async {
        stored(&dir(&app)).1.is_empty()
    })
    .await;
    let mut freed = false;
    for _ in 0..100 {
        let again = upload(&app, &ada, "team", "x", "a/b", content(10)).await;
        if again.status() == 201 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the slots are free again");
    app.stop().await;
}

#[tokio::test]
async fn the_sender_deletes_a_file_others_may_not_and_a_deleted_room_takes_its_files() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    let (mut adas_call, _) = app.join("team", &ada).await;
    let message = shared(&app, &bob, "team", "bobs.txt", b"bob's".to_vec()).await;
    adas_call.recv_type("chat").await;
    let url = file_url("team", &message["attachment"]["id"]);

    let cyd = app.user_token("cyd").await;
    let by_other = app.delete_authed(&url, &cyd).await;
    assert_eq!(error_of(by_other).await, (403, "not_sender".into(), None));

    let deleted = app.delete_authed(&url, &bob).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        adas_call.recv_type("chat_deleted").await,
        json!({"type": "chat_deleted", "id": message["id"]})
    );
    assert_eq!(error_of(app.get_authed(&url, &bob).await).await.0, 404);
    assert_eq!(stored(&dir(&app)), (vec![], vec![]));
    assert!(history(&app, &ada, "team").await.is_empty());
    let dan = app.user_token("dan").await;
    let (_, welcome) = app.join("team", &dan).await;
    assert_eq!(welcome["chat"], json!([]), "a later joiner is not sent it");

    // Deleting the room removes the files left in it.
    shared(&app, &bob, "team", "a.txt", b"a".to_vec()).await;
    shared(&app, &ada, "team", "b.txt", b"b".to_vec()).await;
    assert_eq!(stored(&dir(&app)).0.len(), 2);
    let gone = app.delete_authed("/api/v1/rooms/team", &ada).await;
    assert_eq!(gone.status(), 204);
    assert_eq!(stored(&dir(&app)), (vec![], vec![]));

    // So does an admin's deletion (Ada registered first: she is the admin).
    assert_eq!(app.create_room(&bob, "other").await.status(), 201);
    shared(&app, &bob, "other", "c.txt", b"c".to_vec()).await;
    assert_eq!(stored(&dir(&app)).0.len(), 1);
    let by_admin = app.delete_authed("/api/v1/admin/rooms/other", &ada).await;
    assert_eq!(by_admin.status(), 204);
    assert_eq!(stored(&dir(&app)), (vec![], vec![]));
    app.stop().await;
}

#[tokio::test]
async fn the_sweep_removes_files_past_retention_with_their_messages() {
    let app = spawn_app(&[("ATTACHMENT_RETENTION_DAYS", "30")]).await;
    let ada = app.user_token("ada").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    let (mut call, _) = app.join("team", &ada).await;
    let message = shared(&app, &ada, "team", "old.txt", b"old".to_vec()).await;
    call.recv_type("chat").await;

    let swept = app
        .attachments
        .sweep(chrono::Utc::now() + chrono::Duration::days(29))
        .await
        .unwrap();
    assert_eq!(swept.expired, 0, "not yet");
    assert_eq!(stored(&dir(&app)).0.len(), 1);

    let swept = app
        .attachments
        .sweep(chrono::Utc::now() + chrono::Duration::days(31))
        .await
        .unwrap();
    assert_eq!(swept.expired, 1);
    assert_eq!(call.recv_type("chat_deleted").await["id"], message["id"]);
    assert_eq!(stored(&dir(&app)), (vec![], vec![]));
    assert!(history(&app, &ada, "team").await.is_empty());
    let url = file_url("team", &message["attachment"]["id"]);
    assert_eq!(error_of(app.get_authed(&url, &ada).await).await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn names_with_paths_nul_or_direction_overrides_come_back_harmless() {
    let app = spawn_app(&[]).await;
    let ada = app.user_token("ada").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    for (raw, clean) in [
        ("../../etc/passwd", "passwd"),
        ("evil\u{202E}gpj.exe", "evilgpj.exe"),
        ("nul\0byte.txt", "nulbyte.txt"),
        ("Отчёт \"Q4\".txt", "Отчёт \"Q4\".txt"),
    ] {
        let message = shared(&app, &ada, "team", raw, b"x".to_vec()).await;
        assert_eq!(message["attachment"]["name"], clean, "{raw:?}");
        let got = app
            .get_authed(&file_url("team", &message["attachment"]["id"]), &ada)
            .await;
        let disposition = got.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            disposition.starts_with("attachment; filename=\""),
            "{disposition}"
        );
        let (fallback, utf8) = disposition.split_once("; filename*=UTF-8''").unwrap();
        let fallback = fallback.trim_start_matches("attachment; filename=\"");
        let fallback = fallback.strip_suffix('"').unwrap();
        assert!(
            fallback
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'),
            "{fallback}"
        );
        assert!(
            !disposition.contains('/') && !disposition.contains(".."),
            "{disposition}"
        );
        let decoded = percent_decode(utf8);
        assert_eq!(decoded, clean);
    }
    app.stop().await;
}

fn percent_decode(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn files_work_on_postgres_and_the_uploaders_peer_is_the_messages_sender() {
    let Some(url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set TEST_DATABASE_URL"
        );
        return;
    };
    let schema = format!("files_{}", uuid::Uuid::new_v4().simple());
    let admin = webcall_db::SqlStore::connect(&url).await.unwrap();
    admin
        .execute_raw(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let files = tempfile::tempdir().unwrap();
    let files_dir = files.path().join("shared-files");
    let app = spawn_app(&[
        ("DATABASE_URL", &scoped),
        ("ATTACHMENT_DIR", files_dir.to_str().unwrap()),
    ])
    .await;
    assert!(files_dir.is_dir(), "ATTACHMENT_DIR is created at start");

    let ada = app.user_token("ada").await;
    assert_eq!(app.create_room(&ada, "team").await.status(), 201);
    let (mut call, welcome) = app.join("team", &ada).await;
    let peer = welcome["peer_id"].as_str().unwrap().to_owned();
    let response = app
        .http
        .post(app.url("/api/v1/rooms/team/attachments"))
        .query(&[("name", "pg.txt"), ("peer", peer.as_str())])
        .bearer_auth(&ada)
        .header("content-type", "text/plain; charset=utf-8")
        .body(b"on postgres".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let message = response.json::<Value>().await.unwrap()["message"].clone();
    assert_eq!(message["from"], peer.as_str());
    assert_eq!(message["attachment"]["type"], "text/plain");
    assert_eq!(call.recv_type("chat").await, message);
    assert_eq!(history(&app, &ada, "team").await, vec![message.clone()]);
    let url = file_url("team", &message["attachment"]["id"]);
    let got = app.get_authed(&url, &ada).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"on postgres");
    assert_eq!(stored(&files_dir).0.len(), 1);

    let gone = app.delete_authed("/api/v1/rooms/team", &ada).await;
    assert_eq!(gone.status(), 204);
    assert_eq!(stored(&files_dir), (vec![], vec![]));
    app.stop().await;

    admin
        .execute_raw(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    admin.close().await;
}
