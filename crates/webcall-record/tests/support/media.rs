//! Real Opus and VP8 frames for the recording tests, made by ffmpeg (a test
//! pattern at 320x240, 30 fps, a key frame every second; a 440 Hz tone in
//! 20 ms Opus packets), read out of IVF and Ogg, and fed to a recording the
//! way the media end does: each participant's frames on the recording's
//! timeline, everyone's interleaved by time. Also ffprobe and ffmpeg to read
//! the files back. Shared with `crates/webcall/tests/recordings.rs`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use webcall_domain::media::{MediaKind, RecordedFrame, RoomRecording, TrackSource};
use webcall_domain::signaling::PeerId;

/// A clip's frames, from its start.
pub struct Media {
    pub audio: Vec<(Duration, Vec<u8>)>,
    pub video: Vec<(Duration, Vec<u8>)>,
}

/// Whether ffmpeg and ffprobe can be run (CI installs them).
pub fn ffmpeg_available() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

/// `seconds` of media made in `dir`; `None` (with a message) without ffmpeg.
pub fn make(dir: &Path, seconds: u32) -> Option<Media> {
    if !ffmpeg_available() {
        eprintln!("SKIPPED: ffmpeg/ffprobe are not installed (CI installs them)");
        return None;
    }
    let ivf = dir.join("video.ivf");
    let ogg = dir.join("audio.ogg");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x240:rate=30")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-map", "0:v", "-c:v", "libvpx", "-g", "30", "-b:v", "300k"])
        .args(["-f", "ivf"])
        .arg(&ivf)
        .args(["-t", &seconds.to_string()])
        .args(["-map", "1:a", "-c:a", "libopus", "-b:a", "32k"])
        .args(["-frame_duration", "20", "-f", "ogg"])
        .arg(&ogg)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let video = parse_ivf(&std::fs::read(&ivf).unwrap());
    let audio = parse_ogg(&std::fs::read(&ogg).unwrap())
        .into_iter()
        .enumerate()
        .map(|(i, packet)| (Duration::from_millis(20 * i as u64), packet))
        .collect();
    Some(Media { audio, video })
}

/// IVF: a 32-byte header (time base at 16..24), then frames of a 12-byte
/// header (size, pts) and the data.
fn parse_ivf(bytes: &[u8]) -> Vec<(Duration, Vec<u8>)> {
    assert_eq!(&bytes[..4], b"DKIF");
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let (den, num) = (u64::from(le32(16)), u64::from(le32(20)));
    let mut at = usize::from(u16::from_le_bytes([bytes[6], bytes[7]]));
    let mut frames = Vec::new();
    while at + 12 <= bytes.len() {
        let size = le32(at) as usize;
        let pts = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap());
        let data = bytes[at + 12..at + 12 + size].to_vec();
        frames.push((Duration::from_micros(pts * num * 1_000_000 / den), data));
        at += 12 + size;
    }
    frames
}

/// Ogg: pages of segments; a segment shorter than 255 ends a packet. The
/// first two packets (OpusHead, OpusTags) are not audio.
fn parse_ogg(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut packet = Vec::new();
    let mut at = 0;
    while at + 27 <= bytes.len() {
        assert_eq!(&bytes[at..at + 4], b"OggS");
        let segments = usize::from(bytes[at + 26]);
        let table = &bytes[at + 27..at + 27 + segments];
        let mut data = at + 27 + segments;
        for &len in table {
            packet.extend_from_slice(&bytes[data..data + usize::from(len)]);
            data += usize::from(len);
            if len < 255 {
                packets.push(std::mem::take(&mut packet));
            }
        }
        at = data;
    }
    packets.drain(..2.min(packets.len()));
    packets
}

/// One participant's part in a recording.
pub struct Participant {
    pub peer: PeerId,
    pub username: String,
    /// When its media starts on the recording's timeline.
    pub offset: Duration,
    /// A screen share (video only) rather than a microphone and a camera.
    pub screen: bool,
    /// Whether it sends video at all.
    pub video: bool,
}

/// Feeds everyone's frames in time order, those before `until` (all when
/// `None`).
pub fn feed(
    recording: &mut dyn RoomRecording,
    media: &Media,
    people: &[Participant],
    until: Option<Duration>,
) {
    let mut frames: Vec<(Duration, &Participant, MediaKind, &[u8])> = Vec::new();
    for person in people.iter() {
        // A screen share is video only (its owner's microphone is its own entry).
        let audio = if person.screen {
            &[][..]
        } else {
            &media.audio[..]
        };
        for (at, data) in audio {
            frames.push((person.offset + *at, person, MediaKind::Audio, data));
        }
        if person.video {
            for (at, data) in &media.video {
                frames.push((person.offset + *at, person, MediaKind::Video, data));
            }
        }
    }
    frames.sort_by_key(|(at, ..)| *at);
    for (at, person, kind, data) in frames {
        if until.is_some_and(|until| at >= until) {
            break;
        }
        let source = match (kind, person.screen) {
            (MediaKind::Audio, _) => TrackSource::Mic,
            (MediaKind::Video, false) => TrackSource::Camera,
            (MediaKind::Video, true) => TrackSource::Screen,
        };
        let keyframe = kind == MediaKind::Audio || data[0] & 1 == 0;
        recording.frame(RecordedFrame {
            peer: &person.peer,
            username: &person.username,
            source,
            kind,
            keyframe,
            at,
            width: None,
            height: None,
            data,
        });
    }
}

/// What ffprobe reads of a file: each stream's codec (and size), and the
/// duration in seconds.
pub struct Probe {
    pub codecs: Vec<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub duration: f64,
}

pub fn ffprobe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries"])
        .arg("format=duration:stream=codec_name,width,height")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let mut codecs: Vec<String> = streams
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap_or("?").to_owned())
        .collect();
    codecs.sort();
    let video = streams.iter().find(|s| s["codec_name"] == "vp8");
    Probe {
        codecs,
        width: video.and_then(|v| v["width"].as_u64()),
        height: video.and_then(|v| v["height"].as_u64()),
        duration: json["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(f64::NAN),
    }
}

/// What `ffmpeg -v error` says while decoding the whole file (empty: no error).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut errors = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        errors.push_str(&format!(" (exit {})", out.status));
    }
    errors
}
