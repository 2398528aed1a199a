//! Calls routed through the server (SFU mode) and their recordings.
//!
//! A room starts as a *mesh*: every peer sends its media to every other, and the
//! server never holds the media keys (DTLS-SRTP end to end, through the relay
//! too). When the room grows past `SFU_FROM_PEERS`, when its owner asks, or
//! when a recording starts, it becomes *routed*: each participant keeps one
//! WebRTC connection to the server, which forwards the others' media to it
//! without decoding (it does hold the media keys then; clients show which mode
//! a call is in).
//!
//! [`MediaRouter`] is the server's media end, driven by the hub; [`Recorder`]
//! writes a routed call's media to files, one [`RoomRecording`] per recording.
//! The messages a participant and the media end exchange ([`SfuSignal`],
//! [`SfuReply`]) travel in the signaling socket's `sfu` frames
//! (`docs/protocol.md`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{PeerId, RoomName};
use crate::DomainError;

/// How a room's media travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaMode {
    /// Peer to peer, end to end encrypted.
    #[default]
    Mesh,
    /// Through the server's forwarding unit.
    Sfu,
}

impl MediaMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mesh => "mesh",
            Self::Sfu => "sfu",
        }
    }
}

impl fmt::Display for MediaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a sent track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackSource {
    Mic,
    Camera,
    Screen,
}

impl TrackSource {
    pub fn is_video(self) -> bool {
        !matches!(self, Self::Mic)
    }
}

/// One of a participant's own sending transceivers, named by its `mid` in
/// the offer it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentTrack {
    pub mid: String,
    pub source: TrackSource,
}

/// A receiving transceiver the server fills with another participant's track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedTrack {
    pub mid: String,
    pub peer_id: PeerId,
    pub source: TrackSource,
}

/// How large a participant shows another's video (CSS pixels × device pixel
/// ratio); 0×0, or absent from the list, means not shown (the server pauses it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileView {
    pub peer_id: PeerId,
    pub source: TrackSource,
    pub width: u32,
    pub height: u32,
}

/// What a participant says to the server's media end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SfuSignal {
    /// The participant's offer (its first, or when what it sends changes),
    /// with what each of its sending transceivers carries.
    Offer {
        sdp: String,
        #[serde(default)]
        tracks: Vec<SentTrack>,
        /// The first offer of a new connection (the page's first, or one
        /// started over after a failure): whatever session the server holds
        /// for the participant is replaced by a new one.
        #[serde(default)]
        fresh: bool,
    },
    /// Its answer to the server's last offer.
    Answer { sdp: String },
    /// A trickled ICE candidate (`candidate` empty: no more candidates).
    Candidate {
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
    },
    /// What it shows now, and how large (replaces the previous list).
    View { tiles: Vec<TileView> },
}

/// What the server's media end says to one participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SfuReply {
    /// The answer to the participant's offer; `tracks` is every receiving
    /// transceiver the server fills, and whose track it is.
    Answer {
        sdp: String,
        tracks: Vec<ForwardedTrack>,
    },
    /// The server adds or removes others' tracks: the participant answers
    /// with [`SfuSignal::Answer`]. `tracks` as in `Answer`.
    Offer {
        sdp: String,
        tracks: Vec<ForwardedTrack>,
    },
    /// Something the participant sent could not be used; `code` is stable
    /// (`bad_sdp`, `bad_candidate`, `no_session`, `busy`, `failed`).
    Error { code: String, message: String },
}

/// Where the media end's replies to one participant go (into its signaling
/// queue; never blocks).
pub type SfuReplies = Arc<dyn Fn(SfuReply) + Send + Sync>;

/// The server's media end: one WebRTC session per participant of a routed
/// room, forwarding each participant's media to the others of its room.
///
/// Every method returns at once (the work happens on the media end's own
/// task); errors about a signal come back as [`SfuReply::Error`].
pub trait MediaRouter: Send + Sync {
    /// Starts `peer`'s session in `room`; `username` labels its recording.
    /// Replaces a session the peer already had.
    fn open(
        &self,
        room: &RoomName,
        peer: &PeerId,
        username: &str,
        replies: SfuReplies,
    ) -> Result<(), DomainError>;
    /// What `peer` said to the media end.
    fn signal(&self, peer: &PeerId, signal: SfuSignal);
    /// Ends `peer`'s session (it left, or its room went back to mesh).
    fn close(&self, peer: &PeerId);
    /// Starts writing `room`'s media into `recording` (asking every sender
    /// for a key frame); replaces nothing: `Invalid` (field `recording`) if
    /// one is running.
    fn record(&self, room: &RoomName, recording: Box<dyn RoomRecording>)
        -> Result<(), DomainError>;
    /// Stops `room`'s recording and finishes its files; false if none ran.
    fn stop_recording(&self, room: &RoomName) -> bool;
}

/// A recording's id: 128 random bits, 32 lowercase hex digits (it names a
/// directory and appears in URLs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordingId(String);

impl RecordingId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4().simple().to_string())
    }

    /// Exactly 32 lowercase hex digits, else `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RecordingId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or(DomainError::Invalid {
            field: "recording",
            message: "must be 32 lowercase hex digits",
        })
    }
}

impl From<RecordingId> for String {
    fn from(id: RecordingId) -> Self {
        id.0
    }
}

impl fmt::Display for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
}

/// One media frame of a routed call as it reached the server: an Opus packet
/// or a whole VP8 frame (depacketized, never decoded).
#[derive(Debug, Clone, Copy)]
pub struct RecordedFrame<'a> {
    pub peer: &'a PeerId,
    pub username: &'a str,
    /// `Mic` and `Camera` go to the participant's file, `Screen` to its own.
    pub source: TrackSource,
    pub kind: MediaKind,
    /// A VP8 key frame (always true for audio).
    pub keyframe: bool,
    /// Since the recording started, from the sender's RTP clock (anchored
    /// when the track's first frame arrived).
    pub at: Duration,
    /// VP8 frame size when known (key frames).
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub data: &'a [u8],
}

/// One running recording of a room. Called from the media end's task: no
/// method may block (an implementation hands frames to its own writer).
pub trait RoomRecording: Send {
    fn frame(&mut self, frame: RecordedFrame<'_>);
    /// A participant left the call: its files are finished now.
    fn left(&mut self, peer: &PeerId);
    /// The recording stopped: every file is finished and the manifest written.
    fn finish(self: Box<Self>);
}

/// A file of a finished or running recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFile {
    /// A safe file name inside the recording (`[A-Za-z0-9._-]`).
    pub name: String,
    pub bytes: u64,
}

/// A recording as the room's owner sees it listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingSummary {
    pub id: RecordingId,
    pub room: RoomName,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    /// `None` while it runs (or if the server stopped mid-recording).
    pub ended_at: Option<DateTime<Utc>>,
    pub files: Vec<RecordingFile>,
}

/// Where recordings are written and found again.
pub trait Recorder: Send + Sync {
    /// Opens a new recording of `room`, started by `started_by` (a username).
    fn start(
        &self,
        room: &RoomName,
        id: &RecordingId,
        started_by: &str,
    ) -> Result<Box<dyn RoomRecording>, DomainError>;
    /// The room's recordings, newest first.
    fn list(&self, room: &RoomName) -> Result<Vec<RecordingSummary>, DomainError>;
    /// A file of one of them on disk, if there is such a file (names are
    /// checked: nothing outside the recording can be named).
    fn file_path(
        &self,
        room: &RoomName,
        id: &RecordingId,
        name: &str,
    ) -> Result<Option<std::path::PathBuf>, DomainError>;
    /// Deletes a recording and its files; false if there was none.
    fn delete(&self, room: &RoomName, id: &RecordingId) -> Result<bool, DomainError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_read_as_documented() {
        let offer: SfuSignal = serde_json::from_str(
            r#"{"kind":"offer","sdp":"v=0","tracks":[{"mid":"0","source":"mic"}]}"#,
        )
        .unwrap();
        assert_eq!(
            offer,
            SfuSignal::Offer {
                sdp: "v=0".into(),
                tracks: vec![SentTrack {
                    mid: "0".into(),
                    source: TrackSource::Mic
                }],
                fresh: false,
            }
        );
        let view: SfuSignal = serde_json::from_str(
            r#"{"kind":"view","tiles":[{"peer_id":"a","source":"camera","width":320,"height":180}]}"#,
        )
        .unwrap();
        assert!(matches!(view, SfuSignal::View { tiles } if tiles[0].height == 180));
        assert!(serde_json::from_str::<SfuSignal>(r#"{"kind":"dance"}"#).is_err());
        let reply = serde_json::to_value(SfuReply::Error {
            code: "busy".into(),
            message: "m".into(),
        })
        .unwrap();
        assert_eq!(reply["kind"], "error");
        assert_eq!(serde_json::to_value(MediaMode::Sfu).unwrap(), "sfu");
    }

    #[test]
    fn recording_ids_name_nothing_else() {
        assert!(RecordingId::parse(RecordingId::new_random().as_str()).is_some());
        assert!(RecordingId::parse("../../etc/passwd").is_none());
        assert!(RecordingId::parse(&"A".repeat(32)).is_none());
    }
}
