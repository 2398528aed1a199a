//! A recording that keeps what it is given, to look at in tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use webcall_domain::media::{MediaKind, RecordedFrame, RoomRecording, TrackSource};
use webcall_domain::signaling::PeerId;

#[derive(Debug, Clone)]
pub struct Kept {
    pub peer: PeerId,
    pub source: TrackSource,
    pub kind: MediaKind,
    pub keyframe: bool,
    pub at: Duration,
    pub size: Option<(u16, u16)>,
    pub data: Vec<u8>,
}

#[derive(Default)]
pub struct Tape {
    pub frames: Vec<Kept>,
    pub left: Vec<PeerId>,
    pub finished: bool,
}

pub struct Keeper(pub Arc<Mutex<Tape>>);

impl RoomRecording for Keeper {
    fn frame(&mut self, f: RecordedFrame<'_>) {
        self.0.lock().unwrap().frames.push(Kept {
            peer: f.peer.clone(),
            source: f.source,
            kind: f.kind,
            keyframe: f.keyframe,
            at: f.at,
            size: f.width.zip(f.height),
            data: f.data.to_vec(),
        });
    }

    fn left(&mut self, peer: &PeerId) {
        self.0.lock().unwrap().left.push(peer.clone());
    }

    fn finish(self: Box<Self>) {
        self.0.lock().unwrap().finished = true;
    }
}
