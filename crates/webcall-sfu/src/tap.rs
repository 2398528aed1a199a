//! A room's recording tap: every frame of every participant of a recorded
//! room goes to its [`RoomRecording`] (camera video: the highest layer that
//! arrives, switched only at key frames like a receiver's), timed by the
//! sender's RTP clock from the track's first frame.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use str0m::media::{MediaData, Mid};
use webcall_domain::media::{MediaKind, RecordedFrame, RoomRecording, TrackSource};
use webcall_domain::signaling::PeerId;

use crate::forward::{Forward, Layer, Verdict};
use crate::vp8;

/// A running recording of one room.
pub(crate) struct Tap {
    /// The order of the `record` call, against a later `stop_recording`.
    pub seq: u64,
    recording: Box<dyn RoomRecording>,
    started: Instant,
    tracks: HashMap<(PeerId, Mid), TapTrack>,
}

#[derive(Default)]
struct TapTrack {
    forward: Forward,
    /// The first recorded frame's RTP time and its time since the start.
    anchor: Option<(u64, Duration)>,
}

/// A frame as it reached the server, with what the tap needs to know about it.
pub(crate) struct TapFrame<'a> {
    pub peer: &'a PeerId,
    pub username: &'a str,
    pub source: TrackSource,
    pub layer: Layer,
    /// The layer the recording should take (the highest arriving).
    pub wanted: Layer,
    pub key_frame: bool,
    pub data: &'a MediaData,
}

impl Tap {
    pub(crate) fn new(seq: u64, recording: Box<dyn RoomRecording>, now: Instant) -> Self {
        Self {
            seq,
            recording,
            started: now,
            tracks: HashMap::new(),
        }
    }

    /// Hands one frame to the recording; returns a layer to ask a key frame of.
    pub(crate) fn frame(&mut self, f: TapFrame<'_>) -> Option<Layer> {
        let video = f.source.is_video();
        let track = self.tracks.entry((f.peer.clone(), f.data.mid)).or_default();
        let verdict = if video {
            track.forward.decide(f.layer, f.key_frame, Some(f.wanted))
        } else {
            Verdict {
                forward: true,
                ask_key_frame: None,
            }
        };
        if !verdict.forward {
            return verdict.ask_key_frame;
        }
        let time = track.forward.rebase(f.data.time, f.data.network_time);
        let since_start = f.data.network_time.saturating_duration_since(self.started);
        let (first, at0) = *track.anchor.get_or_insert((time.numer(), since_start));
        let ticks = time.numer().saturating_sub(first);
        let at = at0 + Duration::from_micros(ticks * 1_000_000 / u64::from(time.frequency().get()));
        let size = if video {
            vp8::key_frame_size(&f.data.data)
        } else {
            None
        };
        self.recording.frame(RecordedFrame {
            peer: f.peer,
            username: f.username,
            source: f.source,
            kind: if video {
                MediaKind::Video
            } else {
                MediaKind::Audio
            },
            keyframe: !video || f.key_frame,
            at,
            width: size.map(|s| s.0),
            height: size.map(|s| s.1),
            data: &f.data.data,
        });
        verdict.ask_key_frame
    }

    /// A participant's session closed: its files are finished.
    pub(crate) fn left(&mut self, peer: &PeerId) {
        self.tracks.retain(|(p, _), _| p != peer);
        self.recording.left(peer);
    }

    /// A publisher stopped sending a track (its next one starts a new anchor).
    pub(crate) fn track_ended(&mut self, peer: &PeerId, mid: Mid) {
        self.tracks.remove(&(peer.clone(), mid));
    }

    pub(crate) fn finish(self) {
        self.recording.finish();
    }
}
