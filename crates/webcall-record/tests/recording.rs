//! Recordings made of real Opus and VP8 frames (ffmpeg makes them), read
//! back by ffprobe and decoded by ffmpeg: two participants' files, a screen
//! share and an audio-only participant, hostile names, a recorder killed
//! mid-recording, and finding, serving and deleting recordings.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::media::{self, decode_errors, ffprobe, Media, Participant};
use webcall_domain::media::{Recorder, RecordingId};
use webcall_domain::signaling::{PeerId, RoomName};
use webcall_record::DiskRecorder;

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn person(peer: &str, username: &str, offset_ms: u64) -> Participant {
    Participant {
        peer: PeerId::from_client(peer),
        username: username.to_owned(),
        offset: Duration::from_millis(offset_ms),
        screen: false,
        video: true,
    }
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn clip(tmp: &Path, seconds: u32) -> Option<Media> {
    media::make(tmp, seconds)
}

#[test]
fn two_participants_each_get_a_playable_webm_with_opus_and_vp8() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(media) = clip(tmp.path(), 6) else {
        return;
    };
    let root = tmp.path().join("recordings");
    let recorder = DiskRecorder::new(root.clone()).unwrap();
    let standup = room("standup");
    let id = RecordingId::new_random();
    let mut recording = recorder.start(&standup, &id, "alice").unwrap();
    let alice = person("a1b2c3d4e5f60718", "alice", 0);
    let bob = person("0f1e2d3c4b5a6978", "bob", 400);
    media::feed(recording.as_mut(), &media, &[alice, bob], None);
    recording.left(&PeerId::from_client("0f1e2d3c4b5a6978"));
    recording.finish();

    let dir = root.join("standup").join(id.as_str());
    let manifest = manifest(&dir);
    assert_eq!(manifest["id"], id.as_str());
    assert_eq!(manifest["room"], "standup");
    assert_eq!(manifest["started_by"], "alice");
    assert!(manifest["started_at"].is_string());
    assert!(manifest["ended_at"].is_string(), "{manifest}");
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{manifest}");
    for (file, (name, peer, username, start)) in files.iter().zip([
        (
            "alice-a1b2c3d4e5f60718.webm",
            "a1b2c3d4e5f60718",
            "alice",
            0,
        ),
        ("bob-0f1e2d3c4b5a6978.webm", "0f1e2d3c4b5a6978", "bob", 400),
    ]) {
        assert_eq!(file["name"], name);
        assert_eq!(file["peer_id"], peer);
        assert_eq!(file["username"], username);
        assert_eq!(file["source"], "camera");
        assert_eq!(file["start_ms"], start);
        let end = file["end_ms"].as_u64().unwrap();
        assert!((start + 5_000..=start + 7_000).contains(&end), "{file}");
        assert_eq!(file["tracks"], serde_json::json!(["opus", "vp8"]));

        let path = dir.join(name);
        let probe = ffprobe(&path);
        assert_eq!(probe.codecs, ["opus", "vp8"], "{name}");
        assert_eq!((probe.width, probe.height), (Some(320), Some(240)));
        assert!(
            (5.0..=7.0).contains(&probe.duration),
            "{name}: {}",
            probe.duration
        );
        assert_eq!(decode_errors(&path), "", "{name}");
    }

    let listed = recorder.list(&standup).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].started_by, "alice");
    assert!(listed[0].ended_at.is_some());
    let names: Vec<&str> = listed[0].files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["alice-a1b2c3d4e5f60718.webm", "bob-0f1e2d3c4b5a6978.webm"]
    );
    for file in &listed[0].files {
        let path = recorder.file_path(&standup, &id, &file.name).unwrap();
        assert_eq!(path, Some(dir.join(&file.name)));
        assert_eq!(
            std::fs::metadata(dir.join(&file.name)).unwrap().len(),
            file.bytes
        );
    }
}

#[test]
fn screen_shares_audio_only_people_and_hostile_names_stay_inside_the_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(media) = clip(tmp.path(), 6) else {
        return;
    };
    let root = tmp.path().join("recordings");
    let recorder = DiskRecorder::new(root.clone()).unwrap();
    let demo = room("demo");
    let id = RecordingId::new_random();
    let mut recording = recorder.start(&demo, &id, "../../root").unwrap();
    let evil = person("../../../tmp/x", "../../etc/passwd", 0);
    let screen = Participant {
        screen: true,
        ..person("../../../tmp/x", "../../etc/passwd", 200)
    };
    let quiet = Participant {
        video: false,
        ..person("c0ffee", "Вася Пупкин", 100)
    };
    media::feed(recording.as_mut(), &media, &[evil, screen, quiet], None);
    recording.finish();

    let dir = root.join("demo").join(id.as_str());
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk,
        [
            "_._.._etc_passwd-_._.._.._tmp_x-screen.webm",
            "_._.._etc_passwd-_._.._.._tmp_x.webm",
            "___________-c0ffee.webm",
            "manifest.json",
        ]
    );
    let manifest = manifest(&dir);
    assert_eq!(manifest["started_by"], "../../root");
    let files = manifest["files"].as_array().unwrap();
    let file = |name: &str| files.iter().find(|f| f["name"] == name).unwrap().clone();
    let screen_file = file("_._.._etc_passwd-_._.._.._tmp_x-screen.webm");
    assert_eq!(screen_file["source"], "screen");
    assert_eq!(screen_file["username"], "../../etc/passwd");
    assert_eq!(screen_file["tracks"], serde_json::json!(["vp8"]));
    assert_eq!(
        file("___________-c0ffee.webm")["tracks"],
        serde_json::json!(["opus"])
    );

    for (name, codecs) in [
        ("_._.._etc_passwd-_._.._.._tmp_x-screen.webm", vec!["vp8"]),
        ("_._.._etc_passwd-_._.._.._tmp_x.webm", vec!["opus", "vp8"]),
        ("___________-c0ffee.webm", vec!["opus"]),
    ] {
        let path = dir.join(name);
        let probe = ffprobe(&path);
        assert_eq!(probe.codecs, codecs, "{name}");
        assert!(
            (5.0..=7.0).contains(&probe.duration),
            "{name}: {}",
            probe.duration
        );
        assert_eq!(decode_errors(&path), "", "{name}");
    }

    for name in [
        "manifest.json",
        "manifest.json.tmp",
        "..",
        ".",
        "../manifest.json",
        "/etc/passwd",
        "..%2Fmanifest.json",
        "nobody-1.webm",
        "",
    ] {
        assert_eq!(
            recorder.file_path(&demo, &id, name).unwrap(),
            None,
            "{name}"
        );
    }
    let other = RecordingId::new_random();
    assert_eq!(
        recorder
            .file_path(&demo, &other, "___________-c0ffee.webm")
            .unwrap(),
        None
    );
    assert_eq!(
        recorder
            .file_path(&room("elsewhere"), &id, "___________-c0ffee.webm")
            .unwrap(),
        None
    );
}

#[test]
fn video_before_the_first_key_frame_is_dropped_and_late_frames_keep_time_monotonic() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut media) = clip(tmp.path(), 4) else {
        return;
    };
    // The camera joins mid-GOP: frames 10..30 are not key frames. An audio
    // packet comes late (out of order), and a bad frame or two come too.
    media.video.drain(..10);
    media.audio.swap(50, 52);
    media
        .audio
        .insert(60, (Duration::from_millis(1_200), Vec::new()));
    let root = tmp.path().join("recordings");
    let recorder = DiskRecorder::new(root.clone()).unwrap();
    let r = room("late");
    let id = RecordingId::new_random();
    let mut recording = recorder.start(&r, &id, "carol").unwrap();
    media::feed(
        recording.as_mut(),
        &media,
        &[person("p1", "carol", 0)],
        None,
    );
    recording.finish();

    let path = root.join("late").join(id.as_str()).join("carol-p1.webm");
    assert_eq!(decode_errors(&path), "");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    let packets = String::from_utf8(out.stdout).unwrap();
    let first = packets.lines().next().unwrap();
    let (pts, flags) = first.split_once(',').unwrap();
    assert!(flags.starts_with('K'), "{first}");
    // The first key frame after the drop is the one at 1 s.
    let pts: f64 = pts.parse().unwrap();
    assert!((0.9..=1.1).contains(&pts), "{pts}");
    assert_eq!(packets.lines().count(), 90, "{packets}");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a", "-show_entries"])
        .args(["packet=pts", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    let audio: Vec<i64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(
        audio.len(),
        media.audio.len() - 1,
        "the empty packet is refused"
    );
    assert!(audio.windows(2).all(|w| w[0] < w[1]), "{audio:?}");
}

#[test]
fn a_killed_recorder_leaves_files_playable_up_to_their_last_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    if !media::ffmpeg_available() {
        eprintln!("SKIPPED: ffmpeg/ffprobe are not installed (CI installs them)");
        return;
    }
    let root = tmp.path().join("recordings");
    let id = RecordingId::new_random();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("RECORD_CRASH_ROOT", &root)
        .env("RECORD_CRASH_ID", id.as_str())
        .env("RECORD_CRASH_MEDIA", tmp.path())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was to abort");

    let dir = root.join("crashed").join(id.as_str());
    let path = dir.join("dave-d1.webm");
    let probe = ffprobe(&path);
    assert_eq!(probe.codecs, ["opus", "vp8"]);
    assert!((2.0..=4.5).contains(&probe.duration), "{}", probe.duration);
    assert_eq!(decode_errors(&path), "");
    let manifest = manifest(&dir);
    assert!(manifest["ended_at"].is_null());
    assert!(manifest["files"][0]["end_ms"].is_null());

    // Another process's recorder lists it (cut short) with its file.
    let recorder = DiskRecorder::new(root).unwrap();
    let crashed = room("crashed");
    let listed = recorder.list(&crashed).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ended_at, None);
    assert_eq!(listed[0].files.len(), 1);
    assert_eq!(listed[0].files[0].name, "dave-d1.webm");
    assert_eq!(
        recorder.file_path(&crashed, &id, "dave-d1.webm").unwrap(),
        Some(path)
    );
    assert!(recorder.delete(&crashed, &id).unwrap());
}

/// The child of the test above: records 4 s, waits until three clusters
/// are on disk, and aborts (no finish, no destructor). Does nothing when
/// run on its own.
#[test]
fn crash_child() {
    let (Some(root), Some(id), Some(work)) = (
        std::env::var_os("RECORD_CRASH_ROOT"),
        std::env::var("RECORD_CRASH_ID").ok(),
        std::env::var_os("RECORD_CRASH_MEDIA"),
    ) else {
        return;
    };
    let media = media::make(Path::new(&work), 6).unwrap();
    let root = PathBuf::from(root);
    let recorder = DiskRecorder::new(root.clone()).unwrap();
    let id = RecordingId::parse(&id).unwrap();
    let mut recording = recorder.start(&room("crashed"), &id, "dave").unwrap();
    let dave = person("d1", "dave", 0);
    media::feed(
        recording.as_mut(),
        &media,
        &[dave],
        Some(Duration::from_secs(4)),
    );
    let path = root.join("crashed").join(id.as_str()).join("dave-d1.webm");
    for _ in 0..600 {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let clusters = bytes
            .windows(4)
            .filter(|w| w == &[0x1F, 0x43, 0xB6, 0x75])
            .count();
        if clusters >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::process::abort();
}

#[test]
fn recordings_are_listed_newest_first_and_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(media) = clip(tmp.path(), 1) else {
        return;
    };
    let root = tmp.path().join("recordings");
    let recorder = DiskRecorder::new(root.clone()).unwrap();
    let r = room("weekly");
    assert!(recorder.list(&r).unwrap().is_empty());
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = RecordingId::new_random();
        let mut recording = recorder.start(&r, &id, "erin").unwrap();
        media::feed(recording.as_mut(), &media, &[person("e1", "erin", 0)], None);
        recording.finish();
        ids.push(id);
        std::thread::sleep(Duration::from_millis(5));
    }
    // A directory that is no recording, and a broken manifest, are skipped.
    std::fs::create_dir_all(root.join("weekly").join("not-a-recording")).unwrap();
    let broken = RecordingId::new_random();
    std::fs::create_dir_all(root.join("weekly").join(broken.as_str())).unwrap();
    std::fs::write(
        root.join("weekly")
            .join(broken.as_str())
            .join("manifest.json"),
        "{",
    )
    .unwrap();
    let listed: Vec<RecordingId> = recorder
        .list(&r)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
    assert!(
        recorder.start(&r, &ids[0], "erin").is_err(),
        "ids are not reused"
    );

    assert!(recorder.delete(&r, &ids[1]).unwrap());
    assert!(!root.join("weekly").join(ids[1].as_str()).exists());
    assert!(!recorder.delete(&r, &ids[1]).unwrap());
    assert_eq!(recorder.list(&r).unwrap().len(), 2);
    assert_eq!(
        recorder.file_path(&r, &ids[1], "erin-e1.webm").unwrap(),
        None
    );
}

#[test]
fn a_running_recording_cannot_be_deleted_and_lists_only_finished_files() {
    let tmp = tempfile::tempdir().unwrap();
    let recorder = DiskRecorder::new(tmp.path().to_owned()).unwrap();
    let r = room("live");
    let id = RecordingId::new_random();
    let recording = recorder.start(&r, &id, "frank").unwrap();
    let listed = recorder.list(&r).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ended_at, None);
    assert!(listed[0].files.is_empty());
    assert!(recorder.delete(&r, &id).is_err());
    recording.finish();
    assert!(recorder.list(&r).unwrap()[0].ended_at.is_some());
    assert!(recorder.delete(&r, &id).unwrap());
}
