//! A running recording: [`DiskRoomRecording`] is what the media end holds
//! (it never blocks: frames go to the recording's writer thread through a
//! bounded queue, and are dropped and counted when it is full), the writer
//! thread owns the files and the manifest.
//!
//! A participant's microphone and camera go to `{username}-{peer}.webm`, its
//! screen share to `{username}-{peer}-screen.webm` (a participant who leaves
//! and comes back gets new files, `-2`, `-3`…). A file opens at its first
//! usable frame (audio, or a video key frame); its times count from there,
//! and the manifest says where that is on the recording's timeline.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use webcall_domain::media::{MediaKind, RecordedFrame, RoomRecording, TrackSource};
use webcall_domain::signaling::PeerId;

use crate::manifest::{name_part, FileSource, Manifest, ManifestFile};
use crate::webm::{vp8_key_frame_size, WebmFile};
use crate::Running;

/// Frames waiting for the writer, at most.
const QUEUE_FRAMES: usize = 2_048;
/// Bytes waiting for the writer, at most.
const QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// A larger frame is refused (a VP8 frame of a 4K key frame is well under).
const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// How often the writer looks at its files when no frame comes.
const TICK: Duration = Duration::from_millis(500);

struct OwnedFrame {
    peer: PeerId,
    username: String,
    source: FileSource,
    kind: MediaKind,
    at: Duration,
    data: Vec<u8>,
}

enum Message {
    Frame(OwnedFrame),
    /// Look at the departures now.
    Wake,
}

/// What the media end's side and the writer share.
#[derive(Default)]
struct Shared {
    /// Participants who left, each with how many frames had been queued
    /// before it (the writer writes those first).
    departures: Mutex<Vec<(u64, PeerId)>>,
    queued_bytes: AtomicUsize,
}

/// See the module docs.
pub(crate) struct DiskRoomRecording {
    queue: Option<SyncSender<Message>>,
    shared: Arc<Shared>,
    /// Frames queued so far.
    queued: u64,
    /// Frames dropped because the writer was behind.
    dropped: u64,
    /// Frames refused as unusable (empty or too large).
    refused: u64,
    writer: Option<JoinHandle<()>>,
    label: String,
}

impl DiskRoomRecording {
    /// Starts the writer of the recording in `dir` (its manifest written).
    pub(crate) fn start(
        dir: PathBuf,
        manifest: Manifest,
        running: Running,
        key: (String, String),
    ) -> std::io::Result<Self> {
        let (queue, frames) = mpsc::sync_channel(QUEUE_FRAMES);
        let shared = Arc::new(Shared::default());
        let label = format!("{}/{}", manifest.room, manifest.id);
        let writer = Writer {
            dir,
            manifest,
            files: HashMap::new(),
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("recording".to_owned())
            .spawn(move || {
                writer.run(&frames);
                running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&key);
            })?;
        Ok(Self {
            queue: Some(queue),
            shared,
            queued: 0,
            dropped: 0,
            refused: 0,
            writer: Some(thread),
            label,
        })
    }

    fn drop_frame(&mut self) {
        self.dropped += 1;
        if self.dropped == 1 || self.dropped.is_multiple_of(1_000) {
            tracing::warn!(recording = %self.label, dropped = self.dropped, "the recording's writer is behind: frames dropped");
        }
    }
}

impl RoomRecording for DiskRoomRecording {
    fn frame(&mut self, frame: RecordedFrame<'_>) {
        if frame.data.is_empty() || frame.data.len() > MAX_FRAME_BYTES {
            self.refused += 1;
            if self.refused == 1 || self.refused.is_multiple_of(1_000) {
                tracing::warn!(recording = %self.label, bytes = frame.data.len(), refused = self.refused, "a frame empty or too large for the recording: dropped");
            }
            return;
        }
        let Some(queue) = &self.queue else {
            return;
        };
        let len = frame.data.len();
        if self.shared.queued_bytes.fetch_add(len, Ordering::Relaxed) + len > QUEUE_BYTES {
            self.shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return self.drop_frame();
        }
        let owned = OwnedFrame {
            peer: frame.peer.clone(),
            username: frame.username.to_owned(),
            source: match frame.source {
                TrackSource::Mic | TrackSource::Camera => FileSource::Camera,
                TrackSource::Screen => FileSource::Screen,
            },
            kind: frame.kind,
            at: frame.at,
            data: frame.data.to_vec(),
        };
        match queue.try_send(Message::Frame(owned)) {
            Ok(()) => self.queued += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                self.drop_frame();
            }
        }
    }

    fn left(&mut self, peer: &PeerId) {
        self.shared
            .departures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((self.queued, peer.clone()));
        if let Some(queue) = &self.queue {
            // Full: the writer is busy and looks at departures after each frame.
            let _ = queue.try_send(Message::Wake);
        }
    }

    fn finish(mut self: Box<Self>) {
        self.queue = None;
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!(recording = %self.label, "the recording's writer panicked");
            }
        }
        tracing::info!(recording = %self.label, frames = self.queued, dropped = self.dropped, refused = self.refused, "recording finished");
    }
}

/// One open file of a participant.
struct OpenFile {
    /// `None` once writing it failed (what was written stays).
    webm: Option<WebmFile>,
    /// Its place in the manifest.
    index: usize,
    /// Its first frame on the recording's timeline (ms).
    origin_ms: u64,
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    manifest: Manifest,
    files: HashMap<(PeerId, FileSource), OpenFile>,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self, frames: &mpsc::Receiver<Message>) {
        let mut received = 0u64;
        loop {
            match frames.recv_timeout(TICK) {
                Ok(Message::Frame(frame)) => {
                    received += 1;
                    self.shared
                        .queued_bytes
                        .fetch_sub(frame.data.len(), Ordering::Relaxed);
                    self.frame(frame);
                }
                Ok(Message::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.departures(Some(received));
            self.tick();
        }
        self.departures(None);
        let keys: Vec<_> = self.files.keys().cloned().collect();
        for key in keys {
            self.close(&key);
        }
        self.manifest.ended_at = Some(chrono::Utc::now());
        self.write_manifest();
    }

    fn frame(&mut self, frame: OwnedFrame) {
        let at_ms = u64::try_from(frame.at.as_millis()).unwrap_or(u64::MAX);
        let key = (frame.peer.clone(), frame.source);
        if !self.files.contains_key(&key) {
            if frame.kind == MediaKind::Video && vp8_key_frame_size(&frame.data).is_none() {
                return;
            }
            self.open(&frame, at_ms);
        }
        let Some(open) = self.files.get_mut(&key) else {
            return;
        };
        let Some(webm) = open.webm.as_mut() else {
            return;
        };
        let ms = at_ms.saturating_sub(open.origin_ms);
        let now = Instant::now();
        let had_video = webm.has_video();
        let written = match frame.kind {
            MediaKind::Audio => webm.audio(ms, &frame.data, now),
            MediaKind::Video => webm.video(ms, &frame.data, now).map(drop),
        };
        let index = open.index;
        if let Err(err) = written {
            self.failed(&key, &err);
            return;
        }
        let tracks = webm.codecs();
        if tracks != self.manifest.files[index].tracks || had_video != webm.has_video() {
            self.manifest.files[index].tracks = tracks;
            self.write_manifest();
        }
    }

    fn open(&mut self, frame: &OwnedFrame, at_ms: u64) {
        let name = self.unique_name(&frame.username, &frame.peer, frame.source);
        let webm = match WebmFile::create(&self.dir.join(&name)) {
            Ok(webm) => Some(webm),
            Err(err) => {
                tracing::error!(recording = %self.manifest.id, file = %name, error = %err, "could not create a recording file");
                None
            }
        };
        self.manifest.files.push(ManifestFile {
            name,
            peer_id: frame.peer.as_str().to_owned(),
            username: frame.username.clone(),
            source: frame.source,
            start_ms: at_ms,
            end_ms: None,
            tracks: Vec::new(),
        });
        let index = self.manifest.files.len() - 1;
        self.files.insert(
            (frame.peer.clone(), frame.source),
            OpenFile {
                webm,
                index,
                origin_ms: at_ms,
            },
        );
        self.write_manifest();
    }

    /// `{username}-{peer}[-screen].webm`, with `-2`, `-3`… when taken.
    fn unique_name(&self, username: &str, peer: &PeerId, source: FileSource) -> String {
        let stem = format!(
            "{}-{}{}",
            name_part(username),
            name_part(peer.as_str()),
            if source == FileSource::Screen {
                "-screen"
            } else {
                ""
            }
        );
        let taken = |name: &str| self.manifest.files.iter().any(|f| f.name == name);
        let mut name = format!("{stem}.webm");
        let mut n = 2;
        while taken(&name) {
            name = format!("{stem}-{n}.webm");
            n += 1;
        }
        name
    }

    /// Closes the files of participants who left, once the frames queued
    /// before they left are written (`None`: all of them).
    fn departures(&mut self, received: Option<u64>) {
        let due: Vec<PeerId> = {
            let mut departures = self
                .shared
                .departures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (due, later) = departures
                .drain(..)
                .partition(|(queued, _)| received.is_none_or(|r| *queued <= r));
            *departures = later;
            due.into_iter().map(|(_, peer)| peer).collect()
        };
        for peer in due {
            for source in [FileSource::Camera, FileSource::Screen] {
                self.close(&(peer.clone(), source));
            }
        }
    }

    fn close(&mut self, key: &(PeerId, FileSource)) {
        let Some(open) = self.files.remove(key) else {
            return;
        };
        let Some(webm) = open.webm else {
            return;
        };
        let name = &self.manifest.files[open.index].name;
        match webm.finish() {
            Ok(end) => {
                self.manifest.files[open.index].end_ms = Some(open.origin_ms + end);
            }
            Err(err) => {
                tracing::error!(recording = %self.manifest.id, file = %name, error = %err, "could not finish a recording file");
                self.manifest.files[open.index].end_ms = Some(open.origin_ms);
            }
        }
        self.write_manifest();
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let mut failed = Vec::new();
        for (key, open) in &mut self.files {
            if let Some(webm) = open.webm.as_mut() {
                if let Err(err) = webm.tick(now) {
                    failed.push((key.clone(), err));
                }
            }
        }
        for (key, err) in failed {
            self.failed(&key, &err);
        }
    }

    /// Writing a file failed (disk full…): it is left as it is, and its
    /// participant's later frames are dropped.
    fn failed(&mut self, key: &(PeerId, FileSource), err: &std::io::Error) {
        if let Some(open) = self.files.get_mut(key) {
            open.webm = None;
            let file = &self.manifest.files[open.index];
            tracing::error!(recording = %self.manifest.id, file = %file.name, error = %err, "could not write a recording file: its later frames are dropped");
        }
    }

    fn write_manifest(&self) {
        if let Err(err) = self.manifest.write(&self.dir) {
            tracing::warn!(recording = %self.manifest.id, error = %err, "could not write the recording's manifest");
        }
    }
}
