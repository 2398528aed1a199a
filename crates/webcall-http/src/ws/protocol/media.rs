//! The frames of routed calls (docs/protocol.md "Routed calls"): what a
//! client sends (`sfu`, `media_mode`, `recording`), checked here so a bad one
//! gets a clear `error` and never reaches the media end, and what the server
//! sends (`media_mode`, `sfu`, `recording`, and `update_required`).

use serde::Deserialize;
use serde_json::json;
use webcall_app::error::MediaRefusal;
use webcall_domain::media::{MediaMode, SfuSignal};
use webcall_domain::signaling::{ActiveRecording, RoomEvent};

use super::{error_code, FrameError};
use crate::auth::rfc3339;

/// The largest SDP an `sfu` frame may carry (one with three simulcast layers
/// and a screen share is about 10 KiB; the socket's frame cap is 64 KiB).
pub(in crate::ws) const MAX_SDP_BYTES: usize = 32 * 1024;
/// The largest trickled ICE candidate.
const MAX_CANDIDATE_BYTES: usize = 1024;
/// Sending transceivers an offer may describe (mic, camera, screen, and some).
const MAX_SENT_TRACKS: usize = 8;
/// Tiles a `view` may list (two per peer of the largest room and more).
const MAX_TILES: usize = 256;
/// A `mid` or a peer id in a frame.
const MAX_NAME_BYTES: usize = 64;

#[derive(Deserialize)]
struct SfuFields {
    signal: SfuSignal,
}

#[derive(Deserialize)]
struct ModeFields {
    mode: MediaMode,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Start,
    Stop,
}

#[derive(Deserialize)]
struct RecordingFields {
    action: Action,
}

fn bad(kind: &str, message: impl std::fmt::Display) -> FrameError {
    FrameError::new(error_code::BAD_FRAME, format!("{kind}: {message}"))
}

/// An `sfu` frame's signal, within the limits above.
pub(super) fn sfu(text: &str) -> Result<SfuSignal, FrameError> {
    let SfuFields { signal } = serde_json::from_str(text).map_err(|e| bad("sfu", e))?;
    let too_long = |what: &str, max: usize| bad("sfu", format!("{what} longer than {max} bytes"));
    match &signal {
        SfuSignal::Offer { sdp, tracks, .. } => {
            if sdp.len() > MAX_SDP_BYTES {
                return Err(too_long("sdp", MAX_SDP_BYTES));
            }
            if tracks.len() > MAX_SENT_TRACKS {
                return Err(bad("sfu", format!("more than {MAX_SENT_TRACKS} tracks")));
            }
            if tracks.iter().any(|t| t.mid.len() > MAX_NAME_BYTES) {
                return Err(too_long("a mid", MAX_NAME_BYTES));
            }
        }
        SfuSignal::Answer { sdp } if sdp.len() > MAX_SDP_BYTES => {
            return Err(too_long("sdp", MAX_SDP_BYTES))
        }
        SfuSignal::Candidate { candidate, sdp_mid } => {
            if candidate.len() > MAX_CANDIDATE_BYTES {
                return Err(too_long("candidate", MAX_CANDIDATE_BYTES));
            }
            if sdp_mid.as_ref().is_some_and(|m| m.len() > MAX_NAME_BYTES) {
                return Err(too_long("sdp_mid", MAX_NAME_BYTES));
            }
        }
        SfuSignal::View { tiles } => {
            if tiles.len() > MAX_TILES {
                return Err(bad("sfu", format!("more than {MAX_TILES} tiles")));
            }
            if tiles
                .iter()
                .any(|t| t.peer_id.as_str().len() > MAX_NAME_BYTES)
            {
                return Err(too_long("a peer_id", MAX_NAME_BYTES));
            }
        }
        SfuSignal::Answer { .. } => {}
    }
    Ok(signal)
}

/// A `media_mode` frame's mode.
pub(super) fn mode(text: &str) -> Result<MediaMode, FrameError> {
    let ModeFields { mode } = serde_json::from_str(text).map_err(|e| {
        bad(
            "media_mode",
            format!("mode must be \"sfu\" or \"mesh\" ({e})"),
        )
    })?;
    Ok(mode)
}

/// A `recording` frame's action: true to start.
pub(super) fn recording_start(text: &str) -> Result<bool, FrameError> {
    let RecordingFields { action } = serde_json::from_str(text).map_err(|e| {
        bad(
            "recording",
            format!("action must be \"start\" or \"stop\" ({e})"),
        )
    })?;
    Ok(matches!(action, Action::Start))
}

/// The frame of a routed call's room event; `None` for the other events.
pub(super) fn render(event: &RoomEvent) -> Option<String> {
    Some(match event {
        RoomEvent::MediaMode { mode, by, reason } => json!({"type": "media_mode",
            "mode": mode, "by": by.as_ref().map(|p| p.as_str()), "reason": reason.as_str()})
        .to_string(),
        RoomEvent::Sfu { reply } => json!({"type": "sfu", "reply": reply}).to_string(),
        RoomEvent::RecordingStarted { recording } => {
            let mut frame = recording_body(recording);
            frame["type"] = json!("recording");
            frame["active"] = json!(true);
            frame.to_string()
        }
        RoomEvent::RecordingStopped { id, by } => json!({"type": "recording", "active": false,
            "id": id.as_str(), "by": by.as_ref().map(|p| p.as_str())})
        .to_string(),
        RoomEvent::UpdateRequired => {
            let refusal = MediaRefusal::UpdateRequired;
            FrameError::new(refusal.code(), refusal.to_string()).to_json()
        }
        _ => return None,
    })
}

/// A running recording as the welcome and the `recording` frame tell it.
pub(super) fn recording_body(recording: &ActiveRecording) -> serde_json::Value {
    json!({"id": recording.id.as_str(), "by": recording.by.as_str(),
        "username": recording.username, "started_at": rfc3339(recording.started_at)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use webcall_domain::media::{RecordingId, SfuReply};
    use webcall_domain::signaling::{ModeReason, PeerId};

    #[test]
    fn bad_routed_frames_get_a_code_and_a_reason() {
        fn message<T>(result: Result<T, FrameError>) -> String {
            let err = result.err().expect("refused");
            assert_eq!(err.code, error_code::BAD_FRAME);
            err.message
        }
        assert!(message(sfu(r#"{"type":"sfu"}"#)).contains("missing field `signal`"));
        assert!(message(sfu(r#"{"type":"sfu","signal":{"kind":"dance"}}"#)).contains("dance"));
        let huge = format!(
            r#"{{"type":"sfu","signal":{{"kind":"offer","sdp":"{}"}}}}"#,
            "a".repeat(MAX_SDP_BYTES + 1)
        );
        assert!(message(sfu(&huge)).contains("sdp longer than"));
        let long_candidate = format!(
            r#"{{"type":"sfu","signal":{{"kind":"candidate","candidate":"{}"}}}}"#,
            "c".repeat(2000)
        );
        assert!(message(sfu(&long_candidate)).contains("candidate longer"));
        assert!(message(mode(r#"{"type":"media_mode","mode":"p2p"}"#)).contains("\"sfu\""));
        assert!(message(recording_start(r#"{"type":"recording"}"#)).contains("action"));
        let offer = sfu(
            r#"{"type":"sfu","signal":{"kind":"offer","sdp":"v=0","tracks":[{"mid":"0","source":"mic"}]}}"#,
        );
        assert!(matches!(offer, Ok(SfuSignal::Offer { tracks, .. }) if tracks.len() == 1));
        assert_eq!(
            mode(r#"{"type":"media_mode","mode":"sfu"}"#).unwrap(),
            MediaMode::Sfu
        );
        assert!(recording_start(r#"{"type":"recording","action":"start"}"#).unwrap());
        assert!(!recording_start(r#"{"type":"recording","action":"stop"}"#).unwrap());
    }

    #[test]
    fn routed_frames_have_the_documented_fields() {
        let read = |event: RoomEvent| -> Value {
            serde_json::from_str(&render(&event).expect("a routed event")).unwrap()
        };
        assert_eq!(
            read(RoomEvent::MediaMode {
                mode: MediaMode::Sfu,
                by: None,
                reason: ModeReason::Size
            }),
            json!({"type": "media_mode", "mode": "sfu", "by": null, "reason": "size"})
        );
        let reply = read(RoomEvent::Sfu {
            reply: SfuReply::Error {
                code: "busy".into(),
                message: "answer first".into(),
            },
        });
        assert_eq!(
            reply,
            json!({"type": "sfu", "reply": {"kind": "error", "code": "busy", "message": "answer first"}})
        );
        let id = RecordingId::new_random();
        let started = read(RoomEvent::RecordingStarted {
            recording: ActiveRecording {
                id: id.clone(),
                by: PeerId::from_client("p1"),
                username: "ada".into(),
                started_at: "2026-01-02T03:04:05.006Z".parse().unwrap(),
            },
        });
        assert_eq!(
            started,
            json!({"type": "recording", "active": true, "id": id.as_str(), "by": "p1",
                "username": "ada", "started_at": "2026-01-02T03:04:05.006Z"})
        );
        let stopped = read(RoomEvent::RecordingStopped {
            id: id.clone(),
            by: None,
        });
        assert_eq!(
            stopped,
            json!({"type": "recording", "active": false, "id": id.as_str(), "by": null})
        );
        let update = read(RoomEvent::UpdateRequired);
        assert_eq!(update["type"], "error");
        assert_eq!(update["code"], "update_required");
        assert!(update["message"].as_str().unwrap().contains("reload"));
    }
}
